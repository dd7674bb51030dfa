//! `dpvsctl service ...`.

use std::fmt::Write;
use std::net::Ipv4Addr;

use serde::Serialize;
use shm_layout::Shm;

/// A service as `service list` shows it.
#[derive(Debug, Serialize)]
pub struct ServiceRow {
    pub protocol: String,
    pub vip: String,
    pub port: u16,
    pub scheduler: String,
    pub forward: String,
    pub local_addresses: Vec<String>,
    pub reals: Vec<RealRow>,
}

/// A real server.
#[derive(Debug, Serialize)]
pub struct RealRow {
    pub address: String,
    pub port: u16,
    pub weight: u32,
}

/// Reads the services.
pub fn view(shm: &Shm) -> Vec<ServiceRow> {
    shm.layout()
        .services()
        .iter()
        .map(|s| ServiceRow {
            protocol: match s.proto {
                6 => "TCP".to_owned(),
                17 => "UDP".to_owned(),
                p => format!("proto {p}"),
            },
            vip: Ipv4Addr::from(s.vip).to_string(),
            port: s.port,
            scheduler: s.scheduler.as_str().into_owned(),
            forward: "FullNat".to_owned(),
            local_addresses: s.laddrs[..usize::from(s.n_laddrs).min(s.laddrs.len())]
                .iter()
                .map(|a| Ipv4Addr::from(*a).to_string())
                .collect(),
            reals: s.reals[..usize::from(s.n_reals).min(s.reals.len())]
                .iter()
                .map(|r| RealRow { address: Ipv4Addr::from(r.addr).to_string(), port: r.port, weight: r.weight })
                .collect(),
        })
        .collect()
}

/// Renders them the way `ipvsadm -ln` does.
pub fn render(rows: &[ServiceRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
    let _ = writeln!(out, "  -> RemoteAddress:Port           Forward Weight");
    for s in rows {
        let _ = writeln!(out, "{:<4} {}:{} {}", s.protocol, s.vip, s.port, s.scheduler);
        for r in &s.reals {
            let _ = writeln!(out, "  -> {:<28} {:<7} {}", format!("{}:{}", r.address, r.port), s.forward, r.weight);
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
            forward: "FullNat".into(),
            local_addresses: vec!["198.18.1.254".into()],
            reals: vec![RealRow { address: "198.18.1.2".into(), port: 8080, weight: 1 }],
        }];
        let text = render(&rows);
        assert_eq!(
            text,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n\
             TCP  198.18.0.100:80 rr\n  -> 198.18.1.2:8080              FullNat 1\n  local addresses: 198.18.1.254\n"
        );
    }
}
