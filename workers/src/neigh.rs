//! Next hops resolved by ARP: the MAC address of a real server (or of the gateway in front of
//! it) that has no static neighbour entry.
//!
//! Each worker learns, into its own table in shared memory (`Layout::learned`, single writer),
//! the ARP requests and replies it receives from the next hops its services need, and bumps
//! `ConfigArea::neigh_epoch` when an entry is new or changed; every worker then merges all the
//! tables (the entry learned last wins) and fills in its real servers' MACs. Worker slot 0
//! asks: an ARP request for each unresolved next hop every second, and for each learned one
//! every 30 s, so that a changed MAC is noticed. A real server whose next hop is unresolved
//! takes no new connection. Learned entries outlive the workers (they are in shared memory).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use shm_layout::LearnedNeighbour;

/// Next hops by address: MAC and port slot.
pub type Hops = HashMap<Ipv4Addr, ([u8; 6], u16)>;

/// The neighbours learned by every worker (one per address, the latest).
pub fn learned<'t>(tables: impl IntoIterator<Item = &'t [LearnedNeighbour]>) -> Hops {
    shm_layout::merge_learned(tables).into_iter().map(|e| (Ipv4Addr::from(e.addr), (e.mac, e.port))).collect()
}

/// Records in `table` (this worker's) that `addr`, reached on port slot `port`, is at `mac`.
/// An entry that says so already is only confirmed (its time moves); a new or changed one
/// takes the address's entry, else a free one, else the oldest, and `epoch` is bumped.
/// Returns whether it was new or changed.
pub fn learn(
    table: &[LearnedNeighbour],
    epoch: &AtomicU64,
    addr: Ipv4Addr,
    port: u16,
    mac: [u8; 6],
    now_ns: u64,
) -> bool {
    use Ordering::{Relaxed, Release};
    let key = LearnedNeighbour::key_of(addr.octets(), port);
    let word = LearnedNeighbour::mac_word(mac);
    let ip = u64::from(u32::from(addr));
    let Some(i) = table
        .iter()
        .position(|e| e.key.load(Relaxed) >> 16 == ip)
        .or_else(|| table.iter().position(|e| e.key.load(Relaxed) == 0))
        .or_else(|| (0..table.len()).min_by_key(|&i| table[i].learned_ns.load(Relaxed)))
    else {
        return false;
    };
    let e = &table[i];
    if e.key.load(Relaxed) == key && e.mac.load(Relaxed) == word {
        e.learned_ns.store(now_ns, Release);
        return false;
    }
    e.key.store(0, Release);
    e.mac.store(word, Release);
    e.learned_ns.store(now_ns, Release);
    e.key.store(key, Release);
    epoch.fetch_add(1, Ordering::AcqRel);
    true
}

/// A next hop the services need that has no static neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub hop: Ipv4Addr,
    /// The port slot whose connected network it is on.
    pub port: u16,
    /// The balancer's address on that network (the ARP request's sender).
    pub src: Ipv4Addr,
}

/// Nanoseconds between requests for an unresolved next hop.
pub const ASK_UNRESOLVED_NS: u64 = 1_000_000_000;
/// Nanoseconds between requests that confirm a learned next hop.
pub const ASK_LEARNED_NS: u64 = 30_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_confirmed_replaced_and_merged_by_age() {
        let a: Vec<LearnedNeighbour> = (0..2).map(|_| Default::default()).collect();
        let b: Vec<LearnedNeighbour> = (0..2).map(|_| Default::default()).collect();
        let epoch = AtomicU64::new(0);
        let (x, y, z) = (Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 1, 3), Ipv4Addr::new(198, 18, 1, 4));
        assert!(learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 10));
        assert!(!learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 20), "the same: only confirmed");
        assert_eq!(epoch.load(Ordering::Relaxed), 1);
        assert!(learn(&a, &epoch, y, 1, [2, 0, 0, 0, 1, 3], 30));
        // Full: the oldest (x, confirmed at 20) makes room.
        assert!(learn(&a, &epoch, z, 1, [2, 0, 0, 0, 1, 4], 40));
        let hops = learned([&a[..]]);
        assert_eq!((hops.len(), hops.get(&x)), (2, None));
        // Another worker learned y's new MAC later: it wins.
        assert!(learn(&b, &epoch, y, 1, [2, 0, 0, 0, 9, 9], 50));
        let hops = learned([&a[..], &b[..]]);
        assert_eq!(hops[&y], ([2, 0, 0, 0, 9, 9], 1));
        assert_eq!(hops[&z], ([2, 0, 0, 0, 1, 4], 1));
        assert_eq!(epoch.load(Ordering::Relaxed), 4);
    }
}
