//! Full-NAT: client -> VIP:port becomes local address:local port -> real server, and the
//! reply real server -> local address:port becomes VIP:port -> client. One connection entry
//! in the lcore's shard finds both directions; the scheduler picks the real server of a new
//! connection; checksums are updated incrementally.
//!
//! New TCP connections start only on a SYN; any other segment to a service with no
//! connection is dropped and counted (LVS does the same). The client side's MAC address and
//! port are kept in the entry, so replies go back the way the client came.

use std::net::{IpAddr, Ipv4Addr};

use conn::tcp::{self, Event, State, Way};
use conn::{v4, Dir, Hashed, NewConn, Shard, Tuple};
use sched::{Backend, FlowKey, Scheduler};
use shm_layout::conn::Mode;
use shm_layout::LcoreCounters;
use wire::checksum;

use crate::frame::Frame;
use wire::{EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet, Parsed, TcpFlags, TcpPacket, UdpPacket, L4};

/// Connection timer tick.
pub const TICK_NS: u64 = 10_000_000;
/// Local ports handed out (the rest are left to the kernel side and well-known services).
const LPORT_MIN: u16 = 1025;
/// Local ports tried for one new connection before giving up.
const LPORT_TRIES: usize = 64;

/// What Full-NAT did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not Full-NAT traffic: no connection and no service.
    NotOurs,
    /// Rewritten; send it out of this port slot. `new` when it created the connection.
    Out { port: u16, dir: Dir, new: bool },
    /// Drop it.
    Drop(FnatDrop),
    /// Its TTL ran out: answer with ICMP time exceeded instead (Full-NAT and NAT route it).
    TimeExceeded,
    /// Too big for the port once encapsulated (IP-in-IP), with DF set: answer with ICMP
    /// fragmentation needed, naming the MTU that fits.
    FragNeeded { mtu: u16 },
}

/// Why Full-NAT dropped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FnatDrop {
    /// A TCP segment other than a SYN for a service, with no connection.
    NoConnection,
    /// No real server can take a new connection (all down or quiescent).
    NoReal,
    /// No free local port (or the table is full).
    NoResource,
    /// The client is in the service's deny list, or not in its allow list.
    Denied,
    /// Every real server that could take the connection is at its upper threshold.
    Overloaded,
    /// Too big for the port once encapsulated, and fragmenting is allowed: the balancer does
    /// not fragment (counted; senders with path MTU discovery set DF and get told).
    TooBig,
}

/// A real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Real {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Its MAC address (static neighbour) and the port slot it is reached through.
    pub mac: EthernetAddress,
    pub via: u16,
    /// How packets reach it.
    pub forward: conf::Forward,
    /// The balancer's address on the next hop's network: the source of IP-in-IP outer
    /// headers and of ARP requests for the next hop.
    pub hop_src: Ipv4Addr,
    /// The next hop: itself on a connected network, else its route's gateway.
    pub hop: Ipv4Addr,
    /// Whether the next hop's MAC comes from ARP (no static neighbour entry).
    pub learned: bool,
    /// Whether `mac` is known; an unresolved real server takes no new connection.
    pub resolved: bool,
}

impl Real {
    /// A real server at `addr:port` reached through `mac` on port slot `via`, its MAC known
    /// statically.
    pub fn new(addr: Ipv4Addr, port: u16, mac: EthernetAddress, via: u16, forward: conf::Forward) -> Real {
        Real {
            addr,
            port,
            mac,
            via,
            forward,
            hop_src: Ipv4Addr::UNSPECIFIED,
            hop: addr,
            learned: false,
            resolved: true,
        }
    }
}

/// Forwarding mode of a connection entry (kept in its flags).
const MODE_FNAT: u8 = 1;
/// Direct routing: inbound only, MACs rewritten, the packet otherwise unchanged.
const MODE_DR: u8 = 2;
/// NAT: the Full-NAT rewrite with the client as the local side.
const MODE_NAT: u8 = 3;
/// A persistence template (client address -> real server of a persistent service); it
/// carries no traffic and counts towards no real server's connections.
const MODE_TEMPLATE: u8 = 4;
/// IP-in-IP: inbound only, the packet unchanged inside an outer IPv4 header.
const MODE_TUNNEL: u8 = 5;

/// MTU of a port whose MTU was not given ([`Fnat::with_mtus`]).
pub const DEFAULT_MTU: usize = 1500;
/// The outer IPv4 header of IP-in-IP.
const TUNNEL_HEADER_LEN: usize = 20;

/// Flag of a connection placed by a persistence template (counted in the template's
/// `controls`).
const FLAG_CONTROLLED: u8 = 1 << 2;

/// The key of the template that placed connection `e`.
fn template_of(e: &shm_layout::conn::ConnEntry) -> Tuple {
    Tuple { proto: e.proto, src: e.caddr, sport: 0, dst: e.vaddr, dport: e.vport }
}

fn mode(e: &shm_layout::conn::ConnEntry) -> u8 {
    e.mode().map_or(0, |m| m as u8)
}

/// A Full-NAT service.
#[derive(Debug)]
pub struct Service {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
    pub scheduler: Scheduler,
    pub backends: Vec<Backend>,
    pub reals: Vec<Real>,
    pub laddrs: Vec<Ipv4Addr>,
    next_laddr: usize,
    next_lport: u16,
    /// This lcore hands out the local ports `p` with `p % lcores == slot`.
    lport_first: u16,
    lport_step: u16,
    /// The configuration it was built from (None: built by hand, in tests).
    pub def: Option<conf::Service>,
    /// Persistence timeout in ticks (0: none).
    persistence: u32,
    /// Its slot in the worker's service counter table (`usize::MAX`: none).
    stats_slot: usize,
    /// Each real server's slot in the worker's real-server counter table (parallel to
    /// `reals`; `usize::MAX`: none).
    real_slots: Vec<usize>,
    /// Each real server's connection thresholds on this lcore (its share of the configured
    /// ones; parallel to `reals`): overloaded at `upper`, taken back below `lower`.
    limits: Vec<Limits>,
    /// Clients whose new connections are refused (deny, allow lists).
    acl: Option<(Vec<conf::Prefix>, Vec<conf::Prefix>)>,
    /// The PROXY protocol header its Full-NAT TCP connections get (instead of TOA).
    pub proxy: conf::ProxyProtocol,
}

/// A real server's connection thresholds on one lcore (LVS's `u_threshold`/`l_threshold`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// 0: none.
    pub upper: u32,
    /// Overloaded until it has fewer connections than this.
    pub lower: u32,
}

impl Limits {
    /// This lcore's share (of `lcores`) of thresholds `upper` and `lower` (LVS: a lower of 0
    /// means three quarters of the upper).
    pub fn share(upper: u32, lower: u32, lcores: u16) -> Limits {
        if upper == 0 {
            return Limits::default();
        }
        let n = u32::from(lcores.max(1));
        let upper = upper.div_ceil(n);
        let lower = if lower == 0 { (upper * 3).div_ceil(4) } else { lower.div_ceil(n) };
        Limits { upper, lower }
    }

    /// Whether a real server with `conns` connections is overloaded after a new one.
    fn over(self, conns: u32) -> bool {
        self.upper > 0 && conns >= self.upper
    }

    /// Whether an overloaded real server with `conns` connections takes new ones again.
    fn relieved(self, conns: u32) -> bool {
        conns < self.lower.max(1)
    }
}

impl Service {
    /// A service; `backends` and `reals` are parallel. Local ports are handed out from this
    /// lcore's share: `p % lcores == slot`, so a reply's destination port names its lcore.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vip: Ipv4Addr,
        port: u16,
        proto: u8,
        scheduler: Scheduler,
        backends: Vec<Backend>,
        reals: Vec<Real>,
        laddrs: Vec<Ipv4Addr>,
        (slot, lcores): (u16, u16),
    ) -> Service {
        let lcores = lcores.max(1);
        let first = LPORT_MIN + (slot % lcores + lcores - LPORT_MIN % lcores) % lcores;
        Service {
            vip,
            port,
            proto,
            scheduler,
            backends,
            reals,
            laddrs,
            next_laddr: 0,
            next_lport: first,
            lport_first: first,
            lport_step: lcores,
            def: None,
            persistence: 0,
            stats_slot: usize::MAX,
            real_slots: Vec::new(),
            limits: Vec::new(),
            acl: None,
            proxy: conf::ProxyProtocol::Off,
        }
    }

    /// Connection thresholds per real server (parallel to `reals`); a real server at its
    /// upper threshold takes no new connection.
    pub fn with_limits(mut self, limits: Vec<Limits>) -> Service {
        self.limits = limits;
        self.refresh_availability();
        self
    }

    /// Which real servers can take new connections: resolved next hop, under the upper
    /// threshold (not the packet path).
    fn refresh_availability(&mut self) {
        for (i, b) in self.backends.iter_mut().enumerate() {
            let over = self.limits.get(i).is_some_and(|l| l.over(b.active_conns));
            b.available = self.reals.get(i).is_some_and(|r| r.resolved) && !over;
        }
    }

    /// Access lists: new connections from clients in `deny`, or not in a non-empty `allow`,
    /// are refused.
    pub fn with_acl(mut self, deny: Vec<conf::Prefix>, allow: Vec<conf::Prefix>) -> Service {
        self.acl = (!deny.is_empty() || !allow.is_empty()).then_some((deny, allow));
        self
    }

    /// Whether `client` may open a connection.
    #[inline]
    fn admits(&self, client: Ipv4Addr) -> bool {
        match &self.acl {
            None => true,
            Some((deny, allow)) => {
                !deny.iter().any(|p| p.contains(client))
                    && (allow.is_empty() || allow.iter().any(|p| p.contains(client)))
            }
        }
    }

    /// Whether it is the service `proto vip:port`.
    fn is(&self, proto: u8, vip: Ipv4Addr, port: u16) -> bool {
        self.proto == proto && self.vip == vip && self.port == port
    }
}

/// The services of a runtime configuration, with schedulers built over their real servers,
/// for the lcore `share = (slot, lcores)`. A service of `old` whose definition and real
/// servers' neighbours are unchanged is taken over as it is (scheduler position and
/// connection counts kept); a changed one is rebuilt, keeping the connection counts of the
/// real servers it still has.
///
/// # Errors
/// A real server without a neighbour entry, or a scheduler that cannot be built: the
/// primary validated the configuration, so only a mismatch of builds gets here.
pub fn build_services(
    rt: &conf::Runtime,
    share: (u16, u16),
    old: &mut Vec<Service>,
    learned: &crate::neigh::Hops,
) -> Result<Vec<Service>, String> {
    // Every real server needs a next hop on a port's network: checked before `old` is touched,
    // so that an error leaves it whole. (The primary checked it; only a mismatch of builds
    // gets here.)
    let hop = |addr: Ipv4Addr| {
        let h = rt.next_hop(addr)?;
        let a = rt.address_towards(h)?;
        Some((h, a.port as u16, a.addr))
    };
    if let Some(r) = rt.services.iter().flat_map(|s| &s.reals).find(|r| hop(r.addr).is_none()) {
        return Err(format!("no next hop on a port's network for real server {}", r.addr));
    }
    let mut out = Vec::with_capacity(rt.services.len());
    for def in &rt.services {
        let mut reals = Vec::with_capacity(def.reals.len());
        for r in &def.reals {
            let (h, port, src) = hop(r.addr).ok_or_else(|| format!("no next hop for real server {}", r.addr))?;
            // The next hop's MAC: a static neighbour entry, else what ARP taught (else
            // unknown for now: the real server waits for it).
            let fixed = rt.neighbours.iter().find(|n| n.addr == h).map(|n| (n.mac, n.port as u16));
            let known = fixed.or_else(|| learned.get(&h).copied());
            reals.push(Real {
                addr: r.addr,
                port: r.port,
                mac: EthernetAddress(known.map_or([0; 6], |k| k.0)),
                via: known.map_or(port, |k| k.1),
                forward: r.forward,
                hop_src: src,
                hop: h,
                learned: fixed.is_none(),
                resolved: known.is_some(),
            });
        }
        let proto = def.protocol.number();
        let prev = old.iter().position(|s| s.is(proto, def.vip, def.port)).map(|i| old.swap_remove(i));
        if prev.as_ref().is_some_and(|p| p.def.as_ref() == Some(def) && p.reals == reals) {
            out.extend(prev);
            continue;
        }
        let backends: Vec<Backend> = def
            .reals
            .iter()
            .map(|r| {
                let mut b = Backend::new(r.weight);
                if let Some(p) = prev.as_ref() {
                    if let Some(j) = p.reals.iter().position(|x| x.addr == r.addr && x.port == r.port) {
                        b.active_conns = p.backends[j].active_conns;
                    }
                }
                b
            })
            .collect();
        let ids: Vec<[u8; 18]> =
            def.reals.iter().map(|r| sched::identity(std::net::SocketAddr::from((r.addr, r.port)))).collect();
        let scheduler = Scheduler::with_ids(def.scheduler, &backends, &ids).map_err(|e| e.to_string())?;
        let limits = def.reals.iter().map(|r| Limits::share(r.upper, r.lower, share.1)).collect();
        let mut svc =
            Service::new(def.vip, def.port, proto, scheduler, backends, reals, def.local_addresses.clone(), share)
                .with_limits(limits)
                .with_acl(def.deny.clone(), def.allow.clone());
        svc.def = Some(def.clone());
        svc.persistence = ticks(def.persistence);
        svc.proxy = def.proxy_protocol;
        if let Some(p) = prev {
            // Go on handing out local addresses and ports where the old one stopped.
            svc.next_lport = p.next_lport;
            svc.next_laddr = if p.next_laddr < svc.laddrs.len() { p.next_laddr } else { 0 };
        }
        out.push(svc);
    }
    Ok(out)
}

/// The 5-tuple of an untagged IPv4 TCP or UDP frame with no IP options and no fragmentation,
/// read at fixed offsets with no other check: enough to prefetch its connection (the lookup
/// itself goes through the parser).
#[inline]
pub fn quick_tuple(f: &[u8]) -> Option<Tuple> {
    if f.len() < 38 || f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45 || f[20] & 0x3f != 0 || f[21] != 0 {
        return None;
    }
    let proto = f[23];
    if proto != 6 && proto != 17 {
        return None;
    }
    Some(Tuple {
        proto,
        src: v4([f[26], f[27], f[28], f[29]]),
        sport: u16::from_be_bytes([f[34], f[35]]),
        dst: v4([f[30], f[31], f[32], f[33]]),
        dport: u16::from_be_bytes([f[36], f[37]]),
    })
}

/// Which lcore (of `lcores`) owns the connection of a packet: replies to a local address by
/// their destination port (each lcore hands out its own share of local ports), packets to a
/// service by a hash of their 5-tuple (so one client flow always meets one lcore, whatever
/// queue it arrives on), and the replies of a NAT real server by the client they go to.
/// `None`: not traffic of a service, or a single lcore.
pub fn owner(index: &Index, lcores: u16, p: &Parsed) -> Option<u16> {
    let ip = p.ipv4?;
    if ip.is_fragment || p.vlan_count != 0 || lcores <= 1 {
        return None;
    }
    let (proto, sport, dport) = match ip.l4 {
        L4::Tcp { src_port, dst_port, .. } => (6u8, src_port, dst_port),
        L4::Udp { src_port, dst_port } => (17u8, src_port, dst_port),
        _ => return None,
    };
    // Client flows are owned by their client's address and port, so that the replies of a NAT
    // real server (to the client) find the same owner as the client's packets.
    let by_client = |addr: Ipv4Addr, port: u16| (flow_hash(u32::from(addr), port, proto) % u64::from(lcores)) as u16;
    // A persistent service's clients are owned by their address alone: the lcore that holds a
    // client's template sees all its connections.
    if let Some((_, persistent)) = index.lookup(proto, ip.dst_addr, dport) {
        return Some(by_client(ip.src_addr, if persistent { 0 } else { sport }));
    }
    if index.is_laddr(proto, ip.dst_addr) {
        return Some(dport % lcores);
    }
    if let Some(persistent) = index.nat_real(proto, ip.src_addr, sport) {
        return Some(by_client(ip.dst_addr, if persistent { 0 } else { dport }));
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

/// The Full-NAT state of one lcore.
pub struct Fnat<'a> {
    services: Vec<Service>,
    /// Lookups over `services`.
    index: Index,
    shard: Shard<'a>,
    /// MAC of every port slot.
    port_macs: Vec<EthernetAddress>,
    now_tick: u64,
    /// Configuration generation of `services` (connection entries cache their service and
    /// real server indices per generation).
    generation: u64,
    /// This worker's per-service counters in shared memory (empty: not counted).
    stats: &'a [shm_layout::ServiceCounters],
    /// This worker's per-real-server counters in shared memory (empty: not counted).
    real_stats: &'a [shm_layout::RealCounters],
    /// Identification of the last outer IPv4 header it built (IP-in-IP).
    ip_id: u16,
    /// MTU of every port slot.
    mtus: Vec<u16>,
    /// Templates whose connections expired in this [`Fnat::advance`] (reserved once).
    unlinks: Vec<Tuple>,
    /// This worker's table of learned neighbours in shared memory and the epoch to bump when
    /// it changes (None: nothing is learned).
    neigh: Option<(&'a [shm_layout::LearnedNeighbour], &'a std::sync::atomic::AtomicU64)>,
    /// The next hops ARP resolves, and whether each is resolved ([`Fnat::wanted`]).
    wants: Vec<(crate::neigh::Want, bool)>,
}

impl std::fmt::Debug for Fnat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fnat").field("services", &self.services.len()).field("shard", &self.shard).finish()
    }
}

fn ticks(seconds: u32) -> u32 {
    (u64::from(seconds) * 1_000_000_000 / TICK_NS) as u32
}

fn addr4(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[12], a[13], a[14], a[15])
}

impl<'a> Fnat<'a> {
    /// Full-NAT over `services`, with connections in `shard`.
    /// Connections adopted from the shard count towards their real servers' active
    /// connections (lc, wlc), and the clock starts at `now_ns`.
    pub fn new(services: Vec<Service>, shard: Shard<'a>, port_macs: Vec<EthernetAddress>, now_ns: u64) -> Fnat<'a> {
        let index = Index::build(&services);
        let mut f = Fnat {
            services,
            index,
            shard,
            port_macs,
            now_tick: now_ns / TICK_NS,
            generation: 0,
            stats: &[],
            real_stats: &[],
            ip_id: 0,
            mtus: Vec::new(),
            unlinks: Vec::new(),
            neigh: None,
            wants: Vec::new(),
        };
        for idx in 0..f.shard.capacity() {
            let e = f.shard.entry(idx);
            if e.flags & 1 == 0 || mode(e) == MODE_TEMPLATE {
                continue;
            }
            if let Some((s, r)) = resolve(&f.services, e) {
                f.services[s].backends[r].active_conns += 1;
            }
        }
        for s in &mut f.services {
            s.refresh_availability();
        }
        f.list_wants();
        f
    }

    /// Switches to configuration generation `generation` with `services` (built by
    /// [`build_services`] from the current ones). Connections of a service or real server
    /// that is gone expire on their next packet.
    pub fn reconfigure(&mut self, generation: u64, mut services: Vec<Service>) {
        self.index = Index::build(&services);
        assign_stats_slots(self.stats, &mut services);
        assign_real_slots(self.real_stats, &mut services);
        self.services = services;
        self.generation = generation;
        self.list_wants();
    }

    /// The MTU of every port slot (packets bigger than the out port's are answered with ICMP
    /// fragmentation needed, or dropped without DF).
    pub fn with_mtus(mut self, mtus: Vec<u16>) -> Fnat<'a> {
        self.mtus = mtus;
        self
    }

    /// The MTU of port slot `port`.
    #[inline]
    fn mtu(&self, port: u16) -> usize {
        self.mtus.get(usize::from(port)).map_or(DEFAULT_MTU, |&m| usize::from(m))
    }

    /// Counts per service into `table` and per real server into `reals` (this worker's tables
    /// in shared memory) from the next [`Fnat::reconfigure`] on.
    pub fn with_stats(
        mut self,
        table: &'a [shm_layout::ServiceCounters],
        reals: &'a [shm_layout::RealCounters],
    ) -> Fnat<'a> {
        self.stats = table;
        self.real_stats = reals;
        self
    }

    /// Counts a packet of `len` bytes of real server `ri` of service `si`, client side (`dir`
    /// In) or server side.
    #[inline]
    fn count(&self, si: usize, ri: usize, dir: Dir, len: u64) {
        let Some(s) = self.services.get(si) else { return };
        let bump = |p: &std::sync::atomic::AtomicU64, b: &std::sync::atomic::AtomicU64| {
            LcoreCounters::bump(p, 1);
            LcoreCounters::bump(b, len);
        };
        if let Some(c) = self.stats.get(s.stats_slot) {
            match dir {
                Dir::In => bump(&c.in_packets, &c.in_bytes),
                Dir::Out => bump(&c.out_packets, &c.out_bytes),
            }
        }
        if let Some(c) = s.real_slots.get(ri).and_then(|&i| self.real_stats.get(i)) {
            match dir {
                Dir::In => bump(&c.in_packets, &c.in_bytes),
                Dir::Out => bump(&c.out_packets, &c.out_bytes),
            }
        }
    }

    /// Zeroes this worker's counters of the service with key `key` (all services: 0) and of
    /// its real servers (`ipvsadm -Z`). This worker is their only writer.
    pub fn zero_counters(&mut self, key: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        for c in self.stats.iter().filter(|c| c.key.load(Relaxed) != 0 && (key == 0 || c.key.load(Relaxed) == key)) {
            c.zero();
        }
        let reals = self.real_stats.iter();
        for c in reals.filter(|c| c.service.load(Relaxed) != 0 && (key == 0 || c.service.load(Relaxed) == key)) {
            c.zero();
        }
    }

    /// Fills in the MACs of the real servers whose next hop ARP resolves, from `hops` (every
    /// worker's learned neighbours); a next hop no longer known leaves its real servers
    /// unresolved. Not the packet path.
    pub fn resolve(&mut self, hops: &crate::neigh::Hops) {
        for s in &mut self.services {
            let mut changed = false;
            for r in s.reals.iter_mut().filter(|r| r.learned) {
                let known = hops.get(&r.hop).copied();
                let (mac, via, resolved) = known.map_or((r.mac, r.via, false), |(m, p)| (EthernetAddress(m), p, true));
                if (mac, via, resolved) != (r.mac, r.via, r.resolved) {
                    (r.mac, r.via, r.resolved) = (mac, via, resolved);
                    changed = true;
                }
            }
            if changed {
                s.refresh_availability();
            }
        }
        self.list_wants();
    }

    /// The next hops of the real servers that ARP resolves (each once), and whether each is
    /// resolved now.
    pub fn wanted(&self) -> &[(crate::neigh::Want, bool)] {
        &self.wants
    }

    /// Lists the next hops ARP resolves again (after the services or their MACs changed),
    /// sorted by address.
    fn list_wants(&mut self) {
        self.wants.clear();
        for r in self.services.iter().flat_map(|s| &s.reals).filter(|r| r.learned) {
            self.wants.push((crate::neigh::Want { hop: r.hop, port: r.via, src: r.hop_src }, r.resolved));
        }
        self.wants.sort_unstable_by_key(|(w, _)| u32::from(w.hop));
        self.wants.dedup_by_key(|(w, _)| w.hop);
    }

    /// An ARP request or reply from `addr` at `mac`, received on port slot `port`: learned
    /// into this worker's table when `addr` is a next hop ARP resolves, reached on that port.
    /// Returns whether the table changed (the worker then resolves again).
    pub fn learn(&mut self, port: u16, addr: Ipv4Addr, mac: EthernetAddress) -> bool {
        let Some((table, epoch)) = self.neigh else { return false };
        if mac.0 == [0; 6] || mac.0[0] & 1 != 0 {
            return false;
        }
        // A binary search: ARP frames may come fast, and only wanted next hops are learned.
        let wanted = self
            .wants
            .binary_search_by_key(&u32::from(addr), |(w, _)| u32::from(w.hop))
            .is_ok_and(|i| self.wants[i].0.port == port);
        wanted && crate::neigh::learn(table, epoch, addr, port, mac.0, self.now_tick * TICK_NS)
    }

    /// Learns neighbours into `table` (this worker's in shared memory), bumping `epoch` on a
    /// change.
    pub fn with_neighbours(
        mut self,
        table: &'a [shm_layout::LearnedNeighbour],
        epoch: &'a std::sync::atomic::AtomicU64,
    ) -> Fnat<'a> {
        self.neigh = Some((table, epoch));
        self
    }

    /// Takes the services out (to rebuild them), leaving none.
    pub fn take_services(&mut self) -> Vec<Service> {
        self.index = Index::default();
        std::mem::take(&mut self.services)
    }

    /// The lookups over the services.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The configuration generation it runs with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The (service, real server) indices of entry `idx` in the current generation, resolved
    /// again (and cached in the entry) when it was last resolved in another one. `None`: the
    /// service or the real server is gone.
    fn indices(&mut self, idx: u32) -> Option<(usize, usize)> {
        let e = self.shard.entry(idx);
        if e.cfg_gen == self.generation && self.generation != 0 {
            return Some((e.service as usize, e.real as usize));
        }
        let (s, r) = resolve(&self.services, e)?;
        let em = self.shard.entry_mut(idx);
        em.service = s as u32;
        em.real = r as u32;
        em.cfg_gen = self.generation;
        Some((s, r))
    }

    /// Moves its clock to `now_ns` without expiring anything: a successor that waited (a hot
    /// standby) before it polls, so that what it stamps (learned neighbours) is not old.
    pub fn set_clock(&mut self, now_ns: u64) {
        self.now_tick = self.now_tick.max(now_ns / TICK_NS);
    }

    /// Advances the clock to `now_ns` and expires due connections (at most `budget` entries
    /// looked at). Returns how many expired.
    pub fn advance(&mut self, now_ns: u64, budget: usize) -> usize {
        self.now_tick = now_ns / TICK_NS;
        let now_tick = self.now_tick;
        if self.unlinks.capacity() < budget.min(1 << 16) {
            // Not the packet path: the first call, or a larger budget than before.
            self.unlinks.reserve(budget.min(1 << 16));
        }
        let services = &mut self.services;
        let unlinks = &mut self.unlinks;
        let generation = self.generation;
        let expired = self.shard.advance_renewing(now_tick, budget, |_, e| {
            if mode(e) == MODE_TEMPLATE {
                // A template lives on while connections it placed do (LVS), as long as its
                // service is still persistent.
                if e.controls == 0 {
                    return None;
                }
                let p = services.iter().find(|s| s.is(e.proto, addr4(&e.vaddr), e.vport))?.persistence;
                return (p > 0).then(|| now_tick + u64::from(p));
            }
            if e.flags & FLAG_CONTROLLED != 0 && unlinks.len() < unlinks.capacity() {
                unlinks.push(template_of(e));
            }
            let at = if e.cfg_gen == generation && generation != 0 {
                Some((e.service as usize, e.real as usize))
            } else {
                resolve(services, e)
            };
            let (s, r) = at?;
            let svc = services.get_mut(s)?;
            let limits = svc.limits.get(r).copied().unwrap_or_default();
            let resolved = svc.reals.get(r).is_some_and(|x| x.resolved);
            if let Some(b) = svc.backends.get_mut(r) {
                b.active_conns = b.active_conns.saturating_sub(1);
                if !b.available && resolved && limits.relieved(b.active_conns) {
                    b.available = true;
                }
            }
            None
        });
        while let Some(t) = self.unlinks.pop() {
            self.unlink(&t);
        }
        expired
    }

    /// One connection the template `t` placed is gone.
    fn unlink(&mut self, t: &Tuple) {
        if let Some((tidx, _)) = self.shard.lookup(t) {
            let e = self.shard.entry_mut(tidx);
            if mode(e) == MODE_TEMPLATE {
                e.controls = e.controls.saturating_sub(1);
            }
        }
    }

    /// The connection table.
    pub fn shard(&self) -> &Shard<'a> {
        &self.shard
    }

    /// The services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Handles a frame received on `rx_port` whose headers `p` describes; `hint`: its tuple
    /// hashed ahead (see [`crate::pipeline::Pipeline::prefetch`]), used if it is this packet's.
    pub fn process<F: Frame>(&mut self, rx_port: u16, buf: &mut F, p: &Parsed, hint: Option<Hashed>) -> Verdict {
        let frame = buf.bytes();
        let Some(ip) = p.ipv4 else { return Verdict::NotOurs };
        if ip.is_fragment || p.vlan_count != 0 {
            return Verdict::NotOurs;
        }
        let (proto, sport, dport, flags) = match ip.l4 {
            L4::Tcp { src_port, dst_port, flags, .. } => (6u8, src_port, dst_port, Some(flags)),
            L4::Udp { src_port, dst_port } => (17u8, src_port, dst_port, None),
            _ => return Verdict::NotOurs,
        };
        let t = Tuple { proto, src: v4(ip.src_addr.octets()), sport, dst: v4(ip.dst_addr.octets()), dport };
        let l3 = usize::from(p.l3_offset);
        let l4 = usize::from(ip.l4_offset);
        let h = match hint {
            Some(h) if *h.tuple() == t => h,
            _ => self.shard.hashed(t),
        };
        let mut found = self.shard.lookup_hashed(&h);
        if let Some((idx, _)) = found {
            if self.indices(idx).is_none() {
                // Its service or real server was removed: the connection expires now, and the
                // packet is treated as the first of a new one.
                let e = *self.shard.entry(idx);
                self.shard.remove(idx);
                if e.flags & FLAG_CONTROLLED != 0 {
                    self.unlink(&template_of(&e));
                }
                found = None;
            }
        }
        let (idx, dir, new) = match found {
            Some((idx, dir)) => (idx, dir, false),
            None => match self.create(
                rx_port,
                frame,
                &t,
                flags.map(|f| (f, TcpPacket::new_unchecked(&frame[l4..]).seq_number())),
            ) {
                Ok(Some(idx)) => (idx, Dir::In, true),
                // A reply to a local address with no connection (expired, or never ours):
                // nothing to translate it to.
                Ok(None) if self.index.is_laddr(proto, ip.dst_addr) => return Verdict::Drop(FnatDrop::NoConnection),
                Ok(None) => return Verdict::NotOurs,
                Err(d) => return Verdict::Drop(d),
            },
        };
        // Read in place: a copy of all 192 bytes would wait for the stores of the flow's last
        // packet (its counters) to land, and cost a quarter of the packet's time.
        let e = self.shard.entry(idx);
        if mode(e) == MODE_TEMPLATE {
            // Port 0: a crafted packet that met a template's key.
            return Verdict::Drop(FnatDrop::NoConnection);
        }
        // Too big for the port it leaves by (with the IP-in-IP header, if it gets one): a router
        // answers "fragmentation needed" when DF is set; this one does not fragment otherwise.
        if dir == Dir::In || mode(e) == MODE_FNAT || mode(e) == MODE_NAT {
            let out = if dir == Dir::In {
                self.services[e.service as usize].reals[e.real as usize].via
            } else {
                e.client_port
            };
            let grow = match mode(e) {
                MODE_TUNNEL => TUNNEL_HEADER_LEN,
                // A UDP flow's datagrams to a PROXY protocol real server carry the header.
                MODE_FNAT if dir == Dir::In && flags.is_none() => usize::from(e.pp_len),
                _ => 0,
            };
            let mtu = self.mtu(out);
            if usize::from(ip.total_len) + grow > mtu {
                let df = Ipv4Packet::new_unchecked(&buf.bytes()[l3..]).dont_frag();
                return if df {
                    Verdict::FragNeeded { mtu: (mtu - grow) as u16 }
                } else {
                    Verdict::Drop(FnatDrop::TooBig)
                };
            }
        }
        if mode(e) == MODE_DR {
            let hit = Hit::of(e);
            return self.direct_route(idx, hit, dir, buf.bytes(), flags, new);
        }
        if mode(e) == MODE_TUNNEL {
            let hit = Hit::of(e);
            return self.tunnel(idx, hit, dir, buf, l3, flags, new);
        }
        // Full-NAT and NAT route the packet: its TTL goes down by one, and one that would reach
        // zero is answered with ICMP time exceeded, as a router does.
        let ttl = Ipv4Packet::new_unchecked(&frame[l3..]).ttl();
        if ttl <= 1 {
            return Verdict::TimeExceeded;
        }
        {
            let mut ipk = Ipv4Packet::new_unchecked(&mut frame[l3..]);
            let c = checksum::update_u16(ipk.checksum(), u16::from(ttl) << 8, u16::from(ttl - 1) << 8);
            ipk.set_ttl(ttl - 1);
            ipk.set_checksum(c);
        }
        // Rewrite: addresses, ports, checksums, MACs.
        let (src, dst, sp, dp, out_port, dst_mac) = match dir {
            Dir::In => {
                // Resolved for this generation above (or just created in it).
                let real = self.services[e.service as usize].reals[e.real as usize];
                (addr4(&e.laddr), addr4(&e.raddr), e.lport, e.rport, real.via, real.mac)
            }
            Dir::Out => {
                (addr4(&e.vaddr), addr4(&e.caddr), e.vport, e.cport, e.client_port, EthernetAddress(e.client_mac))
            }
        };
        rewrite(frame, l3, l4, proto, (src, dst, sp, dp));
        let old_state = State::from_u8(e.state);
        if let (Some(f), true, true) = (flags, mode(e) == MODE_FNAT, e.pp_len > 0) {
            // The PROXY protocol header instead of TOA.
            match dir {
                Dir::In => {
                    // The header the connection started with (the service may have changed
                    // version since).
                    let version = if e.pp_version == 1 { conf::ProxyProtocol::V1 } else { conf::ProxyProtocol::V2 };
                    let mut hdr = [0u8; crate::proxy::MAX_LEN];
                    let n =
                        crate::proxy::header(version, (addr4(&e.caddr), e.cport), (addr4(&e.vaddr), e.vport), &mut hdr);
                    if n != usize::from(e.pp_len) || !crate::proxy::inbound(buf, l3, l4, e.pp_seq, &hdr[..n]) {
                        return Verdict::Drop(FnatDrop::NoResource);
                    }
                }
                Dir::Out => {
                    crate::proxy::outbound(frame, l4, e.pp_seq, u32::from(e.pp_len));
                    if f.contains(TcpFlags::SYN | TcpFlags::ACK) {
                        shrink_mss(frame, l4, e.pp_len);
                    }
                }
            }
        } else if let (None, true, true, Dir::In) = (flags, mode(e) == MODE_FNAT, e.pp_len > 0, dir) {
            // A UDP flow's datagram: the version 2 header in front of its payload.
            if !crate::proxy::datagram(buf, l3, l4, (addr4(&e.caddr), e.cport), (addr4(&e.vaddr), e.vport)) {
                return Verdict::Drop(FnatDrop::NoResource);
            }
        } else if let (Some(f), true) = (flags, mode(e) == MODE_FNAT) {
            match dir {
                // The handshake's last ACK carries the client's address to the real server.
                Dir::In
                    if old_state == State::SynRecv
                        && f.contains(TcpFlags::ACK)
                        && !f.intersects(TcpFlags::SYN | TcpFlags::RST) =>
                {
                    insert_toa(buf, l3, l4, (addr4(&e.caddr), e.cport), self.mtu(out_port));
                }
                // Leave the client room for the option in its segments.
                Dir::Out if f.contains(TcpFlags::SYN | TcpFlags::ACK) => shrink_mss(frame, l4, TOA_LEN as u16),
                _ => {}
            }
        }
        let frame = buf.bytes();
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        eth.set_dst_addr(dst_mac);
        eth.set_src_addr(self.port_macs[usize::from(out_port)]);
        // State, timeout and counters.
        let d = dir as usize;
        let len = frame.len() as u64;
        let now = self.now_tick;
        let way = if dir == Dir::In { Way::In } else { Way::Out };
        let (state, timeout) = track(old_state, flags, way);
        let (service, real) = (e.service as usize, e.real as usize);
        let em = self.shard.entry_mut(idx);
        em.state = state as u8;
        em.packets[d] += 1;
        em.bytes[d] += len;
        self.shard.set_timeout(idx, now, ticks(timeout));
        self.count(service, real, dir, len);
        Verdict::Out { port: out_port, dir, new }
    }

    /// A new connection for a service, if the packet is for one. `Ok(None)`: not a service.
    fn create(
        &mut self,
        rx_port: u16,
        frame: &[u8],
        t: &Tuple,
        tcp: Option<(TcpFlags, u32)>,
    ) -> Result<Option<u32>, FnatDrop> {
        let flags = tcp.map(|(f, _)| f);
        let (vip, vport) = (addr4(&t.dst), t.dport);
        let Some(si) = self.index.service(t.proto, vip, vport) else {
            return Ok(None);
        };
        if let Some(f) = flags {
            if !f.contains(TcpFlags::SYN) || f.contains(TcpFlags::ACK) || f.contains(TcpFlags::RST) {
                return Err(FnatDrop::NoConnection);
            }
        }
        let client = addr4(&t.src);
        if !self.services[si].admits(client) {
            return Err(FnatDrop::Denied);
        }
        let key = FlowKey {
            src: IpAddr::V4(client),
            dst: IpAddr::V4(vip),
            src_port: t.sport,
            dst_port: t.dport,
            proto: t.proto,
        };
        let placed = match self.services[si].persistence {
            0 => None,
            p => self.persistent_real(si, t, p),
        };
        let svc = &mut self.services[si];
        let (ri, template) = match placed {
            Some((ri, tidx)) => (ri, Some(tidx)),
            None => {
                let Some(ri) = svc.scheduler.pick(&svc.backends, &key) else {
                    // Weight 0 is quiescent and an unresolved next hop unknown: not overloaded.
                    let over =
                        svc.backends.iter().zip(&svc.reals).any(|(b, r)| b.weight > 0 && r.resolved && !b.available);
                    return Err(if over { FnatDrop::Overloaded } else { FnatDrop::NoReal });
                };
                let template = if svc.persistence > 0 { self.new_template(si, ri, t) } else { None };
                (ri, template)
            }
        };
        let svc = &mut self.services[si];
        let real = svc.reals[ri];
        let mut client_mac = [0u8; 6];
        client_mac.copy_from_slice(&frame[6..12]);
        let state = if flags.is_some() { State::None } else { State::Established };
        let client_side = match real.forward {
            conf::Forward::Fnat => None,
            // Direct routing: the client's tuple on both sides (the real server has the VIP).
            conf::Forward::Dr => Some(Mode::Dr),
            // NAT: the real server sees the client; its replies (routed through the balancer)
            // are the outbound side, to the client.
            conf::Forward::Nat => Some(Mode::Nat),
            // IP-in-IP: like direct routing, the replies do not cross the balancer.
            conf::Forward::Tunnel => Some(Mode::Tunnel),
        };
        if let Some(mode) = client_side {
            let c = new_conn(t, (t.src, t.sport), &real, (state, mode), (si, ri), (client_mac, rx_port));
            return self.insert(&c, si, ri, template).map(Some);
        }
        if svc.laddrs.is_empty() {
            // A service being set up (`ipvsadm -A`, `-a`, then `--add-laddr`).
            return Err(FnatDrop::NoResource);
        }
        // A local address and port whose outbound tuple is free.
        let mut chosen = None;
        for _ in 0..LPORT_TRIES {
            // Every local address with one port, then the next port: all pairs get used.
            let laddr = svc.laddrs[svc.next_laddr];
            let lport = svc.next_lport;
            svc.next_laddr += 1;
            if svc.next_laddr == svc.laddrs.len() {
                svc.next_laddr = 0;
                svc.next_lport = lport.checked_add(svc.lport_step).unwrap_or(svc.lport_first);
            }
            let out = Tuple {
                proto: t.proto,
                src: v4(real.addr.octets()),
                sport: real.port,
                dst: v4(laddr.octets()),
                dport: lport,
            };
            if self.shard.lookup(&out).is_none() {
                chosen = Some((laddr, lport));
                break;
            }
        }
        let (laddr, lport) = chosen.ok_or(FnatDrop::NoResource)?;
        let c =
            new_conn(t, (v4(laddr.octets()), lport), &real, (state, Mode::FullNat), (si, ri), (client_mac, rx_port));
        let proxy = self.services[si].proxy;
        let idx = self.insert(&c, si, ri, template)?;
        match (tcp, proxy) {
            (_, conf::ProxyProtocol::Off) => {}
            (Some((_, syn_seq)), _) => {
                let mut hdr = [0u8; crate::proxy::MAX_LEN];
                let len = crate::proxy::header(proxy, (client, t.sport), (vip, vport), &mut hdr);
                let e = self.shard.entry_mut(idx);
                e.pp_seq = syn_seq.wrapping_add(1);
                e.pp_len = len as u16;
                e.pp_version = if proxy == conf::ProxyProtocol::V1 { 1 } else { 2 };
            }
            // UDP (version 2 only, by the configuration's rules): every datagram gets it.
            (None, _) => {
                let e = self.shard.entry_mut(idx);
                e.pp_len = crate::proxy::V2_LEN as u16;
                e.pp_version = 2;
            }
        }
        Ok(Some(idx))
    }

    /// The real server the template of client `t.src` names for persistent service `si`, if
    /// there is one and the real server still exists; the template's life starts again.
    fn persistent_real(&mut self, si: usize, t: &Tuple, persistence: u32) -> Option<(usize, u32)> {
        let (tidx, _) = self.shard.lookup(&template_tuple(t))?;
        let e = *self.shard.entry(tidx);
        if mode(&e) != MODE_TEMPLATE {
            return None;
        }
        let raddr = addr4(&e.raddr);
        let Some(ri) = self.services[si].reals.iter().position(|r| r.addr == raddr && r.port == e.rport) else {
            // Its real server is gone: a new template follows the scheduler's pick.
            self.shard.remove(tidx);
            return None;
        };
        self.shard.set_timeout(tidx, self.now_tick, persistence);
        Some((ri, tidx))
    }

    /// Files the template that sends client `t.src`'s next connections to service `si` to
    /// real server `ri` (best effort: a full table leaves the client without persistence).
    fn new_template(&mut self, si: usize, ri: usize, t: &Tuple) -> Option<u32> {
        let real = self.services[si].reals[ri];
        let tt = template_tuple(t);
        // Its outbound side (real -> client:0) matches no packet either.
        let c = new_conn(&tt, (tt.src, 0), &real, (State::None, Mode::Template), (si, ri), ([0; 6], 0));
        let idx = self.shard.insert(&c, self.now_tick, self.services[si].persistence).ok()?;
        self.shard.entry_mut(idx).cfg_gen = self.generation;
        Some(idx)
    }

    /// Files a new connection of real server `ri` of service `si`, placed by the persistence
    /// template at `template` if any.
    fn insert(&mut self, c: &NewConn, si: usize, ri: usize, template: Option<u32>) -> Result<u32, FnatDrop> {
        let idx = self
            .shard
            .insert(c, self.now_tick, ticks(State::SynRecv.default_timeout_s()))
            .map_err(|_| FnatDrop::NoResource)?;
        self.shard.entry_mut(idx).cfg_gen = self.generation;
        if let Some(t) = template {
            self.shard.entry_mut(t).controls += 1;
            self.shard.entry_mut(idx).flags |= FLAG_CONTROLLED;
        }
        let svc = &mut self.services[si];
        let b = &mut svc.backends[ri];
        b.active_conns += 1;
        if svc.limits.get(ri).is_some_and(|l| l.over(b.active_conns)) {
            b.available = false;
        }
        if let Some(c) = self.stats.get(svc.stats_slot) {
            LcoreCounters::bump(&c.conns, 1);
        }
        if let Some(c) = svc.real_slots.get(ri).and_then(|&i| self.real_stats.get(i)) {
            LcoreCounters::bump(&c.conns, 1);
        }
        Ok(idx)
    }

    /// A packet of a direct-routing connection: only its MACs change (to the real server's,
    /// from the port that reaches it); the state follows LVS's inbound-only table, since the
    /// replies do not cross the balancer.
    fn direct_route(
        &mut self,
        idx: u32,
        e: Hit,
        dir: Dir,
        frame: &mut [u8],
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        if dir != Dir::In {
            // From the real server's own address to the client: not this connection's
            // traffic (its replies come from the VIP and never need the balancer).
            return Verdict::NotOurs;
        }
        self.send_inbound_only(idx, e, frame, flags, new)
    }

    /// Sends an inbound packet of an inbound-only connection (direct routing, IP-in-IP) to
    /// its real server's next hop, and accounts for it: LVS's inbound-only state table, the
    /// entry's and the counters' packets and bytes, the timeout.
    fn send_inbound_only(&mut self, idx: u32, e: Hit, frame: &mut [u8], flags: Option<TcpFlags>, new: bool) -> Verdict {
        let real = self.services[e.service].reals[e.real];
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        eth.set_dst_addr(real.mac);
        eth.set_src_addr(self.port_macs[usize::from(real.via)]);
        let (state, timeout) = track(State::from_u8(e.state), flags, Way::InOnly);
        let len = frame.len() as u64;
        let em = self.shard.entry_mut(idx);
        em.state = state as u8;
        em.packets[0] += 1;
        em.bytes[0] += len;
        self.shard.set_timeout(idx, self.now_tick, ticks(timeout));
        self.count(e.service, e.real, Dir::In, len);
        Verdict::Out { port: real.via, dir: Dir::In, new }
    }
    /// A packet of an IP-in-IP connection: encapsulated whole in an IPv4 header from the
    /// balancer's address to the real server (TOS, TTL and DF copied from the packet, as LVS
    /// does), sent to the next hop's MAC. Inbound only: the real server answers the client
    /// directly.
    #[allow(clippy::too_many_arguments)]
    fn tunnel<F: Frame>(
        &mut self,
        idx: u32,
        e: Hit,
        dir: Dir,
        buf: &mut F,
        l3: usize,
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        if dir != Dir::In {
            return Verdict::NotOurs;
        }
        let real = self.services[e.service].reals[e.real];
        let (len, tos, ttl, df) = {
            let ip = Ipv4Packet::new_unchecked(&buf.bytes()[l3..]);
            (usize::from(ip.total_len()), ip.tos(), ip.ttl(), ip.dont_frag())
        };
        // (Its size was checked against the port's MTU with the outer header.)
        // Ethernet padding after the packet does not go into the tunnel.
        buf.truncate(l3 + len);
        if !buf.insert(l3, TUNNEL_HEADER_LEN) {
            return Verdict::Drop(FnatDrop::NoResource);
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let outer = wire::Ipv4Repr {
            src_addr: real.hop_src,
            dst_addr: real.addr,
            protocol: IpProtocol::IpIp,
            payload_len: len,
            ttl,
            tos,
            ident: self.ip_id,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
        };
        let frame = buf.bytes();
        outer.emit(&mut Ipv4Packet::new_unchecked(&mut frame[l3..]));
        Ipv4Packet::new_unchecked(&mut frame[l3..]).fill_checksum();
        self.send_inbound_only(idx, e, frame, flags, new)
    }
}

/// What an inbound-only connection's packet needs of its entry: a few words read out of it,
/// rather than a copy of all 192 bytes (whose last packet's counter stores a wide copy would
/// wait for).
#[derive(Debug, Clone, Copy)]
struct Hit {
    service: usize,
    real: usize,
    state: u8,
}

impl Hit {
    fn of(e: &shm_layout::conn::ConnEntry) -> Hit {
        Hit { service: e.service as usize, real: e.real as usize, state: e.state }
    }
}

/// Gives every service its slot in `table` by key (protocol, VIP, port): the slot it had, or a
/// free one; slots of services that are gone are zeroed and freed. Not the packet path.
fn assign_stats_slots(table: &[shm_layout::ServiceCounters], services: &mut [Service]) {
    use std::sync::atomic::Ordering::Relaxed;
    if table.is_empty() {
        return;
    }
    let keys: Vec<u64> =
        services.iter().map(|s| shm_layout::ServiceCounters::key_of(s.proto, s.vip.octets(), s.port)).collect();
    for c in table {
        let k = c.key.load(Relaxed);
        if k != 0 && !keys.contains(&k) {
            c.zero();
            c.key.store(0, std::sync::atomic::Ordering::Release);
        }
    }
    for (s, key) in services.iter_mut().zip(keys) {
        s.stats_slot = match table.iter().position(|c| c.key.load(Relaxed) == key) {
            Some(i) => i,
            None => match table.iter().position(|c| c.key.load(Relaxed) == 0) {
                Some(i) => {
                    table[i].key.store(key, std::sync::atomic::Ordering::Release);
                    i
                }
                None => usize::MAX,
            },
        };
    }
}

/// Gives every real server of every service its slot in `table` by key (service, address,
/// port): the slot it had, or a free one while there are any; slots of real servers that are
/// gone are zeroed and freed. Not the packet path.
fn assign_real_slots(table: &[shm_layout::RealCounters], services: &mut [Service]) {
    use std::sync::atomic::Ordering::{Relaxed, Release};
    if table.is_empty() {
        return;
    }
    let keys: Vec<Vec<(u64, u64)>> = services
        .iter()
        .map(|s| {
            let sk = shm_layout::ServiceCounters::key_of(s.proto, s.vip.octets(), s.port);
            s.reals.iter().map(|r| (sk, shm_layout::RealCounters::key_of(r.addr.octets(), r.port))).collect()
        })
        .collect();
    let live: std::collections::HashSet<(u64, u64)> = keys.iter().flatten().copied().collect();
    let mut slots: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    let mut free = Vec::new();
    for (i, c) in table.iter().enumerate() {
        let k = (c.service.load(Relaxed), c.real.load(Relaxed));
        if k.0 == 0 {
            free.push(i);
        } else if !live.contains(&k) {
            c.zero();
            c.service.store(0, Release);
            free.push(i);
        } else {
            slots.insert(k, i);
        }
    }
    free.reverse();
    for (s, keys) in services.iter_mut().zip(keys) {
        s.real_slots = keys
            .iter()
            .map(|k| match slots.get(k) {
                Some(&i) => i,
                None => match free.pop() {
                    Some(i) => {
                        table[i].real.store(k.1, Relaxed);
                        table[i].service.store(k.0, Release);
                        slots.insert(*k, i);
                        i
                    }
                    None => usize::MAX,
                },
            })
            .collect();
    }
}

/// The key of a persistence template: the client's address, port 0, and the service.
fn template_tuple(t: &Tuple) -> Tuple {
    Tuple { proto: t.proto, src: t.src, sport: 0, dst: t.dst, dport: t.dport }
}

/// A new connection of client tuple `t` (client -> VIP) to `real`, whose outbound side is
/// `real -> local` (Full-NAT: a local address and port; direct routing: the client itself).
fn new_conn(
    t: &Tuple,
    local: ([u8; 16], u16),
    real: &Real,
    (state, mode): (State, Mode),
    (si, ri): (usize, usize),
    (client_mac, client_port): ([u8; 6], u16),
) -> NewConn {
    NewConn {
        proto: t.proto,
        caddr: t.src,
        cport: t.sport,
        vaddr: t.dst,
        vport: t.dport,
        laddr: local.0,
        lport: local.1,
        raddr: v4(real.addr.octets()),
        rport: real.port,
        state: state as u8,
        mode,
        service: si as u32,
        real: ri as u32,
        client_mac,
        client_port,
    }
}

/// The new TCP state of a connection in `old` after a segment with `flags` going `way`, and
/// the timeout it gets; UDP (no flags): the UDP timeout.
fn track(old: State, flags: Option<TcpFlags>, way: Way) -> (State, u32) {
    match flags {
        Some(f) => {
            let ev = Event::from_flags(
                f.contains(TcpFlags::SYN),
                f.contains(TcpFlags::FIN),
                f.contains(TcpFlags::ACK),
                f.contains(TcpFlags::RST),
            );
            let state = ev.map_or(old, |ev| tcp::next(old, way, ev));
            (state, state.default_timeout_s())
        }
        None => (old, tcp::UDP_TIMEOUT_S),
    }
}

/// The (service, real server) indices of a connection entry among `services`, found by the
/// addresses and ports it keeps.
fn resolve(services: &[Service], e: &shm_layout::conn::ConnEntry) -> Option<(usize, usize)> {
    let s = services.iter().position(|s| s.is(e.proto, addr4(&e.vaddr), e.vport))?;
    let raddr = addr4(&e.raddr);
    let r = services[s].reals.iter().position(|r| r.addr == raddr && r.port == e.rport)?;
    Some((s, r))
}

/// TCP option kind of TOA (the client's address and port for the real server), as DPVS and the
/// `toa` kernel module use it.
pub const TOA_KIND: u8 = 254;
/// Length of the TOA option: kind, length, port (2), IPv4 address (4).
pub const TOA_LEN: usize = 8;

/// Inserts the TOA option (client address and port) after the TCP options of the segment at
/// `l4`, when the header has room for it (60 bytes at most), the packet stays within the port
/// MTU and the buffer can grow; the IPv4
/// total length, the TCP data offset and both checksums are updated. Otherwise the segment is
/// left as it is: TOA is best effort, as in DPVS.
fn insert_toa<F: Frame>(buf: &mut F, l3: usize, l4: usize, (client, port): (Ipv4Addr, u16), mtu: usize) {
    let (hlen, src, dst, total) = {
        let frame = buf.bytes();
        let tcp = TcpPacket::new_unchecked(&frame[l4..]);
        let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
        (tcp.header_len(), ip.src_addr(), ip.dst_addr(), usize::from(ip.total_len()))
    };
    // A handshake ACK that carries a full segment already has no room on the wire.
    if hlen + TOA_LEN > 60 || total + TOA_LEN > mtu || !buf.insert(l4 + hlen, TOA_LEN) {
        return;
    }
    let frame = buf.bytes();
    let opt = &mut frame[l4 + hlen..l4 + hlen + TOA_LEN];
    opt[0] = TOA_KIND;
    opt[1] = TOA_LEN as u8;
    opt[2..4].copy_from_slice(&port.to_be_bytes());
    opt[4..8].copy_from_slice(&client.octets());
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
        ip.set_total_len(ip.total_len() + TOA_LEN as u16);
        ip.fill_checksum();
    }
    let total = usize::from(Ipv4Packet::new_unchecked(&frame[l3..]).total_len());
    let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..l3 + total]);
    tcp.set_header_len(hlen + TOA_LEN);
    tcp.fill_checksum(src, dst);
}

/// Lowers the MSS option of the SYN-ACK at `l4` by `by` (incremental checksum update), so that
/// the client's segments leave room for the TOA option.
fn shrink_mss(frame: &mut [u8], l4: usize, by: u16) {
    let hlen = TcpPacket::new_unchecked(&frame[l4..]).header_len();
    let end = (l4 + hlen).min(frame.len());
    let options = &frame[(l4 + 20).min(end)..end];
    let Some((_, at, _)) = wire::tcp::option_spans(options).find(|&(kind, _, len)| kind == 2 && len == 4) else {
        return;
    };
    let i = l4 + 20 + at;
    let old = u16::from_be_bytes([frame[i + 2], frame[i + 3]]);
    let new = old.saturating_sub(by).max(536);
    frame[i + 2..i + 4].copy_from_slice(&new.to_be_bytes());
    let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..]);
    let c = checksum::update_u16(tcp.checksum(), old, new);
    tcp.set_checksum(c);
}

/// Rewrites the IPv4 addresses and L4 ports of a frame, updating both checksums
/// incrementally (RFC 1624).
fn rewrite(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    proto: u8,
    (src, dst, sport, dport): (Ipv4Addr, Ipv4Addr, u16, u16),
) {
    // One wide sum of the changes, folded once per checksum (RFC 1624 over all fields): the
    // pseudo-header's addresses are the IP header's.
    let addrs = {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
        let d = checksum::delta_addr(ip.src_addr(), src) + checksum::delta_addr(ip.dst_addr(), dst);
        ip.set_checksum(checksum::apply(ip.checksum(), d));
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        d
    };
    if proto == u8::from(IpProtocol::Tcp) {
        let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..]);
        let d = addrs + checksum::delta_u16(tcp.src_port(), sport) + checksum::delta_u16(tcp.dst_port(), dport);
        tcp.set_checksum(checksum::apply(tcp.checksum(), d));
        tcp.set_src_port(sport);
        tcp.set_dst_port(dport);
    } else {
        let mut udp = UdpPacket::new_unchecked(&mut frame[l4..]);
        let d = addrs + checksum::delta_u16(udp.src_port(), sport) + checksum::delta_u16(udp.dst_port(), dport);
        udp.set_checksum(checksum::udp_apply(udp.checksum(), d));
        udp.set_src_port(sport);
        udp.set_dst_port(dport);
    }
}

#[cfg(test)]
mod tests;
