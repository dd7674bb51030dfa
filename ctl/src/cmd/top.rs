//! `dpvsctl top`: a live view, refreshed every interval, of what each forwarding lcore and the
//! busiest services do per second (packets, bits, new connections, drops), read from the
//! counters in shared memory like `stats --rate` and `service list --rate`.

use serde::Serialize;
use shm_layout::Shm;

use super::{config, service, stats, table, worker};

/// The counters at one moment.
pub struct Sample {
    stats: stats::Stats,
    services: service::Counters,
    runtime: Option<conf::Runtime>,
    generation: u64,
}

/// Reads the counters now.
pub fn sample(shm: &Shm) -> Sample {
    let snapshot = config::snapshot(shm).ok();
    Sample {
        stats: stats::view(shm),
        services: service::stats(shm),
        generation: snapshot.as_ref().map_or(0, |(g, _)| *g),
        runtime: snapshot.map(|(_, rt)| rt),
    }
}

/// One lcore over the interval.
#[derive(Debug, Serialize, PartialEq)]
pub struct TopLcore {
    pub slot: usize,
    pub lcore: u32,
    /// Its worker's state (`running`, `restarting`, ...).
    pub state: String,
    pub rx_pps: u64,
    pub tx_pps: u64,
    /// Every drop, all reasons, per second.
    pub drop_pps: u64,
    /// Connections created per second, and in its table now.
    pub new_conns_per_s: u64,
    pub conns: u32,
    /// Busy cycles per packet over the interval (None without packets).
    pub cycles_per_packet: Option<u64>,
}

/// One service over the interval.
#[derive(Debug, Serialize, PartialEq)]
pub struct TopService {
    pub protocol: String,
    pub vip: String,
    pub port: u16,
    pub new_conns_per_s: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// What one refresh shows.
#[derive(Debug, Serialize, PartialEq)]
pub struct Top {
    pub interval_s: f64,
    pub generation: u64,
    pub workers_polling: usize,
    pub workers: usize,
    pub lcores: Vec<TopLcore>,
    /// Services by packets per second, busiest first (at most the asked number).
    pub services: Vec<TopService>,
    /// Services in all.
    pub services_total: usize,
}

fn drops(s: &stats::LcoreStats) -> u64 {
    s.drop_tx_full
        + s.drop_runt
        + s.drop_malformed
        + s.drop_no_conn
        + s.drop_no_resource
        + s.drop_acl
        + s.drop_too_big
        + s.drop_redirect
}

/// The rates from `before` to `after`, `secs` apart; the `services` busiest services.
pub fn view(shm: &Shm, before: &Sample, after: &Sample, secs: f64, services: usize) -> Top {
    let rates = stats::rates(&before.stats, &after.stats, secs);
    let states = worker::view(shm);
    let lcores = rates
        .lcores
        .iter()
        .map(|r| {
            let conns = rates.connections.iter().find(|c| c.slot == r.slot);
            let st = &r.stats;
            TopLcore {
                slot: r.slot,
                lcore: r.lcore,
                state: states.iter().find(|w| w.slot == r.slot).map_or_else(|| "-".into(), |w| w.state.clone()),
                rx_pps: st.rx_packets,
                tx_pps: st.tx_packets,
                drop_pps: drops(st),
                new_conns_per_s: conns.map_or(0, |c| c.created),
                conns: conns.map_or(0, |c| c.active),
                cycles_per_packet: st.busy_cycles.checked_div(st.rx_packets),
            }
        })
        .collect();
    let per_s = service::rates(&before.services, &after.services, secs);
    let mut rows: Vec<TopService> = after
        .runtime
        .iter()
        .flat_map(|rt| rt.services.iter())
        .map(|s| {
            let c = per_s.services.get(&service::key_of(s)).copied().unwrap_or_default();
            TopService {
                protocol: s.protocol.name().to_uppercase(),
                vip: s.vip.to_string(),
                port: s.port,
                new_conns_per_s: c.conns,
                in_pps: c.in_packets,
                out_pps: c.out_packets,
                in_bps: c.in_bytes * 8,
                out_bps: c.out_bytes * 8,
            }
        })
        .collect();
    let services_total = rows.len();
    rows.sort_by_key(|s| std::cmp::Reverse((s.in_pps + s.out_pps, s.new_conns_per_s)));
    rows.truncate(services);
    Top {
        interval_s: secs,
        generation: after.generation,
        workers_polling: states.iter().filter(|w| w.state == "running").count(),
        workers: states.len(),
        lcores,
        services: rows,
        services_total,
    }
}

/// `1234567` as `1.23M`: three significant digits and a unit (k, M, G, T).
pub fn human(n: u64) -> String {
    let units = ["", "k", "M", "G", "T"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    match (i, v) {
        (0, _) => n.to_string(),
        (_, v) if v >= 100.0 => format!("{v:.0}{}", units[i]),
        (_, v) if v >= 10.0 => format!("{v:.1}{}", units[i]),
        (_, v) => format!("{v:.2}{}", units[i]),
    }
}

/// Renders one refresh.
pub fn render(t: &Top, instance: &str) -> String {
    let mut out = format!(
        "dpvs {instance}: {}/{} workers polling, generation {}, {} services; per second over {} s\n\n",
        t.workers_polling, t.workers, t.generation, t.services_total, t.interval_s
    );
    let lcores: Vec<Vec<String>> = t
        .lcores
        .iter()
        .map(|l| {
            vec![
                format!("lcore {}", l.lcore),
                l.state.clone(),
                human(l.rx_pps),
                human(l.tx_pps),
                human(l.drop_pps),
                human(l.new_conns_per_s),
                human(u64::from(l.conns)),
                l.cycles_per_packet.map_or_else(|| "-".into(), |c| c.to_string()),
            ]
        })
        .collect();
    out.push_str(&table(&["", "STATE", "RX-PPS", "TX-PPS", "DROP-PPS", "CONN/S", "CONNS", "CYC/PKT"], &lcores));
    if !t.services.is_empty() {
        let rows: Vec<Vec<String>> = t
            .services
            .iter()
            .map(|s| {
                vec![
                    format!("{}  {}", s.protocol, crate::endpoint(&s.vip, s.port)),
                    human(s.new_conns_per_s),
                    human(s.in_pps),
                    human(s.out_pps),
                    human(s.in_bps),
                    human(s.out_bps),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["SERVICE", "CONN/S", "IN-PPS", "OUT-PPS", "IN-BPS", "OUT-BPS"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_with_three_digits_and_a_unit() {
        for (n, s) in
            [(0, "0"), (999, "999"), (1000, "1.00k"), (12_345, "12.3k"), (999_499, "999k"), (1_234_567, "1.23M")]
        {
            assert_eq!(human(n), s);
        }
        assert_eq!(human(40_000_000_000_000), "40.0T");
        assert_eq!(human(u64::MAX), "18446744T");
    }
}
