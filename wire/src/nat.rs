//! Address and port translation of an IPv4 TCP or UDP packet in place, with every checksum
//! updated incrementally (RFC 1624): what Full-NAT and NAT do to each packet.

use core::net::Ipv4Addr;

use crate::checksum;
use crate::ipv4::{IpProtocol, Ipv4Packet};
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;

/// The addresses and ports a translated packet leaves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoints {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// Rewrites the IPv4 addresses and the TCP or UDP ports of the packet whose IPv4 header is at
/// `l3` and transport header at `l4` of `frame` to `to`: one wide sum of the changes, folded
/// once per checksum (the transport checksum's pseudo-header covers the addresses). A UDP
/// checksum of 0 (none) stays 0. Any other protocol than UDP is handled as TCP: the caller
/// classified the packet as TCP or UDP.
///
/// # Panics
/// When `frame` ends before the transport header's checksum (the classifier checked it).
#[inline]
pub fn rewrite(frame: &mut [u8], l3: usize, l4: usize, protocol: IpProtocol, to: Endpoints) {
    let addrs = {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
        let d = checksum::delta_addr(ip.src_addr(), to.src) + checksum::delta_addr(ip.dst_addr(), to.dst);
        ip.set_checksum(checksum::apply(ip.checksum(), d));
        ip.set_src_addr(to.src);
        ip.set_dst_addr(to.dst);
        d
    };
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

    fn tcp(src: Ipv4Addr, dst: Ipv4Addr, ports: (u16, u16)) -> [u8; 14 + 20 + 20 + 3] {
        let mut seg = [0u8; 23];
        let repr = TcpRepr {
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
        };
        repr.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src, dst);
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
}
