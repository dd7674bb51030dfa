//! The PROXY protocol (haproxy.org, versions 1 and 2) for Full-NAT services: the header naming
//! the client and the virtual address goes in front of a TCP client's first byte, and the
//! connection's sequence numbers are shifted by its length from then on; a UDP flow's real
//! server gets a version 2 header in front of every datagram ([`datagram`]).
//!
//! The header is put in front of the payload of every client segment that starts at the
//! stream's first sequence number (`start`, the SYN's + 1), so a lost first segment gets it
//! again when the client retransmits; client segments after it have their sequence numbers
//! raised by the header's length, and the real server's acknowledgements (and SACK blocks)
//! lowered by it. The SYN-ACK's MSS is lowered by the length too, so that the first segment
//! still fits the path once the header is in. Nothing here allocates.

use std::io::Write as _;
use std::net::IpAddr;

use wire::checksum;
use wire::{IpProtocol, TcpPacket};

use super::ip::Ip;
use crate::frame::Frame;

/// Longest header (version 1 with the longest IPv6 addresses and ports is 104 bytes; the
/// protocol allows 107).
pub const MAX_LEN: usize = 108;

/// Version 2's signature.
const V2_SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/// Length of a version 2 header for IPv4 (TCP or UDP).
pub const V2_LEN: usize = 28;

/// Length of a version 2 header for IPv6 (TCP or UDP).
pub const V2_LEN_V6: usize = 52;

/// Length of a version 2 header for a client of `family`'s.
pub fn v2_len(family: IpAddr) -> usize {
    if family.is_ipv6() {
        V2_LEN_V6
    } else {
        V2_LEN
    }
}

/// Writes the header of `version` for a TCP connection from `client` to `vip` (both of one
/// family) into `out`; returns its length (0 for [`conf::ProxyProtocol::Off`]).
pub fn header(
    version: conf::ProxyProtocol,
    client: (IpAddr, u16),
    vip: (IpAddr, u16),
    out: &mut [u8; MAX_LEN],
) -> usize {
    header_for(version, IpProtocol::Tcp, client, vip, out)
}

/// [`header`] for `transport` (version 2 says TCP or UDP, over IPv4 or IPv6).
fn header_for(
    version: conf::ProxyProtocol,
    transport: IpProtocol,
    (client, cport): (IpAddr, u16),
    (vip, vport): (IpAddr, u16),
    out: &mut [u8; MAX_LEN],
) -> usize {
    match version {
        conf::ProxyProtocol::Off => 0,
        conf::ProxyProtocol::V1 => {
            let mut w = &mut out[..];
            let family = if client.is_ipv6() { "TCP6" } else { "TCP4" };
            // Cannot fail: at most 104 bytes into 108.
            let _ = write!(w, "PROXY {family} {client} {vip} {cport} {vport}\r\n");
            MAX_LEN - w.len()
        }
        conf::ProxyProtocol::V2 => {
            out[..12].copy_from_slice(&V2_SIGNATURE);
            out[12] = 0x21; // version 2, PROXY
                            // The family (1: AF_INET, 2: AF_INET6) and the transport (1: stream, 2: datagram).
            let stream = if transport == IpProtocol::Tcp { 1 } else { 2 };
            let (family, addrs): (u8, &[&[u8]]) = match (client, vip) {
                (IpAddr::V4(c), IpAddr::V4(v)) => (1, &[&c.octets(), &v.octets()]),
                (IpAddr::V6(c), IpAddr::V6(v)) => (2, &[&c.octets(), &v.octets()]),
                // One connection has one family.
                _ => return 0,
            };
            out[13] = family << 4 | stream;
            let len = addrs[0].len() * 2 + 4;
            out[14..16].copy_from_slice(&(len as u16).to_be_bytes());
            let mut at = 16;
            for a in addrs {
                out[at..at + a.len()].copy_from_slice(a);
                at += a.len();
            }
            out[at..at + 2].copy_from_slice(&cport.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&vport.to_be_bytes());
            at + 4
        }
    }
}

/// A client's datagram of a UDP flow whose real server takes PROXY protocol version 2: the
/// header (UDP, `client` to `vip`) goes in front of its payload, as in front of every datagram
/// of the flow (UDP has no stream start; a datagram lost or reordered still names its
/// client). The addresses of the frame are already the real server's side. Returns false when
/// the frame has no room (the datagram is then dropped).
pub fn datagram<F: Frame>(buf: &mut F, l3: usize, l4: usize, client: (IpAddr, u16), vip: (IpAddr, u16)) -> bool {
    let mut hdr = [0u8; MAX_LEN];
    let n = header_for(conf::ProxyProtocol::V2, IpProtocol::Udp, client, vip, &mut hdr);
    if n == 0 || !buf.insert(l4 + 8, n) {
        return false;
    }
    let frame = buf.bytes();
    frame[l4 + 8..l4 + 8 + n].copy_from_slice(&hdr[..n]);
    let mut udp = wire::UdpPacket::new_unchecked(&mut frame[l4..]);
    udp.set_len(udp.len() + n as u16);
    let mut ip = Ip::at(frame, l3);
    ip.grow(n as u16);
    // A sender that left the checksum out (0, IPv4 only) keeps it out.
    ip.fill_transport_checksum(l4, IpProtocol::Udp);
    true
}

/// Whether sequence number `a` is after `b` (modulo 2^32).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `seq` of the client's space in the real server's: after the header from `start` on.
fn shift_up(seq: u32, start: u32, len: u32) -> u32 {
    if after(seq, start) {
        seq.wrapping_add(len)
    } else {
        seq
    }
}

/// `seq` of the real server's space in the client's: the header's bytes acknowledge as `start`.
pub(super) fn shift_down(seq: u32, start: u32, len: u32) -> u32 {
    if !after(seq, start) {
        seq
    } else if seq.wrapping_sub(start) <= len {
        start
    } else {
        seq.wrapping_sub(len)
    }
}

/// Replaces the 32-bit word at `at` (in the TCP segment at `l4`) with `new`, updating the
/// checksum incrementally.
fn set_word(frame: &mut [u8], l4: usize, at: usize, new: u32) {
    let old = u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    if old == new {
        return;
    }
    frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..]);
    let mut c = tcp.checksum();
    c = checksum::update_u16(c, (old >> 16) as u16, (new >> 16) as u16);
    c = checksum::update_u16(c, old as u16, new as u16);
    tcp.set_checksum(c);
}

/// A client segment of a connection with a header of `hdr` to put in at `start`: the header
/// goes in front of the payload of a segment starting there, later segments move up. The
/// addresses of the frame are already the real server's side. Returns false when the
/// frame has no room for the header (the segment is then dropped; the client sends it again).
pub fn inbound<F: Frame>(buf: &mut F, l3: usize, l4: usize, start: u32, hdr: &[u8]) -> bool {
    let (seq, hlen, payload) = {
        let f = buf.bytes();
        let len = Ip::at(&*f, l3).len();
        let tcp = TcpPacket::new_unchecked(&f[l4..]);
        let payload = len.saturating_sub(l4 - l3 + tcp.header_len());
        (tcp.seq_number(), tcp.header_len(), payload)
    };
    if seq != start || payload == 0 {
        let frame = buf.bytes();
        set_word(frame, l4, l4 + 4, shift_up(seq, start, hdr.len() as u32));
        return true;
    }
    if !buf.insert(l4 + hlen, hdr.len()) {
        return false;
    }
    let frame = buf.bytes();
    frame[l4 + hlen..l4 + hlen + hdr.len()].copy_from_slice(hdr);
    let mut ip = Ip::at(frame, l3);
    ip.grow(hdr.len() as u16);
    ip.fill_transport_checksum(l4, IpProtocol::Tcp);
    true
}

/// A real server's segment of a connection with a header of `len` bytes in at `start`: its
/// acknowledgement number and SACK blocks are moved back into the client's numbering.
pub fn outbound(frame: &mut [u8], l4: usize, start: u32, len: u32) {
    let (ack, has_ack, hlen) = {
        let tcp = TcpPacket::new_unchecked(&frame[l4..]);
        (tcp.ack_number(), tcp.flags().contains(wire::TcpFlags::ACK), tcp.header_len())
    };
    if has_ack {
        set_word(frame, l4, l4 + 8, shift_down(ack, start, len));
    }
    // SACK blocks (kind 5): pairs of 32-bit edges.
    let end = (l4 + hlen).min(frame.len());
    let mut edges = [0usize; 8];
    let mut n = 0;
    for (_, at, len) in wire::tcp::option_spans(&frame[(l4 + 20).min(end)..end]).filter(|o| o.0 == 5) {
        let mut edge = l4 + 20 + at + 2;
        while edge + 4 <= l4 + 20 + at + len && n < edges.len() {
            edges[n] = edge;
            n += 1;
            edge += 4;
        }
    }
    for &at in &edges[..n] {
        let edge = u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
        set_word(frame, l4, at, shift_down(edge, start, len));
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn headers_are_byte_exact() {
        let mut out = [0u8; MAX_LEN];
        let c = (Ipv4Addr::new(198, 18, 0, 1).into(), 40000);
        let v = (Ipv4Addr::new(198, 18, 0, 100).into(), 80);
        let n = header(conf::ProxyProtocol::V1, c, v, &mut out);
        assert_eq!(&out[..n], b"PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n");
        let n = header(conf::ProxyProtocol::V2, c, v, &mut out);
        assert_eq!(
            &out[..n],
            &[
                0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12, 198, 18, 0,
                1, 198, 18, 0, 100, 0x9c, 0x40, 0, 80
            ][..]
        );
        assert_eq!(header(conf::ProxyProtocol::Off, c, v, &mut out), 0);
        let longest = (Ipv4Addr::new(255, 255, 255, 255).into(), 65535);
        assert_eq!(header(conf::ProxyProtocol::V1, longest, longest, &mut out), 56);
    }

    #[test]
    fn ipv6_headers_are_byte_exact() {
        let mut out = [0u8; MAX_LEN];
        let c = ("2001:db8::1".parse::<IpAddr>().unwrap(), 40000);
        let v = ("2001:db8::100".parse::<IpAddr>().unwrap(), 80);
        let n = header(conf::ProxyProtocol::V1, c, v, &mut out);
        assert_eq!(&out[..n], b"PROXY TCP6 2001:db8::1 2001:db8::100 40000 80\r\n");
        let n = header(conf::ProxyProtocol::V2, c, v, &mut out);
        let mut want = vec![0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0, 36];
        want.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        want.extend_from_slice(&[0x9c, 0x40, 0, 80]);
        assert_eq!((&out[..n], n), (&want[..], V2_LEN_V6));
        // UDP over IPv6: family 2, datagram.
        let n = header_for(conf::ProxyProtocol::V2, IpProtocol::Udp, c, v, &mut out);
        assert_eq!((out[13], n), (0x22, V2_LEN_V6));
        let longest = (IpAddr::from(Ipv6Addr::from([0xff; 16])), 65535);
        assert_eq!(header(conf::ProxyProtocol::V1, longest, longest, &mut out), 104);
    }

    #[test]
    fn the_real_servers_sack_edges_move_back_into_the_clients_numbering() {
        // A TCP header with ACK, 32 bytes: NOP, NOP, SACK(one block 5100..5200).
        let mut seg = vec![0u8; 32];
        seg[12] = 8 << 4;
        seg[13] = 0x10;
        seg[8..12].copy_from_slice(&5100u32.to_be_bytes());
        seg[20..24].copy_from_slice(&[1, 1, 5, 10]);
        seg[24..28].copy_from_slice(&5100u32.to_be_bytes());
        seg[28..32].copy_from_slice(&5200u32.to_be_bytes());
        let (src, dst) = (Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 1, 254));
        TcpPacket::new_unchecked(&mut seg[..]).fill_checksum(src, dst);
        outbound(&mut seg, 0, 5001, 46);
        let tcp = TcpPacket::new_checked(&seg[..]).unwrap();
        assert!(tcp.verify_checksum(src, dst), "updated incrementally");
        assert_eq!(tcp.ack_number(), 5054);
        assert_eq!((&seg[24..28], &seg[28..32]), (&5054u32.to_be_bytes()[..], &5154u32.to_be_bytes()[..]));
    }

    #[test]
    fn sequence_numbers_move_by_the_header_around_the_start_and_across_wrap() {
        let start = u32::MAX - 10;
        assert_eq!(shift_up(start, start, 46), start, "the first segment keeps its number");
        assert_eq!(shift_up(start.wrapping_sub(1), start, 46), start.wrapping_sub(1), "the SYN");
        assert_eq!(shift_up(start.wrapping_add(100), start, 46), start.wrapping_add(146));
        assert_eq!(shift_down(start.wrapping_add(146), start, 46), start.wrapping_add(100));
        assert_eq!(shift_down(start.wrapping_add(20), start, 46), start, "part of the header acknowledged");
        assert_eq!(shift_down(start, start, 46), start);
    }
}
