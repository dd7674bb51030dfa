//! `dpvsctl status`.

use std::sync::atomic::Ordering;

use serde::Serialize;
use shm_layout::{monotonic_ns, InstanceState, Shm, WorkerState};

use std::fmt::Write;

use super::{human_ns, table};

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
    pub port_list: Vec<PortRow>,
    /// Addresses the balancer owns, `port address/prefix`.
    pub addresses: Vec<AddrRow>,
    /// Configuration generation.
    pub config: crate::cmd::config::Generation,
}

/// An owned address.
#[derive(Debug, Serialize)]
pub struct AddrRow {
    pub port: String,
    pub address: String,
}

/// A port as the primary configured it.
#[derive(Debug, Serialize)]
pub struct PortRow {
    pub name: String,
    pub device: String,
    pub driver: String,
    pub mac: String,
    pub port_id: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// The port layer-2 forwarding sends its frames out of (itself for one-arm).
    pub l2_peer: String,
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
        port_list: l
            .ports()
            .iter()
            .map(|p| {
                let m = p.mac;
                PortRow {
                    name: p.name.as_str().into_owned(),
                    device: p.device.as_str().into_owned(),
                    driver: p.driver.as_str().into_owned(),
                    mac: conf::mac_text([m[0], m[1], m[2], m[3], m[4], m[5]]),
                    port_id: p.port_id,
                    rx_queues: p.rx_queues,
                    tx_queues: p.tx_queues,
                    l2_peer: l
                        .ports()
                        .get(usize::from(p.peer))
                        .map_or_else(|| "?".into(), |q| q.name.as_str().into_owned()),
                }
            })
            .collect(),
        addresses: crate::cmd::config::snapshot(shm)
            .map(|(_, rt)| rt.addresses)
            .unwrap_or_default()
            .iter()
            .map(|a| AddrRow {
                port: l.ports().get(a.port).map_or_else(|| "?".into(), |p| p.name.as_str().into_owned()),
                address: format!("{}/{}", a.addr, a.prefix),
            })
            .collect(),
        config: crate::cmd::config::generation(shm),
    }
}

/// Renders it as text.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "instance        {}", s.instance);
    let _ = writeln!(out, "file prefix     {}", s.file_prefix);
    let _ = writeln!(out, "state           {}", s.state);
    let _ = writeln!(out, "primary pid     {}", s.primary_pid);
    let _ = writeln!(out, "uptime          {}", human_ns(s.uptime_ns));
    let _ = writeln!(out, "layout version  {}", s.layout_version);
    let _ = writeln!(out, "EAL init        {:.1}ms", s.eal_init_us as f64 / 1000.0);
    let _ = writeln!(out, "workers         {} ({} running)", s.workers, s.workers_running);
    let _ = writeln!(out, "shared memory   {}", s.shm);
    let _ = writeln!(
        out,
        "configuration   generation {} ({} changes since start{})",
        s.config.generation,
        s.config.changes,
        if s.config.acknowledged { "" } else { "; not yet applied by every worker" }
    );
    let _ = writeln!(out);
    let rows: Vec<Vec<String>> = s
        .port_list
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.port_id.to_string(),
                p.device.clone(),
                p.driver.clone(),
                p.mac.clone(),
                p.rx_queues.to_string(),
                p.tx_queues.to_string(),
                p.l2_peer.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["PORT", "ID", "DEVICE", "DRIVER", "MAC", "RXQ", "TXQ", "L2-PEER"], &rows));
    if !s.addresses.is_empty() {
        let _ = writeln!(out);
        let rows: Vec<Vec<String>> = s.addresses.iter().map(|a| vec![a.port.clone(), a.address.clone()]).collect();
        out.push_str(&table(&["PORT", "ADDRESS"], &rows));
    }
    out
}
