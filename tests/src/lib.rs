//! Harness for tests that run real processes: a dpvs instance (primary + workers) with its own
//! file prefix, shm directory and sockets; dpdk-testpmd peers; network namespaces. Every guard
//! cleans up in `Drop`, so a failing test still removes its namespaces, hugepage files and
//! DPDK runtime directory.
//!
//! The tests need root, hugepages mounted at `/dev/hugepages`, and the workspace binaries
//! built (`cargo build --workspace --bins`); `.ci/run` sees to all three.
#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Hugetlbfs mount the tests use.
pub const HUGE_DIR: &str = "/dev/hugepages";

/// A config body (after `[instance]`) with one `net_null` port reflected by one worker on
/// lcore 1 (CPU 1), sleeping 100 µs when idle: a process that forwards without any peer.
pub const NULL_REFLECT: &str = r#"
[[ports]]
name = "dpdk0"
vdev = "net_null0"
[forwarding]
mode = "l2-reflect"
[[groups]]
name = "fwd"
idle_sleep_us = 100
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0"]
"#;

static SERIAL: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Tests in one binary share two CPUs and hugepages: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A name unique to this test process and call, short enough for interface names (<= 12).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}{}", std::process::id() % 100_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Path of a workspace binary (target/<profile>/<name>), built beforehand.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.is_file(), "{} is missing: run `cargo build --workspace --bins` first", p.display());
    p
}

/// Fails the test early with a clear message when it cannot run here.
pub fn require_root_and_hugepages() {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root (namespaces, hugepages, taps)");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    assert!(
        mounts.lines().any(|l| l.contains(" /dev/hugepages ") && l.contains("hugetlbfs")),
        "hugetlbfs must be mounted at /dev/hugepages (see .ci/run)"
    );
}

/// Runs a command to completion, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL; reaps the child.
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A helper process (a server in a namespace) that is stopped when the test ends, even when it
/// fails.
pub struct Spawned(pub Child);

impl Spawned {
    /// `python3 SCRIPT ARGS` in namespace `ns`, its output discarded.
    pub fn python_in(ns: &Netns, script: &std::path::Path, args: &[&str]) -> Spawned {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "python3"])
            .arg(script)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3");
        Spawned(child)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        stop_child(&mut self.0, Duration::from_secs(2));
    }
}

/// Removes what a DPDK process with `prefix` leaves behind.
pub fn remove_dpdk_files(prefix: &str) {
    if let Ok(entries) = std::fs::read_dir(HUGE_DIR) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&format!("{prefix}map_")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let _ = std::fs::remove_file(format!("/var/run/dpdk/{prefix}.lock"));
}

/// A running dpvs instance with its own name, file prefix and directory.
pub struct Instance {
    pub name: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub child: Child,
    pub log: PathBuf,
}

impl Instance {
    /// Writes a config made of an `[instance]` table of its own (unique name and file prefix,
    /// shm in its own directory, main lcore on CPU 0) followed by `body` (with `@DIR@` replaced
    /// by that directory), and starts the primary on it. Does not wait for readiness.
    pub fn spawn(body: &str) -> Instance {
        Instance::spawn_with(body, &[])
    }

    /// [`Instance::spawn`] with extra arguments for `dpvs`.
    pub fn spawn_with(body: &str, args: &[&str]) -> Instance {
        let name = unique("t");
        let dir = std::env::temp_dir().join(format!("dpvs-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let text = format!(
            "[instance]\nname = \"{name}\"\nshm_dir = \"{}\"\nmain_lcore = 0\nmain_cpu = 0\n{}",
            dir.display(),
            body.replace("@DIR@", &dir.display().to_string())
        );
        let cfg_path = dir.join("dpvs.toml");
        std::fs::write(&cfg_path, text).expect("write config");
        let log = dir.join("dpvs.log");
        let child = Command::new(bin("dpvs"))
            .arg("-c")
            .arg(&cfg_path)
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(File::create(&log).expect("log")))
            .stderr(Stdio::from(File::options().append(true).open(&log).expect("log")))
            .spawn()
            .expect("spawn dpvs");
        Instance { name, dir, config: cfg_path, child, log }
    }

    /// Starts the primary (see [`Instance::spawn`]) and waits until every worker polls.
    pub fn start(body: &str) -> Instance {
        let mut i = Instance::spawn(body);
        i.wait_running();
        i
    }

    /// Waits until the instance runs and all its workers poll.
    pub fn wait_running(&mut self) {
        wait_for("all workers running", Duration::from_secs(30), || {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("dpvs exited early ({s}):\n{}", self.log_text());
            }
            let w = self.ctl_json(&["worker", "list"]).ok()?;
            let all = w.as_array()?;
            (!all.is_empty() && all.iter().all(|r| r["state"] == "running")).then_some(())
        });
    }

    /// Runs `dpvsctl -c <config> <args>`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("dpvsctl")).arg("-c").arg(&self.config).args(args).output().expect("dpvsctl")
    }

    /// Runs `dpvsctl -c <config> <args> --json` and parses the output.
    ///
    /// # Errors
    /// The stderr of a failed dpvsctl.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(bin("dpvsctl"))
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .arg("--json")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// The vdev of a memif client (DPDK device `device`, e.g. `net_memif0`) towards this
    /// instance's memif server socket `sock` (e.g. `dpdk0.sock`) in its directory. The client
    /// lays out the rings: 4096 slots (`rsize=12`, memif's default is 1024), so that a test
    /// generator that shares a CPU with the primary, `dpvsctl` and starting workers can be
    /// descheduled for 200 ms at 20 kpps without its rx ring overflowing (seen: 40-150
    /// packets of the balancer's tx refused in the rolling-restart tests, at this commit and
    /// before it, with every handover under 0.4 ms).
    pub fn memif_client(&self, device: &str, sock: &str) -> String {
        format!("{device},role=client,id=0,socket={}/{sock},socket-abstract=no,rsize=12", self.dir.display())
    }

    /// Kills worker slot `slot` with SIGKILL and waits until the supervisor has restarted it
    /// (its restart count `restarts`, a new process, running); returns the slot's row of
    /// `worker list` then. `what` names the wait.
    pub fn kill_worker_and_wait(&self, slot: usize, restarts: u64, what: &str) -> Value {
        let pid = u(&self.workers()[slot], "pid");
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill the worker");
        wait_for(what, Duration::from_secs(20), || {
            let w = self.workers()[slot].clone();
            (u(&w, "restarts") == restarts && w["state"] == "running" && u(&w, "pid") != pid).then_some(w)
        })
    }

    /// The CPUs worker `slot`'s process may run on (`Cpus_allowed_list` of its main thread,
    /// which polls), once it runs there: the last thing it does before it polls is move to its
    /// data CPU.
    pub fn worker_cpus(&self, slot: usize) -> String {
        let pid = u(&self.workers()[slot], "pid") as u32;
        cpus_allowed(pid, pid)
    }

    /// Runs `dpvsctl -c <config> <args>`, asserts success and returns its standard output.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "dpvsctl {}: {text}{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        text
    }

    /// The current configuration generation.
    pub fn generation(&self) -> u64 {
        u(&self.ctl_json(&["status"]).expect("status")["config"], "generation")
    }

    /// `worker list` rows.
    pub fn workers(&self) -> Vec<Value> {
        self.ctl_json(&["worker", "list"]).expect("worker list").as_array().cloned().unwrap_or_default()
    }

    /// `stats` totals.
    pub fn stats(&self) -> Value {
        self.ctl_json(&["stats"]).expect("stats")
    }

    /// The primary's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the primary (SIGTERM) and returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        stop_child(&mut self.child, Duration::from_secs(15))
    }

    /// Starts the primary again on the same configuration (stopping it first if it runs) and
    /// waits until every worker polls.
    pub fn restart(&mut self) {
        self.stop();
        let log = File::options().append(true).open(&self.log).expect("log");
        self.child = Command::new(bin("dpvs"))
            .arg("-c")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn dpvs");
        self.wait_running();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
        remove_dpdk_files(&self.name);
        if std::thread::panicking() {
            eprintln!("--- dpvs log ({}) ---\n{}", self.name, self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Cpus_allowed_list` of thread `tid` of process `pid` (`/proc/<pid>/task/<tid>/status`).
pub fn cpus_allowed(pid: u32, tid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).expect("the thread's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_owned()))
        .expect("Cpus_allowed_list")
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// Creates it with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        sh(&format!("ip netns add {name} && ip -n {name} link set lo up"));
        Netns(name)
    }

    /// Runs a shell command inside it.
    pub fn sh(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} sh -c '{}'", self.0, cmd))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A dpdk-testpmd process, stopped with SIGINT on drop (it prints its totals then).
pub struct Testpmd {
    pub prefix: String,
    pub child: Child,
    pub out: PathBuf,
    /// Its command line (interactive mode).
    stdin: Option<std::process::ChildStdin>,
}

impl Testpmd {
    /// Starts `dpdk-testpmd` on one memif client port, in interactive mode with forwarding
    /// started at once (`-i -a`), its output line-buffered (`stdbuf`) so that what it prints
    /// is in the file at once; commands go to its standard input. `cpu` pins both its lcores;
    /// `app_args` follow `--`.
    pub fn start(dir: &Path, vdev: &str, cpu: u32, app_args: &[&str]) -> Testpmd {
        let prefix = unique("tp");
        let out = dir.join(format!("{prefix}.out"));
        // One open file for both streams, so that they share its offset.
        let log = File::options().create(true).append(true).open(&out).expect("out");
        let mut child = Command::new("stdbuf")
            .args(["-oL", "-eL", "dpdk-testpmd"])
            .arg(format!("--lcores=0@{cpu},1@{cpu}"))
            .args(["--no-pci", "--huge-dir", HUGE_DIR, "--log-level=*:notice", &format!("--file-prefix={prefix}")])
            .arg(format!("--vdev={vdev}"))
            .arg("--")
            .args(["--total-num-mbufs=16384", "--nb-cores=1", "--burst=32", "-i", "-a"])
            .args(app_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().expect("out")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("dpdk-testpmd (package dpdk-dev) must be installed");
        let stdin = child.stdin.take();
        Testpmd { prefix, child, out, stdin }
    }

    /// Stops forwarding with testpmd's `stop` command (which prints the totals once its
    /// forwarding lcore has stopped: nothing is sent after them), waits 300 ms so that what it
    /// put in its memif rings is received (a memif disconnect discards what the rings hold),
    /// then quits. Returns the accumulated (rx, tx) packet counts.
    pub fn stop(&mut self) -> (u64, u64) {
        use std::io::Write;
        let read = |out: &Path| std::fs::read_to_string(out).unwrap_or_default();
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(b"stop\n");
            let _ = s.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut totals = None;
        while Instant::now() < deadline && totals.is_none() {
            std::thread::sleep(Duration::from_millis(20));
            totals = parse_testpmd_totals(&read(&self.out));
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"quit\n");
        }
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        totals.unwrap_or_else(|| panic!("no totals in testpmd output:\n{}", read(&self.out)))
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_dpdk_files(&self.prefix);
    }
}

/// `dpvs-gen` (the workspace's rate-controlled UDP generator): sends on one memif client port,
/// counts the UDP that arrives on another.
pub struct Generator {
    prefix: String,
    child: Child,
    out: PathBuf,
}

impl Generator {
    /// Starts it on CPU 0: `rate` packets per second over `flows` flows from the client address
    /// `src` to the service `dst` (`ADDR:PORT`) at `dst_mac` on `tx_vdev`, counting what
    /// arrives on `rx_vdev`, until [`Generator::stop`]; `queues` queue pairs on each port (as
    /// many as the memif server's), each flow on the queue the port's emulated RSS gives.
    pub fn start_to(
        dir: &Path,
        ports: (&str, &str, u16),
        dst_mac: &str,
        (rate, flows): (u64, u32),
        (src, dst): (&str, &str),
    ) -> Generator {
        Generator::start_with(dir, ports, dst_mac, (rate, flows), (src, dst), &["--cpu", "0"])
    }

    /// [`Generator::start_to`] with more options (`--cpu` among them: see `dpvs-gen --help`).
    pub fn start_with(
        dir: &Path,
        (tx_vdev, rx_vdev, queues): (&str, &str, u16),
        dst_mac: &str,
        (rate, flows): (u64, u32),
        (src, dst): (&str, &str),
        extra: &[&str],
    ) -> Generator {
        let prefix = unique("gen");
        let out = dir.join(format!("{prefix}.out"));
        let child = Command::new(bin("dpvs-gen"))
            .arg(format!("--file-prefix={prefix}"))
            .args(["--tx-vdev", tx_vdev, "--rx-vdev", rx_vdev, "--dst-mac", dst_mac])
            .args(["--rate", &rate.to_string(), "--flows", &flows.to_string(), "--queues", &queues.to_string()])
            .args(["--src", src, "--dst", dst])
            .args(extra)
            .stdout(Stdio::from(File::create(&out).expect("out")))
            .spawn()
            .expect("dpvs-gen");
        Generator { prefix, child, out }
    }

    /// Stops sending (SIGINT), lets it receive what is still on its way, and returns its
    /// report: `sent`, `received`, `other`, `seconds`, `rate`.
    pub fn stop(&mut self) -> Value {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let status = self.child.wait().expect("dpvs-gen");
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        assert!(status.success(), "dpvs-gen failed: {text}");
        serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_dpdk_files(&self.prefix);
    }
}

/// Reads `RX-packets` and `TX-packets` of testpmd's "Accumulated forward statistics" block.
pub fn parse_testpmd_totals(text: &str) -> Option<(u64, u64)> {
    let block = &text[text.find("Accumulated forward statistics")?..];
    let num_after = |key: &str| -> Option<u64> {
        let rest = &block[block.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((num_after("RX-packets:")?, num_after("TX-packets:")?))
}

/// A u64 field of a JSON object.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

/// Two memif ports of two queues each, a group of two lcores (both on CPU 1), and a UDP
/// Full-NAT service 198.18.0.100:53 -> 198.18.1.2:5353 (local address 198.18.1.254): what
/// `dpvs-gen` drives with `Instance::memif_client` ports.
pub const MEMIF_FNAT_UDP: &str = r#"
[memory]
mbufs_per_lcore = 8191
[[ports]]
name = "dpdk0"
vdev = "net_memif0,role=server,id=0,socket=@DIR@/dpdk0.sock,socket-abstract=no,mac=02:00:00:00:00:10"
queues = 2
[[ports]]
name = "dpdk1"
vdev = "net_memif1,role=server,id=0,socket=@DIR@/dpdk1.sock,socket-abstract=no,mac=02:00:00:00:00:11"
queues = 2
[forwarding]
mode = "l2-pair"
ports = ["dpdk0", "dpdk1"]
[[groups]]
name = "fnat"
idle_sleep_us = 10
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0", "dpdk1:0"]
[[groups.lcores]]
id = 2
cpu = 1
rx = ["dpdk0:1", "dpdk1:1"]
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
port = 53
protocol = "udp"
scheduler = "rr"
local_addresses = ["198.18.1.254"]
[[services.reals]]
address = "198.18.1.2"
port = 5353
[connections]
capacity_per_lcore = 4096
[supervisor]
heartbeat_timeout_ms = 2000
"#;

/// The ports, forwarding and worker of [`TAP_PAIR`], without addresses: two tap ports (kernel
/// sides `@IF@a` and `@IF@b`, `@IF@` to be replaced by a unique prefix), a two-arm pair polled
/// by one lcore on CPU 1.
pub const TAP_PORTS: &str = r#"
[[ports]]
name = "dpdk0"
vdev = "net_tap0,iface=@IF@a,mac=02:00:00:00:00:10"
[[ports]]
name = "dpdk1"
vdev = "net_tap1,iface=@IF@b,mac=02:00:00:00:00:11"
[forwarding]
mode = "l2-pair"
ports = ["dpdk0", "dpdk1"]
[[groups]]
name = "fwd"
idle_sleep_us = 20
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0", "dpdk1:0"]
"#;

/// [`TAP_PORTS`] with 198.18.0.254/24 on dpdk0, for prefix `ifp`.
pub fn tap_pair(ifp: &str) -> String {
    format!("{}[[addresses]]\nport = \"dpdk0\"\naddress = \"198.18.0.254/24\"\n", TAP_PORTS.replace("@IF@", ifp))
}

/// Behind a router: the server namespace routes to a third one (the real server, 198.18.2.2)
/// over a veth whose router side takes 1400 bytes. Returns the real server's namespace.
pub fn behind_a_router(srv: &Netns, mtu: u16) -> Netns {
    let far = Netns::new("nf");
    srv.sh(&format!(
        "sysctl -qw net.ipv4.ip_forward=1 && ip link add r0 mtu {mtu} type veth peer name f0 && ip link set f0 netns {} && ip addr add 198.18.2.1/24 dev r0 && ip link set r0 up",
        far.0
    ));
    far.sh("ip addr add 198.18.2.2/24 dev f0 && ip link set f0 up && ip route add default via 198.18.2.1");
    far
}

/// A script of `tests/tools`.
pub fn tool(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools").join(name)
}

/// Puts namespace `ns` on the bridge `br0` of `lan` through a veth (`inner` in `ns`, with
/// `mac` and `addr`, transmit checksums done by the kernel: the balancer does not offload).
pub fn on_bridge(lan: &Netns, ns: &Netns, inner: &str, addr: &str, mac: &str) {
    lan.sh(&format!(
        "ip link add {inner}l type veth peer name {inner} && ip link set {inner}l master br0 && ip link set {inner}l up && ip link set {inner} netns {}",
        ns.0
    ));
    ns.sh(&format!(
        "ip link set {inner} address {mac} && ip addr add {addr} dev {inner} && ip link set {inner} up && ethtool -K {inner} tx off >/dev/null"
    ));
}

/// A balancer of the high-availability tests, on a network it shares with its peer, the
/// client side and the real server 198.18.0.2 (`br0` in a namespace of its own): dpdk0, with
/// the exception path `<ifp>k`, has the address `own`/24 and a Full-NAT service on
/// `vip`:80 towards 198.18.0.2:8080 (`service` adds keys and tables to it, `tables` adds
/// tables before it). The Full-NAT source is an address of its own (`own` + 20): what comes to
/// `own` and is no service's goes to the host's kernel (VRRP, BGP, health probes' answers),
/// what comes to a local address is a real server's reply.
pub fn lan_balancer_config(ifp: &str, mac: u8, own: &str, vip: &str, (tables, service): (&str, &str)) -> String {
    let last: u8 = own.rsplit('.').next().and_then(|o| o.parse().ok()).expect("an IPv4 address");
    let laddr = format!("198.18.0.{}", last + 20);
    format!(
        r#"
[[ports]]
name = "dpdk0"
kni = "{ifp}k"
vdev = "net_tap0,iface={ifp}a,mac=02:00:00:00:{mac:02x}:10"
[forwarding]
mode = "l2-reflect"
[[groups]]
name = "fwd"
idle_sleep_us = 50
[[groups.lcores]]
id = 1
cpu = 1
rx = ["dpdk0:0"]
[[addresses]]
port = "dpdk0"
address = "{own}/24"
[[addresses]]
port = "dpdk0"
address = "{laddr}/32"
{tables}
[[services]]
vip = "{vip}"
port = 80
protocol = "tcp"
local_addresses = ["{laddr}"]
{service}
[[services.reals]]
address = "198.18.0.2"
port = 8080
[connections]
capacity_per_lcore = 4096
"#
    )
}

/// Starts a [`lan_balancer_config`] instance, puts its tap on `br0` in `lan` and its exception
/// path in a namespace of its own with the port's address `own`/24 (where the host's daemons
/// of the balancer run). Returns the instance, that namespace and the kni's name.
pub fn start_lan_balancer(
    lan: &Netns,
    tag: &str,
    (mac, own): (u8, &str),
    config: impl Fn(&str) -> String,
) -> (Instance, Netns, String) {
    let ifp = unique(tag);
    let kni = format!("{ifp}k");
    let inst = Instance::start(&config(&ifp));
    sh(&format!("ip link set {ifp}a netns {}", lan.0));
    lan.sh(&format!(
        "ip link set {ifp}a address 02:00:00:00:{mac:02x}:fe && ip link set {ifp}a master br0 && ip link set {ifp}a up"
    ));
    let host = Netns::new(&format!("{tag}h"));
    sh(&format!("ip link set {kni} netns {}", host.0));
    host.sh(&format!("ip addr add {own}/24 dev {kni} && ip link set {kni} up"));
    (inst, host, kni)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_testpmd_totals() {
        let text = "junk\n  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n  RX-packets: 12             RX-dropped: 0             RX-total: 12\n  TX-packets: 34             TX-dropped: 5             TX-total: 39\n";
        assert_eq!(parse_testpmd_totals(text), Some((12, 34)));
        assert_eq!(parse_testpmd_totals("nothing"), None);
    }
}
