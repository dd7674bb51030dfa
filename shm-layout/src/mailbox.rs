//! The control mailbox: a bounded multi-producer, single-consumer queue of fixed-size slots
//! (D. Vyukov's bounded queue, with a reply in each slot), shared by every `dpvsctl` process
//! (producers) and the primary (consumer). The algorithm is in the `mailbox` crate; this is
//! the memory.
//!
//! Each slot's `seq` says what state it is in for queue position `pos` (slot `pos % SLOTS`):
//!
//! ```text
//!  seq == pos        free for position pos (a producer may claim it by advancing enqueue_pos)
//!  seq == pos + 1    request published, waiting for the primary
//!  seq == pos + 2    reply written, waiting for its producer
//!  seq == pos + SLOTS   released: free for position pos + SLOTS (the next lap)
//! ```
//!
//! Payloads are words of relaxed atomics: a producer that is late (the primary gave its
//! claim up) can still write into a slot that another producer now owns, which is a logic
//! error caught by the payload checksum, never a data race in the Rust sense.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// Slots in the mailbox.
pub const MAIL_SLOTS: usize = 56;
/// Request payload capacity, bytes.
pub const REQUEST_BYTES: usize = 1984;
/// Reply payload capacity, bytes.
pub const REPLY_BYTES: usize = 2560;

/// One slot: a request, its reply, and their bookkeeping.
#[repr(C, align(64))]
pub struct MailSlot {
    /// Position-tagged state, see the module docs.
    pub seq: AtomicU64,
    /// Request id chosen by the producer (echoed in the reply).
    pub request_id: AtomicU64,
    /// Pid of the producer.
    pub client_pid: AtomicU32,
    /// Request length, bytes.
    pub request_len: AtomicU32,
    /// Checksum of the request bytes (see `mailbox::checksum`).
    pub request_sum: AtomicU32,
    /// Reply length, bytes.
    pub reply_len: AtomicU32,
    /// Checksum of the reply bytes.
    pub reply_sum: AtomicU32,
    /// Bumped by the primary after it answers (futex word: the client waits on it).
    pub bell: AtomicU32,
    /// CLOCK_MONOTONIC when the reply was written, ns (for reclaiming uncollected replies).
    pub replied_ns: AtomicU64,
    /// Reserved.
    pub reserved: [AtomicU64; 2],
    /// Request bytes, little-endian words.
    pub request: [AtomicU64; REQUEST_BYTES / 8],
    /// Reply bytes, little-endian words.
    pub reply: [AtomicU64; REPLY_BYTES / 8],
}

/// The mailbox region.
#[repr(C, align(64))]
pub struct Mailbox {
    /// Next position a producer claims (contended by producers).
    pub enqueue_pos: AtomicU64,
    _pad0: [u64; 7],
    /// Next position the primary serves (written by the primary only).
    pub dequeue_pos: AtomicU64,
    _pad1: [u64; 7],
    /// Requests served since the primary started.
    pub served: AtomicU64,
    /// Claims the primary gave up (a producer that never published).
    pub abandoned: AtomicU64,
    /// Replies reclaimed because no one collected them.
    pub reclaimed: AtomicU64,
    /// Requests refused (bad checksum, unknown protocol version, undecodable).
    pub refused: AtomicU64,
    /// Bumped by a client after it publishes a request and by a worker after it acknowledges
    /// a configuration generation (futex word: the primary waits on it between rounds).
    pub doorbell: AtomicU32,
    _pad3: u32,
    _pad2: [u64; 3],
    /// The slots.
    pub slots: [MailSlot; MAIL_SLOTS],
    _tail: [u8; TAIL_BYTES],
}

const SLOT_BYTES: usize = 64 + REQUEST_BYTES + REPLY_BYTES;
const TAIL_BYTES: usize = crate::MAILBOX_BYTES - 192 - MAIL_SLOTS * SLOT_BYTES;

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<MailSlot>() == SLOT_BYTES && SLOT_BYTES.is_multiple_of(64));
    assert!(offset_of!(MailSlot, request) == 64);
    assert!(offset_of!(Mailbox, dequeue_pos) == 64);
    assert!(offset_of!(Mailbox, slots) == 192);
    assert!(size_of::<Mailbox>() == crate::MAILBOX_BYTES);
};

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        f.debug_struct("Mailbox")
            .field("enqueue_pos", &self.enqueue_pos.load(Relaxed))
            .field("dequeue_pos", &self.dequeue_pos.load(Relaxed))
            .field("served", &self.served.load(Relaxed))
            .finish_non_exhaustive()
    }
}
