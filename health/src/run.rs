//! The checker's loop: attach to the instance, follow its configuration generations, run the
//! due probes (each a task on one thread), send what changed through the mailbox, and write the
//! health table. When the instance's primary goes, it waits for the next one and attaches again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mailbox::proto::{Change, Request, Response};
use shm_layout::Shm;

use crate::probe::{self, Pingers, Subject};
use crate::{Checks, Target};

/// How often the loop wakes to start due checks and take results.
const TICK: Duration = Duration::from_millis(50);
/// How long a change may wait for the primary's answer.
const MAILBOX_TIMEOUT: Duration = Duration::from_secs(15);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Holds `<shm dir>/<instance>.health.lock` while the checker runs: an instance has one
/// checker (the health table has one writer).
pub struct Lock {
    path: std::path::PathBuf,
    _file: std::fs::File,
}

impl Lock {
    /// Takes the lock of the instance whose shared memory is at `shm`.
    ///
    /// # Errors
    /// Another checker holds it, or the file cannot be made.
    pub fn take(shm: &std::path::Path) -> Result<Lock, String> {
        let path = shm.with_extension("health.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(format!("another dpvs-health checks this instance (it holds {})", path.display()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the primary that made `shm` still runs.
fn primary_alive(shm: &Shm) -> bool {
    let h = &shm.layout().header;
    shm_layout::process_start_ticks(h.primary_pid)
        .is_some_and(|t| h.primary_start_ticks == 0 || t == h.primary_start_ticks)
}

/// Sends `changes` as one (one generation): a single change as itself, more as a file of
/// changes next to the shared memory (as `ipvsadm -R` does). Returns the generation.
fn apply(shm: &Shm, changes: &[Change]) -> Result<u64, String> {
    let mut file = None;
    let request = match changes {
        [one] => Request::Change(one.clone()),
        many => {
            let path = shm.path().with_extension(format!("health.{}", std::process::id()));
            std::fs::write(&path, mailbox::proto::encode_changes(many))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let request = Request::Changes { path: path.to_string_lossy().into_owned() };
            file = Some(path);
            request
        }
    };
    let reply = mailbox::Client::new(&shm.layout().mailbox).call(&request.encode(), MAILBOX_TIMEOUT);
    if let Some(p) = file {
        let _ = std::fs::remove_file(p);
    }
    match Response::decode(&reply.map_err(|e| e.to_string())?) {
        Ok(Response::Applied { generation, .. }) => Ok(generation),
        Ok(Response::Error { message }) => Err(message),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(format!("the primary's answer: {e}")),
    }
}

/// One check's end: which real server, when it started, what it found.
type Done = (Target, Instant, Result<(), String>);

/// The health table's entries by target, in the trackers' order.
struct Table {
    index: HashMap<Target, usize>,
}

impl Table {
    /// Writes every tracker, frees the entries after them, and indexes them.
    fn rewrite(shm: &Shm, checks: &Checks) -> Table {
        let (header, entries) = shm.health();
        let old = header.used.load(Ordering::Relaxed) as usize;
        let mut index = HashMap::with_capacity(checks.trackers.len());
        for ((t, k), (i, e)) in checks.trackers.iter().zip(entries.iter().enumerate()) {
            e.write(&k.health(t));
            index.insert(*t, i);
        }
        let n = index.len();
        for e in entries.iter().take(old).skip(n) {
            e.clear();
        }
        header.used.store(n as u64, Ordering::Release);
        Table { index }
    }

    fn write(&self, shm: &Shm, checks: &Checks, t: &Target) {
        if let (Some(&i), Some(k)) = (self.index.get(t), checks.trackers.get(t)) {
            if let Some(e) = shm.health().1.get(i) {
                e.write(&k.health(t));
            }
        }
    }
}

/// The `--vip-hook`: a command run as `COMMAND up|down VIP`, one at a time, in order, for each
/// virtual address whose state ([`Checks::vips`]) changes, and for each at attach.
pub struct VipHook {
    tx: tokio::sync::mpsc::UnboundedSender<(std::net::IpAddr, bool)>,
    /// What it was last told of each address.
    told: std::collections::BTreeMap<std::net::IpAddr, bool>,
}

impl VipHook {
    /// Starts the task that runs `argv` (program and leading arguments) for each change.
    pub fn start(argv: Vec<String>) -> VipHook {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(std::net::IpAddr, bool)>();
        tokio::spawn(async move {
            while let Some((vip, up)) = rx.recv().await {
                let Some((program, args)) = argv.split_first() else { continue };
                let state = if up { "up" } else { "down" };
                let run = tokio::process::Command::new(program)
                    .args(args)
                    .args([state, &vip.to_string()])
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output();
                match tokio::time::timeout(Duration::from_secs(30), run).await {
                    Ok(Ok(o)) if o.status.success() => tracing::info!("VIP {vip} {state}: told {program}"),
                    Ok(Ok(o)) => tracing::warn!(
                        "VIP {vip} {state}: {program} failed ({}): {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                    Ok(Err(e)) => tracing::warn!("VIP {vip} {state}: {program}: {e}"),
                    Err(_) => tracing::warn!("VIP {vip} {state}: {program} took over 30 s: killed"),
                }
            }
        });
        VipHook { tx, told: std::collections::BTreeMap::new() }
    }

    /// Tells the hook what changed since it was last told: addresses now up or down, and
    /// addresses that are gone (down).
    fn tell(&mut self, now: &std::collections::BTreeMap<std::net::IpAddr, bool>) {
        let gone: Vec<std::net::IpAddr> = self.told.keys().filter(|v| !now.contains_key(v)).copied().collect();
        for vip in gone {
            if self.told.remove(&vip) == Some(true) {
                let _ = self.tx.send((vip, false));
            }
        }
        for (&vip, &up) in now {
            if self.told.insert(vip, up) != Some(up) {
                let _ = self.tx.send((vip, up));
            }
        }
    }
}

/// Checks the instance at `shm` until its primary goes (returns) or the process is stopped.
pub async fn session(shm: Arc<Shm>, pingers: Arc<Pingers>, mut hook: Option<&mut VipHook>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let mut checks = Checks::default();
    let (mut seen, mut rt) = (None::<u64>, conf::Runtime::default());
    // Whether the addresses' states may have changed since the hook was last told.
    let mut vips_dirty = true;
    let mut table = Table::rewrite(&shm, &checks);
    let mut applying: Option<tokio::task::JoinHandle<Result<u64, String>>> = None;
    let mut seq: u16 = 0;
    let header = || shm.health().0;
    header().pid.store(u64::from(std::process::id()), Ordering::Relaxed);
    header().start_ticks.store(shm_layout::process_start_ticks(std::process::id()).unwrap_or(0), Ordering::Relaxed);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = rx.recv() => { vips_dirty |= finish(&shm, &mut checks, &table, done); }
        }
        while let Ok(done) = rx.try_recv() {
            vips_dirty |= finish(&shm, &mut checks, &table, done);
        }
        if !primary_alive(&shm) {
            tracing::warn!("the instance's primary is gone");
            return;
        }
        // A change sent: once answered, the configuration is read again before the next.
        if let Some(done) = applying.take_if(|h| h.is_finished()) {
            if let Ok(Err(e)) = done.await {
                tracing::warn!("health change refused: {e}");
            }
            seen = None;
        }
        let generation = shm.layout().config.generation.load(Ordering::Acquire);
        if applying.is_none() && seen != Some(generation) {
            match ctl::cmd::config::snapshot(&shm) {
                Ok((g, next)) => {
                    (seen, rt) = (Some(g), next);
                    vips_dirty = true;
                    if checks.follow(&rt, Instant::now(), now_ms()) {
                        table = Table::rewrite(&shm, &checks);
                        tracing::info!(real_servers = checks.trackers.len(), generation = g, "checking");
                    }
                    header().generation.store(g, Ordering::Relaxed);
                }
                Err(e) => {
                    // Nothing is sent from a configuration older than the one published.
                    seen = None;
                    tracing::warn!("reading the configuration: {e}");
                }
            }
        }
        if applying.is_none() && seen.is_some() {
            let changes = checks.changes(&rt);
            if !changes.is_empty() {
                let shm = shm.clone();
                applying = Some(tokio::task::spawn_blocking(move || apply(&shm, &changes)));
            }
        }
        if let Some(h) = hook.as_deref_mut().filter(|_| vips_dirty && seen.is_some()) {
            h.tell(&checks.vips(&rt));
            vips_dirty = false;
        }
        for (t, check) in checks.due(Instant::now()) {
            seq = seq.wrapping_add(1);
            let to = std::net::SocketAddr::new(t.addr, if check.port > 0 { check.port } else { t.port });
            let protocol = if t.protocol == 17 { "udp" } else { "tcp" };
            let subject = Subject { to, vip: std::net::SocketAddr::new(t.vip, t.vport), protocol };
            let (tx, pingers) = (tx.clone(), pingers.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let timeout = Duration::from_millis(u64::from(check.timeout_ms));
                // A probe that panics is a failed check, not a real server never checked again.
                let probe =
                    tokio::spawn(async move { probe::run(&check.probe, &subject, timeout, &pingers, seq).await });
                let r = probe.await.unwrap_or_else(|e| Err(format!("the probe failed: {e}")));
                let _ = tx.send((t, started, r));
            });
        }
        header().heartbeat_ns.store(shm_layout::monotonic_ns(), Ordering::Relaxed);
    }
}

/// Takes one result: the tracker, its table entry, and a log line when its state changed
/// (returned).
fn finish(shm: &Shm, checks: &mut Checks, table: &Table, (t, started, result): Done) -> bool {
    let changed = checks.finish(&t, started, result, now_ms());
    if changed {
        if let Some(k) = checks.trackers.get(&t) {
            let real = std::net::SocketAddr::new(t.addr, t.port);
            let service = t.service();
            if k.down() {
                tracing::warn!("{real} of {service} down: {} ({} failures in a row)", k.error, k.check.fall);
            } else {
                tracing::info!("{real} of {service} up");
            }
        }
    }
    table.write(shm, checks, &t);
    changed
}

/// Attaches to the instance `target` names (waiting for it to run), checks it until its primary
/// goes, and again for the next one, until SIGTERM or SIGINT. With `vip_hook` (a program and its
/// leading arguments), each virtual address's state goes to it ([`VipHook`]).
///
/// # Errors
/// Another checker runs for the instance, or the runtime cannot start.
pub fn run(target: &ctl::cli::Target, vip_hook: Option<Vec<String>>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pingers = Arc::new(Pingers::new());
        let mut hook = vip_hook.map(VipHook::start);
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut waiting_said = false;
        loop {
            let shm = match ctl::instance::attach(target) {
                Ok(shm) => Arc::new(shm),
                Err(e) => {
                    if !waiting_said {
                        tracing::info!("waiting for the instance: {e}");
                        waiting_said = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = term.recv() => return Ok(()),
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    }
                }
            };
            waiting_said = false;
            let _lock = Lock::take(shm.path())?;
            tracing::info!(shm = %shm.path().display(), "attached");
            tokio::select! {
                () = session(shm, pingers.clone(), hook.as_mut()) => {}
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}
