//! The data path's classifier: one pass over a received frame that validates the Ethernet,
//! VLAN, IPv4 or IPv6 and TCP/UDP/ICMP headers and returns their offsets and the fields an L4
//! load balancer looks at, without copying the frame.
//!
//! What [`classify_with`] checks, in order (the first failure is the error):
//!
//! 1. Ethernet header and up to two VLAN tags (`0x8100` / `0x88a8`): [`Error::Truncated`],
//!    [`Error::Unsupported`] for a third tag. A frame that is neither IPv4 nor IPv6 (ARP,
//!    ...) stops here with [`Parsed::net`] = [`Network::None`].
//! 2. IPv4 as [`Ipv4Packet::new_checked`]: [`Error::Truncated`], [`Error::BadVersion`],
//!    [`Error::BadHeaderLen`], [`Error::BadTotalLen`]; then the header checksum if
//!    [`Checks::ipv4`] ([`Error::BadChecksum`]). Bytes after the total length (Ethernet
//!    padding) are ignored.
//! 3. In the IP payload, unless the packet is a non-first fragment ([`L4::Fragment`]):
//!    - TCP as [`TcpPacket::new_checked`]: [`Error::Truncated`], [`Error::BadTcpOffset`]
//!      (options are not parsed here);
//!    - UDP as [`UdpPacket::new_checked`]: [`Error::Truncated`], [`Error::BadUdpLen`]; in a
//!      first fragment only the 8-byte header must be there, since the length covers the
//!      whole datagram;
//!    - ICMP: [`Error::Truncated`] under 8 bytes;
//!    - then the TCP/UDP/ICMP checksum if [`Checks::l4`] and the packet is not a fragment
//!      ([`Error::BadChecksum`]; a UDP checksum of 0 means none and passes).
//! 4. IPv6 as [`Ipv6Packet::new_checked`]: [`Error::Truncated`], [`Error::BadVersion`],
//!    [`Error::BadPayloadLen`]; its extension headers walked to the upper layer
//!    ([`Ipv6Packet::upper_layer`]: [`Error::BadExtHeader`]); then TCP, UDP and ICMPv6 as in
//!    3 (over IPv6 a UDP checksum of 0 fails where checksums are verified); a packet with an
//!    IPv4-mapped source or destination, a multicast source, or TCP or UDP from the
//!    unspecified address is [`Error::Unsupported`]. The addresses stay in the
//!    frame: [`Ipv6Info`] keeps the offsets, and the data path reads them there.
//!
//! # Panics
//!
//! Never, whatever the bytes (a property test feeds it arbitrary and mutated frames).

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::Family;
use crate::ethernet::{self, EtherType, VlanTci, MAX_VLAN_TAGS};
use crate::icmpv4::{Icmpv4Message, Icmpv4Packet};
use crate::icmpv6::{Icmpv6Message, Icmpv6Packet};
use crate::ipv4::{IpProtocol, Ipv4Packet};
use crate::ipv6::Ipv6Packet;
use crate::tcp::{TcpFlags, TcpPacket};
use crate::udp::{self, UdpPacket};
use crate::Error;

/// Which checksums [`classify_with`] verifies. NICs usually verify them already (DPDK's
/// `RTE_MBUF_F_RX_*_CKSUM_GOOD` flags), so the data path asks only for what the NIC did not
/// do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Checks {
    /// Verify the IPv4 header checksum.
    pub ipv4: bool,
    /// Verify the TCP, UDP or ICMP checksum (never for fragments).
    pub l4: bool,
}

impl Checks {
    /// Verify nothing.
    pub const NONE: Checks = Checks { ipv4: false, l4: false };
    /// Verify every checksum.
    pub const ALL: Checks = Checks { ipv4: true, l4: true };
}

/// What a frame is, as far as the load balancer cares. Small and `Copy`; offsets count from
/// the start of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Parsed {
    /// The type after all VLAN tags.
    pub ethertype: EtherType,
    /// Offset of the layer-3 header: 14, 18 or 22.
    pub l3_offset: u16,
    /// Number of VLAN tags (0, 1 or 2).
    pub vlan_count: u8,
    /// VLAN tag control words, outermost first; entries past `vlan_count` are zero.
    pub vlan_tci: [VlanTci; MAX_VLAN_TAGS],
    /// The network layer's part.
    pub net: Network,
}

/// The network layer of a classified frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Neither IPv4 nor IPv6.
    None,
    /// IPv4.
    V4(Ipv4Info),
    /// IPv6.
    V6(Ipv6Info),
}

impl Parsed {
    /// Nothing parsed: a start for [`classify_into`].
    pub const EMPTY: Parsed = Parsed {
        ethertype: EtherType::Unknown(0),
        l3_offset: 0,
        vlan_count: 0,
        vlan_tci: [VlanTci(0); MAX_VLAN_TAGS],
        net: Network::None,
    };

    /// The IPv4 part, when the frame is IPv4.
    #[inline]
    pub const fn ipv4(&self) -> Option<&Ipv4Info> {
        match &self.net {
            Network::V4(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv6 part, when the frame is IPv6.
    #[inline]
    pub const fn ipv6(&self) -> Option<&Ipv6Info> {
        match &self.net {
            Network::V6(ip) => Some(ip),
            _ => None,
        }
    }
}

// Small enough to keep one per packet of a burst on the stack.
const _: () = assert!(core::mem::size_of::<Parsed>() <= 40);

/// The IPv4 header and the transport fields of a classified frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Info {
    /// IPv4 header length, options included (20 to 60).
    pub header_len: u8,
    /// IPv4 total length; the packet ends at `l3_offset + total_len`.
    pub total_len: u16,
    /// Offset of the transport header (`l3_offset + header_len`).
    pub l4_offset: u16,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Type-of-service byte.
    pub tos: u8,
    /// Whether the packet is a fragment (more fragments, or a non-zero offset).
    pub is_fragment: bool,
    /// The transport header's fields.
    pub l4: L4,
}

impl Ipv4Info {
    /// `(source, destination)` ports of TCP or UDP.
    pub const fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp { src_port, dst_port, .. } | L4::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }

    /// TCP flags; empty for anything but TCP.
    pub const fn tcp_flags(&self) -> TcpFlags {
        match self.l4 {
            L4::Tcp { flags, .. } => flags,
            _ => TcpFlags::empty(),
        }
    }

    /// Length of the IP payload (transport header and data).
    pub const fn l4_len(&self) -> u16 {
        // `header_len <= total_len` was checked.
        self.total_len - self.header_len as u16
    }
}

/// The IPv6 header and the transport fields of a classified frame. The addresses are not
/// copied: they are at `l3_offset + 8` and `l3_offset + 24` of the frame ([`Ipv6Info::addrs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Info {
    /// IPv6 payload length; the packet ends at `l3_offset + 40 + payload_len`.
    pub payload_len: u16,
    /// Offset of the transport header, after the extension headers.
    pub l4_offset: u16,
    /// The upper-layer protocol.
    pub protocol: IpProtocol,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Whether the packet is a fragment (a fragment header with more fragments, or a
    /// non-zero offset).
    pub is_fragment: bool,
    /// The transport header's fields.
    pub l4: L4,
}

impl Ipv6Info {
    /// `(source, destination)` read from `frame`, whose IPv6 header is at `l3_offset` (the
    /// frame this was classified from).
    ///
    /// # Panics
    /// When `frame` is shorter than `l3_offset + 40`, which a classified frame is not.
    #[inline]
    pub fn addrs(frame: &[u8], l3_offset: u16) -> (Ipv6Addr, Ipv6Addr) {
        let ip = Ipv6Packet::new_unchecked(&frame[usize::from(l3_offset)..]);
        (ip.src_addr(), ip.dst_addr())
    }

    /// `(source, destination)` ports of TCP or UDP.
    pub const fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp { src_port, dst_port, .. } | L4::Udp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }

    /// Length of the upper layer (transport header and data).
    pub const fn l4_len(&self, l3_offset: u16) -> u16 {
        // The upper layer starts inside the payload (checked).
        l3_offset + crate::ipv6::HEADER_LEN as u16 + self.payload_len - self.l4_offset
    }
}

/// The transport header's fields, by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flags.
        flags: TcpFlags,
        /// TCP header length, options included (20 to 60).
        header_len: u8,
    },
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP.
    Icmp {
        /// Message type.
        msg_type: Icmpv4Message,
        /// Message code.
        code: u8,
    },
    /// ICMPv6.
    Icmpv6 {
        /// Message type.
        msg_type: Icmpv6Message,
        /// Message code.
        code: u8,
    },
    /// A fragment other than the first: no transport header.
    Fragment,
    /// Another protocol (IP-in-IP, GRE, ...), not looked into.
    Other,
}

/// [`classify_with`] without checksum verification: the data path's default.
///
/// # Errors
///
/// See [`classify_with`].
#[inline]
pub fn classify(frame: &[u8]) -> Result<Parsed, Error> {
    classify_with(frame, Checks::NONE)
}

/// Validates a frame's headers and returns their offsets and fields; see the module
/// documentation for what is checked, in which order.
///
/// # Errors
///
/// The first malformed class found; [`Error::BadChecksum`] only where `checks` asks.
#[inline]
pub fn classify_with(frame: &[u8], checks: Checks) -> Result<Parsed, Error> {
    let mut parsed = Parsed::EMPTY;
    classify_into(frame, checks, &mut parsed)?;
    Ok(parsed)
}

/// [`classify_with`] into `out`, field by field: for a caller that keeps the result in place
/// (the data path classifies a burst into an array). A `Parsed` built on the stack and
/// copied there would be read back in wide loads right after its fields' narrow stores, which
/// the CPU cannot forward (measured: about 13 ns a packet in the pipeline benchmark).
///
/// # Errors
///
/// As [`classify_with`]; `out` then holds part of the frame's fields.
#[inline]
pub fn classify_into(frame: &[u8], checks: Checks, out: &mut Parsed) -> Result<(), Error> {
    let l2 = ethernet::vlan_info(frame)?;
    out.ethertype = l2.ethertype;
    // At most 14 + 2 x 4.
    out.l3_offset = l2.l3_offset as u16;
    out.vlan_count = l2.vlan_count;
    out.vlan_tci = l2.vlan_tci;
    out.net = Network::None;
    match l2.ethertype {
        EtherType::Ipv4 => {
            let l3 = frame.get(l2.l3_offset..).ok_or(Error::Truncated)?;
            out.net = Network::V4(classify_ipv4(l3, out.l3_offset, checks)?);
        }
        EtherType::Ipv6 => {
            let l3 = frame.get(l2.l3_offset..).ok_or(Error::Truncated)?;
            out.net = Network::V6(classify_ipv6(l3, out.l3_offset, checks)?);
        }
        _ => {}
    }
    Ok(())
}

/// What a packet's upper layer is, for [`transport`].
#[derive(Clone, Copy)]
struct Upper<A> {
    /// `(source, destination)` of the pseudo-header.
    addrs: (A, A),
    /// Whether the packet is a fragment.
    is_fragment: bool,
    /// Whether its checksum is verified.
    verify: bool,
}

/// TCP and UDP of either family, in `payload` (the IP payload from the transport header);
/// `None` for another protocol.
#[inline]
fn transport<A: Family>(protocol: IpProtocol, payload: &[u8], up: Upper<A>) -> Result<Option<L4>, Error> {
    let (src, dst) = up.addrs;
    Ok(Some(match protocol {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload)?;
            if up.verify && !tcp.verify_checksum(src, dst) {
                return Err(Error::BadChecksum);
            }
            L4::Tcp {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                flags: tcp.flags(),
                // At most 60.
                header_len: tcp.header_len() as u8,
            }
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_unchecked(payload);
            if up.is_fragment {
                // A first fragment: the length covers the whole datagram, not this part.
                if payload.len() < udp::HEADER_LEN {
                    return Err(Error::Truncated);
                }
            } else {
                udp.check_len()?;
                if up.verify && !udp.verify_checksum(src, dst) {
                    return Err(Error::BadChecksum);
                }
            }
            L4::Udp { src_port: udp.src_port(), dst_port: udp.dst_port() }
        }
        _ => return Ok(None),
    }))
}

#[inline]
fn classify_ipv6(l3: &[u8], l3_offset: u16, checks: Checks) -> Result<Ipv6Info, Error> {
    let ip = Ipv6Packet::new_checked(l3)?;
    // An IPv4-mapped address never travels in an IPv6 header (RFC 4291 section 2.5.5.2; Linux
    // drops them): here it would alias the IPv4 address (tables keep IPv4 in that form).
    if ip.src_addr().to_ipv4_mapped().is_some() || ip.dst_addr().to_ipv4_mapped().is_some() {
        return Err(Error::Unsupported);
    }
    // Nor is a multicast source (RFC 4291 section 2.7).
    if ip.src_addr().is_multicast() {
        return Err(Error::Unsupported);
    }
    let upper = ip.upper_layer()?;
    let is_fragment = upper.is_fragment();
    let up = Upper { addrs: (ip.src_addr(), ip.dst_addr()), is_fragment, verify: checks.l4 && !is_fragment };
    // `upper_layer` keeps the offset inside the payload.
    let payload = &l3[upper.offset..crate::ipv6::HEADER_LEN + usize::from(ip.payload_len())];
    let l4 = if upper.is_later_fragment() {
        L4::Fragment
    } else if let Some(l4) = transport(upper.protocol, payload, up)? {
        // TCP and UDP come from an address (the unspecified one is for neighbour discovery).
        if up.addrs.0.is_unspecified() {
            return Err(Error::Unsupported);
        }
        l4
    } else if upper.protocol == IpProtocol::Icmpv6 {
        let icmp = Icmpv6Packet::new_checked(payload)?;
        if up.verify && !icmp.verify_checksum(up.addrs.0, up.addrs.1) {
            return Err(Error::BadChecksum);
        }
        L4::Icmpv6 { msg_type: icmp.msg_type(), code: icmp.msg_code() }
    } else {
        L4::Other
    };
    Ok(Ipv6Info {
        payload_len: ip.payload_len(),
        // At most 22 + 40 + 8 x 2048.
        l4_offset: l3_offset + upper.offset as u16,
        protocol: upper.protocol,
        hop_limit: ip.hop_limit(),
        traffic_class: ip.traffic_class(),
        is_fragment,
        l4,
    })
}

#[inline]
fn classify_ipv4(l3: &[u8], l3_offset: u16, checks: Checks) -> Result<Ipv4Info, Error> {
    let ip = Ipv4Packet::new_checked(l3)?;
    if checks.ipv4 && !ip.verify_checksum() {
        return Err(Error::BadChecksum);
    }
    let (src_addr, dst_addr) = (ip.src_addr(), ip.dst_addr());
    let is_fragment = ip.is_fragment();
    let up = Upper { addrs: (src_addr, dst_addr), is_fragment, verify: checks.l4 && !is_fragment };
    let payload = ip.payload();
    let protocol = ip.protocol();
    let l4 = if ip.frag_offset() != 0 {
        L4::Fragment
    } else if let Some(l4) = transport(protocol, payload, up)? {
        l4
    } else if protocol == IpProtocol::Icmp {
        let icmp = Icmpv4Packet::new_checked(payload)?;
        if up.verify && !icmp.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        L4::Icmp { msg_type: icmp.msg_type(), code: icmp.msg_code() }
    } else {
        L4::Other
    };
    // `new_checked` bounds the header at 60 and the total length at 65535.
    let header_len = ip.header_len() as u8;
    Ok(Ipv4Info {
        header_len,
        total_len: ip.total_len(),
        l4_offset: l3_offset + u16::from(header_len),
        protocol,
        src_addr,
        dst_addr,
        ttl: ip.ttl(),
        tos: ip.tos(),
        is_fragment,
        l4,
    })
}

#[cfg(test)]
mod tests;
