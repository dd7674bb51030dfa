//! What must be refused, clearly: a second instance with the same name, a dpvsctl or worker
//! facing a layout of another version, a dpvsctl with no instance, a bad config file; and what
//! a dead primary leaves: no workers, nothing that stops the next start.

use std::process::Command;
use std::sync::atomic::Ordering;

use integration::*;
use shm_layout::{Shm, LAYOUT_VERSION};

const CONFIG: &str = NULL_REFLECT;

#[test]
fn a_second_primary_with_the_same_name_is_refused_and_the_first_keeps_running() {
    let _g = serial();
    require_root_and_hugepages();
    let inst = Instance::start(CONFIG);
    let out = Command::new(bin("dpvs")).arg("-c").arg(&inst.config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&format!("pid {}", inst.child.id())), "names the live primary: {err}");
    let status = inst.ctl_json(&["status"]).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(u(&status, "primary_pid"), u64::from(inst.child.id()));
    // The null port's worker forwards (null rx yields packets, null tx takes them).
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "rx_packets") > 0 && u(&s, "tx_packets") > 0, "{s}");
}

#[test]
fn a_stopped_instance_leaves_nothing_behind() {
    let _g = serial();
    require_root_and_hugepages();
    let mut inst = Instance::start(CONFIG);
    let shm = inst.dir.join(format!("{}.shm", inst.name));
    assert!(shm.exists());
    let status = inst.stop().expect("stopped");
    assert!(status.success(), "clean exit: {status}\n{}", inst.log_text());
    assert!(!inst.log_text().contains("did not stop in time"), "the worker obeyed its stop flag:\n{}", inst.log_text());
    assert!(!shm.exists(), "shm file removed");
    assert!(!inst.dir.join(format!("{}.lock", inst.name)).exists(), "name lock removed");
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/{}.lock", inst.name)).exists(), "prefix lock removed");
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/{}", inst.name)).exists(), "runtime dir removed");
    let leftovers: Vec<_> = std::fs::read_dir(HUGE_DIR)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{}map_", inst.name)))
        .collect();
    assert!(leftovers.is_empty(), "hugepage files removed: {leftovers:?}");
    let out = inst.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(1), "dpvsctl: no instance");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance"));
}

#[test]
fn after_the_primary_dies_its_workers_go_and_the_next_start_runs_and_cleans_up() {
    let _g = serial();
    require_root_and_hugepages();
    let mut inst = Instance::start(CONFIG);
    let worker_pids: Vec<u64> = inst.workers().iter().map(|w| u(w, "pid")).collect();
    assert!(!worker_pids.is_empty());
    // A crash of the primary (SIGKILL: nothing of its own shutdown runs).
    inst.child.kill().unwrap();
    inst.child.wait().unwrap();
    wait_for("the workers to follow their primary", std::time::Duration::from_secs(5), || {
        worker_pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).then_some(())
    });
    let shm = inst.dir.join(format!("{}.shm", inst.name));
    assert!(shm.exists(), "a crash leaves the shm file (the next start replaces it)");

    // The same config starts again over what the crash left behind, and stops cleanly.
    inst.child = Command::new(bin("dpvs"))
        .arg("-c")
        .arg(&inst.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(std::fs::File::options().append(true).open(&inst.log).unwrap()))
        .spawn()
        .unwrap();
    inst.wait_running();
    let status = inst.ctl_json(&["status"]).unwrap();
    assert_eq!(u(&status, "primary_pid"), u64::from(inst.child.id()), "{status}");
    let s = inst.stats()["total"].clone();
    assert!(u(&s, "rx_packets") > 0, "the new worker forwards: {s}");
    let exit = inst.stop().expect("stopped");
    assert!(exit.success(), "clean exit: {exit}\n{}", inst.log_text());
    assert!(!shm.exists(), "shm file removed");
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/{}", inst.name)).exists(), "runtime dir removed");
}

#[test]
fn ctl_and_worker_refuse_another_layout_version() {
    let dir = std::env::temp_dir().join(unique("dpvs-layout-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.shm");
    let shm = Shm::create(&path, shm_layout::TableSizes::SMALL, |l, _| l.header.n_workers = 1).unwrap();
    shm.layout().header.layout_version.store(LAYOUT_VERSION + 1, Ordering::Release);

    let out =
        Command::new(bin("dpvsctl")).args(["--shm-dir"]).arg(&dir).args(["-i", "old", "status"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("layout version {}", LAYOUT_VERSION + 1))
            && err.contains(&format!("expects {LAYOUT_VERSION}")),
        "{err}"
    );

    // The worker checks before it touches DPDK.
    let out = Command::new(bin("dpvs-worker"))
        .args(["--", "--shm"])
        .arg(&path)
        .args(["--slot", "0", "--spawn", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("layout version mismatch"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctl_without_an_instance_and_primary_with_a_bad_config_fail_clearly() {
    let out = Command::new(bin("dpvsctl")).args(["-i", "no-such-instance", "worker", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance"));

    let dir = std::env::temp_dir().join(unique("dpvs-badconf-"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    let text =
        format!("[instance]\nname = \"bad\"\n{}", CONFIG.replace("idle_sleep_us = 100", "idle_sleep_us = \"x\""));
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(bin("dpvs")).arg("-c").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml:11: groups[0].idle_sleep_us"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
