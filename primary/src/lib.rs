//! The primary process: EAL primary, mempools, ports, shared memory, and the supervisor of
//! the worker processes.
//!
//! Start-up order: instance lock -> EAL init (primary) -> one mbuf pool per forwarding lcore
//! -> ports configured and started (each rx queue filled from the pool of the lcore that polls
//! it, one tx queue per forwarding lcore) -> shared memory published -> workers spawned.
//! Shutdown runs it backwards: workers stopped first, then ports, then the runtime files.
#![forbid(unsafe_code)]

pub mod capture;
pub mod control;
pub mod eal_args;
pub mod instance;
pub mod ports;
pub mod shm_init;
pub mod supervisor;
pub mod telemetry;

/// Exit codes of `dpvs`.
pub mod exit_codes {
    /// Clean shutdown.
    pub const OK: i32 = 0;
    /// Bad command line or configuration.
    pub const CONFIG: i32 = 2;
    /// Another instance with the same name or file prefix is alive.
    pub const ALREADY_RUNNING: i32 = 3;
    /// EAL, mempool, port or shared-memory set-up failed.
    pub const SETUP: i32 = 4;
}
