//! `ipvsadm`: the LVS/DPVS syntax over the same mailbox and generations as `dpvsctl`.
//!
//! Supported: `-A|-E|-D -t|-u VIP:port [-s sched] [-p [timeout]]`, `-C`, `-a|-e|-d -t|-u
//! VIP:port -r RS[:port] [-b|-g|-m] [-w weight] [-x upper] [-y lower]`, `--add-laddr|--del-laddr
//! -z LIP -t|-u VIP:port -F dev`, `-G`, `--add-blklst|--del-blklst -k ADDR[/len]`,
//! `--add-whtlst|--del-whtlst -2 ADDR[/len]` (with `-t|-u`), `--get-blklst`, `--get-whtlst`,
//! `-L|-l [-n] [-c] [--stats|--rate|--thresholds]`, `-Z [-t|-u VIP:port]`, `-S [-n]`, `-R`;
//! forwarding methods `-b` (Full-NAT), `-g` (direct routing, ipvsadm's default), `-m` (NAT)
//! and `-i` (IP-in-IP tunnel).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use std::collections::HashMap;

use clap::{ArgGroup, Parser};
use mailbox::proto::{AclList, Change, ServiceKey};

use crate::cmd::conn::RealKey;

/// Linux Virtual Server administration for dpvs.
///
/// The instance is named by the environment: DPVS_CONFIG (its configuration file), or
/// DPVS_INSTANCE (default "dpvs") and DPVS_SHM_DIR (default /dev/shm).
#[derive(Debug, Default, Parser)]
#[command(name = "ipvsadm", version, disable_version_flag = true)]
#[command(group(ArgGroup::new("command").required(true).multiple(false)))]
#[command(group(ArgGroup::new("service").multiple(false)))]
#[command(group(ArgGroup::new("method").multiple(false)))]
pub struct Args {
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", group = "command")]
    pub add_service: bool,
    /// Edit a virtual service.
    #[arg(short = 'E', long = "edit-service", group = "command")]
    pub edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service", group = "command")]
    pub delete_service: bool,
    /// Delete every virtual service.
    #[arg(short = 'C', long = "clear", group = "command")]
    pub clear: bool,
    /// Restore rules from standard input (as `-S` prints them).
    #[arg(short = 'R', long = "restore", group = "command")]
    pub restore: bool,
    /// Save rules to standard output.
    #[arg(short = 'S', long = "save", group = "command")]
    pub save: bool,
    /// Add a real server.
    #[arg(short = 'a', long = "add-server", group = "command")]
    pub add_server: bool,
    /// Edit a real server.
    #[arg(short = 'e', long = "edit-server", group = "command")]
    pub edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server", group = "command")]
    pub delete_server: bool,
    /// List the table.
    #[arg(short = 'L', visible_short_alias = 'l', long = "list", group = "command")]
    pub list: bool,
    /// Zero the counters of one service (-t|-u) or of all.
    #[arg(short = 'Z', long = "zero", group = "command")]
    pub zero: bool,
    /// Add a client address or network to a service's deny list (-k).
    #[arg(long = "add-blklst", group = "command")]
    pub add_blklst: bool,
    /// Remove one from a service's deny list (-k).
    #[arg(long = "del-blklst", group = "command")]
    pub del_blklst: bool,
    /// List the deny lists.
    #[arg(long = "get-blklst", group = "command")]
    pub get_blklst: bool,
    /// Add a client address or network to a service's allow list (-2).
    #[arg(long = "add-whtlst", group = "command")]
    pub add_whtlst: bool,
    /// Remove one from a service's allow list (-2).
    #[arg(long = "del-whtlst", group = "command")]
    pub del_whtlst: bool,
    /// List the allow lists.
    #[arg(long = "get-whtlst", group = "command")]
    pub get_whtlst: bool,
    /// Deny-list address or network, like 198.18.9.7 or 198.18.9.0/24.
    #[arg(short = 'k', long = "blklst-address", value_parser = conf::Prefix::parse)]
    pub blklst: Option<conf::Prefix>,
    /// Allow-list address or network.
    #[arg(short = '2', long = "whtlst-address", value_parser = conf::Prefix::parse)]
    pub whtlst: Option<conf::Prefix>,
    /// Add a local address (Full-NAT source) to a service.
    #[arg(short = 'P', long = "add-laddr", group = "command")]
    pub add_laddr: bool,
    /// Remove a local address from a service.
    #[arg(short = 'Q', long = "del-laddr", group = "command")]
    pub del_laddr: bool,
    /// List local addresses.
    #[arg(short = 'G', long = "get-laddr", group = "command")]
    pub get_laddr: bool,
    /// TCP service VIP:port ([VIP]:port for IPv6).
    #[arg(short = 't', long = "tcp-service", group = "service")]
    pub tcp: Option<SocketAddr>,
    /// UDP service VIP:port ([VIP]:port for IPv6).
    #[arg(short = 'u', long = "udp-service", group = "service")]
    pub udp: Option<SocketAddr>,
    /// Scheduler: rr, wrr, wlc, lc, fo, conhash, mh.
    #[arg(short = 's', long = "scheduler")]
    pub scheduler: Option<String>,
    /// PROXY protocol header for Full-NAT real servers (with -A/-E): v1, v2 or off.
    #[arg(long = "proxy-protocol")]
    pub proxy_protocol: Option<conf::ProxyProtocol>,
    /// Persistence timeout, seconds (360 when given without a value).
    #[arg(short = 'p', long = "persistent", num_args = 0..=1, default_missing_value = "360")]
    pub persistent: Option<u32>,
    /// The granularity of persistence (with -A/-E): clients in one network of this netmask
    /// (IPv4, like 255.255.255.0) or prefix length (like 24, or 64 for IPv6) share their real
    /// server.
    #[arg(short = 'M', long = "netmask")]
    pub netmask: Option<String>,
    /// Real server address[:port] ([address]:port for IPv6; the port defaults to the
    /// service's).
    #[arg(short = 'r', long = "real-server")]
    pub real: Option<String>,
    /// Direct routing (the default).
    #[arg(short = 'g', long = "gatewaying", group = "method")]
    pub gatewaying: bool,
    /// IP-in-IP tunnel.
    #[arg(short = 'i', long = "ipip", group = "method")]
    pub ipip: bool,
    /// NAT.
    #[arg(short = 'm', long = "masquerading", group = "method")]
    pub masquerading: bool,
    /// Full-NAT.
    #[arg(short = 'b', long = "fullnat", group = "method")]
    pub fullnat: bool,
    /// Weight, 0..=65535.
    #[arg(short = 'w', long = "weight")]
    pub weight: Option<u32>,
    /// Upper connection threshold (0: none).
    #[arg(short = 'x', long = "u-threshold")]
    pub upper: Option<u32>,
    /// Lower connection threshold (0: three quarters of the upper one).
    #[arg(short = 'y', long = "l-threshold")]
    pub lower: Option<u32>,
    /// Local address.
    #[arg(short = 'z', long = "laddr")]
    pub laddr: Option<IpAddr>,
    /// The port that owns the local address.
    #[arg(short = 'F', long = "ifname")]
    pub ifname: Option<String>,
    /// Numeric output (the only output there is).
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// With -L: connection, packet and byte counts per service.
    #[arg(long)]
    pub stats: bool,
    /// With -L: rates per service over one second.
    #[arg(long)]
    pub rate: bool,
    /// With -L: the connection table.
    #[arg(short = 'c', long = "connection")]
    pub connection: bool,
    /// With -L: the connection thresholds of the real servers.
    #[arg(long)]
    pub thresholds: bool,
}

/// What one ipvsadm command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A change through the mailbox.
    Change(Change),
    /// `-L`.
    List,
    /// `-L -c`.
    ListConnections,
    /// `-L --stats` or `-L --rate`.
    ListStats { rate: bool },
    /// `-L --thresholds`.
    ListThresholds,
    /// `-Z`, of one service or all.
    Zero(Option<ServiceKey>),
    /// `--get-blklst` or `--get-whtlst`.
    GetAcl(AclList),
    /// `-S`.
    Save,
    /// `-R`.
    Restore,
    /// `-G`, optionally for one service.
    GetLaddr(Option<ServiceKey>),
    /// `--del-laddr` needs the port's addresses checked first: (change, port name). (The
    /// primary checks `--add-laddr`'s port itself: it may install the address there.)
    Laddr(Change, String),
}

/// Why an ipvsadm command line was refused: each names the option and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpvsadmError {
    /// `-M` is neither a netmask nor a prefix length of the service's family.
    #[error("-M: expected a netmask like 255.255.255.0 or a prefix length from 1 to {whole}, got \"{text}\"")]
    Netmask { text: String, whole: u8 },
    /// The command needs an option that is missing.
    #[error("{what} is required: {options}")]
    Required { what: &'static str, options: &'static str },
    /// `-r` is not `address[:port]`.
    #[error("-r: expected an IPv4 address with an optional port, like 198.18.1.2:8080, got \"{0}\"")]
    Real(String),
    /// `-x`/`-y` with a command other than `-a` or `-e`.
    #[error("-x/-y (connection thresholds) go with -a or -e")]
    MisplacedThresholds,
    /// `-E` without anything to change.
    #[error("-E needs -s|--scheduler, -p|--persistent, -M|--netmask or --proxy-protocol (the editable properties)")]
    NothingToEdit,
    /// More than one kind of listing.
    #[error("--stats, --rate, --thresholds and -c: one at a time")]
    ListingsTogether,
}

impl IpvsadmError {
    const SERVICE: IpvsadmError =
        IpvsadmError::Required { what: "a service", options: "-t|--tcp-service or -u|--udp-service VIP:port" };
}

impl Args {
    /// The arguments of a line in the form `-S` prints (`-A`, `-a`, `--add-laddr`, ... each
    /// option once, a value as the next word), read without clap, which costs about 20 us a
    /// line: `-R` of 70 000 services reads 385 000 lines. `None` for any other form (clap then
    /// reads it, and names what is wrong); where this reads a line, it reads it as clap does
    /// (tests).
    pub fn saved_form(words: &[&str]) -> Option<Args> {
        let mut a = Args::default();
        let (mut command, mut service, mut method) = (false, false, false);
        let mut seen: Vec<&str> = Vec::with_capacity(8);
        let mut it = words.iter();
        while let Some(&w) = it.next() {
            // Each option once, as clap requires.
            if seen.contains(&w) {
                return None;
            }
            seen.push(w);
            let once = |group: &mut bool| (!std::mem::replace(group, true)).then_some(());
            match w {
                "-A" => (a.add_service, _) = (true, once(&mut command)?),
                "-a" => (a.add_server, _) = (true, once(&mut command)?),
                "-E" => (a.edit_service, _) = (true, once(&mut command)?),
                "-e" => (a.edit_server, _) = (true, once(&mut command)?),
                "-P" | "--add-laddr" => (a.add_laddr, _) = (true, once(&mut command)?),
                "--add-blklst" => (a.add_blklst, _) = (true, once(&mut command)?),
                "--add-whtlst" => (a.add_whtlst, _) = (true, once(&mut command)?),
                "-b" => (a.fullnat, _) = (true, once(&mut method)?),
                "-g" => (a.gatewaying, _) = (true, once(&mut method)?),
                "-m" => (a.masquerading, _) = (true, once(&mut method)?),
                "-i" => (a.ipip, _) = (true, once(&mut method)?),
                _ => {
                    let v = *it.next()?;
                    if v.starts_with('-') {
                        return None;
                    }
                    match w {
                        "-t" => (a.tcp, _) = (Some(v.parse().ok()?), once(&mut service)?),
                        "-u" => (a.udp, _) = (Some(v.parse().ok()?), once(&mut service)?),
                        "-s" => a.scheduler = Some(v.to_owned()),
                        "-p" => a.persistent = Some(v.parse().ok()?),
                        "-M" => a.netmask = Some(v.to_owned()),
                        "--proxy-protocol" => a.proxy_protocol = Some(v.parse().ok()?),
                        "-r" => a.real = Some(v.to_owned()),
                        "-w" => a.weight = Some(v.parse().ok()?),
                        "-x" => a.upper = Some(v.parse().ok()?),
                        "-y" => a.lower = Some(v.parse().ok()?),
                        "-z" => a.laddr = Some(v.parse().ok()?),
                        "-F" => a.ifname = Some(v.to_owned()),
                        "-k" => a.blklst = Some(conf::Prefix::parse(v).ok()?),
                        "-2" => a.whtlst = Some(conf::Prefix::parse(v).ok()?),
                        _ => return None,
                    }
                }
            }
        }
        command.then_some(a)
    }

    fn service(&self) -> Option<ServiceKey> {
        let (protocol, a) = match (self.tcp, self.udp) {
            (Some(a), _) => (conf::Protocol::Tcp, a),
            (_, Some(a)) => (conf::Protocol::Udp, a),
            _ => return None,
        };
        Some(ServiceKey { protocol, vip: a.ip(), port: a.port() })
    }

    fn need_service(&self) -> Result<ServiceKey, IpvsadmError> {
        self.service().ok_or(IpvsadmError::SERVICE)
    }

    fn real(&self, svc: &ServiceKey) -> Result<(IpAddr, u16), IpvsadmError> {
        let text = self
            .real
            .as_deref()
            .ok_or(IpvsadmError::Required { what: "a real server", options: "-r|--real-server RS[:port]" })?;
        parse_real(text, svc.port).ok_or_else(|| IpvsadmError::Real(text.to_owned()))
    }

    /// `-M`, as the prefix length of the service's family (0: the whole address).
    fn persistence_prefix(&self, svc: &ServiceKey) -> Result<Option<u8>, IpvsadmError> {
        self.netmask.as_deref().map(|text| parse_netmask(text, svc.vip.is_ipv6())).transpose()
    }

    fn refuse_misplaced(&self) -> Result<(), IpvsadmError> {
        if (self.upper.is_some() || self.lower.is_some()) && !(self.add_server || self.edit_server) {
            return Err(IpvsadmError::MisplacedThresholds);
        }
        Ok(())
    }

    /// The operation, checked. Errors name the bad argument and what is expected.
    ///
    /// # Errors
    /// [`IpvsadmError`]: missing, extra or unsupported options.
    pub fn op(&self) -> Result<Op, IpvsadmError> {
        self.refuse_misplaced()?;
        if self.add_service || self.edit_service {
            let service = self.need_service()?;
            if self.add_service {
                let scheduler = self.scheduler.clone().unwrap_or_else(|| "wlc".to_owned());
                let persistence = self.persistent.unwrap_or(0);
                let proxy_protocol = self.proxy_protocol.unwrap_or_default();
                let persistence_prefix = self.persistence_prefix(&service)?.unwrap_or(0);
                return Ok(Op::Change(Change::ServiceAdd {
                    service,
                    scheduler,
                    persistence,
                    persistence_prefix,
                    proxy_protocol,
                    group: None,
                }));
            }
            if self.scheduler.is_none()
                && self.persistent.is_none()
                && self.proxy_protocol.is_none()
                && self.netmask.is_none()
            {
                return Err(IpvsadmError::NothingToEdit);
            }
            let persistence_prefix = self.persistence_prefix(&service)?;
            let (scheduler, persistence, proxy_protocol) =
                (self.scheduler.clone(), self.persistent, self.proxy_protocol);
            return Ok(Op::Change(Change::ServiceEdit {
                service,
                scheduler,
                persistence,
                persistence_prefix,
                proxy_protocol,
            }));
        }
        if self.delete_service {
            return Ok(Op::Change(Change::ServiceDel { service: self.need_service()? }));
        }
        if self.clear {
            return Ok(Op::Change(Change::ServiceClear));
        }
        if self.add_server || self.edit_server {
            let service = self.need_service()?;
            let (addr, port) = self.real(&service)?;
            let given = if self.fullnat {
                Some(conf::Forward::Fnat)
            } else if self.gatewaying {
                Some(conf::Forward::Dr)
            } else if self.masquerading {
                Some(conf::Forward::Nat)
            } else if self.ipip {
                Some(conf::Forward::Tunnel)
            } else {
                None
            };
            let weight = self.weight.unwrap_or(1);
            return Ok(Op::Change(if self.add_server {
                // ipvsadm's default method is direct routing.
                let forward = given.unwrap_or(conf::Forward::Dr);
                let thresholds = (self.upper.unwrap_or(0), self.lower.unwrap_or(0));
                Change::RealAdd { service, addr, port, weight, forward, thresholds }
            } else {
                Change::RealEdit { service, addr, port, weight, forward: given, upper: self.upper, lower: self.lower }
            }));
        }
        if self.delete_server {
            let service = self.need_service()?;
            let (addr, port) = self.real(&service)?;
            return Ok(Op::Change(Change::RealDel { service, addr, port }));
        }
        if self.add_laddr || self.del_laddr {
            let service = self.need_service()?;
            let addr =
                self.laddr.ok_or(IpvsadmError::Required { what: "a local address", options: "-z|--laddr LIP" })?;
            let dev =
                self.ifname.clone().ok_or(IpvsadmError::Required { what: "the port", options: "-F|--ifname dev" })?;
            if self.add_laddr {
                return Ok(Op::Change(Change::LaddrAdd { service, addr, port: Some(dev) }));
            }
            return Ok(Op::Laddr(Change::LaddrDel { service, addr }, dev));
        }
        if self.get_laddr {
            return Ok(Op::GetLaddr(self.service()));
        }
        if self.add_blklst || self.del_blklst || self.add_whtlst || self.del_whtlst {
            let service = self.need_service()?;
            let client = |options| IpvsadmError::Required { what: "a client address", options };
            let (list, prefix) = if self.add_blklst || self.del_blklst {
                (AclList::Deny, self.blklst.ok_or(client("-k|--blklst-address ADDR[/len]"))?)
            } else {
                (AclList::Allow, self.whtlst.ok_or(client("-2|--whtlst-address ADDR[/len]"))?)
            };
            return Ok(Op::Change(if self.add_blklst || self.add_whtlst {
                Change::AclAdd { service, list, prefix }
            } else {
                Change::AclDel { service, list, prefix }
            }));
        }
        if self.get_blklst || self.get_whtlst {
            return Ok(Op::GetAcl(if self.get_blklst { AclList::Deny } else { AclList::Allow }));
        }
        if self.zero {
            return Ok(Op::Zero(self.service()));
        }
        if self.list {
            if [self.stats, self.rate, self.thresholds, self.connection].iter().filter(|x| **x).count() > 1 {
                return Err(IpvsadmError::ListingsTogether);
            }
            if self.stats || self.rate {
                return Ok(Op::ListStats { rate: self.rate });
            }
            if self.thresholds {
                return Ok(Op::ListThresholds);
            }
            return Ok(if self.connection { Op::ListConnections } else { Op::List });
        }
        if self.save {
            return Ok(Op::Save);
        }
        Ok(Op::Restore)
    }
}

/// The first line of `ipvsadm -L`: LVS's version, and the size of the connection table (LVS:
/// its hash table's; here the connections the workers' tables hold in all, `size`).
pub fn header(size: u64) -> String {
    format!("IP Virtual Server version 1.9.4 (size={size})\n")
}

/// The connections the workers' tables of `shm` hold in all, for [`header`].
pub fn table_size(shm: &shm_layout::Shm) -> u64 {
    crate::cmd::stats::view(shm).connections.iter().map(|c| u64::from(c.capacity)).sum()
}

/// `ipvsadm -ln`: the services of `rt` with their connection counts, under [`header`]`(size)`.
/// A real server down by its health check shows weight 0, or is not listed when its service's
/// check removes failed real servers (as with keepalived).
pub fn list(rt: &conf::Runtime, counts: &HashMap<RealKey, (u64, u64)>, size: u64) -> String {
    let mut rows = crate::cmd::service::view(rt, counts, &HashMap::new());
    for s in &mut rows {
        s.reals.retain(|r| !r.removed);
    }
    let mut out = header(size);
    // The same table as `dpvsctl service list`, without its local-address and check lines.
    let theirs = |l: &&str| {
        !l.starts_with("  local addresses:")
            && !l.starts_with("  check: ")
            && !l.starts_with(crate::cmd::service::VIP_NOT_HELD)
    };
    for line in crate::cmd::service::render(&rows).lines().filter(theirs) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `ipvsadm -Sn`: rules that `-R` restores (local addresses included, with their port).
pub fn save(rt: &conf::Runtime, ports: &[String]) -> String {
    let mut out = String::new();
    for s in &rt.services {
        let flag = match s.protocol {
            conf::Protocol::Tcp => "-t",
            conf::Protocol::Udp => "-u",
        };
        let mut persistent = if s.persistence > 0 { format!(" -p {}", s.persistence) } else { String::new() };
        if s.persistence_prefix > 0 {
            persistent += &format!(" -M {}", netmask_text(s.vip, s.persistence_prefix));
        }
        let proxy = match s.proxy_protocol {
            conf::ProxyProtocol::Off => String::new(),
            p => format!(" --proxy-protocol {}", p.name()),
        };
        let _ =
            writeln!(out, "-A {flag} {} -s {}{persistent}{proxy}", SocketAddr::new(s.vip, s.port), s.scheduler.name());
        for r in &s.reals {
            let method = match r.forward {
                conf::Forward::Fnat => "-b",
                conf::Forward::Dr => "-g",
                conf::Forward::Nat => "-m",
                conf::Forward::Tunnel => "-i",
            };
            let mut thresholds = String::new();
            if r.upper > 0 {
                let _ = write!(thresholds, " -x {}", r.upper);
            }
            if r.lower > 0 {
                let _ = write!(thresholds, " -y {}", r.lower);
            }
            let _ = writeln!(
                out,
                "-a {flag} {} -r {} {method} -w {}{thresholds}",
                SocketAddr::new(s.vip, s.port),
                SocketAddr::new(r.addr, r.port),
                r.weight
            );
        }
        for p in &s.deny {
            let _ = writeln!(out, "--add-blklst -k {p} {flag} {}", SocketAddr::new(s.vip, s.port));
        }
        for p in &s.allow {
            let _ = writeln!(out, "--add-whtlst -2 {p} {flag} {}", SocketAddr::new(s.vip, s.port));
        }
        for l in &s.local_addresses {
            let dev =
                rt.addresses.iter().find(|a| a.addr == *l).and_then(|a| ports.get(a.port)).map_or("?", String::as_str);
            let _ = writeln!(out, "--add-laddr -z {l} {flag} {} -F {dev}", SocketAddr::new(s.vip, s.port));
        }
    }
    out
}

/// `ipvsadm -G`.
pub fn get_laddr(rt: &conf::Runtime, only: Option<ServiceKey>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<24} {:<8} SNAT_IP", "VIP:VPORT", "TOTAL");
    for s in &rt.services {
        if only.is_some_and(|k| k.protocol != s.protocol || k.vip != s.vip || k.port != s.port) {
            continue;
        }
        for l in &s.local_addresses {
            let _ =
                writeln!(out, "{:<24} {:<8} {l}", SocketAddr::new(s.vip, s.port).to_string(), s.local_addresses.len());
        }
    }
    out
}

/// `ipvsadm --get-blklst` / `--get-whtlst`.
pub fn get_acl(rt: &conf::Runtime, list: AclList) -> String {
    let mut out = String::new();
    let title = match list {
        AclList::Deny => "BLACKLIST",
        AclList::Allow => "WHITELIST",
    };
    let _ = writeln!(out, "{:<24} {:<8} {title}", "VIP:VPORT", "PROTO");
    for s in &rt.services {
        let l = match list {
            AclList::Deny => &s.deny,
            AclList::Allow => &s.allow,
        };
        for p in l {
            let _ = writeln!(
                out,
                "{:<24} {:<8} {p}",
                SocketAddr::new(s.vip, s.port).to_string(),
                s.protocol.name().to_uppercase()
            );
        }
    }
    out
}

/// `ipvsadm -ln --thresholds`, under [`header`]`(size)`.
pub fn list_thresholds(rt: &conf::Runtime, counts: &HashMap<RealKey, (u64, u64)>, size: u64) -> String {
    let mut out = header(size);
    let _ = writeln!(
        out,
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n  -> RemoteAddress:Port"
    );
    for s in &rt.services {
        let _ = writeln!(
            out,
            "{:<4} {} {}",
            s.protocol.name().to_uppercase(),
            SocketAddr::new(s.vip, s.port),
            s.scheduler.name()
        );
        // As -ln: a real server its check removed is not listed.
        for r in s.reals.iter().filter(|r| !s.hides(r)) {
            let (a, i) = counts.get(&(s.protocol.number(), s.vip, s.port, r.addr, r.port)).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "  -> {:<28} {:<10} {:<10} {:<10} {i}",
                SocketAddr::new(r.addr, r.port).to_string(),
                r.upper,
                r.lower,
                a
            );
        }
    }
    out
}

/// A real server as ipvsadm's `-r` writes it: `198.18.1.2`, `198.18.1.2:8080`, `2001:db8::2`,
/// `[2001:db8::2]` or `[2001:db8::2]:8080`; without a port, `default_port` (the service's).
pub fn parse_real(text: &str, default_port: u16) -> Option<(IpAddr, u16)> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Some((a.ip(), a.port()));
    }
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    Some((bare.parse().ok()?, default_port))
}

/// `-M`: a netmask (IPv4, contiguous, like 255.255.255.0) or a prefix length (like 24, or 64
/// for IPv6), as a prefix length of the service's family; 0 for the whole address.
///
/// # Errors
/// [`IpvsadmError::Netmask`]: neither, too long, or a netmask for an IPv6 service.
pub fn parse_netmask(text: &str, v6: bool) -> Result<u8, IpvsadmError> {
    let whole: u8 = if v6 { 128 } else { 32 };
    let bad = || IpvsadmError::Netmask { text: text.to_owned(), whole };
    let len = match text.parse::<std::net::Ipv4Addr>() {
        Ok(_) if v6 => return Err(bad()),
        Ok(mask) => {
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) != 0 {
                return Err(bad());
            }
            len as u8
        }
        Err(_) => text.parse::<u8>().map_err(|_| bad())?,
    };
    match len {
        0 => Err(bad()),
        l if l == whole => Ok(0),
        l if l < whole => Ok(l),
        _ => Err(bad()),
    }
}

/// A persistence prefix as ipvsadm writes it: a netmask for IPv4, a length for IPv6.
pub fn netmask_text(vip: IpAddr, prefix: u8) -> String {
    match vip {
        IpAddr::V4(_) => conf::network(std::net::Ipv4Addr::BROADCAST, prefix).to_string(),
        IpAddr::V6(_) => prefix.to_string(),
    }
}

/// Why a local address does not belong to the port `-F` names ([`check_laddr_port`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaddrPortError {
    /// No port has that name.
    #[error("-F: no port \"{dev}\" (ports: {})", ports.join(", "))]
    NoPort { dev: String, ports: Vec<String> },
    /// The address belongs to another port.
    #[error("{addr} is an address of {owner}, not of {dev}")]
    OtherPort { addr: IpAddr, owner: String, dev: String },
}

/// Checks that `addr` is an address of the port named `dev` (ipvsadm's `-F`).
///
/// # Errors
/// [`LaddrPortError`]: it is not, naming the port that has it, if any.
pub fn check_laddr_port(rt: &conf::Runtime, ports: &[String], addr: IpAddr, dev: &str) -> Result<(), LaddrPortError> {
    let Some(p) = ports.iter().position(|p| p == dev) else {
        return Err(LaddrPortError::NoPort { dev: dev.to_owned(), ports: ports.to_vec() });
    };
    match rt.addresses.iter().find(|a| a.addr == addr) {
        Some(a) if a.port == p => Ok(()),
        Some(a) => Err(LaddrPortError::OtherPort {
            addr,
            owner: ports.get(a.port).map_or("?", String::as_str).to_owned(),
            dev: dev.to_owned(),
        }),
        // The primary names what is wrong (not an interface address).
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
