//! What a configuration at cloud scale costs the control plane today: 70 000 services (280
//! VIPs x 250 ports) with 245 000 real servers, parsed and validated from a file, encoded as a
//! generation, checked again as one change is, decoded as each worker does (the running
//! instance makes a change in place instead of on a copy: `bench/control.sh`).
//! `cargo run --release -p primary --example scale_probe`
use std::fmt::Write;
use std::time::Instant;

fn main() {
    let mut t = String::from(conf::EMBEDDED_DEFAULT.split("[[addresses]]").next().unwrap());
    let _ = writeln!(t, "[limits]\nservices = 70000\nreals = 262144\naddresses = 1024\n");
    let _ = writeln!(t, "[[addresses]]\nport = \"dpdk1\"\naddress = \"198.18.128.1/17\"");
    for v in 0..280u32 {
        let _ = writeln!(t, "[[addresses]]\nport = \"dpdk0\"\naddress = \"198.18.{}.{}/32\"", v / 200, v % 200 + 1);
    }
    let mut n = 0u32;
    for v in 0..280u32 {
        for p in 0..250u32 {
            let _ = writeln!(t, "[[services]]\nvip = \"198.18.{}.{}\"\nport = {}\nprotocol = \"tcp\"\nlocal_addresses = [\"198.18.128.1\"]", v / 200, v % 200 + 1, 1000 + p);
            let reals = if n % 4 < 2 { 4 } else { 3 };
            for r in 0..reals {
                let _ =
                    writeln!(t, "[[services.reals]]\naddress = \"198.18.{}.{}\"\nport = 80", 129 + (n % 100), 1 + r);
            }
            n += 1;
        }
    }
    let t0 = Instant::now();
    let cfg = conf::Config::from_str(&t, "probe");
    println!("parse+validate {:?} ok={}", t0.elapsed(), cfg.is_ok());
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let rt = cfg.runtime();
    println!("services {} reals {}", rt.services.len(), rt.services.iter().map(|s| s.reals.len()).sum::<usize>());
    let t0 = Instant::now();
    let bytes = mailbox::generation::encode(&rt);
    println!("encode {:?} bytes {} (buffer {})", t0.elapsed(), bytes.len(), cfg.limits.generation_bytes());
    let t0 = Instant::now();
    cfg.check_runtime(&rt).unwrap();
    println!("check_runtime {:?}", t0.elapsed());
    let t0 = Instant::now();
    let _ = mailbox::generation::decode(&bytes).unwrap();
    println!("decode {:?}", t0.elapsed());
    let t0 = Instant::now();
    let copy = rt.clone();
    println!("clone {:?}", t0.elapsed());
    drop(copy);
    let s = &rt.services[rt.services.len() / 2];
    let change = mailbox::proto::Change::RealAdd {
        service: mailbox::proto::ServiceKey { protocol: s.protocol, vip: s.vip, port: s.port },
        addr: "198.18.200.9".parse().unwrap(),
        port: 80,
        weight: 1,
        forward: conf::Forward::Fnat,
        thresholds: (0, 0),
    };
    let t0 = Instant::now();
    let next = primary::control::apply(&cfg, &rt, &change).unwrap();
    println!("apply one real add to a copy (the copy, its index and counts, the change, its check) {:?}", t0.elapsed());
    assert_ne!(next, rt);
}
