//! Validation and resolution: [`RawConfig`] -> [`Config`].
//!
//! Invariants of a [`Config`] returned from here (all checked, each failure a [`Fault`] at
//! the key it is about, the first one found returned):
//! - every value is within the limits documented in the crate root and the sample files;
//! - port names, port device names, group names and lcore ids are unique;
//! - [`Forwarding::L2Pair`] holds two distinct valid port indices;
//! - every [`QueueRef`] names an existing port and a queue below its `rx_queues`, and every
//!   (port, rx queue) pair is polled by exactly one forwarding lcore;
//! - `WorkerLcore::slot` numbers the forwarding lcores 0.. in file order (groups, then the
//!   lcores of each group), there are 1..=[`MAX_WORKER_LCORES`] of them, and every port's
//!   `tx_queues` is their number;
//! - no forwarding lcore is the main lcore.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::error::{Fault, KeyPath};
use crate::raw::{
    Int, RawAddress, RawConfig, RawConnections, RawForwarding, RawGroup, RawInstance, RawLcore, RawLimits, RawMemory,
    RawNeighbour, RawPort, RawRoute, RawService, RawSupervisor,
};
use crate::{
    Config, Connections, Device, Forward, Forwarding, IfAddr, Instance, Lcore, Limits, Memory, Neighbour, Port, Prefix,
    Protocol, QueueRef, Real, Service, Supervisor, WorkerGroup, WorkerLcore, MAX_CPU, MAX_LCORE, MAX_NAME_LEN,
    MAX_PORTS, MAX_PORT_NAME_LEN, MAX_QUEUES_PER_PORT, MAX_RX_PER_LCORE, MAX_WORKER_LCORES,
};
use crate::{Resolver, Route};

type Result<T> = std::result::Result<T, Fault>;

/// Longest persistence timeout, seconds (31 days).
const MAX_PERSISTENCE_S: i64 = 31 * 24 * 3600;
/// Largest connection threshold (LVS keeps them in 32 bits; a sane bound well below).
const MAX_THRESHOLD: i64 = 100_000_000;

/// Validates `raw` and resolves it into a [`Config`] whose `source` is `source`.
pub(crate) fn resolve(raw: RawConfig, source: &str) -> Result<Config> {
    let root = KeyPath::root();
    let instance =
        instance(required(raw.instance, &root.key("instance"), "an [instance] table")?, &root.key("instance"))?;
    let memory = memory(raw.memory.unwrap_or_default(), &root.key("memory"))?;
    let mut ports = ports(raw.ports.unwrap_or_default(), &root.key("ports"))?;
    let forwarding = forwarding(
        required(raw.forwarding, &root.key("forwarding"), "a [forwarding] table with `mode`")?,
        &ports,
        &root.key("forwarding"),
    )?;
    let mut groups = groups(raw.groups.unwrap_or_default(), &mut ports, &instance, &root.key("groups"))?;
    exception_ports(&mut ports, &mut groups)?;
    let supervisor = supervisor(raw.supervisor.unwrap_or_default(), &groups, &root.key("supervisor"))?;
    let lim = limits(raw.limits.unwrap_or_default(), &root.key("limits"))?;
    let addresses = addresses(raw.addresses.unwrap_or_default(), &ports, &lim, &root.key("addresses"))?;
    let neighbours = neighbours(raw.neighbours.unwrap_or_default(), &ports, &lim, &root.key("neighbours"))?;
    let routes = routes(raw.routes.unwrap_or_default(), &addresses, &lim, &root.key("routes"))?;
    let names: Vec<&str> = ports.iter().map(|p| p.port.name.as_str()).collect();
    let services = services(
        raw.services.unwrap_or_default(),
        (&addresses, &routes),
        (&crate::Pollers::of(&groups), &names),
        &lim,
        &root.key("services"),
    )?;
    let connections = connections(raw.connections.unwrap_or_default(), &root.key("connections"))?;
    let exporter = exporter(raw.exporter.unwrap_or_default(), &root.key("exporter"))?;
    Ok(Config {
        source: source.to_owned(),
        instance,
        memory,
        ports: ports.into_iter().map(|p| p.port).collect(),
        forwarding,
        groups,
        supervisor,
        exporter,
        addresses,
        neighbours,
        routes,
        services,
        connections,
        limits: lim,
    })
}

/// `[limits]`: each at least 1 and at most a ceiling that keeps the shared memory
/// addressable and the per-service work bounded.
fn limits(raw: RawLimits, path: &KeyPath) -> Result<Limits> {
    let d = Limits::DEFAULT;
    Ok(Limits {
        services: int(raw.services, d.services, 1..=1 << 20, &path.key("services"))?,
        reals: int(raw.reals, d.reals, 1..=1 << 22, &path.key("reals"))?,
        reals_per_service: int(raw.reals_per_service, d.reals_per_service, 1..=4096, &path.key("reals_per_service"))?,
        local_addresses: int(raw.local_addresses, d.local_addresses, 1..=4096, &path.key("local_addresses"))?,
        acl_entries: int(raw.acl_entries, d.acl_entries, 1..=65_536, &path.key("acl_entries"))?,
        neighbours: int(raw.neighbours, d.neighbours, 1..=1 << 20, &path.key("neighbours"))?,
        addresses: int(raw.addresses, d.addresses, 1..=1 << 20, &path.key("addresses"))?,
        routes: int(raw.routes, d.routes, 1..=65_536, &path.key("routes"))?,
    })
}

/// The runtime tables alone, against resolved `ports` (commands and reload of a running
/// instance): the same rules as in a file.
pub(crate) fn runtime(
    addresses_raw: Vec<RawAddress>,
    neighbours_raw: Vec<RawNeighbour>,
    routes_raw: Vec<RawRoute>,
    services_raw: Vec<RawService>,
    ports: &[Port],
    pollers: &crate::Pollers,
    lim: &Limits,
) -> Result<crate::Runtime> {
    let root = KeyPath::root();
    let drafts: Vec<PortDraft> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortDraft { port: p.clone(), path: root.key("ports").index(i), kni: None })
        .collect();
    let addresses = addresses(addresses_raw, &drafts, lim, &root.key("addresses"))?;
    let neighbours = neighbours(neighbours_raw, &drafts, lim, &root.key("neighbours"))?;
    let routes = routes(routes_raw, &addresses, lim, &root.key("routes"))?;
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    let services = services(services_raw, (&addresses, &routes), (pollers, &names), lim, &root.key("services"))?;
    Ok(crate::Runtime { addresses, neighbours, routes, services })
}

fn connections(raw: RawConnections, path: &KeyPath) -> Result<Connections> {
    let p = path.key("capacity_per_lcore");
    let capacity_per_lcore: u32 = int(raw.capacity_per_lcore, 65_536, 1024..=1 << 24, &p)?;
    if !capacity_per_lcore.is_power_of_two() {
        return Err(Fault::at(&p, format!("expected a power of two, got {capacity_per_lcore}")));
    }
    Ok(Connections { capacity_per_lcore })
}

/// The IPv4 or IPv6 address `text` at `path`, `what` naming it in the error.
fn ip(text: &str, what: &str, path: &KeyPath) -> Result<std::net::IpAddr> {
    let a: std::net::IpAddr = text.parse().map_err(|_| {
        Fault::at(
            path,
            format!("expected {what} (an IPv4 or IPv6 address like \"198.18.1.2\" or \"2001:db8::2\"), got \"{text}\""),
        )
    })?;
    crate::check_not_mapped(a).map_err(|e| Fault::at(path, e))?;
    Ok(a)
}

/// The family of a service's real servers and local addresses: the VIP's, or IPv4 under an
/// IPv6 VIP (NAT64). The first of them sets it (`first`: its key and address) and every other
/// follows: "`a` is an IPv6 address, but services[i].vip is IPv4" and the like.
fn same_family(
    a: std::net::IpAddr,
    vip: std::net::IpAddr,
    first: &mut Option<(String, std::net::IpAddr)>,
    path: &KeyPath,
) -> Result<()> {
    let name = |a: std::net::IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
    if vip.is_ipv4() && a.is_ipv6() {
        return Err(Fault::at(path, format!("{a} is an IPv6 address, but the virtual address {vip} is IPv4: an IPv4 service's real servers and local addresses are IPv4 (NAT64 translates IPv6 clients to IPv4 real servers, not the other way)")));
    }
    match first {
        Some((key, f)) if f.is_ipv6() != a.is_ipv6() => Err(Fault::at(
            path,
            format!("{a} is an {} address, but {key} is {}: a service's real servers and local addresses are of one family (IPv4 ones under an IPv6 VIP make it NAT64)", name(a), name(*f)),
        )),
        Some(_) => Ok(()),
        None => {
            *first = Some((path.to_string(), a));
            Ok(())
        }
    }
}

fn neighbours(raw: Vec<RawNeighbour>, ports: &[PortDraft], lim: &Limits, path: &KeyPath) -> Result<Vec<Neighbour>> {
    let mut out: Vec<Neighbour> = Vec::with_capacity(raw.len());
    let mut seen = HashMap::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let path = path.index(i);
        if i >= lim.neighbours as usize {
            return Err(too_many(&path, "neighbours", lim.neighbours));
        }
        let ap = path.key("address");
        let addr = ip(&required(raw.address, &ap, "the neighbour's address")?, "the neighbour's address", &ap)?;
        if let Some(j) = seen.insert(addr, i) {
            return Err(Fault::at(&ap, format!("{addr} already has a neighbour entry (neighbours[{j}])")));
        }
        let mp = path.key("mac");
        let text = required(raw.mac, &mp, "a MAC address like \"02:00:00:00:01:02\"")?;
        let mac = crate::parse_mac(&text).map_err(|e| Fault::at(&mp, e.to_string()))?;
        let pp = path.key("port");
        let port = port_index(ports, &required(raw.port, &pp, "the port the neighbour is reached through")?, &pp)?;
        out.push(Neighbour { addr, mac, port });
    }
    Ok(out)
}

/// Static routes: a prefix with its host bits zero, each once; a gateway on a port's network.
fn routes(raw: Vec<RawRoute>, addresses: &[IfAddr], lim: &Limits, path: &KeyPath) -> Result<Vec<Route>> {
    let mut out: Vec<Route> = Vec::with_capacity(raw.len());
    let networks = Resolver::new(addresses, &[]);
    let mut seen = HashMap::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let path = path.index(i);
        if i >= lim.routes as usize {
            return Err(too_many(&path, "routes", lim.routes));
        }
        let pp = path.key("prefix");
        let text = required(
            raw.prefix,
            &pp,
            "a network with its prefix length, like \"10.1.0.0/16\", \"0.0.0.0/0\" or \"2001:db8:2::/48\"",
        )?;
        let (prefix, len) = crate::parse_ip_prefix(&text).map_err(|e| Fault::at(&pp, e.to_string()))?;
        crate::check_not_mapped(prefix).map_err(|e| Fault::at(&pp, e))?;
        if crate::network_of(prefix, len) != prefix {
            return Err(Fault::at(
                &pp,
                format!("{text} has host bits set: the network is {}/{len}", crate::network_of(prefix, len)),
            ));
        }
        if let Some(j) = seen.insert((prefix, len), i) {
            return Err(Fault::at(&pp, format!("{text} is already routed by routes[{j}]")));
        }
        let vp = path.key("via");
        let via = ip(&required(raw.via, &vp, "the gateway's address")?, "the gateway's address", &vp)?;
        if via.is_ipv6() != prefix.is_ipv6() {
            return Err(Fault::at(&vp, format!("gateway {via} is not of the family of {text}")));
        }
        if networks.connected(via).is_none() {
            return Err(Fault::at(
                &vp,
                format!("gateway {via} is on no port's network: add an address of its network to [[addresses]]"),
            ));
        }
        out.push(Route { prefix, len, via });
    }
    Ok(out)
}

/// The next hop towards `addr`: itself on a connected network, else the gateway of the longest
/// matching route.
pub(crate) fn next_hop(addr: std::net::IpAddr, addresses: &[IfAddr], routes: &[Route]) -> Option<std::net::IpAddr> {
    if addresses.iter().any(|a| {
        a.addr.is_ipv6() == addr.is_ipv6() && crate::network_of(a.addr, a.prefix) == crate::network_of(addr, a.prefix)
    }) {
        return Some(addr);
    }
    routes.iter().filter(|r| r.contains(addr)).max_by_key(|r| r.len).map(|r| r.via)
}

/// "expected at most `max` `what`, got `got`", naming the `[limits]` key `key`.
fn over_limit(path: &KeyPath, what: &str, (max, got): (u32, usize), key: &str) -> Fault {
    Fault::at(path, format!("expected at most {max} {what}, got {got} (raise `{key}` in [limits])"))
}

/// "too many `what`: at most `max`", naming the `[limits]` key of the same name.
pub(crate) fn too_many(path: &KeyPath, what: &str, max: u32) -> Fault {
    Fault::at(path, format!("too many {what}: at most {max} (raise `{what}` in [limits])"))
}

/// What checking one service needs besides the service: the interface addresses' and
/// routes' lookups, the groups polling each port, the port names and the limits.
pub(crate) struct ServiceCtx<'a> {
    pub(crate) resolver: &'a Resolver<'a>,
    pub(crate) pollers: &'a crate::Pollers,
    pub(crate) port_names: &'a [&'a str],
    pub(crate) lim: &'a Limits,
}

fn services(
    raw: Vec<RawService>,
    (addresses, routes): (&[IfAddr], &[Route]),
    (pollers, port_names): (&crate::Pollers, &[&str]),
    lim: &Limits,
    path: &KeyPath,
) -> Result<Vec<crate::Shared<Service>>> {
    let mut out: Vec<crate::Shared<Service>> = Vec::with_capacity(raw.len());
    let resolver = Resolver::new(addresses, routes);
    let ctx = ServiceCtx { resolver: &resolver, pollers, port_names, lim };
    // Each service's index by its key, and each VIP's first service.
    let mut keys = HashMap::with_capacity(raw.len());
    let mut vips = HashMap::with_capacity(raw.len());
    let mut total_reals = 0usize;
    for (i, raw) in raw.into_iter().enumerate() {
        let path = path.index(i);
        if i >= lim.services as usize {
            return Err(too_many(&path, "services", lim.services));
        }
        let s = service(raw, &ctx, &path)?;
        if let Some(j) = keys.insert((s.vip, s.port, s.protocol), i) {
            return Err(Fault::at(&path.key("vip"), format!("the same virtual service is services[{j}]")));
        }
        vips.entry(s.vip).or_insert(i);
        total_reals += s.reals.len();
        if total_reals > lim.reals as usize {
            return Err(too_many(&path.key("reals"), "reals", lim.reals));
        }
        out.push(s.into());
    }
    // A reply to a local address is told from a client's packet by its destination address.
    for (i, s) in out.iter().enumerate() {
        for (j, a) in s.local_addresses.iter().enumerate() {
            if let Some(k) = vips.get(a) {
                return Err(laddr_is_a_vip(path, (i, j), *a, *k));
            }
        }
    }
    Ok(out)
}

/// "services[i].local_addresses[j]: `a` is the virtual address of services[k]".
pub(crate) fn laddr_is_a_vip(path: &KeyPath, (i, j): (usize, usize), a: std::net::IpAddr, k: usize) -> Fault {
    Fault::at(
        &path.index(i).key("local_addresses").index(j),
        format!("{a} is the virtual address of services[{k}]: a local address must not be a VIP"),
    )
}

/// One `[[services]]` entry at `path`: every rule that concerns it alone (the rules between
/// services, and the limits on all of them together, are its caller's).
pub(crate) fn service(raw: RawService, ctx: &ServiceCtx<'_>, path: &KeyPath) -> Result<Service> {
    let ServiceCtx { resolver, pollers, port_names, lim } = *ctx;
    let owned = |a: std::net::IpAddr| resolver.owner(a).is_some();
    let vp = path.key("vip");
    let vip = ip(&required(raw.vip, &vp, "the virtual IPv4 or IPv6 address")?, "the virtual address", &vp)?;
    // Not an interface address is allowed on a port's network (a VRRP backup's VIP: its
    // packets come to the port once it holds the address).
    if resolver.vip_port(vip).is_none() {
        let asks = if vip.is_ipv6() { "neighbour discovery" } else { "ARP" };
        return Err(Fault::at(
            &vp,
            format!("{vip} is not an interface address and on no port's network: add it to [[addresses]] so its port answers {asks} for it"),
        ));
    }
    let port: u16 = int(raw.port, 0, 1..=65_535, &path.key("port"))?;
    let pp = path.key("protocol");
    let protocol = match required(raw.protocol, &pp, "\"tcp\" or \"udp\"")?.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => return Err(Fault::at(&pp, format!("expected \"tcp\" or \"udp\", got \"{other}\""))),
    };
    let sp = path.key("scheduler");
    let scheduler: sched::Kind = raw
        .scheduler
        .as_deref()
        .unwrap_or("rr")
        .parse()
        .map_err(|e: sched::ParseKindError| Fault::at(&sp, e.to_string()))?;
    let persistence: u32 = int(raw.persistence, 0, 0..=MAX_PERSISTENCE_S, &path.key("persistence"))?;
    // An address's length, at most (absent: the whole address).
    let whole = if vip.is_ipv6() { 128 } else { 32 };
    let persistence_prefix: u8 = int(raw.persistence_prefix, 0, 1..=whole, &path.key("persistence_prefix"))?;
    let lp = path.key("local_addresses");
    let raw_l = raw.local_addresses.unwrap_or_default();
    if raw_l.len() > lim.local_addresses as usize {
        return Err(over_limit(&lp, "local addresses", (lim.local_addresses, raw_l.len()), "local_addresses"));
    }
    let mut local_addresses = Vec::with_capacity(raw_l.len());
    // The first real server or local address, which sets the family of the others.
    let mut first = None;
    for (j, t) in raw_l.iter().enumerate() {
        let p = lp.index(j);
        let a = ip(t, "a local address", &p)?;
        same_family(a, vip, &mut first, &p)?;
        if !owned(a) {
            return Err(Fault::at(
                &p,
                format!("{a} is not an interface address: add it to [[addresses]] so real servers can reach it"),
            ));
        }
        local_addresses.push(a);
    }
    let rp = path.key("reals");
    let raw_r = raw.reals.unwrap_or_default();
    if raw_r.len() > lim.reals_per_service as usize {
        return Err(over_limit(
            &rp,
            "[[services.reals]] tables",
            (lim.reals_per_service, raw_r.len()),
            "reals_per_service",
        ));
    }
    let mut reals: Vec<Real> = Vec::with_capacity(raw_r.len());
    let mut seen = std::collections::HashSet::with_capacity(raw_r.len());
    for (j, r) in raw_r.into_iter().enumerate() {
        let p = rp.index(j);
        let ap = p.key("address");
        let addr = ip(&required(r.address, &ap, "the real server's address")?, "the real server's address", &ap)?;
        same_family(addr, vip, &mut first, &ap)?;
        let rport: u16 = int(r.port, port, 1..=65_535, &p.key("port"))?;
        let weight: u32 = int(r.weight, 1, 0..=65_535, &p.key("weight"))?;
        let fp = p.key("forward");
        let forward = match r.forward.as_deref().unwrap_or("fnat") {
            "fnat" => Forward::Fnat,
            "dr" => Forward::Dr,
            "nat" => Forward::Nat,
            "tunnel" => Forward::Tunnel,
            other => {
                return Err(Fault::at(
                    &fp,
                    format!("expected \"fnat\", \"dr\", \"nat\" or \"tunnel\", got \"{other}\""),
                ))
            }
        };
        if vip.is_ipv6() && addr.is_ipv4() && forward != Forward::Fnat {
            return Err(Fault::at(
                &fp,
                format!("{addr} is an IPv4 real server of the IPv6 virtual address {vip}: NAT64 translates in Full-NAT only, so it takes forward = \"fnat\""),
            ));
        }
        if matches!(forward, Forward::Dr | Forward::Tunnel) && rport != port {
            let what = if forward == Forward::Dr { "direct-routing" } else { "tunnel" };
            return Err(Fault::at(
                &p.key("port"),
                format!("a {what} real server receives the packets unchanged: it must listen on the virtual port {port}, not {rport}"),
            ));
        }
        if !seen.insert((addr, rport)) {
            let real = std::net::SocketAddr::new(addr, rport);
            return Err(Fault::at(&ap, format!("{real} is already a real server of this service")));
        }
        let Some(hop) = resolver.next_hop(addr) else {
            return Err(Fault::at(&ap, format!("{addr} is on no port's network and no route reaches it: add an address of its network to [[addresses]], or a [[routes]] entry")));
        };
        if hop != addr && forward == Forward::Dr {
            return Err(Fault::at(
                &ap,
                format!(
                    "{addr} is reached through gateway {hop}: direct routing needs the real server on a port's network"
                ),
            ));
        }
        let upper: u32 = int(r.upper, 0, 0..=MAX_THRESHOLD, &p.key("upper"))?;
        let lower: u32 = int(r.lower, 0, 0..=MAX_THRESHOLD, &p.key("lower"))?;
        if lower > 0 && (upper == 0 || lower > upper) {
            return Err(Fault::at(
                &p.key("lower"),
                format!("the lower threshold {lower} needs an upper threshold at least as high, got upper = {upper}"),
            ));
        }
        reals.push(Real { addr, port: rport, weight, forward, upper, lower, down: false });
    }
    let deny = acl(raw.deny.unwrap_or_default(), lim, &path.key("deny"))?;
    let allow = acl(raw.allow.unwrap_or_default(), lim, &path.key("allow"))?;
    for (key, list) in [("deny", &deny), ("allow", &allow)] {
        if let Some(i) = list.iter().position(|p| p.addr.is_ipv6() != vip.is_ipv6()) {
            let family = |a: std::net::IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
            return Err(Fault::at(
                &path.key(key).index(i),
                format!(
                    "{} is an {} network, but the virtual address {vip} is {}: its clients are {}",
                    list[i],
                    family(list[i].addr),
                    family(vip),
                    family(vip)
                ),
            ));
        }
    }
    let pp = path.key("proxy_protocol");
    let proxy_protocol: crate::ProxyProtocol = raw
        .proxy_protocol
        .as_deref()
        .unwrap_or("off")
        .parse()
        .map_err(|e: crate::ParseProxyProtocolError| Fault::at(&pp, e.to_string()))?;
    if proxy_protocol == crate::ProxyProtocol::V1 && protocol != Protocol::Tcp {
        return Err(Fault::at(
            &pp,
            "PROXY protocol version 1 names TCP streams only: a UDP service takes \"v2\" (a header in front of every datagram)",
        ));
    }
    let check = raw.check.map(|c| crate::check::check(c, &path.key("check"))).transpose()?;
    let service = Service {
        vip,
        port,
        protocol,
        scheduler,
        local_addresses,
        reals,
        persistence,
        persistence_prefix: if persistence_prefix == whole as u8 { 0 } else { persistence_prefix },
        deny,
        allow,
        proxy_protocol,
        group: raw.group,
        check,
    };
    served_by_one_group(&service, resolver, (pollers, port_names), path)?;
    Ok(service)
}

/// Checks that the group serving `s` exists and alone polls the ports its packets arrive on:
/// the VIP's, its local addresses' (Full-NAT replies) and its real servers' next hops' (their
/// ARP answers, and NAT replies).
/// Its connections live in that group's shards and its packets are handed around among that
/// group's lcores only, so that another group's crash cannot touch it.
fn served_by_one_group(
    s: &Service,
    resolver: &Resolver<'_>,
    (pollers, port_names): (&crate::Pollers, &[&str]),
    path: &KeyPath,
) -> Result<()> {
    let gp = path.key("group");
    if let Some(g) = &s.group {
        if !pollers.groups().contains(g) {
            let groups: Vec<String> = pollers.groups().iter().map(|g| format!("\"{g}\"")).collect();
            return Err(Fault::at(&gp, format!("no worker group is named \"{g}\" (groups: {})", groups.join(", "))));
        }
    }
    if pollers.groups().len() <= 1 {
        return Ok(());
    }
    let port_of = |a: std::net::IpAddr| resolver.owner(a).map(|x| x.port);
    let Some(group) = pollers.group_of(s, resolver) else { return Ok(()) };
    let vip_port = resolver.vip_port(s.vip);
    // Every real server's next hop: its ARP answers (and Full-NAT or NAT replies) come in there.
    let real_ports = s.reals.iter().filter_map(|r| resolver.connected(resolver.next_hop(r.addr)?).map(|a| a.port));
    let ports = vip_port.into_iter().chain(s.local_addresses.iter().filter_map(|a| port_of(*a))).chain(real_ports);
    for port in ports {
        let pollers = pollers.of_port(port);
        if pollers.iter().any(|g| g != group) {
            let name = port_names.get(port).copied().unwrap_or("?");
            let list: Vec<String> = pollers.iter().map(|g| format!("\"{g}\"")).collect();
            return Err(Fault::at(
                &gp,
                format!(
                    "{} {}:{} is served by group \"{group}\", but port {name} is polled by {}: a service's group must poll every queue of the ports its packets arrive on (its VIP's, its local addresses' and its real servers')",
                    s.protocol.name(),
                    s.vip,
                    s.port,
                    list.join(", "),
                ),
            ));
        }
    }
    Ok(())
}

/// A service's access list: networks, at most `acl_entries` of [`Limits`], none twice.
fn acl(raw: Vec<String>, lim: &Limits, path: &KeyPath) -> Result<Vec<Prefix>> {
    if raw.len() > lim.acl_entries as usize {
        return Err(over_limit(path, "networks", (lim.acl_entries, raw.len()), "acl_entries"));
    }
    let mut out: Vec<Prefix> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let p = Prefix::parse(t).map_err(|e| Fault::at(&path.index(i), e.to_string()))?;
        if out.contains(&p) {
            return Err(Fault::at(&path.index(i), format!("{p} is listed twice")));
        }
        out.push(p);
    }
    Ok(out)
}

/// Interface addresses: an existing port, an IPv4 or IPv6 address with a prefix length, each
/// address once.
fn addresses(raw: Vec<RawAddress>, ports: &[PortDraft], lim: &Limits, path: &KeyPath) -> Result<Vec<IfAddr>> {
    let mut out: Vec<IfAddr> = Vec::with_capacity(raw.len());
    let mut seen = HashMap::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let path = path.index(i);
        if i >= lim.addresses as usize {
            return Err(too_many(&path, "addresses", lim.addresses));
        }
        let port_path = path.key("port");
        let port_name = required(raw.port, &port_path, "the name of the port that owns the address")?;
        let port = port_index(ports, &port_name, &port_path)?;
        if ports[port].port.exception_of.is_some() {
            return Err(Fault::at(
                &port_path,
                format!("{port_name} is an exception path: give the address to the host's interface with `ip addr`"),
            ));
        }
        let addr_path = path.key("address");
        let text = required(
            raw.address,
            &addr_path,
            "an IP address with its prefix length, like \"198.18.0.254/24\" or \"2001:db8::1/64\"",
        )?;
        let (addr, prefix) = parse_cidr(&text, &addr_path)?;
        let mtu = ports[port].port.mtu;
        if addr.is_ipv6() && mtu < 1280 {
            return Err(Fault::at(
                &addr_path,
                format!("{addr} is IPv6, but {port_name} has an MTU of {mtu}: IPv6 needs at least 1280 (RFC 8200)"),
            ));
        }
        if let Some(j) = seen.insert(addr, i) {
            return Err(Fault::at(&addr_path, format!("{addr} is already assigned by addresses[{j}]")));
        }
        out.push(IfAddr { port, addr, prefix, sapool: raw.sapool.unwrap_or(false) });
    }
    Ok(out)
}

/// An interface address with its prefix length, `text` at `path`.
fn parse_cidr(text: &str, path: &KeyPath) -> Result<(std::net::IpAddr, u8)> {
    let (addr, prefix) = crate::parse_ip_prefix(text).map_err(|e| Fault::at(path, e.to_string()))?;
    crate::check_if_addr(addr).map_err(|e| Fault::at(path, e))?;
    Ok((addr, prefix))
}

fn instance(raw: RawInstance, path: &KeyPath) -> Result<Instance> {
    let name = required(raw.name, &path.key("name"), "the instance name (1..=31 characters of [A-Za-z0-9_-])")?;
    check_instance_name(&name, &path.key("name"))?;
    let file_prefix = match raw.file_prefix {
        Some(prefix) => {
            check_instance_name(&prefix, &path.key("file_prefix"))?;
            prefix
        }
        None => name.clone(),
    };
    let huge_dir = absolute(raw.huge_dir, "/dev/hugepages", &path.key("huge_dir"))?;
    let shm_dir = absolute(raw.shm_dir, "/dev/shm", &path.key("shm_dir"))?;
    let main_lcore = Lcore {
        id: int(raw.main_lcore, 0, 0..=i64::from(MAX_LCORE) - 1, &path.key("main_lcore"))?,
        cpu: cpu(raw.main_cpu, &path.key("main_cpu"))?,
    };
    let housekeeping_cpu = cpu(raw.housekeeping_cpu, &path.key("housekeeping_cpu"))?.or(main_lcore.cpu);
    let log_level = raw.log_level.unwrap_or_else(|| "info".to_owned());
    if log_level.trim().is_empty() {
        return Err(Fault::at(
            &path.key("log_level"),
            "expected a tracing filter such as \"info\" or \"debug\", got an empty string",
        ));
    }
    Ok(Instance { name, file_prefix, huge_dir, shm_dir, main_lcore, housekeeping_cpu, log_level })
}

fn memory(raw: RawMemory, path: &KeyPath) -> Result<Memory> {
    let mbufs_per_lcore: u32 = int(raw.mbufs_per_lcore, 8191, 512..=16_777_216, &path.key("mbufs_per_lcore"))?;
    let mbuf_cache: u32 = int(raw.mbuf_cache, 256, 0..=512, &path.key("mbuf_cache"))?;
    // DPDK's rte_mempool_create refuses a cache larger than the pool / 1.5.
    if u64::from(mbuf_cache) * 3 > u64::from(mbufs_per_lcore) * 2 {
        return Err(Fault::at(
            &path.key("mbuf_cache"),
            format!(
                "expected at most {} (DPDK requires mbuf_cache * 1.5 <= mbufs_per_lcore = {}), \
                 got {}",
                u64::from(mbufs_per_lcore) * 2 / 3,
                mbufs_per_lcore,
                mbuf_cache
            ),
        ));
    }
    Ok(Memory {
        mbufs_per_lcore,
        mbuf_cache,
        rx_desc: descriptors(raw.rx_desc, &path.key("rx_desc"))?,
        tx_desc: descriptors(raw.tx_desc, &path.key("tx_desc"))?,
    })
}

/// A descriptor ring size: a power of two in 64..=4096, default 1024.
fn descriptors(raw: Option<Int>, path: &KeyPath) -> Result<u16> {
    let n: u16 = int(raw, 1024, 64..=4096, path)?;
    if !n.is_power_of_two() {
        return Err(Fault::at(path, format!("expected a power of two in 64..=4096, got {n}")));
    }
    Ok(n)
}

/// A port being resolved, with what later checks need to point back at it.
struct PortDraft {
    port: Port,
    path: KeyPath,
    /// The exception path's interface name, until [`exception_ports`] derives its port.
    kni: Option<String>,
}

/// The TAP port of each data port's exception path (`kni = "NAME"`): appended after the
/// configured ports, one rx queue polled by the lcore that polls the data port's queue 0, a tx
/// queue per forwarding lcore like every port.
fn exception_ports(ports: &mut Vec<PortDraft>, groups: &mut [WorkerGroup]) -> Result<()> {
    for i in 0..ports.len() {
        let Some(name) = ports[i].kni.take() else { continue };
        let path = ports[i].path.key("kni");
        check_short_name(&name, &path)?;
        if let Some(other) = ports.iter().find(|p| p.port.name == name) {
            return Err(Fault::at(&path, format!("\"{name}\" is already the name of {}", other.path)));
        }
        let j = ports.len();
        if j >= MAX_PORTS {
            return Err(Fault::at(&path, format!("too many ports with the exception paths: at most {MAX_PORTS}")));
        }
        let data = QueueRef { port: i, queue: 0 };
        let lcore = groups
            .iter_mut()
            .flat_map(|g| g.lcores.iter_mut())
            .find(|l| l.rx.contains(&data))
            .ok_or_else(|| Fault::at(&path, "the port's queue 0 is polled by no lcore"))?;
        if lcore.rx.len() >= MAX_RX_PER_LCORE {
            return Err(Fault::at(
                &path,
                format!(
                    "the lcore polling {}:0 polls {MAX_RX_PER_LCORE} queues already: no room for the exception path's",
                    ports[i].port.name
                ),
            ));
        }
        lcore.rx.push(QueueRef { port: j, queue: 0 });
        let port = Port {
            name: name.clone(),
            device: Device::Vdev(format!("net_tap_kni{i},iface={name}")),
            rx_queues: 1,
            tx_queues: ports[i].port.tx_queues,
            exception: None,
            exception_of: Some(i),
            mtu: ports[i].port.mtu,
            rss: crate::PortRss::default(),
        };
        ports[i].port.exception = Some(j);
        ports.push(PortDraft { port, path, kni: None });
    }
    Ok(())
}

fn ports(raw: Vec<RawPort>, path: &KeyPath) -> Result<Vec<PortDraft>> {
    if raw.is_empty() {
        return Err(Fault::at(path, format!("expected 1..={MAX_PORTS} [[ports]] tables, got none")));
    }
    let mut out: Vec<PortDraft> = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let path = path.index(i);
        if i >= MAX_PORTS {
            return Err(Fault::at(&path, format!("too many ports: at most {MAX_PORTS}")));
        }
        let name_path = path.key("name");
        let name =
            required(raw.name, &name_path, "the port name (1..=15 characters of [a-z0-9_.-], starting with a letter)")?;
        check_short_name(&name, &name_path)?;
        if let Some(other) = out.iter().find(|p| p.port.name == name) {
            return Err(Fault::at(&name_path, format!("port name \"{name}\" is already used by {}", other.path)));
        }
        let (device, device_path) = match (raw.vdev, raw.pci) {
            (Some(_), Some(_)) => return Err(Fault::at(&path.key("pci"), "expected one of `vdev` or `pci`, got both")),
            (None, None) => {
                return Err(Fault::at(
                    &path,
                    "expected one of `vdev` (a DPDK virtual device) or `pci` (a PCI address), \
                     got neither",
                ))
            }
            (Some(vdev), None) => {
                let p = path.key("vdev");
                check_vdev(&vdev, &p)?;
                (Device::Vdev(vdev), p)
            }
            (None, Some(pci)) => {
                let p = path.key("pci");
                let addr = normalise_pci(&pci, &p)?;
                (Device::Pci(addr), p)
            }
        };
        if let Some(other) = out.iter().find(|p| p.port.device.dpdk_name() == device.dpdk_name()) {
            return Err(Fault::at(
                &device_path,
                format!("device \"{}\" is already used by {}", device.dpdk_name(), other.path),
            ));
        }
        let rx_queues = int(raw.queues, 1, 1..=i64::from(MAX_QUEUES_PER_PORT), &path.key("queues"))?;
        let mtu = int(raw.mtu, 1500, 576..=9000, &path.key("mtu"))?;
        let rss = crate::rss::port_rss(raw.rss_key, raw.reta, rx_queues, &path)?;
        let port = Port { name, device, rx_queues, tx_queues: 0, exception: None, exception_of: None, mtu, rss };
        out.push(PortDraft { port, path, kni: raw.kni });
    }
    Ok(out)
}

fn forwarding(raw: RawForwarding, ports: &[PortDraft], path: &KeyPath) -> Result<Forwarding> {
    let mode_path = path.key("mode");
    let mode = required(raw.mode, &mode_path, "\"l2-pair\" or \"l2-reflect\"")?;
    let ports_path = path.key("ports");
    match mode.as_str() {
        "l2-pair" => {
            let names = required(raw.ports, &ports_path, "the two ports of the pair: ports = [\"a\", \"b\"]")?;
            let [a, b] = names.as_slice() else {
                return Err(Fault::at(
                    &ports_path,
                    format!("expected two port names for l2-pair, got {}", names.len()),
                ));
            };
            let a_index = port_index(ports, a, &ports_path.index(0))?;
            let b_index = port_index(ports, b, &ports_path.index(1))?;
            if a_index == b_index {
                return Err(Fault::at(&ports_path.index(1), format!("expected two distinct ports, got \"{b}\" twice")));
            }
            Ok(Forwarding::L2Pair { a: a_index, b: b_index })
        }
        "l2-reflect" => match raw.ports {
            Some(_) => Err(Fault::at(
                &ports_path,
                "l2-reflect sends packets back out of the port they came in on and takes no \
                 `ports`; remove it",
            )),
            None => Ok(Forwarding::L2Reflect),
        },
        other => Err(Fault::at(&mode_path, format!("expected \"l2-pair\" or \"l2-reflect\", got \"{other}\""))),
    }
}

/// The index of the port named `name`, or a fault at `path` listing the defined ports.
fn port_index(ports: &[PortDraft], name: &str, path: &KeyPath) -> Result<usize> {
    ports.iter().position(|p| p.port.name == name).ok_or_else(|| {
        let names: Vec<&str> = ports.iter().map(|p| p.port.name.as_str()).collect();
        Fault::at(path, format!("port \"{name}\" is not defined (ports: {})", names.join(", ")))
    })
}

/// Resolves the worker groups, checks that every port queue is polled exactly once, and
/// sets every port's tx queue count.
fn groups(
    raw: Vec<RawGroup>,
    ports: &mut [PortDraft],
    instance: &Instance,
    path: &KeyPath,
) -> Result<Vec<WorkerGroup>> {
    if raw.is_empty() {
        return Err(Fault::at(path, "expected at least one [[groups]] table of forwarding lcores, got none"));
    }
    let mut lcores = LcoreTally::default();
    let mut out: Vec<(WorkerGroup, KeyPath)> = Vec::with_capacity(raw.len());
    for (g, raw) in raw.into_iter().enumerate() {
        let path = path.index(g);
        let name_path = path.key("name");
        let name = required(
            raw.name,
            &name_path,
            "the group name (1..=15 characters of [a-z0-9_.-], starting with a letter)",
        )?;
        check_short_name(&name, &name_path)?;
        if let Some((_, other)) = out.iter().find(|(group, _)| group.name == name) {
            return Err(Fault::at(&name_path, format!("group name \"{name}\" is already used by {other}")));
        }
        let idle_sleep_us = int(raw.idle_sleep_us, 0, 0..=100_000, &path.key("idle_sleep_us"))?;
        let raw_lcores = raw.lcores.unwrap_or_default();
        if raw_lcores.is_empty() {
            return Err(Fault::at(&path.key("lcores"), "expected at least one [[groups.lcores]] table, got none"));
        }
        let mut group_lcores = Vec::with_capacity(raw_lcores.len());
        for (l, raw) in raw_lcores.into_iter().enumerate() {
            let lcore_path = path.key("lcores").index(l);
            group_lcores.push(lcores.add(raw, ports, instance, &lcore_path)?);
        }
        let hot_standby = raw.hot_standby.unwrap_or(false);
        out.push((WorkerGroup { name, lcores: group_lcores, idle_sleep_us, hot_standby }, path));
    }

    for (index, port) in ports.iter().enumerate() {
        for queue in 0..port.port.rx_queues {
            if !lcores.polled.contains_key(&(index, queue)) {
                return Err(Fault::at(
                    &port.path.key("queues"),
                    format!(
                        "queue {}:{queue} is not polled by any lcore; list it in the `rx` of one \
                         [[groups.lcores]]",
                        port.port.name
                    ),
                ));
            }
        }
    }
    let tx_queues = u16::try_from(lcores.count)
        .map_err(|_| Fault::at(path, format!("too many forwarding lcores: at most {MAX_WORKER_LCORES}")))?;
    for port in ports.iter_mut() {
        port.port.tx_queues = tx_queues;
    }
    Ok(out.into_iter().map(|(group, _)| group).collect())
}

/// The forwarding lcores seen so far, across all groups.
#[derive(Default)]
struct LcoreTally {
    /// How many (= the slot of the next one).
    count: usize,
    /// Lcore id -> key path of the lcore that has it.
    ids: HashMap<u32, KeyPath>,
    /// (port index, queue) -> (slot, lcore id) of the lcore polling it.
    polled: HashMap<(usize, u16), (usize, u32)>,
}

impl LcoreTally {
    /// Resolves one forwarding lcore, giving it the next slot.
    fn add(&mut self, raw: RawLcore, ports: &[PortDraft], instance: &Instance, path: &KeyPath) -> Result<WorkerLcore> {
        let slot = self.count;
        if slot >= MAX_WORKER_LCORES {
            return Err(Fault::at(
                path,
                format!("too many forwarding lcores: at most {MAX_WORKER_LCORES} in all groups"),
            ));
        }
        let id_path = path.key("id");
        let id = int(
            Some(required(raw.id, &id_path, "the EAL lcore id (0..=127)")?),
            0,
            0..=i64::from(MAX_LCORE) - 1,
            &id_path,
        )?;
        if id == instance.main_lcore.id {
            return Err(Fault::at(
                &id_path,
                format!("lcore {id} is the main lcore (instance.main_lcore); expected another id"),
            ));
        }
        if let Some(other) = self.ids.get(&id) {
            return Err(Fault::at(&id_path, format!("lcore {id} is already used by {other}")));
        }
        let cpu = cpu(raw.cpu, &path.key("cpu"))?;

        let rx_path = path.key("rx");
        let entries = required(raw.rx, &rx_path, "the queues this lcore polls: rx = [\"PORT:QUEUE\", ...]")?;
        if entries.is_empty() {
            return Err(Fault::at(
                &rx_path,
                format!("expected 1..={MAX_RX_PER_LCORE} \"PORT:QUEUE\" entries, got none"),
            ));
        }
        if entries.len() > MAX_RX_PER_LCORE {
            return Err(Fault::at(
                &rx_path.index(MAX_RX_PER_LCORE),
                format!("too many rx queues for one lcore: expected at most {MAX_RX_PER_LCORE}, got {}", entries.len()),
            ));
        }
        let mut rx = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry_path = rx_path.index(i);
            let queue_ref = queue_ref(entry, ports, &entry_path)?;
            let key = (queue_ref.port, queue_ref.queue);
            if let Some(&(other_slot, other_id)) = self.polled.get(&key) {
                let queue = format!("{}:{}", ports[key.0].port.name, key.1);
                let message = if other_slot == slot {
                    format!("{queue} is listed twice by this lcore")
                } else {
                    format!("{queue} is already polled by lcore {other_id}")
                };
                return Err(Fault::at(&entry_path, message));
            }
            self.polled.insert(key, (slot, id));
            rx.push(queue_ref);
        }

        self.ids.insert(id, path.clone());
        self.count += 1;
        Ok(WorkerLcore { lcore: Lcore { id, cpu }, slot, rx })
    }
}

/// Parses an rx entry `PORT:QUEUE` against the defined ports.
fn queue_ref(entry: &str, ports: &[PortDraft], path: &KeyPath) -> Result<QueueRef> {
    let malformed = || Fault::at(path, format!("expected \"PORT:QUEUE\" such as \"dpdk0:0\", got \"{entry}\""));
    let (name, queue) = entry.split_once(':').ok_or_else(malformed)?;
    if queue.is_empty() || !queue.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let port = port_index(ports, name, path)?;
    let rx_queues = ports[port].port.rx_queues;
    let queue = queue.parse::<u16>().ok().filter(|&q| q < rx_queues).ok_or_else(|| {
        Fault::at(
            path,
            format!(
                "queue {queue} does not exist: port \"{name}\" has queues 0..={} \
                     (queues = {rx_queues})",
                rx_queues - 1
            ),
        )
    })?;
    Ok(QueueRef { port, queue })
}

fn exporter(raw: crate::raw::RawExporter, path: &KeyPath) -> Result<crate::Exporter> {
    let Some(text) = raw.listen else { return Ok(crate::Exporter::default()) };
    let listen = text.parse().map_err(|_| {
        Fault::at(&path.key("listen"), format!("expected an address and port like \"127.0.0.1:9469\", got {text:?}"))
    })?;
    Ok(crate::Exporter { listen })
}

fn supervisor(raw: RawSupervisor, groups: &[WorkerGroup], path: &KeyPath) -> Result<Supervisor> {
    let heartbeat_timeout_ms = int(raw.heartbeat_timeout_ms, 1000, 50..=60_000, &path.key("heartbeat_timeout_ms"))?;
    // A worker beats once per poll round of at least 1 ms, longer when it sleeps while idle:
    // the timeout must leave room for ten such rounds, or idle workers are killed in a loop.
    let max_sleep_us = groups.iter().map(|g| g.idle_sleep_us).max().unwrap_or(0);
    let min_ms = 10 * (1 + max_sleep_us.div_ceil(1000));
    if heartbeat_timeout_ms < min_ms {
        return Err(Fault::at(
            &path.key("heartbeat_timeout_ms"),
            format!(
                "{heartbeat_timeout_ms} ms is too short for idle_sleep_us = {max_sleep_us}: \
                 expected at least {min_ms} ms (ten poll rounds)"
            ),
        ));
    }
    Ok(Supervisor {
        heartbeat_timeout_ms,
        max_restart_backoff_ms: int(
            raw.max_restart_backoff_ms,
            5000,
            0..=600_000,
            &path.key("max_restart_backoff_ms"),
        )?,
    })
}

/// `value`, or a "missing" fault at `path` saying what was `expected`.
fn required<T>(value: Option<T>, path: &KeyPath, expected: &str) -> Result<T> {
    value.ok_or_else(|| Fault::at(path, format!("missing; expected {expected}")))
}

/// An integer in `range` (`default` when absent), as `T`.
pub(crate) fn int<T>(value: Option<Int>, default: T, range: RangeInclusive<i64>, path: &KeyPath) -> Result<T>
where
    T: TryFrom<i64>,
{
    let Some(Int(v)) = value else {
        return Ok(default);
    };
    let out_of_range =
        || Fault::at(path, format!("expected an integer in {}..={}, got {v}", range.start(), range.end()));
    if !range.contains(&v) {
        return Err(out_of_range());
    }
    T::try_from(v).map_err(|_| out_of_range())
}

/// An optional CPU number to pin to.
fn cpu(value: Option<Int>, path: &KeyPath) -> Result<Option<u32>> {
    value.map(|v| int(Some(v), 0, 0..=i64::from(MAX_CPU) - 1, path)).transpose()
}

/// An absolute directory (`default` when absent).
fn absolute(value: Option<String>, default: &str, path: &KeyPath) -> Result<PathBuf> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if !Path::new(&value).is_absolute() {
        return Err(Fault::at(path, format!("expected an absolute path such as \"{default}\", got \"{value}\"")));
    }
    Ok(PathBuf::from(value))
}

/// Instance name / file prefix: 1..=[`MAX_NAME_LEN`] characters of `[A-Za-z0-9_-]`.
fn check_instance_name(name: &str, path: &KeyPath) -> Result<()> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Fault::at(path, format!("expected 1..={MAX_NAME_LEN} characters of [A-Za-z0-9_-], got \"{name}\"")))
    }
}

/// Port / group name: 1..=[`MAX_PORT_NAME_LEN`] characters of `[a-z0-9_.-]`, starting with a
/// letter.
fn check_short_name(name: &str, path: &KeyPath) -> Result<()> {
    let ok = (1..=MAX_PORT_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Fault::at(
            path,
            format!(
                "expected 1..={MAX_PORT_NAME_LEN} characters of [a-z0-9_.-] starting with a \
                 lowercase letter, got \"{name}\""
            ),
        ))
    }
}

/// A vdev argument: no whitespace, and a device name (up to the first comma) `net_<driver...>`.
fn check_vdev(vdev: &str, path: &KeyPath) -> Result<()> {
    if vdev.is_empty() {
        return Err(Fault::at(path, "expected a vdev such as \"net_tap0,iface=tap0\", got an empty string"));
    }
    if vdev.chars().any(char::is_whitespace) {
        return Err(Fault::at(
            path,
            format!("expected a vdev without whitespace (it is passed verbatim to DPDK), got \"{vdev}\""),
        ));
    }
    let name = vdev.split(',').next().unwrap_or(vdev);
    match name.strip_prefix("net_") {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(Fault::at(
            path,
            format!(
                "expected the vdev to start with a device name \"net_<driver><n>\" such as \
                 \"net_tap0\", got \"{name}\""
            ),
        )),
    }
}

/// A PCI address `DDDD:BB:DD.F` or `BB:DD.F` (hex), normalised to lowercase with the domain.
fn normalise_pci(addr: &str, path: &KeyPath) -> Result<String> {
    let bad = || {
        Fault::at(
            path,
            format!(
                "expected a PCI address \"DDDD:BB:DD.F\" or \"BB:DD.F\" (hex, device <= 1f, \
                 function <= 7) such as \"0000:03:00.0\", got \"{addr}\""
            ),
        )
    };
    let parts: Vec<&str> = addr.split(':').collect();
    let (domain, bus, dev_fn) = match parts.as_slice() {
        [domain, bus, dev_fn] => (*domain, *bus, *dev_fn),
        [bus, dev_fn] => ("0000", *bus, *dev_fn),
        _ => return Err(bad()),
    };
    let (dev, func) = dev_fn.split_once('.').ok_or_else(bad)?;
    let hex = |s: &str, digits: usize, max: u32| {
        (s.len() == digits && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
            .filter(|&v| v <= max)
    };
    match (hex(domain, 4, 0xffff), hex(bus, 2, 0xff), hex(dev, 2, 0x1f), hex(func, 1, 7)) {
        (Some(d), Some(b), Some(s), Some(f)) => Ok(format!("{d:04x}:{b:02x}:{s:02x}.{f}")),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_forms() {
        let p = KeyPath::root();
        assert_eq!(normalise_pci("0000:03:00.0", &p).unwrap(), "0000:03:00.0");
        assert_eq!(normalise_pci("03:00.1", &p).unwrap(), "0000:03:00.1");
        assert_eq!(normalise_pci("00AB:Fe:1F.7", &p).unwrap(), "00ab:fe:1f.7");
        for bad in ["", "3:00.0", "03:00", "03:20.0", "03:00.8", "0:03:00.0", "g0:00.0", "03:00.0.1", "1:2:3:4"] {
            assert!(normalise_pci(bad, &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn vdev_forms() {
        let p = KeyPath::root();
        assert!(check_vdev("net_tap0", &p).is_ok());
        assert!(check_vdev("net_memif0,role=server", &p).is_ok());
        for bad in ["", "net_", "net_,x=1", "tap0", "eth_tap0", "net_tap0, iface=x"] {
            assert!(check_vdev(bad, &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        let p = KeyPath::root();
        assert!(check_instance_name("dpvs-A_1", &p).is_ok());
        assert!(check_instance_name(&"a".repeat(31), &p).is_ok());
        assert!(check_instance_name(&"a".repeat(32), &p).is_err());
        assert!(check_instance_name("", &p).is_err());
        assert!(check_instance_name("a.b", &p).is_err());
        assert!(check_short_name("dpdk0", &p).is_ok());
        assert!(check_short_name("a.b_c-d", &p).is_ok());
        assert!(check_short_name(&"a".repeat(15), &p).is_ok());
        assert!(check_short_name(&"a".repeat(16), &p).is_err());
        assert!(check_short_name("0dpdk", &p).is_err());
        assert!(check_short_name("Dpdk0", &p).is_err());
        assert!(check_short_name("", &p).is_err());
    }

    #[test]
    fn ints() {
        let p = KeyPath::root();
        assert_eq!(int::<u16>(None, 7, 1..=16, &p).unwrap(), 7);
        assert_eq!(int::<u16>(Some(Int(16)), 7, 1..=16, &p).unwrap(), 16);
        assert!(int::<u16>(Some(Int(17)), 7, 1..=16, &p).is_err());
        assert!(int::<u32>(Some(Int(-1)), 7, 0..=16, &p).is_err());
        assert_eq!(descriptors(Some(Int(64)), &p).unwrap(), 64);
        assert!(descriptors(Some(Int(1000)), &p).is_err());
        assert!(descriptors(Some(Int(8192)), &p).is_err());
    }
}
