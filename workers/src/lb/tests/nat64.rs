//! NAT64 fixtures: an IPv6 client through an IPv6 VIP to an IPv4 real server from an IPv4
//! local address, both ways (TOA of 20 bytes with the client's IPv6 address, the PROXY
//! protocol for IPv6 over IPv4, the TTL and hop limit, packet too big and fragmentation
//! needed with the translation's 20 bytes counted), and random segments.

use std::net::IpAddr;

use proptest::prelude::*;
use wire::{Ipv6Packet, Toa};

use super::ipv6::{balancer6, check6, runtime6, tcp6, udp6, CLIENT6, LIP6, RS6, VIP6};
use super::*;

/// tcp [VIP6]:80 and udp [VIP6]:53 to RS:8080 from LIP (NAT64), with `proxy`; VIP6/64 on
/// port slot 0, LIP/24 on port slot 1; the real server's MAC learned.
pub(super) fn nat64(s: &mut Store, proxy: conf::ProxyProtocol) -> Balancer<'_> {
    balancer64(s, &runtime64(proxy))
}

/// The balancer of `rt`, the IPv4 real server's MAC learned.
fn balancer64<'s>(s: &'s mut Store, rt: &conf::Runtime) -> Balancer<'s> {
    let learned: crate::neigh::Hops = [(IpAddr::from(RS), (RS_MAC.0, 1))].into_iter().collect();
    let services = build_services(rt, (0, 1), &mut Vec::new(), &learned).unwrap();
    Balancer::new(services, s.shard(), vec![P0, P1], 0)
}

/// The runtime of [`nat64`].
fn runtime64(proxy: conf::ProxyProtocol) -> conf::Runtime {
    let svc = |protocol, port| conf::Service {
        vip: VIP6.into(),
        port,
        protocol,
        scheduler: sched::Kind::Rr,
        local_addresses: vec![LIP.into()],
        reals: vec![conf::Real {
            addr: RS.into(),
            port: 8080,
            weight: 1,
            forward: conf::Forward::Fnat,
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
    let rt = conf::Runtime {
        addresses: vec![
            conf::IfAddr { port: 0, addr: VIP6.into(), prefix: 64, sapool: false },
            conf::IfAddr { port: 1, addr: LIP.into(), prefix: 24, sapool: false },
        ],
        neighbours: vec![],
        routes: vec![],
        services: vec![svc(conf::Protocol::Tcp, 80).into(), svc(conf::Protocol::Udp, 53).into()],
    };
    assert!(rt.services.iter().all(|s| s.is_nat64()));
    rt
}

/// The IPv4 frame's TTL and transport header and payload, after [`check`].
fn check4(
    f: &[u8],
    macs: (EthernetAddress, EthernetAddress),
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
) -> (u8, Vec<u8>) {
    check(f, macs, src, dst);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(f.len(), 14 + usize::from(ip.total_len()), "the frame is the packet");
    assert!(ip.dont_frag(), "DF: an atomic datagram");
    (ip.ttl(), ip.payload().to_vec())
}

#[test]
fn an_ipv6_client_reaches_an_ipv4_real_server_with_toa() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::Off);
    let (client, vip, lip, rs) = ((CLIENT6, 40000), (VIP6, 80), (LIP, LPORT_MIN), (RS, 8080));
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let (ttl, _) = check4(&f, (P1, RS_MAC), lip, rs);
    assert_eq!(ttl, 63, "routed: the hop limit, less one, is the TTL");
    let t = Tuple { proto: 6, src: CLIENT6.octets(), sport: 40000, dst: VIP6.octets(), dport: 80 };
    let (idx, _) = n.shard.lookup(&t).expect("the connection, by its IPv6 tuple");
    assert_eq!(n.shard.entry(idx).mode(), Some(Mode::Nat64));

    // The real server's SYN-ACK, with the MSS of an IPv4 path.
    let syn_ack = TcpRepr {
        src_port: rs.1,
        dst_port: lip.1,
        seq_number: 5000,
        ack_number: 1001,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: Some(1460),
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        payload: b"",
    };
    let mut seg = vec![0u8; syn_ack.buffer_len()];
    syn_ack.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), rs.0, lip.0);
    let mut f = frame(RS_MAC, P1, rs.0, lip.0, IpProtocol::Tcp, &seg);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (hops, seg) = check6(&f, (P0, CLIENT_MAC), vip, client);
    assert_eq!(hops, 63);
    let mss = TcpRepr::parse(&TcpPacket::new_checked(&seg[..]).unwrap(), VIP6, CLIENT6).unwrap().max_seg_size;
    assert_eq!(mss, Some(1460 - Toa::LEN_V6 as u16), "room left for the IPv6 TOA");

    // The handshake's last ACK carries the client's IPv6 address to the IPv4 real server.
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check4(&f, (P1, RS_MAC), lip, rs);
    let tcp = TcpPacket::new_checked(&seg[..]).unwrap();
    assert_eq!(Toa::find(tcp.options()), Some(Toa { addr: CLIENT6.into(), port: 40000 }));
    assert_eq!(tcp.header_len(), 20 + Toa::LEN_V6);

    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK | TcpFlags::PSH, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check4(&f, (P1, RS_MAC), lip, rs);
    assert!(seg.ends_with(b"GET / HTTP/1.0\r\n\r\n"));
    let mut f = tcp_frame(RS_MAC, P1, rs, lip, TcpFlags::ACK | TcpFlags::PSH, b"HTTP/1.0 200 OK\r\n\r\n");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (_, seg) = check6(&f, (P0, CLIENT_MAC), vip, client);
    assert!(seg.ends_with(b"HTTP/1.0 200 OK\r\n\r\n"));
    assert_eq!(State::from_u8(n.shard.entry(idx).state), State::Established);
}

#[test]
fn nat64_udp_datagrams_carry_an_ipv6_proxy_header_to_the_ipv4_real_server() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::V2);
    let (client, vip, lip, rs) = ((CLIENT6, 5353), (VIP6, 53), (LIP, LPORT_MIN), (RS, 8080));
    let mut f = udp6((CLIENT_MAC, P0), client, vip, b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let (_, seg) = check4(&f, (P1, RS_MAC), lip, rs);
    let payload = &seg[8..];
    assert_eq!((payload[13], payload.len()), (0x22, crate::lb::proxy::V2_LEN_V6 + 5), "AF_INET6 over UDP");
    assert_eq!((&payload[16..32], &payload[32..48]), (&CLIENT6.octets()[..], &VIP6.octets()[..]));
    assert!(payload.ends_with(b"query"));
    let mut f = udp_frame(RS_MAC, P1, rs, lip, b"answer");
    // Padded to Ethernet's minimum: the padding stays behind (check6 wants the frame whole).
    f.resize(60, 0);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    let (_, seg) = check6(&f, (P0, CLIENT_MAC), vip, client);
    assert_eq!(&seg[8..], b"answer");
}

#[test]
fn a_nat64_tcp_stream_gets_the_tcp6_proxy_line() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::V1);
    let (client, vip) = ((CLIENT6, 40000), (VIP6, 80));
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::SYN, b"");
    run(&mut n, 0, &mut f);
    let mut f = tcp6((CLIENT_MAC, P0), client, vip, TcpFlags::ACK | TcpFlags::PSH, b"GET /");
    TcpPacket::new_unchecked(&mut f[54..]).set_seq_number(1001);
    TcpPacket::new_unchecked(&mut f[54..]).fill_checksum(CLIENT6, VIP6);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (_, seg) = check4(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    let data = &seg[TcpPacket::new_checked(&seg[..]).unwrap().header_len()..];
    assert_eq!(data, b"PROXY TCP6 2001:db8::1 2001:db8::100 40000 80\r\nGET /");
}

#[test]
fn nat64_ttl_and_mtu_are_answered_in_each_sides_family() {
    let mut s = store();
    let mut n = nat64(&mut s, conf::ProxyProtocol::Off).with_mtus(vec![1500, 1500]);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), b"query");
    Ipv6Packet::new_unchecked(&mut f[14..]).set_hop_limit(1);
    let sent = f.clone();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::TimeExceeded);
    assert_eq!(f, sent, "answered as it came: IPv6");
    // 1520 bytes of IPv6 are 1500 of IPv4: they fit; one more does not, and the client
    // hears the IPv6 MTU that does. (The connection is the one the first datagram opened.)
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), &[7u8; 1520 - 48]);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(f.len(), 14 + 1500);
    let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, 5353), (VIP6, 53), &[7u8; 1521 - 48]);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1520 });
    // The real server's replies grow by 20 bytes: 1480 of IPv4 fit, 1481 with DF are
    // answered with the IPv4 MTU that fits, and without DF dropped (no fragmenting).
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), &[1u8; 1480 - 28]);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    assert_eq!(f.len(), 14 + 1500);
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), &[1u8; 1481 - 28]);
    let sent = f.clone();
    assert_eq!(run(&mut n, 1, &mut f), Verdict::FragNeeded { mtu: 1480 });
    assert_eq!(f, sent, "answered as it came: IPv4");
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_dont_frag(false);
    ip.fill_checksum();
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Drop(DropReason::TooBig));
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"late");
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_ttl(1);
    ip.fill_checksum();
    assert_eq!(run(&mut n, 1, &mut f), Verdict::TimeExceeded);
}

/// Emulated RSS on both ports of a group of two lcores: an IPv6 client's flow is owned by the
/// lcore its packets arrive on, and the local port it gets brings the real server's replies
/// (IPv6 for Full-NAT, IPv4 for NAT64) to that lcore too: no hand-off either way.
#[test]
fn rss_places_ipv6_and_nat64_flows_and_their_replies_on_the_receiving_lcore() {
    let reta = rss::Reta::round_robin(128, 2).unwrap();
    let spec = PortSpec { key: rss::MS_KEY, reta: reta.entries() };
    let receive = |me| Receive::new((me, 2), [Some(spec), Some(spec)], |_, q| Some(q));
    for nat64 in [false, true] {
        let (rt, make): (_, for<'s> fn(&'s mut Store, &conf::Runtime) -> Balancer<'s>) = if nat64 {
            (runtime64(conf::ProxyProtocol::Off), balancer64)
        } else {
            (runtime6(conf::ProxyProtocol::Off), balancer6)
        };
        let (mut s0, mut s1) = (store(), store());
        let mut lb = [make(&mut s0, &rt).with_receive(receive(0)), make(&mut s1, &rt).with_receive(receive(1))];
        let mut on = [0; 2];
        for sport in 3000..3064u16 {
            let mut f = udp6((CLIENT_MAC, P0), (CLIENT6, sport), (VIP6, 53), b"q");
            let p = wire::classify(&f).unwrap();
            let owners = [lb[0].owner(0, &p, &f), lb[1].owner(0, &p, &f)];
            let l = if owners[0].is_none() { 0 } else { 1 };
            assert_eq!(owners[1 - l].map(|(o, _)| usize::from(o)), Some(l), "both lcores name the owner");
            on[l] += 1;
            assert_eq!(run(&mut lb[l], 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
            let lport = UdpPacket::new_unchecked(&f[f.len() - 9..]).src_port();
            let reply = if nat64 {
                udp_frame(RS_MAC, P1, (RS, 8080), (LIP, lport), b"a")
            } else {
                udp6((RS_MAC, P1), (RS6, 8080), (LIP6, lport), b"a")
            };
            let p = wire::classify(&reply).unwrap();
            assert_eq!(lb[l].owner(1, &p, &reply), None, "the reply to local port {lport} lands on lcore {l}");
            assert_eq!(lb[1 - l].owner(1, &p, &reply).map(|(o, _)| usize::from(o)), Some(l));
        }
        assert!(on[0] > 0 && on[1] > 0, "RSS spreads 64 flows over both lcores: {on:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random IPv6 segments in and IPv4 segments out through NAT64 services: nothing panics,
    /// and whatever goes out is of the other family, with valid checksums and a length that
    /// is the frame's.
    #[test]
    fn random_nat64_segments_never_panic_and_leave_valid(
        segments in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), any::<u8>(), 0u16..4, proptest::collection::vec(any::<u8>(), 0..64)),
            1..24,
        ),
        proxy in prop_oneof![Just(conf::ProxyProtocol::Off), Just(conf::ProxyProtocol::V1), Just(conf::ProxyProtocol::V2)],
    ) {
        let mut s = store();
        let mut n = nat64(&mut s, proxy);
        for (inbound, tcp, flags, port, payload) in segments {
            let mut f = match (inbound, tcp) {
                (true, true) => tcp6((CLIENT_MAC, P0), (CLIENT6, 40000 + port), (VIP6, 80), TcpFlags::from_bits(flags), &payload),
                (true, false) => udp6((CLIENT_MAC, P0), (CLIENT6, 40000 + port), (VIP6, 53), &payload),
                (false, true) => tcp_segment((RS_MAC, P1), (RS, 8080), (LIP, LPORT_MIN + port), TcpFlags::from_bits(flags), (1, 2), &payload),
                (false, false) => udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN + port), &payload),
            };
            if let Verdict::Out { .. } = run(&mut n, if inbound { 0 } else { 1 }, &mut f) {
                let family = if inbound { EtherType::Ipv4 } else { EtherType::Ipv6 };
                prop_assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().ethertype(), family);
                prop_assert!(leaves_valid(&f), "a whole packet with valid checksums");
            }
        }
    }
}
