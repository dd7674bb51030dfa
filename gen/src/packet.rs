//! The frames `dpvs-gen` sends: UDP packets and TCP SYNs or data segments of a flow, and the
//! answers to TCP segments it receives (as the client or as the real server). Every frame is
//! Ethernet, option-less IPv4 (UDP packets: or IPv6 without extension headers) and UDP or
//! option-less TCP; UDP packets and TCP data segments carry their send time (TSC) in their
//! first 8 payload bytes.

use std::net::{IpAddr, Ipv4Addr};

use wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr};

use crate::steer::flow_source;
use crate::{Args, TcpMode};

/// The UDP frame of flow `flow` into `out` (`--size` bytes): its source address and port, the
/// rest fixed.
pub fn frame(args: &Args, src_mac: EthernetAddress, flow: u32, out: &mut [u8]) {
    let (src, sport) = flow_source(args.src, flow);
    let (ethertype, l3_len) = match src {
        IpAddr::V4(_) => (EtherType::Ipv4, wire::ipv4::HEADER_LEN),
        IpAddr::V6(_) => (EtherType::Ipv6, wire::ipv6::HEADER_LEN),
    };
    let at = 14 + l3_len;
    let l4_len = out.len() - at;
    EthernetRepr { src_addr: src_mac, dst_addr: args.dst_mac, ethertype }
        .emit(&mut EthernetFrame::new_unchecked(&mut *out));
    let udp = &mut out[at..];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&args.dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    // The send time, for the latency of its return.
    if udp.len() >= 8 + 8 {
        udp[8..16].copy_from_slice(&dpdk::rdtsc().to_le_bytes());
    }
    match (src, args.dst.ip()) {
        // No UDP checksum (0): allowed over IPv4, and the same for every packet.
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(&mut out[14..], (s, d), IpProtocol::Udp, l4_len),
        // Required over IPv6.
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            wire::Ipv6Repr::plain(s, d, IpProtocol::Udp, l4_len)
                .emit(&mut wire::Ipv6Packet::new_unchecked(&mut out[14..]));
            wire::UdpPacket::new_unchecked(&mut out[at..]).fill_checksum(s, d);
        }
        // (The command line has one family.)
        _ => {}
    }
}

/// Writes an IPv4 header (no options, DF, TTL 64, checksum filled) from `src` to `dst` at the
/// start of `out`, for `payload_len` bytes of `protocol`.
pub fn ipv4(out: &mut [u8], (src, dst): (Ipv4Addr, Ipv4Addr), protocol: IpProtocol, payload_len: usize) {
    let mut p = Ipv4Packet::new_unchecked(out);
    Ipv4Repr::plain(src, dst, protocol, payload_len).emit(&mut p);
    p.fill_checksum();
}

/// Where a received UDP frame's payload starts, if it is UDP over IPv4 (option-less) or IPv6
/// (no extension header): what is counted as received.
pub fn udp_payload(f: &[u8]) -> Option<usize> {
    match f.get(12..14)? {
        [0x08, 0x00] if f.len() >= 42 && f[23] == 17 => Some(UDP_STAMP_AT),
        [0x86, 0xdd] if f.len() >= 62 && f[20] == 17 => Some(UDP6_STAMP_AT),
        _ => None,
    }
}

/// What came in on a TCP connection, as the client or as the real server.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
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
pub const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
pub const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";

/// Longest answer: headers and the response.
pub const ANSWER_MAX: usize = 54 + RESPONSE.len();

/// Classifies the TCP segment in `f` and writes the answer it needs into `out` (addresses,
/// ports and MACs swapped): its length, if any.
pub fn answer_tcp(f: &[u8], mode: TcpMode, out: &mut [u8; ANSWER_MAX]) -> (Segment, Option<usize>) {
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
pub const SERVER_ISN: u32 = 0x1000_0000;

/// Writes an IPv4 header and an option-less TCP segment (`flags`, sequence and
/// acknowledgement numbers `seq_ack`, `payload`) from `src` to `dst` into `out` (40 bytes and
/// the payload).
pub fn tcp_segment(
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

/// Where the send time sits in a UDP frame (IPv4, IPv6) and in a TCP data segment (after
/// option-less headers).
pub const UDP_STAMP_AT: usize = 42;
pub const UDP6_STAMP_AT: usize = 62;
pub const TCP_STAMP_AT: usize = 54;

/// The TCP segment of flow `flow` into `out` (at least `--size` bytes): the SYN of the flow's
/// connection, or with `--tcp data` a data segment on it (the send time, then zeros, up to
/// `--size`). Its length.
pub fn tcp_frame(args: &Args, mode: TcpMode, src_mac: EthernetAddress, flow: u32, out: &mut [u8]) -> usize {
    // TCP is IPv4 only (the command line refuses IPv6 with --tcp).
    let (IpAddr::V4(src), sport) = flow_source(args.src, flow) else { return 0 };
    let IpAddr::V4(dst) = args.dst.ip() else { return 0 };
    EthernetRepr { src_addr: src_mac, dst_addr: args.dst_mac, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut *out));
    // The client's initial sequence number, from its flow.
    let isn = flow.wrapping_mul(2_654_435_761);
    let dst = (dst, args.dst.port());
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::steer::Tuple;

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
        // An answer's tuple is its cause's, turned around (what RSS steers it by).
        let (t, a) = (Tuple::of_frame(&syn).unwrap(), Tuple::of_frame(&syn_ack).unwrap());
        let (cli, vip) = (IpAddr::from([198, 18, 0, 1]), IpAddr::from([198, 18, 0, 100]));
        assert_eq!((t.src, t.dst, t.sport, t.dport), (cli, vip, 1024, 53));
        assert_eq!(a, Tuple { src: t.dst, dst: t.src, sport: t.dport, dport: t.sport });
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

    /// An IPv6 flow's UDP frame: its address from the flow, a valid checksum, the send time
    /// where the receiver reads it.
    #[test]
    fn an_ipv6_udp_frame_is_whole_and_checksummed() {
        let args = Args::parse_from([
            "dpvs-gen",
            "--tx-vdev",
            "x",
            "--dst-mac",
            "02:00:00:00:00:10",
            "--src",
            "2001:db8:c::1",
            "--dst",
            "[2001:db8::100]:53",
            "--size",
            "84",
        ]);
        let mut f = [0u8; 84];
        frame(&args, EthernetAddress([2, 0, 0, 0, 0, 1]), 64_512 + 7, &mut f);
        let p = wire::classify_with(&f, wire::Checks::ALL).expect("valid, checksum included");
        let t = Tuple::of_frame(&f).unwrap();
        assert_eq!((t.src, t.dst, t.sport, t.dport), ("2001:db8:c::2".parse().unwrap(), args.dst.ip(), 1031, 53));
        assert!(matches!(p.net, wire::Network::V6(_)));
        assert_eq!(udp_payload(&f), Some(UDP6_STAMP_AT));
        assert_ne!(f[UDP6_STAMP_AT..UDP6_STAMP_AT + 8], [0; 8], "the send time");
        let mut v4 = [0u8; 64];
        frame(
            &Args::parse_from(["dpvs-gen", "--tx-vdev", "x", "--dst-mac", "02:00:00:00:00:10"]),
            args.dst_mac,
            0,
            &mut v4,
        );
        assert_eq!(udp_payload(&v4), Some(UDP_STAMP_AT));
        assert_eq!(udp_payload(&v4[..40]), None);
    }
}
