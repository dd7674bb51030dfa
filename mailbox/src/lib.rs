//! The control mailbox: how `dpvsctl` processes talk to the primary through shared memory.
//!
//! [`Client::call`] puts a request in a free slot of the queue ([`shm_layout::mailbox`]) and
//! waits for the reply in the same slot; [`Server`] (the primary) takes requests in order,
//! replies now or later, gives up on claims whose producer never published them, and reclaims
//! replies no one collected. Nothing can be left locked: every state change is a CAS on a
//! slot's position-tagged sequence word, so a client killed at any point costs at most one
//! slot for a bounded time.
//!
//! [`proto`] is what travels in the slots: versioned, bincode-encoded requests and responses.
#![forbid(unsafe_code)]

mod client;
pub mod generation;
pub mod proto;
mod server;

pub use client::{CallError, Client};
pub use server::{Server, Taken};

use std::sync::atomic::{AtomicU64, Ordering};

/// Prepares a fresh (zeroed) mailbox: slot `i` free for position `i`. The primary calls it
/// before it publishes the shared memory.
pub fn init(mb: &shm_layout::mailbox::Mailbox) {
    for (i, slot) in mb.slots.iter().enumerate() {
        slot.seq.store(i as u64, Ordering::Relaxed);
    }
    mb.enqueue_pos.store(0, Ordering::Relaxed);
    mb.dequeue_pos.store(0, Ordering::Relaxed);
}

/// Checksum of a payload for queue position `pos` (FNV-1a, 32 bits, over the position and the
/// bytes): catches a late writer's bytes in a reused slot, even a whole consistent request
/// written for an earlier lap of the slot.
pub fn checksum(pos: u64, bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in pos.to_le_bytes().iter().chain(bytes) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Writes `bytes` into payload words (little-endian, relaxed).
fn write_words(words: &[AtomicU64], bytes: &[u8]) {
    for (w, chunk) in words.iter().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// Reads `len` bytes out of payload words.
fn read_words(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for w in words.iter().take(len.div_ceil(8)) {
        out.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    out.truncate(len);
    out
}
