//! Steering: which lcore of a group owns a packet's connection, and the sorted lookups over a
//! generation's services that the packet path uses (no packet scans the service list).

use std::net::Ipv4Addr;

use conn::{v4, Tuple};
use wire::{IpProtocol, Parsed, TcpFlags, L4};

use super::Service;

/// The transport of a frame the balancer may translate (untagged, unfragmented IPv4 TCP or
/// UDP): protocol number, source and destination ports, TCP flags (`None` for UDP).
#[inline]
pub fn transport(p: &Parsed) -> Option<(u8, u16, u16, Option<TcpFlags>)> {
    let ip = p.ipv4.as_ref()?;
    if ip.is_fragment || p.vlan_count != 0 {
        return None;
    }
    match ip.l4 {
        L4::Tcp { src_port, dst_port, flags, .. } => Some((IpProtocol::Tcp.into(), src_port, dst_port, Some(flags))),
        L4::Udp { src_port, dst_port } => Some((IpProtocol::Udp.into(), src_port, dst_port, None)),
        _ => None,
    }
}

/// The 5-tuple of a frame the balancer may translate, and its TCP flags (see [`transport`]).
#[inline]
pub fn flow_of(p: &Parsed) -> Option<(Tuple, Option<TcpFlags>)> {
    let (proto, sport, dport, flags) = transport(p)?;
    let ip = p.ipv4.as_ref()?;
    Some((Tuple { proto, src: v4(ip.src_addr.octets()), sport, dst: v4(ip.dst_addr.octets()), dport }, flags))
}

/// Whether `t` is the 5-tuple of the packet `p` describes, whose transport is `(proto, sport,
/// dport)`. Compares field by field rather than against a tuple built for the purpose: a
/// tuple just written to the stack byte-wise and read back 16 bytes at a time stalls on
/// store forwarding (seen: a third of the lookup's time).
#[inline]
pub(super) fn is_flow(t: &Tuple, p: &Parsed, (proto, sport, dport): (u8, u16, u16)) -> bool {
    const V4_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    let Some(ip) = p.ipv4.as_ref() else { return false };
    let addr = |a: &[u8; 16]| u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
    t.proto == proto
        && t.sport == sport
        && t.dport == dport
        && addr(&t.src) == u32::from(ip.src_addr)
        && addr(&t.dst) == u32::from(ip.dst_addr)
        && t.src[..12] == V4_PREFIX
        && t.dst[..12] == V4_PREFIX
}

/// Which lcore (of `lcores`) owns the connection of a packet: replies to a local address by
/// their destination port (each lcore hands out its own share of local ports), packets to a
/// service by a hash of their 5-tuple (so one client flow always meets one lcore, whatever
/// queue it arrives on), and the replies of a NAT real server by the client they go to.
/// `None`: not traffic of a service, or a single lcore.
pub fn owner(index: &Index, lcores: u16, p: &Parsed) -> Option<u16> {
    if lcores <= 1 {
        return None;
    }
    let (proto, sport, dport, _) = transport(p)?;
    let ip = p.ipv4.as_ref()?;
    let (src, dst) = (ip.src_addr, ip.dst_addr);
    // Client flows are owned by their client's address and port, so that the replies of a NAT
    // real server (to the client) find the same owner as the client's packets.
    let by_client = |addr: Ipv4Addr, port: u16| (flow_hash(u32::from(addr), port, proto) % u64::from(lcores)) as u16;
    // A persistent service's clients are owned by their address alone: the lcore that holds a
    // client's template sees all its connections.
    if let Some((_, persistent)) = index.lookup(proto, dst, dport) {
        return Some(by_client(src, if persistent { 0 } else { sport }));
    }
    if index.is_laddr(proto, dst) {
        return Some(dport % lcores);
    }
    if let Some(persistent) = index.nat_real(proto, src, sport) {
        return Some(by_client(dst, if persistent { 0 } else { dport }));
    }
    None
}

/// What the packet path looks up in a generation's services, sorted for binary search
/// (built when the services change, so no packet scans the service list).
#[derive(Debug, Default)]
pub struct Index {
    /// (protocol, VIP, port), the service's index, and whether it is persistent.
    vips: Vec<((u8, u32, u16), usize, bool)>,
    /// (protocol, local address) of every service.
    laddrs: Vec<(u8, u32)>,
    /// (protocol, address, port) of every real server reached by NAT, and whether its service
    /// is persistent.
    nat_reals: Vec<((u8, u32, u16), bool)>,
}

impl Index {
    /// The index of `services`.
    pub fn build(services: &[Service]) -> Index {
        let mut i = Index::default();
        for (n, s) in services.iter().enumerate() {
            let persistent = s.persistence > 0;
            i.vips.push(((s.proto, u32::from(s.vip), s.port), n, persistent));
            i.laddrs.extend(s.laddrs.iter().map(|a| (s.proto, u32::from(*a))));
            i.nat_reals.extend(
                s.reals
                    .iter()
                    .filter(|r| r.forward == conf::Forward::Nat)
                    .map(|r| ((s.proto, u32::from(r.addr), r.port), persistent)),
            );
        }
        i.vips.sort_unstable();
        i.laddrs.sort_unstable();
        i.laddrs.dedup();
        i.nat_reals.sort_unstable();
        i.nat_reals.dedup_by_key(|(k, _)| *k);
        i
    }

    /// The service `proto vip:port`, and whether it is persistent.
    #[inline]
    pub fn lookup(&self, proto: u8, vip: Ipv4Addr, port: u16) -> Option<(usize, bool)> {
        let key = (proto, u32::from(vip), port);
        self.vips.binary_search_by(|(k, _, _)| k.cmp(&key)).ok().map(|i| (self.vips[i].1, self.vips[i].2))
    }

    /// The service `proto vip:port`.
    #[inline]
    pub fn service(&self, proto: u8, vip: Ipv4Addr, port: u16) -> Option<usize> {
        self.lookup(proto, vip, port).map(|(i, _)| i)
    }

    /// Whether `addr` is a local address of a `proto` service.
    #[inline]
    pub fn is_laddr(&self, proto: u8, addr: Ipv4Addr) -> bool {
        self.laddrs.binary_search(&(proto, u32::from(addr))).is_ok()
    }

    /// If `addr:port` is a NAT real server of a `proto` service: whether that service is
    /// persistent.
    #[inline]
    pub fn nat_real(&self, proto: u8, addr: Ipv4Addr, port: u16) -> Option<bool> {
        let key = (proto, u32::from(addr), port);
        self.nat_reals.binary_search_by(|(k, _)| k.cmp(&key)).ok().map(|i| self.nat_reals[i].1)
    }
}

/// A hash of a client's address, port and protocol that every lcore computes alike.
fn flow_hash(addr: u32, port: u16, proto: u8) -> u64 {
    let mut h = (u64::from(addr) << 32) ^ (u64::from(port) << 8 | u64::from(proto));
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
