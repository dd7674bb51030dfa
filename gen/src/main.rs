//! `dpvs-gen`: offers UDP at a fixed rate (or flat out) on one DPDK port and counts the UDP
//! that comes back on another (or the same), so that benchmarks and loss tests know exactly
//! what was sent and what arrived. A DPDK primary process of its own (its own file prefix),
//! usually with memif client ports towards a dpvs instance's memif servers.
//!
//! It sends `--count` packets (or until SIGINT/SIGTERM), `--rate` per second (0: as fast as
//! the port takes them), spreading them over `--flows` flows (source ports, then source
//! addresses: packet `k` is flow `k % flows`; IPv4, or IPv6 when `--src` and `--dst` are, with
//! a UDP checksum and IPv6's RSS input; the TCP modes are IPv4 only), then keeps receiving for `--drain-ms` and prints
//! one JSON line: `{"sent":N,"received":N,"other":N,"seconds":S,"rate":PPS,"latency_us":{...},
//! "lcores":N,"answers_off_queue":N,"answers_unsent":N,"stalls":N,"stalled_us":N,"per_lcore":[{"role":R,"flows":N,"sent":N,
//! "received":N},...],...}` (`other`: frames received that are not UDP, such as ARP, which are
//! not counted as received).
//! Each UDP packet carries its send time (TSC) in its first 8 payload bytes, so every packet
//! that comes back gives a latency sample (one-way through the balancer, both ports in this
//! process): `latency_us` has the samples' count, p50, p99, p99.9 and max in microseconds (an
//! HDR histogram to three significant digits up to a minute; `over_1min` counts the slower
//! ones, reported as a minute). Pacing is by TSC, per burst of 32; a
//! sender that falls behind (descheduled, or a full tx ring) catches up by sending back to
//! back, but by 32 bursts at most: one that fell further behind restarts its schedule from
//! then, so its rings never hold the backlog of a long pause (counted: `stalls`, and
//! `stalled_us`, the time dropped from the schedule, by which the offered rate was lower). An
//! lcore that also receives drains its rx queues before each burst it sends. Packets not taken
//! by a full tx ring are offered again, not dropped, so `sent` is what the port accepted.
//!
//! Queues and lcores: each port has `--queues` queue pairs (as many as the peer's memif). With
//! `--steer rss` (the default) a flow's packets go on the queue the balancer's emulated RSS
//! gives the flow's tuple (`--rss-key`, a round-robin redirection table of `--reta-size`
//! entries over the queues), as a NIC with RSS would deliver them; with `--steer modulo` flow
//! `f` goes on queue `f % queues` (a peer that does not apply RSS). Every queue is received.
//! `--lcores L` runs L forwarding lcores, lcore `i` on the i-th CPU of `--cpu` (wrapping
//! around); lcore `i` owns the queue pairs `q` with `q % L == i` on both ports, sends exactly
//! the flows on its queues and polls its queues. `--rate` and `--count` are totals: each lcore
//! sends the packets of the sequence above whose flow it owns, at a rate in proportion
//! (`steer::shares`). `seconds` runs until the last lcore stopped sending; `per_lcore` gives
//! each lcore's role, flows, sent and received.
//!
//! `--rx-lcores K` (default 0) separates receiving from sending, so that the sink never
//! limits a test: after a gap in the balancer (a worker handover) the burst that follows would
//! otherwise arrive while the same lcore is busy sending at its rate, and overflow its rx
//! rings. With K > 0 the `--lcores L` lcores (ids `0..L`, role `"send"`) only send, as above,
//! and K more (ids `L..L+K`, role `"receive"`) only receive and answer: receiving lcore `j`
//! polls the queues `q % K == j` of both ports and counts as above (`"both"`: K = 0, every
//! lcore sends and receives). `--queues` must then be at least K too (default: the larger of L
//! and K). Every lcore that receives keeps receiving until the last sender stopped, then for
//! `--drain-ms`. A tx queue has one owner (`roles`): a sending port's queue its sender, a
//! receiving port's queue (`--rx-vdev`) its receiver; answers a receiver makes for the
//! sending port go through the queue's hand-over ring to the sender owning it, which puts them
//! on the queue between its bursts (and keeps doing so until the receivers stop).
//! `answers_unsent` counts the answers lost inside the generator (a full tx queue or ring).
//!
//! With `--tcp close` it opens TCP connections instead, each packet a SYN of a new connection
//! (one per flow and round), and plays the real servers too: a SYN that arrives (on the receive
//! port) is answered with a SYN-ACK, a SYN-ACK that arrives (the balancer's translation of that
//! answer) counts as a connection established and is answered with a RST that closes it.
//! `received` then counts established connections, `responded` the SYN-ACKs it sent as the
//! real server. `--tcp hold` answers the SYN-ACK with the handshake's ACK instead, so that the
//! connection stays established in the balancer. `--tcp data` sends, on connections opened
//! before by `--tcp hold` (same flows), data segments of `--size` bytes that carry the send
//! time like the UDP packets; `received` counts those that reach the real server's side.
//! `--tcp request` plays a whole short connection: the handshake's ACK carries a request, the
//! real server answers with a response and its FIN, the client sends its FIN, the real server
//! the last ACK; `received` counts connections completed (that ACK back at the client),
//! `established` (every TCP mode) the SYN-ACKs that reached the client.
//!
//! An answer goes out of the port its cause came in on. Under `--steer rss` it goes on the
//! queue the RSS of its own tuple gives (as the balancer's NIC would deliver it); if another
//! lcore of the generator owns that queue, it goes instead on the queue its cause came in on,
//! and `answers_off_queue` counts it (0 when the balancer sends every packet out on the queue
//! of its tuple's RSS, as ownership by the receiving queue does; with `--rx-lcores`, answers
//! out of the sending port are handed to the queue's owner and never off queue). Under
//! `modulo` it goes on the queue its cause came in on.
//!
//! Exit codes: 0 after the report, 1 when set-up fails (EAL, ports, options), 2 for a command
//! line clap rejects.
#![forbid(unsafe_code)]

mod lcore;
mod packet;
mod report;
mod roles;
mod steer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use dpdk::{Eal, Mempool, Port, Ring};
use wire::EthernetAddress;

use crate::lcore::{Ctx, Lcore, Queues};
use crate::roles::Role;
use crate::steer::Steer;

/// A rate-controlled UDP and TCP generator and sink over DPDK ports.
#[derive(Debug, Parser)]
#[command(name = "dpvs-gen", version)]
struct Args {
    /// EAL file prefix (a process of its own).
    #[arg(long, default_value = "dpvs-gen")]
    file_prefix: String,
    /// CPUs to run on, comma-separated: lcore i runs on the i-th (the --lcores ones first,
    /// then the --rx-lcores ones), wrapping around when there are fewer CPUs than lcores.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    cpu: Vec<u32>,
    /// Forwarding lcores (EAL threads, each pinned to its CPU); lcore i owns the queue pairs q
    /// with q % lcores == i on both ports (with --rx-lcores, only sends on those of the sending
    /// port).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    lcores: u16,
    /// Lcores that only receive (and answer), besides the --lcores ones that then only send;
    /// receiving lcore j polls the queues q with q % rx-lcores == j on both ports (0: every
    /// lcore sends and receives).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=16))]
    rx_lcores: u16,
    /// The vdev to send on (a memif client towards the balancer's client-side port).
    #[arg(long)]
    tx_vdev: String,
    /// The vdev to receive on (default: the one it sends on).
    #[arg(long)]
    rx_vdev: Option<String>,
    /// Destination MAC (the balancer's port).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: EthernetAddress,
    /// Source address (of the first flow), IPv4 or IPv6 (UDP only).
    #[arg(long, default_value = "198.18.0.1")]
    src: IpAddr,
    /// Destination address and port (`[2001:db8::100]:53` for IPv6), of --src's family.
    #[arg(long, default_value = "198.18.0.100:53")]
    dst: std::net::SocketAddr,
    /// Distinct flows: source ports 1024.. (64512 per address), then the next source addresses.
    /// With several lcores, 4 bytes a flow say which lcore sends it.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Packets per second, all lcores together (0: as fast as the ports take them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Packets to send, all lcores together (0: until SIGINT or SIGTERM).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Frame size in bytes (Ethernet header included, 60..=1514).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(60..=1514))]
    size: u16,
    /// Queue pairs per port, at least --lcores and --rx-lcores (as many as the peer's: a memif
    /// pair must agree; default: the larger of the two); every queue is received.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=16))]
    queues: Option<u16>,
    /// The queue of a flow: the one the balancer's emulated RSS gives its tuple, or flow f on
    /// queue f % queues (a peer that does not apply RSS).
    #[arg(long, value_enum, default_value_t = SteerMode::Rss)]
    steer: SteerMode,
    /// The RSS key of the balancer's ports (--steer rss): 40 bytes in hexadecimal, with or
    /// without colons (default: Microsoft's key, 6d:5a:56:da:...).
    #[arg(long, value_parser = parse_rss_key)]
    rss_key: Option<[u8; rss::KEY_LEN]>,
    /// Entries of the balancer's emulated redirection table (--steer rss), a power of two,
    /// filled round robin with the queues.
    #[arg(long, default_value_t = rss::DEFAULT_RETA_SIZE)]
    reta_size: usize,
    /// TCP instead of UDP: open connections and close them (SYN, SYN-ACK from the real
    /// server's side, RST), open them and keep them (SYN, SYN-ACK, ACK), send data segments
    /// on connections kept open before, or play whole short connections (a request, a
    /// response, both FINs).
    #[arg(long, value_enum)]
    tcp: Option<TcpMode>,
    /// How long to keep receiving after the last packet was sent, ms.
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
}

/// What `--tcp` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TcpMode {
    /// SYNs of new connections, closed with a RST once established.
    Close,
    /// SYNs of new connections, established with an ACK and left open.
    Hold,
    /// Data segments on the connections `hold` opened.
    Data,
    /// New connections that carry a request and close: SYN, SYN-ACK, the ACK with the
    /// request, the response with the real server's FIN, the client's FIN, the last ACK.
    Request,
}

/// What `--steer` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SteerMode {
    /// Every packet on the queue the RSS of its tuple gives (as the balancer's emulated RSS).
    Rss,
    /// Flow f on queue f % queues; answers on the queue their cause came in on.
    Modulo,
}

/// `--dst-mac`, parsed as the configuration parses MAC addresses.
fn parse_mac(text: &str) -> Result<EthernetAddress, conf::ParseMacError> {
    conf::parse_mac(text).map(EthernetAddress)
}

/// `--rss-key`, read as `ethtool -x` prints a key.
fn parse_rss_key(text: &str) -> Result<[u8; rss::KEY_LEN], rss::KeyError> {
    rss::parse_key(text)
}

/// The lcores, queues and steering the options ask for.
#[derive(Debug)]
struct Layout {
    /// Forwarding (with receiving lcores: sending) lcores.
    lcores: u16,
    /// Receiving lcores (0: the forwarding lcores receive).
    rx_lcores: u16,
    /// Queue pairs per port.
    queues: u16,
    /// The CPU of each lcore, senders first.
    cpus: Vec<u32>,
    /// How queues are chosen.
    steer: Steer,
}

impl Layout {
    /// # Errors
    /// Fewer queues than lcores or receiving lcores, no CPU, a redirection table size that is
    /// not a power of two.
    fn new(args: &Args) -> Result<Layout, String> {
        let (lcores, rx_lcores) = (args.lcores, args.rx_lcores);
        let queues = args.queues.unwrap_or(lcores.max(rx_lcores));
        if queues < lcores {
            return Err(format!("--queues {queues} is fewer than --lcores {lcores}: every lcore owns a queue pair"));
        }
        if queues < rx_lcores {
            return Err(format!(
                "--queues {queues} is fewer than --rx-lcores {rx_lcores}: every receiving lcore polls a queue"
            ));
        }
        if args.cpu.is_empty() {
            return Err("--cpu names no CPU".into());
        }
        if args.src.is_ipv6() != args.dst.is_ipv6() {
            return Err(format!("--src {} and --dst {} are of two address families", args.src, args.dst));
        }
        if args.src.is_ipv6() {
            if args.tcp.is_some() {
                return Err("--tcp sends IPv4 only: give IPv4 --src and --dst".into());
            }
            if args.size < 70 {
                return Err(format!(
                    "--size {}: an IPv6 UDP frame with its send time takes at least 70 bytes",
                    args.size
                ));
            }
        }
        let cpus = (0..usize::from(lcores + rx_lcores)).map(|i| args.cpu[i % args.cpu.len()]).collect();
        let steer = match args.steer {
            SteerMode::Modulo => Steer::Modulo { queues },
            SteerMode::Rss => Steer::rss(args.rss_key.unwrap_or(rss::MS_KEY), args.reta_size, queues)
                .map_err(|e| format!("--reta-size: {e}"))?,
        };
        Ok(Layout { lcores, rx_lcores, queues, cpus, steer })
    }

    /// EAL's `--lcores` value: lcore i on its CPU (lcore 0, the main one, runs on the calling
    /// thread).
    fn eal_lcores(&self) -> String {
        self.cpus.iter().enumerate().map(|(i, c)| format!("{i}@{c}")).collect::<Vec<_>>().join(",")
    }

    /// The warning to print when lcores share CPUs.
    fn shared_cpus(&self) -> Option<String> {
        let mut distinct = self.cpus.clone();
        distinct.sort_unstable();
        distinct.dedup();
        (distinct.len() < self.cpus.len()).then(|| {
            format!(
                "dpvs-gen: warning: {} lcores on {} CPU(s) ({}): lcores that share a CPU take turns, so rates measure the scheduler",
                self.cpus.len(),
                distinct.len(),
                self.eal_lcores()
            )
        })
    }
}

/// Entries of each hand-over ring (it holds one fewer): 2 ms of answers at 500 000 a second on
/// one queue, should its sender's CPU be taken from it for that long; with 16 queues all full,
/// the rings would hold as many mbufs as the pool has.
const HANDOVER_RING: u32 = 1024;

fn start_port(vdev: &str, queues: u16, pool: &Mempool) -> Result<Port, String> {
    let name = vdev.split(',').next().unwrap_or(vdev);
    let port = Port::by_name(name).map_err(|e| format!("{name}: {e}"))?;
    port.configure(queues, queues).map_err(|e| format!("{name}: {e}"))?;
    for q in 0..queues {
        port.setup_rx_queue(q, 1024, pool).map_err(|e| format!("{name}: {e}"))?;
        port.setup_tx_queue(q, 1024).map_err(|e| format!("{name}: {e}"))?;
    }
    port.start().map_err(|e| format!("{name}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !port.link_up() {
        if Instant::now() > deadline {
            return Err(format!("{name}: link down after 10 s (is the peer there?)"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(port)
}

fn run(args: &Args) -> Result<serde_json::Value, String> {
    let layout = Layout::new(args)?;
    if let Some(warning) = layout.shared_cpus() {
        eprintln!("{warning}");
    }
    let (lcores, rx_lcores, queues) = (layout.lcores, layout.rx_lcores, layout.queues);
    // Which lcore sends which flow, before the EAL starts: a few million flows take a moment.
    // (`--flows 0` is one flow, as it always was.)
    let flows = args.flows.max(1);
    let own = steer::split(&layout.steer, (args.src, args.dst), flows, lcores);
    let shares = steer::shares(own, flows, args.count, args.rate);
    // The forwarding threads are EAL lcores, pinned by `--lcores=0@c0,1@c1,...` and started by
    // `Eal::run_on_lcores` (rte_eal_mp_remote_launch, the main lcore running lcore 0 itself):
    // an EAL lcore has its own lcore id, so each has its own mempool cache, where a thread
    // unknown to DPDK would take every mbuf from the shared ring (std threads would need
    // rte_thread_register, which dpdk-sys does not bind).
    let mut eal_args = vec![
        "dpvs-gen".to_owned(),
        format!("--file-prefix={}", args.file_prefix),
        format!("--lcores={}", layout.eal_lcores()),
        "--no-pci".into(),
        "--huge-dir=/dev/hugepages".into(),
        "--log-level=*:warning".into(),
        format!("--vdev={}", args.tx_vdev),
    ];
    if let Some(rx) = &args.rx_vdev {
        eal_args.push(format!("--vdev={rx}"));
    }
    // Confined to its own CPUs first: the EAL puts its control threads (IPC, interrupts) on
    // the CPUs the process may use that no lcore uses, which would otherwise be the
    // balancer's data CPUs.
    let mut set = nix::sched::CpuSet::new();
    for &c in &layout.cpus {
        set.set(c as usize).map_err(|e| format!("--cpu {c}: {e}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| format!("--cpu: {e}"))?;
    let eal = Eal::init(&eal_args).map_err(|e| format!("EAL: {e}"))?;
    // Lcore 0 runs on this thread: every lcore must find its share, or the others would wait
    // for it to finish sending.
    if dpdk::LcoreId::current() != dpdk::LcoreId(0) {
        return Err(format!("EAL made this thread lcore {}, not lcore 0", dpdk::LcoreId::current()));
    }
    let pool = Mempool::create_pktmbuf("gen_pool", 16_383, 256, 2176, -1).map_err(|e| format!("mempool: {e}"))?;
    let tx_port = start_port(&args.tx_vdev, queues, &pool)?;
    let rx_port = match &args.rx_vdev {
        Some(v) => Some(start_port(v, queues, &pool)?),
        None => None,
    };
    let src_mac = EthernetAddress(tx_port.mac_addr().map_err(|e| e.to_string())?.0);
    let ports: Vec<&Port> = std::iter::once(&tx_port).chain(rx_port.as_ref()).collect();
    // Receivers' answers out of the sending port go to the sender of their queue through the
    // queue's hand-over ring (TCP modes: UDP is never answered).
    let handover: Vec<Ring> = if rx_lcores > 0 && args.tcp.is_some() {
        (0..queues)
            .map(|q| Ring::create(&format!("gen_handover_{q}"), HANDOVER_RING, -1).map_err(|e| format!("ring: {e}")))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    // Lcore i's state in slot i, taken by the lcore whose id is i.
    let mut shares = shares.into_iter();
    let mut slots = Vec::new();
    for part in roles::assign(lcores, rx_lcores, queues, ports.len()) {
        let mut q = Queues {
            role: part.role,
            index: part.index,
            of: part.of,
            rx: Vec::new(),
            tx: Vec::new(),
            handover: Vec::new(),
            handed: Vec::new(),
        };
        for &(p, queue) in &part.rx {
            q.rx.push((p, queue, ports[p].rx_queue(queue).map_err(|e| e.to_string())?));
        }
        for (port, txs) in ports.iter().zip(&part.tx) {
            q.tx.push(
                txs.iter().map(|&queue| port.tx_queue(queue)).collect::<Result<_, _>>().map_err(|e| e.to_string())?,
            );
        }
        match part.role {
            // Beside its tx queues of the sending port.
            Role::Send if !handover.is_empty() => {
                q.handed = part.tx[0].iter().map(|&k| handover[usize::from(k)]).collect()
            }
            Role::Receive => q.handover.clone_from(&handover),
            Role::Send | Role::Both => {}
        }
        let share = if part.role == Role::Receive { None } else { shares.next() };
        slots.push(Mutex::new(Some(Lcore { share, queues: q })));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let sending = AtomicUsize::new(usize::from(lcores));
    let receiving = AtomicUsize::new(usize::from(if rx_lcores > 0 { rx_lcores } else { lcores }));
    let ctx = Ctx {
        args,
        steer: &layout.steer,
        pool: &pool,
        src_mac,
        stop: &stop,
        sending: &sending,
        receiving: &receiving,
        started: Instant::now(),
    };
    let ran = eal
        .run_on_lcores(|id| {
            let slot = slots.get(id.0 as usize)?;
            let lcore = slot.lock().unwrap_or_else(|e| e.into_inner()).take()?;
            Some(lcore.run(&ctx))
        })
        .map_err(|e| format!("launching the lcores: {e}"))?;
    let reports: Vec<_> = ran.into_iter().filter_map(|(_, r)| r).collect();
    for p in &ports {
        let _ = p.stop();
        let _ = p.close();
    }
    let all = usize::from(lcores + rx_lcores);
    if reports.len() != all {
        return Err(format!("{} of {all} lcores reported", reports.len()));
    }
    Ok(report::json(&reports))
}

fn main() {
    manpages::generate_if_asked(Args::command);
    let args = Args::parse();
    match run(&args) {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("dpvs-gen: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    const BASE: [&str; 5] = ["dpvs-gen", "--tx-vdev", "x", "--dst-mac", "02:00:00:00:00:10"];

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(BASE.iter().chain(extra)).unwrap()
    }

    /// Whether the command line with `extra` is refused.
    fn refused(extra: &[&str]) -> bool {
        Args::try_parse_from(BASE.iter().chain(extra)).is_err()
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    /// What the bench scripts and tests pass still means one lcore on CPU 0.
    #[test]
    fn the_default_is_one_lcore_on_cpu_0_with_as_many_queues() {
        let l = Layout::new(&args(&["--cpu", "0", "--queues", "3"])).unwrap();
        assert_eq!((l.lcores, l.queues, l.eal_lcores(), l.shared_cpus()), (1, 3, "0@0".into(), None));
        let l = Layout::new(&args(&[])).unwrap();
        assert_eq!((l.lcores, l.queues, l.eal_lcores()), (1, 1, "0@0".into()));
        assert!(matches!(l.steer, Steer::Rss { .. }));
    }

    #[test]
    fn lcores_take_the_cpus_in_turn_and_default_to_as_many_queues() {
        let l = Layout::new(&args(&["--lcores", "2", "--cpu", "0,1"])).unwrap();
        assert_eq!((l.queues, l.eal_lcores(), l.shared_cpus()), (2, "0@0,1@1".into(), None));
        let l = Layout::new(&args(&["--lcores", "3", "--cpu", "2,5", "--queues", "6", "--steer", "modulo"])).unwrap();
        assert_eq!((l.queues, l.eal_lcores()), (6, "0@2,1@5,2@2".into()));
        assert!(matches!(l.steer, Steer::Modulo { queues: 6 }));
        assert!(l.shared_cpus().unwrap().contains("3 lcores on 2 CPU(s)"));
        assert!(Layout::new(&args(&["--lcores", "4", "--queues", "2"])).is_err());
        assert!(Layout::new(&args(&["--reta-size", "100"])).is_err());
        assert!(refused(&["--lcores", "17"]));
    }

    /// Receiving lcores come after the sending ones, on the next CPUs of the list; the queues
    /// default to enough for both kinds and may not be fewer.
    #[test]
    fn receiving_lcores_follow_the_senders_on_the_cpu_list() {
        let l = Layout::new(&args(&["--cpu", "0,1", "--rx-lcores", "1"])).unwrap();
        assert_eq!(
            (l.lcores, l.rx_lcores, l.queues, l.eal_lcores(), l.shared_cpus()),
            (1, 1, 1, "0@0,1@1".into(), None)
        );
        let l = Layout::new(&args(&["--lcores", "2", "--rx-lcores", "3", "--cpu", "4,5"])).unwrap();
        assert_eq!((l.queues, l.eal_lcores()), (3, "0@4,1@5,2@4,3@5,4@4".into()));
        assert!(l.shared_cpus().unwrap().contains("5 lcores on 2 CPU(s)"));
        assert_eq!(Layout::new(&args(&["--lcores", "3", "--rx-lcores", "2"])).unwrap().queues, 3);
        assert_eq!(Layout::new(&args(&[])).unwrap().rx_lcores, 0);
        assert!(Layout::new(&args(&["--rx-lcores", "2", "--queues", "1"])).is_err());
        assert!(refused(&["--rx-lcores", "17"]));
    }

    #[test]
    fn ipv6_is_for_udp_with_both_addresses_ipv6() {
        let six = ["--src", "2001:db8:c::1", "--dst", "[2001:db8::100]:53"];
        assert!(Layout::new(&args(&[&six[..], &["--size", "84"]].concat())).is_ok());
        let err = |extra: &[&str]| Layout::new(&args(extra)).unwrap_err();
        assert!(err(&six).contains("--size 64"), "64 bytes are too few");
        assert!(err(&[&six[..], &["--size", "84", "--tcp", "close"]].concat()).contains("IPv4 only"));
        assert!(err(&["--src", "2001:db8:c::1", "--size", "84"]).contains("two address families"));
        assert!(err(&["--dst", "[2001:db8::100]:53", "--size", "84"]).contains("two address families"));
    }

    #[test]
    fn an_rss_key_reads_as_ethtool_prints_it() {
        let text = rss::key_text(&[0x11; rss::KEY_LEN]);
        assert_eq!(args(&["--rss-key", &text]).rss_key, Some([0x11; rss::KEY_LEN]));
        assert_eq!(args(&[]).rss_key, None);
        assert!(refused(&["--rss-key", "6d:5a"]));
    }
}
