//! Zero-copy packet views for the load balancer's data path.
//!
//! Every protocol module follows the same pattern:
//!
//! - a typed view `XPacket<T: AsRef<[u8]>>` over a borrowed (or owned) buffer, with one
//!   accessor per header field and, when `T: AsMut<[u8]>`, one setter per field. Byte offsets
//!   live as named ranges in a private `field` module of each file;
//! - `XPacket::new_checked` (or `check_len` on a view made with `new_unchecked`) for input from
//!   the wire: it validates every length the accessors rely on;
//! - a separate `XRepr` value that parses a checked view into plain fields and emits them
//!   back, for tests and the control path (the data path reads and rewrites views in place);
//! - protocol numbers as enums with an `Unknown(n)` arm, so every value round-trips.
//!
//! # Panics
//!
//! After `new_checked` (or `check_len`) has returned `Ok`, no accessor, setter, payload slice
//! or checksum routine of that view panics, whatever the bytes say. Accessors on a view made
//! with `new_unchecked` whose length was never checked may panic on a short buffer. `emit`
//! methods of the `Repr` types panic when the buffer is shorter than `buffer_len()`; they are
//! for the control path and tests, where the caller sizes the buffer.
//!
//! Nothing in this crate allocates, logs, or uses `unsafe`. Errors are one small `Copy` enum,
//! [`Error`], that names the malformed class so the data path can count it.
//!
//! The data path's entry point is [`classify`]: one pass over a frame that validates the
//! Ethernet, VLAN, IPv4 or IPv6 and TCP/UDP/ICMP headers and returns a [`Parsed`] summary of offsets
//! and fields.
//!
//! NAT rewrites use the incremental checksum helpers in [`checksum`] (RFC 1624): rewrite a
//! field through a view's setter and fold the old and new values into the stored checksum,
//! instead of summing the packet again.
//!
//! # Left out
//!
//! IPv6 options inside hop-by-hop and destination options headers (walked over, not read),
//! ICMPv6 types other than errors, echo and neighbour solicitation/advertisement, and
//! jumbograms; IPv4 option parsing (options are exposed as raw bytes); IP
//! reassembly and fragmentation; TCP SACK blocks and unknown options in [`TcpRepr`] (the
//! option iterator yields them); ICMP types other than echo, destination unreachable and time
//! exceeded in [`Icmpv4Repr`]; checksum offload flags (the caller decides what to verify
//! through [`Checks`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Declares a protocol-number enum with an `Unknown` arm, and lossless conversions from and
/// to the raw number. Reading a known value as `Unknown(n)` never happens: use `From` to build
/// values from raw numbers.
macro_rules! wire_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($raw:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value without a name here; carries the raw number.
            Unknown($raw),
        }

        impl From<$raw> for $name {
            fn from(raw: $raw) -> Self {
                match raw {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $raw {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nat;
pub mod nat64;
pub mod parse;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{vlan_info, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanInfo, VlanTci};
pub use icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use parse::{classify, classify_into, classify_with, Checks, Ipv4Info, Ipv6Info, Network, Parsed, L4};
pub use tcp::{TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr, TcpTimestamp, Toa};
pub use udp::{UdpPacket, UdpRepr};

/// Writes a whole untagged Ethernet and IPv4 frame around the transport segment `l4` into
/// `out`, which is `34 + l4.len()` bytes long, with the header of [`Ipv4Repr::plain`] (checksum
/// filled): for fixtures and benchmarks.
///
/// # Panics
/// When `out` has another length.
pub fn emit_ipv4_frame(
    out: &mut [u8],
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (core::net::Ipv4Addr, core::net::Ipv4Addr),
    protocol: IpProtocol,
    l4: &[u8],
) {
    assert_eq!(out.len(), 34 + l4.len(), "an Ethernet and IPv4 frame of this segment");
    EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv4 }
        .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    let mut p = Ipv4Packet::new_unchecked(&mut out[14..]);
    Ipv4Repr::plain(src, dst, protocol, l4.len()).emit(&mut p);
    p.payload_mut().copy_from_slice(l4);
}

/// Writes a whole untagged Ethernet and IPv6 frame around the upper-layer segment `l4` into
/// `out`, which is `54 + l4.len()` bytes long, with the header of [`Ipv6Repr::plain`] and no
/// extension headers: for fixtures and benchmarks.
///
/// # Panics
/// When `out` has another length.
pub fn emit_ipv6_frame(
    out: &mut [u8],
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (core::net::Ipv6Addr, core::net::Ipv6Addr),
    next_header: IpProtocol,
    l4: &[u8],
) {
    assert_eq!(out.len(), 54 + l4.len(), "an Ethernet and IPv6 frame of this segment");
    EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv6 }
        .emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
    let mut p = Ipv6Packet::new_unchecked(&mut out[14..]);
    Ipv6Repr::plain(src, dst, next_header, l4.len()).emit(&mut p);
    p.payload_mut().copy_from_slice(l4);
}

/// Why a buffer is not a packet we can work with. Small and `Copy`: the data path counts
/// these, it never formats them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer (or the IP payload) ends before a fixed-size header does: the 14-byte
    /// Ethernet header, a VLAN tag, the first 20 bytes of IPv4 or TCP, 8 of UDP or ICMP, ARP.
    Truncated,
    /// The IP version field is not 4 (IPv4) or 6 (IPv6) as the ethertype says.
    BadVersion,
    /// The IPv4 header length (IHL) is below 5 words, or longer than the total length.
    BadHeaderLen,
    /// The IPv4 total length is below 20 or beyond the end of the buffer.
    BadTotalLen,
    /// A checksum does not verify (only reported where verification was asked for).
    BadChecksum,
    /// The TCP data offset is below 5 words or beyond the end of the segment.
    BadTcpOffset,
    /// A TCP option's length is missing, too short, too long for the option kind, or runs
    /// past the end of the options.
    BadTcpOption,
    /// The UDP length is below 8 or beyond the end of the IP payload.
    BadUdpLen,
    /// Well formed, but not handled here: ARP for other than Ethernet/IPv4, more than two
    /// VLAN tags, an ICMP message without the asked-for structure.
    Unsupported,
    /// The IPv6 payload length runs past the end of the buffer.
    BadPayloadLen,
    /// An IPv6 extension header runs past the payload, a hop-by-hop header is not first, or
    /// the chain is longer than [`ipv6::MAX_EXT_HEADERS`].
    BadExtHeader,
}

impl Error {
    /// Every error, in the order of [`Error::index`].
    pub const ALL: [Error; 11] = [
        Error::Truncated,
        Error::BadVersion,
        Error::BadHeaderLen,
        Error::BadTotalLen,
        Error::BadChecksum,
        Error::BadTcpOffset,
        Error::BadTcpOption,
        Error::BadUdpLen,
        Error::Unsupported,
        Error::BadPayloadLen,
        Error::BadExtHeader,
    ];

    /// A dense index, `0..Error::ALL.len()`, for counting by reason. The match has no
    /// wildcard: a new variant does not compile until it has an index (and a place in
    /// [`Error::ALL`], which a test checks).
    pub const fn index(self) -> usize {
        match self {
            Error::Truncated => 0,
            Error::BadVersion => 1,
            Error::BadHeaderLen => 2,
            Error::BadTotalLen => 3,
            Error::BadChecksum => 4,
            Error::BadTcpOffset => 5,
            Error::BadTcpOption => 6,
            Error::BadUdpLen => 7,
            Error::Unsupported => 8,
            Error::BadPayloadLen => 9,
            Error::BadExtHeader => 10,
        }
    }

    /// A short `snake_case` name, for counters (`truncated`, `bad_tcp_option`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::BadHeaderLen => "bad_header_len",
            Error::BadTotalLen => "bad_total_len",
            Error::BadChecksum => "bad_checksum",
            Error::BadTcpOffset => "bad_tcp_offset",
            Error::BadTcpOption => "bad_tcp_option",
            Error::BadUdpLen => "bad_udp_len",
            Error::Unsupported => "unsupported",
            Error::BadPayloadLen => "bad_payload_len",
            Error::BadExtHeader => "bad_ext_header",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::BadVersion => "IP version does not match the ethertype",
            Error::BadHeaderLen => "IPv4 header length out of range",
            Error::BadTotalLen => "IPv4 total length out of range",
            Error::BadChecksum => "checksum does not verify",
            Error::BadTcpOffset => "TCP data offset out of range",
            Error::BadTcpOption => "malformed TCP option",
            Error::BadUdpLen => "UDP length out of range",
            Error::Unsupported => "unsupported packet",
            Error::BadPayloadLen => "IPv6 payload length beyond the packet",
            Error::BadExtHeader => "malformed or overlong IPv6 extension header chain",
        })
    }
}

impl core::error::Error for Error {}

/// Byte edits that turn a fixture into a malformed variant: `(offset, new value)`.
#[cfg(test)]
pub(crate) type Patches = &'static [(usize, u8)];

/// Byte offsets inside a header, as used by every `field` module.
pub(crate) type Field = core::ops::Range<usize>;
/// From a byte offset to the end of the buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// Reads the big-endian `u16` in `field`. Callers guarantee `field.end <= data.len()`.
#[inline]
pub(crate) fn read_u16(data: &[u8], field: Field) -> u16 {
    debug_assert_eq!(field.len(), 2);
    u16::from_be_bytes([data[field.start], data[field.start + 1]])
}

/// Reads the big-endian `u32` in `field`. Callers guarantee `field.end <= data.len()`.
#[inline]
pub(crate) fn read_u32(data: &[u8], field: Field) -> u32 {
    debug_assert_eq!(field.len(), 4);
    let at = field.start;
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Writes `value` big-endian into `field`. Callers guarantee `field.end <= data.len()`.
#[inline]
pub(crate) fn write_u16(data: &mut [u8], field: Field, value: u16) {
    debug_assert_eq!(field.len(), 2);
    data[field].copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian into `field`. Callers guarantee `field.end <= data.len()`.
#[inline]
pub(crate) fn write_u32(data: &mut [u8], field: Field, value: u32) {
    debug_assert_eq!(field.len(), 4);
    data[field].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod error_tests {
    use super::Error;

    #[test]
    fn every_error_is_listed_once_at_its_index() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
        }
        let mut names: Vec<&str> = Error::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Error::ALL.len(), "names are distinct");
    }
}
