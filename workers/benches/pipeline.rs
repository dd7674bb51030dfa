//! The whole per-lcore pipeline on synthetic batches: 64-byte UDP frames from clients to a
//! Full-NAT service, through parsing, the connection lookup, the scheduler (for a new flow),
//! the rewrite with incremental checksums and the per-lcore, per-service and per-real counters,
//! as a worker runs them, bursts of 32 classified first (no driver: the frames are `Vec<u8>`).
//! At 1 flow and at 1M flows, each timed batch 1024 packets of flows already in the table
//! (`cargo bench -p workers --bench pipeline`; criterion's throughput is packets per second).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shm_layout::conn::{ConnEntry, ConnShardHeader};
use shm_layout::{ConnParts, RealCounters, ServiceCounters};
use wire::{EthernetAddress, IpProtocol, UdpPacket, UdpRepr};
use workers::pipeline::{Action, Pipeline, PortCtx};

const P0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
const P1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// Local addresses: 32, so that 1M flows get local ports (64 511 each).
const LADDRS: u8 = 32;
const BATCH: usize = 1024;

struct Store {
    h: ConnShardHeader,
    buckets: Vec<u32>,
    wheel: Vec<u32>,
    entries: Vec<ConnEntry>,
}

/// A connection table of `capacity` entries with the primary's geometry.
fn store(capacity: u32) -> Store {
    let h = ConnShardHeader {
        capacity,
        n_buckets: shm_layout::conn::BUCKETS_PER_ENTRY * capacity,
        wheel_slots: 4096,
        seed: 7,
        ..Default::default()
    };
    Store {
        h,
        buckets: vec![0; (shm_layout::conn::BUCKETS_PER_ENTRY * capacity) as usize],
        wheel: vec![0; 4096],
        entries: vec![ConnEntry::EMPTY; capacity as usize],
    }
}

fn runtime() -> conf::Runtime {
    let laddr = |i: u8| Ipv4Addr::new(198, 18, 1, 200 + i);
    let mut addresses = vec![conf::IfAddr { port: 0, addr: VIP, prefix: 24 }];
    addresses.extend((0..LADDRS).map(|i| conf::IfAddr { port: 1, addr: laddr(i), prefix: 24 }));
    conf::Runtime {
        addresses,
        neighbours: vec![conf::Neighbour { addr: RS, mac: [2, 0, 0, 0, 1, 2], port: 1 }],
        routes: vec![],
        services: vec![conf::Service {
            vip: VIP,
            port: 53,
            protocol: conf::Protocol::Udp,
            scheduler: sched::Kind::Rr,
            local_addresses: (0..LADDRS).map(laddr).collect(),
            reals: vec![conf::Real { addr: RS, port: 53, weight: 1, forward: conf::Forward::Fnat, upper: 0, lower: 0 }],
            persistence: 0,
            deny: vec![],
            allow: vec![],
            proxy_protocol: conf::ProxyProtocol::Off,
            group: None,
        }],
    }
}

/// Flow `i`'s 64-byte frame: client 10.x.y.z, port 1024 + i % 64 512, to VIP:53.
fn frame(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0x0a00_0000 + i / 64_512);
    let payload = [0xa5u8; 18];
    let udp = UdpRepr { src_port: 1024 + (i % 64_512) as u16, dst_port: 53, payload: &payload };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d[..]), src, VIP);
    let mut f = vec![0u8; 34 + d.len()];
    wire::emit_ipv4_frame(&mut f, (CLIENT_MAC, P0), (src, VIP), IpProtocol::Udp, &d);
    f
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_fnat_udp");
    group.throughput(Throughput::Elements(BATCH as u64));
    for flows in [1u32, 1_000_000] {
        let mut s = store((flows * 2).next_power_of_two().max(1024));
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = conn::Shard::adopt(parts, 0);
        let stats: Vec<ServiceCounters> = (0..shm_layout::SERVICE_COUNTER_SLOTS).map(|_| Default::default()).collect();
        let reals: Vec<RealCounters> = (0..shm_layout::REAL_COUNTER_SLOTS).map(|_| Default::default()).collect();
        let rt = runtime();
        let services =
            workers::lb::build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).expect("services");
        let mut fnat = workers::lb::Balancer::new(Vec::new(), shard, vec![P0, P1], 0).with_stats(&stats, &reals);
        fnat.reconfigure(1, services);
        let ports = vec![
            PortCtx { mac: P0, peer: 1, addrs: vec![VIP], exception: None, is_exception: false },
            PortCtx { mac: P1, peer: 0, addrs: vec![], exception: None, is_exception: false },
        ];
        let mut pipeline = Pipeline::with_balancer(ports, fnat);
        // Open every flow once, untimed.
        for i in 0..flows {
            let action = pipeline.process(0, &mut frame(i));
            assert!(matches!(action, Action::Nat { new: true, .. }), "flow {i}: {action:?}");
        }
        // Batches of packets of flows spread over the whole table.
        let pool: Vec<Vec<u8>> = (0..(BATCH as u32 * 16).min(flows * BATCH as u32))
            .map(|k| frame(k.wrapping_mul(2_654_435_761) % flows))
            .collect();
        let mut next = 0usize;
        group.bench_function(format!("{flows}_flows"), |b| {
            b.iter_batched_ref(
                || {
                    let batch: Vec<Vec<u8>> = pool[next..next + BATCH].to_vec();
                    next = (next + BATCH) % pool.len();
                    batch
                },
                |batch| {
                    // As a worker does: a burst of 32 classified, then processed.
                    for burst in batch.chunks_mut(dpdk::BURST_SIZE) {
                        pipeline.classify(burst.iter().map(|f| (Some(0), f.as_slice())), false);
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
