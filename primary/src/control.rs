//! Runtime configuration changes: each command is applied to a copy of the running
//! configuration, checked with the rules of the file, and staged; staged changes are published
//! together as the next generation once every polling worker has acknowledged the current one,
//! and each is answered when every polling worker acknowledges the generation that carries it.
//! A change that fails is answered at once and changes nothing.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use conf::{Config, Runtime};
use mailbox::generation::{self, PublishError};
use mailbox::proto::{AclList, Change, Response, ServiceKey};
use mailbox::{Server, Taken};
use shm_layout::{monotonic_ns, Shm};

/// Why a change was refused ([`apply`]); the running configuration is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The change names a port the configuration does not have.
    #[error("no port \"{name}\" (ports: {})", ports.join(", "))]
    NoPort { name: String, ports: Vec<String> },
    /// The change names a service that does not exist.
    #[error("no service {0}")]
    NoService(ServiceKey),
    /// The address to remove is a service's VIP or local address.
    #[error("{addr} is used by service {service}: remove it from the service first")]
    AddressInUse { addr: Ipv4Addr, service: ServiceKey },
    /// The local address to install on a port belongs to another port.
    #[error("{addr} is an address of {owner}, not of {port}")]
    OtherPort { addr: Ipv4Addr, owner: String, port: String },
    /// The address to remove is not an interface address.
    #[error("no address {0}")]
    NoAddress(Ipv4Addr),
    /// The neighbour to remove has no static entry.
    #[error("no neighbour {0}")]
    NoNeighbour(Ipv4Addr),
    /// The network to route has a static route already.
    #[error("{prefix}/{len} is routed already")]
    RouteExists { prefix: Ipv4Addr, len: u8 },
    /// The route to remove does not exist.
    #[error("no route {prefix}/{len}")]
    NoRoute { prefix: Ipv4Addr, len: u8 },
    /// The service to add exists.
    #[error("service {0} exists already")]
    ServiceExists(ServiceKey),
    /// The scheduler is not one of the known names.
    #[error(transparent)]
    Scheduler(#[from] sched::ParseKindError),
    /// A service edit that names nothing to change.
    #[error("nothing to change: give a scheduler, a persistence timeout or a PROXY protocol version")]
    NothingToChange,
    /// The real server to add is one of the service's already.
    #[error("{addr}:{port} is a real server of {service} already")]
    RealExists { service: ServiceKey, addr: Ipv4Addr, port: u16 },
    /// The real server to change or remove is not one of the service's.
    #[error("{addr}:{port} is not a real server of {service}")]
    NoReal { service: ServiceKey, addr: Ipv4Addr, port: u16 },
    /// The local address to add is one of the service's already.
    #[error("{addr} is a local address of {service} already")]
    LaddrExists { service: ServiceKey, addr: Ipv4Addr },
    /// The local address to remove is not one of the service's.
    #[error("{addr} is not a local address of {service}")]
    NoLaddr { service: ServiceKey, addr: Ipv4Addr },
    /// The network to add is in the access list already.
    #[error("{prefix} is in the {} list of {service} already", list.name())]
    AclExists { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// The network to remove is not in the access list.
    #[error("{prefix} is not in the {} list of {service}", list.name())]
    NoAcl { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// The changed configuration breaks a rule of the file.
    #[error(transparent)]
    Invalid(#[from] conf::RuntimeError),
}

/// Applies `change` to a copy of `rt` and checks the result against `cfg`'s ports: a change
/// to one service's definition, real servers, local addresses or access lists checks that
/// service (and the rules between it and the others) only, [`Config::check_services`]; any
/// other change, or one that installs or removes an interface address, checks everything,
/// [`Config::check_runtime`]. Both give the same answer (tests).
///
/// # Errors
/// [`ChangeError`]: what is wrong with the change; `rt` is untouched.
pub fn apply(cfg: &Config, rt: &Runtime, change: &Change) -> Result<Runtime, ChangeError> {
    apply_checking(cfg, rt, change, false)
}

/// Why a list of changes was refused ([`apply_all`]); nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The file of changes cannot be read.
    #[error("cannot read the changes at {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// It is not a list of changes of this protocol version.
    #[error("the changes at {}: {source}", path.display())]
    Decode { path: PathBuf, source: mailbox::proto::DecodeError },
    /// A change cannot be made (by its index in the list, from 0).
    #[error("change {index}: {source}")]
    Change { index: usize, source: ChangeError },
    /// The configuration the changes make breaks a rule of the file.
    #[error("after the changes: {0}")]
    Invalid(conf::RuntimeError),
}

/// Makes `changes` in order on a copy of `rt` and checks the result once (`ipvsadm -R`: one
/// generation, all or none).
///
/// # Errors
/// [`BatchError::Change`] for the first change that cannot be made, [`BatchError::Invalid`]
/// when the result breaks a rule; `rt` is untouched.
pub fn apply_all(cfg: &Config, rt: &Runtime, changes: &[Change]) -> Result<Runtime, BatchError> {
    let mut e = Edit::new(cfg, rt, true);
    for (index, c) in changes.iter().enumerate() {
        e.make(c).map_err(|source| BatchError::Change { index, source })?;
    }
    cfg.check_runtime(&e.next).map_err(BatchError::Invalid)?;
    Ok(e.next)
}

/// [`apply`], checking the whole result when `whole`.
fn apply_checking(cfg: &Config, rt: &Runtime, change: &Change, whole: bool) -> Result<Runtime, ChangeError> {
    let mut e = Edit::new(cfg, rt, false);
    e.make(change)?;
    // The services whose own rules the change may break: `None` for all of everything.
    let one = |k: &ServiceKey| e.next.service(k.protocol, k.vip, k.port).map(|i| vec![i]);
    let touched = match change {
        _ if whole || e.next.addresses != rt.addresses => None,
        Change::ServiceAdd { service, .. }
        | Change::ServiceEdit { service, .. }
        | Change::RealAdd { service, .. }
        | Change::RealEdit { service, .. }
        | Change::RealDel { service, .. }
        | Change::LaddrAdd { service, .. }
        | Change::LaddrDel { service, .. }
        | Change::AclAdd { service, .. }
        | Change::AclDel { service, .. } => one(service),
        // Fewer services: no rule between the rest can break.
        Change::ServiceDel { .. } => Some(Vec::new()),
        _ => None,
    };
    match touched {
        Some(t) => cfg.check_services(&e.next, &t)?,
        None => cfg.check_runtime(&e.next)?,
    }
    Ok(e.next)
}

/// A change being made: the copy of the running configuration it edits, and the configuration
/// whose ports it may name. Each command group has its own `impl` block below.
struct Edit<'a> {
    cfg: &'a Config,
    next: Runtime,
    /// Each service's index by key, for many changes in a row ([`apply_all`]); `None`: the
    /// services are searched.
    index: Option<HashMap<(conf::Protocol, Ipv4Addr, u16), usize>>,
}

impl<'a> Edit<'a> {
    /// Changes to a copy of `rt`; `indexed` for many of them.
    fn new(cfg: &'a Config, rt: &Runtime, indexed: bool) -> Self {
        let mut e = Edit { cfg, next: rt.clone(), index: None };
        if indexed {
            e.reindex();
        }
        e
    }

    fn reindex(&mut self) {
        let keys = self.next.services.iter().enumerate().map(|(i, s)| ((s.protocol, s.vip, s.port), i));
        self.index = Some(keys.collect());
    }

    /// The index of service `k`.
    fn find(&self, k: &ServiceKey) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(&(k.protocol, k.vip, k.port)).copied(),
            None => self.next.service(k.protocol, k.vip, k.port),
        }
    }
}

/// Making changes.
impl Edit<'_> {
    /// Makes `change` in `next`, unchecked against the rules of the file (the caller checks).
    fn make(&mut self, change: &Change) -> Result<(), ChangeError> {
        match change {
            Change::AddrAdd { port, addr, prefix } => self.add_address(port, *addr, *prefix)?,
            Change::AddrDel { addr } => self.del_address(*addr)?,
            Change::NeighSet { addr, mac, port } => self.set_neighbour(*addr, *mac, port)?,
            Change::NeighDel { addr } => self.del_neighbour(*addr)?,
            Change::RouteAdd { prefix, len, via } => self.add_route(*prefix, *len, *via)?,
            Change::RouteDel { prefix, len } => self.del_route(*prefix, *len)?,
            Change::ServiceAdd { service, scheduler, persistence, proxy_protocol, group } => {
                self.add_service(service, scheduler, (*persistence, *proxy_protocol), group.clone())?
            }
            Change::ServiceEdit { service, scheduler, persistence, proxy_protocol } => {
                self.edit_service(service, scheduler.as_deref(), *persistence, *proxy_protocol)?
            }
            Change::ServiceDel { service } => {
                self.del_service(service)?;
                self.prune_sapool();
            }
            Change::ServiceClear => {
                self.next.services.clear();
                if self.index.is_some() {
                    self.reindex();
                }
                self.prune_sapool();
            }
            Change::RealAdd { service, addr, port, weight, forward, thresholds: (upper, lower) } => {
                let (upper, lower) = (*upper, *lower);
                self.add_real(
                    service,
                    conf::Real { addr: *addr, port: *port, weight: *weight, forward: *forward, upper, lower },
                )?
            }
            Change::RealEdit { service, addr, port, weight, forward, upper, lower } => {
                self.edit_real(service, (*addr, *port), *weight, *forward, (*upper, *lower))?
            }
            Change::RealDel { service, addr, port } => self.del_real(service, *addr, *port)?,
            Change::LaddrAdd { service, addr, port } => self.add_laddr(service, *addr, port.as_deref())?,
            Change::LaddrDel { service, addr } => {
                self.del_laddr(service, *addr)?;
                self.prune_sapool();
            }
            Change::AclAdd { service, list, prefix } => self.add_acl(service, *list, *prefix)?,
            Change::AclDel { service, list, prefix } => self.del_acl(service, *list, *prefix)?,
        }
        Ok(())
    }
}

/// Removes and returns the first element of `v` that `found` selects.
fn remove_first<T>(v: &mut Vec<T>, found: impl Fn(&T) -> bool) -> Option<T> {
    let i = v.iter().position(found)?;
    Some(v.remove(i))
}

/// Interface addresses and static neighbours: by port name.
impl Edit<'_> {
    fn port(&self, name: &str) -> Result<usize, ChangeError> {
        self.cfg.port_by_name(name).ok_or_else(|| ChangeError::NoPort {
            name: name.to_owned(),
            ports: self.cfg.ports.iter().map(|p| p.name.clone()).collect(),
        })
    }

    fn add_address(&mut self, port: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), ChangeError> {
        let port = self.port(port)?;
        self.next.addresses.push(conf::IfAddr { port, addr, prefix, sapool: false });
        Ok(())
    }

    /// Refused while a service uses the address, as its VIP or a local address.
    fn del_address(&mut self, addr: Ipv4Addr) -> Result<(), ChangeError> {
        if !self.next.addresses.iter().any(|a| a.addr == addr) {
            return Err(ChangeError::NoAddress(addr));
        }
        if let Some(s) = self.next.services.iter().find(|s| s.vip == addr || s.local_addresses.contains(&addr)) {
            let service = ServiceKey { protocol: s.protocol, vip: s.vip, port: s.port };
            return Err(ChangeError::AddressInUse { addr, service });
        }
        remove_first(&mut self.next.addresses, |a| a.addr == addr);
        Ok(())
    }

    /// Adds a neighbour, or replaces the entry of its address.
    fn set_neighbour(&mut self, addr: Ipv4Addr, mac: [u8; 6], port: &str) -> Result<(), ChangeError> {
        let n = conf::Neighbour { addr, mac, port: self.port(port)? };
        match self.next.neighbours.iter_mut().find(|x| x.addr == addr) {
            Some(x) => *x = n,
            None => self.next.neighbours.push(n),
        }
        Ok(())
    }

    /// A real server or gateway that loses its static entry is resolved by ARP.
    fn del_neighbour(&mut self, addr: Ipv4Addr) -> Result<(), ChangeError> {
        remove_first(&mut self.next.neighbours, |n| n.addr == addr).ok_or(ChangeError::NoNeighbour(addr))?;
        Ok(())
    }
}

/// Static routes.
impl Edit<'_> {
    fn add_route(&mut self, prefix: Ipv4Addr, len: u8, via: Ipv4Addr) -> Result<(), ChangeError> {
        if self.next.routes.iter().any(|r| r.prefix == prefix && r.len == len) {
            return Err(ChangeError::RouteExists { prefix, len });
        }
        self.next.routes.push(conf::Route { prefix, len, via });
        Ok(())
    }

    fn del_route(&mut self, prefix: Ipv4Addr, len: u8) -> Result<(), ChangeError> {
        let routes = &mut self.next.routes;
        remove_first(routes, |r| r.prefix == prefix && r.len == len).ok_or(ChangeError::NoRoute { prefix, len })?;
        Ok(())
    }
}

/// Services.
impl Edit<'_> {
    fn service(&mut self, k: &ServiceKey) -> Result<&mut conf::Service, ChangeError> {
        let i = self.find(k).ok_or(ChangeError::NoService(*k))?;
        Ok(&mut self.next.services[i])
    }

    /// A service without real servers or local addresses yet.
    fn add_service(
        &mut self,
        k: &ServiceKey,
        scheduler: &str,
        (persistence, proxy_protocol): (u32, conf::ProxyProtocol),
        group: Option<String>,
    ) -> Result<(), ChangeError> {
        if self.find(k).is_some() {
            return Err(ChangeError::ServiceExists(*k));
        }
        if let Some(ix) = self.index.as_mut() {
            ix.insert((k.protocol, k.vip, k.port), self.next.services.len());
        }
        self.next.services.push(conf::Service {
            vip: k.vip,
            port: k.port,
            protocol: k.protocol,
            scheduler: scheduler.parse::<sched::Kind>()?,
            local_addresses: Vec::new(),
            reals: Vec::new(),
            persistence,
            deny: Vec::new(),
            allow: Vec::new(),
            proxy_protocol,
            group,
        });
        Ok(())
    }

    /// Changes what is given; at least one thing must be.
    fn edit_service(
        &mut self,
        k: &ServiceKey,
        scheduler: Option<&str>,
        persistence: Option<u32>,
        proxy_protocol: Option<conf::ProxyProtocol>,
    ) -> Result<(), ChangeError> {
        let s = self.service(k)?;
        if scheduler.is_none() && persistence.is_none() && proxy_protocol.is_none() {
            return Err(ChangeError::NothingToChange);
        }
        if let Some(p) = proxy_protocol {
            s.proxy_protocol = p;
        }
        if let Some(name) = scheduler {
            s.scheduler = name.parse::<sched::Kind>()?;
        }
        if let Some(p) = persistence {
            s.persistence = p;
        }
        Ok(())
    }

    fn del_service(&mut self, k: &ServiceKey) -> Result<(), ChangeError> {
        let i = self.find(k).ok_or(ChangeError::NoService(*k))?;
        self.next.services.remove(i);
        if self.index.is_some() {
            self.reindex();
        }
        Ok(())
    }
}

/// Real servers of a service.
impl Edit<'_> {
    fn add_real(&mut self, k: &ServiceKey, real: conf::Real) -> Result<(), ChangeError> {
        let reals = &mut self.service(k)?.reals;
        if reals.iter().any(|r| r.addr == real.addr && r.port == real.port) {
            return Err(ChangeError::RealExists { service: *k, addr: real.addr, port: real.port });
        }
        reals.push(real);
        Ok(())
    }

    /// Sets the weight, and the forwarding method and thresholds that are given.
    fn edit_real(
        &mut self,
        k: &ServiceKey,
        (addr, port): (Ipv4Addr, u16),
        weight: u32,
        forward: Option<conf::Forward>,
        (upper, lower): (Option<u32>, Option<u32>),
    ) -> Result<(), ChangeError> {
        let r = self.service(k)?.reals.iter_mut().find(|r| r.addr == addr && r.port == port);
        let r = r.ok_or(ChangeError::NoReal { service: *k, addr, port })?;
        r.weight = weight;
        r.forward = forward.unwrap_or(r.forward);
        r.upper = upper.unwrap_or(r.upper);
        r.lower = lower.unwrap_or(r.lower);
        Ok(())
    }

    fn del_real(&mut self, k: &ServiceKey, addr: Ipv4Addr, port: u16) -> Result<(), ChangeError> {
        let reals = &mut self.service(k)?.reals;
        remove_first(reals, |r| r.addr == addr && r.port == port).ok_or(ChangeError::NoReal {
            service: *k,
            addr,
            port,
        })?;
        Ok(())
    }
}

/// Local addresses of a service.
impl Edit<'_> {
    /// With `port` (ipvsadm's `-F`), an address no port has is installed on that port first,
    /// as a host address (/32) marked `sapool`, as DPVS does.
    fn add_laddr(&mut self, k: &ServiceKey, addr: Ipv4Addr, port: Option<&str>) -> Result<(), ChangeError> {
        if let Some(name) = port {
            let p = self.port(name)?;
            match self.next.addresses.iter().find(|a| a.addr == addr) {
                None => self.next.addresses.push(conf::IfAddr { port: p, addr, prefix: 32, sapool: true }),
                Some(a) if a.port != p => {
                    let owner = self.cfg.ports.get(a.port).map_or("?", |o| o.name.as_str()).to_owned();
                    return Err(ChangeError::OtherPort { addr, owner, port: name.to_owned() });
                }
                Some(_) => {}
            }
        }
        let l = &mut self.service(k)?.local_addresses;
        if l.contains(&addr) {
            return Err(ChangeError::LaddrExists { service: *k, addr });
        }
        l.push(addr);
        Ok(())
    }

    fn del_laddr(&mut self, k: &ServiceKey, addr: Ipv4Addr) -> Result<(), ChangeError> {
        let l = &mut self.service(k)?.local_addresses;
        remove_first(l, |a| *a == addr).ok_or(ChangeError::NoLaddr { service: *k, addr })?;
        Ok(())
    }

    /// Removes the addresses `add_laddr` installed that no service uses any more (after a
    /// local address or a service is removed).
    fn prune_sapool(&mut self) {
        let services = &self.next.services;
        self.next
            .addresses
            .retain(|a| !a.sapool || services.iter().any(|s| s.vip == a.addr || s.local_addresses.contains(&a.addr)));
    }
}

/// Access lists of a service.
impl Edit<'_> {
    fn acl(&mut self, k: &ServiceKey, list: AclList) -> Result<&mut Vec<conf::Prefix>, ChangeError> {
        let s = self.service(k)?;
        Ok(match list {
            AclList::Deny => &mut s.deny,
            AclList::Allow => &mut s.allow,
        })
    }

    fn add_acl(&mut self, k: &ServiceKey, list: AclList, prefix: conf::Prefix) -> Result<(), ChangeError> {
        let l = self.acl(k, list)?;
        if l.contains(&prefix) {
            return Err(ChangeError::AclExists { service: *k, list, prefix });
        }
        l.push(prefix);
        Ok(())
    }

    fn del_acl(&mut self, k: &ServiceKey, list: AclList, prefix: conf::Prefix) -> Result<(), ChangeError> {
        let l = self.acl(k, list)?;
        remove_first(l, |p| *p == prefix).ok_or(ChangeError::NoAcl { service: *k, list, prefix })?;
        Ok(())
    }
}

/// Why a reload was refused ([`reload`], [`Control::check_reload`]); nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] conf::ConfError),
    /// The file changes a section other than the runtime tables.
    #[error(
        "{}: {section} differs from the running configuration; a reload changes only addresses, \
         neighbours and services (restart the instance for the rest)",
        path.display()
    )]
    Static { path: PathBuf, section: &'static str },
    /// No file was named, and the instance started from none.
    #[error("the instance runs the embedded default configuration: name a file to reload")]
    Embedded,
}

/// The runtime part of a configuration file, if its other sections equal `cfg`'s.
///
/// # Errors
/// [`ReloadError::Config`] for a file that is unreadable or invalid, [`ReloadError::Static`]
/// for one that changes a section a reload cannot change.
pub fn reload(cfg: &Config, path: &Path) -> Result<Runtime, ReloadError> {
    let new = Config::from_file(path)?;
    if let Some(section) = cfg.static_difference(&new) {
        return Err(ReloadError::Static { path: path.to_owned(), section });
    }
    Ok(new.runtime())
}

/// How long the workers get to acknowledge a generation before its requests are answered
/// with an error (the generation stays published).
const ACK_TIMEOUT_NS: u64 = 10_000_000_000;

/// A request applied to the staged configuration, waiting for its generation.
#[derive(Debug)]
struct Waiting {
    taken: Taken,
    arrived_ns: u64,
}

/// The primary's side of configuration generations.
#[derive(Debug)]
pub struct Control {
    /// The configuration the instance started from (its static sections never change).
    cfg: Config,
    /// The latest published generation's configuration.
    published: Runtime,
    /// Published generation whose acknowledgements are awaited, with the requests it carries
    /// and when it was published (ns).
    in_flight: Option<(u64, Vec<Waiting>, u64)>,
    /// Changes applied after `in_flight`, to be published next, with their requests.
    staged: Option<(Runtime, Vec<Waiting>)>,
    /// Counter-zeroing requests not yet made, by service key (0: all).
    zeros: std::collections::VecDeque<(u64, Waiting)>,
    /// The zeroing request the workers carry out now: its epoch, its request, when it was made.
    zero_in_flight: Option<(u64, Waiting, u64)>,
}

impl Control {
    /// Control over the generations of `cfg`'s instance; generation 1 (`cfg`'s runtime part)
    /// is published at start-up by [`generation::init`].
    pub fn new(cfg: &Config) -> Control {
        Control {
            cfg: cfg.clone(),
            published: cfg.runtime(),
            in_flight: None,
            staged: None,
            zeros: std::collections::VecDeque::new(),
            zero_in_flight: None,
        }
    }

    /// The configuration the next change applies to.
    fn latest(&self) -> &Runtime {
        self.staged.as_ref().map_or(&self.published, |(rt, _)| rt)
    }

    /// Whether anything is staged or awaiting acknowledgements.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || self.staged.is_some() || self.zero_in_flight.is_some() || !self.zeros.is_empty()
    }

    /// Takes a request to zero the counters of `service` (all: `None`); answered by
    /// [`Control::tend`] once every polling worker has zeroed its tables.
    pub fn take_zero(&mut self, mailbox: &mut Server<'_>, taken: Taken, service: Option<ServiceKey>, now_ns: u64) {
        let key = match service {
            None => 0,
            Some(k) => {
                if self.latest().service(k.protocol, k.vip, k.port).is_none() {
                    let r = Response::error(format!("no service {k}"));
                    mailbox.reply(taken, &r.encode(), &[], now_ns);
                    return;
                }
                shm_layout::ServiceCounters::key_of(k.protocol.number(), k.vip.octets(), k.port)
            }
        };
        self.zeros.push_back((key, Waiting { taken, arrived_ns: now_ns }));
    }

    /// Answers the zeroing request in flight once every polling worker carried it out (or
    /// its time is up), and makes the next one.
    fn tend_zero(&mut self, shm: &Shm, mailbox: &mut Server<'_>, polling: &impl Fn(usize) -> bool, now_ns: u64) {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let layout = shm.layout();
        if let Some((epoch, _, made_ns)) = &self.zero_in_flight {
            let (epoch, made_ns) = (*epoch, *made_ns);
            let late: Vec<String> = (0..layout.workers().len())
                .filter(|&i| polling(i) && layout.workers[i].zero_applied.load(Acquire) < epoch)
                .map(|i| i.to_string())
                .collect();
            if !late.is_empty() && now_ns.saturating_sub(made_ns) < ACK_TIMEOUT_NS {
                return;
            }
            let Some((_, w, _)) = self.zero_in_flight.take() else { return };
            let r = if late.is_empty() {
                Response::Zeroed { took_us: now_ns.saturating_sub(w.arrived_ns) / 1000 }
            } else {
                Response::error(format!(
                    "worker(s) {} did not zero their counters within {} s; they will when they poll again",
                    late.join(", "),
                    ACK_TIMEOUT_NS / 1_000_000_000
                ))
            };
            mailbox.reply(w.taken, &r.encode(), &[], now_ns);
        }
        let Some((key, w)) = self.zeros.pop_front() else { return };
        let area = &layout.config;
        area.zero_key.store(key, Release);
        let epoch = area.zero_epoch.load(Acquire) + 1;
        area.zero_epoch.store(epoch, Release);
        self.zero_in_flight = Some((epoch, w, now_ns));
    }

    /// Takes a change (or reload) from the mailbox: stages it, or answers its error at once.
    pub fn take<E: std::error::Error>(
        &mut self,
        mailbox: &mut Server<'_>,
        taken: Taken,
        result: Result<Runtime, E>,
        now_ns: u64,
    ) {
        match result {
            Ok(rt) => {
                let w = Waiting { taken, arrived_ns: now_ns };
                match self.staged.as_mut() {
                    Some((staged, list)) => {
                        *staged = rt;
                        list.push(w);
                    }
                    None => self.staged = Some((rt, vec![w])),
                }
            }
            Err(e) => {
                tracing::info!("configuration change refused: {e}");
                mailbox.reply(taken, &Response::error(e.to_string()).encode(), &[], now_ns);
            }
        }
    }

    /// Applies `change` to the latest configuration.
    ///
    /// # Errors
    /// As [`apply`].
    pub fn check(&self, change: &Change) -> Result<Runtime, ChangeError> {
        apply(&self.cfg, self.latest(), change)
    }

    /// The latest configuration with the changes in the file at `path` made
    /// ([`Request::Changes`](mailbox::proto::Request::Changes)).
    ///
    /// # Errors
    /// As [`apply_all`], and [`BatchError::Read`] / [`BatchError::Decode`] for the file.
    pub fn check_changes(&self, path: &str) -> Result<Runtime, BatchError> {
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|source| BatchError::Read { path: path.clone(), source })?;
        let changes = mailbox::proto::decode_changes(&bytes).map_err(|source| BatchError::Decode { path, source })?;
        apply_all(&self.cfg, self.latest(), &changes)
    }

    /// The runtime configuration of the file at `path` (`None`: the startup file).
    ///
    /// # Errors
    /// As [`reload`]; [`ReloadError::Embedded`] without a path when the instance started
    /// from no file.
    pub fn check_reload(&self, path: Option<&str>) -> Result<Runtime, ReloadError> {
        let path = match path {
            Some(p) => Path::new(p).to_owned(),
            None if self.cfg.source == "<embedded>" => return Err(ReloadError::Embedded),
            None => Path::new(&self.cfg.source).to_owned(),
        };
        reload(&self.cfg, &path)
    }

    /// Answers the requests of an acknowledged generation, and publishes the staged changes
    /// once nothing is in flight. `polling(slot)`: the slot has a polling process whose
    /// acknowledgement counts.
    pub fn tend(&mut self, shm: &Shm, mailbox: &mut Server<'_>, polling: impl Fn(usize) -> bool) {
        let layout = shm.layout();
        let area = &layout.config;
        let now_ns = monotonic_ns();
        self.tend_zero(shm, mailbox, &polling, now_ns);
        if let Some((g, _, published_ns)) = &self.in_flight {
            let (g, published_ns) = (*g, *published_ns);
            let acked = generation::applied_by_all(layout.workers(), g, &polling);
            if !acked && now_ns.saturating_sub(published_ns) < ACK_TIMEOUT_NS {
                return;
            }
            let Some((_, list, _)) = self.in_flight.take() else { return };
            let r = if acked {
                area.acked_ns.store(now_ns, std::sync::atomic::Ordering::Release);
                None
            } else {
                let late: Vec<String> = (0..layout.workers().len())
                    .filter(|&i| {
                        polling(i) && layout.workers[i].cfg_applied.load(std::sync::atomic::Ordering::Acquire) < g
                    })
                    .map(|i| i.to_string())
                    .collect();
                tracing::error!(generation = g, workers = %late.join(","), "configuration generation not acknowledged in time");
                Some(Response::error(format!(
                    "generation {g} is published, but worker(s) {} did not apply it within {} s (see the primary's log)",
                    late.join(", "),
                    ACK_TIMEOUT_NS / 1_000_000_000
                )))
            };
            for w in list {
                let r = r.clone().unwrap_or(Response::Applied {
                    generation: g,
                    took_us: now_ns.saturating_sub(w.arrived_ns) / 1000,
                });
                mailbox.reply(w.taken, &r.encode(), &[], now_ns);
            }
        }
        let Some((rt, _)) = &self.staged else { return };
        let bytes = generation::encode(rt);
        match generation::publish(shm.generations(), layout.workers(), &bytes, now_ns) {
            Ok(g) => {
                let (rt, list) = self.staged.take().unwrap_or_default();
                area.changes.fetch_add(list.len() as u64, std::sync::atomic::Ordering::AcqRel);
                tracing::info!(generation = g, changes = list.len(), "configuration generation published");
                self.published = rt;
                self.in_flight = Some((g, list, now_ns));
            }
            Err(PublishError::Busy(_)) => {}
            Err(e @ PublishError::TooLarge { .. }) => {
                let (_, list) = self.staged.take().unwrap_or_default();
                let message = format!("{e}; nothing was changed");
                for w in list {
                    mailbox.reply(w.taken, &Response::error(message.clone()).encode(), &[], now_ns);
                }
            }
        }
    }

    /// Answers every request still waiting (the instance is stopping).
    pub fn abandon(&mut self, mailbox: &mut Server<'_>) {
        let now_ns = monotonic_ns();
        let lists = self.in_flight.take().map(|(_, l, _)| l).into_iter().chain(self.staged.take().map(|(_, l)| l));
        let zeros =
            self.zero_in_flight.take().map(|(_, w, _)| w).into_iter().chain(self.zeros.drain(..).map(|(_, w)| w));
        for w in lists.flatten().chain(zeros) {
            let r = Response::error("the instance is stopping; the change may not have reached every worker");
            mailbox.reply(w.taken, &r.encode(), &[], now_ns);
        }
    }
}

#[cfg(test)]
mod tests;
