//! Runs one parsed command against an attached instance: the body of `dpvsctl`, also used
//! for each line of `dpvsctl batch`.

use std::io::BufRead;
use std::time::Duration;

use mailbox::proto::{Change, Request};
use shm_layout::Shm;

use crate::cli::{
    AclCommand, AddrCommand, Cli, Command, ConfigCommand, ConnCommand, LaddrCommand, LinkCommand, NeighCommand,
    RealCommand, RouteCommand, ServiceCommand, WorkerCommand,
};
use crate::cmd::{config, conn, control, link, render, service, stats, status, worker};
use crate::exit_codes;

/// Runs `command`. Returns what to print and the exit code.
pub fn execute(command: Command, shm: &Shm, json: bool, timeout: Duration) -> (String, i32) {
    let change = |c: Change| control::call(shm, &Request::Change(c), timeout, json);
    let runtime = || config::snapshot(shm);
    let port_names = || -> Vec<String> { shm.layout().ports().iter().map(|p| p.name.as_str().into_owned()).collect() };
    let read = |text: Result<String, config::ConfigError>| match text {
        Ok(t) => (t, exit_codes::OK),
        Err(e) => (format!("dpvsctl: {e}\n"), exit_codes::FAILURE),
    };
    match command {
        Command::Status => (render(&status::view(shm), json, status::render), exit_codes::OK),
        Command::Worker(WorkerCommand::List) => {
            (render(&worker::view(shm), json, |v| worker::render(v)), exit_codes::OK)
        }
        Command::Worker(WorkerCommand::Restart { slot, all, rolling, binary }) => {
            restart(shm, slot, all, rolling, binary, timeout, json)
        }
        Command::Stats => (render(&stats::view(shm), json, stats::render), exit_codes::OK),
        Command::Service(ServiceCommand::List { stats: false, rate: false }) => read(
            runtime().map(|(_, rt)| render(&service::view(&rt, &conn::per_real(shm)), json, |v| service::render(v))),
        ),
        Command::Service(ServiceCommand::List { rate, .. }) => read(runtime().map(|(_, rt)| {
            let counters = if rate {
                let before = service::stats(shm);
                std::thread::sleep(Duration::from_secs(1));
                service::rates(&before, &service::stats(shm), 1.0)
            } else {
                service::stats(shm)
            };
            render(&service::stats_rows(&rt, &counters), json, |_| service::render_stats(&rt, &counters, rate))
        })),
        Command::Link(LinkCommand::Show) => (render(&link::view(shm), json, |v| link::render(v)), exit_codes::OK),
        Command::Conn(ConnCommand::List { vip, protocol, client, worker, offset, limit }) => {
            let filter = conn::Filter { protocol: protocol.map(Into::into), vip, client, worker };
            let (rows, matched) = conn::list(shm, &filter, offset, limit);
            (render(&rows, json, |r| conn::render(r, matched)), exit_codes::OK)
        }
        Command::Service(ServiceCommand::Add { service, scheduler, persistent, proxy_protocol, group }) => {
            change(Change::ServiceAdd {
                service: service.key(),
                scheduler,
                persistence: persistent,
                proxy_protocol,
                group,
            })
        }
        Command::Service(ServiceCommand::Edit { service, scheduler, persistent, proxy_protocol }) => {
            change(Change::ServiceEdit { service: service.key(), scheduler, persistence: persistent, proxy_protocol })
        }
        Command::Service(ServiceCommand::Del { service }) => change(Change::ServiceDel { service: service.key() }),
        Command::Service(ServiceCommand::Clear) => change(Change::ServiceClear),
        Command::Real(RealCommand::Add { service, real, weight, forward, upper, lower }) => change(Change::RealAdd {
            service: service.key(),
            addr: *real.ip(),
            port: real.port(),
            weight,
            forward: forward.into(),
            thresholds: (upper, lower),
        }),
        Command::Real(RealCommand::Edit { service, real, weight, forward, upper, lower }) => change(Change::RealEdit {
            service: service.key(),
            addr: *real.ip(),
            port: real.port(),
            weight,
            forward: forward.map(Into::into),
            upper,
            lower,
        }),
        Command::Acl(AclCommand::List) => read(runtime().map(|(_, rt)| {
            render(&service::acl_view(&rt), json, |v| {
                let rows: Vec<Vec<String>> =
                    v.iter().map(|r| vec![r.service.clone(), r.list.clone(), r.network.clone()]).collect();
                crate::cmd::table(&["SERVICE", "LIST", "NETWORK"], &rows)
            })
        })),
        Command::Acl(AclCommand::Add(crate::cli::AclEntry { service, list, network })) => {
            change(Change::AclAdd { service: service.key(), list: list.into(), prefix: network })
        }
        Command::Acl(AclCommand::Del(crate::cli::AclEntry { service, list, network })) => {
            change(Change::AclDel { service: service.key(), list: list.into(), prefix: network })
        }
        Command::Service(ServiceCommand::Zero { protocol, vip }) => {
            let service = protocol.zip(vip).map(|(p, v)| crate::cli::ServiceArg { protocol: p, vip: v }.key());
            control::call(shm, &Request::ZeroCounters { service }, timeout, json)
        }
        Command::Real(RealCommand::Del { service, real }) => {
            change(Change::RealDel { service: service.key(), addr: *real.ip(), port: real.port() })
        }
        Command::Laddr(LaddrCommand::List) => read(runtime().map(|(_, rt)| {
            render(&service::laddr_view(&rt), json, |v| {
                let rows: Vec<Vec<String>> = v.iter().map(|r| vec![r.service.clone(), r.address.clone()]).collect();
                crate::cmd::table(&["SERVICE", "LOCAL-ADDRESS"], &rows)
            })
        })),
        Command::Laddr(LaddrCommand::Add { service, address }) => {
            change(Change::LaddrAdd { service: service.key(), addr: address })
        }
        Command::Laddr(LaddrCommand::Del { service, address }) => {
            change(Change::LaddrDel { service: service.key(), addr: address })
        }
        Command::Addr(AddrCommand::Show) => read(runtime().map(|(_, rt)| {
            render(&service::addr_view(&rt, &port_names()), json, |v| {
                let rows: Vec<Vec<String>> =
                    v.iter().map(|r| vec![r.port.clone(), format!("{}/{}", r.address, r.prefix)]).collect();
                crate::cmd::table(&["PORT", "ADDRESS"], &rows)
            })
        })),
        Command::Addr(AddrCommand::Add { address: (addr, prefix), dev }) => {
            change(Change::AddrAdd { port: dev, addr, prefix })
        }
        Command::Addr(AddrCommand::Del { address }) => change(Change::AddrDel { addr: address }),
        Command::Neigh(NeighCommand::Show) => read(runtime().map(|(_, rt)| {
            render(
                &service::neigh_view(&rt, (&service::learned(shm), shm_layout::monotonic_ns()), &port_names()),
                json,
                |v| {
                    let rows: Vec<Vec<String>> = v
                        .iter()
                        .map(|r| vec![r.address.clone(), r.mac.clone(), r.port.clone(), r.state.clone()])
                        .collect();
                    crate::cmd::table(&["ADDRESS", "MAC", "PORT", "STATE"], &rows)
                },
            )
        })),
        Command::Neigh(NeighCommand::Add { address, mac, dev }) => {
            change(Change::NeighSet { addr: address, mac, port: dev })
        }
        Command::Neigh(NeighCommand::Del { address }) => change(Change::NeighDel { addr: address }),
        Command::Route(RouteCommand::Show) => read(runtime().map(|(_, rt)| {
            render(&crate::dpip::route_rows(&rt, &port_names()), json, |v| {
                let rows: Vec<Vec<String>> =
                    v.iter().map(|r| vec![r.network.clone(), r.via.clone(), r.port.clone()]).collect();
                crate::cmd::table(&["NETWORK", "VIA", "PORT"], &rows)
            })
        })),
        Command::Route(RouteCommand::Add { prefix: (prefix, len), via }) => {
            change(Change::RouteAdd { prefix, len, via })
        }
        Command::Route(RouteCommand::Del { prefix: (prefix, len) }) => change(Change::RouteDel { prefix, len }),
        Command::Reload { file } => {
            let path = match file.map(|f| std::path::absolute(&f).map_err(|e| format!("{}: {e}", f.display()))) {
                None => None,
                Some(Ok(p)) => Some(p.display().to_string()),
                Some(Err(e)) => return (format!("dpvsctl: {e}\n"), exit_codes::USAGE),
            };
            control::call(shm, &Request::Reload { path }, timeout, json)
        }
        Command::Config(ConfigCommand::Dump) => read(config::dump(shm)),
        Command::Batch { file, force } => batch(shm, file, force, json, timeout),
        Command::Completions { .. } => ("dpvsctl: completions need no instance\n".into(), exit_codes::USAGE),
    }
}

fn restart(
    shm: &Shm,
    slot: Option<u32>,
    all: bool,
    rolling: bool,
    binary: Option<std::path::PathBuf>,
    timeout: Duration,
    json: bool,
) -> (String, i32) {
    let slots: Vec<u32> =
        if all { (0..shm.layout().workers().len() as u32).collect() } else { slot.into_iter().collect() };
    let binary = binary.map(|b| b.display().to_string());
    let call = |s: u32| control::call(shm, &Request::WorkerRestart { slot: s, binary: binary.clone() }, timeout, json);
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
                    h.join().unwrap_or_else(|_| ("dpvsctl: a request thread failed\n".into(), exit_codes::FAILURE))
                })
                .collect()
        })
    };
    let code = results.iter().map(|r| r.1).find(|&c| c != exit_codes::OK).unwrap_or(exit_codes::OK);
    (results.into_iter().map(|r| r.0).collect::<String>(), code)
}

/// Runs the commands of a file, a line each. A line's failure is reported with its number.
fn batch(shm: &Shm, file: Option<std::path::PathBuf>, force: bool, json: bool, timeout: Duration) -> (String, i32) {
    let reader: Box<dyn BufRead> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return (format!("dpvsctl: {}: {e}\n", p.display()), exit_codes::FAILURE),
        },
    };
    let name = file.as_ref().map_or_else(|| "<stdin>".to_owned(), |p| p.display().to_string());
    let mut out = String::new();
    let mut code = exit_codes::OK;
    for (n, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return (format!("{out}dpvsctl: {name}: {e}\n"), exit_codes::FAILURE),
        };
        let words: Vec<&str> = line.split('#').next().unwrap_or_default().split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let (text, c) = match <Cli as clap::Parser>::try_parse_from(std::iter::once("dpvsctl").chain(words)) {
            Ok(cli) if matches!(cli.command, Command::Batch { .. } | Command::Completions { .. }) => {
                ("not allowed in a batch\n".to_owned(), exit_codes::USAGE)
            }
            Ok(cli) => execute(cli.command, shm, json || cli.json, timeout),
            Err(e) => (e.to_string(), exit_codes::USAGE),
        };
        if c == exit_codes::OK {
            out.push_str(&text);
            continue;
        }
        out.push_str(&format!("{name}:{}: {}", n + 1, text.trim_start_matches("dpvsctl: ")));
        code = c;
        if !force {
            break;
        }
    }
    (out, code)
}
