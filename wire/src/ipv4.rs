//! IPv4 headers (RFC 791).
//!
//! ```text
//!  0               1               2               3
//! +-------+-------+---------------+-------------------------------+
//! |version|  IHL  |      TOS      |         total length          |  0
//! +-------+-------+---------------+-----+-------------------------+
//! |        identification         |flags|    fragment offset      |  4
//! +---------------+---------------+-----+-------------------------+
//! |      TTL      |   protocol    |        header checksum        |  8
//! +---------------+---------------+-------------------------------+
//! |                        source address                         | 12
//! +---------------------------------------------------------------+
//! |                      destination address                      | 16
//! +---------------------------------------------------------------+
//! |                 options (IHL > 5), then payload               | 20
//! ```
//!
//! [`Ipv4Packet::new_checked`] establishes `20 <= header_len <= total_len <= buffer.len()`.
//! Bytes past `total_len` (Ethernet padding) are not part of [`Ipv4Packet::payload`].
//!
//! # Panics
//!
//! After [`Ipv4Packet::new_checked`] (or [`Ipv4Packet::check_len`]) succeeds, no accessor,
//! setter, payload slice or checksum routine panics. [`Ipv4Repr::emit`] panics on a buffer
//! shorter than [`HEADER_LEN`].

use core::net::Ipv4Addr;

use crate::{checksum, read_u16, write_u16, Error};

wire_enum! {
    /// The protocol of an IP payload: IPv4's protocol field, IPv6's next header.
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options (an extension header, first if present).
        HopByHop = 0,
        /// ICMP.
        Icmp = 1,
        /// IPv4 in IP (the tunnel forwarding mode).
        IpIp = 4,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 in IP (the tunnel forwarding mode over IPv6).
        Ipv6 = 41,
        /// IPv6 routing header.
        Ipv6Route = 43,
        /// IPv6 fragment header.
        Ipv6Frag = 44,
        /// ICMPv6.
        Icmpv6 = 58,
        /// IPv6: no next header.
        Ipv6NoNxt = 59,
        /// IPv6 destination options.
        Ipv6Opts = 60,
    }
}

mod field {
    use crate::Field;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of the longest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after checking the version and [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Truncated`] for fewer than 20 bytes, [`Error::BadVersion`],
    /// then as [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks `20 <= header_len <= total_len <= buffer.len()`, which every accessor needs.
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Truncated`] for fewer than 20 bytes, [`Error::BadHeaderLen`] for
    /// IHL < 5, [`Error::BadTotalLen`] for a total length below 20 or past the buffer,
    /// [`Error::BadHeaderLen`] for a header longer than the total length.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        let total_len = usize::from(self.total_len());
        if total_len < HEADER_LEN || total_len > len {
            return Err(Error::BadTotalLen);
        }
        if header_len > total_len {
            return Err(Error::BadHeaderLen);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL x 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Differentiated services code point (upper 6 bits of the TOS byte).
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit congestion notification (lower 2 bits of the TOS byte).
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// Total length: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment: more fragments follow, or its offset is not zero.
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Payload protocol.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Whether the header checksum (options included) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The header's options (empty when IHL is 5), unparsed.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: from the end of the header to the total length (padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version.
    pub fn set_version(&mut self, value: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes, a multiple of 4 from 20 to 60; other values are
    /// stored as `(value / 4) & 0xf`.
    pub fn set_header_len(&mut self, value: usize) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0xf0) | ((value / 4) as u8 & 0x0f);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::TOS] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    /// Clears the flags and the fragment offset.
    pub fn clear_flags(&mut self) {
        write_u16(self.buffer.as_mut(), field::FLG_OFF, 0);
    }

    /// Sets or clears the don't-fragment flag.
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value);
    }

    /// Sets or clears the more-fragments flag.
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value);
    }

    fn set_flag(&mut self, flag: u16, value: bool) {
        let raw = read_u16(self.buffer.as_ref(), field::FLG_OFF);
        let raw = if value { raw | flag } else { raw & !flag };
        write_u16(self.buffer.as_mut(), field::FLG_OFF, raw);
    }

    /// Sets the fragment offset in bytes, a multiple of 8; the low 3 bits are dropped.
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = read_u16(self.buffer.as_ref(), field::FLG_OFF);
        let raw = (raw & !OFFSET_MASK) | ((value >> 3) & OFFSET_MASK);
        write_u16(self.buffer.as_mut(), field::FLG_OFF, raw);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Decrements the time to live by one, updating the header checksum incrementally (a
    /// router forwarding the packet). The caller checks first that it is above 1.
    pub fn decrement_ttl(&mut self) {
        let ttl = self.ttl();
        let csum = checksum::update_u16(self.checksum(), u16::from(ttl) << 8, u16::from(ttl.wrapping_sub(1)) << 8);
        self.set_ttl(ttl.wrapping_sub(1));
        self.set_checksum(csum);
    }

    /// Sets the payload protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the header checksum.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes the header checksum (options included) and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(csum);
    }

    /// The header's options, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, writable: from the end of the header to the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

fn addr(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// An IPv4 header as plain values. Options are skipped when parsing and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type-of-service byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// A plain header for `payload_len` bytes of `protocol` from `src` to `dst`: no options,
    /// DF set, TTL 64, identification 1 (what fixtures, benchmarks and generators send).
    pub fn plain(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Parses a packet: validates it as [`Ipv4Packet::new_checked`] does, then the checksum.
    ///
    /// # Errors
    ///
    /// As [`Ipv4Packet::new_checked`], then [`Error::BadChecksum`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, Error> {
        let packet = Ipv4Packet::new_checked(packet.buffer.as_ref())?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Length of the emitted header: [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the emitted packet: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header (no options) with its checksum. The payload is the caller's.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`HEADER_LEN`], or `payload_len` exceeds
    /// 65535 - 20.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        let Ok(total_len) = u16::try_from(self.buffer_len()) else {
            panic!("an IPv4 payload of {} bytes does not fit in a packet", self.payload_len);
        };
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_tos(self.tos);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_dont_frag(self.dont_frag);
        packet.set_more_frags(self.more_frags);
        packet.set_frag_offset(self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrement_ttl_keeps_the_checksum_valid() {
        let mut b = PACKET_BYTES;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.decrement_ttl();
        assert_eq!(p.ttl(), 62);
        assert!(p.verify_checksum());
        // Only the TTL and the checksum changed.
        assert_eq!(b[..8], PACKET_BYTES[..8]);
        assert_eq!(b[9], PACKET_BYTES[9]);
        assert_eq!(b[12..], PACKET_BYTES[12..]);
        assert_eq!(u16::from_be_bytes([b[10], b[11]]), 0xa9c2);
    }

    /// A DNS query from 10.0.0.1 to 10.0.0.2, as captured.
    #[rustfmt::skip]
    static PACKET_BYTES: [u8; 57] = [
        // version 4, IHL 5, TOS 0, total length 57
        0x45, 0x00, 0x00, 0x39,
        // ident 0xbeef, no flags, offset 0
        0xbe, 0xef, 0x00, 0x00,
        // TTL 63, protocol UDP, checksum 0xa8c2
        0x3f, 0x11, 0xa8, 0xc2,
        // src 10.0.0.1
        0x0a, 0x00, 0x00, 0x01,
        // dst 10.0.0.2
        0x0a, 0x00, 0x00, 0x02,
        // UDP: 5353 -> 53, length 37, checksum 0xf4e1
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x25, 0xf4, 0xe1,
        // DNS: id 0x1234, RD, 1 question, A example.com
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
        0x00, 0x01, 0x00, 0x01,
    ];

    /// An IGMP-style packet with a Router Alert option, carrying UDP without checksum.
    #[rustfmt::skip]
    static OPTIONS_BYTES: [u8; 36] = [
        // version 4, IHL 6, TOS 0xb8 (DSCP 46 EF), total length 36
        0x46, 0xb8, 0x00, 0x24,
        // ident 1, no flags
        0x00, 0x01, 0x00, 0x00,
        // TTL 1, protocol UDP, checksum 0x100a
        0x01, 0x11, 0x10, 0x0a,
        // src 10.0.0.1, dst 10.0.0.2
        0x0a, 0x00, 0x00, 0x01,
        0x0a, 0x00, 0x00, 0x02,
        // option: Router Alert (148), length 4, value 0
        0x94, 0x04, 0x00, 0x00,
        // UDP: 1000 -> 2000, length 12, no checksum, "ping"
        0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0x00, 0x00,
        0x70, 0x69, 0x6e, 0x67,
    ];

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len: 37,
            ttl: 63,
            tos: 0,
            ident: 0xbeef,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Ipv4Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.tos(), 0);
        assert_eq!(packet.total_len(), 57);
        assert_eq!(packet.ident(), 0xbeef);
        assert!(!packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 63);
        assert_eq!(packet.protocol(), IpProtocol::Udp);
        assert_eq!(packet.checksum(), 0xa8c2);
        assert_eq!(packet.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(packet.verify_checksum());
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload(), &PACKET_BYTES[20..]);
    }

    #[test]
    fn deconstruct_with_options() {
        let packet = Ipv4Packet::new_checked(&OPTIONS_BYTES[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!((packet.dscp(), packet.ecn()), (46, 0));
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &OPTIONS_BYTES[24..]);
        let repr = Ipv4Repr::parse(&packet).unwrap();
        assert_eq!(repr.payload_len, 12);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut padded = [0u8; 64];
        padded[..57].copy_from_slice(&PACKET_BYTES);
        let packet = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload().len(), 37);
    }

    #[test]
    fn parse_and_emit() {
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&PACKET_BYTES[..])), Ok(repr()));
        let mut bytes = [0xa5u8; 57];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        repr().emit(&mut packet);
        packet.payload_mut().copy_from_slice(&PACKET_BYTES[20..]);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn fill_checksum_with_options() {
        let mut bytes = OPTIONS_BYTES;
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_checksum(0xdead);
        packet.fill_checksum();
        assert_eq!(bytes, OPTIONS_BYTES);
    }

    #[test]
    fn flags_and_fragments() {
        let mut bytes = PACKET_BYTES;
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.set_dont_frag(true);
        assert!(packet.dont_frag() && !packet.is_fragment());
        packet.set_more_frags(true);
        assert!(packet.more_frags() && packet.is_fragment());
        packet.set_more_frags(false);
        packet.set_frag_offset(1480);
        assert_eq!(packet.frag_offset(), 1480);
        assert!(packet.dont_frag() && packet.is_fragment());
        packet.clear_flags();
        assert!(!packet.dont_frag() && !packet.is_fragment());
    }

    /// (description, patches as (offset, byte), expected error of `new_checked`).
    #[rustfmt::skip]
    const MALFORMED: &[(&str, crate::Patches, Error)] = &[
        ("version 6",                 &[(0, 0x65)],             Error::BadVersion),
        ("IHL 4",                     &[(0, 0x44)],             Error::BadHeaderLen),
        ("IHL 15 > total length 57",  &[(0, 0x4f), (3, 57)],    Error::BadHeaderLen),
        ("total length 19",           &[(2, 0), (3, 19)],       Error::BadTotalLen),
        ("total length 58 > buffer",  &[(3, 58)],               Error::BadTotalLen),
    ];

    #[test]
    fn malformed() {
        for (what, patches, expected) in MALFORMED {
            let mut bytes = PACKET_BYTES;
            for &(at, value) in *patches {
                bytes[at] = value;
            }
            assert_eq!(Ipv4Packet::new_checked(&bytes[..]).err(), Some(*expected), "{what}");
        }
        let mut bytes = PACKET_BYTES;
        bytes[8] = 64; // TTL changed, checksum not updated
        assert!(Ipv4Packet::new_checked(&bytes[..]).is_ok());
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[..])), Err(Error::BadChecksum));
    }

    #[test]
    fn every_prefix() {
        for fixture in [&PACKET_BYTES[..], &OPTIONS_BYTES[..]] {
            for len in 0..=fixture.len() {
                match Ipv4Packet::new_checked(&fixture[..len]) {
                    Ok(packet) => {
                        assert_eq!(len, fixture.len());
                        assert!(packet.verify_checksum());
                        let _ = (packet.options(), packet.payload());
                    }
                    Err(e) if len < HEADER_LEN => assert_eq!(e, Error::Truncated),
                    Err(e) => assert_eq!(e, Error::BadTotalLen),
                }
            }
        }
    }

    #[test]
    fn accessors_never_panic_after_check() {
        // Every IHL and every total length over a 64-byte buffer.
        for ver_ihl in 0x40..=0x4fu8 {
            for total in 0..=80u16 {
                let mut bytes = [0u8; 64];
                bytes[0] = ver_ihl;
                bytes[2..4].copy_from_slice(&total.to_be_bytes());
                if let Ok(mut packet) = Ipv4Packet::new_checked(&mut bytes[..]) {
                    packet.fill_checksum();
                    assert!(packet.verify_checksum());
                    let _ = (packet.options_mut().len(), packet.payload_mut().len());
                    let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
                    let _ = (packet.options(), packet.payload(), packet.frag_offset());
                }
            }
        }
    }

    #[test]
    fn protocol_round_trip() {
        for raw in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(raw)), raw);
        }
        assert_eq!(IpProtocol::from(4), IpProtocol::IpIp);
    }
}
