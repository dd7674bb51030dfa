//! `dpvs-worker <EAL args> -- --shm PATH --slot N --spawn K`: started by the primary.
#![forbid(unsafe_code)]

use clap::Parser;
use workers::exit_codes;
use workers::run::{attach, run, WorkerArgs};

/// Closes every descriptor above stderr that this process inherited. The primary's sockets
/// (memif control channels and listeners, tap queues, the instance lock) must stay the
/// primary's: a worker holding a copy would keep them alive after the primary closed them,
/// and DPDK code in the worker could read from them.
fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).filter(|&fd| fd > 2).collect(),
        Err(_) => return,
    };
    for fd in fds {
        // The directory handle used above is already closed; EBADF for it is expected.
        let _ = nix::unistd::close(fd);
    }
}

fn main() {
    // `dpvs-worker --layout-version`: the shared-memory layout this build speaks, the format
    // of the configuration generations it decodes and the layout of the connection shards it
    // adopts (the primary asks before it starts an upgraded worker).
    if std::env::args().nth(1).as_deref() == Some("--layout-version") {
        println!(
            "{} {} {}",
            shm_layout::LAYOUT_VERSION,
            mailbox::generation::FORMAT_VERSION,
            shm_layout::conn::CONN_LAYOUT_VERSION
        );
        return;
    }
    close_inherited_fds();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DPVS_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let all: Vec<String> = std::env::args().collect();
    let split = all.iter().position(|a| a == "--").unwrap_or(all.len());
    let eal_args = &all[..split];
    let ours = std::iter::once(all[0].clone()).chain(all.iter().skip(split + 1).cloned());
    let args = match WorkerArgs::try_parse_from(ours) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            std::process::exit(exit_codes::USAGE);
        }
    };
    // Die with the primary: a worker must never outlive it (a new primary would corrupt it).
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        tracing::warn!("cannot set the parent-death signal: {e}");
    }
    let shm = match attach(&args) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            std::process::exit(e.exit_code());
        }
    };
    if nix::unistd::getppid().as_raw() as u32 != shm.layout().header.primary_pid {
        tracing::error!("the primary (pid {}) is not this worker's parent", shm.layout().header.primary_pid);
        std::process::exit(exit_codes::ATTACH);
    }
    if let Err(e) = run(eal_args, &args, &shm) {
        tracing::error!(slot = args.slot, "{e}");
        std::process::exit(e.exit_code());
    }
}
