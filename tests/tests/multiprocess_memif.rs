//! Primary + 2 workers over memif, driven by dpdk-testpmd (txonly into port dpdk0, rxonly on
//! port dpdk1): counters on both sides agree; a worker killed with -9 mid-traffic comes back
//! on the same lcore id and forwarding resumes; six handovers under traffic lose nothing;
//! after 20 kill -9s in a row every pool is full again.

use std::time::Duration;

use integration::*;

const CONFIG: &str = r#"
[memory]
mbufs_per_lcore = 8191
[[ports]]
name = "dpdk0"
vdev = "net_memif0,role=server,id=0,socket=@DIR@/dpdk0.sock,socket-abstract=no"
queues = 2
[[ports]]
name = "dpdk1"
vdev = "net_memif1,role=server,id=0,socket=@DIR@/dpdk1.sock,socket-abstract=no"
queues = 2
[forwarding]
mode = "l2-pair"
ports = ["dpdk0", "dpdk1"]
[[groups]]
name = "fwd"
# Both workers share CPU 1: sleeping when idle lets each run as soon as it has packets, so the
# last burst is forwarded before the generator's exit tears its memif connection down (a
# disconnect discards what is still in the ring).
idle_sleep_us = 10
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0", "dpdk1:0"]
[[groups.lcores]]
id = 2
cpu = 1
rx = ["dpdk0:1", "dpdk1:1"]
[supervisor]
heartbeat_timeout_ms = 2000
max_restart_backoff_ms = 50
"#;

fn client(inst: &Instance, port: &str, mode: &str) -> Testpmd {
    let vdev = inst.memif_client("net_memif0", &format!("{port}.sock"));
    Testpmd::start(&inst.dir, &vdev, 0, &["--rxq=2", "--txq=2", &format!("--forward-mode={mode}")])
}

fn total(inst: &Instance, key: &str) -> u64 {
    u(&inst.stats()["total"], key)
}

fn lcore_rx(inst: &Instance, lcore: u64) -> u64 {
    let s = inst.stats();
    let row = s["lcores"].as_array().unwrap().iter().find(|r| u(r, "lcore") == lcore).cloned().unwrap();
    u(&row, "rx_packets")
}

/// Waits until `f` reports `at_least` more packets than `from`.
fn wait_growth(what: &str, from: u64, at_least: u64, f: impl Fn() -> u64) {
    wait_for(what, Duration::from_secs(20), || (f() >= from + at_least).then_some(()));
}

#[test]
fn memif_forwarding_counters_agree_and_a_killed_worker_comes_back() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(CONFIG);
    let workers = inst.workers();
    assert_eq!(workers.len(), 2);
    let start_avail: Vec<u64> = workers.iter().map(|w| u(w, "pool_avail")).collect();
    for w in &workers {
        assert_eq!(u(w, "pool_avail"), u(w, "pool_size"), "pools start full");
    }

    // Phase 1: steady traffic; every packet is accounted for on both sides.
    let mut sink = client(&inst, "dpdk1", "rxonly");
    std::thread::sleep(Duration::from_millis(1500));
    let mut gen = client(&inst, "dpdk0", "txonly");
    wait_growth("traffic through both workers", 0, 200_000, || lcore_rx(&inst, 1).min(lcore_rx(&inst, 2)));
    let (_, gen_tx) = gen.stop();
    std::thread::sleep(Duration::from_millis(300));
    let (sink_rx, _) = sink.stop();
    let s = inst.stats()["total"].clone();
    println!("phase 1: generator tx {gen_tx}, workers {s}, sink rx {sink_rx}");
    assert_eq!(u(&s, "rx_packets"), gen_tx, "workers received what the generator sent");
    assert_eq!(u(&s, "tx_packets"), sink_rx, "the sink received what the workers sent");
    assert_eq!(u(&s, "drop_runt"), 0, "testpmd sends 64-byte frames");
    assert!(sink_rx > 0);

    // Phase 2: new peers (memif reconnects), then kill -9 a worker mid-traffic.
    let (rx0, tx0, drop0) = (total(&inst, "rx_packets"), total(&inst, "tx_packets"), total(&inst, "drop_tx_full"));
    let mut sink = client(&inst, "dpdk1", "rxonly");
    std::thread::sleep(Duration::from_millis(1500));
    let mut gen = client(&inst, "dpdk0", "txonly");
    wait_growth("traffic after the peers reconnected", lcore_rx(&inst, 1), 200_000, || lcore_rx(&inst, 1));
    let victim = inst.workers()[0].clone();
    assert_eq!(u(&victim, "lcore"), 1);
    let back = inst.kill_worker_and_wait(0, 1, "the killed worker's replacement");
    assert_eq!(u(&back, "lcore"), 1, "restarted on the same lcore id");
    assert_eq!(back["last_exit"], -9, "the slot records the SIGKILL");
    println!("restart: {back}");
    wait_growth("forwarding after the restart", lcore_rx(&inst, 1), 200_000, || lcore_rx(&inst, 1));
    let (_, gen_tx) = gen.stop();
    std::thread::sleep(Duration::from_millis(300));
    let (sink_rx, _) = sink.stop();
    let s = inst.stats()["total"].clone();
    let (rx, tx, drop) = (u(&s, "rx_packets") - rx0, u(&s, "tx_packets") - tx0, u(&s, "drop_tx_full") - drop0);
    println!("phase 2: generator tx {gen_tx}, workers rx {rx} tx {tx} drop {drop}, sink rx {sink_rx}");
    // A worker killed mid-burst loses the burst in hand (at most 32 packets, uncounted if the
    // kill lands inside the rx call) and may have copied up to 32 packets that its
    // replacement receives again, since memif commits the ring only at the end of a burst.
    assert!(rx.abs_diff(gen_tx) <= 64, "generator sent {gen_tx}, workers received {rx}");
    assert!(sink_rx <= tx + 32 && tx <= sink_rx + 32, "workers sent {tx}, sink received {sink_rx}");

    // Phase 3: operator restarts under traffic are handovers: nothing is lost.
    let (rx0, tx0, drop0) = (total(&inst, "rx_packets"), total(&inst, "tx_packets"), total(&inst, "drop_tx_full"));
    let mut sink = client(&inst, "dpdk1", "rxonly");
    std::thread::sleep(Duration::from_millis(1500));
    let mut gen = client(&inst, "dpdk0", "txonly");
    wait_growth("traffic before the handovers", lcore_rx(&inst, 1), 100_000, || lcore_rx(&inst, 1));
    let mut gaps = Vec::new();
    for round in 0..3 {
        for slot in ["0", "1"] {
            let out = inst.ctl(&["worker", "restart", slot]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "round {round} slot {slot}: {text}{}", String::from_utf8_lossy(&out.stderr));
            gaps.push(text.trim().to_owned());
        }
    }
    println!("handovers:\n{}", gaps.join("\n"));
    let (_, gen_tx) = gen.stop();
    std::thread::sleep(Duration::from_millis(300));
    let (sink_rx, _) = sink.stop();
    let s = inst.stats()["total"].clone();
    let (rx, tx, drop) = (u(&s, "rx_packets") - rx0, u(&s, "tx_packets") - tx0, u(&s, "drop_tx_full") - drop0);
    println!("phase 3: generator tx {gen_tx}, workers rx {rx} tx {tx} drop {drop}, sink rx {sink_rx}");
    assert_eq!(rx, gen_tx, "zero loss across 6 handovers: every packet sent was received");
    assert_eq!(tx, sink_rx, "and every packet sent on was received by the sink");
    for w in inst.workers() {
        assert_eq!(w["state"], "running");
        assert_eq!(u(&w, "restarts"), 1 - u64::from(w["slot"] != 0), "handovers are not crashes");
    }

    // Phase 4: 20 kill -9s in a row under traffic.
    let mut sink = client(&inst, "dpdk1", "rxonly");
    std::thread::sleep(Duration::from_millis(1500));
    let mut gen = client(&inst, "dpdk0", "txonly");
    wait_growth("traffic before the kills", lcore_rx(&inst, 1), 100_000, || lcore_rx(&inst, 1));
    let restarts0 = u(&inst.workers()[0], "restarts");
    for k in 1..=20 {
        inst.kill_worker_and_wait(0, restarts0 + k, &format!("replacement {k}"));
    }
    wait_growth("forwarding after 20 kills", lcore_rx(&inst, 1), 50_000, || lcore_rx(&inst, 1));
    gen.stop();
    sink.stop();
    println!("after 20 kills: {}", inst.workers()[0]);

    // After the traffic, every pool is back at its starting count (counted without DPDK's cap
    // at the pool size, so a buffer listed twice would show): the dead lcore's cache was
    // returned and the buffers the killed process held were found.
    wait_for("pools back at their starting counts", Duration::from_secs(5), || {
        let now: Vec<u64> = inst.workers().iter().map(|w| u(w, "pool_avail")).collect();
        (now == start_avail).then_some(())
    });
}

/// Group "a" (one lcore) serves a Full-NAT service on dpdk0/dpdk1; group "b" (two lcores)
/// serves its own on dpdk2/dpdk3. Those have three queues, as many as the worker slots' tx
/// queues, so that a memif client can pair them all.
const TWO_GROUPS: &str = r#"
[memory]
mbufs_per_lcore = 8191
[[ports]]
name = "dpdk0"
vdev = "net_memif0,role=server,id=0,socket=@DIR@/dpdk0.sock,socket-abstract=no"
[[ports]]
name = "dpdk1"
vdev = "net_memif1,role=server,id=0,socket=@DIR@/dpdk1.sock,socket-abstract=no"
[[ports]]
name = "dpdk2"
vdev = "net_memif2,role=server,id=0,socket=@DIR@/dpdk2.sock,socket-abstract=no,mac=02:00:00:00:00:12"
queues = 3
[[ports]]
name = "dpdk3"
vdev = "net_memif3,role=server,id=0,socket=@DIR@/dpdk3.sock,socket-abstract=no,mac=02:00:00:00:00:13"
queues = 3
[forwarding]
mode = "l2-pair"
ports = ["dpdk0", "dpdk1"]
[[groups]]
name = "a"
idle_sleep_us = 10
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0", "dpdk1:0"]
[[groups]]
name = "b"
idle_sleep_us = 10
[[groups.lcores]]
id = 2
cpu = 1
rx = ["dpdk2:0", "dpdk3:0", "dpdk2:2", "dpdk3:2"]
[[groups.lcores]]
id = 3
cpu = 1
rx = ["dpdk2:1", "dpdk3:1"]
[[addresses]]
port = "dpdk0"
address = "198.18.0.100/24"
[[addresses]]
port = "dpdk1"
address = "198.18.1.254/24"
[[addresses]]
port = "dpdk2"
address = "198.18.2.100/24"
[[addresses]]
port = "dpdk3"
address = "198.18.3.254/24"
[[neighbours]]
address = "198.18.1.2"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[neighbours]]
address = "198.18.3.2"
mac = "02:00:00:00:03:02"
port = "dpdk3"
[[services]]
vip = "198.18.0.100"
port = 53
protocol = "udp"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
[[services]]
vip = "198.18.2.100"
port = 53
protocol = "udp"
group = "b"
local_addresses = ["198.18.3.254"]
[[services.reals]]
address = "198.18.3.2"
[connections]
capacity_per_lcore = 4096
[supervisor]
heartbeat_timeout_ms = 2000
max_restart_backoff_ms = 50
"#;

#[test]
fn a_crash_loop_in_one_group_costs_another_group_nothing() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(TWO_GROUPS);
    // Group b's service at a fixed rate over 64 flows, on the queues the ports' RSS gives.
    let mut gen = Generator::start_to(
        &inst.dir,
        (&inst.memif_client("net_memif0", "dpdk2.sock"), &inst.memif_client("net_memif1", "dpdk3.sock"), 3),
        "02:00:00:00:00:12",
        (20_000, 64),
        ("198.18.2.1", "198.18.2.100:53"),
    );
    let lcore = |i: usize| inst.stats()["lcores"][i].clone();
    wait_growth("group b forwarding", 0, 10_000, || u(&lcore(1), "fnat_in") + u(&lcore(2), "fnat_in"));
    let a0 = u(&inst.workers()[0], "restarts");
    // Group a crash-loops: killed again as soon as it is back, 10 times.
    for k in 1..=10 {
        inst.kill_worker_and_wait(0, a0 + k, &format!("group a back ({k})"));
    }
    let report = gen.stop();
    let (a, b1, b2) = (lcore(0), lcore(1), lcore(2));
    println!("generator {report}\ngroup a {a}\ngroup b {b1}\n        {b2}");
    assert_eq!(u(&inst.workers()[1], "restarts") + u(&inst.workers()[2], "restarts"), 0, "group b never restarted");
    // Everything offered to group b reached the real server's side through 10 crashes and
    // pool recoveries of group a.
    assert!(u(&report, "sent") > 20_000, "{report}");
    assert_eq!(u(&report, "received"), u(&report, "sent"), "group b delivered all it was offered: {report}");
    // Group b's flows are owned within group b, by the lcore that receives them (the
    // generator applies the ports' emulated RSS: 3 queues, lcore 2 polling two of them).
    assert_eq!(u(&b1, "redirected") + u(&b2, "redirected"), 0, "{b1} {b2}");
    assert!(u(&b1, "fnat_in") > u(&b2, "fnat_in") && u(&b2, "fnat_in") > 0, "two queues, one queue: {b1} {b2}");
    assert_eq!(u(&a, "fnat_in"), 0, "group a saw none of group b's connections: {a}");
}

#[test]
fn a_fixed_rate_through_udp_full_nat_loses_nothing_while_every_worker_is_rolled_ten_times() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(MEMIF_FNAT_UDP);
    // 64 flows, so both lcores own some, sent on queue f % 2 whatever the ports' RSS says (a
    // peer that does not apply it), so one lcore hands the other its share: packets in flight
    // on the redirect rings through the handovers; 200 kpps, which both debug-build workers on
    // one shared CPU forward (300 kpps passed too, 2026-12-04, with queues building up).
    let mut gen = udp_to_the_vip(&inst, 200_000);
    let fnat_in = || u(&inst.stats()["total"], "fnat_in");
    wait_growth("Full-NAT traffic", 0, 10_000, fnat_in);
    let gaps = roll_every_worker_ten_times(&inst);
    let report = gen.stop();
    let s = inst.stats()["total"].clone();
    println!("handover gaps: {}\ngenerator {report}\nworkers {s}", gaps.join(", "));
    assert_eq!(gaps.len(), 20);
    assert!(u(&report, "sent") > 20_000, "{report}");
    assert_eq!(u(&report, "received"), u(&report, "sent"), "not one packet lost across 20 handovers: {report} {s}");
    assert!(u(&s, "redirected") > 0, "{s}");
    assert!(u(&s, "handed_rss_mismatch") > 0 && u(&s, "handed_no_rss") == 0, "counted as RSS mismatches: {s}");
}

/// `dpvs-gen` towards [`MEMIF_FNAT_UDP`]'s service: `rate` packets a second in 64 flows, flow `f` on
/// queue `f % 2` whatever the ports' RSS says (a peer that does not apply it), so that each
/// lcore hands the other its share on a redirect ring.
fn udp_to_the_vip(inst: &Instance, rate: u64) -> Generator {
    Generator::start_with(
        &inst.dir,
        (&inst.memif_client("net_memif0", "dpdk0.sock"), &inst.memif_client("net_memif1", "dpdk1.sock"), 2),
        "02:00:00:00:00:10",
        (rate, 64),
        ("198.18.0.1", "198.18.0.100:53"),
        &["--cpu", "0", "--steer", "modulo"],
    )
}

/// Restarts every worker ten times, half the rounds one after the other, half all at once;
/// returns the handover gaps the restarts reported.
fn roll_every_worker_ten_times(inst: &Instance) -> Vec<String> {
    let mut gaps = Vec::new();
    for round in 0..10 {
        let args: &[&str] =
            if round % 2 == 0 { &["worker", "restart", "--all", "--rolling"] } else { &["worker", "restart", "--all"] };
        let out = inst.ctl(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "round {round}: {text}{}", String::from_utf8_lossy(&out.stderr));
        gaps.extend(text.lines().filter_map(|l| l.split("polling gap ").nth(1).map(str::to_owned)));
    }
    // Each successor recorded its gap in shared memory: ten a slot, shown by `worker list`.
    for w in inst.workers() {
        let g = &w["handover_gaps"];
        assert_eq!(u(g, "count"), 10, "{w}");
        assert!(u(g, "p50_us") <= u(g, "p99_us") && u(g, "p99_us") <= u(g, "max_us"), "{g}");
    }
    gaps
}

#[test]
fn udp_full_nat_keeps_every_queued_packet_and_its_connection_while_every_worker_is_rolled_ten_times() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(MEMIF_FNAT_UDP);
    // The real server's side: a sink. The client side: UDP to the VIP, from both queues (so
    // one lcore owns the flow and the other hands its packets over on a redirect ring).
    let sink_vdev = inst.memif_client("net_memif0", "dpdk1.sock");
    let mut sink = Testpmd::start(&inst.dir, &sink_vdev, 0, &["--rxq=2", "--txq=2", "--forward-mode=rxonly"]);
    std::thread::sleep(Duration::from_millis(1500));
    let gen_vdev = inst.memif_client("net_memif0", "dpdk0.sock");
    let mut gen = Testpmd::start(
        &inst.dir,
        &gen_vdev,
        0,
        &[
            "--rxq=2",
            "--txq=2",
            "--forward-mode=txonly",
            "--eth-peer=0,02:00:00:00:00:10",
            "--tx-ip=198.18.0.1,198.18.0.100",
            "--tx-udp=5000,53",
        ],
    );
    let fnat_in = || u(&inst.stats()["total"], "fnat_in");
    wait_growth("Full-NAT traffic", 0, 100_000, fnat_in);
    let gaps = roll_every_worker_ten_times(&inst);
    println!("handover gaps: {}", gaps.join(", "));
    let (_, gen_tx) = gen.stop();
    let (sink_rx, _) = sink.stop();
    let s = inst.stats()["total"].clone();
    println!("generator tx {gen_tx}, sink rx {sink_rx}, workers {s}");
    // The generator offers more than a debug-build worker on a shared CPU forwards, so the
    // owner's redirect ring and tx queue overflow (counted as drop_redirect / drop_tx_full,
    // as they would without any restart). What the handovers must not lose: packets waiting
    // in the rx rings (all reached a worker), and the connection (one flow, one entry, never
    // re-created).
    assert_eq!(u(&s, "rx_packets"), gen_tx, "every packet offered reached a worker through 20 handovers");
    assert!(u(&s, "redirected") > 0, "the lcore that does not own the flow handed its packets over: {s}");
    assert_eq!(u(&s, "drop_no_conn") + u(&s, "drop_no_resource"), 0, "{s}");
    let created: u64 = inst.stats()["connections"].as_array().unwrap().iter().map(|c| u(c, "created")).sum();
    assert_eq!(created, 1, "one flow, one connection, kept across 20 handovers");
    assert_eq!(sink_rx, u(&s, "tx_packets"), "the real server's side received everything sent to it");
}

/// A handover in which one side dies never leaves two processes polling a queue, and loses
/// nothing it need not: under 20 kpps of UDP Full-NAT, (1) the departing worker is killed the
/// moment its release store names the successor (the test watches the slot's owner word in
/// shared memory and sends SIGKILL at once): the successor keeps the queues, the restart is
/// answered as done and no fresh worker is started; (2) the successor is killed the moment it
/// reports ready: the handover is cancelled and the old worker keeps polling, or, if the old
/// worker had taken the request already, a fresh worker replaces both. Each slot then has one
/// live process and every packet sent came back at most once (exactly once when no fresh
/// worker had to be started).
#[test]
fn a_handover_never_lets_two_processes_poll_one_queue_even_when_one_of_them_dies() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::sync::atomic::Ordering::Acquire;

    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(MEMIF_FNAT_UDP);
    let mut gen = udp_to_the_vip(&inst, 20_000);
    let fnat_in = || u(&inst.stats()["total"], "fnat_in");
    wait_growth("Full-NAT traffic", 0, 5_000, fnat_in);
    let shm = shm_layout::Shm::open(&inst.dir.join(format!("{}.shm", inst.name))).expect("the instance's shm");
    let slot = &shm.layout().workers[0];
    let sigkill = |pid: u32| kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill -9");
    // Spins on `cond` (at most 20 s), then returns what `then` does right away.
    let watch = |cond: &dyn Fn() -> bool, then: &dyn Fn() -> u32| -> u32 {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(std::time::Instant::now() < until, "the handover did not get there");
            std::hint::spin_loop();
        }
        then()
    };

    // (1) The departing worker dies right after its release store.
    let (old_pid, old_owner, restarts) =
        (slot.pid.load(Acquire), slot.owner.load(Acquire), slot.restarts.load(Acquire));
    let (out, successor) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            watch(&|| slot.owner.load(Acquire) != old_owner, &|| {
                let successor = slot.incoming_pid.load(Acquire);
                sigkill(old_pid);
                successor
            })
        });
        let out = inst.ctl(&["worker", "restart", "0"]);
        (out, watcher.join().unwrap())
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the handover completed: {text}");
    let w = wait_for("the successor in the slot", Duration::from_secs(10), || {
        let w = inst.workers()[0].clone();
        (w["state"] == "running" && u(&w, "pid") != u64::from(old_pid)).then_some(w)
    });
    assert_eq!(u(&w, "pid"), u64::from(successor), "the successor polls, not a fresh worker: {w}\n{text}");
    assert_eq!(slot.restarts.load(Acquire), restarts, "no crash restart: {w}");
    wait_growth("traffic after (1)", fnat_in(), 2_000, fnat_in);

    // (2) The successor dies the moment it is ready.
    let before = inst.workers()[0].clone();
    let (out, dead) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            watch(&|| slot.incoming_state.load(Acquire) == 2, &|| {
                let pid = slot.incoming_pid.load(Acquire);
                sigkill(pid);
                pid
            })
        });
        let out = inst.ctl(&["worker", "restart", "0"]);
        (out, watcher.join().unwrap())
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let w = wait_for("one worker polling slot 0 again", Duration::from_secs(10), || {
        let w = inst.workers()[0].clone();
        (w["state"] == "running" && u(&w, "pid") != u64::from(dead)).then_some(w)
    });
    let fresh = u(&w, "pid") != u(&before, "pid");
    if fresh {
        // The old worker had taken the request and handed over to the successor that then
        // died (the primary saw that first and cancelled, or saw the old worker's exit first
        // and promoted the dead successor): either way the slot was restarted as after a
        // crash, by a fresh worker.
        assert_eq!(u(&w, "restarts"), u(&before, "restarts") + 1, "{w}\n{text}");
    } else {
        assert!(!out.status.success() && text.contains("not restarted"), "cancelled: {text}");
    }
    wait_growth("traffic after (2)", fnat_in(), 2_000, fnat_in);

    // One live process a slot: the primary's children are the two workers.
    let primary = inst.child.id();
    let children: Vec<u32> = std::fs::read_dir(format!("/proc/{primary}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    let pids: Vec<u32> = inst.workers().iter().map(|w| u(w, "pid") as u32).collect();
    let mut sorted = children.clone();
    sorted.sort_unstable();
    let mut want = pids.clone();
    want.sort_unstable();
    assert_eq!(sorted, want, "the primary's live children are the slots' processes, one each");

    let report = gen.stop();
    let s = inst.stats()["total"].clone();
    println!("generator {report}\nworkers {s}\nfresh worker in (2): {fresh}");
    assert!(u(&report, "received") <= u(&report, "sent"), "nothing came back twice: {report}");
    if !fresh {
        assert_eq!(u(&report, "received"), u(&report, "sent"), "nothing lost: {report} {s}");
    }
}
