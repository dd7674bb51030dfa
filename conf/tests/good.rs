//! Every sample in `samples/` resolves, to the values its comments promise.

use std::fs;
use std::path::{Path, PathBuf};

use conf::{Config, Device, Forwarding, Lcore, QueueRef};

fn sample(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name);
    Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_sample_resolves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut n = 0;
    for entry in fs::read_dir(dir).expect("samples/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.source, path.display().to_string());
            // Slots number the lcores 0.. in order, and every port has one tx queue per lcore.
            let slots: Vec<usize> = config.worker_lcores().map(|(_, l)| l.slot).collect();
            assert_eq!(slots, (0..slots.len()).collect::<Vec<_>>());
            for port in &config.ports {
                assert_eq!(usize::from(port.tx_queues), slots.len());
            }
            n += 1;
        }
    }
    assert_eq!(n, 6, "expected the six samples");
}

#[test]
fn tap_fnat_is_the_embedded_default() {
    let file = sample("tap-fnat.toml");
    let embedded = Config::embedded_default();
    assert_eq!(Config { source: "<embedded>".into(), ..file.clone() }, embedded);
    assert_eq!(file.forwarding, Forwarding::L2Pair { a: 0, b: 1 });
    assert_eq!(file.ports[1].device, Device::Vdev("net_tap1,iface=dpvs-tap1,mac=02:00:00:00:00:11".into()));
    assert_eq!(file.ports[0].device.dpdk_name(), "net_tap0");
    let (group, lcore) = file.worker_lcores().next().expect("one lcore");
    assert_eq!(group.name, "fwd");
    assert_eq!(group.idle_sleep_us, 20);
    assert_eq!(lcore.lcore, Lcore { id: 1, cpu: Some(1) });
    assert_eq!(lcore.rx, [QueueRef { port: 0, queue: 0 }, QueueRef { port: 1, queue: 0 }]);
    assert_eq!(file.instance.main_lcore, Lcore { id: 0, cpu: Some(0) });
    assert_eq!(file.shm_path(), PathBuf::from("/dev/shm/dpvs.shm"));
    let svc = &file.services[0];
    assert_eq!((svc.vip, svc.port, svc.protocol), ("198.18.0.100".parse().unwrap(), 80, conf::Protocol::Tcp));
    assert_eq!(svc.reals[0].port, 8080);
    assert_eq!(file.connections.capacity_per_lcore, 65536);
}

#[test]
fn tap_one_arm_reflects() {
    let c = sample("tap-one-arm.toml");
    assert_eq!(c.forwarding, Forwarding::L2Reflect);
    assert_eq!(c.ports.len(), 1);
    assert_eq!((c.ports[0].rx_queues, c.ports[0].tx_queues), (1, 1));
    // Defaults of the tables it leaves out.
    assert_eq!(c.memory.mbufs_per_lcore, 8191);
    assert_eq!(c.memory.mbuf_cache, 256);
    assert_eq!(c.supervisor.heartbeat_timeout_ms, 1000);
    assert_eq!(c.supervisor.max_restart_backoff_ms, 5000);
    assert_eq!(c.instance.file_prefix, "dpvs");
    assert_eq!(c.instance.huge_dir, PathBuf::from("/dev/hugepages"));
}

#[test]
fn memif_two_arm_has_two_slots() {
    let c = sample("memif-two-arm.toml");
    assert_eq!(c.forwarding, Forwarding::L2Pair { a: 0, b: 1 });
    assert_eq!(c.port_by_name("dpdk1"), Some(1));
    for port in &c.ports {
        assert_eq!((port.rx_queues, port.tx_queues), (2, 2));
    }
    let lcores: Vec<(u32, usize, Vec<QueueRef>)> =
        c.worker_lcores().map(|(_, l)| (l.lcore.id, l.slot, l.rx.clone())).collect();
    let q = |port, queue| QueueRef { port, queue };
    assert_eq!(lcores, [(1, 0, vec![q(0, 0), q(1, 0)]), (2, 1, vec![q(0, 1), q(1, 1)])]);
    assert_eq!(
        c.ports[0].device,
        Device::Vdev("net_memif0,role=server,id=0,socket=/run/dpvs/dpdk0.sock,socket-abstract=no".into())
    );
    assert_eq!(c.memory.mbufs_per_lcore, 16383);
}

#[test]
fn memif_one_arm_uses_defaults() {
    let c = sample("memif-one-arm.toml");
    assert_eq!(c.forwarding, Forwarding::L2Reflect);
    assert_eq!(c.ports[0].device.dpdk_name(), "net_memif0");
    assert_eq!(c.instance.main_lcore, Lcore { id: 0, cpu: None });
    assert_eq!(c.groups[0].idle_sleep_us, 0);
    assert_eq!(c.groups[0].lcores[0].lcore, Lcore { id: 1, cpu: None });
    assert_eq!(c.memory.rx_desc, 1024);
    assert_eq!(c.memory.tx_desc, 1024);
}

#[test]
fn memif_groups_each_serve_their_own_services() {
    let c = sample("memif-groups.toml");
    let rt = c.runtime();
    let pollers = c.pollers();
    assert_eq!(pollers.groups(), ["fnat", "dr"]);
    let vips = |group: &str| -> Vec<String> {
        rt.served_by(&pollers, group).services.iter().map(|s| format!("{}:{}", s.vip, s.port)).collect()
    };
    assert_eq!(vips("fnat"), ["198.18.0.100:53"], "derived from the VIP's port");
    assert_eq!(vips("dr"), ["198.18.2.100:80"], "named");
    assert!(vips("other").is_empty());
    // A dump keeps the named group and leaves the derived one implicit.
    let dump = c.render_runtime(&rt);
    assert_eq!(dump.to_string().matches("group = ").count(), 1, "{dump}");
    let file = fs::read_to_string(&c.source).expect("sample");
    let text = conf::replace_runtime_tables(&file, &dump).expect("tables replaced");
    assert_eq!(Config::from_str(&text, "dump").expect("dump resolves").runtime(), rt);
    // Commands are checked with the same rules: a service moved to a group that does not
    // poll its VIP's port is refused.
    let mut moved = rt.clone();
    moved.services[0].group = Some("dr".into());
    let e = c.check_runtime(&moved).unwrap_err();
    assert!(e.to_string().contains("is served by group \"dr\", but port dpdk0 is polled by \"fnat\""), "{e}");
}
