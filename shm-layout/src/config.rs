//! Configuration generations in shared memory.
//!
//! The runtime configuration (addresses, neighbours, services) is published as numbered
//! generations; one SeqCst store of [`ConfigArea::generation`] switches every reader to the
//! next. What a generation holds (versioned bincode, built by the `mailbox::generation`
//! module) is written before that store, in one of two places:
//!
//! - a **delta** against the generation before it (the services it adds, replaces or removes,
//!   and the small tables it changes) in the delta ring: generation `g`'s header in slot
//!   `g % DELTA_SLOTS` ([`Generations::delta`]), its bytes in the ring's arena, written one
//!   after the other and wrapping around ([`ConfigArea::arena_head`]: bytes written since
//!   start). Every generation has its ring entry; one that is not a delta says so, and its
//!   reader takes the snapshot;
//! - a **snapshot** (the whole configuration) in one of the two snapshot buffers
//!   ([`Generations::buf`]); [`ConfigArea::snapshot_buf`] names the newer. The primary writes a
//!   snapshot for a generation too large for a delta (a reload, `ipvsadm -R`) and, off the
//!   change's path, of the current generation once the ring holds many deltas past the last
//!   one.
//!
//! A worker that applied `g - 1` applies `g`'s delta; any other reader (a starting worker,
//! `dpvsctl`) takes the newest snapshot and the deltas after it. The primary writes a
//! snapshot before the ring could lap the one before it.
//!
//! Payload bytes travel in words of relaxed atomics with a length and a checksum, like the
//! mailbox's, so a reader racing a writer sees a bad checksum (or the header's generation
//! moved), never a data race. A snapshot buffer is not overwritten while a reader announces
//! its generation in a slot (`cfg_reading`, SeqCst). The ring's writer moves the arena's head
//! before it writes, so a reader that finds the head more than an arena past its entry after
//! copying it knows the copy may be torn; a polling worker is never lapped, as the primary
//! waits for every polling worker to acknowledge each generation (`cfg_applied`) before it
//! publishes the next.

use std::sync::atomic::AtomicU64;

/// Bytes of the startup configuration text kept for `config dump`.
pub const STATIC_TEXT_BYTES: usize = 64 * 1024;

/// Entries of the delta ring: at most the generations a reader of the newest snapshot may
/// have to replay after it (the arena's size bounds them too).
pub const DELTA_SLOTS: usize = 1024;

/// The header of one encoded snapshot or delta (its payload: [`Generations`]).
#[repr(C, align(64))]
pub struct ConfigBuf {
    /// Generation it holds (0: none or being rewritten); written by the primary.
    pub generation: AtomicU64,
    /// Payload length, bytes.
    pub len: AtomicU64,
    /// Checksum of the generation number and payload.
    pub checksum: AtomicU64,
    /// Where the payload starts in the ring's arena (bytes written before it; a delta's only).
    pub offset: AtomicU64,
    /// Reserved.
    pub _pad: [u64; 4],
}

/// Generations, and the text the instance started from.
#[repr(C, align(64))]
pub struct ConfigArea {
    /// The current generation (1 from start-up on). Written by the primary (SeqCst).
    pub generation: AtomicU64,
    /// CLOCK_MONOTONIC when the current generation was published, ns; written by the primary.
    pub published_ns: AtomicU64,
    /// CLOCK_MONOTONIC when every polling worker had acknowledged it, ns (0: not yet).
    pub acked_ns: AtomicU64,
    /// Changes applied since start (each command that changed something; a reload is one).
    pub changes: AtomicU64,
    /// Length of `static_text`.
    pub static_len: u64,
    /// Counter-zeroing requests (`ipvsadm -Z`) made since start; each worker zeroes its own
    /// tables when it sees this move and records it in `WorkerSlot::zero_applied`. Written by
    /// the primary (Release) after `zero_key`.
    pub zero_epoch: AtomicU64,
    /// What the latest request zeroes: one service's counters by key
    /// (`ServiceCounters::key_of`), or every service's (0). Written by the primary.
    pub zero_key: AtomicU64,
    /// Bumped (fetch_add) by a worker after it changes its table of learned neighbours
    /// (`Layout::learned`), so that every worker resolves its real servers' next hops again.
    pub neigh_epoch: AtomicU64,
    /// The configuration file the instance started from (TOML, UTF-8), so that `config
    /// dump` can print a whole file; written before the layout is published, never changed.
    pub static_text: [u8; STATIC_TEXT_BYTES],
    /// The two snapshot buffers' headers.
    pub bufs: [ConfigBuf; 2],
    /// Which of `bufs` holds the newest snapshot (0 or 1); written by the primary (SeqCst)
    /// after the buffer.
    pub snapshot_buf: AtomicU64,
    /// Bytes written to the ring's arena since start (a multiple of 8): the next entry goes
    /// there (modulo the arena's size). Written by the primary (SeqCst) before the entry.
    pub arena_head: AtomicU64,
    pub _pad: [u64; 6],
    /// The delta ring's headers: generation `g` in `deltas[g % DELTA_SLOTS]`.
    pub deltas: [ConfigBuf; DELTA_SLOTS],
}

impl ConfigArea {
    /// The startup configuration text.
    pub fn static_text(&self) -> std::borrow::Cow<'_, str> {
        let n = (self.static_len as usize).min(STATIC_TEXT_BYTES);
        String::from_utf8_lossy(&self.static_text[..n])
    }
}

/// The payload words of the snapshot buffers and of the delta ring's arena (the bytes, eight
/// to a word, little-endian), wherever those live (the tables after the layout, through
/// `Shm::generations`, or the heap in tests).
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct Payloads<'a> {
    /// The two snapshot buffers', of equal length.
    pub snapshots: [&'a [AtomicU64]; 2],
    /// The ring's arena.
    pub deltas: &'a [AtomicU64],
}

/// The generations: the area's headers and their payloads.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct Generations<'a> {
    /// The area: current generation, times, static text, buffer headers.
    pub area: &'a ConfigArea,
    words: Payloads<'a>,
}

impl<'a> Generations<'a> {
    /// The area with its payloads.
    ///
    /// # Panics
    /// If the snapshot payloads differ in length.
    pub fn new(area: &'a ConfigArea, words: Payloads<'a>) -> Self {
        assert_eq!(words.snapshots[0].len(), words.snapshots[1].len(), "snapshot buffers of one size");
        Generations { area, words }
    }

    /// The header and payload of snapshot buffer `i` (0 or 1).
    pub fn buf(&self, i: usize) -> (&'a ConfigBuf, &'a [AtomicU64]) {
        (&self.area.bufs[i % 2], self.words.snapshots[i % 2])
    }

    /// The header of generation `g`'s slot in the delta ring.
    pub fn delta(&self, g: u64) -> &'a ConfigBuf {
        &self.area.deltas[(g % DELTA_SLOTS as u64) as usize]
    }

    /// The ring's arena.
    pub fn arena(&self) -> &'a [AtomicU64] {
        self.words.deltas
    }

    /// Most payload bytes a snapshot buffer holds.
    pub fn max_payload(&self) -> usize {
        self.words.snapshots[0].len() * 8
    }

    /// Most payload bytes one delta takes: a quarter of the arena.
    pub fn max_delta(&self) -> usize {
        self.words.deltas.len() * 2
    }
}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<ConfigBuf>() == 64);
    assert!(size_of::<ConfigArea>() == 64 + STATIC_TEXT_BYTES + (2 + 1 + DELTA_SLOTS) * size_of::<ConfigBuf>());
};
