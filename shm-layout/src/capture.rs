//! Packet captures that stock `dpdk-dumpcap` or `dpdk-pdump` asked the primary for, which the
//! workers polling each port serve (DPDK 22.11's pdump would add its callbacks in the primary
//! only; `dpdk-sys/csrc/shim.h` tells why and how).
//!
//! The primary is the only writer (its IPC thread takes the requests, its control loop ends
//! the captures of tools that died; a lock in the primary orders them) under a sequence lock:
//! `seq` is odd while a spec changes. A worker looks at `seq` once a millisecond and, when it
//! moved, reads every spec of the ports it polls and adds or removes its callbacks.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::{MAX_PORTS, MAX_WORKERS};

/// Every queue of a port (`RTE_PDUMP_ALL_QUEUES`).
pub const ALL_QUEUES: u32 = u16::MAX as u32;

/// One direction of one port: where the copies go, or `ring == 0` for no capture.
#[repr(C)]
#[derive(Debug, Default)]
pub struct CaptureSpec {
    /// The tool's `struct rte_ring *` (hugepage memory: the same address in every process).
    pub ring: AtomicU64,
    /// The tool's `struct rte_mempool *` the copies are taken from.
    pub mempool: AtomicU64,
    /// The tool's `const struct rte_bpf_prm *` (its filter), or 0.
    pub filter: AtomicU64,
    /// Bytes of each packet copied.
    pub snaplen: AtomicU32,
    /// The queue captured, or [`ALL_QUEUES`].
    pub queue: AtomicU32,
    /// 1: pcapng-wrapped copies (`dpdk-dumpcap`), 0: plain copies (`dpdk-pdump`).
    pub pcapng: AtomicU32,
    /// The tool's process id (0 unknown): its capture ends when it dies.
    pub requester_pid: AtomicU32,
    /// When the capture started (CLOCK_MONOTONIC ns).
    pub since_ns: AtomicU64,
}

/// What a [`CaptureSpec`] holds, as plain values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    pub ring: u64,
    pub mempool: u64,
    pub filter: u64,
    pub snaplen: u32,
    pub queue: u32,
    pub pcapng: bool,
    pub requester_pid: u32,
    pub since_ns: u64,
}

impl Capture {
    /// Whether it captures rx or tx queue `queue`.
    pub fn covers(&self, queue: u16) -> bool {
        self.queue == ALL_QUEUES || self.queue == u32::from(queue)
    }
}

impl CaptureSpec {
    fn load(&self) -> Option<Capture> {
        let ring = self.ring.load(Ordering::Relaxed);
        (ring != 0).then(|| Capture {
            ring,
            mempool: self.mempool.load(Ordering::Relaxed),
            filter: self.filter.load(Ordering::Relaxed),
            snaplen: self.snaplen.load(Ordering::Relaxed),
            queue: self.queue.load(Ordering::Relaxed),
            pcapng: self.pcapng.load(Ordering::Relaxed) != 0,
            requester_pid: self.requester_pid.load(Ordering::Relaxed),
            since_ns: self.since_ns.load(Ordering::Relaxed),
        })
    }

    fn store(&self, c: Option<&Capture>) {
        let c = c.copied().unwrap_or_default();
        self.mempool.store(c.mempool, Ordering::Relaxed);
        self.filter.store(c.filter, Ordering::Relaxed);
        self.snaplen.store(c.snaplen, Ordering::Relaxed);
        self.queue.store(c.queue, Ordering::Relaxed);
        self.pcapng.store(u32::from(c.pcapng), Ordering::Relaxed);
        self.requester_pid.store(c.requester_pid, Ordering::Relaxed);
        self.since_ns.store(c.since_ns, Ordering::Relaxed);
        self.ring.store(c.ring, Ordering::Relaxed);
    }
}

/// The receive and the transmit capture of one port slot.
#[repr(C)]
#[derive(Debug, Default)]
pub struct PortCapture {
    pub rx: CaptureSpec,
    pub tx: CaptureSpec,
}

/// A direction of a port's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Rx,
    Tx,
}

/// The sequence number a worker slot's polling process applied, on a cache line of its own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct CaptureAck {
    pub seq: AtomicU64,
    _pad: [u64; 7],
}

/// Every port's captures and their sequence lock.
#[repr(C, align(64))]
pub struct Captures {
    /// Even when stable, odd while the primary changes a spec; moves with every change.
    pub seq: AtomicU64,
    _pad: [u64; 7],
    /// By port slot.
    pub ports: [PortCapture; MAX_PORTS],
    /// By worker slot (single writer: the slot's polling process): what it applied. The
    /// primary tells a tool its capture stopped once every polling worker applied the stop,
    /// since the tool then frees the ring and pool the callbacks copied into.
    pub acked: [CaptureAck; MAX_WORKERS],
}

/// Every port's captures as one reader saw them, by port slot and direction.
pub type CaptureView = [[Option<Capture>; 2]; MAX_PORTS];

impl Captures {
    /// The sequence number a consistent read saw, and what it read; `None` while the primary
    /// is changing a spec (try again later).
    pub fn read(&self) -> Option<(u64, CaptureView)> {
        let seq = self.seq.load(Ordering::Acquire);
        if !seq.is_multiple_of(2) {
            return None;
        }
        let mut view: CaptureView = [[None; 2]; MAX_PORTS];
        for (v, p) in view.iter_mut().zip(&self.ports) {
            *v = [p.rx.load(), p.tx.load()];
        }
        std::sync::atomic::fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some((seq, view))
    }

    /// The sequence number now (a reader compares it with the one it last read).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Sets (or with `None` clears) the capture of `port`'s `dir`. The caller is the only
    /// writer (the primary serializes its writers).
    pub fn set(&self, port: usize, dir: Direction, c: Option<&Capture>) {
        let Some(p) = self.ports.get(port) else { return };
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq | 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        match dir {
            Direction::Rx => p.rx.store(c),
            Direction::Tx => p.tx.store(c),
        }
        self.seq.store((seq | 1) + 1, Ordering::Release);
    }

    /// Worker slot `slot`'s polling process applied everything up to `seq`.
    pub fn ack(&self, slot: usize, seq: u64) {
        if let Some(a) = self.acked.get(slot) {
            if a.seq.load(Ordering::Relaxed) != seq {
                a.seq.store(seq, Ordering::Release);
            }
        }
    }

    /// What worker slot `slot`'s polling process applied last.
    pub fn acked(&self, slot: usize) -> u64 {
        self.acked.get(slot).map_or(0, |a| a.seq.load(Ordering::Acquire))
    }

    /// The capture of `port`'s `dir` (for the writer, which needs no lock).
    pub fn get(&self, port: usize, dir: Direction) -> Option<Capture> {
        let p = self.ports.get(port)?;
        match dir {
            Direction::Rx => p.rx.load(),
            Direction::Tx => p.tx.load(),
        }
    }
}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<CaptureSpec>() == 48);
    assert!(size_of::<PortCapture>() == 96);
    assert!(size_of::<CaptureAck>() == 64);
    assert!(size_of::<Captures>() == 64 + MAX_PORTS * 96 + MAX_WORKERS * 64);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed() -> Box<Captures> {
        Box::new(Captures {
            seq: AtomicU64::new(0),
            _pad: [0; 7],
            ports: std::array::from_fn(|_| PortCapture::default()),
            acked: std::array::from_fn(|_| CaptureAck::default()),
        })
    }

    #[test]
    fn a_capture_set_and_cleared_is_read_back_and_moves_the_sequence() {
        let c = zeroed();
        let (s0, v) = c.read().unwrap();
        assert!(v.iter().flatten().all(Option::is_none));
        let cap = Capture {
            ring: 0x1000,
            mempool: 0x2000,
            snaplen: 96,
            queue: ALL_QUEUES,
            pcapng: true,
            requester_pid: 7,
            ..Default::default()
        };
        c.set(3, Direction::Tx, Some(&cap));
        let (s1, v) = c.read().unwrap();
        assert!(s1 > s0 && s1 % 2 == 0);
        assert_eq!(v[3], [None, Some(cap)]);
        assert!(cap.covers(5) && !Capture { queue: 1, ..cap }.covers(5));
        assert_eq!(c.get(3, Direction::Tx), Some(cap));
        c.set(3, Direction::Tx, None);
        let (s2, v) = c.read().unwrap();
        assert!(s2 > s1 && v[3] == [None, None]);
        c.ack(2, s2);
        assert_eq!((c.acked(2), c.acked(1), c.acked(MAX_WORKERS)), (s2, 0, 0));
        // Out of range: nothing changes.
        c.set(MAX_PORTS, Direction::Rx, Some(&cap));
        assert_eq!(c.read().unwrap().0, s2);
    }

    #[test]
    fn a_read_during_a_change_is_refused() {
        let c = zeroed();
        c.seq.store(5, Ordering::Relaxed);
        assert!(c.read().is_none());
    }
}
