//! BGP with Debian's stock BIRD 2: two dpvs balancers, each with BIRD and `dpvs-health` (its
//! `--vip-hook` is `conf/bird/dpvs-bird-vip.sh`) in the namespace of its port's exception path,
//! peer with a router namespace running BIRD, which installs what it learns in its kernel
//! (ECMP). The router's table shows the VIP through both balancers; when the real server is
//! down, both withdraw it; when one balancer stops, the router keeps the other; connections the
//! stopped one carried break (no state is shared), new ones go through the other.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration::*;

const VIP: &str = "198.18.5.100";

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A balancer's additions to [`lan_balancer_config`]: the VIP as a /32 on the port (the router
/// routes it here: nobody asks ARP for it), a route back to the client's network, and an HTTP
/// check of the real server.
const TABLES: &str = "[[addresses]]\nport = \"dpdk0\"\naddress = \"198.18.5.100/32\"\n[[routes]]\nprefix = \"198.18.6.0/24\"\nvia = \"198.18.0.1\"";
const CHECK: &str =
    "[services.check]\ntype = \"http\"\npath = \"/health\"\ninterval_ms = 300\ntimeout_ms = 250\nrise = 2\nfall = 2";

/// A BIRD in namespace `ns` on `conf` (written to `dir/bird.conf`), controlled through
/// `dir/bird.ctl`; killed when dropped.
struct Bird {
    child: std::process::Child,
    socket: std::path::PathBuf,
    ns: String,
}

impl Bird {
    fn start(ns: &Netns, dir: &std::path::Path, conf: &str) -> Bird {
        let (path, socket) = (dir.join("bird.conf"), dir.join("bird.ctl"));
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::create(dir.join("bird.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "bird", "-f", "-c"])
            .arg(&path)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("bird (scripts/setup.sh installs bird2)");
        Bird { child, socket, ns: ns.0.clone() }
    }

    /// `birdc` on its socket.
    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "birdc", "-s"])
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

/// Settings both sides share: a failed connection is tried again after a second, not two
/// minutes; a silent peer is given up after 3 s.
const TIMERS: &str = "connect retry time 1; error wait time 1, 2; hold time 3; keepalive time 1;";

/// A balancer: dpvs, and in its kni's namespace BIRD and dpvs-health.
struct Balancer {
    inst: Instance,
    _host: Netns,
    bird: Bird,
    _health: Spawned,
}

impl Balancer {
    fn start(lan: &Netns, tag: &str, mac: u8, own: &str) -> Balancer {
        let config = |ifp: &str| lan_balancer_config(ifp, mac, own, VIP, (TABLES, CHECK));
        let (inst, host, _) = start_lan_balancer(lan, tag, (mac, own), config);
        let dir = inst.dir.clone();
        // The sample bird.conf with this balancer's addresses, its route files and timers.
        let sample = std::fs::read_to_string(repo("conf/bird/bird.conf")).unwrap();
        let conf = sample.replace("198.18.0.201", own).replace("/run/dpvs/", &format!("{}/", dir.display())).replace(
            "    neighbor 198.18.0.1 as 65000;\n",
            &format!("    neighbor 198.18.0.1 as 65000;\n    {TIMERS}\n"),
        );
        // The route files exist before BIRD reads them.
        for f in ["dpvs-vips4.conf", "dpvs-vips6.conf"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let bird = Bird::start(&host, &dir, &conf);
        let hook = format!(
            "{} -s {} -d {}",
            repo("conf/bird/dpvs-bird-vip.sh").display(),
            bird.socket.display(),
            dir.display()
        );
        let log = std::fs::File::create(dir.join("health.log")).unwrap();
        let health = Command::new("ip")
            .args(["netns", "exec", &host.0])
            .arg(bin("dpvs-health"))
            .arg("-c")
            .arg(&inst.config)
            .args(["--vip-hook", &hook])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Balancer { inst, _host: host, bird, _health: Spawned(health) }
    }
}

/// The router's BGP routes to the VIP: the next hops it has, in the order BIRD lists them.
fn next_hops(router: &Bird) -> Vec<String> {
    let shown = router.birdc(&["show", "route", &format!("{VIP}/32"), "all"]);
    shown.lines().filter_map(|l| l.split_once("BGP.next_hop: ").map(|(_, h)| h.trim().to_owned())).collect()
}

/// Waits until the router has exactly `want` as next hops of the VIP; returns how long it took.
/// On a timeout, says what the router's BIRD and the balancers' logs say.
fn until_hops(router: &Bird, balancers: &[&Balancer], want: &[&str], what: &str) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let mut hops = next_hops(router);
        hops.sort();
        if hops == want {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut said = router.birdc(&["show", "protocols", "all"]) + &router.birdc(&["show", "route", "all"]);
    for b in balancers {
        for f in ["bird.log", "health.log", "dpvs-vips4.conf"] {
            said += &format!(
                "--- {} {f}:\n{}",
                b.inst.name,
                std::fs::read_to_string(b.inst.dir.join(f)).unwrap_or_default()
            );
        }
        said += &b.bird.birdc(&["show", "route", "all"]);
        said += &b.bird.birdc(&["show", "protocols"]);
    }
    panic!("timed out waiting for {what}:\n{said}");
}

#[test]
fn bird_announces_the_vip_from_two_balancers_and_withdraws_it_when_no_real_server_lives() {
    let _g = serial();
    require_root_and_hugepages();
    // The balancers' network: a bridge with the router (198.18.0.1) and the real server
    // (198.18.0.2); the client (198.18.6.1) behind the router.
    let (lan, rt, srv, cli) = (Netns::new("bl"), Netns::new("br"), Netns::new("bs"), Netns::new("bc"));
    lan.sh("ip link add br0 address 02:00:00:00:03:ff type bridge && ip link set br0 up");
    for (ns, side, addr, mac) in
        [(&rt, "r", "198.18.0.1/24", "02:00:00:00:03:01"), (&srv, "s", "198.18.0.2/24", "02:00:00:00:03:02")]
    {
        on_bridge(&lan, ns, &format!("bv{side}"), addr, mac);
    }
    rt.sh(&format!("ip link add bcc type veth peer name bcr && ip link set bcc netns {}", cli.0));
    rt.sh("ip addr add 198.18.6.254/24 dev bcr && ip link set bcr up && sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv4.fib_multipath_hash_policy=1");
    cli.sh("ip addr add 198.18.6.1/24 dev bcc && ip link set bcc up && ethtool -K bcc tx off >/dev/null && ip route add default via 198.18.6.254");
    let dir = std::env::temp_dir().join(unique("dpvs-bird-router"));
    std::fs::create_dir_all(&dir).unwrap();
    let peer = |name: &str, addr: &str| {
        format!(
            "protocol bgp {name} {{\n    local 198.18.0.1 as 65000;\n    neighbor {addr} as 65001;\n    {TIMERS}\n    ipv4 {{ import all; export none; }};\n}}\n"
        )
    };
    let router = Bird::start(
        &rt,
        &dir,
        &format!(
            "router id 198.18.0.1;\nprotocol device {{}}\nprotocol kernel {{\n    ipv4 {{ export all; }};\n    merge paths on;\n}}\n{}{}",
            peer("balancer_a", "198.18.0.201"),
            peer("balancer_b", "198.18.0.202")
        ),
    );
    let web = Spawned::python_in(&srv, &tool("http_real.py"), &["198.18.0.2", "8080", &dir.display().to_string()]);
    let a = Balancer::start(&lan, "ba", 0x1a, "198.18.0.201");
    let b = Balancer::start(&lan, "bb", 0x1b, "198.18.0.202");

    // Both balancers announce the VIP: two next hops, and the client reaches it.
    let took = until_hops(&router, &[&a, &b], &["198.18.0.201", "198.18.0.202"], "the VIP through both balancers");
    println!("announced by both after {} ms", took.as_millis());
    let curl = |path: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "3"])
            .arg(format!("http://{VIP}{path}"))
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    wait_for("curl through the router", Duration::from_secs(10), || curl("/whoami"));
    let kernel = rt.sh(&format!("ip route show {VIP}"));
    assert!(
        kernel.contains("nexthop via 198.18.0.201") && kernel.contains("nexthop via 198.18.0.202"),
        "ECMP: {kernel}"
    );

    // The real server stops: no service on the VIP has a real server alive, both withdraw it.
    signal(&web, "USR1");
    let took = until_hops(&router, &[&a, &b], &[], "the VIP withdrawn");
    println!("withdrawn {} ms after the real server stopped accepting", took.as_millis());
    assert!(!rt.sh(&format!("ip route show {VIP}")).contains("nexthop"), "gone from the router's kernel too");
    // Back: announced again.
    signal(&web, "USR2");
    until_hops(&router, &[&a, &b], &["198.18.0.201", "198.18.0.202"], "the VIP announced again");

    // A slow download through one of them (the router's ECMP hash picks it), then that one
    // stops: the router keeps the other once the BGP hold time runs out, new connections go
    // there, and the download breaks: the other balancer has no state for it.
    sh(&format!("head -c 12000000 /dev/urandom > {}", dir.join("blob").display()));
    let mut download = Command::new("ip")
        .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "15", "-o", "/dev/null"])
        .arg(format!("http://{VIP}/blob"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The balancer with an established connection moving data out (earlier connections may
    // linger in either's table, closed).
    let carries = |x: &Balancer| {
        let rows = x.inst.ctl_json(&["conn", "list"]).unwrap_or_default();
        rows.as_array().is_some_and(|r| r.iter().any(|c| c["state"] == "ESTABLISHED" && u(c, "bytes_out") > 100_000))
    };
    let a_carries = wait_for("the download's balancer", Duration::from_secs(10), || match (carries(&a), carries(&b)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    });
    assert!(download.try_wait().unwrap().is_none(), "the download is still under way when its balancer stops");
    let (gone, stays) = if a_carries { (a, b) } else { (b, a) };
    let Balancer { mut inst, bird, .. } = gone;
    let stopped = Instant::now();
    inst.stop();
    let remaining = stays.inst.ctl_json(&["addr", "show"]).unwrap().to_string();
    let own = if remaining.contains("198.18.0.201") { "198.18.0.201" } else { "198.18.0.202" };
    let took = until_hops(&router, &[&stays], &[own], "only the remaining balancer");
    println!("a stopped balancer dropped from the router after {} ms (hold time 3 s)", took.as_millis());
    wait_for("curl through the remaining balancer", Duration::from_secs(10), || curl("/whoami"));
    let served = stays.inst.ctl_json(&["service", "list", "--stats"]).unwrap();
    assert!(u(&served[0], "conns") >= 1, "{served}");
    let ended = download.wait_with_output().unwrap();
    println!(
        "the download through it: {} after {} ms ({})",
        ended.status,
        stopped.elapsed().as_millis(),
        String::from_utf8_lossy(&ended.stderr).trim()
    );
    assert!(!ended.status.success(), "no state is shared: a connection through a stopped balancer breaks");
    drop(bird);
}

fn signal(child: &Spawned, sig: &str) {
    sh(&format!("kill -{sig} {}", child.0.id()));
}
