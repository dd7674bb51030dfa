//! The running configuration, read from the instance's current configuration generation:
//! `config dump`, and the tables of `service list`, `addr show`, `neigh show`, `laddr list`.

use std::sync::atomic::Ordering;

use conf::{Config, Runtime};
use mailbox::generation::ReadError;
use serde::Serialize;
use shm_layout::Shm;

/// Why the instance's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No generation, none that held still long enough to copy, or one of another format.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The startup file was cut when it was kept in shared memory.
    #[error("the startup configuration was too long to keep in shared memory")]
    StartupTooLong,
    /// The kept startup file does not parse (another build wrote it).
    #[error(transparent)]
    Startup(#[from] conf::ConfError),
    /// The kept startup file is not TOML.
    #[error(transparent)]
    Tables(#[from] conf::ReplaceTablesError),
}

/// The current generation's number and configuration (the newest snapshot and the deltas
/// after it).
///
/// # Errors
/// [`ConfigError::Read`].
pub fn snapshot(shm: &Shm) -> Result<(u64, Runtime), ConfigError> {
    Ok(mailbox::generation::current(shm.generations(), None)?)
}

/// The configuration the instance started from.
///
/// # Errors
/// [`ConfigError::StartupTooLong`] when the kept text is cut (the file was longer than the
/// area), [`ConfigError::Startup`] when it no longer parses.
pub fn startup(shm: &Shm) -> Result<Config, ConfigError> {
    let area = &shm.layout().config;
    if area.static_len as usize >= shm_layout::config::STATIC_TEXT_BYTES {
        return Err(ConfigError::StartupTooLong);
    }
    Ok(Config::from_str(&area.static_text(), "<startup configuration>")?)
}

/// The running configuration as a file `reload` accepts: the startup file's sections, with
/// the addresses, neighbours and services of the current generation.
///
/// # Errors
/// As [`snapshot`] and [`startup`].
pub fn dump(shm: &Shm) -> Result<String, ConfigError> {
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
