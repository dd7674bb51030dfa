//! Runtime configuration changes: each command is applied to a copy of the running
//! configuration, checked with the rules of the file, and staged; staged changes are published
//! together as the next generation once every polling worker has acknowledged the current one,
//! and each is answered when every polling worker acknowledges the generation that carries it.
//! A change that fails is answered at once and changes nothing.

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

/// Applies `change` to a copy of `rt` and checks the result against `cfg`'s ports.
///
/// # Errors
/// [`ChangeError`]: what is wrong with the change; `rt` is untouched.
pub fn apply(cfg: &Config, rt: &Runtime, change: &Change) -> Result<Runtime, ChangeError> {
    let mut next = rt.clone();
    let port_index = |name: &str| {
        cfg.port_by_name(name).ok_or_else(|| ChangeError::NoPort {
            name: name.to_owned(),
            ports: cfg.ports.iter().map(|p| p.name.clone()).collect(),
        })
    };
    let service =
        |rt: &Runtime, k: &ServiceKey| rt.service(k.protocol, k.vip, k.port).ok_or(ChangeError::NoService(*k));
    let users = |rt: &Runtime, a: Ipv4Addr| {
        rt.services.iter().find(|s| s.vip == a || s.local_addresses.contains(&a)).map(|s| ChangeError::AddressInUse {
            addr: a,
            service: ServiceKey { protocol: s.protocol, vip: s.vip, port: s.port },
        })
    };
    match change {
        Change::AddrAdd { port, addr, prefix } => {
            let port = port_index(port)?;
            next.addresses.push(conf::IfAddr { port, addr: *addr, prefix: *prefix });
        }
        Change::AddrDel { addr } => {
            let i = next.addresses.iter().position(|a| a.addr == *addr).ok_or(ChangeError::NoAddress(*addr))?;
            if let Some(why) = users(&next, *addr) {
                return Err(why);
            }
            next.addresses.remove(i);
        }
        Change::NeighSet { addr, mac, port } => {
            let port = port_index(port)?;
            let n = conf::Neighbour { addr: *addr, mac: *mac, port };
            match next.neighbours.iter_mut().find(|x| x.addr == *addr) {
                Some(x) => *x = n,
                None => next.neighbours.push(n),
            }
        }
        Change::NeighDel { addr } => {
            let i = next.neighbours.iter().position(|n| n.addr == *addr).ok_or(ChangeError::NoNeighbour(*addr))?;
            // A real server or gateway that loses its static entry is resolved by ARP.
            next.neighbours.remove(i);
        }
        Change::RouteAdd { prefix, len, via } => {
            if next.routes.iter().any(|r| r.prefix == *prefix && r.len == *len) {
                return Err(ChangeError::RouteExists { prefix: *prefix, len: *len });
            }
            next.routes.push(conf::Route { prefix: *prefix, len: *len, via: *via });
        }
        Change::RouteDel { prefix, len } => {
            let i = next
                .routes
                .iter()
                .position(|r| r.prefix == *prefix && r.len == *len)
                .ok_or(ChangeError::NoRoute { prefix: *prefix, len: *len })?;
            next.routes.remove(i);
        }
        Change::ServiceAdd { service: k, scheduler, persistence, proxy_protocol, group } => {
            if next.service(k.protocol, k.vip, k.port).is_some() {
                return Err(ChangeError::ServiceExists(*k));
            }
            next.services.push(conf::Service {
                vip: k.vip,
                port: k.port,
                protocol: k.protocol,
                scheduler: scheduler.parse::<sched::Kind>()?,
                local_addresses: Vec::new(),
                reals: Vec::new(),
                persistence: *persistence,
                deny: Vec::new(),
                allow: Vec::new(),
                proxy_protocol: *proxy_protocol,
                group: group.clone(),
            });
        }
        Change::ServiceEdit { service: k, scheduler, persistence, proxy_protocol } => {
            let i = service(&next, k)?;
            if scheduler.is_none() && persistence.is_none() && proxy_protocol.is_none() {
                return Err(ChangeError::NothingToChange);
            }
            if let Some(p) = proxy_protocol {
                next.services[i].proxy_protocol = *p;
            }
            if let Some(s) = scheduler {
                next.services[i].scheduler = s.parse::<sched::Kind>()?;
            }
            if let Some(p) = persistence {
                next.services[i].persistence = *p;
            }
        }
        Change::ServiceDel { service: k } => {
            let i = service(&next, k)?;
            next.services.remove(i);
        }
        Change::ServiceClear => next.services.clear(),
        Change::RealAdd { service: k, addr, port, weight, forward, thresholds: (upper, lower) } => {
            let i = service(&next, k)?;
            if next.services[i].reals.iter().any(|r| r.addr == *addr && r.port == *port) {
                return Err(ChangeError::RealExists { service: *k, addr: *addr, port: *port });
            }
            next.services[i].reals.push(conf::Real {
                addr: *addr,
                port: *port,
                weight: *weight,
                forward: *forward,
                upper: *upper,
                lower: *lower,
            });
        }
        Change::RealEdit { service: k, addr, port, weight, forward, upper, lower } => {
            let i = service(&next, k)?;
            let r = next.services[i]
                .reals
                .iter_mut()
                .find(|r| r.addr == *addr && r.port == *port)
                .ok_or(ChangeError::NoReal { service: *k, addr: *addr, port: *port })?;
            r.weight = *weight;
            if let Some(f) = forward {
                r.forward = *f;
            }
            if let Some(u) = upper {
                r.upper = *u;
            }
            if let Some(l) = lower {
                r.lower = *l;
            }
        }
        Change::RealDel { service: k, addr, port } => {
            let i = service(&next, k)?;
            let reals = &mut next.services[i].reals;
            let j = reals.iter().position(|r| r.addr == *addr && r.port == *port).ok_or(ChangeError::NoReal {
                service: *k,
                addr: *addr,
                port: *port,
            })?;
            reals.remove(j);
        }
        Change::LaddrAdd { service: k, addr } => {
            let i = service(&next, k)?;
            if next.services[i].local_addresses.contains(addr) {
                return Err(ChangeError::LaddrExists { service: *k, addr: *addr });
            }
            next.services[i].local_addresses.push(*addr);
        }
        Change::LaddrDel { service: k, addr } => {
            let i = service(&next, k)?;
            let l = &mut next.services[i].local_addresses;
            let j = l.iter().position(|a| a == addr).ok_or(ChangeError::NoLaddr { service: *k, addr: *addr })?;
            l.remove(j);
        }
        Change::AclAdd { service: k, list, prefix } => {
            let i = service(&next, k)?;
            let l = acl(&mut next.services[i], *list);
            if l.contains(prefix) {
                return Err(ChangeError::AclExists { service: *k, list: *list, prefix: *prefix });
            }
            l.push(*prefix);
        }
        Change::AclDel { service: k, list, prefix } => {
            let i = service(&next, k)?;
            let l = acl(&mut next.services[i], *list);
            let j = l.iter().position(|p| p == prefix).ok_or(ChangeError::NoAcl {
                service: *k,
                list: *list,
                prefix: *prefix,
            })?;
            l.remove(j);
        }
    }
    cfg.check_runtime(&next)?;
    Ok(next)
}

fn acl(s: &mut conf::Service, list: AclList) -> &mut Vec<conf::Prefix> {
    match list {
        AclList::Deny => &mut s.deny,
        AclList::Allow => &mut s.allow,
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
        match generation::publish(area, layout.workers(), &bytes, now_ns) {
            Ok(g) => {
                let (rt, list) = self.staged.take().unwrap_or_default();
                area.changes.fetch_add(list.len() as u64, std::sync::atomic::Ordering::AcqRel);
                tracing::info!(generation = g, changes = list.len(), "configuration generation published");
                self.published = rt;
                self.in_flight = Some((g, list, now_ns));
            }
            Err(PublishError::Busy(_)) => {}
            Err(e @ PublishError::TooLarge(_)) => {
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
