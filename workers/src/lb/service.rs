//! The service model of one lcore: services with their real servers, schedulers,
//! thresholds, access lists and local addresses, built from a configuration generation.

use std::net::{IpAddr, Ipv4Addr};

use sched::{Backend, Scheduler};
use wire::EthernetAddress;

use super::{ip_of, ticks};

/// Local ports handed out (the rest are left to the kernel side and well-known services).
pub(super) const LPORT_MIN: u16 = 1025;

/// A real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Real {
    pub addr: IpAddr,
    pub port: u16,
    /// Its MAC address (static neighbour) and the port slot it is reached through.
    pub mac: EthernetAddress,
    pub via: u16,
    /// How packets reach it.
    pub forward: conf::Forward,
    /// The balancer's address on the next hop's network: the source of IP-in-IP outer
    /// headers and of ARP requests for the next hop.
    pub hop_src: IpAddr,
    /// The next hop: itself on a connected network, else its route's gateway.
    pub hop: IpAddr,
    /// Whether the next hop's MAC comes from ARP or neighbour discovery (no static neighbour
    /// entry).
    pub learned: bool,
    /// Whether `mac` is known; an unresolved real server takes no new connection.
    pub resolved: bool,
}

impl Real {
    /// A real server at `addr:port` reached through `mac` on port slot `via`, its MAC known
    /// statically.
    pub fn new(addr: impl Into<IpAddr>, port: u16, mac: EthernetAddress, via: u16, forward: conf::Forward) -> Real {
        let addr = addr.into();
        Real {
            addr,
            port,
            mac,
            via,
            forward,
            hop_src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            hop: addr,
            learned: false,
            resolved: true,
        }
    }
}

/// A service, IPv4 or IPv6 (its real servers and local addresses are of its VIP's family).
#[derive(Debug)]
pub struct Service {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub scheduler: Scheduler,
    pub backends: Vec<Backend>,
    pub reals: Vec<Real>,
    pub laddrs: Vec<IpAddr>,
    pub(super) next_laddr: usize,
    pub(super) next_lport: u16,
    /// This lcore hands out the local ports `p` with `p % lcores == slot`.
    pub(super) lport_first: u16,
    pub(super) lport_step: u16,
    /// The configuration it was built from (None: built by hand, in tests).
    pub def: Option<conf::Shared<conf::Service>>,
    /// Persistence timeout in ticks (0: none).
    pub(super) persistence: u32,
    /// The prefix length clients are grouped by for persistence (0: each address alone).
    pub(super) persistence_prefix: u8,
    /// Its slot in the worker's service counter table (`usize::MAX`: none).
    pub(super) stats_slot: usize,
    /// Each real server's slot in the worker's real-server counter table (parallel to
    /// `reals`; `usize::MAX`: none).
    pub(super) real_slots: Vec<usize>,
    /// Each real server's connection thresholds on this lcore (its share of the configured
    /// ones; parallel to `reals`): overloaded at `upper`, taken back below `lower`.
    pub(super) limits: Vec<Limits>,
    /// Clients whose new connections are refused (deny, allow lists).
    pub(super) acl: Option<(Networks, Networks)>,
    /// The PROXY protocol header its Full-NAT TCP connections get (instead of TOA).
    pub proxy: conf::ProxyProtocol,
}

/// A set of networks of one family, the service's (an access list): a scan of a few, or one
/// hash lookup per prefix length present for many (an access list may hold 65 536 networks,
/// checked on every new connection).
#[derive(Debug, Default)]
pub(super) enum Networks {
    #[default]
    Empty,
    /// Scanned.
    Scanned(Vec<conf::Prefix>),
    /// The prefix lengths present, longest first, and the networks by (length, address).
    Hashed(Vec<u8>, rustc_hash::FxHashSet<(u8, IpAddr)>),
}

/// Lists longer than this are hashed.
const SCANNED_NETWORKS: usize = 16;

impl Networks {
    pub(super) fn new(list: &[conf::Prefix]) -> Networks {
        if list.is_empty() {
            return Networks::Empty;
        }
        if list.len() <= SCANNED_NETWORKS {
            return Networks::Scanned(list.to_vec());
        }
        let mut lens: Vec<u8> = list.iter().map(|p| p.len).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        Networks::Hashed(lens, list.iter().map(|p| (p.len, p.addr)).collect())
    }

    fn is_empty(&self) -> bool {
        matches!(self, Networks::Empty)
    }

    /// Whether `a` is in one of the networks (an address of another family is in none).
    #[inline]
    pub(super) fn contains(&self, a: IpAddr) -> bool {
        match self {
            Networks::Empty => false,
            Networks::Scanned(l) => l.iter().any(|p| p.contains(a)),
            Networks::Hashed(lens, nets) => lens.iter().any(|&len| nets.contains(&(len, conf::network_of(a, len)))),
        }
    }
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
    pub(super) fn over(self, conns: u32) -> bool {
        self.upper > 0 && conns >= self.upper
    }

    /// Whether an overloaded real server with `conns` connections takes new ones again.
    pub(super) fn relieved(self, conns: u32) -> bool {
        conns < self.lower.max(1)
    }
}

impl Service {
    /// A service; `backends` and `reals` are parallel. Local ports are handed out from this
    /// lcore's share: `p % lcores == slot`, so a reply's destination port names its lcore.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vip: impl Into<IpAddr>,
        port: u16,
        proto: u8,
        scheduler: Scheduler,
        backends: Vec<Backend>,
        reals: Vec<Real>,
        laddrs: Vec<IpAddr>,
        (slot, lcores): (u16, u16),
    ) -> Service {
        let vip = vip.into();
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
            persistence_prefix: 0,
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
    pub(super) fn refresh_availability(&mut self) {
        for (i, b) in self.backends.iter_mut().enumerate() {
            let over = self.limits.get(i).is_some_and(|l| l.over(b.active_conns));
            b.available = self.reals.get(i).is_some_and(|r| r.resolved) && !over;
        }
    }

    /// Access lists: new connections from clients in `deny`, or not in a non-empty `allow`,
    /// are refused.
    pub fn with_acl(mut self, deny: Vec<conf::Prefix>, allow: Vec<conf::Prefix>) -> Service {
        self.acl = (!deny.is_empty() || !allow.is_empty()).then(|| (Networks::new(&deny), Networks::new(&allow)));
        self
    }

    /// Whether `client` may open a connection.
    #[inline]
    pub(super) fn admits(&self, client: IpAddr) -> bool {
        match &self.acl {
            None => true,
            Some((deny, allow)) => !deny.contains(client) && (allow.is_empty() || allow.contains(client)),
        }
    }

    /// The next local address and port to try for a new Full-NAT connection: every local
    /// address with one port, then the next port of this lcore's share, so all pairs get used.
    /// `None` when the service has no local address yet (being set up: `ipvsadm -A`, `-a`,
    /// then `--add-laddr`).
    pub(super) fn next_local(&mut self) -> Option<(IpAddr, u16)> {
        let laddr = *self.laddrs.get(self.next_laddr)?;
        let lport = self.next_lport;
        self.next_laddr += 1;
        if self.next_laddr == self.laddrs.len() {
            self.next_laddr = 0;
            self.next_lport = lport.checked_add(self.lport_step).unwrap_or(self.lport_first);
        }
        Some((laddr, lport))
    }

    /// The next local address, round robin (`None`: none yet).
    pub(super) fn next_laddr(&mut self) -> Option<IpAddr> {
        let laddr = *self.laddrs.get(self.next_laddr)?;
        self.next_laddr = (self.next_laddr + 1) % self.laddrs.len();
        Some(laddr)
    }
}

/// Why the services of a generation could not be built. The primary validated the
/// configuration, so only a mismatch of builds gets here.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A real server has no next hop on a port's network.
    #[error("no next hop on a port's network for real server {0}")]
    NoNextHop(IpAddr),
    /// A scheduler refused its real servers.
    #[error(transparent)]
    Scheduler(#[from] sched::BuildError),
}

/// What building a service needs of a runtime configuration: the next hop of every real
/// server and its MAC (a static neighbour entry, else what ARP taught).
pub struct Hops<'a> {
    resolver: conf::Resolver<'a>,
    /// The first static entry of each neighbour: (MAC, port slot).
    neighbours: rustc_hash::FxHashMap<IpAddr, ([u8; 6], u16)>,
    learned: &'a crate::neigh::Hops,
}

impl<'a> Hops<'a> {
    /// The next hops of `rt`, and the neighbours ARP taught (`learned`). Costs a pass over the
    /// addresses, routes and static neighbours.
    pub fn new(rt: &'a conf::Runtime, learned: &'a crate::neigh::Hops) -> Hops<'a> {
        let mut neighbours = rustc_hash::FxHashMap::with_capacity_and_hasher(rt.neighbours.len(), Default::default());
        for n in &rt.neighbours {
            neighbours.entry(n.addr).or_insert((n.mac, n.port as u16));
        }
        Hops { resolver: rt.resolver(), neighbours, learned }
    }

    /// The next hop of `addr`, the port slot it is on and the balancer's address there.
    fn hop(&self, addr: IpAddr) -> Option<(IpAddr, u16, IpAddr)> {
        let h = self.resolver.next_hop(addr)?;
        let a = self.resolver.connected(h)?;
        Some((h, a.port as u16, a.addr))
    }

    /// The real servers of `def`, reached through their next hops.
    fn reals(&self, def: &conf::Service) -> Result<Vec<Real>, BuildError> {
        let mut reals = Vec::with_capacity(def.reals.len());
        for r in &def.reals {
            let (h, port, src) = self.hop(r.addr).ok_or(BuildError::NoNextHop(r.addr))?;
            // The next hop's MAC: a static neighbour entry, else what ARP or neighbour
            // discovery taught (else unknown for now: the real server waits for it).
            let fixed = self.neighbours.get(&h).copied();
            let known = fixed.or_else(|| self.learned.get(&h).copied());
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
        Ok(reals)
    }

    /// Service `def` built for the lcore `share = (slot, lcores)` over its real servers
    /// `reals` ([`Hops::reals`]), going on from `prev` (the service it replaces, if any): the
    /// connection counts of the real servers it still has, and where it stopped handing out
    /// local addresses and ports.
    fn build(
        def: &conf::Shared<conf::Service>,
        reals: Vec<Real>,
        share: (u16, u16),
        prev: Option<&Service>,
    ) -> Result<Service, BuildError> {
        let backends: Vec<Backend> = def
            .reals
            .iter()
            .map(|r| {
                // A real server its health check took out is scheduled as weight 0.
                let mut b = Backend::new(r.effective_weight());
                if let Some(p) = prev {
                    if let Some(j) = p.reals.iter().position(|x| x.addr == r.addr && x.port == r.port) {
                        b.active_conns = p.backends[j].active_conns;
                    }
                }
                b
            })
            .collect();
        let ids: Vec<[u8; 18]> =
            def.reals.iter().map(|r| sched::identity(std::net::SocketAddr::from((r.addr, r.port)))).collect();
        let scheduler = Scheduler::with_ids(def.scheduler, &backends, &ids)?;
        let limits = def.reals.iter().map(|r| Limits::share(r.upper, r.lower, share.1)).collect();
        let proto = def.protocol.number();
        let mut svc =
            Service::new(def.vip, def.port, proto, scheduler, backends, reals, def.local_addresses.clone(), share)
                .with_limits(limits)
                .with_acl(def.deny.clone(), def.allow.clone());
        svc.def = Some(def.clone());
        svc.persistence = ticks(def.persistence);
        svc.persistence_prefix = def.persistence_prefix;
        svc.proxy = def.proxy_protocol;
        if let Some(p) = prev {
            // Go on handing out local addresses and ports where the old one stopped.
            svc.next_lport = p.next_lport;
            svc.next_laddr = if p.next_laddr < svc.laddrs.len() { p.next_laddr } else { 0 };
        }
        Ok(svc)
    }

    /// Service `def` built anew ([`Hops::build`]), replacing `prev`.
    ///
    /// # Errors
    /// [`BuildError`].
    pub fn service(
        &self,
        def: &conf::Shared<conf::Service>,
        share: (u16, u16),
        prev: Option<&Service>,
    ) -> Result<Service, BuildError> {
        Hops::build(def, self.reals(def)?, share, prev)
    }
}

/// The services of a runtime configuration, with schedulers built over their real servers,
/// for the lcore `share = (slot, lcores)`. A service of `old` whose definition and real
/// servers' neighbours are unchanged is taken over as it is (scheduler position and
/// connection counts kept); a changed one is rebuilt, keeping the connection counts of the
/// real servers it still has.
///
/// # Errors
/// [`BuildError`], with `old` untouched.
pub fn build_services(
    rt: &conf::Runtime,
    share: (u16, u16),
    old: &mut Vec<Service>,
    learned: &crate::neigh::Hops,
) -> Result<Vec<Service>, BuildError> {
    build_services_beating(rt, share, old, learned, &mut || {})
}

/// [`build_services`], calling `beat` every 1 024 services: a worker rebuilding a large
/// configuration is busy, not hung (its heartbeat).
///
/// # Errors
/// As [`build_services`].
pub fn build_services_beating(
    rt: &conf::Runtime,
    share: (u16, u16),
    old: &mut Vec<Service>,
    learned: &crate::neigh::Hops,
    beat: &mut dyn FnMut(),
) -> Result<Vec<Service>, BuildError> {
    let hops = Hops::new(rt, learned);
    let by_key: rustc_hash::FxHashMap<(u8, IpAddr, u16), usize> =
        old.iter().enumerate().map(|(i, s)| ((s.proto, s.vip, s.port), i)).collect();
    // First everything that can fail, with `old` only read: each service either taken over
    // (its index in `old`) or built anew.
    let mut plan: Vec<Result<usize, Service>> = Vec::with_capacity(rt.services.len());
    for (n, def) in rt.services.iter().enumerate() {
        if n % 1024 == 1023 {
            beat();
        }
        let reals = hops.reals(def)?;
        let at = by_key.get(&(def.protocol.number(), def.vip, def.port)).copied();
        let prev = at.map(|i| &old[i]);
        let same = |p: &Service| p.def.as_ref().is_some_and(|d| conf::Shared::same(d, def) || d == def);
        if prev.is_some_and(|p| same(p) && p.reals == reals) {
            plan.extend(at.map(Ok));
            continue;
        }
        plan.push(Err(Hops::build(def, reals, share, prev)?));
    }
    // Then the moves: nothing fails from here on.
    let mut old: Vec<Option<Service>> = old.drain(..).map(Some).collect();
    Ok(plan
        .into_iter()
        .filter_map(|p| match p {
            Ok(i) => old[i].take(),
            Err(svc) => Some(svc),
        })
        .collect())
}

/// The (service, real server) indices of a connection entry among `services` (whose lookups
/// are `index`), found by the addresses and ports it keeps.
pub(super) fn resolve(
    index: &super::Index,
    services: &[Service],
    e: &shm_layout::conn::ConnEntry,
) -> Option<(usize, usize)> {
    let s = index.service(e.proto, ip_of(&e.vaddr), e.vport)?;
    let raddr = ip_of(&e.raddr);
    let r = services[s].reals.iter().position(|r| r.addr == raddr && r.port == e.rport)?;
    Some((s, r))
}
