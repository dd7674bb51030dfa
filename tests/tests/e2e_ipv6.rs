//! IPv6 end to end with real Linux stacks: two tap ports whose kernel sides sit in a client
//! and a server namespace. IPv6 passes through the worker between them (neighbour discovery
//! and ping bridged by the two-arm pair); the ports' own IPv6 addresses answer neighbour
//! solicitations and ping, from the file and added or removed at run time with dpip; curl
//! over IPv6 goes through Full-NAT, direct routing and IPv6-in-IPv6 services set up with
//! ipvsadm's own syntax, and through NAT64 to an IPv4 real server.

use std::process::Command;
use std::time::Duration;

use integration::*;

/// [`tap_pair`] with an IPv6 address on dpdk0 as well.
fn config(ifp: &str) -> String {
    format!("{}[[addresses]]\nport = \"dpdk0\"\naddress = \"2001:db8::fe/64\"\n", tap_pair(ifp))
}

/// Moves the kernel sides `<ifp>a` and `<ifp>b` of the instance's taps into a client
/// namespace (2001:db8::1/64) and a server namespace (`server`, IPv6 or IPv4), without
/// duplicate address detection (its delay is not what is tested).
fn namespaces(ifp: &str, server: &str) -> (Netns, Netns) {
    let (cli, srv) = (Netns::new("n6c"), Netns::new("n6s"));
    for (ns, side, addr, mac) in
        [(&cli, "a", "2001:db8::1/64", "02:00:00:00:01:01"), (&srv, "b", server, "02:00:00:00:01:02")]
    {
        let dev = format!("{ifp}{side}");
        let nodad = if addr.contains(':') { " nodad" } else { "" };
        sh(&format!("ip link set {dev} netns {}", ns.0));
        ns.sh(&format!(
            "ip link set {dev} address {mac} && ip addr add {addr} dev {dev}{nodad} && ip link set {dev} up"
        ));
    }
    (cli, srv)
}

/// Runs a front-end (`dpip`, `ipvsadm`) of the instance: (success, stdout, stderr).
fn front(inst: &Instance, tool: &str, line: &str) -> (bool, String, String) {
    let out = Command::new(bin(tool)).args(line.split_whitespace()).env("DPVS_CONFIG", &inst.config).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Whether `addr` answers 3 pings from `ns` (each within 2 s).
fn pings(ns: &Netns, addr: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", addr])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("3 received")
}

#[test]
fn ipv6_ping_and_neighbour_discovery_of_the_ports_addresses() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("d6");
    let inst = Instance::start(&config(&ifp));
    let (cli, srv) = namespaces(&ifp, "2001:db8::2/64");

    // IPv6 between the namespaces, through the worker (neighbour discovery is multicast).
    assert!(pings(&cli, "2001:db8::2"), "IPv6 bridged through the two-arm pair");

    // The port's own address, from the file: resolved by neighbour discovery, then pinged.
    assert!(pings(&cli, "2001:db8::fe"), "the port's IPv6 address answers ping");
    let neigh = cli.sh(&format!("ip -6 neigh show 2001:db8::fe dev {ifp}a"));
    assert!(neigh.contains("02:00:00:00:00:10"), "resolved to the port's MAC: {neigh}");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "nd_replies") >= 1, "{s}");
    assert_eq!(u(&s, "icmp_echo_replies"), 3, "{s}");
    // The server, on the other arm, does not get an answer: the address is dpdk0's.
    assert!(!pings(&srv, "2001:db8::fe"), "only the owning port answers");

    // At run time: an address added with dpip answers at once, and is listed like ip does.
    let (ok, out, err) = front(&inst, "dpip", "-6 addr add 2001:db8::fd/64 dev dpdk0");
    assert!(ok && out.is_empty(), "{out}{err}");
    let (_, shown, _) = front(&inst, "dpip", "-6 addr show");
    assert_eq!(shown, "inet6 2001:db8::fe/64 scope global dpdk0\ninet6 2001:db8::fd/64 scope global dpdk0\n");
    let (_, both, _) = front(&inst, "dpip", "addr show dev dpdk0");
    assert!(both.starts_with("inet 198.18.0.254/24 scope global dpdk0\n"), "{both}");
    assert!(pings(&cli, "2001:db8::fd"), "the added address answers");
    // The configuration written back holds both families, and reads back the same.
    let dump = inst.ctl_ok(&["config", "dump"]);
    assert!(dump.contains("\"2001:db8::fd/64\"") && dump.contains("\"198.18.0.254/24\""), "{dump}");

    // Removed, it no longer answers.
    let (ok, out, err) = front(&inst, "dpip", "addr del 2001:db8::fd/64 dev dpdk0");
    assert!(ok, "{out}{err}");
    cli.sh(&format!("ip -6 neigh flush dev {ifp}a"));
    assert!(!pings(&cli, "2001:db8::fd"), "a removed address does not answer");

    // Bad input is refused with what was expected, and changes nothing.
    let generation = inst.generation();
    for (line, needle) in [
        ("addr add fe80::1/64 dev dpdk0", "link-local"),
        ("addr add 2001:db8::fe/64 dev dpdk1", "already assigned"),
        ("addr add 2001:db8::9/129 dev dpdk0", "0..=128"),
        ("-6 addr add 198.18.0.9/24 dev dpdk0", "expected an IPv6 address"),
    ] {
        let (ok, out, err) = front(&inst, "dpip", line);
        assert!(!ok && err.contains(needle), "{line}: {out}{err}");
    }
    assert_eq!(inst.generation(), generation, "refused changes publish nothing");
    wait_for("ping after the refusals", Duration::from_secs(5), || pings(&cli, "2001:db8::fe").then_some(()));
}

/// Runs `tool line` and checks that it succeeds without printing anything.
fn quietly(inst: &Instance, tool: &str, line: &str) {
    let (ok, out, err) = front(inst, tool, line);
    assert!(ok && out.is_empty(), "{tool} {line}: {out}{err}");
}

/// The VIP, the local address and the real server of the service tests.
const VIP: &str = "2001:db8::100";
const LIP: &str = "2001:db8:1::fe";
const RS: &str = "2001:db8:1::2";

/// An instance on [`TAP_PORTS`] (tap prefix `tag` made unique) with the VIP on dpdk0 and the
/// local address on dpdk1, added with dpip, and the client and the real server (RS/64) in
/// their namespaces: (tap prefix, instance, client, server).
fn with_addresses(tag: &str) -> (String, Instance, Netns, Netns) {
    let ifp = unique(tag);
    let inst = Instance::start(&TAP_PORTS.replace("@IF@", &ifp));
    let (cli, srv) = namespaces(&ifp, &format!("{RS}/64"));
    quietly(&inst, "dpip", &format!("addr add {VIP}/64 dev dpdk0"));
    quietly(&inst, "dpip", &format!("addr add {LIP}/64 dev dpdk1"));
    (ifp, inst, cli, srv)
}

#[test]
fn ipv6_full_nat_curl_through_the_vip_set_up_with_ipvsadm() {
    let _g = serial();
    require_root_and_hugepages();
    let (_ifp, inst, cli, srv) = with_addresses("d7");
    let (vip, lip, rs) = (VIP, LIP, RS);
    for (tool, line) in [
        ("ipvsadm", format!("-A -t [{vip}]:80 -s rr")),
        ("ipvsadm", format!("-a -t [{vip}]:80 -r [{rs}]:8080 -b")),
        ("ipvsadm", format!("--add-laddr -z {lip} -t [{vip}]:80 -F dpdk1")),
    ] {
        quietly(&inst, tool, &line);
    }
    let (_, listing, _) = front(&inst, "ipvsadm", "-ln");
    assert!(listing.contains(&format!("TCP  [{vip}]:80 rr")), "{listing}");
    assert!(listing.contains(&format!("-> [{rs}]:8080")), "{listing}");

    // 300 kB over HTTP from the real server, through the VIP, checked byte for byte.
    let access = download6(&inst, (&cli, &srv), (vip, 80), 8080, "Full-NAT");
    assert!(access.contains(&format!("{lip} - -")), "Full-NAT: the server saw the local address: {access}");

    // The real server's MAC came from neighbour discovery; the connection is listed.
    let (_, neigh, _) = front(&inst, "dpip", "neigh show");
    assert!(neigh.contains(rs) && neigh.contains("02:00:00:00:01:02"), "{neigh}");

    // The PROXY protocol for an IPv6 client: version 1 names TCP6.
    for line in [
        format!("-A -t [{vip}]:81 -s rr --proxy-protocol v1"),
        format!("-a -t [{vip}]:81 -r [{rs}]:8081 -b"),
        format!("--add-laddr -z {lip} -t [{vip}]:81 -F dpdk1"),
    ] {
        quietly(&inst, "ipvsadm", &line);
    }
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools");
    let server = Spawned::python_in(&srv, &tools.join("tcp_answer.py"), &[rs, "8081", "proxy"]);
    let body = inst.dir.join("body6");
    wait_for("an answer through the VIP with a PROXY header", Duration::from_secs(20), || {
        fetch6(&cli, &format!("http://[{vip}]:81/"), &body)
    });
    drop(server);
    let text = std::fs::read_to_string(&body).unwrap();
    assert!(
        text.starts_with(&format!("PROXY TCP6 2001:db8::1 {vip} ")) && text.ends_with(&format!(" 81 from {lip}")),
        "the real server read the IPv6 client from the header, over Full-NAT: {text}"
    );
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "fnat_in") > 0 && u(&s, "fnat_out") > 0, "{s}");
}

/// Fetches `url` with curl over IPv6 in `ns` into `out`; on a 200, `<code> <bytes>`.
fn fetch6(ns: &Netns, url: &str, out: &std::path::Path) -> Option<String> {
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.0, "curl", "-6", "-g", "-sS", "--max-time", "10", "-o"])
        .arg(out)
        .args(["-w", "%{http_code} %{size_download}", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.starts_with("200 ").then_some(text)
}

/// 300 kB from an HTTP server in `srv` on `[::]:server_port` through `[vip]:port`, checked
/// byte for byte; returns the server's access log.
fn download6(
    inst: &Instance,
    (cli, srv): (&Netns, &Netns),
    (vip, port): (&str, u16),
    server_port: u16,
    how: &str,
) -> String {
    let log = inst.dir.join(format!("http6-{port}.log"));
    let mut server = Command::new("ip")
        .args(["netns", "exec", &srv.0, "python3", "-m", "http.server", &server_port.to_string(), "--bind", "::"])
        .arg("--directory")
        .arg(&inst.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let blob = inst.dir.join("blob6");
    sh(&format!("head -c 300000 /dev/urandom > {}", blob.display()));
    let got = inst.dir.join(format!("got6-{port}"));
    let url = format!("http://[{vip}]:{port}/blob6");
    let curl = wait_for(&format!("an HTTP transfer over IPv6 through {how}"), Duration::from_secs(20), || {
        fetch6(cli, &url, &got)
    });
    stop_child(&mut server, Duration::from_secs(2));
    println!("curl over IPv6 through {how}: {curl}");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&blob).unwrap(), "the file arrived intact");
    std::fs::read_to_string(&log).unwrap()
}

/// Direct routing and IPv6-in-IPv6 over IPv6: the real server has the VIP on its loopback and
/// answers the client itself (its answers cross the two-arm pair as a switch would carry
/// them); for the tunnel, a user-space decapsulator (the test kernel has no ip6_tunnel)
/// hands the inner packets to its stack.
#[test]
fn ipv6_direct_routing_and_ipv6_in_ipv6_reach_a_real_server_that_answers_the_client() {
    let _g = serial();
    require_root_and_hugepages();
    let (ifp, inst, cli, srv) = with_addresses("d8");
    let (vip, lip, rs) = (VIP, LIP, RS);
    for (tool, line) in [
        ("ipvsadm", format!("-A -t [{vip}]:80 -s rr")),
        ("ipvsadm", format!("-a -t [{vip}]:80 -r [{rs}]:80 -g")),
        ("ipvsadm", format!("-A -t [{vip}]:81 -s rr")),
        ("ipvsadm", format!("-a -t [{vip}]:81 -r [{rs}]:81 -i")),
    ] {
        quietly(&inst, tool, &line);
    }
    // The VIP on the real server's loopback (Linux answers neighbour solicitations only for
    // an interface's own addresses), and the client's network on-link for its answers.
    srv.sh(&format!("ip -6 addr add {vip}/128 dev lo && ip -6 route add 2001:db8::/64 dev {ifp}b"));
    let access = download6(&inst, (&cli, &srv), (vip, 80), 80, "direct routing");
    assert!(access.contains("2001:db8::1 - -"), "DR keeps the client's address: {access}");

    let decap_log = inst.dir.join("decap6.log");
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools");
    let decap = Spawned(
        Command::new("ip")
            .args(["netns", "exec", &srv.0, "python3"])
            .arg(tools.join("ipip_decap.py"))
            .args(["ip6tun0", "6"])
            .stdout(std::process::Stdio::from(std::fs::File::create(&decap_log).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for("the decapsulator's TUN device", Duration::from_secs(5), || {
        std::fs::read_to_string(&decap_log).unwrap().contains("ready").then_some(())
    });
    srv.sh("ip link set ip6tun0 up");
    let access = download6(&inst, (&cli, &srv), (vip, 81), 81, "IPv6-in-IPv6");
    assert!(access.contains("2001:db8::1 - -"), "the client's own address: {access}");
    let outer = std::fs::read_to_string(&decap_log).unwrap();
    assert!(outer.contains(&format!("outer from {lip}")), "from the balancer's address: {outer}");
    // An upload: the client's full-size segments do not fit once wrapped (40 bytes more); the
    // balancer answers "packet too big, MTU 1460" and the client's stack sends smaller ones.
    quietly(&inst, "ipvsadm", &format!("-A -t [{vip}]:82 -s rr"));
    quietly(&inst, "ipvsadm", &format!("-a -t [{vip}]:82 -r [{rs}]:82 -i"));
    let sink = Spawned::python_in(&srv, &tools.join("tcp_answer.py"), &[vip, "82", "count"]);
    std::thread::sleep(Duration::from_millis(500));
    let sent = upload6(&cli, vip, 82);
    drop(sink);
    assert_eq!(sent.trim(), "300000", "every byte of the upload arrived");
    drop(decap);
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "fnat_in") > 10 && u(&s, "fnat_out") == 0, "inbound only: {s}");
    assert!(u(&s, "icmp_frag_needed") >= 1, "packet too big answered: {s}");
    let (_, listing, _) = front(&inst, "ipvsadm", "-ln");
    assert!(listing.contains(&format!("-> [{rs}]:80")) && listing.contains("Route"), "{listing}");
    assert!(listing.contains(&format!("-> [{rs}]:81")) && listing.contains("Tunnel"), "{listing}");
}

/// NAT64: an IPv6 client, through an IPv6 VIP, to an IPv4 real server from an IPv4 local
/// address (set up as DPVS's users do: IPv4 real servers and local addresses under an IPv6
/// VIP). A download, the PROXY protocol version 2 header naming the IPv6 client to the IPv4
/// server, and an upload whose segments do not fit the real server's smaller MTU: the
/// client hears "packet too big" for the IPv6 size that fits.
#[test]
fn nat64_curl_from_an_ipv6_client_to_an_ipv4_real_server() {
    let _g = serial();
    require_root_and_hugepages();
    let ifp = unique("d9");
    let config = TAP_PORTS.replace("@IF@", &ifp).replace("name = \"dpdk1\"\n", "name = \"dpdk1\"\nmtu = 1400\n");
    let inst = Instance::start(&config);
    let (rs, lip) = ("198.18.1.2", "198.18.1.254");
    let (cli, srv) = namespaces(&ifp, &format!("{rs}/24"));
    // The real server's own link takes 1500, so it lets the client send full segments; the
    // balancer's port towards it takes 1400.
    srv.sh(&format!("ip link set {ifp}b mtu 1500"));
    quietly(&inst, "dpip", &format!("addr add {VIP}/64 dev dpdk0"));
    quietly(&inst, "dpip", &format!("addr add {lip}/24 dev dpdk1"));
    let vip = VIP;
    for (port, rport, proxy) in [(80, 8080, ""), (81, 8081, " --proxy-protocol v2"), (82, 8082, "")] {
        quietly(&inst, "ipvsadm", &format!("-A -t [{vip}]:{port} -s rr{proxy}"));
        quietly(&inst, "ipvsadm", &format!("-a -t [{vip}]:{port} -r {rs}:{rport} -b"));
        quietly(&inst, "ipvsadm", &format!("--add-laddr -z {lip} -t [{vip}]:{port} -F dpdk1"));
    }
    let (_, listing, _) = front(&inst, "ipvsadm", "-ln");
    assert!(listing.contains(&format!("TCP  [{vip}]:80 rr")), "{listing}");
    assert!(listing.contains(&format!("-> {rs}:8080")) && listing.contains("FullNat"), "{listing}");
    // A real server of another mode is refused: NAT64 is Full-NAT.
    let (ok, out, err) = front(&inst, "ipvsadm", &format!("-a -t [{vip}]:80 -r {rs}:80 -g"));
    assert!(!ok && err.contains("NAT64 translates in Full-NAT only"), "{out}{err}");

    // 300 kB over HTTP from the IPv4 real server, checked byte for byte.
    let access = download6(&inst, (&cli, &srv), (vip, 80), 8080, "NAT64");
    assert!(access.contains(&format!("{lip} - -")), "the IPv4 server saw the local address: {access}");

    // The PROXY protocol version 2 header names the IPv6 client and VIP to the IPv4 server.
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools");
    let server = Spawned::python_in(&srv, &tools.join("tcp_answer.py"), &[rs, "8081", "proxy2"]);
    let body = inst.dir.join("body64");
    wait_for("an answer through NAT64 with a PROXY v2 header", Duration::from_secs(20), || {
        fetch6(&cli, &format!("http://[{vip}]:81/"), &body)
    });
    drop(server);
    let text = std::fs::read_to_string(&body).unwrap();
    assert!(
        text.starts_with(&format!("PROXY2 2001:db8::1 {vip} ")) && text.ends_with(&format!(" 81 from {lip}")),
        "the IPv4 server read the IPv6 client from the header: {text}"
    );

    // An upload: 1500-byte IPv6 segments are 1480 bytes of IPv4, too big for the 1400-byte
    // port; the client hears "packet too big, MTU 1420" and sends smaller ones.
    let sink = Spawned::python_in(&srv, &tools.join("tcp_answer.py"), &[rs, "8082", "count"]);
    std::thread::sleep(Duration::from_millis(500));
    let sent = upload6(&cli, vip, 82);
    drop(sink);
    assert_eq!(sent.trim(), "300000", "every byte of the upload arrived");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "icmp_frag_needed") >= 1 && u(&s, "fnat_out") > 0, "{s}");
    assert!(cli.sh(&format!("ip -6 route get {vip}")).contains("mtu 1420"), "the client learned the path MTU");

    // Behind an IPv4 router whose link to the real server takes 1300 bytes: its
    // "fragmentation needed" to the local address reaches the IPv6 client as "packet too big"
    // for 1320 bytes, about its own packet to the VIP.
    let far = behind_a_router(&srv, 1300);
    quietly(&inst, "dpip", "route add 198.18.2.0/24 via 198.18.1.2 dev dpdk1");
    let vip83 = format!("[{vip}]:83");
    quietly(&inst, "ipvsadm", &format!("-A -t {vip83} -s rr"));
    quietly(&inst, "ipvsadm", &format!("-a -t {vip83} -r 198.18.2.2:8083 -b"));
    quietly(&inst, "ipvsadm", &format!("--add-laddr -z {lip} -t {vip83} -F dpdk1"));
    let sink = Spawned::python_in(&far, &tools.join("tcp_answer.py"), &["198.18.2.2", "8083", "count"]);
    std::thread::sleep(Duration::from_millis(500));
    let sent = upload6(&cli, vip, 83);
    drop(sink);
    assert_eq!(sent.trim(), "300000", "every byte of the upload arrived");
    assert!(cli.sh(&format!("ip -6 route get {vip}")).contains("mtu 1320"), "the router's MTU, for IPv6");
}

/// Sends 300 000 bytes from `cli` to `[vip]:port` and returns what the server answers (how
/// many bytes it got, from `tcp_answer.py count`).
fn upload6(cli: &Netns, vip: &str, port: u16) -> String {
    cli.sh(&format!(
        "python3 -c \"import socket; s = socket.create_connection((\\\"{vip}\\\", {port}), timeout=10); \
         s.sendall(bytes(300000)); s.shutdown(socket.SHUT_WR); print(s.recv(100).decode())\""
    ))
}
