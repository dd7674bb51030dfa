//! Per-service and per-real-server counters in shared memory: each service and real server
//! gets its slot in this worker's tables at a configuration switch (by key, so its counts go
//! on across generations and restarts), and the packet path bumps them (single writer).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release};

use conn::tcp::State;
use conn::Dir;
use rustc_hash::{FxHashMap, FxHashSet};
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

    /// A connection of real server `ri` of service `si` went from TCP state `old` to `new`:
    /// its active and inactive counts follow when it enters or leaves ESTABLISHED. (A UDP
    /// entry's state never changes.) As LVS counts them: `ip_vs_bind_dest`
    /// (net/netfilter/ipvs/ip_vs_conn.c) counts a connection, never a persistence template,
    /// as inactive when it is made (`IP_VS_CONN_F_INACTIVE`); `set_tcp_state`
    /// (ip_vs_proto_tcp.c) moves it to active on ESTABLISHED and back on any other state; UDP
    /// never becomes active.
    #[inline]
    pub(super) fn conn_moved(&self, si: usize, ri: usize, old: State, new: State) {
        let (was, is) = (old == State::Established, new == State::Established);
        if was == is {
            return;
        }
        let Some(s) = self.services.get(si) else { return };
        if let Some(c) = s.real_slots.get(ri).and_then(|&i| self.real_stats.get(i)) {
            if is {
                c.move_now(1, -1);
            } else {
                c.move_now(-1, 1);
            }
        }
    }

    /// Sets its real servers' active and inactive counts to the connections of the table it
    /// adopted (counted by [`Balancer::new`]'s pass over it), once the counter slots are
    /// assigned: after the death of a process that may have died between a connection's change
    /// and its count's. Every other real server's counts are zeroed.
    pub fn recount_connections(&mut self) {
        let adopted = std::mem::take(&mut self.adopted);
        for (si, s) in self.services.iter().enumerate() {
            for (ri, &slot) in s.real_slots.iter().enumerate() {
                if let Some(c) = self.real_stats.get(slot) {
                    let (a, i) = adopted.get(&(si, ri)).copied().unwrap_or_default();
                    c.set_now(a, i);
                }
            }
        }
    }

    /// Zeroes this worker's counters of the service with key `key` (all services: 0) and of
    /// its real servers (`ipvsadm -Z`). This worker is their only writer.
    pub fn zero_counters(&mut self, key: u64) {
        for c in self.stats.iter().filter(|c| c.key.load(Relaxed) != 0 && (key == 0 || c.key.load(Relaxed) == key)) {
            c.zero();
        }
        let reals = self.real_stats.iter();
        for c in reals.filter(|c| c.service.load(Relaxed) != 0 && (key == 0 || c.service.load(Relaxed) == key)) {
            c.zero();
        }
    }
}

/// Which counter slot each service and real server has in this worker's tables, and the free
/// ones: filled from the tables at a whole reconfiguration ([`Slots::assign`]), then kept as
/// services are added, replaced and removed one by one. Not the packet path.
#[derive(Debug, Default)]
pub(super) struct Slots {
    services: FxHashMap<u64, usize>,
    /// Free service slots, the lowest last (taken first).
    free_services: Vec<usize>,
    reals: FxHashMap<(u64, u64), usize>,
    free_reals: Vec<usize>,
}

/// A service's key in the counter tables.
fn service_key(s: &Service) -> u64 {
    shm_layout::ServiceCounters::key_of(s.proto, s.vip, s.port)
}

impl Slots {
    /// Gives every service and real server of `services` its slot by key (service: protocol,
    /// VIP, port; real server: its service's and address, port): the slot it had in the
    /// tables, or a free one while there are any; slots of services and real servers that
    /// are gone are zeroed and freed.
    pub(super) fn assign(
        stats: &[shm_layout::ServiceCounters],
        real_stats: &[shm_layout::RealCounters],
        services: &mut [Service],
    ) -> Slots {
        let mut slots = Slots::default();
        let live: FxHashSet<u64> = services.iter().map(service_key).collect();
        for (i, c) in stats.iter().enumerate() {
            let k = c.key.load(Relaxed);
            if k == 0 {
                slots.free_services.push(i);
            } else if !live.contains(&k) {
                c.zero();
                c.key.store(0, Release);
                slots.free_services.push(i);
            } else {
                slots.services.entry(k).or_insert(i);
            }
        }
        let live: FxHashSet<(u64, u64)> = services.iter().flat_map(|s| real_keys(s).collect::<Vec<_>>()).collect();
        for (i, c) in real_stats.iter().enumerate() {
            let k = (c.service.load(Relaxed), c.real.load(Relaxed));
            if k.0 == 0 {
                slots.free_reals.push(i);
            } else if !live.contains(&k) {
                c.zero();
                c.set_now(0, 0);
                c.service.store(0, Release);
                slots.free_reals.push(i);
            } else {
                slots.reals.insert(k, i);
            }
        }
        slots.free_services.reverse();
        slots.free_reals.reverse();
        for s in services {
            slots.take(stats, real_stats, s);
        }
        slots
    }

    /// Gives service `s` and its real servers their slots: the ones their keys have, else
    /// free ones (`usize::MAX`: none left).
    pub(super) fn take(
        &mut self,
        stats: &[shm_layout::ServiceCounters],
        real_stats: &[shm_layout::RealCounters],
        s: &mut Service,
    ) {
        let key = service_key(s);
        s.stats_slot = match self.services.get(&key) {
            Some(&i) => i,
            None => match self.free_services.pop() {
                Some(i) if i < stats.len() => {
                    stats[i].key.store(key, Release);
                    self.services.insert(key, i);
                    i
                }
                _ => usize::MAX,
            },
        };
        let keys: Vec<(u64, u64)> = real_keys(s).collect();
        s.real_slots = keys
            .into_iter()
            .map(|k| match self.reals.get(&k) {
                Some(&i) => i,
                None => match self.free_reals.pop() {
                    Some(i) if i < real_stats.len() => {
                        real_stats[i].real.store(k.1, Relaxed);
                        real_stats[i].service.store(k.0, Release);
                        self.reals.insert(k, i);
                        i
                    }
                    _ => usize::MAX,
                },
            })
            .collect();
    }

    /// Frees (and zeroes) the slots of `old`'s real servers that `new` (the same service,
    /// replaced; `None`: removed) does not have, and `old`'s own when it is removed.
    pub(super) fn release(
        &mut self,
        stats: &[shm_layout::ServiceCounters],
        real_stats: &[shm_layout::RealCounters],
        old: &Service,
        new: Option<&Service>,
    ) {
        let kept: FxHashSet<(u64, u64)> = new.map(|n| real_keys(n).collect()).unwrap_or_default();
        for k in real_keys(old).filter(|k| !kept.contains(k)) {
            if let Some(i) = self.reals.remove(&k) {
                if let Some(c) = real_stats.get(i) {
                    c.zero();
                    c.set_now(0, 0);
                    c.service.store(0, Release);
                }
                self.free_reals.push(i);
            }
        }
        if new.is_none() {
            if let Some(i) = self.services.remove(&service_key(old)) {
                if let Some(c) = stats.get(i) {
                    c.zero();
                    c.key.store(0, Release);
                }
                self.free_services.push(i);
            }
        }
    }
}

/// The counter keys of service `s`'s real servers.
fn real_keys(s: &Service) -> impl Iterator<Item = (u64, u64)> + '_ {
    let sk = service_key(s);
    s.reals.iter().map(move |r| (sk, shm_layout::RealCounters::key_of(r.addr, r.port)))
}
