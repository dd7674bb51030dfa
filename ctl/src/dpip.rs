//! `dpip`: DPVS's interface tool syntax for addresses, routes, neighbours and links, over the
//! same mailbox and generations as `dpvsctl`.
//!
//! `addr add|del ADDR/PLEN dev PORT`, `addr show [dev PORT]`, `route show` (the connected
//! routes of the addresses), `neigh add ADDR lladdr MAC dev PORT`, `neigh del ADDR [dev
//! PORT]`, `neigh show`, `route add NET/LEN|default via GW [dev PORT]`, `route del NET/LEN`,
//! `link show [-s]` (with `-s`, the packets the workers received and sent per port and rx
//! queue).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mailbox::proto::Change;

/// What one dpip command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Change(Change),
    /// `addr show [dev PORT]`, with `-4` or `-6` one family's addresses only.
    AddrShow {
        dev: Option<String>,
        family: Option<Family>,
    },
    /// `route show`, with `-4` or `-6` one family's routes only.
    RouteShow {
        family: Option<Family>,
    },
    NeighShow,
    /// `link show`, with `-s` the counters.
    LinkShow {
        stats: bool,
    },
}

const USAGE: &str = "usage: dpip [-s] [-4|-6] OBJECT COMMAND ...\n  OBJECT := addr | route | neigh | link\n  \
                     dpip addr add|del ADDR/PLEN dev PORT | addr show [dev PORT]  (ADDR: IPv4 or IPv6)\n  \
                     dpip route add NET/LEN|default via GW [dev PORT] | route del NET/LEN | route show\n  \
                     dpip neigh add ADDR lladdr MAC dev PORT | neigh del ADDR [dev PORT] | neigh show\n  \
                     dpip link show";

/// An address family, as `-4` and `-6` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn of(addr: std::net::IpAddr) -> Family {
        if addr.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }
}

/// Why a dpip command line was refused: each names the bad word and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpipError {
    /// No object: the usage.
    #[error("{USAGE}")]
    Usage,
    /// An object that is none of `addr`, `route`, `neigh`, `link` (nor a prefix of one).
    #[error("unknown object \"{0}\"\n{USAGE}")]
    UnknownObject(String),
    /// A command the object does not have.
    #[error("{object}: unknown command \"{command}\"\n{USAGE}")]
    UnknownCommand { object: &'static str, command: String },
    /// `-s` before an object other than `link`.
    #[error("-s is only for `link show`")]
    StatsNotLink,
    /// The command's address or network is missing.
    #[error("{command}: the {what} is required{example}")]
    Positional { command: &'static str, what: &'static str, example: &'static str },
    /// A key (`dev`, `via`, ...) without its value.
    #[error("\"{0}\" needs a value")]
    NoValue(String),
    /// A second word that is not a key.
    #[error("unexpected \"{0}\"")]
    Unexpected(String),
    /// A key the command needs.
    #[error("\"{0}\" is required")]
    Required(&'static str),
    /// A key the command does not take.
    #[error("\"{0}\" is not supported here")]
    Unsupported(String),
    /// A malformed address with its prefix length.
    #[error(transparent)]
    Prefix(#[from] conf::ParsePrefixError),
    /// A malformed MAC address.
    #[error(transparent)]
    Mac(#[from] conf::ParseMacError),
    /// A malformed IPv4 or IPv6 address.
    #[error("expected an IPv4 or IPv6 address, got \"{0}\"")]
    IpAddress(String),
    /// A route's gateway of the other family than its network's.
    #[error("gateway {via} is not of the family of {network}")]
    GatewayFamily { via: IpAddr, network: String },
    /// An address of the other family than `-4` or `-6` asks for.
    #[error("{flag}: expected an {family} address, got \"{text}\"")]
    WrongFamily { flag: &'static str, family: &'static str, text: String },
}

/// Parses a dpip command line (without the program name). Errors name the bad word and what
/// is expected.
///
/// # Errors
/// [`DpipError`]: unknown objects or commands, missing or malformed arguments, unsupported
/// commands.
pub fn parse(args: &[String]) -> Result<Op, DpipError> {
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut stats, mut family) = (false, None);
    while let Some(&flag) = words.first() {
        match flag {
            "-s" => stats = true,
            "-4" => family = Some(Family::V4),
            "-6" => family = Some(Family::V6),
            _ => break,
        }
        words.remove(0);
    }
    let (object, rest) = words.split_first().ok_or(DpipError::Usage)?;
    let (command, rest) = rest.split_first().map_or(("show", &[][..]), |(c, r)| (*c, r));
    let kv = Pairs::new(rest)?;
    let object = abbrev(object, &["addr", "route", "neigh", "link"])?;
    if stats && object != "link" {
        return Err(DpipError::StatsNotLink);
    }
    let positional = |command, what, example| kv.positional.ok_or(DpipError::Positional { command, what, example });
    match (object, command) {
        ("addr", "add" | "del") => {
            let text = positional("addr", "address", ", like 198.18.0.100/24 or 2001:db8::100/64")?;
            let (addr, prefix) = if command == "add" {
                conf::parse_ip_prefix(text)?
            } else {
                // `del` takes the address with or without its length.
                let a = text.split_once('/').map_or(text, |(a, _)| a);
                (a.parse().map_err(|_| DpipError::IpAddress(text.to_owned()))?, 0)
            };
            check_family(family, addr, text)?;
            let port = kv.need("dev")?;
            kv.only(&["dev"])?;
            Ok(Op::Change(if command == "add" {
                Change::AddrAdd { port, addr, prefix }
            } else {
                Change::AddrDel { addr }
            }))
        }
        ("addr", "show" | "list") => {
            kv.only(&["dev"])?;
            Ok(Op::AddrShow { dev: kv.get("dev"), family })
        }
        ("route", "show" | "list") => {
            kv.only(&[])?;
            Ok(Op::RouteShow { family })
        }
        ("route", "add" | "del") => {
            let text = positional("route", "network", ", like 198.18.2.0/24, 2001:db8:2::/48 (or default)")?;
            let (prefix, len) = match text {
                // `default` is IPv4's, or IPv6's with -6 (as ip does).
                "default" if family == Some(Family::V6) => (Ipv6Addr::UNSPECIFIED.into(), 0),
                "default" => (Ipv4Addr::UNSPECIFIED.into(), 0),
                _ => conf::parse_ip_prefix(text)?,
            };
            check_family(family, prefix, text)?;
            kv.only(&["via", "dev"])?;
            if command == "add" {
                let via = any_ip(&kv.need("via")?)?;
                if Family::of(via) != Family::of(prefix) {
                    return Err(DpipError::GatewayFamily { via, network: text.to_owned() });
                }
                Ok(Op::Change(Change::RouteAdd { prefix, len, via }))
            } else {
                Ok(Op::Change(Change::RouteDel { prefix, len }))
            }
        }
        ("neigh", "add") => {
            let addr = any_ip(positional("neigh add", "address", "")?)?;
            check_family(family, addr, &addr.to_string())?;
            let mac = conf::parse_mac(&kv.need("lladdr")?)?;
            let port = kv.need("dev")?;
            kv.only(&["lladdr", "dev"])?;
            Ok(Op::Change(Change::NeighSet { addr, mac, port }))
        }
        ("neigh", "del") => {
            let addr = any_ip(positional("neigh del", "address", "")?)?;
            kv.only(&["dev"])?;
            Ok(Op::Change(Change::NeighDel { addr }))
        }
        ("neigh", "show" | "list") => {
            kv.only(&["dev"])?;
            Ok(Op::NeighShow)
        }
        ("link", "show" | "list") => Ok(Op::LinkShow { stats }),
        (object, command) => Err(DpipError::UnknownCommand { object, command: command.to_owned() }),
    }
}

fn abbrev(word: &str, objects: &[&'static str]) -> Result<&'static str, DpipError> {
    objects
        .iter()
        .find(|o| o.starts_with(word) && !word.is_empty())
        .copied()
        .ok_or_else(|| DpipError::UnknownObject(word.to_owned()))
}

/// An IPv4 or IPv6 address.
fn any_ip(text: &str) -> Result<IpAddr, DpipError> {
    text.parse().map_err(|_| DpipError::IpAddress(text.to_owned()))
}

/// Refuses `addr` (written `text`) when it is not of `family` (`-4`, `-6`, or a route's
/// prefix's family for its gateway).
fn check_family(family: Option<Family>, addr: IpAddr, text: &str) -> Result<(), DpipError> {
    match family.filter(|&f| f != Family::of(addr)) {
        Some(f) => {
            let family = if f == Family::V6 { "IPv6" } else { "IPv4" };
            Err(DpipError::WrongFamily { flag: f.flag(), family, text: text.to_owned() })
        }
        None => Ok(()),
    }
}

/// `KEY VALUE` pairs after a command, with at most one positional word (the address).
struct Pairs<'a> {
    positional: Option<&'a str>,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Pairs<'a> {
    fn new(words: &[&'a str]) -> Result<Pairs<'a>, DpipError> {
        let mut p = Pairs { positional: None, pairs: Vec::new() };
        let mut it = words.iter();
        while let Some(w) = it.next() {
            if matches!(*w, "dev" | "lladdr" | "via" | "src" | "scope" | "proto") {
                let v = it.next().ok_or_else(|| DpipError::NoValue((*w).to_owned()))?;
                p.pairs.push((w, v));
            } else if p.positional.is_none() {
                p.positional = Some(w);
            } else {
                return Err(DpipError::Unexpected((*w).to_owned()));
            }
        }
        Ok(p)
    }

    fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    }

    fn need(&self, key: &'static str) -> Result<String, DpipError> {
        self.get(key).ok_or(DpipError::Required(key))
    }

    fn only(&self, allowed: &[&str]) -> Result<(), DpipError> {
        match self.pairs.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(DpipError::Unsupported((*k).to_owned())),
            None => Ok(()),
        }
    }
}

/// `dpip addr show`; an address `ipvsadm --add-laddr -F` installed ends in `sapool`, as in
/// DPVS.
pub fn addr_show(rt: &conf::Runtime, ports: &[String], dev: Option<&str>, family: Option<Family>) -> String {
    let mut out = String::new();
    for a in &rt.addresses {
        let name = ports.get(a.port).map_or("?", String::as_str);
        if dev.is_some_and(|d| d != name) || family.is_some_and(|f| f != Family::of(a.addr)) {
            continue;
        }
        let sapool = if a.sapool { " sapool" } else { "" };
        let family = if a.addr.is_ipv6() { "inet6" } else { "inet" };
        let _ = writeln!(out, "{family} {}/{} scope global {name}{sapool}", a.addr, a.prefix);
    }
    out
}

/// A route, for `route show`.
#[derive(Debug, serde::Serialize)]
pub struct RouteRow {
    /// `network/len`.
    pub network: String,
    /// The gateway, or `-` for a connected network.
    pub via: String,
    /// The port it goes out of (the gateway's, for a static route).
    pub port: String,
    /// The interface address, for a connected network.
    pub src: Option<String>,
}

/// The connected network of every address, then the static routes.
pub fn route_rows(rt: &conf::Runtime, ports: &[String]) -> Vec<RouteRow> {
    let name = |p: usize| ports.get(p).cloned().unwrap_or_else(|| "?".into());
    let mut rows: Vec<RouteRow> = rt
        .addresses
        .iter()
        .map(|a| RouteRow {
            network: format!("{}/{}", conf::network_of(a.addr, a.prefix), a.prefix),
            via: "-".into(),
            port: name(a.port),
            src: Some(a.addr.to_string()),
        })
        .collect();
    for r in &rt.routes {
        let on_link = |a: &&conf::IfAddr| {
            a.addr.is_ipv6() == r.via.is_ipv6()
                && conf::network_of(a.addr, a.prefix) == conf::network_of(r.via, a.prefix)
        };
        let port = rt.addresses.iter().find(on_link);
        rows.push(RouteRow {
            network: format!("{}/{}", r.prefix, r.len),
            via: r.via.to_string(),
            port: port.map_or_else(|| "?".into(), |a| name(a.port)),
            src: None,
        });
    }
    rows
}

/// `dpip route show` (`family`: only its routes).
pub fn route_show(rt: &conf::Runtime, ports: &[String], family: Option<Family>) -> String {
    let mut out = String::new();
    for r in route_rows(rt, ports) {
        let v6 = r.network.contains(':');
        if family.is_some_and(|f| (f == Family::V6) != v6) {
            continue;
        }
        let inet = if v6 { "inet6" } else { "inet" };
        match r.src {
            Some(src) => {
                let _ = writeln!(out, "{inet} {} src {src} dev {} scope link", r.network, r.port);
            }
            None => {
                let _ = writeln!(out, "{inet} {} via {} dev {} scope global", r.network, r.via, r.port);
            }
        }
    }
    out
}

/// `dpip neigh show`: static entries PERMANENT, learned ones REACHABLE or STALE.
pub fn neigh_show(rows: &[crate::cmd::service::NeighRow]) -> String {
    let mut out = String::new();
    for n in rows {
        let state = match n.state.as_str() {
            "static" => "PERMANENT",
            "stale" => "STALE",
            _ => "REACHABLE",
        };
        let _ = writeln!(out, "ip: {:<16} mac: {}   state: {state:<9}   dev: {}", n.address, n.mac, n.port);
    }
    out
}

#[cfg(test)]
mod tests;
