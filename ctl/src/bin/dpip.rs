//! `dpip` for dpvs: addresses, routes, neighbours and links (see `ctl::dpip`).
#![forbid(unsafe_code)]

use ctl::dpip::{addr_show, neigh_show, parse, route_show, Op};
use ctl::exit_codes;
use ctl::front::{attach_or_exit, change, port_names};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help" || a == "help") {
        println!("{}", parse(&[]).unwrap_err());
        return;
    }
    let op = parse(&args).unwrap_or_else(|e| fail(e, exit_codes::USAGE));
    let shm = attach_or_exit("dpip");
    let rt = || ctl::cmd::config::snapshot(&shm).map(|(_, rt)| rt).unwrap_or_else(|e| fail(e, exit_codes::FAILURE));
    match op {
        Op::Change(c) => {
            if let Err(e) = change(&shm, c) {
                fail(&e, e.code);
            }
        }
        Op::AddrShow { dev, family } => print!("{}", addr_show(&rt(), &port_names(&shm), dev.as_deref(), family)),
        Op::RouteShow { family } => print!("{}", route_show(&rt(), &port_names(&shm), family)),
        Op::NeighShow => {
            let rows = ctl::cmd::service::neigh_view(
                &rt(),
                (&ctl::cmd::service::learned(&shm), shm_layout::monotonic_ns()),
                &port_names(&shm),
            );
            print!("{}", neigh_show(&rows));
        }
        Op::LinkShow { stats } => print!("{}", ctl::cmd::link::render_dpip(&ctl::cmd::link::view(&shm), stats)),
    }
}

fn fail(message: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("dpip: {message}");
    std::process::exit(code);
}
