//! The instance's shared memory as the primary creates it: every field of the
//! [`Layout`](shm_layout::Layout) that is written once, before publication, filled from the
//! validated [`Config`] and from what only DPDK knows at run time ([`StartFacts`], gathered by
//! the caller, so nothing here calls DPDK and the filling is tested in ordinary memory).
//!
//! Order of the stores, which is the publication protocol of [`shm_layout::map`]:
//! 1. [`Shm::create`] zero-fills the file and sets the header's magic and sizes;
//! 2. [`fill`] writes everything else (plain fields and relaxed atomics), and never the
//!    layout version;
//! 3. `Shm::create` stores the layout version (release) after `fill` has returned: an opener
//!    that loads it (acquire) sees every field of steps 1 and 2.
//!
//! [`create`] runs the three steps for the instance's file. [`fill`] checks everything that can
//! fail before it writes anything, so a refused start leaves the layout as it found it.
//!
//! The connection table shard files, one per forwarding lcore next to the shm file, are
//! created here too ([`create_conn_shards`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use conf::Config;
use shm_layout::{InstanceState, Layout, Name, QueueRef, Shm, ShmError, TableSizes, Tables, WorkerState, NO_PORT};

// Every configuration that validates fits the fixed-size arrays and names of the layout, so
// the indexing and the name copies below never panic or cut.
const _: () = {
    assert!(conf::MAX_PORTS <= shm_layout::MAX_PORTS);
    assert!(conf::MAX_WORKER_LCORES <= shm_layout::MAX_WORKERS);
    assert!(conf::MAX_RX_PER_LCORE <= shm_layout::MAX_RX_PER_WORKER);
    assert!(conf::MAX_NAME_LEN < shm_layout::NAME_LEN);
    assert!(conf::MAX_PORT_NAME_LEN < 16);
};

/// Timer wheel slots of every connection table shard.
pub const CONN_WHEEL_SLOTS: u32 = 4096;
/// Timer wheel tick of every connection table shard, µs.
pub const CONN_TICK_US: u32 = 10_000;

/// The primary process, as the header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryFacts {
    /// Its pid.
    pub pid: u32,
    /// Its start time in clock ticks since boot (0: unknown).
    pub start_ticks: u64,
    /// CLOCK_MONOTONIC at start, ns; also the publication time of generation 1.
    pub started_mono_ns: u64,
    /// Wall clock at start, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// How long its EAL init took, µs.
    pub eal_init_us: u64,
}

impl PrimaryFacts {
    /// This process, now.
    pub fn now(eal_init_us: u64) -> PrimaryFacts {
        let pid = std::process::id();
        PrimaryFacts {
            pid,
            start_ticks: shm_layout::process_start_ticks(pid).unwrap_or(0),
            started_mono_ns: shm_layout::monotonic_ns(),
            started_unix_ns: unix_now_ns(),
            eal_init_us,
        }
    }
}

/// A started port, as DPDK reports it (one per [`Config::ports`] entry, in the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFacts {
    /// DPDK port id.
    pub port_id: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Driver name (`net_memif`).
    pub driver: String,
    /// Its receive-side scaling.
    pub rss: RssFacts,
}

/// How a started port spreads received packets over its rx queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssFacts {
    /// Hardware, emulated, one queue, or unknown.
    pub kind: shm_layout::RssKind,
    /// The Toeplitz key (the first 40 bytes of the device's).
    pub key: [u8; rss::KEY_LEN],
    /// The redirection table (empty when unknown).
    pub reta: Vec<u16>,
}

impl RssFacts {
    /// A port of one rx queue.
    pub fn single() -> RssFacts {
        RssFacts { kind: shm_layout::RssKind::Single, key: rss::MS_KEY, reta: vec![0] }
    }
}

/// A forwarding lcore's mbuf pool (one per worker slot, in slot order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFacts {
    /// The pool's name, by which the worker looks it up.
    pub name: String,
    /// Mbufs it was created with.
    pub size: u32,
    /// Mbufs free now.
    pub avail: u32,
}

/// Everything besides the [`Config`] that the layout records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFacts {
    /// The primary process.
    pub primary: PrimaryFacts,
    /// The ports, in config order.
    pub ports: Vec<PortFacts>,
    /// The pools, in worker slot order.
    pub pools: Vec<PoolFacts>,
    /// The configuration file's text, kept for `dpvsctl config dump` (see [`startup_text`]).
    pub startup_text: String,
}

/// Why the layout could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// The facts describe another number of ports than the configuration has.
    #[error("{got} started ports for the {expected} ports of the configuration")]
    PortCount { expected: usize, got: usize },
    /// The facts describe another number of pools than the configuration has forwarding lcores.
    #[error("{got} mbuf pools for the {expected} forwarding lcores of the configuration")]
    PoolCount { expected: usize, got: usize },
    /// The runtime configuration does not fit generation 1.
    #[error("configuration generation 1: {0}")]
    FirstGeneration(#[from] mailbox::generation::PublishError),
}

/// Why the shared memory could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The file could not be created or mapped.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// The layout could not be filled (the file is removed again).
    #[error(transparent)]
    Fill(#[from] FillError),
}

/// The port slot frames received on port `i` leave from at layer 2: the data port an exception
/// path serves, the other port of an `l2-pair`, else `i` itself (one-arm: back out of it).
fn peer(cfg: &Config, i: usize) -> usize {
    match (cfg.forwarding, cfg.ports[i].exception_of) {
        (_, Some(data)) => data,
        (conf::Forwarding::L2Pair { a, b }, _) if i == a => b,
        (conf::Forwarding::L2Pair { a, b }, _) if i == b => a,
        _ => i,
    }
}

/// Fills a fresh layout (as [`Shm::create`] hands it over) from `cfg` and `facts`: the header,
/// one port slot per port, one worker slot per forwarding lcore, the control mailbox, the
/// startup text and configuration generation 1. It does not store the layout version: that is
/// the publication, which follows it (module docs).
///
/// A startup text longer than the layout keeps is cut (with a warning).
///
/// # Errors
/// [`FillError`], before anything is written.
pub fn fill(l: &mut Layout, tables: Tables<'_>, cfg: &Config, facts: &StartFacts) -> Result<(), FillError> {
    let n_workers = cfg.worker_lcores().count();
    if facts.ports.len() != cfg.ports.len() {
        return Err(FillError::PortCount { expected: cfg.ports.len(), got: facts.ports.len() });
    }
    if facts.pools.len() != n_workers {
        return Err(FillError::PoolCount { expected: n_workers, got: facts.pools.len() });
    }
    // The last check, and the first write: it refuses a payload too large before it writes.
    let first = mailbox::generation::encode(&cfg.runtime());
    let words = tables.config_words();
    mailbox::generation::init(&mut l.config, words, &facts.startup_text, &first, facts.primary.started_mono_ns)?;
    if facts.startup_text.len() > shm_layout::config::STATIC_TEXT_BYTES {
        tracing::warn!(
            bytes = facts.startup_text.len(),
            kept = shm_layout::config::STATIC_TEXT_BYTES,
            "configuration file too long to keep whole for `dpvsctl config dump`"
        );
    }
    mailbox::init(&l.mailbox);

    let p = &facts.primary;
    let h = &mut l.header;
    h.instance = Name::new(&cfg.instance.name);
    h.file_prefix = Name::new(&cfg.instance.file_prefix);
    h.n_ports = cfg.ports.len() as u32;
    h.n_workers = n_workers as u32;
    h.primary_pid = p.pid;
    h.primary_start_ticks = p.start_ticks;
    h.started_mono_ns = p.started_mono_ns;
    h.started_unix_ns = p.started_unix_ns;
    h.eal_init_us = p.eal_init_us;
    h.conn_capacity = cfg.connections.capacity_per_lcore;
    h.housekeeping_cpu = cfg.instance.housekeeping_cpu.map_or(-1, |c| c as i32);
    h.state.store(InstanceState::Starting as u32, Ordering::Relaxed);

    for (i, (port, dev)) in cfg.ports.iter().zip(&facts.ports).enumerate() {
        let s = &mut l.ports[i];
        s.name = Name::new(&port.name);
        s.device = Name::new(port.device.dpdk_name());
        s.driver = Name::new(&dev.driver);
        s.mac = [0; 8];
        s.mac[..6].copy_from_slice(&dev.mac);
        s.port_id = dev.port_id;
        s.rx_queues = port.rx_queues;
        s.tx_queues = port.tx_queues;
        s.peer = peer(cfg, i) as u16;
        s.exception = port.exception.map_or(NO_PORT, |e| e as u16);
        s.is_exception = u16::from(port.exception_of.is_some());
        s.mtu = port.mtu;
        let r = &mut l.rss[i];
        let reta = if dev.rss.reta.len() <= shm_layout::RETA_MAX && dev.rss.reta.len().is_power_of_two() {
            dev.rss.reta.as_slice()
        } else {
            &[]
        };
        let kind = if reta.is_empty() { shm_layout::RssKind::Unknown } else { dev.rss.kind };
        r.kind = kind as u16;
        r.key = dev.rss.key;
        r.reta_size = reta.len() as u16;
        r.reta[..reta.len()].copy_from_slice(reta);
    }

    for ((g, wl), pool) in cfg.worker_lcores().zip(&facts.pools) {
        let s = &mut l.workers[wl.slot];
        s.group = Name::new(&g.name);
        s.pool = Name::new(&pool.name);
        s.lcore = wl.lcore.id;
        s.cpu = wl.lcore.cpu.map_or(-1, |c| c as i32);
        s.tx_queue = wl.slot as u16;
        s.n_rx = wl.rx.len() as u16;
        for (d, r) in s.rx.iter_mut().zip(&wl.rx) {
            *d = QueueRef { port: r.port as u16, queue: r.queue };
        }
        s.idle_sleep_us = g.idle_sleep_us;
        s.pool_size = pool.size;
        s.pool_avail.store(pool.avail, Ordering::Relaxed);
        s.state.store(WorkerState::Empty as u32, Ordering::Relaxed);
    }
    Ok(())
}

/// The tables after the layout, sized by `cfg`'s `[limits]`: a table of service and of
/// real-server counters per forwarding lcore, snapshot buffers for a configuration at the
/// limits ([`conf::Limits::generation_bytes`]) and the delta ring ([`conf::Limits::delta_bytes`]).
pub fn table_sizes(cfg: &Config) -> TableSizes {
    let lim = cfg.limits;
    TableSizes {
        workers: cfg.worker_lcores().count() as u32,
        service_slots: lim.services,
        real_slots: lim.reals,
        config_words: lim.generation_bytes().div_ceil(8),
        delta_words: lim.delta_bytes().div_ceil(8) as u32,
    }
}

/// Creates the instance's shared-memory file ([`Config::shm_path`]), [`fill`]s it and
/// publishes it (module docs).
///
/// # Errors
/// [`CreateError::Shm`] when the file cannot be made; [`CreateError::Fill`] when the layout
/// cannot be filled, after removing the file again (it was published empty: `Shm::create`
/// publishes whatever its init left).
pub fn create(cfg: &Config, facts: &StartFacts) -> Result<Shm, CreateError> {
    let mut filled = Ok(());
    let shm = Shm::create(&cfg.shm_path(), table_sizes(cfg), |l, t| filled = fill(l, t, cfg, facts))?;
    if let Err(e) = filled {
        if let Err(u) = shm.unlink() {
            tracing::warn!("removing the unfilled shared memory: {u}");
        }
        return Err(e.into());
    }
    Ok(shm)
}

/// The text of the configuration the instance starts from: the embedded default, or the file
/// [`Config::source`] names, read again (empty, with a warning, if that fails now).
pub fn startup_text(cfg: &Config) -> String {
    if cfg.source == "<embedded>" {
        return conf::EMBEDDED_DEFAULT.to_owned();
    }
    std::fs::read_to_string(&cfg.source).unwrap_or_else(|e| {
        tracing::warn!(file = %cfg.source, "configuration file not kept for `dpvsctl config dump`: {e}");
        String::new()
    })
}

/// Wall clock now, ns since the Unix epoch (0 before it).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Creates one empty connection table shard per forwarding lcore, next to the shm file
/// ([`shm_layout::conn::conn_shard_path`]): [`Config::connections`] entries,
/// [`CONN_WHEEL_SLOTS`] timer slots of [`CONN_TICK_US`], hash seed `seed ^ slot`. Returns their
/// paths, in slot order.
///
/// # Errors
/// The first shard that cannot be created.
pub fn create_conn_shards(cfg: &Config, seed: u64) -> Result<Vec<PathBuf>, ShmError> {
    cfg.worker_lcores()
        .map(|(_, wl)| {
            let path = shm_layout::conn::conn_shard_path(&cfg.shm_path(), wl.slot);
            shm_layout::ConnShardFile::create(
                &path,
                wl.slot as u32,
                cfg.connections.capacity_per_lcore,
                CONN_WHEEL_SLOTS,
                CONN_TICK_US,
                seed ^ wl.slot as u64,
            )?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests;
