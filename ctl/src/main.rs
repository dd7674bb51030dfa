//! `dpvsctl`: see `dpvsctl --help`.
#![forbid(unsafe_code)]

use clap::Parser;
use ctl::cli::{Cli, Command, WorkerCommand};
use ctl::cmd::{print_json, stats, status, worker};
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
    match cli.command {
        Command::Status => {
            let v = status::view(&shm);
            if cli.json {
                print_json(&v)
            } else {
                status::print(&v)
            }
        }
        Command::Worker(WorkerCommand::List) => {
            let v = worker::view(&shm);
            if cli.json {
                print_json(&v)
            } else {
                worker::print(&v)
            }
        }
        Command::Stats => {
            let v = stats::view(&shm);
            if cli.json {
                print_json(&v)
            } else {
                stats::print(&v)
            }
        }
    }
}
