//! The whole per-lcore pipeline on synthetic batches: 64-byte UDP frames from clients to a
//! Full-NAT service, through parsing, the connection lookup, the scheduler (for a new flow),
//! the rewrite with incremental checksums and the per-lcore, per-service and per-real counters,
//! as a worker runs them, bursts of 32 classified first (no driver: the frames are in buffers
//! with an mbuf's headroom, [`common::Mbuf`]).
//! At 1 flow and at 1M flows, each timed batch 1024 packets of flows already in the table
//! (`cargo bench -p workers --bench pipeline`; criterion's throughput is packets per second);
//! over IPv4 (`pipeline_fnat_udp`), the same over IPv6 (`pipeline_fnat_udp6`: an IPv6
//! client, VIP, local addresses and real server; the same UDP payload), and NAT64
//! (`pipeline_nat64_udp`: the IPv6 client and VIP, IPv4 local addresses and real server).

mod common;

use std::hint::black_box;

use common::{frame, frame6, learned6, runtime, runtime6, runtime64, store, Mbuf, P0, P1, VIP, VIP6};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shm_layout::{ConnParts, RealCounters, ServiceCounters};
use workers::pipeline::{Action, Pipeline, PortCtx};

const BATCH: usize = 1024;

/// A family's runtime, the next hops it learned, and its flows' frames.
struct Family {
    name: &'static str,
    runtime: fn() -> conf::Runtime,
    learned: fn() -> workers::neigh::Hops,
    frame: fn(u32) -> Vec<u8>,
}

fn bench(c: &mut Criterion) {
    let families = [
        Family { name: "pipeline_fnat_udp", runtime, learned: Default::default, frame },
        Family { name: "pipeline_fnat_udp6", runtime: runtime6, learned: learned6, frame: frame6 },
        Family { name: "pipeline_nat64_udp", runtime: runtime64, learned: Default::default, frame: frame6 },
    ];
    for f in families {
        bench_family(c, f);
    }
}

fn bench_family(c: &mut Criterion, family: Family) {
    let frame = family.frame;
    let mut group = c.benchmark_group(family.name);
    group.throughput(Throughput::Elements(BATCH as u64));
    for flows in [1u32, 1_000_000] {
        let mut s = store((flows * 2).next_power_of_two().max(1024));
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = conn::Shard::adopt(parts, 0);
        let stats: Vec<ServiceCounters> =
            (0..shm_layout::TableSizes::SMALL.service_slots).map(|_| Default::default()).collect();
        let reals: Vec<RealCounters> =
            (0..shm_layout::TableSizes::SMALL.real_slots).map(|_| Default::default()).collect();
        let rt = (family.runtime)();
        let services =
            workers::lb::build_services(&rt, (0, 1), &mut Vec::new(), &(family.learned)()).expect("services");
        let mut fnat = workers::lb::Balancer::new(Vec::new(), shard, vec![P0, P1], 0).with_stats(&stats, &reals);
        fnat.reconfigure(1, services);
        let ports = vec![
            PortCtx { mac: P0, peer: 1, addrs: vec![VIP], addrs6: vec![VIP6], exception: None, is_exception: false },
            PortCtx { mac: P1, peer: 0, addrs: vec![], addrs6: vec![], exception: None, is_exception: false },
        ];
        let mut pipeline = Pipeline::with_balancer(ports, fnat);
        // Open every flow once, untimed.
        for i in 0..flows {
            let action = pipeline.process(0, &mut frame(i));
            assert!(matches!(action, Action::Nat { new: true, .. }), "flow {i}: {action:?}");
        }
        // Batches of packets of flows spread over the whole table.
        let pool: Vec<Mbuf> = (0..(BATCH as u32 * 16).min(flows * BATCH as u32))
            .map(|k| Mbuf::new(&frame(k.wrapping_mul(2_654_435_761) % flows)))
            .collect();
        let mut next = 0usize;
        group.bench_function(format!("{flows}_flows"), |b| {
            b.iter_batched_ref(
                || {
                    let batch: Vec<Mbuf> = pool[next..next + BATCH].to_vec();
                    next = (next + BATCH) % pool.len();
                    batch
                },
                |batch| {
                    // As a worker does: a burst of 32 classified, then processed.
                    for burst in batch.chunks_mut(dpdk::BURST_SIZE) {
                        pipeline.classify(burst.iter().map(|f| (Some(0), f.data())), false);
                        for f in burst.iter_mut() {
                            black_box(pipeline.process(0, f));
                        }
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
