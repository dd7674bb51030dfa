//! The instance's own commands in DPDK's telemetry socket, next to the libraries' (`dpdk-telemetry.py
//! -f <file_prefix>`, or any client of `/var/run/dpdk/<prefix>/dpdk_telemetry.v2`), in DPDK's
//! style: a list command names the things, a command with a parameter describes one.
//!
//! - `/dpvs/info`: the instance (name, state, pids, configuration generation, counts).
//! - `/dpvs/workers`: the worker slots; `/dpvs/worker,<slot>`: one (`dpvsctl worker list`).
//! - `/dpvs/stats`: the forwarding counters summed over the lcores (`dpvsctl stats`).
//! - `/dpvs/services`: the services as `tcp:VIP:PORT` (the first 512);
//!   `/dpvs/service,tcp:VIP:PORT`: one, with its real servers and counters.
//! - `/dpvs/captures`: the packet captures running (`dpdk-dumpcap`, `dpdk-pdump`).
//!
//! Answers are read from a mapping of the shared memory of its own, on the telemetry thread,
//! as `dpvsctl` reads them: nothing here touches the control loop.

use std::path::Path;
use std::sync::Arc;

use dpdk::{TelEntry, TelScalar, TelValue};
use serde_json::Value;
use shm_layout::capture::{Direction, ALL_QUEUES};
use shm_layout::Shm;

/// Registers the commands. Without a mapping (or telemetry) the instance runs without them.
pub fn register(shm_path: &Path) {
    let shm = match Shm::open(shm_path) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::warn!("telemetry commands unavailable: {e}");
            return;
        }
    };
    type Answer = fn(&Shm, &str) -> Result<TelValue, String>;
    let commands: [(&str, &str, Answer); 7] = [
        ("/dpvs/info", "The instance: name, state, pids, configuration generation, counts. No parameters", info),
        ("/dpvs/workers", "The worker slots. No parameters", workers),
        ("/dpvs/worker", "One worker slot's process, queues, restarts, pool. Parameter: the slot", worker),
        ("/dpvs/stats", "Forwarding counters summed over the lcores. No parameters", stats),
        ("/dpvs/services", "The services as tcp:VIP:PORT (the first 512). No parameters", services),
        ("/dpvs/service", "One service, its real servers and counters. Parameter: tcp:VIP:PORT", service),
        ("/dpvs/captures", "The packet captures running. No parameters", captures),
    ];
    for (cmd, help, answer) in commands {
        let shm = Arc::clone(&shm);
        if let Err(e) = dpdk::register_telemetry(cmd, help, Box::new(move |params| answer(&shm, params))) {
            tracing::warn!("telemetry command {cmd} unavailable: {e}");
        }
    }
}

fn no_params(params: &str) -> Result<(), String> {
    if params.is_empty() {
        Ok(())
    } else {
        Err("this command takes no parameters".into())
    }
}

fn scalar(v: &Value) -> Option<TelScalar> {
    match v {
        Value::String(s) => Some(TelScalar::Str(s.clone())),
        Value::Bool(b) => Some(TelScalar::U64(u64::from(*b))),
        Value::Number(n) => n
            .as_u64()
            .map(TelScalar::U64)
            .or_else(|| n.as_i64().map(TelScalar::Int))
            .or_else(|| n.as_f64().map(|f| TelScalar::Str(f.to_string()))),
        _ => None,
    }
}

/// A JSON object as a telemetry dictionary: nested objects flattened (`gaps_count`), arrays of
/// scalars kept, nulls left out.
pub fn flatten(v: &Value) -> TelValue {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, TelEntry)>) {
        let name = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}_{k}") };
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(&name(k), v, out);
                }
            }
            Value::Array(a) => out.push((prefix.to_owned(), TelEntry::Array(a.iter().filter_map(scalar).collect()))),
            Value::Null => {}
            v => {
                if let Some(s) = scalar(v) {
                    out.push((prefix.to_owned(), TelEntry::Scalar(s)));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    TelValue::Dict(out)
}

fn json(v: impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

fn info(shm: &Shm, params: &str) -> Result<TelValue, String> {
    no_params(params)?;
    use std::sync::atomic::Ordering::Acquire;
    let l = shm.layout();
    let h = &l.header;
    let services = ctl::cmd::config::snapshot(shm).map(|(_, rt)| rt.services.len()).unwrap_or(0);
    let state = match shm_layout::InstanceState::from_u32(h.state.load(Acquire)) {
        Some(shm_layout::InstanceState::Starting) => "starting",
        Some(shm_layout::InstanceState::Running) => "running",
        Some(shm_layout::InstanceState::Stopping) => "stopping",
        None => "unknown",
    };
    let text = |s: &str| TelEntry::Scalar(TelScalar::Str(s.to_owned()));
    let num = |n: u64| TelEntry::Scalar(TelScalar::U64(n));
    Ok(TelValue::Dict(vec![
        ("instance".into(), text(&h.instance.as_str())),
        ("file_prefix".into(), text(&h.file_prefix.as_str())),
        ("state".into(), text(state)),
        ("primary_pid".into(), num(u64::from(h.primary_pid))),
        ("uptime_s".into(), num(shm_layout::monotonic_ns().saturating_sub(h.started_mono_ns) / 1_000_000_000)),
        ("config_generation".into(), num(l.config.generation.load(Acquire))),
        (
            "ports".into(),
            TelEntry::Array(l.ports().iter().map(|p| TelScalar::Str(p.name.as_str().into_owned())).collect()),
        ),
        ("workers".into(), num(l.workers().len() as u64)),
        ("services".into(), num(services as u64)),
    ]))
}

fn workers(shm: &Shm, params: &str) -> Result<TelValue, String> {
    no_params(params)?;
    Ok(TelValue::Array((0..shm.layout().workers().len() as u64).map(TelScalar::U64).collect()))
}

fn worker(shm: &Shm, params: &str) -> Result<TelValue, String> {
    let slot: usize = params.trim().parse().map_err(|_| format!("{params:?}: expected a worker slot"))?;
    let rows = ctl::cmd::worker::view(shm);
    let row = rows.iter().find(|w| w.slot == slot).ok_or_else(|| format!("no worker slot {slot}"))?;
    Ok(flatten(&json(row)?))
}

fn stats(shm: &Shm, params: &str) -> Result<TelValue, String> {
    no_params(params)?;
    Ok(flatten(&json(ctl::cmd::stats::view(shm).total)?))
}

fn service_name(s: &conf::Service) -> String {
    format!("{}:{}", s.protocol.name(), std::net::SocketAddr::new(s.vip, s.port))
}

fn services(shm: &Shm, params: &str) -> Result<TelValue, String> {
    no_params(params)?;
    let (_, rt) = ctl::cmd::config::snapshot(shm).map_err(|e| e.to_string())?;
    Ok(TelValue::Array(rt.services.iter().take(512).map(|s| TelScalar::Str(service_name(s))).collect()))
}

fn service(shm: &Shm, params: &str) -> Result<TelValue, String> {
    // `tcp:VIP:PORT`, the VIP of an IPv6 service in brackets (in any of its spellings).
    let text = params.trim().to_ascii_lowercase();
    let want = text
        .split_once(':')
        .and_then(|(p, a)| Some((p.to_owned(), a.parse::<std::net::SocketAddr>().ok()?)))
        .map_or(text.clone(), |(p, a)| format!("{p}:{a}"));
    let (generation, rt) = ctl::cmd::config::snapshot(shm).map_err(|e| e.to_string())?;
    let s =
        rt.services.iter().find(|s| service_name(s) == want).ok_or_else(|| {
            format!("{params:?}: no such service (expected protocol:VIP:PORT, e.g. tcp:198.18.0.100:80)")
        })?;
    let counters = ctl::cmd::service::stats(shm);
    let key = ctl::cmd::service::key_of(s);
    let c = counters.services.get(&key).copied().unwrap_or_default();
    let mut v = json(c)?;
    let o = v.as_object_mut().ok_or("counters are not an object")?;
    o.insert("generation".into(), generation.into());
    o.insert("protocol".into(), s.protocol.name().into());
    o.insert("vip".into(), s.vip.to_string().into());
    o.insert("port".into(), s.port.into());
    o.insert("scheduler".into(), s.scheduler.to_string().into());
    o.insert(
        "reals".into(),
        s.reals.iter().map(|r| std::net::SocketAddr::new(r.addr, r.port).to_string()).collect::<Vec<_>>().into(),
    );
    o.insert("weights".into(), s.reals.iter().map(|r| r.weight).collect::<Vec<_>>().into());
    o.insert("local_addresses".into(), s.local_addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().into());
    Ok(flatten(&v))
}

fn captures(shm: &Shm, params: &str) -> Result<TelValue, String> {
    no_params(params)?;
    let l = shm.layout();
    let (_, view) = l.captures.read().ok_or("the captures are changing; ask again")?;
    let mut list = Vec::new();
    for (slot, dirs) in view.iter().enumerate().take(l.ports().len()) {
        for (c, side) in dirs.iter().zip([Direction::Rx, Direction::Tx]) {
            if let Some(c) = c {
                let queue = if c.queue == ALL_QUEUES { "all".to_owned() } else { c.queue.to_string() };
                let side = if side == Direction::Rx { "rx" } else { "tx" };
                list.push(TelScalar::Str(format!(
                    "{} {side} queue {queue} pid {} snaplen {}",
                    l.ports[slot].name.as_str(),
                    c.requester_pid,
                    c.snaplen
                )));
            }
        }
    }
    Ok(TelValue::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_flatten_and_nulls_go() {
        let v = serde_json::json!({"a": 1, "b": {"c": "x", "d": null}, "e": [1, 2], "f": true, "g": -3});
        let TelValue::Dict(d) = flatten(&v) else { panic!() };
        assert_eq!(
            d,
            vec![
                ("a".to_owned(), TelEntry::Scalar(TelScalar::U64(1))),
                ("b_c".to_owned(), TelEntry::Scalar(TelScalar::Str("x".into()))),
                ("e".to_owned(), TelEntry::Array(vec![TelScalar::U64(1), TelScalar::U64(2)])),
                ("f".to_owned(), TelEntry::Scalar(TelScalar::U64(1))),
                ("g".to_owned(), TelEntry::Scalar(TelScalar::Int(-3))),
            ]
        );
    }
}
