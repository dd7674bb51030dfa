//! The whole per-lcore pipeline on arbitrary frames in both directions, against services of
//! every forwarding mode (Full-NAT with TOA, PROXY v1 and v2 over TCP and UDP, direct routing,
//! NAT, IP-in-IP, IPv6, NAT64), as a worker runs it: never panics; a frame it sends on whose
//! input's checksums were right has right checksums and a length that fits its headers; the
//! connection table never holds more than its capacity.
//!
//! Input: a sequence of frames, each a byte (its port: even 0, odd 1), two bytes of length
//! (little-endian) and the frame; the connection table lives across the frames of one input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shm_layout::conn::{ConnEntry, ConnShardHeader};
use shm_layout::{ConnParts, RealCounters, ServiceCounters};
use wire::{Checks, EthernetAddress};
use workers::outcome::Action;
use workers::pipeline::{Pipeline, PortCtx};

/// Two ports (clients on dpdk0, real servers on dpdk1) with every mode's service.
const CONFIG: &str = r#"
[instance]
name = "fuzz"
[[ports]]
name = "dpdk0"
vdev = "net_null0"
[[ports]]
name = "dpdk1"
vdev = "net_null1"
[forwarding]
mode = "l2-pair"
ports = ["dpdk0", "dpdk1"]
[[groups]]
name = "fwd"
[[groups.lcores]]
id = 1
rx = ["dpdk0:0", "dpdk1:0"]
[[addresses]]
port = "dpdk0"
address = "198.18.0.100/24"
[[addresses]]
port = "dpdk0"
address = "2001:db8::100/64"
[[addresses]]
port = "dpdk1"
address = "198.18.1.254/24"
[[addresses]]
port = "dpdk1"
address = "2001:db8:1::fe/64"
[[neighbours]]
address = "198.18.1.2"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[neighbours]]
address = "2001:db8:1::2"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[services]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
port = 8080
[[services]]
vip = "198.18.0.100"
port = 81
protocol = "tcp"
local_addresses = ["198.18.1.254"]
proxy_protocol = "v1"
persistence = 60
[[services.reals]]
address = "198.18.1.2"
port = 8081
[[services]]
vip = "198.18.0.100"
port = 53
protocol = "udp"
scheduler = "conhash"
local_addresses = ["198.18.1.254"]
proxy_protocol = "v2"
[[services.reals]]
address = "198.18.1.2"
port = 5353
[[services]]
vip = "198.18.0.100"
port = 82
protocol = "tcp"
[[services.reals]]
address = "198.18.1.2"
port = 82
forward = "dr"
[[services]]
vip = "198.18.0.100"
port = 83
protocol = "tcp"
[[services.reals]]
address = "198.18.1.2"
port = 8083
forward = "nat"
[[services]]
vip = "198.18.0.100"
port = 84
protocol = "udp"
[[services.reals]]
address = "198.18.1.2"
port = 84
forward = "tunnel"
[[services]]
vip = "2001:db8::100"
port = 80
protocol = "tcp"
local_addresses = ["2001:db8:1::fe"]
[[services.reals]]
address = "2001:db8:1::2"
port = 8080
[[services]]
vip = "2001:db8::100"
port = 443
protocol = "tcp"
local_addresses = ["198.18.1.254"]
proxy_protocol = "v2"
[[services.reals]]
address = "198.18.1.2"
port = 8443
"#;

const CAPACITY: u32 = 256;

/// The frames of one input: (port, bytes).
fn frames(mut data: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while let [port, lo, hi, rest @ ..] = data {
        let n = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len()).min(2048);
        out.push((u16::from(port & 1), rest[..n].to_vec()));
        data = &rest[n..];
        if out.len() == 64 {
            break;
        }
    }
    out
}

/// The configuration's runtime part, read once.
fn runtime() -> &'static conf::Runtime {
    static RT: std::sync::OnceLock<conf::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| conf::Config::from_str(CONFIG, "fuzz.toml").expect("the fuzz configuration").runtime())
}

fuzz_target!(|data: &[u8]| {
    let rt = runtime();
    let header = ConnShardHeader { capacity: CAPACITY, n_buckets: 64, wheel_slots: 256, seed: 7, ..Default::default() };
    let (mut buckets, mut wheel) = (vec![0u32; 64], vec![0u32; 256]);
    let mut entries = vec![ConnEntry::EMPTY; CAPACITY as usize];
    let parts = ConnParts { header: &header, buckets: &mut buckets, wheel: &mut wheel, entries: &mut entries };
    let (shard, _) = conn::Shard::adopt(parts, 0);
    let stats: Vec<ServiceCounters> = (0..64).map(|_| Default::default()).collect();
    let reals: Vec<RealCounters> = (0..64).map(|_| Default::default()).collect();
    let (p0, p1) = (EthernetAddress([2, 0, 0, 0, 0, 0x10]), EthernetAddress([2, 0, 0, 0, 0, 0x11]));
    let services =
        workers::lb::build_services(rt, (0, 1), &mut Vec::new(), &Default::default()).expect("the services build");
    let mut lb = workers::lb::Balancer::new(Vec::new(), shard, vec![p0, p1], 0).with_stats(&stats, &reals);
    lb.reconfigure(1, services);
    let ports = vec![
        PortCtx {
            mac: p0,
            peer: 1,
            addrs: vec!["198.18.0.100".parse().unwrap()],
            addrs6: vec!["2001:db8::100".parse().unwrap()],
            exception: None,
            is_exception: false,
        },
        PortCtx {
            mac: p1,
            peer: 0,
            addrs: vec!["198.18.1.254".parse().unwrap()],
            addrs6: vec!["2001:db8:1::fe".parse().unwrap()],
            exception: None,
            is_exception: false,
        },
    ];
    let mut pipeline = Pipeline::with_balancer(ports, lb);
    for (port, mut frame) in frames(data) {
        let sound = wire::classify_with(&frame, Checks::ALL).is_ok();
        let action = pipeline.process(port, &mut frame);
        let sent = matches!(action, Action::Nat { .. } | Action::Reply(_));
        if sent && sound {
            // What the balancer wrote (a translation or an answer) of a sound frame is sound.
            if let Err(e) = wire::classify_with(&frame, Checks::ALL) {
                panic!("{action:?} of a sound frame sent a broken one ({e:?}): {frame:02x?}");
            }
        }
    }
});
