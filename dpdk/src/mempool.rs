use std::ffi::CStr;
use std::ptr::NonNull;

use dpdk_sys::rte_mempool;

use crate::error::c_name;
use crate::{Error, LcoreId};

/// A packet-buffer pool in hugepage memory, shared by every process of the instance.
///
/// A `Mempool` handle does not free the pool when dropped: pools live as long as the primary's
/// EAL (secondaries only look them up). [`Mempool::free`] frees one explicitly.
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

    /// Moves what `lcore`'s cache holds back to the common pool, and returns how many buffers.
    ///
    /// Call it only for an lcore id that no live thread of any process uses (a dead worker's):
    /// the cache is not thread-safe.
    pub fn flush_cache_of_dead_lcore(&self, lcore: LcoreId) -> u32 {
        // SAFETY: valid pool; exclusivity of the cache is the documented caller contract.
        unsafe { dpdk_sys::shim_mempool_cache_flush_lcore(self.ptr.as_ptr(), lcore.0) }
    }

    /// Returns to the pool every buffer that is neither in the common pool nor in any lcore
    /// cache: buffers stranded by a process that died holding them. Returns how many.
    ///
    /// Call it only while nothing else uses the pool (no live lcore allocates from or frees
    /// to it) and no device queue holds its buffers (memif and null queues hold none between
    /// calls; tap and NIC rx rings do): otherwise buffers in use would be handed out twice.
    ///
    /// # Errors
    /// `ENOMEM` or `EAGAIN` from the audit; the pool is unchanged then.
    pub fn reclaim_unreferenced(&self) -> Result<u32, Error> {
        // SAFETY: valid pool; quiescence is the documented caller contract.
        let n = unsafe { dpdk_sys::shim_mempool_reclaim_unreferenced(self.ptr.as_ptr()) };
        if n < 0 {
            return Err(Error::call("mempool reclaim", i32::try_from(n).unwrap_or(-5)));
        }
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Frees the pool. No buffer of it may be in use.
    pub fn free(self) {
        // SAFETY: the caller gives up the handle; the pool is valid.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
