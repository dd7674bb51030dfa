//! Command line (clap derive; doc comments are the help text).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Inspect and configure a running dpvs instance through its shared memory.
///
/// Read commands map the shared memory; changes go to the primary through the control
/// mailbox, are validated, published as the next configuration generation and answered once
/// every worker forwards with it.
///
/// Exit codes: 0 success, 1 no such instance running, 2 usage error, 3 layout version
/// mismatch between this dpvsctl and the instance, 4 other failure, 5 the primary refused
/// or failed the command (nothing was changed).
#[derive(Debug, Parser)]
#[command(name = "dpvsctl", version)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for the primary's answer to a change or a worker restart, seconds
    /// (per worker).
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

/// Which instance to talk to.
#[derive(Debug, Args)]
pub struct Target {
    /// Instance name (its shared memory is `<shm-dir>/<name>.shm`).
    #[arg(short, long, global = true, default_value = "dpvs")]
    pub instance: String,
    /// Directory of the instance's shared memory.
    #[arg(long, global = true, default_value = "/dev/shm")]
    pub shm_dir: PathBuf,
    /// Take instance name and shm directory from this configuration file.
    #[arg(short, long, global = true, conflicts_with_all = ["instance", "shm_dir"])]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Instance, primary pid, uptime, layout version.
    Status,
    /// Worker processes.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Per-lcore forwarding counters and their totals, and the connection tables.
    Stats {
        /// Per second over an interval instead of since start (busy cycles per packet then
        /// over the interval).
        #[arg(long)]
        rate: bool,
        /// The interval of --rate, seconds.
        #[arg(long, default_value_t = 1.0, requires = "rate", value_parser = interval)]
        interval: f64,
    },
    /// A live view, refreshed every interval: each lcore's and the busiest services' packets,
    /// bits, new connections and drops per second (like top; Ctrl-C stops).
    Top {
        /// Seconds between refreshes.
        #[arg(long, short = 'd', default_value_t = 1.0, value_parser = interval)]
        interval: f64,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, short = 'n')]
        count: Option<u64>,
        /// Print each refresh after the last instead of redrawing the screen (like top -b).
        #[arg(long, short = 'b')]
        batch: bool,
        /// How many services to show, busiest first.
        #[arg(long, default_value_t = 10)]
        services: usize,
    },
    /// Virtual services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Real servers of a service.
    #[command(subcommand)]
    Real(RealCommand),
    /// Local addresses of a service (the Full-NAT sources towards its real servers).
    #[command(subcommand)]
    Laddr(LaddrCommand),
    /// Access lists of a service: clients denied, or the only ones allowed, new connections.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Health checks of a service's real servers (run by dpvs-health), and what they found.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Addresses the ports own (they answer ARP and ICMP echo for them).
    #[command(subcommand)]
    Addr(AddrCommand),
    /// Static neighbours (IPv4 address to MAC on a port).
    #[command(subcommand)]
    Neigh(NeighCommand),
    /// Static routes (networks reached through a gateway on a port's network).
    #[command(subcommand)]
    Route(RouteCommand),
    /// Connections in the workers' tables.
    #[command(subcommand)]
    Conn(ConnCommand),
    /// Ports, with the packets the workers received on each rx queue and sent on each port.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Replace addresses, neighbours and services with a configuration file's, as one change.
    /// The file's other sections must equal the running ones.
    Reload {
        /// The file (default: the one the instance started from).
        file: Option<PathBuf>,
    },
    /// The running configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run dpvsctl commands from a file (or standard input), one per line, each applied on
    /// its own; `#` starts a comment. Stops at the first failure unless `--force`.
    Batch {
        /// The file; `-` or nothing: standard input.
        file: Option<PathBuf>,
        /// Go on after a failed line (the exit code still reports it).
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
}

impl From<Proto> for conf::Protocol {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Tcp => conf::Protocol::Tcp,
            Proto::Udp => conf::Protocol::Udp,
        }
    }
}

/// A --rate interval: 0.1 to 60 seconds.
fn interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.1..=60.0).contains(&s) => Ok(s),
        _ => Err(format!("expected seconds from 0.1 to 60, got {text:?}")),
    }
}

/// A real server's forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardArg {
    /// Full-NAT.
    Fnat,
    /// Direct routing.
    Dr,
    /// NAT.
    Nat,
    /// IP-in-IP tunnel.
    Tunnel,
}

impl From<ForwardArg> for conf::Forward {
    fn from(f: ForwardArg) -> Self {
        match f {
            ForwardArg::Fnat => conf::Forward::Fnat,
            ForwardArg::Dr => conf::Forward::Dr,
            ForwardArg::Nat => conf::Forward::Nat,
            ForwardArg::Tunnel => conf::Forward::Tunnel,
        }
    }
}

/// A virtual service: protocol, then address:port.
#[derive(Debug, Clone, Copy, Args)]
pub struct ServiceArg {
    /// tcp or udp.
    #[arg(value_enum)]
    pub protocol: Proto,
    /// Virtual address and port, like 198.18.0.100:80 or [2001:db8::100]:80.
    pub vip: SocketAddr,
}

impl ServiceArg {
    /// The mailbox's service key.
    pub fn key(&self) -> mailbox::proto::ServiceKey {
        mailbox::proto::ServiceKey { protocol: self.protocol.into(), vip: self.vip.ip(), port: self.vip.port() }
    }
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Services with their scheduler, real servers and local addresses, as `ipvsadm -ln` shows
    /// them.
    List {
        /// Each service's counters since it was added: connections, packets and bytes in each
        /// direction (summed over the workers).
        #[arg(long, conflicts_with = "rate")]
        stats: bool,
        /// Each service's rates over one second: connections, packets and bytes per second.
        #[arg(long)]
        rate: bool,
    },
    /// Add a service (then give it real servers and local addresses).
    Add {
        #[command(flatten)]
        service: ServiceArg,
        /// rr, wrr, wlc, lc, fo, conhash or mh.
        #[arg(short, long, default_value = "rr")]
        scheduler: String,
        /// Persistence timeout, seconds: a client's new connections go to the real server of
        /// its previous one for this long after it (0: none).
        #[arg(short, long, default_value_t = 0)]
        persistent: u32,
        /// Persistence granularity: clients in one network of this prefix length share their
        /// real server (default: each address alone).
        #[arg(long)]
        persistence_prefix: Option<u8>,
        /// PROXY protocol header for the Full-NAT real servers at the start of each TCP
        /// stream (v1, v2) or in front of each UDP datagram (v2), or off (TCP: TOA instead).
        #[arg(long, default_value = "off")]
        proxy_protocol: conf::ProxyProtocol,
        /// The worker group that serves it (default: the group polling its VIP's port).
        #[arg(short, long)]
        group: Option<String>,
    },
    /// Change a service's scheduler, persistence timeout or granularity and/or PROXY protocol
    /// version (new connections get the new one).
    Edit {
        #[command(flatten)]
        service: ServiceArg,
        /// rr, wrr, wlc, lc, fo, conhash or mh.
        #[arg(short, long)]
        scheduler: Option<String>,
        /// Persistence timeout, seconds (0: none).
        #[arg(short, long)]
        persistent: Option<u32>,
        /// Persistence granularity, a prefix length (32 or 128: each address alone).
        #[arg(long)]
        persistence_prefix: Option<u8>,
        /// v1, v2 or off.
        #[arg(long)]
        proxy_protocol: Option<conf::ProxyProtocol>,
    },
    /// Remove a service; its connections expire on their next packet.
    Del {
        #[command(flatten)]
        service: ServiceArg,
    },
    /// Remove every service.
    Clear,
    /// Zero the counters of one service and its real servers, or of all (`ipvsadm -Z`).
    Zero {
        /// tcp or udp (with VIP:PORT; neither: every service).
        #[arg(value_enum, requires = "vip")]
        protocol: Option<Proto>,
        /// Virtual address and port.
        vip: Option<SocketAddr>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RealCommand {
    /// Add a real server.
    Add {
        #[command(flatten)]
        service: ServiceArg,
        /// Real server address and port, like 198.18.1.2:8080 (on a port's network, with a
        /// neighbour entry).
        real: SocketAddr,
        /// Weight, 0..=65535 (0: quiescent, no new connections).
        #[arg(short, long, default_value_t = 1)]
        weight: u32,
        /// How packets reach it: fnat (Full-NAT); dr (direct routing: the real server has the
        /// VIP on a loopback and answers clients directly; it must listen on the virtual
        /// port); nat (the real server routes its replies through the balancer); tunnel
        /// (IP-in-IP: the real server, anywhere routed, decapsulates, has the VIP and answers
        /// clients directly; it must listen on the virtual port).
        #[arg(short, long, value_enum, default_value_t = ForwardArg::Fnat)]
        forward: ForwardArg,
        /// Upper connection threshold (0: none): at this many connections it gets no new ones
        /// (each of N forwarding lcores enforces upper / N, rounded up).
        #[arg(short = 'x', long, default_value_t = 0)]
        upper: u32,
        /// Lower connection threshold: an overloaded real server gets new connections again
        /// below it (0: three quarters of the upper one).
        #[arg(short = 'y', long, default_value_t = 0)]
        lower: u32,
    },
    /// Change a real server's weight (existing connections go on).
    Edit {
        #[command(flatten)]
        service: ServiceArg,
        /// Real server address and port.
        real: SocketAddr,
        /// Weight, 0..=65535.
        #[arg(short, long)]
        weight: u32,
        /// A new forwarding method, for new connections (default: unchanged).
        #[arg(short, long, value_enum)]
        forward: Option<ForwardArg>,
        /// A new upper connection threshold (0: none; default: unchanged).
        #[arg(short = 'x', long)]
        upper: Option<u32>,
        /// A new lower connection threshold (default: unchanged).
        #[arg(short = 'y', long)]
        lower: Option<u32>,
    },
    /// Remove a real server; its connections are expired.
    Del {
        #[command(flatten)]
        service: ServiceArg,
        /// Real server address and port.
        real: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Every checked real server: its health, since when, its last error.
    List,
    /// Give a service a health check, or replace its check (the real servers keep their
    /// health). Defaults and rules as `[services.check]` in the file.
    Set(Box<CheckArgs>),
    /// Take a service's health check away: its real servers are all scheduled again.
    Del {
        #[command(flatten)]
        service: ServiceArg,
    },
}

/// `dpvsctl check set`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    /// tcp (a connection is accepted), http (a GET answers with --status, and --body in
    /// it), udp (--send is answered, with --expect in it), icmp (echo), command (exits 0).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: String,
    /// Port probed (default: each real server's).
    #[arg(long)]
    pub port: Option<i64>,
    /// From the start of one check of a real server to the next, ms (default 2000).
    #[arg(long)]
    pub interval_ms: Option<i64>,
    /// How long a check may take, ms (default: 1000, or the interval if shorter).
    #[arg(long)]
    pub timeout_ms: Option<i64>,
    /// Successes in a row that bring a failed real server back (default 2).
    #[arg(long)]
    pub rise: Option<i64>,
    /// Failures in a row that take a real server out (default 3).
    #[arg(long)]
    pub fall: Option<i64>,
    /// inhibit (weight 0, still listed; the default) or remove (not listed by ipvsadm).
    #[arg(long)]
    pub on_failure: Option<String>,
    /// HTTP: the path asked for (default /).
    #[arg(long)]
    pub path: Option<String>,
    /// HTTP: the status that counts as alive (default 200).
    #[arg(long)]
    pub status: Option<i64>,
    /// HTTP: text the answer's body must hold.
    #[arg(long)]
    pub body: Option<String>,
    /// UDP: the datagram sent.
    #[arg(long)]
    pub send: Option<String>,
    /// UDP: text the answer must hold (default: any answer).
    #[arg(long)]
    pub expect: Option<String>,
    /// command: the program's absolute path and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Every service's deny and allow lists.
    List,
    /// Add a network (or one address) to a service's deny or allow list. Connections open
    /// already go on; new ones are checked.
    Add(AclEntry),
    /// Remove a network from a service's deny or allow list.
    Del(AclEntry),
}

/// One network of a service's access list.
#[derive(Debug, clap::Args)]
pub struct AclEntry {
    #[command(flatten)]
    pub service: ServiceArg,
    /// deny (DPVS's blacklist) or allow (DPVS's whitelist: when not empty, only its clients
    /// may connect; deny is checked first).
    #[arg(value_enum)]
    pub list: AclArg,
    /// A client address or network, like 198.18.9.7 or 198.18.9.0/24.
    #[arg(value_parser = conf::Prefix::parse)]
    pub network: conf::Prefix,
}

/// A service's access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AclArg {
    Deny,
    Allow,
}

impl From<AclArg> for mailbox::proto::AclList {
    fn from(a: AclArg) -> Self {
        match a {
            AclArg::Deny => mailbox::proto::AclList::Deny,
            AclArg::Allow => mailbox::proto::AclList::Allow,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum LaddrCommand {
    /// Local addresses of every service.
    List,
    /// Add a local address (an address a port owns, not a VIP).
    Add {
        #[command(flatten)]
        service: ServiceArg,
        /// The address.
        address: IpAddr,
        /// Install the address on this port first if no port has it (as a /32, removed again
        /// with the last local address or service that uses it; ipvsadm's `-F`).
        #[arg(long)]
        port: Option<String>,
    },
    /// Remove a local address.
    Del {
        #[command(flatten)]
        service: ServiceArg,
        /// The address.
        address: IpAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddrCommand {
    /// Addresses of every port.
    Show,
    /// Give a port an address.
    Add {
        /// Address and prefix length, like 198.18.0.100/24 or 2001:db8::100/64.
        #[arg(value_parser = conf::parse_ip_prefix)]
        address: (std::net::IpAddr, u8),
        /// The port (its name in the configuration, like dpdk0).
        #[arg(long)]
        dev: String,
    },
    /// Take an address away (refused while a service uses it as a local address, or as its
    /// VIP unless another interface address covers the VIP's network).
    Del {
        /// The address (a prefix length is accepted and ignored).
        #[arg(value_parser = parse_cidr_or_addr)]
        address: std::net::IpAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum NeighCommand {
    /// Static neighbours.
    Show,
    /// Add a neighbour, or replace the entry of that address.
    Add {
        /// IPv4 or IPv6 address.
        address: IpAddr,
        /// MAC address, like 02:00:00:00:01:02.
        #[arg(long, value_parser = conf::parse_mac)]
        mac: [u8; 6],
        /// The port it is reached through.
        #[arg(long)]
        dev: String,
    },
    /// Remove a neighbour (refused while a real server needs it).
    Del {
        /// IPv4 or IPv6 address.
        address: IpAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Every port and its rx queues.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum ConnCommand {
    /// Connections, with their state, time to expiry and packet counts (a snapshot: the
    /// workers change them meanwhile).
    List {
        /// Only those of the service at this virtual address:port.
        #[arg(long)]
        vip: Option<SocketAddr>,
        /// Only tcp or udp.
        #[arg(long, value_enum)]
        protocol: Option<Proto>,
        /// Only those of this client address.
        #[arg(long)]
        client: Option<IpAddr>,
        /// Only those in this worker slot's table.
        #[arg(long)]
        worker: Option<usize>,
        /// Skip this many matching connections.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Connected networks (from the addresses) and static routes.
    Show,
    /// Route a network through a gateway (on a port's network, with a neighbour entry).
    Add {
        /// The network, like 198.18.2.0/24, 0.0.0.0/0 or 2001:db8:2::/48.
        #[arg(value_parser = conf::parse_ip_prefix)]
        prefix: (IpAddr, u8),
        /// The gateway (of the network's family).
        #[arg(long)]
        via: IpAddr,
    },
    /// Remove a static route (refused while a real server needs it).
    Del {
        /// The network.
        #[arg(value_parser = conf::parse_ip_prefix)]
        prefix: (IpAddr, u8),
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the running configuration as a file `reload` accepts.
    Dump,
}

/// Why an argument is neither an IPv4 address nor one with a prefix length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressArgError {
    /// With a slash, not `address/length`.
    #[error(transparent)]
    Prefix(#[from] conf::ParsePrefixError),
    /// Without one, not an address.
    #[error("expected an IPv4 or IPv6 address, got \"{0}\"")]
    Address(String),
}

fn parse_cidr_or_addr(s: &str) -> Result<std::net::IpAddr, AddressArgError> {
    match s.split_once('/') {
        Some(_) => Ok(conf::parse_ip_prefix(s)?.0),
        None => s.parse().map_err(|_| AddressArgError::Address(s.to_owned())),
    }
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Pid, lcore, queues, state, heartbeat age and restarts of every worker.
    List,
    /// Replace a worker with a new process without losing a packet: the successor attaches on
    /// a spare lcore id, the worker finishes its burst and hands its queues over, the
    /// successor polls on. Returns once it polls. Connection state and counters stay in
    /// shared memory.
    Restart {
        /// Worker slot (see `worker list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        slot: Option<u32>,
        /// Every worker, all at once (each still hands over without loss).
        #[arg(long)]
        all: bool,
        /// With `--all`: one worker after the other, stopping at the first failure.
        #[arg(long, conflicts_with = "slot")]
        rolling: bool,
        /// Start the new workers from this binary (an upgrade). It must speak the instance's
        /// shared-memory layout version, or it refuses to attach and the old worker keeps
        /// running.
        #[arg(long)]
        binary: Option<std::path::PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_cover_the_subcommands() {
        let mut out = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut Cli::command(), "dpvsctl", &mut out);
        let text = String::from_utf8(out).unwrap();
        for word in ["service", "real", "laddr", "addr", "neigh", "conn", "link", "reload", "batch", "--json"] {
            assert!(text.contains(word), "bash completion lacks {word}");
        }
    }

    #[test]
    fn changes_parse_with_their_flags() {
        let c = Cli::try_parse_from([
            "dpvsctl",
            "real",
            "add",
            "udp",
            "198.18.0.100:53",
            "198.18.1.2:5353",
            "-w",
            "3",
            "-f",
            "nat",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Real(RealCommand::Add { weight: 3, forward: ForwardArg::Nat, .. })));
        assert!(Cli::try_parse_from([
            "dpvsctl",
            "real",
            "add",
            "udp",
            "198.18.0.100:53",
            "198.18.1.2:5353",
            "-f",
            "tun"
        ])
        .is_err());
        let c = Cli::try_parse_from(["dpvsctl", "addr", "add", "198.18.0.100/24", "--dev", "dpdk0"]).unwrap();
        assert!(matches!(c.command, Command::Addr(AddrCommand::Add { address: (_, 24), .. })));
        assert!(Cli::try_parse_from(["dpvsctl", "addr", "add", "198.18.0.100/40", "--dev", "dpdk0"]).is_err());
        assert!(Cli::try_parse_from(["dpvsctl", "service", "list", "--stats", "--rate"]).is_err(), "one or the other");
    }

    #[test]
    fn top_takes_an_interval_a_count_and_batch_mode() {
        let c = Cli::try_parse_from(["dpvsctl", "top", "-d", "0.5", "-n", "3", "-b"]).unwrap();
        assert!(matches!(c.command, Command::Top { count: Some(3), batch: true, services: 10, .. }));
        let c = Cli::try_parse_from(["dpvsctl", "top"]).unwrap();
        assert!(matches!(c.command, Command::Top { count: None, batch: false, .. }));
        assert!(Cli::try_parse_from(["dpvsctl", "top", "-d", "0"]).is_err(), "0.1 s at least");
        assert!(Cli::try_parse_from(["dpvsctl", "top", "-n", "-1"]).is_err());
    }

    #[test]
    fn parses_global_flags_after_subcommands() {
        let c = Cli::try_parse_from(["dpvsctl", "worker", "list", "--json", "-i", "lb1"]).unwrap();
        assert!(c.json);
        assert_eq!(c.target.instance, "lb1");
        assert!(matches!(c.command, Command::Worker(WorkerCommand::List)));
    }

    #[test]
    fn restart_takes_a_slot() {
        let c = Cli::try_parse_from(["dpvsctl", "worker", "restart", "2"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Worker(WorkerCommand::Restart { slot: Some(2), all: false, rolling: false, binary: None })
        ));
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart", "two"]).is_err());
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart"]).is_err(), "a slot or --all");
        assert!(Cli::try_parse_from(["dpvsctl", "worker", "restart", "1", "--all"]).is_err(), "not both");
        assert!(
            Cli::try_parse_from(["dpvsctl", "worker", "restart", "1", "--rolling"]).is_err(),
            "--rolling needs --all"
        );
        let c =
            Cli::try_parse_from(["dpvsctl", "worker", "restart", "--all", "--rolling", "--binary", "/x/w"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Worker(WorkerCommand::Restart { slot: None, all: true, binary: Some(_), .. })
        ));
    }
}
