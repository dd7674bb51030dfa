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
            total.rx_packets += s.rx_packets;
            total.tx_packets += s.tx_packets;
            total.drop_tx_full += s.drop_tx_full;
            total.drop_runt += s.drop_runt;
            total.rx_bursts += s.rx_bursts;
            total.polls += s.polls;
            total.idle_polls += s.idle_polls;
            total.busy_cycles += s.busy_cycles;
            total.arp_replies += s.arp_replies;
            total.icmp_echo_replies += s.icmp_echo_replies;
            total.icmp_time_exceeded += s.icmp_time_exceeded;
            total.fnat_in += s.fnat_in;
            total.fnat_out += s.fnat_out;
            total.drop_no_conn += s.drop_no_conn;
            total.drop_no_resource += s.drop_no_resource;
            total.drop_acl += s.drop_acl;
            total.drop_overloaded += s.drop_overloaded;
            total.icmp_frag_needed += s.icmp_frag_needed;
            total.drop_too_big += s.drop_too_big;
            total.redirected += s.redirected;
            total.drop_redirect += s.drop_redirect;
            total.handed_nat += s.handed_nat;
            total.handed_persistent += s.handed_persistent;
            total.handed_rss_mismatch += s.handed_rss_mismatch;
            total.handed_no_rss += s.handed_no_rss;
            total.drop_malformed += s.drop_malformed;
            for (r, n) in &s.drop_malformed_by_reason {
                *total.drop_malformed_by_reason.entry(r).or_default() += n;
            }
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
}
