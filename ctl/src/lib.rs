//! `dpvsctl`: the operator's tool. It maps the instance's shared memory (no DPDK, no EAL),
//! reads state, counters and the current configuration generation from it directly, and sends
//! changes to the primary through the control mailbox.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod dpip;
pub mod exec;
pub mod front;
pub mod instance;
pub mod ipvsadm;

/// `host:port` as ipvsadm writes an endpoint: an IPv6 host in brackets (`[2001:db8::1]:80`).
pub fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Exit codes of `dpvsctl`.
pub mod exit_codes {
    /// Success.
    pub const OK: i32 = 0;
    /// No instance of that name is running.
    pub const NOT_RUNNING: i32 = 1;
    /// Bad command line (clap's own usage errors exit with 2 as well).
    pub const USAGE: i32 = 2;
    /// The instance's shared memory has another layout version than this dpvsctl.
    pub const VERSION_MISMATCH: i32 = 3;
    /// Any other failure (I/O, a foreign file, no answer from the primary).
    pub const FAILURE: i32 = 4;
    /// The primary refused or failed the command.
    pub const REFUSED: i32 = 5;
}
