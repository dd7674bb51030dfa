//! Per-service and per-real-server counters in shared memory: each service and real server
//! gets its slot in this worker's tables at a configuration switch (by key, so its counts go
//! on across generations and restarts), and the packet path bumps them (single writer).

use std::sync::atomic::AtomicU64;

use conn::Dir;
use shm_layout::LcoreCounters;

use super::{Balancer, Service};

impl<'a> Balancer<'a> {
    /// Counts per service into `table` and per real server into `reals` (this worker's tables
    /// in shared memory) from the next [`Balancer::reconfigure`] on.
    pub fn with_stats(
        mut self,
        table: &'a [shm_layout::ServiceCounters],
        reals: &'a [shm_layout::RealCounters],
    ) -> Balancer<'a> {
        self.stats = table;
        self.real_stats = reals;
        self
    }

    /// Counts a packet of `len` bytes of real server `ri` of service `si`, client side (`dir`
    /// In) or server side.
    #[inline]
    pub(super) fn count(&self, si: usize, ri: usize, dir: Dir, len: u64) {
        let Some(s) = self.services.get(si) else { return };
        let bump = |p: &AtomicU64, b: &AtomicU64| {
            LcoreCounters::bump(p, 1);
            LcoreCounters::bump(b, len);
        };
        if let Some(c) = self.stats.get(s.stats_slot) {
            match dir {
                Dir::In => bump(&c.in_packets, &c.in_bytes),
                Dir::Out => bump(&c.out_packets, &c.out_bytes),
            }
        }
        if let Some(c) = s.real_slots.get(ri).and_then(|&i| self.real_stats.get(i)) {
            match dir {
                Dir::In => bump(&c.in_packets, &c.in_bytes),
                Dir::Out => bump(&c.out_packets, &c.out_bytes),
            }
        }
    }

    /// Zeroes this worker's counters of the service with key `key` (all services: 0) and of
    /// its real servers (`ipvsadm -Z`). This worker is their only writer.
    pub fn zero_counters(&mut self, key: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        for c in self.stats.iter().filter(|c| c.key.load(Relaxed) != 0 && (key == 0 || c.key.load(Relaxed) == key)) {
            c.zero();
        }
        let reals = self.real_stats.iter();
        for c in reals.filter(|c| c.service.load(Relaxed) != 0 && (key == 0 || c.service.load(Relaxed) == key)) {
            c.zero();
        }
    }
}

/// Gives every service its slot in `table` by key (protocol, VIP, port): the slot it had, or a
/// free one; slots of services that are gone are zeroed and freed. Not the packet path.
pub(super) fn assign_stats_slots(table: &[shm_layout::ServiceCounters], services: &mut [Service]) {
    use std::sync::atomic::Ordering::Relaxed;
    if table.is_empty() {
        return;
    }
    let keys: Vec<u64> =
        services.iter().map(|s| shm_layout::ServiceCounters::key_of(s.proto, s.vip.octets(), s.port)).collect();
    let live: rustc_hash::FxHashSet<u64> = keys.iter().copied().collect();
    let mut slots = rustc_hash::FxHashMap::with_capacity_and_hasher(keys.len(), Default::default());
    let mut free = Vec::new();
    for (i, c) in table.iter().enumerate() {
        let k = c.key.load(Relaxed);
        if k == 0 {
            free.push(i);
        } else if !live.contains(&k) {
            c.zero();
            c.key.store(0, std::sync::atomic::Ordering::Release);
            free.push(i);
        } else {
            slots.entry(k).or_insert(i);
        }
    }
    // The lowest free slot first, as a scan from the start would find.
    free.reverse();
    for (s, key) in services.iter_mut().zip(keys) {
        s.stats_slot = match slots.get(&key) {
            Some(&i) => i,
            None => match free.pop() {
                Some(i) => {
                    table[i].key.store(key, std::sync::atomic::Ordering::Release);
                    slots.insert(key, i);
                    i
                }
                None => usize::MAX,
            },
        };
    }
}

/// Gives every real server of every service its slot in `table` by key (service, address,
/// port): the slot it had, or a free one while there are any; slots of real servers that are
/// gone are zeroed and freed. Not the packet path.
pub(super) fn assign_real_slots(table: &[shm_layout::RealCounters], services: &mut [Service]) {
    use std::sync::atomic::Ordering::{Relaxed, Release};
    if table.is_empty() {
        return;
    }
    let keys: Vec<Vec<(u64, u64)>> = services
        .iter()
        .map(|s| {
            let sk = shm_layout::ServiceCounters::key_of(s.proto, s.vip.octets(), s.port);
            s.reals.iter().map(|r| (sk, shm_layout::RealCounters::key_of(r.addr.octets(), r.port))).collect()
        })
        .collect();
    let live: rustc_hash::FxHashSet<(u64, u64)> = keys.iter().flatten().copied().collect();
    let mut slots: rustc_hash::FxHashMap<(u64, u64), usize> = rustc_hash::FxHashMap::default();
    let mut free = Vec::new();
    for (i, c) in table.iter().enumerate() {
        let k = (c.service.load(Relaxed), c.real.load(Relaxed));
        if k.0 == 0 {
            free.push(i);
        } else if !live.contains(&k) {
            c.zero();
            c.service.store(0, Release);
            free.push(i);
        } else {
            slots.insert(k, i);
        }
    }
    free.reverse();
    for (s, keys) in services.iter_mut().zip(keys) {
        s.real_slots = keys
            .iter()
            .map(|k| match slots.get(k) {
                Some(&i) => i,
                None => match free.pop() {
                    Some(i) => {
                        table[i].real.store(k.1, Relaxed);
                        table[i].service.store(k.0, Release);
                        slots.insert(*k, i);
                        i
                    }
                    None => usize::MAX,
                },
            })
            .collect();
    }
}
