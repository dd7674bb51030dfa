//! The connection table of one forwarding lcore.
//!
//! A [`Shard`] works on the parts of a shared-memory shard ([`shm_layout::conn`]) that only its
//! lcore writes. Each connection is one entry, found from either direction: inbound by
//! (client, virtual address) and outbound by (real server, local address), through two hash
//! chains that share one bucket array. Expiry runs on a timer wheel: refreshing a
//! connection's timeout is one store (`expires`); the wheel re-files an entry whose deadline
//! moved when it reaches the entry's slot, so nothing ever scans the whole table.
//!
//! Crash safety: every change to the chains, the wheel or the free list happens between two
//! increments of the shard's sequence word (odd = change in progress). A worker that adopts a
//! shard whose word is odd rebuilds the indexes from the entries ([`Shard::adopt`]); entries
//! are marked in use only once fully written.
//!
//! Nothing here allocates; every operation is O(chain length) or, for [`Shard::advance`],
//! bounded by its budget.
#![forbid(unsafe_code)]

mod shard;
pub mod tcp;

pub use shard::{Dir, Full, Hashed, NewConn, Shard, Tuple};

/// IPv4 address in the table's 16-byte form (`::ffff:a.b.c.d`).
pub fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[10] = 0xff;
    b[11] = 0xff;
    b[12..].copy_from_slice(&a);
    b
}
