//! The part of a configuration that changes while the instance runs: interface addresses,
//! neighbours, routes, services with their real servers and local addresses. The primary keeps one
//! [`Runtime`], changes a copy per command (or replaces it on reload), checks the copy with
//! the same rules as the file ([`Config::check_runtime`]) and publishes it as the next
//! configuration generation; workers and `dpvsctl` decode it from shared memory.

use std::fmt::Write as _;

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
    /// Virtual services.
    pub services: Vec<Service>,
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

    /// The group that serves `s`: the one it names, else the first polling its VIP's port.
    pub fn group_of<'a>(&'a self, s: &'a Service, addresses: &[IfAddr]) -> Option<&'a str> {
        if let Some(g) = &s.group {
            return Some(g);
        }
        let port = addresses.iter().find(|a| a.addr == s.vip)?.port;
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
    pub fn next_hop(&self, addr: std::net::Ipv4Addr) -> Option<std::net::Ipv4Addr> {
        crate::validate::next_hop(addr, &self.addresses, &self.routes)
    }

    /// The interface address on the network of `hop` (a next hop, on a connected network):
    /// the port that reaches it, and the source of what the balancer itself sends there
    /// (IP-in-IP, ARP requests).
    pub fn address_towards(&self, hop: std::net::Ipv4Addr) -> Option<&IfAddr> {
        self.addresses.iter().find(|a| crate::network(a.addr, a.prefix) == crate::network(hop, a.prefix))
    }

    /// This runtime with only the services `group` serves: what a worker of that group runs.
    pub fn served_by(&self, pollers: &Pollers, group: &str) -> Runtime {
        let services = self.services.iter().filter(|s| pollers.group_of(s, &self.addresses) == Some(group)).cloned();
        Runtime { services: services.collect(), ..self.clone() }
    }

    /// Index of the service `proto vip:port`.
    pub fn service(&self, protocol: Protocol, vip: std::net::Ipv4Addr, port: u16) -> Option<usize> {
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

    /// Checks `rt` against this configuration's ports with the rules of the file (limits,
    /// duplicates, a VIP or local address must be an interface address, a real server must be
    /// on a connected network or behind a route, ...).
    ///
    /// # Errors
    /// The first rule broken, as a message naming the value (no file position).
    pub fn check_runtime(&self, rt: &Runtime) -> Result<(), String> {
        let name = |p: usize| self.ports.get(p).map(|p| p.name.clone());
        let addresses = rt
            .addresses
            .iter()
            .map(|a| RawAddress { port: name(a.port), address: Some(format!("{}/{}", a.addr, a.prefix)) })
            .collect();
        let neighbours = rt
            .neighbours
            .iter()
            .map(|n| RawNeighbour { address: Some(n.addr.to_string()), mac: Some(mac_text(n.mac)), port: name(n.port) })
            .collect();
        let services = rt
            .services
            .iter()
            .map(|s| RawService {
                vip: Some(s.vip.to_string()),
                port: Some(Int(i64::from(s.port))),
                protocol: Some(s.protocol.name().to_owned()),
                scheduler: Some(s.scheduler.name().to_owned()),
                local_addresses: Some(s.local_addresses.iter().map(|a| a.to_string()).collect()),
                persistence: Some(Int(i64::from(s.persistence))),
                deny: Some(s.deny.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect()),
                allow: Some(s.allow.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect()),
                proxy_protocol: Some(s.proxy_protocol.name().to_owned()),
                group: s.group.clone(),
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
            })
            .collect();
        let routes = rt
            .routes
            .iter()
            .map(|r| RawRoute { prefix: Some(format!("{}/{}", r.prefix, r.len)), via: Some(r.via.to_string()) })
            .collect();
        crate::validate::runtime(addresses, neighbours, routes, services, &self.ports, &self.pollers())
            .map(|_| ())
            .map_err(|f| format!("{}: {}", f.path, f.message))
    }

    /// Why `other` cannot replace this configuration by a reload: the first section other
    /// than addresses, neighbours, routes and services that differs. `None` when only those differ.
    pub fn static_difference(&self, other: &Config) -> Option<&'static str> {
        let sections: [(&'static str, bool); 7] = [
            ("[instance]", self.instance == other.instance),
            ("[memory]", self.memory == other.memory),
            ("[[ports]]", self.ports == other.ports),
            ("[forwarding]", self.forwarding == other.forwarding),
            ("[[groups]]", self.groups == other.groups),
            ("[supervisor]", self.supervisor == other.supervisor),
            ("[connections]", self.connections == other.connections),
        ];
        sections.iter().find(|(_, same)| !same).map(|(name, _)| *name)
    }

    /// `rt` as the `[[addresses]]`, `[[neighbours]]` and `[[services]]` tables of a file.
    pub fn render_runtime(&self, rt: &Runtime) -> String {
        let port = |p: usize| self.ports.get(p).map_or("?", |p| p.name.as_str());
        let mut out = String::new();
        for a in &rt.addresses {
            let _ =
                writeln!(out, "[[addresses]]\nport = \"{}\"\naddress = \"{}/{}\"\n", port(a.port), a.addr, a.prefix);
        }
        for n in &rt.neighbours {
            let _ = writeln!(
                out,
                "[[neighbours]]\naddress = \"{}\"\nmac = \"{}\"\nport = \"{}\"\n",
                n.addr,
                mac_text(n.mac),
                port(n.port)
            );
        }
        for r in &rt.routes {
            let _ = writeln!(out, "[[routes]]\nprefix = \"{}/{}\"\nvia = \"{}\"\n", r.prefix, r.len, r.via);
        }
        for s in &rt.services {
            let laddrs: Vec<String> = s.local_addresses.iter().map(|a| format!("\"{a}\"")).collect();
            let list = |key: &str, l: &[crate::Prefix]| {
                if l.is_empty() {
                    return String::new();
                }
                let items: Vec<String> = l.iter().map(|p| format!("\"{}/{}\"", p.addr, p.len)).collect();
                format!("{key} = [{}]\n", items.join(", "))
            };
            let _ = writeln!(
                out,
                "[[services]]\nvip = \"{}\"\nport = {}\nprotocol = \"{}\"\nscheduler = \"{}\"\nlocal_addresses = [{}]\n{}{}{}{}{}",
                s.vip,
                s.port,
                s.protocol.name(),
                s.scheduler.name(),
                laddrs.join(", "),
                if s.persistence > 0 { format!("persistence = {}\n", s.persistence) } else { String::new() },
                list("deny", &s.deny),
                list("allow", &s.allow),
                if s.proxy_protocol == crate::ProxyProtocol::Off {
                    String::new()
                } else {
                    format!("proxy_protocol = \"{}\"\n", s.proxy_protocol.name())
                },
                s.group.as_ref().map_or(String::new(), |g| format!("group = \"{g}\"\n")),
            );
            for r in &s.reals {
                let forward = match r.forward {
                    crate::Forward::Fnat => String::new(),
                    f => format!("forward = \"{}\"\n", f.name()),
                };
                let mut thresholds = String::new();
                if r.upper > 0 {
                    let _ = writeln!(thresholds, "upper = {}", r.upper);
                }
                if r.lower > 0 {
                    let _ = writeln!(thresholds, "lower = {}", r.lower);
                }
                let _ = writeln!(
                    out,
                    "[[services.reals]]\naddress = \"{}\"\nport = {}\nweight = {}\n{forward}{thresholds}",
                    r.addr, r.port, r.weight
                );
            }
        }
        out
    }
}

/// A configuration file: `static_text` (the file the instance started from) without its
/// `addresses`, `neighbours` and `services` tables, followed by `runtime_tables`
/// ([`Config::render_runtime`]). Comments and layout of the rest are kept.
///
/// # Errors
/// `static_text` is not TOML.
pub fn replace_runtime_tables(static_text: &str, runtime_tables: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = static_text.parse().map_err(|e: toml_edit::TomlError| e.to_string())?;
    for key in ["addresses", "neighbours", "routes", "services"] {
        doc.remove(key);
    }
    let mut text = doc.to_string();
    while text.ends_with("\n\n") {
        text.pop();
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(runtime_tables);
    Ok(text)
}
