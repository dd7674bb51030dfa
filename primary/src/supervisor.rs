//! Spawns the workers, watches them, restarts the ones that die, and stops them all.
//!
//! One round every [`ROUND`]: reap exited children (a death is seen within one round), kill
//! workers whose heartbeat is older than the configured timeout, restart the dead ones after
//! their backoff, and every [`STATS_EVERY`] rounds publish pool counters to shared
//! memory. A death is handled before the replacement starts: the dead worker's pool is
//! recovered (its ring repaired if the process died inside a ring operation, its lcore's cache
//! returned without duplicates, and, where no device queue can hold the pool's buffers, the
//! buffers the process held found by a pool audit and returned). The replacement runs on the
//! same lcore id.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conf::Config;
use dpdk::{LcoreId, Mempool, RecoverMode};
use mailbox::proto::{Request, Response};
use mailbox::{Server, Taken};
use shm_layout::{monotonic_ns, InstanceState, Shm, WorkerState};

use crate::control::Control;
use crate::eal_args;
use crate::ports::ReadyPort;

/// Why a mailbox request the supervisor serves itself was refused (the answer is its text).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The slot's checksum did not match its bytes.
    #[error("the request was corrupt (checksum)")]
    Corrupt,
    /// Another protocol version, or a malformed body.
    #[error(transparent)]
    Decode(#[from] mailbox::proto::DecodeError),
    /// A worker restart that cannot start.
    #[error(transparent)]
    Restart(#[from] RestartError),
}

/// Why an operator's worker restart could not start; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// No worker has that slot.
    #[error("no worker slot {slot}: the instance has {workers} (0..={})", workers.saturating_sub(1))]
    NoSlot { slot: u32, workers: usize },
    /// A restart of that worker is under way.
    #[error("worker {0} is already being restarted")]
    InProgress(u32),
    /// The worker is not polling (its own restart by the supervisor is under way).
    #[error("worker {slot} is not running (state {state}); the supervisor restarts it by itself")]
    NotRunning { slot: u32, state: &'static str },
    /// The binary named for the successor cannot take over.
    #[error(transparent)]
    Binary(#[from] WorkerBinaryError),
    /// The successor process could not be started.
    #[error("cannot start the successor of worker {slot}: {source}")]
    Spawn { slot: u32, source: SpawnError },
}

/// Why a successor process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Every lcore id is in use.
    #[error("no spare lcore id")]
    NoLcore,
    /// The process could not be spawned.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Supervisor round.
pub const ROUND: Duration = Duration::from_millis(5);
/// Longest sleep while a configuration change waits for its workers' acknowledgements (they
/// ring the mailbox's doorbell; this bounds the wait if one dies first).
const CONTROL_POLL_BUSY: Duration = Duration::from_millis(1);
/// Rounds between counter publications (100 ms).
pub const STATS_EVERY: u32 = 20;
/// A worker still spawning after this long is killed.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(15);
/// A worker that lived shorter than this counts as a crash loop round.
const STABLE_AFTER: Duration = Duration::from_secs(2);
/// How long workers get to stop on request before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// One worker slot's supervision state.
#[derive(Debug)]
struct Worker {
    slot: usize,
    lcore: LcoreId,
    pool: Mempool,
    /// No device queue keeps this pool's buffers, so a pool audit after a death is exact
    /// (unless its buffers went to other lcores: see `crossed`).
    audit_safe: bool,
    /// Redirect rings it produces into (`true`) or consumes from (`false`).
    rings: Vec<(dpdk::Ring, bool)>,
    /// There are redirect rings: other lcores may free this pool's buffers (see `crossed`).
    shared_pool: bool,
    child: Option<Child>,
    started: Instant,
    /// Crashes in a row, each within STABLE_AFTER of its start.
    quick_crashes: u32,
    respawn_at: Option<Instant>,
    /// A restart whose first poll has not been timed yet.
    timing_restart: bool,
    /// An operator's restart in progress, answered when the replacement polls.
    operator: Option<OperatorRestart>,
    /// CPU its lcore is pinned to.
    cpu: Option<u32>,
    /// The worker binary it runs (changed by an upgrade).
    bin: PathBuf,
    /// Keep a successor attached and waiting, to take over the moment the worker dies.
    hot_standby: bool,
    /// A successor attaching for a handover.
    incoming: Option<Incoming>,
    /// The process it killed (SIGKILL, once) and is waiting to reap: an exit can take a while
    /// on a busy CPU, and one warning and one signal are enough.
    killed: Option<u32>,
}

/// A successor process that takes a worker slot over without a gap in polling.
#[derive(Debug)]
struct Incoming {
    child: Child,
    spawn: u32,
    lcore: LcoreId,
    /// The binary it runs (an upgrade when it differs).
    bin: PathBuf,
    started: Instant,
    /// When the polling worker was asked to hand over (None: not yet).
    asked: Option<Instant>,
    /// A hot standby: ready, but not to be handed over to until the worker dies or an
    /// operator restarts it.
    hold: bool,
}

/// A `worker restart` from the mailbox, in progress.
#[derive(Debug)]
struct OperatorRestart {
    taken: Taken,
    old_pid: u32,
    /// CLOCK_MONOTONIC of the request, ns.
    asked_ns: u64,
}

/// The supervisor of all workers of the instance.
#[derive(Debug)]
pub struct Supervisor<'a> {
    shm: &'a Shm,
    cfg: Config,
    mailbox: Server<'a>,
    control: Control,
    worker_bin: PathBuf,
    workers: Vec<Worker>,
    heartbeat_timeout: Duration,
    max_backoff: Duration,
    log_level: String,
}

impl<'a> Supervisor<'a> {
    /// Prepares supervision of every worker slot of `cfg`.
    pub fn new(
        cfg: &Config,
        shm: &'a Shm,
        pools: &[Mempool],
        ports: &[ReadyPort],
        redirect: &[(usize, usize, dpdk::Ring)],
        worker_bin: PathBuf,
    ) -> Self {
        let workers = cfg
            .worker_lcores()
            .map(|(_, wl)| {
                let polled_ports = wl.rx.iter().map(|r| r.port);
                // Buffers in flight on redirect rings are in no list the audit can see: once
                // the worker has handed a packet to another lcore, the audit is off (the cache
                // is still returned); see `crossed`.
                let audit_safe = polled_ports.into_iter().all(|p| !ports[p].rx_holds_mbufs)
                    && ports.iter().all(|p| !p.tx_holds_mbufs);
                let rings = redirect
                    .iter()
                    .filter(|(s, d, _)| *s == wl.slot || *d == wl.slot)
                    .map(|(s, _, r)| (*r, *s == wl.slot))
                    .collect();
                Worker {
                    slot: wl.slot,
                    lcore: LcoreId(wl.lcore.id),
                    pool: pools[wl.slot],
                    audit_safe,
                    shared_pool: !redirect.is_empty(),
                    rings,
                    child: None,
                    started: Instant::now(),
                    quick_crashes: 0,
                    respawn_at: None,
                    timing_restart: false,
                    killed: None,
                    operator: None,
                    cpu: wl.lcore.cpu,
                    bin: worker_bin.clone(),
                    hot_standby: cfg.groups.iter().any(|g| g.hot_standby && g.lcores.iter().any(|l| l.slot == wl.slot)),
                    incoming: None,
                }
            })
            .collect();
        Supervisor {
            shm,
            cfg: cfg.clone(),
            // A client that claimed a slot and went silent for 1 s is given up; a reply no one
            // collected for 60 s is reclaimed.
            mailbox: Server::new(&shm.layout().mailbox, Duration::from_secs(1), Duration::from_secs(60)),
            control: Control::new(cfg),
            worker_bin,
            workers,
            heartbeat_timeout: Duration::from_millis(u64::from(cfg.supervisor.heartbeat_timeout_ms)),
            max_backoff: Duration::from_millis(u64::from(cfg.supervisor.max_restart_backoff_ms)),
            // The operator's DPVS_LOG wins over the config, for the workers as for the primary.
            log_level: std::env::var("DPVS_LOG").unwrap_or_else(|_| cfg.instance.log_level.clone()),
        }
    }

    /// Starts every worker.
    pub fn start_all(&mut self) {
        for i in 0..self.workers.len() {
            self.spawn(i);
        }
    }

    fn spawn(&mut self, i: usize) {
        let layout = self.shm.layout();
        let w = &mut self.workers[i];
        let slot = &layout.workers[w.slot];
        let spawn = slot.spawns.load(Ordering::Relaxed).wrapping_add(1);
        slot.stop.store(shm_layout::STOP_NONE, Ordering::Relaxed);
        slot.pid.store(0, Ordering::Relaxed);
        let now = monotonic_ns();
        slot.spawned_ns.store(now, Ordering::Relaxed);
        // A fresh heartbeat, so the new process is not judged by its predecessor's.
        slot.heartbeat_ns.store(now, Ordering::Relaxed);
        slot.state.store(WorkerState::Spawning as u32, Ordering::Relaxed);
        slot.spawns.store(spawn, Ordering::Release);
        // A replacement after a death initialises on the housekeeping CPU, where the primary's
        // IPC thread answers its requests without a cross-CPU wake-up each (a memif port's
        // regions alone are 256 round trips), and moves to its data CPU to claim the slot
        // (see the worker's `claim`); a first start stays on its data CPU, so that all the
        // workers initialise in parallel.
        let first_start = spawn == 1;
        let cpu = if first_start { w.cpu } else { self.cfg.instance.housekeeping_cpu.or(w.cpu) };
        let eal_args = eal_args::worker(&self.cfg, &conf::Lcore { id: w.lcore.0, cpu });
        let mut cmd = worker_command(&w.bin, &eal_args, self.shm.path(), w.slot, spawn, &self.log_level);
        w.started = Instant::now();
        match cmd.spawn() {
            Ok(child) => {
                slot.pid.store(child.id(), Ordering::Release);
                tracing::info!(slot = w.slot, lcore = %w.lcore, pid = child.id(), spawn, "worker spawned");
                w.child = Some(child);
            }
            Err(e) => {
                tracing::error!(slot = w.slot, bin = %self.worker_bin.display(), "cannot spawn worker: {e}");
                slot.state.store(WorkerState::Dead as u32, Ordering::Release);
                w.quick_crashes += 1;
                w.respawn_at = Some(Instant::now() + backoff(w.quick_crashes, self.max_backoff));
            }
        }
    }

    /// One supervision round.
    pub fn round(&mut self, n: u32) {
        let layout = self.shm.layout();
        let now_ns = monotonic_ns();
        self.serve_mailbox(now_ns);
        if n.is_multiple_of(20) {
            crate::capture::end_orphans(layout);
        }
        for i in 0..self.workers.len() {
            self.tend_incoming(i, now_ns);
            let w = &mut self.workers[i];
            let slot = &layout.workers[w.slot];
            if let Some(status) = w.child.as_ref().and_then(exited) {
                if let Some(child) = w.child.take() {
                    let pid = child.id();
                    reap_in_background(child);
                    self.on_death(i, pid, status);
                    continue;
                }
            }
            if let Some(child) = w.child.as_mut() {
                let stalled = match slot.state() {
                    WorkerState::Running => {
                        let age = now_ns.saturating_sub(slot.heartbeat_ns.load(Ordering::Acquire));
                        (age > self.heartbeat_timeout.as_nanos() as u64)
                            .then(|| format!("heartbeat {} ms old", age / 1_000_000))
                    }
                    WorkerState::Spawning => {
                        (w.started.elapsed() > SPAWN_TIMEOUT).then(|| "stuck while starting".to_owned())
                    }
                    _ => None,
                };
                let slow_stop = w.incoming.as_ref().and_then(|inc| inc.asked).is_some_and(|t| t.elapsed() > STOP_GRACE);
                if let Some(why) = stalled.or_else(|| slow_stop.then(|| "did not stop in time".to_owned())) {
                    if w.killed != Some(child.id()) {
                        tracing::warn!(slot = w.slot, pid = child.id(), "worker {why}: killing it");
                        let _ = child.kill();
                        w.killed = Some(child.id());
                    }
                }
                if w.timing_restart {
                    let polling = slot.polling_ns.load(Ordering::Acquire);
                    if polling > slot.spawned_ns.load(Ordering::Acquire) {
                        w.timing_restart = false;
                        if let Some(op) = w.operator.take() {
                            let took_us = polling.saturating_sub(op.asked_ns) / 1000;
                            let last = slot.last_poll_ns.load(Ordering::Acquire);
                            let gap_us = if last > 0 { polling.saturating_sub(last) / 1000 } else { took_us };
                            slot.last_restart_us.store(gap_us, Ordering::Release);
                            let new_pid = slot.pid.load(Ordering::Acquire);
                            tracing::info!(slot = w.slot, lcore = %w.lcore, old_pid = op.old_pid, new_pid, took_us, gap_us, "worker handed over on request");
                            let r = Response::WorkerRestarted {
                                slot: w.slot as u32,
                                old_pid: op.old_pid,
                                new_pid,
                                took_us,
                                gap_us,
                            };
                            self.mailbox.reply(op.taken, &r.encode(), &[], now_ns);
                        } else {
                            let us = polling.saturating_sub(slot.died_ns.load(Ordering::Acquire)) / 1000;
                            slot.last_restart_us.store(us, Ordering::Release);
                            tracing::info!(slot = w.slot, lcore = %w.lcore, restart_us = us, "replacement worker polling");
                        }
                    }
                }
            } else if w.respawn_at.is_some_and(|t| Instant::now() >= t) {
                w.respawn_at = None;
                self.spawn(i);
            }
            let w = &self.workers[i];
            let stable = w.child.is_some()
                && w.incoming.is_none()
                && w.operator.is_none()
                && w.started.elapsed() > STABLE_AFTER
                && layout.workers[w.slot].state() == WorkerState::Running;
            if w.hot_standby && stable {
                match self.spawn_incoming(i, None) {
                    Ok(()) => {
                        if let Some(inc) = self.workers[i].incoming.as_mut() {
                            inc.hold = true;
                        }
                    }
                    Err(e) => tracing::warn!(slot = self.workers[i].slot, "cannot start a hot standby: {e}"),
                }
            }
        }
        if n.is_multiple_of(STATS_EVERY) {
            self.publish_stats();
        }
        layout.header.primary_heartbeat_ns.store(now_ns, Ordering::Release);
    }

    fn on_death(&mut self, i: usize, pid: u32, status: ExitStatus) {
        let layout = self.shm.layout();
        let code = status.code().unwrap_or_else(|| -status.signal().unwrap_or(0));
        {
            let slot = &layout.workers[self.workers[i].slot];
            slot.last_exit.store(code, Ordering::Release);
            if self.workers[i].incoming.is_some() {
                if slot.incoming_state.load(Ordering::Acquire) == 2 {
                    // Handed over (or died with its successor ready): the successor takes the
                    // queues now.
                    self.promote_incoming(i, pid, status);
                    return;
                }
                // Died while its successor was still attaching: cancel the handover, restart
                // as after any crash.
                self.cancel_incoming(i, &format!("the worker died ({status}) before its successor was ready"));
            }
        }
        let w = &mut self.workers[i];
        let slot = &layout.workers[w.slot];
        // It reads and acknowledges no generation any more.
        slot.cfg_reading.store(0, Ordering::SeqCst);
        slot.cfg_applied.store(0, Ordering::Release);
        slot.died_ns.store(monotonic_ns(), Ordering::Release);
        slot.state.store(WorkerState::Dead as u32, Ordering::Release);
        let reclaimed = reclaim(w, layout);
        slot.reclaimed_mbufs.fetch_add(u64::from(reclaimed), Ordering::AcqRel);
        let restarts = slot.restarts.fetch_add(1, Ordering::AcqRel) + 1;
        if w.started.elapsed() < STABLE_AFTER {
            w.quick_crashes += 1;
        } else {
            w.quick_crashes = 0;
        }
        let delay = backoff(w.quick_crashes, self.max_backoff);
        tracing::warn!(slot = w.slot, lcore = %w.lcore, %status, reclaimed, restarts, delay_ms = delay.as_millis() as u64, "worker died; restarting it on the same lcore");
        w.timing_restart = true;
        if delay.is_zero() {
            self.spawn(i);
        } else {
            w.respawn_at = Some(Instant::now() + delay);
        }
    }

    /// Takes the mailbox's requests: answers what can be answered now, starts what takes
    /// longer (its answer comes from a later round).
    fn serve_mailbox(&mut self, now_ns: u64) {
        self.mailbox.reclaim(now_ns);
        while let Some(taken) = self.mailbox.take() {
            let request = match &taken.bytes {
                None => Err(RequestError::Corrupt),
                Some(b) => Request::decode(b).map_err(RequestError::from),
            };
            let request = match request {
                Ok(Request::Change(change)) => {
                    let t0 = monotonic_ns();
                    let result = self.control.check(&change);
                    let took_us = monotonic_ns().saturating_sub(t0) / 1000;
                    if took_us >= 1000 {
                        // A change costs what it touches: one that took this long is worth a line.
                        tracing::info!(took_us, "slow configuration change: {change:?}");
                    }
                    self.control.take(&mut self.mailbox, taken, result, now_ns);
                    continue;
                }
                Ok(Request::Reload { path }) => {
                    let result = self.control.check_reload(path.as_deref());
                    self.control.take(&mut self.mailbox, taken, result, now_ns);
                    continue;
                }
                Ok(Request::Changes { path }) => {
                    let result = self.control.check_changes(&path);
                    self.control.take(&mut self.mailbox, taken, result, now_ns);
                    continue;
                }
                Ok(Request::ZeroCounters { service }) => {
                    self.control.take_zero(&mut self.mailbox, taken, service, now_ns);
                    continue;
                }
                other => other,
            };
            let started = request.and_then(|r| match r {
                Request::WorkerRestart { slot, binary } => {
                    self.stop_for_restart(slot, binary.map(PathBuf::from)).map_err(RequestError::from)
                }
                Request::Change(_)
                | Request::Reload { .. }
                | Request::ZeroCounters { .. }
                | Request::Changes { .. } => {
                    unreachable!("handled above")
                }
            });
            match started {
                Ok((i, old_pid)) => {
                    self.workers[i].operator = Some(OperatorRestart { taken, old_pid, asked_ns: now_ns });
                }
                Err(e) => {
                    tracing::warn!("mailbox request refused: {e}");
                    self.mailbox.reply(taken, &Response::error(e.to_string()).encode(), &[], now_ns);
                }
            }
        }
        self.tend_control();
    }

    /// Publishes staged configuration changes and answers acknowledged ones.
    fn tend_control(&mut self) {
        let layout = self.shm.layout();
        let polling = |slot: usize| layout.workers.get(slot).is_some_and(|s| s.state() == WorkerState::Running);
        self.control.tend(self.shm, &mut self.mailbox, polling);
    }

    /// Starts a handover of `slot` for an operator's restart: a successor process attaches on a
    /// spare lcore id and waits; [`Self::tend_incoming`] asks the polling worker to hand over
    /// once the successor is ready. Returns the worker's index and the polling pid.
    fn stop_for_restart(&mut self, slot: u32, binary: Option<PathBuf>) -> Result<(usize, u32), RestartError> {
        let workers = self.workers.len();
        let i =
            self.workers.iter().position(|w| w.slot as u32 == slot).ok_or(RestartError::NoSlot { slot, workers })?;
        let w = &self.workers[i];
        let standby = w.incoming.as_ref().is_some_and(|inc| inc.hold);
        if w.operator.is_some() || (w.incoming.is_some() && !standby) {
            return Err(RestartError::InProgress(slot));
        }
        let state = self.shm.layout().workers[w.slot].state();
        let Some(child) = w.child.as_ref().filter(|_| state == WorkerState::Running) else {
            return Err(RestartError::NotRunning { slot, state: state.as_str() });
        };
        let pid = child.id();
        if let Some(b) = &binary {
            check_worker_binary(b)?;
        }
        if standby {
            if binary.is_none() {
                // The hot standby is the successor: it is ready already.
                if let Some(inc) = self.workers[i].incoming.as_mut() {
                    inc.hold = false;
                }
                return Ok((i, pid));
            }
            // An upgrade: the standby runs the old build.
            self.cancel_incoming(i, "replaced by a successor of the new build");
        }
        self.spawn_incoming(i, binary).map_err(|source| RestartError::Spawn { slot, source })?;
        Ok((i, pid))
    }

    /// An lcore id no process of the instance uses.
    fn spare_lcore(&self) -> Option<LcoreId> {
        let used = |id: u32| {
            id == self.cfg.instance.main_lcore.id
                || self
                    .workers
                    .iter()
                    .any(|w| w.lcore.0 == id || w.incoming.as_ref().is_some_and(|inc| inc.lcore.0 == id))
        };
        (1..LcoreId::MAX).find(|&id| !used(id)).map(LcoreId)
    }

    fn spawn_incoming(&mut self, i: usize, binary: Option<PathBuf>) -> Result<(), SpawnError> {
        let lcore = self.spare_lcore().ok_or(SpawnError::NoLcore)?;
        let layout = self.shm.layout();
        let w = &self.workers[i];
        let slot = &layout.workers[w.slot];
        // It initialises on the housekeeping CPU, off the data CPU the polling worker is busy
        // on, and moves to the data CPU itself once ready (see the worker's `claim`).
        let cpu = self.cfg.instance.housekeeping_cpu.or(w.cpu);
        let eal_args = eal_args::worker(&self.cfg, &conf::Lcore { id: lcore.0, cpu });
        let spawn = slot.spawns.load(Ordering::Relaxed).wrapping_add(1);
        slot.handover_to.store(0, Ordering::Relaxed);
        slot.incoming_state.store(1, Ordering::Relaxed);
        slot.spawned_ns.store(monotonic_ns(), Ordering::Relaxed);
        slot.spawns.store(spawn, Ordering::Release);
        let bin = binary.clone().unwrap_or_else(|| w.bin.clone());
        let child = worker_command(&bin, &eal_args, self.shm.path(), w.slot, spawn, &self.log_level)
            .arg("--handover")
            .spawn()
            .inspect_err(|_| slot.incoming_state.store(0, Ordering::Release))?;
        slot.incoming_pid.store(child.id(), Ordering::Release);
        tracing::info!(slot = w.slot, lcore = %lcore, pid = child.id(), spawn, "successor spawned for a handover");
        self.workers[i].incoming =
            Some(Incoming { child, spawn, lcore, bin, started: Instant::now(), asked: None, hold: false });
        Ok(())
    }

    /// Advances a handover: asks the polling worker to hand over once its successor is ready;
    /// gives up on a successor that died or takes too long.
    fn tend_incoming(&mut self, i: usize, _now_ns: u64) {
        let layout = self.shm.layout();
        let w = &mut self.workers[i];
        let Some(inc) = w.incoming.as_mut() else { return };
        let slot = &layout.workers[w.slot];
        if let Some(status) = exited(&inc.child) {
            self.cancel_incoming(i, &format!("the successor exited while attaching ({status})"));
            return;
        }
        if inc.asked.is_none() {
            let ready = slot.incoming_state.load(Ordering::Acquire) == 2;
            if ready && inc.hold {
                return;
            }
            if ready {
                slot.handover_to.store(inc.spawn, Ordering::Release);
                slot.stop.store(shm_layout::STOP_HANDOVER, Ordering::Release);
                inc.asked = Some(Instant::now());
            } else if inc.started.elapsed() > SPAWN_TIMEOUT {
                self.cancel_incoming(i, "the successor did not get ready in time");
            }
        }
    }

    /// Abandons a handover: the successor is killed, the polling worker keeps its queues. If
    /// the worker took the request first (it won the CAS on `stop`), it has handed its queues
    /// to the successor and exits: its death is then handled as a crash (a fresh worker).
    fn cancel_incoming(&mut self, i: usize, why: &str) {
        let layout = self.shm.layout();
        let w = &mut self.workers[i];
        let slot = &layout.workers[w.slot];
        let taken = w.incoming.as_ref().is_some_and(|inc| inc.asked.is_some())
            && slot
                .stop
                .compare_exchange(shm_layout::STOP_HANDOVER, shm_layout::STOP_NONE, Ordering::AcqRel, Ordering::Acquire)
                .is_err();
        if taken {
            tracing::warn!(slot = w.slot, "the worker handed over to a successor that died: a fresh worker follows");
        }
        slot.incoming_state.store(0, Ordering::Release);
        slot.handover_to.store(0, Ordering::Release);
        slot.incoming_pid.store(0, Ordering::Release);
        if let Some(mut inc) = w.incoming.take() {
            let _ = inc.child.kill();
            // Dead before its lcore's cache is recovered (a SIGKILL takes a moment).
            wait_exited(&inc.child, Duration::from_secs(2));
            let lcore = inc.lcore;
            reap_in_background(inc.child);
            slot.cfg_reading_incoming.store(0, Ordering::SeqCst);
            // It never polled; its lcore's cache of the pool may hold what it touched.
            let _ = w.pool.recover_dead_lcore(lcore, RecoverMode::Shared);
        }
        tracing::warn!(slot = w.slot, "handover cancelled: {why}");
        if let Some(op) = w.operator.take() {
            let r = Response::error(format!("worker {} was not restarted: {why}", w.slot));
            self.mailbox.reply(op.taken, &r.encode(), &[], monotonic_ns());
        }
    }

    /// The polling worker is gone and its successor is ready: the successor owns the slot.
    fn promote_incoming(&mut self, i: usize, pid: u32, status: ExitStatus) {
        let layout = self.shm.layout();
        let w = &mut self.workers[i];
        let slot = &layout.workers[w.slot];
        let Some(inc) = w.incoming.take() else { return };
        let handed_over = slot.owner.load(Ordering::Acquire) == inc.spawn;
        // The old lcore's cache goes back to the pool. If it handed over, the successor may be
        // polling already: the pool is shared. If it died first, nothing polls yet.
        let crossed = crossed(w, layout);
        let mode = if handed_over || (w.shared_pool && crossed) {
            RecoverMode::Shared
        } else if w.audit_safe && !crossed {
            RecoverMode::ExclusiveFindLost
        } else {
            RecoverMode::Exclusive
        };
        let _ = w.rings.iter().filter(|(r, producer)| !handed_over && r.repair_dead_side(*producer)).count();
        match w.pool.recover_dead_lcore(w.lcore, mode) {
            Ok(r) => {
                slot.reclaimed_mbufs.fetch_add(u64::from(r.returned()), Ordering::AcqRel);
            }
            Err(e) => tracing::warn!(slot = w.slot, "pool recovery failed: {e}"),
        }
        if !handed_over {
            // A death (a crash with a hot standby ready, or a death during a handover): the
            // successor takes over at once.
            tracing::warn!(slot = w.slot, pid, %status, "worker died; its waiting successor takes over");
            let now = monotonic_ns();
            slot.died_ns.store(now, Ordering::Release);
            slot.last_poll_ns.store(now, Ordering::Release);
            if w.operator.is_none() {
                slot.restarts.fetch_add(1, Ordering::AcqRel);
            }
            slot.cfg_reading.store(0, Ordering::SeqCst);
            slot.owner.store(inc.spawn, Ordering::Release);
            // The successor waits blocked on the owner word.
            shm_layout::futex_wake(&slot.owner);
        }
        let new_pid = inc.child.id();
        slot.pid.store(new_pid, Ordering::Release);
        slot.incoming_pid.store(0, Ordering::Release);
        slot.incoming_state.store(0, Ordering::Release);
        slot.state.store(WorkerState::Running as u32, Ordering::Release);
        tracing::info!(slot = w.slot, old_pid = pid, new_pid, lcore = %inc.lcore, "handover done");
        w.child = Some(inc.child);
        w.lcore = inc.lcore;
        w.bin = inc.bin;
        w.started = inc.started;
        w.timing_restart = true;
    }

    fn publish_stats(&self) {
        let layout = self.shm.layout();
        for w in &self.workers {
            layout.workers[w.slot].pool_avail.store(w.pool.free_count(), Ordering::Relaxed);
        }
    }

    /// Runs rounds until `stop` is set.
    pub fn run_until(&mut self, stop: &AtomicBool) {
        let mut n = 0u32;
        let mut next_round = Instant::now();
        let bell = &self.shm.layout().mailbox.doorbell;
        while !stop.load(Ordering::Acquire) {
            // Read before serving: a ring after this read makes the wait below return at once.
            let seen = bell.load(Ordering::Acquire);
            if Instant::now() >= next_round {
                self.round(n);
                n = n.wrapping_add(1);
                next_round += ROUND;
                if next_round < Instant::now() {
                    next_round = Instant::now() + ROUND;
                }
            } else {
                self.serve_mailbox(monotonic_ns());
            }
            // Clients ring after publishing a request, workers after acknowledging a generation:
            // the primary sleeps until then or its next round (at most CONTROL_POLL_BUSY while a
            // change waits, in case a worker dies before it acknowledges).
            let until_round = next_round.saturating_duration_since(Instant::now());
            let wait = if self.control.busy() { until_round.min(CONTROL_POLL_BUSY) } else { until_round };
            shm_layout::futex_wait(bell, seen, wait);
        }
    }

    /// Asks every worker to stop, waits for them (killing stragglers), and returns their
    /// lcores' cached buffers to the pools.
    pub fn stop_all(&mut self) {
        let layout = self.shm.layout();
        layout.header.state.store(InstanceState::Stopping as u32, Ordering::Release);
        self.control.abandon(&mut self.mailbox);
        for i in 0..self.workers.len() {
            if self.workers[i].incoming.is_some() {
                self.cancel_incoming(i, "the instance is stopping");
            }
            if let Some(op) = self.workers[i].operator.take() {
                let r = Response::error("the instance is stopping; the restart was not completed");
                self.mailbox.reply(op.taken, &r.encode(), &[], monotonic_ns());
            }
        }
        for w in &self.workers {
            layout.workers[w.slot].stop.store(shm_layout::STOP_EXIT, Ordering::Release);
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let mut alive = 0;
            for w in &mut self.workers {
                if let Some(c) = w.child.as_mut() {
                    match c.try_wait() {
                        Ok(Some(status)) => {
                            let code = status.code().unwrap_or_else(|| -status.signal().unwrap_or(0));
                            layout.workers[w.slot].last_exit.store(code, Ordering::Release);
                            w.child = None;
                        }
                        _ => alive += 1,
                    }
                }
            }
            if alive == 0 {
                break;
            }
            if Instant::now() >= deadline {
                for w in &mut self.workers {
                    if let Some(mut c) = w.child.take() {
                        tracing::warn!(slot = w.slot, pid = c.id(), "worker did not stop in time: killing it");
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
                break;
            }
            std::thread::sleep(ROUND);
        }
        for w in &mut self.workers {
            layout.workers[w.slot].state.store(WorkerState::Exited as u32, Ordering::Release);
            reclaim(w, layout);
        }
    }
}

/// Whether buffers of the worker's pool ever went to another lcore. Only the slot's own
/// processes receive into its pool, so if none of them ever handed a packet over (or tried
/// to), no other lcore holds, caches or frees the pool's buffers: the pool is exclusive to the
/// slot and the lost-buffer audit is exact, redirect rings or not.
fn crossed(w: &Worker, layout: &shm_layout::Layout) -> bool {
    let c = &layout.counters[w.slot];
    c.redirected.load(Ordering::Acquire) + c.drop_redirect.load(Ordering::Acquire) > 0
}

/// Recovers a dead worker's pool (see `Mempool::recover_dead_lcore`): ring repaired, its
/// lcore's cache returned without duplicates, and, where the audit is exact, the buffers it
/// held. Returns how many buffers became available again.
fn reclaim(w: &Worker, layout: &shm_layout::Layout) -> u32 {
    let repaired = w.rings.iter().filter(|(r, producer)| r.repair_dead_side(*producer)).count();
    if repaired > 0 {
        tracing::info!(slot = w.slot, repaired, "repaired redirect rings the dead worker left mid-operation");
    }
    let crossed = crossed(w, layout);
    let mode = if w.shared_pool && crossed {
        RecoverMode::Shared
    } else if w.audit_safe && !crossed {
        RecoverMode::ExclusiveFindLost
    } else {
        RecoverMode::Exclusive
    };
    match w.pool.recover_dead_lcore(w.lcore, mode) {
        Ok(r) => {
            if r.lost > 0 || r.duplicates > 0 || r.ring_repairs > 0 {
                tracing::info!(
                    slot = w.slot,
                    restored = r.restored,
                    lost = r.lost,
                    duplicates = r.duplicates,
                    ring_repairs = r.ring_repairs,
                    "recovered the dead worker's buffers"
                );
            }
            r.returned()
        }
        Err(e) => {
            tracing::warn!(slot = w.slot, "pool recovery failed: {e}");
            0
        }
    }
}

/// The command line of a worker process: its EAL arguments, then ours.
fn worker_command(
    bin: &std::path::Path,
    eal_args: &[String],
    shm: &std::path::Path,
    slot: usize,
    spawn: u32,
    log_level: &str,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(&eal_args[1..])
        .arg("--")
        .arg("--shm")
        .arg(shm)
        .arg("--slot")
        .arg(slot.to_string())
        .arg("--spawn")
        .arg(spawn.to_string())
        .env("DPVS_LOG", log_level)
        // Its own process group: a terminal's ^C reaches the primary only, which then stops
        // the workers in order.
        .process_group(0);
    cmd
}

/// Why a worker binary cannot take a worker's place ([`check_worker_binary`]); the worker
/// keeps running.
#[derive(Debug, thiserror::Error)]
pub enum WorkerBinaryError {
    /// It could not be run.
    #[error("cannot run worker binary {}: {source}", path.display())]
    Run { path: PathBuf, source: std::io::Error },
    /// `--layout-version` printed no version: not a dpvs-worker.
    #[error("{} does not say which layout version it speaks (is it a dpvs-worker?)", path.display())]
    NoLayout { path: PathBuf },
    /// It speaks another shared-memory layout.
    #[error(
        "worker binary {} speaks layout version {found}, this instance layout version {}; the worker keeps running",
        path.display(),
        shm_layout::LAYOUT_VERSION
    )]
    Layout { path: PathBuf, found: u32 },
    /// It decodes another configuration generation format.
    #[error(
        "worker binary {} decodes configuration format {found}, this instance publishes format {}; the worker keeps running",
        path.display(),
        mailbox::generation::FORMAT_VERSION
    )]
    Format { path: PathBuf, found: u32 },
    /// It does not name its configuration format (a build from before it did).
    #[error(
        "worker binary {} does not say which configuration format it decodes (an older build); the worker keeps running",
        path.display()
    )]
    NoFormat { path: PathBuf },
    /// It adopts connection tables of another layout.
    #[error(
        "worker binary {} adopts connection tables of layout {found}, this instance's are layout {}; the worker keeps running",
        path.display(),
        shm_layout::conn::CONN_LAYOUT_VERSION
    )]
    ConnLayout { path: PathBuf, found: u32 },
    /// It does not name its connection table layout (a build from before it did).
    #[error(
        "worker binary {} does not say which connection table layout it adopts (an older build); the worker keeps running",
        path.display()
    )]
    NoConnLayout { path: PathBuf },
}

/// Checks that a worker binary speaks this build's shared-memory layout version, configuration
/// format and connection table layout (`--layout-version` prints the three).
///
/// # Errors
/// [`WorkerBinaryError`] naming the binary and what differs.
fn check_worker_binary(bin: &std::path::Path) -> Result<(), WorkerBinaryError> {
    let path = bin.to_owned();
    let out = match Command::new(bin).arg("--layout-version").output() {
        Ok(out) => out,
        Err(source) => return Err(WorkerBinaryError::Run { path, source }),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(str::parse::<u32>);
    match words.next() {
        Some(Ok(found)) if found == shm_layout::LAYOUT_VERSION => {}
        Some(Ok(found)) => return Err(WorkerBinaryError::Layout { path, found }),
        _ => return Err(WorkerBinaryError::NoLayout { path }),
    }
    match words.next() {
        Some(Ok(found)) if found == u32::from(mailbox::generation::FORMAT_VERSION) => {}
        Some(Ok(found)) => return Err(WorkerBinaryError::Format { path, found }),
        _ => return Err(WorkerBinaryError::NoFormat { path }),
    }
    // The connection shards stay in place across a handover: the new build must read them.
    match words.next() {
        Some(Ok(found)) if found == shm_layout::conn::CONN_LAYOUT_VERSION => Ok(()),
        Some(Ok(found)) => Err(WorkerBinaryError::ConnLayout { path, found }),
        _ => Err(WorkerBinaryError::NoConnLayout { path }),
    }
}

/// Delay before restarting a worker after `quick_crashes` crashes in a row: none for the
/// first, then 10 ms doubling up to `max`.
pub fn backoff(quick_crashes: u32, max: Duration) -> Duration {
    if quick_crashes <= 1 {
        return Duration::ZERO;
    }
    let ms = 10u64.saturating_mul(1u64 << (quick_crashes - 2).min(20));
    Duration::from_millis(ms).min(max)
}

/// The exit status of `child` if it has exited, without reaping it (`waitid` with `WNOWAIT`):
/// the reap is left to [`reap_in_background`]. Reaping an exited worker can keep the kernel
/// busy for seconds (`wait4` -> `release_task` -> invalidating the process's /proc dentries,
/// seen spinning for over 4 s on the 2-vCPU VM while the other CPU polled, 2026-12-04), and
/// the supervisor must not stop for it: it answers restarts, promotes successors and watches
/// the other workers meanwhile.
fn exited(child: &Child) -> Option<ExitStatus> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT) {
        Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        Ok(WaitStatus::Signaled(_, signal, core)) => {
            Some(ExitStatus::from_raw(signal as i32 | if core { 0x80 } else { 0 }))
        }
        _ => None,
    }
}

/// Waits (polling [`exited`], at most `limit`) until `child` has exited, without reaping it.
fn wait_exited(child: &Child, limit: Duration) {
    let until = Instant::now() + limit;
    while exited(child).is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Reaps an exited (or killed) child on a thread of its own, at the lowest priority (see
/// [`exited`]): the kernel's work for it then yields to whatever else runs on the housekeeping
/// CPU. A zombie holds no memory (its mappings went at exit), so a slow reap costs nothing.
fn reap_in_background(mut child: Child) {
    let pid = child.id();
    let spawned = std::thread::Builder::new().name("reaper".into()).spawn(move || {
        // This thread only: the primary's priority is for its control work.
        let _ = rustix::process::setpriority_process(None, 19);
        let _ = child.wait();
    });
    if let Err(e) = spawned {
        tracing::warn!(pid, "cannot start a thread to reap the process (it stays a zombie): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let max = Duration::from_millis(5000);
        assert_eq!(backoff(0, max), Duration::ZERO);
        assert_eq!(backoff(1, max), Duration::ZERO);
        assert_eq!(backoff(2, max), Duration::from_millis(10));
        assert_eq!(backoff(3, max), Duration::from_millis(20));
        assert_eq!(backoff(12, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
