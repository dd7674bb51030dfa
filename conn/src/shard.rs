//! The table itself. See the crate docs for the invariants.

use std::sync::atomic::{AtomicU64, Ordering};

use shm_layout::conn::{ConnEntry, ConnShardHeader, Mode};
use shm_layout::ConnParts;

/// A packet's 5-tuple, addresses in the table's 16-byte form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub proto: u8,
    pub src: [u8; 16],
    pub sport: u16,
    pub dst: [u8; 16],
    pub dport: u16,
}

/// A tuple with its bucket in one shard ([`Shard::hashed`]): the hashes of a burst can be
/// computed together, ahead of the lookups, instead of each in its lookup's chain of
/// dependent steps. Only its shard may look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    tuple: Tuple,
    bucket: usize,
}

impl Hashed {
    /// The tuple.
    pub fn tuple(&self) -> &Tuple {
        &self.tuple
    }

    /// Its bucket.
    pub fn bucket(&self) -> usize {
        self.bucket
    }
}

/// Which of a connection's two tuples a packet matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to virtual service.
    In = 0,
    /// Real server to local address (the reply).
    Out = 1,
}

/// A connection to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    pub proto: u8,
    pub caddr: [u8; 16],
    pub cport: u16,
    pub vaddr: [u8; 16],
    pub vport: u16,
    /// Outbound destination: the local address (Full-NAT) or the client.
    pub laddr: [u8; 16],
    pub lport: u16,
    pub raddr: [u8; 16],
    pub rport: u16,
    pub state: u8,
    /// Forwarding mode, kept in the entry's flags ([`ConnEntry::flags_for`]).
    pub mode: Mode,
    pub service: u32,
    pub real: u32,
    /// Where replies to the client go: its MAC (or its router's) and the port slot.
    pub client_mac: [u8; 6],
    pub client_port: u16,
}

impl NewConn {
    fn tuple(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::In => {
                Tuple { proto: self.proto, src: self.caddr, sport: self.cport, dst: self.vaddr, dport: self.vport }
            }
            Dir::Out => {
                Tuple { proto: self.proto, src: self.raddr, sport: self.rport, dst: self.laddr, dport: self.lport }
            }
        }
    }
}

/// The shard has no free entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connection table is full")
    }
}

impl std::error::Error for Full {}

fn tuple_of(e: &ConnEntry, dir: Dir) -> Tuple {
    match dir {
        Dir::In => Tuple { proto: e.proto, src: e.caddr, sport: e.cport, dst: e.vaddr, dport: e.vport },
        Dir::Out => Tuple { proto: e.proto, src: e.raddr, sport: e.rport, dst: e.laddr, dport: e.lport },
    }
}

/// 64-bit finaliser (MurmurHash3 fmix64): every input bit affects every output bit.
#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The bucket hash of a tuple: the addresses' and ports' words each multiplied by its own odd
/// constant (a bijection; the three products are independent, so they overlap in the
/// pipeline), then one fmix64 round. It is part of the shard layout: the chains of a shard
/// file are only valid under the hash that built them.
#[inline]
fn hash(seed: u64, t: &Tuple) -> u64 {
    let w = |b: &[u8; 16], i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    let src = w(&t.src, 0) ^ w(&t.src, 8).rotate_left(29);
    let dst = w(&t.dst, 0) ^ w(&t.dst, 8).rotate_left(29);
    let ports = u64::from(t.sport) << 24 | u64::from(t.dport) << 8 | u64::from(t.proto);
    fmix(
        seed ^ src.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ dst.wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(32)
            ^ ports.wrapping_mul(0x1656_67b1_9e37_79f9),
    )
}

/// A chain link: entry index and direction, plus one (0 ends a chain).
#[inline]
fn link(idx: u32, dir: Dir) -> u32 {
    ((idx << 1) | dir as u32) + 1
}

#[inline]
fn unlink_parts(l: u32) -> (usize, Dir) {
    let v = l - 1;
    ((v >> 1) as usize, if v & 1 == 0 { Dir::In } else { Dir::Out })
}

#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// One lcore's connection table, over the parts of its shard.
pub struct Shard<'a> {
    h: &'a ConnShardHeader,
    buckets: &'a mut [u32],
    wheel: &'a mut [u32],
    entries: &'a mut [ConnEntry],
}

impl std::fmt::Debug for Shard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("capacity", &self.entries.len()).field("used", &self.used()).finish()
    }
}

impl<'a> Shard<'a> {
    /// Takes over a shard: formats it when it was never used, rebuilds its indexes when its
    /// previous owner died in the middle of a change, and otherwise continues it as it is.
    /// Returns the shard and whether it had to be rebuilt.
    ///
    /// # Panics
    /// If the parts do not match the header's geometry (a bug in the mapping, not a runtime
    /// condition: `ConnShardFile` validates the file).
    pub fn adopt(parts: ConnParts<'a>, now_tick: u64) -> (Shard<'a>, bool) {
        let h = parts.header;
        assert!(
            parts.entries.len() == h.capacity as usize
                && parts.buckets.len() == h.n_buckets as usize
                && parts.wheel.len() == h.wheel_slots as usize
                && h.n_buckets.is_power_of_two()
                && h.wheel_slots.is_power_of_two(),
            "shard parts do not match the header's geometry"
        );
        let mut s = Shard { h, buckets: parts.buckets, wheel: parts.wheel, entries: parts.entries };
        let unformatted = h.used.load(Ordering::Acquire) == 0 && h.free_head.load(Ordering::Acquire) == 0;
        if unformatted {
            s.format(now_tick);
            (s, false)
        } else if h.seq.load(Ordering::Acquire) % 2 == 1 {
            s.rebuild();
            bump(&h.counters.rebuilds, 1);
            (s, true)
        } else {
            (s, false)
        }
    }

    fn begin(&self) {
        let v = self.h.seq.load(Ordering::Relaxed);
        self.h.seq.store(v | 1, Ordering::Release);
    }

    fn end(&self) {
        let v = self.h.seq.load(Ordering::Relaxed);
        self.h.seq.store((v | 1) + 1, Ordering::Release);
    }

    /// Makes it empty: every entry free, no chain, no timer.
    pub fn format(&mut self, now_tick: u64) {
        self.begin();
        self.buckets.fill(0);
        self.wheel.fill(0);
        let n = self.entries.len();
        for (i, e) in self.entries.iter_mut().enumerate() {
            *e = ConnEntry::EMPTY;
            e.next_timer = if i + 1 < n { i as u32 + 2 } else { 0 };
        }
        self.h.free_head.store(if n > 0 { 1 } else { 0 }, Ordering::Relaxed);
        self.h.used.store(0, Ordering::Relaxed);
        self.h.wheel_tick.store(now_tick, Ordering::Relaxed);
        self.end();
    }

    /// Rebuilds chains, wheel and free list from the entries marked in use.
    pub fn rebuild(&mut self) {
        self.begin();
        self.buckets.fill(0);
        self.wheel.fill(0);
        let mut free = 0u32;
        let mut used = 0u32;
        for i in (0..self.entries.len()).rev() {
            if self.entries[i].in_use() {
                self.link_chains(i as u32);
                let slot = self.slot_of(self.entries[i].expires);
                self.file(i as u32, slot);
                used += 1;
            } else {
                self.entries[i].next_timer = free;
                free = i as u32 + 1;
            }
        }
        self.h.free_head.store(free, Ordering::Relaxed);
        self.h.used.store(used, Ordering::Relaxed);
        self.end();
    }

    /// Entries in use.
    pub fn used(&self) -> u32 {
        self.h.used.load(Ordering::Relaxed)
    }

    /// Calls `f` with every entry in use (and its index), by walking the timer wheel, where
    /// each of them is filed: the cost is the wheel's slots and the entries in use, not the
    /// capacity (a successor adopting a 1M-entry table with a few connections reads kilobytes,
    /// not the whole table). At most `used` entries are visited, so a damaged list cannot loop.
    pub fn for_each_used(&self, mut f: impl FnMut(u32, &ConnEntry)) {
        let mut left = self.used();
        for &head in self.wheel.iter() {
            let mut l = head;
            while l != 0 && left > 0 {
                let Some(e) = self.entries.get(l as usize - 1) else { break };
                left -= 1;
                if e.in_use() {
                    f(l - 1, e);
                }
                l = e.next_timer;
            }
        }
    }

    /// Capacity.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The entry at `idx`.
    ///
    /// # Panics
    /// If `idx` is out of range.
    pub fn entry(&self, idx: u32) -> &ConnEntry {
        &self.entries[idx as usize]
    }

    /// The entry at `idx`, for updates of its state, counters and sequence offsets. Tuples
    /// and the link fields must not be changed through it.
    ///
    /// # Panics
    /// If `idx` is out of range.
    pub fn entry_mut(&mut self, idx: u32) -> &mut ConnEntry {
        &mut self.entries[idx as usize]
    }

    #[inline]
    fn bucket(&self, t: &Tuple) -> usize {
        (hash(self.h.seed, t) as usize) & (self.buckets.len() - 1)
    }

    #[inline]
    fn slot_of(&self, tick: u64) -> usize {
        (tick as usize) & (self.wheel.len() - 1)
    }

    /// Starts loading the bucket of `h` into the cache without waiting for it: with
    /// [`Shard::prefetch_chain`] a burst's lookups take their cache misses together rather than
    /// one after the other.
    #[inline]
    pub fn prefetch_bucket(&self, h: &Hashed) {
        if let Some(b) = self.buckets.get(h.bucket) {
            shm_layout::prefetch(b);
        }
    }

    /// Starts loading the first entry of bucket `b`'s chain (its three cache lines), reading
    /// the bucket: call it some time after [`Shard::prefetch_bucket`] of the same bucket.
    #[inline]
    pub fn prefetch_chain(&self, b: usize) {
        // A hint: whatever the shared words say, it never panics.
        let l = self.buckets.get(b).copied().unwrap_or(0);
        if let Some(e) = (l != 0).then(|| self.entries.get(unlink_parts(l).0)).flatten() {
            let p: *const u8 = std::ptr::from_ref(e).cast();
            for line in 0..std::mem::size_of::<ConnEntry>() / 64 {
                shm_layout::prefetch_at(p, line * 64);
            }
        }
    }

    /// `t` with its bucket, for [`Shard::lookup_hashed`].
    #[inline]
    pub fn hashed(&self, t: Tuple) -> Hashed {
        Hashed { bucket: self.bucket(&t), tuple: t }
    }

    /// Finds the connection a packet belongs to, and which direction it travels.
    #[inline]
    pub fn lookup(&mut self, t: &Tuple) -> Option<(u32, Dir)> {
        let h = self.hashed(*t);
        self.lookup_hashed(&h)
    }

    /// [`Shard::lookup`] of a tuple hashed before by this shard.
    #[inline]
    pub fn lookup_hashed(&mut self, h: &Hashed) -> Option<(u32, Dir)> {
        bump(&self.h.counters.lookups, 1);
        let t = &h.tuple;
        // A hint from elsewhere is only trusted within range (never a panic); a bucket of
        // another shard would at worst miss.
        let mut l = self.buckets.get(h.bucket).copied().unwrap_or(0);
        while l != 0 {
            let (idx, dir) = unlink_parts(l);
            let e = &self.entries[idx];
            if tuple_of(e, dir) == *t {
                bump(&self.h.counters.hits, 1);
                return Some((idx as u32, dir));
            }
            l = if dir == Dir::In { e.next_in } else { e.next_out };
        }
        None
    }

    fn link_chains(&mut self, idx: u32) {
        for dir in [Dir::In, Dir::Out] {
            let b = self.bucket(&tuple_of(&self.entries[idx as usize], dir));
            let head = self.buckets[b];
            let e = &mut self.entries[idx as usize];
            if dir == Dir::In {
                e.next_in = head;
            } else {
                e.next_out = head;
            }
            self.buckets[b] = link(idx, dir);
        }
    }

    fn unlink_chains(&mut self, idx: u32) {
        for dir in [Dir::In, Dir::Out] {
            let me = link(idx, dir);
            let b = self.bucket(&tuple_of(&self.entries[idx as usize], dir));
            let next_of = |e: &ConnEntry, d: Dir| if d == Dir::In { e.next_in } else { e.next_out };
            let my_next = next_of(&self.entries[idx as usize], dir);
            if self.buckets[b] == me {
                self.buckets[b] = my_next;
                continue;
            }
            let mut l = self.buckets[b];
            while l != 0 {
                let (pi, pd) = unlink_parts(l);
                let next = next_of(&self.entries[pi], pd);
                if next == me {
                    let p = &mut self.entries[pi];
                    if pd == Dir::In {
                        p.next_in = my_next;
                    } else {
                        p.next_out = my_next;
                    }
                    break;
                }
                l = next;
            }
        }
    }

    /// Puts an entry at the head of a wheel slot.
    fn file(&mut self, idx: u32, slot: usize) {
        let head = self.wheel[slot];
        if head != 0 {
            self.entries[head as usize - 1].prev_timer = idx + 1;
        }
        let e = &mut self.entries[idx as usize];
        e.next_timer = head;
        e.prev_timer = 0;
        e.wheel_slot = slot as u32;
        self.wheel[slot] = idx + 1;
    }

    /// Takes an entry out of its wheel slot.
    fn unfile(&mut self, idx: u32) {
        let (prev, next, slot) = {
            let e = &self.entries[idx as usize];
            (e.prev_timer, e.next_timer, e.wheel_slot as usize)
        };
        if prev == 0 {
            if self.wheel.get(slot) == Some(&(idx + 1)) {
                self.wheel[slot] = next;
            }
        } else {
            self.entries[prev as usize - 1].next_timer = next;
        }
        if next != 0 {
            self.entries[next as usize - 1].prev_timer = prev;
        }
    }

    /// Creates a connection expiring `timeout_ticks` after `now_tick`. The caller has checked
    /// with [`Shard::lookup`] that it does not exist.
    ///
    /// # Errors
    /// [`Full`] when every entry is in use (counted).
    pub fn insert(&mut self, c: &NewConn, now_tick: u64, timeout_ticks: u32) -> Result<u32, Full> {
        let free = self.h.free_head.load(Ordering::Relaxed);
        if free == 0 {
            bump(&self.h.counters.full, 1);
            return Err(Full);
        }
        let idx = free - 1;
        self.begin();
        let next_free = self.entries[idx as usize].next_timer;
        self.h.free_head.store(next_free, Ordering::Relaxed);
        let (tin, tout) = (c.tuple(Dir::In), c.tuple(Dir::Out));
        self.entries[idx as usize] = ConnEntry {
            caddr: tin.src,
            cport: tin.sport,
            vaddr: tin.dst,
            vport: tin.dport,
            raddr: tout.src,
            rport: tout.sport,
            laddr: tout.dst,
            lport: tout.dport,
            proto: c.proto,
            state: c.state,
            flags: ConnEntry::flags_for(c.mode),
            service: c.service,
            real: c.real,
            client_mac: c.client_mac,
            client_port: c.client_port,
            expires: now_tick + u64::from(timeout_ticks),
            ..ConnEntry::EMPTY
        };
        self.link_chains(idx);
        let slot = self.slot_of(now_tick + u64::from(timeout_ticks));
        self.file(idx, slot);
        self.h.used.store(self.used() + 1, Ordering::Relaxed);
        self.end();
        bump(&self.h.counters.created, 1);
        Ok(idx)
    }

    fn release(&mut self, idx: u32) {
        self.unlink_chains(idx);
        self.unfile(idx);
        let free = self.h.free_head.load(Ordering::Relaxed);
        let e = &mut self.entries[idx as usize];
        e.flags = 0;
        e.next_timer = free;
        self.h.free_head.store(idx + 1, Ordering::Relaxed);
        self.h.used.store(self.used() - 1, Ordering::Relaxed);
    }

    /// Removes a connection now (a reset, a removed real server).
    ///
    /// # Panics
    /// If `idx` is out of range.
    pub fn remove(&mut self, idx: u32) {
        if !self.entries[idx as usize].in_use() {
            return;
        }
        self.begin();
        self.release(idx);
        self.end();
        bump(&self.h.counters.removed, 1);
    }

    /// Sets a connection to expire `timeout_ticks` after `now_tick`. A later deadline is one
    /// store (the wheel re-files the entry when it reaches it); an earlier one re-files it now.
    ///
    /// # Panics
    /// If `idx` is out of range.
    #[inline]
    pub fn set_timeout(&mut self, idx: u32, now_tick: u64, timeout_ticks: u32) {
        let expires = now_tick + u64::from(timeout_ticks);
        if expires >= self.entries[idx as usize].expires {
            self.entries[idx as usize].expires = expires;
            return;
        }
        self.begin();
        self.unfile(idx);
        self.entries[idx as usize].expires = expires;
        let slot = self.slot_of(expires);
        self.file(idx, slot);
        self.end();
    }

    /// Runs the wheel up to `now_tick`, a whole slot at a time, until `budget` entries have
    /// been looked at; calls `on_expire` for every connection that expires, before it is
    /// freed. Returns how many expired. Slots left for lack of budget are run by the next call.
    pub fn advance(&mut self, now_tick: u64, budget: usize, mut on_expire: impl FnMut(u32, &ConnEntry)) -> usize {
        self.advance_renewing(now_tick, budget, |i, e| {
            on_expire(i, e);
            None
        })
    }

    /// [`Shard::advance`], where `on_expire` may keep an entry that is due: `Some(tick)` files
    /// it again to expire at `tick` (later than now) instead of freeing it.
    pub fn advance_renewing(
        &mut self,
        now_tick: u64,
        budget: usize,
        mut on_expire: impl FnMut(u32, &ConnEntry) -> Option<u64>,
    ) -> usize {
        let mut tick = self.h.wheel_tick.load(Ordering::Relaxed);
        let (mut seen, mut expired) = (0usize, 0usize);
        while tick <= now_tick && seen < budget {
            let slot = self.slot_of(tick);
            self.begin();
            let mut l = std::mem::replace(&mut self.wheel[slot], 0);
            while l != 0 {
                let idx = l - 1;
                l = self.entries[idx as usize].next_timer;
                seen += 1;
                let expires = self.entries[idx as usize].expires;
                if expires <= tick {
                    if let Some(later) = on_expire(idx, &self.entries[idx as usize]).filter(|&t| t > tick) {
                        self.entries[idx as usize].expires = later;
                        let to = self.slot_of(later);
                        self.file(idx, to);
                        continue;
                    }
                    // Already out of the wheel: make unfile a no-op.
                    let e = &mut self.entries[idx as usize];
                    e.prev_timer = 0;
                    e.next_timer = 0;
                    e.wheel_slot = u32::MAX;
                    self.release(idx);
                    expired += 1;
                } else {
                    let to = self.slot_of(expires);
                    self.file(idx, to);
                }
            }
            tick += 1;
            self.h.wheel_tick.store(tick, Ordering::Relaxed);
            self.end();
        }
        bump(&self.h.counters.expired, expired as u64);
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_hash_spreads_structured_flows_evenly() {
        // 2^20 client flows as a load test makes them (16 addresses x 65 536 ports to one
        // VIP), and their Full-NAT replies (one real server, 16 local addresses), into 2^16
        // buckets: about 16 each; a good hash keeps the fullest far below 64.
        for reply in [false, true] {
            let mut count = vec![0u32; 1 << 16];
            for a in 0..16u8 {
                for p in 0..=u16::MAX {
                    let (src, dst) = ([198, 18, 0, a], [198, 18, 0, 100]);
                    let t = if reply {
                        Tuple { proto: 17, src: crate::v4([198, 18, 1, 2]), sport: 53, dst: crate::v4(src), dport: p }
                    } else {
                        Tuple { proto: 17, src: crate::v4(src), sport: p, dst: crate::v4(dst), dport: 53 }
                    };
                    count[(hash(0x1234_5678, &t) as usize) & 0xffff] += 1;
                }
            }
            let max = count.iter().max().copied().unwrap_or(0);
            assert!(max < 40, "fullest bucket {max} (replies: {reply})");
        }
    }
}
