//! The safe layer against real DPDK on `net_ring` and `net_null` vdevs (no NIC, no hugepages:
//! `--no-huge --no-shconf`). The EAL initialises once per process, so this is one test.

use dpdk::{Burst, Eal, Error, LcoreId, Mbuf, Mempool, Port, ProcessType, RecoverMode, Ring, BURST_SIZE};

#[rustfmt::skip]
const FRAME: [u8; 60] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // Ethernet
    0x45, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,             // IPv4
    198, 18, 0, 1, 198, 18, 0, 2,
    0x04, 0x00, 0x00, 0x35, 0x00, 0x1a, 0x00, 0x00,                                     // UDP
    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
    0xa5, 0xa5, 0xa5, 0xa5,
];

fn eal() -> Eal {
    let prefix = format!("dpdk-safe-test-{}", std::process::id());
    let args = [
        "dpdk-safe-test",
        "--lcores=0@0",
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level=*:warning",
        &format!("--file-prefix={prefix}"),
        "--vdev=net_ring0",
        "--vdev=net_null0",
        "--vdev=net_null1",
    ];
    Eal::init(&args).expect("EAL init")
}

#[test]
fn safe_layer_on_ring_and_null_vdevs() {
    let _cleanup = RuntimeDir;
    let eal = eal();
    assert_eq!(eal.process_type(), ProcessType::Primary);
    assert_eq!(Eal::init(&["again"]).unwrap_err(), Error::AlreadyInitialised);
    assert_eq!(LcoreId::current(), LcoreId(0));

    // Mempool and mbufs.
    let pool = Mempool::create_pktmbuf("test_pool", 1023, 32, 2048 + 128, -1).unwrap();
    assert_eq!(pool.size(), 1023);
    assert_eq!(pool.avail_count(), 1023);
    assert_eq!(Mempool::lookup("test_pool").unwrap().name(), "test_pool");
    assert!(matches!(Mempool::lookup("nope"), Err(Error::NotFound { what: "mempool", .. })));
    assert!(matches!(Mempool::create_pktmbuf("test_pool", 1023, 32, 2176, -1), Err(Error::Call { .. })));
    {
        let m = Mbuf::from_bytes(&pool, &FRAME).unwrap();
        assert_eq!(m.data(), &FRAME);
        assert_eq!(m.pkt_len(), 60);
        assert_eq!(pool.in_use_count(), 1);
    }
    assert_eq!(pool.in_use_count(), 0, "dropping an Mbuf frees it");

    // net_ring loops what is sent on a queue back to the same queue's rx.
    let ring_port = Port::by_name("net_ring0").unwrap();
    assert_eq!(ring_port.info().unwrap().driver, "net_ring");
    assert!(matches!(Port::by_name("net_nothing"), Err(Error::NotFound { what: "port", .. })));
    ring_port.configure(1, 1).unwrap();
    ring_port.setup_rx_queue(0, 512, &pool).unwrap();
    ring_port.setup_tx_queue(0, 512).unwrap();
    ring_port.start().unwrap();
    let mut rxq = ring_port.rx_queue(0).unwrap();
    let mut txq = ring_port.tx_queue(0).unwrap();
    assert!(matches!(ring_port.rx_queue(0), Err(Error::QueueBusy { port: _, queue: 0 })));
    let mut out = Burst::new();
    for i in 0..4u8 {
        let mut f = FRAME;
        f[59] = i;
        out.push(Mbuf::from_bytes(&pool, &f).unwrap()).unwrap();
    }
    assert_eq!(txq.tx(&mut out), 4);
    assert!(out.is_empty());
    let mut back = Burst::new();
    assert_eq!(rxq.rx(&mut back), 4);
    for i in 0..4 {
        assert_eq!(back.data(i)[..59], FRAME[..59]);
        assert_eq!(back.data(i)[59], i as u8, "order kept");
    }
    // retain frees what it drops and keeps the rest in order; clear frees the rest.
    let in_use = pool.in_use_count();
    assert_eq!(back.retain(|f| f[59] % 2 == 0), 2);
    assert_eq!(back.len(), 2);
    assert_eq!((back.data(0)[59], back.data(1)[59]), (0, 2));
    assert_eq!(pool.in_use_count(), in_use - 2);
    back.clear();
    assert_eq!(pool.in_use_count(), in_use - 4);
    let stats = ring_port.stats().unwrap();
    assert_eq!((stats.ipackets, stats.opackets), (4, 4));

    // distribute_packets lends each packet, which may grow in the middle (into the tailroom)
    // but not past the buffer; a dropped packet goes back to the pool.
    let mut b = Burst::new();
    for i in 0..2u8 {
        let mut f = FRAME;
        f[59] = i;
        b.push(Mbuf::from_bytes(&pool, &f).unwrap()).unwrap();
    }
    let mut outs = [Burst::new()];
    let in_use = pool.in_use_count();
    let freed = b.distribute_packets(&mut outs, |_, p| {
        if p.data_mut()[59] == 1 {
            return None;
        }
        assert!(p.insert(14, 8), "room in the tailroom");
        assert!(!p.insert(0, 60_000), "never past the buffer");
        assert!(!p.insert(1000, 1), "not past the data");
        Some(0)
    });
    assert_eq!((freed, pool.in_use_count()), (1, in_use - 1));
    let grown = outs[0].data(0);
    let mut f0 = FRAME;
    f0[59] = 0;
    assert_eq!(grown.len(), f0.len() + 8);
    assert_eq!((&grown[..14], &grown[22..]), (&f0[..14], &f0[14..]), "the tail moved by 8");
    outs[0].clear();

    // A full burst refuses a push and hands the packet back.
    let mut full = Burst::new();
    for _ in 0..BURST_SIZE {
        full.push(Mbuf::alloc(&pool).unwrap()).unwrap();
    }
    let extra = Mbuf::alloc(&pool).unwrap();
    assert!(full.push(extra).is_err());
    drop(full);

    // net_null: rx makes packets from the queue's pool, tx frees them.
    let null = Port::by_name("net_null0").unwrap();
    null.configure(1, 1).unwrap();
    null.setup_rx_queue(0, 512, &pool).unwrap();
    null.setup_tx_queue(0, 512).unwrap();
    null.start().unwrap();
    let (mut nrx, mut ntx) = (null.rx_queue(0).unwrap(), null.tx_queue(0).unwrap());
    let mut b = Burst::new();
    assert_eq!(nrx.rx(&mut b), BURST_SIZE);
    assert_eq!(ntx.tx(&mut b), BURST_SIZE);

    // RSS: net_null keeps a key and a redirection table, as a NIC's driver does.
    let rss = Port::by_name("net_null1").unwrap();
    let info = rss.info().unwrap();
    assert!(info.reta_size > 0 && info.rss_offloads != 0, "{info:?}");
    let key: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(7)).collect();
    let types = dpdk::rss_hf::NONFRAG_IPV4_TCP | dpdk::rss_hf::NONFRAG_IPV4_UDP;
    rss.configure_rss(2, 2, &key, types & info.rss_offloads).unwrap();
    for q in 0..2 {
        rss.setup_rx_queue(q, 512, &pool).unwrap();
        rss.setup_tx_queue(q, 512).unwrap();
    }
    rss.start().unwrap();
    let table: Vec<u16> = (0..info.reta_size).map(|i| (i * 3 / 2) % 2).collect();
    rss.set_reta(&table).unwrap();
    assert_eq!(rss.reta(info.reta_size).unwrap(), table);
    // net_null does not take the key from the configuration: set it, as the primary does
    // when what it reads back differs.
    rss.set_rss_hash(&key, types & info.rss_offloads).unwrap();
    let (read, hf) = rss.rss_hash().unwrap();
    assert_eq!((&read[..40], hf), (&key[..], types & info.rss_offloads));
    rss.stop().unwrap();
    rss.close().unwrap();

    // Rings carry mbufs between owners.
    let ring = Ring::create("test_ring", 64, -1).unwrap();
    assert_eq!(Ring::lookup("test_ring").unwrap().count(), 0);
    let mut b = Burst::new();
    for _ in 0..5 {
        b.push(Mbuf::from_bytes(&pool, &FRAME).unwrap()).unwrap();
    }
    assert_eq!(ring.enqueue(&mut b), 5);
    assert_eq!(ring.count(), 5);
    assert_eq!(ring.dequeue(&mut b), 5);
    assert_eq!(b.data(4), &FRAME);
    drop(b);
    // A partial hand-over keeps the rest, in order, at the front of the burst.
    let small = Ring::create("small_ring", 8, -1).unwrap();
    let mut b = Burst::new();
    for i in 0..10u8 {
        let mut f = FRAME;
        f[59] = i;
        b.push(Mbuf::from_bytes(&pool, &f).unwrap()).unwrap();
    }
    assert_eq!(small.enqueue(&mut b), 7, "a ring of 8 holds 7");
    assert_eq!(b.len(), 3);
    assert_eq!((b.data(0)[59], b.data(2)[59]), (7, 9));
    drop(b);
    let mut b = Burst::new();
    assert_eq!(small.dequeue(&mut b), 7);
    assert_eq!((b.data(0)[59], b.data(6)[59]), (0, 6));
    drop(b);

    // Recovery after a "dead" lcore (here this very lcore, whose cache holds what was freed
    // above): the cache goes back to the pool, buffers nobody lists (leaked by a dead holder)
    // are found and returned, and every buffer is listed once.
    let cached = pool.cache_len(LcoreId(0));
    assert!(cached > 0);
    for _ in 0..10 {
        let _leaked = Mbuf::alloc(&pool).unwrap().into_raw();
    }
    assert_eq!(pool.in_use_count(), 10);
    let cached = pool.cache_len(LcoreId(0));
    let r = pool.recover_dead_lcore(LcoreId(0), RecoverMode::ExclusiveFindLost).unwrap();
    assert_eq!((r.restored, r.lost, r.duplicates, r.ring_repairs), (cached, 10, 0, 0));
    assert_eq!(pool.cache_len(LcoreId(0)), 0);
    assert_eq!(pool.free_count(), pool.size(), "every buffer free, none listed twice");
    assert_eq!(
        pool.recover_dead_lcore(LcoreId(0), RecoverMode::ExclusiveFindLost).unwrap(),
        Default::default(),
        "nothing more to find"
    );
    // Shared mode returns the cache, leaves the ring alone, and finds nothing lost.
    for _ in 0..3 {
        drop(Mbuf::alloc(&pool).unwrap());
    }
    let cached = pool.cache_len(LcoreId(0));
    let r = pool.recover_dead_lcore(LcoreId(0), RecoverMode::Shared).unwrap();
    assert_eq!((r.restored, r.lost, r.duplicates), (cached, 0, 0));
    assert_eq!(pool.free_count(), pool.size());

    for p in [ring_port, null] {
        p.stop().unwrap();
        p.close().unwrap();
    }
    drop((rxq, txq, nrx, ntx));
    drop(eal);
}

/// EAL makes its runtime directory even without shared config files: remove it, pass or fail.
struct RuntimeDir;

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/dpdk-safe-test-{}", std::process::id()));
    }
}
