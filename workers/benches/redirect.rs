//! What a redirect costs: a packet that arrives on one lcore of a group while another lcore
//! owns its connection is parsed, steered and handed over on an SPSC `rte_ring`; the owner
//! takes it off the ring, parses it again and translates it, in an mbuf whose header and data
//! the other CPU wrote last, and frees it into a pool the receiver allocates from again.
//! Measured per packet with real mbufs from a DPDK mempool (EAL in this process: no PCI,
//! hugepages without files, or `--no-huge` when too few are free; file prefix
//! `wtredir-<pid>`), 64-byte UDP frames to a Full-NAT service, with 1 and 64k flows
//! (`cargo bench -p workers --bench redirect`; criterion's throughput is packets per second,
//! each timed batch 1024 packets):
//!
//! - `direct`: an lcore receives a burst it owns, as the worker does on an rx queue: each
//!   frame written into a fresh mbuf (the rx copy), the burst classified (its owner: itself),
//!   translated, and freed (the stand-in for the tx);
//! - `direct_cpu1`: the same on the owner's thread (CPU 1): its stages on frames it wrote
//!   itself, against which its stages in `redirected` are compared;
//! - `redirected`: the receiving lcore (CPU 0) writes, classifies and steers the frames and
//!   enqueues them in bursts of 32 on the ring; the owner (CPU 1) dequeues, classifies and
//!   translates them as in `direct`, and frees them. The time is the whole exchange's, from
//!   the first frame written to the last one translated, both CPUs working at once;
//! - `ring_only`: the same exchange of empty mbufs (allocated, enqueued, dequeued, freed): no
//!   frame written, no processing.
//!
//! Beside criterion's wall-clock figures each benchmark prints the TSC cycles a packet spends
//! in each stage on each side, read around each stage of each burst, for bursts handled only
//! (the waits for work or for room in the ring are not counted, nor a burst that took over
//! [`INTERRUPTED`] cycles: the thread lost its CPU), averaged over every batch run, warm-up
//! included. What a redirect costs on top of processing is the two sides' busy cycles less
//! those of `direct`: the receiver's classify, steer and enqueue, its extra fill cycles (the
//! mbufs come back from the other CPU), the owner's dequeue and its extra cycles over
//! `direct_cpu1` in the stages they share (the cache misses on the receiver's lines). The lines
//! after each `redirected` benchmark add them up.
//!
//! The receiver and `direct` run on the EAL main lcore (0, on CPU 0), with a mempool cache as
//! a worker has. The owner is a thread of its own, not an EAL lcore (the safe layer registers
//! no other thread): it frees its bursts into the pool's ring in one bulk call where a worker
//! frees them into its lcore's cache. It is pinned to CPU 1 with `taskset` on its thread id
//! (nothing in the dependencies sets an affinity), and the benchmark refuses to run when the
//! pinning does not hold. At most [`IN_FLIGHT`] packets wait in the ring: an owner that keeps
//! up, as below saturation, rather than a full ring of cold mbufs.

mod common;

use std::hint::spin_loop;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{frame, runtime, store, Store, P0, P1, VIP};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dpdk::{rdtsc, Burst, Eal, Mbuf, Mempool, Ring, BURST_SIZE};
use shm_layout::{ConnParts, RealCounters, ServiceCounters};
use workers::pipeline::{Action, Pipeline, PortCtx};

/// Packets a timed batch.
const BATCH: u64 = 1024;
/// Bursts a batch.
const BURSTS: u64 = BATCH / BURST_SIZE as u64;

/// The receiving lcore's CPU, and the owner's.
const RECEIVER_CPU: usize = 0;
const OWNER_CPU: usize = 1;
/// The group: two lcores; the receiver is its lcore 0, the owner its lcore 1.
const LCORES: u16 = 2;
const RECEIVER: u16 = 0;
const OWNER: u16 = 1;
/// Port slots, then one output burst per lcore of the group (as the poll loop lays them out).
const PORTS: usize = 2;
const OUTS: usize = PORTS + LCORES as usize;
/// The output burst of the packets handed to the owner.
const TO_OWNER: usize = PORTS + OWNER as usize;

/// The redirect ring's size, as the primary creates it.
const RING_SIZE: u32 = 4096;
/// Packets the receiver lets wait in the ring before it waits for room itself.
const IN_FLIGHT: u32 = 4 * BURST_SIZE as u32;
/// The pool: the primary's defaults (`mbufs_per_lcore`, `mbuf_cache`, its data room).
const POOL_MBUFS: u32 = 8191;
const POOL_CACHE: u32 = 256;
const DATA_ROOM: u16 = 2048 + 128;

/// One lcore's tables: its connection shard and counters.
struct Tables {
    store: Store,
    stats: Vec<ServiceCounters>,
    reals: Vec<RealCounters>,
}

impl Tables {
    fn new(flows: u32) -> Tables {
        Tables {
            store: store((flows * 2).next_power_of_two().max(1024)),
            stats: (0..shm_layout::TableSizes::SMALL.service_slots).map(|_| Default::default()).collect(),
            reals: (0..shm_layout::TableSizes::SMALL.real_slots).map(|_| Default::default()).collect(),
        }
    }

    /// The pipeline of lcore `me` of the group over these tables.
    fn pipeline(&mut self, me: u16) -> Pipeline<'_> {
        let s = &mut self.store;
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = conn::Shard::adopt(parts, 0);
        let services = workers::lb::build_services(&runtime(), (me, LCORES), &mut Vec::new(), &Default::default())
            .expect("services");
        // The ports' RSS unknown: flows owned by a hash of the client, as every fallback class
        // is (the redirect measured is the same whatever the class).
        let receive = workers::lb::Receive::new((me, LCORES), [None, None], |_, _| None);
        let mut fnat = workers::lb::Balancer::new(Vec::new(), shard, vec![P0, P1], 0)
            .with_stats(&self.stats, &self.reals)
            .with_receive(receive);
        fnat.reconfigure(1, services);
        let ports = vec![
            PortCtx { mac: P0, peer: 1, addrs: vec![VIP], addrs6: vec![], exception: None, is_exception: false },
            PortCtx { mac: P1, peer: 0, addrs: vec![], addrs6: vec![], exception: None, is_exception: false },
        ];
        Pipeline::with_balancer(ports, fnat)
    }
}

/// The output burst the poll loop puts a packet in for `action` (`None`: freed).
#[inline]
fn out_of(action: Action) -> Option<usize> {
    match action {
        Action::Forward(p) | Action::Nat { port: p, .. } => Some(usize::from(p)),
        Action::Redirect { lcore, .. } => Some(PORTS + usize::from(lcore)),
        Action::Reply(_) | Action::Drop(_) => None,
    }
}

/// A burst that took longer than this (cycles) lost its CPU on the way: not counted.
const INTERRUPTED: u64 = 100_000;

/// Cycles spent in each of a side's four stages, and the packets they were spent on.
#[derive(Debug, Default, Clone, Copy)]
struct Cycles {
    stage: [u64; 4],
    packets: u64,
    /// The burst in hand's cycles by stage, until [`Cycles::commit`].
    burst: [u64; 4],
    /// Bursts not counted (over [`INTERRUPTED`] cycles).
    interrupted: u64,
    /// Packets that did not go where the benchmark means them to (translated out of port 1,
    /// or handed to the owner): must stay 0, or the figures measure something else.
    astray: u64,
}

impl Cycles {
    /// Adds the time since `*t` to stage `s` of the burst in hand, and moves `*t` to now.
    #[inline]
    fn lap(&mut self, s: usize, t: &mut u64) {
        let now = rdtsc();
        self.burst[s] += now.wrapping_sub(*t);
        *t = now;
    }

    /// Counts the burst in hand, of `n` packets, unless it was interrupted.
    #[inline]
    fn commit(&mut self, n: usize) {
        if self.burst.iter().sum::<u64>() <= INTERRUPTED {
            for (total, b) in self.stage.iter_mut().zip(self.burst) {
                *total += b;
            }
            self.packets += n as u64;
        } else {
            self.interrupted += 1;
        }
        self.burst = [0; 4];
    }

    fn per_packet(&self, s: usize) -> f64 {
        self.stage[s] as f64 / self.packets.max(1) as f64
    }

    fn total(&self) -> f64 {
        (0..4).map(|s| self.per_packet(s)).sum()
    }

    /// `name (cpu N): a 1.0 + b 2.0 + ... = total` over the stages that have a name.
    fn line(&self, name: &str, cpu: usize, names: [&str; 4]) -> String {
        let parts: Vec<String> = (0..4)
            .filter(|&s| !names[s].is_empty())
            .map(|s| format!("{} {:.1}", names[s], self.per_packet(s)))
            .collect();
        format!(
            "  {name:<8} (cpu {cpu}): {} = {:.1} cycles/pkt ({} packets, {} bursts interrupted)",
            parts.join(" + "),
            self.total(),
            self.packets,
            self.interrupted
        )
    }
}

const FILL: usize = 0;
const CLASSIFY: usize = 1;
/// The receiver's steering (every packet to the owner's output burst), or the owner's
/// processing (each packet translated into its port's output burst).
const PROCESS: usize = 2;
const ENQUEUE: usize = 3;
const DEQUEUE: usize = 0;
const FREE: usize = 3;
const RECEIVER_STAGES: [&str; 4] = ["fill", "classify", "steer", "enqueue"];
const OWNER_STAGES: [&str; 4] = ["dequeue", "classify", "process", "free"];
const DIRECT_STAGES: [&str; 4] = ["fill", "classify", "process", "free"];

/// Writes `frames` (a burst's worth) into fresh mbufs of `pool`, as an rx copy does.
#[inline]
fn fill<'f>(pool: &Mempool, frames: impl Iterator<Item = &'f [u8]>, burst: &mut Burst) {
    for f in frames {
        let m = Mbuf::from_bytes(pool, f).expect("mbuf");
        if burst.push(m).is_err() {
            unreachable!("a burst holds BURST_SIZE frames");
        }
    }
}

/// The owner's work on the burst in hand from `*t` on: classified (with `steer`), translated
/// into `outs`, and freed (the stand-in for a tx); counts the burst.
#[inline]
fn own(
    pipeline: &mut Pipeline<'_>,
    burst: &mut Burst,
    outs: &mut [Burst; OUTS],
    steer: bool,
    c: &mut Cycles,
    t: &mut u64,
) {
    let n = burst.len();
    pipeline.classify((0..burst.len()).map(|i| (Some(0), burst.data(i))), steer);
    c.lap(CLASSIFY, t);
    let mut astray = 0;
    burst.distribute_packets(outs, |_, p| {
        let o = out_of(pipeline.process(0, p));
        astray += u64::from(o != Some(1));
        o
    });
    c.lap(PROCESS, t);
    for out in outs.iter_mut() {
        out.clear();
    }
    c.lap(FREE, t);
    c.commit(n);
    c.astray += astray;
}

/// One burst received and owned by the same lcore: `frames[*next..]` written into fresh mbufs
/// of `pool` (moving `*next` on), then [`own`].
fn direct_burst(
    pool: &Mempool,
    frames: &[Vec<u8>],
    next: &mut usize,
    burst: &mut Burst,
    pipeline: &mut Pipeline<'_>,
    outs: &mut [Burst; OUTS],
    c: &mut Cycles,
) {
    let mut t = rdtsc();
    fill(pool, frames[*next..*next + BURST_SIZE].iter().map(Vec::as_slice), burst);
    *next = (*next + BURST_SIZE) % frames.len();
    c.lap(FILL, &mut t);
    own(pipeline, burst, outs, true, c, &mut t);
}

/// What the two threads of an exchange share.
#[derive(Default)]
struct Exchange {
    /// Packets the owner has taken off the ring and handled so far.
    consumed: AtomicU64,
    /// Set when the benchmark is over (or the receiver's side unwinds).
    stop: AtomicBool,
    /// Set when the owner's thread has returned (or unwinds).
    gone: AtomicBool,
}

/// Sets its flag when dropped, so that a thread that panics does not leave the other waiting.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The receiver's side of one timed call: `iters` batches, each burst made by `make` (its
/// stages from the given TSC on) into `outs[TO_OWNER]` and handed over on `ring` once the
/// ring holds at most [`IN_FLIGHT`] packets; then waits until the owner has handled them all.
/// `produced` carries the count over calls. Returns the wall-clock time of the exchange.
fn hand_over(
    ex: &Exchange,
    ring: Ring,
    iters: u64,
    produced: &mut u64,
    outs: &mut [Burst; OUTS],
    c: &mut Cycles,
    mut make: impl FnMut(&mut [Burst; OUTS], &mut Cycles, &mut u64),
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters * BURSTS {
        let mut t = rdtsc();
        make(outs, c, &mut t);
        let stage = &mut outs[TO_OWNER];
        let n = stage.len();
        assert_eq!(n, BURST_SIZE, "every packet of the burst goes to the owner");
        while ring.count() + n as u32 > IN_FLIGHT {
            assert!(!ex.gone.load(Ordering::Acquire), "the owner's thread stopped");
            for _ in 0..16 {
                spin_loop();
            }
        }
        let mut t = rdtsc();
        let done = ring.enqueue(stage);
        c.lap(ENQUEUE, &mut t);
        assert_eq!(done, n, "the ring had room");
        c.commit(n);
    }
    *produced += iters * BATCH;
    while ex.consumed.load(Ordering::Acquire) < *produced {
        assert!(!ex.gone.load(Ordering::Acquire), "the owner's thread stopped");
        spin_loop();
    }
    start.elapsed()
}

/// The owner's loop: takes bursts off `ring` and hands each to `handle` (its stages from the
/// given TSC on), until the benchmark is over and the ring empty. Returns its cycles.
fn take_over(ex: &Exchange, ring: Ring, mut handle: impl FnMut(&mut Burst, &mut Cycles, &mut u64)) -> Cycles {
    let _gone = SetOnDrop(&ex.gone);
    let mut c = Cycles::default();
    let mut burst = Burst::new();
    let mut consumed = 0u64;
    loop {
        let mut t = rdtsc();
        let n = ring.dequeue(&mut burst);
        if n == 0 {
            if ex.stop.load(Ordering::Acquire) {
                return c;
            }
            spin_loop();
            continue;
        }
        c.lap(DEQUEUE, &mut t);
        handle(&mut burst, &mut c, &mut t);
        consumed += n as u64;
        ex.consumed.store(consumed, Ordering::Release);
    }
}

/// The CPUs the calling thread may run on, as `/proc` lists them (`"1"`, `"0-1"`).
fn allowed_cpus() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Pins the calling thread to `cpu` with `taskset` on its thread id.
///
/// # Errors
/// When its thread id cannot be read, `taskset` fails, or the affinity does not hold.
fn pin_this_thread(cpu: usize) -> Result<(), String> {
    let link = std::fs::read_link("/proc/thread-self").map_err(|e| format!("/proc/thread-self: {e}"))?;
    let tid = link.file_name().and_then(|t| t.to_str()).ok_or("no thread id")?.to_owned();
    let out = Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if !out.status.success() {
        return Err(format!("taskset: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let now = allowed_cpus();
    if now != cpu.to_string() {
        return Err(format!("thread {tid} may run on CPUs {now}, not {cpu}"));
    }
    Ok(())
}

/// Runs `bench` (the receiver's side) while an owner's thread pinned to [`OWNER_CPU`] runs
/// [`take_over`] with `handle`; returns the owner's cycles once it stopped.
fn with_owner<'s, H>(ex: &'s Exchange, ring: Ring, handle: H, bench: impl FnOnce()) -> Cycles
where
    H: FnMut(&mut Burst, &mut Cycles, &mut u64) + Send + 's,
{
    std::thread::scope(|s| {
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let owner = s.spawn(move || {
            let pinned = pin_this_thread(OWNER_CPU);
            let ok = pinned.is_ok();
            // The receiver waits for this answer: it cannot be gone.
            let _ = ready_tx.send(pinned);
            if !ok {
                let _gone = SetOnDrop(&ex.gone);
                return Cycles::default();
            }
            take_over(ex, ring, handle)
        });
        let stop = SetOnDrop(&ex.stop);
        if let Err(e) = ready.recv().expect("the owner's thread answers") {
            panic!("cannot pin the owner's thread to CPU {OWNER_CPU}: {e}");
        }
        bench();
        drop(stop);
        owner.join().expect("the owner's thread")
    })
}

/// Runs `bench` with a thread pinned to [`OWNER_CPU`] that runs `job` for each number of
/// iterations `bench` passes to its argument, which returns the time `job` measured.
fn on_owner_cpu<J>(job: J, bench: impl FnOnce(&dyn Fn(u64) -> Duration))
where
    J: FnMut(u64) -> Duration + Send,
{
    std::thread::scope(|s| {
        let (ask, asked) = std::sync::mpsc::channel::<u64>();
        let (answer, answers) = std::sync::mpsc::channel::<Result<Duration, String>>();
        s.spawn(move || {
            let mut job = job;
            let pinned = pin_this_thread(OWNER_CPU);
            let ok = pinned.is_ok();
            if answer.send(pinned.map(|()| Duration::ZERO)).is_err() || !ok {
                return;
            }
            // Until `ask` is dropped.
            while let Ok(iters) = asked.recv() {
                if answer.send(Ok(job(iters))).is_err() {
                    return;
                }
            }
        });
        if let Err(e) = answers.recv().expect("the thread on the owner's CPU answers") {
            panic!("cannot pin a thread to CPU {OWNER_CPU}: {e}");
        }
        let run = |iters: u64| {
            ask.send(iters).expect("the thread on the owner's CPU");
            answers.recv().expect("the thread on the owner's CPU").expect("a time")
        };
        bench(&run);
        drop(ask);
    })
}

/// EAL arguments: the main lcore (the receiver's) on CPU 0; hugepages without files when
/// enough are free, else `--no-huge`.
fn eal_args(prefix: &str) -> Vec<String> {
    let free: u32 = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let memory = if free >= 128 { "--in-memory" } else { "--no-huge" };
    [
        "redirect-bench",
        &format!("--lcores=0@{RECEIVER_CPU}"),
        memory,
        "-m",
        "128",
        "--no-pci",
        "--no-telemetry",
        "--log-level=*:warning",
        &format!("--file-prefix={prefix}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Removes the EAL's runtime directory of this process when dropped (after the EAL).
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

/// Wall-clock time and packets over every call of one benchmark.
#[derive(Default)]
struct Wall {
    time: Duration,
    packets: u64,
}

impl Wall {
    fn add(&mut self, d: Duration, iters: u64) -> Duration {
        self.time += d;
        self.packets += iters * BATCH;
        d
    }

    fn ns(&self) -> f64 {
        self.time.as_nanos() as f64 / self.packets.max(1) as f64
    }
}

fn bench(c: &mut Criterion) {
    let prefix = format!("wtredir-{}", std::process::id());
    let _runtime_dir = RuntimeDir(prefix.clone());
    let args = eal_args(&prefix);
    let eal = Eal::init(&args).expect("EAL init");
    let cpus = allowed_cpus();
    assert_eq!(cpus, RECEIVER_CPU.to_string(), "the EAL main lcore runs on CPU {RECEIVER_CPU}");
    println!(
        "redirect: EAL {}, TSC {:.3} GHz; receiver and direct on CPU {RECEIVER_CPU} (lcore 0), owner on CPU {OWNER_CPU}",
        args[2],
        dpdk::tsc_hz() as f64 / 1e9
    );
    let pool = Mempool::create_pktmbuf("wtredir_pool", POOL_MBUFS, POOL_CACHE, DATA_ROOM, -1).expect("mempool");
    let ring = Ring::create_spsc("wtredir_ring", RING_SIZE, -1).expect("ring");

    let mut group = c.benchmark_group("redirect_fnat_udp");
    group.throughput(Throughput::Elements(BATCH));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(20);

    // The ring alone: empty mbufs allocated, handed over, freed.
    {
        let ex = Exchange::default();
        let (mut sent, mut wall, mut produced) = (Cycles::default(), Wall::default(), 0u64);
        let mut outs: [Burst; OUTS] = Default::default();
        let handle = |burst: &mut Burst, c: &mut Cycles, t: &mut u64| {
            let n = burst.len();
            burst.clear();
            c.lap(FREE, t);
            c.commit(n);
        };
        let taken = with_owner(&ex, ring, handle, || {
            group.bench_function("ring_only", |b| {
                b.iter_custom(|iters| {
                    let d = hand_over(&ex, ring, iters, &mut produced, &mut outs, &mut sent, |outs, c, t| {
                        for _ in 0..BURST_SIZE {
                            let pushed = outs[TO_OWNER].push(Mbuf::alloc(&pool).expect("mbuf"));
                            debug_assert!(pushed.is_ok());
                        }
                        c.lap(FILL, t);
                    });
                    wall.add(d, iters)
                })
            });
        });
        if wall.packets > 0 {
            println!("ring_only: {:.1} ns/pkt (wall, whole exchange)", wall.ns());
            println!("{}", sent.line("receiver", RECEIVER_CPU, ["alloc", "", "", "enqueue"]));
            println!("{}", taken.line("owner", OWNER_CPU, ["dequeue", "", "", "free"]));
            println!(
                "  the ring alone (enqueue + dequeue): {:.1} cycles/pkt",
                sent.per_packet(ENQUEUE) + taken.per_packet(DEQUEUE)
            );
        }
    }

    for flows in [1u32, 65_536] {
        let mut owner_tables = Tables::new(flows);
        let mut receiver_tables = Tables::new(1);
        let mut owner = owner_tables.pipeline(OWNER);
        let mut receiver = receiver_tables.pipeline(RECEIVER);
        // Flows the receiver hands to the owner, opened on the owner, untimed.
        let mut ids = Vec::with_capacity(flows as usize);
        let mut i = 0u32;
        while ids.len() < flows as usize {
            let mut f = frame(i);
            let mut parsed = wire::Parsed::EMPTY;
            wire::classify_into(&f, wire::Checks::NONE, &mut parsed).expect("a UDP frame");
            let index = owner.balancer_mut().expect("balancer");
            // No other lcore owns it: the owner's.
            if index.owner(0, &parsed, &f).is_none() {
                ids.push(i);
                owner.classify(std::iter::once((Some(0), f.as_slice())), true);
                let action = owner.process(0, &mut f);
                assert!(matches!(action, Action::Nat { new: true, port: 1, .. }), "flow {i}: {action:?}");
            }
            i += 1;
        }
        // Batches of packets of flows spread over the whole table.
        let frames: Vec<Vec<u8>> = (0..(BATCH as u32 * 16).min(flows * BATCH as u32))
            .map(|k| frame(ids[(k.wrapping_mul(2_654_435_761) % flows) as usize]))
            .collect();
        let mut outs: [Burst; OUTS] = Default::default();
        let mut burst = Burst::new();
        let mut next = 0usize;

        // The lcore receives the bursts it owns.
        let (mut direct, mut direct_wall) = (Cycles::default(), Wall::default());
        group.bench_function(format!("direct/{flows}_flows"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters * BURSTS {
                    direct_burst(&pool, &frames, &mut next, &mut burst, &mut owner, &mut outs, &mut direct);
                }
                direct_wall.add(start.elapsed(), iters)
            })
        });
        if direct_wall.packets > 0 {
            println!("direct/{flows}_flows: {:.1} ns/pkt (wall)", direct_wall.ns());
            println!("{}", direct.line("lcore", RECEIVER_CPU, DIRECT_STAGES));
            assert_eq!(direct.astray, 0, "direct: every packet translated out of port 1");
        }

        // The same on the owner's thread: its processing of frames it wrote itself, the
        // control for the same stages in `redirected`.
        let (mut local, mut local_wall) = (Cycles::default(), Wall::default());
        {
            let (pool, frames, owner, local) = (&pool, &frames, &mut owner, &mut local);
            let (mut burst, mut outs, mut next) = (Burst::new(), <[Burst; OUTS]>::default(), 0usize);
            let job = move |iters: u64| {
                let start = Instant::now();
                for _ in 0..iters * BURSTS {
                    direct_burst(pool, frames, &mut next, &mut burst, owner, &mut outs, local);
                }
                start.elapsed()
            };
            on_owner_cpu(job, |run| {
                group.bench_function(format!("direct_cpu{OWNER_CPU}/{flows}_flows"), |b| {
                    b.iter_custom(|iters| local_wall.add(run(iters), iters))
                });
            });
        }
        if local_wall.packets > 0 {
            println!("direct_cpu{OWNER_CPU}/{flows}_flows: {:.1} ns/pkt (wall)", local_wall.ns());
            println!("{}", local.line("owner", OWNER_CPU, DIRECT_STAGES));
            assert_eq!(local.astray, 0, "direct on the owner's CPU: every packet translated out of port 1");
        }

        // The receiver hands the bursts over to their owner.
        let ex = Exchange::default();
        let (mut sent, mut wall, mut produced) = (Cycles::default(), Wall::default(), 0u64);
        let handle = {
            let (owner, mut outs) = (&mut owner, <[Burst; OUTS]>::default());
            // Its owner is this lcore: no second hand-over.
            move |burst: &mut Burst, c: &mut Cycles, t: &mut u64| own(owner, burst, &mut outs, false, c, t)
        };
        let taken = with_owner(&ex, ring, handle, || {
            group.bench_function(format!("redirected/{flows}_flows"), |b| {
                b.iter_custom(|iters| {
                    let d = hand_over(&ex, ring, iters, &mut produced, &mut outs, &mut sent, |outs, c, t| {
                        fill(&pool, frames[next..next + BURST_SIZE].iter().map(Vec::as_slice), &mut burst);
                        next = (next + BURST_SIZE) % frames.len();
                        c.lap(FILL, t);
                        receiver.classify((0..burst.len()).map(|i| (Some(0), burst.data(i))), true);
                        c.lap(CLASSIFY, t);
                        burst.distribute_packets(outs, |_, p| out_of(receiver.process(0, p)));
                        c.lap(PROCESS, t);
                    });
                    wall.add(d, iters)
                })
            });
        });
        if wall.packets == 0 || direct.packets == 0 {
            continue;
        }
        println!("redirected/{flows}_flows: {:.1} ns/pkt (wall, whole exchange, two CPUs at once)", wall.ns());
        println!("{}", sent.line("receiver", RECEIVER_CPU, RECEIVER_STAGES));
        println!("{}", taken.line("owner", OWNER_CPU, OWNER_STAGES));
        assert_eq!(taken.astray, 0, "redirected: every packet translated out of port 1");
        // The owner's stages against its own thread's, when that ran.
        let own_base = if local.packets > 0 { &local } else { &direct };
        let over = |a: &Cycles, base: &Cycles, s: usize| a.per_packet(s) - base.per_packet(s);
        println!(
            "  redirect over direct: {:+.1} cycles/pkt (busy {:.1} + {:.1} vs {:.1})",
            sent.total() + taken.total() - direct.total(),
            sent.total(),
            taken.total(),
            direct.total(),
        );
        println!(
            "    receiver: fill {:+.1} over direct (mbufs back from the other CPU), classify {:.1}, steer {:.1}, \
             enqueue {:.1}",
            over(&sent, &direct, FILL),
            sent.per_packet(CLASSIFY),
            sent.per_packet(PROCESS),
            sent.per_packet(ENQUEUE),
        );
        println!(
            "    owner: dequeue {:.1}; over {} (frames it wrote itself): classify {:+.1}, process {:+.1}, \
             free {:+.1}, together {:+.1}",
            taken.per_packet(DEQUEUE),
            if local.packets > 0 { "direct on its CPU" } else { "direct" },
            over(&taken, own_base, CLASSIFY),
            over(&taken, own_base, PROCESS),
            over(&taken, own_base, FREE),
            (CLASSIFY..=FREE).map(|s| over(&taken, own_base, s)).sum::<f64>(),
        );
    }
    group.finish();
    // Every mbuf back in the pool: nothing is held when the EAL goes.
    assert_eq!(pool.in_use_count(), 0, "mbufs not returned to the pool");
    drop(eal);
}

criterion_group!(benches, bench);
criterion_main!(benches);
