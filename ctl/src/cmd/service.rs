//! `dpvsctl service ...`.

use std::fmt::Write;

use std::collections::HashMap;

use serde::Serialize;

use crate::cmd::conn::RealKey;

/// A service as `service list` shows it.
#[derive(Debug, Serialize)]
pub struct ServiceRow {
    pub protocol: String,
    pub vip: String,
    pub port: u16,
    pub scheduler: String,
    /// Persistence timeout, seconds (0: none).
    pub persistence: u32,
    /// The persistence granularity as ipvsadm prints it (a netmask for IPv4, a prefix length
    /// for IPv6); `None`: each address alone.
    pub persistence_mask: Option<String>,
    /// PROXY protocol version (`off`, `v1`, `v2`).
    pub proxy_protocol: String,
    /// The worker group named to serve it (`None`: the group polling its VIP's port).
    pub group: Option<String>,
    pub local_addresses: Vec<String>,
    /// Its health check, in a line (`None`: none).
    pub check: Option<String>,
    /// Whether a port has the VIP (answers ARP or neighbour discovery for it); a VRRP
    /// backup's is not held.
    pub vip_held: bool,
    pub reals: Vec<RealRow>,
}

/// A real server.
#[derive(Debug, Serialize)]
pub struct RealRow {
    pub address: String,
    pub port: u16,
    /// The weight it is scheduled with: 0 while its health check has it down.
    pub weight: u32,
    /// The weight configured for it.
    pub configured_weight: u32,
    /// Down by its health check, in a service whose check removes failed real servers:
    /// `ipvsadm -ln` does not list it.
    pub removed: bool,
    /// What the health checker last found (`None`: no check, or not checked yet).
    pub health: Option<HealthRow>,
    /// How packets reach it, as ipvsadm names it: FullNat, Route (direct routing), Masq
    /// (NAT) or Tunnel.
    pub forward: String,
    /// Its TCP connections in ESTABLISHED.
    pub active_conns: u64,
    /// Its other connections (other TCP states, UDP flows).
    pub inactive_conns: u64,
    /// Connection thresholds (0: none).
    pub upper: u32,
    pub lower: u32,
}

/// A real server's health, as the checker last found it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRow {
    /// `up`, `down` or `unknown` (not checked yet).
    pub state: String,
    /// Whether the last check succeeded.
    pub last_ok: bool,
    /// Results like the last in a row.
    pub in_a_row: u16,
    /// Wall clock of its last state change and of its last check, ms since the Unix epoch.
    pub since_ms: u64,
    pub checked_ms: u64,
    /// How long the last check took, µs.
    pub took_us: u64,
    /// Times it went down.
    pub flaps: u32,
    /// Checks made.
    pub checks: u32,
    /// The last failure's reason (empty: none yet).
    pub last_error: String,
}

/// A checked real server, as `dpvsctl check list` shows it.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    pub service: String,
    pub real: String,
    /// `up`, `down`, or `unknown` (not checked yet, or no checker has written it).
    pub state: String,
    /// The weight it is scheduled with.
    pub weight: u32,
    /// How long it has been in its state (`-`: unknown).
    pub since: String,
    pub checks: u32,
    pub flaps: u32,
    pub last_error: String,
    /// The configuration's verdict: out of scheduling.
    pub down: bool,
}

/// Every real server of every checked service, with what the checker found.
pub fn check_view(rt: &conf::Runtime, health: &HashMap<RealKey, HealthRow>) -> Vec<CheckRow> {
    let now = now_ms();
    let mut rows = Vec::new();
    for s in rt.services.iter().filter(|s| s.check.is_some()) {
        for r in &s.reals {
            let h = health.get(&(s.protocol.number(), s.vip, s.port, r.addr, r.port));
            rows.push(CheckRow {
                service: format!("{} {}", s.protocol.name(), crate::endpoint(&s.vip.to_string(), s.port)),
                real: crate::endpoint(&r.addr.to_string(), r.port),
                state: h.map_or("unknown", |h| h.state.as_str()).to_owned(),
                weight: r.effective_weight(),
                since: h.map_or("-".to_owned(), |h| format!("{} s", now.saturating_sub(h.since_ms) / 1000)),
                checks: h.map_or(0, |h| h.checks),
                flaps: h.map_or(0, |h| h.flaps),
                last_error: h.map(|h| h.last_error.clone()).unwrap_or_default(),
                down: r.down,
            });
        }
    }
    rows
}

/// The health table of `shm`, by real server (empty when no checker ever ran).
pub fn health(shm: &shm_layout::Shm) -> HashMap<RealKey, HealthRow> {
    let (header, entries) = shm.health();
    let used = (header.used.load(std::sync::atomic::Ordering::Acquire) as usize).min(entries.len());
    entries[..used]
        .iter()
        .filter_map(shm_layout::health::HealthEntry::read)
        .map(|h| {
            let state = match h.state {
                shm_layout::health::HealthState::Up => "up",
                shm_layout::health::HealthState::Down => "down",
                shm_layout::health::HealthState::Unknown => "unknown",
            };
            let row = HealthRow {
                state: state.to_owned(),
                last_ok: h.last_ok,
                in_a_row: h.in_a_row,
                since_ms: h.since_ms,
                checked_ms: h.checked_ms,
                took_us: h.took_us,
                flaps: h.flaps,
                checks: h.checks,
                last_error: h.error,
            };
            ((h.protocol, h.vip, h.vport, h.real, h.rport), row)
        })
        .collect()
}

/// The services of a runtime configuration, with the connection counts and the health of their
/// real servers.
pub fn view(
    rt: &conf::Runtime,
    counts: &HashMap<RealKey, (u64, u64)>,
    health: &HashMap<RealKey, HealthRow>,
) -> Vec<ServiceRow> {
    rt.services
        .iter()
        .map(|s| ServiceRow {
            protocol: s.protocol.name().to_uppercase(),
            vip: s.vip.to_string(),
            port: s.port,
            scheduler: s.scheduler.name().to_owned(),
            persistence: s.persistence,
            persistence_mask: (s.persistence_prefix > 0)
                .then(|| crate::ipvsadm::netmask_text(s.vip, s.persistence_prefix)),
            proxy_protocol: s.proxy_protocol.name().to_owned(),
            group: s.group.clone(),
            local_addresses: s.local_addresses.iter().map(std::net::IpAddr::to_string).collect(),
            check: s.check.as_ref().map(conf::HealthCheck::summary),
            vip_held: rt.addresses.iter().any(|a| a.addr == s.vip),
            reals: s
                .reals
                .iter()
                .map(|r| {
                    let key = (s.protocol.number(), s.vip, s.port, r.addr, r.port);
                    let (active_conns, inactive_conns) = counts.get(&key).copied().unwrap_or_default();
                    let removed = s.hides(r);
                    RealRow {
                        address: r.addr.to_string(),
                        port: r.port,
                        weight: r.effective_weight(),
                        configured_weight: r.weight,
                        removed,
                        health: s.check.as_ref().and(health.get(&key).cloned()),
                        forward: match r.forward {
                            conf::Forward::Fnat => "FullNat".to_owned(),
                            conf::Forward::Dr => "Route".to_owned(),
                            conf::Forward::Nat => "Masq".to_owned(),
                            conf::Forward::Tunnel => "Tunnel".to_owned(),
                        },
                        active_conns,
                        inactive_conns,
                        upper: r.upper,
                        lower: r.lower,
                    }
                })
                .collect(),
        })
        .collect()
}

/// One service's counters (or rates), summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// Counters (or rates) of every service by key (`shm_layout::ServiceCounters::key_of`) and of
/// every counted real server by (service key, `shm_layout::RealCounters::key_of`), summed over
/// the workers' tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub services: HashMap<u64, ServiceStats>,
    pub reals: HashMap<(u64, u64), ServiceStats>,
    /// Each counted real server's connections now, (active, inactive) as LVS counts them:
    /// gauges the workers keep, summed (rates leave them as they are).
    pub reals_now: HashMap<(u64, u64), (u64, u64)>,
}

impl ServiceStats {
    fn add(&mut self, c: [u64; 5]) {
        self.conns += c[0];
        self.in_packets += c[1];
        self.out_packets += c[2];
        self.in_bytes += c[3];
        self.out_bytes += c[4];
    }

    /// Per second from `before` to `self`, `secs` apart.
    fn rate_since(&self, before: &ServiceStats, secs: f64) -> ServiceStats {
        let per_s = |a: u64, b: u64| (a.saturating_sub(b) as f64 / secs).round() as u64;
        ServiceStats {
            conns: per_s(self.conns, before.conns),
            in_packets: per_s(self.in_packets, before.in_packets),
            out_packets: per_s(self.out_packets, before.out_packets),
            in_bytes: per_s(self.in_bytes, before.in_bytes),
            out_bytes: per_s(self.out_bytes, before.out_bytes),
        }
    }
}

/// Every service's and real server's counters, summed over the workers' tables.
pub fn stats(shm: &shm_layout::Shm) -> Counters {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    let l = shm.layout();
    let n = l.workers().len();
    let mut out = Counters::default();
    for slot in 0..n {
        for c in shm.service_counters(slot) {
            let key = c.key.load(Acquire);
            if key != 0 {
                let v = c.counts().map(|f| f.load(Relaxed));
                out.services.entry(key).or_default().add(v);
            }
        }
    }
    for slot in 0..n {
        for c in shm.real_counters(slot) {
            let service = c.service.load(Acquire);
            if service != 0 {
                let v = c.counts().map(|f| f.load(Relaxed));
                let key = (service, c.real.load(Relaxed));
                out.reals.entry(key).or_default().add(v);
                let (active, inactive) = c.now();
                let now = out.reals_now.entry(key).or_default();
                *now = (now.0 + u64::from(active), now.1 + u64::from(inactive));
            }
        }
    }
    out
}

/// Each real server's connections now, (active, inactive) as ipvsadm counts them, from the
/// gauges the workers keep in their counter slots: no pass over the connection tables (which
/// reads their whole capacity, 90-100 ms at a few million entries).
pub fn now_per_real(shm: &shm_layout::Shm, rt: &conf::Runtime) -> HashMap<RealKey, (u64, u64)> {
    let c = stats(shm);
    rt.services
        .iter()
        .flat_map(|s| {
            let key = key_of(s);
            let now = &c.reals_now;
            s.reals.iter().map(move |r| {
                let counted = now.get(&(key, shm_layout::RealCounters::key_of(r.addr, r.port)));
                ((s.protocol.number(), s.vip, s.port, r.addr, r.port), counted.copied().unwrap_or_default())
            })
        })
        .collect()
}

/// Rates per second between two [`stats`] snapshots `secs` apart.
pub fn rates(before: &Counters, after: &Counters, secs: f64) -> Counters {
    Counters {
        services: after
            .services
            .iter()
            .map(|(k, a)| (*k, a.rate_since(&before.services.get(k).copied().unwrap_or_default(), secs)))
            .collect(),
        reals: after
            .reals
            .iter()
            .map(|(k, a)| (*k, a.rate_since(&before.reals.get(k).copied().unwrap_or_default(), secs)))
            .collect(),
        reals_now: after.reals_now.clone(),
    }
}

/// The key of a service row.
pub fn key_of(rt_service: &conf::Service) -> u64 {
    shm_layout::ServiceCounters::key_of(rt_service.protocol.number(), rt_service.vip, rt_service.port)
}

/// The counters of real server `r` of service `s` (`None`: not counted, the table was full).
fn real_stats(c: &Counters, s: &conf::Service, r: &conf::Real) -> Option<ServiceStats> {
    c.reals.get(&(key_of(s), shm_layout::RealCounters::key_of(r.addr, r.port))).copied()
}

/// Services and their real servers with counters (`rate`: the column names of rates), as
/// `ipvsadm -ln --stats` / `--rate` show them.
pub fn render_stats(rt: &conf::Runtime, c: &Counters, rate: bool) -> String {
    let mut out = String::new();
    let names = if rate {
        ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]
    } else {
        ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
    };
    let _ = writeln!(
        out,
        "Prot LocalAddress:Port            {:>8} {:>8} {:>8} {:>10} {:>10}\n  -> RemoteAddress:Port",
        names[0], names[1], names[2], names[3], names[4]
    );
    let row = |out: &mut String, head: String, v: Option<ServiceStats>| {
        let _ = match v {
            Some(v) => writeln!(
                out,
                "{head:<33} {:>8} {:>8} {:>8} {:>10} {:>10}",
                v.conns, v.in_packets, v.out_packets, v.in_bytes, v.out_bytes
            ),
            None => writeln!(out, "{head:<33} {:>8} {:>8} {:>8} {:>10} {:>10}", "-", "-", "-", "-", "-"),
        };
    };
    for s in &rt.services {
        let head = format!("{:<4} {}", s.protocol.name().to_uppercase(), std::net::SocketAddr::new(s.vip, s.port));
        row(&mut out, head, Some(c.services.get(&key_of(s)).copied().unwrap_or_default()));
        for r in &s.reals {
            row(&mut out, format!("  -> {}", std::net::SocketAddr::new(r.addr, r.port)), real_stats(c, s, r));
        }
    }
    out
}

/// A service with its counters, for `service list --stats|--rate --json`.
#[derive(Debug, Serialize)]
pub struct ServiceStatsRow {
    pub protocol: String,
    pub vip: String,
    pub port: u16,
    #[serde(flatten)]
    pub stats: ServiceStats,
    pub reals: Vec<RealStatsRow>,
}

/// A real server with its counters (`None`: not counted per real server).
#[derive(Debug, Serialize)]
pub struct RealStatsRow {
    pub address: String,
    pub port: u16,
    pub stats: Option<ServiceStats>,
}

/// The rows of `render_stats`, for JSON.
pub fn stats_rows(rt: &conf::Runtime, c: &Counters) -> Vec<ServiceStatsRow> {
    rt.services
        .iter()
        .map(|s| ServiceStatsRow {
            protocol: s.protocol.name().to_uppercase(),
            vip: s.vip.to_string(),
            port: s.port,
            stats: c.services.get(&key_of(s)).copied().unwrap_or_default(),
            reals: s
                .reals
                .iter()
                .map(|r| RealStatsRow { address: r.addr.to_string(), port: r.port, stats: real_stats(c, s, r) })
                .collect(),
        })
        .collect()
}

/// An interface address, for `addr show`.
#[derive(Debug, Serialize)]
pub struct AddrRow {
    pub address: String,
    pub prefix: u8,
    pub port: String,
}

/// A neighbour, for `neigh show`.
#[derive(Debug, Serialize)]
pub struct NeighRow {
    pub address: String,
    pub mac: String,
    pub port: String,
    /// `static` (configured), `learned` (from ARP, by the workers, confirmed in the last 30 s)
    /// or `stale` (being asked for again; forgotten 40 s after its last confirmation).
    pub state: String,
}

/// A network in a service's access list, for `acl list`.
#[derive(Debug, Serialize)]
pub struct AclRow {
    pub service: String,
    /// deny or allow.
    pub list: String,
    pub network: String,
}

/// The access lists of every service of `rt`.
pub fn acl_view(rt: &conf::Runtime) -> Vec<AclRow> {
    let mut out = Vec::new();
    for s in &rt.services {
        let key = format!("{} {}", s.protocol.name(), std::net::SocketAddr::new(s.vip, s.port));
        for (list, l) in [("deny", &s.deny), ("allow", &s.allow)] {
            out.extend(l.iter().map(|p| AclRow { service: key.clone(), list: list.into(), network: p.to_string() }));
        }
    }
    out
}

/// A local address of a service, for `laddr list`.
#[derive(Debug, Serialize)]
pub struct LaddrRow {
    pub service: String,
    pub address: String,
}

/// The addresses of `rt`, port names from `ports`.
pub fn addr_view(rt: &conf::Runtime, ports: &[String]) -> Vec<AddrRow> {
    let name = |p: usize| ports.get(p).cloned().unwrap_or_else(|| "?".into());
    rt.addresses.iter().map(|a| AddrRow { address: a.addr.to_string(), prefix: a.prefix, port: name(a.port) }).collect()
}

/// The static neighbours of `rt`, then those the workers learned from ARP or neighbour
/// discovery (`learned`, from
/// [`learned`]) for addresses without a static entry.
pub fn neigh_view(
    rt: &conf::Runtime,
    (learned, now_ns): (&[shm_layout::Learned], u64),
    ports: &[String],
) -> Vec<NeighRow> {
    let name = |p: usize| ports.get(p).cloned().unwrap_or_else(|| "?".into());
    let row = |addr: std::net::IpAddr, mac: [u8; 6], port: usize, state: &str| NeighRow {
        address: addr.to_string(),
        mac: conf::mac_text(mac),
        port: name(port),
        state: state.into(),
    };
    let mut out: Vec<NeighRow> = rt.neighbours.iter().map(|n| row(n.addr, n.mac, n.port, "static")).collect();
    for e in learned {
        let addr = e.ip();
        if !rt.neighbours.iter().any(|n| addr == n.addr) {
            let state = if e.state(now_ns) == shm_layout::NeighState::Reachable { "learned" } else { "stale" };
            out.push(row(addr, e.mac, usize::from(e.port), state));
        }
    }
    out
}

/// The neighbours every worker learned from ARP, merged.
pub fn learned(shm: &shm_layout::Shm) -> Vec<shm_layout::Learned> {
    let l = shm.layout();
    shm_layout::merge_learned(l.learned[..l.workers().len()].iter().map(|t| &t[..]), shm_layout::monotonic_ns())
}

/// The local addresses of every service of `rt`.
pub fn laddr_view(rt: &conf::Runtime) -> Vec<LaddrRow> {
    rt.services
        .iter()
        .flat_map(|s| {
            let key = format!("{} {}", s.protocol.name(), std::net::SocketAddr::new(s.vip, s.port));
            s.local_addresses.iter().map(move |a| LaddrRow { service: key.clone(), address: a.to_string() })
        })
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `     health: down for 12 s (3 failures in a row): connect: Connection refused; 1 flap, weight 1`.
pub fn health_line(h: &HealthRow, r: &RealRow, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(h.since_ms) / 1000;
    let row = if h.last_ok { "successes" } else { "failures" };
    let mut line = format!("{HEALTH_PREFIX}{} for {secs} s ({} {row} in a row", h.state, h.in_a_row);
    if h.checked_ms > 0 {
        let _ = write!(line, ", last check {} ms ago", now_ms.saturating_sub(h.checked_ms));
    }
    line.push(')');
    if h.state == "down" || !h.last_error.is_empty() {
        let said = if h.state == "down" { "" } else { "last error " };
        let _ = write!(line, ": {said}{}", h.last_error);
    }
    let _ = write!(line, "; {} flap{}", h.flaps, if h.flaps == 1 { "" } else { "s" });
    if r.weight != r.configured_weight {
        let _ = write!(line, ", configured weight {}", r.configured_weight);
    }
    if r.removed {
        line.push_str(", removed");
    }
    line
}

/// What the line saying that no port holds a service's VIP starts with.
pub const VIP_NOT_HELD: &str = "  vip not held: ";

/// What a real server's health line starts with.
pub const HEALTH_PREFIX: &str = "       health: ";

/// Renders them the way `ipvsadm -ln` does (with the checks and the health of the real servers
/// under them).
pub fn render(rows: &[ServiceRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
    let _ = writeln!(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for s in rows {
        // The flags column as ipvsadm prints it: `persistent N [mask M]`.
        let mut flags = if s.persistence > 0 { format!(" persistent {}", s.persistence) } else { String::new() };
        if let Some(m) = &s.persistence_mask {
            let _ = write!(flags, " mask {m}");
        }
        if let Some(g) = &s.group {
            let _ = write!(flags, " group {g}");
        }
        let _ = writeln!(out, "{:<4} {} {}{flags}", s.protocol, crate::endpoint(&s.vip, s.port), s.scheduler);
        if !s.vip_held {
            let _ = writeln!(
                out,
                "{VIP_NOT_HELD}{} is no port's address (a VRRP backup's?): nothing answers ARP for it",
                s.vip
            );
        }
        if let Some(c) = &s.check {
            let _ = writeln!(out, "  check: {c}");
        }
        for r in &s.reals {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {}",
                crate::endpoint(&r.address, r.port),
                r.forward,
                r.weight,
                r.active_conns,
                r.inactive_conns
            );
            if let Some(h) = &r.health {
                let _ = writeln!(out, "{}", health_line(h, r, now_ms()));
            }
        }
        let _ = writeln!(out, "  local addresses: {}", s.local_addresses.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_ipvsadm() {
        let mut rows = vec![ServiceRow {
            protocol: "TCP".into(),
            vip: "198.18.0.100".into(),
            port: 80,
            scheduler: "rr".into(),
            persistence: 0,
            persistence_mask: None,
            proxy_protocol: "off".into(),
            group: None,
            local_addresses: vec!["198.18.1.254".into()],
            check: None,
            vip_held: true,
            reals: vec![RealRow {
                address: "198.18.1.2".into(),
                port: 8080,
                weight: 1,
                configured_weight: 1,
                removed: false,
                health: None,
                forward: "FullNat".into(),
                active_conns: 2,
                inactive_conns: 5,
                upper: 0,
                lower: 0,
            }],
        }];
        let text = render(&rows);
        assert_eq!(
            text,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  198.18.0.100:80 rr\n  -> 198.18.1.2:8080              FullNat 1      2          5\n  local addresses: 198.18.1.254\n"
        );
        rows[0].persistence = 360;
        assert!(render(&rows).contains("TCP  198.18.0.100:80 rr persistent 360\n"), "ipvsadm's flags column");
        rows[0].group = Some("fnat".into());
        assert!(render(&rows).contains("TCP  198.18.0.100:80 rr persistent 360 group fnat\n"), "a named group");
        rows[0].persistence_mask = Some("255.255.255.0".into());
        assert!(render(&rows).contains("rr persistent 360 mask 255.255.255.0 group fnat\n"), "by network");
    }
}
