//! What the `ipvsadm` and `dpip` front-ends share: the instance from the environment, and
//! changes sent quietly (the classic tools print nothing on success).

use std::path::PathBuf;
use std::time::Duration;

use mailbox::proto::{Change, Request};
use shm_layout::Shm;

use crate::cli::Target;
use crate::exit_codes;

/// How long a front-end waits for the primary's answer to a change.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The instance named by `DPVS_CONFIG`, or `DPVS_INSTANCE` (default `dpvs`) and
/// `DPVS_SHM_DIR` (default `/dev/shm`).
pub fn target_from_env() -> Target {
    Target {
        instance: std::env::var("DPVS_INSTANCE").unwrap_or_else(|_| "dpvs".into()),
        shm_dir: std::env::var_os("DPVS_SHM_DIR").map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from),
        config: std::env::var_os("DPVS_CONFIG").map(PathBuf::from),
    }
}

/// Attaches to the instance of the environment, or exits with the attach error's code.
pub fn attach_or_exit(tool: &str) -> Shm {
    match crate::instance::attach(&target_from_env()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{tool}: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// A front-end command that failed: what to print and the exit code to end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Why, without the tool's name.
    pub message: String,
    /// One of [`exit_codes`].
    pub code: i32,
}

impl Failure {
    /// `e` as a failure with exit code `code`.
    pub fn new(e: impl std::fmt::Display, code: i32) -> Failure {
        Failure { message: e.to_string(), code }
    }
}

impl From<crate::cmd::config::ConfigError> for Failure {
    fn from(e: crate::cmd::config::ConfigError) -> Failure {
        Failure::new(e, exit_codes::FAILURE)
    }
}

/// Sends a change; on success prints nothing.
///
/// # Errors
/// [`Failure`]: the primary refused the change ([`exit_codes::REFUSED`]), or did not answer.
pub fn change(shm: &Shm, c: Change) -> Result<(), Failure> {
    request(shm, &Request::Change(c))
}

/// Sends `r` and waits for its answer, like [`change`].
///
/// # Errors
/// As [`change`].
pub fn request(shm: &Shm, r: &Request) -> Result<(), Failure> {
    let (text, code) = crate::cmd::control::call(shm, r, TIMEOUT, false);
    if code == exit_codes::OK {
        Ok(())
    } else {
        Err(Failure::new(text.trim_start_matches("dpvsctl: ").trim_end(), code))
    }
}

/// The port names of the instance, by port slot.
pub fn port_names(shm: &Shm) -> Vec<String> {
    shm.layout().ports().iter().map(|p| p.name.as_str().into_owned()).collect()
}
