//! End to end with real Linux stacks: two tap ports whose kernel sides sit in two network
//! namespaces; ping and an HTTP transfer (python http.server, curl) pass through the worker,
//! and the balancer's own address answers ARP and ping.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration::*;

/// Moves the kernel sides `<ifp>a` and `<ifp>b` of the instance's two taps into a client
/// namespace (198.18.0.1/24) and a server namespace (`server`), with fixed MACs.
fn namespaces(ifp: &str, server: &str) -> (Netns, Netns) {
    let (cli, srv) = (Netns::new("nc"), Netns::new("ns"));
    for (ns, side, addr, mac) in
        [(&cli, "a", "198.18.0.1/24", "02:00:00:00:01:01"), (&srv, "b", server, "02:00:00:00:01:02")]
    {
        let dev = format!("{ifp}{side}");
        sh(&format!("ip link set {dev} netns {}", ns.0));
        ns.sh(&format!("ip link set {dev} address {mac} && ip addr add {addr} dev {dev} && ip link set {dev} up"));
    }
    (cli, srv)
}

/// One arm: dpdk0's tap on a bridge in a namespace of its own, with the client
/// (198.18.0.1/24) and the server (`server`) each on a veth to it. Returns (bridge, client,
/// server).
fn one_arm(ifp: &str, server: &str) -> (Netns, Netns, Netns) {
    let (lan, cli, srv) = (Netns::new("nl"), Netns::new("nc"), Netns::new("ns"));
    sh(&format!("ip link set {ifp}a netns {}", lan.0));
    // The tap's kernel side starts with the port's own MAC; a bridge port (or a bridge) with
    // it would take the frames meant for the port.
    lan.sh(&format!(
        "ip link add br0 address 02:00:00:00:02:ff type bridge && ip link set {ifp}a address 02:00:00:00:02:00 && ip link set {ifp}a master br0 && ip link set {ifp}a up && ip link set br0 up"
    ));
    for (ns, side, addr, mac) in
        [(&cli, "c", "198.18.0.1/24", "02:00:00:00:01:01"), (&srv, "s", server, "02:00:00:00:01:02")]
    {
        let (inner, outer) = (format!("{ifp}{side}"), format!("{ifp}{side}l"));
        lan.sh(&format!(
            "ip link add {outer} type veth peer name {inner} && ip link set {outer} master br0 && ip link set {outer} up && ip link set {inner} netns {}",
            ns.0
        ));
        // Sockets over a veth leave checksums to an offload the balancer does not do.
        ns.sh(&format!(
            "ip link set {inner} address {mac} && ip addr add {addr} dev {inner} && ip link set {inner} up && ethtool -K {inner} tx off >/dev/null"
        ));
    }
    (lan, cli, srv)
}

/// python3 http.server on `bind`:8080 in `ns`, serving `dir`.
fn http_server(ns: &Netns, bind: &str, dir: &std::path::Path, extra: &[&str], stderr: Stdio) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-m", "http.server", "8080", "--bind", bind])
        .args(extra)
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("python3 http.server")
}

/// Fetches `url` with curl in `ns` into `out`; on a 200, curl's
/// `<code> <bytes> <bytes per second>`.
fn fetch(ns: &Netns, url: &str, out: &std::path::Path) -> Option<String> {
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.0, "curl", "-sS", "--max-time", "10", "-o"])
        .arg(out)
        .args(["-w", "%{http_code} %{size_download} %{speed_download}", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.starts_with("200 ").then_some(text)
}

/// The two tap ports with the VIP 198.18.0.100 on dpdk0, 198.18.1.254 on dpdk1, and a TCP
/// service VIP:80 with the one real server 198.18.1.2:`port` reached by `forward`.
fn one_real_server(ifp: &str, port: u16, forward: &str) -> String {
    let bare = TAP_PORTS.replace("@IF@", ifp);
    format!(
        r#"{bare}
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
[[services]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
[[services.reals]]
address = "198.18.1.2"
port = {port}
forward = "{forward}"
"#
    )
}

/// `bytes` of random data from an HTTP server on the real server 198.18.1.2:8080 in `srv`,
/// fetched by curl in `cli` through the VIP 198.18.0.100:80 and checked byte for byte.
/// Returns the server's access log.
fn download_through_the_vip(inst: &Instance, cli: &Netns, srv: &Netns, bytes: usize) -> String {
    let blob = inst.dir.join("blob");
    sh(&format!("head -c {bytes} /dev/urandom > {}", blob.display()));
    let log = inst.dir.join("http.log");
    let mut server = http_server(srv, "198.18.1.2", &inst.dir, &[], Stdio::from(std::fs::File::create(&log).unwrap()));
    let got = inst.dir.join("got");
    let curl = wait_for("an HTTP transfer through the VIP", Duration::from_secs(20), || {
        fetch(cli, "http://198.18.0.100/blob", &got)
    });
    stop_child(&mut server, Duration::from_secs(2));
    println!("curl through the VIP: {curl}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap(), "the file arrived intact");
    std::fs::read_to_string(&log).unwrap()
}

/// 1 MB from an HTTP server listening on the VIP itself (198.18.0.100:80) in `srv`, as a real
/// server of direct routing or IP-in-IP does, fetched by curl in `cli` through the balancer
/// (`how`) and checked byte for byte. Returns the server's access log.
fn download_from_the_vip_itself(inst: &Instance, cli: &Netns, srv: &Netns, how: &str) -> String {
    download_from_port_80(inst, cli, srv, "198.18.0.100", how)
}

/// 1 MB from an HTTP server on `bind`:80 in `srv`, fetched by curl in `cli` from the VIP
/// (198.18.0.100:80) through the balancer (`how`) and checked byte for byte. Returns the
/// server's access log.
fn download_from_port_80(inst: &Instance, cli: &Netns, srv: &Netns, bind: &str, how: &str) -> String {
    let log = inst.dir.join("http.log");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &srv.0, "python3", "-m", "http.server", "80", "--bind", bind, "--directory"])
        .arg(&inst.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let blob = inst.dir.join("blob");
    sh(&format!("head -c 1000000 /dev/urandom > {}", blob.display()));
    let got = inst.dir.join("got");
    let curl = wait_for(&format!("an HTTP transfer through {how}"), Duration::from_secs(20), || {
        fetch(cli, "http://198.18.0.100/blob", &got)
    });
    stop_child(&mut server, Duration::from_secs(2));
    println!("curl through {how}: {curl}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap(), "the file arrived intact");
    std::fs::read_to_string(&log).unwrap()
}

/// A script of `tests/tools`.
fn tool(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools").join(name)
}

/// Uploads `bytes` from `cli` to `to` through the balancer, to a server in `srv` listening on
/// `listen` that counts what arrives; returns its count.
fn upload(cli: &Netns, srv: &Netns, listen: (&str, u16), to: (&str, u16), bytes: usize) -> String {
    let _sink = Spawned::python_in(srv, &tool("tcp_answer.py"), &[listen.0, &listen.1.to_string(), "count"]);
    std::thread::sleep(Duration::from_millis(500));
    let sent = cli.sh(&format!(
        "python3 -c \"import socket; s = socket.create_connection((\\\"{}\\\", {}), timeout=10); \
         s.sendall(bytes({bytes})); s.shutdown(socket.SHUT_WR); print(s.recv(100).decode())\"",
        to.0, to.1
    ));
    sent.trim().to_owned()
}

#[test]
fn ping_and_http_through_the_worker_between_namespaces() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dv");
    let inst = Instance::start(&tap_pair(&ifp));
    let (cli, srv) = namespaces(&ifp, "198.18.0.2/24");

    let ping = cli.sh("ping -c 3 -i 0.2 -W 2 198.18.0.2");
    assert!(ping.contains("3 received"), "{ping}");

    // The balancer's own address: the client resolves it (ARP) and pings it.
    let ping = cli.sh("ping -c 3 -i 0.2 -W 2 198.18.0.254");
    assert!(ping.contains("3 received"), "{ping}");
    let neigh = cli.sh(&format!("ip neigh show 198.18.0.254 dev {ifp}a"));
    assert!(neigh.contains("02:00:00:00:00:10"), "resolved to the port's MAC: {neigh}");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "arp_replies") >= 1, "{s}");
    assert_eq!(u(&s, "icmp_echo_replies"), 3, "{s}");
    // The server, on the other arm, does not get an answer: the address is dpdk0's.
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &srv.0, "ping", "-c", "1", "-W", "1", "198.18.0.254"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "only the owning port answers");

    // 5 MB of random data over HTTP, checked byte for byte.
    let blob = inst.dir.join("blob");
    sh(&format!("head -c 5000000 /dev/urandom > {}", blob.display()));
    let mut server = http_server(&srv, "198.18.0.2", &inst.dir, &[], Stdio::null());
    let got = inst.dir.join("got");
    let curl =
        wait_for("an HTTP transfer", Duration::from_secs(20), || fetch(&cli, "http://198.18.0.2:8080/blob", &got));
    stop_child(&mut server, Duration::from_secs(2));
    println!("curl: {curl}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap(), "the file arrived intact");

    let s = inst.stats()["total"].clone();
    println!("worker counters: {s}");
    // 5 MB is about 3500 full-size segments one way, plus the ACKs the other way.
    assert!(u(&s, "tx_packets") > 3500, "the transfer went through the worker: {s}");
}

/// [`TAP_PORTS`] with a Full-NAT TCP service on 198.18.0.100:80 and a UDP one on :53.
fn fnat(ifp: &str) -> String {
    format!("{}{FNAT_TABLES}", TAP_PORTS.replace("@IF@", ifp))
}

const FNAT_TABLES: &str = r#"
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
[[services]]
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
port = 53
protocol = "udp"
scheduler = "mh"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
port = 5353
[connections]
capacity_per_lcore = 4096
"#;

#[test]
fn curl_reaches_the_real_server_through_the_full_nat_vip() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dn");
    let inst = Instance::start(&fnat(&ifp));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    let access = download_through_the_vip(&inst, &cli, &srv, 2_000_000);
    assert!(access.contains("198.18.1.254 - -"), "the real server saw the local address, not the client: {access}");
    assert!(!access.contains("198.18.0.1 - -"), "{access}");
    // UDP through the same VIP: an echo server behind it answers the client.
    let udp_server = Spawned::python_in(&srv, &tool("udp_echo.py"), &["198.18.1.2", "5353"]);
    let ask = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(2)\ns.sendto(b\"hello\",(\"198.18.0.100\",53))\nprint(s.recvfrom(2048)[0].decode())\n";
    let ask_vip = || {
        wait_for("a UDP answer through the VIP", Duration::from_secs(10), || {
            let out = Command::new("ip").args(["netns", "exec", &cli.0, "python3", "-c", ask]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
    };
    assert_eq!(ask_vip(), "hello from 198.18.1.254", "the echo server saw the local address");
    // With PROXY protocol version 2, each datagram tells the real server who the client is.
    inst.ctl_ok(&["service", "edit", "udp", "198.18.0.100:53", "--proxy-protocol", "v2"]);
    let answer = ask_vip();
    drop(udp_server);
    assert!(answer.starts_with("hello from 198.18.1.254 for 198.18.0.1:"), "{answer}");

    let stats = inst.stats();
    let s = stats["total"].clone();
    println!("worker counters: {s}");
    // Inbound, the client's requests and ACKs (how many ACKs a 2 MB download takes depends on
    // the kernel's receive offloads: 73 were seen); outbound, the download's segments.
    assert!(u(&s, "fnat_in") > 10 && u(&s, "fnat_out") > 1000, "{s}");
    let c = stats["connections"][0].clone();
    assert!(u(&c, "created") >= 1 && u(&c, "capacity") == 4096, "{c}");
    let list = inst.ctl(&["service", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("TCP  198.18.0.100:80 rr\n  -> 198.18.1.2:8080"), "{text}");
    assert!(text.contains("UDP  198.18.0.100:53 mh\n  -> 198.18.1.2:5353"), "{text}");
}

#[test]
fn a_full_nat_download_survives_kill_9_of_its_worker() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dk");
    let inst = Instance::start(&fnat(&ifp));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    let blob = inst.dir.join("blob");
    sh(&format!("head -c 100000000 /dev/urandom > {}", blob.display()));
    let mut server = http_server(&srv, "198.18.1.2", &inst.dir, &[], Stdio::null());
    wait_for("the real server", Duration::from_secs(10), || {
        Command::new("ip")
            .args(["netns", "exec", &srv.0, "curl", "-s", "-o", "/dev/null", "http://198.18.1.2:8080/"])
            .status()
            .ok()?
            .success()
            .then_some(())
    });
    // A rate-limited download, so that it is in flight when the worker dies.
    let got = inst.dir.join("got");
    let curl = Command::new("ip")
        .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "60", "--limit-rate", "20M", "-o"])
        .arg(&got)
        .args(["-w", "%{http_code} %{size_download}", "http://198.18.0.100/blob"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the download under way", Duration::from_secs(20), || {
        (std::fs::metadata(&got).map(|m| m.len()).unwrap_or(0) > 20_000_000).then_some(())
    });
    let w = inst.kill_worker_and_wait(0, 1, "the replacement");
    println!("replacement after kill -9: {w}");
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    stop_child(&mut server, Duration::from_secs(2));
    assert!(out.status.success() && text.starts_with("200 100000000"), "curl: {text}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap(), "the 100 MB arrived intact");
    let s = inst.stats()["total"].clone();
    println!("worker counters: {s}");
    assert_eq!(u(&s, "drop_no_conn"), 0, "the replacement knew the connection: {s}");
}

#[test]
fn full_nat_on_two_lcores_hands_replies_to_the_lcore_that_owns_the_connection() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dr");
    let two = fnat(&ifp).replace(
        "[[groups.lcores]]\nid = 1\ncpu = 1\nrx = [\"dpdk0:0\", \"dpdk1:0\"]",
        "[[groups.lcores]]\nid = 1\ncpu = 1\nrx = [\"dpdk0:0\", \"dpdk1:0\"]\n[[groups.lcores]]\nid = 2\ncpu = 1\nrx = [\"dpdk0:1\", \"dpdk1:1\"]",
    );
    let two = two
        .replace("mac=02:00:00:00:00:10\"\n", "mac=02:00:00:00:00:10\"\nqueues = 2\n")
        .replace("mac=02:00:00:00:00:11\"\n", "mac=02:00:00:00:00:11\"\nqueues = 2\n");
    assert!(two.contains("id = 2") && two.matches("queues = 2").count() == 2, "{two}");
    let inst = Instance::start(&two);
    assert_eq!(inst.workers().len(), 2);
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    let blob = inst.dir.join("blob");
    sh(&format!("head -c 300000 /dev/urandom > {}", blob.display()));
    let mut server = http_server(&srv, "198.18.1.2", &inst.dir, &[], Stdio::null());
    let got = inst.dir.join("got");
    // Many connections, so that both lcores own some and replies cross between them.
    for i in 0..16 {
        let text = wait_for(&format!("transfer {i} through the VIP"), Duration::from_secs(20), || {
            fetch(&cli, "http://198.18.0.100/blob", &got)
        });
        assert!(text.starts_with("200 300000 "), "{text}");
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap());
    }
    stop_child(&mut server, Duration::from_secs(2));
    let stats = inst.stats();
    println!("per lcore: {}", stats["lcores"]);
    println!("connections: {}", stats["connections"]);
    let total = &stats["total"];
    assert!(u(total, "redirected") > 0, "replies crossed lcores: {total}");
    assert_eq!(u(total, "drop_no_conn"), 0, "{total}");
    assert_eq!(u(total, "drop_redirect"), 0, "{total}");
    let created: Vec<u64> = stats["connections"].as_array().unwrap().iter().map(|c| u(c, "created")).collect();
    assert!(created.iter().all(|&n| n > 0), "both lcores own connections: {created:?}");
}

#[test]
fn keep_alive_http_through_full_nat_loses_nothing_across_ten_rolling_restarts() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dw");
    let inst = Instance::start(&fnat(&ifp));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    std::fs::write(inst.dir.join("index.html"), "hello through the VIP\n").unwrap();
    let mut server = http_server(&srv, "198.18.1.2", &inst.dir, &["--protocol", "HTTP/1.1"], Stdio::null());
    wait_for("the VIP answering", Duration::from_secs(20), || {
        let out = Command::new("ip")
            .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "2", "http://198.18.0.100/"])
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    // Keep-alive HTTP for 11 s while the worker is replaced 10 times.
    let wrk = Command::new("ip")
        .args(["netns", "exec", &cli.0, "wrk", "-t", "1", "-c", "4", "-d", "11s", "--latency", "http://198.18.0.100/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk (package wrk)");
    std::thread::sleep(Duration::from_millis(1000));
    for _ in 0..10 {
        let out = inst.ctl(&["worker", "restart", "--all"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(700));
    }
    let out = wrk.wait_with_output().unwrap();
    stop_child(&mut server, Duration::from_secs(2));
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    let requests: u64 = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in").map(|(n, _)| n.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    assert!(requests > 100, "wrk made requests: {report}");
    assert!(!report.contains("Socket errors"), "no socket error across 10 handovers: {report}");
    assert!(!report.contains("Non-2xx"), "only 2xx answers: {report}");
    assert_eq!(u(&inst.workers()[0], "restarts"), 0, "handovers, not crashes");
}

/// Runs the front-end `tool` (`ipvsadm`, `dpip`) against `inst` with `line`; asserts that it
/// succeeds and returns its output.
fn front(inst: &Instance, tool: &str, line: &str) -> String {
    let out = Command::new(bin(tool)).args(line.split_whitespace()).env("DPVS_CONFIG", &inst.config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{tool} {line}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// DPVS's quick start, its four lines verbatim (the local address installed by `--add-laddr
/// -F`) on an instance with only its ports, one-arm: the client and the real server on dpdk0's
/// network. Then `--del-laddr` takes the installed address away again.
#[test]
fn the_dpvs_quick_start_verbatim_one_arm() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dw");
    let bare = TAP_PORTS.replace("@IF@", &ifp);
    let inst = Instance::start(&bare);
    let (vip, lip, rs) = ("198.18.0.100", "198.18.0.200", "198.18.0.2");
    let (_lan, cli, srv) = one_arm(&ifp, &format!("{rs}/24"));
    for (tool, line) in [
        ("dpip", format!("addr add {vip}/24 dev dpdk0")),
        ("ipvsadm", format!("-A -t {vip}:80 -s rr")),
        ("ipvsadm", format!("-a -t {vip}:80 -r {rs} -b")),
        ("ipvsadm", format!("--add-laddr -z {lip} -t {vip}:80 -F dpdk0")),
    ] {
        assert_eq!(front(&inst, tool, &line), "", "{tool} {line} prints nothing on success");
    }
    let addrs = front(&inst, "dpip", "addr show");
    assert_eq!(addrs, format!("inet {vip}/24 scope global dpdk0\ninet {lip}/32 scope global dpdk0 sapool\n"));
    // The real server listens on the service's port (`-r` without a port).
    let access = download_from_port_80(&inst, &cli, &srv, rs, "the VIP, one-arm");
    assert!(access.contains(&format!("{lip} - -")), "Full-NAT: the server saw the local address: {access}");
    // The server resolved the local address by ARP, on dpdk0.
    let neigh = srv.sh(&format!("ip neigh show {lip}"));
    assert!(neigh.contains("02:00:00:00:00:10"), "{neigh}");
    assert_eq!(front(&inst, "ipvsadm", &format!("--del-laddr -z {lip} -t {vip}:80 -F dpdk0")), "");
    assert_eq!(front(&inst, "dpip", "addr show"), format!("inet {vip}/24 scope global dpdk0\n"));
}

#[test]
fn the_dpvs_quick_start_with_dpip_and_ipvsadm_then_curl_through_the_vip() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dq");
    // The ports and a worker, nothing else: everything below is configured at run time.
    let bare = TAP_PORTS.replace("@IF@", &ifp);
    let inst = Instance::start(&bare);
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // The client creates neighbour entries from gratuitous ARP (Linux only updates them by
    // default), so the announcement of the VIP shows in its table.
    cli.sh("sysctl -qw net.ipv4.conf.all.arp_accept=1");
    cli.sh(&format!("sysctl -qw net.ipv4.conf.{ifp}a.arp_accept=1"));
    for (tool, line) in [
        ("dpip", "addr add 198.18.0.100/24 dev dpdk0"),
        ("dpip", "addr add 198.18.1.254/24 dev dpdk1"),
        // DPVS's quick start as it is: the real server's MAC comes from ARP.
        ("ipvsadm", "-A -t 198.18.0.100:80 -s rr"),
        ("ipvsadm", "-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b"),
        ("ipvsadm", "--add-laddr -z 198.18.1.254 -t 198.18.0.100:80 -F dpdk1"),
    ] {
        assert_eq!(front(&inst, tool, line), "", "{tool} {line} prints nothing on success");
    }
    // The worker announced the new address: the client knows the VIP's MAC without asking.
    let neigh = wait_for("the gratuitous ARP for the VIP", Duration::from_secs(5), || {
        let n = cli.sh(&format!("ip neigh show 198.18.0.100 dev {ifp}a"));
        n.contains("02:00:00:00:00:10").then_some(n)
    });
    println!("client's neighbour entry from the gratuitous ARP: {}", neigh.trim());
    let access = download_through_the_vip(&inst, &cli, &srv, 1_000_000);
    assert!(access.contains("198.18.1.254 - -"), "Full-NAT: the server saw the local address: {access}");
    let neigh = front(&inst, "dpip", "neigh show");
    assert_eq!(neigh, "ip: 198.18.1.2       mac: 02:00:00:00:01:02   state: REACHABLE   dev: dpdk1\n");
    let list = front(&inst, "ipvsadm", "-ln");
    assert!(list.contains("TCP  198.18.0.100:80 rr\n  -> 198.18.1.2:8080              FullNat 1      "), "{list}");
    // The transfer's connection is in the table (closing, so inactive) for a few seconds.
    let conns = front(&inst, "ipvsadm", "-lnc");
    assert!(conns.contains("198.18.0.100:80       198.18.1.254:"), "{conns}");
    let rows = inst.ctl_json(&["conn", "list", "--vip", "198.18.0.100:80", "--client", "198.18.0.1"]).unwrap();
    // The transfer's connection, and those of attempts the server refused before it listened.
    let row = rows.as_array().unwrap().iter().max_by_key(|r| u(r, "packets_out")).unwrap();
    assert_eq!((row["real"].as_str(), row["protocol"].as_str()), (Some("198.18.1.2:8080"), Some("TCP")), "{rows}");
    assert!(u(row, "packets_out") > 100, "the download's segments came back through it: {rows}");
    assert_eq!(inst.ctl_json(&["conn", "list", "--client", "198.18.0.9"]).unwrap(), serde_json::json!([]));
    // Per-service counters: the download's connection and packets both ways.
    let stats = inst.ctl_json(&["service", "list", "--stats"]).unwrap();
    let svc = &stats.as_array().unwrap()[0];
    assert!(u(svc, "conns") >= 1 && u(svc, "in_packets") > 10 && u(svc, "out_bytes") > 1_000_000, "{stats}");
    // Per-port and per-queue counts, kept by the workers.
    let links = inst.ctl_json(&["link", "show"]).unwrap();
    let (p0, p1) = (&links[0], &links[1]);
    assert!(u(p0, "rx_packets") > 10 && u(p1, "tx_packets") > 10 && u(p1, "rx_packets") > 500, "{links}");
    assert_eq!(u(p0, "rx_packets"), u(&p0["queues"][0], "rx_packets"), "one rx queue carries it all");
    assert!(front(&inst, "dpip", "-s link show").contains("    RX: packets "));
    let text = front(&inst, "ipvsadm", "-ln --stats");
    assert!(text.contains("Conns   InPkts  OutPkts    InBytes   OutBytes"), "{text}");
    assert!(front(&inst, "dpip", "addr show").contains("inet 198.18.0.100/24 scope global dpdk0"));
    assert!(front(&inst, "ipvsadm", "-G").contains("198.18.1.254"));
    // The real server's own counters, then `-Z` zeroes them and the service's.
    let real = &svc["reals"][0]["stats"];
    assert!(u(real, "conns") >= 1 && u(real, "out_bytes") > 1_000_000, "{stats}");
    assert_eq!(front(&inst, "ipvsadm", "-Z"), "");
    let stats = inst.ctl_json(&["service", "list", "--stats"]).unwrap();
    assert_eq!((u(&stats[0], "conns"), u(&stats[0]["reals"][0]["stats"], "conns")), (0, 0), "{stats}");
    // A denied client's new connections are dropped and counted; removed from the deny
    // list, it connects again.
    let mut server = http_server(&srv, "198.18.1.2", &inst.dir, &[], Stdio::null());
    assert_eq!(front(&inst, "ipvsadm", "--add-blklst -k 198.18.0.1 -t 198.18.0.100:80"), "");
    assert!(front(&inst, "ipvsadm", "--get-blklst").contains("198.18.0.100:80          TCP      198.18.0.1\n"));
    let refused = cli.sh("curl -s -o /dev/null --max-time 2 -w %{http_code} http://198.18.0.100/blob || true");
    assert_eq!(refused.trim(), "000", "no answer for a denied client");
    assert!(u(&inst.stats()["total"], "drop_acl") >= 1);
    assert_eq!(front(&inst, "ipvsadm", "--del-blklst -k 198.18.0.1 -t 198.18.0.100:80"), "");
    let got = inst.dir.join("got");
    wait_for("a transfer after the deny entry went", Duration::from_secs(10), || {
        fetch(&cli, "http://198.18.0.100/blob", &got)
    });
    stop_child(&mut server, Duration::from_secs(2));
}

#[test]
fn direct_routing_reaches_a_real_server_that_answers_the_client_itself() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dd");
    let inst = Instance::start(&one_real_server(&ifp, 80, "dr"));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // The real server of a DR service: the VIP on its loopback, never answered for in ARP,
    // and the client's network on-link (its replies go straight to the client; here the
    // balancer's layer-2 bridge carries them, as a switch would).
    srv.sh(&format!(
        "ip addr add 198.18.0.100/32 dev lo && sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
         net.ipv4.conf.all.arp_announce=2 && ip route add 198.18.0.0/24 dev {ifp}b"
    ));
    let access = download_from_the_vip_itself(&inst, &cli, &srv, "direct routing");
    assert!(access.contains("198.18.0.1 - -"), "DR keeps the client's address: {access}");
    // Only the client's side crossed the balancer's DR path; the 1 MB came back bridged.
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "fnat_in") > 10 && u(&s, "fnat_out") == 0, "{s}");
    let list = inst.ctl_ok(&["service", "list"]);
    assert!(list.contains("  -> 198.18.1.2:80                Route   1 "), "{list}");
}

#[test]
fn ip_in_ip_reaches_a_real_server_that_decapsulates_and_answers_the_client_itself() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dt");
    let inst = Instance::start(&one_real_server(&ifp, 80, "tunnel"));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // The real server: the VIP on its loopback (never answered for in ARP), a decapsulator
    // feeding the inner packets to its stack through a TUN device (this kernel has no ipip
    // module), and the client's network on-link for its direct answers.
    srv.sh(&format!(
        "ip addr add 198.18.0.100/32 dev lo && sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
         net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
         && ip route add 198.18.0.0/24 dev {ifp}b"
    ));
    let decap_log = inst.dir.join("decap.log");
    let decap = Spawned(
        Command::new("ip")
            .args(["netns", "exec", &srv.0, "python3"])
            .arg(tool("ipip_decap.py"))
            .arg("ipip0")
            .stdout(Stdio::from(std::fs::File::create(&decap_log).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for("the decapsulator's TUN device", Duration::from_secs(5), || {
        std::fs::read_to_string(&decap_log).unwrap().contains("ready").then_some(())
    });
    srv.sh("ip link set ipip0 up && sysctl -qw net.ipv4.conf.ipip0.rp_filter=0");
    let access = download_from_the_vip_itself(&inst, &cli, &srv, "IP-in-IP");
    assert!(access.contains("198.18.0.1 - -"), "the client's own address: {access}");
    let outer = std::fs::read_to_string(&decap_log).unwrap();
    assert!(outer.contains("outer 198.18.1.254 -> 198.18.1.2"), "from the balancer's address: {outer}");
    // An upload: the client's full-size segments do not fit once wrapped; the balancer
    // answers "fragmentation needed, MTU 1480" and the client's stack sends smaller ones.
    front(&inst, "ipvsadm", "-A -t 198.18.0.100:81 -s rr");
    front(&inst, "ipvsadm", "-a -t 198.18.0.100:81 -r 198.18.1.2:81 -i");
    let sent = upload(&cli, &srv, ("198.18.0.100", 81), ("198.18.0.100", 81), 300_000);
    drop(decap);
    assert_eq!(sent, "300000", "every byte of the upload arrived");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "icmp_frag_needed") >= 1 && u(&s, "fnat_in") > 100 && u(&s, "fnat_out") == 0, "{s}");
    assert!(front(&inst, "ipvsadm", "-ln").contains("  -> 198.18.1.2:81                Tunnel  1 "));
    assert!(front(&inst, "ipvsadm", "-Sn").contains("-a -t 198.18.0.100:81 -r 198.18.1.2:81 -i -w 1"));
}

#[test]
fn the_proxy_protocol_tells_a_full_nat_real_server_who_the_client_is() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dp");
    let inst = Instance::start(&one_real_server(&ifp, 8080, "fnat").replace(
        "[[services]]\nvip",
        "[[services]]\nlocal_addresses = [\"198.18.1.254\"]\nproxy_protocol = \"v1\"\nvip",
    ));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    let server = Spawned::python_in(&srv, &tool("tcp_answer.py"), &["198.18.1.2", "8080", "proxy"]);
    let body = inst.dir.join("body");
    wait_for("an answer through the VIP", Duration::from_secs(20), || fetch(&cli, "http://198.18.0.100/", &body));
    drop(server);
    let text = std::fs::read_to_string(&body).unwrap();
    assert!(
        text.starts_with("PROXY TCP4 198.18.0.1 198.18.0.100 ") && text.ends_with(" 80 from 198.18.1.254"),
        "the real server read the client's address from the header, over Full-NAT: {text}"
    );
    assert!(front(&inst, "ipvsadm", "-Sn").contains("-A -t 198.18.0.100:80 -s rr --proxy-protocol v1"));
}

#[test]
fn the_exception_path_hands_the_host_kernel_what_the_fast_path_leaves() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dx");
    let kni = format!("{ifp}k");
    let config =
        tap_pair(&ifp).replace("vdev = \"net_tap0,iface=", &format!("kni = \"{kni}\"\nvdev = \"net_tap0,iface="));
    let inst = Instance::start(&config);
    let (cli, _srv) = namespaces(&ifp, "198.18.1.2/24");
    // The host side: the TAP interface (with dpdk0's MAC) in its own namespace, with the
    // port's address, and a daemon on it.
    let host = Netns::new("nh");
    sh(&format!("ip link set {kni} netns {}", host.0));
    host.sh(&format!("ip addr add 198.18.0.254/24 dev {kni} && ip link set {kni} up"));
    assert!(host.sh(&format!("ip link show {kni}")).contains("02:00:00:00:00:10"), "the data port's MAC");
    let daemon = Spawned::python_in(&host, &tool("tcp_answer.py"), &["198.18.0.254", "7000", "echo"]);
    let reply = wait_for("the host's daemon through the exception path", Duration::from_secs(20), || {
        let out = Command::new("ip")
            .args(["netns", "exec", &cli.0, "python3", "-c"])
            .arg(
                "import socket; s = socket.create_connection(('198.18.0.254', 7000), timeout=2); \
                 s.sendall(b'hello'); print(s.recv(100).decode())",
            )
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (text == "kernel:hello").then_some(text)
    });
    drop(daemon);
    assert_eq!(reply, "kernel:hello");
    // The worker still answers ping for the port's address itself.
    cli.sh("ping -c 1 -W 2 198.18.0.254");
    let links = inst.ctl_json(&["link", "show"]).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 3, "dpdk0, dpdk1 and the exception path: {links}");
    assert!(u(&links[2], "tx_packets") >= 1 && u(&links[2], "rx_packets") >= 1, "{links}");
}

#[test]
fn a_port_with_a_smaller_mtu_makes_the_client_send_smaller_segments() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("du");
    let config = one_real_server(&ifp, 8080, "fnat")
        .replace("[[services]]\nvip", "[[services]]\nlocal_addresses = [\"198.18.1.254\"]\nvip")
        .replace("name = \"dpdk1\"\n", "name = \"dpdk1\"\nmtu = 1400\n");
    let inst = Instance::start(&config);
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // The real server's own link takes 1500, so it lets the client send full segments; the
    // balancer's port towards it takes 1400.
    srv.sh(&format!("ip link set {ifp}b mtu 1500"));
    let sent = upload(&cli, &srv, ("198.18.1.2", 8080), ("198.18.0.100", 80), 300_000);
    assert_eq!(sent, "300000", "every byte of the upload arrived");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "icmp_frag_needed") >= 1, "{s}");
    assert!(cli.sh("ip route get 198.18.0.100").contains("mtu 1400"), "the client learned the path MTU");
}

/// A router between the balancer and the real server cannot forward the balancer's 1500-byte
/// packets of a client's upload (its link to the server takes 1400): it sends "fragmentation
/// needed" to the local address. Relayed to the client, as an error about its own packets to
/// the VIP, it teaches the client the path MTU and the upload completes (without the relay it
/// would stall: a black hole).
#[test]
fn a_routers_fragmentation_needed_behind_the_balancer_reaches_the_client() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("di");
    let config = one_real_server(&ifp, 8082, "fnat")
        .replace("[[services]]\nvip", "[[services]]\nlocal_addresses = [\"198.18.1.254\"]\nvip");
    let inst = Instance::start(&config);
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    let far = behind_a_router(&srv, 1400);
    for args in [
        &["route", "add", "198.18.2.0/24", "--via", "198.18.1.2"][..],
        &["real", "add", "tcp", "198.18.0.100:80", "198.18.2.2:8082"],
        &["real", "del", "tcp", "198.18.0.100:80", "198.18.1.2:8082"],
    ] {
        inst.ctl_ok(args);
    }
    let sent = upload(&cli, &far, ("198.18.2.2", 8082), ("198.18.0.100", 80), 300_000);
    assert_eq!(sent, "300000", "every byte of the upload arrived");
    assert!(cli.sh("ip route get 198.18.0.100").contains("mtu 1400"), "the client learned the router's MTU");
}

#[test]
fn nat_reaches_a_real_server_whose_replies_come_back_through_the_balancer() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dm");
    let inst = Instance::start(&one_real_server(&ifp, 8080, "nat"));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // A NAT real server's route to the clients goes through the balancer.
    srv.sh("ip route add 198.18.0.0/24 via 198.18.1.254");
    let access = download_through_the_vip(&inst, &cli, &srv, 1_000_000);
    assert!(access.contains("198.18.0.1 - -"), "NAT keeps the client's address: {access}");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "fnat_in") > 10 && u(&s, "fnat_out") > 500, "both directions through the balancer: {s}");
    let list = front(&inst, "ipvsadm", "-Sn");
    assert!(list.contains("-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -m -w 1"), "{list}");
}

#[test]
fn a_real_server_behind_a_gateway_is_reached_through_its_route() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dg");
    let inst = Instance::start(
        &one_real_server(&ifp, 8080, "fnat")
            .replace("[[services]]\nvip", "[[services]]\nlocal_addresses = [\"198.18.1.254\"]\nvip"),
    );
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");
    // The server namespace routes for 198.18.2.0/24, where the real server's address is.
    srv.sh("ip addr add 198.18.2.2/32 dev lo");
    for args in [
        &["route", "add", "198.18.2.0/24", "--via", "198.18.1.2"][..],
        &["real", "add", "tcp", "198.18.0.100:80", "198.18.2.2:8080"],
        &["real", "del", "tcp", "198.18.0.100:80", "198.18.1.2:8080"],
    ] {
        inst.ctl_ok(args);
    }
    assert!(inst.ctl_ok(&["route", "show"]).contains("198.18.2.0/24  198.18.1.2  dpdk1"));
    let log = inst.dir.join("far.log");
    let mut server = http_server(&srv, "198.18.2.2", &inst.dir, &[], Stdio::from(std::fs::File::create(&log).unwrap()));
    let got = inst.dir.join("got");
    sh(&format!("head -c 100000 /dev/urandom > {}", inst.dir.join("blob").display()));
    let curl = wait_for("an HTTP transfer to the routed real server", Duration::from_secs(20), || {
        fetch(&cli, "http://198.18.0.100/blob", &got)
    });
    stop_child(&mut server, Duration::from_secs(2));
    println!("curl through the VIP to a real server behind a gateway: {curl}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("198.18.1.254 - -"));
}

/// Runs `cmd` through Debian's `dpdk-telemetry.py` against the instance's primary and returns
/// its answer (the value under the command's name).
fn telemetry(inst: &Instance, cmd: &str) -> serde_json::Value {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' '{cmd}' | dpdk-telemetry.py -f {}", inst.name))
        .output()
        .expect("dpdk-telemetry.py");
    let text = String::from_utf8_lossy(&out.stdout);
    // Each answer is a JSON object on a line of its own, after the client's greeting.
    let name = cmd.split(',').next().unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim_start_matches("--> ")).ok())
        .find_map(|v| v.get(name).cloned())
        .unwrap_or_else(|| panic!("no answer to {cmd}: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

/// Starts Debian's `dpdk-dumpcap` on the instance's port `device` with `args`, and waits
/// until the worker captures (the primary accepted the request and the worker added its
/// callbacks).
fn dumpcap(inst: &Instance, device: &str, args: &[&str]) -> std::process::Child {
    let seen = inst.log_text().matches("capturing the queue").count();
    let child = Command::new("dpdk-dumpcap")
        .args([&format!("--file-prefix={}", inst.name), "-i", device])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(inst.dir.join("dumpcap.log")).unwrap()))
        .spawn()
        .expect("dpdk-dumpcap");
    wait_for("the worker capturing", Duration::from_secs(20), || {
        (inst.log_text().matches("capturing the queue").count() >= seen + 2).then_some(())
    });
    child
}

#[test]
fn dumpcap_and_telemetry_attach_to_a_running_instance_while_curl_runs_through_the_vip() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("dd");
    let inst = Instance::start(&fnat(&ifp));
    let (cli, srv) = namespaces(&ifp, "198.18.1.2/24");

    // Telemetry: DPDK's own commands and the instance's.
    assert_eq!(telemetry(&inst, "/ethdev/list"), serde_json::json!([0, 1]));
    assert_eq!(telemetry(&inst, "/dpvs/workers"), serde_json::json!([0]));
    let w = telemetry(&inst, "/dpvs/worker,0");
    assert_eq!((w["state"].as_str(), w["lcore"].as_u64()), (Some("running"), Some(1)), "{w}");
    assert_eq!(telemetry(&inst, "/dpvs/services"), serde_json::json!(["tcp:198.18.0.100:80", "udp:198.18.0.100:53"]));
    let info = telemetry(&inst, "/dpvs/info");
    assert_eq!((info["instance"].as_str(), info["services"].as_u64()), (Some(inst.name.as_str()), Some(2)), "{info}");
    let svc = telemetry(&inst, "/dpvs/service,tcp:198.18.0.100:80");
    assert_eq!(
        (svc["scheduler"].as_str(), &svc["reals"]),
        (Some("rr"), &serde_json::json!(["198.18.1.2:8080"])),
        "{svc}"
    );

    // 100 packets of dpdk0 (net_tap0) to or from port 80 (a libpcap filter, which the
    // workers run), both ways, while curl fetches through the VIP.
    let pcap = inst.dir.join("dpdk0.pcapng");
    let mut cap = dumpcap(&inst, "net_tap0", &["-c", "100", "-f", "tcp port 80", "-w", pcap.to_str().unwrap()]);
    let captures = telemetry(&inst, "/dpvs/captures");
    assert_eq!(captures.as_array().map(Vec::len), Some(2), "rx and tx of dpdk0: {captures}");
    download_through_the_vip(&inst, &cli, &srv, 1_000_000);
    let status =
        wait_for("dumpcap to stop after 100 packets", Duration::from_secs(20), || cap.try_wait().ok().flatten());
    let log = std::fs::read_to_string(inst.dir.join("dumpcap.log")).unwrap();
    assert!(status.success(), "dumpcap: {status} {log}");
    let tshark = |filter: &str| {
        let o = Command::new("tshark").arg("-r").arg(&pcap).args(["-Y", filter]).output().expect("tshark");
        assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    // dumpcap stops at the end of the burst that reaches its count.
    let frames = tshark("frame");
    assert!((100..200).contains(&frames), "{frames} frames: {log}");
    let syn = "ip.src == 198.18.0.1 && ip.dst == 198.18.0.100 && tcp.dstport == 80 && tcp.flags.syn == 1 && tcp.flags.ack == 0";
    assert!(tshark(syn) >= 1, "the client's SYN is in the capture");
    let answers = "ip.src == 198.18.0.100 && ip.dst == 198.18.0.1 && tcp.srcport == 80";
    assert!(tshark(answers) >= 1, "the worker's answers out of dpdk0 are too");
    assert_eq!(tshark("not tcp.port == 80"), 0, "the filter held");
    let stats = telemetry(&inst, "/dpvs/stats");
    assert!(stats["fnat_in"].as_u64().is_some_and(|n| n > 10), "{stats}");
    wait_for("the capture stopped", Duration::from_secs(5), || {
        telemetry(&inst, "/dpvs/captures").as_array().is_some_and(Vec::is_empty).then_some(())
    });

    // dpdk-pdump: the older tool, plain copies into a pcap device of its own, the same path.
    let rx = inst.dir.join("pdump-rx.pcap");
    let seen = inst.log_text().matches("capturing the queue").count();
    let mut pdump = Command::new("dpdk-pdump")
        .args([&format!("--file-prefix={}", inst.name), "--", "--pdump"])
        .arg(format!("port=0,queue=*,rx-dev={}", rx.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(inst.dir.join("pdump.log")).unwrap()))
        .spawn()
        .expect("dpdk-pdump");
    wait_for("the worker capturing for dpdk-pdump", Duration::from_secs(20), || {
        (inst.log_text().matches("capturing the queue").count() > seen).then_some(())
    });
    download_through_the_vip(&inst, &cli, &srv, 100_000);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pdump.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = wait_for("dpdk-pdump to stop", Duration::from_secs(10), || pdump.try_wait().ok().flatten());
    let log = std::fs::read_to_string(inst.dir.join("pdump.log")).unwrap();
    assert!(status.success(), "dpdk-pdump: {status} {log}");
    let o = Command::new("tshark").arg("-r").arg(&rx).args(["-Y", syn]).output().expect("tshark");
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() >= 1, "dpdk-pdump saved the client's SYN: {log}");

    // A capture follows the worker's replacement; a dumpcap killed mid-capture leaves no
    // capture behind.
    let mut cap = dumpcap(&inst, "0", &["-w", inst.dir.join("killed.pcapng").to_str().unwrap()]);
    let capturing = || inst.log_text().matches("capturing the queue").count();
    let before = capturing();
    inst.kill_worker_and_wait(0, 1, "the replacement");
    wait_for("the replacement capturing", Duration::from_secs(10), || (capturing() >= before + 2).then_some(()));
    // And a handover's successor (dpvsctl worker restart) captures before it polls.
    let before = capturing();
    inst.ctl_ok(&["worker", "restart", "0"]);
    assert!(capturing() >= before + 2, "the successor added its callbacks before it took the queues over");
    cap.kill().unwrap();
    cap.wait().unwrap();
    wait_for("the dead tool's capture ended", Duration::from_secs(5), || {
        telemetry(&inst, "/dpvs/captures").as_array().is_some_and(Vec::is_empty).then_some(())
    });
    assert!(inst.log_text().contains("capture ended: its tool died"), "{}", inst.log_text());
    // And the port forwards as before.
    download_through_the_vip(&inst, &cli, &srv, 100_000);
}
