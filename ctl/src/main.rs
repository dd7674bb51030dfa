//! `dpvsctl`: see `dpvsctl --help`.
#![forbid(unsafe_code)]

use std::io::Write;

use clap::{CommandFactory, Parser};
use ctl::cli::{Cli, Command};
use ctl::exec::execute;
use ctl::exit_codes;
use ctl::instance::attach;

fn main() {
    manpages::generate_if_asked(Cli::command);
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "dpvsctl", &mut std::io::stdout());
        return;
    }
    let shm = match attach(&cli.target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dpvsctl: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let (out, code) = execute(cli.command, &shm, cli.json, std::time::Duration::from_secs(cli.timeout));
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
