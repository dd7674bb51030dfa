//! What the balancer's and the poll loop's tests share: the addresses of their topology
//! (client on port slot 0, real server behind port slot 1) and a connection table in ordinary
//! memory.

use std::net::Ipv4Addr;

use conn::Shard;
use shm_layout::conn::{ConnEntry, ConnShardHeader};
use shm_layout::ConnParts;
use wire::EthernetAddress;

/// Port slot 0's MAC (the client side).
pub const P0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
/// Port slot 1's MAC (the real servers' side).
pub const P1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
pub const RS_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 2]);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The local address (Full-NAT).
pub const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
pub const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

/// A connection table of 256 entries in ordinary memory.
pub struct Store {
    h: ConnShardHeader,
    buckets: Vec<u32>,
    wheel: Vec<u32>,
    entries: Vec<ConnEntry>,
}

impl Store {
    /// An empty table with `n_buckets` chain heads.
    pub fn new(n_buckets: u32) -> Store {
        let h = ConnShardHeader { capacity: 256, n_buckets, wheel_slots: 256, seed: 7, ..Default::default() };
        let buckets = vec![0; n_buckets as usize];
        Store { h, buckets, wheel: vec![0; 256], entries: vec![ConnEntry::EMPTY; 256] }
    }

    /// Its shard, adopted at tick 0.
    pub fn shard(&mut self) -> Shard<'_> {
        let parts = ConnParts {
            header: &self.h,
            buckets: &mut self.buckets,
            wheel: &mut self.wheel,
            entries: &mut self.entries,
        };
        Shard::adopt(parts, 0).0
    }
}
