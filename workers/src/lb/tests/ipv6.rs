//! IPv6 fixtures: Full-NAT (an IPv6 client to an IPv6 VIP, from an IPv6 local address to an
//! IPv6 real server, both ways; TOA of 20 bytes, the PROXY protocol for IPv6, the hop limit,
//! packet too big, the real server's MAC learned from neighbour discovery, random segments),
//! direct routing, NAT and IPv6-in-IPv6.

use std::net::{IpAddr, Ipv6Addr};

use proptest::prelude::*;
use wire::{Ipv6Packet, Toa};

use super::*;

pub(super) const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(super) const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub(super) const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);
pub(super) const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);

/// tcp [VIP6]:80 and udp [VIP6]:53 to [RS6]:8080 (weight 1), with `proxy`; VIP6/64 on port
/// slot 0, LIP6/64 on port slot 1.
pub(super) fn runtime6(proxy: conf::ProxyProtocol) -> conf::Runtime {
    runtime6_by(proxy, conf::Forward::Fnat)
}

/// [`runtime6`] with the real servers reached by `forward` (listening on the virtual ports
/// when it delivers packets unchanged).
fn runtime6_by(proxy: conf::ProxyProtocol, forward: conf::Forward) -> conf::Runtime {
    let rport = |port| if matches!(forward, conf::Forward::Dr | conf::Forward::Tunnel) { port } else { 8080 };
    let svc = |protocol, port| conf::Service {
        vip: VIP6.into(),
        port,
        protocol,
        scheduler: sched::Kind::Rr,
        local_addresses: vec![LIP6.into()],
        reals: vec![conf::Real {
            addr: RS6.into(),
            port: rport(port),
            weight: 1,
            forward,
            upper: 0,
            lower: 0,
            down: false,
        }],
        persistence: 0,
        persistence_prefix: 0,
        deny: vec![],
        allow: vec![],
        proxy_protocol: if protocol == conf::Protocol::Udp && proxy == conf::ProxyProtocol::V1 {
            conf::ProxyProtocol::Off
        } else {
            proxy
        },
        group: None,
        check: None,
    };
    conf::Runtime {
        addresses: vec![
            conf::IfAddr { port: 0, addr: VIP6.into(), prefix: 64, sapool: false },
            conf::IfAddr { port: 1, addr: LIP6.into(), prefix: 64, sapool: false },
        ],
        neighbours: vec![],
        routes: vec![],
        services: vec![svc(conf::Protocol::Tcp, 80).into(), svc(conf::Protocol::Udp, 53).into()],
    }
}

/// The balancer of [`runtime6`], the real server's MAC learned (by neighbour discovery).
pub(super) fn fnat6(s: &mut Store, proxy: conf::ProxyProtocol) -> Balancer<'_> {
    balancer6(s, &runtime6(proxy))
}

/// The balancer of `rt`, the real server's MAC learned (by neighbour discovery).
pub(super) fn balancer6<'s>(s: &'s mut Store, rt: &conf::Runtime) -> Balancer<'s> {
    let learned: crate::neigh::Hops = [(IpAddr::from(RS6), (RS_MAC.0, 1))].into_iter().collect();
    let services = build_services(rt, (0, 1), &mut Vec::new(), &learned).unwrap();
    Balancer::new(services, s.shard(), vec![P0, P1], 0)
}

/// An IPv6 TCP segment from `src` to `dst`.
pub(super) fn tcp6(
    macs: (EthernetAddress, EthernetAddress),
    (src, sport): (Ipv6Addr, u16),
    (dst, dport): (Ipv6Addr, u16),
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq_number: 1000,
        ack_number: if flags.contains(TcpFlags::ACK) { 5001 } else { 0 },
        flags,
        window_len: 64000,
        urgent_at: 0,
        max_seg_size: flags.contains(TcpFlags::SYN).then_some(1440),
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        payload,
    };
    let mut seg = vec![0u8; repr.buffer_len()];
    repr.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src, dst);
    let mut f = vec![0u8; 54 + seg.len()];
    wire::emit_ipv6_frame(&mut f, macs, (src, dst), IpProtocol::Tcp, &seg);
    f
}

/// An IPv6 UDP datagram from `src` to `dst`.
pub(super) fn udp6(
    macs: (EthernetAddress, EthernetAddress),
    (src, sport): (Ipv6Addr, u16),
    (dst, dport): (Ipv6Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let repr = UdpRepr { src_port: sport, dst_port: dport, payload };
    let mut seg = vec![0u8; repr.buffer_len()];
    repr.emit(&mut UdpPacket::new_unchecked(&mut seg[..]), src, dst);
    let mut f = vec![0u8; 54 + seg.len()];
    wire::emit_ipv6_frame(&mut f, macs, (src, dst), IpProtocol::Udp, &seg);
    f
}

/// Checks the frame's MACs, addresses and ports, that the transport checksum verifies, and
/// returns the hop limit and the transport header and payload.
pub(super) fn check6(
    f: &[u8],
    macs: (EthernetAddress, EthernetAddress),
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
) -> (u8, Vec<u8>) {
    let e = EthernetFrame::new_checked(f).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), macs, "MACs");
    let ip = Ipv6Packet::new_checked(e.payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (src.0, dst.0), "addresses");
    assert_eq!(e.payload().len(), 40 + usize::from(ip.payload_len()), "the payload length is the packet's");
    match ip.next_header() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum(src.0, dst.0), "TCP checksum");
            assert_eq!((t.src_port(), t.dst_port()), (src.1, dst.1), "ports");
        }
        other => {
            assert_eq!(other, IpProtocol::Udp);
            let u = UdpPacket::new_checked(ip.payload()).unwrap();
            assert!(u.verify_checksum(src.0, dst.0), "UDP checksum");
            assert_eq!((u.src_port(), u.dst_port()), (src.1, dst.1), "ports");
        }
    }
    (ip.hop_limit(), ip.payload().to_vec())
}

#[test]
fn an_ipv6_tcp_connection_through_the_service_and_back_with_toa() {
    let mut s = store();
    let mut n = fnat6(&mut s, conf::ProxyProtocol::Off);
    let (client, vip, lip, rs) = ((CLIENT6, 40000), (VIP6, 80), (LIP6, LPORT_MIN), (RS6, 8080));
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let (hop, _) = check6(&f, (P1, RS_MAC), lip, rs);
    assert_eq!(hop, 63, "routed: the hop limit goes down");

    let mut f = tcp6((RS_MAC, P1), rs, lip, TcpFlags::SYN | TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (_, seg) = check6(&f, (P0, CLIENT_MAC), vip, client);
    let mss = TcpRepr::parse(&TcpPacket::new_checked(&seg[..]).unwrap(), VIP6, CLIENT6).unwrap().max_seg_size;
    assert_eq!(mss, Some(1440 - Toa::LEN_V6 as u16), "room left for the IPv6 TOA");

    // The handshake's last ACK carries the client's IPv6 address and port: 20 bytes.
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check6(&f, (P1, RS_MAC), lip, rs);
    let tcp = TcpPacket::new_checked(&seg[..]).unwrap();
    assert_eq!(Toa::find(tcp.options()), Some(Toa { addr: CLIENT6.into(), port: 40000 }));
    assert_eq!(tcp.header_len(), 20 + Toa::LEN_V6);

    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK | TcpFlags::PSH, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check6(&f, (P1, RS_MAC), lip, rs);
    assert!(seg.ends_with(b"GET / HTTP/1.0\r\n\r\n"));
    let t = Tuple { proto: 6, src: CLIENT6.octets(), sport: 40000, dst: VIP6.octets(), dport: 80 };
    let (idx, _) = n.shard.lookup(&t).expect("the connection, by its IPv6 tuple");
    assert_eq!(State::from_u8(n.shard.entry(idx).state), State::Established);
}

#[test]
fn ipv6_udp_flows_are_translated_both_ways_with_a_proxy_header() {
    let mut s = store();
    let mut n = fnat6(&mut s, conf::ProxyProtocol::V2);
    let (client, vip, lip, rs) = ((CLIENT6, 5353), (VIP6, 53), (LIP6, LPORT_MIN), (RS6, 8080));
    let mut f = udp6((CLIENT_MAC, P0), client, vip, b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let (_, seg) = check6(&f, (P1, RS_MAC), lip, rs);
    // The version 2 header for UDP over IPv6 (52 bytes), then the datagram.
    let payload = &seg[8..];
    assert_eq!((payload[13], payload.len()), (0x22, crate::lb::proxy::V2_LEN_V6 + 5));
    assert_eq!(&payload[16..32], &CLIENT6.octets());
    assert!(payload.ends_with(b"query"));
    let mut f = udp6((RS_MAC, P1), rs, lip, b"answer");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check6(&f, (P0, CLIENT_MAC), vip, client);
}

#[test]
fn an_ipv6_tcp_stream_gets_the_proxy_header_in_front_of_its_first_byte() {
    let mut s = store();
    let mut n = fnat6(&mut s, conf::ProxyProtocol::V1);
    let (client, vip) = ((CLIENT6, 40000), (VIP6, 80));
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::SYN, b"");
    run(&mut n, 0, &mut f);
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK | TcpFlags::PSH, b"GET /");
    // The SYN's sequence number was 1000: the stream starts at 1001, this segment at 1000 in
    // the fixture's numbering, so move it to the start.
    TcpPacket::new_unchecked(&mut f[54..]).set_seq_number(1001);
    let l4 = f.len() - 54;
    let (src, dst) = (CLIENT6, VIP6);
    TcpPacket::new_unchecked(&mut f[54..54 + l4]).fill_checksum(src, dst);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check6(&f, (P1, RS_MAC), (LIP6, LPORT_MIN), (RS6, 8080));
    let data = &seg[TcpPacket::new_checked(&seg[..]).unwrap().header_len()..];
    assert_eq!(data, b"PROXY TCP6 2001:db8::1 2001:db8::100 40000 80\r\nGET /");
}

#[test]
fn the_hop_limit_runs_out_and_a_big_packet_is_too_big() {
    let mut s = store();
    let mut n = fnat6(&mut s, conf::ProxyProtocol::Off);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    Ipv6Packet::new_unchecked(&mut f[14..]).set_hop_limit(1);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::TimeExceeded);
    // 1500 bytes of IPv6 to a 1280-byte port: packet too big, whatever DF (IPv6 has none).
    let mut n = n.with_mtus(vec![1500, 1280]);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), &[7u8; 1500 - 48]);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1280 });
}

#[test]
fn an_ipv6_real_server_waits_for_its_neighbour() {
    let mut s = store();
    let services = build_services(&runtime6(conf::ProxyProtocol::Off), (0, 1), &mut Vec::new(), &Default::default());
    let mut n = Balancer::new(services.unwrap(), s.shard(), vec![P0, P1], 0);
    // Unresolved: asked for (from the local address's network), and no new connection.
    let want = crate::neigh::Want { hop: RS6.into(), port: 1, src: LIP6.into() };
    assert_eq!(n.wanted(), &[(want, false)]);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::NoReal));
    // The real server's advertisement teaches its MAC.
    let table: Vec<shm_layout::LearnedNeighbour> = (0..8).map(|_| Default::default()).collect();
    let epoch = std::sync::atomic::AtomicU64::new(0);
    let mut n = n.with_neighbours(&table, &epoch);
    assert!(n.learn(1, RS6, RS_MAC));
    n.resolve(&crate::neigh::learned([&table[..]], 0));
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
}

#[test]
fn ipv6_direct_routing_sends_the_frame_unchanged_to_the_real_servers_mac() {
    let mut s = store();
    let mut n = balancer6(&mut s, &runtime6_by(conf::ProxyProtocol::Off, conf::Forward::Dr));
    let sent = tcp6((CLIENT_MAC, P0), (CLIENT6, 40000), (VIP6, 80), TcpFlags::SYN, b"");
    let mut f = sent.clone();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let (_, seg) = check6(&f, (P1, RS_MAC), (CLIENT6, 40000), (VIP6, 80));
    assert_eq!((&f[14..], &seg[..]), (&sent[14..], &sent[54..]), "the IPv6 packet is untouched, hop limit included");
}

#[test]
fn ipv6_nat_rewrites_the_destination_and_the_replies_source() {
    let mut s = store();
    let mut n = balancer6(&mut s, &runtime6_by(conf::ProxyProtocol::Off, conf::Forward::Nat));
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check6(&f, (P1, RS_MAC), (CLIENT6, 5353), (RS6, 8080));
    let mut f = udp6((RS_MAC, P1), (RS6, 8080), (CLIENT6, 5353), b"answer");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check6(&f, (P0, CLIENT_MAC), (VIP6, 53), (CLIENT6, 5353));
}

#[test]
fn ipv6_in_ipv6_carries_the_packet_whole_to_the_real_server() {
    let mut s = store();
    let mut n = balancer6(&mut s, &runtime6_by(conf::ProxyProtocol::Off, conf::Forward::Tunnel));
    let sent = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    let mut f = sent.clone();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), (P1, RS_MAC));
    let outer = Ipv6Packet::new_checked(e.payload()).unwrap();
    assert_eq!((outer.src_addr(), outer.dst_addr(), outer.next_header()), (LIP6, RS6, IpProtocol::Ipv6));
    assert_eq!((outer.hop_limit(), outer.payload()), (64, &sent[14..]), "the inner packet whole");
    // Too big with the outer header for a 1400-byte port: packet too big, naming what fits.
    let mut n = n.with_mtus(vec![1500, 1400]);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5354), (VIP6, 53), &[1u8; 1400 - 48]);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1360 });
}

#[test]
fn ipv6_access_lists_refuse_and_admit_clients_by_network() {
    let mut rt = runtime6(conf::ProxyProtocol::Off);
    let net = |t: &str| conf::Prefix::parse(t).unwrap();
    let mut s = (*rt.services[1]).clone();
    s.deny = vec![net("2001:db8:0:bad::/64")];
    // Enough networks to be hashed rather than scanned.
    s.allow = (0..40).map(|i| net(&format!("2001:db8:{i:x}::/48"))).collect();
    rt.services[1] = s.into();
    let mut st = store();
    let mut n = balancer6(&mut st, &rt);
    let from = |client: &str| udp6((CLIENT_MAC, P0), (client.parse().unwrap(), 5353), (VIP6, 53), b"q");
    assert_eq!(run(&mut n, 0, &mut from("2001:db8:0:bad::1")), Verdict::Drop(DropReason::Denied), "denied");
    assert_eq!(run(&mut n, 0, &mut from("2001:db9::1")), Verdict::Drop(DropReason::Denied), "not allowed");
    let admitted = run(&mut n, 0, &mut from("2001:db8:27::1"));
    assert_eq!(admitted, Verdict::Out { port: 1, dir: Dir::In, new: true }, "in an allowed /48");
}

#[test]
fn a_static_ipv6_neighbour_needs_no_neighbour_discovery() {
    let mut rt = runtime6(conf::ProxyProtocol::Off);
    rt.neighbours.push(conf::Neighbour { addr: RS6.into(), mac: RS_MAC.0, port: 1 });
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut st = store();
    let mut n = Balancer::new(services, st.shard(), vec![P0, P1], 0);
    assert!(n.wanted().is_empty(), "nothing to solicit: {:?}", n.wanted());
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check6(&f, (P1, RS_MAC), (LIP6, LPORT_MIN), (RS6, 8080));
}

#[test]
fn an_ipv6_real_server_behind_a_route_is_reached_through_its_gateway() {
    let mut rt = runtime6(conf::ProxyProtocol::Off);
    let (far, gw): (Ipv6Addr, Ipv6Addr) = ("2001:db8:2::2".parse().unwrap(), "2001:db8:1::1".parse().unwrap());
    rt.routes.push(conf::Route { prefix: "2001:db8:2::".parse().unwrap(), len: 48, via: gw.into() });
    let mut svc = (*rt.services[1]).clone();
    svc.reals[0].addr = far.into();
    rt.services[1] = svc.into();
    let learned: crate::neigh::Hops = [(IpAddr::from(gw), (RS_MAC.0, 1))].into_iter().collect();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &learned).unwrap();
    let mut st = store();
    let mut n = Balancer::new(services, st.shard(), vec![P0, P1], 0);
    // The gateway is what neighbour discovery resolves, from the local address's network.
    let want = crate::neigh::Want { hop: gw.into(), port: 1, src: LIP6.into() };
    assert!(n.wanted().contains(&(want, true)), "{:?}", n.wanted());
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check6(&f, (P1, RS_MAC), (LIP6, LPORT_MIN), (far, 8080));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random IPv6 TCP and UDP segments, both ways, through the services: nothing panics, and
    /// whatever goes out has valid checksums and an IPv6 length that is the frame's.
    #[test]
    fn random_ipv6_segments_never_panic_and_leave_valid(
        segments in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), any::<u8>(), 0u16..4, proptest::collection::vec(any::<u8>(), 0..64)),
            1..24,
        ),
    ) {
        let mut s = store();
        let mut n = fnat6(&mut s, conf::ProxyProtocol::Off);
        for (inbound, tcp, flags, port, payload) in segments {
            let (macs, src, dst, rx) = if inbound {
                ((CLIENT_MAC, P0), (CLIENT6, 40000 + port), (VIP6, if tcp { 80 } else { 53 }), 0)
            } else {
                ((RS_MAC, P1), (RS6, 8080), (LIP6, LPORT_MIN + port), 1)
            };
            let mut f = if tcp {
                tcp6(macs, src, dst, TcpFlags::from_bits(flags), &payload)
            } else {
                udp6(macs, src, dst, &payload)
            };
            if let Verdict::Out { .. } = run(&mut n, rx, &mut f) {
                prop_assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().ethertype(), EtherType::Ipv6);
                prop_assert!(leaves_valid(&f), "a whole packet with valid checksums");
            }
        }
    }
}
