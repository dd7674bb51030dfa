//! The worker process: an EAL secondary that runs one forwarding lcore.
//!
//! It attaches to the instance's shared memory first (and refuses a layout of another
//! version before touching DPDK), initialises the EAL as a secondary, claims its worker slot,
//! then polls its assigned rx queues in bursts until the primary sets the slot's stop flag.
//! Everything it counts lives in shared memory, so a replacement continues the counters.
#![forbid(unsafe_code)]

pub mod capture;
#[cfg(test)]
mod fixtures;
pub mod frame;
pub mod io;
pub mod ipv6;
pub mod lb;
pub mod lcore;
pub mod neigh;
pub mod outcome;
pub mod pipeline;
pub mod run;

/// Exit codes of `dpvs-worker`.
pub mod exit_codes {
    /// Stopped on request.
    pub const OK: i32 = 0;
    /// Bad command line.
    pub const USAGE: i32 = 2;
    /// Shared memory missing, of another layout version, or the slot is not ours.
    pub const ATTACH: i32 = 3;
    /// EAL or port set-up failed.
    pub const DPDK: i32 = 4;
}
