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
}

fn main() {
    manpages::generate_if_asked(Cli::command);
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DPVS_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    if let Err(e) = dpvs_health::run::run(&cli.target) {
        eprintln!("dpvs-health: {e}");
        std::process::exit(1);
    }
}
