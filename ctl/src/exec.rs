//! Runs one parsed command against an attached instance: the body of `dpvsctl`, also used
//! for each line of `dpvsctl batch`.

use std::io::BufRead;
use std::time::Duration;

use mailbox::proto::{Change, Request};
use shm_layout::Shm;

use crate::cli::{
    AclCommand, AclEntry, AddrCommand, CheckCommand, Cli, Command, ConfigCommand, ConnCommand, LaddrCommand,
    LinkCommand, NeighCommand, RealCommand, RouteCommand, ServiceCommand, WorkerCommand,
};
use crate::cmd::{config, conn, control, link, render, sampled, service, stats, status, top, worker};
use crate::exit_codes;

impl Ctx<'_> {
    /// `top`: prints a refresh every `interval` seconds, `count` times or until interrupted,
    /// redrawing the screen unless `batch` (JSON: one document a line).
    fn top(&self, interval: f64, count: Option<u64>, batch: bool, services: usize) {
        use std::io::Write;
        let instance = self.shm.layout().header.instance.as_str().into_owned();
        let mut shown = 0;
        while count.is_none_or(|n| shown < n) {
            let (before, after, secs) = sampled(Duration::from_secs_f64(interval), || top::sample(self.shm));
            let mut view = top::view(self.shm, &before, &after, secs, services);
            view.interval_s = interval;
            let text = if self.json {
                format!("{}\n", serde_json::to_string(&view).unwrap_or_default())
            } else if batch {
                format!("{}\n", top::render(&view, &instance))
            } else {
                // Home and clear, then the refresh: what `watch` does.
                format!("\x1b[H\x1b[2J{}", top::render(&view, &instance))
            };
            let mut out = std::io::stdout().lock();
            if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                return; // The reader went away (a pipe closed).
            }
            shown += 1;
        }
    }
}

/// Runs `command`. Returns what to print and the exit code.
pub fn execute(command: Command, shm: &Shm, json: bool, timeout: Duration) -> (String, i32) {
    let ctx = Ctx { shm, json, timeout };
    match command {
        Command::Status => (render(&status::view(shm), json, status::render), exit_codes::OK),
        Command::Worker(c) => ctx.worker(c),
        Command::Stats { rate: false, .. } => (render(&stats::view(shm), json, stats::render), exit_codes::OK),
        Command::Stats { rate: true, interval } => {
            let (before, after, secs) = sampled(Duration::from_secs_f64(interval), || stats::view(shm));
            let rates = stats::rates(&before, &after, secs);
            let title = |r: &stats::Stats| format!("per second over {interval} s\n{}", stats::render(r));
            (render(&rates, json, title), exit_codes::OK)
        }
        Command::Top { interval, count, batch, services } => {
            ctx.top(interval, count, batch || json, services);
            (String::new(), exit_codes::OK)
        }
        Command::Link(LinkCommand::Show) => (render(&link::view(shm), json, |v| link::render(v)), exit_codes::OK),
        Command::Conn(ConnCommand::List { vip, protocol, client, worker, offset, limit }) => {
            let filter = conn::Filter { protocol: protocol.map(Into::into), vip, client, worker };
            let (rows, matched) = conn::list(shm, &filter, offset, limit);
            (render(&rows, json, |r| conn::render(r, matched)), exit_codes::OK)
        }
        Command::Service(c) => ctx.service(c),
        Command::Real(c) => ctx.real(c),
        Command::Acl(c) => ctx.acl(c),
        Command::Check(c) => ctx.check(c),
        Command::Laddr(c) => ctx.laddr(c),
        Command::Addr(c) => ctx.addr(c),
        Command::Neigh(c) => ctx.neigh(c),
        Command::Route(c) => ctx.route(c),
        Command::Reload { file } => ctx.reload(file),
        Command::Config(ConfigCommand::Dump) => read(config::dump(shm)),
        Command::Batch { file, force } => batch(shm, file, force, json, timeout),
        Command::Completions { .. } => ("dpvsctl: completions need no instance\n".into(), exit_codes::USAGE),
    }
}

/// What to print for a read command's result, and the exit code.
fn read(text: Result<String, config::ConfigError>) -> (String, i32) {
    match text {
        Ok(t) => (t, exit_codes::OK),
        Err(e) => (format!("dpvsctl: {e}\n"), exit_codes::FAILURE),
    }
}

/// What a command group runs against: the instance, the output form and the mailbox timeout.
struct Ctx<'a> {
    shm: &'a Shm,
    json: bool,
    timeout: Duration,
}

impl Ctx<'_> {
    /// Sends a change to the primary and waits for its answer.
    fn change(&self, c: Change) -> (String, i32) {
        control::call(self.shm, &Request::Change(c), self.timeout, self.json)
    }

    /// Renders the current configuration generation with `show`.
    fn show(&self, show: impl FnOnce(&conf::Runtime) -> String) -> (String, i32) {
        read(config::snapshot(self.shm).map(|(_, rt)| show(&rt)))
    }

    /// Renders `view` as JSON, or as a table of `header` and the rows `row` makes.
    fn table<T: serde::Serialize>(&self, view: &[T], header: &[&str], row: impl Fn(&T) -> Vec<String>) -> String {
        render(&view, self.json, |v| crate::cmd::table(header, &v.iter().map(&row).collect::<Vec<_>>()))
    }

    fn port_names(&self) -> Vec<String> {
        crate::front::port_names(self.shm)
    }

    fn worker(&self, c: WorkerCommand) -> (String, i32) {
        match c {
            WorkerCommand::List => (render(&worker::view(self.shm), self.json, |v| worker::render(v)), exit_codes::OK),
            WorkerCommand::Restart { slot, all, rolling, binary } => self.restart(slot, all, rolling, binary),
        }
    }

    /// `worker restart`: one slot, or all of them at once or one after the other (stopping at
    /// the first failure).
    fn restart(
        &self,
        slot: Option<u32>,
        all: bool,
        rolling: bool,
        binary: Option<std::path::PathBuf>,
    ) -> (String, i32) {
        let slots: Vec<u32> =
            if all { (0..self.shm.layout().workers().len() as u32).collect() } else { slot.into_iter().collect() };
        let binary = binary.map(|b| b.display().to_string());
        let call = |s: u32| {
            let r = Request::WorkerRestart { slot: s, binary: binary.clone() };
            control::call(self.shm, &r, self.timeout, self.json)
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
                        h.join().unwrap_or_else(|_| ("dpvsctl: a request thread failed\n".into(), exit_codes::FAILURE))
                    })
                    .collect()
            })
        };
        let code = results.iter().map(|r| r.1).find(|&c| c != exit_codes::OK).unwrap_or(exit_codes::OK);
        (results.into_iter().map(|r| r.0).collect::<String>(), code)
    }

    fn service(&self, c: ServiceCommand) -> (String, i32) {
        match c {
            ServiceCommand::List { stats: false, rate: false } => self.show(|rt| {
                let view = service::view(rt, &service::now_per_real(self.shm, rt), &service::health(self.shm));
                render(&view, self.json, |v| service::render(v))
            }),
            ServiceCommand::List { rate, .. } => self.show(|rt| {
                let counters = if rate {
                    let (before, after, secs) = sampled(Duration::from_secs(1), || service::stats(self.shm));
                    service::rates(&before, &after, secs)
                } else {
                    service::stats(self.shm)
                };
                render(&service::stats_rows(rt, &counters), self.json, |_| service::render_stats(rt, &counters, rate))
            }),
            ServiceCommand::Add { service, scheduler, persistent, persistence_prefix, proxy_protocol, group } => self
                .change(Change::ServiceAdd {
                    service: service.key(),
                    scheduler,
                    persistence: persistent,
                    persistence_prefix: persistence_prefix.unwrap_or(0),
                    proxy_protocol,
                    group,
                }),
            ServiceCommand::Edit { service, scheduler, persistent, persistence_prefix, proxy_protocol } => {
                self.change(Change::ServiceEdit {
                    service: service.key(),
                    scheduler,
                    persistence: persistent,
                    persistence_prefix,
                    proxy_protocol,
                })
            }
            ServiceCommand::Del { service } => self.change(Change::ServiceDel { service: service.key() }),
            ServiceCommand::Clear => self.change(Change::ServiceClear),
            ServiceCommand::Zero { protocol, vip } => {
                let service = protocol.zip(vip).map(|(p, v)| crate::cli::ServiceArg { protocol: p, vip: v }.key());
                control::call(self.shm, &Request::ZeroCounters { service }, self.timeout, self.json)
            }
        }
    }

    fn real(&self, c: RealCommand) -> (String, i32) {
        self.change(match c {
            RealCommand::Add { service, real, weight, forward, upper, lower } => Change::RealAdd {
                service: service.key(),
                addr: real.ip(),
                port: real.port(),
                weight,
                forward: forward.into(),
                thresholds: (upper, lower),
            },
            RealCommand::Edit { service, real, weight, forward, upper, lower } => Change::RealEdit {
                service: service.key(),
                addr: real.ip(),
                port: real.port(),
                weight,
                forward: forward.map(Into::into),
                upper,
                lower,
            },
            RealCommand::Del { service, real } => {
                Change::RealDel { service: service.key(), addr: real.ip(), port: real.port() }
            }
        })
    }

    fn acl(&self, c: AclCommand) -> (String, i32) {
        match c {
            AclCommand::List => self.show(|rt| {
                self.table(&service::acl_view(rt), &["SERVICE", "LIST", "NETWORK"], |r| {
                    vec![r.service.clone(), r.list.clone(), r.network.clone()]
                })
            }),
            AclCommand::Add(AclEntry { service, list, network }) => {
                self.change(Change::AclAdd { service: service.key(), list: list.into(), prefix: network })
            }
            AclCommand::Del(AclEntry { service, list, network }) => {
                self.change(Change::AclDel { service: service.key(), list: list.into(), prefix: network })
            }
        }
    }

    fn check(&self, c: CheckCommand) -> (String, i32) {
        match c {
            CheckCommand::List => self.show(|rt| {
                let rows = service::check_view(rt, &service::health(self.shm));
                self.table(
                    &rows,
                    &["SERVICE", "REAL", "STATE", "WEIGHT", "SINCE", "CHECKS", "FLAPS", "LAST-ERROR"],
                    |r| {
                        vec![
                            r.service.clone(),
                            r.real.clone(),
                            r.state.clone(),
                            r.weight.to_string(),
                            r.since.clone(),
                            r.checks.to_string(),
                            r.flaps.to_string(),
                            r.last_error.clone(),
                        ]
                    },
                )
            }),
            CheckCommand::Set(args) => {
                let (service, a) = (args.service, *args);
                let spec = conf::CheckSpec {
                    kind: Some(a.kind),
                    port: a.port,
                    interval_ms: a.interval_ms,
                    timeout_ms: a.timeout_ms,
                    rise: a.rise,
                    fall: a.fall,
                    on_failure: a.on_failure,
                    path: a.path,
                    status: a.status,
                    body: a.body,
                    send: a.send,
                    expect: a.expect,
                    command: (!a.command.is_empty()).then_some(a.command),
                };
                match conf::HealthCheck::from_spec(spec) {
                    Ok(check) => self.change(Change::CheckSet { service: service.key(), check: Some(check) }),
                    Err(e) => (format!("dpvsctl: {e}\n"), exit_codes::USAGE),
                }
            }
            CheckCommand::Del { service } => self.change(Change::CheckSet { service: service.key(), check: None }),
        }
    }

    fn laddr(&self, c: LaddrCommand) -> (String, i32) {
        match c {
            LaddrCommand::List => self.show(|rt| {
                self.table(&service::laddr_view(rt), &["SERVICE", "LOCAL-ADDRESS"], |r| {
                    vec![r.service.clone(), r.address.clone()]
                })
            }),
            LaddrCommand::Add { service, address, port } => {
                self.change(Change::LaddrAdd { service: service.key(), addr: address, port })
            }
            LaddrCommand::Del { service, address } => {
                self.change(Change::LaddrDel { service: service.key(), addr: address })
            }
        }
    }

    fn addr(&self, c: AddrCommand) -> (String, i32) {
        match c {
            AddrCommand::Show => self.show(|rt| {
                self.table(&service::addr_view(rt, &self.port_names()), &["PORT", "ADDRESS"], |r| {
                    vec![r.port.clone(), format!("{}/{}", r.address, r.prefix)]
                })
            }),
            AddrCommand::Add { address: (addr, prefix), dev } => {
                self.change(Change::AddrAdd { port: dev, addr, prefix })
            }
            AddrCommand::Del { address } => self.change(Change::AddrDel { addr: address }),
        }
    }

    fn neigh(&self, c: NeighCommand) -> (String, i32) {
        match c {
            NeighCommand::Show => self.show(|rt| {
                let learned = (&service::learned(self.shm)[..], shm_layout::monotonic_ns());
                self.table(
                    &service::neigh_view(rt, learned, &self.port_names()),
                    &["ADDRESS", "MAC", "PORT", "STATE"],
                    |r| vec![r.address.clone(), r.mac.clone(), r.port.clone(), r.state.clone()],
                )
            }),
            NeighCommand::Add { address, mac, dev } => self.change(Change::NeighSet { addr: address, mac, port: dev }),
            NeighCommand::Del { address } => self.change(Change::NeighDel { addr: address }),
        }
    }

    fn route(&self, c: RouteCommand) -> (String, i32) {
        match c {
            RouteCommand::Show => self.show(|rt| {
                self.table(&crate::dpip::route_rows(rt, &self.port_names()), &["NETWORK", "VIA", "PORT"], |r| {
                    vec![r.network.clone(), r.via.clone(), r.port.clone()]
                })
            }),
            RouteCommand::Add { prefix: (prefix, len), via } => self.change(Change::RouteAdd { prefix, len, via }),
            RouteCommand::Del { prefix: (prefix, len) } => self.change(Change::RouteDel { prefix, len }),
        }
    }

    /// `reload [FILE]`: the file's absolute path goes to the primary, which reads it.
    fn reload(&self, file: Option<std::path::PathBuf>) -> (String, i32) {
        let path = match file.map(|f| std::path::absolute(&f).map_err(|e| format!("{}: {e}", f.display()))) {
            None => None,
            Some(Ok(p)) => Some(p.display().to_string()),
            Some(Err(e)) => return (format!("dpvsctl: {e}\n"), exit_codes::USAGE),
        };
        control::call(self.shm, &Request::Reload { path }, self.timeout, self.json)
    }
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
