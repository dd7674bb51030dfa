//! Fixtures (checksums computed by an independent implementation) and tests of the IPv6
//! view, the extension header walk and the checksum over the IPv6 pseudo-header.

use core::net::Ipv6Addr;

use proptest::prelude::*;

use super::*;
use crate::checksum;
use crate::udp::UdpPacket;
use crate::{TcpFlags, TcpPacket};

pub(crate) const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(crate) const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// 2001:db8::1:5353 -> [2001:db8::2]:53 UDP "hello", hop limit 63, traffic class 0xb8, flow label 0x12345.
    #[rustfmt::skip]
    pub(crate) static UDP_BYTES: [u8; 53] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x0d, 0x11, 0x3f, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x4b, 0x6f,
        0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ];

/// A TCP SYN 40000 -> 80 behind hop-by-hop options, destination options and a first fragment header (more fragments, ident 0xdeadbeef).
    #[rustfmt::skip]
    pub(crate) static CHAIN_BYTES: [u8; 84] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef,
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff,
        0xb7, 0xdc, 0x00, 0x00,
    ];

/// The last fragment (offset 1232) of a UDP datagram: 8 bytes of data.
    #[rustfmt::skip]
    pub(crate) static LATER_FRAGMENT_BYTES: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x00, 0x04, 0xd0, 0xde, 0xad, 0xbe, 0xef,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

#[test]
fn the_header_fields_read_as_written() {
    let p = Ipv6Packet::new_checked(&UDP_BYTES[..]).unwrap();
    assert_eq!(p.version(), 6);
    assert_eq!(p.traffic_class(), 0xb8);
    assert_eq!(p.flow_label(), 0x12345);
    assert_eq!(p.payload_len(), 13);
    assert_eq!(p.next_header(), IpProtocol::Udp);
    assert_eq!(p.hop_limit(), 63);
    assert_eq!((p.src_addr(), p.dst_addr()), (SRC, DST));
    assert_eq!(p.payload().len(), 13);
    let repr = Ipv6Repr::parse(&p).unwrap();
    let mut out = [0u8; 53];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
    out[40..].copy_from_slice(p.payload());
    assert_eq!(out, UDP_BYTES, "emit gives the same bytes back");
    let udp = UdpPacket::new_checked(p.payload()).unwrap();
    assert!(udp.verify_checksum(SRC, DST));
    assert!(!udp.verify_checksum(DST, SRC.to_bits().wrapping_add(1).into()));
}

#[test]
fn setters_change_only_their_field() {
    let mut b = UDP_BYTES;
    let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
    p.set_traffic_class(0x01);
    assert_eq!((p.traffic_class(), p.flow_label(), p.version()), (0x01, 0x12345, 6));
    p.set_flow_label(0xfffff);
    assert_eq!((p.traffic_class(), p.flow_label(), p.version()), (0x01, 0xfffff, 6));
    p.set_hop_limit(1);
    p.set_src_addr(DST);
    p.set_dst_addr(SRC);
    assert_eq!((p.hop_limit(), p.src_addr(), p.dst_addr(), p.payload_len()), (1, DST, SRC, 13));
    assert_eq!(b[40..], UDP_BYTES[40..]);
}

#[test]
fn the_walk_reaches_tcp_behind_three_extension_headers() {
    let p = Ipv6Packet::new_checked(&CHAIN_BYTES[..]).unwrap();
    let upper = p.upper_layer().unwrap();
    assert_eq!(upper.protocol, IpProtocol::Tcp);
    assert_eq!(upper.offset, 40 + 8 + 8 + 8);
    assert_eq!(upper.fragment, Some(Fragment { offset: 0, more: true, ident: 0xdead_beef }));
    assert!(upper.is_fragment() && !upper.is_later_fragment());
    let tcp = TcpPacket::new_checked(&CHAIN_BYTES[upper.offset..]).unwrap();
    assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.flags()), (40000, 80, TcpFlags::SYN));
    assert!(tcp.verify_checksum(SRC, DST));
}

#[test]
fn a_later_fragment_ends_the_walk_at_its_data() {
    let p = Ipv6Packet::new_checked(&LATER_FRAGMENT_BYTES[..]).unwrap();
    let upper = p.upper_layer().unwrap();
    assert_eq!((upper.protocol, upper.offset), (IpProtocol::Udp, 48));
    assert_eq!(upper.fragment, Some(Fragment { offset: 1232, more: false, ident: 0xdead_beef }));
    assert!(upper.is_fragment() && upper.is_later_fragment());
}

#[test]
fn malformed_packets_are_refused_by_class() {
    type Case<'a> = (&'a str, &'a [u8], &'a [(usize, u8)], Error);
    let cases: &[Case<'_>] = &[
        ("shorter than the header", &UDP_BYTES[..39], &[], Error::Truncated),
        ("version 4", &UDP_BYTES, &[(0, 0x4b)], Error::BadVersion),
        ("payload length past the buffer", &UDP_BYTES, &[(5, 14)], Error::BadPayloadLen),
    ];
    for (what, bytes, patches, want) in cases {
        let mut b = bytes.to_vec();
        for &(at, v) in *patches {
            b[at] = v;
        }
        assert_eq!(Ipv6Packet::new_checked(&b[..]).err(), Some(*want), "{what}");
    }
}

#[test]
fn malformed_extension_header_chains_are_refused() {
    let walk = |patches: &[(usize, u8)], len: usize| {
        let mut b = CHAIN_BYTES.to_vec();
        for &(at, v) in patches {
            b[at] = v;
        }
        b.truncate(len);
        let payload_len = (len - 40) as u16;
        b[4..6].copy_from_slice(&payload_len.to_be_bytes());
        Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer()
    };
    // Hop-by-hop after destination options: only first is allowed.
    assert_eq!(walk(&[(48, 0)], 84), Err(Error::BadExtHeader));
    // Destination options claiming 8 + 8 x 255 bytes: past the payload.
    assert_eq!(walk(&[(49, 255)], 84), Err(Error::BadExtHeader));
    // The payload ends inside the fragment header.
    assert_eq!(walk(&[], 60), Err(Error::BadExtHeader));
    // The payload ends right after the destination options' first byte.
    assert_eq!(walk(&[], 49), Err(Error::BadExtHeader));
    // Unchanged, it walks.
    assert!(walk(&[], 84).is_ok());
}

/// A packet of `n` destination options headers, then no next header.
fn chain_of(n: usize) -> std::vec::Vec<u8> {
    let mut b = std::vec![0u8; 40 + 8 * n];
    Ipv6Repr::plain(SRC, DST, if n == 0 { IpProtocol::Ipv6NoNxt } else { IpProtocol::Ipv6Opts }, 8 * n)
        .emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
    for i in 0..n {
        b[40 + 8 * i] = if i + 1 == n { 59 } else { 60 };
    }
    b
}

#[test]
fn the_walk_is_bounded() {
    for n in 0..=MAX_EXT_HEADERS {
        let b = chain_of(n);
        let upper = Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!((upper.protocol, upper.offset), (IpProtocol::Ipv6NoNxt, 40 + 8 * n), "{n} headers");
    }
    let b = chain_of(MAX_EXT_HEADERS + 1);
    assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(), Err(Error::BadExtHeader));
}

#[test]
fn the_solicited_node_address_and_its_mac() {
    let a: Ipv6Addr = "2001:db8::abcd:1234:5678".parse().unwrap();
    assert_eq!(solicited_node(a), "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap());
    assert_eq!(multicast_mac(solicited_node(a)).0, [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]);
}

#[test]
fn address_rewrites_keep_the_transport_checksum_valid() {
    // RFC 1624 over the 16-byte addresses, as NAT rewrites them.
    let mut b = UDP_BYTES;
    let new: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
    let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
    p.set_src_addr(new);
    let mut udp = UdpPacket::new_unchecked(p.payload_mut());
    let csum = checksum::udp_apply(udp.checksum(), checksum::delta_addr_v6(&SRC, &new));
    udp.set_checksum(csum);
    assert!(UdpPacket::new_checked(&b[40..]).unwrap().verify_checksum(new, DST));
}

#[test]
fn a_zero_udp_checksum_fails_over_ipv6() {
    let mut b = UDP_BYTES;
    b[46] = 0;
    b[47] = 0;
    assert!(!UdpPacket::new_checked(&b[40..]).unwrap().verify_checksum(SRC, DST));
    // And a computed zero goes out as 0xffff.
    let mut p = UdpPacket::new_unchecked(&mut b[40..]);
    p.fill_checksum(SRC, DST);
    assert!(p.checksum() != 0 && UdpPacket::new_checked(&b[40..]).unwrap().verify_checksum(SRC, DST));
}

proptest! {
    #[test]
    fn no_bytes_make_the_view_or_the_walk_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
            let _ = (p.traffic_class(), p.flow_label(), p.src_addr(), p.dst_addr(), p.payload().len());
            if let Ok(upper) = p.upper_layer() {
                prop_assert!(upper.offset <= 40 + usize::from(p.payload_len()));
            }
        }
    }

    #[test]
    fn mutated_chains_never_panic_and_stay_inside(at in 0usize..84, value in any::<u8>(), cut in 40usize..=84) {
        let mut b = CHAIN_BYTES.to_vec();
        b[at] = value;
        b.truncate(cut);
        if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
            if let Ok(upper) = p.upper_layer() {
                prop_assert!(upper.offset <= 40 + usize::from(p.payload_len()));
            }
        }
    }

    #[test]
    fn the_v6_pseudo_header_sums_like_its_bytes(src in any::<u128>(), dst in any::<u128>(), len in any::<u32>(), proto in any::<u8>()) {
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let mut bytes = [0u8; 40];
        bytes[..16].copy_from_slice(&s.octets());
        bytes[16..32].copy_from_slice(&d.octets());
        bytes[32..36].copy_from_slice(&len.to_be_bytes());
        bytes[39] = proto;
        let want = checksum::sum(&bytes);
        let got = checksum::pseudo_header_v6(&s, &d, IpProtocol::from(proto), len);
        // The two one's-complement zeros are the same sum.
        prop_assert!(got == want || (got.is_multiple_of(0xffff) && want.is_multiple_of(0xffff)));
    }
}
