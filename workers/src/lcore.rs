//! The forwarding loop of one lcore, over any [`PacketIo`]: bursts from the rx queues and the
//! redirect rings through the pipeline, out of the tx queues or to the owning lcore; once a
//! millisecond the heartbeat, connection expiry, next-hop requests, link refresh and the stop
//! or handover request; between bursts the configuration generation, counter zeroing and
//! learned neighbours ([`Reconfig`]). No allocation, no lock, no log on the packet path: it
//! counts, once a burst.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use shm_layout::config::Generations;
use shm_layout::{monotonic_ns, HandoverGaps, LcoreCounters, QueueCounters, WorkerSlot};

use crate::frame::Frame;
use crate::io::{PacketIo, Packets, Visit};
use crate::outcome::{Action, DropReason, Tally};
use crate::pipeline::Pipeline;

/// Connection entries looked at for expiry a millisecond.
const EXPIRE_BUDGET: usize = 4096;

/// What one lcore counts into, in shared memory (it is their only writer).
#[derive(Clone, Copy)]
pub struct Counts<'a> {
    /// Its counters.
    pub lcore: &'a LcoreCounters,
    /// Its packets per rx queue and per port.
    pub queues: &'a QueueCounters,
    /// For a process taking the slot over: where it records the gap in polling, from its
    /// predecessor's last poll to its own first.
    pub gaps: Option<&'a HandoverGaps>,
}

/// One forwarding lcore: its slot, counters, pipeline, queues and configuration follower.
pub struct Lcore<'a, 'p, I: PacketIo> {
    slot: &'a WorkerSlot,
    counts: Counts<'a>,
    pipeline: &'a mut Pipeline<'p>,
    io: I,
    cfg: Reconfig<'a>,
    /// Whether its group has several lcores (packets are handed around).
    steer: bool,
    burst: I::Burst,
    /// A burst per port slot, then one per lcore of the group (redirects).
    outs: Vec<I::Burst>,
    idle_sleep: Duration,
    next_beat: u64,
}

impl<'a, 'p, I: PacketIo> Lcore<'a, 'p, I> {
    /// An lcore polling `io` for `slot`; its place in its group is the balancer's
    /// ([`crate::lb::Balancer::with_receive`]).
    pub fn new(
        slot: &'a WorkerSlot,
        counts: Counts<'a>,
        pipeline: &'a mut Pipeline<'p>,
        io: I,
        cfg: Reconfig<'a>,
    ) -> Self {
        let lcores = pipeline.group_lcores();
        let steer = lcores > 1;
        let redirects = if steer { usize::from(lcores) } else { 0 };
        let outs = (0..io.ports() + redirects).map(|_| I::Burst::default()).collect();
        let idle_sleep = Duration::from_micros(u64::from(slot.idle_sleep_us));
        Lcore { slot, counts, pipeline, io, cfg, steer, burst: I::Burst::default(), outs, idle_sleep, next_beat: 0 }
    }

    /// Polls until the slot's stop flag. Returns whether it handed the queues over to a
    /// successor.
    pub fn run(mut self) -> bool {
        self.start();
        // The primary hears of the start after the first poll: its doorbell wakes a thread on
        // another CPU, about 20 us of a handover's gap when it came first.
        let first = self.round();
        shm_layout::ring(self.cfg.bell);
        if let Some(handed_over) = first {
            return handed_over;
        }
        loop {
            if let Some(handed_over) = self.round() {
                return handed_over;
            }
        }
    }

    /// Marks the start of polling (heartbeat, polling time) and of the millisecond clock.
    pub fn start(&mut self) {
        let now = monotonic_ns();
        self.slot.heartbeat_ns.store(now, Ordering::Release);
        self.slot.polling_ns.store(now, Ordering::Release);
        if let Some(gaps) = self.counts.gaps {
            let last = self.slot.last_poll_ns.load(Ordering::Acquire);
            if last > 0 {
                gaps.record(now.saturating_sub(last));
            }
        }
        // A successor's captures may have changed since it last woke.
        self.io.follow_captures(true);
        self.next_beat = self.io.cycles() + self.io.cycles_per_ms();
    }

    /// The queues (for tests).
    pub fn io(&self) -> &I {
        &self.io
    }

    /// The queues, writable (for tests).
    pub fn io_mut(&mut self) -> &mut I {
        &mut self.io
    }

    /// One poll round: the configuration, every rx queue and redirect ring once, and once a
    /// millisecond the upkeep. `Some(handed_over)` when the slot's stop flag ends the loop.
    pub fn round(&mut self) -> Option<bool> {
        self.cfg.follow(self.slot, self.pipeline, &mut self.io);
        let c = self.counts.lcore;
        let start = self.io.cycles();
        let mut received = 0u64;
        for q in 0..self.io.rx_queues() {
            let n = self.io.rx(q, &mut self.burst);
            if n == 0 {
                continue;
            }
            if let Some(qc) = self.counts.queues.rx.get(q) {
                LcoreCounters::bump(qc, n as u64);
            }
            received += n as u64;
            // Counted per burst, so a worker killed mid-round leaves at most the burst in
            // hand uncounted.
            LcoreCounters::bump(&c.rx_packets, n as u64);
            LcoreCounters::bump(&c.rx_bursts, 1);
            self.handle(self.steer);
        }
        for ring in 0..self.io.redirect_rings() {
            let n = self.io.redirected(ring, &mut self.burst);
            if n > 0 {
                received += n as u64;
                // Its owner is this lcore: no second hand-over.
                self.handle(false);
            }
        }
        LcoreCounters::bump(&c.polls, 1);
        let end = self.io.cycles();
        if received > 0 {
            LcoreCounters::bump(&c.busy_cycles, end.wrapping_sub(start));
        } else {
            LcoreCounters::bump(&c.idle_polls, 1);
        }
        if end >= self.next_beat {
            self.next_beat = end + self.io.cycles_per_ms();
            if let Some(handed_over) = self.upkeep() {
                return Some(handed_over);
            }
        }
        if received == 0 && !self.idle_sleep.is_zero() {
            std::thread::sleep(self.idle_sleep);
        }
        None
    }

    /// Once a millisecond: heartbeat, expiry, next hops, link state, and the stop flag.
    fn upkeep(&mut self) -> Option<bool> {
        let slot = self.slot;
        let now = monotonic_ns();
        slot.heartbeat_ns.store(now, Ordering::Release);
        if let Some(f) = self.pipeline.balancer_mut() {
            f.advance(now, EXPIRE_BUDGET);
        }
        self.cfg.ask(now, self.pipeline, &mut self.io);
        self.io.refresh_links();
        self.io.follow_captures(true);
        match slot.stop.load(Ordering::Acquire) {
            shm_layout::STOP_NONE => return None,
            shm_layout::STOP_HANDOVER => {}
            _ => return Some(false),
        }
        // Take the request, unless the primary cancelled it meanwhile (its successor died):
        // then it keeps polling.
        if slot
            .stop
            .compare_exchange(shm_layout::STOP_HANDOVER, shm_layout::STOP_NONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let next = slot.handover_to.swap(0, Ordering::AcqRel);
        if next == 0 {
            // A request without a successor: nobody to hand over to, so it stops.
            return Some(false);
        }
        // Hand over: the burst is done and sent, nothing is held. The successor polls from
        // the next store on; packets arriving meanwhile wait in the rx rings.
        slot.last_poll_ns.store(monotonic_ns(), Ordering::Relaxed);
        slot.owner.store(next, Ordering::Release);
        // The successor waits blocked on the word, on this CPU: it runs as soon as this
        // process leaves the CPU (its caller moves it to the housekeeping CPU first thing).
        shm_layout::futex_wake(&slot.owner);
        Some(true)
    }

    /// Runs the burst in hand through the pipeline and sends each packet where it says: out of
    /// a port, or, with `steer`, to the lcore that owns its connection.
    fn handle(&mut self, steer: bool) {
        let (burst, io) = (&mut self.burst, &self.io);
        self.pipeline.classify((0..burst.len()).map(|i| (io.port_slot(burst.port(i)), burst.data(i))), steer);
        let ports = self.io.ports();
        let mut visit = Step { pipeline: &mut *self.pipeline, io: &self.io, tally: Tally::default(), ports };
        burst.distribute(&mut self.outs, &mut visit);
        let mut tally = visit.tally;
        let c = self.counts.lcore;
        let (mut sent, mut unsent) = (0, 0);
        for (p, out) in self.outs[..ports].iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            let n = self.io.tx(p, out);
            if let Some(qc) = self.counts.queues.tx.get(p) {
                LcoreCounters::bump(qc, n as u64);
            }
            sent += n;
            unsent += out.len();
            out.clear();
        }
        LcoreCounters::bump(&c.tx_packets, sent as u64);
        LcoreCounters::bump(&c.drop_tx_full, unsent as u64);
        let (mut handed, mut dropped) = (0, 0);
        for (lcore, stage) in self.outs[ports..].iter_mut().enumerate() {
            if stage.is_empty() {
                continue;
            }
            handed += self.io.redirect(lcore, stage);
            dropped += stage.len();
            stage.clear();
        }
        if handed > 0 {
            LcoreCounters::bump(&c.redirected, handed as u64);
        }
        if dropped > 0 {
            LcoreCounters::bump(&c.drop_redirect, dropped as u64);
        }
        tally.flush(c);
    }
}

/// The pipeline's decision for each packet of a burst, as [`Packets::distribute`] asks it.
struct Step<'s, 'p, I> {
    pipeline: &'s mut Pipeline<'p>,
    io: &'s I,
    tally: Tally,
    /// Port slots: the output bursts after them are the redirects.
    ports: usize,
}

impl<I: PacketIo> Visit for Step<'_, '_, I> {
    #[inline]
    fn visit<F: Frame>(&mut self, port_id: u16, frame: &mut F) -> Option<usize> {
        let port = self.io.port_slot(port_id);
        let action = match port {
            Some(port) => self.pipeline.process(port, frame),
            None => {
                // Its classification is not used: the next frame's is the next one.
                self.pipeline.skip();
                Action::Drop(DropReason::Runt)
            }
        };
        action.count(&mut self.tally);
        match action {
            Action::Forward(p) | Action::Nat { port: p, .. } => {
                // Port slots come from the same table as the pipeline's (peers are clamped).
                debug_assert!(usize::from(p) < self.ports, "port slot {p} of {}", self.ports);
                Some(usize::from(p))
            }
            Action::Reply(_) => port.map(usize::from),
            Action::Redirect { lcore, .. } => Some(self.ports + usize::from(lcore)),
            Action::Drop(_) => None,
        }
    }
}

/// A worker's group (`[[groups]]`): its lcores serve the group's services alone, and hand
/// each other their packets.
#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    /// The group's worker slots, in slot order: the lcores packets are handed around among,
    /// and whose local port shares are `index % members.len()`.
    pub members: Vec<usize>,
    /// Which groups poll each port.
    pollers: conf::Pollers,
}

impl Group {
    /// The group of worker slot `slot`, from the slots in shared memory.
    pub fn of(layout: &shm_layout::Layout, slot: usize) -> Group {
        let workers = layout.workers();
        let name = workers[slot].group.as_str().into_owned();
        let members = (0..workers.len()).filter(|&i| workers[i].group.as_str() == name).collect();
        let names: Vec<String> = workers.iter().map(|w| w.group.as_str().into_owned()).collect();
        let pollers = conf::Pollers::new(
            workers
                .iter()
                .zip(&names)
                .flat_map(|(w, g)| w.rx_queues().iter().map(move |q| (usize::from(q.port), g.as_str()))),
        );
        Group { name, members, pollers }
    }

    /// Worker slot `slot`'s share of local ports: (its index in the group, the group's size).
    pub fn share(&self, slot: usize) -> (u16, u16) {
        let i = self.members.iter().position(|&m| m == slot).unwrap_or(0);
        (i as u16, self.members.len() as u16)
    }

    /// `rt` with the services this group serves.
    pub fn served(&self, rt: &conf::Runtime) -> conf::Runtime {
        rt.served_by(&self.pollers, &self.name)
    }

    /// Whether this group serves service `s` (`resolver`: its configuration's).
    pub fn serves(&self, s: &conf::Service, resolver: &conf::Resolver<'_>) -> bool {
        self.pollers.group_of(s, resolver) == Some(self.name.as_str())
    }

    /// The addresses of `rt` on the ports this group polls: (port slot, address).
    pub fn addresses(&self, rt: &conf::Runtime) -> Vec<(usize, std::net::IpAddr)> {
        rt.addresses
            .iter()
            .filter(|a| self.pollers.of_port(a.port).contains(&self.name))
            .map(|a| (a.port, a.addr))
            .collect()
    }
}

/// Why a configuration generation could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No consistent copy of the current generation, or one of another format.
    #[error("configuration generation: {0}")]
    Read(#[from] mailbox::generation::ReadError),
    /// Its services cannot be built here.
    #[error("configuration generation {generation}: {source}")]
    Build { generation: u64, source: crate::lb::BuildError },
}

/// Reads the current configuration generation (the newest snapshot and the deltas after it),
/// announcing the snapshot it copies in `reading`.
///
/// # Errors
/// [`ConfigError::Read`].
pub fn read_config(gens: Generations<'_>, reading: &AtomicU64) -> Result<(u64, conf::Runtime), ConfigError> {
    Ok(mailbox::generation::current(gens, Some(reading))?)
}

/// Follows the configuration generations, counter zeroing and learned neighbours while
/// polling, and announces addresses and asks for next hops (each group's first lcore).
pub struct Reconfig<'a> {
    /// The configuration generations (and the area's epochs).
    pub gens: Generations<'a>,
    /// The primary's doorbell, rung after an acknowledgement.
    pub bell: &'a AtomicU32,
    /// This lcore's share of local ports: (index in its group, the group's size).
    pub share: (u16, u16),
    /// This worker's group: the services it builds.
    pub group: Group,
    /// The generation the pipeline runs with, and its whole configuration (every service,
    /// served here or not).
    pub applied: u64,
    pub rt: mailbox::generation::Indexed,
    /// A generation that could not be applied (not tried again).
    pub failed: u64,
    /// The last counter-zeroing request carried out.
    pub zeroed: u64,
    /// Every worker slot's learned neighbours.
    pub learned: &'a [[shm_layout::LearnedNeighbour; shm_layout::LEARNED_NEIGHBOURS]],
    /// The `neigh_epoch` the real servers' MACs were last resolved at.
    pub neigh_seen: u64,
    /// This worker's own learned neighbours (it alone writes them).
    pub own_learned: &'a [shm_layout::LearnedNeighbour],
    /// When next hops were last asked for and entries expired.
    pub asked_ns: u64,
    /// The ports' addresses in the applied generation (port slot, address).
    pub addrs: Vec<(usize, std::net::IpAddr)>,
    /// MAC of every port slot, when this lcore sends gratuitous ARP for added addresses and
    /// asks for next hops (each group's first lcore only).
    pub announcer: Option<Vec<wire::EthernetAddress>>,
    /// Where what it sends is counted per port.
    pub queues: &'a QueueCounters,
}

impl Reconfig<'_> {
    /// Every worker's learned neighbours, merged (without the expired ones).
    fn hops(&self) -> crate::neigh::Hops {
        crate::neigh::learned(self.learned.iter().map(|t| &t[..]), monotonic_ns())
    }

    /// One ARP request from `sender` for `target` out of port slot `port`, from the
    /// announcer (best effort).
    fn arp<I: PacketIo>(&self, io: &mut I, port: usize, sender: Ipv4Addr, target: Ipv4Addr) {
        let Some(mac) = self.announcer.as_ref().and_then(|m| m.get(port)) else { return };
        if io.send(port, &crate::pipeline::arp_request(*mac, sender, target)) {
            if let Some(c) = self.queues.tx.get(port) {
                LcoreCounters::bump(c, 1);
            }
        }
    }

    /// Asks for `target`'s MAC from `sender` out of port slot `port`: an ARP request, or a
    /// neighbour solicitation to its solicited-node address (the announcer only, best effort).
    fn ask_for<I: PacketIo>(&self, io: &mut I, port: usize, sender: std::net::IpAddr, target: std::net::IpAddr) {
        use std::net::IpAddr::{V4, V6};
        match (sender, target) {
            (V4(s), V4(t)) => self.arp(io, port, s, t),
            (V6(s), V6(t)) => {
                let Some(mac) = self.announcer.as_ref().and_then(|m| m.get(port)) else { return };
                if io.send(port, &crate::ipv6::solicit(*mac, s, t)) {
                    if let Some(c) = self.queues.tx.get(port) {
                        LcoreCounters::bump(c, 1);
                    }
                }
            }
            // A next hop is on a network of its own family.
            _ => {}
        }
    }

    /// Announces every address in `addrs` with a gratuitous ARP, or an unsolicited neighbour
    /// advertisement for IPv6 (the announcer only, best effort).
    pub fn announce<I: PacketIo>(&self, io: &mut I, addrs: &[(usize, std::net::IpAddr)]) {
        for &(port, addr) in addrs {
            match addr {
                std::net::IpAddr::V4(a) => self.arp(io, port, a, a),
                std::net::IpAddr::V6(a) => {
                    let Some(mac) = self.announcer.as_ref().and_then(|m| m.get(port)) else { continue };
                    if io.send(port, &crate::ipv6::unsolicited_na(*mac, a)) {
                        if let Some(c) = self.queues.tx.get(port) {
                            LcoreCounters::bump(c, 1);
                        }
                    }
                }
            }
        }
    }

    /// Once a second: clears this worker's expired neighbours; each group's first worker asks
    /// for the next hops its services need that are unresolved or stale (so a learned one is
    /// confirmed every 30 s, and a changed MAC is learned). Called about once a millisecond;
    /// not the packet path.
    fn ask<I: PacketIo>(&mut self, now_ns: u64, pipeline: &mut Pipeline<'_>, io: &mut I) {
        if now_ns.saturating_sub(self.asked_ns) < crate::neigh::ASK_EVERY_NS {
            return;
        }
        self.asked_ns = now_ns;
        crate::neigh::expire(self.own_learned, &self.gens.area.neigh_epoch, now_ns);
        if self.announcer.is_none() {
            return;
        }
        let Some(f) = pipeline.balancer_mut() else { return };
        if f.wanted().is_empty() {
            return;
        }
        let merged = shm_layout::merge_learned(self.learned.iter().map(|t| &t[..]), now_ns);
        for &(w, _) in f.wanted() {
            let learned_ns = merged
                .binary_search_by_key(&crate::lb::entry_form(w.hop), |e| e.addr)
                .ok()
                .map(|i| merged[i].learned_ns);
            if crate::neigh::ask_now(learned_ns, now_ns) {
                self.ask_for(io, usize::from(w.port), w.src, w.hop);
            }
        }
    }

    /// Carries out a counter-zeroing request and follows learned neighbours, then applies the
    /// current generation if it moved: between bursts, so no packet is in hand. Acknowledges
    /// each in the slot once the pipeline runs with it.
    #[inline]
    pub fn follow<I: PacketIo>(&mut self, slot: &WorkerSlot, pipeline: &mut Pipeline<'_>, io: &mut I) {
        let z = self.gens.area.zero_epoch.load(Ordering::Acquire);
        if z != self.zeroed {
            self.zero(z, slot, pipeline);
        }
        let epoch = self.gens.area.neigh_epoch.load(Ordering::Acquire);
        if epoch != self.neigh_seen {
            // Not the packet path: a next hop was learned or changed somewhere.
            self.neigh_seen = epoch;
            let hops = self.hops();
            if let Some(f) = pipeline.balancer_mut() {
                f.resolve(&hops);
            }
        }
        let g = self.gens.area.generation.load(Ordering::Relaxed);
        if g != self.applied && g != self.failed {
            self.switch(g, slot, pipeline, io);
        }
    }

    /// Zeroes the counters zero request `z` names (every service's when a request was
    /// missed: the slot had no process when it came).
    fn zero(&mut self, z: u64, slot: &WorkerSlot, pipeline: &mut Pipeline<'_>) {
        let key = if z == self.zeroed + 1 { self.gens.area.zero_key.load(Ordering::Acquire) } else { 0 };
        if let Some(f) = pipeline.balancer_mut() {
            f.zero_counters(key);
        }
        self.zeroed = z;
        slot.zero_applied.store(z, Ordering::Release);
        // Not the packet path: one syscall per `ipvsadm -Z`.
        shm_layout::ring(self.bell);
    }

    /// Switches to the current generation (`g` was seen): the pipeline, the announcements of
    /// added addresses, the acknowledgement. A generation that cannot be applied is logged
    /// and not tried again.
    fn switch<I: PacketIo>(&mut self, g: u64, slot: &WorkerSlot, pipeline: &mut Pipeline<'_>, io: &mut I) {
        let t0 = monotonic_ns();
        let hops = self.hops();
        let read = mailbox::generation::update(self.gens, &slot.cfg_reading, self.applied);
        // Reading a large generation takes a while too.
        slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
        let result = read
            .map_err(ConfigError::from)
            .and_then(|(g, u)| self.apply(g, u, (slot, pipeline), &hops, io).map(|()| g));
        let took_us = (monotonic_ns() - t0) / 1000;
        if took_us >= 1000 {
            // Not the packet path: a switch that long is worth a line.
            tracing::info!(generation = g, took_us, "slow configuration switch");
        }
        match result {
            Ok(g) => {
                self.applied = g;
                slot.cfg_applied.store(g, Ordering::Release);
                LcoreCounters::bump(&slot.cfg_switches, 1);
                // Not the packet path: one syscall per configuration switch.
                shm_layout::ring(self.bell);
            }
            Err(e) => {
                // Not the packet path: a configuration switch is rare, and this one is broken.
                tracing::error!(generation = g, "cannot apply configuration generation: {e}");
                self.failed = g;
            }
        }
    }

    /// Applies what takes the pipeline to generation `g`: deltas that change services only,
    /// one after the other, service by service (the others untouched); anything else as a
    /// whole configuration.
    fn apply<I: PacketIo>(
        &mut self,
        g: u64,
        u: mailbox::generation::Update,
        (slot, pipeline): (&WorkerSlot, &mut Pipeline<'_>),
        hops: &crate::neigh::Hops,
        io: &mut I,
    ) -> Result<(), ConfigError> {
        use mailbox::generation::Update;
        match u {
            Update::Deltas(ds) if ds.iter().all(|d| !d.tables_changed()) => {
                let first = g + 1 - ds.len() as u64;
                let mut beat = || slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
                for (at, d) in (first..).zip(&ds) {
                    self.services_delta(at, d, (pipeline, &mut beat), hops)
                        .map_err(|source| ConfigError::Build { generation: at, source })?;
                    // Deltas set services whole: one made again after a failure later on is
                    // harmless.
                    self.applied = at;
                }
                Ok(())
            }
            Update::Deltas(ds) => {
                let mut rt = self.rt.clone();
                for d in &ds {
                    rt.apply(d);
                    slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
                }
                self.whole(g, rt.into_runtime(), (slot, pipeline), hops, io)
            }
            Update::Whole(rt) => self.whole(g, rt, (slot, pipeline), hops, io),
        }
    }

    /// Makes delta `d`, which changes services only, as generation `g`: the services it puts
    /// that this group serves are built and swapped in, the ones it removes (or puts that
    /// another group serves) taken out; `beat` called now and then (a delta may put tens of
    /// thousands of services: `ipvsadm -R`).
    fn services_delta(
        &mut self,
        g: u64,
        d: &mailbox::generation::Delta,
        (pipeline, beat): (&mut Pipeline<'_>, &mut dyn FnMut()),
        hops: &crate::neigh::Hops,
    ) -> Result<(), crate::lb::BuildError> {
        let resolver = self.rt.runtime().resolver();
        let (served, other): (Vec<_>, Vec<_>) = d.put.iter().partition(|s| self.group.serves(s, &resolver));
        beat();
        let key = |k: mailbox::proto::ServiceKey| (k.protocol.number(), k.vip, k.port);
        let gone: Vec<_> =
            d.removed.iter().copied().chain(other.iter().map(|s| mailbox::proto::ServiceKey::of(s))).map(key).collect();
        pipeline.update(g, &gone, &served, (self.rt.runtime(), self.share), (hops, &mut *beat))?;
        beat();
        self.rt.apply(d);
        beat();
        Ok(())
    }

    /// Runs generation `g`, whose whole configuration is `rt`: every service built again or
    /// taken over unchanged (beating the slot's heartbeat while it builds: a large
    /// configuration takes a while), the addresses it adds announced.
    fn whole<I: PacketIo>(
        &mut self,
        g: u64,
        rt: conf::Runtime,
        (slot, pipeline): (&WorkerSlot, &mut Pipeline<'_>),
        hops: &crate::neigh::Hops,
        io: &mut I,
    ) -> Result<(), ConfigError> {
        // Each step below is a pass over every service (70 000 take a debug build over a
        // second in all): the heartbeat is beaten between them, and every 1 024 services
        // while they are built.
        let mut beat = || slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
        beat();
        let served = self.group.served(&rt);
        beat();
        pipeline
            .reconfigure(g, &served, self.share, hops, &mut beat)
            .map_err(|source| ConfigError::Build { generation: g, source })?;
        beat();
        let addrs = self.group.addresses(&rt);
        let known: std::collections::HashSet<_> = self.addrs.iter().collect();
        let added: Vec<_> = addrs.iter().filter(|x| !known.contains(x)).copied().collect();
        self.announce(io, &added);
        self.addrs = addrs;
        self.rt = mailbox::generation::Indexed::new(rt);
        beat();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
