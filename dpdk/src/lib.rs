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

mod eal;
mod error;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::{tsc_hz, Eal, LcoreId, ProcessType};
pub use error::Error;
pub use mbuf::{Burst, Mbuf, Packet, BURST_SIZE};
pub use mempool::{Mempool, RecoverMode, Recovery};
pub use port::{MacAddr, Port, PortInfo, PortStats, RxQueue, TxQueue};
pub use ring::Ring;

/// Reads the time-stamp counter (cheap; for per-burst timing on the packet path).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: `rte_rdtsc` reads a CPU register and has no preconditions.
    unsafe { dpdk_sys::shim_rdtsc() }
}
