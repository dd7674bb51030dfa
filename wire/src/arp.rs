//! ARP for Ethernet and IPv4 (RFC 826), the only kind the load balancer speaks.
//!
//! ```text
//!  0        2        4    5    6        8             14       18            24       28
//! +--------+--------+----+----+--------+-------------+--------+-------------+--------+
//! | htype  | ptype  |hlen|plen| oper   | sender MAC  | sender | target MAC  | target |
//! |  = 1   | 0x0800 | 6  | 4  |        |             | IPv4   |             | IPv4   |
//! +--------+--------+----+----+--------+-------------+--------+-------------+--------+
//! ```
//!
//! [`ArpPacket::new_checked`] rejects any other hardware or protocol type or address length
//! with [`Error::Unsupported`].
//!
//! # Panics
//!
//! After [`ArpPacket::new_checked`] (or [`ArpPacket::check_len`]) succeeds, no accessor or
//! setter panics. [`ArpRepr::emit`] panics on a buffer shorter than [`PACKET_LEN`].

use core::net::Ipv4Addr;

use crate::ethernet::{EtherType, EthernetAddress};
use crate::{read_u16, write_u16, Error};

wire_enum! {
    /// The ARP operation.
    pub enum ArpOperation(u16) {
        /// Who has the target protocol address?
        Request = 1,
        /// The sender has the sender protocol address.
        Reply = 2,
    }
}

mod field {
    use crate::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;
/// The hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len) and
    /// [`check_format`](Self::check_format).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a buffer shorter than [`PACKET_LEN`]; [`Error::Unsupported`]
    /// for anything but Ethernet/IPv4.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        packet.check_format()?;
        Ok(packet)
    }

    /// Checks that the buffer is long enough for every accessor.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for a buffer shorter than [`PACKET_LEN`].
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Checks hardware type 1, protocol type 0x0800 and address lengths 6 and 4. Call after
    /// [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when any of the four differs.
    pub fn check_format(&self) -> Result<(), Error> {
        if self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == EtherType::Ipv4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
        {
            Ok(())
        } else {
            Err(Error::Unsupported)
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type.
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PTYPE))
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::SPA])
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        addr(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::HTYPE, value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PTYPE, value.into());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, value.into());
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&value.0);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&value.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets());
    }
}

fn addr(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// An Ethernet/IPv4 ARP packet as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_hardware_addr: EthernetAddress,
    /// Sender protocol address.
    pub sender_protocol_addr: Ipv4Addr,
    /// Target hardware address.
    pub target_hardware_addr: EthernetAddress,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a packet, checking its length and format first.
    ///
    /// # Errors
    ///
    /// As [`ArpPacket::new_checked`].
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, Error> {
        packet.check_len()?;
        packet.check_format()?;
        Ok(ArpRepr {
            operation: packet.operation(),
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Length of the emitted packet: [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes every field.
    ///
    /// # Panics
    ///
    /// When the packet's buffer is shorter than [`PACKET_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.sender_hardware_addr);
        packet.set_sender_protocol_addr(self.sender_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Who has 10.0.0.1? Tell 10.0.0.2", as sent by Linux.
    #[rustfmt::skip]
    static PACKET_BYTES: [u8; 28] = [
        // htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4, oper 1 (request)
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        // sender MAC 02:00:00:00:00:02, sender IP 10.0.0.2
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02,
        // target MAC 00:00:00:00:00:00, target IP 10.0.0.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
    ];

    fn repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            sender_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn deconstruct() {
        let packet = ArpPacket::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), ArpOperation::Request);
        assert_eq!(packet.sender_hardware_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(packet.sender_protocol_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(packet.target_hardware_addr(), EthernetAddress([0; 6]));
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn parse_and_emit() {
        assert_eq!(ArpRepr::parse(&ArpPacket::new_unchecked(&PACKET_BYTES[..])), Ok(repr()));
        let mut bytes = [0xa5u8; 28];
        repr().emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn reply_and_unknown_operation() {
        let mut bytes = PACKET_BYTES;
        bytes[7] = 2;
        assert_eq!(ArpPacket::new_checked(&bytes[..]).unwrap().operation(), ArpOperation::Reply);
        bytes[7] = 9;
        assert_eq!(ArpPacket::new_checked(&bytes[..]).unwrap().operation(), ArpOperation::Unknown(9));
    }

    #[test]
    fn other_formats_rejected() {
        // (byte offset, new value): hardware type 6 (IEEE 802), protocol IPv6, hlen 8, plen 16.
        for (at, value) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut bytes = PACKET_BYTES;
            bytes[at] = value;
            assert_eq!(ArpPacket::new_checked(&bytes[..]).err(), Some(Error::Unsupported), "byte {at}");
            assert_eq!(ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..])), Err(Error::Unsupported));
        }
    }

    #[test]
    fn every_prefix() {
        for len in 0..=PACKET_BYTES.len() {
            let result = ArpRepr::parse(&ArpPacket::new_unchecked(&PACKET_BYTES[..len]));
            if len < PACKET_LEN {
                assert_eq!(result, Err(Error::Truncated));
            } else {
                assert_eq!(result, Ok(repr()));
            }
        }
    }
}
