//! The connection table against a model, its timers, and crash adoption, on memory-backed
//! parts and on a real shard file.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use conn::tcp::State;
use conn::{v4, Dir, NewConn, Shard, Tuple};
use shm_layout::conn::{ConnEntry, ConnShardHeader, Mode};
use shm_layout::{ConnParts, ConnShardFile};

struct Store {
    h: ConnShardHeader,
    buckets: Vec<u32>,
    wheel: Vec<u32>,
    entries: Vec<ConnEntry>,
}

fn store(capacity: u32, wheel_slots: u32) -> Store {
    let h = ConnShardHeader {
        capacity,
        n_buckets: shm_layout::conn::BUCKETS_PER_ENTRY * capacity,
        wheel_slots,
        seed: 0x5eed,
        ..Default::default()
    };
    Store {
        h,
        buckets: vec![0; (shm_layout::conn::BUCKETS_PER_ENTRY * capacity) as usize],
        wheel: vec![0; wheel_slots as usize],
        entries: vec![ConnEntry::EMPTY; capacity as usize],
    }
}

fn shard(s: &mut Store, now: u64) -> (Shard<'_>, bool) {
    Shard::adopt(ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries }, now)
}

/// A Full-NAT connection: client 198.18.0.x:cport -> VIP 198.18.1.1:80, local 198.18.2.1:lport
/// -> real 198.18.3.r:8080.
fn fnat(client: u8, cport: u16, lport: u16, real: u8) -> NewConn {
    NewConn {
        proto: 6,
        caddr: v4([198, 18, 0, client]),
        cport,
        vaddr: v4([198, 18, 1, 1]),
        vport: 80,
        laddr: v4([198, 18, 2, 1]),
        lport,
        raddr: v4([198, 18, 3, real]),
        rport: 8080,
        state: State::SynRecv as u8,
        mode: Mode::FullNat,
        service: 3,
        real: u32::from(real),
        client_mac: [2, 0, 0, 0, 1, client],
        client_port: 0,
    }
}

fn inbound(c: &NewConn) -> Tuple {
    Tuple { proto: c.proto, src: c.caddr, sport: c.cport, dst: c.vaddr, dport: c.vport }
}

fn outbound(c: &NewConn) -> Tuple {
    Tuple { proto: c.proto, src: c.raddr, sport: c.rport, dst: c.laddr, dport: c.lport }
}

#[test]
fn both_directions_find_the_connection() {
    let mut s = store(64, 16);
    let (mut t, rebuilt) = shard(&mut s, 0);
    assert!(!rebuilt);
    let c = fnat(7, 40000, 5000, 2);
    let idx = t.insert(&c, 0, 100).unwrap();
    assert_eq!(t.lookup(&inbound(&c)), Some((idx, Dir::In)));
    assert_eq!(t.lookup(&outbound(&c)), Some((idx, Dir::Out)));
    let mut other = inbound(&c);
    other.sport += 1;
    assert_eq!(t.lookup(&other), None);
    let mut udp = inbound(&c);
    udp.proto = 17;
    assert_eq!(t.lookup(&udp), None, "the protocol is part of the key");
    let e = t.entry(idx);
    assert_eq!((e.service, e.real, e.state), (3, 2, State::SynRecv as u8));
    assert_eq!((e.flags, e.mode(), e.is_controlled()), (0x11, Some(Mode::FullNat), false));
    t.remove(idx);
    assert!(!t.entry(idx).in_use(), "a removed entry is free");
    assert_eq!(t.lookup(&inbound(&c)), None);
    assert_eq!(t.lookup(&outbound(&c)), None);
    assert_eq!(t.used(), 0);
    let c = s.h.counters.created.load(Ordering::Relaxed);
    assert_eq!(c, 1);
    assert_eq!(s.h.counters.hits.load(Ordering::Relaxed), 2);
    assert_eq!(s.h.counters.lookups.load(Ordering::Relaxed), 6);
}

#[test]
fn a_full_shard_refuses_and_counts() {
    let mut s = store(8, 4);
    let (mut t, _) = shard(&mut s, 0);
    for i in 0..8 {
        t.insert(&fnat(1, 1000 + i, 2000 + i, 1), 0, 10).unwrap();
    }
    assert_eq!(t.insert(&fnat(1, 9999, 9999, 1), 0, 10), Err(conn::Full));
    assert_eq!(t.used(), 8);
    assert_eq!(s.h.counters.full.load(Ordering::Relaxed), 1);
}

#[test]
fn timers_expire_on_time_and_refreshes_extend_them() {
    let mut s = store(64, 8); // a wheel shorter than the timeouts: entries go round
    let (mut t, _) = shard(&mut s, 0);
    let a = t.insert(&fnat(1, 1, 1, 1), 0, 5).unwrap();
    let b = t.insert(&fnat(2, 2, 2, 1), 0, 20).unwrap();
    let c = t.insert(&fnat(3, 3, 3, 1), 0, 20).unwrap();
    let mut gone = Vec::new();
    assert_eq!(t.advance(4, usize::MAX, |i, _| gone.push(i)), 0);
    assert_eq!(t.advance(5, usize::MAX, |i, _| gone.push(i)), 1);
    assert_eq!(gone, [a]);
    // b is refreshed (later: one store), c is moved earlier (re-filed).
    t.set_timeout(b, 10, 30);
    t.set_timeout(c, 10, 2);
    assert_eq!(t.advance(12, usize::MAX, |i, _| gone.push(i)), 1);
    assert_eq!(gone, [a, c]);
    assert_eq!(t.advance(39, usize::MAX, |i, _| gone.push(i)), 0);
    assert_eq!(t.advance(40, usize::MAX, |i, _| gone.push(i)), 1);
    assert_eq!(gone, [a, c, b]);
    assert_eq!(t.used(), 0);
    assert_eq!(s.h.counters.expired.load(Ordering::Relaxed), 3);
}

#[test]
fn an_entry_kept_when_due_is_filed_again_and_expires_later() {
    let mut s = store(64, 8);
    let (mut t, _) = shard(&mut s, 0);
    let a = t.insert(&fnat(1, 1, 1, 1), 0, 5).unwrap();
    // Due at 5: kept until 30 (past the wheel's 8 slots: it goes round), a past tick is ignored.
    assert_eq!(t.advance_renewing(5, usize::MAX, |_, _| Some(30)), 0);
    assert_eq!(t.entry(a).expires, 30);
    assert_eq!(t.advance_renewing(29, usize::MAX, |_, _| None), 0);
    assert_eq!(t.advance_renewing(30, usize::MAX, |_, _| Some(3)), 1, "a tick not later than now frees it");
    assert_eq!(t.used(), 0);
}

#[test]
fn advance_stops_at_its_budget_and_resumes() {
    let mut s = store(1024, 128);
    let (mut t, _) = shard(&mut s, 0);
    for i in 0..1000u16 {
        t.insert(&fnat(1, i, i, 1), 0, 1 + u32::from(i % 100)).unwrap();
    }
    let mut n = 0;
    let first = t.advance(200, 50, |_, _| n += 1);
    assert!(first < 1000 && first > 0, "a small budget does a part ({first})");
    let mut calls = 1;
    while t.used() > 0 {
        t.advance(200, 50, |_, _| n += 1);
        calls += 1;
        assert!(calls < 1000, "it makes progress");
    }
    assert_eq!(n, 1000);
}

#[test]
fn matches_a_model_over_random_operations() {
    let mut s = store(4096, 256);
    let (mut t, _) = shard(&mut s, 0);
    let mut model: HashMap<(u16, u16), (NewConn, u64)> = HashMap::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut now = 0u64;
    for step in 0..200_000 {
        let r = next();
        let key = ((r >> 8) as u16 % 3000, (r >> 24) as u16 % 7);
        // Full-NAT local ports are unique per real server: one per (client, port) here.
        let c = fnat((key.1 + 1) as u8, key.0, key.0 * 7 + key.1, (key.1 % 3) as u8 + 1);
        match r % 8 {
            0..=3 => {
                if t.lookup(&inbound(&c)).is_none() {
                    let timeout = 1 + (r >> 40) as u32 % 500;
                    match t.insert(&c, now, timeout) {
                        Ok(_) => {
                            model.insert(key, (c, now + u64::from(timeout)));
                        }
                        Err(_) => assert_eq!(model.len(), 4096, "full only when the model is"),
                    }
                }
            }
            4 => {
                if let Some((idx, _)) = t.lookup(&outbound(&c)) {
                    t.remove(idx);
                    model.remove(&key).expect("the model had it");
                }
            }
            5 => {
                if let Some((idx, _)) = t.lookup(&inbound(&c)) {
                    let timeout = 1 + (r >> 40) as u32 % 500;
                    t.set_timeout(idx, now, timeout);
                    model.get_mut(&key).expect("the model had it").1 = now + u64::from(timeout);
                }
            }
            _ => {
                now += 1 + (r >> 50) % 3;
                t.advance(now, usize::MAX, |_, e| {
                    let k = (e.cport, u16::from(e.caddr[15]) - 1);
                    let (_, exp) = model.remove(&k).expect("expired entry was in the model");
                    assert!(exp <= now, "expired at {now}, deadline {exp}");
                });
                model.retain(|_, (_, exp)| {
                    assert!(*exp > now, "a connection past its deadline ({exp} <= {now}) was not expired");
                    true
                });
            }
        }
        if step % 10_000 == 0 {
            assert_eq!(t.used() as usize, model.len());
            for (c, _) in model.values() {
                assert!(t.lookup(&inbound(c)).is_some() && t.lookup(&outbound(c)).is_some());
            }
            // The walk over the wheel visits exactly the entries in use, each once.
            let mut walked = Vec::new();
            t.for_each_used(|idx, e| {
                assert!(e.in_use());
                walked.push(idx);
            });
            walked.sort_unstable();
            let scanned: Vec<u32> = (0..t.capacity()).filter(|&i| t.entry(i).in_use()).collect();
            assert_eq!(walked, scanned);
        }
    }
}

#[test]
fn an_owner_that_died_mid_change_is_repaired_on_adoption() {
    let mut s = store(256, 16);
    let conns: Vec<NewConn> = (0..100).map(|i| fnat(9, 1000 + i, 3000 + i, 1)).collect();
    {
        let (mut t, _) = shard(&mut s, 0);
        for c in &conns {
            t.insert(c, 0, 50).unwrap();
        }
    }
    // The previous owner was killed inside a change: sequence odd, chains and wheel half
    // written (here: wiped), free list lost.
    s.h.seq.store(s.h.seq.load(Ordering::Relaxed) | 1, Ordering::Relaxed);
    s.buckets.fill(0);
    s.wheel.fill(0);
    s.h.free_head.store(7, Ordering::Relaxed);
    let (mut t, rebuilt) = shard(&mut s, 0);
    assert!(rebuilt);
    assert_eq!(t.used(), 100);
    let mut walked = 0;
    t.for_each_used(|_, _| walked += 1);
    assert_eq!(walked, 100, "every entry in use is filed in the wheel again");
    for c in &conns {
        assert!(t.lookup(&inbound(c)).is_some() && t.lookup(&outbound(c)).is_some());
    }
    // The free list is whole again: 156 more fit, then it is full.
    for i in 0..156 {
        t.insert(&fnat(10, i, i, 2), 0, 50).unwrap();
    }
    assert!(t.insert(&fnat(11, 1, 1, 2), 0, 50).is_err());
    // Timers work after the rebuild.
    assert_eq!(t.advance(50, usize::MAX, |_, _| ()), 256);
    assert_eq!(s.h.counters.rebuilds.load(Ordering::Relaxed), 1);
}

#[test]
fn a_shard_file_outlives_its_owner() {
    let path = std::env::temp_dir().join(format!("conn-shard-test-{}", std::process::id()));
    let c = fnat(5, 555, 777, 3);
    {
        let mut f = ConnShardFile::create(&path, 0, 1 << 12, 64, 10_000, 0xabc).unwrap();
        let (mut t, rebuilt) = Shard::adopt(f.parts_mut(), 0);
        assert!(!rebuilt);
        t.insert(&c, 0, 9000).unwrap();
    }
    {
        // The "replacement worker".
        let mut f = ConnShardFile::open(&path).unwrap();
        let (mut t, rebuilt) = Shard::adopt(f.parts_mut(), 100);
        assert!(!rebuilt, "a clean handover needs no rebuild");
        let (idx, dir) = t.lookup(&outbound(&c)).expect("the connection survived");
        assert_eq!(dir, Dir::Out);
        assert_eq!(t.entry(idx).real, 3);
    }
    std::fs::remove_file(&path).unwrap();
}
