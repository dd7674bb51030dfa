//! `dpvsctl stats`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use shm_layout::Shm;

use super::table;

/// Forwarding counters of one lcore (or their total).
#[derive(Debug, Default, Clone, Serialize)]
pub struct LcoreStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub drop_tx_full: u64,
    pub drop_runt: u64,
    pub rx_bursts: u64,
    pub polls: u64,
    pub idle_polls: u64,
    pub busy_cycles: u64,
    pub arp_replies: u64,
    pub icmp_echo_replies: u64,
    /// IPv6 neighbour solicitations for owned addresses answered.
    pub nd_replies: u64,
    /// ICMP time exceeded sent for translated packets whose TTL ran out.
    pub icmp_time_exceeded: u64,
    pub fnat_in: u64,
    pub fnat_out: u64,
    pub drop_no_conn: u64,
    pub drop_no_resource: u64,
    /// New connections refused by a service's access lists.
    pub drop_acl: u64,
    /// New connections refused because the real servers were at their upper thresholds
    /// (part of `drop_no_resource`).
    pub drop_overloaded: u64,
    /// ICMP fragmentation needed sent (IP-in-IP packets too big for the port, DF set).
    pub icmp_frag_needed: u64,
    /// IP-in-IP packets too big for the port without DF: dropped.
    pub drop_too_big: u64,
    /// Packets handed to the lcore that owns their connection (taken by the redirect ring).
    pub redirected: u64,
    pub drop_redirect: u64,
    /// Handed over, by why (whether or not the ring took them): NAT-mode services (their
    /// replies keep the client's tuple, which RSS cannot place)...
    pub handed_nat: u64,
    /// ... persistent services (a client's connections follow its template) ...
    pub handed_persistent: u64,
    /// ... RSS put them on another lcore than the port's RSS names (a peer that does not
    /// apply the emulated RSS) ...
    pub handed_rss_mismatch: u64,
    /// ... and ports whose RSS is unknown. Full-NAT and direct routing with RSS: none.
    pub handed_no_rss: u64,
    /// Malformed IPv4 frames dropped, all reasons.
    pub drop_malformed: u64,
    /// The same, by reason (`truncated`, `bad_total_len`, ...).
    pub drop_malformed_by_reason: std::collections::BTreeMap<&'static str, u64>,
}

impl LcoreStats {
    /// Sets each counter to `f(its value, other's)`.
    fn combine(&mut self, other: &LcoreStats, f: impl Fn(u64, u64) -> u64) {
        macro_rules! each {
            ($($field:ident),* $(,)?) => { $( self.$field = f(self.$field, other.$field); )* };
        }
        each!(
            rx_packets,
            tx_packets,
            drop_tx_full,
            drop_runt,
            rx_bursts,
            polls,
            idle_polls,
            busy_cycles,
            arp_replies,
            icmp_echo_replies,
            nd_replies,
            icmp_time_exceeded,
            fnat_in,
            fnat_out,
            drop_no_conn,
            drop_no_resource,
            drop_acl,
            drop_overloaded,
            icmp_frag_needed,
            drop_too_big,
            redirected,
            drop_redirect,
            handed_nat,
            handed_persistent,
            handed_rss_mismatch,
            handed_no_rss,
            drop_malformed,
        );
        for (reason, n) in &other.drop_malformed_by_reason {
            let mine = self.drop_malformed_by_reason.entry(reason).or_default();
            *mine = f(*mine, *n);
        }
    }
}

/// Per second from `before` to `after`, `secs` apart.
fn per_second(after: u64, before: u64, secs: f64) -> u64 {
    (after.saturating_sub(before) as f64 / secs).round() as u64
}

/// The counters of `after` as rates per second since `before`, `secs` earlier (`stats
/// --rate`): every counter, by lcore and in total; the connection tables' sizes as they are in
/// `after`. Busy cycles per packet is then that of the interval.
pub fn rates(before: &Stats, after: &Stats, secs: f64) -> Stats {
    let lcores: Vec<LcoreRow> = after
        .lcores
        .iter()
        .map(|a| {
            let mut stats = a.stats.clone();
            if let Some(b) = before.lcores.iter().find(|b| b.slot == a.slot) {
                stats.combine(&b.stats, |x, y| per_second(x, y, secs));
            }
            LcoreRow { slot: a.slot, lcore: a.lcore, stats }
        })
        .collect();
    let mut total = after.total.clone();
    total.combine(&before.total, |x, y| per_second(x, y, secs));
    let connections = after
        .connections
        .iter()
        .map(|a| {
            let b = before.connections.iter().find(|b| b.slot == a.slot).cloned().unwrap_or_default();
            let r = |x: u64, y: u64| per_second(x, y, secs);
            ConnRow {
                created: r(a.created, b.created),
                expired: r(a.expired, b.expired),
                removed: r(a.removed, b.removed),
                full: r(a.full, b.full),
                lookups: r(a.lookups, b.lookups),
                hits: r(a.hits, b.hits),
                rebuilds: r(a.rebuilds, b.rebuilds),
                ..a.clone()
            }
        })
        .collect();
    Stats { lcores, total, connections }
}

/// One lcore's row.
#[derive(Debug, Serialize)]
pub struct LcoreRow {
    pub slot: usize,
    pub lcore: u32,
    #[serde(flatten)]
    pub stats: LcoreStats,
}

/// What `stats` shows.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub lcores: Vec<LcoreRow>,
    pub total: LcoreStats,
    /// Connection tables, per worker slot (absent when the instance has no services).
    pub connections: Vec<ConnRow>,
}

/// One lcore's connection table.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ConnRow {
    pub slot: usize,
    pub capacity: u32,
    /// Connections now.
    pub active: u32,
    pub created: u64,
    pub expired: u64,
    pub removed: u64,
    /// Creations refused because the table was full.
    pub full: u64,
    pub lookups: u64,
    pub hits: u64,
    /// Index rebuilds after a worker died mid-change.
    pub rebuilds: u64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Reads the counters.
pub fn view(shm: &Shm) -> Stats {
    let l = shm.layout();
    let mut total = LcoreStats::default();
    let lcores = l
        .workers()
        .iter()
        .enumerate()
        .map(|(slot, w)| {
            let c = &l.counters[slot];
            let s = LcoreStats {
                rx_packets: get(&c.rx_packets),
                tx_packets: get(&c.tx_packets),
                drop_tx_full: get(&c.drop_tx_full),
                drop_runt: get(&c.drop_runt),
                rx_bursts: get(&c.rx_bursts),
                polls: get(&c.polls),
                idle_polls: get(&c.idle_polls),
                busy_cycles: get(&c.busy_cycles),
                arp_replies: get(&c.arp_replies),
                icmp_echo_replies: get(&c.icmp_echo_replies),
                nd_replies: get(&c.nd_replies),
                icmp_time_exceeded: get(&c.icmp_time_exceeded),
                fnat_in: get(&c.fnat_in),
                fnat_out: get(&c.fnat_out),
                drop_no_conn: get(&c.drop_no_conn),
                drop_no_resource: get(&c.drop_no_resource),
                drop_acl: get(&c.drop_acl),
                drop_overloaded: get(&c.drop_overloaded),
                icmp_frag_needed: get(&c.icmp_frag_needed),
                drop_too_big: get(&c.drop_too_big),
                redirected: get(&c.redirected),
                drop_redirect: get(&c.drop_redirect),
                handed_nat: get(&c.handed_nat),
                handed_persistent: get(&c.handed_persistent),
                handed_rss_mismatch: get(&c.handed_rss_mismatch),
                handed_no_rss: get(&c.handed_no_rss),
                drop_malformed: c.drop_malformed.iter().map(get).sum(),
                drop_malformed_by_reason: shm_layout::MALFORMED_REASONS
                    .iter()
                    .zip(&c.drop_malformed)
                    .map(|(r, n)| (*r, get(n)))
                    .collect(),
            };
            total.combine(&s, |a, b| a + b);
            let lcore = Some(w.lcore_now.load(Ordering::Acquire)).filter(|&l| l != 0).unwrap_or(w.lcore);
            LcoreRow { slot, lcore, stats: s }
        })
        .collect();
    let connections = {
        (0..l.workers().len())
            .filter_map(|slot| {
                let f = shm_layout::ConnShardFile::open(&shm_layout::conn::conn_shard_path(shm.path(), slot)).ok()?;
                let h = f.header();
                let c = &h.counters;
                Some(ConnRow {
                    slot,
                    capacity: h.capacity,
                    active: h.used.load(Ordering::Relaxed),
                    created: get(&c.created),
                    expired: get(&c.expired),
                    removed: get(&c.removed),
                    full: get(&c.full),
                    lookups: get(&c.lookups),
                    hits: get(&c.hits),
                    rebuilds: get(&c.rebuilds),
                })
            })
            .collect()
    };
    Stats { lcores, total, connections }
}

/// Renders the counters as tables.
pub fn render(s: &Stats) -> String {
    let mut out = render_lcores(s);
    if s.lcores.len() > 1 {
        let row = |name: String, st: &LcoreStats| {
            vec![
                name,
                st.redirected.to_string(),
                st.drop_redirect.to_string(),
                st.handed_nat.to_string(),
                st.handed_persistent.to_string(),
                st.handed_rss_mismatch.to_string(),
                st.handed_no_rss.to_string(),
            ]
        };
        let mut rows: Vec<Vec<String>> = s.lcores.iter().map(|r| row(format!("lcore {}", r.lcore), &r.stats)).collect();
        rows.push(row("total".into(), &s.total));
        out.push('\n');
        out.push_str(&table(
            &["HANDED OVER", "TAKEN", "RING-FULL", "NAT", "PERSISTENT", "RSS-MISMATCH", "NO-RSS"],
            &rows,
        ));
    }
    if !s.connections.is_empty() {
        let rows: Vec<Vec<String>> = s
            .connections
            .iter()
            .map(|c| {
                vec![
                    format!("slot {}", c.slot),
                    format!("{}/{}", c.active, c.capacity),
                    c.created.to_string(),
                    c.expired.to_string(),
                    c.removed.to_string(),
                    c.full.to_string(),
                    c.lookups.to_string(),
                    c.hits.to_string(),
                    c.rebuilds.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["CONNECTIONS", "ACTIVE", "CREATED", "EXPIRED", "REMOVED", "FULL", "LOOKUPS", "HITS", "REBUILDS"],
            &rows,
        ));
    }
    out
}

fn render_lcores(s: &Stats) -> String {
    let row = |name: String, st: &LcoreStats| {
        let cpp = st.busy_cycles.checked_div(st.rx_packets).map_or_else(|| "-".into(), |c| c.to_string());
        vec![
            name,
            st.rx_packets.to_string(),
            st.tx_packets.to_string(),
            st.drop_tx_full.to_string(),
            (st.drop_runt + st.drop_malformed).to_string(),
            st.rx_bursts.to_string(),
            st.fnat_in.to_string(),
            st.fnat_out.to_string(),
            (st.drop_no_conn + st.drop_no_resource + st.drop_acl + st.drop_too_big).to_string(),
            st.redirected.to_string(),
            st.arp_replies.to_string(),
            st.icmp_echo_replies.to_string(),
            st.polls.to_string(),
            cpp,
        ]
    };
    let mut rows: Vec<Vec<String>> = s.lcores.iter().map(|r| row(format!("lcore {}", r.lcore), &r.stats)).collect();
    rows.push(row("total".into(), &s.total));
    table(
        &[
            "",
            "RX-PKTS",
            "TX-PKTS",
            "DROP-TXFULL",
            "DROP-BAD",
            "RX-BURSTS",
            "FNAT-IN",
            "FNAT-OUT",
            "DROP-NAT",
            "REDIRECTED",
            "ARP-REPLIES",
            "ECHO-REPLIES",
            "POLLS",
            "CYCLES/PKT",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_cell_per_column() {
        let s = Stats {
            lcores: vec![LcoreRow { slot: 0, lcore: 1, stats: LcoreStats::default() }],
            total: LcoreStats::default(),
            connections: vec![ConnRow { slot: 0, capacity: 8, active: 1, ..Default::default() }],
        };
        let text = render(&s);
        let widths: Vec<usize> = text.lines().map(|l| l.split_whitespace().count()).collect();
        // The header's first cell is empty; "lcore 1" is two words.
        assert_eq!(widths[0] + 2, widths[1], "{text}");
        assert_eq!(widths[0] + 1, widths[2], "{text}");
        let conn_header = text.lines().position(|l| l.starts_with("CONNECTIONS")).expect("a connections table");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[conn_header].split_whitespace().count() + 1,
            lines[conn_header + 1].split_whitespace().count()
        );
        assert!(lines[conn_header + 1].contains("1/8"), "{text}");
    }

    #[test]
    fn rates_are_every_counter_per_second_and_sizes_as_they_are() {
        let at = |rx: u64, malformed: u64, created: u64, active: u32| {
            let mut stats =
                LcoreStats { rx_packets: rx, busy_cycles: 300 * rx, drop_malformed: malformed, ..Default::default() };
            stats.drop_malformed_by_reason.insert("truncated", malformed);
            Stats {
                lcores: vec![LcoreRow { slot: 0, lcore: 1, stats: stats.clone() }],
                total: stats,
                connections: vec![ConnRow { slot: 0, capacity: 8, active, created, ..Default::default() }],
            }
        };
        let r = rates(&at(1000, 2, 10, 5), &at(5000, 10, 30, 7), 2.0);
        for st in [&r.lcores[0].stats, &r.total] {
            assert_eq!((st.rx_packets, st.busy_cycles, st.drop_malformed), (2000, 600_000, 4));
            assert_eq!(st.drop_malformed_by_reason.get("truncated"), Some(&4));
            assert_eq!(st.tx_packets, 0);
        }
        assert_eq!((r.connections[0].created, r.connections[0].active, r.connections[0].capacity), (10, 7, 8));
        // A counter that went back (a restarted worker's) reads 0, not a wrap.
        assert_eq!(rates(&at(5000, 0, 0, 0), &at(1000, 0, 0, 0), 1.0).total.rx_packets, 0);
    }
}
