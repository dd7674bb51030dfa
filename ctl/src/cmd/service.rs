//! `dpvsctl service ...`.

use std::fmt::Write;
use std::net::Ipv4Addr;

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
    pub local_addresses: Vec<String>,
    pub reals: Vec<RealRow>,
}

/// A real server.
#[derive(Debug, Serialize)]
pub struct RealRow {
    pub address: String,
    pub port: u16,
    pub weight: u32,
    /// How packets reach it, as ipvsadm names it: FullNat, Route (direct routing) or Masq
    /// (NAT).
    pub forward: String,
    /// Its TCP connections in ESTABLISHED.
    pub active_conns: u64,
    /// Its other connections (other TCP states, UDP flows).
    pub inactive_conns: u64,
}

/// The services of a runtime configuration, with the connection counts of their real servers.
pub fn view(rt: &conf::Runtime, counts: &HashMap<RealKey, (u64, u64)>) -> Vec<ServiceRow> {
    rt.services
        .iter()
        .map(|s| ServiceRow {
            protocol: s.protocol.name().to_uppercase(),
            vip: s.vip.to_string(),
            port: s.port,
            scheduler: s.scheduler.name().to_owned(),
            local_addresses: s.local_addresses.iter().map(Ipv4Addr::to_string).collect(),
            reals: s
                .reals
                .iter()
                .map(|r| {
                    let (active_conns, inactive_conns) =
                        counts.get(&(s.protocol.number(), s.vip, s.port, r.addr, r.port)).copied().unwrap_or_default();
                    RealRow {
                        address: r.addr.to_string(),
                        port: r.port,
                        weight: r.weight,
                        forward: match r.forward {
                            conf::Forward::Fnat => "FullNat".to_owned(),
                            conf::Forward::Dr => "Route".to_owned(),
                            conf::Forward::Nat => "Masq".to_owned(),
                        },
                        active_conns,
                        inactive_conns,
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

/// Every service's counters by key (`shm_layout::ServiceCounters::key_of`), summed over the
/// workers' tables.
pub fn stats(shm: &shm_layout::Shm) -> HashMap<u64, ServiceStats> {
    use std::sync::atomic::Ordering::Relaxed;
    let l = shm.layout();
    let mut out: HashMap<u64, ServiceStats> = HashMap::new();
    for table in &l.service_counters[..l.workers().len()] {
        for c in table {
            let key = c.key.load(std::sync::atomic::Ordering::Acquire);
            if key == 0 {
                continue;
            }
            let s = out.entry(key).or_default();
            s.conns += c.conns.load(Relaxed);
            s.in_packets += c.in_packets.load(Relaxed);
            s.out_packets += c.out_packets.load(Relaxed);
            s.in_bytes += c.in_bytes.load(Relaxed);
            s.out_bytes += c.out_bytes.load(Relaxed);
        }
    }
    out
}

/// Rates per second between two [`stats`] snapshots `secs` apart.
pub fn rates(
    before: &HashMap<u64, ServiceStats>,
    after: &HashMap<u64, ServiceStats>,
    secs: f64,
) -> HashMap<u64, ServiceStats> {
    let per_s = |a: u64, b: u64| (a.saturating_sub(b) as f64 / secs).round() as u64;
    after
        .iter()
        .map(|(k, a)| {
            let b = before.get(k).copied().unwrap_or_default();
            let r = ServiceStats {
                conns: per_s(a.conns, b.conns),
                in_packets: per_s(a.in_packets, b.in_packets),
                out_packets: per_s(a.out_packets, b.out_packets),
                in_bytes: per_s(a.in_bytes, b.in_bytes),
                out_bytes: per_s(a.out_bytes, b.out_bytes),
            };
            (*k, r)
        })
        .collect()
}

/// The key of a service row.
pub fn key_of(rt_service: &conf::Service) -> u64 {
    shm_layout::ServiceCounters::key_of(rt_service.protocol.number(), rt_service.vip.octets(), rt_service.port)
}

/// Services with counters (`rate`: the column names of rates), as `ipvsadm -ln --stats` /
/// `--rate` show them; real servers are listed without numbers (no per-real-server counters).
pub fn render_stats(rt: &conf::Runtime, stats: &HashMap<u64, ServiceStats>, rate: bool) -> String {
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
    for s in &rt.services {
        let v = stats.get(&key_of(s)).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<4} {:<28} {:>8} {:>8} {:>8} {:>10} {:>10}",
            s.protocol.name().to_uppercase(),
            format!("{}:{}", s.vip, s.port),
            v.conns,
            v.in_packets,
            v.out_packets,
            v.in_bytes,
            v.out_bytes
        );
        for r in &s.reals {
            let _ = writeln!(out, "  -> {}:{}", r.addr, r.port);
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
}

/// The rows of `render_stats`, for JSON.
pub fn stats_rows(rt: &conf::Runtime, stats: &HashMap<u64, ServiceStats>) -> Vec<ServiceStatsRow> {
    rt.services
        .iter()
        .map(|s| ServiceStatsRow {
            protocol: s.protocol.name().to_uppercase(),
            vip: s.vip.to_string(),
            port: s.port,
            stats: stats.get(&key_of(s)).copied().unwrap_or_default(),
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

/// The neighbours of `rt`.
pub fn neigh_view(rt: &conf::Runtime, ports: &[String]) -> Vec<NeighRow> {
    let name = |p: usize| ports.get(p).cloned().unwrap_or_else(|| "?".into());
    rt.neighbours
        .iter()
        .map(|n| NeighRow { address: n.addr.to_string(), mac: conf::mac_text(n.mac), port: name(n.port) })
        .collect()
}

/// The local addresses of every service of `rt`.
pub fn laddr_view(rt: &conf::Runtime) -> Vec<LaddrRow> {
    rt.services
        .iter()
        .flat_map(|s| {
            let key = format!("{} {}:{}", s.protocol.name(), s.vip, s.port);
            s.local_addresses.iter().map(move |a| LaddrRow { service: key.clone(), address: a.to_string() })
        })
        .collect()
}

/// Renders them the way `ipvsadm -ln` does.
pub fn render(rows: &[ServiceRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
    let _ = writeln!(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for s in rows {
        let _ = writeln!(out, "{:<4} {}:{} {}", s.protocol, s.vip, s.port, s.scheduler);
        for r in &s.reals {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {}",
                format!("{}:{}", r.address, r.port),
                r.forward,
                r.weight,
                r.active_conns,
                r.inactive_conns
            );
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
        let rows = vec![ServiceRow {
            protocol: "TCP".into(),
            vip: "198.18.0.100".into(),
            port: 80,
            scheduler: "rr".into(),
            local_addresses: vec!["198.18.1.254".into()],
            reals: vec![RealRow {
                address: "198.18.1.2".into(),
                port: 8080,
                weight: 1,
                forward: "FullNat".into(),
                active_conns: 2,
                inactive_conns: 5,
            }],
        }];
        let text = render(&rows);
        assert_eq!(
            text,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  198.18.0.100:80 rr\n  -> 198.18.1.2:8080              FullNat 1      2          5\n  local addresses: 198.18.1.254\n"
        );
    }
}
