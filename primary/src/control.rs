//! Runtime configuration changes: each command is applied to a copy of the running
//! configuration, checked with the rules of the file, and staged; staged changes are published
//! together as the next generation once every polling worker has acknowledged the current one,
//! and each is answered when every polling worker acknowledges the generation that carries it.
//! A change that fails is answered at once and changes nothing.

use std::collections::HashMap;
use std::net::IpAddr;
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
    AddressInUse { addr: std::net::IpAddr, service: ServiceKey },
    /// The local address to install on a port belongs to another port.
    #[error("{addr} is an address of {owner}, not of {port}")]
    OtherPort { addr: std::net::IpAddr, owner: String, port: String },
    /// The address to remove is not an interface address.
    #[error("no address {0}")]
    NoAddress(std::net::IpAddr),
    /// The neighbour to remove has no static entry.
    #[error("no neighbour {0}")]
    NoNeighbour(IpAddr),
    /// The network to route has a static route already.
    #[error("{prefix}/{len} is routed already")]
    RouteExists { prefix: IpAddr, len: u8 },
    /// The route to remove does not exist.
    #[error("no route {prefix}/{len}")]
    NoRoute { prefix: IpAddr, len: u8 },
    /// The service to add exists.
    #[error("service {0} exists already")]
    ServiceExists(ServiceKey),
    /// The scheduler is not one of the known names.
    #[error(transparent)]
    Scheduler(#[from] sched::ParseKindError),
    /// A service edit that names nothing to change.
    #[error("nothing to change: give a scheduler, a persistence timeout or prefix, or a PROXY protocol version")]
    NothingToChange,
    /// The real server to add is one of the service's already.
    #[error("{} is a real server of {service} already", std::net::SocketAddr::new(*addr, *port))]
    RealExists { service: ServiceKey, addr: IpAddr, port: u16 },
    /// The real server to change or remove is not one of the service's.
    #[error("{} is not a real server of {service}", std::net::SocketAddr::new(*addr, *port))]
    NoReal { service: ServiceKey, addr: IpAddr, port: u16 },
    /// The local address to add is one of the service's already.
    #[error("{addr} is a local address of {service} already")]
    LaddrExists { service: ServiceKey, addr: IpAddr },
    /// The local address to remove is not one of the service's.
    #[error("{addr} is not a local address of {service}")]
    NoLaddr { service: ServiceKey, addr: IpAddr },
    /// The network to add is in the access list already.
    #[error("{prefix} is in the {} list of {service} already", list.name())]
    AclExists { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// The network to remove is not in the access list.
    #[error("{prefix} is not in the {} list of {service}", list.name())]
    NoAcl { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// The health check breaks a rule of the file.
    #[error("{0}")]
    Check(String),
    /// A real server's health was reported for a service that checks none.
    #[error("{service} has no health check: give it one first (dpvsctl check set)")]
    NoCheck { service: ServiceKey },
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
    let mut next = rt.clone();
    apply_in(cfg, (&mut next, &mut Derived::of(rt)), change, false)?;
    Ok(next)
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
    let mut next = rt.clone();
    apply_all_in(cfg, (&mut next, &mut Derived::of(rt)), changes)?;
    Ok(next)
}

/// [`apply_all`] in place: `rt` (with `derived`, its lookups) is changed, or untouched when the
/// changes are refused.
fn apply_all_in(
    cfg: &Config,
    (rt, derived): (&mut Runtime, &mut Derived),
    changes: &[Change],
) -> Result<Staged, BatchError> {
    let mut e = Edit::new(cfg, rt, derived);
    for (index, c) in changes.iter().enumerate() {
        if let Err(source) = e.make(c) {
            e.roll_back();
            return Err(BatchError::Change { index, source });
        }
    }
    if let Err(err) = cfg.check_runtime(e.next) {
        e.roll_back();
        return Err(BatchError::Invalid(err));
    }
    Ok(e.done())
}

/// Changes made in place, not yet published: what they touched since the published
/// generation (what the delta of the generation that publishes them carries), and how to take
/// them back.
#[derive(Debug, Default)]
pub struct Staged {
    touched: Touched,
    undo: Vec<Undo>,
}

impl Staged {
    /// Adds changes made after these.
    fn then(&mut self, later: Staged) {
        self.touched.merge(later.touched);
        self.undo.extend(later.undo);
    }
}

/// One step that takes back part of an edit ([`roll_back`] plays them newest first).
#[derive(Debug)]
enum Undo {
    /// The addresses, neighbours and routes as they were.
    Tables(Vec<conf::IfAddr>, Vec<conf::Neighbour>, Vec<conf::Route>),
    /// The service at this index as it was.
    Service(usize, conf::Shared<conf::Service>),
    /// A service was appended.
    Pushed,
    /// This service was removed from this index.
    Removed(usize, conf::Shared<conf::Service>),
    /// The services as they were (all removed).
    Services(Vec<conf::Shared<conf::Service>>),
    /// The whole configuration as it was (a reload).
    Whole(Runtime),
}

/// Takes back the changes `undo` records, newest first, in `rt` and its lookups `derived`.
fn roll_back(rt: &mut Runtime, derived: &mut Derived, undo: Vec<Undo>) {
    let mut again = false;
    for u in undo.into_iter().rev() {
        match u {
            Undo::Tables(a, n, r) => (rt.addresses, rt.neighbours, rt.routes) = (a, n, r),
            Undo::Service(i, s) => {
                derived.counts.remove(&rt.services[i]);
                derived.counts.add(&s);
                rt.services[i] = s;
            }
            Undo::Pushed => {
                if let Some(s) = rt.services.pop() {
                    derived.counts.remove(&s);
                    derived.index.remove(&ServiceKey::of(&s));
                }
            }
            Undo::Removed(i, s) => {
                rt.services.insert(i, s);
                again = true;
            }
            Undo::Services(s) => {
                rt.services = s;
                again = true;
            }
            Undo::Whole(w) => {
                *rt = w;
                again = true;
            }
        }
    }
    if again {
        *derived = Derived::of(rt);
    }
}

/// Lookups over a configuration's services, kept up to date as changes are made (and taken
/// back), so that a change to one service costs no pass over the others.
#[derive(Debug, Default)]
struct Derived {
    /// Each service's index by key.
    index: rustc_hash::FxHashMap<ServiceKey, usize>,
    /// What the rules between services need ([`Config::check_services`]).
    counts: conf::ServiceCounts,
}

impl Derived {
    fn of(rt: &Runtime) -> Derived {
        Derived {
            index: rt.services.iter().enumerate().map(|(i, s)| (ServiceKey::of(s), i)).collect(),
            counts: conf::ServiceCounts::of(&rt.services),
        }
    }
}

/// What changes touched, since the published generation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Touched {
    /// Everything may have changed (a reload): publish a snapshot.
    all: bool,
    addresses: bool,
    neighbours: bool,
    routes: bool,
    /// Each service touched, once, and whether it was removed (and maybe added again) since.
    services: HashMap<ServiceKey, bool>,
}

impl Touched {
    fn service(&mut self, k: ServiceKey, removed: bool) {
        *self.services.entry(k).or_insert(false) |= removed;
    }

    /// Adds what `later` touched.
    fn merge(&mut self, later: Touched) {
        self.all |= later.all;
        self.addresses |= later.addresses;
        self.neighbours |= later.neighbours;
        self.routes |= later.routes;
        for (k, removed) in later.services {
            self.service(k, removed);
        }
    }
}

/// Addresses, neighbours and routes.
type Tables = (Vec<conf::IfAddr>, Vec<conf::Neighbour>, Vec<conf::Route>);

/// `next`, if a change `touched` it and it differs from `base`.
fn changed<T: PartialEq + Clone>(touched: bool, base: &[T], next: &[T]) -> Option<Vec<T>> {
    (touched && base != next).then(|| next.to_vec())
}

/// Services a delta carries at most; a change touching more is published as a snapshot.
const DELTA_SERVICES: usize = 1024;

/// The delta that takes the generation whose tables are `base` to `next` (whose services'
/// indices are `index`), given what the changes between them `touched` (`None`: publish a
/// snapshot). Costs what the touched services cost.
fn delta(
    base: &Tables,
    next: &Runtime,
    index: &rustc_hash::FxHashMap<ServiceKey, usize>,
    touched: &Touched,
) -> Option<generation::Delta> {
    if touched.all || touched.services.len() > DELTA_SERVICES {
        return None;
    }
    // In `next`'s order: a reader appends the new ones as `next` has them.
    let mut at: Vec<usize> = touched.services.keys().filter_map(|k| index.get(k).copied()).collect();
    at.sort_unstable();
    let put = at.into_iter().map(|i| next.services[i].clone()).collect();
    Some(generation::Delta {
        addresses: changed(touched.addresses, &base.0, &next.addresses),
        neighbours: changed(touched.neighbours, &base.1, &next.neighbours),
        routes: changed(touched.routes, &base.2, &next.routes),
        removed: touched.services.iter().filter(|(_, &removed)| removed).map(|(k, _)| *k).collect(),
        put,
    })
}

/// [`apply`] in place, checking the whole result when `whole`: `rt` is changed, or untouched
/// when the change is refused.
fn apply_in(
    cfg: &Config,
    (rt, derived): (&mut Runtime, &mut Derived),
    change: &Change,
    whole: bool,
) -> Result<Staged, ChangeError> {
    let mut e = Edit::new(cfg, rt, derived);
    if let Err(err) = e.make(change) {
        e.roll_back();
        return Err(err);
    }
    // The services whose own rules the change may break: `None` for all of everything.
    let one = |k: &ServiceKey| e.derived.index.get(k).map(|&i| vec![i]);
    let touched = match (change, change.edited_service()) {
        _ if whole || e.touched.addresses => None,
        (_, Some(k)) => one(k),
        // Fewer services: no rule between the rest can break.
        (Change::ServiceDel { .. }, _) => Some(Vec::new()),
        _ => None,
    };
    let checked = match touched {
        Some(t) => cfg.check_services(e.next, &t, &e.derived.counts),
        None => cfg.check_runtime(e.next),
    };
    if let Err(err) = checked {
        e.roll_back();
        return Err(err.into());
    }
    Ok(e.done())
}

/// Changes being made: the running configuration they edit in place, the configuration whose
/// ports they may name, and how to take them back. Each command group has its own `impl`
/// block below.
struct Edit<'a> {
    cfg: &'a Config,
    next: &'a mut Runtime,
    /// What the changes made so far touched.
    touched: Touched,
    /// How to take them back.
    undo: Vec<Undo>,
    /// `next`'s lookups.
    derived: &'a mut Derived,
    /// The services the change being made changes, by index (counted out, to be counted in
    /// again as they are after it).
    saved: Vec<usize>,
    /// The services this edit added: taking it back removes them, so they are changed without
    /// keeping them as they were (`ipvsadm -R` adds thousands, then their real servers).
    fresh: rustc_hash::FxHashSet<ServiceKey>,
    /// Whether `undo` holds the tables as they were.
    tables_saved: bool,
}

impl<'a> Edit<'a> {
    /// Changes to `rt`, whose lookups are `derived`.
    fn new(cfg: &'a Config, rt: &'a mut Runtime, derived: &'a mut Derived) -> Self {
        Edit {
            cfg,
            next: rt,
            derived,
            touched: Touched::default(),
            undo: Vec::new(),
            saved: Vec::new(),
            fresh: Default::default(),
            tables_saved: false,
        }
    }

    /// Takes back every change made.
    fn roll_back(self) {
        roll_back(self.next, self.derived, self.undo);
    }

    /// The changes made, to stage.
    fn done(self) -> Staged {
        Staged { touched: self.touched, undo: self.undo }
    }

    /// The index of service `k`.
    fn find(&self, k: &ServiceKey) -> Option<usize> {
        self.derived.index.get(k).copied()
    }

    /// Indexes the services again (after a removal moved them).
    fn reindex(&mut self) {
        self.derived.index = self.next.services.iter().enumerate().map(|(i, s)| (ServiceKey::of(s), i)).collect();
    }
}

/// Making changes.
impl Edit<'_> {
    /// Makes `change` in `next`, unchecked against the rules of the file (the caller checks),
    /// and records what it touched.
    fn make(&mut self, change: &Change) -> Result<(), ChangeError> {
        let addresses = self.next.addresses.len();
        // The tables as they were, for a change that may touch them (a local address installed
        // with its port, or pruned with its last use).
        let tables = matches!(
            change,
            Change::AddrAdd { .. }
                | Change::AddrDel { .. }
                | Change::NeighSet { .. }
                | Change::NeighDel { .. }
                | Change::RouteAdd { .. }
                | Change::RouteDel { .. }
                | Change::LaddrAdd { port: Some(_), .. }
                | Change::LaddrDel { .. }
                | Change::ServiceDel { .. }
                | Change::ServiceClear
        );
        // Once an edit: taking it back restores the first.
        if tables && !self.tables_saved {
            let n = &self.next;
            self.undo.push(Undo::Tables(n.addresses.clone(), n.neighbours.clone(), n.routes.clone()));
            self.tables_saved = true;
        }
        self.saved.clear();
        let made = self.make_untracked(change);
        // The services changed are counted again, as they are now (also when the change
        // failed half-way: a roll-back counts them out).
        for &i in &self.saved {
            self.derived.counts.add(&self.next.services[i]);
        }
        made?;
        if matches!(change, Change::ServiceDel { .. } | Change::ServiceClear | Change::LaddrDel { .. }) {
            self.prune_sapool();
        }
        let t = &mut self.touched;
        match change {
            Change::AddrAdd { .. } | Change::AddrDel { .. } => t.addresses = true,
            Change::NeighSet { .. } | Change::NeighDel { .. } => t.neighbours = true,
            Change::RouteAdd { .. } | Change::RouteDel { .. } => t.routes = true,
            Change::ServiceClear => t.all = true,
            Change::ServiceDel { service } => t.service(*service, true),
            c => {
                if let Some(service) = c.edited_service() {
                    t.service(*service, false);
                }
            }
        }
        // A local address installed or pruned with its service's change.
        t.addresses |= self.next.addresses.len() != addresses;
        Ok(())
    }

    fn make_untracked(&mut self, change: &Change) -> Result<(), ChangeError> {
        match change {
            Change::AddrAdd { port, addr, prefix } => self.add_address(port, *addr, *prefix)?,
            Change::AddrDel { addr } => self.del_address(*addr)?,
            Change::NeighSet { addr, mac, port } => self.set_neighbour(*addr, *mac, port)?,
            Change::NeighDel { addr } => self.del_neighbour(*addr)?,
            Change::RouteAdd { prefix, len, via } => self.add_route(*prefix, *len, *via)?,
            Change::RouteDel { prefix, len } => self.del_route(*prefix, *len)?,
            Change::ServiceAdd { service, scheduler, persistence, persistence_prefix, proxy_protocol, group } => {
                let persistent = (*persistence, *persistence_prefix);
                self.add_service(service, scheduler, (persistent, *proxy_protocol), group.clone())?
            }
            Change::ServiceEdit { service, scheduler, persistence, persistence_prefix, proxy_protocol } => {
                let persistent = (*persistence, *persistence_prefix);
                self.edit_service(service, scheduler.as_deref(), persistent, *proxy_protocol)?
            }
            Change::ServiceDel { service } => self.del_service(service)?,
            Change::ServiceClear => {
                self.undo.push(Undo::Services(std::mem::take(&mut self.next.services)));
                *self.derived = Derived::default();
            }
            Change::RealAdd { service, addr, port, weight, forward, thresholds: (upper, lower) } => {
                let (upper, lower) = (*upper, *lower);
                self.add_real(
                    service,
                    conf::Real {
                        addr: *addr,
                        port: *port,
                        weight: *weight,
                        forward: *forward,
                        upper,
                        lower,
                        down: false,
                    },
                )?
            }
            Change::RealEdit { service, addr, port, weight, forward, upper, lower } => {
                self.edit_real(service, (*addr, *port), *weight, *forward, (*upper, *lower))?
            }
            Change::RealDel { service, addr, port } => self.del_real(service, *addr, *port)?,
            Change::LaddrAdd { service, addr, port } => self.add_laddr(service, *addr, port.as_deref())?,
            Change::LaddrDel { service, addr } => self.del_laddr(service, *addr)?,
            Change::AclAdd { service, list, prefix } => self.add_acl(service, *list, *prefix)?,
            Change::AclDel { service, list, prefix } => self.del_acl(service, *list, *prefix)?,
            Change::CheckSet { service, check } => self.set_check(service, check.clone())?,
            Change::RealHealth { service, addr, port, down } => self.real_health(service, (*addr, *port), *down)?,
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

    fn add_address(&mut self, port: &str, addr: std::net::IpAddr, prefix: u8) -> Result<(), ChangeError> {
        let port = self.port(port)?;
        self.next.addresses.push(conf::IfAddr { port, addr, prefix, sapool: false });
        Ok(())
    }

    /// Refused while a service uses the address as a local address, or as its VIP unless
    /// another interface address covers its network (a VRRP backup gives its VIP up and
    /// keeps the service: `dpip addr del` in keepalived's notify script).
    fn del_address(&mut self, addr: std::net::IpAddr) -> Result<(), ChangeError> {
        let counts = &self.derived.counts;
        let as_vip = counts.uses(addr) && !counts.uses_as_laddr(addr);
        let at = self.next.addresses.iter().position(|a| a.addr == addr).ok_or(ChangeError::NoAddress(addr))?;
        let removed = self.next.addresses.remove(at);
        let covered = as_vip && conf::Resolver::new(&self.next.addresses, &self.next.routes).vip_port(addr).is_some();
        if counts.uses(addr) && !covered {
            self.next.addresses.insert(at, removed);
            // The services are searched only to name the one that uses it.
            let user = |s: &&conf::Shared<conf::Service>| s.vip == addr || s.local_addresses.contains(&addr);
            if let Some(s) = self.next.services.iter().find(user) {
                return Err(ChangeError::AddressInUse { addr, service: ServiceKey::of(s) });
            }
        }
        Ok(())
    }

    /// Adds a neighbour, or replaces the entry of its address.
    fn set_neighbour(&mut self, addr: IpAddr, mac: [u8; 6], port: &str) -> Result<(), ChangeError> {
        let n = conf::Neighbour { addr, mac, port: self.port(port)? };
        match self.next.neighbours.iter_mut().find(|x| x.addr == addr) {
            Some(x) => *x = n,
            None => self.next.neighbours.push(n),
        }
        Ok(())
    }

    /// A real server or gateway that loses its static entry is resolved by ARP.
    fn del_neighbour(&mut self, addr: IpAddr) -> Result<(), ChangeError> {
        remove_first(&mut self.next.neighbours, |n| n.addr == addr).ok_or(ChangeError::NoNeighbour(addr))?;
        Ok(())
    }
}

/// Static routes.
impl Edit<'_> {
    fn add_route(&mut self, prefix: IpAddr, len: u8, via: IpAddr) -> Result<(), ChangeError> {
        if self.next.routes.iter().any(|r| r.prefix == prefix && r.len == len) {
            return Err(ChangeError::RouteExists { prefix, len });
        }
        self.next.routes.push(conf::Route { prefix, len, via });
        Ok(())
    }

    fn del_route(&mut self, prefix: IpAddr, len: u8) -> Result<(), ChangeError> {
        let routes = &mut self.next.routes;
        remove_first(routes, |r| r.prefix == prefix && r.len == len).ok_or(ChangeError::NoRoute { prefix, len })?;
        Ok(())
    }
}

/// Services.
impl Edit<'_> {
    /// Service `k`, to change (as it was is kept to take the change back: changing it copies
    /// it).
    fn service(&mut self, k: &ServiceKey) -> Result<&mut conf::Service, ChangeError> {
        let i = self.find(k).ok_or(ChangeError::NoService(*k))?;
        if !self.saved.contains(&i) {
            self.saved.push(i);
            self.derived.counts.remove(&self.next.services[i]);
            if !self.fresh.contains(k) {
                self.undo.push(Undo::Service(i, self.next.services[i].clone()));
            }
        }
        Ok(&mut self.next.services[i])
    }

    /// A service without real servers or local addresses yet.
    fn add_service(
        &mut self,
        k: &ServiceKey,
        scheduler: &str,
        ((persistence, prefix), proxy_protocol): ((u32, u8), conf::ProxyProtocol),
        group: Option<String>,
    ) -> Result<(), ChangeError> {
        if self.find(k).is_some() {
            return Err(ChangeError::ServiceExists(*k));
        }
        let scheduler = scheduler.parse::<sched::Kind>()?;
        self.derived.index.insert(*k, self.next.services.len());
        self.fresh.insert(*k);
        self.undo.push(Undo::Pushed);
        let s = conf::Shared::new(conf::Service {
            vip: k.vip,
            port: k.port,
            protocol: k.protocol,
            scheduler,
            local_addresses: Vec::new(),
            reals: Vec::new(),
            persistence,
            persistence_prefix: whole_is_none(k.vip, prefix),
            deny: Vec::new(),
            allow: Vec::new(),
            proxy_protocol,
            group,
            check: None,
        });
        self.derived.counts.add(&s);
        self.next.services.push(s);
        Ok(())
    }

    /// Changes what is given; at least one thing must be.
    fn edit_service(
        &mut self,
        k: &ServiceKey,
        scheduler: Option<&str>,
        (persistence, prefix): (Option<u32>, Option<u8>),
        proxy_protocol: Option<conf::ProxyProtocol>,
    ) -> Result<(), ChangeError> {
        let s = self.service(k)?;
        if scheduler.is_none() && persistence.is_none() && prefix.is_none() && proxy_protocol.is_none() {
            return Err(ChangeError::NothingToChange);
        }
        if let Some(p) = prefix {
            s.persistence_prefix = whole_is_none(k.vip, p);
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
        let old = self.next.services.remove(i);
        self.derived.counts.remove(&old);
        self.undo.push(Undo::Removed(i, old));
        self.reindex();
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
        (addr, port): (IpAddr, u16),
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

    /// Sets or takes away the service's health check (as the file's rules make it); without
    /// one, every real server is up.
    fn set_check(&mut self, k: &ServiceKey, check: Option<conf::HealthCheck>) -> Result<(), ChangeError> {
        let check = check.map(|c| c.normalised()).transpose().map_err(ChangeError::Check)?;
        let s = self.service(k)?;
        if check.is_none() {
            for r in &mut s.reals {
                r.down = false;
            }
        }
        s.check = check;
        Ok(())
    }

    /// Records a real server's health as its service's checker found it.
    fn real_health(&mut self, k: &ServiceKey, (addr, port): (IpAddr, u16), down: bool) -> Result<(), ChangeError> {
        let s = self.service(k)?;
        if s.check.is_none() {
            return Err(ChangeError::NoCheck { service: *k });
        }
        let r = s.reals.iter_mut().find(|r| r.addr == addr && r.port == port);
        r.ok_or(ChangeError::NoReal { service: *k, addr, port })?.down = down;
        Ok(())
    }

    fn del_real(&mut self, k: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), ChangeError> {
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
    fn add_laddr(&mut self, k: &ServiceKey, addr: IpAddr, port: Option<&str>) -> Result<(), ChangeError> {
        if let Some(name) = port {
            let p = self.port(name)?;
            match self.next.addresses.iter().find(|a| a.addr == addr) {
                None => {
                    // A host address: /32, or /128 for IPv6.
                    let prefix = if addr.is_ipv6() { 128 } else { 32 };
                    self.next.addresses.push(conf::IfAddr { port: p, addr, prefix, sapool: true })
                }
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

    fn del_laddr(&mut self, k: &ServiceKey, addr: IpAddr) -> Result<(), ChangeError> {
        let l = &mut self.service(k)?.local_addresses;
        remove_first(l, |a| *a == addr).ok_or(ChangeError::NoLaddr { service: *k, addr })?;
        Ok(())
    }

    /// Removes the addresses `add_laddr` installed that no service uses any more (after a
    /// local address or a service is removed, and the services are counted again).
    fn prune_sapool(&mut self) {
        let counts = &self.derived.counts;
        self.next.addresses.retain(|a| !a.sapool || counts.uses(a.addr));
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

/// Keeps what `dpvs-health` found across a reload: a real server down in `old` stays down in
/// `new` when its service there still has a health check (a file says nothing of health, and
/// the checker would otherwise take a dead server out again only after `fall` more failures).
fn keep_health(old: &Runtime, new: &mut Runtime) {
    let down: std::collections::HashSet<(ServiceKey, IpAddr, u16)> = old
        .services
        .iter()
        .flat_map(|s| s.reals.iter().filter(|r| r.down).map(move |r| (ServiceKey::of(s), r.addr, r.port)))
        .collect();
    if down.is_empty() {
        return;
    }
    for s in &mut new.services {
        let k = ServiceKey::of(s);
        if s.check.is_none() || !s.reals.iter().any(|r| down.contains(&(k, r.addr, r.port))) {
            continue;
        }
        for r in &mut s.reals {
            r.down = down.contains(&(k, r.addr, r.port));
        }
    }
}

/// Keeps across a reload the VIPs a port was given at run time (keepalived's notify script on
/// a VRRP master: `dpip addr add`) that the file does not list but its services still use: a
/// reload must not take the VIP from the master while keepalived thinks it holds it.
fn keep_held_vips(old: &Runtime, new: &mut Runtime) {
    let vips: std::collections::HashSet<IpAddr> = new.services.iter().map(|s| s.vip).collect();
    let listed: std::collections::HashSet<IpAddr> = new.addresses.iter().map(|a| a.addr).collect();
    let held = old.addresses.iter().filter(|a| !a.sapool && vips.contains(&a.addr) && !listed.contains(&a.addr));
    let held: Vec<conf::IfAddr> = held.cloned().collect();
    new.addresses.extend(held);
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
    /// The configuration with every change made: the published generation's with the staged
    /// changes.
    latest: Runtime,
    /// `latest`'s lookups.
    derived: Derived,
    /// The published generation's addresses, neighbours and routes.
    published: Tables,
    /// When a generation was last published (ns).
    published_ns: u64,
    /// Published generation whose acknowledgements are awaited, with the requests it carries
    /// and when it was published (ns).
    in_flight: Option<(u64, Vec<Waiting>, u64)>,
    /// Changes applied after `in_flight`, to be published next, with their requests.
    staged: Option<(Staged, Vec<Waiting>)>,
    /// A snapshot being written off the control loop: its generation and the writer.
    encoding: Option<(u64, std::thread::JoinHandle<Result<(), String>>)>,
    /// Counter-zeroing requests not yet made, by service key (0: all).
    zeros: std::collections::VecDeque<(u64, Waiting)>,
    /// The zeroing request the workers carry out now: its epoch, its request, when it was made.
    zero_in_flight: Option<(u64, Waiting, u64)>,
}

/// The snapshot writer: encodes `rt` (generation `g`) and writes it as the newest snapshot
/// through a mapping of its own of the shared memory at `path`, retrying while a reader holds
/// the buffer it goes to.
fn write_snapshot(path: &Path, g: u64, rt: &Runtime) -> Result<(), String> {
    // Linux: the calling thread's priority. It yields to the control loop (nice -10) on a
    // shared CPU, but not so far that changes arriving all the time starve it.
    let _ = rustix::process::setpriority_process(None, 0);
    let bytes = generation::encode(rt);
    let shm = Shm::open(path).map_err(|e| e.to_string())?;
    for _ in 0..1000 {
        match generation::write_snapshot(shm.generations(), shm.layout().workers(), g, &bytes) {
            Err(PublishError::Busy(_)) => std::thread::sleep(std::time::Duration::from_millis(1)),
            r => return r.map_err(|e| e.to_string()),
        }
    }
    Err("a reader kept the snapshot buffer busy".into())
}

/// How long the control plane is idle before it writes a snapshot of a generation published as
/// a delta (it writes one sooner when the ring fills).
const SNAPSHOT_IDLE_NS: u64 = 200_000_000;

impl Control {
    /// Control over the generations of `cfg`'s instance; generation 1 (`cfg`'s runtime part)
    /// is published at start-up by [`generation::init`].
    pub fn new(cfg: &Config) -> Control {
        Control {
            cfg: cfg.clone(),
            latest: cfg.runtime(),
            derived: Derived::of(&cfg.runtime()),
            published: (cfg.addresses.clone(), cfg.neighbours.clone(), cfg.routes.clone()),
            published_ns: 0,
            in_flight: None,
            staged: None,
            encoding: None,
            zeros: std::collections::VecDeque::new(),
            zero_in_flight: None,
        }
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
                if !self.derived.index.contains_key(&k) {
                    let r = Response::error(format!("no service {k}"));
                    mailbox.reply(taken, &r.encode(), &[], now_ns);
                    return;
                }
                shm_layout::ServiceCounters::key_of(k.protocol.number(), k.vip, k.port)
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
        result: Result<Staged, E>,
        now_ns: u64,
    ) {
        match result {
            Ok(next) => {
                let w = Waiting { taken, arrived_ns: now_ns };
                match self.staged.as_mut() {
                    Some((staged, list)) => {
                        staged.then(next);
                        list.push(w);
                    }
                    None => self.staged = Some((next, vec![w])),
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
    pub fn check(&mut self, change: &Change) -> Result<Staged, ChangeError> {
        apply_in(&self.cfg, (&mut self.latest, &mut self.derived), change, false)
    }

    /// The latest configuration with the changes in the file at `path` made
    /// ([`Request::Changes`](mailbox::proto::Request::Changes)).
    ///
    /// # Errors
    /// As [`apply_all`], and [`BatchError::Read`] / [`BatchError::Decode`] for the file.
    pub fn check_changes(&mut self, path: &str) -> Result<Staged, BatchError> {
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|source| BatchError::Read { path: path.clone(), source })?;
        let changes = mailbox::proto::decode_changes(&bytes).map_err(|source| BatchError::Decode { path, source })?;
        apply_all_in(&self.cfg, (&mut self.latest, &mut self.derived), &changes)
    }

    /// The runtime configuration of the file at `path` (`None`: the startup file).
    ///
    /// # Errors
    /// As [`reload`]; [`ReloadError::Embedded`] without a path when the instance started
    /// from no file.
    pub fn check_reload(&mut self, path: Option<&str>) -> Result<Staged, ReloadError> {
        let path = match path {
            Some(p) => Path::new(p).to_owned(),
            None if self.cfg.source == "<embedded>" => return Err(ReloadError::Embedded),
            None => Path::new(&self.cfg.source).to_owned(),
        };
        let mut rt = reload(&self.cfg, &path)?;
        keep_health(&self.latest, &mut rt);
        let file = rt.clone();
        keep_held_vips(&self.latest, &mut rt);
        if let Err(e) = self.cfg.check_runtime(&rt) {
            tracing::warn!("reload: the VIPs held at run time are not kept ({e})");
            rt = file;
        }
        self.derived = Derived::of(&rt);
        let old = std::mem::replace(&mut self.latest, rt);
        Ok(Staged { touched: Touched { all: true, ..Touched::default() }, undo: vec![Undo::Whole(old)] })
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
        self.tend_snapshot(shm, now_ns);
        if self.staged.is_none() {
            return;
        }
        match self.publish(shm, now_ns) {
            Ok(g) => {
                let (next, list) = self.staged.take().unwrap_or_default();
                area.changes.fetch_add(list.len() as u64, std::sync::atomic::Ordering::AcqRel);
                tracing::debug!(generation = g, changes = list.len(), "configuration generation published");
                let (t, rt) = (&next.touched, &self.latest);
                if t.all || t.addresses {
                    self.published.0.clone_from(&rt.addresses);
                }
                if t.all || t.neighbours {
                    self.published.1.clone_from(&rt.neighbours);
                }
                if t.all || t.routes {
                    self.published.2.clone_from(&rt.routes);
                }
                self.published_ns = now_ns;
                self.in_flight = Some((g, list, now_ns));
                // Nothing staged now: the moment to start a snapshot of this generation, if
                // one is due (changes arriving all the time leave no other).
                self.tend_snapshot(shm, now_ns);
            }
            Err(PublishError::Busy(_)) => {}
            Err(e) => {
                let (staged, list) = self.staged.take().unwrap_or_default();
                roll_back(&mut self.latest, &mut self.derived, staged.undo);
                let message = format!("{e}; nothing was changed");
                for w in list {
                    mailbox.reply(w.taken, &Response::error(message.clone()).encode(), &[], now_ns);
                }
            }
        }
    }

    /// Publishes `next` as the next generation: a delta when its changes fit one, else a
    /// snapshot.
    fn publish(&mut self, shm: &Shm, now_ns: u64) -> Result<u64, PublishError> {
        let gens = shm.generations();
        let touched = self.staged.as_ref().map(|(next, _)| &next.touched);
        let d = touched.and_then(|t| delta(&self.published, &self.latest, &self.derived.index, t));
        if let Some(d) = d {
            match generation::publish_delta(gens, &d, now_ns) {
                // The ring is full of deltas after the newest snapshot: the snapshot being
                // written (if any) makes room.
                Err(PublishError::Lapping(_)) if self.encoding.is_some() => {
                    self.finish_snapshot();
                    match generation::publish_delta(gens, &d, now_ns) {
                        Err(PublishError::Lapping(_) | PublishError::DeltaTooLarge { .. }) => {}
                        r => return r,
                    }
                }
                // Too large, or no snapshot made room: this one is.
                Err(PublishError::DeltaTooLarge { .. } | PublishError::Lapping(_)) => {}
                r => return r,
            }
        }
        self.finish_snapshot();
        generation::publish_snapshot(gens, shm.layout().workers(), &generation::encode(&self.latest), now_ns)
    }

    /// Writes a snapshot of the published generation from a thread of its own (below the
    /// control loop's priority, through its own mapping of the shared memory) when the ring
    /// holds many deltas past the newest snapshot or the control plane has been idle a while:
    /// readers that start (a worker, `dpvsctl`) then replay few deltas, and the ring has room.
    fn tend_snapshot(&mut self, shm: &Shm, now_ns: u64) {
        if let Some((at, writer)) = &self.encoding {
            if writer.is_finished() {
                let at = *at;
                self.finish_snapshot();
                tracing::debug!(generation = at, "snapshot written");
            }
            return;
        }
        let gens = shm.generations();
        let g = gens.area.generation.load(std::sync::atomic::Ordering::SeqCst);
        let idle = self.in_flight.is_none() && now_ns.saturating_sub(self.published_ns) >= SNAPSHOT_IDLE_NS;
        let due = generation::ring_filling(gens) || (idle && generation::snapshot_generation(gens) < g);
        // Nothing staged: the configuration is the published generation's.
        if !due || self.staged.is_some() {
            return;
        }
        let (rt, path) = (self.latest.clone(), shm.path().to_owned());
        let spawned = std::thread::Builder::new().name("snapshot".into()).spawn(move || write_snapshot(&path, g, &rt));
        match spawned {
            Ok(writer) => self.encoding = Some((g, writer)),
            Err(e) => tracing::warn!("cannot start the snapshot writer: {e}"),
        }
    }

    /// Waits for the snapshot being written, if any (before the control loop writes one
    /// itself: one writer of the snapshot buffers at a time).
    fn finish_snapshot(&mut self) {
        let Some((at, writer)) = self.encoding.take() else { return };
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(generation = at, "snapshot not written: {e}"),
            Err(_) => tracing::error!(generation = at, "the snapshot writer panicked"),
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

/// A persistence prefix as the configuration keeps it: the whole address's length (32, 128)
/// is 0, each address alone (a longer one is refused by the configuration's check).
fn whole_is_none(vip: std::net::IpAddr, prefix: u8) -> u8 {
    let whole = if vip.is_ipv6() { 128 } else { 32 };
    if prefix == whole {
        0
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests;
