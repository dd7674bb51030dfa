//! A thin safe layer over `dpdk-sys`.
//!
//! The types here own what they wrap: an [`Mbuf`] is freed when dropped, a [`Burst`] frees the
//! packets it still holds, an [`Eal`] cleans the EAL up. Errors carry DPDK's `rte_errno` (or the
//! negative return value) mapped to [`Error`].
//!
//! Multi-process rules that no type can enforce, and that callers must keep (see
//! `docs/architecture.md`): a queue is polled by one lcore at a time in the whole instance; two
//! live processes never share an lcore id (mempool caches are per lcore id); a primary is not
//! restarted while secondaries live.

mod capture;
mod eal;
mod error;
// `Eal::run_on_lcores`: a function on every lcore at once.
mod launch;
mod mbuf;
mod mempool;
mod port;
mod prefault;
mod ring;
mod telemetry;

pub use capture::{serve_capture_requests, CaptureRequest, CaptureTarget, Decide, Decision, QueueCapture, QueueSide};
pub use eal::{tsc_hz, Eal, LcoreId, ProcessType};
pub use error::Error;
pub use mbuf::{Burst, Mbuf, Packet, BURST_SIZE};
pub use mempool::{Mempool, RecoverMode, Recovery};
pub use port::{rss_hf, MacAddr, Port, PortInfo, PortStats, RxQueue, TxQueue};
pub use prefault::prefault_shared_mappings;
pub use ring::Ring;
pub use telemetry::{register_telemetry, TelEntry, TelHandler, TelScalar, TelValue};

/// DPDK's software Toeplitz hash (`rte_softrss`) of `tuple` (32-bit words in host byte order,
/// at most 9) under the 40-byte RSS `key`: what a NIC with that key computes, for checking the
/// balancer's own implementation. Needs no EAL.
///
/// # Panics
/// When `tuple` has more than 9 words (the key covers 36 bytes of input).
pub fn softrss(tuple: &[u32], key: &[u8; 40]) -> u32 {
    assert!(tuple.len() <= 9, "an RSS input is at most 9 words");
    // SAFETY: `rte_softrss` reads `len` words of `tuple` and the 40 bytes of `key` (it indexes
    // the key by input bit: 9 words need bytes up to 36 + 4), both borrowed for the call; it
    // writes nothing.
    unsafe { dpdk_sys::shim_softrss(tuple.as_ptr(), tuple.len() as u32, key.as_ptr()) }
}

/// Reads the time-stamp counter (cheap; for per-burst timing on the packet path).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: `rte_rdtsc` reads a CPU register and has no preconditions.
    unsafe { dpdk_sys::shim_rdtsc() }
}
