//! Attach, claim the slot, poll, exit.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dpdk::{Burst, Eal, Fate, Port, RxQueue, TxQueue};
use shm_layout::{monotonic_ns, LcoreCounters, Shm, ShmError, WorkerSlot, WorkerState, MAX_WORKERS};

use crate::pipeline::{Action, DropReason, Pipeline, PortCtx, Reply};

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

/// One rx queue with where its frames go.
struct RxPath {
    queue: RxQueue,
    /// Port slot it receives on (answers go back out of it).
    port: u16,
    /// Port slot layer-2 forwarding sends to (index into the tx queue table).
    tx: usize,
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
    if slot.state() != WorkerState::Spawning {
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
        let tx = usize::from(p.peer).min(ports.len() - 1);
        rxs.push(RxPath { queue: port.rx_queue(q.queue).map_err(dpdk_err("rx queue"))?, port: q.port, tx });
    }
    let pipeline = Pipeline::new(
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortCtx {
                mac: wire::EthernetAddress([p.mac[0], p.mac[1], p.mac[2], p.mac[3], p.mac[4], p.mac[5]]),
                peer: p.peer.min(ports.len() as u16 - 1),
                addrs: layout
                    .addresses()
                    .iter()
                    .filter(|a| usize::from(a.port) == i)
                    .map(|a| std::net::Ipv4Addr::from(a.addr))
                    .collect(),
            })
            .collect(),
    );

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
    let counters = &layout.counters[(slot.lcore as usize).min(layout.counters.len() - 1)];
    let links: Vec<Port> = txs.iter().filter_map(|t| Port::by_id(t.port())).collect();
    poll(slot, counters, &pipeline, &mut rxs, &mut txs, &links);

    slot.state.store(WorkerState::Exited as u32, Ordering::Release);
    drop(rxs);
    drop(txs);
    drop(eal);
    Ok(())
}

/// The forwarding loop. No allocation, no lock, no log: it counts.
fn poll(
    slot: &WorkerSlot,
    c: &LcoreCounters,
    pipeline: &Pipeline,
    rxs: &mut [RxPath],
    txs: &mut [TxQueue],
    links: &[Port],
) {
    let tsc_ms = dpdk::tsc_hz() / 1000;
    let idle_sleep = Duration::from_micros(u64::from(slot.idle_sleep_us));
    let mut burst = Burst::new();
    let mut replies = Burst::new();
    let now = monotonic_ns();
    slot.heartbeat_ns.store(now, Ordering::Release);
    slot.polling_ns.store(now, Ordering::Release);
    let mut next_beat = dpdk::rdtsc() + tsc_ms;
    loop {
        let start = dpdk::rdtsc();
        let mut received = 0u64;
        for path in rxs.iter_mut() {
            let n = path.queue.rx(&mut burst);
            if n == 0 {
                continue;
            }
            received += n as u64;
            // Counted per burst, so a worker killed mid-round leaves at most the burst in
            // hand uncounted.
            LcoreCounters::bump(&c.rx_packets, n as u64);
            let (mut arp, mut echo) = (0u64, 0u64);
            let port = path.port;
            let runts = burst.partition(&mut replies, |frame| match pipeline.process(port, frame) {
                Action::Forward(_) => Fate::Keep,
                Action::Reply(Reply::Arp) => {
                    arp += 1;
                    Fate::Move
                }
                Action::Reply(Reply::IcmpEcho) => {
                    echo += 1;
                    Fate::Move
                }
                Action::Drop(DropReason::Runt) => Fate::Free,
            });
            let mut sent = txs[path.tx].tx(&mut burst);
            let mut unsent = burst.len();
            burst.clear();
            if !replies.is_empty() {
                sent += txs[usize::from(port)].tx(&mut replies);
                unsent += replies.len();
                replies.clear();
                LcoreCounters::bump(&c.arp_replies, arp);
                LcoreCounters::bump(&c.icmp_echo_replies, echo);
            }
            LcoreCounters::bump(&c.rx_bursts, 1);
            LcoreCounters::bump(&c.tx_packets, sent as u64);
            LcoreCounters::bump(&c.drop_tx_full, unsent as u64);
            LcoreCounters::bump(&c.drop_runt, runts as u64);
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
            slot.heartbeat_ns.store(monotonic_ns(), Ordering::Release);
            // Link state refresh: a memif port in a secondary must see its peer leave, or it
            // keeps reading the departed peer's rings after the next peer connects.
            for p in links {
                p.link_up();
            }
            if slot.stop.load(Ordering::Acquire) != 0 {
                break;
            }
        }
        if received == 0 && !idle_sleep.is_zero() {
            std::thread::sleep(idle_sleep);
        }
    }
}
