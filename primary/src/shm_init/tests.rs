//! The layout is filled in a file-backed [`Shm`] in a scratch directory (no hugepages, no
//! DPDK: a `Layout` is 9.4 MiB, too large for the stack and not offered on the heap), first
//! poisoned with `0xa5` bytes so that a field `fill` forgets shows, even one whose expected
//! value is 0. Expected values are written out from the sample files, not recomputed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};

use shm_layout::{Header, PortSlot, RssKind, NAME_LEN};

use super::*;

const P8: u8 = 0xa5;
const P16: u16 = 0xa5a5;
const P32: u32 = 0xa5a5_a5a5;
const P64: u64 = 0xa5a5_a5a5_a5a5_a5a5;

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("primary-shm-init-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Overwrites everything `fill` is to write. The header and port slots are built whole, so a
/// field added to them does not compile here until this test knows about it.
fn poison(l: &mut Layout) {
    let h = &l.header;
    l.header = Header {
        // Set by Shm::create, not by fill.
        magic: h.magic,
        layout_version: AtomicU32::new(0),
        header_size: h.header_size,
        total_size: h.total_size,
        mailbox_offset: h.mailbox_offset,
        mailbox_size: h.mailbox_size,
        // Written later, by the supervisor.
        primary_heartbeat_ns: AtomicU64::new(0),
        housekeeping_cpu: P32 as i32,
        table_workers: h.table_workers,
        service_slots: h.service_slots,
        real_slots: h.real_slots,
        config_words: h.config_words,
        delta_words: h.delta_words,
        // Fill's.
        instance: Name([P8; NAME_LEN]),
        file_prefix: Name([P8; NAME_LEN]),
        n_ports: P32,
        n_workers: P32,
        primary_pid: P32,
        state: AtomicU32::new(P32),
        primary_start_ticks: P64,
        started_mono_ns: P64,
        started_unix_ns: P64,
        eal_init_us: P64,
        conn_capacity: P32,
    };
    for s in &mut l.ports {
        *s = PortSlot {
            name: Name([P8; 16]),
            device: Name([P8; NAME_LEN]),
            driver: Name([P8; NAME_LEN]),
            mac: [P8; 8],
            port_id: P16,
            rx_queues: P16,
            tx_queues: P16,
            peer: P16,
            exception: P16,
            is_exception: P16,
            mtu: P16,
            _pad: 0,
            reserved: [0; 11],
        };
    }
    for r in &mut l.rss {
        r.kind = P16;
        r.reta_size = P16;
        r.key = [P8; 40];
        r.reta = [P16; shm_layout::RETA_MAX];
    }
    for s in &mut l.workers {
        s.group = Name([P8; NAME_LEN]);
        s.pool = Name([P8; NAME_LEN]);
        s.lcore = P32;
        s.cpu = P32 as i32;
        s.tx_queue = P16;
        s.n_rx = P16;
        s.rx = [QueueRef { port: P16, queue: P16 }; shm_layout::MAX_RX_PER_WORKER];
        s.idle_sleep_us = P32;
        s.pool_size = P32;
        s.pool_avail.store(P32, Ordering::Relaxed);
        s.state.store(P32, Ordering::Relaxed);
    }
    for s in &l.mailbox.slots {
        s.seq.store(P64, Ordering::Relaxed);
    }
    l.mailbox.enqueue_pos.store(P64, Ordering::Relaxed);
    l.mailbox.dequeue_pos.store(P64, Ordering::Relaxed);
    l.config.generation.store(P64, Ordering::Relaxed);
    l.config.published_ns.store(P64, Ordering::Relaxed);
    l.config.static_len = P64;
}

/// Distinct, non-zero facts for `cfg`: port `i` is DPDK port `10 + i`, slot `s`'s pool has
/// `4095 + s` mbufs.
fn facts(cfg: &Config) -> StartFacts {
    StartFacts {
        primary: PrimaryFacts {
            pid: 4242,
            start_ticks: 777,
            started_mono_ns: 123_456_789,
            started_unix_ns: 1_700_000_000_123_456_789,
            eal_init_us: 31_337,
        },
        ports: (0..cfg.ports.len())
            .map(|i| PortFacts {
                port_id: 10 + i as u16,
                mac: [2, 0, 0, 0, i as u8, 0x5a],
                driver: format!("net_x{i}"),
                rss: if i == 0 {
                    RssFacts { kind: RssKind::Emulated, key: rss::MS_KEY, reta: vec![0, 1, 1, 0] }
                } else {
                    RssFacts::single()
                },
            })
            .collect(),
        pools: (0..cfg.worker_lcores().count())
            .map(|s| PoolFacts { name: format!("pool-{s}"), size: 4095 + s as u32, avail: 4000 + s as u32 })
            .collect(),
        startup_text: "# the file the instance started from\n".to_owned(),
    }
}

/// A poisoned layout in `dir`, then `fill`ed; checks that `fill` leaves the version to
/// `Shm::create`.
fn poisoned_then_filled(dir: &Path, cfg: &Config, facts: &StartFacts) -> (Shm, Result<(), FillError>) {
    let mut filled = Ok(());
    let shm = Shm::create(&dir.join("t.shm"), table_sizes(cfg), |l, t| {
        poison(l);
        filled = fill(l, t, cfg, facts);
        assert_eq!(l.header.layout_version.load(Ordering::Relaxed), 0, "fill does not publish");
    })
    .unwrap();
    (shm, filled)
}

/// A port slot as expected: name, DPDK device, rx and tx queues, peer, exception, whether it
/// is an exception path, MTU.
type PortRow = (&'static str, &'static str, u16, u16, u16, u16, u16, u16);
/// A worker slot as expected: group, lcore, cpu, rx queues (port, queue), idle sleep.
type WorkerRow = (&'static str, u32, i32, &'static [(u16, u16)], u32);

/// Everything `fill` writes, against the expected rows and `facts`.
fn check(shm: &Shm, cfg: &Config, facts: &StartFacts, ports: &[PortRow], workers: &[WorkerRow]) {
    let l = shm.layout();
    let h = &l.header;
    assert_eq!((h.instance.as_str(), h.file_prefix.as_str()), ("dpvs".into(), "dpvs".into()));
    assert_eq!((h.n_ports as usize, h.n_workers as usize), (ports.len(), workers.len()));
    let p = &facts.primary;
    assert_eq!(
        (h.primary_pid, h.primary_start_ticks, h.started_mono_ns, h.started_unix_ns, h.eal_init_us),
        (p.pid, p.start_ticks, p.started_mono_ns, p.started_unix_ns, p.eal_init_us)
    );
    assert_eq!(h.conn_capacity, 65_536);
    assert_eq!(h.housekeeping_cpu, cfg.instance.housekeeping_cpu.map_or(-1, |c| c as i32));
    assert_eq!(InstanceState::from_u32(h.state.load(Ordering::Relaxed)), Some(InstanceState::Starting));

    assert_eq!(l.ports().len(), ports.len());
    for (i, (s, row)) in l.ports().iter().zip(ports).enumerate() {
        let (name, device, rxq, txq, peer, exception, is_exception, mtu) = *row;
        assert_eq!((s.name.as_str(), s.device.as_str()), (name.into(), device.into()), "port {i}");
        assert_eq!(
            (s.rx_queues, s.tx_queues, s.peer, s.exception, s.is_exception, s.mtu),
            (rxq, txq, peer, exception, is_exception, mtu),
            "port {name}: rx/tx queues, peer, exception, is_exception, mtu"
        );
        let f = &facts.ports[i];
        assert_eq!((s.port_id, s.driver.as_str()), (f.port_id, f.driver.as_str().into()), "port {name}");
        assert_eq!(s.mac, [f.mac[0], f.mac[1], f.mac[2], f.mac[3], f.mac[4], f.mac[5], 0, 0], "port {name}");
        let r = &l.rss[i];
        assert_eq!((r.kind(), r.key, r.reta()), (f.rss.kind, f.rss.key, f.rss.reta.as_slice()), "port {name}: RSS");
    }

    assert_eq!(l.workers().len(), workers.len());
    for (slot, (s, row)) in l.workers().iter().zip(workers).enumerate() {
        let (group, lcore, cpu, rx, idle_sleep_us) = *row;
        let rx: Vec<QueueRef> = rx.iter().map(|&(port, queue)| QueueRef { port, queue }).collect();
        assert_eq!(s.group.as_str(), group, "slot {slot}");
        assert_eq!(
            (s.lcore, s.cpu, s.tx_queue, s.idle_sleep_us),
            (lcore, cpu, slot as u16, idle_sleep_us),
            "slot {slot}"
        );
        assert_eq!(s.rx_queues(), rx, "slot {slot}");
        let f = &facts.pools[slot];
        assert_eq!(s.pool.as_str(), f.name.as_str(), "slot {slot}");
        assert_eq!((s.pool_size, s.pool_avail.load(Ordering::Relaxed)), (f.size, f.avail), "slot {slot}");
        assert_eq!(s.state.load(Ordering::Relaxed), WorkerState::Empty as u32, "slot {slot}");
    }

    for (i, s) in l.mailbox.slots.iter().enumerate() {
        assert_eq!(s.seq.load(Ordering::Relaxed), i as u64, "mailbox slot {i} free for position {i}");
    }
    assert_eq!((l.mailbox.enqueue_pos.load(Ordering::Relaxed), l.mailbox.dequeue_pos.load(Ordering::Relaxed)), (0, 0));

    assert_eq!(l.config.static_text(), facts.startup_text);
    assert_eq!(l.config.published_ns.load(Ordering::Relaxed), p.started_mono_ns);
    let (generation, rt) = mailbox::generation::current(shm.generations(), None).unwrap();
    assert_eq!(generation, 1);
    assert_eq!(rt, cfg.runtime());
}

/// Fills a poisoned layout from `cfg` in scratch directory `name` and checks every field.
fn fill_and_check(name: &str, cfg: &Config, ports: &[PortRow], workers: &[WorkerRow]) -> (Shm, Scratch) {
    let facts = facts(cfg);
    let dir = Scratch::new(name);
    let (shm, filled) = poisoned_then_filled(&dir.0, cfg, &facts);
    filled.unwrap();
    check(&shm, cfg, &facts, ports, workers);
    (shm, dir)
}

#[test]
fn the_embedded_two_arm_default_fills_two_ports_and_one_worker() {
    let (shm, _dir) = fill_and_check(
        "default",
        &Config::embedded_default(),
        &[("dpdk0", "net_tap0", 1, 1, 1, NO_PORT, 0, 1500), ("dpdk1", "net_tap1", 1, 1, 0, NO_PORT, 0, 1500)],
        &[("fwd", 1, 1, &[(0, 0), (1, 0)], 20)],
    );
    // Published by Shm::create after fill: an opener sees the same.
    let other = Shm::open(shm.path()).unwrap();
    assert_eq!(other.layout().workers()[0].rx_queues(), shm.layout().workers()[0].rx_queues());
}

#[test]
fn memif_groups_fill_three_ports_and_three_workers_in_two_groups() {
    let cfg = Config::from_str(include_str!("../../../conf/samples/memif-groups.toml"), "memif-groups.toml").unwrap();
    fill_and_check(
        "groups",
        &cfg,
        &[
            ("dpdk0", "net_memif0", 2, 3, 1, NO_PORT, 0, 1500),
            ("dpdk1", "net_memif1", 2, 3, 0, NO_PORT, 0, 1500),
            // Not in the l2 pair: frames go back out of it.
            ("dpdk2", "net_memif2", 1, 3, 2, NO_PORT, 0, 1500),
        ],
        &[("fnat", 1, 1, &[(0, 0), (1, 0)], 0), ("fnat", 2, 1, &[(0, 1), (1, 1)], 0), ("dr", 3, 1, &[(2, 0)], 0)],
    );
}

#[test]
fn an_exception_path_port_serves_its_data_port() {
    let text = conf::EMBEDDED_DEFAULT
        .replace("# kni = \"dpdk0.kni\"", "kni = \"dpdk0.kni\"")
        .replace("mtu = 1500 ", "mtu = 9000 ")
        .replace("\ncpu = 1\n", "\n");
    fill_and_check(
        "kni",
        &Config::from_str(&text, "kni.toml").unwrap(),
        &[
            ("dpdk0", "net_tap0", 1, 1, 1, 2, 0, 9000),
            ("dpdk1", "net_tap1", 1, 1, 0, NO_PORT, 0, 1500),
            ("dpdk0.kni", "net_tap_kni0", 1, 1, 0, NO_PORT, 1, 9000),
        ],
        // Not pinned: cpu -1.
        &[("fwd", 1, -1, &[(0, 0), (1, 0), (2, 0)], 20)],
    );
}

#[test]
fn facts_that_do_not_match_the_configuration_are_refused_before_anything_is_written() {
    let cfg = Config::embedded_default();
    let dir = Scratch::new("mismatch");
    let mut short = facts(&cfg);
    short.ports.pop();
    let (shm, filled) = poisoned_then_filled(&dir.0, &cfg, &short);
    assert!(matches!(filled, Err(FillError::PortCount { expected: 2, got: 1 })), "{filled:?}");
    let l = shm.layout();
    assert_eq!((l.header.n_ports, l.workers[0].lcore, l.ports[0].port_id), (P32, P32, P16), "nothing written");
    assert_eq!(l.config.generation.load(Ordering::Relaxed), P64, "nothing written");

    let mut extra = facts(&cfg);
    extra.pools.push(extra.pools[0].clone());
    let (_shm, filled) = poisoned_then_filled(&dir.0, &cfg, &extra);
    let e = filled.unwrap_err();
    assert_eq!(e.to_string(), "2 mbuf pools for the 1 forwarding lcores of the configuration");
}

#[test]
fn a_configuration_too_large_for_a_generation_buffer_is_refused_before_anything_is_written() {
    let mut cfg = Config::embedded_default();
    // Not a valid configuration (too many real servers), but fill does not validate.
    let real = cfg.services[0].reals[0];
    cfg.services[0].reals = vec![real; 100_000];
    let facts = facts(&cfg);
    let dir = Scratch::new("too-large");
    let (shm, filled) = poisoned_then_filled(&dir.0, &cfg, &facts);
    let e = filled.unwrap_err();
    assert!(
        matches!(e, FillError::FirstGeneration(mailbox::generation::PublishError::TooLarge { len, max }) if len > max),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("configuration generation 1: the configuration is "), "{e}");
    let l = shm.layout();
    assert_eq!((l.header.n_workers, l.config.static_len), (P32, P64), "nothing written");
}

#[test]
fn create_publishes_the_filled_file_and_removes_an_unfilled_one() {
    let mut cfg = Config::embedded_default();
    let dir = Scratch::new("create");
    cfg.instance.shm_dir = dir.0.clone();
    let facts = facts(&cfg);
    let shm = create(&cfg, &facts).unwrap();
    assert_eq!(shm.path(), cfg.shm_path());
    let opened = Shm::open(&cfg.shm_path()).unwrap();
    assert_eq!(opened.layout().header.layout_version.load(Ordering::Acquire), shm_layout::LAYOUT_VERSION);
    assert_eq!(opened.layout().ports()[1].port_id, 11);
    assert_eq!(opened.layout().workers()[0].pool.as_str(), "pool-0");
    drop((opened, shm));

    let mut wrong = facts.clone();
    wrong.pools.clear();
    let e = create(&cfg, &wrong).unwrap_err();
    assert!(matches!(e, CreateError::Fill(FillError::PoolCount { expected: 1, got: 0 })), "{e:?}");
    assert!(!cfg.shm_path().exists(), "the unfilled file is removed");
}

#[test]
fn one_conn_shard_per_forwarding_lcore_next_to_the_shm_file() {
    let mut cfg = Config::from_str(include_str!("../../../conf/samples/memif-groups.toml"), "t").unwrap();
    let dir = Scratch::new("shards");
    cfg.instance.shm_dir = dir.0.clone();
    cfg.connections.capacity_per_lcore = 1024;
    let paths = create_conn_shards(&cfg, 0x5eed_0000).unwrap();
    assert_eq!(paths, (0..3).map(|s| dir.0.join(format!("dpvs.shm.conn{s}"))).collect::<Vec<_>>());
    for (slot, p) in paths.iter().enumerate() {
        let shard = shm_layout::ConnShardFile::open(p).unwrap();
        let h = shard.header();
        assert_eq!(
            (h.slot, h.capacity, h.wheel_slots, h.tick_us, h.seed),
            (slot as u32, 1024, CONN_WHEEL_SLOTS, CONN_TICK_US, 0x5eed_0000 ^ slot as u64)
        );
    }
    cfg.connections.capacity_per_lcore = 1000;
    assert!(matches!(create_conn_shards(&cfg, 1), Err(ShmError::Invalid { .. })), "not a power of two");
}

#[test]
fn the_startup_text_is_the_embedded_default_or_the_file() {
    let cfg = Config::embedded_default();
    assert_eq!(startup_text(&cfg), conf::EMBEDDED_DEFAULT);
    let dir = Scratch::new("text");
    let path = dir.0.join("lb.toml");
    std::fs::write(&path, "# lb\n").unwrap();
    let from_file = Config { source: path.display().to_string(), ..cfg.clone() };
    assert_eq!(startup_text(&from_file), "# lb\n");
    let gone = Config { source: dir.0.join("gone.toml").display().to_string(), ..cfg };
    assert_eq!(startup_text(&gone), "");
}
