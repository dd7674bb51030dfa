//! Configuration of one load-balancer instance.
//!
//! Two stages, as in ripgrep's `lowargs` -> `hiargs`: a raw TOML document is deserialised
//! (serde, unknown keys refused), then validated and resolved into [`Config`], whose port and
//! queue references are indices and whose derived values (tx queues per port, ...) are
//! computed once. Every error names the file, the line, the key and what was expected:
//! `conf/memif.toml:14: groups[0].lcores[1].rx[0]: port "dpdk9" is not defined (ports: dpdk0, dpdk1)`.
//!
//! The file format is documented by example in `conf/samples/*.toml`, every key commented;
//! `samples/tap-fnat.toml` is also the configuration used when none is given
//! ([`Config::embedded_default`]).
//!
//! Modules: `raw` (serde structs, unknown keys refused, everything optional), `validate`
//! (rules, defaults, resolution; its docs list the invariants a [`Config`] holds), `locate`
//! (parsing and mapping key paths back to lines), `error` ([`ConfError`]), `mac` (the text form
//! of MAC addresses).
#![forbid(unsafe_code)]

mod check;
mod error;
mod locate;
mod mac;
mod raw;
mod resolve;
mod rss;
mod runtime;
mod shared;
mod validate;

use std::path::{Path, PathBuf};

pub use check::{CheckSpec, HealthCheck, OnFailure, Probe, MAX_CHECK_MS, MAX_CHECK_TEXT, MAX_RISE_FALL};
pub use error::ConfError;
pub use mac::{mac_text, parse_mac, ParseMacError};
pub use resolve::Resolver;
pub use rss::{PortRss, MAX_RETA};
pub use runtime::{
    replace_runtime_tables, Pollers, ReplaceTablesError, Runtime, RuntimeError, RuntimeTables, ServiceCounts,
};
pub use shared::Shared;

/// Largest lcore id DPDK 22.11 accepts (`RTE_MAX_LCORE` in Debian's build).
pub const MAX_LCORE: u32 = 128;
/// Most forwarding lcores (= worker slots in shared memory).
pub const MAX_WORKER_LCORES: usize = 64;
/// Most rx queues one forwarding lcore polls.
pub const MAX_RX_PER_LCORE: usize = 16;
/// Most ports.
pub const MAX_PORTS: usize = 32;
/// Most queue pairs per port.
pub const MAX_QUEUES_PER_PORT: u16 = 16;
/// Longest instance name / file prefix (it is embedded in fixed-size shm fields).
pub const MAX_NAME_LEN: usize = 31;
/// Longest port / worker group name (`IFNAMSIZ - 1`).
pub const MAX_PORT_NAME_LEN: usize = 15;
/// CPU numbers must be below this (`CPU_SETSIZE`, the size of the cpusets EAL pins with).
pub const MAX_CPU: u32 = 1024;

/// The text of the built-in configuration (`samples/tap-fnat.toml`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../samples/tap-fnat.toml");

/// A validated, resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it came from: a file path, or `<embedded>`.
    pub source: String,
    /// `[instance]`: names, directories, main lcore.
    pub instance: Instance,
    /// `[memory]`: mbuf pools and descriptor rings.
    pub memory: Memory,
    /// `[[ports]]`, in file order (indices are used by [`QueueRef`] and [`Forwarding`]).
    pub ports: Vec<Port>,
    /// `[forwarding]`.
    pub forwarding: Forwarding,
    /// `[[groups]]`, in file order.
    pub groups: Vec<WorkerGroup>,
    /// `[supervisor]`.
    pub supervisor: Supervisor,
    /// `[exporter]`.
    pub exporter: Exporter,
    /// Addresses the balancer owns on its ports: it answers ARP and ICMP echo for them.
    pub addresses: Vec<IfAddr>,
    /// Static neighbours (IPv4 to MAC on a port).
    pub neighbours: Vec<Neighbour>,
    /// Static routes: networks reached through a gateway on a port's network.
    pub routes: Vec<Route>,
    /// Virtual services (shared with the runtime configurations made from it).
    pub services: Vec<Shared<Service>>,
    /// Connection tables.
    pub connections: Connections,
    /// `[limits]`: how large the runtime tables may grow (the shared memory is sized from
    /// them at start).
    pub limits: Limits,
}

/// `[limits]`: the most of each runtime table a configuration may have, from the file and
/// every change after it. Fixed for the instance's life (the shared memory is sized from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Virtual services (per-worker counters: 64 bytes each).
    pub services: u32,
    /// Real servers, over all services (per-worker counters: 64 bytes each).
    pub reals: u32,
    /// Real servers of one service.
    pub reals_per_service: u32,
    /// Local addresses of one service.
    pub local_addresses: u32,
    /// Networks in one access list (`deny` or `allow`) of a service.
    pub acl_entries: u32,
    /// Static neighbours.
    pub neighbours: u32,
    /// Interface addresses.
    pub addresses: u32,
    /// Static routes.
    pub routes: u32,
}

impl Limits {
    /// The defaults: a few thousand services, within a few MiB of shared memory per worker.
    pub const DEFAULT: Limits = Limits {
        services: 4096,
        reals: 16_384,
        reals_per_service: 1024,
        local_addresses: 64,
        acl_entries: 256,
        neighbours: 4096,
        addresses: 256,
        routes: 1024,
    };

    /// Bytes of one configuration generation buffer for a configuration at these limits
    /// (services at 256 encoded bytes each on average, with their local addresses and access
    /// lists; real servers at 48); a larger one is refused (raise the limits).
    pub fn generation_bytes(&self) -> u64 {
        64 * 1024
            + u64::from(self.services) * 256
            + u64::from(self.reals) * 48
            + (u64::from(self.neighbours) + u64::from(self.addresses) + u64::from(self.routes)) * 32
    }

    /// Bytes of the arena of the ring of configuration deltas: a quarter of a generation
    /// buffer, from 1 MiB to 16 MiB. A change whose delta takes more than a quarter of it (256
    /// KiB at least: a service with 4 096 real servers and its local addresses) is published
    /// as a whole generation.
    pub fn delta_bytes(&self) -> u64 {
        (self.generation_bytes() / 4).clamp(1024 * 1024, 16 * 1024 * 1024)
    }
}

/// A static neighbour: the MAC address of an IPv4 host on a port's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Neighbour {
    /// IPv4 or IPv6.
    pub addr: std::net::IpAddr,
    pub mac: [u8; 6],
    /// Index into [`Config::ports`].
    pub port: usize,
}

/// A static route: `prefix/len` is reached through the gateway `via`, which is on a port's
/// connected network (its MAC from a static neighbour entry, ARP or neighbour discovery).
/// IPv4 or IPv6: the prefix and the gateway are of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// Network address (host bits zero).
    pub prefix: std::net::IpAddr,
    pub len: u8,
    pub via: std::net::IpAddr,
}

impl Route {
    /// Whether `addr` is in the route's network (an address of the other family never is).
    pub fn contains(&self, addr: impl Into<std::net::IpAddr>) -> bool {
        let addr = addr.into();
        addr.is_ipv6() == self.prefix.is_ipv6() && network_of(addr, self.len) == self.prefix
    }
}

/// The network of `addr` for prefix length `len` (its host bits cleared; `len` at most 32).
pub fn network(addr: std::net::Ipv4Addr, len: u8) -> std::net::Ipv4Addr {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
    std::net::Ipv4Addr::from(u32::from(addr) & mask)
}

/// The network of `addr` under a prefix of `len` bits, of either family.
pub fn network_of(addr: std::net::IpAddr, len: u8) -> std::net::IpAddr {
    match addr {
        std::net::IpAddr::V4(a) => network(a, len).into(),
        std::net::IpAddr::V6(a) => network_v6(a, len).into(),
    }
}

/// The network of `addr` under a prefix of `len` bits (a length over 128 counts as 128).
pub fn network_v6(addr: std::net::Ipv6Addr, len: u8) -> std::net::Ipv6Addr {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
    std::net::Ipv6Addr::from(addr.to_bits() & mask)
}

/// `198.18.0.254/24` or `2001:db8::1/64`: an IPv4 address and a prefix length of at most 32,
/// or an IPv6 address and one of at most 128 (syntax only; what the address may be is the
/// caller's rule).
///
/// # Errors
/// [`ParsePrefixError`], naming the text and what is expected.
pub fn parse_ip_prefix(text: &str) -> Result<(std::net::IpAddr, u8), ParsePrefixError> {
    let expected = || ParsePrefixError::IpSyntax { text: text.to_owned() };
    let (a, p) = text.split_once('/').ok_or_else(expected)?;
    let addr: std::net::IpAddr = a.parse().map_err(|_| expected())?;
    let len: u8 = p.parse().map_err(|_| expected())?;
    match addr {
        std::net::IpAddr::V4(_) if len > 32 => Err(ParsePrefixError::Length { len }),
        std::net::IpAddr::V6(_) if len > 128 => Err(ParsePrefixError::Length6 { len }),
        _ => Ok((addr, len)),
    }
}

/// Whether `addr` can be a port's address: not unspecified, broadcast, multicast or loopback,
/// and for IPv6 not link-local (the balancer derives none and answers for the addresses it is
/// given; a host's link-local address belongs to its kernel interface).
///
/// # Errors
/// What is wrong with it, naming it.
pub fn check_if_addr(addr: std::net::IpAddr) -> Result<(), String> {
    check_not_mapped(addr)?;
    let bad = match addr {
        std::net::IpAddr::V4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast(),
        std::net::IpAddr::V6(a) => {
            a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.is_unicast_link_local()
        }
    };
    if !bad {
        return Ok(());
    }
    Err(match addr {
        std::net::IpAddr::V4(_) => format!("{addr} cannot be an interface address (unspecified, broadcast or multicast)"),
        std::net::IpAddr::V6(_) => format!(
            "{addr} cannot be an interface address (unspecified, multicast, loopback or link-local: give a global or unique-local address)"
        ),
    })
}

/// Refuses an IPv4-mapped IPv6 address (`::ffff:198.18.0.1`): the balancer's tables hold
/// IPv4 addresses in that form, so the two would be one.
///
/// # Errors
/// The address, and how to write it.
pub fn check_not_mapped(addr: std::net::IpAddr) -> Result<(), String> {
    match addr {
        std::net::IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Err(format!("{addr} is an IPv4-mapped IPv6 address: write the IPv4 address {}", a.to_canonical()))
        }
        _ => Ok(()),
    }
}

/// Why a text is not `address/length` ([`parse_ip_prefix`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePrefixError {
    /// Not an IPv4 or IPv6 address, a slash and a number.
    #[error(
        "expected an IP address with its prefix length, like \"198.18.0.254/24\" or \"2001:db8::1/64\", got \"{text}\""
    )]
    IpSyntax {
        /// The rejected text.
        text: String,
    },
    /// A prefix length over 32.
    #[error("prefix length {len} is out of range: expected 0..=32")]
    Length {
        /// The length given.
        len: u8,
    },
    /// An IPv6 prefix length over 128.
    #[error("prefix length {len} is out of range: expected 0..=128 for an IPv6 address")]
    Length6 {
        /// The length given.
        len: u8,
    },
}

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// A virtual service (Full-NAT).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Service {
    /// The virtual address, IPv4 or IPv6; its real servers and local addresses are of its
    /// family, or, for an IPv6 one, all IPv4 (NAT64: [`Service::is_nat64`]).
    pub vip: std::net::IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    /// Scheduler (ipvsadm name).
    pub scheduler: sched::Kind,
    /// Local addresses connections to the real servers come from.
    pub local_addresses: Vec<std::net::IpAddr>,
    pub reals: Vec<Real>,
    /// Persistence timeout, seconds (ipvsadm `-p`; 0: none): a client's new connections go to
    /// the real server of its previous one while its template lives.
    pub persistence: u32,
    /// The prefix length clients are grouped by for persistence (ipvsadm's `-M`): clients in
    /// one network of that length share a template. 0: each address alone (/32, /128).
    pub persistence_prefix: u8,
    /// Clients whose new connections are dropped (DPVS's blacklist, ipvsadm `--add-blklst`).
    pub deny: Vec<Prefix>,
    /// When not empty, only clients in these networks may open connections (DPVS's
    /// whitelist, ipvsadm `--add-whtlst`). `deny` is checked first.
    pub allow: Vec<Prefix>,
    /// PROXY protocol header the Full-NAT real servers get at the start of each TCP stream
    /// (instead of TOA), or in front of each UDP datagram (version 2 only).
    pub proxy_protocol: ProxyProtocol,
    /// The worker group that serves it (`None`: the group polling its VIP's port). Only that
    /// group's lcores hold its connections and hand its packets to each other.
    pub group: Option<String>,
    /// The active health check `dpvs-health` runs on each real server (`[services.check]`).
    pub check: Option<HealthCheck>,
}

impl Service {
    /// Whether `r` (one of its real servers) is out of the listings: down by a health check
    /// that removes failed real servers (`ipvsadm -ln` does not show it).
    pub fn hides(&self, r: &Real) -> bool {
        r.down && self.check.as_ref().is_some_and(|c| c.on_failure == OnFailure::Remove)
    }

    /// Whether it is NAT64: an IPv6 VIP whose real servers and local addresses are IPv4
    /// (Full-NAT with each packet's header translated, as DPVS does).
    pub fn is_nat64(&self) -> bool {
        self.vip.is_ipv6()
            && self.reals.iter().map(|r| r.addr).chain(self.local_addresses.iter().copied()).any(|a| a.is_ipv4())
    }
}

/// The PROXY protocol (haproxy.org) header a Full-NAT service puts before a TCP client's first
/// byte (or a UDP client's every datagram), carrying the client's and the virtual address and
/// port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ProxyProtocol {
    /// None (the real servers get TOA).
    #[default]
    Off,
    /// Version 1: one text line, `PROXY TCP4 client vip cport vport\r\n`.
    V1,
    /// Version 2: the 28-byte binary header.
    V2,
}

impl ProxyProtocol {
    /// `off`, `v1` or `v2`, as the file spells it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }
}

/// A text that names no PROXY protocol version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a PROXY protocol version \"v1\" or \"v2\", or \"off\", got \"{text}\"")]
pub struct ParseProxyProtocolError {
    /// The rejected text.
    pub text: String,
}

impl std::str::FromStr for ProxyProtocol {
    type Err = ParseProxyProtocolError;

    fn from_str(s: &str) -> Result<Self, ParseProxyProtocolError> {
        match s {
            "off" | "disable" => Ok(ProxyProtocol::Off),
            "v1" => Ok(ProxyProtocol::V1),
            "v2" => Ok(ProxyProtocol::V2),
            other => Err(ParseProxyProtocolError { text: other.to_owned() }),
        }
    }
}

/// An IPv4 or IPv6 network: `addr/len`, host bits zero (a single address is `/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Prefix {
    pub addr: std::net::IpAddr,
    pub len: u8,
}

impl Prefix {
    /// Whether `a` is in the network (an address of the other family never is).
    pub fn contains(&self, a: impl Into<std::net::IpAddr>) -> bool {
        let a = a.into();
        a.is_ipv6() == self.addr.is_ipv6() && network_of(a, self.len) == self.addr
    }

    /// `198.18.9.0/24` or `2001:db8:9::/48`, or a bare address for a /32 (IPv6: /128).
    ///
    /// # Errors
    /// [`ParseNetworkError`]: not an address or network, or host bits set.
    pub fn parse(text: &str) -> Result<Prefix, ParseNetworkError> {
        let (addr, len) = if text.contains('/') {
            parse_ip_prefix(text)?
        } else {
            let a: std::net::IpAddr = text.parse().map_err(|_| ParseNetworkError::Address { text: text.to_owned() })?;
            (a, if a.is_ipv6() { 128 } else { 32 })
        };
        check_not_mapped(addr).map_err(|_| ParseNetworkError::Address { text: text.to_owned() })?;
        let net = Prefix { addr: network_of(addr, len), len };
        if net.addr != addr {
            return Err(ParseNetworkError::HostBits { text: text.to_owned(), network: net });
        }
        Ok(net)
    }
}

/// Why a text is not a network ([`Prefix::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNetworkError {
    /// Not `address/length`.
    #[error(transparent)]
    Prefix(#[from] ParsePrefixError),
    /// Without a slash, not an IPv4 or IPv6 address (or an IPv4-mapped IPv6 one).
    #[error(
        "expected an IPv4 or IPv6 address or network like \"198.18.9.0/24\" or \"2001:db8:9::/48\", got \"{text}\""
    )]
    Address {
        /// The rejected text.
        text: String,
    },
    /// An address inside the network rather than the network's own.
    #[error("{text} has host bits set: the network is {}/{}", network.addr, network.len)]
    HostBits {
        /// The rejected text.
        text: String,
        /// The network the address is in.
        network: Prefix,
    },
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.len == 32 {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// A real server of a service, reached on a port's connected network or through a route's
/// gateway; the next hop's MAC comes from a static neighbour entry, else from ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Real {
    pub addr: std::net::IpAddr,
    pub port: u16,
    pub weight: u32,
    /// How packets reach it.
    pub forward: Forward,
    /// Upper connection threshold (ipvsadm `-x`; 0: none): at this many connections the real
    /// server is overloaded and gets no new ones until it is down to `lower`.
    pub upper: u32,
    /// Lower connection threshold (ipvsadm `-y`; 0: three quarters of `upper`, as in LVS).
    pub lower: u32,
    /// Its service's health check failed (`dpvs-health` says so through the mailbox): it
    /// takes no new connections (weight 0 in effect), persistence templates naming it are let
    /// go, its established connections go on. Observed state, not configuration: no file sets
    /// it and `config dump` does not write it.
    pub down: bool,
}

impl Real {
    /// The weight the schedulers use: 0 while it is down.
    pub fn effective_weight(&self) -> u32 {
        if self.down {
            0
        } else {
            self.weight
        }
    }
}

/// How a real server is reached (LVS's forwarding method, chosen per real server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Forward {
    /// Full-NAT: client -> VIP becomes local address -> real server, both ways through the
    /// balancer (ipvsadm `-b`).
    #[default]
    Fnat,
    /// Direct routing: the frame is sent to the real server's MAC unchanged; the real server
    /// has the VIP on a loopback and answers the client directly (ipvsadm `-g`).
    Dr,
    /// NAT: the destination becomes the real server; its replies, routed back through the
    /// balancer, get the VIP as source again (ipvsadm `-m`).
    Nat,
    /// IP-in-IP tunnel: the packet, unchanged, inside an IPv4 header from the balancer's
    /// address to the real server, which decapsulates it (the VIP on a tunnel device) and
    /// answers the client directly (ipvsadm `-i`).
    Tunnel,
}

impl Forward {
    /// `fnat` or `dr`, as the file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Fnat => "fnat",
            Forward::Dr => "dr",
            Forward::Nat => "nat",
            Forward::Tunnel => "tunnel",
        }
    }
}

/// Connection table sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Entries per forwarding lcore (a power of two).
    pub capacity_per_lcore: u32,
}

/// An IPv4 or IPv6 address owned by a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfAddr {
    /// Index into [`Config::ports`].
    pub port: usize,
    pub addr: std::net::IpAddr,
    /// Prefix length of the connected network.
    pub prefix: u8,
    /// Installed by `ipvsadm --add-laddr ... -F port` (DPVS's `sapool` address): removed
    /// again by the `--del-laddr` after which no service uses it.
    pub sapool: bool,
}

impl IfAddr {
    /// The address, if it is IPv4.
    pub const fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        match self.addr {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        }
    }

    /// The address, if it is IPv6.
    pub const fn ipv6(&self) -> Option<std::net::Ipv6Addr> {
        match self.addr {
            std::net::IpAddr::V6(a) => Some(a),
            std::net::IpAddr::V4(_) => None,
        }
    }
}

impl Config {
    /// Reads and resolves the configuration file at `path`.
    ///
    /// An unreadable file is an error at line 0 with an empty key.
    pub fn from_file(path: &Path) -> Result<Config, ConfError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfError {
            file: source.clone(),
            line: 0,
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Self::from_str(&text, &source)
    }

    /// Parses and resolves configuration `text`; `source` names it in errors (a file name).
    pub fn from_str(text: &str, source: &str) -> Result<Config, ConfError> {
        let (located, raw) = locate::Located::parse(text, source);
        raw.and_then(|raw| validate::resolve(raw, source)).map_err(|fault| located.error(fault))
    }

    /// The built-in configuration (`samples/tap-fnat.toml`), used when none is given.
    pub fn embedded_default() -> Config {
        Self::from_str(EMBEDDED_DEFAULT, "<embedded>").expect("samples/tap-fnat.toml is valid (checked by a unit test)")
    }

    /// Every forwarding lcore with its group, in slot order.
    pub fn worker_lcores(&self) -> impl Iterator<Item = (&WorkerGroup, &WorkerLcore)> {
        self.groups.iter().flat_map(|g| g.lcores.iter().map(move |l| (g, l)))
    }

    /// The instance's shared-memory file: `<shm_dir>/<name>.shm`.
    pub fn shm_path(&self) -> PathBuf {
        self.instance.shm_dir.join(format!("{}.shm", self.instance.name))
    }

    /// Index into [`Config::ports`] of the port named `name`.
    pub fn port_by_name(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }
}

/// `[instance]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Instance name; names the shm file and, unless overridden, the EAL file prefix.
    pub name: String,
    /// EAL `--file-prefix`.
    pub file_prefix: String,
    /// hugetlbfs mount used by EAL (`--huge-dir`).
    pub huge_dir: PathBuf,
    /// Directory holding the instance's shm file (`<shm_dir>/<name>.shm`).
    pub shm_dir: PathBuf,
    /// The primary's EAL main lcore.
    pub main_lcore: Lcore,
    /// The housekeeping CPU (`housekeeping_cpu`, default the main lcore's `main_cpu`):
    /// successors initialise there and departing workers exit there, off the data CPUs.
    pub housekeeping_cpu: Option<u32>,
    /// `tracing` filter for the primary and workers (`info`, `debug`, `dpvs=debug,...`).
    pub log_level: String,
}

/// An EAL lcore id, optionally pinned to a CPU (`--lcores=<id>@<cpu>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lcore {
    /// EAL lcore id, below [`MAX_LCORE`].
    pub id: u32,
    /// CPU the lcore's thread is pinned to, if any.
    pub cpu: Option<u32>,
}

/// `[memory]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Mbufs in each forwarding lcore's pool.
    pub mbufs_per_lcore: u32,
    /// Per-lcore mempool cache size.
    pub mbuf_cache: u32,
    /// Rx descriptors per rx queue.
    pub rx_desc: u16,
    /// Tx descriptors per tx queue.
    pub tx_desc: u16,
}

/// One `[[ports]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Operator's name for the port (`dpdk0`).
    pub name: String,
    /// The DPDK device behind it.
    pub device: Device,
    /// Rx queues (each polled by exactly one forwarding lcore).
    pub rx_queues: u16,
    /// Tx queues: one per forwarding lcore, derived (lcore slot index = tx queue index).
    pub tx_queues: u16,
    /// The port of this port's exception path (`kni = "dpdk0.kni"`): a TAP device for the
    /// host's kernel, derived, after the configured ports.
    pub exception: Option<usize>,
    /// For an exception path's TAP port: the data port it serves.
    pub exception_of: Option<usize>,
    /// Largest IPv4 packet the port sends (576..=9000; 1500 by default): a bigger one with DF
    /// set is answered with ICMP fragmentation needed, one without is dropped.
    pub mtu: u16,
    /// Its receive-side scaling (`rss_key`, `reta`).
    pub rss: PortRss,
}

/// How EAL finds a port's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A PCI address as EAL spells it (`0000:03:00.0`).
    Pci(String),
    /// A vdev argument (`net_memif0,role=server,socket=/run/x.sock`).
    Vdev(String),
}

impl Device {
    /// The DPDK device name: the PCI address, or the vdev string up to its first comma.
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Pci(a) => a,
            Device::Vdev(v) => v.split(',').next().unwrap_or(v),
        }
    }
}

/// Until the load-balancer data path lands, workers forward at layer 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// Two-arm: what arrives on port `a` leaves on port `b`, and back (indices into `ports`).
    L2Pair { a: usize, b: usize },
    /// One-arm: back out of the port it came in on, with MAC addresses swapped.
    L2Reflect,
}

/// One `[[groups]]` entry: forwarding lcores sharing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerGroup {
    /// Operator's name for the group.
    pub name: String,
    /// Its `[[groups.lcores]]`, in file order (so in slot order).
    pub lcores: Vec<WorkerLcore>,
    /// Sleep this long after an empty poll round (0 = pure busy polling).
    pub idle_sleep_us: u32,
    /// Keep an attached successor per worker, ready to poll the moment the worker dies.
    pub hot_standby: bool,
}

/// One forwarding lcore, run by one worker process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLcore {
    /// Its EAL lcore id and CPU pin.
    pub lcore: Lcore,
    /// Index of this lcore among all forwarding lcores of the config (the worker slot, and
    /// the tx queue it owns on every port).
    pub slot: usize,
    /// Rx queues this lcore polls.
    pub rx: Vec<QueueRef>,
}

/// One rx queue of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRef {
    /// Index into [`Config::ports`].
    pub port: usize,
    /// Queue index, below the port's `rx_queues`.
    pub queue: u16,
}

/// `[exporter]`: where `dpvs-exporter` serves the instance's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exporter {
    /// Address and port of its HTTP server (`/metrics`).
    pub listen: std::net::SocketAddr,
}

impl Default for Exporter {
    fn default() -> Self {
        Exporter { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9469)) }
    }
}

/// `[supervisor]`: how the primary watches its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervisor {
    /// A worker whose heartbeat is older than this is killed and restarted.
    pub heartbeat_timeout_ms: u32,
    /// Upper bound of the exponential restart backoff for a worker that keeps crashing.
    pub max_restart_backoff_ms: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid document, to which tests append or in which they replace.
    const BASE: &str = r#"[instance]
name = "t"

[[ports]]
name = "p0"
vdev = "net_tap0"

[forwarding]
mode = "l2-reflect"

[[groups]]
name = "g"

[[groups.lcores]]
id = 1
rx = ["p0:0"]
"#;

    fn err(text: &str) -> ConfError {
        Config::from_str(text, "t.toml").expect_err("should be refused")
    }

    #[test]
    fn embedded_default_resolves() {
        let c = Config::embedded_default();
        assert_eq!(c.source, "<embedded>");
        assert_eq!(c.instance.name, "dpvs");
        assert_eq!(c.forwarding, Forwarding::L2Pair { a: 0, b: 1 });
        assert_eq!(c.shm_path(), PathBuf::from("/dev/shm/dpvs.shm"));
        assert_eq!(c.port_by_name("dpdk1"), Some(1));
        assert_eq!(c.port_by_name("dpdk9"), None);
        assert_eq!(c.groups[0].idle_sleep_us, 20);
        assert_eq!(c.instance.main_lcore, Lcore { id: 0, cpu: Some(0) });
    }

    #[test]
    fn defaults() {
        let c = Config::from_str(BASE, "t.toml").expect("valid");
        assert_eq!(c.instance.file_prefix, "t");
        assert_eq!(c.instance.huge_dir, PathBuf::from("/dev/hugepages"));
        assert_eq!(c.instance.shm_dir, PathBuf::from("/dev/shm"));
        assert_eq!(c.instance.main_lcore, Lcore { id: 0, cpu: None });
        assert_eq!(c.instance.log_level, "info");
        assert_eq!(c.memory, Memory { mbufs_per_lcore: 8191, mbuf_cache: 256, rx_desc: 1024, tx_desc: 1024 });
        assert_eq!(c.supervisor, Supervisor { heartbeat_timeout_ms: 1000, max_restart_backoff_ms: 5000 });
        assert_eq!(c.ports[0].rx_queues, 1);
        assert_eq!(c.ports[0].tx_queues, 1);
        assert_eq!(c.forwarding, Forwarding::L2Reflect);
        assert_eq!(c.groups[0].idle_sleep_us, 0);
        assert_eq!(c.groups[0].lcores[0].lcore.cpu, None);
    }

    #[test]
    fn slots_and_tx_queues_span_groups() {
        let text = BASE
            .replace(
                r#"rx = ["p0:0"]"#,
                r#"rx = ["p0:0"]
[[groups.lcores]]
id = 2
rx = ["p0:1"]
[[groups]]
name = "h"
[[groups.lcores]]
id = 5
cpu = 3
rx = ["p0:2"]"#,
            )
            .replace("vdev = \"net_tap0\"", "vdev = \"net_tap0\"\nqueues = 3");
        let c = Config::from_str(&text, "t.toml").expect("valid");
        let slots: Vec<(&str, u32, usize)> =
            c.worker_lcores().map(|(g, l)| (g.name.as_str(), l.lcore.id, l.slot)).collect();
        assert_eq!(slots, [("g", 1, 0), ("g", 2, 1), ("h", 5, 2)]);
        assert_eq!(c.ports[0].tx_queues, 3);
        assert_eq!(c.ports[0].rx_queues, 3);
        assert_eq!(c.groups[1].lcores[0].rx, [QueueRef { port: 0, queue: 2 }]);
    }

    #[test]
    fn an_exception_path_is_a_derived_tap_port_polled_with_queue_0() {
        let c = Config::from_str(&BASE.replace("vdev = \"net_tap0\"", "vdev = \"net_tap0\"\nkni = \"p0.kni\""), "t")
            .expect("valid");
        assert_eq!(c.ports.len(), 2);
        let k = &c.ports[1];
        assert_eq!((k.name.as_str(), &k.device), ("p0.kni", &Device::Vdev("net_tap_kni0,iface=p0.kni".into())));
        assert_eq!((k.rx_queues, k.tx_queues, k.exception_of, c.ports[0].exception), (1, 1, Some(0), Some(1)));
        assert_eq!(c.groups[0].lcores[0].rx, [QueueRef { port: 0, queue: 0 }, QueueRef { port: 1, queue: 0 }]);
        let e = err(&BASE.replace("vdev = \"net_tap0\"", "vdev = \"net_tap0\"\nkni = \"p0\""));
        assert!(e.to_string().contains("ports[0].kni: \"p0\" is already the name of ports[0]"), "{e}");
        let with_kni = BASE.replace("vdev = \"net_tap0\"", "vdev = \"net_tap0\"\nkni = \"p0.kni\"");
        let e = err(&(with_kni + "[[addresses]]\nport = \"p0.kni\"\naddress = \"198.18.0.1/24\"\n"));
        assert!(e.to_string().contains("is an exception path"), "{e}");
    }

    #[test]
    fn rss_key_and_reta_are_read_and_checked() {
        let c = Config::from_str(BASE, "t").expect("valid");
        assert_eq!(c.ports[0].rss, PortRss::default(), "Microsoft's key, a round-robin table");
        assert_eq!(c.ports[0].rss.table(3, 8), Some(vec![0, 1, 2, 0, 1, 2, 0, 1]));
        let key = "6d5a".repeat(20);
        let two = BASE
            .replace(
                "vdev = \"net_tap0\"",
                &format!("vdev = \"net_tap0\"\nqueues = 2\nrss_key = \"{key}\"\nreta = [1, 0]"),
            )
            .replace("rx = [\"p0:0\"]", "rx = [\"p0:0\", \"p0:1\"]");
        let c = Config::from_str(&two, "t").expect("valid");
        assert_eq!(c.ports[0].rss.key[..4], [0x6d, 0x5a, 0x6d, 0x5a]);
        assert_eq!(c.ports[0].rss.reta, Some(vec![1, 0]));
        assert_eq!(c.ports[0].rss.table(2, 4), Some(vec![1, 0, 1, 0]), "repeated to the driver's size");
        assert_eq!(c.ports[0].rss.table(2, 1), None, "bigger than the driver's");
        let e = err(&two.replace("reta = [1, 0]", "reta = [1, 2]"));
        assert!(e.to_string().contains("ports[0].reta[1]: expected a queue of the port, 0..=1, got 2"), "{e}");
        let e = err(&two.replace("reta = [1, 0]", "reta = [1, 0, 1]"));
        assert!(e.to_string().contains("ports[0].reta: expected a power of two from 1 to 512"), "{e}");
        let e = err(&two.replace(&key, "6d:5a"));
        assert!(e.to_string().contains("ports[0].rss_key: an RSS key is 40 bytes, not 2"), "{e}");
    }

    #[test]
    fn pci_is_normalised() {
        let c = Config::from_str(&BASE.replace(r#"vdev = "net_tap0""#, r#"pci = "3B:00.1""#), "t").expect("valid");
        assert_eq!(c.ports[0].device, Device::Pci("0000:3b:00.1".into()));
        assert_eq!(c.ports[0].device.dpdk_name(), "0000:3b:00.1");
    }

    #[test]
    fn vdev_kept_verbatim() {
        let v = "net_memif0,role=server,socket=/run/x.sock";
        let c = Config::from_str(&BASE.replace("net_tap0", v), "t").expect("valid");
        assert_eq!(c.ports[0].device, Device::Vdev(v.into()));
        assert_eq!(c.ports[0].device.dpdk_name(), "net_memif0");
    }

    #[test]
    fn unreadable_file() {
        let e = Config::from_file(Path::new("/nonexistent/dpvs.toml")).expect_err("no file");
        assert_eq!(e.line, 0);
        assert_eq!(e.key, "");
        assert!(e.to_string().starts_with("/nonexistent/dpvs.toml:0: cannot read"));
    }

    #[test]
    fn syntax_error_has_no_key() {
        let e = err("[instance\nname = 1\n");
        assert_eq!((e.line, e.key.as_str()), (1, ""));
    }

    #[test]
    fn unknown_key_lists_accepted_keys() {
        let e = err(&BASE.replace("name = \"t\"", "name = \"t\"\nnmae = 1"));
        assert_eq!((e.line, e.key.as_str()), (3, "instance.nmae"));
        assert!(e.message.contains("unknown key `nmae`"), "{e}");
        assert!(e.message.contains("`file_prefix`"), "{e}");
    }

    #[test]
    fn missing_key_points_at_table_header() {
        let e = err(&BASE.replace("id = 1\n", ""));
        assert_eq!((e.line, e.key.as_str()), (14, "groups[0].lcores[0].id"));
        let e = err(&BASE.replace("[instance]\nname = \"t\"\n", ""));
        assert_eq!((e.line, e.key.as_str()), (1, "instance"));
    }

    #[test]
    fn inline_and_dotted_forms_are_located() {
        let e = err(&BASE.replace("[instance]\nname = \"t\"", "instance = { name = \"T.1\" }"));
        assert_eq!((e.line, e.key.as_str()), (1, "instance.name"));
        let e = err(&BASE.replace(r#"rx = ["p0:0"]"#, "rx = [\n  \"p0:0\",\n  \"p0:0\",\n]"));
        assert_eq!((e.line, e.key.as_str()), (18, "groups[0].lcores[0].rx[1]"));
        assert!(e.message.contains("listed twice"), "{e}");
    }

    #[test]
    fn value_parsers_name_the_text() {
        let a = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
        assert_eq!(parse_ip_prefix("198.18.0.254/24"), Ok((a("198.18.0.254").into(), 24)));
        let like = "like \"198.18.0.254/24\" or \"2001:db8::1/64\"";
        let prefix_errors = [
            ("198.18.0.254", format!("expected an IP address with its prefix length, {like}, got \"198.18.0.254\"")),
            (
                "198.18.0.254/300",
                format!("expected an IP address with its prefix length, {like}, got \"198.18.0.254/300\""),
            ),
            ("198.18.0.254/33", "prefix length 33 is out of range: expected 0..=32".to_owned()),
        ];
        for (text, message) in prefix_errors {
            assert_eq!(parse_ip_prefix(text).unwrap_err().to_string(), message);
        }
        assert_eq!(Prefix::parse("198.18.9.7"), Ok(Prefix { addr: a("198.18.9.7").into(), len: 32 }));
        assert_eq!(Prefix::parse("198.18.9.0/24"), Ok(Prefix { addr: a("198.18.9.0").into(), len: 24 }));
        let v6 = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(Prefix::parse("2001:db8:9::/48"), Ok(Prefix { addr: v6("2001:db8:9::"), len: 48 }));
        assert_eq!(Prefix::parse("2001:db8::7"), Ok(Prefix { addr: v6("2001:db8::7"), len: 128 }));
        let net = Prefix::parse("2001:db8:9::/48").unwrap();
        assert!(net.contains(v6("2001:db8:9:1::5")) && !net.contains(v6("2001:db8:a::5")));
        assert!(!net.contains(a("32.1.13.184")), "an IPv4 address is in no IPv6 network");
        let network_errors = [
            ("198.18.9.1/24", "198.18.9.1/24 has host bits set: the network is 198.18.9.0/24"),
            (
                "198.18.9",
                "expected an IPv4 or IPv6 address or network like \"198.18.9.0/24\" or \"2001:db8:9::/48\", got \"198.18.9\"",
            ),
            ("198.18.9.0/40", "prefix length 40 is out of range: expected 0..=32"),
            ("2001:db8:9::1/48", "2001:db8:9::1/48 has host bits set: the network is 2001:db8:9::/48"),
            ("2001:db8::/129", "prefix length 129 is out of range: expected 0..=128 for an IPv6 address"),
        ];
        for (text, message) in network_errors {
            assert_eq!(Prefix::parse(text).unwrap_err().to_string(), message);
        }
        assert_eq!("disable".parse(), Ok(ProxyProtocol::Off));
        assert_eq!(
            "v3".parse::<ProxyProtocol>().unwrap_err().to_string(),
            "expected a PROXY protocol version \"v1\" or \"v2\", or \"off\", got \"v3\""
        );
    }

    #[test]
    fn too_many_lcores() {
        let mut text = String::from("[instance]\nname = \"t\"\n[forwarding]\nmode = \"l2-reflect\"\n");
        for p in 0..5 {
            text.push_str(&format!("[[ports]]\nname = \"p{p}\"\nvdev = \"net_tap{p}\"\nqueues = 16\n"));
        }
        text.push_str("[[groups]]\nname = \"g\"\n");
        for i in 0..65 {
            text.push_str(&format!("[[groups.lcores]]\nid = {}\nrx = [\"p{}:{}\"]\n", i + 1, i / 16, i % 16));
        }
        let e = err(&text);
        assert_eq!(e.key, "groups[0].lcores[64]");
        assert!(e.message.contains("at most 64"), "{e}");
        assert_eq!(e.line, 4 + 20 + 2 + 64 * 3 + 1);
    }

    #[test]
    fn too_many_rx_entries() {
        let rx: Vec<String> = (0..17).map(|q| format!("\"p0:{q}\"")).collect();
        let text = BASE.replace(r#"rx = ["p0:0"]"#, &format!("rx = [{}]", rx.join(", ")));
        let e = err(&text);
        // The entry count is checked before the entries themselves.
        assert_eq!(e.key, "groups[0].lcores[0].rx[16]");
        assert!(e.message.contains("at most 16"), "{e}");
    }
}
