//! `conhash`: a consistent hashing ring with weighted virtual nodes (DPVS
//! `src/ipvs/ip_vs_conhash.c` over libconhash).
//!
//! Construction: each backend that can take new connections gets `units * 160` virtual nodes,
//! where `units = weight / gcd(weights)` as in DPVS (`weight / weight_gcd * REPLICA`). Node `j`
//! of a backend sits at `SipHash-1-3(RING_KEY, identity ‖ j as u32 LE)` on a 64-bit ring
//! (libconhash uses MD5 of `"<identity>-<j>"`; the hash differs, the construction does not).
//! A flow goes to the first node at or after its hash, wrapping at the top.
//!
//! Invariants:
//! - A backend's node positions depend only on its identity key, never on its slice index or on
//!   the other backends (two nodes at one position go to the lower identity), so the ring
//!   depends only on the set of (identity, weight) pairs, and adding a backend moves only the keys that land on its new nodes
//!   (about `1 / (N + 1)` of them), and every moved key moves to the new backend, as long as
//!   the gcd of the weights (hence every other backend's node count) is unchanged.
//! - The ring holds at most [`MAX_POINTS`] nodes, or 160 per backend if that is more: if the
//!   weights call for more, every backend's units are shifted right by the same amount
//!   (keeping at least one), as DPVS's `mh` does with its `rshift`, so extreme weight ratios
//!   are only approximated. At equal weights the cap is reached at 1639 backends.
//! - A lookup is a binary search over a sorted `Vec<u64>`: no allocation.

use crate::hash::{SipHasher13, RING_KEY};
use crate::rr::gcd_weight;
use crate::Backend;

/// Virtual nodes per weight unit (DPVS `REPLICA`).
pub const REPLICAS_PER_UNIT: u32 = 160;

/// Cap on the ring's virtual nodes (12 bytes each: 3 MiB at the cap).
pub const MAX_POINTS: u64 = 1 << 18;

/// A built ring: node positions, sorted, and the backend index owning each.
#[derive(Debug, Clone, Default)]
pub struct ConhashRing {
    points: Vec<u64>,
    owners: Vec<u32>,
}

impl ConhashRing {
    /// Builds the ring. `ids` has one entry per backend (checked by the caller).
    pub(crate) fn build<K: AsRef<[u8]>>(backends: &[Backend], ids: &[K]) -> Self {
        let g = gcd_weight(backends);
        if g == 0 {
            return Self::default();
        }
        let units = |b: &Backend, shift: u32| u64::from((b.weight / g) >> shift).max(1);
        let eligible = || backends.iter().zip(ids).enumerate().filter(|(_, (b, _))| b.can_take_new());
        let mut shift = 0;
        while shift < 31
            && eligible().map(|(_, (b, _))| units(b, shift)).sum::<u64>() * u64::from(REPLICAS_PER_UNIT) > MAX_POINTS
        {
            shift += 1;
        }
        // Two nodes at one position (which 64-bit positions make vanishingly rare) go to the
        // lower identity, so the ring never depends on slice order.
        let mut rank: Vec<(&[u8], u32)> = Vec::new();
        for (i, (_, id)) in eligible() {
            rank.push((id.as_ref(), u32::try_from(i).unwrap_or(u32::MAX))); // the caller bounds the count
        }
        rank.sort_unstable();
        let mut nodes: Vec<(u64, u32, u32)> = Vec::new();
        for (r, &(id, owner)) in rank.iter().enumerate() {
            let b = &backends[owner as usize];
            let replicas = units(b, shift) * u64::from(REPLICAS_PER_UNIT);
            let mut base = SipHasher13::new(RING_KEY);
            base.write(id);
            for j in 0..replicas {
                let mut h = base.clone();
                h.write(&(j as u32).to_le_bytes());
                nodes.push((h.finish(), r as u32, owner));
            }
        }
        nodes.sort_unstable();
        let points = nodes.iter().map(|n| n.0).collect();
        let owners = nodes.iter().map(|n| n.2).collect();
        Self { points, owners }
    }

    /// The backend index owning `hash`: the first node at or after it, wrapping. `None` for an
    /// empty ring.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        let i = self.points.partition_point(|&p| p < hash);
        let i = if i == self.points.len() { 0 } else { i };
        self.owners.get(i).copied()
    }

    /// Number of virtual nodes on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the ring has no node (no backend could take a new connection when it was built).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    #[test]
    fn nodes_per_backend_follow_weight_over_gcd() {
        let b: Vec<Backend> = [2, 4, 0, 6].iter().map(|&w| Backend::new(w)).collect();
        let ring = ConhashRing::build(&b, &ids(4));
        assert_eq!(ring.len(), (1 + 2 + 3) * 160);
        let count = |i: u32| ring.owners.iter().filter(|&&o| o == i).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [160, 320, 0, 480]);
        assert!(ring.points.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn huge_weight_ratios_are_scaled_under_the_cap() {
        let b = [Backend::new(1), Backend::new(1_000_000)];
        let ring = ConhashRing::build(&b, &ids(2));
        assert!(ring.len() as u64 <= MAX_POINTS + 2 * u64::from(REPLICAS_PER_UNIT), "{}", ring.len());
        let light = ring.owners.iter().filter(|&&o| o == 0).count();
        assert_eq!(light, 160, "the light backend keeps one unit");
    }

    #[test]
    fn lookup_wraps_and_empty_ring_gives_none() {
        let b = [Backend::new(1)];
        let ring = ConhashRing::build(&b, &ids(1));
        assert_eq!(ring.lookup(u64::MAX), Some(0));
        assert_eq!(ring.lookup(0), Some(0));
        let down = ConhashRing::build(&[Backend { available: false, ..Backend::new(1) }], &ids(1));
        assert!(down.is_empty());
        assert_eq!(down.lookup(42), None);
    }

    #[test]
    fn lookup_is_the_first_node_at_or_after() {
        let ring = ConhashRing { points: vec![10, 20, 30], owners: vec![0, 1, 2] };
        assert_eq!(ring.lookup(0), Some(0));
        assert_eq!(ring.lookup(10), Some(0));
        assert_eq!(ring.lookup(11), Some(1));
        assert_eq!(ring.lookup(30), Some(2));
        assert_eq!(ring.lookup(31), Some(0));
    }
}
