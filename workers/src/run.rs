//! Attach, claim the slot, poll, exit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dpdk::{Burst, Eal, Port, RxQueue, TxQueue};
use shm_layout::config::ConfigArea;
use shm_layout::{monotonic_ns, LcoreCounters, Shm, ShmError, WorkerSlot, WorkerState, MAX_WORKERS};

use crate::lb::{self, Balancer};
use crate::outcome::{Action, Tally};
use crate::pipeline::{Pipeline, PortCtx, Steer};

/// What the primary tells a worker on its command line (after the EAL arguments and `--`).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "dpvs-worker", about = "Forwarding worker of a dpvs instance (started by the primary)")]
pub struct WorkerArgs {
    /// The instance's shared-memory file.
    #[arg(long)]
    pub shm: PathBuf,
    /// Worker slot index.
    #[arg(long)]
    pub slot: usize,
    /// Spawn number the primary recorded in the slot; a process with another number is stale.
    #[arg(long)]
    pub spawn: u32,
    /// Take the slot over from the worker polling it: attach, report ready, and start polling
    /// when it hands its queues over (zero-loss restart).
    #[arg(long)]
    pub handover: bool,
}

/// Why a worker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Shared memory could not be attached.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// The slot is not this process's to run.
    #[error("worker slot {slot}: {why}")]
    Slot { slot: usize, why: String },
    /// A DPDK call failed.
    #[error("{what}: {source}")]
    Dpdk { what: String, source: dpdk::Error },
}

impl WorkerError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkerError::Shm(_) | WorkerError::Slot { .. } => crate::exit_codes::ATTACH,
            WorkerError::Dpdk { .. } => crate::exit_codes::DPDK,
        }
    }
}

fn dpdk_err(what: impl Into<String>) -> impl FnOnce(dpdk::Error) -> WorkerError {
    let what = what.into();
    move |source| WorkerError::Dpdk { what, source }
}

/// One rx queue.
struct RxPath {
    queue: RxQueue,
}

/// Attaches to the instance's shared memory and checks that `args.slot` is ours to run.
/// Done before EAL init, so a layout mismatch is refused without touching DPDK.
///
/// # Errors
/// [`WorkerError::Shm`] for a missing or foreign region, [`WorkerError::Slot`] for a slot
/// that is out of range, not spawning, or recorded for another spawn.
pub fn attach(args: &WorkerArgs) -> Result<Shm, WorkerError> {
    let shm = Shm::open(&args.shm)?;
    let layout = shm.layout();
    let slot_err = |why: String| WorkerError::Slot { slot: args.slot, why };
    if args.slot >= layout.workers().len() || args.slot >= MAX_WORKERS {
        return Err(slot_err(format!("the instance has {} worker slots", layout.workers().len())));
    }
    let slot = &layout.workers[args.slot];
    let spawns = slot.spawns.load(Ordering::Acquire);
    if spawns != args.spawn {
        return Err(slot_err(format!("spawn {} was superseded by spawn {spawns}", args.spawn)));
    }
    if args.handover {
        if slot.incoming_state.load(Ordering::Acquire) != 1 {
            return Err(slot_err("no handover is expected".into()));
        }
    } else if slot.state() != WorkerState::Spawning {
        return Err(slot_err(format!("state is {}, not spawning", slot.state().as_str())));
    }
    Ok(shm)
}

/// Runs the worker after [`attach`]: EAL init as a secondary, queue handles, claim, poll
/// until asked to stop.
///
/// # Errors
/// EAL or queue set-up failures; a slot claimed by someone else.
pub fn run(eal_args: &[String], args: &WorkerArgs, shm: &Shm) -> Result<(), WorkerError> {
    let layout = shm.layout();
    let slot = &layout.workers[args.slot];
    let t0 = monotonic_ns();
    let eal = Eal::init(eal_args).map_err(dpdk_err("EAL init (secondary)"))?;
    tracing::info!(slot = args.slot, lcore = slot.lcore, eal_init_us = (monotonic_ns() - t0) / 1000, "attached");

    // Tx queue handles, one per port slot, and rx paths.
    let ports = layout.ports();
    let mut txs: Vec<TxQueue> = Vec::with_capacity(ports.len());
    for p in ports {
        let port = Port::by_name(&p.device.as_str()).map_err(dpdk_err(format!("port {}", p.name.as_str())))?;
        txs.push(port.tx_queue(slot.tx_queue).map_err(dpdk_err("tx queue"))?);
    }
    let mut rxs: Vec<RxPath> = Vec::with_capacity(slot.rx_queues().len());
    for q in slot.rx_queues() {
        let p = ports.get(usize::from(q.port)).ok_or_else(|| WorkerError::Slot {
            slot: args.slot,
            why: format!("rx queue names port slot {} of {}", q.port, ports.len()),
        })?;
        let port = Port::by_name(&p.device.as_str()).map_err(dpdk_err(format!("port {}", p.name.as_str())))?;
        rxs.push(RxPath { queue: port.rx_queue(q.queue).map_err(dpdk_err("rx queue"))? });
    }
    // The current configuration generation, read under an announcement in the slot (the
    // incoming word while another process may still poll the slot).
    let group = Group::of(layout, args.slot);
    let share = group.share(args.slot);
    let reading = if args.handover { &slot.cfg_reading_incoming } else { &slot.cfg_reading };
    let (generation, rt) =
        read_config(&layout.config, reading).map_err(|why| WorkerError::Slot { slot: args.slot, why })?;
    let port_ctx: Vec<PortCtx> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortCtx {
            mac: mac_of(p),
            peer: p.peer.min(ports.len() as u16 - 1),
            addrs: rt.addresses.iter().filter(|a| a.port == i).map(|a| a.addr).collect(),
            exception: (usize::from(p.exception) < ports.len()).then_some(p.exception),
            is_exception: p.is_exception != 0,
        })
        .collect();
    // Full-NAT: the lcore's connection shard (adopted as it is, or rebuilt if the previous
    // worker died mid-change) and the services.
    let path = shm_layout::conn::conn_shard_path(&args.shm, args.slot);
    let mut shard_file = shm_layout::ConnShardFile::open(&path)?;
    let mut pipeline = {
        let (shard, rebuilt) = conn::Shard::adopt(shard_file.parts_mut(), monotonic_ns() / lb::TICK_NS);
        tracing::info!(slot = args.slot, connections = shard.used(), rebuilt, generation, "connection table adopted");
        let learned =
            crate::neigh::learned(layout.learned[..layout.workers().len()].iter().map(|t| &t[..]), monotonic_ns());
        let services = lb::build_services(&group.served(&rt), share, &mut Vec::new(), &learned)
            .map_err(|e| WorkerError::Slot { slot: args.slot, why: e.to_string() })?;
        let macs = ports.iter().map(mac_of).collect();
        let mut f = Balancer::new(services, shard, macs, monotonic_ns())
            .with_stats(&layout.service_counters[args.slot], &layout.real_counters[args.slot])
            .with_neighbours(&layout.learned[args.slot], &layout.config.neigh_epoch)
            .with_mtus(ports.iter().map(|p| if p.mtu == 0 { 1500 } else { p.mtu }).collect());
        let services = f.take_services();
        f.reconfigure(generation, services);
        Pipeline::with_balancer(port_ctx, f)
    };

    if args.handover {
        // Ready: the primary now asks the polling worker to hand its queues over.
        if slot.incoming_state.compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(WorkerError::Slot { slot: args.slot, why: "handover cancelled while attaching".into() });
        }
        while slot.owner.load(Ordering::Acquire) != args.spawn {
            if slot.incoming_state.load(Ordering::Acquire) == 0 && slot.owner.load(Ordering::Acquire) != args.spawn {
                return Err(WorkerError::Slot { slot: args.slot, why: "handover cancelled".into() });
            }
            // A hot standby may wait here for a long time: sleep, do not spin.
            std::thread::sleep(Duration::from_micros(20));
        }
    } else {
        // Beat before the claim: a Running slot is judged by its heartbeat.
        slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
        // Claim: Spawning -> Running, only if the primary still expects this spawn.
        if slot.spawns.load(Ordering::Acquire) != args.spawn
            || slot
                .state
                .compare_exchange(
                    WorkerState::Spawning as u32,
                    WorkerState::Running as u32,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return Err(WorkerError::Slot { slot: args.slot, why: "claimed or cancelled while attaching".into() });
        }
        slot.owner.store(args.spawn, Ordering::Release);
    }
    slot.lcore_now.store(dpdk::LcoreId::current().0, Ordering::Release);
    // A successor may have waited long (a hot standby): its clock starts now.
    if let Some(f) = pipeline.balancer_mut() {
        f.set_clock(monotonic_ns());
    }
    let counters = &layout.counters[args.slot];
    let links: Vec<Port> = txs.iter().filter_map(|t| Port::by_id(t.port())).collect();
    // Full-NAT packets are handed around among the lcores of this worker's group only.
    let lcores = group.members.len();
    let redirect = if lcores > 1 {
        let mut to = Vec::with_capacity(lcores);
        let mut from = Vec::with_capacity(lcores);
        for &other in &group.members {
            if other == args.slot {
                to.push(None);
                continue;
            }
            let ring = |a, b| {
                let name = shm_layout::redirect_ring_name(a, b);
                dpdk::Ring::lookup(&name).map_err(dpdk_err(format!("redirect ring {name}")))
            };
            to.push(Some(ring(args.slot, other)?));
            from.push(ring(other, args.slot)?);
        }
        let me = usize::from(share.0);
        Some(Redirect { me, to, from, stage: (0..lcores).map(|_| Burst::new()).collect() })
    } else {
        None
    };
    let mut slot_of_port = [u16::MAX; 64];
    for (i, p) in ports.iter().enumerate() {
        if let Some(s) = slot_of_port.get_mut(usize::from(p.port_id)) {
            *s = i as u16;
        }
    }
    let mut io = Io {
        txs: &mut txs,
        // A burst per port slot, then one per lcore of the group (redirects).
        outs: (0..ports.len() + group.members.len()).map(|_| Burst::new()).collect(),
        slot_of_port,
        redirect,
        queues: &layout.queue_counters[args.slot],
    };
    slot.cfg_applied.store(generation, Ordering::Release);
    // The first lcore of each group announces the addresses a generation adds on the ports
    // its group polls with gratuitous ARP, and asks for its services' next hops (one worker
    // per group is enough, and a group does not wait on another); a fresh start (not a
    // successor taking over) announces them all.
    let announcer = (group.members.first() == Some(&args.slot))
        .then(|| dpdk::Mempool::lookup(&slot.pool.as_str()).ok())
        .flatten()
        .map(|pool| Announcer { pool, macs: ports.iter().map(mac_of).collect() });
    let addrs = group.addresses(&rt);
    if let (Some(a), false) = (&announcer, args.handover) {
        for &(port, addr) in &addrs {
            a.send(&mut io, port, addr);
        }
    }
    shm_layout::ring(&layout.mailbox.doorbell);
    let cfg = Reconfig {
        area: &layout.config,
        bell: &layout.mailbox.doorbell,
        share,
        group,
        applied: generation,
        failed: 0,
        zeroed: slot.zero_applied.load(Ordering::Acquire),
        learned: &layout.learned[..layout.workers().len()],
        neigh_seen: 0,
        own_learned: &layout.learned[args.slot],
        asked_ns: 0,
        addrs,
        announcer,
    };
    let handed_over = poll(slot, counters, &mut pipeline, &mut rxs, &mut io, &links, cfg);
    drop(io);
    drop(pipeline);
    drop(shard_file);

    if !handed_over {
        slot.state.store(WorkerState::Exited as u32, Ordering::Release);
    }
    drop(rxs);
    drop(txs);
    drop(eal);
    Ok(())
}

/// What the loop sends through.
struct Io<'t> {
    /// This worker's tx queue on every port, by port slot.
    txs: &'t mut [TxQueue],
    /// A burst per port slot, filled by the pipeline and emptied by one tx call each.
    outs: Vec<Burst>,
    /// Port slot of each DPDK port id.
    slot_of_port: [u16; 64],
    redirect: Option<Redirect>,
    /// Packets per rx queue and per port of this worker slot.
    queues: &'t shm_layout::QueueCounters,
}

/// The redirect rings of a Full-NAT worker among several: a packet whose connection another
/// lcore owns is handed to it.
struct Redirect {
    me: usize,
    /// Ring to each other worker slot (`None` for this one).
    to: Vec<Option<dpdk::Ring>>,
    /// Rings from the other slots.
    from: Vec<dpdk::Ring>,
    /// A burst per destination slot.
    stage: Vec<Burst>,
}

/// The forwarding loop, until the slot's stop flag. No allocation, no lock, no log: it
/// counts. Returns whether it handed the queues over to a successor.
fn poll(
    slot: &WorkerSlot,
    c: &LcoreCounters,
    pipeline: &mut Pipeline<'_>,
    rxs: &mut [RxPath],
    io: &mut Io<'_>,
    links: &[Port],
    mut cfg: Reconfig<'_>,
) -> bool {
    let tsc_ms = dpdk::tsc_hz() / 1000;
    let idle_sleep = Duration::from_micros(u64::from(slot.idle_sleep_us));
    let mut burst = Burst::new();
    let now = monotonic_ns();
    slot.heartbeat_ns.store(now, Ordering::Release);
    slot.polling_ns.store(now, Ordering::Release);
    let mut next_beat = dpdk::rdtsc() + tsc_ms;
    loop {
        cfg.follow(slot, pipeline, io);
        let start = dpdk::rdtsc();
        let mut received = 0u64;
        for (q, path) in rxs.iter_mut().enumerate() {
            let n = path.queue.rx(&mut burst);
            if n == 0 {
                continue;
            }
            if let Some(c) = io.queues.rx.get(q) {
                LcoreCounters::bump(c, n as u64);
            }
            received += n as u64;
            // Counted per burst, so a worker killed mid-round leaves at most the burst in
            // hand uncounted.
            LcoreCounters::bump(&c.rx_packets, n as u64);
            LcoreCounters::bump(&c.rx_bursts, 1);
            let steer = io.redirect.as_ref().map(|r| Steer { me: r.me as u16, lcores: r.stage.len() as u16 });
            handle(pipeline, &mut burst, io, c, steer);
        }
        let n_from = io.redirect.as_ref().map_or(0, |r| r.from.len());
        for i in 0..n_from {
            let n = io.redirect.as_ref().map_or(0, |r| r.from[i].dequeue(&mut burst));
            if n > 0 {
                received += n as u64;
                handle(pipeline, &mut burst, io, c, None);
            }
        }
        LcoreCounters::bump(&c.polls, 1);
        let end = dpdk::rdtsc();
        if received > 0 {
            LcoreCounters::bump(&c.busy_cycles, end.wrapping_sub(start));
        } else {
            LcoreCounters::bump(&c.idle_polls, 1);
        }
        if end >= next_beat {
            next_beat = end + tsc_ms;
            let now = monotonic_ns();
            slot.heartbeat_ns.store(now, Ordering::Release);
            if let Some(f) = pipeline.balancer_mut() {
                f.advance(now, 4096);
            }
            cfg.ask(now, pipeline, io);
            // Link state refresh: a memif port in a secondary must see its peer leave, or it
            // keeps reading the departed peer's rings after the next peer connects.
            for p in links {
                p.link_up();
            }
            if slot.stop.load(Ordering::Acquire) != 0 {
                let next = slot.handover_to.load(Ordering::Acquire);
                if next == 0 {
                    return false;
                }
                // Hand over: the burst is done and sent, nothing is held. The successor
                // polls from the next store on; packets arriving meanwhile wait in the rx rings.
                slot.stop.store(0, Ordering::Relaxed);
                slot.handover_to.store(0, Ordering::Relaxed);
                slot.last_poll_ns.store(monotonic_ns(), Ordering::Relaxed);
                slot.owner.store(next, Ordering::Release);
                return true;
            }
        }
        if received == 0 && !idle_sleep.is_zero() {
            std::thread::sleep(idle_sleep);
        }
    }
}

/// Runs a burst through the pipeline and sends each packet where it says: out of a port, or,
/// with `steer`, to the lcore that owns its connection.
fn handle(pipeline: &mut Pipeline<'_>, burst: &mut Burst, io: &mut Io<'_>, c: &LcoreCounters, steer: Option<Steer>) {
    pipeline.classify((0..burst.len()).map(|i| burst.data(i)), steer);
    let mut tally = Tally::default();
    let slot_of_port = &io.slot_of_port;
    let ports = io.txs.len();
    burst.distribute_packets(&mut io.outs, |port_id, frame| {
        let port = slot_of_port.get(usize::from(port_id)).copied().unwrap_or(u16::MAX);
        let action = if port == u16::MAX {
            Action::Drop(crate::outcome::DropReason::Runt)
        } else {
            pipeline.process(port, frame)
        };
        action.count(&mut tally);
        match action {
            Action::Forward(p) | Action::Nat { port: p, .. } => Some(usize::from(p)),
            Action::Reply(_) => Some(usize::from(port)),
            Action::Redirect(lcore) => Some(ports + usize::from(lcore)),
            Action::Drop(_) => None,
        }
    });
    let (mut sent, mut unsent) = (0, 0);
    for (p, out) in io.outs[..ports].iter_mut().enumerate() {
        if !out.is_empty() {
            let n = io.txs[p].tx(out);
            if let Some(c) = io.queues.tx.get(p) {
                LcoreCounters::bump(c, n as u64);
            }
            sent += n;
            unsent += out.len();
            out.clear();
        }
    }
    LcoreCounters::bump(&c.tx_packets, sent as u64);
    LcoreCounters::bump(&c.drop_tx_full, unsent as u64);
    if let Some(r) = io.redirect.as_mut() {
        let (mut handed, mut dropped) = (0u64, 0u64);
        for (lcore, stage) in io.outs[ports..].iter_mut().enumerate() {
            if stage.is_empty() {
                continue;
            }
            if let Some(Some(ring)) = r.to.get(lcore) {
                handed += ring.enqueue(stage) as u64;
            }
            dropped += stage.len() as u64;
            stage.clear();
        }
        if handed > 0 {
            LcoreCounters::bump(&c.redirected, handed);
        }
        if dropped > 0 {
            LcoreCounters::bump(&c.drop_redirect, dropped);
        }
    }
    tally.flush(c);
}

fn mac_of(p: &shm_layout::PortSlot) -> wire::EthernetAddress {
    wire::EthernetAddress([p.mac[0], p.mac[1], p.mac[2], p.mac[3], p.mac[4], p.mac[5]])
}

/// Reads and decodes the current configuration generation, announcing it in `reading`.
fn read_config(area: &ConfigArea, reading: &AtomicU64) -> Result<(u64, conf::Runtime), String> {
    let (g, bytes) = mailbox::generation::read_current(area, reading).map_err(|e| e.to_string())?;
    let rt = mailbox::generation::decode(&bytes).map_err(|e| format!("configuration generation {g}: {e}"))?;
    Ok((g, rt))
}

/// Follows the configuration generations while polling.
struct Reconfig<'a> {
    area: &'a ConfigArea,
    /// The primary's doorbell, rung after an acknowledgement.
    bell: &'a std::sync::atomic::AtomicU32,
    /// This lcore's share of local ports: (index in its group, the group's size).
    share: (u16, u16),
    /// This worker's group: the services it builds.
    group: Group,
    /// The generation the pipeline runs with.
    applied: u64,
    /// A generation that could not be applied (not tried again).
    failed: u64,
    /// The last counter-zeroing request carried out.
    zeroed: u64,
    /// Every worker slot's learned neighbours.
    learned: &'a [[shm_layout::LearnedNeighbour; shm_layout::LEARNED_NEIGHBOURS]],
    /// The `neigh_epoch` the real servers' MACs were last resolved at.
    neigh_seen: u64,
    /// This worker's own learned neighbours (it alone writes them).
    own_learned: &'a [shm_layout::LearnedNeighbour],
    /// When next hops were last asked for and entries expired.
    asked_ns: u64,
    /// The ports' addresses in the applied generation (port slot, address).
    addrs: Vec<(usize, std::net::Ipv4Addr)>,
    /// Sends gratuitous ARP for added addresses (each group's first worker only).
    announcer: Option<Announcer>,
}

/// A worker's group (`[[groups]]`): its lcores serve the group's services alone, and hand
/// each other their packets.
struct Group {
    name: String,
    /// The group's worker slots, in slot order: the lcores Full-NAT packets are handed around
    /// among, and whose local port shares are `index % members.len()`.
    members: Vec<usize>,
    /// Which groups poll each port.
    pollers: conf::Pollers,
}

impl Group {
    /// The group of worker slot `slot`, from the slots in shared memory.
    fn of(layout: &shm_layout::Layout, slot: usize) -> Group {
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
    fn share(&self, slot: usize) -> (u16, u16) {
        let i = self.members.iter().position(|&m| m == slot).unwrap_or(0);
        (i as u16, self.members.len() as u16)
    }

    /// `rt` with the services this group serves.
    fn served(&self, rt: &conf::Runtime) -> conf::Runtime {
        rt.served_by(&self.pollers, &self.name)
    }

    /// The addresses of `rt` on the ports this group polls: (port slot, address).
    fn addresses(&self, rt: &conf::Runtime) -> Vec<(usize, std::net::Ipv4Addr)> {
        rt.addresses
            .iter()
            .filter(|a| self.pollers.of_port(a.port).contains(&self.name))
            .map(|a| (a.port, a.addr))
            .collect()
    }
}

/// Sends gratuitous ARP from the worker's own pool and tx queues.
struct Announcer {
    pool: dpdk::Mempool,
    /// MAC of every port slot.
    macs: Vec<wire::EthernetAddress>,
}

impl Announcer {
    /// One gratuitous ARP for `addr` out of port slot `port` (best effort: no buffer, no
    /// announcement).
    fn send(&self, io: &mut Io<'_>, port: usize, addr: std::net::Ipv4Addr) {
        self.ask(io, port, addr, addr);
    }

    /// One ARP request from `sender` for `target` out of port slot `port` (best effort).
    fn ask(&self, io: &mut Io<'_>, port: usize, sender: std::net::Ipv4Addr, target: std::net::Ipv4Addr) {
        let (Some(mac), Some(tx)) = (self.macs.get(port), io.txs.get_mut(port)) else { return };
        let frame = crate::pipeline::arp_request(*mac, sender, target);
        let Ok(m) = dpdk::Mbuf::from_bytes(&self.pool, &frame) else { return };
        let mut b = Burst::new();
        if b.push(m).is_ok() {
            let n = tx.tx(&mut b);
            if let Some(c) = io.queues.tx.get(port) {
                LcoreCounters::bump(c, n as u64);
            }
        }
    }
}

impl Reconfig<'_> {
    /// Every worker's learned neighbours, merged (without the expired ones).
    fn hops(&self) -> crate::neigh::Hops {
        crate::neigh::learned(self.learned.iter().map(|t| &t[..]), monotonic_ns())
    }

    /// Once a second: clears this worker's expired neighbours; each group's first worker asks
    /// for the next hops its services need that are unresolved or stale (so a learned one is
    /// confirmed every 30 s, and a changed MAC is learned). Called about once a millisecond;
    /// not the packet path.
    fn ask(&mut self, now_ns: u64, pipeline: &mut Pipeline<'_>, io: &mut Io<'_>) {
        if now_ns.saturating_sub(self.asked_ns) < crate::neigh::ASK_EVERY_NS {
            return;
        }
        self.asked_ns = now_ns;
        crate::neigh::expire(self.own_learned, &self.area.neigh_epoch, now_ns);
        let Some(a) = &self.announcer else { return };
        let Some(f) = pipeline.balancer_mut() else { return };
        if f.wanted().is_empty() {
            return;
        }
        let merged = shm_layout::merge_learned(self.learned.iter().map(|t| &t[..]), now_ns);
        for &(w, _) in f.wanted() {
            let learned_ns = merged
                .binary_search_by_key(&u32::from(w.hop), |e| u32::from_be_bytes(e.addr))
                .ok()
                .map(|i| merged[i].learned_ns);
            if crate::neigh::ask_now(learned_ns, now_ns) {
                a.ask(io, usize::from(w.port), w.src, w.hop);
            }
        }
    }

    /// Applies the current generation if it moved: between bursts, so no packet is in hand.
    /// Acknowledges it in the slot once the pipeline runs with it.
    #[inline]
    fn follow(&mut self, slot: &WorkerSlot, pipeline: &mut Pipeline<'_>, io: &mut Io<'_>) {
        let z = self.area.zero_epoch.load(Ordering::Acquire);
        if z != self.zeroed {
            // One request missed (the slot had no process when it came): zero every service,
            // rather than leave the one it named as it was.
            let key = if z == self.zeroed + 1 { self.area.zero_key.load(Ordering::Acquire) } else { 0 };
            if let Some(f) = pipeline.balancer_mut() {
                f.zero_counters(key);
            }
            self.zeroed = z;
            slot.zero_applied.store(z, Ordering::Release);
            // Not the packet path: one syscall per `ipvsadm -Z`.
            shm_layout::ring(self.bell);
        }
        let epoch = self.area.neigh_epoch.load(Ordering::Acquire);
        if epoch != self.neigh_seen {
            // Not the packet path: a next hop was learned or changed somewhere.
            self.neigh_seen = epoch;
            let hops = self.hops();
            if let Some(f) = pipeline.balancer_mut() {
                f.resolve(&hops);
            }
        }
        let g = self.area.generation.load(Ordering::Relaxed);
        if g == self.applied || g == self.failed {
            return;
        }
        let hops = self.hops();
        let result = read_config(self.area, &slot.cfg_reading).and_then(|(g, rt)| {
            pipeline
                .reconfigure(g, &self.group.served(&rt), self.share, &hops)
                .map(|()| (g, rt))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((g, rt)) => {
                let addrs = self.group.addresses(&rt);
                if let Some(a) = &self.announcer {
                    for &(port, addr) in addrs.iter().filter(|x| !self.addrs.contains(x)) {
                        a.send(io, port, addr);
                    }
                }
                self.addrs = addrs;
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
}
