//! Fixtures (checksums computed by an independent implementation) and tests of ICMPv6 and
//! neighbour discovery messages.

use core::net::Ipv6Addr;

use proptest::prelude::*;

use super::*;
use crate::ipv6::tests::{DST, SRC};

const SOLICITED: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);

/// An echo request 2001:db8::1 -> 2001:db8::2: ident 0x1234, sequence 1, data "ping".
    #[rustfmt::skip]
static ECHO_BYTES: [u8; 12] = [
        0x80, 0x00, 0x33, 0x3e, 0x12, 0x34, 0x00, 0x01, 0x70, 0x69, 0x6e, 0x67,
    ];

/// A neighbour solicitation 2001:db8::1 -> ff02::1:ff00:2 for 2001:db8::2, source link-layer address 02:00:00:00:00:01.
    #[rustfmt::skip]
static NS_BYTES: [u8; 32] = [
        0x87, 0x00, 0x1c, 0x27, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    ];

/// The neighbour advertisement 2001:db8::2 -> 2001:db8::1 that answers it: solicited and override, target link-layer address 02:00:00:00:00:02.
    #[rustfmt::skip]
static NA_BYTES: [u8; 32] = [
        0x88, 0x00, 0x8a, 0x71, 0x60, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    ];

/// A packet too big 2001:db8::fe -> 2001:db8::1, MTU 1280, quoting 48 bytes of the UDP packet.
    #[rustfmt::skip]
static PTB_BYTES: [u8; 56] = [
        0x02, 0x00, 0x6e, 0xbf, 0x00, 0x00, 0x05, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x11, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x4b, 0x6f,
    ];

/// Parses `bytes` sent from `src` to `dst`, emits the result, and checks the bytes come back.
fn round_trip(bytes: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Icmpv6Repr<'_> {
    let repr = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(bytes).unwrap(), src, dst).unwrap();
    assert_eq!(repr.buffer_len(), bytes.len());
    let mut out = std::vec![0xaau8; bytes.len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), src, dst);
    assert_eq!(out, bytes, "{repr:?} emits the same bytes");
    repr
}

#[test]
fn echo_request() {
    let repr = round_trip(&ECHO_BYTES, SRC, DST);
    assert_eq!(repr, Icmpv6Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: b"ping" });
    assert!(!Icmpv6Packet::new_checked(&ECHO_BYTES[..]).unwrap().is_error_checked());
}

#[test]
fn neighbour_solicitation_with_the_source_link_layer_address() {
    let repr = round_trip(&NS_BYTES, SRC, SOLICITED);
    let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
    assert_eq!(repr, Icmpv6Repr::NeighborSolicit { target: DST, lladdr: Some(mac) });
    assert_eq!(crate::ipv6::solicited_node(DST), SOLICITED);
}

#[test]
fn neighbour_advertisement_with_the_target_link_layer_address() {
    let repr = round_trip(&NA_BYTES, DST, SRC);
    let mac = EthernetAddress([2, 0, 0, 0, 0, 2]);
    let want =
        Icmpv6Repr::NeighborAdvert { router: false, solicited: true, override_: true, target: DST, lladdr: Some(mac) };
    assert_eq!(repr, want);
}

#[test]
fn packet_too_big_quotes_the_packet() {
    let repr = round_trip(&PTB_BYTES, ROUTER, SRC);
    let Icmpv6Repr::PacketTooBig { mtu, original } = repr else { panic!("{repr:?}") };
    assert_eq!(mtu, 1280);
    let quoted = crate::Ipv6Packet::new_unchecked(original);
    assert_eq!((quoted.src_addr(), quoted.dst_addr(), original.len()), (SRC, DST, 48));
    assert!(Icmpv6Packet::new_checked(&PTB_BYTES[..]).unwrap().is_error_checked());
}

#[test]
fn errors_emit_and_parse_back() {
    let original = &PTB_BYTES[8..];
    for repr in [
        Icmpv6Repr::TimeExceeded { reason: TimeExceeded::HopLimitExceeded, original },
        Icmpv6Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, original },
        Icmpv6Repr::NeighborSolicit { target: DST, lladdr: None },
    ] {
        let mut out = std::vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), ROUTER, SRC);
        let packet = Icmpv6Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&packet, ROUTER, SRC), Ok(repr));
    }
}

#[test]
fn malformed_messages_are_refused_by_class() {
    // A checksum over other addresses does not verify.
    let p = Icmpv6Packet::new_checked(&ECHO_BYTES[..]).unwrap();
    assert_eq!(Icmpv6Repr::parse(&p, SRC, SRC), Err(Error::BadChecksum));
    // Under 8 bytes; a solicitation without its whole target.
    assert_eq!(Icmpv6Packet::new_checked(&ECHO_BYTES[..7]).err(), Some(Error::Truncated));
    assert_eq!(Icmpv6Packet::new_checked(&NS_BYTES[..23]).err(), Some(Error::Truncated));
    // An option of length 0, an option past the end, a link-layer option of 16 bytes.
    let option = |at: usize, v: u8, len: usize| {
        let mut b = NS_BYTES.to_vec();
        b[at] = v;
        b.truncate(len);
        Icmpv6Packet::new_checked(&b[..]).unwrap().lladdr_option(ndp_option::SOURCE_LLADDR)
    };
    assert_eq!(option(25, 0, 32), Err(Error::Unsupported));
    assert_eq!(option(25, 2, 32), Err(Error::Truncated));
    assert_eq!(option(25, 1, 30), Err(Error::Truncated));
    assert_eq!(option(25, 1, 32), Ok(Some(EthernetAddress([2, 0, 0, 0, 0, 1]))));
    // Other option kinds are skipped.
    assert_eq!(option(24, 14, 32), Ok(None));
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    fn is_error_checked(&self) -> bool {
        self.msg_type().is_error()
    }
}

proptest! {
    #[test]
    fn no_bytes_make_the_view_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(p) = Icmpv6Packet::new_checked(&bytes[..]) {
            let _ = (p.msg_type(), p.msg_code(), p.echo_ident(), p.mtu(), p.data().len());
            let _ = Icmpv6Repr::parse(&p, SRC, DST);
            if matches!(p.msg_type(), Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert) {
                let _ = (p.target_addr(), p.lladdr_option(ndp_option::SOURCE_LLADDR));
            }
        }
    }
}
