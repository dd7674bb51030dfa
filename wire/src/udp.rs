//! UDP headers (RFC 768) over IPv4.
//!
//! ```text
//!  0               1               2               3
//! +-------------------------------+-------------------------------+
//! |          source port          |       destination port        |  0
//! +-------------------------------+-------------------------------+
//! |            length             |           checksum            |  4
//! +-------------------------------+-------------------------------+
//! |                            payload                            |  8
//! ```
//!
//! A [`UdpPacket`] wraps the IPv4 payload. [`UdpPacket::new_checked`] establishes
//! `8 <= length <= buffer.len()`; bytes past `length` are not part of the datagram.
//!
//! Over IPv4 a checksum of `0` means "none": [`UdpPacket::verify_checksum`] accepts it, and
//! [`UdpPacket::fill_checksum`] sends a computed `0` as `0xffff`. For NAT rewrites use the
//! `checksum::udp_update_*` helpers, which keep both rules.
//!
//! # Panics
//!
//! After [`UdpPacket::new_checked`] (or [`UdpPacket::check_len`]) succeeds, no accessor,
//! setter, payload slice or checksum routine panics. [`UdpRepr::emit`] panics on a buffer
//! shorter than [`UdpRepr::buffer_len`].

use crate::checksum::Family;
use crate::ipv4::IpProtocol;
use crate::{checksum, read_u16, write_u16, Error};

mod field {
    use crate::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks `8 <= length <= buffer.len()`, which every accessor needs.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for fewer than 8 bytes, [`Error::BadUdpLen`] for a length field
    /// below 8 or past the end of the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let length = usize::from(self.len());
        if length < HEADER_LEN || length > len {
            return Err(Error::BadUdpLen);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum (`0`: none).
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the checksum verifies with the pseudo-header of `src` and `dst` (IPv4 or
    /// IPv6 addresses); over IPv4 a checksum of `0` (none) always does, over IPv6 never.
    pub fn verify_checksum<A: Family>(&self, src: A, dst: A) -> bool {
        if self.checksum() == 0 {
            return A::UDP_CHECKSUM_OPTIONAL;
        }
        self.datagram_sum(src, dst) == 0xffff
    }

    fn datagram_sum<A: Family>(&self, src: A, dst: A) -> u16 {
        let length = self.len();
        let datagram = &self.buffer.as_ref()[..usize::from(length)];
        checksum::combine(&[A::pseudo_header(src, dst, IpProtocol::Udp, u32::from(length)), checksum::sum(datagram)])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload: from the end of the header to the length field (padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the checksum.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the checksum with the pseudo-header of `src` and `dst` and stores it; a
    /// computed `0` is stored as `0xffff`.
    pub fn fill_checksum<A: Family>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let csum = checksum::udp_on_wire(checksum::finish(self.datagram_sum(src, dst)));
        self.set_checksum(csum);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A UDP datagram as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a datagram, checking its length and (unless it is `0`) its checksum.
    ///
    /// # Errors
    ///
    /// As [`UdpPacket::check_len`], then [`Error::BadChecksum`].
    pub fn parse<T: AsRef<[u8]> + ?Sized, A: Family>(
        packet: &UdpPacket<&'a T>,
        src: A,
        dst: A,
    ) -> Result<UdpRepr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr { src_port: packet.src_port(), dst_port: packet.dst_port(), payload: packet.payload() })
    }

    /// Length of the emitted datagram.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram with its checksum for `src` and `dst`.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`buffer_len`](Self::buffer_len), or that length
    /// exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>, A: Family>(&self, packet: &mut UdpPacket<T>, src: A, dst: A) {
        let Ok(length) = u16::try_from(self.buffer_len()) else {
            panic!("a UDP payload of {} bytes does not fit in a datagram", self.payload.len());
        };
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(length);
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::ipv4::{Ipv4Packet, Ipv4Repr};
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A DNS query for example.com A, 10.0.0.1:5353 -> 10.0.0.2:53.
    #[rustfmt::skip]
    static PACKET_BYTES: [u8; 37] = [
        // src port 5353, dst port 53
        0x14, 0xe9, 0x00, 0x35,
        // length 37, checksum 0xf4e1
        0x00, 0x25, 0xf4, 0xe1,
        // DNS header: id 0x1234, RD, 1 question
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // question: example.com, type A, class IN
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
        0x00, 0x01, 0x00, 0x01,
    ];

    /// 10.0.0.1:1000 -> 10.0.0.2:2000, "ping", sent without checksum.
    #[rustfmt::skip]
    static NO_CHECKSUM_BYTES: [u8; 12] = [
        // src port 1000, dst port 2000, length 12, checksum 0 (none)
        0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0x00, 0x00,
        // "ping"
        0x70, 0x69, 0x6e, 0x67,
    ];

    #[test]
    fn deconstruct() {
        let packet = UdpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.src_port(), 5353);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 37);
        assert_eq!(packet.checksum(), 0xf4e1);
        assert_eq!(packet.payload(), &PACKET_BYTES[8..]);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 3)));
    }

    #[test]
    fn parse_and_emit() {
        let repr = UdpRepr { src_port: 5353, dst_port: 53, payload: &PACKET_BYTES[8..] };
        assert_eq!(UdpRepr::parse(&UdpPacket::new_unchecked(&PACKET_BYTES[..]), SRC, DST), Ok(repr));
        let mut bytes = [0xa5u8; 37];
        repr.emit(&mut UdpPacket::new_unchecked(&mut bytes[..]), SRC, DST);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn no_checksum() {
        let packet = UdpPacket::new_checked(&NO_CHECKSUM_BYTES[..]).unwrap();
        assert_eq!(packet.checksum(), 0);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(packet.verify_checksum(DST, SRC));
        assert_eq!(UdpRepr::parse(&packet, SRC, DST).map(|r| r.payload), Ok(&b"ping"[..]));
        // NAT on a datagram without checksum leaves it without checksum.
        assert_eq!(checksum::udp_update_addr(packet.checksum(), SRC, Ipv4Addr::new(192, 0, 2, 1)), 0);
        assert_eq!(checksum::udp_update_u16(packet.checksum(), 1000, 40000), 0);
    }

    #[test]
    fn computed_zero_goes_out_as_ffff() {
        // Pick a source port that makes the datagram's sum 0xffff, so that its computed
        // checksum is 0.
        let mut bytes = NO_CHECKSUM_BYTES;
        let mut packet = UdpPacket::new_unchecked(&mut bytes[..]);
        packet.set_src_port(0);
        let sum = packet.datagram_sum(SRC, DST);
        // Adding !sum to a sum gives 0xffff.
        packet.set_src_port(!sum);
        assert_eq!(packet.datagram_sum(SRC, DST), 0xffff);
        packet.fill_checksum(SRC, DST);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn bad_length() {
        for (length, expected) in [(7u16, Error::BadUdpLen), (0, Error::BadUdpLen), (38, Error::BadUdpLen)] {
            let mut bytes = PACKET_BYTES;
            bytes[4..6].copy_from_slice(&length.to_be_bytes());
            assert_eq!(UdpPacket::new_checked(&bytes[..]).err(), Some(expected), "length {length}");
        }
        let mut bytes = PACKET_BYTES;
        bytes[9] ^= 0x10;
        assert_eq!(UdpRepr::parse(&UdpPacket::new_unchecked(&bytes[..]), SRC, DST), Err(Error::BadChecksum));
    }

    #[test]
    fn every_prefix() {
        for fixture in [&PACKET_BYTES[..], &NO_CHECKSUM_BYTES[..]] {
            for len in 0..=fixture.len() {
                match UdpPacket::new_checked(&fixture[..len]) {
                    Ok(packet) => {
                        assert_eq!(len, fixture.len());
                        assert!(packet.verify_checksum(SRC, DST));
                    }
                    Err(e) if len < HEADER_LEN => assert_eq!(e, Error::Truncated),
                    Err(e) => assert_eq!(e, Error::BadUdpLen),
                }
            }
        }
    }

    proptest! {
        /// NAT rewrites of a UDP datagram with a checksum: incremental equals full, with the
        /// 0 -> 0xffff rule applied to both.
        #[test]
        fn nat_rewrite_matches_full_checksum(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            sport in any::<u16>(), dport in any::<u16>(),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            new_src in any::<[u8; 4]>(), new_sport in any::<u16>(),
        ) {
            let (src, dst, new_src) = (Ipv4Addr::from(src), Ipv4Addr::from(dst), Ipv4Addr::from(new_src));
            let repr = UdpRepr { src_port: sport, dst_port: dport, payload: &payload };
            let ip = Ipv4Repr {
                src_addr: src, dst_addr: dst, protocol: IpProtocol::Udp, payload_len: repr.buffer_len(),
                ttl: 64, tos: 0, ident: 7, dont_frag: false, more_frags: false, frag_offset: 0,
            };
            let mut bytes = std::vec![0u8; ip.buffer_len()];
            let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
            ip.emit(&mut packet);
            repr.emit(&mut UdpPacket::new_unchecked(packet.payload_mut()), src, dst);

            let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
            let ip_csum = checksum::update_addr(packet.checksum(), src, new_src);
            packet.set_src_addr(new_src);
            packet.set_checksum(ip_csum);
            let mut udp = UdpPacket::new_checked(packet.payload_mut()).unwrap();
            let old = udp.checksum();
            prop_assert_ne!(old, 0);
            let mut csum = checksum::udp_update_addr(old, src, new_src);
            csum = checksum::udp_update_u16(csum, udp.src_port(), new_sport);
            udp.set_src_port(new_sport);
            udp.set_checksum(csum);
            prop_assert!(udp.verify_checksum(new_src, dst));
            udp.fill_checksum(new_src, dst);
            prop_assert_eq!(udp.checksum(), csum);
            prop_assert!(packet.verify_checksum());
        }
    }
}
