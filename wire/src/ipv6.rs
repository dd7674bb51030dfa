//! IPv6 headers (RFC 8200) and the walk over their extension headers.
//!
//! ```text
//!  0               1               2               3
//! +-------+---------------+---------------------------------------+
//! |version| traffic class |              flow label               |  0
//! +-------+---------------+---------------+-----------------------+
//! |        payload length         |  next header  |   hop limit   |  4
//! +-------------------------------+---------------+---------------+
//! |                  source address (16 bytes)                    |  8
//! +---------------------------------------------------------------+
//! |                destination address (16 bytes)                 | 24
//! +---------------------------------------------------------------+
//! |           extension headers, then the upper layer             | 40
//! ```
//!
//! [`Ipv6Packet::new_checked`] establishes `40 + payload_len <= buffer.len()`. Bytes past
//! the payload length (Ethernet padding) are not part of [`Ipv6Packet::payload`]. Jumbograms
//! (payload length 0 with a jumbo payload option) are not supported: a payload length of 0
//! is an empty payload.
//!
//! [`Ipv6Packet::upper_layer`] walks the extension headers (hop-by-hop options first and
//! only first, routing, destination options, fragment) to the upper-layer header, at most
//! [`MAX_EXT_HEADERS`] of them, each inside the payload. Anything else (an ESP or AH
//! header, an unknown number, no next header) ends the walk as the upper layer.
//!
//! # Panics
//!
//! After [`Ipv6Packet::new_checked`] (or [`Ipv6Packet::check_len`]) succeeds, no accessor,
//! setter, payload slice or the walk panics. [`Ipv6Repr::emit`] panics on a buffer shorter
//! than [`HEADER_LEN`].

use core::net::Ipv6Addr;

use crate::ipv4::IpProtocol;
use crate::{read_u16, read_u32, write_u16, write_u32, Error};

mod field {
    use crate::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The most extension headers [`Ipv6Packet::upper_layer`] walks before it gives up with
/// [`Error::BadExtHeader`]: a legitimate packet has a handful (RFC 8200 section 4.1 lists
/// six kinds, each at most once or twice); a longer chain is an attack on the walk.
pub const MAX_EXT_HEADERS: usize = 8;

/// Length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// A fragment header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Offset of the fragment's data in the original packet's fragmentable part, in bytes.
    pub offset: u16,
    /// Whether more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper layer of an IPv6 packet starts, after its extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (the last next-header value of the chain).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if the packet has one.
    pub fragment: Option<Fragment>,
}

impl UpperLayer {
    /// Whether the packet is a fragment: it has a fragment header with more fragments to
    /// follow or a non-zero offset (an atomic fragment, RFC 6946, is not one).
    pub const fn is_fragment(&self) -> bool {
        match self.fragment {
            Some(f) => f.more || f.offset != 0,
            None => false,
        }
    }

    /// Whether the upper-layer header is not in this packet: a fragment other than the first.
    pub const fn is_later_fragment(&self) -> bool {
        match self.fragment {
            Some(f) => f.offset != 0,
            None => false,
        }
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after checking the version and [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// In this order: [`Error::Truncated`] for fewer than 40 bytes, [`Error::BadVersion`],
    /// then as [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks `40 + payload_len <= buffer.len()`, which every accessor needs.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for fewer than 40 bytes, [`Error::BadPayloadLen`] for a payload
    /// length past the end of the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::BadPayloadLen);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (6 for IPv6).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length: extension headers and upper layer, in bytes.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The first next-header value (an extension header or the upper layer).
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Walks the extension headers to the upper layer; see the module documentation.
    ///
    /// # Errors
    ///
    /// [`Error::BadExtHeader`]: a hop-by-hop header other than first, an extension header
    /// that runs past the payload, or more than [`MAX_EXT_HEADERS`] of them.
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        let data = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.payload_len());
        let mut protocol = self.next_header();
        let mut offset = HEADER_LEN;
        let mut fragment = None;
        for walked in 0..=MAX_EXT_HEADERS {
            let len = match protocol {
                IpProtocol::HopByHop if walked > 0 => return Err(Error::BadExtHeader),
                IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                    // Next header, then the length in 8-byte units past the first 8.
                    let len_byte = *data.get(offset + 1).filter(|_| offset + 2 <= end).ok_or(Error::BadExtHeader)?;
                    (usize::from(len_byte) + 1) * 8
                }
                IpProtocol::Ipv6Frag => FRAGMENT_HEADER_LEN,
                _ => return Ok(UpperLayer { protocol, offset, fragment }),
            };
            if walked == MAX_EXT_HEADERS || offset + len > end {
                return Err(Error::BadExtHeader);
            }
            let header = &data[offset..offset + len];
            if protocol == IpProtocol::Ipv6Frag {
                let off_flags = u16::from_be_bytes([header[2], header[3]]);
                let f = Fragment {
                    offset: off_flags & 0xfff8,
                    more: off_flags & 1 != 0,
                    ident: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
                };
                fragment = Some(f);
                if f.offset != 0 {
                    // The rest is the original packet's upper layer, from its middle.
                    return Ok(UpperLayer { protocol: IpProtocol::from(header[0]), offset: offset + len, fragment });
                }
            }
            protocol = IpProtocol::from(header[0]);
            offset += len;
        }
        Err(Error::BadExtHeader)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload: extension headers and upper layer, to the payload length (padding
    /// excluded).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version.
    pub fn set_version(&mut self, value: u8) {
        let byte = &mut self.buffer.as_mut()[0];
        *byte = (*byte & 0x0f) | (value << 4);
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, value: u8) {
        let raw = read_u32(self.buffer.as_ref(), field::VER_TC_FLOW);
        let raw = (raw & 0xf00f_ffff) | (u32::from(value) << 20);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, raw);
    }

    /// Sets the flow label; bits above the low 20 are dropped.
    pub fn set_flow_label(&mut self, value: u32) {
        let raw = read_u32(self.buffer.as_ref(), field::VER_TC_FLOW);
        let raw = (raw & 0xfff0_0000) | (value & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, raw);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Sets the first next-header value.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// The payload, writable: to the payload length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

fn addr(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    Ipv6Addr::from(octets)
}

/// The solicited-node multicast address of `addr` (RFC 4291 section 2.7.1): where neighbour
/// solicitations for it are sent, `ff02::1:ffXX:XXXX` with its low 24 bits.
pub const fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, ((o[14] as u16) << 8) | o[15] as u16)
}

/// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464 section 7):
/// `33:33` and its low 32 bits.
pub const fn multicast_mac(addr: Ipv6Addr) -> crate::EthernetAddress {
    let o = addr.octets();
    crate::EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// An IPv6 header as plain values, without extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header (the upper layer, when there are no extension headers).
    pub next_header: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// A plain header for `payload_len` bytes of `next_header` from `src` to `dst`: hop limit
    /// 64, traffic class and flow label 0 (what fixtures, benchmarks and generators send).
    pub const fn plain(src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, payload_len: usize) -> Ipv6Repr {
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header,
            payload_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    /// Parses a packet as [`Ipv6Packet::new_checked`] validates it.
    ///
    /// # Errors
    ///
    /// As [`Ipv6Packet::new_checked`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr, Error> {
        let packet = Ipv6Packet::new_checked(packet.buffer.as_ref())?;
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
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

    /// Writes the header (not the payload). A payload length over 65535 is stored modulo
    /// 2^16: the caller sizes packets.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        write_u32(packet.buffer.as_mut(), field::VER_TC_FLOW, 6 << 28);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
pub(crate) mod tests;
