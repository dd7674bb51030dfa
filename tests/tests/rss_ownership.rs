//! Ownership by the receiving queue, with real processes: two worker lcores whose memif ports
//! have an emulated RSS, and `dpvs-gen` on two lcores applying it (each flow sent on the queue
//! the port's RSS gives, each real-server answer on the queue its own tuple's RSS gives).
//! Full-NAT UDP and TCP (both directions: the real server's SYN-ACKs come back through the
//! balancer), IPv6 Full-NAT and NAT64 UDP cross no lcore; a NAT-mode service, whose replies RSS cannot place, is handed over
//! and counted as such; a generator that does not apply the RSS still gets everything through,
//! counted as RSS mismatches.

use std::time::Duration;

use integration::*;
use serde_json::Value;

/// [`MEMIF_FNAT_UDP`] (UDP Full-NAT 198.18.0.100:53 on two lcores) with a larger table, a TCP
/// Full-NAT service on port 80, a NAT-mode UDP service on port 54, and UDP [2001:db8::100]:53
/// to an IPv6 real server and :55 to the IPv4 one (NAT64).
fn config() -> String {
    let base = MEMIF_FNAT_UDP.replace("capacity_per_lcore = 4096", "capacity_per_lcore = 16384");
    format!(
        r#"{base}[[services]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
port = 8080
[[services]]
vip = "198.18.0.100"
port = 54
protocol = "udp"
scheduler = "rr"
[[services.reals]]
address = "198.18.1.2"
port = 54
forward = "nat"
[[addresses]]
port = "dpdk0"
address = "2001:db8::100/64"
[[addresses]]
port = "dpdk1"
address = "2001:db8:1::254/64"
[[neighbours]]
address = "2001:db8:1::2"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[services]]
vip = "2001:db8::100"
port = 53
protocol = "udp"
local_addresses = ["2001:db8:1::254"]
[[services.reals]]
address = "2001:db8:1::2"
port = 5353
[[services]]
vip = "2001:db8::100"
port = 55
protocol = "udp"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
port = 5355
"#
    )
}

/// The handed-over counters of the instance's total, by class.
fn handed(s: &Value) -> [u64; 5] {
    ["redirected", "handed_nat", "handed_persistent", "handed_rss_mismatch", "handed_no_rss"].map(|k| u(s, k))
}

/// Runs `dpvs-gen` on two lcores towards `dst` with `extra` options, `flows` flows at `rate`
/// per second for about a second, and returns its report and the instance's totals it moved.
fn run(inst: &Instance, dst: &str, (rate, flows): (u64, u32), extra: &[&str]) -> (Value, [u64; 5]) {
    let src = if dst.starts_with('[') { "2001:db8:c::1" } else { "198.18.0.1" };
    let before = handed(&inst.stats()["total"]);
    let ports =
        (&inst.memif_client("net_memif0", "dpdk0.sock")[..], &inst.memif_client("net_memif1", "dpdk1.sock")[..], 2);
    let mut args = vec!["--lcores", "2", "--cpu", "0,1"];
    args.extend_from_slice(extra);
    let mut gen = Generator::start_with(&inst.dir, ports, "02:00:00:00:00:10", (rate, flows), (src, dst), &args);
    std::thread::sleep(Duration::from_millis(1200));
    let report = gen.stop();
    let after = handed(&inst.stats()["total"]);
    (report, std::array::from_fn(|i| after[i] - before[i]))
}

#[test]
fn full_nat_crosses_no_lcore_when_the_peer_applies_the_emulated_rss() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(&config());
    let links = inst.ctl_json(&["link", "show"]).expect("link show");
    for port in links.as_array().expect("ports") {
        assert_eq!(port["rss"], "emulated", "{port}");
        assert_eq!(port["reta"].as_array().map(Vec::len), Some(128), "{port}");
    }

    // UDP Full-NAT: every datagram to the real server's side, none handed over.
    let (report, moved) = run(&inst, "198.18.0.100:53", (20_000, 1000), &[]);
    println!("UDP Full-NAT: {report}, handed over {moved:?}");
    assert!(u(&report, "sent") > 5_000, "{report}");
    assert_eq!(u(&report, "received"), u(&report, "sent"), "{report}");
    assert_eq!(moved, [0; 5], "no Full-NAT datagram crossed lcores");
    let per_lcore: Vec<u64> = inst.stats()["lcores"].as_array().unwrap().iter().map(|l| u(l, "fnat_in")).collect();
    assert!(per_lcore.iter().all(|&n| n > 1000), "both lcores own flows: {per_lcore:?}");

    // IPv6 Full-NAT and NAT64: the IPv6 flows placed by IPv6's RSS (that the replies come
    // back to the same lcore, IPv6 or IPv4, the workers' unit tests show: dpvs-gen answers TCP
    // only, over IPv4).
    for (dst, what) in [("[2001:db8::100]:53", "IPv6 Full-NAT"), ("[2001:db8::100]:55", "NAT64")] {
        let (report, moved) = run(&inst, dst, (20_000, 1000), &["--size", "84"]);
        println!("UDP {what}: {report}, handed over {moved:?}");
        assert!(u(&report, "sent") > 5_000, "{report}");
        assert_eq!(u(&report, "received"), u(&report, "sent"), "{what}: {report}");
        assert_eq!(moved, [0; 5], "no {what} datagram crossed lcores");
    }

    // TCP Full-NAT: SYNs in, the real server's SYN-ACKs back through the balancer to the
    // lcore that chose their local port, RSTs in.
    let (report, moved) = run(&inst, "198.18.0.100:80", (5_000, 1000), &["--tcp", "close"]);
    println!("TCP Full-NAT: {report}, handed over {moved:?}");
    assert!(u(&report, "established") > 1_000, "{report}");
    assert_eq!(u(&report, "answers_off_queue"), 0, "{report}");
    assert_eq!(moved, [0; 5], "no Full-NAT segment crossed lcores, either way");

    // NAT mode: the client's packets are owned by a hash of the client (the real server's
    // replies carry its tuple): about half cross, counted as such.
    let (report, moved) = run(&inst, "198.18.0.100:54", (20_000, 1000), &[]);
    println!("UDP NAT: {report}, handed over {moved:?}");
    assert_eq!(u(&report, "received"), u(&report, "sent"), "{report}");
    assert!(moved[1] > 0 && moved[0] > 0, "{moved:?}");
    assert_eq!(moved[2] + moved[3] + moved[4], 0, "{moved:?}");

    // A peer that does not apply the RSS (flow f on queue f % 2): still delivered, through
    // the owner, counted as mismatches.
    let (report, moved) = run(&inst, "198.18.0.100:53", (20_000, 1000), &["--steer", "modulo"]);
    println!("UDP Full-NAT, RSS not applied: {report}, handed over {moved:?}");
    assert_eq!(u(&report, "received"), u(&report, "sent"), "{report}");
    assert!(moved[3] > 0 && moved[1] + moved[2] + moved[4] == 0, "{moved:?}");
    let total = inst.stats()["total"].clone();
    assert_eq!(u(&total, "drop_no_conn") + u(&total, "drop_no_resource"), 0, "{total}");
}
