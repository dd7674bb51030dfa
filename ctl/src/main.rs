//! `dpvsctl`: see `dpvsctl --help`.
#![forbid(unsafe_code)]

use std::io::Write;

use clap::Parser;
use ctl::cli::{Cli, Command, WorkerCommand};
use ctl::cmd::{render, stats, status, worker};
use ctl::exit_codes;
use ctl::instance::attach;

fn main() {
    let cli = Cli::parse();
    let shm = match attach(&cli.target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dpvsctl: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let out = match cli.command {
        Command::Status => render(&status::view(&shm), cli.json, status::render),
        Command::Worker(WorkerCommand::List) => render(&worker::view(&shm), cli.json, |v| worker::render(v)),
        Command::Stats => render(&stats::view(&shm), cli.json, stats::render),
    };
    // A reader that went away (`dpvsctl stats | head`) is not an error worth a panic.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("dpvsctl: cannot write output: {e}");
            std::process::exit(exit_codes::FAILURE);
        }
    }
}
