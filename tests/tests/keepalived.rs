//! VRRP with Debian's stock keepalived: two dpvs instances whose client ports share a bridge
//! with a client and a real server; each runs keepalived in the namespace of its port's
//! exception path, with `conf/keepalived/dpvs-vip.sh` as notify script. The master holds the
//! VIP; when its keepalived dies, or its dpvs stops, the backup takes it; the master, back,
//! takes it again (preempt).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration::*;

const VIP: &str = "198.18.0.100";

/// A balancer with its keepalived's namespace (where its kni interface is).
struct Balancer {
    inst: Instance,
    host: Netns,
    kni: String,
    own: String,
    priority: u32,
}

impl Balancer {
    /// Starts dpvs ([`start_lan_balancer`]); its service's VIP is keepalived's to give.
    fn start(lan: &Netns, tag: &str, mac: u8, own: &str, priority: u32) -> Balancer {
        let config = |ifp: &str| lan_balancer_config(ifp, mac, own, VIP, ("", ""));
        let (inst, host, kni) = start_lan_balancer(lan, tag, (mac, own), config);
        Balancer { inst, host, kni, own: own.to_owned(), priority }
    }

    /// Its keepalived, VRRP only, logging to its directory.
    fn keepalived(&self) -> Keepalived {
        let dir = &self.inst.dir;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/keepalived/dpvs-vip.sh");
        let notify = |op: &str| {
            format!(
                "\"{} -c {} -d {} {op} dpdk0 {VIP}\"",
                script.display(),
                self.inst.config.display(),
                bin("dpip").display()
            )
        };
        let conf = format!(
            "global_defs {{\n    router_id {}\n    script_user root\n}}\nvrrp_instance VIP_80 {{\n    state BACKUP\n    interface {}\n    virtual_router_id 51\n    priority {}\n    advert_int 1\n    notify_master {}\n    notify_backup {}\n    notify_fault {}\n    notify_stop {}\n}}\n",
            self.inst.name,
            self.kni,
            self.priority,
            notify("add"),
            notify("del"),
            notify("del"),
            notify("del")
        );
        let path = dir.join("keepalived.conf");
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::options().create(true).append(true).open(dir.join("keepalived.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.host.0, "keepalived", "-n", "-l", "-D", "-P", "-f"])
            .arg(&path)
            .arg("-p")
            .arg(dir.join("keepalived.pid"))
            .arg("-r")
            .arg(dir.join("keepalived-vrrp.pid"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("keepalived (scripts/setup.sh installs it)");
        Keepalived { child: Some(child), vrrp_pid: dir.join("keepalived-vrrp.pid") }
    }

    /// Whether its port holds the VIP.
    fn holds_vip(&self) -> bool {
        let shown = self.inst.ctl_json(&["addr", "show"]).unwrap_or_default();
        shown.as_array().is_some_and(|a| a.iter().any(|r| r["address"] == VIP))
    }

    /// Connections its service got.
    fn conns(&self) -> u64 {
        self.inst.ctl_json(&["service", "list", "--stats"]).map_or(0, |l| u(&l[0], "conns"))
    }
}

/// A keepalived process (its parent and its VRRP child), killed with -9 when dropped.
struct Keepalived {
    child: Option<std::process::Child>,
    vrrp_pid: std::path::PathBuf,
}

impl Keepalived {
    /// Kills both processes with SIGKILL: no notify_stop, no last advert with priority 0.
    fn kill(&mut self) {
        if let Ok(p) = std::fs::read_to_string(&self.vrrp_pid) {
            let _ = Command::new("kill").args(["-KILL", p.trim()]).status();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real server's answer to a new connection to the VIP, from the client.
fn curl(cli: &Netns) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &cli.0, "curl", "-sS", "--max-time", "2"])
        .arg(format!("http://{VIP}/"))
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `b` alone holds the VIP and the client's curl is answered through it (its
/// service counts the connection); returns how long it took.
fn until_serving(b: &Balancer, other: Option<&Balancer>, cli: &Netns, what: &str) -> Duration {
    let t = Instant::now();
    let what = format!("{what} ({}, {})", b.inst.name, b.own);
    wait_for(&what, Duration::from_secs(20), || {
        let before = b.conns();
        let alone = b.holds_vip() && other.is_none_or(|o| !o.holds_vip());
        (alone && curl(cli).is_some() && b.conns() > before).then_some(())
    });
    t.elapsed()
}

#[test]
fn keepalived_moves_the_vip_between_two_balancers_and_curl_follows() {
    let _g = serial();
    require_root_and_hugepages();
    let (lan, cli, srv) = (Netns::new("kl"), Netns::new("kc"), Netns::new("ks"));
    lan.sh("ip link add br0 address 02:00:00:00:02:ff type bridge && ip link set br0 up");
    for (ns, side, addr, mac) in
        [(&cli, "c", "198.18.0.1/24", "02:00:00:00:01:01"), (&srv, "s", "198.18.0.2/24", "02:00:00:00:01:02")]
    {
        on_bridge(&lan, ns, &format!("kv{side}"), addr, mac);
    }
    let a = Balancer::start(&lan, "ka", 0x0a, "198.18.0.201", 150);
    let b = Balancer::start(&lan, "kb", 0x0b, "198.18.0.202", 100);
    assert!(!a.holds_vip() && !b.holds_vip(), "the VIP is keepalived's to give");
    let web = Command::new("ip")
        .args(["netns", "exec", &srv.0, "python3", "-m", "http.server", "8080", "--bind", "198.18.0.2", "--directory"])
        .arg(&a.inst.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _web = Spawned(web);

    let mut ka = a.keepalived();
    let _kb = b.keepalived();
    let first = until_serving(&a, Some(&b), &cli, "the master (priority 150) holding the VIP");
    println!("master elected and serving after {} ms", first.as_millis());

    // The master's keepalived dies without a word: the backup takes the VIP.
    ka.kill();
    let took = until_serving(&b, None, &cli, "the backup taking the VIP over");
    println!("keepalived killed: the backup serves after {} ms", took.as_millis());
    // Back (preempt): the master takes it again, the backup gives it up.
    let _ka = a.keepalived();
    let back = until_serving(&a, Some(&b), &cli, "the master taking the VIP back");
    println!("master back: serving after {} ms", back.as_millis());

    // The master's dpvs stops (its kni goes, its adverts stop): the backup takes the VIP.
    let Balancer { mut inst, host, .. } = a;
    inst.stop();
    let took = until_serving(&b, None, &cli, "the backup taking over from a stopped balancer");
    println!("dpvs stopped: the backup serves after {} ms", took.as_millis());
    let log = std::fs::read_to_string(b.inst.dir.join("keepalived.log")).unwrap_or_default();
    assert!(log.contains("Entering MASTER STATE"), "{log}");
    drop(host);
}
