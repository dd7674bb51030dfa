//! The packet captures this process serves on the queues it polls: what `dpdk-dumpcap` or
//! `dpdk-pdump` asked the primary for ([`shm_layout::capture`]), followed once a millisecond
//! (one load of the sequence number while nothing changes) by adding or removing DPDK rx/tx
//! callbacks that copy each burst into the tool's ring ([`dpdk::QueueCapture`]). A successor
//! follows them before it polls, so a capture survives handovers and restarts.

use dpdk::{CaptureTarget, QueueCapture, QueueSide, RxQueue, TxQueue};
use shm_layout::capture::{Capture, Captures};

/// This process's capturing queues.
pub struct Taps<'a> {
    captures: &'a Captures,
    /// Its worker slot (whose acknowledgement it writes while it polls).
    slot: usize,
    /// The sequence number last applied.
    seen: Option<u64>,
    /// By rx queue index: the capture's start time (which tells a capture from a later one to
    /// the same addresses) and its callback.
    rx: Vec<Option<(u64, QueueCapture)>>,
    /// By port slot (its tx queue there).
    tx: Vec<Option<(u64, QueueCapture)>>,
}

/// Reads of a spec being changed tried before giving up for this millisecond (the primary
/// writes a few words between the odd and the even sequence number).
const READ_TRIES: u32 = 1000;

impl<'a> Taps<'a> {
    /// No capture yet, for `rx_queues` rx queues and `ports` tx queues (one per port slot).
    pub fn new(captures: &'a Captures, slot: usize, rx_queues: usize, ports: usize) -> Taps<'a> {
        Taps {
            captures,
            slot,
            seen: None,
            rx: (0..rx_queues).map(|_| None).collect(),
            tx: (0..ports).map(|_| None).collect(),
        }
    }

    /// Applies the captures if they changed: `rxs` and `txs` (by port slot) are the process's
    /// queues, `slot_of` the port slot of a DPDK port id. On the polling thread only (or while
    /// nothing polls). `polling`: the process polls the slot's queues, and acknowledges.
    pub fn follow(&mut self, rxs: &[RxQueue], txs: &[TxQueue], slot_of: impl Fn(u16) -> Option<u16>, polling: bool) {
        // Orders this process's claim of the slot (its Running state) before the load below,
        // against the primary's store of a new sequence before it looks for Running workers.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        let now = self.captures.seq();
        if self.seen != Some(now) {
            self.apply(rxs, txs, slot_of);
        }
        if polling {
            if let Some(seen) = self.seen {
                self.captures.ack(self.slot, seen);
            }
        }
    }

    fn apply(&mut self, rxs: &[RxQueue], txs: &[TxQueue], slot_of: impl Fn(u16) -> Option<u16>) {
        let read = (0..READ_TRIES).find_map(|_| {
            let r = self.captures.read();
            if r.is_none() {
                std::hint::spin_loop();
            }
            r
        });
        let Some((seq, view)) = read else {
            // Still being changed (its writer was descheduled): copy nothing rather than into
            // a ring its tool may have freed; the next millisecond tries again.
            self.rx.iter_mut().chain(self.tx.iter_mut()).for_each(|t| *t = None);
            self.seen = None;
            return;
        };
        for (have, q) in self.rx.iter_mut().zip(rxs) {
            let want = slot_of(q.port()).and_then(|s| view.get(usize::from(s))).and_then(|d| d[0]);
            sync(have, want.filter(|c| c.covers(q.queue())), q.port(), q.queue(), QueueSide::Rx);
        }
        for (slot, (have, q)) in self.tx.iter_mut().zip(txs).enumerate() {
            let want = view.get(slot).and_then(|d| d[1]);
            sync(have, want.filter(|c| c.covers(q.queue())), q.port(), q.queue(), QueueSide::Tx);
        }
        self.seen = Some(seq);
    }
}

fn target(c: &Capture) -> CaptureTarget {
    CaptureTarget { ring: c.ring, mempool: c.mempool, filter: c.filter, snaplen: c.snaplen, pcapng: c.pcapng }
}

/// Makes `have` copy to `want` (or stop).
fn sync(have: &mut Option<(u64, QueueCapture)>, want: Option<Capture>, port: u16, queue: u16, side: QueueSide) {
    let want = want.map(|c| (c.since_ns, target(&c)));
    if have.as_ref().map(|(since, q)| (*since, q.target())) == want {
        return;
    }
    if have.take().is_some() {
        tracing::info!(port, queue, ?side, "capture stopped on the queue");
    }
    let Some((since, t)) = want else { return };
    match QueueCapture::start(port, queue, side, t) {
        Ok(c) => {
            tracing::info!(port, queue, ?side, "capturing the queue");
            *have = Some((since, c));
        }
        Err(e) => tracing::warn!(port, queue, ?side, "cannot capture the queue: {e}"),
    }
}
