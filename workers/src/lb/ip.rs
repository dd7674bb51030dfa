//! The IP header of a frame the balancer rewrites, of either family: what the modes do to it
//! alike (length, addresses, the transport checksum over its pseudo-header),
//! dispatched on the version nibble, so that the rest of `lb` has one code path for both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};

/// The IP header at `l3` of a frame the classifier accepted (IPv4 or IPv6).
pub(super) struct Ip<T> {
    frame: T,
    l3: usize,
}

impl<T: AsRef<[u8]>> Ip<T> {
    /// The header at `l3` of `frame`.
    #[inline]
    pub(super) fn at(frame: T, l3: usize) -> Ip<T> {
        Ip { frame, l3 }
    }

    fn bytes(&self) -> &[u8] {
        &self.frame.as_ref()[self.l3..]
    }

    /// Whether it is IPv6.
    #[inline]
    pub(super) fn is_v6(&self) -> bool {
        self.bytes()[0] >> 4 == 6
    }

    /// The packet's length from the IP header on (IPv4 total length, IPv6 40 + payload
    /// length).
    #[inline]
    pub(super) fn len(&self) -> usize {
        if self.is_v6() {
            wire::ipv6::HEADER_LEN + usize::from(Ipv6Packet::new_unchecked(self.bytes()).payload_len())
        } else {
            usize::from(Ipv4Packet::new_unchecked(self.bytes()).total_len())
        }
    }

    /// Source and destination.
    #[inline]
    pub(super) fn addrs(&self) -> (IpAddr, IpAddr) {
        if self.is_v6() {
            let ip = Ipv6Packet::new_unchecked(self.bytes());
            (ip.src_addr().into(), ip.dst_addr().into())
        } else {
            let ip = Ipv4Packet::new_unchecked(self.bytes());
            (ip.src_addr().into(), ip.dst_addr().into())
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ip<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        let l3 = self.l3;
        &mut self.frame.as_mut()[l3..]
    }

    /// Adds `n` bytes to the length (bytes inserted after the header: IPv4's header
    /// checksum is computed again).
    pub(super) fn grow(&mut self, n: u16) {
        if self.is_v6() {
            let mut ip = Ipv6Packet::new_unchecked(self.bytes_mut());
            ip.set_payload_len(ip.payload_len() + n);
        } else {
            let mut ip = Ipv4Packet::new_unchecked(self.bytes_mut());
            ip.set_total_len(ip.total_len() + n);
            ip.fill_checksum();
        }
    }

    /// Computes the checksum of the TCP or UDP segment at `l4` (to the packet's end) again,
    /// over this header's pseudo-header. A UDP checksum of 0 (none, IPv4 only) stays 0.
    pub(super) fn fill_transport_checksum(&mut self, l4: usize, protocol: IpProtocol) {
        let end = self.l3 + self.len();
        let (src, dst) = self.addrs();
        let seg = &mut self.frame.as_mut()[l4..end];
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => fill::<Ipv4Addr>(seg, protocol, s, d),
            (IpAddr::V6(s), IpAddr::V6(d)) => fill::<Ipv6Addr>(seg, protocol, s, d),
            // One header has one family.
            _ => {}
        }
    }
}

/// Fills the checksum of `seg` (TCP, else UDP) from `src` to `dst`.
fn fill<A: wire::checksum::Family>(seg: &mut [u8], protocol: IpProtocol, src: A, dst: A) {
    if protocol == IpProtocol::Tcp {
        TcpPacket::new_unchecked(seg).fill_checksum(src, dst);
    } else {
        let mut udp = UdpPacket::new_unchecked(seg);
        if udp.checksum() != 0 {
            udp.fill_checksum(src, dst);
        }
    }
}
