//! Configuration generations in shared memory.
//!
//! The runtime configuration (addresses, neighbours, services) is published as numbered
//! generations. The primary encodes generation `g` (versioned bincode, built by the
//! `mailbox::generation` module) into buffer `g % 2` (its header here, its payload words in
//! the tables after the layout, sized by the configuration's `[limits]`: [`Generations`]
//! reaches both), then stores `g` in
//! [`ConfigArea::generation`] (SeqCst): one store switches every reader to it. Payload bytes
//! travel in words of relaxed atomics with a length and a checksum, like the mailbox's, so a
//! reader racing a writer sees a bad checksum, never a data race.
//!
//! Buffer reuse: generation `g + 1` overwrites the buffer of `g - 1`. A worker announces the
//! generation it is about to read in its slot (`cfg_reading`, SeqCst), re-reads
//! [`ConfigArea::generation`], and reads the buffer only if it is unchanged; the primary writes
//! a buffer only when no slot announces the generation it holds. The primary also waits for
//! every polling worker to acknowledge `g` (`cfg_applied`) before it publishes `g + 1`, so
//! every worker applies every generation.

use std::sync::atomic::AtomicU64;

/// Bytes of the startup configuration text kept for `config dump`.
pub const STATIC_TEXT_BYTES: usize = 64 * 1024;

/// The header of one generation's encoded configuration (its payload: [`Generations`]).
#[repr(C, align(64))]
pub struct ConfigBuf {
    /// Generation it holds (0: none or being rewritten); written by the primary.
    pub generation: AtomicU64,
    /// Payload length, bytes.
    pub len: AtomicU64,
    /// Checksum of the generation number and payload (FNV-1a, 64 bit).
    pub checksum: AtomicU64,
    /// Reserved.
    pub _pad: [u64; 5],
}

/// Generations, and the text the instance started from.
#[repr(C, align(64))]
pub struct ConfigArea {
    /// The current generation (1 from start-up on); its buffer is `bufs[generation % 2]`.
    /// Written by the primary (SeqCst).
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
    /// The two generation buffers' headers.
    pub bufs: [ConfigBuf; 2],
}

impl ConfigArea {
    /// The startup configuration text.
    pub fn static_text(&self) -> std::borrow::Cow<'_, str> {
        let n = (self.static_len as usize).min(STATIC_TEXT_BYTES);
        String::from_utf8_lossy(&self.static_text[..n])
    }
}

/// The generation buffers: the area's headers and each buffer's payload words (the bytes,
/// eight to a word, little-endian), wherever those live (the tables after the layout, through
/// `Shm::generations`, or the heap in tests).
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct Generations<'a> {
    /// The area: current generation, times, static text, buffer headers.
    pub area: &'a ConfigArea,
    words: [&'a [AtomicU64]; 2],
}

impl<'a> Generations<'a> {
    /// The area with its two payloads, of equal length.
    ///
    /// # Panics
    /// If the payloads differ in length.
    pub fn new(area: &'a ConfigArea, words: [&'a [AtomicU64]; 2]) -> Self {
        assert_eq!(words[0].len(), words[1].len(), "generation buffers of one size");
        Generations { area, words }
    }

    /// The header and payload of generation `g`'s buffer.
    pub fn buf(&self, g: u64) -> (&'a ConfigBuf, &'a [AtomicU64]) {
        let i = (g % 2) as usize;
        (&self.area.bufs[i], self.words[i])
    }

    /// Most payload bytes a buffer holds.
    pub fn max_payload(&self) -> usize {
        self.words[0].len() * 8
    }
}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<ConfigBuf>() == 64);
    assert!(size_of::<ConfigArea>() == 64 + STATIC_TEXT_BYTES + 2 * size_of::<ConfigBuf>());
};
