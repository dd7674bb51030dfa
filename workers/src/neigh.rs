//! Next hops resolved by ARP (IPv4) and neighbour discovery (IPv6): the MAC address of a real
//! server (or of the gateway in front of it) that has no static neighbour entry.
//!
//! Each worker learns, into its own table in shared memory (`Layout::learned`, single writer),
//! the ARP requests and replies, and the neighbour solicitations and advertisements, it
//! receives from the next hops its services need, and bumps
//! `ConfigArea::neigh_epoch` when an entry is new or changed; every worker then merges all the
//! tables (the entry learned last wins) and fills in its real servers' MACs. The first worker
//! of each group asks for its group's next hops: every second for each one unresolved or
//! stale (not confirmed for [`shm_layout::NEIGH_REACHABLE_NS`]), so a learned one is asked
//! again every 30 s and a changed MAC is noticed. An entry not confirmed for
//! [`shm_layout::NEIGH_EXPIRE_NS`] (the next hop stopped answering) is forgotten: merges leave
//! it out at once, and its worker clears it within a second and bumps the epoch. A real server
//! whose next hop is unresolved takes no new connection; its open connections go on to the MAC
//! it had. Learned entries outlive the workers (they are in shared memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use shm_layout::LearnedNeighbour;

/// Next hops by address: MAC and port slot.
pub type Hops = HashMap<IpAddr, ([u8; 6], u16)>;

/// The neighbours learned by every worker and not expired at `now_ns` (one per address, the
/// latest).
pub fn learned<'t>(tables: impl IntoIterator<Item = &'t [LearnedNeighbour]>, now_ns: u64) -> Hops {
    shm_layout::merge_learned(tables, now_ns).into_iter().map(|e| (e.ip(), (e.mac, e.port))).collect()
}

/// Clears the entries of `table` (this worker's) that expired at `now_ns`, and bumps `epoch`
/// when there were any. Returns how many.
pub fn expire(table: &[LearnedNeighbour], epoch: &AtomicU64, now_ns: u64) -> usize {
    let mut n = 0;
    for e in table {
        let learned = e.read();
        if learned.is_some_and(|l| l.state(now_ns) == shm_layout::NeighState::Expired) {
            e.clear();
            n += 1;
        }
    }
    if n > 0 {
        epoch.fetch_add(1, Ordering::AcqRel);
    }
    n
}

/// Whether a wanted next hop is asked for now (at most once a second): when it is unresolved,
/// or its entry (learned at `learned_ns`) is stale.
pub fn ask_now(learned_ns: Option<u64>, now_ns: u64) -> bool {
    learned_ns.is_none_or(|t| now_ns.saturating_sub(t) >= shm_layout::NEIGH_REACHABLE_NS)
}

/// Records in `table` (this worker's) that `addr`, reached on port slot `port`, is at `mac`.
/// An entry that says so already is only confirmed (its time moves); a new or changed one
/// takes the address's entry, else a free one, else the oldest, and `epoch` is bumped.
/// Returns whether it was new or changed.
pub fn learn(
    table: &[LearnedNeighbour],
    epoch: &AtomicU64,
    addr: IpAddr,
    port: u16,
    mac: [u8; 6],
    now_ns: u64,
) -> bool {
    let octets = crate::lb::entry_form(addr);
    // The table's only writer reads it, so every copy is whole; a free entry reads as `None`,
    // and so does one a writer before this one left mid-change (it is taken as free).
    let copies = || table.iter().map(LearnedNeighbour::read);
    let Some(i) = copies()
        .position(|l| l.is_some_and(|l| l.addr == octets))
        .or_else(|| copies().position(|l| l.is_none()))
        .or_else(|| copies().enumerate().min_by_key(|(_, l)| l.map(|l| l.learned_ns)).map(|(i, _)| i))
    else {
        return false;
    };
    let e = &table[i];
    match e.read() {
        Some(l) if (l.addr, l.port, l.mac) == (octets, port, mac) => {
            // Confirmed: its time moves forward, never back (a late clock cannot age it).
            e.write(octets, port, mac, l.learned_ns.max(now_ns));
            false
        }
        _ => {
            e.write(octets, port, mac, now_ns);
            epoch.fetch_add(1, Ordering::AcqRel);
            true
        }
    }
}

/// A next hop the services need that has no static neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub hop: IpAddr,
    /// The port slot whose connected network it is on.
    pub port: u16,
    /// The balancer's address on that network (the ARP request's or neighbour
    /// solicitation's sender).
    pub src: IpAddr,
}

/// Nanoseconds between two rounds of asking for next hops (and of expiring entries).
pub const ASK_EVERY_NS: u64 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_confirmed_replaced_and_merged_by_age() {
        let a: Vec<LearnedNeighbour> = (0..2).map(|_| Default::default()).collect();
        let b: Vec<LearnedNeighbour> = (0..2).map(|_| Default::default()).collect();
        let epoch = AtomicU64::new(0);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (x, y, z) = (ip("198.18.1.2"), ip("2001:db8::3"), ip("198.18.1.4"));
        assert!(learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 10));
        assert!(!learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 20), "the same: only confirmed");
        assert_eq!(epoch.load(Ordering::Relaxed), 1);
        assert!(learn(&a, &epoch, y, 1, [2, 0, 0, 0, 1, 3], 30));
        // Full: the oldest (x, confirmed at 20) makes room.
        assert!(learn(&a, &epoch, z, 1, [2, 0, 0, 0, 1, 4], 40));
        let hops = learned([&a[..]], 50);
        assert_eq!((hops.len(), hops.get(&x)), (2, None));
        // Another worker learned y's new MAC later: it wins.
        assert!(learn(&b, &epoch, y, 1, [2, 0, 0, 0, 9, 9], 50));
        let hops = learned([&a[..], &b[..]], 50);
        assert_eq!(hops[&y], ([2, 0, 0, 0, 9, 9], 1));
        assert_eq!(hops[&z], ([2, 0, 0, 0, 1, 4], 1));
        assert_eq!(epoch.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn another_address_at_the_same_mac_is_new() {
        // Two next hops behind one router MAC: the second takes the first's entry (the only
        // one) as a new entry, not as a confirmation.
        let a: Vec<LearnedNeighbour> = (0..1).map(|_| Default::default()).collect();
        let epoch = AtomicU64::new(0);
        let (x, y, mac) = (IpAddr::from([198, 18, 1, 2]), IpAddr::from([198, 18, 1, 3]), [2, 0, 0, 0, 1, 1]);
        assert!(learn(&a, &epoch, x, 1, mac, 10));
        assert!(learn(&a, &epoch, y, 1, mac, 20));
        assert_eq!(learned([&a[..]], 30).into_iter().collect::<Vec<_>>(), [(y, (mac, 1))]);
        assert_eq!(epoch.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn entries_go_stale_then_expire() {
        const S: u64 = 1_000_000_000;
        let a: Vec<LearnedNeighbour> = (0..2).map(|_| Default::default()).collect();
        let epoch = AtomicU64::new(0);
        let x = IpAddr::from([198, 18, 1, 2]);
        assert!(learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 100 * S));
        // Reachable for 30 s: not asked; then stale: asked, still used.
        assert!(!ask_now(Some(100 * S), 129 * S));
        assert!(ask_now(Some(100 * S), 130 * S));
        assert!(ask_now(None, 0), "unresolved");
        assert_eq!(learned([&a[..]], 139 * S).len(), 1);
        assert_eq!(expire(&a, &epoch, 139 * S), 0);
        // A confirmation makes it reachable again.
        assert!(!learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 135 * S));
        assert_eq!(expire(&a, &epoch, 174 * S), 0);
        // 40 s without one: left out of merges, then cleared by its worker (epoch bumped).
        assert!(learned([&a[..]], 175 * S).is_empty());
        assert_eq!(epoch.load(Ordering::Relaxed), 1);
        assert_eq!(expire(&a, &epoch, 175 * S), 1);
        assert_eq!(epoch.load(Ordering::Relaxed), 2);
        assert!(a.iter().all(|e| e.read().is_none()));
        // An answer after that is learned anew.
        assert!(learn(&a, &epoch, x, 1, [2, 0, 0, 0, 1, 2], 176 * S));
    }
}
