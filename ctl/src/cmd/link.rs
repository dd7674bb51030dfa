//! `dpvsctl link show` and `dpip link show -s`: the ports with the packets the workers
//! received on each rx queue and sent on each port (the workers count: device counters of
//! virtual ports are process-local in DPDK and would mislead).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;
use shm_layout::Shm;

/// One rx queue.
#[derive(Debug, Serialize)]
pub struct QueueRow {
    pub queue: u16,
    /// Worker slot polling it.
    pub worker: usize,
    pub rx_packets: u64,
}

/// One port.
#[derive(Debug, Serialize)]
pub struct LinkRow {
    pub name: String,
    pub driver: String,
    pub mac: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// How it spreads packets over its rx queues: `hardware`, `emulated` (its peer applies
    /// the key and table), `single-queue` or `unknown`.
    pub rss: &'static str,
    /// The RSS key (`6d:5a:...`), when known.
    pub rss_key: Option<String>,
    /// The redirection table (queue of each entry), when known.
    pub reta: Vec<u16>,
    /// Received by the workers, over all its rx queues.
    pub rx_packets: u64,
    /// Sent by the workers, over all their tx queues on it.
    pub tx_packets: u64,
    pub queues: Vec<QueueRow>,
}

/// Reads the ports and their counters.
pub fn view(shm: &Shm) -> Vec<LinkRow> {
    let l = shm.layout();
    l.ports()
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let mut queues = Vec::new();
            let mut tx_packets = 0;
            for (w, slot) in l.workers().iter().enumerate() {
                let c = &l.queue_counters[w];
                tx_packets += c.tx.get(pi).map_or(0, |t| t.load(Relaxed));
                for (qi, q) in slot.rx_queues().iter().enumerate() {
                    if usize::from(q.port) == pi {
                        let rx_packets = c.rx.get(qi).map_or(0, |r| r.load(Relaxed));
                        queues.push(QueueRow { queue: q.queue, worker: w, rx_packets });
                    }
                }
            }
            queues.sort_by_key(|q| q.queue);
            let rss = &l.rss[pi];
            let known = rss.kind() != shm_layout::RssKind::Unknown;
            LinkRow {
                rss: rss.kind().as_str(),
                rss_key: known.then(|| rss::key_text(&rss.key)),
                reta: rss.reta().to_vec(),
                name: p.name.as_str().into_owned(),
                driver: p.driver.as_str().into_owned(),
                mac: conf::mac_text([p.mac[0], p.mac[1], p.mac[2], p.mac[3], p.mac[4], p.mac[5]]),
                rx_queues: p.rx_queues,
                tx_queues: p.tx_queues,
                rx_packets: queues.iter().map(|q| q.rx_packets).sum(),
                tx_packets,
                queues,
            }
        })
        .collect()
}

/// The rows as a table, then one line per rx queue.
pub fn render(rows: &[LinkRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.driver.clone(),
                r.mac.clone(),
                r.rx_queues.to_string(),
                r.tx_queues.to_string(),
                format!("{}/{}", r.rss, r.reta.len()),
                r.rx_packets.to_string(),
                r.tx_packets.to_string(),
            ]
        })
        .collect();
    let mut out = super::table(&["PORT", "DRIVER", "MAC", "RXQ", "TXQ", "RSS/RETA", "RX-PKTS", "TX-PKTS"], &body);
    let queues: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|r| {
            r.queues
                .iter()
                .map(|q| vec![format!("{}:{}", r.name, q.queue), q.worker.to_string(), q.rx_packets.to_string()])
        })
        .collect();
    out.push('\n');
    out.push_str(&super::table(&["RX-QUEUE", "WORKER", "RX-PKTS"], &queues));
    out
}

/// `dpip link show [-s]`.
pub fn render_dpip(rows: &[LinkRow], stats: bool) -> String {
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}: {}: driver {} rx-queue {} tx-queue {} rss {}\n    addr {}",
            i + 1,
            r.name,
            r.driver,
            r.rx_queues,
            r.tx_queues,
            r.rss,
            r.mac
        );
        if stats {
            let _ = writeln!(out, "    RX: packets {}\n    TX: packets {}", r.rx_packets, r.tx_packets);
            for q in &r.queues {
                let _ = writeln!(out, "    rx-queue {}: worker {} packets {}", q.queue, q.worker, q.rx_packets);
            }
        }
    }
    out
}
