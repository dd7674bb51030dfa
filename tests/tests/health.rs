//! `dpvs-health` end to end: two real servers in a namespace behind Full-NAT services with an
//! HTTP, a TCP-connect and a UDP check; the checker runs in the namespace of the real servers'
//! port's exception path (its probes leave through the balancer's kni interface, as an
//! operator's would from the host).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration::*;

/// Two tap ports, dpdk1 with an exception path `kni`; services on the VIP 198.18.0.100 over
/// the real servers 198.18.1.2 and 198.18.1.3: tcp :80 (HTTP check, inhibit), tcp :81 (TCP
/// check, remove), udp :53 (UDP check).
fn config(ifp: &str, kni: &str) -> String {
    let ports = TAP_PORTS
        .replace("@IF@", ifp)
        .replace("vdev = \"net_tap1,iface=", &format!("kni = \"{kni}\"\nvdev = \"net_tap1,iface="));
    let reals = |port: u16| {
        ["198.18.1.2", "198.18.1.3"]
            .iter()
            .map(|a| format!("[[services.reals]]\naddress = \"{a}\"\nport = {port}\n"))
            .collect::<String>()
    };
    format!(
        r#"{ports}
[[addresses]]
port = "dpdk0"
address = "198.18.0.100/24"
[[addresses]]
port = "dpdk1"
address = "198.18.1.254/24"
[[neighbours]]
address = "198.18.1.2"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[neighbours]]
address = "198.18.1.3"
mac = "02:00:00:00:01:02"
port = "dpdk1"
[[services]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
local_addresses = ["198.18.1.254"]
[services.check]
type = "http"
path = "/health"
body = "ok"
interval_ms = 300
timeout_ms = 250
rise = 2
fall = 2
{http}
[[services]]
vip = "198.18.0.100"
port = 81
protocol = "tcp"
local_addresses = ["198.18.1.254"]
[services.check]
type = "tcp"
interval_ms = 300
timeout_ms = 250
rise = 2
fall = 2
on_failure = "remove"
{tcp}
[[services]]
vip = "198.18.0.100"
port = 53
protocol = "udp"
local_addresses = ["198.18.1.254"]
[services.check]
type = "udp"
send = "ping"
expect = "ping from"
interval_ms = 300
timeout_ms = 250
rise = 2
fall = 2
{udp}
[connections]
capacity_per_lcore = 4096
"#,
        http = reals(8080),
        tcp = reals(8080),
        udp = reals(5353),
    )
}

/// `dpvs-health` for the instance, in namespace `ns`, logging to the instance's directory.
fn checker(inst: &Instance, ns: &Netns) -> Spawned {
    let log = std::fs::File::options().create(true).append(true).open(inst.dir.join("health.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(bin("dpvs-health"))
        .arg("-c")
        .arg(&inst.config)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("dpvs-health");
    Spawned(child)
}

/// `dpvsctl check list --json`: each real server's state, by "service real".
fn states(inst: &Instance) -> std::collections::BTreeMap<String, (String, String, u64)> {
    let rows = inst.ctl_json(&["check", "list"]).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = format!("{} {}", r["service"].as_str().unwrap(), r["real"].as_str().unwrap());
            let error = r["last_error"].as_str().unwrap_or_default().to_owned();
            // The checker's verdict, once the configuration carries it (the checker writes its
            // table first, then sends the change): "down" or "up" only when both agree.
            let mut state = r["state"].as_str().unwrap().to_owned();
            if (state == "down") != r["down"].as_bool().unwrap() {
                state = format!("{state} (not applied yet)");
            }
            (key, (state, error, u(r, "weight")))
        })
        .collect()
}

/// How many checks the checker has made of `service real`.
fn checks_of(inst: &Instance, service: &str, real: &str) -> u64 {
    let rows = inst.ctl_json(&["check", "list"]).unwrap();
    let key = |r: &serde_json::Value| format!("{} {}", r["service"].as_str().unwrap(), r["real"].as_str().unwrap());
    rows.as_array().unwrap().iter().find(|r| key(r) == format!("{service} {real}")).map_or(0, |r| u(r, "checks"))
}

fn state_of(inst: &Instance, service: &str, real: &str) -> (String, String, u64) {
    states(inst).remove(&format!("{service} {real}")).unwrap_or_else(|| panic!("{service} {real} not listed"))
}

/// Waits until `service real` shows `state`; returns how long it took.
fn until_state(inst: &Instance, service: &str, real: &str, state: &str) -> Duration {
    let t = Instant::now();
    wait_for(&format!("{service} {real} {state}"), Duration::from_secs(15), || {
        (state_of(inst, service, real).0 == state).then_some(())
    });
    t.elapsed()
}

/// Which real server answers a new connection to VIP:`port`/whoami (None: no answer).
fn whoami(cli: &Netns, port: u16) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "3"])
        .arg(format!("http://198.18.0.100:{port}/whoami"))
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Which real server answers a UDP question to VIP:53.
fn udp_whoami(cli: &Netns) -> Option<String> {
    let ask = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\ns.sendto(b\"hi\",(\"198.18.0.100\",53))\nprint(s.recvfrom(2048)[0].decode().split(':')[0])\n";
    let out = Command::new("ip").args(["netns", "exec", &cli.0, "python3", "-c", ask]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn signal(child: &Spawned, sig: &str) {
    sh(&format!("kill -{sig} {}", child.0.id()));
}

#[test]
fn health_checks_take_a_dead_real_server_out_keep_its_connections_and_bring_it_back() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dh");
    let kni = format!("{ifp}k");
    let inst = Instance::start(&config(&ifp, &kni));
    let (cli, srv, host) = (Netns::new("hc"), Netns::new("hs"), Netns::new("hh"));
    sh(&format!("ip link set {ifp}a netns {}", cli.0));
    cli.sh(&format!(
        "ip link set {ifp}a address 02:00:00:00:01:01 && ip addr add 198.18.0.1/24 dev {ifp}a && ip link set {ifp}a up"
    ));
    sh(&format!("ip link set {ifp}b netns {}", srv.0));
    srv.sh(&format!(
        "ip link set {ifp}b address 02:00:00:00:01:02 && ip addr add 198.18.1.2/24 dev {ifp}b && ip addr add 198.18.1.3/24 dev {ifp}b && ip link set {ifp}b up"
    ));
    // The host: the exception path of the real servers' port, with an address of their network.
    sh(&format!("ip link set {kni} netns {}", host.0));
    host.sh(&format!("ip addr add 198.18.1.253/24 dev {kni} && ip link set {kni} up"));
    sh(&format!("head -c 3000000 /dev/urandom > {}", inst.dir.join("blob").display()));
    let dir = inst.dir.display().to_string();
    let web = |a: &str| Spawned::python_in(&srv, &tool("http_real.py"), &[a, "8080", &dir]);
    let echo = |a: &str| Spawned::python_in(&srv, &tool("udp_echo.py"), &[a, "5353", a]);
    let (web2, web3, echo2) = (web("198.18.1.2"), web("198.18.1.3"), echo("198.18.1.2"));
    let mut echo3 = Some(echo("198.18.1.3"));
    let mut health = checker(&inst, &host);

    let (http, tcp, udp) = ("tcp 198.18.0.100:80", "tcp 198.18.0.100:81", "udp 198.18.0.100:53");
    let (r2, r3, u2, u3) = ("198.18.1.2:8080", "198.18.1.3:8080", "198.18.1.2:5353", "198.18.1.3:5353");
    for (s, r) in [(http, r2), (http, r3), (tcp, r2), (tcp, r3), (udp, u2), (udp, u3)] {
        until_state(&inst, s, r, "up");
    }
    // Both real servers take connections.
    let mut seen: Vec<String> = (0..4).filter_map(|_| whoami(&cli, 80)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["198.18.1.2", "198.18.1.3"]);

    // A slow download from one of them, then that one stops taking connections.
    let (got, headers) = (inst.dir.join("got"), inst.dir.join("headers"));
    let mut download = Command::new("ip")
        .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "30", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&got)
        .arg("http://198.18.0.100/blob")
        .spawn()
        .unwrap();
    let serving = wait_for("the download's headers", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&headers).ok()?;
        text.lines().find_map(|l| l.strip_prefix("X-Real: ")).map(|a| a.trim().to_owned())
    });
    let (dead, alive, dead_web) =
        if serving == "198.18.1.2" { (r2, "198.18.1.3", &web2) } else { (r3, "198.18.1.2", &web3) };
    signal(dead_web, "USR1");
    let took = until_state(&inst, http, dead, "down");
    println!("HTTP check: {dead} down {} ms after its listener closed", took.as_millis());
    let (_, error, weight) = state_of(&inst, http, dead);
    assert_eq!((error.as_str(), weight), ("connect: Connection refused", 0));
    until_state(&inst, tcp, dead, "down");
    assert_eq!(state_of(&inst, tcp, dead).1, "connect: Connection refused");
    // Every new connection goes to the other one.
    for _ in 0..6 {
        assert_eq!(whoami(&cli, 80).as_deref(), Some(alive));
        assert_eq!(whoami(&cli, 81).as_deref(), Some(alive));
    }
    // As keepalived would leave it: weight 0 under the inhibiting check, gone under the
    // removing one; dpvsctl says why.
    let ipvsadm = Command::new(bin("ipvsadm")).arg("-ln").env("DPVS_CONFIG", &inst.config).output().unwrap();
    let listed = String::from_utf8_lossy(&ipvsadm.stdout).into_owned();
    let (port80, port81) = listed.split_once("TCP  198.18.0.100:81").unwrap();
    assert!(port80.contains(&format!("  -> {dead:<28} FullNat 0 ")), "{listed}");
    assert!(!port81.contains(dead) && port81.contains(alive), "{listed}");
    let text = String::from_utf8_lossy(&inst.ctl(&["service", "list"]).stdout).into_owned();
    assert!(
        text.contains("  check: http GET /health 200 \"ok\" every 300 ms, timeout 250 ms, rise 2, fall 2, inhibit"),
        "{text}"
    );
    assert!(text.contains(": connect: Connection refused; 1 flap, configured weight 1"), "{text}");
    assert!(text.contains(", removed"), "{text}");
    // The download that started before goes on to its end, intact.
    let status = download.wait().unwrap();
    assert!(status.success(), "the established download completes");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(inst.dir.join("blob")).unwrap());

    // Back: after `rise` successes it takes new connections again.
    signal(dead_web, "USR2");
    until_state(&inst, http, dead, "up");
    until_state(&inst, tcp, dead, "up");
    let dead_addr = dead.split(':').next().unwrap();
    wait_for("the revived real server answering", Duration::from_secs(10), || {
        (whoami(&cli, 80).as_deref() == Some(dead_addr)).then_some(())
    });

    // UDP: a real server whose echo is gone (port unreachable) is taken out.
    drop(echo3.take());
    until_state(&inst, udp, u3, "down");
    assert_eq!(state_of(&inst, udp, u3).1, "receive: Connection refused");
    for _ in 0..4 {
        assert_eq!(udp_whoami(&cli).as_deref(), Some("198.18.1.2"));
    }
    // Prometheus sees it too.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let exporter = Command::new(bin("dpvs-exporter"))
        .args(["-c", &inst.config.display().to_string(), "--listen", &listen])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _exporter = Spawned(exporter);
    let metrics = wait_for("a scrape", Duration::from_secs(10), || {
        let out =
            Command::new("curl").args(["-sS", "--max-time", "3", &format!("http://{listen}/metrics")]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let real = |r: &str| format!("{{protocol=\"udp\",vip=\"198.18.0.100\",port=\"53\",real=\"{r}\"}}");
    assert!(metrics.contains(&format!("dpvs_real_up{} 0\n", real(u3))), "{metrics}");
    assert!(metrics.contains(&format!("dpvs_real_up{} 1\n", real(u2))), "{metrics}");
    assert!(metrics.contains(&format!("dpvs_real_health_flaps_total{} 1\n", real(u3))), "{metrics}");

    // The checker killed: forwarding goes on as it left it.
    sh(&format!("kill -KILL {}", health.0.id()));
    let _ = health.0.wait();
    for _ in 0..3 {
        assert_eq!(udp_whoami(&cli).as_deref(), Some("198.18.1.2"), "the down real server stays out");
        assert!(whoami(&cli, 80).is_some());
    }
    // Restarted, it takes over: the UDP real server stays down until it answers `rise` times.
    // (Its table starts again: fewer checks than the killed checker had made.)
    let checks_before = checks_of(&inst, udp, u3);
    health = checker(&inst, &host);
    wait_for("the new checker's table", Duration::from_secs(10), || {
        let n = checks_of(&inst, udp, u3);
        (n > 0 && n < checks_before && state_of(&inst, udp, u3).0 == "down").then_some(())
    });
    echo3 = Some(echo("198.18.1.3"));
    until_state(&inst, udp, u3, "up");
    wait_for("the UDP real server answering again", Duration::from_secs(10), || {
        (0..4).any(|_| udp_whoami(&cli).as_deref() == Some("198.18.1.3")).then_some(())
    });
    // At run time: a bad check is refused naming its key; a check taken away leaves its real
    // servers scheduled and unchecked.
    let bad = inst.ctl(&[
        "check",
        "set",
        "udp",
        "198.18.0.100:53",
        "--type",
        "udp",
        "--send",
        "ping",
        "--interval-ms",
        "300",
        "--timeout-ms",
        "900",
    ]);
    let said = String::from_utf8_lossy(&bad.stderr).into_owned() + &String::from_utf8_lossy(&bad.stdout);
    assert!(
        !bad.status.success() && said.contains("check.timeout_ms: a check must end before the next starts"),
        "{said}"
    );
    inst.ctl_ok(&[
        "check",
        "set",
        "tcp",
        "198.18.0.100:81",
        "--type",
        "http",
        "--path",
        "/whoami",
        "--interval-ms",
        "300",
        "--",
    ]);
    inst.ctl_ok(&["check", "del", "tcp", "198.18.0.100:81"]);
    assert!(!states(&inst).keys().any(|k| k.starts_with(tcp)), "{:?}", states(&inst));
    let log = std::fs::read_to_string(inst.dir.join("health.log")).unwrap_or_default();
    assert!(log.contains(&format!("{dead} of tcp 198.18.0.100:80 down: connect: Connection refused")), "{log}");
    drop((health, echo3, echo2, web2, web3));
}
