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
        ],
        &body,
    )
}
