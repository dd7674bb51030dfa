//! Pick cost per scheduler at 10 and 100 backends, and the cost of building a Maglev table
//! (`cargo bench -p sched --bench pick`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sched::{Backend, ConhashBy, FlowKey, Kind, MhParams, Scheduler};

fn backends(n: usize) -> (Vec<Backend>, Vec<String>) {
    let b = (0..n)
        .map(|i| Backend {
            weight: 1 + (i % 4) as u32,
            active_conns: (i * 7 % 13) as u32,
            inactive_conns: (i * 5 % 11) as u32,
            available: true,
        })
        .collect();
    let ids = (0..n).map(|i| format!("10.1.{}.{}:80", i / 256, i % 256)).collect();
    (b, ids)
}

fn flows(n: u32) -> Vec<FlowKey> {
    (0..n)
        .map(|i| FlowKey {
            src: IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            src_port: (i % 60_000) as u16 + 1024,
            dst_port: 80,
            proto: 6,
        })
        .collect()
}

fn pick(c: &mut Criterion) {
    let fl = flows(1024);
    let kinds = [
        Kind::Rr,
        Kind::Wrr,
        Kind::Wlc,
        Kind::Lc,
        Kind::Fo,
        Kind::Conhash(ConhashBy::SourceIp),
        Kind::Conhash(ConhashBy::FiveTuple),
        Kind::Mh(MhParams::default()),
    ];
    let mut g = c.benchmark_group("pick");
    for n in [10, 100] {
        let (b, ids) = backends(n);
        for kind in kinds {
            let mut s = Scheduler::with_ids(kind, &b, &ids).expect("valid fixture");
            let label = match kind {
                Kind::Conhash(ConhashBy::FiveTuple) => "conhash-5tuple".to_owned(),
                k => k.to_string(),
            };
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bench, _| {
                bench.iter(|| {
                    i = (i + 1) & 1023;
                    black_box(s.pick(black_box(&b), black_box(&fl[i])))
                })
            });
        }
    }
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev-build");
    g.sample_size(10);
    for size in [65_537u32, 655_373] {
        for n in [10, 100] {
            let (b, ids) = backends(n);
            let kind = Kind::Mh(MhParams { table_size: size, hash_port: false });
            g.bench_with_input(BenchmarkId::new(format!("M={size}"), n), &n, |bench, _| {
                bench.iter(|| Scheduler::with_ids(kind, black_box(&b), &ids).expect("valid fixture"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pick, maglev_build);
criterion_main!(benches);
