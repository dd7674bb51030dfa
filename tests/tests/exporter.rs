//! `dpvs-exporter` against real processes: started before the instance it serves `dpvs_up 0`;
//! while `dpvs-gen` sends UDP through a Full-NAT service (one way: the generator does not answer
//! UDP), two scrapes show the service's, its real server's and the lcore's packet counters
//! moving, `promtool` accepts them, and Debian's Prometheus server scraping the exporter
//! computes a packet rate for the service, as `dpvsctl stats --rate` and `dpvsctl top` do; after the primary
//! restarts, the exporter serves the new instance.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration::*;

/// The exporter, serving on `port`, ended when dropped.
struct Exporter(Child, u16);

/// A free port: bound, noted, released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Exporter {
    /// The exporter of the instance configured in `config`, listening where its `[exporter]`
    /// says (`port` on 127.0.0.1).
    fn start(config: &std::path::Path, port: u16) -> Exporter {
        let child = Command::new(bin("dpvs-exporter"))
            .arg("-c")
            .arg(config)
            .stderr(Stdio::null())
            .spawn()
            .expect("dpvs-exporter");
        let e = Exporter(child, port);
        wait_for("the exporter listening", Duration::from_secs(10), || e.get("/").ok());
        e
    }

    /// `GET path`: the status line and the body.
    fn get(&self, path: &str) -> std::io::Result<(String, String)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.1))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Ok((head.lines().next().unwrap_or_default().to_owned(), body.to_owned()))
    }

    /// A scrape of `/metrics`.
    fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics").expect("scrape");
        assert!(status.contains(" 200 "), "{status}\n{body}");
        body
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the sample whose name and labels are `sample` exactly, if there is one.
fn value(scrape: &str, sample: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Sends UDP through the service for `secs` seconds.
fn traffic(inst: &Instance, secs: u64) {
    let ports =
        (&inst.memif_client("net_memif0", "dpdk0.sock")[..], &inst.memif_client("net_memif1", "dpdk1.sock")[..], 2);
    let mut gen =
        Generator::start_to(&inst.dir, ports, "02:00:00:00:00:10", (20_000, 16), ("198.18.0.1", "198.18.0.100:53"));
    std::thread::sleep(Duration::from_secs(secs));
    let report = gen.stop();
    assert!(u(&report, "received") > 0, "the real server side got nothing: {report}");
}

/// `GET path` from 127.0.0.1:`port`: the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

/// Starts Debian's Prometheus server scraping the exporter on `exporter_port` every second,
/// sends traffic through `inst` until its HTTP API gives `query` (PromQL) a nonzero value (20 s
/// at most), and returns the value.
fn prometheus_rate(inst: &Instance, exporter_port: u16, query: &str) -> f64 {
    let port = free_port();
    let dir = inst.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dpvs\n    static_configs:\n      - targets: [\"127.0.0.1:{exporter_port}\"]\n"
        ),
    )
    .unwrap();
    let mut server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian's prometheus package; scripts/setup.sh installs it)");
    wait_for("Prometheus ready", Duration::from_secs(30), || http_get(port, "/-/ready"));
    let encoded: String = query
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    // Traffic until the query has a value (its window needs two scrapes of moving counters).
    let ports =
        (&inst.memif_client("net_memif0", "dpdk0.sock")[..], &inst.memif_client("net_memif1", "dpdk1.sock")[..], 2);
    let mut gen =
        Generator::start_to(&inst.dir, ports, "02:00:00:00:00:10", (20_000, 16), ("198.18.0.1", "198.18.0.100:53"));
    let mut answer = String::new();
    let value = |answer: &str| -> Option<f64> {
        let v: serde_json::Value = serde_json::from_str(answer).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        answer = http_get(port, &format!("/api/v1/query?query={encoded}")).unwrap_or_default();
        if value(&answer).is_some_and(|v| v > 0.0) {
            break;
        }
    }
    gen.stop();
    let targets = http_get(port, "/api/v1/targets").unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    value(&answer).unwrap_or_else(|| panic!("no value for {query}: {answer}\ntargets: {targets}"))
}

#[test]
fn exporter_serves_moving_counters_and_follows_a_restarted_primary() {
    let _g = serial();
    require_root_and_hugepages();
    let port = free_port();
    let mut inst = Instance::start(&format!("{MEMIF_FNAT_UDP}[exporter]\nlisten = \"127.0.0.1:{port}\"\n"));
    inst.stop();
    let exporter = Exporter::start(&inst.config, port);
    let down = exporter.scrape();
    assert_eq!(value(&down, "dpvs_up"), Some(0.0), "no instance yet:\n{down}");
    assert_eq!(exporter.get("/nothing").unwrap().0.split_whitespace().nth(1), Some("404"));

    inst.restart();
    let service = r#"{protocol="udp",vip="198.18.0.100",port="53""#;
    let real = format!(r#"{service},real="198.18.1.2:5353""#);
    traffic(&inst, 1);
    let first = exporter.scrape();
    assert_eq!(value(&first, "dpvs_up"), Some(1.0), "{first}");
    traffic(&inst, 1);
    let second = exporter.scrape();
    for sample in [
        format!(r#"dpvs_service_packets_total{service},direction="in"}}"#),
        format!(r#"dpvs_service_bytes_total{service},direction="in"}}"#),
        format!(r#"dpvs_real_packets_total{real},direction="in"}}"#),
        r#"dpvs_lcore_rx_packets_total{slot="0",lcore="1"}"#.to_owned(),
        r#"dpvs_lcore_translated_packets_total{slot="0",lcore="1",direction="in"}"#.to_owned(),
    ] {
        let (a, b) = (value(&first, &sample), value(&second, &sample));
        assert!(a.is_some_and(|a| b.is_some_and(|b| b > a && a > 0.0)), "{sample}: {a:?} -> {b:?}\n{second}");
    }
    assert_eq!(value(&second, &format!("dpvs_real_weight{real}}}")), Some(1.0), "{second}");
    assert_eq!(value(&second, r#"dpvs_neighbours{port="dpdk1",state="static"}"#), Some(1.0), "{second}");
    // The generator's UDP flows are connections now, each inactive (as ipvsadm counts UDP):
    // the workers' gauges agree with their tables.
    let tables: u64 = inst.stats()["connections"].as_array().unwrap().iter().map(|c| u(c, "active")).sum();
    assert!(tables > 0);
    assert_eq!(value(&second, &format!("dpvs_real_connections_inactive{real}}}")), Some(tables as f64), "{second}");
    assert_eq!(value(&second, &format!("dpvs_real_connections_active{real}}}")), Some(0.0), "{second}");
    // dpvsctl service list (and ipvsadm -ln) read the same gauges.
    let list = inst.ctl_json(&["service", "list"]).unwrap();
    assert_eq!(u(&list[0]["reals"][0], "inactive_conns"), tables, "{list}");
    assert_eq!(value(&second, r#"dpvs_worker_up{slot="0",group="fnat"}"#), Some(1.0), "{second}");
    // Every sample line names a metric of ours with a value; every family has HELP and TYPE.
    for line in second.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(
            line.starts_with("dpvs_") && line.rsplit(' ').next().is_some_and(|v| v.parse::<f64>().is_ok()),
            "{line}"
        );
    }
    assert_eq!(second.matches("# HELP ").count(), second.matches("# TYPE ").count());
    // Prometheus's own checker (Debian's prometheus package) finds nothing wrong.
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/setup.sh installs it)");
    check.stdin.take().unwrap().write_all(second.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{second}");

    // Debian's Prometheus server scrapes it every second while traffic runs: its query API
    // gives the service a packet rate.
    let rate = prometheus_rate(&inst, exporter.1, "rate(dpvs_service_packets_total{direction=\"in\"}[4s])");
    assert!(rate > 0.0, "rate of the service's packets as Prometheus computes it: {rate}");

    // `dpvsctl stats --rate`: the packets of the last second, per second.
    let ports =
        (&inst.memif_client("net_memif0", "dpdk0.sock")[..], &inst.memif_client("net_memif1", "dpdk1.sock")[..], 2);
    let mut gen =
        Generator::start_to(&inst.dir, ports, "02:00:00:00:00:10", (20_000, 16), ("198.18.0.1", "198.18.0.100:53"));
    std::thread::sleep(Duration::from_millis(500));
    let rates = inst.ctl_json(&["stats", "--rate", "--interval", "1"]).unwrap();
    // `dpvsctl top`: the same rates, live, with the busiest services.
    let top = inst.ctl_json(&["top", "--count", "1", "--interval", "0.5"]).unwrap();
    let text = inst.ctl_ok(&["top", "--batch", "--count", "2", "--interval", "0.2"]);
    gen.stop();
    println!("dpvsctl top: {top}\n{text}");
    let lcore_pps = u(&top["lcores"][0], "rx_pps");
    assert!((5_000..=40_000).contains(&lcore_pps), "{top}");
    assert_eq!(top["services"][0]["vip"], "198.18.0.100", "{top}");
    assert!(u(&top["services"][0], "in_pps") > 5_000, "{top}");
    assert_eq!(text.matches("workers polling").count(), 2, "two refreshes: {text}");
    assert!(text.contains("UDP  198.18.0.100:53"), "{text}");
    let pps = u(&rates["total"], "rx_packets");
    assert!((5_000..=40_000).contains(&pps), "about 20 000 packets a second: {rates}");
    let text = inst.ctl_ok(&["stats", "--rate", "--interval", "0.2"]);
    assert!(text.starts_with("per second over 0.2 s\n"), "{text}");

    // A new primary: the exporter attaches to it at the next scrape.
    inst.restart();
    let again = exporter.scrape();
    assert_eq!(value(&again, "dpvs_up"), Some(1.0), "{again}");
    assert_eq!(
        value(&again, r#"dpvs_worker_restarts_total{slot="0",group="fnat"}"#),
        Some(0.0),
        "a fresh instance: {again}"
    );
}
