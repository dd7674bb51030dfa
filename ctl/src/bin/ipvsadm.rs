//! `ipvsadm` for dpvs: see `ipvsadm --help` and `ctl::ipvsadm`.
#![forbid(unsafe_code)]

use std::io::BufRead;

use clap::{CommandFactory, FromArgMatches, Parser};
use ctl::exit_codes;
use ctl::front::{attach_or_exit, change, port_names, request, Failure};
use ctl::ipvsadm::{check_laddr_port, get_acl, get_laddr, header, list, list_thresholds, save, table_size, Args, Op};
use shm_layout::Shm;

fn main() {
    manpages::generate_if_asked(Args::command);
    let args = Args::parse();
    let op = args.op().unwrap_or_else(|e| fail(e, exit_codes::USAGE));
    let shm = attach_or_exit("ipvsadm");
    match op {
        Op::Restore => restore(&shm),
        op => {
            if let Err(e) = run(&shm, op) {
                fail(&e, e.code);
            }
        }
    }
}

fn fail(message: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("ipvsadm: {message}");
    std::process::exit(code);
}

fn snapshot(shm: &Shm) -> Result<conf::Runtime, Failure> {
    Ok(ctl::cmd::config::snapshot(shm)?.1)
}

fn run(shm: &Shm, op: Op) -> Result<(), Failure> {
    match op {
        Op::Change(c) => change(shm, c),
        Op::Laddr(c, dev) => {
            let mailbox::proto::Change::LaddrDel { addr, .. } = c else {
                unreachable!("Op::Laddr carries a local address removal")
            };
            check_laddr_port(&snapshot(shm)?, &port_names(shm), addr, &dev)
                .map_err(|e| Failure::new(e, exit_codes::REFUSED))?;
            change(shm, c)
        }
        Op::List => {
            let rt = snapshot(shm)?;
            print!("{}", list(&rt, &ctl::cmd::service::now_per_real(shm, &rt), table_size(shm)));
            Ok(())
        }
        Op::ListStats { rate } => {
            let rt = snapshot(shm)?;
            let counters = if rate {
                let one_second = std::time::Duration::from_secs(1);
                let (before, after, secs) = ctl::cmd::sampled(one_second, || ctl::cmd::service::stats(shm));
                ctl::cmd::service::rates(&before, &after, secs)
            } else {
                ctl::cmd::service::stats(shm)
            };
            print!("{}{}", header(table_size(shm)), ctl::cmd::service::render_stats(&rt, &counters, rate));
            Ok(())
        }
        Op::ListConnections => {
            let (rows, _) = ctl::cmd::conn::list(shm, &ctl::cmd::conn::Filter::default(), 0, usize::MAX);
            print!("{}", ctl::cmd::conn::render_ipvsadm(&rows));
            Ok(())
        }
        Op::Save => {
            print!("{}", save(&snapshot(shm)?, &port_names(shm)));
            Ok(())
        }
        Op::GetLaddr(only) => {
            print!("{}", get_laddr(&snapshot(shm)?, only));
            Ok(())
        }
        Op::GetAcl(l) => {
            print!("{}", get_acl(&snapshot(shm)?, l));
            Ok(())
        }
        Op::ListThresholds => {
            let rt = snapshot(shm)?;
            print!("{}", list_thresholds(&rt, &ctl::cmd::service::now_per_real(shm, &rt), table_size(shm)));
            Ok(())
        }
        Op::Zero(service) => request(shm, &mailbox::proto::Request::ZeroCounters { service }),
        Op::Restore => unreachable!("handled by restore()"),
    }
}

/// `-R`: each line of standard input is an ipvsadm command line that changes the rules; all of
/// them are made as one change (one generation, all or none), sent as a file of changes next
/// to the instance's shared memory. A refusal names the line.
fn restore(shm: &Shm) {
    let input: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(format!("reading standard input: {e}"), exit_codes::FAILURE));
    // The lines are parsed in parallel, a parser per thread, then taken in order (clap costs
    // about 20 us a line; the form `-S` prints is read without it, in about a microsecond).
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 16);
    let chunk = input.len().div_ceil(threads).max(1);
    let parsed: Vec<Vec<Parsed>> = std::thread::scope(|s| {
        let parts: Vec<_> =
            input.chunks(chunk).enumerate().map(|(k, lines)| s.spawn(move || parse_lines(lines, k * chunk))).collect();
        parts
            .into_iter()
            .map(|p| p.join().unwrap_or_else(|_| fail("a parser thread failed", exit_codes::FAILURE)))
            .collect()
    });
    let (mut changes, mut lines) = (Vec::new(), Vec::new());
    let mut rt = None;
    for (n, op) in parsed.into_iter().flatten() {
        let at = |e: &dyn std::fmt::Display| format!("line {n}: {e}");
        let change = match op {
            Err((e, code)) => fail(at(&e), code),
            Ok(Op::Change(c)) => c,
            Ok(Op::Laddr(c, dev)) => {
                // --del-laddr's -F names the port: checked against the rules before the restore.
                let rt = rt.get_or_insert_with(|| snapshot(shm).unwrap_or_else(|e| fail(&e, e.code)));
                if let mailbox::proto::Change::LaddrDel { addr, .. } = &c {
                    check_laddr_port(rt, &port_names(shm), *addr, &dev)
                        .unwrap_or_else(|e| fail(at(&e), exit_codes::REFUSED));
                }
                c
            }
            Ok(_) => fail(at(&"only changes can be restored"), exit_codes::USAGE),
        };
        changes.push(change);
        lines.push(n);
    }
    if changes.is_empty() {
        return;
    }
    let path = shm.path().with_extension(format!("restore.{}", std::process::id()));
    if let Err(e) = std::fs::write(&path, mailbox::proto::encode_changes(&changes)) {
        fail(format!("{}: {e}", path.display()), exit_codes::FAILURE);
    }
    let sent = request(shm, &mailbox::proto::Request::Changes { path: path.to_string_lossy().into_owned() });
    let _ = std::fs::remove_file(&path);
    if let Err(e) = sent {
        // "change K: ..." names the K-th change: say which line it came from.
        let text = e.to_string();
        let named = text
            .strip_prefix("change ")
            .and_then(|rest| rest.split_once(": "))
            .and_then(|(k, why)| Some((lines.get(k.parse::<usize>().ok()?)?, why)));
        match named {
            Some((line, why)) => fail(format!("line {line}: {why}"), e.code),
            None => fail(&e, e.code),
        }
    }
}

/// A line of `-R` input by its number (from 1): its operation, or why it is not one and the
/// exit code that says so.
type Parsed = (usize, Result<Op, (String, i32)>);

/// The ipvsadm command lines `lines`, the first of which is line `first + 1`; blank lines and
/// comments are left out.
fn parse_lines(lines: &[String], first: usize) -> Vec<Parsed> {
    // One parser for every line: building it is most of the cost of parsing one.
    let mut parser = Args::command();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split('#').next().unwrap_or_default().split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        // The form `-S` prints is read without clap; any other with it.
        let args = match Args::saved_form(&words) {
            Some(args) => Ok(args),
            None => parser
                .try_get_matches_from_mut(std::iter::once("ipvsadm").chain(words.iter().copied()))
                .and_then(|m| Args::from_arg_matches(&m))
                .map_err(|e| (e.to_string().lines().next().unwrap_or_default().to_owned(), exit_codes::USAGE)),
        };
        let op = args.and_then(|args| args.op().map_err(|e| (e.to_string(), exit_codes::USAGE)));
        out.push((first + i + 1, op));
    }
    out
}
