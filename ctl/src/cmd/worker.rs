//! `dpvsctl worker ...`.

use std::sync::atomic::Ordering;

use serde::Serialize;
use shm_layout::{monotonic_ns, Shm, WorkerState};

use super::{human_ns, table};

/// One row of `worker list`.
#[derive(Debug, Serialize)]
pub struct WorkerRow {
    pub slot: usize,
    pub group: String,
    pub pid: u32,
    pub lcore: u32,
    pub cpu: Option<u32>,
    /// `port:queue` of every rx queue it polls.
    pub queues: Vec<String>,
    pub tx_queue: u16,
    pub state: String,
    /// Age of its last heartbeat, ns (None before its first).
    pub heartbeat_age_ns: Option<u64>,
    pub restarts: u32,
    /// Exit code (>= 0) or minus the signal of the last process that ended in this slot.
    pub last_exit: Option<i32>,
    /// From death seen to the replacement polling, µs, for the last restart.
    pub last_restart_us: Option<u64>,
    /// Pid of a successor attached and waiting (a hot standby, or a handover in progress).
    pub standby_pid: Option<u32>,
    /// Whether that successor is attached and ready to poll.
    pub standby_ready: bool,
    pub pool: String,
    pub pool_size: u32,
    pub pool_avail: u32,
    pub reclaimed_mbufs: u64,
    /// Configuration generation it forwards with (its acknowledgement; 0 while not polling).
    pub config_generation: u64,
    /// Generations its processes switched to while polling, since start.
    pub config_switches: u64,
    /// Gaps in polling across its handovers (and the restarts of a hot standby), from the
    /// last poll of the process that left to the first of its successor.
    pub handover_gaps: Gaps,
}

/// A summary of a slot's recent handover gaps.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Gaps {
    /// Gaps recorded since the instance started.
    pub count: u64,
    /// Over the last ones kept (up to 126): median, 99th percentile and largest, µs (None
    /// before the first).
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

impl Gaps {
    /// The summary of `gaps_ns` (any order), of `count` recorded in all.
    pub fn of(mut gaps_ns: Vec<u32>, count: u64) -> Gaps {
        gaps_ns.sort_unstable();
        // Nearest rank: the smallest gap with at least q of them at or below it.
        let rank = |q: f64| {
            let n = gaps_ns.len();
            (n > 0).then(|| u64::from(gaps_ns[((q * n as f64).ceil() as usize).clamp(1, n) - 1]) / 1000)
        };
        Gaps { count, p50_us: rank(0.5), p99_us: rank(0.99), max_us: gaps_ns.last().map(|&g| u64::from(g) / 1000) }
    }
}

/// Reads every worker slot in use.
pub fn view(shm: &Shm) -> Vec<WorkerRow> {
    let l = shm.layout();
    let now = monotonic_ns();
    l.workers()
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let hb = w.heartbeat_ns.load(Ordering::Acquire);
            let restarts = w.restarts.load(Ordering::Acquire);
            let spawns = w.spawns.load(Ordering::Acquire);
            let ended = spawns > 1 || matches!(w.state(), WorkerState::Dead | WorkerState::Exited);
            WorkerRow {
                slot: i,
                group: w.group.as_str().into_owned(),
                pid: w.pid.load(Ordering::Acquire),
                // The lcore id changes with each handover.
                lcore: Some(w.lcore_now.load(Ordering::Acquire)).filter(|&l| l != 0).unwrap_or(w.lcore),
                cpu: u32::try_from(w.cpu).ok(),
                queues: w
                    .rx_queues()
                    .iter()
                    .map(|q| {
                        let port = l.ports().get(usize::from(q.port)).map(|p| p.name.as_str().into_owned());
                        format!("{}:{}", port.unwrap_or_else(|| format!("#{}", q.port)), q.queue)
                    })
                    .collect(),
                tx_queue: w.tx_queue,
                state: w.state().as_str().to_owned(),
                heartbeat_age_ns: (hb != 0).then(|| now.saturating_sub(hb)),
                restarts,
                last_exit: ended.then(|| w.last_exit.load(Ordering::Acquire)),
                last_restart_us: (restarts > 0).then(|| w.last_restart_us.load(Ordering::Acquire)),
                standby_pid: Some(w.incoming_pid.load(Ordering::Acquire)).filter(|&p| p != 0),
                standby_ready: w.incoming_state.load(Ordering::Acquire) == 2,
                pool: w.pool.as_str().into_owned(),
                pool_size: w.pool_size,
                pool_avail: w.pool_avail.load(Ordering::Acquire),
                reclaimed_mbufs: w.reclaimed_mbufs.load(Ordering::Acquire),
                config_generation: w.cfg_applied.load(Ordering::Acquire),
                config_switches: w.cfg_switches.load(Ordering::Acquire),
                handover_gaps: {
                    let (gaps, count) = l.handover_gaps[i].recent();
                    Gaps::of(gaps, count)
                },
            }
        })
        .collect()
}

fn exit_text(code: i32) -> String {
    if code < 0 {
        format!("signal {}", -code)
    } else {
        format!("exit {code}")
    }
}

/// Renders the rows as a table.
pub fn render(rows: &[WorkerRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.slot.to_string(),
                r.group.clone(),
                r.pid.to_string(),
                r.lcore.to_string(),
                r.cpu.map_or("-".into(), |c| c.to_string()),
                r.queues.join(","),
                r.state.clone(),
                r.heartbeat_age_ns.map_or("-".into(), human_ns),
                r.restarts.to_string(),
                r.last_exit.map_or("-".into(), exit_text),
                r.last_restart_us.map_or("-".into(), |us| human_ns(us * 1000)),
                format!("{}/{}", r.pool_avail, r.pool_size),
                r.config_generation.to_string(),
                match (r.handover_gaps.p50_us, r.handover_gaps.p99_us, r.handover_gaps.max_us) {
                    (Some(a), Some(b), Some(c)) => format!("{a}/{b}/{c} ({})", r.handover_gaps.count),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    table(
        &[
            "SLOT",
            "GROUP",
            "PID",
            "LCORE",
            "CPU",
            "QUEUES",
            "STATE",
            "HEARTBEAT",
            "RESTARTS",
            "LAST-EXIT",
            "RESTART-TIME",
            "MBUFS",
            "CONFIG-GEN",
            "GAP-US p50/p99/max (n)",
        ],
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_summarise_by_nearest_rank() {
        assert_eq!(Gaps::of(vec![], 0), Gaps::default());
        let g = Gaps::of((1..=100).rev().map(|us| us * 1000).collect(), 250);
        assert_eq!((g.count, g.p50_us, g.p99_us, g.max_us), (250, Some(50), Some(99), Some(100)));
        let one = Gaps::of(vec![42_000], 1);
        assert_eq!((one.p50_us, one.p99_us, one.max_us), (Some(42), Some(42), Some(42)));
    }
}
