//! `dpvs`: the primary process of a dpvs instance.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::CommandFactory;
use clap::Parser;
use conf::Config;
use dpdk::Eal;
use primary::exit_codes;
use primary::instance::{prepare_memif_sockets, remove_runtime_files, InstanceLock};
use primary::ports::{create_pools, create_redirect_rings, setup_ports, shutdown_ports};

/// mimalloc: after a change that frees a large configuration (`ipvsadm -C`, then `-R` of 70 000
/// services) glibc's malloc sorted the freed chunks on the next allocations, and the first
/// change after it took 12 ms instead of 0.1 (docs/measurements.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use primary::shm_init::{self, PoolFacts, PortFacts, PrimaryFacts, StartFacts};
use primary::supervisor::Supervisor;
use shm_layout::{monotonic_ns, InstanceState};

/// Layer-4 load balancer on DPDK: the primary process. It owns hugepage memory and the ports,
/// and runs forwarding in supervised worker processes.
#[derive(Debug, Parser)]
#[command(name = "dpvs", version)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default (conf/samples/tap-fnat.toml):
    /// a Full-NAT service over two tap ports, one worker.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The worker binary (default: `dpvs-worker` beside this binary).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Validate the configuration, print the resolved EAL command lines, and exit.
    #[arg(long)]
    check: bool,
}

fn main() {
    manpages::generate_if_asked(Cli::command);
    let cli = Cli::parse();
    let cfg = match &cli.config {
        Some(p) => match Config::from_file(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("dpvs: {e}");
                std::process::exit(exit_codes::CONFIG);
            }
        },
        None => Config::embedded_default(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DPVS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.instance.log_level)),
        )
        .init();
    // Allowed (a VRRP backup's VIP), but a typo looks the same: say it once.
    let held: std::collections::HashSet<_> = cfg.addresses.iter().map(|a| a.addr).collect();
    for s in cfg.services.iter().filter(|s| !held.contains(&s.vip)) {
        tracing::warn!(
            "service {} {}:{}: no port holds its VIP, so nothing answers ARP for it until one is given it (dpip addr add, as keepalived's notify script does on a VRRP master)",
            s.protocol.name(),
            s.vip,
            s.port
        );
    }
    if cli.check {
        println!("configuration {} is valid", cfg.source);
        println!("primary: {}", primary::eal_args::primary(&cfg).join(" "));
        for (g, wl) in cfg.worker_lcores() {
            println!("worker {} (group {}): {}", wl.slot, g.name, primary::eal_args::worker(&cfg, &wl.lcore).join(" "));
        }
        return;
    }
    std::process::exit(run(&cli, &cfg));
}

fn run(cli: &Cli, cfg: &Config) -> i32 {
    let _span = tracing::info_span!("dpvs", instance = %cfg.instance.name).entered();
    let lock = match InstanceLock::acquire(cfg) {
        Ok(l) => l,
        Err(e) => {
            fatal(e);
            return exit_codes::ALREADY_RUNNING;
        }
    };
    let worker_bin = cli.worker_bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("dpvs-worker")))
            .unwrap_or_else(|| PathBuf::from("dpvs-worker"))
    });
    if !worker_bin.is_file() {
        fatal(format_args!("worker binary {} not found (use --worker-bin)", worker_bin.display()));
        return exit_codes::CONFIG;
    }
    // We hold the lock, so nothing of a previous instance with this name is alive: files it
    // left are stale.
    let stale = remove_runtime_files(cfg);
    if !stale.is_empty() {
        tracing::info!(files = stale.len(), "removed runtime files of an earlier instance");
    }

    if let Err(e) = prepare_memif_sockets(cfg) {
        fatal(format_args!("memif socket: {e}"));
        return exit_codes::SETUP;
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            fatal(format_args!("cannot install signal handler: {e}"));
            return exit_codes::SETUP;
        }
    }

    keep_control_threads_on(cfg.instance.housekeeping_cpu);
    raise_priority();
    let t0 = monotonic_ns();
    let eal = match Eal::init(&primary::eal_args::primary(cfg)) {
        Ok(e) => e,
        Err(e) => {
            fatal(format_args!("EAL init failed: {e}"));
            remove_runtime_files(cfg);
            return exit_codes::SETUP;
        }
    };
    let eal_init_us = (monotonic_ns() - t0) / 1000;
    tracing::info!(eal_init_us, "EAL primary initialised");

    let code = match setup_and_supervise(cli, cfg, &stop, worker_bin, eal_init_us) {
        Ok(()) => exit_codes::OK,
        Err(e) => {
            fatal(e);
            exit_codes::SETUP
        }
    };
    drop(eal);
    let removed = remove_runtime_files(cfg);
    tracing::info!(files = removed.len(), lock = %lock.path().display(), "runtime files removed; stopped");
    lock.release();
    code
}

/// Tells the operator why the primary stops. Through tracing, whose subscriber writes to stderr
/// as `... ERROR dpvs{instance=...}: dpvs: <message>` (the target is this binary, `dpvs`);
/// straight to stderr as `dpvs: <message>` when the log filter (`log_level`, `DPVS_LOG`) hides
/// this binary's errors, so that no filter silences them. (Before the subscriber is set up,
/// `main` writes the second form.)
fn fatal(message: impl std::fmt::Display) {
    if tracing::enabled!(tracing::Level::ERROR) {
        tracing::error!("{message}");
    } else {
        eprintln!("dpvs: {message}");
    }
}

fn setup_and_supervise(
    _cli: &Cli,
    cfg: &Config,
    stop: &AtomicBool,
    worker_bin: PathBuf,
    eal_init_us: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let pools = create_pools(cfg)?;
    shm_init::create_conn_shards(cfg, shm_init::unix_now_ns().max(1))?;
    let redirect = create_redirect_rings(cfg)?;
    let ports = setup_ports(cfg, &pools)?;
    let facts = StartFacts {
        primary: PrimaryFacts::now(eal_init_us),
        ports: ports
            .iter()
            .map(|rp| PortFacts {
                port_id: rp.port.id(),
                mac: rp.port.mac_addr().unwrap_or_default().0,
                driver: rp.driver.clone(),
                rss: rp.rss.clone(),
            })
            .collect(),
        pools: pools.iter().map(|p| PoolFacts { name: p.name(), size: p.size(), avail: p.free_count() }).collect(),
        startup_text: shm_init::startup_text(cfg),
    };
    // Filled, then published (the layout version stored last): see `shm_init`.
    let shm = shm_init::create(cfg, &facts)?;
    tracing::info!(shm = %shm.path().display(), "shared memory published");
    serve_captures(&shm);
    primary::telemetry::register(shm.path());

    let mut sup = Supervisor::new(cfg, &shm, &pools, &ports, &redirect, worker_bin);
    sup.start_all();
    shm.layout().header.state.store(InstanceState::Running as u32, Ordering::Release);
    tracing::info!(workers = shm.layout().workers().len(), "running; SIGTERM or SIGINT stops");
    sup.run_until(stop);

    tracing::info!("stopping: workers first, then ports");
    sup.stop_all();
    // The shared state goes first: closing a memif server port races DPDK 22.11's interrupt
    // thread when the peer disconnects at the same moment (seen once in ~20 bench shutdowns, a
    // SIGSEGV in rte_intr_fd_get), and a crash there must not leave the instance behind.
    let _ = shm.unlink();
    shutdown_ports(&ports);
    Ok(())
}

/// Answers the capture requests of `dpdk-dumpcap` and `dpdk-pdump` (see `primary::capture`),
/// from a mapping of the shared memory of their own. Without it the instance runs, uncaptured.
fn serve_captures(shm: &shm_layout::Shm) {
    let mapping = match shm_layout::Shm::open(shm.path()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::warn!("packet capture unavailable: {e}");
            return;
        }
    };
    let decide = move |req: &dpdk::CaptureRequest| {
        primary::capture::decide(&mapping, req, |name| dpdk::Port::by_name(name).ok().map(|p| p.id()))
    };
    if let Err(e) = dpdk::serve_capture_requests(Box::new(decide)) {
        tracing::warn!("packet capture unavailable: {e}");
    }
}

/// Confines this process to the housekeeping CPU before the EAL starts. The EAL puts its
/// control threads (the multi-process IPC handler that answers every worker's requests, the
/// interrupt thread, telemetry) on the CPUs the process may use that no lcore of its own uses:
/// unconfined, those are the workers' data CPUs, where each request of a starting worker
/// would preempt a forwarding lcore (measured: hundreds of runs during a handover, each a gap).
/// The main lcore's thread is pinned by the EAL to `main_cpu` either way. Best effort.
fn keep_control_threads_on(cpu: Option<u32>) {
    let Some(cpu) = cpu else { return };
    if let Err(e) = shm_layout::pin_to_cpu(cpu as i32) {
        tracing::warn!(cpu, "cannot confine the primary to its housekeeping CPU: {e}");
    }
}

/// The primary's priority (nice value) on the housekeeping CPU, which it shares with whatever
/// else runs there. It sleeps but for control work; what it must do promptly is answer the
/// EAL requests of starting workers (every secondary's EAL init and each memif port's regions
/// are synchronous requests to the primary's IPC thread): at the default priority, behind a
/// busy process on that CPU, each waited 2-5 ms and a worker replacing a crashed one took 150
/// ms more to start (measured 2026-12-04). Threads inherit it, so it is set before the EAL
/// starts its threads; workers inherit it too (a successor for a planned handover lowers
/// itself back to 0, a replacement after a crash keeps it: nothing polls its queues meanwhile).
const PRIMARY_NICE: i32 = -10;

/// Sets [`PRIMARY_NICE`]. Best effort (needs CAP_SYS_NICE).
fn raise_priority() {
    if let Err(e) = rustix::process::setpriority_process(None, PRIMARY_NICE) {
        tracing::warn!(nice = PRIMARY_NICE, "cannot raise the primary's priority: {e}");
    }
}
