//! Direct routing, NAT and IP-in-IP.

use super::*;

#[test]
fn direct_routing_changes_only_the_macs_and_tracks_the_client_side() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(80, 1)]);
    rt.services[0].reals[0].forward = conf::Forward::Dr;
    rt.services[0].local_addresses.clear();
    rt.services[1].local_addresses.clear();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);

    let syn = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    let mut f = syn.clone();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // Same bytes after the Ethernet header: addresses, ports and checksums untouched.
    check(&f, (P1, RS_MAC), (CLIENT, 40000), (VIP, 80));
    assert_eq!(f[14..], syn[14..]);
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&f, (P1, RS_MAC), (CLIENT, 40000), (VIP, 80));
    let (idx, _) = n
        .shard
        .lookup(&Tuple { proto: 6, src: v4(CLIENT.octets()), sport: 40000, dst: v4(VIP.octets()), dport: 80 })
        .unwrap();
    let e = n.shard.entry(idx);
    assert_eq!((State::from_u8(e.state), e.packets, e.mode()), (State::Established, [2, 0], Some(Mode::Dr)));
    // The real server answers the client directly, from the VIP: not the balancer's business
    // (bridged, if it passes at all).
    let mut f = tcp_frame(RS_MAC, P1, (VIP, 80), (CLIENT, 40000), TcpFlags::ACK, b"HTTP/1.0 200 OK\r\n");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::NotOurs);
    // A UDP service's datagrams, too; a Full-NAT real server of the same service still needs
    // a local address, which this one lacks.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"q");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::NoResource));
}

#[test]
fn nat_rewrites_the_destination_and_the_replies_source_and_owners_follow_the_client() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1)]);
    for svc in &mut rt.services {
        svc.reals[0].forward = conf::Forward::Nat;
        svc.local_addresses.clear();
    }
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);
    let mut synack = TcpFlags::SYN;
    synack.insert(TcpFlags::ACK);

    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (CLIENT, 40000), (RS, 8080));
    // The real server's reply, routed back through the balancer (to its MAC).
    let reply = tcp_frame(RS_MAC, P1, (RS, 8080), (CLIENT, 40000), synack, b"");
    let mut f = reply.clone();
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check(&f, (P0, CLIENT_MAC), (VIP, 80), (CLIENT, 40000));
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"GET /\r\n");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let (idx, _) = n
        .shard
        .lookup(&Tuple { proto: 6, src: v4(CLIENT.octets()), sport: 40000, dst: v4(VIP.octets()), dport: 80 })
        .unwrap();
    let e = n.shard.entry(idx);
    assert_eq!((State::from_u8(e.state), e.packets, e.mode()), (State::Established, [2, 1], Some(Mode::Nat)));

    // On several lcores, the client's packets and the real server's replies to that client
    // have one owner.
    let syn = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    for lcores in 2..6 {
        let a = owner_of(n.index(), lcores, &syn);
        let b = owner_of(n.index(), lcores, &reply);
        assert!(a.is_some() && a == b, "{lcores} lcores: {a:?} {b:?}");
    }
}

#[test]
fn ip_in_ip_wraps_the_unchanged_packet_in_a_header_to_the_real_server() {
    let mut s = store();
    let mut n = tunnel_fnat(&mut s);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"query");
    let inner = f[14..].to_vec();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    assert_eq!(f.len(), 14 + 20 + inner.len());
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr(), e.ethertype()), (P1, RS_MAC, EtherType::Ipv4));
    let outer = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(outer.verify_checksum());
    assert_eq!((outer.src_addr(), outer.dst_addr(), outer.protocol()), (LIP, RS, IpProtocol::IpIp));
    assert_eq!((outer.ttl(), outer.dont_frag(), usize::from(outer.total_len())), (64, true, 20 + inner.len()));
    assert_eq!(outer.payload(), &inner[..], "the client's packet, unchanged (TTL included)");
    // The same flow again: the connection carries it; the real server's answers to the
    // client do not cross the balancer.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"again");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    let mut r = udp_frame(RS_MAC, P1, (VIP, 53), (CLIENT, 1000), b"answer");
    assert_eq!(run(&mut n, 1, &mut r), Verdict::NotOurs);
}

#[test]
fn a_packet_too_big_to_encapsulate_is_answered_with_fragmentation_needed_or_dropped() {
    let mut s = store();
    let mut n = tunnel_fnat(&mut s);
    // 1481 bytes of IP: 1501 once wrapped.
    let payload = vec![7u8; 1481 - 28];
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), &payload);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1480 });
    let original = f[14..14 + 28].to_vec();
    assert!(crate::pipeline::icmp_error(&mut f, 14, VIP, P0, crate::pipeline::IcmpError::FragNeeded { mtu: 1480 }));
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), (P0, CLIENT_MAC));
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CLIENT));
    let icmp = wire::Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!((icmp.msg_type(), icmp.msg_code(), icmp.next_hop_mtu()), (wire::Icmpv4Message::DstUnreachable, 4, 1480));
    assert_eq!(&ip.payload()[8..], &original[..]);
    // Without DF the balancer would have to fragment: it drops and counts instead.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1001), (VIP, 53), &payload);
    Ipv4Packet::new_unchecked(&mut f[14..]).set_dont_frag(false);
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::TooBig));
    // 1480 bytes fit exactly.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1002), (VIP, 53), &payload[1..]);
    assert!(matches!(run(&mut n, 0, &mut f), Verdict::Out { new: true, .. }));
    assert_eq!(f.len(), 14 + 1500);
}
