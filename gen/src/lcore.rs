//! One forwarding lcore of the generator: it sends its share of the flows on the queues it
//! owns, receives on the queues it owns on both ports, and answers TCP segments.
//!
//! Invariants: lcore `i` of `L` uses only queues `q` with `q % L == i`, rx and tx, on both
//! ports (memif queues have one producer and one consumer), so lcores share no queue and no
//! mutable state; they share only the stop flag and the count of lcores still sending. An
//! lcore keeps receiving until every lcore has stopped sending, then for `--drain-ms`, so what
//! comes back late to any queue is still counted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use wire::EthernetAddress;

use crate::packet::{self, Segment, ANSWER_MAX, TCP_STAMP_AT, UDP_STAMP_AT};
use crate::report::{Counts, Latency, LcoreReport};
use crate::steer::{Share, Steer, Tuple};
use crate::{Args, TcpMode};

/// What every lcore reads.
pub struct Ctx<'a> {
    /// The command line.
    pub args: &'a Args,
    /// How queues are chosen.
    pub steer: &'a Steer,
    /// Where packets come from.
    pub pool: &'a Mempool,
    /// The sending port's MAC address.
    pub src_mac: EthernetAddress,
    /// Number of lcores.
    pub lcores: u16,
    /// Set by SIGINT or SIGTERM: stop sending.
    pub stop: &'a AtomicBool,
    /// Lcores that have not finished sending.
    pub sending: &'a AtomicUsize,
    /// When sending started, for every lcore.
    pub started: Instant,
}

/// One lcore's share of the traffic and its queues.
pub struct Lcore {
    /// What it sends.
    pub share: Share,
    /// Its queues.
    pub queues: Queues,
}

/// The queues of lcore `index`: queues `index`, `index + L`, `index + 2L`, ... of each port.
pub struct Queues {
    /// The lcore's index `i` (its EAL lcore id).
    pub index: u16,
    /// Its rx queues: port index (0: the sending port, 1: the receiving one), queue, handle.
    pub rx: Vec<(usize, u16, RxQueue)>,
    /// Its tx queues, by port index, then queue `q` at `q / L`.
    pub tx: Vec<Vec<TxQueue>>,
}

/// The bursts an lcore receives into and answers from.
struct Io {
    inb: Burst,
    /// Answers, by port index, then queue `q` at `q / L`.
    answers: Vec<Vec<Burst>>,
    buf: [u8; ANSWER_MAX],
}

impl Lcore {
    /// Sends its share (until done or stopped), then receives until every lcore has stopped
    /// sending and for `--drain-ms` more; what it counted.
    pub fn run(self, ctx: &Ctx<'_>) -> LcoreReport {
        let Lcore { share, mut queues } = self;
        let mut counts = Counts::default();
        let mut latency = Latency::new(dpdk::tsc_hz());
        let mut io = Io {
            inb: Burst::new(),
            answers: queues.tx.iter().map(|t| t.iter().map(|_| Burst::new()).collect()).collect(),
            buf: [0; ANSWER_MAX],
        };
        // Counts this lcore out of the senders even if sending panics, so the others do not
        // wait for it forever.
        let done = Sending(ctx.sending);
        let sent = send(&share, &mut queues, ctx, &mut io, (&mut counts, &mut latency));
        let sending = ctx.started.elapsed();
        drop(done);
        while ctx.sending.load(Ordering::Acquire) > 0 {
            queues.receive(ctx, &mut io, (&mut counts, &mut latency));
        }
        let drain_until = Instant::now() + Duration::from_millis(ctx.args.drain_ms);
        while Instant::now() < drain_until {
            queues.receive(ctx, &mut io, (&mut counts, &mut latency));
        }
        LcoreReport { flows: share.flows.len(), sent, counts, latency, sending }
    }
}

/// One lcore among those still sending, until dropped.
struct Sending<'a>(&'a AtomicUsize);

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Offers `share`'s packets at its rate on `queues` of the sending port, receiving in between;
/// how many the queues took.
fn send(
    share: &Share,
    queues: &mut Queues,
    ctx: &Ctx<'_>,
    io: &mut Io,
    (c, latency): (&mut Counts, &mut Latency),
) -> u64 {
    let args = ctx.args;
    let lcores = ctx.lcores;
    if share.flows.is_empty() {
        return 0;
    }
    // One burst a queue it owns on the sending port.
    let mut out: Vec<Burst> = queues.tx[0].iter().map(|_| Burst::new()).collect();
    let mut template = vec![0u8; usize::from(args.size).max(TCP_STAMP_AT + 8)];
    let per_burst = dpdk::tsc_hz().saturating_mul(32).checked_div(share.rate).unwrap_or(0);
    let mut next = dpdk::rdtsc();
    let (mut sent, mut queued) = (0u64, 0u64);
    while !ctx.stop.load(Ordering::Relaxed) && share.limit.is_none_or(|l| sent < l) {
        queues.receive(ctx, io, (&mut *c, &mut *latency));
        if out.iter().all(Burst::is_empty) && (per_burst == 0 || dpdk::rdtsc() >= next) {
            let want = share.limit.map_or(32, |l| (l - queued).min(32));
            for _ in 0..want {
                let flow = share.flows.flow(queued);
                let size = match args.tcp {
                    Some(mode) => packet::tcp_frame(args, mode, ctx.src_mac, flow, &mut template),
                    None => {
                        packet::frame(args, ctx.src_mac, flow, &mut template[..usize::from(args.size)]);
                        usize::from(args.size)
                    }
                };
                let Ok(m) = Mbuf::from_bytes(ctx.pool, &template[..size]) else { break };
                // One of its own queues: the split gave it the flows of its queues.
                let q = ctx.steer.flow_queue(flow, Tuple::of_flow(args.src, args.dst, flow));
                // At most 32 packets in all: every queue's burst has room.
                let _ = out[usize::from(q / lcores)].push(m);
                queued += 1;
            }
            next = next.wrapping_add(per_burst);
        }
        for (k, burst) in out.iter_mut().enumerate() {
            if !burst.is_empty() {
                sent += queues.tx[0][k].tx(burst) as u64;
            }
        }
    }
    // Whatever was not taken is not sent (the bursts free it).
    sent
}

impl Queues {
    /// Polls each of its rx queues once, counting; in TCP mode answers what
    /// `packet::answer_tcp` answers (as the client or as the real server) out of the port it
    /// came in on: under `--steer rss` on the queue of the answer's own tuple if this lcore
    /// owns it, else (counted) on the queue it came in on; under `modulo` on the queue it came
    /// in on.
    fn receive(&mut self, ctx: &Ctx<'_>, io: &mut Io, (c, latency): (&mut Counts, &mut Latency)) {
        let lcores = ctx.lcores;
        for (port, queue, q) in self.rx.iter_mut() {
            if q.rx(&mut io.inb) == 0 {
                continue;
            }
            let now = dpdk::rdtsc();
            let mut answered = false;
            for i in 0..io.inb.len() {
                let f = io.inb.data(i);
                let Some(mode) = ctx.args.tcp else {
                    if packet::is_udp(f) {
                        c.received += 1;
                        latency.record(f, UDP_STAMP_AT, now);
                    } else {
                        c.other += 1;
                    }
                    continue;
                };
                let (what, answer) = packet::answer_tcp(f, mode, &mut io.buf);
                match what {
                    Segment::Syn => c.responded += 1,
                    Segment::SynAck => {
                        c.established += 1;
                        if mode != TcpMode::Request {
                            c.received += 1;
                        }
                    }
                    Segment::Data if mode == TcpMode::Data => {
                        c.received += 1;
                        latency.record(f, TCP_STAMP_AT, now);
                    }
                    Segment::LastAck => c.received += 1,
                    Segment::Data | Segment::Response | Segment::ClientFin => {}
                    Segment::Other => c.other += 1,
                }
                let Some(n) = answer else { continue };
                let answer = &io.buf[..n];
                let out_queue = match Tuple::of_frame(answer).and_then(|t| ctx.steer.answer_queue(t)) {
                    None => *queue,
                    Some(aq) if aq % lcores == self.index => aq,
                    Some(_) => {
                        c.answers_off_queue += 1;
                        *queue
                    }
                };
                if let Ok(m) = Mbuf::from_bytes(ctx.pool, answer) {
                    // At most one answer per packet received: the bursts, emptied below after
                    // every receive, have room.
                    let _ = io.answers[*port][usize::from(out_queue / lcores)].push(m);
                    answered = true;
                }
            }
            io.inb.clear();
            if answered {
                for (k, burst) in io.answers[*port].iter_mut().enumerate() {
                    if !burst.is_empty() {
                        self.tx[*port][k].tx(burst);
                        // What the ring did not take is lost, as on a wire.
                        burst.clear();
                    }
                }
            }
        }
    }
}
