//! What the lcores counted, and the one JSON line that reports it.

use hdrhistogram::Histogram;
use std::time::Duration;

use crate::roles::Role;

/// What came back, and the answers sent, on one lcore or (merged) on all of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// UDP frames; TCP connections established (`close`, `hold`), data segments at the real
    /// server (`data`), or connections completed (`request`: the last ACK back at the client).
    pub received: u64,
    /// TCP connections established (the SYN-ACK back at the client).
    pub established: u64,
    /// SYN-ACKs sent as the real server.
    pub responded: u64,
    /// Anything else (ARP, ...).
    pub other: u64,
    /// Answers (`--steer rss`) whose own tuple's queue belongs to another lcore of this
    /// generator, sent instead on the queue their cause arrived on: 0 when the balancer
    /// delivers every packet on the queue of its tuple's RSS.
    pub answers_off_queue: u64,
    /// Answers made but not sent: a full tx queue or hand-over ring did not take them, or the
    /// mempool was empty (lost inside the generator, not by the balancer).
    pub answers_unsent: u64,
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Counts) {
        self.received += other.received;
        self.established += other.established;
        self.responded += other.responded;
        self.other += other.other;
        self.answers_off_queue += other.answers_off_queue;
        self.answers_unsent += other.answers_unsent;
    }
}

/// One-way latencies of the UDP packets (and TCP data segments) that came back: an HDR
/// histogram from 1 us to a minute at three significant digits (a latency above a minute is
/// counted as a minute, and the report says how many were). Allocated once; recording is an
/// increment.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    /// Samples above the histogram's range.
    over: u64,
    /// TSC ticks per microsecond.
    per_us: u64,
}

impl Latency {
    /// The largest latency the histogram tells apart, microseconds.
    pub const MAX_US: u64 = 60_000_000;

    pub fn new(tsc_hz: u64) -> Latency {
        let hist = Histogram::new_with_bounds(1, Latency::MAX_US, 3).expect("1 us to a minute, 3 digits: valid bounds");
        Latency { hist, over: 0, per_us: (tsc_hz / 1_000_000).max(1) }
    }

    /// Records the packet in `f` received at TSC `now`, if it carries a send time of ours at
    /// offset `at`.
    pub fn record(&mut self, f: &[u8], at: usize, now: u64) {
        let Some(stamp) = f.get(at..at + 8) else { return };
        let sent = u64::from_le_bytes([stamp[0], stamp[1], stamp[2], stamp[3], stamp[4], stamp[5], stamp[6], stamp[7]]);
        if sent == 0 || sent > now {
            return;
        }
        let us = (now - sent) / self.per_us;
        if us > Latency::MAX_US {
            self.over += 1;
        }
        self.hist.saturating_record(us);
    }

    /// `cycles` TSC cycles in microseconds.
    pub fn us(&self, cycles: u64) -> u64 {
        cycles / self.per_us
    }

    /// Adds `other`'s samples (another lcore's) to these.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds: adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.over += other.over;
    }

    /// Count, percentiles and maximum, microseconds (to three significant digits), and the
    /// samples above a minute.
    pub fn report(&self) -> serde_json::Value {
        let h = &self.hist;
        let at = |q: f64| (!h.is_empty()).then(|| h.median_equivalent(h.value_at_quantile(q)));
        serde_json::json!({
            "samples": h.len(),
            "p50": at(0.5),
            "p99": at(0.99),
            "p999": at(0.999),
            "max": (!h.is_empty()).then(|| h.median_equivalent(h.max())),
            "over_1min": self.over,
        })
    }
}

/// How often a sender fell too far behind its schedule (descheduled) and restarted it, and
/// the time so dropped from the schedule (TSC cycles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stalls {
    pub count: u64,
    pub cycles: u64,
}

/// What one lcore did.
#[derive(Debug)]
pub struct LcoreReport {
    /// What it did.
    pub role: Role,
    /// Flows it owned.
    pub flows: u32,
    /// Packets its tx queues took.
    pub sent: u64,
    /// What came back to it.
    pub counts: Counts,
    /// Its latency samples.
    pub latency: Latency,
    /// From the common start to the end of its sending (zero for a receiving lcore).
    pub sending: Duration,
    /// Its schedule's restarts.
    pub stalls: Stalls,
}

/// The JSON line of a run of `reports` (lcore 0 first): the totals, the time until the last
/// lcore stopped sending and the rate over it, merged latencies, and each lcore's part and
/// role.
pub fn json(reports: &[LcoreReport]) -> serde_json::Value {
    let mut counts = Counts::default();
    let mut latency: Option<Latency> = None;
    for r in reports {
        counts.merge(&r.counts);
        match &mut latency {
            Some(l) => l.merge(&r.latency),
            None => latency = Some(r.latency.clone()),
        }
    }
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let stalls: u64 = reports.iter().map(|r| r.stalls.count).sum();
    let stalled_us: u64 = reports.iter().map(|r| r.latency.us(r.stalls.cycles)).sum();
    let seconds = reports.iter().map(|r| r.sending).max().unwrap_or_default().as_secs_f64();
    let rate = if seconds > 0.0 { (sent as f64 / seconds).round() as u64 } else { 0 };
    let per_lcore: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({"role": r.role.name(), "flows": r.flows, "sent": r.sent, "received": r.counts.received})
        })
        .collect();
    serde_json::json!({
        "sent": sent,
        "received": counts.received,
        "responded": counts.responded,
        "established": counts.established,
        "other": counts.other,
        "seconds": seconds,
        "rate": rate,
        "latency_us": latency.unwrap_or_else(|| Latency::new(1_000_000)).report(),
        "lcores": reports.len(),
        "answers_off_queue": counts.answers_off_queue,
        "answers_unsent": counts.answers_unsent,
        "stalls": stalls,
        "stalled_us": stalled_us,
        "per_lcore": per_lcore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcore(role: Role, sent: u64, received: u64, off: u64, latencies_us: &[u64], secs: u64) -> LcoreReport {
        // 1 MHz: one tick a microsecond.
        let mut latency = Latency::new(1_000_000);
        let mut f = [0u8; 16];
        for &us in latencies_us {
            f[8..].copy_from_slice(&100u64.to_le_bytes());
            latency.record(&f, 8, 100 + us);
        }
        let counts =
            Counts { received, established: 1, responded: 2, other: 3, answers_off_queue: off, answers_unsent: 5 };
        let stalls = Stalls { count: 1, cycles: 30 };
        LcoreReport { role, flows: 7, sent, counts, latency, sending: Duration::from_secs(secs), stalls }
    }

    /// Latencies are not capped below a minute: 20 ms and 2 s read as such (to three digits);
    /// beyond a minute they are counted apart.
    #[test]
    fn long_latencies_read_as_they_were() {
        let mut l = Latency::new(1_000_000);
        let mut f = [0u8; 16];
        f[8..].copy_from_slice(&100u64.to_le_bytes());
        for us in [20_000, 2_000_000, 90_000_000] {
            l.record(&f, 8, 100 + us);
        }
        let r = l.report();
        let near = |v: &serde_json::Value, want: f64| (v.as_u64().unwrap() as f64 - want).abs() <= want / 1000.0;
        assert!(near(&r["p50"], 2_000_000.0) && near(&r["max"], 60_000_000.0), "{r}");
        assert_eq!(r["over_1min"], 1);
        let mut m = Latency::new(1_000_000);
        m.record(&f, 8, 100 + 20_000);
        m.merge(&l);
        assert_eq!((m.report()["samples"].as_u64(), m.report()["over_1min"].as_u64()), (Some(4), Some(1)));
        assert!(near(&m.report()["p50"], 20_000.0), "{}", m.report());
    }

    /// Totals are sums, latencies merge, time is the slowest lcore's.
    #[test]
    fn the_report_merges_the_lcores() {
        let v = json(&[lcore(Role::Both, 100, 90, 0, &[5, 5, 7], 2), lcore(Role::Both, 300, 290, 4, &[9, 1_900], 4)]);
        let want = serde_json::json!({
            "sent": 400, "received": 380, "responded": 4, "established": 2, "other": 6,
            "seconds": 4.0, "rate": 100, "lcores": 2, "answers_off_queue": 4, "answers_unsent": 10,
            "stalls": 2, "stalled_us": 60,
            "latency_us": {"samples": 5, "p50": 7, "p99": 1_900, "p999": 1_900, "max": 1_900, "over_1min": 0},
            "per_lcore": [
                {"role": "both", "flows": 7, "sent": 100, "received": 90},
                {"role": "both", "flows": 7, "sent": 300, "received": 290},
            ],
        });
        assert_eq!(v, want);
        // One lcore: the fields of the single-lcore report, and the new ones.
        let one = json(&[lcore(Role::Both, 10, 10, 0, &[], 1)]);
        assert_eq!(
            one["latency_us"],
            serde_json::json!({"samples": 0, "p50": null, "p99": null, "p999": null, "max": null, "over_1min": 0})
        );
        assert_eq!((one["lcores"].as_u64(), one["rate"].as_u64()), (Some(1), Some(10)));
    }

    /// A receiving lcore counts what came back and sends nothing: the time and rate are the
    /// senders', the received packets and latencies the receivers'.
    #[test]
    fn receiving_lcores_add_what_came_back_not_time() {
        let mut receiver = lcore(Role::Receive, 0, 150, 0, &[3, 4], 0);
        receiver.flows = 0;
        let v = json(&[lcore(Role::Send, 200, 0, 0, &[], 2), receiver]);
        assert_eq!((v["sent"].as_u64(), v["received"].as_u64(), v["rate"].as_u64()), (Some(200), Some(150), Some(100)));
        assert_eq!((v["seconds"].as_f64(), v["latency_us"]["samples"].as_u64()), (Some(2.0), Some(2)));
        assert_eq!(
            v["per_lcore"],
            serde_json::json!([
                {"role": "send", "flows": 7, "sent": 200, "received": 0},
                {"role": "receive", "flows": 0, "sent": 0, "received": 150},
            ])
        );
    }
}
