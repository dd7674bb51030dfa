//! `dpip`: DPVS's interface tool syntax for addresses, routes, neighbours and links, over the
//! same mailbox and generations as `dpvsctl`.
//!
//! `addr add|del ADDR/PLEN dev PORT`, `addr show [dev PORT]`, `route show` (the connected
//! routes of the addresses), `neigh add ADDR lladdr MAC dev PORT`, `neigh del ADDR [dev
//! PORT]`, `neigh show`, `route add NET/LEN|default via GW [dev PORT]`, `route del NET/LEN`,
//! `link show [-s]` (with `-s`, the packets the workers received and sent per port and rx
//! queue).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use mailbox::proto::Change;

/// What one dpip command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Change(Change),
    AddrShow(Option<String>),
    RouteShow,
    NeighShow,
    /// `link show`, with `-s` the counters.
    LinkShow {
        stats: bool,
    },
}

const USAGE: &str = "usage: dpip [-s] OBJECT COMMAND ...\n  OBJECT := addr | route | neigh | link\n  \
                     dpip addr add|del ADDR/PLEN dev PORT | addr show [dev PORT]\n  \
                     dpip route add NET/LEN|default via GW [dev PORT] | route del NET/LEN | route show\n  \
                     dpip neigh add ADDR lladdr MAC dev PORT | neigh del ADDR [dev PORT] | neigh show\n  \
                     dpip link show";

/// Parses a dpip command line (without the program name). Errors name the bad word and what
/// is expected.
///
/// # Errors
/// Unknown objects or commands, missing or malformed arguments, unsupported commands.
pub fn parse(args: &[String]) -> Result<Op, String> {
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    let stats = words.first() == Some(&"-s");
    if stats {
        words.remove(0);
    }
    let (object, rest) = words.split_first().ok_or(USAGE)?;
    let (command, rest) = rest.split_first().map_or(("show", &[][..]), |(c, r)| (*c, r));
    let kv = Pairs::new(rest)?;
    let object = abbrev(object, &["addr", "route", "neigh", "link"])?;
    if stats && object != "link" {
        return Err("-s is only for `link show`".into());
    }
    match (object, command) {
        ("addr", "add" | "del") => {
            let text = kv.positional.ok_or("addr: the address is required, like 198.18.0.100/24")?;
            let (addr, prefix) = conf::parse_prefix(text)?;
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
            Ok(Op::AddrShow(kv.get("dev")))
        }
        ("route", "show" | "list") => {
            kv.only(&[])?;
            Ok(Op::RouteShow)
        }
        ("route", "add" | "del") => {
            let text = kv.positional.ok_or("route: the network is required, like 198.18.2.0/24 (or default)")?;
            let (prefix, len) = if text == "default" { (Ipv4Addr::UNSPECIFIED, 0) } else { conf::parse_prefix(text)? };
            kv.only(&["via", "dev"])?;
            if command == "add" {
                let via = ip(&kv.need("via")?)?;
                Ok(Op::Change(Change::RouteAdd { prefix, len, via }))
            } else {
                Ok(Op::Change(Change::RouteDel { prefix, len }))
            }
        }
        ("neigh", "add") => {
            let addr = ip(kv.positional.ok_or("neigh add: the address is required")?)?;
            let mac = conf::parse_mac(&kv.need("lladdr")?).map_err(|e| e.to_string())?;
            let port = kv.need("dev")?;
            kv.only(&["lladdr", "dev"])?;
            Ok(Op::Change(Change::NeighSet { addr, mac, port }))
        }
        ("neigh", "del") => {
            let addr = ip(kv.positional.ok_or("neigh del: the address is required")?)?;
            kv.only(&["dev"])?;
            Ok(Op::Change(Change::NeighDel { addr }))
        }
        ("neigh", "show" | "list") => {
            kv.only(&["dev"])?;
            Ok(Op::NeighShow)
        }
        ("link", "show" | "list") => Ok(Op::LinkShow { stats }),
        (o, c) => Err(format!("{o}: unknown command \"{c}\"\n{USAGE}")),
    }
}

fn abbrev<'a>(word: &str, objects: &[&'a str]) -> Result<&'a str, String> {
    objects
        .iter()
        .find(|o| o.starts_with(word) && !word.is_empty())
        .copied()
        .ok_or_else(|| format!("unknown object \"{word}\"\n{USAGE}"))
}

fn ip(text: &str) -> Result<Ipv4Addr, String> {
    text.parse().map_err(|_| format!("expected an IPv4 address, got \"{text}\""))
}

/// `KEY VALUE` pairs after a command, with at most one positional word (the address).
struct Pairs<'a> {
    positional: Option<&'a str>,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Pairs<'a> {
    fn new(words: &[&'a str]) -> Result<Pairs<'a>, String> {
        let mut p = Pairs { positional: None, pairs: Vec::new() };
        let mut it = words.iter();
        while let Some(w) = it.next() {
            if matches!(*w, "dev" | "lladdr" | "via" | "src" | "scope" | "proto") {
                let v = it.next().ok_or_else(|| format!("\"{w}\" needs a value"))?;
                p.pairs.push((w, v));
            } else if p.positional.is_none() {
                p.positional = Some(w);
            } else {
                return Err(format!("unexpected \"{w}\""));
            }
        }
        Ok(p)
    }

    fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    }

    fn need(&self, key: &str) -> Result<String, String> {
        self.get(key).ok_or_else(|| format!("\"{key}\" is required"))
    }

    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.pairs.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(format!("\"{k}\" is not supported here")),
            None => Ok(()),
        }
    }
}

/// `dpip addr show`.
pub fn addr_show(rt: &conf::Runtime, ports: &[String], dev: Option<&str>) -> String {
    let mut out = String::new();
    for a in &rt.addresses {
        let name = ports.get(a.port).map_or("?", String::as_str);
        if dev.is_some_and(|d| d != name) {
            continue;
        }
        let _ = writeln!(out, "inet {}/{} scope global {name}", a.addr, a.prefix);
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
            network: format!("{}/{}", conf::network(a.addr, a.prefix), a.prefix),
            via: "-".into(),
            port: name(a.port),
            src: Some(a.addr.to_string()),
        })
        .collect();
    for r in &rt.routes {
        let port = rt.addresses.iter().find(|a| conf::network(a.addr, a.prefix) == conf::network(r.via, a.prefix));
        rows.push(RouteRow {
            network: format!("{}/{}", r.prefix, r.len),
            via: r.via.to_string(),
            port: port.map_or_else(|| "?".into(), |a| name(a.port)),
            src: None,
        });
    }
    rows
}

/// `dpip route show`.
pub fn route_show(rt: &conf::Runtime, ports: &[String]) -> String {
    let mut out = String::new();
    for r in route_rows(rt, ports) {
        match r.src {
            Some(src) => {
                let _ = writeln!(out, "inet {} src {src} dev {} scope link", r.network, r.port);
            }
            None => {
                let _ = writeln!(out, "inet {} via {} dev {} scope global", r.network, r.via, r.port);
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
