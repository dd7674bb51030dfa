//! ICMPv4 messages (RFC 792, RFC 1191): echo, and the two errors a load balancer relays.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |     type      |     code      |           checksum            |  0
//! +---------------+---------------+-------------------------------+
//! |  echo: identifier, sequence number                            |  4
//! |  destination unreachable: unused (16 bits), next-hop MTU      |
//! |  time exceeded: unused                                        |
//! +---------------------------------------------------------------+
//! |  echo: data; errors: original IPv4 header + first 8 bytes     |  8
//! ```
//!
//! An [`Icmpv4Packet`] wraps the IPv4 payload; its checksum covers the whole message.
//! [`Icmpv4Packet::original`] reads the datagram an error message quotes, so that the load
//! balancer can find the connection it belongs to (and rewrite it: its offsets are given).
//!
//! # Panics
//!
//! After [`Icmpv4Packet::new_checked`] (or [`Icmpv4Packet::check_len`]) succeeds, no accessor,
//! setter, payload slice or checksum routine panics. [`Icmpv4Repr::emit`] panics on a buffer
//! shorter than [`Icmpv4Repr::buffer_len`].

use core::net::Ipv4Addr;

use crate::ipv4::{self, IpProtocol, Ipv4Packet};
use crate::{checksum, read_u16, write_u16, Error};

wire_enum! {
    /// The ICMP message type.
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Echo request.
        EchoRequest = 8,
        /// Time exceeded.
        TimeExceeded = 11,
    }
}

impl Icmpv4Message {
    /// Whether this is an error message that quotes an original datagram.
    pub fn is_error(self) -> bool {
        matches!(self, Icmpv4Message::DstUnreachable | Icmpv4Message::TimeExceeded)
    }
}

wire_enum! {
    /// Codes of [`Icmpv4Message::DstUnreachable`].
    pub enum DstUnreachable(u8) {
        /// Network unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set; the next-hop MTU is in the header (RFC 1191).
        FragNeeded = 4,
        /// Communication administratively prohibited.
        AdminProhibited = 13,
    }
}

wire_enum! {
    /// Codes of [`Icmpv4Message::TimeExceeded`].
    pub enum TimeExceeded(u8) {
        /// TTL expired in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragReassembly = 1,
    }
}

mod field {
    use crate::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ_NO: Field = 6..8;
    pub const UNUSED: Field = 4..6;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const REST_OF_HEADER: Field = 4..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMP header.
pub const HEADER_LEN: usize = field::DATA.start;
/// How much of the original datagram's payload an error message quotes (at least).
pub const ORIGINAL_PAYLOAD_LEN: usize = 8;

/// The original datagram quoted by an error message, read without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Original {
    /// Offset of the original IPv4 header from the start of the ICMP message: always
    /// [`HEADER_LEN`].
    pub ip_offset: usize,
    /// Length of the original IPv4 header (options included).
    pub header_len: usize,
    /// The original total length (usually more than what is quoted).
    pub total_len: u16,
    /// Original protocol.
    pub protocol: IpProtocol,
    /// Original source address (for a reply the load balancer sent: one of its own).
    pub src_addr: Ipv4Addr,
    /// Original destination address.
    pub dst_addr: Ipv4Addr,
    /// Original `(source, destination)` ports, for TCP or UDP when at least 4 bytes of the
    /// transport header are quoted and the original is not a non-first fragment.
    pub ports: Option<(u16, u16)>,
    /// Bytes of the original transport header and data that are quoted.
    pub l4_len: usize,
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for fewer than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the 8-byte header is there, which every accessor needs.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for fewer than 8 bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code (its meaning depends on the type).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request and reply).
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for echo request and reply).
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// Next-hop MTU (meaningful for destination unreachable, fragmentation needed).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }

    /// Reads the original datagram quoted by a destination-unreachable or time-exceeded
    /// message.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for other message types; for the quoted header,
    /// [`Error::Truncated`] (fewer than 20 bytes, or fewer than its IHL says),
    /// [`Error::BadVersion`] and [`Error::BadHeaderLen`] (IHL below 5).
    pub fn original(&self) -> Result<Original, Error> {
        if !self.msg_type().is_error() {
            return Err(Error::Unsupported);
        }
        let quoted = &self.buffer.as_ref()[field::DATA];
        if quoted.len() < ipv4::HEADER_LEN {
            return Err(Error::Truncated);
        }
        // The quoted header's total length describes the original datagram, not the quote,
        // so `Ipv4Packet::check_len` does not apply; only fields inside the first 20 bytes
        // (and the IHL) are read here.
        let header = Ipv4Packet::new_unchecked(quoted);
        if header.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = header.header_len();
        if header_len < ipv4::HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        let Some(l4) = quoted.get(header_len..) else {
            return Err(Error::Truncated);
        };
        let protocol = header.protocol();
        let ports = match (protocol, l4, header.frag_offset()) {
            (IpProtocol::Tcp | IpProtocol::Udp, [a, b, c, d, ..], 0) => {
                Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
            }
            _ => None,
        };
        Ok(Original {
            ip_offset: HEADER_LEN,
            header_len,
            total_len: header.total_len(),
            protocol,
            src_addr: header.src_addr(),
            dst_addr: header.dst_addr(),
            ports,
            l4_len: l4.len(),
        })
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// Everything after the 8-byte header: echo data, or the quoted original datagram.
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO, value);
    }

    /// Sets the next-hop MTU and clears the unused half-word before it.
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::UNUSED, 0);
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, value);
    }

    /// Clears the four bytes after the checksum (unused in time-exceeded messages).
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::REST_OF_HEADER].fill(0);
    }

    /// Computes the checksum over the whole message and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }

    /// Everything after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// An ICMPv4 message as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Why.
        reason: DstUnreachable,
        /// Next-hop MTU; 0 unless `reason` is [`DstUnreachable::FragNeeded`].
        next_hop_mtu: u16,
        /// The quoted original datagram: IPv4 header and at least 8 bytes of payload.
        original: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Why.
        reason: TimeExceeded,
        /// The quoted original datagram: IPv4 header and at least 8 bytes of payload.
        original: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message, checking its length and checksum.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::BadChecksum`], and [`Error::Unsupported`] for a type
    /// not listed in [`Icmpv4Repr`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = packet.data();
        Ok(match packet.msg_type() {
            Icmpv4Message::EchoRequest => {
                Icmpv4Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::EchoReply => {
                Icmpv4Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::DstUnreachable => {
                let reason = DstUnreachable::from(packet.msg_code());
                let next_hop_mtu = if reason == DstUnreachable::FragNeeded { packet.next_hop_mtu() } else { 0 };
                Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, original: data }
            }
            Icmpv4Message::TimeExceeded => {
                Icmpv4Repr::TimeExceeded { reason: TimeExceeded::from(packet.msg_code()), original: data }
            }
            Icmpv4Message::Unknown(_) => return Err(Error::Unsupported),
        })
    }

    /// Length of the emitted message.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data.len(),
                Icmpv4Repr::DstUnreachable { original, .. } | Icmpv4Repr::TimeExceeded { original, .. } => {
                    original.len()
                }
            }
    }

    /// Writes the message with its checksum. The packet's buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) long, since the checksum covers all of it.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let data = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } | Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                let kind = match self {
                    Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
                    _ => Icmpv4Message::EchoReply,
                };
                packet.set_msg_type(kind);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, original } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_next_hop_mtu(next_hop_mtu);
                original
            }
            Icmpv4Repr::TimeExceeded { reason, original } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.clear_rest_of_header();
                original
            }
        };
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping -c1 -p 6162636465666768 -s 8`: echo request, ident 0x1234, seq 1.
    #[rustfmt::skip]
    static ECHO_BYTES: [u8; 16] = [
        // type 8 (echo request), code 0, checksum 0x5435
        0x08, 0x00, 0x54, 0x35,
        // ident 0x1234, seq 1
        0x12, 0x34, 0x00, 0x01,
        // data "abcdefgh"
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    /// A router's "fragmentation needed, MTU 1400" for a 1500-byte TCP segment from
    /// 10.0.0.100:80 to 192.168.1.10:54321 with DF set.
    #[rustfmt::skip]
    static FRAG_NEEDED_BYTES: [u8; 36] = [
        // type 3 (destination unreachable), code 4 (fragmentation needed), checksum 0xde9b
        0x03, 0x04, 0xde, 0x9b,
        // unused, next-hop MTU 1400
        0x00, 0x00, 0x05, 0x78,
        // original IPv4 header: IHL 5, total length 1500, ident 0x7777, DF, TTL 64, TCP,
        // checksum 0xf18e, 10.0.0.100 -> 192.168.1.10
        0x45, 0x00, 0x05, 0xdc, 0x77, 0x77, 0x40, 0x00,
        0x40, 0x06, 0xf1, 0x8e, 0x0a, 0x00, 0x00, 0x64,
        0xc0, 0xa8, 0x01, 0x0a,
        // first 8 bytes of the original TCP header: ports 80 -> 54321, seq 0x11223344
        0x00, 0x50, 0xd4, 0x31, 0x11, 0x22, 0x33, 0x44,
    ];

    #[test]
    fn deconstruct_echo() {
        let packet = Icmpv4Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x5435);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcdefgh");
        assert!(packet.verify_checksum());
        assert_eq!(packet.original(), Err(Error::Unsupported));
    }

    #[test]
    fn echo_parse_and_emit() {
        let repr = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: b"abcdefgh" };
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&ECHO_BYTES[..])), Ok(repr));
        let mut bytes = [0xa5u8; 16];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, ECHO_BYTES);
    }

    #[test]
    fn deconstruct_frag_needed() {
        let packet = Icmpv4Packet::new_checked(&FRAG_NEEDED_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Icmpv4Message::DstUnreachable);
        assert_eq!(DstUnreachable::from(packet.msg_code()), DstUnreachable::FragNeeded);
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert!(packet.verify_checksum());
        let original = packet.original().unwrap();
        assert_eq!(
            original,
            Original {
                ip_offset: 8,
                header_len: 20,
                total_len: 1500,
                protocol: IpProtocol::Tcp,
                src_addr: Ipv4Addr::new(10, 0, 0, 100),
                dst_addr: Ipv4Addr::new(192, 168, 1, 10),
                ports: Some((80, 54321)),
                l4_len: 8,
            }
        );
        // The quoted header is a real header: its checksum verifies.
        assert!(Ipv4Packet::new_unchecked(&packet.data()[..20]).verify_checksum());
    }

    #[test]
    fn frag_needed_parse_and_emit() {
        let repr = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragNeeded,
            next_hop_mtu: 1400,
            original: &FRAG_NEEDED_BYTES[8..],
        };
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&FRAG_NEEDED_BYTES[..])), Ok(repr));
        let mut bytes = [0xa5u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, FRAG_NEEDED_BYTES);
    }

    #[test]
    fn time_exceeded_round_trip() {
        let repr = Icmpv4Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, original: &FRAG_NEEDED_BYTES[8..] };
        let mut bytes = [0xa5u8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..8], &[11, 0, bytes[2], bytes[3], 0, 0, 0, 0]);
        let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&packet), Ok(repr));
        assert_eq!(packet.original().map(|o| o.ports), Ok(Some((80, 54321))));
    }

    #[test]
    fn malformed() {
        let mut bytes = ECHO_BYTES;
        bytes[9] ^= 1;
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&bytes[..])), Err(Error::BadChecksum));

        let mut bytes = ECHO_BYTES;
        bytes[0] = 13; // timestamp request
        let mut packet = Icmpv4Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&bytes[..])), Err(Error::Unsupported));

        // (description, patches, expected error of `original`)
        #[rustfmt::skip]
        let cases: &[(&str, crate::Patches, Error)] = &[
            ("quoted version 6", &[(8, 0x65)], Error::BadVersion),
            ("quoted IHL 4",     &[(8, 0x44)], Error::BadHeaderLen),
            ("quoted IHL 8",     &[(8, 0x48)], Error::Truncated),
        ];
        for (what, patches, expected) in cases {
            let mut bytes = FRAG_NEEDED_BYTES;
            for &(at, value) in *patches {
                bytes[at] = value;
            }
            assert_eq!(Icmpv4Packet::new_checked(&bytes[..]).unwrap().original(), Err(*expected), "{what}");
        }
    }

    #[test]
    fn every_prefix() {
        for fixture in [&ECHO_BYTES[..], &FRAG_NEEDED_BYTES[..]] {
            for len in 0..=fixture.len() {
                let prefix = &fixture[..len];
                match Icmpv4Packet::new_checked(prefix) {
                    Ok(packet) => {
                        assert_eq!(packet.verify_checksum(), len == fixture.len());
                        let _ = packet.data();
                        if let Ok(original) = packet.original() {
                            assert!(len >= 28);
                            assert_eq!(original.ports.is_some(), len >= 32);
                        }
                    }
                    Err(e) => assert_eq!((e, len < HEADER_LEN), (Error::Truncated, true)),
                }
            }
        }
    }
}
