//! Maps the instance's shared-memory file. The only module of the workspace outside the DPDK
//! bindings that uses `unsafe`.
//!
//! Protocol: the creator truncates a new file to `size_of::<Layout>()` plus the tables sized
//! by [`TableSizes`] (zero-filled), records those sizes in the header, writes every field
//! through the exclusive reference it gets before publication, then stores
//! [`LAYOUT_VERSION`](crate::LAYOUT_VERSION) with release ordering. An opener checks the file
//! size, the magic and the version (acquire) before it hands out a `&Layout`; a version 0 means
//! the creator has not finished.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use memmap2::MmapRaw;

use crate::config::Generations;
use crate::conn::{
    conn_shard_bytes, conn_shard_offsets, ConnEntry, ConnShardHeader, BUCKETS_PER_ENTRY, CONN_LAYOUT_VERSION,
    CONN_MAGIC,
};
use crate::{Layout, RealCounters, ServiceCounters, LAYOUT_VERSION, MAGIC};

/// Asks the CPU to bring the cache line holding `r` in, without waiting for it: lets the
/// lookups of a burst in a large shared table take their cache misses together.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_at(std::ptr::from_ref(r).cast(), 0);
}

/// [`prefetch`] of the line `offset` bytes past `base` (which may be past the object: a
/// prefetch of any address is only a hint).
#[inline(always)]
pub fn prefetch_at(base: *const u8, offset: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, part of every x86_64 CPU) reads nothing architecturally and
    // never faults, whatever the address: it is a hint to the cache.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(base.wrapping_add(offset).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, offset);
}

/// Why a region could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The file does not exist: no instance of that name is running.
    #[error("no instance: {} does not exist (is the primary running?)", path.display())]
    NotFound { path: PathBuf },
    /// I/O error on the file.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The file is not a layout of this family, or truncated.
    #[error("{} is not a dpvs shared-memory file ({what})", path.display())]
    Invalid { path: PathBuf, what: String },
    /// The creator is still initialising it.
    #[error("{} is still being initialised by its primary", path.display())]
    NotReady { path: PathBuf },
    /// It was made by a build with another layout version.
    #[error("layout version mismatch: {} has layout version {found}, this build expects {expected}", path.display())]
    VersionMismatch { path: PathBuf, found: u32, expected: u32 },
}

/// Waits until `word` no longer holds `expected`, a wake-up, or `timeout` (futex(2), shared:
/// the word may be in memory mapped by several processes). Spurious returns are possible; the
/// caller re-checks its condition.
pub fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: the word is a valid, aligned u32 that outlives the call (borrowed); FUTEX_WAIT
    // only reads it and sleeps; the timespec is a valid relative timeout on the stack. The
    // result (woken, timed out, value changed, interrupted) needs no handling.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        );
    }
}

/// Wakes every waiter on `word` (see [`futex_wait`]).
pub fn futex_wake(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: the word is a valid, aligned u32 (borrowed); FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

/// Bumps `word` and wakes its waiters.
pub fn ring(word: &std::sync::atomic::AtomicU32) {
    word.fetch_add(1, Ordering::Release);
    futex_wake(word);
}

/// A zeroed control mailbox on the heap, for tests of the queue that cannot map a file (Miri
/// runs them: it has no `mmap` of files). Slot positions are not initialised
/// (`mailbox::init` does that).
pub fn heap_mailbox() -> Box<crate::mailbox::Mailbox> {
    let layout = std::alloc::Layout::new::<crate::mailbox::Mailbox>();
    // SAFETY: the layout has a non-zero size; the allocation is zero-filled, and an all-zero
    // Mailbox is valid (atomics and integer padding only); Box takes ownership of exactly this
    // allocation with this layout. A failed allocation is reported as the allocator demands.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout).cast::<crate::mailbox::Mailbox>();
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(p)
    }
}

/// The sizes of the tables that follow the [`Layout`] in the file, chosen at start from the
/// configuration's `[limits]` and recorded in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSizes {
    /// Worker slots with a table each.
    pub workers: u32,
    /// Service counter slots per worker.
    pub service_slots: u32,
    /// Real-server counter slots per worker.
    pub real_slots: u32,
    /// Words of each of the two configuration snapshot buffers.
    pub config_words: u64,
    /// Words of the configuration delta ring's arena.
    pub delta_words: u32,
}

impl TableSizes {
    /// Tables as layout version 11 had them fixed (256 services and 1 024 real servers per
    /// worker, 64 workers, 1 MiB generation buffers): for tests and tools that make a region
    /// without a configuration.
    pub const SMALL: TableSizes = TableSizes {
        workers: crate::MAX_WORKERS as u32,
        service_slots: 256,
        real_slots: 1024,
        config_words: 128 * 1024,
        delta_words: 128 * 1024,
    };

    /// Byte offsets, from the end of the layout, of the service counters, the real-server
    /// counters, the two snapshot buffers' payloads and the delta ring's, the health table
    /// ([`crate::health`]), and the tables' total length; `None` when it overflows.
    fn offsets(&self) -> Option<[usize; 7]> {
        let workers = usize::try_from(self.workers).ok()?;
        let services = workers.checked_mul(usize::try_from(self.service_slots).ok()?)?.checked_mul(64)?;
        let reals = workers.checked_mul(usize::try_from(self.real_slots).ok()?)?.checked_mul(64)?;
        let buf = usize::try_from(self.config_words).ok()?.checked_mul(8)?.checked_next_multiple_of(64)?;
        let real_at = services;
        let buf0_at = real_at.checked_add(reals)?;
        let buf1_at = buf0_at.checked_add(buf)?;
        let ring = usize::try_from(self.delta_words).ok()?.checked_mul(8)?;
        let ring_at = buf1_at.checked_add(buf)?;
        // The ring's words need not end on a cache line; the health table's entries start on one.
        let health_at = ring_at.checked_add(ring)?.checked_next_multiple_of(64)?;
        let health = usize::try_from(self.real_slots).ok()?.checked_mul(128)?.checked_add(64)?;
        Some([0, real_at, buf0_at, buf1_at, ring_at, health_at, health_at.checked_add(health)?])
    }

    /// Bytes of the tables (`None`: too large to address).
    pub fn bytes(&self) -> Option<usize> {
        self.offsets().map(|o| o[6])
    }

    fn of(layout: &Layout) -> TableSizes {
        let h = &layout.header;
        TableSizes {
            workers: h.table_workers,
            service_slots: h.service_slots,
            real_slots: h.real_slots,
            config_words: h.config_words,
            delta_words: h.delta_words,
        }
    }
}

/// A mapped region holding one [`Layout`] and the tables after it.
#[derive(Debug)]
pub struct Shm {
    map: MmapRaw,
    path: PathBuf,
    /// The tables' sizes (from the header, checked against the file's length).
    sizes: TableSizes,
    /// Their offsets ([`TableSizes::offsets`]).
    offsets: [usize; 7],
}

impl Shm {
    /// Creates (or replaces) the file at `path` with tables of `sizes`, lets `init` fill the
    /// layout (and the tables, through the [`Shm`] it also gets: it may write their atomics,
    /// such as the first generation), then publishes it. `init` sees an all-zero layout whose
    /// header magic and sizes are already set.
    ///
    /// # Errors
    /// [`ShmError::Io`] when the file cannot be created, sized or mapped;
    /// [`ShmError::Invalid`] for tables too large to address.
    pub fn create(path: &Path, sizes: TableSizes, init: impl FnOnce(&mut Layout, Tables<'_>)) -> Result<Shm, ShmError> {
        let io = |source| ShmError::Io { path: path.to_owned(), source };
        let offsets = sizes.offsets().ok_or_else(|| ShmError::Invalid {
            path: path.to_owned(),
            what: format!("tables of {sizes:?} are too large"),
        })?;
        // A stale file of a dead instance may exist; the caller holds the instance lock, so
        // replacing it is safe. Unlink first so a process still mapping the old one keeps it.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io)?;
        let total = std::mem::size_of::<Layout>() + offsets[6];
        file.set_len(total as u64).map_err(io)?;
        let map = MmapRaw::map_raw(&file).map_err(io)?;
        let shm = Shm { map, path: path.to_owned(), sizes, offsets };
        {
            let ptr = shm.map.as_mut_ptr().cast::<Layout>();
            // SAFETY: the mapping is at least `size_of::<Layout>()` bytes, page-aligned (so
            // aligned for Layout), zero-filled by set_len; all-zero bytes are a valid Layout
            // (integers, atomics and byte arrays only). No other process reads fields other
            // than the version before it is published, and the version is 0 until then, so
            // this exclusive reference aliases nothing that is read. The tables handed to
            // `init` lie after the layout: no overlap.
            let layout = unsafe { &mut *ptr };
            layout.header.magic = MAGIC;
            layout.header.header_size = std::mem::size_of::<crate::Header>() as u32;
            layout.header.total_size = total as u64;
            layout.header.mailbox_offset = std::mem::offset_of!(Layout, mailbox) as u64;
            layout.header.mailbox_size = crate::MAILBOX_BYTES as u64;
            layout.header.table_workers = sizes.workers;
            layout.header.service_slots = sizes.service_slots;
            layout.header.real_slots = sizes.real_slots;
            layout.header.config_words = sizes.config_words;
            layout.header.delta_words = sizes.delta_words;
            init(layout, Tables { shm: &shm });
        }
        shm.layout().header.layout_version.store(LAYOUT_VERSION, Ordering::Release);
        Ok(shm)
    }

    /// Opens a published region.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] when there is no such file, [`ShmError::VersionMismatch`] when
    /// it was made by another layout version, [`ShmError::Invalid`] / [`ShmError::NotReady`]
    /// for a foreign, truncated or unfinished file.
    pub fn open(path: &Path) -> Result<Shm, ShmError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShmError::NotFound { path: path.to_owned() })
            }
            Err(source) => return Err(ShmError::Io { path: path.to_owned(), source }),
        };
        Self::open_file(path, &file)
    }

    fn open_file(path: &Path, file: &File) -> Result<Shm, ShmError> {
        let io = |source| ShmError::Io { path: path.to_owned(), source };
        let invalid = |what: String| ShmError::Invalid { path: path.to_owned(), what };
        let len = file.metadata().map_err(io)?.len();
        // Check the header first, with plain reads, so a region of another version is named
        // as such even when its size differs.
        let head_len = std::mem::size_of::<crate::Header>() as u64;
        if len < head_len {
            return Err(invalid(format!("{len} bytes, shorter than a header")));
        }
        let map = MmapRaw::map_raw(file).map_err(io)?;
        let base = map.as_ptr();
        // The version first (acquire): once it is published, the magic written before it is
        // visible; before that, nothing else may be read.
        // SAFETY: layout_version is an AtomicU32 at offset 8 in every layout version (pinned
        // by the const asserts), inside the checked length, 4-byte aligned.
        let version = unsafe { &*base.add(8).cast::<std::sync::atomic::AtomicU32>() }.load(Ordering::Acquire);
        // SAFETY: the mapping holds at least a Header; magic is a plain u64 at offset 0 of a
        // page-aligned map, written before the version was published (or never, for a foreign
        // file, which then fails the check).
        let magic = unsafe { std::ptr::read_volatile(base.cast::<u64>()) };
        if version == 0 && (magic == 0 || magic == MAGIC) {
            return Err(ShmError::NotReady { path: path.to_owned() });
        }
        if magic != MAGIC {
            return Err(invalid(format!("magic {magic:#018x}")));
        }
        if version != LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch { path: path.to_owned(), found: version, expected: LAYOUT_VERSION });
        }
        let layout_len = std::mem::size_of::<Layout>();
        if len < layout_len as u64 {
            return Err(invalid(format!("{len} bytes, shorter than a layout ({layout_len})")));
        }
        // SAFETY: as in `layout()`: the mapping holds a whole Layout (checked just above),
        // page-aligned; its plain header fields were written before the version (acquired
        // above) was published.
        let sizes = TableSizes::of(unsafe { &*map.as_ptr().cast::<Layout>() });
        let offsets = sizes.offsets().ok_or_else(|| invalid(format!("tables of {sizes:?} are too large")))?;
        let expected = (layout_len + offsets[6]) as u64;
        if len != expected {
            return Err(invalid(format!("{len} bytes, expected {expected} for tables of {sizes:?}")));
        }
        Ok(Shm { map, path: path.to_owned(), sizes, offsets })
    }

    /// The shared layout.
    pub fn layout(&self) -> &Layout {
        // SAFETY: the mapping is at least size_of::<Layout>() bytes (checked at open, set at
        // create), page-aligned, and stays mapped as long as `self`. Every field that changes
        // after publication is an atomic, and the others are only written before it (see
        // module docs), so shared references never observe a data race. Any bit pattern is a
        // valid Layout, so a misbehaving writer cannot make this reference invalid.
        unsafe { &*self.map.as_ptr().cast::<Layout>() }
    }

    /// The sizes of the tables after the layout.
    pub fn sizes(&self) -> TableSizes {
        self.sizes
    }

    /// `n` values of `T` at `offset` bytes past the end of the layout.
    fn table<T>(&self, offset: usize, n: usize) -> &[T] {
        let at = std::mem::size_of::<Layout>() + offset;
        assert!(
            at.is_multiple_of(std::mem::align_of::<T>()) && at + n * std::mem::size_of::<T>() <= self.map.len(),
            "a table inside the mapping"
        );
        // SAFETY: the range is inside the mapping (asserted; the file's length was checked
        // against the sizes at open and set from them at create), aligned for T (asserted:
        // the layout's size and every offset are multiples of 64, the mapping page-aligned),
        // and lives as long as `self`. Callers use T = atomics or structs of atomics only, for
        // which any bit pattern is valid and shared access from several processes is sound.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at).cast::<T>(), n) }
    }

    /// Worker slot `slot`'s service counters (empty past the tables' workers).
    pub fn service_counters(&self, slot: usize) -> &[ServiceCounters] {
        if slot >= self.sizes.workers as usize {
            return &[];
        }
        let n = self.sizes.service_slots as usize;
        self.table(self.offsets[0] + slot * n * 64, n)
    }

    /// Worker slot `slot`'s real-server counters (empty past the tables' workers).
    pub fn real_counters(&self, slot: usize) -> &[RealCounters] {
        if slot >= self.sizes.workers as usize {
            return &[];
        }
        let n = self.sizes.real_slots as usize;
        self.table(self.offsets[1] + slot * n * 64, n)
    }

    /// The configuration generations: the layout's area and the payloads.
    pub fn generations(&self) -> Generations<'_> {
        Generations::new(&self.layout().config, Tables { shm: self }.config_words())
    }

    /// The health checker's header and its table, one entry per real-server slot
    /// ([`crate::health`]).
    pub fn health(&self) -> (&crate::health::HealthHeader, &[crate::health::HealthEntry]) {
        let at = self.offsets[5];
        let n = self.sizes.real_slots as usize;
        (&self.table::<crate::health::HealthHeader>(at, 1)[0], self.table(at + 64, n))
    }

    /// The file backing the region.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (the mapping stays valid until dropped).
    ///
    /// # Errors
    /// The I/O error from unlink, unless the file is already gone.
    pub fn unlink(&self) -> Result<(), ShmError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ShmError::Io { path: self.path.clone(), source }),
        }
    }
}

/// The tables of a region being created, for its `init`.
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    shm: &'a Shm,
}

impl<'a> Tables<'a> {
    /// The configuration snapshot buffers' and delta ring's payloads (for
    /// [`Generations::new`] with the area of the layout being filled).
    pub fn config_words(&self) -> crate::config::Payloads<'a> {
        let n = self.shm.sizes.config_words as usize;
        let ring = self.shm.sizes.delta_words as usize;
        crate::config::Payloads {
            snapshots: [self.shm.table(self.shm.offsets[2], n), self.shm.table(self.shm.offsets[3], n)],
            deltas: self.shm.table(self.shm.offsets[4], ring),
        }
    }
}

// SAFETY: the mapping is shared memory accessed only through atomics after publication; the
// handle can move between threads.
unsafe impl Send for Shm {}
// SAFETY: as above; `layout()` hands out shared references to atomics and immutable data.
unsafe impl Sync for Shm {}

/// A connection table shard file (see [`crate::conn`]), mapped by its owner (the worker of
/// its slot, which alone writes it) or by readers of its header.
#[derive(Debug)]
pub struct ConnShardFile {
    map: MmapRaw,
    path: PathBuf,
    capacity: u32,
    wheel_slots: u32,
}

/// The parts of a mapped shard, for its single writer.
#[allow(missing_debug_implementations)]
pub struct ConnParts<'a> {
    /// Header: geometry (fixed), sequence word, counters (atomics).
    pub header: &'a ConnShardHeader,
    /// Hash chain heads.
    pub buckets: &'a mut [u32],
    /// Timer wheel slot heads.
    pub wheel: &'a mut [u32],
    /// Entries.
    pub entries: &'a mut [ConnEntry],
}

impl ConnShardFile {
    /// Creates (or replaces) a zeroed shard file of `capacity` entries (a power of two) and
    /// `wheel_slots` slots (a power of two), publishing its header.
    ///
    /// # Errors
    /// [`ShmError::Io`] when the file cannot be created, sized or mapped;
    /// [`ShmError::Invalid`] for a geometry that is not a power of two.
    pub fn create(
        path: &Path,
        slot: u32,
        capacity: u32,
        wheel_slots: u32,
        tick_us: u32,
        seed: u64,
    ) -> Result<Self, ShmError> {
        let io = |source| ShmError::Io { path: path.to_owned(), source };
        if !capacity.is_power_of_two() || !wheel_slots.is_power_of_two() || capacity > 1 << 28 {
            return Err(ShmError::Invalid {
                path: path.to_owned(),
                what: format!(
                    "capacity {capacity} and wheel slots {wheel_slots} must be powers of two (capacity <= 2^28)"
                ),
            });
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io)?;
        file.set_len(conn_shard_bytes(capacity, wheel_slots) as u64).map_err(io)?;
        let map = MmapRaw::map_raw(&file).map_err(io)?;
        {
            // SAFETY: the mapping is conn_shard_bytes() long, page-aligned and zero-filled; an
            // all-zero ConnShardHeader is valid (integers and atomics); nothing reads the
            // header's plain fields before the version below is published.
            let h = unsafe { &mut *map.as_mut_ptr().cast::<ConnShardHeader>() };
            h.magic = CONN_MAGIC;
            h.slot = slot;
            h.capacity = capacity;
            h.n_buckets = BUCKETS_PER_ENTRY * capacity;
            h.wheel_slots = wheel_slots;
            h.tick_us = tick_us;
            h.seed = seed;
        }
        let shard = ConnShardFile { map, path: path.to_owned(), capacity, wheel_slots };
        shard.header().layout_version.store(CONN_LAYOUT_VERSION, Ordering::Release);
        Ok(shard)
    }

    /// Opens a published shard file, checking magic, version and size.
    ///
    /// # Errors
    /// [`ShmError::NotFound`], [`ShmError::VersionMismatch`], [`ShmError::Invalid`],
    /// [`ShmError::NotReady`].
    pub fn open(path: &Path) -> Result<Self, ShmError> {
        let io = |source| ShmError::Io { path: path.to_owned(), source };
        let invalid = |what: String| ShmError::Invalid { path: path.to_owned(), what };
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ShmError::NotFound { path: path.to_owned() })
            }
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        if len < std::mem::size_of::<ConnShardHeader>() as u64 {
            return Err(invalid(format!("{len} bytes, shorter than a shard header")));
        }
        let map = MmapRaw::map_raw(&file).map_err(io)?;
        // SAFETY: the mapping holds at least a header (checked), page-aligned; any bit pattern
        // is a valid header; fields are read after the version's acquire load.
        let h = unsafe { &*map.as_ptr().cast::<ConnShardHeader>() };
        let version = h.layout_version.load(Ordering::Acquire);
        if version == 0 {
            return Err(ShmError::NotReady { path: path.to_owned() });
        }
        if h.magic != CONN_MAGIC {
            return Err(invalid(format!("magic {:#018x}", h.magic)));
        }
        if version != CONN_LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch {
                path: path.to_owned(),
                found: version,
                expected: CONN_LAYOUT_VERSION,
            });
        }
        let (capacity, wheel_slots) = (h.capacity, h.wheel_slots);
        if !capacity.is_power_of_two()
            || !wheel_slots.is_power_of_two()
            || h.n_buckets != BUCKETS_PER_ENTRY * capacity
            || len != conn_shard_bytes(capacity, wheel_slots) as u64
        {
            return Err(invalid(format!("geometry {capacity}/{wheel_slots} does not match its {len} bytes")));
        }
        Ok(ConnShardFile { map, path: path.to_owned(), capacity, wheel_slots })
    }

    /// The header (geometry, sequence word, counters).
    pub fn header(&self) -> &ConnShardHeader {
        // SAFETY: the mapping starts with a header (size checked at create/open) and lives as
        // long as self; its changing fields are atomics.
        unsafe { &*self.map.as_ptr().cast::<ConnShardHeader>() }
    }

    /// The parts, for the shard's single writer.
    ///
    /// The exclusivity of `&mut self` holds within this process; across processes it is the
    /// slot protocol (only the worker that claimed slot `header().slot` calls this).
    pub fn parts_mut(&mut self) -> ConnParts<'_> {
        let (b_off, w_off, e_off) = conn_shard_offsets(self.capacity, self.wheel_slots);
        let base = self.map.as_mut_ptr();
        // SAFETY: the offsets and lengths come from the geometry validated against the file
        // size, so the four regions lie inside the mapping and do not overlap (header <
        // buckets < wheel < entries, each ending before the next starts); entries start on
        // a 64-byte boundary as ConnEntry needs; u32 regions are 4-aligned; any bit pattern
        // is valid for u32 and for ConnEntry (integers and byte arrays). `&mut self` makes
        // the slices exclusive in this process; the slot protocol, across processes.
        unsafe {
            ConnParts {
                header: &*base.cast::<ConnShardHeader>(),
                buckets: std::slice::from_raw_parts_mut(
                    base.add(b_off).cast::<u32>(),
                    (BUCKETS_PER_ENTRY * self.capacity) as usize,
                ),
                wheel: std::slice::from_raw_parts_mut(base.add(w_off).cast::<u32>(), self.wheel_slots as usize),
                entries: std::slice::from_raw_parts_mut(base.add(e_off).cast::<ConnEntry>(), self.capacity as usize),
            }
        }
    }

    /// A copy of entry `idx` as it is now, for readers other than the shard's writer
    /// (`dpvsctl conn list`): the writer may change it meanwhile, so the copy can mix two
    /// states of one entry (it is shown, never acted on). `None` past the capacity.
    pub fn entry_snapshot(&self, idx: u32) -> Option<ConnEntry> {
        if idx >= self.capacity {
            return None;
        }
        let (_, _, e_off) = conn_shard_offsets(self.capacity, self.wheel_slots);
        // SAFETY: idx < capacity, and the entries region (validated against the file size at
        // create/open) holds `capacity` ConnEntry at e_off, 64-byte aligned; any bit pattern
        // is a valid ConnEntry (integers and byte arrays). The volatile read copies the bytes
        // without assuming they do not change under it (another process writes them).
        Some(unsafe { std::ptr::read_volatile(self.map.as_ptr().add(e_off).cast::<ConnEntry>().add(idx as usize)) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// SAFETY: the handle owns a shared mapping; moving it between threads is fine, and `&mut`
// access to the parts is only through `&mut self`.
unsafe impl Send for ConnShardFile {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Name, WorkerState};

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("shm-layout-test-{}-{name}", std::process::id()))
    }

    #[test]
    fn create_then_open_sees_fields() {
        let p = tmp("roundtrip");
        let shm = Shm::create(&p, TableSizes::SMALL, |l, _| {
            l.header.instance = Name::new("lb1");
            l.header.n_workers = 2;
            l.workers[1].lcore = 7;
        })
        .unwrap();
        shm.layout().workers[1].state.store(WorkerState::Running as u32, Ordering::Release);
        let other = Shm::open(&p).unwrap();
        assert_eq!(other.layout().header.instance.as_str(), "lb1");
        assert_eq!(other.layout().workers().len(), 2);
        assert_eq!(other.layout().workers[1].lcore, 7);
        assert_eq!(other.layout().workers[1].state(), WorkerState::Running);
        shm.unlink().unwrap();
    }

    #[test]
    fn the_health_table_starts_on_a_cache_line_whatever_the_ring_size() {
        let p = tmp("odd-ring");
        // A delta ring of an odd number of words (limits give such sizes).
        let sizes = TableSizes { delta_words: 128 * 1024 + 3, ..TableSizes::SMALL };
        let shm = Shm::create(&p, sizes, |_, _| {}).unwrap();
        let other = Shm::open(&p).unwrap();
        assert_eq!((other.health().0.pid.load(Ordering::Relaxed), other.health().1.len()), (0, 1024));
        shm.health().1[1023].key.store(1, Ordering::Relaxed);
        shm.unlink().unwrap();
    }

    #[test]
    fn wrong_version_is_a_typed_error_naming_both() {
        let p = tmp("version");
        let shm = Shm::create(&p, TableSizes::SMALL, |_, _| {}).unwrap();
        shm.layout().header.layout_version.store(LAYOUT_VERSION + 41, Ordering::Release);
        match Shm::open(&p) {
            Err(ShmError::VersionMismatch { found, expected, .. }) => {
                assert_eq!(found, LAYOUT_VERSION + 41);
                assert_eq!(expected, LAYOUT_VERSION);
            }
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
        let msg = Shm::open(&p).unwrap_err().to_string();
        assert!(msg.contains(&format!("layout version {}", LAYOUT_VERSION + 41)), "{msg}");
        assert!(msg.contains(&format!("expects {LAYOUT_VERSION}")), "{msg}");
        shm.unlink().unwrap();
    }

    #[test]
    fn unpublished_missing_and_foreign_files_are_refused() {
        let p = tmp("foreign");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        assert!(matches!(Shm::open(&p), Err(ShmError::Invalid { .. })));
        std::fs::write(&p, [1u8; 3]).unwrap();
        assert!(matches!(Shm::open(&p), Err(ShmError::Invalid { .. })));
        let shm = Shm::create(&p, TableSizes::SMALL, |_, _| {}).unwrap();
        shm.layout().header.layout_version.store(0, Ordering::Release);
        assert!(matches!(Shm::open(&p), Err(ShmError::NotReady { .. })));
        shm.unlink().unwrap();
        assert!(matches!(Shm::open(&p), Err(ShmError::NotFound { .. })));
    }

    #[test]
    fn names_truncate_on_char_boundaries() {
        let n: Name<8> = Name::new("abcdefé");
        assert_eq!(n.as_str(), "abcdef");
        let n: Name<8> = Name::new("ab");
        assert_eq!(n.as_str(), "ab");
    }
}
