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

/// The runtime configuration of the fixtures: tcp VIP:80 and udp VIP:53, each with the real
/// servers `reals` (port, weight); VIP/24 on port slot 0, LIP/24 and RS's neighbour on port
/// slot 1.
pub fn runtime(reals: &[(u16, u32)]) -> conf::Runtime {
    let svc = |protocol, port| conf::Service {
        vip: VIP.into(),
        port,
        protocol,
        scheduler: sched::Kind::Wlc,
        local_addresses: vec![LIP.into()],
        reals: reals
            .iter()
            .map(|&(port, weight)| conf::Real {
                addr: RS.into(),
                port,
                weight,
                forward: conf::Forward::Fnat,
                upper: 0,
                lower: 0,
                down: false,
            })
            .collect(),
        persistence: 0,
        persistence_prefix: 0,
        deny: vec![],
        allow: vec![],
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
        check: None,
    };
    conf::Runtime {
        addresses: vec![
            conf::IfAddr { port: 0, addr: VIP.into(), prefix: 24, sapool: false },
            conf::IfAddr { port: 1, addr: LIP.into(), prefix: 24, sapool: false },
        ],
        neighbours: vec![conf::Neighbour { addr: RS.into(), mac: RS_MAC.0, port: 1 }],
        routes: vec![],
        services: vec![svc(conf::Protocol::Tcp, 80).into(), svc(conf::Protocol::Udp, 53).into()],
    }
}
