//! ICMPv6 messages (RFC 4443) and neighbour discovery's solicitation and advertisement
//! (RFC 4861).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |     type      |     code      |           checksum            |  0
//! +---------------+---------------+-------------------------------+
//! |   echo: identifier, sequence number; packet too big: MTU;     |  4
//! |   neighbour advertisement: flags (R, S, O), then reserved      |
//! +---------------------------------------------------------------+
//! |   errors: as much of the original packet as fits in 1280;      |  8
//! |   neighbour discovery: the target address (16 bytes), options  |
//! ```
//!
//! The checksum covers the IPv6 pseudo-header ([`crate::checksum::pseudo_header_v6`]), so
//! the checksum routines take the packet's addresses. A message is the whole IPv6 upper
//! layer: the view's buffer ends where the IPv6 payload does.
//!
//! # Panics
//!
//! After [`Icmpv6Packet::new_checked`] (or [`Icmpv6Packet::check_len`]) succeeds, no
//! accessor, setter or checksum routine panics. [`Icmpv6Repr::emit`] panics on a buffer
//! shorter than [`Icmpv6Repr::buffer_len`].

use core::net::Ipv6Addr;

use crate::checksum::{self, Family};
use crate::ethernet::EthernetAddress;
use crate::ipv4::IpProtocol;
use crate::{read_u16, read_u32, write_u16, write_u32, Error};

wire_enum! {
    /// The type of an ICMPv6 message.
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big (path MTU discovery).
        PacketTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbour solicitation.
        NeighborSolicit = 135,
        /// Neighbour advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
    }
}

impl Icmpv6Message {
    /// Whether the message is an error (types below 128), which quotes a packet.
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

wire_enum! {
    /// Codes of a destination unreachable message.
    pub enum DstUnreachable(u8) {
        /// No route to destination.
        NoRoute = 0,
        /// Communication administratively prohibited.
        AdminProhibited = 1,
        /// Address unreachable.
        AddrUnreachable = 3,
        /// Port unreachable.
        PortUnreachable = 4,
    }
}

wire_enum! {
    /// Codes of a time exceeded message.
    pub enum TimeExceeded(u8) {
        /// Hop limit exceeded in transit.
        HopLimitExceeded = 0,
        /// Fragment reassembly time exceeded.
        FragReassemblyExceeded = 1,
    }
}

mod field {
    use crate::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ_NO: Field = 6..8;
    pub const MTU: Field = 4..8;
    pub const REST_OF_HEADER: Field = 4..8;
    pub const NA_FLAGS: usize = 4;
    pub const DATA: Rest = 8..;
    pub const TARGET: Field = 8..24;
    pub const NDP_OPTIONS: Rest = 24..;
}

/// Length of the ICMPv6 header: type, code, checksum and the 4 bytes after them.
pub const HEADER_LEN: usize = field::DATA.start;

/// Length of a neighbour solicitation or advertisement without options.
pub const NDP_LEN: usize = field::NDP_OPTIONS.start;

/// The most of the original packet an error quotes: an error must fit in the minimum IPv6
/// MTU, 1280 bytes (RFC 4443 section 2.4 (c)), with its own IPv6 and ICMPv6 headers.
pub const MAX_QUOTE_LEN: usize = 1280 - crate::ipv6::HEADER_LEN - HEADER_LEN;

/// Neighbour advertisement flags.
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

/// Neighbour discovery option types (RFC 4861 section 4.6).
pub mod ndp_option {
    /// Source link-layer address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LLADDR: u8 = 2;
    /// Length of a link-layer address option for Ethernet: type, length, 6 bytes.
    pub const LLADDR_LEN: usize = 8;
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header is there: 8 bytes, 24 for a neighbour solicitation or
    /// advertisement (its target address).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`].
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let ndp = matches!(self.msg_type(), Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert);
        if ndp && len < NDP_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// The MTU of a packet too big message.
    pub fn mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::MTU)
    }

    /// Neighbour advertisement: sent by a router.
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & NA_ROUTER != 0
    }

    /// Neighbour advertisement: an answer to a solicitation.
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & NA_SOLICITED != 0
    }

    /// Neighbour advertisement: replaces a cached link-layer address.
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & NA_OVERRIDE != 0
    }

    /// The target address of a neighbour solicitation or advertisement.
    ///
    /// # Panics
    /// On a message of another type shorter than 24 bytes (`new_checked` ensures 24 bytes
    /// only for neighbour discovery).
    pub fn target_addr(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(octets)
    }

    /// The link-layer address in the first neighbour discovery option of type `kind`
    /// ([`ndp_option::SOURCE_LLADDR`] or [`ndp_option::TARGET_LLADDR`]), if any; for a
    /// neighbour solicitation or advertisement. The options are walked whole.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for an option that runs past the message; [`Error::Unsupported`]
    /// for an option of length 0 (RFC 4861 section 4.6: the message is discarded) or a
    /// link-layer address option of another length than Ethernet's.
    pub fn lladdr_option(&self, kind: u8) -> Result<Option<EthernetAddress>, Error> {
        let data = self.buffer.as_ref();
        let mut at = NDP_LEN.min(data.len());
        let mut found = None;
        while at < data.len() {
            let (Some(&t), Some(&units)) = (data.get(at), data.get(at + 1)) else { return Err(Error::Truncated) };
            let len = usize::from(units) * 8;
            if len == 0 {
                return Err(Error::Unsupported);
            }
            let option = data.get(at..at + len).ok_or(Error::Truncated)?;
            if t == kind && found.is_none() {
                if len != ndp_option::LLADDR_LEN {
                    return Err(Error::Unsupported);
                }
                found = Some(EthernetAddress::from_bytes(&option[2..8]));
            }
            at += len;
        }
        Ok(found)
    }

    /// Whether the checksum verifies with the pseudo-header of `src` and `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.message_sum(src, dst) == 0xffff
    }

    fn message_sum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        checksum::combine(&[Ipv6Addr::pseudo_header(src, dst, IpProtocol::Icmpv6, len), checksum::sum(data)])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv6Packet<&'a T> {
    /// Everything after the 8-byte header: echo data, a quoted packet, or a neighbour
    /// discovery message's target and options.
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Icmpv6Message) {
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

    /// Sets the MTU of a packet too big message.
    pub fn set_mtu(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::MTU, value);
    }

    /// Zeroes the 4 bytes after the checksum (flags, reserved, unused).
    pub fn clear_rest_of_header(&mut self) {
        write_u32(self.buffer.as_mut(), field::REST_OF_HEADER, 0);
    }

    /// Sets a neighbour advertisement's flags (the rest of its first word is zeroed).
    pub fn set_na_flags(&mut self, router: bool, solicited: bool, override_: bool) {
        let flags = (if router { NA_ROUTER } else { 0 })
            | (if solicited { NA_SOLICITED } else { 0 })
            | (if override_ { NA_OVERRIDE } else { 0 });
        write_u32(self.buffer.as_mut(), field::REST_OF_HEADER, u32::from(flags) << 24);
    }

    /// Sets the target address of a neighbour solicitation or advertisement.
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&value.octets());
    }

    /// Computes the checksum with the pseudo-header of `src` and `dst` and stores it.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let csum = checksum::finish(self.message_sum(src, dst));
        self.set_checksum(csum);
    }

    /// Everything after the 8-byte header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// An ICMPv6 message as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
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
        /// The quoted original packet.
        original: &'a [u8],
    },
    /// Packet too big.
    PacketTooBig {
        /// The MTU of the next hop.
        mtu: u32,
        /// The quoted original packet.
        original: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Why.
        reason: TimeExceeded,
        /// The quoted original packet.
        original: &'a [u8],
    },
    /// Neighbour solicitation.
    NeighborSolicit {
        /// The address whose link-layer address is asked for.
        target: Ipv6Addr,
        /// The sender's link-layer address (absent when the source is unspecified: duplicate
        /// address detection).
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbour advertisement.
    NeighborAdvert {
        /// Sent by a router.
        router: bool,
        /// An answer to a solicitation.
        solicited: bool,
        /// Replaces a cached link-layer address.
        override_: bool,
        /// The address advertised.
        target: Ipv6Addr,
        /// Its link-layer address.
        lladdr: Option<EthernetAddress>,
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message sent from `src` to `dst`, checking its length and checksum.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::BadChecksum`], as [`Icmpv6Packet::lladdr_option`] for
    /// neighbour discovery, and [`Error::Unsupported`] for a type not listed in
    /// [`Icmpv6Repr`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let data = packet.data();
        Ok(match packet.msg_type() {
            Icmpv6Message::EchoRequest => {
                Icmpv6Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv6Message::EchoReply => {
                Icmpv6Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv6Message::DstUnreachable => {
                Icmpv6Repr::DstUnreachable { reason: DstUnreachable::from(packet.msg_code()), original: data }
            }
            Icmpv6Message::PacketTooBig => Icmpv6Repr::PacketTooBig { mtu: packet.mtu(), original: data },
            Icmpv6Message::TimeExceeded => {
                Icmpv6Repr::TimeExceeded { reason: TimeExceeded::from(packet.msg_code()), original: data }
            }
            Icmpv6Message::NeighborSolicit => Icmpv6Repr::NeighborSolicit {
                target: packet.target_addr(),
                lladdr: packet.lladdr_option(ndp_option::SOURCE_LLADDR)?,
            },
            Icmpv6Message::NeighborAdvert => Icmpv6Repr::NeighborAdvert {
                router: packet.router_flag(),
                solicited: packet.solicited_flag(),
                override_: packet.override_flag(),
                target: packet.target_addr(),
                lladdr: packet.lladdr_option(ndp_option::TARGET_LLADDR)?,
            },
            _ => return Err(Error::Unsupported),
        })
    }

    /// Length of the emitted message.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::DstUnreachable { original, .. }
            | Icmpv6Repr::PacketTooBig { original, .. }
            | Icmpv6Repr::TimeExceeded { original, .. } => HEADER_LEN + original.len(),
            Icmpv6Repr::NeighborSolicit { lladdr, .. } | Icmpv6Repr::NeighborAdvert { lladdr, .. } => {
                NDP_LEN + if lladdr.is_some() { ndp_option::LLADDR_LEN } else { 0 }
            }
        }
    }

    /// Writes the message with its checksum for `src` and `dst`. The packet's buffer must be
    /// exactly [`buffer_len`](Self::buffer_len) long, since the checksum covers all of it.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>, src: Ipv6Addr, dst: Ipv6Addr) {
        match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, data } | Icmpv6Repr::EchoReply { ident, seq_no, data } => {
                let kind = match self {
                    Icmpv6Repr::EchoRequest { .. } => Icmpv6Message::EchoRequest,
                    _ => Icmpv6Message::EchoReply,
                };
                packet.set_msg_type(kind);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Icmpv6Repr::DstUnreachable { reason, original } => {
                packet.set_msg_type(Icmpv6Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.clear_rest_of_header();
                packet.data_mut()[..original.len()].copy_from_slice(original);
            }
            Icmpv6Repr::PacketTooBig { mtu, original } => {
                packet.set_msg_type(Icmpv6Message::PacketTooBig);
                packet.set_msg_code(0);
                packet.set_mtu(mtu);
                packet.data_mut()[..original.len()].copy_from_slice(original);
            }
            Icmpv6Repr::TimeExceeded { reason, original } => {
                packet.set_msg_type(Icmpv6Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.clear_rest_of_header();
                packet.data_mut()[..original.len()].copy_from_slice(original);
            }
            Icmpv6Repr::NeighborSolicit { target, lladdr } => {
                packet.set_msg_type(Icmpv6Message::NeighborSolicit);
                packet.set_msg_code(0);
                packet.clear_rest_of_header();
                packet.set_target_addr(target);
                emit_lladdr(packet, ndp_option::SOURCE_LLADDR, lladdr);
            }
            Icmpv6Repr::NeighborAdvert { router, solicited, override_, target, lladdr } => {
                packet.set_msg_type(Icmpv6Message::NeighborAdvert);
                packet.set_msg_code(0);
                packet.set_na_flags(router, solicited, override_);
                packet.set_target_addr(target);
                emit_lladdr(packet, ndp_option::TARGET_LLADDR, lladdr);
            }
        }
        packet.fill_checksum(src, dst);
    }
}

fn emit_lladdr<T: AsRef<[u8]> + AsMut<[u8]>>(packet: &mut Icmpv6Packet<T>, kind: u8, lladdr: Option<EthernetAddress>) {
    if let Some(mac) = lladdr {
        let option = &mut packet.buffer.as_mut()[NDP_LEN..NDP_LEN + ndp_option::LLADDR_LEN];
        option[0] = kind;
        option[1] = 1;
        option[2..].copy_from_slice(mac.as_bytes());
    }
}

#[cfg(test)]
mod tests;
