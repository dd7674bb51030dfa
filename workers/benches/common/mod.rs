//! What the criterion benches of the worker share: the addresses, a connection table with the
//! primary's geometry, one UDP Full-NAT service over 32 local addresses, and its frames.

use std::net::{Ipv4Addr, Ipv6Addr};

use shm_layout::conn::{ConnEntry, ConnShardHeader};
use wire::{EthernetAddress, IpProtocol, UdpPacket, UdpRepr};

pub const P0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
pub const P1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
pub const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// Local addresses: 32, so that 1M flows get local ports (64 511 each).
pub const LADDRS: u8 = 32;

/// A connection table's parts, on the heap.
pub struct Store {
    pub h: ConnShardHeader,
    pub buckets: Vec<u32>,
    pub wheel: Vec<u32>,
    pub entries: Vec<ConnEntry>,
}

/// A connection table of `capacity` entries with the primary's geometry.
pub fn store(capacity: u32) -> Store {
    let h = ConnShardHeader {
        capacity,
        n_buckets: shm_layout::conn::BUCKETS_PER_ENTRY * capacity,
        wheel_slots: 4096,
        seed: 7,
        ..Default::default()
    };
    Store {
        h,
        buckets: vec![0; (shm_layout::conn::BUCKETS_PER_ENTRY * capacity) as usize],
        wheel: vec![0; 4096],
        entries: vec![ConnEntry::EMPTY; capacity as usize],
    }
}

/// One UDP Full-NAT service, VIP:53 to one real server, over [`LADDRS`] local addresses.
pub fn runtime() -> conf::Runtime {
    let laddr = |i: u8| Ipv4Addr::new(198, 18, 1, 200 + i);
    let mut addresses = vec![conf::IfAddr { port: 0, addr: VIP.into(), prefix: 24, sapool: false }];
    addresses.extend((0..LADDRS).map(|i| conf::IfAddr { port: 1, addr: laddr(i).into(), prefix: 24, sapool: false }));
    conf::Runtime {
        addresses,
        neighbours: vec![conf::Neighbour { addr: RS.into(), mac: [2, 0, 0, 0, 1, 2], port: 1 }],
        routes: vec![],
        services: vec![conf::Service {
            vip: VIP.into(),
            port: 53,
            protocol: conf::Protocol::Udp,
            scheduler: sched::Kind::Rr,
            local_addresses: (0..LADDRS).map(|i| laddr(i).into()).collect(),
            reals: vec![conf::Real {
                addr: RS.into(),
                port: 53,
                weight: 1,
                forward: conf::Forward::Fnat,
                upper: 0,
                lower: 0,
                down: false,
            }],
            persistence: 0,
            persistence_prefix: 0,
            deny: vec![],
            allow: vec![],
            proxy_protocol: conf::ProxyProtocol::Off,
            group: None,
            check: None,
        }
        .into()],
    }
}

/// Flow `i`'s 64-byte frame: client 10.x.y.z, port 1024 + i % 64 512, to VIP:53.
pub fn frame(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0x0a00_0000 + i / 64_512);
    let payload = [0xa5u8; 18];
    let udp = UdpRepr { src_port: 1024 + (i % 64_512) as u16, dst_port: 53, payload: &payload };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d[..]), src, VIP);
    let mut f = vec![0u8; 34 + d.len()];
    wire::emit_ipv4_frame(&mut f, (CLIENT_MAC, P0), (src, VIP), IpProtocol::Udp, &d);
    f
}

/// [`runtime`] over IPv6: udp [VIP6]:53 to [RS6]:53 over [`LADDRS`] IPv6 local addresses; the
/// real server's MAC is learned (neighbour discovery), see [`learned6`].
#[allow(dead_code)]
pub fn runtime6() -> conf::Runtime {
    let laddr = |i: u8| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200 + u16::from(i));
    let mut addresses = vec![conf::IfAddr { port: 0, addr: VIP6.into(), prefix: 64, sapool: false }];
    addresses.extend((0..LADDRS).map(|i| conf::IfAddr { port: 1, addr: laddr(i).into(), prefix: 64, sapool: false }));
    let mut rt = runtime();
    let mut svc = (*rt.services[0]).clone();
    svc.vip = VIP6.into();
    svc.local_addresses = (0..LADDRS).map(|i| laddr(i).into()).collect();
    svc.reals[0].addr = RS6.into();
    rt.addresses = addresses;
    rt.neighbours = vec![];
    rt.services = vec![svc.into()];
    rt
}

/// The real server of [`runtime6`], as neighbour discovery taught it.
#[allow(dead_code)]
pub fn learned6() -> workers::neigh::Hops {
    [(RS6.into(), ([2, 0, 0, 0, 1, 2], 1))].into_iter().collect()
}

/// [`frame`] over IPv6: client 2001:db8:c::x, port 1024 + i % 64 512, to [VIP6]:53, the same
/// 18 bytes of payload (an 86-byte frame).
#[allow(dead_code)]
pub fn frame6(i: u32) -> Vec<u8> {
    let src = Ipv6Addr::from(0x2001_0db8_000c_0000_0000_0000_0000_0000u128 + u128::from(i / 64_512));
    let payload = [0xa5u8; 18];
    let udp = UdpRepr { src_port: 1024 + (i % 64_512) as u16, dst_port: 53, payload: &payload };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d[..]), src, VIP6);
    let mut f = vec![0u8; 54 + d.len()];
    wire::emit_ipv6_frame(&mut f, (CLIENT_MAC, P0), (src, VIP6), IpProtocol::Udp, &d);
    f
}

/// NAT64: udp [VIP6]:53 to the IPv4 real server of [`runtime`] over its IPv4 local addresses.
#[allow(dead_code)]
pub fn runtime64() -> conf::Runtime {
    let mut rt = runtime();
    let mut svc = (*rt.services[0]).clone();
    svc.vip = VIP6.into();
    rt.addresses[0] = conf::IfAddr { port: 0, addr: VIP6.into(), prefix: 64, sapool: false };
    rt.services = vec![svc.into()];
    rt
}

/// A frame as an mbuf holds it, with room in front (DPDK's default headroom, 128 bytes) and
/// behind (as much): moving its start (NAT64's header of another size) costs what it costs a worker,
/// not a copy of the data as a `Vec<u8>`'s would.
#[allow(dead_code)]
#[derive(Clone)]
pub struct Mbuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

#[allow(dead_code)]
impl Mbuf {
    const HEADROOM: usize = 128;

    /// `frame` after the headroom, with as much room behind it (kept small: a batch of
    /// frames stays as cache-resident as the `Vec<u8>` frames the figures were first taken
    /// with).
    pub fn new(frame: &[u8]) -> Mbuf {
        let mut buf = vec![0u8; 2 * Self::HEADROOM + frame.len()];
        buf[Self::HEADROOM..Self::HEADROOM + frame.len()].copy_from_slice(frame);
        Mbuf { buf, start: Self::HEADROOM, end: Self::HEADROOM + frame.len() }
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl workers::frame::Frame for Mbuf {
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    fn insert(&mut self, at: usize, n: usize) -> bool {
        if self.start + at > self.end || self.end + n > self.buf.len() {
            return false;
        }
        self.buf.copy_within(self.start + at..self.end, self.start + at + n);
        self.end += n;
        true
    }

    fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }

    fn prepend(&mut self, n: usize) -> bool {
        let Some(start) = self.start.checked_sub(n) else { return false };
        self.start = start;
        true
    }

    fn cut_front(&mut self, n: usize) -> bool {
        if self.start + n > self.end {
            return false;
        }
        self.start += n;
        true
    }
}
