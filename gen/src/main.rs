//! `dpvs-gen`: offers UDP at a fixed rate (or flat out) on one DPDK port and counts the UDP
//! that comes back on another (or the same), so that benchmarks and loss tests know exactly
//! what was sent and what arrived. A DPDK primary process of its own (its own file prefix),
//! usually with memif client ports towards a dpvs instance's memif servers.
//!
//! It sends `--count` packets (or until SIGINT/SIGTERM), `--rate` per second (0: as fast as
//! the port takes them), spreading them over `--flows` flows (source ports, then source
//! addresses), then keeps receiving for `--drain-ms` and prints one JSON line:
//! `{"sent":N,"received":N,"other":N,"seconds":S,"rate":PPS,"latency_us":{...}}` (`other`:
//! frames received that are not UDP, such as ARP, which are not counted as received). Each UDP
//! packet carries its send time (TSC) in its first 8 payload bytes, so every packet that comes
//! back gives a latency sample (one-way through the balancer, both ports in this process):
//! `latency_us` has the samples' count, p50, p99, p99.9 and max in microseconds (1 us
//! resolution up to 10 ms; slower ones count as 10 ms). Pacing is by TSC, per burst
//! of 32. Packets not taken by a full tx ring are offered again, not dropped, so `sent` is what
//! the port accepted.
//!
//! With `--queues N` flow `f` is sent on queue `f % N` (as a NIC's RSS keeps a flow on one
//! queue), and every queue is received.
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
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use dpdk::{Burst, Eal, Mbuf, Mempool, Port};
use wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr};

/// A rate-controlled UDP and TCP generator and sink over DPDK ports.
#[derive(Debug, Parser)]
#[command(name = "dpvs-gen", version)]
struct Args {
    /// EAL file prefix (a process of its own).
    #[arg(long, default_value = "dpvs-gen")]
    file_prefix: String,
    /// CPU to run on.
    #[arg(long, default_value_t = 0)]
    cpu: u32,
    /// The vdev to send on (a memif client towards the balancer's client-side port).
    #[arg(long)]
    tx_vdev: String,
    /// The vdev to receive on (default: the one it sends on).
    #[arg(long)]
    rx_vdev: Option<String>,
    /// Destination MAC (the balancer's port).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: EthernetAddress,
    /// Source address (of the first flow).
    #[arg(long, default_value = "198.18.0.1")]
    src: Ipv4Addr,
    /// Destination address and port.
    #[arg(long, default_value = "198.18.0.100:53")]
    dst: std::net::SocketAddrV4,
    /// Distinct flows: source ports 1024.. (64512 per address), then the next source addresses.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Packets per second (0: as fast as the port takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Packets to send (0: until SIGINT or SIGTERM).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Frame size in bytes (Ethernet header included, 60..=1514).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(60..=1514))]
    size: u16,
    /// Queue pairs per port (as many as the peer's: a memif pair must agree); flow f is sent
    /// on queue f % queues, every queue is received.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    queues: u16,
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

/// `--dst-mac`, parsed as the configuration parses MAC addresses.
fn parse_mac(text: &str) -> Result<EthernetAddress, conf::ParseMacError> {
    conf::parse_mac(text).map(EthernetAddress)
}

/// Ports per source address.
const PORTS_PER_ADDR: u32 = 64_512;

/// The flow of packet `i`.
fn flow_of(args: &Args, i: u64) -> u64 {
    i % u64::from(args.flows.max(1))
}

/// The source address and port of packet `i`'s flow.
fn flow_source(args: &Args, i: u64) -> (Ipv4Addr, u16) {
    let flow = flow_of(args, i) as u32;
    let src = Ipv4Addr::from(u32::from(args.src).wrapping_add(flow / PORTS_PER_ADDR));
    (src, 1024 + (flow % PORTS_PER_ADDR) as u16)
}

/// The UDP frame of packet `i`: its flow's source address and port, the rest fixed.
fn frame(args: &Args, src_mac: EthernetAddress, i: u64, out: &mut [u8]) {
    let (src, sport) = flow_source(args, i);
    let l4_len = out.len() - 14 - 20;
    EthernetRepr { src_addr: src_mac, dst_addr: args.dst_mac, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut *out));
    ipv4(&mut out[14..], (src, *args.dst.ip()), IpProtocol::Udp, l4_len);
    let udp = &mut out[34..];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&args.dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    // No UDP checksum (0): allowed over IPv4, and the same for every packet.
    udp[6..8].copy_from_slice(&[0, 0]);
    // The send time, for the latency of its return.
    if udp.len() >= 8 + 8 {
        udp[8..16].copy_from_slice(&dpdk::rdtsc().to_le_bytes());
    }
}

/// One-way latencies of the UDP packets that came back, in 1 us buckets (the last one: 10 ms
/// or more). Allocated once; recording is an increment.
struct Latency {
    buckets: Vec<u64>,
    /// TSC ticks per microsecond.
    per_us: u64,
}

impl Latency {
    const BUCKETS: usize = 10_001;

    fn new(tsc_hz: u64) -> Latency {
        Latency { buckets: vec![0; Latency::BUCKETS], per_us: (tsc_hz / 1_000_000).max(1) }
    }

    /// Records the packet in `f` received at TSC `now`, if it carries a send time of ours at
    /// offset `at`.
    fn record(&mut self, f: &[u8], at: usize, now: u64) {
        let Some(stamp) = f.get(at..at + 8) else { return };
        let sent = u64::from_le_bytes([stamp[0], stamp[1], stamp[2], stamp[3], stamp[4], stamp[5], stamp[6], stamp[7]]);
        if sent == 0 || sent > now {
            return;
        }
        let us = ((now - sent) / self.per_us) as usize;
        self.buckets[us.min(Latency::BUCKETS - 1)] += 1;
    }

    /// Count and percentiles, microseconds.
    fn report(&self) -> serde_json::Value {
        let n: u64 = self.buckets.iter().sum();
        let at = |q: f64| {
            let want = ((n as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            self.buckets.iter().position(|&c| {
                seen += c;
                seen >= want
            })
        };
        let max = self.buckets.iter().rposition(|&c| c > 0);
        serde_json::json!({
            "samples": n,
            "p50": at(0.5),
            "p99": at(0.99),
            "p999": at(0.999),
            "max": max,
        })
    }
}

/// Writes an IPv4 header (no options, DF, TTL 64, checksum filled) from `src` to `dst` at the
/// start of `out`, for `payload_len` bytes of `protocol`.
fn ipv4(out: &mut [u8], (src, dst): (Ipv4Addr, Ipv4Addr), protocol: IpProtocol, payload_len: usize) {
    let mut p = Ipv4Packet::new_unchecked(out);
    Ipv4Repr::plain(src, dst, protocol, payload_len).emit(&mut p);
    p.fill_checksum();
}

/// Whether a received frame is UDP over IPv4 (what is counted as received).
fn is_udp(f: &[u8]) -> bool {
    f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[23] == 17
}

/// What came back.
#[derive(Debug, Default)]
struct Counts {
    /// UDP frames; TCP connections established (`close`, `hold`), data segments at the real
    /// server (`data`), or connections completed (`request`: the last ACK back at the client).
    received: u64,
    /// TCP connections established (the SYN-ACK back at the client).
    established: u64,
    /// SYN-ACKs sent as the real server.
    responded: u64,
    /// Anything else (ARP, ...).
    other: u64,
}

/// What came in on a TCP connection, as the client or as the real server.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    /// A SYN at the real server: answered with a SYN-ACK.
    Syn,
    /// A SYN-ACK at the client: the connection is established; answered with a RST
    /// (`close`), an ACK (`hold`, `data`) or the ACK carrying the request (`request`).
    SynAck,
    /// A segment with data at the real server: with `request`, the request, answered with the
    /// response and a FIN; otherwise counted.
    Data,
    /// The response with the real server's FIN, at the client: answered with the client's FIN.
    Response,
    /// The client's FIN at the real server: answered with the last ACK.
    ClientFin,
    /// The last ACK at the client (`request`): the connection completed.
    LastAck,
    /// Anything else.
    Other,
}

/// What the client sends with the handshake's ACK, and what the real server answers, with
/// `--tcp request`.
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";

/// Longest answer: headers and the response.
const ANSWER_MAX: usize = 54 + RESPONSE.len();

/// Classifies the TCP segment in `f` and writes the answer it needs into `out` (addresses,
/// ports and MACs swapped): its length, if any.
fn answer_tcp(f: &[u8], mode: TcpMode, out: &mut [u8; ANSWER_MAX]) -> (Segment, Option<usize>) {
    use wire::TcpFlags as F;
    if f.len() < 54 || f[12..14] != [0x08, 0x00] || f[23] != 6 || f[14] != 0x45 {
        return (Segment::Other, None);
    }
    let Ok(ip) = Ipv4Packet::new_checked(&f[14..]) else { return (Segment::Other, None) };
    // The segment ends where the IPv4 packet does, before the frame's padding.
    let end = (14 + usize::from(ip.total_len())).min(f.len());
    let Ok(tcp) = wire::TcpPacket::new_checked(&f[34..end]) else { return (Segment::Other, None) };
    let flags = tcp.flags();
    let (syn, ack, fin) = (flags.contains(F::SYN), flags.contains(F::ACK), flags.contains(F::FIN));
    let data = tcp.payload().len() as u32;
    let (seq, next) = (tcp.seq_number(), tcp.ack_number());
    // The answer: flags, sequence and acknowledgement numbers, payload.
    let (what, reply, seq_ack, payload): (_, _, _, &[u8]) = match (syn, ack, fin, data > 0) {
        (true, false, ..) => (Segment::Syn, F::SYN | F::ACK, (SERVER_ISN, seq.wrapping_add(1)), &[]),
        (true, true, ..) => match mode {
            TcpMode::Close => (Segment::SynAck, F::RST, (next, 0), &[]),
            TcpMode::Request => (Segment::SynAck, F::ACK | F::PSH, (next, seq.wrapping_add(1)), REQUEST),
            TcpMode::Hold | TcpMode::Data => (Segment::SynAck, F::ACK, (next, seq.wrapping_add(1)), &[]),
        },
        (false, _, false, true) if mode == TcpMode::Request => {
            (Segment::Data, F::ACK | F::PSH | F::FIN, (next, seq.wrapping_add(data)), RESPONSE)
        }
        (false, _, false, true) => return (Segment::Data, None),
        (false, true, true, true) => (Segment::Response, F::ACK | F::FIN, (next, seq.wrapping_add(data + 1)), &[]),
        (false, true, true, false) => (Segment::ClientFin, F::ACK, (next, seq.wrapping_add(1)), &[]),
        (false, true, false, false) if mode == TcpMode::Request => return (Segment::LastAck, None),
        _ => return (Segment::Other, None),
    };
    let len = 54 + payload.len();
    out[..len].fill(0);
    out[..6].copy_from_slice(&f[6..12]);
    out[6..12].copy_from_slice(&f[..6]);
    out[12..14].copy_from_slice(&[0x08, 0x00]);
    tcp_segment(
        &mut out[14..len],
        (ip.dst_addr(), tcp.dst_port()),
        (ip.src_addr(), tcp.src_port()),
        seq_ack,
        reply,
        payload,
    );
    // Ethernet's minimum frame.
    (what, Some(len.max(60)))
}

/// The real server's initial sequence number.
const SERVER_ISN: u32 = 0x1000_0000;

/// Writes an IPv4 header and an option-less TCP segment (`flags`, sequence and
/// acknowledgement numbers `seq_ack`, `payload`) from `src` to `dst` into `out` (40 bytes and
/// the payload).
fn tcp_segment(
    out: &mut [u8],
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    (seq_number, ack_number): (u32, u32),
    flags: wire::TcpFlags,
    payload: &[u8],
) {
    ipv4(out, (src, dst), IpProtocol::Tcp, 20 + payload.len());
    let t = wire::TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq_number,
        ack_number,
        flags,
        window_len: 65535,
        urgent_at: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        payload,
    };
    t.emit(&mut wire::TcpPacket::new_unchecked(&mut out[20..40 + payload.len()]), src, dst);
}

/// Polls every rx queue once (`rxs`: port index, queue index, queue), counting; in TCP mode
/// answers what `answer_tcp` answers (as the client or as the real server) out of the port and
/// queue it came in on (`txs`, by port index then queue).
fn receive(
    rxs: &mut [(usize, usize, dpdk::RxQueue)],
    txs: &mut [Vec<dpdk::TxQueue>],
    pool: &Mempool,
    tcp: Option<TcpMode>,
    (inb, answers): (&mut Burst, &mut Burst),
    (c, latency): (&mut Counts, &mut Latency),
) {
    let mut buf = [0u8; ANSWER_MAX];
    for (port, queue, q) in rxs.iter_mut() {
        if q.rx(inb) == 0 {
            continue;
        }
        let now = dpdk::rdtsc();
        for i in 0..inb.len() {
            let f = inb.data(i);
            let Some(mode) = tcp else {
                if is_udp(f) {
                    c.received += 1;
                    latency.record(f, UDP_STAMP_AT, now);
                } else {
                    c.other += 1;
                }
                continue;
            };
            let (what, answer) = answer_tcp(f, mode, &mut buf);
            match what {
                Segment::Syn => c.responded += 1,
                Segment::SynAck => {
                    c.established += 1;
                    if mode != TcpMode::Request {
                        c.received += 1;
                    }
                }
                Segment::Data if mode == TcpMode::Data => {
                    c.received += 1;
                    latency.record(f, TCP_STAMP_AT, now);
                }
                Segment::LastAck => c.received += 1,
                Segment::Data | Segment::Response | Segment::ClientFin => {}
                Segment::Other => c.other += 1,
            }
            if let Some(n) = answer {
                if let Ok(m) = Mbuf::from_bytes(pool, &buf[..n]) {
                    let _ = answers.push(m);
                }
            }
        }
        inb.clear();
        if !answers.is_empty() {
            if let Some(tx) = txs.get_mut(*port).and_then(|t| t.get_mut(*queue)) {
                tx.tx(answers);
            }
            // What the ring did not take is lost, as on a wire.
            answers.clear();
        }
    }
}

/// Where the send time sits in a UDP frame and in a TCP data segment (after option-less
/// headers).
const UDP_STAMP_AT: usize = 42;
const TCP_STAMP_AT: usize = 54;

/// The TCP segment of packet `i` into `out` (at least `--size` bytes): the SYN of its flow's
/// connection, or with `--tcp data` a data segment on it (the send time, then zeros, up to
/// `--size`). Its length.
fn tcp_frame(args: &Args, mode: TcpMode, src_mac: EthernetAddress, i: u64, out: &mut [u8]) -> usize {
    let (src, sport) = flow_source(args, i);
    EthernetRepr { src_addr: src_mac, dst_addr: args.dst_mac, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut *out));
    // The client's initial sequence number, from its flow.
    let isn = (flow_of(args, i) as u32).wrapping_mul(2_654_435_761);
    let dst = (*args.dst.ip(), args.dst.port());
    if mode != TcpMode::Data {
        tcp_segment(&mut out[14..54], (src, sport), dst, (isn, 0), wire::TcpFlags::SYN, &[]);
        return 60;
    }
    let len = usize::from(args.size).max(TCP_STAMP_AT + 8);
    let mut payload = [0u8; 1514 - TCP_STAMP_AT];
    payload[..8].copy_from_slice(&dpdk::rdtsc().to_le_bytes());
    let flags = wire::TcpFlags::ACK | wire::TcpFlags::PSH;
    let (seq, ack) = (isn.wrapping_add(1), SERVER_ISN.wrapping_add(1));
    tcp_segment(&mut out[14..len], (src, sport), dst, (seq, ack), flags, &payload[..len - TCP_STAMP_AT]);
    len
}

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
    let mut eal_args = vec![
        "dpvs-gen".to_owned(),
        format!("--file-prefix={}", args.file_prefix),
        format!("--lcores=0@{}", args.cpu),
        "--no-pci".into(),
        "--huge-dir=/dev/hugepages".into(),
        "--log-level=*:warning".into(),
        format!("--vdev={}", args.tx_vdev),
    ];
    if let Some(rx) = &args.rx_vdev {
        eal_args.push(format!("--vdev={rx}"));
    }
    let _eal = Eal::init(&eal_args).map_err(|e| format!("EAL: {e}"))?;
    let pool = Mempool::create_pktmbuf("gen_pool", 16_383, 256, 2176, -1).map_err(|e| format!("mempool: {e}"))?;
    let tx_port = start_port(&args.tx_vdev, args.queues, &pool)?;
    let rx_port = match &args.rx_vdev {
        Some(v) => Some(start_port(v, args.queues, &pool)?),
        None => None,
    };
    let src_mac = EthernetAddress(tx_port.mac_addr().map_err(|e| e.to_string())?.0);
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for (i, p) in std::iter::once(&tx_port).chain(rx_port.as_ref()).enumerate() {
        let mut port_txs = Vec::new();
        for q in 0..args.queues {
            port_txs.push(p.tx_queue(q).map_err(|e| e.to_string())?);
            rxs.push((i, usize::from(q), p.rx_queue(q).map_err(|e| e.to_string())?));
        }
        txs.push(port_txs);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let mut sent = 0u64;
    let mut counts = Counts::default();
    let mut latency = Latency::new(dpdk::tsc_hz());
    // One burst a queue: flow f goes out on queue f % queues.
    let mut out: Vec<Burst> = (0..args.queues).map(|_| Burst::new()).collect();
    let mut inb = Burst::new();
    let mut answers = Burst::new();
    let mut template = vec![0u8; usize::from(args.size).max(TCP_STAMP_AT + 8)];
    let tsc_hz = dpdk::tsc_hz();
    let per_burst = if args.rate == 0 { 0 } else { tsc_hz.saturating_mul(32) / args.rate.max(1) };
    let mut next = dpdk::rdtsc();
    let started = Instant::now();
    let mut queued = 0u64;
    let queues = u64::from(args.queues);
    while !stop.load(Ordering::Relaxed) && (args.count == 0 || sent < args.count) {
        receive(&mut rxs, &mut txs[..], &pool, args.tcp, (&mut inb, &mut answers), (&mut counts, &mut latency));
        if out.iter().all(Burst::is_empty) && (per_burst == 0 || dpdk::rdtsc() >= next) {
            let want = if args.count == 0 { 32 } else { (args.count - queued).min(32) };
            for _ in 0..want {
                let size = match args.tcp {
                    Some(mode) => tcp_frame(args, mode, src_mac, queued, &mut template),
                    None => {
                        frame(args, src_mac, queued, &mut template[..usize::from(args.size)]);
                        usize::from(args.size)
                    }
                };
                let Ok(m) = Mbuf::from_bytes(&pool, &template[..size]) else { break };
                // At most 32 packets in all: every queue's burst has room.
                let _ = out[(flow_of(args, queued) % queues) as usize].push(m);
                queued += 1;
            }
            next = next.wrapping_add(per_burst);
        }
        for (q, burst) in out.iter_mut().enumerate() {
            if !burst.is_empty() {
                sent += txs[0][q].tx(burst) as u64;
            }
        }
    }
    // Whatever was not taken is not sent.
    out.iter_mut().for_each(Burst::clear);
    let sending = started.elapsed().as_secs_f64();
    let drain_until = Instant::now() + Duration::from_millis(args.drain_ms);
    while Instant::now() < drain_until {
        receive(&mut rxs, &mut txs[..], &pool, args.tcp, (&mut inb, &mut answers), (&mut counts, &mut latency));
    }
    drop(rxs);
    drop(txs);
    for p in std::iter::once(&tx_port).chain(rx_port.as_ref()) {
        let _ = p.stop();
        let _ = p.close();
    }
    let rate = if sending > 0.0 { (sent as f64 / sending).round() as u64 } else { 0 };
    Ok(serde_json::json!({
        "sent": sent,
        "received": counts.received,
        "responded": counts.responded,
        "established": counts.established,
        "other": counts.other,
        "seconds": sending,
        "rate": rate,
        "latency_us": latency.report(),
    }))
}

fn main() {
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
    use super::*;

    fn flags(f: &[u8]) -> wire::TcpFlags {
        wire::TcpPacket::new_checked(&f[34..]).unwrap().flags()
    }

    fn seq_ack(f: &[u8]) -> (u32, u32) {
        let t = wire::TcpPacket::new_checked(&f[34..]).unwrap();
        (t.seq_number(), t.ack_number())
    }

    /// The whole of a `request` connection, each answer fed back as the other side would get
    /// it (the balancer's translation changes addresses and ports, not these).
    #[test]
    fn a_request_connection_runs_from_syn_to_the_last_ack() {
        use wire::TcpFlags as F;
        let args =
            Args::parse_from(["dpvs-gen", "--tx-vdev", "x", "--dst-mac", "02:00:00:00:00:10", "--tcp", "request"]);
        let mut syn = [0u8; 64];
        let n = tcp_frame(&args, TcpMode::Request, EthernetAddress([2, 0, 0, 0, 0, 1]), 0, &mut syn);
        let isn = seq_ack(&syn[..n]).0;
        let mut out = [0u8; ANSWER_MAX];
        let mut step = |f: &[u8], want: Segment| {
            let (what, len) = answer_tcp(f, TcpMode::Request, &mut out);
            assert_eq!(what, want);
            len.map(|l| out[..l].to_vec())
        };
        let syn_ack = step(&syn[..n], Segment::Syn).unwrap();
        assert_eq!((flags(&syn_ack), seq_ack(&syn_ack)), (F::SYN | F::ACK, (SERVER_ISN, isn + 1)));
        let request = step(&syn_ack, Segment::SynAck).unwrap();
        assert_eq!((flags(&request), seq_ack(&request)), (F::ACK | F::PSH, (isn + 1, SERVER_ISN + 1)));
        assert_eq!(wire::TcpPacket::new_checked(&request[34..]).unwrap().payload(), REQUEST);
        let response = step(&request, Segment::Data).unwrap();
        let after_request = isn + 1 + REQUEST.len() as u32;
        assert_eq!((flags(&response), seq_ack(&response)), (F::ACK | F::PSH | F::FIN, (SERVER_ISN + 1, after_request)));
        let client_fin = step(&response, Segment::Response).unwrap();
        let after_response = SERVER_ISN + 1 + RESPONSE.len() as u32 + 1;
        assert_eq!((flags(&client_fin), seq_ack(&client_fin)), (F::ACK | F::FIN, (after_request, after_response)));
        let last_ack = step(&client_fin, Segment::ClientFin).unwrap();
        assert_eq!((flags(&last_ack), seq_ack(&last_ack)), (F::ACK, (after_response, after_request + 1)));
        assert_eq!(step(&last_ack, Segment::LastAck), None);
        // Every answer checks out as TCP over IPv4.
        for f in [&syn_ack, &request, &response, &client_fin, &last_ack] {
            let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum());
            let end = 14 + usize::from(ip.total_len());
            let t = wire::TcpPacket::new_checked(&f[34..end]).unwrap();
            assert!(t.verify_checksum(ip.src_addr(), ip.dst_addr()));
        }
    }
}
