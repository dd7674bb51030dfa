//! `dpvs-health`: active health checks of a dpvs instance's real servers. See the library's
//! documentation.
#![forbid(unsafe_code)]

use clap::{CommandFactory, Parser};

/// Health checker of a dpvs instance: probes each real server of each service that has a
/// `[services.check]` and takes it out of scheduling while it fails.
#[derive(Debug, Parser)]
#[command(name = "dpvs-health", version)]
struct Cli {
    #[command(flatten)]
    target: ctl::cli::Target,
    /// Run this command (split at spaces) as `COMMAND up|down VIP` for each virtual address at
    /// start and whenever it changes: down when no service on it has a real server alive, up
    /// again when one has (for BIRD: conf/bird/dpvs-bird-vip.sh withdraws its route).
    #[arg(long, value_name = "COMMAND")]
    vip_hook: Option<String>,
}

fn main() {
    manpages::generate_if_asked(Cli::command);
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DPVS_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let hook = cli.vip_hook.map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    if hook.as_ref().is_some_and(Vec::is_empty) {
        eprintln!("dpvs-health: --vip-hook: no command given");
        std::process::exit(2);
    }
    if let Err(e) = dpvs_health::run::run(&cli.target, hook) {
        eprintln!("dpvs-health: {e}");
        std::process::exit(1);
    }
}
