//! Address and port translation of an IPv4 or IPv6 TCP or UDP packet in place, with every
//! checksum updated incrementally (RFC 1624): what Full-NAT and NAT do to each packet.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{self, Family};
use crate::ipv4::{IpProtocol, Ipv4Packet};
use crate::ipv6::Ipv6Packet;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

/// An address family whose IP header NAT rewrites.
pub trait Addresses: Family {
    /// Rewrites the source and destination of the IP header at the start of `l3` (and the
    /// IPv4 header checksum); returns the change as a term of [`checksum::apply`], for the
    /// transport checksum whose pseudo-header covers the addresses.
    fn rewrite_header(l3: &mut [u8], src: Self, dst: Self) -> u64;
}

impl Addresses for Ipv4Addr {
    #[inline]
    fn rewrite_header(l3: &mut [u8], src: Self, dst: Self) -> u64 {
        let mut ip = Ipv4Packet::new_unchecked(l3);
        let d = checksum::delta_addr(ip.src_addr(), src) + checksum::delta_addr(ip.dst_addr(), dst);
        ip.set_checksum(checksum::apply(ip.checksum(), d));
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        d
    }
}

impl Addresses for Ipv6Addr {
    #[inline]
    fn rewrite_header(l3: &mut [u8], src: Self, dst: Self) -> u64 {
        let mut ip = Ipv6Packet::new_unchecked(l3);
        let d = checksum::delta_addr_v6(&ip.src_addr(), &src) + checksum::delta_addr_v6(&ip.dst_addr(), &dst);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        d
    }
}

/// The addresses and ports a translated packet leaves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoints<A = Ipv4Addr> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Rewrites the IPv4 or IPv6 addresses and the TCP or UDP ports of the packet whose IP header
/// is at `l3` and transport header at `l4` of `frame` to `to`: one wide sum of the changes,
/// folded once per checksum (the transport checksum's pseudo-header covers the addresses). A
/// UDP checksum of 0 (none, IPv4 only) stays 0. Any other protocol than UDP is handled as
/// TCP: the caller classified the packet as TCP or UDP.
///
/// # Panics
/// When `frame` ends before the transport header's checksum (the classifier checked it).
#[inline]
pub fn rewrite<A: Addresses>(frame: &mut [u8], l3: usize, l4: usize, protocol: IpProtocol, to: Endpoints<A>) {
    let addrs = A::rewrite_header(&mut frame[l3..], to.src, to.dst);
    if protocol == IpProtocol::Udp {
        let mut udp = UdpPacket::new_unchecked(&mut frame[l4..]);
        let d = addrs + checksum::delta_u16(udp.src_port(), to.sport) + checksum::delta_u16(udp.dst_port(), to.dport);
        udp.set_checksum(checksum::udp_apply(udp.checksum(), d));
        udp.set_src_port(to.sport);
        udp.set_dst_port(to.dport);
    } else {
        let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..]);
        let d = addrs + checksum::delta_u16(tcp.src_port(), to.sport) + checksum::delta_u16(tcp.dst_port(), to.dport);
        tcp.set_checksum(checksum::apply(tcp.checksum(), d));
        tcp.set_src_port(to.sport);
        tcp.set_dst_port(to.dport);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{emit_ipv4_frame, EthernetAddress, TcpFlags, TcpRepr, UdpRepr};

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const C: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
    const D: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const MACS: (EthernetAddress, EthernetAddress) =
        (EthernetAddress([2, 0, 0, 0, 0, 1]), EthernetAddress([2, 0, 0, 0, 0, 2]));

    fn udp(src: Ipv4Addr, dst: Ipv4Addr, ports: (u16, u16), checksum: bool) -> [u8; 14 + 20 + 8 + 4] {
        let mut seg = [0u8; 12];
        let repr = UdpRepr { src_port: ports.0, dst_port: ports.1, payload: b"ping" };
        repr.emit(&mut UdpPacket::new_unchecked(&mut seg[..]), src, dst);
        if !checksum {
            seg[6..8].fill(0);
        }
        let mut f = [0u8; 46];
        emit_ipv4_frame(&mut f, MACS, (src, dst), IpProtocol::Udp, &seg);
        f
    }

    /// A 23-byte segment with "GET" between `ports`.
    fn tcp_repr(ports: (u16, u16)) -> TcpRepr<'static> {
        TcpRepr {
            src_port: ports.0,
            dst_port: ports.1,
            seq_number: 7,
            ack_number: 9,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window_len: 512,
            urgent_at: 0,
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            timestamp: None,
            payload: b"GET",
        }
    }

    fn tcp(src: Ipv4Addr, dst: Ipv4Addr, ports: (u16, u16)) -> [u8; 14 + 20 + 20 + 3] {
        let mut seg = [0u8; 23];
        tcp_repr(ports).emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src, dst);
        let mut f = [0u8; 57];
        emit_ipv4_frame(&mut f, MACS, (src, dst), IpProtocol::Tcp, &seg);
        f
    }

    #[test]
    fn udp_rewrite_equals_a_packet_built_with_the_new_endpoints() {
        let mut f = udp(A, B, (5353, 53), true);
        rewrite(&mut f, 14, 34, IpProtocol::Udp, Endpoints { src: C, dst: D, sport: 1025, dport: 8053 });
        assert_eq!(f, udp(C, D, (1025, 8053), true));
    }

    #[test]
    fn udp_without_a_checksum_keeps_none() {
        let mut f = udp(A, B, (5353, 53), false);
        rewrite(&mut f, 14, 34, IpProtocol::Udp, Endpoints { src: C, dst: D, sport: 1025, dport: 8053 });
        assert_eq!(f, udp(C, D, (1025, 8053), false));
    }

    #[test]
    fn tcp_rewrite_equals_a_packet_built_with_the_new_endpoints() {
        let mut f = tcp(A, B, (40000, 80));
        rewrite(&mut f, 14, 34, IpProtocol::Tcp, Endpoints { src: C, dst: D, sport: 1026, dport: 8080 });
        assert_eq!(f, tcp(C, D, (1026, 8080)));
    }

    /// A UDP or TCP segment over IPv6 from `src` to `dst`, emitted whole.
    fn v6(src: Ipv6Addr, dst: Ipv6Addr, ports: (u16, u16), tcp: bool) -> std::vec::Vec<u8> {
        let mut seg = std::vec![0u8; if tcp { 23 } else { 12 }];
        if tcp {
            tcp_repr(ports).emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src, dst);
        } else {
            let repr = UdpRepr { src_port: ports.0, dst_port: ports.1, payload: b"ping" };
            repr.emit(&mut UdpPacket::new_unchecked(&mut seg[..]), src, dst);
        }
        let mut f = std::vec![0u8; 54 + seg.len()];
        let protocol = if tcp { IpProtocol::Tcp } else { IpProtocol::Udp };
        crate::emit_ipv6_frame(&mut f, MACS, (src, dst), protocol, &seg);
        f
    }

    proptest::proptest! {
        #[test]
        fn an_ipv6_rewrite_equals_a_packet_built_with_the_new_endpoints(
            addrs in proptest::prelude::any::<[u128; 4]>(),
            ports in proptest::prelude::any::<[u16; 4]>(),
            tcp in proptest::prelude::any::<bool>(),
        ) {
            let [a, b, c, d] = addrs.map(Ipv6Addr::from);
            let mut f = v6(a, b, (ports[0], ports[1]), tcp);
            let protocol = if tcp { IpProtocol::Tcp } else { IpProtocol::Udp };
            rewrite(&mut f, 14, 54, protocol, Endpoints { src: c, dst: d, sport: ports[2], dport: ports[3] });
            let mut want = v6(c, d, (ports[2], ports[3]), tcp);
            // The two one's-complement zeros are the same checksum.
            let at = if tcp { 54 + 16 } else { 54 + 6 };
            if f[at..at + 2] != want[at..at + 2] {
                let (got, exp) = (u16::from_be_bytes([f[at], f[at + 1]]), u16::from_be_bytes([want[at], want[at + 1]]));
                proptest::prop_assert!(got.is_multiple_of(0xffff) && exp.is_multiple_of(0xffff), "{got:#x} {exp:#x}");
                want[at..at + 2].copy_from_slice(&f[at..at + 2]);
            }
            proptest::prop_assert_eq!(f, want);
        }
    }
}
