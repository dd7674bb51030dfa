//! Attach, claim the slot, poll, exit.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dpdk::{Burst, Eal, Port, RxQueue, TxQueue};
use shm_layout::{monotonic_ns, Shm, ShmError, WorkerState, MAX_WORKERS};

use crate::io::PacketIo;
use crate::lb::{self, Balancer};
use crate::lcore::{read_config, Counts, Group, Lcore, Reconfig};
use crate::pipeline::{Pipeline, PortCtx};

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
    if args.handover {
        // A planned handover is not urgent: its set-up shares the housekeeping CPU at the
        // default priority, not at the primary's (which a replacement after a crash keeps, as
        // nothing polls its queues until it is up).
        if let Err(e) = rustix::process::setpriority_process(None, 0) {
            tracing::warn!("cannot lower a successor's priority: {e}");
        }
    }
    let t0 = monotonic_ns();
    // Never cleaned up (`rte_eal_cleanup`), on any path: in a secondary it takes the shared
    // memory-hotplug lock and unmaps every memory segment under it, for milliseconds; a worker
    // killed then (by the supervisor, or a kill -9 right after it handed over) left the lock
    // held for good, and every later worker hung in its EAL init (seen in a test). The kernel
    // unmaps everything at exit without any shared lock; the primary reclaims the rest (the
    // lcore's pool cache, its IPC socket).
    let _eal = std::mem::ManuallyDrop::new(Eal::init(eal_args).map_err(dpdk_err("EAL init (secondary)"))?);
    tracing::info!(slot = args.slot, lcore = slot.lcore, eal_init_us = (monotonic_ns() - t0) / 1000, "attached");
    let (rxs, txs) = queues(layout, args.slot)?;
    // The current configuration generation, read under an announcement in the slot (the
    // incoming word while another process may still poll the slot).
    let group = Group::of(layout, args.slot);
    let share = group.share(args.slot);
    let reading = if args.handover { &slot.cfg_reading_incoming } else { &slot.cfg_reading };
    let slot_err = |why: String| WorkerError::Slot { slot: args.slot, why };
    let (generation, rt) = read_config(shm.generations(), reading).map_err(|e| slot_err(e.to_string()))?;
    // The lcore's connection shard, adopted as it is, or rebuilt if the previous worker died
    // mid-change.
    let path = shm_layout::conn::conn_shard_path(&args.shm, args.slot);
    let mut shard_file = shm_layout::ConnShardFile::open(&path)?;
    let (shard, rebuilt) = conn::Shard::adopt(shard_file.parts_mut(), monotonic_ns() / lb::TICK_NS);
    tracing::info!(slot = args.slot, connections = shard.used(), rebuilt, generation, "connection table adopted");
    let mut lb = balancer(shm, args.slot, shard, (generation, &group.served(&rt)), share)
        .map_err(|e| slot_err(e.to_string()))?
        .with_receive(receive(layout, &group, share));
    if !args.handover {
        // Alone with the table (a predecessor that handed over left its counts exact; one
        // that died may not have): its real servers' connections now, as adopted.
        lb.recount_connections();
    }
    let mut pipeline = Pipeline::with_balancer(port_contexts(layout.ports(), &rt), lb);
    // Packets are handed around among the lcores of this worker's group only.
    let (to, from) = redirect_rings(&group, args.slot)?;
    let ports = layout.ports();
    let mut slot_of_port = [u16::MAX; 64];
    for (i, p) in ports.iter().enumerate() {
        if let Some(s) = slot_of_port.get_mut(usize::from(p.port_id)) {
            *s = i as u16;
        }
    }
    let links: Vec<Port> = txs.iter().filter_map(|t| Port::by_id(t.port())).collect();
    // The first lcore of each group announces the addresses a generation adds on the ports
    // its group polls with gratuitous ARP, and asks for its services' next hops (one worker
    // per group is enough, and a group does not wait on another), from its own pool.
    let first = group.members.first() == Some(&args.slot);
    let pool = first.then(|| dpdk::Mempool::lookup(&slot.pool.as_str()).ok()).flatten();
    let announcer = pool.is_some().then(|| ports.iter().map(mac_of).collect());
    let taps = crate::capture::Taps::new(&layout.captures, args.slot, rxs.len(), txs.len());
    let mut io = DpdkIo { rxs, txs, slot_of_port, to, from, pool, links, taps, tsc_ms: dpdk::tsc_hz() / 1000 };
    let addrs = group.addresses(&rt);
    let cfg = Reconfig {
        gens: shm.generations(),
        bell: &layout.mailbox.doorbell,
        share,
        group,
        applied: generation,
        rt: mailbox::generation::Indexed::new(rt),
        failed: 0,
        zeroed: slot.zero_applied.load(Ordering::Acquire),
        learned: &layout.learned[..layout.workers().len()],
        neigh_seen: 0,
        own_learned: &layout.learned[args.slot],
        asked_ns: 0,
        addrs,
        announcer,
        queues: &layout.queue_counters[args.slot],
    };
    // Everything is ready: from the claim on (for a successor, the moment the polling worker
    // hands over) to the first poll there is nothing left to set up.
    let set_up = monotonic_ns();
    tracing::info!(slot = args.slot, set_up_us = (set_up - t0) / 1000, "set up");
    let refresh = || {
        io.refresh_links();
        io.follow_captures(false);
    };
    claim(slot, args, layout.header.housekeeping_cpu, refresh, || prefault(args.slot))?;
    // Logged when it stops: a write to the log between the claim and the first poll would
    // lengthen the gap (and block it, on a slow log pipe).
    let claim_us = (monotonic_ns() - set_up) / 1000;
    slot.lcore_now.store(dpdk::LcoreId::current().0, Ordering::Release);
    // A successor may have waited long (a hot standby): its clock starts now.
    if let Some(f) = pipeline.balancer_mut() {
        f.set_clock(monotonic_ns());
    }
    slot.cfg_applied.store(generation, Ordering::Release);
    // A fresh start (not a successor taking over) announces all its addresses.
    if !args.handover {
        cfg.announce(&mut io, &cfg.addrs);
    }
    let counts = Counts {
        lcore: &layout.counters[args.slot],
        queues: &layout.queue_counters[args.slot],
        gaps: args.handover.then_some(&layout.handover_gaps[args.slot]),
    };
    let handed_over = Lcore::new(slot, counts, &mut pipeline, io, cfg).run();
    if handed_over {
        // Off the data CPU before anything else: unmapping and exiting take milliseconds of
        // kernel time that the successor, polling there now, must not wait behind.
        pin(layout.header.housekeeping_cpu, "moving to the housekeeping CPU to exit");
    }
    tracing::info!(slot = args.slot, claim_us, handed_over, "stopped polling");
    drop(pipeline);
    drop(shard_file);
    if !handed_over {
        slot.state.store(WorkerState::Exited as u32, Ordering::Release);
    }
    Ok(())
}

/// Worker slot `slot`'s rx queues, and its tx queue on every port (by port slot).
fn queues(layout: &shm_layout::Layout, slot: usize) -> Result<(Vec<RxQueue>, Vec<TxQueue>), WorkerError> {
    let ports = layout.ports();
    let w = &layout.workers[slot];
    let port = |p: &shm_layout::PortSlot| {
        Port::by_name(&p.device.as_str()).map_err(dpdk_err(format!("port {}", p.name.as_str())))
    };
    let mut txs = Vec::with_capacity(ports.len());
    for p in ports {
        txs.push(port(p)?.tx_queue(w.tx_queue).map_err(dpdk_err("tx queue"))?);
    }
    let mut rxs = Vec::with_capacity(w.rx_queues().len());
    for q in w.rx_queues() {
        let p = ports.get(usize::from(q.port)).ok_or_else(|| WorkerError::Slot {
            slot,
            why: format!("rx queue names port slot {} of {}", q.port, ports.len()),
        })?;
        rxs.push(port(p)?.rx_queue(q.queue).map_err(dpdk_err("rx queue"))?);
    }
    Ok((rxs, txs))
}

/// The ports as the pipeline sees them, with their addresses in `rt`.
fn port_contexts(ports: &[shm_layout::PortSlot], rt: &conf::Runtime) -> Vec<PortCtx> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (addrs, addrs6) = PortCtx::addresses(rt, i);
            PortCtx {
                mac: mac_of(p),
                peer: p.peer.min(ports.len() as u16 - 1),
                addrs,
                addrs6,
                exception: (usize::from(p.exception) < ports.len()).then_some(p.exception),
                is_exception: p.is_exception != 0,
            }
        })
        .collect()
}

/// Worker slot `slot`'s balancer over `shard`, counting into its tables and learning
/// neighbours into its own, running the services `served` of generation `generation`.
fn balancer<'a>(
    shm: &'a Shm,
    slot: usize,
    shard: conn::Shard<'a>,
    (generation, served): (u64, &conf::Runtime),
    share: (u16, u16),
) -> Result<Balancer<'a>, lb::BuildError> {
    let layout = shm.layout();
    let ports = layout.ports();
    let learned =
        crate::neigh::learned(layout.learned[..layout.workers().len()].iter().map(|t| &t[..]), monotonic_ns());
    let services = lb::build_services(served, share, &mut Vec::new(), &learned)?;
    let mut f = Balancer::new(services, shard, ports.iter().map(mac_of).collect(), monotonic_ns())
        .with_stats(shm.service_counters(slot), shm.real_counters(slot))
        .with_neighbours(&layout.learned[slot], &layout.config.neigh_epoch)
        .with_mtus(ports.iter().map(|p| if p.mtu == 0 { 1500 } else { p.mtu }).collect());
    let services = f.take_services();
    f.reconfigure(generation, services);
    Ok(f)
}

/// Which lcore of the group each port's RSS delivers a packet to, for lcore `share.0` of
/// `share.1`: a port's queue belongs to the member of the group that polls it.
fn receive(layout: &shm_layout::Layout, group: &Group, share: (u16, u16)) -> lb::Receive {
    if share.1 <= 1 {
        return lb::Receive::single();
    }
    let workers = layout.workers();
    let poller = |port: u16, queue: u16| {
        let q = shm_layout::QueueRef { port, queue };
        group.members.iter().position(|&m| workers.get(m).is_some_and(|w| w.rx_queues().contains(&q))).map(|i| i as u16)
    };
    let specs = layout.rss().iter().map(|r| match r.kind() {
        shm_layout::RssKind::Unknown => None,
        _ => Some(lb::PortSpec { key: r.key, reta: r.reta() }),
    });
    lb::Receive::new(share, specs, poller)
}

/// Takes the slot: moves to the slot's data CPU (a successor, or a replacement after a death,
/// initialised on the housekeeping CPU); then a successor (`--handover`) reports ready and
/// waits, blocked on the owner word, until the polling worker hands its queues over (it
/// stores the word and wakes it: no sleep-and-poll between the handover and the first poll);
/// a fresh worker claims `Spawning -> Running`, only if the primary still expects its spawn.
///
/// `refresh_links` runs before the claim and, for a successor, at every wake-up while it waits:
/// a secondary process maps a memif port's shared regions when it first sees the link up
/// (IPC round trips to the primary); done in the first poll instead, they wait for the
/// primary's CPU while the rx rings fill, and a burst sent before they are done is dropped.
/// It runs before the move, on the CPU where the primary's IPC thread answers, and so does
/// `prefault` for a successor (once: the ports' shared memory, so that the first packets take
/// no page faults on the data CPU; 3 ms for two memif ports of 4096 slots, which a replacement
/// after a crash does not spend: nothing polls its queues meanwhile, and its first packets
/// fault in only what they touch).
fn claim(
    slot: &shm_layout::WorkerSlot,
    args: &WorkerArgs,
    housekeeping_cpu: i32,
    mut refresh_links: impl FnMut(),
    prefault: impl FnOnce(),
) -> Result<(), WorkerError> {
    let err = |why: &str| WorkerError::Slot { slot: args.slot, why: why.into() };
    refresh_links();
    if args.handover {
        prefault();
    }
    if slot.cpu != housekeeping_cpu {
        pin(slot.cpu, "moving to the data CPU");
    }
    if args.handover {
        // Ready: the primary now asks the polling worker to hand its queues over.
        if slot.incoming_state.compare_exchange(1, 2, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(err("handover cancelled while attaching"));
        }
        loop {
            let owner = slot.owner.load(Ordering::Acquire);
            if owner == args.spawn {
                return Ok(());
            }
            if slot.incoming_state.load(Ordering::Acquire) == 0 {
                return Err(err("handover cancelled"));
            }
            // A hot standby may wait here for a long time: blocked, not spinning. The timeout
            // bounds how late a cancellation is seen.
            shm_layout::futex_wait(&slot.owner, owner, Duration::from_millis(5));
            if slot.owner.load(Ordering::Acquire) != args.spawn {
                refresh_links();
            }
        }
    }
    // Beat before the claim: a Running slot is judged by its heartbeat.
    slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
    let (spawning, running) = (WorkerState::Spawning as u32, WorkerState::Running as u32);
    if slot.spawns.load(Ordering::Acquire) != args.spawn
        || slot.state.compare_exchange(spawning, running, Ordering::AcqRel, Ordering::Acquire).is_err()
    {
        return Err(err("claimed or cancelled while attaching"));
    }
    slot.owner.store(args.spawn, Ordering::Release);
    Ok(())
}

/// The rings to each lcore of `group` (by index in the group; `None` for `slot` itself) and
/// from the others, when the group has several lcores.
#[allow(clippy::type_complexity)]
fn redirect_rings(group: &Group, slot: usize) -> Result<(Vec<Option<dpdk::Ring>>, Vec<dpdk::Ring>), WorkerError> {
    let (mut to, mut from) = (Vec::new(), Vec::new());
    if group.members.len() < 2 {
        return Ok((to, from));
    }
    let ring = |a, b| {
        let name = shm_layout::redirect_ring_name(a, b);
        dpdk::Ring::lookup(&name).map_err(dpdk_err(format!("redirect ring {name}")))
    };
    for &other in &group.members {
        if other == slot {
            to.push(None);
        } else {
            to.push(Some(ring(slot, other)?));
            from.push(ring(other, slot)?);
        }
    }
    Ok((to, from))
}

/// A worker's DPDK queues and rings, as the poll loop sees them ([`PacketIo`]).
struct DpdkIo<'a> {
    /// Its rx queues.
    rxs: Vec<RxQueue>,
    /// Its tx queue on every port, by port slot.
    txs: Vec<TxQueue>,
    /// Port slot of each DPDK port id.
    slot_of_port: [u16; 64],
    /// Ring to each lcore of the group, by index in the group (`None` for this one; empty
    /// for a group of one).
    to: Vec<Option<dpdk::Ring>>,
    /// Rings from the other lcores.
    from: Vec<dpdk::Ring>,
    /// Its pool, for the frames it builds (ARP), when it sends any.
    pool: Option<dpdk::Mempool>,
    /// The ports, for link refreshes.
    links: Vec<Port>,
    /// The packet captures it serves on its queues.
    taps: crate::capture::Taps<'a>,
    tsc_ms: u64,
}

impl PacketIo for DpdkIo<'_> {
    type Burst = Burst;

    fn rx_queues(&self) -> usize {
        self.rxs.len()
    }

    #[inline]
    fn rx(&mut self, q: usize, burst: &mut Burst) -> usize {
        self.rxs[q].rx(burst)
    }

    #[inline]
    fn port_slot(&self, port_id: u16) -> Option<u16> {
        self.slot_of_port.get(usize::from(port_id)).copied().filter(|&s| s != u16::MAX)
    }

    fn ports(&self) -> usize {
        self.txs.len()
    }

    #[inline]
    fn tx(&mut self, port: usize, out: &mut Burst) -> usize {
        self.txs[port].tx(out)
    }

    fn send(&mut self, port: usize, frame: &[u8]) -> bool {
        let (Some(pool), Some(tx)) = (&self.pool, self.txs.get_mut(port)) else { return false };
        let Ok(m) = dpdk::Mbuf::from_bytes(pool, frame) else { return false };
        let mut b = Burst::new();
        b.push(m).is_ok() && tx.tx(&mut b) == 1
    }

    #[inline]
    fn redirect(&mut self, lcore: usize, out: &mut Burst) -> usize {
        match self.to.get(lcore) {
            Some(Some(ring)) => ring.enqueue(out),
            _ => 0,
        }
    }

    fn redirect_rings(&self) -> usize {
        self.from.len()
    }

    #[inline]
    fn redirected(&mut self, ring: usize, burst: &mut Burst) -> usize {
        self.from[ring].dequeue(burst)
    }

    fn refresh_links(&mut self) {
        for p in &self.links {
            p.link_up();
        }
    }

    fn follow_captures(&mut self, polling: bool) {
        let slot_of = &self.slot_of_port;
        let slot_of = |id| slot_of.get(usize::from(id)).copied().filter(|&s| s != u16::MAX);
        self.taps.follow(&self.rxs, &self.txs, slot_of, polling);
    }

    #[inline]
    fn cycles(&self) -> u64 {
        dpdk::rdtsc()
    }

    fn cycles_per_ms(&self) -> u64 {
        self.tsc_ms
    }
}

/// Faults in the memif ports' regions (rings and buffers), which the link refresh mapped: a
/// worker that took a port over without this took about 2 000 page faults on its data CPU in
/// its first few thousand packets. Best effort.
fn prefault(slot: usize) {
    let t0 = monotonic_ns();
    match dpdk::prefault_shared_mappings("memif_region") {
        Ok((regions, bytes)) => {
            tracing::info!(slot, regions, bytes, took_us = (monotonic_ns() - t0) / 1000, "ports' memory pre-faulted")
        }
        Err(e) => tracing::warn!(slot, "cannot pre-fault the ports' memory: {e}"),
    }
}

/// Moves this thread to CPU `cpu` (negative: none configured, it stays). Best effort: a
/// refusal (a cpuset without that CPU) is logged and changes nothing.
fn pin(cpu: i32, why: &str) {
    if let Err(e) = shm_layout::pin_to_cpu(cpu) {
        tracing::warn!(cpu, "{why}: {e}");
    }
}

fn mac_of(p: &shm_layout::PortSlot) -> wire::EthernetAddress {
    wire::EthernetAddress([p.mac[0], p.mac[1], p.mac[2], p.mac[3], p.mac[4], p.mac[5]])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

    use shm_layout::Shm;

    use super::*;

    /// A layout in a file of its own, slot 0 unpinned (cpu -1, so that no test thread moves).
    struct Rig(PathBuf, Shm);

    impl Rig {
        fn new(name: &str) -> Rig {
            let dir = std::env::temp_dir().join(format!("workers-claim-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let shm = Shm::create(&dir.join("t.shm"), shm_layout::TableSizes::SMALL, |l, _| {
                l.workers[0].cpu = -1;
                l.header.housekeeping_cpu = -1;
            })
            .unwrap();
            Rig(dir, shm)
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn successor(spawn: u32) -> WorkerArgs {
        WorkerArgs { shm: PathBuf::new(), slot: 0, spawn, handover: true }
    }

    /// Slot 0 polled by process 1, with a successor attaching.
    fn attaching(rig: &Rig) -> &shm_layout::WorkerSlot {
        let slot = &rig.1.layout().workers[0];
        slot.owner.store(1, Release);
        slot.incoming_state.store(1, Release);
        slot
    }

    /// Until the successor has reported ready.
    fn until_ready(slot: &shm_layout::WorkerSlot) {
        while slot.incoming_state.load(Acquire) != 2 {
            std::thread::yield_now();
        }
    }

    /// The successor reports ready and returns only once the owner word is its own (stored and
    /// woken as the departing worker does), never while another process owns the slot (20 ms
    /// of waiting checked; a successor that returned early would fail it whatever the load).
    /// It refreshes its links (maps memif regions) before it reports ready and again while it
    /// waits (a 5 ms wake-up at least once in 20 ms).
    #[test]
    fn a_successor_polls_only_after_the_owner_word_names_it() {
        let rig = Rig::new("wake");
        let slot = attaching(&rig);
        let refreshes = std::sync::atomic::AtomicU32::new(0);
        let refresh = || {
            // Before the ready report, never after the claim.
            assert_ne!(slot.owner.load(Acquire), 2, "refreshed after the handover");
            refreshes.fetch_add(1, Relaxed);
        };
        let claimed = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let r = claim(slot, &successor(2), -1, refresh, || ());
                (r.is_ok(), slot.owner.load(Acquire))
            });
            // Ready, then waiting: the old owner still polls.
            until_ready(slot);
            assert!(refreshes.load(Relaxed) >= 1, "links refreshed before the ready report");
            std::thread::sleep(Duration::from_millis(20));
            assert!(!t.is_finished(), "the successor must wait while process 1 owns the slot");
            assert!(refreshes.load(Relaxed) >= 2, "and again while it waits");
            slot.owner.store(2, Release);
            shm_layout::futex_wake(&slot.owner);
            t.join().unwrap()
        });
        assert_eq!(claimed, (true, 2));
    }

    /// A cancelled handover (the primary clears the incoming state) ends the wait with an
    /// error, and a successor that finds the handover cancelled before it was ready never
    /// waits at all; in both cases the slot stays the old process's.
    #[test]
    fn a_cancelled_handover_ends_the_wait_and_leaves_the_slot_alone() {
        let rig = Rig::new("cancel");
        let slot = attaching(&rig);
        std::thread::scope(|s| {
            let t = s.spawn(|| claim(slot, &successor(2), -1, || (), || ()).is_err());
            until_ready(slot);
            slot.incoming_state.store(0, Release);
            assert!(t.join().unwrap(), "a cancelled successor gives up");
        });
        assert_eq!(slot.owner.load(Acquire), 1);
        slot.incoming_state.store(0, Release);
        assert!(claim(slot, &successor(3), -1, || (), || ()).is_err(), "cancelled while attaching");
        assert_eq!(slot.owner.load(Acquire), 1);
    }
}
