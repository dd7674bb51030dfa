//! The part of a configuration that changes while the instance runs: interface addresses,
//! neighbours, routes, services with their real servers and local addresses. The primary keeps one
//! [`Runtime`], changes a copy per command (or replaces it on reload), checks the copy with
//! the same rules as the file ([`Config::check_runtime`]) and publishes it as the next
//! configuration generation; workers and `dpvsctl` decode it from shared memory.

use toml_edit::{value, Array, Item, Table};

use crate::raw::{Int, RawAddress, RawNeighbour, RawReal, RawRoute, RawService};
use crate::{mac_text, Config, IfAddr, Neighbour, Protocol, Route, Service};

/// Addresses, neighbours and services: what commands and `reload` change.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    /// Addresses the ports own.
    pub addresses: Vec<IfAddr>,
    /// Static neighbours.
    pub neighbours: Vec<Neighbour>,
    /// Static routes.
    pub routes: Vec<Route>,
    /// Virtual services, each shared with the copies of the configuration that did not change
    /// it.
    pub services: Vec<crate::Shared<Service>>,
}

/// A runtime configuration that breaks a rule of the file ([`Config::check_runtime`]): as a
/// [`crate::ConfError`], without a file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuntimeError {
    /// Key path of the offending value, as in the file (`services[0].reals[1].port`).
    pub key: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// What the rules between services need to know of all of them, kept up to date as services
/// change ([`ServiceCounts::add`], [`ServiceCounts::remove`]) so that checking one changed
/// service does not scan the others ([`Config::check_services`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    /// Real servers over all services.
    reals: usize,
    /// Services per key.
    keys: HashMap<(IpAddr, u16, crate::Protocol), u32>,
    /// Services per VIP.
    vips: HashMap<IpAddr, u32>,
    /// Services per local address.
    laddrs: HashMap<IpAddr, u32>,
}

type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;
use std::net::IpAddr;

impl ServiceCounts {
    /// The counts of `services`.
    pub fn of<'a>(services: impl IntoIterator<Item = &'a crate::Shared<crate::Service>>) -> ServiceCounts {
        let mut c = ServiceCounts::default();
        for s in services {
            c.add(s);
        }
        c
    }

    /// Counts service `s` in.
    pub fn add(&mut self, s: &crate::Service) {
        self.reals += s.reals.len();
        *self.keys.entry((s.vip, s.port, s.protocol)).or_default() += 1;
        *self.vips.entry(s.vip).or_default() += 1;
        for a in &s.local_addresses {
            *self.laddrs.entry(*a).or_default() += 1;
        }
    }

    /// Whether `addr` is a local address of a service.
    pub fn uses_as_laddr(&self, addr: impl Into<IpAddr>) -> bool {
        self.laddrs.contains_key(&addr.into())
    }

    /// Whether `addr` is the VIP or a local address of a service.
    pub fn uses(&self, addr: impl Into<IpAddr>) -> bool {
        let addr = addr.into();
        self.vips.contains_key(&addr) || self.laddrs.contains_key(&addr)
    }

    /// Counts service `s` out (it was counted in).
    pub fn remove(&mut self, s: &crate::Service) {
        fn down<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
            if let Some(n) = m.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
        self.reals = self.reals.saturating_sub(s.reals.len());
        down(&mut self.keys, (s.vip, s.port, s.protocol));
        down(&mut self.vips, s.vip);
        for a in &s.local_addresses {
            down(&mut self.laddrs, *a);
        }
    }
}

/// Which worker groups poll each port: what decides the group that serves a service. The
/// configuration builds it from `[[groups]]`, a worker from the slots in shared memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pollers {
    /// Per port slot, the groups polling any of its queues, in slot order.
    ports: Vec<Vec<String>>,
    /// Every group, in slot order.
    groups: Vec<String>,
}

impl Pollers {
    /// From (port slot, group name) of every polled queue, in slot order.
    pub fn new<'a>(queues: impl IntoIterator<Item = (usize, &'a str)>) -> Pollers {
        let mut p = Pollers::default();
        for (port, group) in queues {
            if p.ports.len() <= port {
                p.ports.resize(port + 1, Vec::new());
            }
            if !p.ports[port].iter().any(|g| g == group) {
                p.ports[port].push(group.to_owned());
            }
            if !p.groups.iter().any(|g| g == group) {
                p.groups.push(group.to_owned());
            }
        }
        p
    }

    /// Of the lcores of `groups`.
    pub fn of(groups: &[crate::WorkerGroup]) -> Pollers {
        Pollers::new(
            groups.iter().flat_map(|g| g.lcores.iter().flat_map(|l| l.rx.iter().map(|q| (q.port, g.name.as_str())))),
        )
    }

    /// Every group name, in slot order.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The groups polling port slot `port`.
    pub fn of_port(&self, port: usize) -> &[String] {
        self.ports.get(port).map_or(&[], Vec::as_slice)
    }

    /// The group that serves `s`: the one it names, else the first polling its VIP's port
    /// (found through `addresses`, the runtime's lookups).
    pub fn group_of<'a>(&'a self, s: &'a Service, addresses: &crate::Resolver<'_>) -> Option<&'a str> {
        if let Some(g) = &s.group {
            return Some(g);
        }
        let port = addresses.vip_port(s.vip)?;
        self.of_port(port).first().map(String::as_str)
    }
}

impl Protocol {
    /// `tcp` or `udp`, as the file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Runtime {
    /// The next hop towards `addr`: itself on a connected network, else the gateway of the
    /// longest matching route.
    pub fn next_hop(&self, addr: IpAddr) -> Option<IpAddr> {
        crate::validate::next_hop(addr, &self.addresses, &self.routes)
    }

    /// Lookups of next hops and addresses for many addresses at a time.
    pub fn resolver(&self) -> crate::Resolver<'_> {
        crate::Resolver::new(&self.addresses, &self.routes)
    }

    /// This runtime with only the services `group` serves: what a worker of that group runs.
    pub fn served_by(&self, pollers: &Pollers, group: &str) -> Runtime {
        let resolver = self.resolver();
        let serves = |s: &&crate::Shared<crate::Service>| pollers.group_of(s, &resolver) == Some(group);
        Runtime {
            addresses: self.addresses.clone(),
            neighbours: self.neighbours.clone(),
            routes: self.routes.clone(),
            services: self.services.iter().filter(serves).cloned().collect(),
        }
    }

    /// Index of the service `proto vip:port`.
    pub fn service(&self, protocol: Protocol, vip: impl Into<IpAddr>, port: u16) -> Option<usize> {
        let vip = vip.into();
        self.services.iter().position(|s| s.protocol == protocol && s.vip == vip && s.port == port)
    }
}

impl Config {
    /// The runtime part of this configuration.
    pub fn runtime(&self) -> Runtime {
        Runtime {
            addresses: self.addresses.clone(),
            neighbours: self.neighbours.clone(),
            routes: self.routes.clone(),
            services: self.services.clone(),
        }
    }

    /// Which groups poll each port.
    pub fn pollers(&self) -> Pollers {
        Pollers::of(&self.groups)
    }

    /// Checks `rt` as [`Config::check_runtime`] does, when it differs from a configuration that
    /// passed only in the services at the indices `touched` (changed or added; other services
    /// removed): those services' own rules, and the rules between services and the limits as
    /// far as they concern them. `counts` describes `rt`'s services ([`ServiceCounts`]): with
    /// them the time does not grow with the number of other services (the other services are
    /// scanned only to name a broken rule), where `check_runtime` checks everything.
    ///
    /// # Errors
    /// [`RuntimeError`]: the first rule broken, named as `check_runtime` names it.
    pub fn check_services(&self, rt: &Runtime, touched: &[usize], counts: &ServiceCounts) -> Result<(), RuntimeError> {
        let fault = |f: crate::error::Fault| RuntimeError { key: f.path.to_string(), message: f.message };
        let root = crate::error::KeyPath::root().key("services");
        let lim = &self.limits;
        if rt.services.len() > lim.services as usize {
            let f = crate::validate::too_many(&root.index(lim.services as usize), "services", lim.services);
            return Err(fault(f));
        }
        if counts.reals > lim.reals as usize {
            let mut total = 0usize;
            for (i, s) in rt.services.iter().enumerate() {
                total += s.reals.len();
                if total > lim.reals as usize {
                    return Err(fault(crate::validate::too_many(&root.index(i).key("reals"), "reals", lim.reals)));
                }
            }
        }
        let resolver = rt.resolver();
        let pollers = self.pollers();
        let names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        let ctx = crate::validate::ServiceCtx { resolver: &resolver, pollers: &pollers, port_names: &names, lim };
        for &i in touched {
            let Some(s) = rt.services.get(i) else { continue };
            let path = root.index(i);
            crate::validate::service(raw_service(s), &ctx, &path).map_err(fault)?;
            let key = (s.vip, s.port, s.protocol);
            if counts.keys.get(&key).is_some_and(|&n| n > 1) {
                if let Some(j) =
                    rt.services.iter().enumerate().position(|(j, o)| j != i && (o.vip, o.port, o.protocol) == key)
                {
                    let (first, later) = (i.min(j), i.max(j));
                    let message = format!("the same virtual service is services[{first}]");
                    return Err(RuntimeError { key: root.index(later).key("vip").to_string(), message });
                }
            }
            // Its local addresses are no service's VIP, and its VIP no service's local address.
            let first_with_vip = |a| rt.services.iter().position(|o| o.vip == a);
            for (j, a) in s.local_addresses.iter().enumerate() {
                if !counts.vips.contains_key(a) {
                    continue;
                }
                if let Some(k) = first_with_vip(*a) {
                    return Err(fault(crate::validate::laddr_is_a_vip(&root, (i, j), *a, k)));
                }
            }
            if !counts.laddrs.contains_key(&s.vip) {
                continue;
            }
            for (o, other) in rt.services.iter().enumerate() {
                if let Some(j) = other.local_addresses.iter().position(|a| *a == s.vip) {
                    let k = first_with_vip(s.vip).unwrap_or(i);
                    return Err(fault(crate::validate::laddr_is_a_vip(&root, (o, j), s.vip, k)));
                }
            }
        }
        Ok(())
    }

    /// Checks `rt` against this configuration's ports with the rules of the file (limits,
    /// duplicates, a VIP or local address must be an interface address, a real server must be
    /// on a connected network or behind a route, ...).
    ///
    /// # Errors
    /// [`RuntimeError`]: the first rule broken, naming the key and the value.
    pub fn check_runtime(&self, rt: &Runtime) -> Result<(), RuntimeError> {
        let name = |p: usize| self.ports.get(p).map(|p| p.name.clone());
        let addresses = rt
            .addresses
            .iter()
            .map(|a| RawAddress {
                port: name(a.port),
                address: Some(format!("{}/{}", a.addr, a.prefix)),
                sapool: Some(a.sapool),
            })
            .collect();
        let neighbours = rt
            .neighbours
            .iter()
            .map(|n| RawNeighbour { address: Some(n.addr.to_string()), mac: Some(mac_text(n.mac)), port: name(n.port) })
            .collect();
        let services = rt.services.iter().map(|s| raw_service(s)).collect();
        let routes = rt
            .routes
            .iter()
            .map(|r| RawRoute { prefix: Some(format!("{}/{}", r.prefix, r.len)), via: Some(r.via.to_string()) })
            .collect();
        crate::validate::runtime(addresses, neighbours, routes, services, &self.ports, &self.pollers(), &self.limits)
            .map(|_| ())
            .map_err(|f| RuntimeError { key: f.path.to_string(), message: f.message })
    }

    /// Why `other` cannot replace this configuration by a reload: the first section other
    /// than addresses, neighbours, routes and services that differs. `None` when only those differ.
    pub fn static_difference(&self, other: &Config) -> Option<&'static str> {
        let sections: [(&'static str, bool); 9] = [
            ("[instance]", self.instance == other.instance),
            ("[memory]", self.memory == other.memory),
            ("[[ports]]", self.ports == other.ports),
            ("[forwarding]", self.forwarding == other.forwarding),
            ("[[groups]]", self.groups == other.groups),
            ("[supervisor]", self.supervisor == other.supervisor),
            ("[exporter]", self.exporter == other.exporter),
            ("[connections]", self.connections == other.connections),
            ("[limits]", self.limits == other.limits),
        ];
        sections.iter().find(|(_, same)| !same).map(|(name, _)| *name)
    }

    /// `rt` as the `[[addresses]]`, `[[neighbours]]`, `[[routes]]` and `[[services]]` tables of
    /// a file, in that order; keys with their default value (no persistence, no access list,
    /// ...) are left out.
    pub fn render_runtime(&self, rt: &Runtime) -> RuntimeTables {
        let port = |p: usize| self.ports.get(p).map_or("?", |p| p.name.as_str());
        let addresses = rt.addresses.iter().map(|a| {
            let mut t = table([("port", value(port(a.port))), ("address", value(format!("{}/{}", a.addr, a.prefix)))]);
            if a.sapool {
                t.insert("sapool", value(true));
            }
            t
        });
        let neighbours = rt.neighbours.iter().map(|n| {
            table([
                ("address", value(n.addr.to_string())),
                ("mac", value(mac_text(n.mac))),
                ("port", value(port(n.port))),
            ])
        });
        let routes = rt
            .routes
            .iter()
            .map(|r| table([("prefix", value(format!("{}/{}", r.prefix, r.len))), ("via", value(r.via.to_string()))]));
        let mut doc = toml_edit::DocumentMut::new();
        for (key, tables) in [
            ("addresses", addresses.collect::<Vec<_>>()),
            ("neighbours", neighbours.collect()),
            ("routes", routes.collect()),
            ("services", rt.services.iter().map(|s| service_table(s)).collect()),
        ] {
            if !tables.is_empty() {
                doc.insert(key, Item::ArrayOfTables(tables.into_iter().collect()));
            }
        }
        RuntimeTables(doc)
    }
}

/// A `[[services]]` table with its `[[services.reals]]`.
fn service_table(s: &Service) -> Table {
    let mut t = table([
        ("vip", value(s.vip.to_string())),
        ("port", value(i64::from(s.port))),
        ("protocol", value(s.protocol.name())),
        ("scheduler", value(s.scheduler.name())),
        ("local_addresses", value(s.local_addresses.iter().map(|a| a.to_string()).collect::<Array>())),
    ]);
    if s.persistence > 0 {
        t.insert("persistence", value(i64::from(s.persistence)));
    }
    if s.persistence_prefix > 0 {
        t.insert("persistence_prefix", value(i64::from(s.persistence_prefix)));
    }
    for (key, list) in [("deny", &s.deny), ("allow", &s.allow)] {
        if !list.is_empty() {
            t.insert(key, value(list.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect::<Array>()));
        }
    }
    if s.proxy_protocol != crate::ProxyProtocol::Off {
        t.insert("proxy_protocol", value(s.proxy_protocol.name()));
    }
    if let Some(g) = &s.group {
        t.insert("group", value(g.as_str()));
    }
    let reals = s.reals.iter().map(|r| {
        let mut t = table([
            ("address", value(r.addr.to_string())),
            ("port", value(i64::from(r.port))),
            ("weight", value(i64::from(r.weight))),
        ]);
        if r.forward != crate::Forward::Fnat {
            t.insert("forward", value(r.forward.name()));
        }
        for (key, n) in [("upper", r.upper), ("lower", r.lower)] {
            if n > 0 {
                t.insert(key, value(i64::from(n)));
            }
        }
        t
    });
    if let Some(c) = &s.check {
        t.insert("check", Item::Table(c.table()));
    }
    if !s.reals.is_empty() {
        t.insert("reals", Item::ArrayOfTables(reals.collect()));
    }
    t
}

/// `s` as its `[[services]]` table would read, for the rules of the file.
fn raw_service(s: &crate::Service) -> RawService {
    RawService {
        vip: Some(s.vip.to_string()),
        port: Some(Int(i64::from(s.port))),
        protocol: Some(s.protocol.name().to_owned()),
        scheduler: Some(s.scheduler.name().to_owned()),
        local_addresses: Some(s.local_addresses.iter().map(|a| a.to_string()).collect()),
        persistence: Some(Int(i64::from(s.persistence))),
        persistence_prefix: (s.persistence_prefix > 0).then(|| Int(i64::from(s.persistence_prefix))),
        deny: Some(s.deny.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect()),
        allow: Some(s.allow.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect()),
        proxy_protocol: Some(s.proxy_protocol.name().to_owned()),
        group: s.group.clone(),
        check: s.check.as_ref().map(crate::check::raw_check),
        reals: Some(
            s.reals
                .iter()
                .map(|r| RawReal {
                    address: Some(r.addr.to_string()),
                    port: Some(Int(i64::from(r.port))),
                    weight: Some(Int(i64::from(r.weight))),
                    forward: Some(r.forward.name().to_owned()),
                    upper: Some(Int(i64::from(r.upper))),
                    lower: Some(Int(i64::from(r.lower))),
                })
                .collect(),
        ),
    }
}

/// A table of `items`, in order, set off from what precedes it by a blank line.
fn table<const N: usize>(items: [(&str, Item); N]) -> Table {
    let mut t = Table::new();
    for (key, item) in items {
        t.insert(key, item);
    }
    t.decor_mut().set_prefix("\n");
    t
}

/// The runtime part of a configuration as TOML tables ([`Config::render_runtime`]): a document
/// of its own when displayed, or what [`replace_runtime_tables`] puts into a file.
#[derive(Debug, Clone)]
pub struct RuntimeTables(toml_edit::DocumentMut);

impl std::fmt::Display for RuntimeTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The file given to [`replace_runtime_tables`] is not TOML (the parser's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct ReplaceTablesError(toml_edit::TomlError);

/// The top-level keys of the runtime tables.
const RUNTIME_KEYS: [&str; 4] = ["addresses", "neighbours", "routes", "services"];

/// A configuration file: `static_text` (the file the instance started from) with its
/// `addresses`, `neighbours`, `routes` and `services` tables replaced by `tables`, which come
/// after everything else. Comments and layout of the rest are kept.
///
/// # Errors
/// [`ReplaceTablesError`]: `static_text` is not TOML.
pub fn replace_runtime_tables(static_text: &str, tables: &RuntimeTables) -> Result<String, ReplaceTablesError> {
    let mut doc: toml_edit::DocumentMut = static_text.parse().map_err(ReplaceTablesError)?;
    for key in RUNTIME_KEYS {
        doc.remove(key);
    }
    // A table without a position is printed after the last table before it in the document's
    // key order, which need not be the last of the file: number the new ones after it.
    let mut next = last_position(doc.as_table()) + 1;
    for key in RUNTIME_KEYS {
        if let Some(item) = tables.0.get(key) {
            let mut item = item.clone();
            for t in item.as_array_of_tables_mut().into_iter().flat_map(|a| a.iter_mut()) {
                number_tables(t, &mut next);
            }
            doc.insert(key, item);
        }
    }
    Ok(doc.to_string())
}

/// The largest document position of `t` and the tables under it.
fn last_position(t: &Table) -> usize {
    let mut last = t.position().unwrap_or(0);
    for (_, item) in t.iter() {
        match item {
            Item::Table(t) => last = last.max(last_position(t)),
            Item::ArrayOfTables(a) => last = a.iter().map(last_position).fold(last, usize::max),
            _ => {}
        }
    }
    last
}

/// Gives `t` and the tables under it positions from `next` on, in display order.
fn number_tables(t: &mut Table, next: &mut usize) {
    t.set_position(*next);
    *next += 1;
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(t) => number_tables(t, next),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| number_tables(t, next)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runtime tables in the middle of a file whose last table (the second group) comes after
    /// `[supervisor]` but before it in key order.
    const FILE: &str = r#"[instance]
name = "t"

[[ports]]
name = "p0"
vdev = "net_tap0"

[[ports]]
name = "p1"
vdev = "net_tap1"

[forwarding]
mode = "l2-reflect"

[[groups]]
name = "g"
[[groups.lcores]]
id = 1
rx = ["p0:0"]

[[addresses]]
port = "p0"
address = "198.18.0.1/24"

# old services
[[services]]
vip = "198.18.0.1"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = []

[[services.reals]]
address = "198.18.0.2"
port = 80
forward = "dr"

# the supervisor
[supervisor]
heartbeat_timeout_ms = 900

[[groups]]
name = "h"
[[groups.lcores]]
id = 2
rx = ["p1:0"]
"#;

    #[test]
    fn runtime_tables_go_last_and_the_rest_is_kept() {
        let cfg = Config::from_str(FILE, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut rt = cfg.runtime();
        rt.services[0].reals[0].weight = 7;
        rt.services[0].deny.push(crate::Prefix { addr: std::net::Ipv4Addr::new(192, 0, 2, 0).into(), len: 24 });
        let text = replace_runtime_tables(FILE, &cfg.render_runtime(&rt)).expect("TOML");
        let back = Config::from_str(&text, "dump").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.runtime(), rt);
        assert_eq!(back.static_difference(&cfg), None, "{text}");
        assert!(text.contains("# the supervisor\n[supervisor]\nheartbeat_timeout_ms = 900\n"), "{text}");
        assert!(!text.contains("# old services"), "{text}");
        let last_static = text.find("id = 2\nrx = [\"p1:0\"]\n").expect("second group kept");
        assert!(text.find("[[addresses]]").expect("addresses") > last_static, "{text}");
        assert!(text.contains("weight = 7\nforward = \"dr\"\n"), "{text}");
        assert!(text.contains("local_addresses = []\ndeny = [\"192.0.2.0/24\"]\n"), "{text}");
        let again = replace_runtime_tables(&text, &back.render_runtime(&back.runtime()));
        assert_eq!(again.as_ref(), Ok(&text), "dump, reload, dump is a fixed point");
    }

    /// An IPv6 address and services (IPv6, NAT64) written back and read again: the same
    /// runtime, and the same text.
    #[test]
    fn ipv6_addresses_and_services_dump_and_reload_to_a_fixed_point() {
        let cfg = Config::from_str(FILE, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut rt = cfg.runtime();
        let a = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        rt.addresses.push(crate::IfAddr { port: 0, addr: a("2001:db8::100"), prefix: 64, sapool: false });
        rt.addresses.push(crate::IfAddr { port: 0, addr: a("2001:db8::fe"), prefix: 128, sapool: true });
        let mut v6 = (*rt.services[0]).clone();
        v6.vip = a("2001:db8::100");
        v6.local_addresses = vec![a("2001:db8::fe")];
        v6.reals[0].addr = a("2001:db8::2");
        v6.reals[0].forward = crate::Forward::Fnat;
        // NAT64: the IPv4 real servers of an IPv6 VIP.
        let mut nat64 = (*rt.services[0]).clone();
        nat64.vip = a("2001:db8::100");
        nat64.port = 8443;
        nat64.reals[0].forward = crate::Forward::Fnat;
        (nat64.persistence, nat64.persistence_prefix) = (300, 64);
        assert!(nat64.is_nat64() && !v6.is_nat64() && !rt.services[0].is_nat64());
        rt.services.push(v6.into());
        rt.services.push(nat64.into());
        let text = replace_runtime_tables(FILE, &cfg.render_runtime(&rt)).expect("TOML");
        let back = Config::from_str(&text, "dump").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.runtime(), rt);
        assert!(text.contains("address = \"2001:db8::100/64\""), "{text}");
        assert!(text.contains("vip = \"2001:db8::100\""), "{text}");
        assert!(text.contains("persistence = 300\npersistence_prefix = 64\n"), "{text}");
        let again = replace_runtime_tables(&text, &back.render_runtime(&back.runtime()));
        assert_eq!(again.as_ref(), Ok(&text), "dump, reload, dump is a fixed point");
    }

    #[test]
    fn an_empty_runtime_leaves_no_tables() {
        let cfg = Config::from_str(FILE, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.render_runtime(&Runtime::default()).to_string(), "");
        let text = replace_runtime_tables(FILE, &cfg.render_runtime(&Runtime::default())).expect("TOML");
        assert!(!text.contains("[[addresses]]") && !text.contains("[[services"), "{text}");
        assert!(replace_runtime_tables("[instance", &RuntimeTables(toml_edit::DocumentMut::new())).is_err());
    }
}
