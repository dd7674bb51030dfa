//! `mh`: Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer", NSDI 2016, section 3.4), weighted as in DPVS `src/ipvs/ip_vs_mh.c` and Katran
//! `MaglevHashV2`.
//!
//! Construction: a lookup table of prime size `M`. Each backend that can take new connections
//! has a permutation of the slots, `offset = h1(id) % M`, `skip = h2(id) % (M - 1) + 1`, slot
//! `k` = `(offset + k * skip) % M` (a full cycle because `M` is prime), where `h1` and `h2` are
//! SipHash-1-3 of the backend's identity key under two fixed keys. The table is filled in
//! rounds: each round every backend adds its weight to a credit, and each backend whose credit
//! reaches the largest weight spends that much credit to claim the next free slot of its
//! permutation. With equal weights this is the paper's round-robin fill; otherwise a backend
//! claims slots in proportion to its weight, interleaved with the others (Katran's V2 scheme;
//! DPVS instead gives each backend `weight / gcd` consecutive turns, scaled down to 6 bits, which
//! loses precision, e.g. 100 vs 101 become equal).
//!
//! Lookup: slot = `SipHash-1-3(FLOW_KEY, source address [‖ source port]) % M`.
//!
//! Invariants:
//! - `M` is prime, larger than the number of backends, and at most [`MAX_TABLE_SIZE`];
//!   [`Scheduler`](crate::Scheduler) rejects anything else when it is built.
//! - The table is full (every slot owned) when at least one backend could take a new
//!   connection at build time, and empty otherwise.
//! - A backend's permutation depends only on its identity key and `M`, and backends take their
//!   turns in the order of their identity keys, so the table depends only on the set of
//!   (identity, weight) pairs, never on slice order. Removing one backend reassigns all of its
//!   slots and, because the fill shifts, a few others (measured in `tests/maglev.rs`: at most
//!   0.61% of `M` for 2..=100 equal backends at `M` = 65537).
//! - Equal weights: slot counts differ by at most one between backends.
//! - Build is O(M log M) probes plus O(M * N) credit steps; a lookup is one hash and one load.

use crate::hash::{sip13, MH_OFFSET_KEY, MH_SKIP_KEY};
use crate::Backend;

/// Largest accepted table size (a 64 MiB table of `u32` owners).
pub const MAX_TABLE_SIZE: u32 = 1 << 24;

/// Whether `n` is prime (trial division; the control path only).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// A built Maglev lookup table: the owning backend index of each slot.
#[derive(Debug, Clone)]
pub struct MaglevTable {
    size: u32,
    slots: Vec<u32>,
}

/// One backend's walk through its permutation during the fill.
struct Walk {
    owner: u32,
    weight: u64,
    credit: u64,
    skip: u32,
    /// The next slot of the permutation to try.
    pos: u32,
}

impl MaglevTable {
    /// Fills a table of `size` slots. `size` must be prime (checked by the caller) and `ids`
    /// has one entry per backend.
    pub(crate) fn build<K: AsRef<[u8]>>(backends: &[Backend], ids: &[K], size: u32) -> Self {
        let m = u64::from(size);
        let mut eligible: Vec<(usize, &[u8])> = backends
            .iter()
            .zip(ids)
            .enumerate()
            .filter(|(_, (b, _))| b.can_take_new())
            .map(|(i, (_, id))| (i, id.as_ref()))
            .collect();
        // The fill takes turns in identity order, not slice order, so the table depends only
        // on the set of (identity, weight) pairs (identities are unique: checked by the caller).
        eligible.sort_unstable_by_key(|&(_, id)| id);
        let mut walks: Vec<Walk> = eligible
            .into_iter()
            .map(|(i, id)| {
                let b = &backends[i];
                Walk {
                    owner: u32::try_from(i).unwrap_or(u32::MAX), // the caller bounds the count
                    weight: u64::from(b.weight),
                    credit: 0,
                    skip: (sip13(MH_SKIP_KEY, id) % (m - 1) + 1) as u32,
                    pos: (sip13(MH_OFFSET_KEY, id) % m) as u32,
                }
            })
            .collect();
        let Some(max_weight) = walks.iter().map(|w| w.weight).max() else {
            return Self { size, slots: Vec::new() };
        };
        const FREE: u32 = u32::MAX;
        let mut slots = vec![FREE; size as usize];
        let mut filled = 0u32;
        // Each round the heaviest backend claims a slot, so this ends within `size` rounds.
        'fill: loop {
            for w in &mut walks {
                w.credit += w.weight;
                if w.credit < max_weight {
                    continue;
                }
                w.credit -= max_weight;
                // A free slot exists (filled < size) and the permutation visits every slot.
                while slots[w.pos as usize] != FREE {
                    w.pos += w.skip;
                    if w.pos >= size {
                        w.pos -= size;
                    }
                }
                slots[w.pos as usize] = w.owner;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
        Self { size, slots }
    }

    /// Table size `M`.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The owning backend index of each slot; empty if no backend could take a new connection
    /// when the table was built.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// The backend index owning `hash % M`, or `None` for an empty table.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        self.slots.get((hash % u64::from(self.size)) as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primality() {
        let primes: Vec<u32> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59]);
        for p in [251, 4093, 16381, 65521, 65537, 131071, 655373, 4_294_967_291] {
            assert!(is_prime(p), "{p}");
        }
        for c in [65535, 65539 * 3, 655371, 4_294_967_295, 65521 * 65537] {
            assert!(!is_prime(c), "{c}");
        }
    }

    #[test]
    fn small_table_is_full_and_each_backend_follows_its_permutation() {
        let b = [Backend::new(1), Backend::new(1), Backend::new(1)];
        let ids = ["a", "b", "c"];
        let t = MaglevTable::build(&b, &ids, 7);
        assert_eq!(t.size(), 7);
        let mut counts = [0; 3];
        for &o in t.slots() {
            counts[o as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<i32>(), 7);
        assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
        // Each backend's first preference is its offset, and the lowest identity claims first.
        let offset = (sip13(MH_OFFSET_KEY, b"a") % 7) as usize;
        assert_eq!(t.slots()[offset], 0);
    }

    #[test]
    fn one_backend_owns_everything_and_none_gives_an_empty_table() {
        let t = MaglevTable::build(&[Backend::new(3)], &["only"], 13);
        assert!(t.slots().iter().all(|&o| o == 0) && t.slots().len() == 13);
        let t = MaglevTable::build(&[Backend::new(0)], &["q"], 13);
        assert!(t.slots().is_empty());
        assert_eq!(t.lookup(5), None);
    }
}
