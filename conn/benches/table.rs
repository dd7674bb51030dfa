//! The connection table at 1M entries (`cargo bench -p conn --bench table`): a lookup that hits
//! (random flows over the whole table), one that misses, and an insert with its removal (the
//! table stays full at 1M minus one).

use std::hint::black_box;

use conn::{NewConn, Shard, Tuple};
use criterion::{criterion_group, criterion_main, Criterion};
use shm_layout::conn::{ConnEntry, ConnShardHeader, Mode};
use shm_layout::ConnParts;

const N: u32 = 1 << 20;

fn conn(i: u32) -> NewConn {
    NewConn {
        proto: 17,
        caddr: conn::v4((0x0a00_0000 + i / 60_000).to_be_bytes()),
        cport: 1024 + (i % 60_000) as u16,
        vaddr: conn::v4([198, 18, 0, 100]),
        vport: 53,
        laddr: conn::v4([198, 18, 1, 200 + (i % 32) as u8]),
        lport: 1024 + (i / 32 % 60_000) as u16,
        raddr: conn::v4([198, 18, 1, 2]),
        rport: 53,
        state: 0,
        mode: Mode::FullNat,
        service: 0,
        real: 0,
        client_mac: [2, 0, 0, 0, 1, 1],
        client_port: 0,
    }
}

fn inbound(c: &NewConn) -> Tuple {
    Tuple { proto: c.proto, src: c.caddr, sport: c.cport, dst: c.vaddr, dport: c.vport }
}

fn bench(c: &mut Criterion) {
    // The primary's geometry: BUCKETS_PER_ENTRY buckets an entry, 4096 wheel slots.
    let n_buckets = shm_layout::conn::BUCKETS_PER_ENTRY * N;
    let h = ConnShardHeader { capacity: N, n_buckets, wheel_slots: 4096, seed: 7, ..Default::default() };
    let (mut buckets, mut wheel, mut entries) =
        (vec![0u32; n_buckets as usize], vec![0u32; 4096], vec![ConnEntry::EMPTY; N as usize]);
    let parts = ConnParts { header: &h, buckets: &mut buckets, wheel: &mut wheel, entries: &mut entries };
    let (mut shard, _) = Shard::adopt(parts, 0);
    for i in 0..N - 1 {
        shard.insert(&conn(i), 0, 300_000).expect("room");
    }
    let mut g = c.benchmark_group("conn_table_1M");
    let mut k = 0u32;
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            k = k.wrapping_add(2_654_435_761);
            shard.lookup(black_box(&inbound(&conn(k % (N - 1)))))
        })
    });
    g.bench_function("lookup_miss", |b| {
        b.iter(|| {
            k = k.wrapping_add(2_654_435_761);
            let mut t = inbound(&conn(k % (N - 1)));
            t.dport = 54;
            shard.lookup(black_box(&t))
        })
    });
    g.bench_function("insert_and_remove", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let idx = shard.insert(black_box(&conn(N + k % 1000)), 0, 300_000).expect("one free entry");
            shard.remove(idx);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
