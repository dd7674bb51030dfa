//! The seam under the poll loop: what it receives from, sends through and hands packets
//! around on. The worker runs it over DPDK queues and rings (`crate::run`); tests run the same
//! loop ([`crate::lcore`]) over the in-memory double [`mem`].

use crate::frame::Frame;

/// A burst of packets the loop holds (at most [`dpdk::BURST_SIZE`]).
pub trait Packets: Default {
    /// Packets held.
    fn len(&self) -> usize;

    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of packet `i`.
    ///
    /// # Panics
    /// When `i` is not below [`Packets::len`].
    fn data(&self, i: usize) -> &[u8];

    /// The DPDK port id packet `i` arrived on.
    ///
    /// # Panics
    /// When `i` is not below [`Packets::len`].
    fn port(&self, i: usize) -> u16;

    /// Empties the burst into `outs`: `visit` sees every packet in order, with the DPDK port
    /// id it arrived on, may rewrite (and grow) it, and names the output burst it goes to, or
    /// `None` to free it. Returns how many it freed.
    ///
    /// # Panics
    /// When `visit` names an output burst that is full or out of range.
    fn distribute<V: Visit>(&mut self, outs: &mut [Self], visit: &mut V) -> usize;

    /// Frees every packet held.
    fn clear(&mut self);
}

/// What [`Packets::distribute`] calls for each packet.
pub trait Visit {
    /// Where the packet that arrived on DPDK port id `port_id` goes (an output burst's index),
    /// or `None` to free it.
    fn visit<F: Frame>(&mut self, port_id: u16, frame: &mut F) -> Option<usize>;
}

/// A forwarding lcore's queues and rings.
pub trait PacketIo {
    /// The bursts it moves.
    type Burst: Packets;

    /// This worker's rx queues.
    fn rx_queues(&self) -> usize;

    /// Receives a burst from rx queue `q` (an index below [`PacketIo::rx_queues`]) into
    /// `burst`, which is empty. Returns how many.
    fn rx(&mut self, q: usize, burst: &mut Self::Burst) -> usize;

    /// The port slot of DPDK port id `port_id`, if the instance has one.
    fn port_slot(&self, port_id: u16) -> Option<u16>;

    /// Port slots.
    fn ports(&self) -> usize;

    /// Sends `out` out of port slot `port` on this worker's tx queue; what the queue does not
    /// take stays in `out`. Returns how many it took.
    fn tx(&mut self, port: usize, out: &mut Self::Burst) -> usize;

    /// Sends one frame the worker built (an ARP request) out of port slot `port` in a buffer
    /// of its own pool. Returns whether it went (best effort).
    fn send(&mut self, port: usize, frame: &[u8]) -> bool;

    /// Hands `out` to lcore `lcore` of the group (its index in the group) on their ring; what
    /// the ring does not take stays in `out`. Returns how many it took.
    fn redirect(&mut self, lcore: usize, out: &mut Self::Burst) -> usize;

    /// Rings other lcores hand this one packets on.
    fn redirect_rings(&self) -> usize;

    /// Takes what another lcore handed this one on ring `ring` (below
    /// [`PacketIo::redirect_rings`]) into `burst`, which is empty. Returns how many.
    fn redirected(&mut self, ring: usize, burst: &mut Self::Burst) -> usize;

    /// Refreshes the ports' link state (a memif port in a secondary must see its peer leave,
    /// or it keeps reading the departed peer's rings after the next peer connects).
    fn refresh_links(&mut self);

    /// Follows the packet captures asked for the process's queues
    /// ([`crate::capture::Taps`]), acknowledging them if `polling`; nothing for queues that
    /// cannot be captured.
    fn follow_captures(&mut self, _polling: bool) {}

    /// A cycle counter (the TSC).
    fn cycles(&self) -> u64;

    /// Cycles a millisecond.
    fn cycles_per_ms(&self) -> u64;
}

impl Packets for dpdk::Burst {
    #[inline]
    fn len(&self) -> usize {
        dpdk::Burst::len(self)
    }

    #[inline]
    fn data(&self, i: usize) -> &[u8] {
        dpdk::Burst::data(self, i)
    }

    #[inline]
    fn port(&self, i: usize) -> u16 {
        dpdk::Burst::port(self, i)
    }

    #[inline]
    fn distribute<V: Visit>(&mut self, outs: &mut [Self], visit: &mut V) -> usize {
        self.distribute_packets(outs, |port, p| visit.visit(port, p))
    }

    fn clear(&mut self) {
        dpdk::Burst::clear(self);
    }
}

/// An in-memory [`PacketIo`] for tests: rx queues and redirect rings are queues of frames,
/// what is sent is recorded by port, and the clock moves a millisecond a call.
pub mod mem {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use super::{PacketIo, Packets, Visit};

    /// Frames with the DPDK port id each arrived on.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Frames(pub Vec<(u16, Vec<u8>)>);

    impl Packets for Frames {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn data(&self, i: usize) -> &[u8] {
            &self.0[i].1
        }

        fn port(&self, i: usize) -> u16 {
            self.0[i].0
        }

        fn distribute<V: Visit>(&mut self, outs: &mut [Self], visit: &mut V) -> usize {
            let mut freed = 0;
            for (port, mut frame) in self.0.drain(..) {
                match visit.visit(port, &mut frame) {
                    Some(o) => {
                        assert!(outs[o].0.len() < dpdk::BURST_SIZE, "distribute: no room in the output burst");
                        outs[o].0.push((port, frame));
                    }
                    None => freed += 1,
                }
            }
            freed
        }

        fn clear(&mut self) {
            self.0.clear();
        }
    }

    /// A ring between two lcores, shared by both doubles.
    pub type Ring = Rc<RefCell<VecDeque<(u16, Vec<u8>)>>>;

    /// One lcore's queues.
    #[derive(Debug, Default)]
    pub struct MemIo {
        /// What each rx queue holds: (DPDK port id, frame).
        pub rx: Vec<VecDeque<(u16, Vec<u8>)>>,
        /// DPDK port id of each port slot (port slot i has id `port_ids[i]`).
        pub port_ids: Vec<u16>,
        /// What was sent out of each port slot, in order.
        pub sent: Vec<Vec<Vec<u8>>>,
        /// How many packets each tx call takes at most (`None`: all).
        pub tx_room: Option<usize>,
        /// Rings to each lcore of the group by index (`None` for this one).
        pub to: Vec<Option<Ring>>,
        /// Capacity of each ring.
        pub ring_room: usize,
        /// Rings from the other lcores.
        pub from: Vec<Ring>,
        /// The cycle counter; each [`PacketIo::cycles`] call moves it a millisecond.
        pub clock: std::cell::Cell<u64>,
        /// Link refreshes.
        pub refreshes: usize,
    }

    impl MemIo {
        /// An lcore with `rx_queues` empty rx queues over ports with DPDK ids `port_ids`.
        pub fn new(rx_queues: usize, port_ids: Vec<u16>) -> MemIo {
            let ports = port_ids.len();
            MemIo {
                rx: (0..rx_queues).map(|_| VecDeque::new()).collect(),
                port_ids,
                sent: vec![Vec::new(); ports],
                ring_room: 1024,
                ..MemIo::default()
            }
        }

        /// Lcores `a` and `b` of a group of `lcores`, joined by a ring each way.
        pub fn pair(a: &mut MemIo, b: &mut MemIo, (ia, ib): (usize, usize), lcores: usize) {
            for io in [&mut *a, &mut *b] {
                if io.to.len() < lcores {
                    io.to.resize(lcores, None);
                }
            }
            let ab = Ring::default();
            let ba = Ring::default();
            a.to[ib] = Some(ab.clone());
            b.from.push(ab);
            b.to[ia] = Some(ba.clone());
            a.from.push(ba);
        }
    }

    impl PacketIo for MemIo {
        type Burst = Frames;

        fn rx_queues(&self) -> usize {
            self.rx.len()
        }

        fn rx(&mut self, q: usize, burst: &mut Frames) -> usize {
            let queue = &mut self.rx[q];
            let n = queue.len().min(dpdk::BURST_SIZE);
            burst.0.extend(queue.drain(..n));
            n
        }

        fn port_slot(&self, port_id: u16) -> Option<u16> {
            self.port_ids.iter().position(|&p| p == port_id).map(|i| i as u16)
        }

        fn ports(&self) -> usize {
            self.port_ids.len()
        }

        fn tx(&mut self, port: usize, out: &mut Frames) -> usize {
            let n = self.tx_room.map_or(out.0.len(), |r| r.min(out.0.len()));
            self.sent[port].extend(out.0.drain(..n).map(|(_, f)| f));
            n
        }

        fn send(&mut self, port: usize, frame: &[u8]) -> bool {
            self.sent[port].push(frame.to_vec());
            true
        }

        fn redirect(&mut self, lcore: usize, out: &mut Frames) -> usize {
            let Some(Some(ring)) = self.to.get(lcore) else { return 0 };
            let mut ring = ring.borrow_mut();
            let n = self.ring_room.saturating_sub(ring.len()).min(out.0.len());
            ring.extend(out.0.drain(..n));
            n
        }

        fn redirect_rings(&self) -> usize {
            self.from.len()
        }

        fn redirected(&mut self, ring: usize, burst: &mut Frames) -> usize {
            let mut ring = self.from[ring].borrow_mut();
            let n = ring.len().min(dpdk::BURST_SIZE);
            burst.0.extend(ring.drain(..n));
            n
        }

        fn refresh_links(&mut self) {
            self.refreshes += 1;
        }

        fn cycles(&self) -> u64 {
            let now = self.clock.get() + self.cycles_per_ms();
            self.clock.set(now);
            now
        }

        fn cycles_per_ms(&self) -> u64 {
            1_000_000
        }
    }
}
