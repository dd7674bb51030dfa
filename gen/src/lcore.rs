//! One lcore of the generator, in the role `roles::assign` gave it: it sends its share of the
//! flows on the tx queues it owns of the sending port, receives on the rx queues it polls,
//! answers TCP segments, and (a sender beside receiving lcores, in TCP modes) moves the
//! answers receivers handed over for its queues onto them.
//!
//! Invariants: an lcore transmits only on the tx queues its `roles::Part` gives it and polls
//! only its rx queues (memif queues have one producer and one consumer), so lcores share no
//! queue; they share the stop flag, the counts of lcores still sending and still receiving,
//! and the hand-over rings (many receivers put in, the one sender owning the queue takes out).
//! An lcore that receives keeps receiving until every lcore has stopped sending, then for
//! `--drain-ms`, so what comes back late to any queue is still counted; a sender with
//! hand-over rings keeps moving answers until every receiving lcore has stopped, then empties
//! its rings once more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dpdk::{Burst, Mbuf, Mempool, Ring, RxQueue, TxQueue, BURST_SIZE};
use wire::EthernetAddress;

use crate::packet::{self, Segment, ANSWER_MAX, TCP_STAMP_AT};
use crate::report::{Counts, Latency, LcoreReport, Stalls};
use crate::roles::Role;
use crate::steer::{Share, Steer, Tuple};
use crate::{Args, TcpMode};

/// Bursts a sender moves from each of its hand-over rings per poll, at most: enough to keep
/// up with the five answers per connection of `--tcp request` on one port (all of them go out
/// of the sending port) when it sends a burst of 32 each poll, few enough to keep its pacing
/// (which catches up with the bursts it fell behind anyway).
const FORWARD_BURSTS: usize = 8;

/// Bursts a lcore that sends and receives takes from its rx queues before each burst it sends,
/// at most: it drains them (stops at the first poll that is not a full burst) so that what
/// comes back never waits behind its sending, which after a pause of its own catches up.
const RECEIVE_BURSTS: usize = 64;

/// Bursts a sender may fall behind its schedule and still catch up with (sending them back
/// to back): 1024 packets, a quarter of the 4096-slot rings the benches use. A sender
/// descheduled for longer (on a CPU it shares) restarts its schedule from then instead of
/// sending the whole backlog at once, which would fill its tx ring and then, at its next
/// pause, its rx ring with answers it has no time to take: losses of the generator's own, not
/// of the balancer. Counted (`stalls`, `stalled_us`): the offered rate was that much lower.
const MAX_BEHIND_BURSTS: u64 = 32;

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
    /// Set by SIGINT or SIGTERM: stop sending.
    pub stop: &'a AtomicBool,
    /// Lcores that have not finished sending.
    pub sending: &'a AtomicUsize,
    /// Lcores that receive and have not finished receiving.
    pub receiving: &'a AtomicUsize,
    /// When sending started, for every lcore.
    pub started: Instant,
}

/// One lcore's share of the traffic and its queues.
pub struct Lcore {
    /// What it sends (`None`: a receiving lcore).
    pub share: Option<Share>,
    /// Its queues.
    pub queues: Queues,
}

/// The queues of one lcore, as its `roles::Part` gives them: queues `index`, `index + of`,
/// `index + 2 * of`, ... of each port, some of them.
pub struct Queues {
    /// What the lcore does.
    pub role: Role,
    /// Its index `i` among the lcores of its kind.
    pub index: u16,
    /// Lcores of its kind (its queues are those `q` with `q % of == index`).
    pub of: u16,
    /// Its rx queues: port index (0: the sending port, 1: the receiving one), queue, handle.
    pub rx: Vec<(usize, u16, RxQueue)>,
    /// Its tx queues, by port index, then queue `q` at `q / of`; none on a port whose answers
    /// it hands over.
    pub tx: Vec<Vec<TxQueue>>,
    /// A receiving lcore in a TCP mode: every queue's hand-over ring (queue `q` at `q`), for
    /// its answers out of a port where it owns no tx queue.
    pub handover: Vec<Ring>,
    /// A sending lcore beside receiving ones, in a TCP mode: the hand-over rings of its own
    /// queues of the sending port, beside `tx[0]`.
    pub handed: Vec<Ring>,
}

/// The bursts an lcore receives into and answers from.
struct Io {
    /// What a poll received; what a sender took from a hand-over ring.
    inb: Burst,
    /// Answers, beside `Queues::tx`.
    answers: Vec<Vec<Burst>>,
    /// Answers to hand over, beside `Queues::handover`.
    handover: Vec<Burst>,
    buf: [u8; ANSWER_MAX],
}

impl Lcore {
    /// Sends its share (until done or stopped), if it has one. Then, if it receives, receives
    /// until every lcore has stopped sending and for `--drain-ms` more; if it is a sender with
    /// hand-over rings, moves answers until every receiving lcore has stopped. What it counted.
    pub fn run(self, ctx: &Ctx<'_>) -> LcoreReport {
        let Lcore { share, mut queues } = self;
        let role = queues.role;
        let mut counts = Counts::default();
        let mut latency = Latency::new(dpdk::tsc_hz());
        let mut io = Io {
            inb: Burst::new(),
            answers: queues.tx.iter().map(|t| t.iter().map(|_| Burst::new()).collect()).collect(),
            handover: queues.handover.iter().map(|_| Burst::new()).collect(),
            buf: [0; ANSWER_MAX],
        };
        // Counts this lcore out of the receivers and the senders even if it panics, so the
        // others do not wait for it forever.
        let receiving = (role != Role::Send).then(|| Running(ctx.receiving));
        let (mut sent, mut sending, mut stalls) = (0, Duration::ZERO, Stalls::default());
        if let Some(share) = &share {
            let done = Running(ctx.sending);
            (sent, stalls) = send(share, &mut queues, ctx, &mut io, (&mut counts, &mut latency));
            sending = ctx.started.elapsed();
            drop(done);
        }
        if role == Role::Send {
            if !queues.handed.is_empty() {
                while ctx.receiving.load(Ordering::Acquire) > 0 {
                    queues.forward(&mut io, &mut counts);
                }
                // What the last receivers handed over before they stopped: no one adds to the
                // rings any more.
                while queues.forward(&mut io, &mut counts) > 0 {}
            }
        } else {
            while ctx.sending.load(Ordering::Acquire) > 0 {
                queues.receive(ctx, &mut io, (&mut counts, &mut latency));
            }
            let drain_until = Instant::now() + Duration::from_millis(ctx.args.drain_ms);
            while Instant::now() < drain_until {
                queues.receive(ctx, &mut io, (&mut counts, &mut latency));
            }
        }
        drop(receiving);
        let flows = share.map_or(0, |s| s.flows.len());
        LcoreReport { role, flows, sent, counts, latency, sending, stalls }
    }
}

/// One lcore among those still sending (or receiving), until dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // Release: what it did before (the answers it handed over) is seen by whoever sees the
        // decrement.
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Offers `share`'s packets at its rate on `queues` of the sending port, receiving (draining
/// its rx queues, up to [`RECEIVE_BURSTS`]) or moving handed-over answers in between; how many
/// the queues took, and how often and for how long it fell more than [`MAX_BEHIND_BURSTS`]
/// behind its schedule.
fn send(
    share: &Share,
    queues: &mut Queues,
    ctx: &Ctx<'_>,
    io: &mut Io,
    (c, latency): (&mut Counts, &mut Latency),
) -> (u64, Stalls) {
    let args = ctx.args;
    let of = queues.of;
    let mut stalls = Stalls::default();
    if share.flows.is_empty() {
        return (0, stalls);
    }
    // One burst a queue it owns on the sending port.
    let mut out: Vec<Burst> = queues.tx[0].iter().map(|_| Burst::new()).collect();
    let mut template = vec![0u8; usize::from(args.size).max(TCP_STAMP_AT + 8)];
    let per_burst = dpdk::tsc_hz().saturating_mul(32).checked_div(share.rate).unwrap_or(0);
    let max_behind = per_burst.saturating_mul(MAX_BEHIND_BURSTS);
    let mut next = dpdk::rdtsc();
    let (mut sent, mut queued) = (0u64, 0u64);
    while !ctx.stop.load(Ordering::Relaxed) && share.limit.is_none_or(|l| sent < l) {
        // One of the two does nothing: a sender polls no rx queue, an lcore doing both has no
        // hand-over ring.
        for _ in 0..RECEIVE_BURSTS {
            if queues.receive(ctx, io, (&mut *c, &mut *latency)) < BURST_SIZE {
                break;
            }
        }
        queues.forward(io, c);
        let now = if per_burst == 0 { next } else { dpdk::rdtsc() };
        if out.iter().all(Burst::is_empty) && now >= next {
            let behind = now - next;
            if behind > max_behind {
                stalls.count += 1;
                stalls.cycles += behind - max_behind;
                next = now - max_behind;
            }
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
                let _ = out[usize::from(q / of)].push(m);
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
    (sent, stalls)
}

impl Queues {
    /// Polls each of its rx queues once, counting; in TCP mode answers what
    /// `packet::answer_tcp` answers (as the client or as the real server) out of the port it
    /// came in on. On a port where it owns tx queues: under `--steer rss` on the queue of the
    /// answer's own tuple if it owns that queue, else (counted) on the queue it came in on;
    /// under `modulo` on the queue it came in on. On a port where it owns none (a receiving
    /// lcore, on the sending port): through the hand-over ring of that same choice of queue,
    /// the answer's own under `rss`, the one it came in on under `modulo`, to the sender that
    /// owns it. Answers that a full tx queue or ring does not take are lost, as on a wire
    /// (counted).
    /// How many frames the polls returned.
    fn receive(&mut self, ctx: &Ctx<'_>, io: &mut Io, (c, latency): (&mut Counts, &mut Latency)) -> usize {
        let (index, of) = (self.index, self.of);
        let mut got = 0;
        for (port, queue, q) in self.rx.iter_mut() {
            let n = q.rx(&mut io.inb);
            if n == 0 {
                continue;
            }
            got += n;
            let now = dpdk::rdtsc();
            let mut answered = false;
            for i in 0..io.inb.len() {
                let f = io.inb.data(i);
                let Some(mode) = ctx.args.tcp else {
                    if let Some(stamp) = packet::udp_payload(f) {
                        c.received += 1;
                        latency.record(f, stamp, now);
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
                let steered = Tuple::of_frame(answer).and_then(|t| ctx.steer.answer_queue(t));
                let (bursts, at) = if self.tx[*port].is_empty() {
                    (&mut io.handover, steered.unwrap_or(*queue))
                } else {
                    let out_queue = match steered {
                        None => *queue,
                        Some(aq) if aq % of == index => aq,
                        Some(_) => {
                            c.answers_off_queue += 1;
                            *queue
                        }
                    };
                    (&mut io.answers[*port], out_queue / of)
                };
                // At most one answer per packet received: the bursts, emptied below after
                // every receive, have room.
                let pushed = match (Mbuf::from_bytes(ctx.pool, answer), bursts.get_mut(usize::from(at))) {
                    (Ok(m), Some(b)) => b.push(m).is_ok(),
                    _ => false,
                };
                if pushed {
                    answered = true;
                } else {
                    c.answers_unsent += 1;
                }
            }
            io.inb.clear();
            if answered {
                for (k, burst) in io.answers[*port].iter_mut().enumerate() {
                    if !burst.is_empty() {
                        self.tx[*port][k].tx(burst);
                        c.answers_unsent += burst.len() as u64;
                        burst.clear();
                    }
                }
                for (ring, burst) in self.handover.iter().zip(&mut io.handover) {
                    if !burst.is_empty() {
                        ring.enqueue(burst);
                        c.answers_unsent += burst.len() as u64;
                        burst.clear();
                    }
                }
            }
        }
        got
    }

    /// Moves the answers receivers handed over for its queues of the sending port onto them,
    /// up to [`FORWARD_BURSTS`] bursts a queue; how many it took from the rings. What a tx
    /// queue does not take is lost, as on a wire (counted).
    fn forward(&mut self, io: &mut Io, c: &mut Counts) -> usize {
        let mut taken = 0;
        for (ring, tx) in self.handed.iter().zip(&mut self.tx[0]) {
            for _ in 0..FORWARD_BURSTS {
                let n = ring.dequeue(&mut io.inb);
                if n == 0 {
                    break;
                }
                taken += n;
                tx.tx(&mut io.inb);
                c.answers_unsent += io.inb.len() as u64;
                io.inb.clear();
            }
        }
        taken
    }
}
