//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags.
//!
//! ```text
//!  0                   6                  12       14
//! +-------------------+-------------------+--------+---------
//! | destination       | source            | type   | payload
//! +-------------------+-------------------+--------+---------
//! ```
//!
//! A tagged frame carries `TPID (0x8100 or 0x88a8) | TCI` in place of the type, followed by
//! the real type; [`EthernetFrame::vlan_info`] walks at most two tags (QinQ).
//!
//! # Panics
//!
//! After [`EthernetFrame::new_checked`] (or [`EthernetFrame::check_len`]) succeeds, no
//! accessor or setter panics. [`EthernetRepr::emit`] panics on a buffer shorter than
//! [`HEADER_LEN`].

use core::fmt;

use crate::{read_u16, write_u16, Error};

wire_enum! {
    /// The EtherType field: what the payload is.
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// IPv6.
        Ipv6 = 0x86dd,
        /// An 802.1Q VLAN tag (C-tag) follows.
        Vlan = 0x8100,
        /// An 802.1ad service tag (S-tag, QinQ outer tag) follows.
        QinQ = 0x88a8,
    }
}

impl EtherType {
    /// Whether this type announces a VLAN tag (802.1Q or 802.1ad).
    pub fn is_vlan_tag(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address in a 6-byte slice.
    ///
    /// # Panics
    ///
    /// When `data` is not 6 bytes long.
    pub fn from_bytes(data: &[u8]) -> EthernetAddress {
        let mut bytes = [0; 6];
        bytes.copy_from_slice(data);
        EthernetAddress(bytes)
    }

    /// The six bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast, broadcast included).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is a unicast address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally-administered bit is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

mod field {
    use crate::{Field, Rest};

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;

    /// Inside a VLAN tag, counted from the tag's TPID (which sits where a type would).
    pub const TAG_TCI: Field = 2..4;
    /// The type after a tag, counted from the tag's TPID.
    pub const TAG_NEXT_TYPE: Field = 4..6;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Length of one VLAN tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// The most VLAN tags [`EthernetFrame::vlan_info`] walks.
pub const MAX_VLAN_TAGS: usize = 2;

/// An 802.1Q tag control information word: priority, drop eligibility, VLAN id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTci(pub u16);

impl VlanTci {
    /// VLAN identifier (12 bits).
    pub const fn vid(self) -> u16 {
        self.0 & 0x0fff
    }

    /// Priority code point (3 bits).
    pub const fn pcp(self) -> u8 {
        (self.0 >> 13) as u8
    }

    /// Drop eligible indicator.
    pub const fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }
}

/// Where the layer-3 header of a possibly tagged frame starts, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanInfo {
    /// The type after all VLAN tags.
    pub ethertype: EtherType,
    /// Offset of the layer-3 header from the start of the frame: 14, 18 or 22.
    pub l3_offset: usize,
    /// Number of VLAN tags walked (0, 1 or 2).
    pub vlan_count: u8,
    /// Tag control words, outermost first; entries past `vlan_count` are zero.
    pub vlan_tci: [VlanTci; MAX_VLAN_TAGS],
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when the buffer is shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, Error> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the untagged header, which every accessor needs.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when the buffer is shorter than [`HEADER_LEN`].
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

    /// Length of the untagged header.
    pub const fn header_len() -> usize {
        HEADER_LEN
    }

    /// Buffer length of an untagged frame with `payload_len` bytes of payload.
    pub const fn buffer_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The type field right after the addresses (a TPID for a tagged frame).
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Walks up to [`MAX_VLAN_TAGS`] VLAN tags (TPID `0x8100` or `0x88a8`, in any order) and
    /// says where the layer-3 header starts and what it is.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when a tag or the type after it is cut off, and
    /// [`Error::Unsupported`] for a third tag.
    pub fn vlan_info(&self) -> Result<VlanInfo, Error> {
        vlan_info(self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the untagged header (tags included, for a tagged frame).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the type field right after the addresses.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype.into());
    }

    /// Everything after the untagged header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// [`EthernetFrame::vlan_info`] over a bare slice: the data path calls this.
///
/// # Errors
///
/// [`Error::Truncated`] when the header, a tag or the type after it is cut off, and
/// [`Error::Unsupported`] for a third tag.
#[inline]
pub fn vlan_info(frame: &[u8]) -> Result<VlanInfo, Error> {
    if frame.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let mut info = VlanInfo {
        ethertype: EtherType::from(read_u16(frame, field::ETHERTYPE)),
        l3_offset: HEADER_LEN,
        vlan_count: 0,
        vlan_tci: [VlanTci(0); MAX_VLAN_TAGS],
    };
    // `tag` is the offset of the current TPID: where the type field would be.
    let mut tag = field::ETHERTYPE.start;
    while info.ethertype.is_vlan_tag() {
        if usize::from(info.vlan_count) == MAX_VLAN_TAGS {
            return Err(Error::Unsupported);
        }
        let next_type = tag + field::TAG_NEXT_TYPE.start..tag + field::TAG_NEXT_TYPE.end;
        if frame.len() < next_type.end {
            return Err(Error::Truncated);
        }
        let tci = tag + field::TAG_TCI.start..tag + field::TAG_TCI.end;
        info.vlan_tci[usize::from(info.vlan_count)] = VlanTci(read_u16(frame, tci));
        info.vlan_count += 1;
        info.ethertype = EtherType::from(read_u16(frame, next_type));
        tag += VLAN_TAG_LEN;
        info.l3_offset += VLAN_TAG_LEN;
    }
    Ok(info)
}

/// The untagged Ethernet header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// Type field.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> EthernetRepr {
        EthernetRepr { src_addr: frame.src_addr(), dst_addr: frame.dst_addr(), ethertype: frame.ethertype() }
    }

    /// Header length: [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    ///
    /// When the frame's buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    static FRAME_BYTES: [u8; 18] = [
        // Ethernet: dst 02:00:00:00:00:01, src 02:00:00:00:00:02, type IPv4
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x08, 0x00,
        // payload
        0xaa, 0xbb, 0xcc, 0xdd,
    ];

    #[rustfmt::skip]
    static QINQ_BYTES: [u8; 26] = [
        // Ethernet: dst, src
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
        // S-tag: TPID 0x88a8, PCP 5, VID 10
        0x88, 0xa8, 0xa0, 0x0a,
        // C-tag: TPID 0x8100, DEI, VID 100
        0x81, 0x00, 0x10, 0x64,
        // type IPv4
        0x08, 0x00,
        // payload
        0x45, 0x00, 0x00, 0x14,
    ];

    #[rustfmt::skip]
    static TRIPLE_TAG_BYTES: [u8; 28] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
        // three tags
        0x88, 0xa8, 0x00, 0x01,
        0x81, 0x00, 0x00, 0x02,
        0x81, 0x00, 0x00, 0x03,
        // type IPv4
        0x08, 0x00,
        0x45, 0x00,
    ];

    #[test]
    fn deconstruct() {
        let frame = EthernetFrame::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(frame.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let info = frame.vlan_info().unwrap();
        assert_eq!(info.l3_offset, 14);
        assert_eq!(info.vlan_count, 0);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 18];
        let mut frame = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        let repr = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EtherType::Ipv4,
        };
        repr.emit(&mut frame);
        frame.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, FRAME_BYTES);
        assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&bytes[..]).unwrap()), repr);
    }

    #[test]
    fn qinq() {
        let frame = EthernetFrame::new_checked(&QINQ_BYTES[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::QinQ);
        let info = frame.vlan_info().unwrap();
        assert_eq!(info.ethertype, EtherType::Ipv4);
        assert_eq!(info.l3_offset, 22);
        assert_eq!(info.vlan_count, 2);
        assert_eq!((info.vlan_tci[0].pcp(), info.vlan_tci[0].dei(), info.vlan_tci[0].vid()), (5, false, 10));
        assert_eq!((info.vlan_tci[1].pcp(), info.vlan_tci[1].dei(), info.vlan_tci[1].vid()), (0, true, 100));
    }

    #[test]
    fn three_tags_unsupported() {
        assert_eq!(vlan_info(&TRIPLE_TAG_BYTES), Err(Error::Unsupported));
    }

    #[test]
    fn every_prefix() {
        for fixture in [&FRAME_BYTES[..], &QINQ_BYTES[..], &TRIPLE_TAG_BYTES[..]] {
            for len in 0..=fixture.len() {
                let prefix = &fixture[..len];
                match EthernetFrame::new_checked(prefix) {
                    Ok(frame) => {
                        assert!(len >= HEADER_LEN);
                        let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype(), frame.payload());
                        if let Ok(info) = frame.vlan_info() {
                            assert!(info.l3_offset <= len);
                        }
                    }
                    Err(e) => assert_eq!((e, len < HEADER_LEN), (Error::Truncated, true)),
                }
            }
        }
        // A QinQ frame cut inside its second tag.
        assert_eq!(vlan_info(&QINQ_BYTES[..20]), Err(Error::Truncated));
        assert_eq!(vlan_info(&QINQ_BYTES[..22]).map(|i| i.l3_offset), Ok(22));
    }

    #[test]
    fn address_display() {
        assert_eq!(std::format!("{}", EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0xab, 0xff])), "02:00:5e:10:ab:ff");
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(EthernetAddress([2, 0, 0, 0, 0, 1]).is_unicast());
        assert!(EthernetAddress([2, 0, 0, 0, 0, 1]).is_local());
    }

    #[test]
    fn ethertype_round_trip() {
        for raw in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x1234] {
            assert_eq!(u16::from(EtherType::from(raw)), raw);
        }
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
    }
}
