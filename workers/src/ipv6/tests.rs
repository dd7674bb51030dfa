//! IPv6 fixtures through the pipeline: {description, frame in, action, frame out}. Expected
//! frames are built independently with the `wire` crate's `Repr` emitters.

use std::net::Ipv6Addr;

use wire::icmpv6::Icmpv6Repr;
use wire::{EthernetRepr, Ipv6Packet};

use super::*;
use crate::outcome::{Action, DropReason};
use crate::pipeline::{IcmpError, Pipeline};

const PORT0_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x10]);
const PORT1_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x11]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 1, 1]);
const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const OWNED: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const OTHER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);

/// Ports 0 and 1 are a two-arm pair; port 0 owns OWNED.
fn pipeline() -> Pipeline<'static> {
    let port = |mac, peer, addrs6| PortCtx { mac, peer, addrs: vec![], addrs6, exception: None, is_exception: false };
    Pipeline::new(vec![port(PORT0_MAC, 1, vec![OWNED]), port(PORT1_MAC, 0, vec![])])
}

/// An untagged frame of `message` from `src` to `dst`, with `hop_limit`.
fn frame(
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    hop_limit: u8,
    message: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let mut f = vec![0xa5; 14 + 40 + message.buffer_len()];
    EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv6 }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    Ipv6Repr { hop_limit, ..Ipv6Repr::plain(src, dst, IpProtocol::Icmpv6, message.buffer_len()) }
        .emit(&mut Ipv6Packet::new_unchecked(&mut f[14..]));
    message.emit(&mut Icmpv6Packet::new_unchecked(&mut f[54..]), src, dst);
    f
}

fn solicit(target: Ipv6Addr, lladdr: Option<EthernetAddress>) -> Icmpv6Repr<'static> {
    Icmpv6Repr::NeighborSolicit { target, lladdr }
}

fn advert(target: Ipv6Addr, solicited: bool) -> Icmpv6Repr<'static> {
    Icmpv6Repr::NeighborAdvert { router: false, solicited, override_: true, target, lladdr: Some(PORT0_MAC) }
}

const ECHO: Icmpv6Repr<'static> = Icmpv6Repr::EchoRequest { ident: 0x4242, seq_no: 7, data: b"abcdefgh" };
const REPLY: Icmpv6Repr<'static> = Icmpv6Repr::EchoReply { ident: 0x4242, seq_no: 7, data: b"abcdefgh" };

struct Case {
    what: &'static str,
    port: u16,
    input: Vec<u8>,
    action: Action,
    /// The frame after, when it changed.
    output: Option<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let sn = wire::ipv6::solicited_node(OWNED);
    let sn_mac = wire::ipv6::multicast_mac(sn);
    let ns = |hop, target, src: Ipv6Addr, dst, lladdr| {
        frame((CLIENT_MAC, wire::ipv6::multicast_mac(dst)), (src, dst), hop, &solicit(target, lladdr))
    };
    let mut bad_checksum = ns(255, OWNED, CLIENT, sn, Some(CLIENT_MAC));
    bad_checksum[57] ^= 1;
    let mut tagged = ns(255, OWNED, CLIENT, sn, Some(CLIENT_MAC));
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    let mut with_opts = frame((CLIENT_MAC, PORT0_MAC), (CLIENT, OWNED), 64, &ECHO);
    // A destination options header (8 bytes of padding) before the echo request.
    with_opts[20] = 60;
    with_opts.splice(54..54, [58, 0, 1, 4, 0, 0, 0, 0]);
    with_opts[18..20].copy_from_slice(&((ECHO.buffer_len() + 8) as u16).to_be_bytes());
    let mut long_payload = frame((CLIENT_MAC, PORT0_MAC), (CLIENT, OWNED), 64, &ECHO);
    long_payload[19] += 1;
    let mut chain = vec![0u8; 14 + 40 + 8 * 9];
    EthernetRepr { src_addr: CLIENT_MAC, dst_addr: PORT0_MAC, ethertype: EtherType::Ipv6 }
        .emit(&mut EthernetFrame::new_unchecked(&mut chain[..]));
    Ipv6Repr::plain(CLIENT, OWNED, IpProtocol::Ipv6Opts, 72).emit(&mut Ipv6Packet::new_unchecked(&mut chain[14..]));
    for i in 0..9 {
        chain[54 + 8 * i] = if i == 8 { 59 } else { 60 };
    }
    let forward = Action::Forward(1);
    vec![
        Case {
            what: "a solicitation to the solicited-node address is answered with the port's MAC",
            port: 0,
            input: ns(255, OWNED, CLIENT, sn, Some(CLIENT_MAC)),
            action: Action::Reply(Reply::Neighbor),
            output: Some(frame((PORT0_MAC, CLIENT_MAC), (OWNED, CLIENT), 255, &advert(OWNED, true))),
        },
        Case {
            what: "a unicast probe without a link-layer option is answered to the frame's source",
            port: 0,
            input: frame((CLIENT_MAC, PORT0_MAC), (CLIENT, OWNED), 255, &solicit(OWNED, None)),
            action: Action::Reply(Reply::Neighbor),
            output: Some(frame((PORT0_MAC, CLIENT_MAC), (OWNED, CLIENT), 255, &advert(OWNED, true))),
        },
        Case {
            what: "duplicate address detection is answered to all nodes, unsolicited",
            port: 0,
            input: ns(255, OWNED, Ipv6Addr::UNSPECIFIED, sn, None),
            action: Action::Reply(Reply::Neighbor),
            output: Some(frame(
                (PORT0_MAC, wire::ipv6::multicast_mac(ALL_NODES)),
                (OWNED, ALL_NODES),
                255,
                &advert(OWNED, false),
            )),
        },
        Case {
            what: "a solicitation from off the link (hop limit 254) is not answered",
            port: 0,
            input: ns(254, OWNED, CLIENT, sn, Some(CLIENT_MAC)),
            action: forward,
            output: None,
        },
        Case {
            what: "a solicitation for another address is not answered",
            port: 0,
            input: ns(255, OTHER, CLIENT, wire::ipv6::solicited_node(OTHER), Some(CLIENT_MAC)),
            action: forward,
            output: None,
        },
        Case {
            what: "a solicitation for the address on the port that does not own it",
            port: 1,
            input: ns(255, OWNED, CLIENT, sn, Some(CLIENT_MAC)),
            action: Action::Forward(0),
            output: None,
        },
        Case {
            what: "a solicitation whose checksum does not verify",
            port: 0,
            input: bad_checksum,
            action: forward,
            output: None,
        },
        Case { what: "a tagged solicitation is forwarded", port: 0, input: tagged, action: forward, output: None },
        Case {
            what: "duplicate address detection with a link-layer option is invalid",
            port: 0,
            input: ns(255, OWNED, Ipv6Addr::UNSPECIFIED, sn, Some(CLIENT_MAC)),
            action: forward,
            output: None,
        },
        Case {
            what: "an echo request to the owned address is answered",
            port: 0,
            input: frame((CLIENT_MAC, PORT0_MAC), (CLIENT, OWNED), 64, &ECHO),
            action: Action::Reply(Reply::IcmpEcho),
            output: Some(frame((PORT0_MAC, CLIENT_MAC), (OWNED, CLIENT), REPLY_TTL, &REPLY)),
        },
        Case {
            what: "an echo request to another address is forwarded",
            port: 0,
            input: frame((CLIENT_MAC, PORT0_MAC), (CLIENT, OTHER), 64, &ECHO),
            action: forward,
            output: None,
        },
        Case {
            what: "an echo request behind an extension header is forwarded, not answered",
            port: 0,
            input: with_opts,
            action: forward,
            output: None,
        },
        Case {
            what: "a payload length past the frame is dropped as malformed",
            port: 0,
            input: long_payload,
            action: Action::Drop(DropReason::Malformed(wire::Error::BadPayloadLen)),
            output: None,
        },
        Case {
            what: "a chain of nine extension headers is dropped as malformed",
            port: 0,
            input: chain,
            action: Action::Drop(DropReason::Malformed(wire::Error::BadExtHeader)),
            output: None,
        },
        Case {
            what: "an advertisement (ours to answer? no) is forwarded",
            port: 0,
            input: frame((CLIENT_MAC, sn_mac), (CLIENT, sn), 255, &advert(CLIENT, false)),
            action: forward,
            output: None,
        },
    ]
}

#[test]
fn fixtures() {
    for case in cases() {
        let mut p = pipeline();
        let mut buf = case.input.clone();
        assert_eq!(p.process(case.port, &mut buf), case.action, "{}", case.what);
        let want = case.output.unwrap_or(case.input);
        assert_eq!(buf, want, "{}", case.what);
    }
}

#[test]
fn every_prefix_of_every_fixture_is_handled_without_panic() {
    for case in cases() {
        for len in 0..=case.input.len() {
            let mut buf = case.input[..len].to_vec();
            let _ = pipeline().process(case.port, &mut buf);
        }
    }
}

#[test]
fn the_unsolicited_advertisement_announces_the_address_to_everyone() {
    let f = unsolicited_na(PORT0_MAC, OWNED);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((eth.dst_addr(), eth.src_addr()), (EthernetAddress([0x33, 0x33, 0, 0, 0, 1]), PORT0_MAC));
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (OWNED, ALL_NODES, 255));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(Icmpv6Repr::parse(&icmp, OWNED, ALL_NODES), Ok(advert(OWNED, false)));
}

#[test]
fn an_icmpv6_error_quotes_the_packet_to_its_sender() {
    // A 1400-byte UDP packet through the balancer: time exceeded, then packet too big.
    let payload = vec![0x5au8; 1400 - 48];
    let udp = wire::UdpRepr { src_port: 5353, dst_port: 53, payload: &payload };
    let mut seg = vec![0u8; udp.buffer_len()];
    udp.emit(&mut wire::UdpPacket::new_unchecked(&mut seg[..]), CLIENT, OTHER);
    let mut original = vec![0u8; 54 + seg.len()];
    wire::emit_ipv6_frame(&mut original, (CLIENT_MAC, PORT0_MAC), (CLIENT, OTHER), IpProtocol::Udp, &seg);
    for (error, mtu) in [(IcmpError::TimeExceeded, None), (IcmpError::FragNeeded { mtu: 1280 }, Some(1280))] {
        let mut f = original.clone();
        assert!(icmp_error(&mut f, 14, OWNED, PORT0_MAC, error));
        assert_eq!(f.len(), 14 + 1280, "as much as fits in the minimum MTU");
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!((eth.src_addr(), eth.dst_addr()), (PORT0_MAC, CLIENT_MAC));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (OWNED, CLIENT));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&icmp, OWNED, CLIENT).unwrap();
        let quoted = match (repr, mtu) {
            (Icmpv6Repr::TimeExceeded { original, .. }, None) => original,
            (Icmpv6Repr::PacketTooBig { mtu: m, original }, Some(want)) => {
                assert_eq!(m, want);
                original
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(quoted, &original[14..14 + quoted.len()], "the original packet, from its header on");
    }
}

#[test]
fn only_valid_neighbour_discovery_is_learned_from() {
    let na = |dst: Ipv6Addr, solicited| {
        let advert = Icmpv6Repr::NeighborAdvert {
            router: false,
            solicited,
            override_: true,
            target: CLIENT,
            lladdr: Some(CLIENT_MAC),
        };
        frame((CLIENT_MAC, PORT0_MAC), (CLIENT, dst), 255, &advert)
    };
    assert_eq!(neighbour_of(&na(OWNED, true)), Some((CLIENT, CLIENT_MAC)), "a solicited answer");
    assert_eq!(neighbour_of(&na(ALL_NODES, false)), Some((CLIENT, CLIENT_MAC)), "an announcement");
    assert_eq!(neighbour_of(&na(ALL_NODES, true)), None, "solicited yet multicast: invalid");
    let mut off_link = na(OWNED, true);
    off_link[21] = 64;
    assert_eq!(neighbour_of(&off_link), None, "hop limit below 255");
}

#[test]
fn no_icmpv6_error_goes_to_the_unspecified_address_or_a_group() {
    let udp = wire::UdpRepr { src_port: 5353, dst_port: 53, payload: b"x" };
    let mut seg = vec![0u8; udp.buffer_len()];
    for src in [Ipv6Addr::UNSPECIFIED, ALL_NODES] {
        udp.emit(&mut wire::UdpPacket::new_unchecked(&mut seg[..]), src, OTHER);
        let mut f = vec![0u8; 54 + seg.len()];
        wire::emit_ipv6_frame(&mut f, (CLIENT_MAC, PORT0_MAC), (src, OTHER), IpProtocol::Udp, &seg);
        let before = f.clone();
        assert!(!icmp_error(&mut f, 14, OWNED, PORT0_MAC, IcmpError::TimeExceeded), "{src}");
        assert_eq!(f, before, "unchanged");
    }
}
