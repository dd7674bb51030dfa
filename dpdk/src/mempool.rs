use std::ffi::CStr;
use std::ptr::NonNull;

use dpdk_sys::rte_mempool;

use crate::error::c_name;
use crate::{Error, LcoreId};

/// A packet-buffer pool in hugepage memory, shared by every process of the instance.
///
/// A `Mempool` handle does not free the pool: pools live as long as the primary's EAL
/// (secondaries only look them up), so a handle never dangles while the EAL lives.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    ptr: NonNull<rte_mempool>,
}

// SAFETY: the mempool ops used (ring-backed, multi-producer/multi-consumer) are thread-safe.
unsafe impl Send for Mempool {}
// SAFETY: as above; shared references only call thread-safe functions.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` packet buffers with `data_room` bytes each (headroom included),
    /// a per-lcore cache of `cache` entries, on NUMA `socket` (-1: any).
    ///
    /// # Errors
    /// When the name is invalid or taken, or memory is short.
    pub fn create_pktmbuf(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool, Error> {
        let cname = c_name(name)?;
        // SAFETY: cname is a valid C string; the other arguments are plain values.
        let p = unsafe { dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p).map(|ptr| Mempool { ptr }).ok_or_else(|| Error::last("rte_pktmbuf_pool_create"))
    }

    /// Finds a pool created by the primary.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no such pool exists.
    pub fn lookup(name: &str) -> Result<Mempool, Error> {
        let cname = c_name(name)?;
        // SAFETY: cname is a valid C string.
        let p = unsafe { dpdk_sys::rte_mempool_lookup(cname.as_ptr()) };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| Error::NotFound { what: "mempool", name: name.to_owned() })
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.ptr.as_ptr()
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        // SAFETY: the pool is valid; `name` is a NUL-terminated array inside rte_mempool,
        // which bindgen sees as opaque, so read it through its offset: name is the first field.
        unsafe { CStr::from_ptr(self.ptr.as_ptr().cast::<std::ffi::c_char>()) }.to_string_lossy().into_owned()
    }

    /// Number of buffers the pool was created with.
    pub fn size(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::shim_mempool_size(self.ptr.as_ptr()) }
    }

    /// Buffers not in use: in the common pool plus every lcore's cache.
    pub fn avail_count(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Buffers in use (`size - avail_count`).
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Buffers held in `lcore`'s cache of this pool.
    pub fn cache_len(&self, lcore: LcoreId) -> u32 {
        // SAFETY: valid pool; lcore ids out of range return 0.
        unsafe { dpdk_sys::shim_mempool_cache_len(self.ptr.as_ptr(), lcore.0) }
    }

    /// Free buffers counted without the cap `avail_count` applies: the common pool plus every
    /// lcore cache. Above `size()` means a buffer is listed twice.
    pub fn free_count(&self) -> u32 {
        // SAFETY: valid pool; reads counters only.
        unsafe { dpdk_sys::shim_mempool_free_count(self.ptr.as_ptr()) }
    }

    /// Recovers the pool after the death of the process that ran `lcore`: repairs the pool's
    /// ring if the process died inside a ring operation (every later operation would spin
    /// forever), returns what the dead lcore's cache held without duplicates (a process killed
    /// inside a put can leave entries that are also in the ring), and, in
    /// [`RecoverMode::ExclusiveFindLost`], returns the buffers the process held (in no list at
    /// all).
    ///
    /// # Contract
    /// A multi-process rule no type can check, like "one poller per queue": the exclusive modes
    /// only when nothing else uses the pool (in dpvs: per-lcore pools, their lcore's process
    /// dead), find-lost only when no device queue holds the pool's buffers (memif and null
    /// queues hold none between calls; tap and NIC rx rings do); otherwise buffers in use would
    /// be handed out twice. [`RecoverMode::Shared`] when live lcores free into the pool.
    ///
    /// # Errors
    /// `ENOTSUP` for a pool that is not ring-based, `ENOMEM`, `EAGAIN`; the pool is unchanged.
    pub fn recover_dead_lcore(&self, lcore: LcoreId, mode: RecoverMode) -> Result<Recovery, Error> {
        let mut r = dpdk_sys::shim_recovery::default();
        let mode = match mode {
            RecoverMode::Exclusive => 0,
            RecoverMode::ExclusiveFindLost => 1,
            RecoverMode::Shared => -1,
        };
        // SAFETY: valid pool and out-parameter; exclusivity is the documented contract.
        let ret = unsafe { dpdk_sys::shim_mempool_recover_dead_lcore(self.ptr.as_ptr(), lcore.0, mode, &mut r) };
        Error::check("mempool recovery", ret)?;
        Ok(Recovery { restored: r.restored, lost: r.lost, duplicates: r.duplicates, ring_repairs: r.ring_repairs })
    }
}

/// What [`Mempool::recover_dead_lcore`] may assume about the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    /// Nothing else uses the pool: repair its ring, return the dead cache without duplicates.
    Exclusive,
    /// As `Exclusive`, and no device queue holds its buffers: also return buffers in no list.
    ExclusiveFindLost,
    /// Live lcores still free buffers into the pool (redirect rings): leave the ring's contents
    /// in place (repair it only if it stays half-updated for ~10 ms), return the dead cache
    /// without duplicates; buffers the dead process held are not found.
    Shared,
}

/// What [`Mempool::recover_dead_lcore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Buffers from the dead lcore's cache put back in the pool.
    pub restored: u32,
    /// Buffers in no list, held by the dead process, returned.
    pub lost: u32,
    /// Stale cache entries dropped because they were free elsewhere already.
    pub duplicates: u32,
    /// Ring reservations of the dead process dropped.
    pub ring_repairs: u32,
}

impl Recovery {
    /// Buffers that became available again.
    pub fn returned(&self) -> u32 {
        self.restored + self.lost
    }
}
