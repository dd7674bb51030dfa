//! ICMP errors about a connection's packets relayed to its other side: Full-NAT over IPv4 and
//! IPv6 both ways, NAT64 both ways (the message and its quote rebuilt in the other family, the
//! MTU told for it), errors not relayed (not to the quoted packet's sender, no connection,
//! protocol unreachable), the connection's owner found from the quote, and random quotes.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use wire::icmpv4::{DstUnreachable, TimeExceeded};
use wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, Ipv6Packet};

use super::ipv6::{fnat6, tcp6, udp6, CLIENT6, LIP6, VIP6};
use super::nat64::nat64;
use super::*;

/// A router on the real servers' network.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

/// An ICMP error from `src` to `dst`, received from `mac`, quoting up to 48 bytes of the IPv4
/// packet in `sent` (a frame).
fn error4(
    mac: EthernetAddress,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    icmp: fn(&[u8]) -> Icmpv4Repr<'_>,
    sent: &[u8],
) -> Vec<u8> {
    let original = &sent[14..sent.len().min(14 + 48)];
    let repr = icmp(original);
    let mut msg = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut msg[..]));
    let mut f = vec![0u8; 34 + msg.len()];
    wire::emit_ipv4_frame(&mut f, (mac, P1), (src, dst), IpProtocol::Icmp, &msg);
    f
}

/// An ICMPv6 error from `src` to `dst`, quoting the IPv6 packet in `sent` (a frame) whole.
fn error6(
    mac: EthernetAddress,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    icmp: fn(&[u8]) -> Icmpv6Repr<'_>,
    sent: &[u8],
) -> Vec<u8> {
    let repr = icmp(&sent[14..]);
    let mut msg = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut msg[..]), src, dst);
    let mut f = vec![0u8; 54 + msg.len()];
    wire::emit_ipv6_frame(&mut f, (mac, P0), (src, dst), IpProtocol::Icmpv6, &msg);
    f
}

/// The relayed ICMPv4 message of frame `f` (checksums verified), from `src` to `dst`: its
/// type, code, next-hop MTU, and the quoted IPv4 packet.
fn relayed4(
    f: &[u8],
    macs: (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv4Addr, Ipv4Addr),
) -> (u8, u8, u16, Vec<u8>) {
    let e = EthernetFrame::new_checked(f).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), macs, "MACs");
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (src, dst, IpProtocol::Icmp));
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(), "ICMP checksum");
    let inner = &ip.payload()[8..];
    assert!(Ipv4Packet::new_unchecked(inner).verify_checksum(), "the quoted header's checksum");
    (u8::from(icmp.msg_type()), icmp.msg_code(), icmp.next_hop_mtu(), inner.to_vec())
}

/// The relayed ICMPv6 message of frame `f`: type, code, MTU field, the quoted packet.
fn relayed6(
    f: &[u8],
    macs: (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv6Addr, Ipv6Addr),
) -> (u8, u8, u32, Vec<u8>) {
    let e = EthernetFrame::new_checked(f).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), macs, "MACs");
    let ip = Ipv6Packet::new_checked(e.payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (src, dst, IpProtocol::Icmpv6));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(src, dst), "ICMPv6 checksum");
    (u8::from(icmp.msg_type()), icmp.msg_code(), icmp.mtu(), ip.payload()[8..].to_vec())
}

/// The addresses and ports of a quoted IPv4 TCP or UDP packet.
fn quoted4(q: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = Ipv4Packet::new_unchecked(q);
    let l4 = &q[ip.header_len()..];
    (ip.src_addr(), u16::from_be_bytes([l4[0], l4[1]]), ip.dst_addr(), u16::from_be_bytes([l4[2], l4[3]]))
}

/// The same of a quoted IPv6 packet.
fn quoted6(q: &[u8]) -> (Ipv6Addr, u16, Ipv6Addr, u16) {
    let ip = Ipv6Packet::new_unchecked(q);
    let l4 = &q[40..];
    (ip.src_addr(), u16::from_be_bytes([l4[0], l4[1]]), ip.dst_addr(), u16::from_be_bytes([l4[2], l4[3]]))
}

#[test]
fn a_routers_fragmentation_needed_reaches_the_client_about_its_own_packet() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut sent = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut sent), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // A router on the real servers' side cannot forward it: it tells the local address.
    let frag: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), frag, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (t, code, mtu, inner) = relayed4(&f, (P0, CLIENT_MAC), (VIP, CLIENT));
    assert_eq!((t, code, mtu), (3, 4, 1400), "fragmentation needed, the router's MTU");
    assert_eq!(quoted4(&inner), (CLIENT, 40000, VIP, 80), "about the client's packet to the VIP");
    // A router on the clients' side cannot forward the balancer's answer: the real server
    // hears it about its own packet, from the local address.
    let mut answer = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), TcpFlags::SYN | TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 1, &mut answer), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let host: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::HostUnreachable, next_hop_mtu: 0, original };
    let mut f = error4(CLIENT_MAC, (Ipv4Addr::new(198, 18, 0, 9), VIP), host, &answer);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (t, code, _, inner) = relayed4(&f, (P1, RS_MAC), (LIP, RS));
    assert_eq!((t, code), (3, 1), "host unreachable");
    assert_eq!(quoted4(&inner), (RS, 8080, LIP, LPORT_MIN), "about the real server's packet");
}

#[test]
fn errors_that_are_not_a_connections_are_left_alone() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut sent = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut sent), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let port: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, next_hop_mtu: 0, original };
    // Not to the quoted packet's sender (the local address): a forgery.
    let mut f = error4(RS_MAC, (ROUTER, Ipv4Addr::new(198, 18, 1, 9)), port, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::NotOurs);
    // Protocol unreachable is about the packet, not the path.
    let proto: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::ProtoUnreachable, next_hop_mtu: 0, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), proto, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::NotOurs);
    // No such connection.
    let other = udp_frame(P1, RS_MAC, (LIP, 2000), (RS, 8080), b"x");
    let mut f = error4(RS_MAC, (ROUTER, LIP), port, &other);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::NotOurs);
    // A real one: port unreachable from the real server itself, relayed.
    let mut f = error4(RS_MAC, (RS, LIP), port, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (t, code, _, inner) = relayed4(&f, (P0, CLIENT_MAC), (VIP, CLIENT));
    assert_eq!((t, code, quoted4(&inner)), (3, 3, (CLIENT, 5353, VIP, 53)));
    let ttl: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), ttl, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    assert_eq!(relayed4(&f, (P0, CLIENT_MAC), (VIP, CLIENT)).0, 11, "time exceeded");
}

#[test]
fn ipv6_errors_are_relayed_within_ipv6() {
    let mut s = store();
    let mut n = fnat6(&mut s, conf::ProxyProtocol::Off);
    let mut sent = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut sent), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let ptb: fn(&[u8]) -> Icmpv6Repr<'_> = |original| Icmpv6Repr::PacketTooBig { mtu: 1400, original };
    let mut f = error6(RS_MAC, (ROUTER6, LIP6), ptb, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (t, code, mtu, inner) = relayed6(&f, (P0, CLIENT_MAC), (VIP6, CLIENT6));
    assert_eq!((t, code, mtu), (2, 0, 1400), "packet too big, the same MTU");
    assert_eq!(quoted6(&inner), (CLIENT6, 5353, VIP6, 53));
    assert!(inner.ends_with(b"query"), "the rest of the quote as it came");
}

#[test]
fn nat64_errors_change_family_and_mtu() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::Off);
    let mut sent = tcp6((CLIENT_MAC, P0), (CLIENT6, 40000), (VIP6, 80), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut sent), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // IPv4 fragmentation needed for 1400 bytes: the client hears packet too big for 1420.
    let frag: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), frag, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (t, code, mtu, inner) = relayed6(&f, (P0, CLIENT_MAC), (VIP6, CLIENT6));
    assert_eq!((t, code, mtu), (2, 0, 1420));
    assert_eq!(quoted6(&inner), (CLIENT6, 40000, VIP6, 80));
    // Port unreachable maps to its ICMPv6 code; a small MTU to IPv6's minimum.
    let small: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 576, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), small, &sent);
    run(&mut n, 1, &mut f);
    assert_eq!(relayed6(&f, (P0, CLIENT_MAC), (VIP6, CLIENT6)).2, 1280);
    // The client's side says packet too big for 1280: the real server hears fragmentation
    // needed for 1260, about its packet to the local address.
    let mut answer = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), TcpFlags::SYN | TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 1, &mut answer), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let ptb: fn(&[u8]) -> Icmpv6Repr<'_> = |original| Icmpv6Repr::PacketTooBig { mtu: 1280, original };
    let mut f = error6(CLIENT_MAC, ("2001:db8::9".parse().unwrap(), VIP6), ptb, &answer);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (t, code, mtu, inner) = relayed4(&f, (P1, RS_MAC), (LIP, RS));
    assert_eq!((t, code, mtu), (3, 4, 1260));
    assert_eq!(quoted4(&inner), (RS, 8080, LIP, LPORT_MIN));
}

/// RFC 7915's codes across the families; a UDP datagram's PROXY header counted in the MTU the
/// client hears; a quote longer than IPv4 can say is cut to what it can.
#[test]
fn nat64_codes_proxy_headers_and_long_quotes() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::V2);
    let mut sent = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut sent), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // Port unreachable: ICMP code 3 is ICMPv6 code 4.
    let port: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, next_hop_mtu: 0, original };
    let mut f = error4(RS_MAC, (RS, LIP), port, &sent);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (t, code, _, inner) = relayed6(&f, (P0, CLIENT_MAC), (VIP6, CLIENT6));
    assert_eq!((t, code, quoted6(&inner)), (1, 4, (CLIENT6, 5353, VIP6, 53)));
    // 1400 bytes of IPv4 are 1420 of IPv6, less the 52-byte PROXY header each datagram gets.
    let frag: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), frag, &sent);
    run(&mut n, 1, &mut f);
    assert_eq!(relayed6(&f, (P0, CLIENT_MAC), (VIP6, CLIENT6)).2, 1420 - 52);
    // Administratively prohibited: ICMPv6 code 1 is ICMP code 10. The quote says its packet
    // was 65535 bytes long: more than IPv4 says, cut to what it can.
    let answer = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"answer");
    let mut back = answer.clone();
    assert_eq!(run(&mut n, 1, &mut back), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    Ipv6Packet::new_unchecked(&mut back[14..]).set_payload_len(0xffff);
    let prohibited: fn(&[u8]) -> Icmpv6Repr<'_> =
        |original| Icmpv6Repr::DstUnreachable { reason: wire::icmpv6::DstUnreachable::AdminProhibited, original };
    let mut f = error6(CLIENT_MAC, ("2001:db8::9".parse().unwrap(), VIP6), prohibited, &back);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (t, code, _, inner) = relayed4(&f, (P1, RS_MAC), (LIP, RS));
    assert_eq!((t, code, quoted4(&inner)), (3, 10, (RS, 8080, LIP, LPORT_MIN)));
    assert_eq!(Ipv4Packet::new_unchecked(&inner[..]).total_len(), 0xffff);
}

/// On a TCP connection whose stream starts with a PROXY header, the client hears the quoted
/// sequence number in its own numbering.
#[test]
fn a_proxy_streams_quoted_sequence_number_is_the_clients() {
    let mut s = store();
    let mut rt = runtime(&[(8080, 1)]);
    let mut svc = (*rt.services[0]).clone();
    svc.proxy_protocol = conf::ProxyProtocol::V1;
    rt.services[0] = svc.into();
    let learned: crate::neigh::Hops = [(std::net::IpAddr::from(RS), (RS_MAC.0, 1))].into_iter().collect();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &learned).unwrap();
    let mut n = Balancer::new(services, s.shard(), vec![P0, P1], 0);
    let mut syn = tcp_segment((CLIENT_MAC, P0), (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, (1000, 0), b"");
    run(&mut n, 0, &mut syn);
    let mut first = tcp_segment((CLIENT_MAC, P0), (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, (1001, 1), b"GET /");
    run(&mut n, 0, &mut first);
    let mut later = tcp_segment((CLIENT_MAC, P0), (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, (1006, 1), b" HTTP/1.0");
    assert_eq!(run(&mut n, 0, &mut later), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let seq_at = |f: &[u8]| TcpPacket::new_unchecked(&f[34..]).seq_number();
    assert!(seq_at(&later) > 1006, "shifted by the header on its way");
    let frag: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original };
    let mut f = error4(RS_MAC, (ROUTER, LIP), frag, &later);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (_, _, _, inner) = relayed4(&f, (P0, CLIENT_MAC), (VIP, CLIENT));
    assert_eq!(u32::from_be_bytes(inner[24..28].try_into().unwrap()), 1006, "the client's own sequence number");
}

#[test]
fn an_errors_owner_is_its_connections() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut sent = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    run(&mut n, 0, &mut sent);
    let frag: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original };
    let f = error4(RS_MAC, (ROUTER, LIP), frag, &sent);
    let reply = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), TcpFlags::ACK, b"");
    for lcores in [2, 3, 8] {
        assert_eq!(owner_of(n.index(), lcores, &f), owner_of(n.index(), lcores, &reply), "{lcores} lcores");
    }
    let c = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"");
    let host: fn(&[u8]) -> Icmpv4Repr<'_> =
        |original| Icmpv4Repr::DstUnreachable { reason: DstUnreachable::HostUnreachable, next_hop_mtu: 0, original };
    let back = tcp_frame(P0, CLIENT_MAC, (VIP, 80), (CLIENT, 40000), TcpFlags::ACK, b"");
    let f = error4(CLIENT_MAC, (Ipv4Addr::new(198, 18, 0, 9), VIP), host, &back);
    for lcores in [2, 3, 8] {
        assert_eq!(owner_of(n.index(), lcores, &f), owner_of(n.index(), lcores, &c), "{lcores} lcores");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Errors whose quote is random or cut anywhere never panic, and whatever goes out is a
    /// whole ICMP message with valid checksums.
    #[test]
    fn random_quotes_never_panic(
        cut in 0usize..48,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        at in 0usize..48,
        six in any::<bool>(),
    ) {
        let mut s = store();
        let mut n = if six { nat64(&mut s, conf::ProxyProtocol::Off) } else { fnat(&mut s, 1) };
        let mut sent = if six {
            tcp6((CLIENT_MAC, P0), (CLIENT6, 40000), (VIP6, 80), TcpFlags::SYN, b"")
        } else {
            tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"")
        };
        run(&mut n, 0, &mut sent);
        let mut quote = sent[14..].to_vec();
        for (i, b) in noise.iter().enumerate() {
            let k = (at + i) % quote.len();
            quote[k] ^= b;
        }
        quote.truncate(cut.max(1));
        let repr = Icmpv4Repr::DstUnreachable { reason: DstUnreachable::FragNeeded, next_hop_mtu: 1400, original: &quote };
        let mut msg = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut msg[..]));
        let mut f = vec![0u8; 34 + msg.len()];
        wire::emit_ipv4_frame(&mut f, (RS_MAC, P1), (ROUTER, LIP), IpProtocol::Icmp, &msg);
        let Ok(p) = wire::classify(&f) else { return Ok(()) };
        // Its owner is found (or not) without a panic either.
        let _ = owner_of(n.index(), 2, &f);
        if let Verdict::Out { .. } = n.process(1, &mut f, &p, None) {
            let p = wire::classify_with(&f, wire::Checks::ALL);
            prop_assert!(p.is_ok(), "a valid frame: {:?}", p);
        }
    }
}
