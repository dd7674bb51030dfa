use std::ptr::NonNull;

use dpdk_sys::rte_ring;

use crate::error::c_name;
use crate::{Burst, Error};

/// A DPDK ring of packet buffers in hugepage memory, visible to every process of the instance.
///
/// Contract: a ring named here carries mbufs only; [`Ring::lookup`] of a ring that another
/// program filled with anything else breaks it. Rings are never freed while the EAL lives, so
/// a handle never dangles.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    ptr: NonNull<rte_ring>,
}

// SAFETY: rings created without the SP/SC flags are multi-producer/multi-consumer safe.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a multi-producer, multi-consumer ring of `count` entries (a power of two;
    /// it holds `count - 1`).
    ///
    /// # Errors
    /// When the name is taken, the count invalid or memory short.
    pub fn create(name: &str, count: u32, socket: i32) -> Result<Ring, Error> {
        let cname = c_name(name)?;
        // SAFETY: valid C string, plain values.
        let p = unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), count, socket, 0) };
        NonNull::new(p).map(|ptr| Ring { ptr }).ok_or_else(|| Error::last("rte_ring_create"))
    }

    /// Creates a single-producer, single-consumer ring of `count` entries (a power of two).
    ///
    /// # Errors
    /// When the name is taken, the count invalid or memory short.
    pub fn create_spsc(name: &str, count: u32, socket: i32) -> Result<Ring, Error> {
        let cname = c_name(name)?;
        let flags = dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ;
        // SAFETY: valid C string, plain values.
        let p = unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), count, socket, flags) };
        NonNull::new(p).map(|ptr| Ring { ptr }).ok_or_else(|| Error::last("rte_ring_create"))
    }

    /// After the death of the only producer (`producer`) or only consumer of a
    /// single-producer/single-consumer ring: drops the reservation it left half done, which
    /// would otherwise hand its successor stale entries. Returns whether it repaired anything.
    ///
    /// Contract: the dead side's process is gone and its successor has not started.
    pub fn repair_dead_side(&self, producer: bool) -> bool {
        // SAFETY: valid ring; exclusivity of the repaired side is the documented contract.
        unsafe { dpdk_sys::shim_ring_repair(self.ptr.as_ptr(), i32::from(producer)) > 0 }
    }

    /// Finds a ring created by another process.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn lookup(name: &str) -> Result<Ring, Error> {
        let cname = c_name(name)?;
        // SAFETY: valid C string.
        let p = unsafe { dpdk_sys::rte_ring_lookup(cname.as_ptr()) };
        NonNull::new(p).map(|ptr| Ring { ptr }).ok_or_else(|| Error::NotFound { what: "ring", name: name.to_owned() })
    }

    /// Moves packets from the front of `burst` into the ring; returns how many moved.
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        let (p, n) = burst.held();
        // SAFETY: p holds n owned mbufs; the ring takes ownership of the first `done`.
        let done = unsafe { dpdk_sys::shim_ring_enqueue_burst(self.ptr.as_ptr(), p.cast(), u32::from(n)) };
        let done = done as usize;
        burst.consumed(done);
        done
    }

    /// Moves packets from the ring into the free room of `burst`; returns how many moved.
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        let (p, n) = burst.spare();
        // SAFETY: p points to n writable entries; the ring holds owned mbufs (this type only
        // enqueues mbufs, and the type's contract covers rings found by name), now ours.
        let got = unsafe { dpdk_sys::shim_ring_dequeue_burst(self.ptr.as_ptr(), p.cast(), u32::from(n)) } as usize;
        // SAFETY: see above.
        unsafe { burst.filled(got) };
        got
    }

    /// Entries in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::shim_ring_count(self.ptr.as_ptr()) }
    }
}
