//! The supervisor against workers that misbehave: one that hangs is killed and replaced on
//! its lcore; one that cannot start is restarted with a growing backoff while the primary stays
//! up and still stops cleanly.

use std::process::Command;
use std::time::{Duration, Instant};

use integration::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// [`NULL_REFLECT`] with a short heartbeat timeout and backoff cap.
fn config() -> String {
    format!("{NULL_REFLECT}{}", SUPERVISOR)
}

const SUPERVISOR: &str = r#"
[supervisor]
heartbeat_timeout_ms = 300
max_restart_backoff_ms = 400
"#;

#[test]
fn a_hung_worker_is_killed_and_replaced_on_its_lcore() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(&config());
    let before = inst.workers()[0].clone();
    let pid = u(&before, "pid");
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let stopped_at = Instant::now();
    let after = wait_for("the hung worker's replacement", Duration::from_secs(10), || {
        let w = inst.workers()[0].clone();
        (u(&w, "restarts") == 1 && w["state"] == "running" && u(&w, "pid") != pid).then_some(w)
    });
    let took = stopped_at.elapsed();
    println!("hung worker replaced after {took:?}: {after}");
    assert!(took >= Duration::from_millis(300), "not before the heartbeat timeout ({took:?})");
    assert_eq!(after["last_exit"], -9, "killed with SIGKILL");
    assert_eq!(u(&after, "lcore"), 1);
    assert!(inst.log_text().contains("heartbeat"), "the log says why:\n{}", inst.log_text());
    let rx = u(&inst.stats()["total"], "rx_packets");
    wait_for("forwarding after the replacement", Duration::from_secs(5), || {
        (u(&inst.stats()["total"], "rx_packets") > rx).then_some(())
    });
}

#[test]
fn a_worker_that_cannot_start_is_retried_with_backoff_and_the_primary_stays_up() {
    let _g = serial();
    require_root_and_hugepages();
    let dir = std::env::temp_dir().join(unique("dpvs-badworker-"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("crashing-worker");
    std::fs::write(&bad, "#!/bin/sh\nexit 7\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut inst = Instance::spawn_with(&config(), &["--worker-bin", bad.to_str().unwrap()]);
    let w = wait_for("a few restarts", Duration::from_secs(10), || {
        let w = inst.ctl_json(&["worker", "list"]).ok()?.as_array()?.first()?.clone();
        (u(&w, "restarts") >= 3).then_some(w)
    });
    assert_eq!(w["last_exit"], 7);
    // Without backoff the supervisor would restart it every 5 ms round; with it (10 ms
    // doubling, capped at 400 ms) about 2 s see at most a dozen restarts.
    std::thread::sleep(Duration::from_secs(2));
    let restarts = u(&inst.workers()[0], "restarts");
    println!("restarts after ~2 s of crash loop: {restarts}");
    assert!((4..=14).contains(&restarts), "{restarts} restarts");
    assert_eq!(inst.ctl_json(&["status"]).unwrap()["state"], "running", "the primary stays up");
    let status = inst.stop().expect("stopped");
    assert!(status.success(), "clean stop during a crash loop: {status}\n{}", inst.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_operator_restart_through_the_mailbox_replaces_the_worker_and_answers() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(NULL_REFLECT);
    let old_pid = u(&inst.workers()[0], "pid");
    let out = inst.ctl(&["worker", "restart", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with(&format!("worker 0 restarted: pid {old_pid} -> ")), "{text}");
    let w = inst.workers()[0].clone();
    assert_ne!(u(&w, "pid"), old_pid);
    assert_eq!(w["state"], "running");
    assert_eq!(u(&w, "restarts"), 0, "a requested restart is not a crash");
    assert_eq!(w["last_exit"], 0, "the old worker exited cleanly on its stop flag");
    let rx = u(&inst.stats()["total"], "rx_packets");
    wait_for("forwarding by the replacement", Duration::from_secs(5), || {
        (u(&inst.stats()["total"], "rx_packets") > rx).then_some(())
    });
    // The successor initialised on the housekeeping CPU (0) and polls on its data CPU (1); so
    // does a replacement after a crash that follows (it too starts on CPU 0 and moves).
    assert_eq!(inst.worker_cpus(0), "1", "the successor polls on its data CPU");
    // Every thread of the primary (its EAL IPC, interrupt and telemetry threads among them)
    // stays on the housekeeping CPU (0, the main CPU), off the workers' CPU.
    let primary = inst.child.id();
    for t in std::fs::read_dir(format!("/proc/{primary}/task")).unwrap() {
        let tid: u32 = t.unwrap().file_name().to_string_lossy().parse().unwrap();
        assert_eq!(cpus_allowed(primary, tid), "0", "primary thread {tid}");
    }
    inst.kill_worker_and_wait(0, 1, "the replacement of the killed successor");
    assert_eq!(inst.worker_cpus(0), "1", "the replacement polls on its data CPU");

    // JSON, and a refusal that changes nothing.
    let j = inst.ctl_json(&["worker", "restart", "0"]).unwrap();
    assert_eq!(j["WorkerRestarted"]["slot"], 0, "{j}");
    let pid = u(&inst.workers()[0], "pid");
    let out = inst.ctl(&["worker", "restart", "5"]);
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no worker slot 5: the instance has 1 (0..=0)"), "{err}");
    assert_eq!(u(&inst.workers()[0], "pid"), pid, "nothing changed");
}

#[test]
fn a_rolling_upgrade_hands_over_and_a_binary_of_another_layout_is_refused() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(NULL_REFLECT);
    // An "upgrade" to a copy of the worker binary.
    let copy = inst.dir.join("dpvs-worker-next");
    std::fs::copy(bin("dpvs-worker"), &copy).unwrap();
    let out = inst.ctl(&["worker", "restart", "--all", "--binary", copy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("worker 0 restarted"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = u(&inst.workers()[0], "pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, copy, "the new worker runs the new binary");

    // A binary of another layout version is refused before anything changes.
    let other = inst.dir.join("dpvs-worker-v999");
    std::fs::write(&other, "#!/bin/sh\necho 999\n").unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = inst.ctl(&["worker", "restart", "0", "--binary", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("speaks layout version 999, this instance layout version"), "{err}");
    assert_eq!(u(&inst.workers()[0], "pid"), pid, "the worker keeps running");
    // So is one of this layout that decodes another configuration format.
    std::fs::write(&other, format!("#!/bin/sh\necho {} 999\n", shm_layout::LAYOUT_VERSION)).unwrap();
    let out = inst.ctl(&["worker", "restart", "0", "--binary", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("decodes configuration format 999"), "{err}");
    assert_eq!(u(&inst.workers()[0], "pid"), pid, "the worker keeps running");
    // And one whose connection tables have another layout (the shards stay in place).
    let ours = Command::new(bin("dpvs-worker")).arg("--layout-version").output().unwrap();
    let ours = String::from_utf8_lossy(&ours.stdout);
    let layout_and_format: Vec<&str> = ours.split_whitespace().take(2).collect();
    std::fs::write(&other, format!("#!/bin/sh\necho {} 999\n", layout_and_format.join(" "))).unwrap();
    let out = inst.ctl(&["worker", "restart", "0", "--binary", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("adopts connection tables of layout 999"), "{err}");
    assert_eq!(u(&inst.workers()[0], "pid"), pid, "the worker keeps running");
    let rx = u(&inst.stats()["total"], "rx_packets");
    wait_for("forwarding on", Duration::from_secs(5), || (u(&inst.stats()["total"], "rx_packets") > rx).then_some(()));
}

#[test]
fn a_hot_standby_takes_over_from_a_killed_worker() {
    let _g = serial();
    require_root_and_hugepages();
    let body = NULL_REFLECT.replace("idle_sleep_us = 100\n", "idle_sleep_us = 100\nhot_standby = true\n");
    assert!(body.contains("hot_standby = true"));
    let inst = Instance::start(&body);
    // The standby is started once the worker has been stable for a while.
    let (pid, standby) = wait_for("a hot standby ready", Duration::from_secs(10), || {
        let w = inst.workers()[0].clone();
        (w["standby_ready"] == true).then_some(())?;
        Some((u(&w, "pid"), w["standby_pid"].as_u64()?))
    });
    let w = inst.kill_worker_and_wait(0, 1, "the standby polling");
    assert_ne!(u(&w, "pid"), pid);
    println!("after kill -9: {w}");
    assert_eq!(u(&w, "pid"), standby, "the standby took over, not a fresh process");
    assert_eq!(w["last_exit"], -9);
    let rx = u(&inst.stats()["total"], "rx_packets");
    wait_for("forwarding on", Duration::from_secs(5), || (u(&inst.stats()["total"], "rx_packets") > rx).then_some(()));
    // And a new standby follows.
    wait_for("a new hot standby", Duration::from_secs(10), || {
        inst.workers()[0]["standby_pid"].as_u64().filter(|&p| p != standby).map(|_| ())
    });
}
