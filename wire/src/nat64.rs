//! NAT64 header translation (RFC 7915), as a stateful translator does it (DPVS's NAT64
//! Full-NAT): an IPv6 TCP or UDP packet becomes an IPv4 one and back, in place, with the
//! addresses and ports of its connection. The transport checksum is updated for the change of
//! pseudo-header (RFC 1624); a UDP datagram without a checksum gets one on its way to IPv6.
//!
//! Both translations write the new IP header to end where the transport header starts, and
//! move the link header (the bytes in front of the IP header, Ethernet's with any VLAN tags:
//! its last two bytes are the EtherType, set to the new family's) to stay in front of it: the
//! translated frame starts where they return. From IPv6 that is further into the buffer (the
//! caller cuts the front); to IPv6 the caller first makes room in front of the frame.
//!
//! # Left out
//!
//! Fragments (the caller drops them), ICMP and ICMPv6 (the balancer translates TCP and UDP
//! only), and the fragment header RFC 7915 adds to IPv4 packets without DF.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{self, delta_addr_v6, delta_u16};
use crate::ethernet::EtherType;
use crate::ipv4::{self, IpProtocol, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};
use crate::nat::Endpoints;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

/// How much longer an IPv6 header is than the IPv4 header (without options) it becomes.
pub const GROWTH: usize = ipv6::HEADER_LEN - ipv4::HEADER_LEN;

/// An IPv4 address as the IPv6 address of the same one's-complement sum (`::a.b.c.d`): the
/// checksum change from one family's address to the other's is then [`delta_addr_v6`]'s.
const fn same_sum(a: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from_bits(a.to_bits() as u128)
}

/// Translates the IPv6 packet whose header is at `l3` of `frame` (after `link` bytes of link
/// header), with its extension headers up to the TCP or UDP header (`protocol`) at `l4`, to an
/// IPv4 packet to `to` (RFC 7915 section 5.1): traffic class to type of service, `ttl` (the
/// caller decrements the hop limit), DF set and identification 0 (an atomic datagram, RFC
/// 6864), extension headers dropped. Returns where the translated frame starts in `frame`.
///
/// The caller checked that it is no fragment and that `frame` holds its whole payload.
///
/// # Panics
/// When `link > l3`, `l4 < l3 + 40`, or `frame` ends before the IPv6 payload does.
pub fn to_ipv4(
    frame: &mut [u8],
    link: usize,
    (l3, l4): (usize, usize),
    protocol: IpProtocol,
    ttl: u8,
    to: Endpoints<Ipv4Addr>,
) -> usize {
    let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
    let (src, dst, tos) = (ip.src_addr(), ip.dst_addr(), ip.traffic_class());
    // What follows the extension headers: the transport header and data.
    let upper = l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len()) - l4;
    let at = l4 - ipv4::HEADER_LEN;
    let repr = ipv4::Ipv4Repr {
        src_addr: to.src,
        dst_addr: to.dst,
        protocol,
        payload_len: upper,
        ttl,
        tos,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut frame[at..l4]));
    let addrs = delta_addr_v6(&src, &same_sum(to.src)) + delta_addr_v6(&dst, &same_sum(to.dst));
    ports(&mut frame[l4..], protocol, addrs, &to);
    frame.copy_within(l3 - link..l3, at - link);
    frame[at - 2..at].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    at - link
}

/// Translates the IPv4 packet whose header is at `l3` of `frame` (after `link` bytes of link
/// header), with its options up to the TCP or UDP header (`protocol`) at `l4`, to an IPv6
/// packet to `to` (RFC 7915 section 4.1): type of service to traffic class, flow label 0,
/// `ttl` as the hop limit (the caller decrements it), options dropped; a UDP datagram without a
/// checksum gets one. Returns where the translated frame starts in `frame`: `frame` needs
/// `link + 40` bytes in front of `l4` (the caller makes room in front of the frame first).
///
/// The caller checked that it is no fragment and that `frame` holds its whole payload.
///
/// # Panics
/// When `l4 < link + 40`, `link > l3`, or `frame` ends before the IPv4 payload does.
pub fn to_ipv6(
    frame: &mut [u8],
    link: usize,
    (l3, l4): (usize, usize),
    protocol: IpProtocol,
    ttl: u8,
    to: Endpoints<Ipv6Addr>,
) -> usize {
    let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
    let (src, dst, tos) = (ip.src_addr(), ip.dst_addr(), ip.tos());
    let upper = l3 + usize::from(ip.total_len()) - l4;
    let at = l4 - ipv6::HEADER_LEN;
    // The link header first: the IPv6 header is written over where it was.
    frame.copy_within(l3 - link..l3, at - link);
    frame[at - 2..at].copy_from_slice(&u16::from(EtherType::Ipv6).to_be_bytes());
    let repr = ipv6::Ipv6Repr {
        src_addr: to.src,
        dst_addr: to.dst,
        next_header: protocol,
        payload_len: upper,
        hop_limit: ttl,
        traffic_class: tos,
        flow_label: 0,
    };
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut frame[at..l4]));
    let seg = &mut frame[l4..l4 + upper];
    if protocol == IpProtocol::Udp && UdpPacket::new_unchecked(&*seg).checksum() == 0 {
        // None over IPv4; one is required over IPv6 (RFC 8200 section 8.1).
        let mut udp = UdpPacket::new_unchecked(seg);
        udp.set_src_port(to.sport);
        udp.set_dst_port(to.dport);
        udp.fill_checksum(to.src, to.dst);
    } else {
        let addrs = delta_addr_v6(&same_sum(src), &to.src) + delta_addr_v6(&same_sum(dst), &to.dst);
        ports(seg, protocol, addrs, &to);
    }
    at - link
}

/// Rewrites the ports of the TCP or UDP header at the start of `seg` and applies `addrs` (the
/// pseudo-header's change) and theirs to its checksum.
fn ports<A>(seg: &mut [u8], protocol: IpProtocol, addrs: u64, to: &Endpoints<A>) {
    if protocol == IpProtocol::Udp {
        let mut udp = UdpPacket::new_unchecked(seg);
        let d = addrs + delta_u16(udp.src_port(), to.sport) + delta_u16(udp.dst_port(), to.dport);
        udp.set_checksum(checksum::udp_apply(udp.checksum(), d));
        udp.set_src_port(to.sport);
        udp.set_dst_port(to.dport);
    } else {
        let mut tcp = TcpPacket::new_unchecked(seg);
        let d = addrs + delta_u16(tcp.src_port(), to.sport) + delta_u16(tcp.dst_port(), to.dport);
        tcp.set_checksum(checksum::apply(tcp.checksum(), d));
        tcp.set_src_port(to.sport);
        tcp.set_dst_port(to.dport);
    }
}

#[cfg(test)]
mod tests;
