//! `dpvsctl`: see `dpvsctl --help`.
#![forbid(unsafe_code)]

use std::io::Write;

use clap::Parser;
use ctl::cli::{Cli, Command, ServiceCommand, WorkerCommand};
use ctl::cmd::{control, render, service, stats, status, worker};
use ctl::exit_codes;
use ctl::instance::attach;
use mailbox::proto::Request;

fn main() {
    let cli = Cli::parse();
    let shm = match attach(&cli.target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dpvsctl: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let (out, code) = match cli.command {
        Command::Status => (render(&status::view(&shm), cli.json, status::render), exit_codes::OK),
        Command::Worker(WorkerCommand::List) => {
            (render(&worker::view(&shm), cli.json, |v| worker::render(v)), exit_codes::OK)
        }
        Command::Worker(WorkerCommand::Restart { slot, all, rolling, binary, timeout }) => {
            let slots: Vec<u32> =
                if all { (0..shm.layout().workers().len() as u32).collect() } else { slot.into_iter().collect() };
            let binary = binary.map(|b| b.display().to_string());
            let timeout = std::time::Duration::from_secs(timeout);
            let call = |s: u32| {
                control::call(&shm, &Request::WorkerRestart { slot: s, binary: binary.clone() }, timeout, cli.json)
            };
            let results: Vec<(String, i32)> = if rolling || slots.len() < 2 {
                let mut out = Vec::new();
                for s in slots {
                    let r = call(s);
                    let failed = r.1 != exit_codes::OK;
                    out.push(r);
                    if failed {
                        break;
                    }
                }
                out
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = slots.iter().map(|&s| scope.spawn(move || call(s))).collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| ("dpvsctl: a request thread failed\n".into(), exit_codes::FAILURE))
                        })
                        .collect()
                })
            };
            let code = results.iter().map(|r| r.1).find(|&c| c != exit_codes::OK).unwrap_or(exit_codes::OK);
            (results.into_iter().map(|r| r.0).collect::<String>(), code)
        }
        Command::Stats => (render(&stats::view(&shm), cli.json, stats::render), exit_codes::OK),
        Command::Service(ServiceCommand::List) => {
            (render(&service::view(&shm), cli.json, |v| service::render(v)), exit_codes::OK)
        }
    };
    if code != exit_codes::OK && !cli.json {
        eprint!("{out}");
        std::process::exit(code);
    }
    // A reader that went away (`dpvsctl stats | head`) is not an error worth a panic.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("dpvsctl: cannot write output: {e}");
            std::process::exit(exit_codes::FAILURE);
        }
    }
    std::process::exit(code);
}
