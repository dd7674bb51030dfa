//! Steering: which lcore of a group owns a packet's connection ([`owner`]), and the sorted
//! lookups over a generation's services that the packet path uses (no packet scans the
//! service list).

use std::net::IpAddr;

use conn::{v4, Tuple};
use rustc_hash::FxHashMap;
use wire::{IpProtocol, Network, Parsed, TcpFlags, L4};

use super::{Receive, Service};
use crate::outcome::Handoff;

/// The transport of a frame the balancer may translate (untagged, unfragmented IPv4 or IPv6
/// TCP or UDP): protocol number, source and destination ports, TCP flags (`None` for UDP).
#[inline]
pub fn transport(p: &Parsed) -> Option<(u8, u16, u16, Option<TcpFlags>)> {
    let (is_fragment, l4) = match &p.net {
        Network::V4(ip) => (ip.is_fragment, ip.l4),
        Network::V6(ip) => (ip.is_fragment, ip.l4),
        Network::None => return None,
    };
    if is_fragment || p.vlan_count != 0 {
        return None;
    }
    match l4 {
        L4::Tcp { src_port, dst_port, flags, .. } => Some((IpProtocol::Tcp.into(), src_port, dst_port, Some(flags))),
        L4::Udp { src_port, dst_port } => Some((IpProtocol::Udp.into(), src_port, dst_port, None)),
        _ => None,
    }
}

/// The source and destination of the frame `p` describes, in the connection table's 16-byte
/// form (IPv6 addresses are read from `frame`, which `p` was classified from).
#[inline]
pub fn addrs_of(p: &Parsed, frame: &[u8]) -> Option<([u8; 16], [u8; 16])> {
    match &p.net {
        Network::V4(ip) => Some((v4(ip.src_addr.octets()), v4(ip.dst_addr.octets()))),
        Network::V6(_) => {
            let at = usize::from(p.l3_offset);
            let a = frame.get(at + 8..at + 40)?;
            let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..]);
            Some((src, dst))
        }
        Network::None => None,
    }
}

/// The 5-tuple of a frame the balancer may translate, and its TCP flags (see [`transport`]).
#[inline]
pub fn flow_of(p: &Parsed, frame: &[u8]) -> Option<(Tuple, Option<TcpFlags>)> {
    let (proto, sport, dport, flags) = transport(p)?;
    let (src, dst) = addrs_of(p, frame)?;
    Some((Tuple { proto, src, sport, dst, dport }, flags))
}

/// Whether `t` is the 5-tuple of the packet `p` describes (classified from `frame`), whose
/// transport is `(proto, sport, dport)`. For IPv4, compares field by field rather than against
/// a tuple built for the purpose: a tuple just written to the stack byte-wise and read back 16
/// bytes at a time stalls on store forwarding (seen: a third of the lookup's time).
#[inline]
pub(super) fn is_flow(t: &Tuple, p: &Parsed, frame: &[u8], (proto, sport, dport): (u8, u16, u16)) -> bool {
    const V4_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    if t.proto != proto || t.sport != sport || t.dport != dport {
        return false;
    }
    match &p.net {
        Network::V4(ip) => {
            let addr = |a: &[u8; 16]| u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
            addr(&t.src) == u32::from(ip.src_addr)
                && addr(&t.dst) == u32::from(ip.dst_addr)
                && t.src[..12] == V4_PREFIX
                && t.dst[..12] == V4_PREFIX
        }
        Network::V6(_) => {
            let at = usize::from(p.l3_offset);
            frame.get(at + 8..at + 40).is_some_and(|a| a[..16] == t.src && a[16..] == t.dst)
        }
        Network::None => false,
    }
}

/// Which lcore of the group owns the connection of packet `p`, received on port slot
/// `rx_port`, and why it is handed there, when another lcore than this one (`rx`) does.
///
/// - To a service placed by RSS (Full-NAT, direct routing, IP-in-IP, not persistent): the lcore
///   that port's RSS delivers it to (the one that receives it, unless the peer does not apply
///   the port's RSS: [`Handoff::RssMismatch`]); a hash of the client's address and port when
///   the RSS is unknown ([`Handoff::NoRss`]).
/// - To a NAT-mode service: a hash of the client's address and port, because the real
///   server's replies keep the client's tuple, which RSS cannot place ([`Handoff::Nat`]); to a
///   persistent one, a hash of the client's address (its template) ([`Handoff::Persistent`]).
/// - A reply to a local address: the lcore the port's RSS delivers it to, which chose its
///   local port for that; by its destination port (each lcore hands out its share) when the
///   port's RSS cannot deliver replies to every lcore.
/// - A NAT real server's reply: the client hash, as the client's packets.
/// - An ICMP error quoting a packet: as the packet that quoted packet's receiver sends back (a
///   packet of the connection, whose owner relays the error).
///
/// `None`: this lcore, not traffic of a service, or an lcore alone in its group.
#[inline]
pub fn owner(index: &Index, rx: &Receive, rx_port: u16, p: &Parsed, frame: &[u8]) -> Option<(u16, Handoff)> {
    let (me, lcores) = (rx.me(), rx.lcores());
    if lcores <= 1 {
        return None;
    }
    let (proto, (src, sport), (dst, dport)) = match transport(p) {
        Some((proto, sport, dport, _)) => {
            let (src, dst) = addrs_of(p, frame)?;
            (proto, (src, sport), (dst, dport))
        }
        // An error about a connection's packet: the connection's owner relays it.
        None if super::icmp::is_error(p) => {
            let t = super::icmp::key_of(frame, p)?;
            (t.proto, (t.src, t.sport), (t.dst, t.dport))
        }
        None => return None,
    };
    let (src, dst) = (super::ip_of(&src), super::ip_of(&dst));
    let by_client = |addr: IpAddr, port: u16| (flow_hash(fold(addr), port, proto) % u64::from(lcores)) as u16;
    let other = |lcore: u16, why: Handoff| (lcore != me).then_some((lcore, why));
    let by_rss = || match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => rx.lcore(rx_port, (s.octets(), sport), (d.octets(), dport)),
        (IpAddr::V6(s), IpAddr::V6(d)) => rx.lcore(rx_port, (s.octets(), sport), (d.octets(), dport)),
        _ => None,
    };
    if let Some((_, place)) = index.lookup(proto, dst, dport) {
        return match place {
            Place::Receiving => match by_rss() {
                Some(lcore) => other(lcore, Handoff::RssMismatch),
                None => other(by_client(src, sport), Handoff::NoRss),
            },
            Place::Nat => other(by_client(src, sport), Handoff::Nat),
            Place::Persistent(prefix) => other(by_client(super::setup::masked(src, prefix), 0), Handoff::Persistent),
        };
    }
    if index.is_laddr(proto, dst) {
        return match by_rss().filter(|_| rx.places_replies(rx_port)) {
            Some(lcore) => other(lcore, Handoff::RssMismatch),
            None => other(dport % lcores, Handoff::NoRss),
        };
    }
    if let Some(place) = index.nat_real(proto, src, sport) {
        return match place {
            Place::Persistent(prefix) => other(by_client(super::setup::masked(dst, prefix), 0), Handoff::Persistent),
            _ => other(by_client(dst, dport), Handoff::Nat),
        };
    }
    None
}

/// How the connections of a service are placed on the lcores of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// On the lcore that receives the client's packets (RSS).
    Receiving,
    /// By a hash of the client's address and port (a NAT-mode real server: its replies keep
    /// the client's tuple).
    Nat,
    /// By a hash of the client's network of that many bits (0: its address): persistence, the
    /// template and every connection it places on one lcore.
    Persistent(u8),
}

/// What the packet path looks up in the services, in hash tables (so no packet scans the
/// service list, at any number of services), kept up to date service by service as they are
/// added, replaced and removed.
#[derive(Debug, Default)]
pub struct Index {
    /// (protocol, VIP, port) -> the service's index, and how its connections are placed.
    vips: ByAddr<(usize, Place)>,
    /// (protocol, local address) of every service -> how many services have it.
    laddrs: ByAddr<u32>,
    /// (protocol, address, port) of every real server reached by NAT -> how many
    /// non-persistent and persistent services have it, and the persistence prefix of the last
    /// persistent one added.
    nat_reals: ByAddr<(u32, u32, u8)>,
}

/// A hash table keyed by `proto addr:port`, of either family: an IPv4 key is packed in one
/// word (the packet path's common case stays one multiply to hash).
#[derive(Debug)]
struct ByAddr<V> {
    v4: FxHashMap<u64, V>,
    v6: FxHashMap<(u128, u32), V>,
}

impl<V> Default for ByAddr<V> {
    fn default() -> Self {
        ByAddr { v4: FxHashMap::default(), v6: FxHashMap::default() }
    }
}

/// A key of [`ByAddr`].
#[derive(Clone, Copy)]
enum Key {
    V4(u64),
    V6((u128, u32)),
}

/// `proto addr:port` as one hash key.
#[inline]
fn key(proto: u8, addr: IpAddr, port: u16) -> Key {
    let pp = u32::from(proto) << 16 | u32::from(port);
    match addr {
        IpAddr::V4(a) => Key::V4(u64::from(pp) << 32 | u64::from(u32::from(a))),
        IpAddr::V6(a) => Key::V6((a.to_bits(), pp)),
    }
}

impl<V> ByAddr<V> {
    #[inline]
    fn get(&self, k: Key) -> Option<&V> {
        match k {
            Key::V4(k) => self.v4.get(&k),
            Key::V6(k) => self.v6.get(&k),
        }
    }

    fn get_mut(&mut self, k: Key) -> Option<&mut V> {
        match k {
            Key::V4(k) => self.v4.get_mut(&k),
            Key::V6(k) => self.v6.get_mut(&k),
        }
    }

    fn insert(&mut self, k: Key, v: V) {
        match k {
            Key::V4(k) => self.v4.insert(k, v),
            Key::V6(k) => self.v6.insert(k, v),
        };
    }

    fn remove(&mut self, k: Key) {
        match k {
            Key::V4(k) => self.v4.remove(&k),
            Key::V6(k) => self.v6.remove(&k),
        };
    }

    fn or_default(&mut self, k: Key) -> &mut V
    where
        V: Default,
    {
        match k {
            Key::V4(k) => self.v4.entry(k).or_default(),
            Key::V6(k) => self.v6.entry(k).or_default(),
        }
    }

    fn reserve(&mut self, n: usize) {
        self.v4.reserve(n);
    }
}

impl Index {
    /// The index of `services`.
    pub fn build(services: &[Service]) -> Index {
        let mut i = Index::default();
        i.vips.reserve(services.len());
        for (n, s) in services.iter().enumerate() {
            i.add(n, s);
        }
        i
    }

    /// Adds service `s`, at index `n` of the services.
    pub fn add(&mut self, n: usize, s: &Service) {
        let persistent = s.persistence > 0;
        let nat = s.reals.iter().filter(|r| r.forward == conf::Forward::Nat);
        let place = if persistent {
            Place::Persistent(s.persistence_prefix)
        } else if nat.clone().next().is_some() {
            Place::Nat
        } else {
            Place::Receiving
        };
        self.vips.insert(key(s.proto, s.vip, s.port), (n, place));
        for a in &s.laddrs {
            *self.laddrs.or_default(key(s.proto, *a, 0)) += 1;
        }
        for r in nat {
            let refs = self.nat_reals.or_default(key(s.proto, r.addr, r.port));
            match persistent {
                true => (refs.1, refs.2) = (refs.1 + 1, s.persistence_prefix),
                false => refs.0 += 1,
            }
        }
    }

    /// Removes service `s` (as [`Index::add`] added it).
    pub fn remove(&mut self, s: &Service) {
        self.vips.remove(key(s.proto, s.vip, s.port));
        for a in &s.laddrs {
            let k = key(s.proto, *a, 0);
            if let Some(n) = self.laddrs.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.laddrs.remove(k);
                }
            }
        }
        for r in s.reals.iter().filter(|r| r.forward == conf::Forward::Nat) {
            let k = key(s.proto, r.addr, r.port);
            if let Some(refs) = self.nat_reals.get_mut(k) {
                match s.persistence > 0 {
                    true => refs.1 = refs.1.saturating_sub(1),
                    false => refs.0 = refs.0.saturating_sub(1),
                }
                if (refs.0, refs.1) == (0, 0) {
                    self.nat_reals.remove(k);
                }
            }
        }
    }

    /// Service `s` is now at index `n`.
    pub fn moved(&mut self, n: usize, s: &Service) {
        if let Some(e) = self.vips.get_mut(key(s.proto, s.vip, s.port)) {
            e.0 = n;
        }
    }

    /// The service `proto vip:port`, and how its connections are placed.
    #[inline]
    pub fn lookup(&self, proto: u8, vip: impl Into<IpAddr>, port: u16) -> Option<(usize, Place)> {
        self.vips.get(key(proto, vip.into(), port)).copied()
    }

    /// The service `proto vip:port`.
    #[inline]
    pub fn service(&self, proto: u8, vip: impl Into<IpAddr>, port: u16) -> Option<usize> {
        self.lookup(proto, vip, port).map(|(i, _)| i)
    }

    /// Whether `addr` is a local address of a `proto` service.
    #[inline]
    pub fn is_laddr(&self, proto: u8, addr: impl Into<IpAddr>) -> bool {
        self.laddrs.get(key(proto, addr.into(), 0)).is_some()
    }

    /// If `addr:port` is a NAT real server of a `proto` service: how its replies are placed,
    /// [`Place::Persistent`] when every service that has it is persistent (by the prefix of
    /// the last one added: services sharing a NAT real server are expected to group clients
    /// alike), else [`Place::Nat`].
    #[inline]
    pub fn nat_real(&self, proto: u8, addr: impl Into<IpAddr>, port: u16) -> Option<Place> {
        let &(plain, _, prefix) = self.nat_reals.get(key(proto, addr.into(), port))?;
        Some(if plain == 0 { Place::Persistent(prefix) } else { Place::Nat })
    }
}

/// An address in 32 bits for [`flow_hash`]: an IPv4 address itself, an IPv6 one folded.
fn fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let b = a.to_bits();
            (b >> 96) as u32 ^ (b >> 64) as u32 ^ (b >> 32) as u32 ^ b as u32
        }
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
