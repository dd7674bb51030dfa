//! `dpvsctl status`.

use std::sync::atomic::Ordering;

use serde::Serialize;
use shm_layout::{monotonic_ns, InstanceState, Shm, WorkerState};

use super::human_ns;

/// What `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub instance: String,
    pub file_prefix: String,
    pub state: String,
    pub primary_pid: u32,
    pub uptime_ns: u64,
    pub started_unix_ns: u64,
    pub layout_version: u32,
    pub eal_init_us: u64,
    pub ports: u32,
    pub workers: u32,
    pub workers_running: u32,
    pub shm: String,
}

/// Reads the status view.
pub fn view(shm: &Shm) -> Status {
    let l = shm.layout();
    let h = &l.header;
    Status {
        instance: h.instance.as_str().into_owned(),
        file_prefix: h.file_prefix.as_str().into_owned(),
        state: match InstanceState::from_u32(h.state.load(Ordering::Acquire)) {
            Some(InstanceState::Starting) => "starting",
            Some(InstanceState::Running) => "running",
            Some(InstanceState::Stopping) => "stopping",
            None => "unknown",
        }
        .to_owned(),
        primary_pid: h.primary_pid,
        uptime_ns: monotonic_ns().saturating_sub(h.started_mono_ns),
        started_unix_ns: h.started_unix_ns,
        layout_version: h.layout_version.load(Ordering::Acquire),
        eal_init_us: h.eal_init_us,
        ports: h.n_ports,
        workers: h.n_workers,
        workers_running: l.workers().iter().filter(|w| w.state() == WorkerState::Running).count() as u32,
        shm: shm.path().display().to_string(),
    }
}

/// Prints it as text.
pub fn print(s: &Status) {
    println!("instance        {}", s.instance);
    println!("file prefix     {}", s.file_prefix);
    println!("state           {}", s.state);
    println!("primary pid     {}", s.primary_pid);
    println!("uptime          {}", human_ns(s.uptime_ns));
    println!("layout version  {}", s.layout_version);
    println!("EAL init        {:.1}ms", s.eal_init_us as f64 / 1000.0);
    println!("ports           {}", s.ports);
    println!("workers         {} ({} running)", s.workers, s.workers_running);
    println!("shared memory   {}", s.shm);
}
