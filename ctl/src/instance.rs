//! Finding and attaching to a running instance.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use shm_layout::{process_start_ticks, Shm, ShmError};

use crate::cli::Target;
use crate::exit_codes;

/// Why the instance could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Bad config file given with `-c`.
    #[error("{0}")]
    Config(#[from] conf::ConfError),
    /// No usable shared memory.
    #[error("instance {instance:?}: {source}")]
    Shm { instance: String, source: ShmError },
    /// The shared memory is there but its primary is gone.
    #[error("instance {instance:?} is not running: {} was left by primary pid {pid}, which is gone", path.display())]
    Stale { instance: String, path: PathBuf, pid: u32 },
}

impl AttachError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AttachError::Config(_) => exit_codes::USAGE,
            AttachError::Shm { source: ShmError::NotFound { .. } | ShmError::NotReady { .. }, .. }
            | AttachError::Stale { .. } => exit_codes::NOT_RUNNING,
            AttachError::Shm { source: ShmError::VersionMismatch { .. }, .. } => exit_codes::VERSION_MISMATCH,
            AttachError::Shm { .. } => exit_codes::FAILURE,
        }
    }
}

/// Maps the target instance's shared memory and checks that its primary is alive.
///
/// # Errors
/// [`AttachError`] naming the instance and what is wrong.
pub fn attach(t: &Target) -> Result<Shm, AttachError> {
    let (instance, path) = match &t.config {
        Some(c) => {
            let cfg = conf::Config::from_file(c)?;
            (cfg.instance.name.clone(), cfg.shm_path())
        }
        None => (t.instance.clone(), t.shm_dir.join(format!("{}.shm", t.instance))),
    };
    let shm = Shm::open(&path).map_err(|source| AttachError::Shm { instance: instance.clone(), source })?;
    let h = &shm.layout().header;
    let pid = h.primary_pid;
    let alive = process_start_ticks(pid).is_some_and(|t| h.primary_start_ticks == 0 || t == h.primary_start_ticks);
    if !alive {
        return Err(AttachError::Stale { instance, path, pid });
    }
    // A primary that is shutting down has not removed the file yet: still readable.
    let _ = h.state.load(Ordering::Acquire);
    stay_off_data_cpus(h.housekeeping_cpu);
    Ok(shm)
}

/// Moves this process to the instance's housekeeping CPU (negative: none configured), so that
/// an operator's command never preempts a forwarding lcore on a data CPU, however often it
/// wakes while it waits for a reply. Best effort: a cpuset without that CPU leaves it where
/// it is.
fn stay_off_data_cpus(cpu: i32) {
    let _ = shm_layout::pin_to_cpu(cpu);
}
