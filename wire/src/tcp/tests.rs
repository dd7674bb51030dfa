//! Byte-array fixtures for the TCP view, options, `Repr` and checksum.

use super::*;
use crate::checksum;
use proptest::prelude::*;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// A Linux SYN from 192.168.1.10:54321 to 10.0.0.100:80.
#[rustfmt::skip]
static SYN_BYTES: [u8; 40] = [
    // src port 54321, dst port 80
    0xd4, 0x31, 0x00, 0x50,
    // seq 0x3a1c8b2d
    0x3a, 0x1c, 0x8b, 0x2d,
    // ack 0
    0x00, 0x00, 0x00, 0x00,
    // data offset 10 (40 bytes), flags SYN, window 64240
    0xa0, 0x02, 0xfa, 0xf0,
    // checksum 0xb0d5, urgent 0
    0xb0, 0xd5, 0x00, 0x00,
    // MSS 1460
    0x02, 0x04, 0x05, 0xb4,
    // SACK permitted
    0x04, 0x02,
    // timestamps: tsval 0x0a1b2c3d, tsecr 0
    0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00,
    // NOP, window scale 7
    0x01, 0x03, 0x03, 0x07,
];

/// The server's first data segment back, 10.0.0.100:80 -> 192.168.1.10:54321.
#[rustfmt::skip]
static DATA_BYTES: [u8; 49] = [
    // src port 80, dst port 54321
    0x00, 0x50, 0xd4, 0x31,
    // seq 0x11223344
    0x11, 0x22, 0x33, 0x44,
    // ack 0x3a1c8b2e
    0x3a, 0x1c, 0x8b, 0x2e,
    // data offset 8 (32 bytes), flags PSH|ACK, window 502
    0x80, 0x18, 0x01, 0xf6,
    // checksum 0xd041, urgent 0
    0xd0, 0x41, 0x00, 0x00,
    // NOP, NOP, timestamps: tsval 0x01020304, tsecr 0x0a1b2c3d
    0x01, 0x01, 0x08, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x1b, 0x2c, 0x3d,
    // "HTTP/1.1 200 OK\r\n"
    0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x30,
    0x20, 0x4f, 0x4b, 0x0d, 0x0a,
];

#[test]
fn lower_mss_updates_the_option_and_the_checksum() {
    let mut b = SYN_BYTES;
    let mut p = TcpPacket::new_unchecked(&mut b[..]);
    assert_eq!(p.lower_mss(8, 536), Some(1452));
    assert_eq!(b[20..24], [0x02, 0x04, 0x05, 0xac]);
    let p = TcpPacket::new_unchecked(&b[..]);
    assert!(p.verify_checksum(CLIENT, VIP));
    // Everything else is as it was.
    assert_eq!(b[..16], SYN_BYTES[..16]);
    assert_eq!(b[24..], SYN_BYTES[24..]);
    // Not below the floor.
    let mut b = SYN_BYTES;
    assert_eq!(TcpPacket::new_unchecked(&mut b[..]).lower_mss(1000, 536), Some(536));
    assert!(TcpPacket::new_unchecked(&b[..]).verify_checksum(CLIENT, VIP));
}

#[test]
fn lower_mss_without_an_mss_option_changes_nothing() {
    let mut b = DATA_BYTES;
    assert_eq!(TcpPacket::new_unchecked(&mut b[..]).lower_mss(8, 536), None);
    assert_eq!(b, DATA_BYTES);
    // A data offset past the buffer's end: the options present are searched, no panic.
    let mut short = [0u8; 22];
    short[..22].copy_from_slice(&SYN_BYTES[..22]);
    assert_eq!(TcpPacket::new_unchecked(&mut short[..]).lower_mss(8, 536), None);
}

#[test]
fn toa_fixture() {
    let toa = Toa { addr: Ipv4Addr::new(198, 18, 0, 2).into(), port: 54321 };
    let mut b = [0xa5u8; 10];
    toa.emit(&mut b);
    assert_eq!(b, [254, 8, 0xd4, 0x31, 198, 18, 0, 2, 0xa5, 0xa5]);
    // Found after other options; a truncated one is not.
    let opts = [1, 1, 254, 8, 0xd4, 0x31, 198, 18, 0, 2, 0, 0];
    assert_eq!(Toa::find(&opts), Some(toa));
    assert_eq!(Toa::find(&opts[..8]), None);
    assert_eq!(Toa::find(&SYN_BYTES[20..]), None);
}

#[test]
fn ipv6_toa_fixture() {
    let toa = Toa { addr: "2001:db8::1".parse().unwrap(), port: 54321 };
    let mut b = [0xa5u8; 22];
    toa.emit(&mut b);
    #[rustfmt::skip]
    assert_eq!(b, [
        254, 20, 0xd4, 0x31,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xa5, 0xa5,
    ]);
    assert_eq!(toa.option_len(), 20);
    let mut opts = vec![1, 1];
    opts.extend_from_slice(&b[..20]);
    assert_eq!(Toa::find(&opts), Some(toa));
    assert_eq!(Toa::find(&opts[..21]), None, "truncated");
}

fn syn_repr() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 54321,
        dst_port: 80,
        seq_number: 0x3a1c8b2d,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some(TcpTimestamp { tsval: 0x0a1b2c3d, tsecr: 0 }),
        payload: &[],
    }
}

#[test]
fn deconstruct_syn() {
    let packet = TcpPacket::new_checked(&SYN_BYTES[..]).unwrap();
    assert_eq!(packet.src_port(), 54321);
    assert_eq!(packet.dst_port(), 80);
    assert_eq!(packet.seq_number(), 0x3a1c8b2d);
    assert_eq!(packet.ack_number(), 0);
    assert_eq!(packet.header_len(), 40);
    assert_eq!(packet.flags(), TcpFlags::SYN);
    assert_eq!(packet.window_len(), 64240);
    assert_eq!(packet.checksum(), 0xb0d5);
    assert_eq!(packet.urgent_at(), 0);
    assert_eq!(packet.options(), &SYN_BYTES[20..]);
    assert!(packet.payload().is_empty());
    assert!(packet.verify_checksum(CLIENT, VIP));
    assert!(!packet.verify_checksum(VIP, Ipv4Addr::new(10, 0, 0, 101)));
    let mut options = packet.options_iter();
    assert_eq!(options.next(), Some(Ok(TcpOption::MaxSegmentSize(1460))));
    assert_eq!(options.next(), Some(Ok(TcpOption::SackPermitted)));
    assert_eq!(options.next(), Some(Ok(TcpOption::Timestamp { tsval: 0x0a1b2c3d, tsecr: 0 })));
    assert_eq!(options.next(), Some(Ok(TcpOption::NoOperation)));
    assert_eq!(options.next(), Some(Ok(TcpOption::WindowScale(7))));
    assert_eq!(options.next(), None);
}

#[test]
fn deconstruct_data() {
    let packet = TcpPacket::new_checked(&DATA_BYTES[..]).unwrap();
    assert_eq!(packet.flags(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(packet.header_len(), 32);
    assert_eq!(packet.payload(), b"HTTP/1.1 200 OK\r\n");
    assert!(packet.verify_checksum(VIP, CLIENT));
    let repr = TcpRepr::parse(&packet, VIP, CLIENT).unwrap();
    assert_eq!(repr.timestamp, Some(TcpTimestamp { tsval: 0x01020304, tsecr: 0x0a1b2c3d }));
    assert_eq!(repr.ack_number, 0x3a1c8b2e);
}

#[test]
fn parse_and_emit_syn() {
    assert_eq!(TcpRepr::parse(&TcpPacket::new_unchecked(&SYN_BYTES[..]), CLIENT, VIP), Ok(syn_repr()));
    let repr = syn_repr();
    assert_eq!(repr.buffer_len(), 40);
    let mut bytes = [0xa5u8; 40];
    repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), CLIENT, VIP);
    assert_eq!(bytes, SYN_BYTES);
}

#[test]
fn emit_pads_options() {
    let repr = TcpRepr { sack_permitted: false, window_scale: None, payload: b"xyz", ..syn_repr() };
    assert_eq!(repr.header_len(), 36);
    let mut bytes = [0xa5u8; 39];
    repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), CLIENT, VIP);
    assert_eq!(&bytes[34..36], &[0, 0]);
    let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(TcpRepr::parse(&packet, CLIENT, VIP), Ok(repr));
}

#[test]
fn bad_checksum() {
    let mut bytes = SYN_BYTES;
    bytes[15] ^= 1;
    assert_eq!(TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..]), CLIENT, VIP), Err(Error::BadChecksum));
}

#[test]
fn bad_offset() {
    // Data offset 4 (below the fixed header), 0, and 11 (44 bytes, past the segment).
    for offset_byte in [0x40, 0x00, 0xb0] {
        let mut bytes = SYN_BYTES;
        bytes[12] = offset_byte;
        assert_eq!(TcpPacket::new_checked(&bytes[..]).err(), Some(Error::BadTcpOffset));
    }
}

/// (description, options area, what the iterator yields last).
#[rustfmt::skip]
const MALFORMED_OPTIONS: &[(&str, &[u8])] = &[
    ("kind without length",        &[0x02]),
    ("length 0",                   &[0x02, 0x00, 0x05, 0xb4]),
    ("length 1",                   &[0x22, 0x01]),
    ("length past the end",        &[0x01, 0x02, 0x04, 0x05]),
    ("MSS of length 3",            &[0x02, 0x03, 0x05, 0x01]),
    ("window scale of length 4",   &[0x03, 0x04, 0x07, 0x00]),
    ("SACK-permitted of length 3", &[0x04, 0x03, 0x00, 0x01]),
    ("SACK of length 6",           &[0x05, 0x06, 0x00, 0x00, 0x00, 0x01]),
    ("SACK of length 2",           &[0x05, 0x02, 0x01, 0x01]),
    ("timestamps of length 8",     &[0x08, 0x08, 0, 0, 0, 0, 0, 0]),
];

#[test]
fn malformed_options() {
    for (what, options) in MALFORMED_OPTIONS {
        let mut iter = TcpOptions::new(options);
        let last = iter.by_ref().find(|o| o.is_err());
        assert_eq!(last, Some(Err(Error::BadTcpOption)), "{what}");
        assert_eq!(iter.next(), None, "{what}: iteration ends after an error");
    }
}

#[test]
fn option_spans_skip_nops_and_stop_at_the_end_or_a_bad_length() {
    // NOP, MSS 1460, NOP, NOP, SACK with one block, EOL, junk.
    let opts = [1, 2, 4, 0x05, 0xb4, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 9, 9];
    let spans: Vec<_> = option_spans(&opts).collect();
    assert_eq!(spans, [(2, 1, 4), (5, 7, 10)]);
    assert_eq!(option_spans(&[2, 4, 0x05]).count(), 0, "an option past the end");
    assert_eq!(option_spans(&[3, 1, 0]).count(), 0, "a length below 2");
}

#[test]
fn options_sack_unknown_and_eol() {
    #[rustfmt::skip]
    let options = [
        // SACK with two blocks
        0x05, 0x12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
        // unknown kind 30 (MPTCP) with two bytes of data
        0x1e, 0x04, 0xaa, 0xbb,
        // end of list, then garbage that must be ignored
        0x00, 0x02, 0x00,
    ];
    let parsed: std::vec::Vec<_> = TcpOptions::new(&options).collect();
    let Ok(TcpOption::Sack(blocks)) = parsed[0] else { panic!("{parsed:?}") };
    assert_eq!(blocks.iter().collect::<std::vec::Vec<_>>(), [(1, 2), (3, 4)]);
    assert_eq!(parsed[1], Ok(TcpOption::Unknown { kind: 30, data: &[0xaa, 0xbb] }));
    assert_eq!(parsed[2], Ok(TcpOption::EndOfList));
    assert_eq!(parsed.len(), 3);
    // Emitting every option gives the bytes back.
    let mut out = [0xa5u8; 23];
    let mut at = 0;
    for option in &parsed {
        at += option.as_ref().unwrap().emit(&mut out[at..]);
    }
    assert_eq!(&out[..at], &options[..23]);
}

#[test]
fn every_prefix() {
    for (fixture, src, dst) in [(&SYN_BYTES[..], CLIENT, VIP), (&DATA_BYTES[..], VIP, CLIENT)] {
        let header_len = usize::from(fixture[12] >> 4) * 4;
        for len in 0..=fixture.len() {
            let prefix = &fixture[..len];
            match TcpPacket::new_checked(prefix) {
                Ok(packet) => {
                    assert!(len >= header_len);
                    assert_eq!(packet.verify_checksum(src, dst), len == fixture.len());
                    assert!(packet.options_iter().all(|o| o.is_ok()));
                    let _ = packet.payload();
                }
                Err(e) if len < HEADER_LEN => assert_eq!(e, Error::Truncated),
                Err(e) => assert_eq!((e, len < header_len), (Error::BadTcpOffset, true)),
            }
            // Every prefix of the options area iterates without panicking.
            if len >= HEADER_LEN {
                let options = &fixture[HEADER_LEN..len.min(header_len)];
                let _ = TcpOptions::new(options).count();
            }
        }
    }
}

#[test]
fn flags() {
    let mut flags = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(flags.bits(), 0x12);
    assert!(flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::SYN | TcpFlags::FIN));
    assert!(flags.intersects(TcpFlags::SYN | TcpFlags::FIN));
    flags.remove(TcpFlags::SYN);
    flags.set(TcpFlags::ECE | TcpFlags::CWR, true);
    assert_eq!(std::format!("{flags}"), "ACK|ECE|CWR");
    assert_eq!(std::format!("{:?}", TcpFlags::empty()), "TcpFlags(-)");
    assert_eq!(TcpFlags::from_bits(0xff) & TcpFlags::RST, TcpFlags::RST);
}

prop_compose! {
    fn arb_segment()(
        src_port in any::<u16>(), dst_port in any::<u16>(),
        seq_number in any::<u32>(), ack_number in any::<u32>(),
        flags in any::<u8>(), window_len in any::<u16>(),
        max_seg_size in proptest::option::of(any::<u16>()),
        timestamp in proptest::option::of((any::<u32>(), any::<u32>())),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> (TcpRepr<'static>, std::vec::Vec<u8>) {
        let repr = TcpRepr {
            src_port, dst_port, seq_number, ack_number,
            flags: TcpFlags::from_bits(flags), window_len, urgent_at: 0,
            max_seg_size, window_scale: None, sack_permitted: false,
            timestamp: timestamp.map(|(tsval, tsecr)| TcpTimestamp { tsval, tsecr }),
            payload: &[],
        };
        (repr, payload)
    }
}

proptest! {
    #[test]
    fn options_never_panic(options in proptest::collection::vec(any::<u8>(), 0..48)) {
        for option in TcpOptions::new(&options).flatten() {
            prop_assert!(option.buffer_len() <= options.len());
        }
    }

    /// Full-NAT rewrites both addresses and both ports; the incremental updates of the
    /// TCP and IPv4 checksums must equal a full recomputation.
    #[test]
    fn nat_rewrite_matches_full_checksum(
        (repr, payload) in arb_segment(),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
        new_src in any::<[u8; 4]>(), new_dst in any::<[u8; 4]>(),
        new_sport in any::<u16>(), new_dport in any::<u16>(),
        ttl in any::<u8>(), ident in any::<u16>(),
    ) {
        use crate::ipv4::{Ipv4Packet, Ipv4Repr};
        let (src, dst, new_src, new_dst) =
            (Ipv4Addr::from(src), Ipv4Addr::from(dst), Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
        let repr = TcpRepr { payload: &payload, ..repr };
        let ip = Ipv4Repr {
            src_addr: src, dst_addr: dst, protocol: IpProtocol::Tcp, payload_len: repr.buffer_len(),
            ttl, tos: 0, ident, dont_frag: true, more_frags: false, frag_offset: 0,
        };
        let mut bytes = std::vec![0u8; ip.buffer_len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.emit(&mut packet);
        repr.emit(&mut TcpPacket::new_unchecked(packet.payload_mut()), src, dst);

        // Rewrite in place, updating both checksums incrementally.
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        let mut ip_csum = packet.checksum();
        ip_csum = checksum::update_addr(ip_csum, src, new_src);
        ip_csum = checksum::update_addr(ip_csum, dst, new_dst);
        packet.set_src_addr(new_src);
        packet.set_dst_addr(new_dst);
        packet.set_checksum(ip_csum);
        let mut tcp = TcpPacket::new_checked(packet.payload_mut()).unwrap();
        let mut csum = tcp.checksum();
        csum = checksum::update_addr(csum, src, new_src);
        csum = checksum::update_addr(csum, dst, new_dst);
        csum = checksum::update_u16(csum, tcp.src_port(), new_sport);
        csum = checksum::update_u16(csum, tcp.dst_port(), new_dport);
        tcp.set_src_port(new_sport);
        tcp.set_dst_port(new_dport);
        tcp.set_checksum(csum);
        prop_assert!(tcp.verify_checksum(new_src, new_dst));
        tcp.fill_checksum(new_src, new_dst);
        prop_assert_eq!(tcp.checksum(), csum);
        prop_assert!(packet.verify_checksum());
        packet.fill_checksum();
        prop_assert_eq!(packet.checksum(), ip_csum);
    }
}
