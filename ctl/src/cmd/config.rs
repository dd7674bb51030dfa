//! The running configuration, read from the instance's current configuration generation:
//! `config dump`, and the tables of `service list`, `addr show`, `neigh show`, `laddr list`.

use std::sync::atomic::Ordering;

use conf::{Config, Runtime};
use serde::Serialize;
use shm_layout::Shm;

/// The current generation's number and configuration.
///
/// # Errors
/// The generation cannot be read or decoded (it names why).
pub fn snapshot(shm: &Shm) -> Result<(u64, Runtime), String> {
    let area = &shm.layout().config;
    let (g, bytes) = mailbox::generation::snapshot(area).map_err(|e| e.to_string())?;
    let rt = mailbox::generation::decode(&bytes).map_err(|e| format!("configuration generation {g}: {e}"))?;
    Ok((g, rt))
}

/// The configuration the instance started from.
///
/// # Errors
/// The kept text is cut (the file was longer than the area) or no longer parses.
pub fn startup(shm: &Shm) -> Result<Config, String> {
    let area = &shm.layout().config;
    if area.static_len as usize >= shm_layout::config::STATIC_TEXT_BYTES {
        return Err("the startup configuration was too long to keep in shared memory".into());
    }
    Config::from_str(&area.static_text(), "<startup configuration>").map_err(|e| e.to_string())
}

/// The running configuration as a file `reload` accepts: the startup file's sections, with
/// the addresses, neighbours and services of the current generation.
///
/// # Errors
/// As [`snapshot`] and [`startup`].
pub fn dump(shm: &Shm) -> Result<String, String> {
    let (g, rt) = snapshot(shm)?;
    let cfg = startup(shm)?;
    let text = conf::replace_runtime_tables(&shm.layout().config.static_text(), &cfg.render_runtime(&rt))?;
    Ok(format!("# dpvsctl config dump: configuration generation {g}\n{text}"))
}

/// Generation counters, for `status`.
#[derive(Debug, Serialize)]
pub struct Generation {
    pub generation: u64,
    pub changes: u64,
    /// Whether every polling worker acknowledged it.
    pub acknowledged: bool,
}

/// Reads the generation counters.
pub fn generation(shm: &Shm) -> Generation {
    let c = &shm.layout().config;
    let g = c.generation.load(Ordering::Acquire);
    let acknowledged = shm
        .layout()
        .workers()
        .iter()
        .all(|w| w.state() != shm_layout::WorkerState::Running || w.cfg_applied.load(Ordering::Acquire) >= g);
    Generation { generation: g, changes: c.changes.load(Ordering::Acquire), acknowledged }
}
