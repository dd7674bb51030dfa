//! Captures for stock `dpdk-dumpcap` and `dpdk-pdump`: the primary takes each tool's request
//! (`dpdk::serve_capture_requests`, on the EAL's IPC thread), checks it against the ports and
//! records it in the shared memory ([`shm_layout::capture`]), where the workers polling the
//! port's queues pick it up within a millisecond and add their copying callbacks. A capture
//! whose tool died without stopping it (`kill -9`) is ended by the supervisor's round
//! ([`end_orphans`]): nothing keeps copying into a ring nobody drains.

use std::sync::Arc;

use dpdk::Decision;
use shm_layout::capture::{Capture, Direction, ALL_QUEUES};
use shm_layout::{monotonic_ns, Layout, Shm};

/// Orders the writers of the capture specs (the IPC thread and the supervisor's round).
static WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn writer() -> std::sync::MutexGuard<'static, ()> {
    WRITER.lock().unwrap_or_else(|e| e.into_inner())
}

const EINVAL: i32 = 22;
const ETIMEDOUT: i32 = 110;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// Accepts (recording it) or refuses (with the errno the tool reports) a request. `port_id`
/// resolves a DPDK device name to its port id. A stop is answered later, on a thread of its
/// own, once every polling worker removed its callbacks (the tool frees its ring and pool as
/// soon as it is told).
pub fn decide(shm: &Arc<Shm>, req: &dpdk::CaptureRequest, port_id: impl Fn(&str) -> Option<u16>) -> Decision {
    let layout = shm.layout();
    let refuse = |errno: i32, why: &str| {
        tracing::warn!(device = %req.device, pid = ?req.requester_pid, "capture request refused: {why}");
        Decision::Now(Err(errno))
    };
    let Some(id) = port_id(&req.device) else { return refuse(ENODEV, "no such port") };
    let Some(slot) = layout.ports().iter().position(|p| p.port_id == id) else {
        return refuse(ENODEV, "the port is not one of the instance's");
    };
    let port = &layout.ports()[slot];
    let dirs: Vec<(Direction, u16)> =
        [(req.rx, Direction::Rx, port.rx_queues), (req.tx, Direction::Tx, port.tx_queues)]
            .into_iter()
            .filter_map(|(on, d, queues)| on.then_some((d, queues)))
            .collect();
    if dirs.is_empty() {
        return refuse(EINVAL, "neither receive nor transmit asked");
    }
    let captures = &layout.captures;
    let _w = writer();
    if req.enable {
        for &(d, queues) in &dirs {
            if let Some(q) = req.queue.filter(|&q| q >= queues) {
                return refuse(EINVAL, &format!("queue {q} beyond the port's {queues} ({d:?})"));
            }
            if captures.get(slot, d).is_some() {
                return refuse(EEXIST, &format!("the port's {d:?} side is being captured already"));
            }
        }
        let t = req.target;
        let c = Capture {
            ring: t.ring,
            mempool: t.mempool,
            filter: t.filter,
            snaplen: t.snaplen,
            queue: req.queue.map_or(ALL_QUEUES, u32::from),
            pcapng: t.pcapng,
            requester_pid: req.requester_pid.unwrap_or(0),
            since_ns: monotonic_ns(),
        };
        for &(d, _) in &dirs {
            captures.set(slot, d, Some(&c));
        }
        tracing::info!(device = %req.device, pid = ?req.requester_pid, rx = req.rx, tx = req.tx, queue = ?req.queue, "capture started");
    } else {
        if let Some(&(d, _)) = dirs.iter().find(|&&(d, _)| captures.get(slot, d).is_none()) {
            return refuse(EINVAL, &format!("no capture on the port's {d:?} side to stop"));
        }
        for &(d, _) in &dirs {
            captures.set(slot, d, None);
        }
        let (seq, shm, device, pid) = (captures.seq(), Arc::clone(shm), req.device.clone(), req.requester_pid);
        return Decision::Later(Box::new(move || {
            let r = applied(shm.layout(), seq, STOP_WAIT);
            tracing::info!(%device, ?pid, ok = r.is_ok(), "capture stopped");
            r
        }));
    }
    Decision::Now(Ok(()))
}

/// How long a stop waits for the workers to apply it, below the tools' 5 s (a worker that
/// does not is stuck: the supervisor kills it, and it no longer counts).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits until every polling worker applied the captures up to `seq`, `limit` at most
/// (ETIMEDOUT then).
fn applied(layout: &Layout, seq: u64, limit: std::time::Duration) -> Result<(), i32> {
    // The store of `seq` before the loads of the workers' states (a worker claims its slot,
    // then loads the sequence: see workers::capture).
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    let done = || {
        layout
            .workers()
            .iter()
            .enumerate()
            .all(|(i, w)| w.state() != shm_layout::WorkerState::Running || layout.captures.acked(i) >= seq)
    };
    while !done() {
        if t0.elapsed() >= limit {
            tracing::warn!(seq, "a worker did not apply a capture's stop in time");
            return Err(ETIMEDOUT);
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Ok(())
}

/// Ends the captures whose tool is no longer alive. Returns how many.
pub fn end_orphans(layout: &Layout) -> usize {
    let captures = &layout.captures;
    let mut ended = 0;
    for slot in 0..layout.ports().len() {
        for d in [Direction::Rx, Direction::Tx] {
            let Some(c) = captures.get(slot, d) else { continue };
            if c.requester_pid == 0 || alive(c.requester_pid) {
                continue;
            }
            let _w = writer();
            // Looked at again under the lock: the tool may have stopped it meanwhile.
            if captures.get(slot, d).is_some_and(|now| now.since_ns == c.since_ns) {
                captures.set(slot, d, None);
                ended += 1;
                tracing::warn!(port = slot, side = ?d, pid = c.requester_pid, "capture ended: its tool died");
            }
        }
    }
    ended
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // Signal 0 checks existence; EPERM would still mean alive (we run as root).
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use dpdk::{CaptureRequest, CaptureTarget};
    use shm_layout::Shm;

    use super::*;

    struct Rig(std::path::PathBuf, Arc<Shm>);

    /// The answer, waited for if given later.
    fn answer(d: Decision) -> Result<(), i32> {
        match d {
            Decision::Now(r) => r,
            Decision::Later(f) => f(),
        }
    }

    impl Rig {
        fn new(name: &str) -> Rig {
            let dir = std::env::temp_dir().join(format!("primary-capture-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let shm = Shm::create(&dir.join("t.shm"), shm_layout::TableSizes::SMALL, |l, _| {
                l.header.n_ports = 2;
                for (i, p) in l.ports.iter_mut().take(2).enumerate() {
                    p.port_id = 4 + i as u16;
                    p.rx_queues = 2;
                    p.tx_queues = 3;
                }
            })
            .unwrap();
            Rig(dir, Arc::new(shm))
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn port_id(name: &str) -> Option<u16> {
        match name {
            "net_tap_a" => Some(4),
            "net_tap_b" => Some(5),
            "net_other" => Some(9),
            _ => None,
        }
    }

    fn req(enable: bool, device: &str, queue: Option<u16>, pid: u32) -> CaptureRequest {
        CaptureRequest {
            enable,
            rx: true,
            tx: true,
            device: device.into(),
            queue,
            target: CaptureTarget { ring: 0x10, mempool: 0x20, filter: 0, snaplen: 2176, pcapng: true },
            requester_pid: Some(pid),
        }
    }

    #[test]
    fn a_capture_is_recorded_refused_twice_and_stopped() {
        let rig = Rig::new("decide");
        let l = rig.1.layout();
        let me = std::process::id();
        answer(decide(&rig.1, &req(true, "net_tap_b", None, me), port_id)).unwrap();
        let c = l.captures.get(1, Direction::Rx).unwrap();
        assert_eq!((c.ring, c.mempool, c.queue, c.requester_pid), (0x10, 0x20, ALL_QUEUES, me));
        assert_eq!(l.captures.get(1, Direction::Tx), Some(c));
        assert_eq!(l.captures.get(0, Direction::Rx), None);
        // The same port again, a device the instance does not have, a queue it does not have.
        let seq = l.captures.seq();
        assert_eq!(answer(decide(&rig.1, &req(true, "net_tap_b", None, me), port_id)), Err(EEXIST));
        assert_eq!(answer(decide(&rig.1, &req(true, "net_other", None, me), port_id)), Err(ENODEV));
        assert_eq!(answer(decide(&rig.1, &req(true, "nope", None, me), port_id)), Err(ENODEV));
        assert_eq!(
            answer(decide(&rig.1, &req(true, "net_tap_a", Some(2), me), port_id)),
            Err(EINVAL),
            "rx has 2 queues"
        );
        assert_eq!(answer(decide(&rig.1, &req(false, "net_tap_a", None, me), port_id)), Err(EINVAL), "nothing to stop");
        assert_eq!(l.captures.seq(), seq, "refusals change nothing");
        // Stopped, and its owner being alive, nothing is an orphan.
        assert_eq!(end_orphans(l), 0);
        answer(decide(&rig.1, &req(false, "net_tap_b", None, me), port_id)).unwrap();
        assert!(l.captures.read().unwrap().1.iter().flatten().all(Option::is_none));
    }

    #[test]
    fn the_capture_of_a_dead_tool_ends() {
        let rig = Rig::new("orphan");
        let l = rig.1.layout();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        answer(decide(&rig.1, &req(true, "net_tap_a", Some(1), dead), port_id)).unwrap();
        assert!(l.captures.get(0, Direction::Tx).is_some());
        assert_eq!(end_orphans(l), 2);
        assert!(l.captures.get(0, Direction::Rx).is_none() && l.captures.get(0, Direction::Tx).is_none());
    }
}
