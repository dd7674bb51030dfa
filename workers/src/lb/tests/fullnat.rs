//! Full-NAT fixtures: TCP and UDP through a service and back, refusals, lookup hints, TOA, TTL, the MTU, and random segments.

use super::*;

#[test]
fn a_tcp_connection_through_the_service_and_back() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let syn = TcpFlags::SYN;
    let ack = TcpFlags::ACK;
    let mut synack = TcpFlags::SYN;
    synack.insert(TcpFlags::ACK);

    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), syn, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));

    let mut f = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), synack, b"");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check(&f, (P0, CLIENT_MAC), (VIP, 80), (CLIENT, 40000));

    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), ack, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));

    let (idx, _) = n
        .shard
        .lookup(&Tuple { proto: 6, src: v4(CLIENT.octets()), sport: 40000, dst: v4(VIP.octets()), dport: 80 })
        .unwrap();
    let e = n.shard.entry(idx);
    assert_eq!(State::from_u8(e.state), State::Established);
    assert_eq!((e.packets, e.real, e.client_port), ([2, 1], 0, 0));
    assert_eq!(n.services[0].backends[0].active_conns, 1);

    // A second client gets the next local port.
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40001), (VIP, 80), syn, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN + 1), (RS, 8080));
}

#[test]
fn segments_without_a_connection_and_services_without_reals_are_refused() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::NoConnection));
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 81), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::NotOurs, "no service on port 81");
    drop(n);
    let mut s = store();
    let mut n = fnat(&mut s, 0);
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::NoReal), "weight 0 is quiescent");
}

#[test]
fn udp_flows_are_translated_both_ways_and_expire() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"answer");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check(&f, (P0, CLIENT_MAC), (VIP, 53), (CLIENT, 5353));
    // 300 s later (plus a tick) the flow is gone, and its real server's count with it.
    assert_eq!(n.services[1].backends[0].active_conns, 1);
    assert_eq!(n.advance(301 * 1_000_000_000, usize::MAX), 1);
    assert_eq!(n.services[1].backends[0].active_conns, 0);
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"late");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Drop(DropReason::NoConnection), "a reply after expiry is dropped");
}

#[test]
fn a_lookup_hint_is_used_only_for_its_own_tuple() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // The next packet of the flow, handed the hint of another flow's tuple (a burst's hints
    // out of step): it still finds its connection rather than creating a second one.
    let other = tuple_of(&udp_frame(CLIENT_MAC, P0, (CLIENT, 5354), (VIP, 53), b"x"));
    let hint = n.shard().hashed(other);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"again");
    let p = wire::classify(&f).unwrap();
    assert_eq!(n.process(0, &mut f, &p, Some(&hint)), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    // With its own hint, the same.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"third");
    let hint = n.shard().hashed(tuple_of(&f));
    let p = wire::classify(&f).unwrap();
    assert_eq!(n.process(0, &mut f, &p, Some(&hint)), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(n.shard().used(), 1, "one flow, one connection");
}

#[test]
fn full_nat_puts_the_client_address_in_the_handshake_ack_and_leaves_room_for_it() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut syn = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    assert_eq!(run(&mut n, 0, &mut syn), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // The SYN-ACK's MSS goes down by the option's length.
    let mut synack_flags = TcpFlags::SYN;
    synack_flags.insert(TcpFlags::ACK);
    let tcp = TcpRepr {
        src_port: 8080,
        dst_port: LPORT_MIN,
        seq_number: 5000,
        ack_number: 1001,
        flags: synack_flags,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: None,
        payload: b"",
    };
    let mut seg = vec![0u8; tcp.buffer_len()];
    tcp.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), RS, LIP);
    let mut f = frame(RS_MAC, P1, RS, LIP, IpProtocol::Tcp, &seg);
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check(&f, (P0, CLIENT_MAC), (VIP, 80), (CLIENT, 40000));
    let t = TcpRepr::parse(&TcpPacket::new_checked(&f[34..]).unwrap(), VIP, CLIENT).unwrap();
    assert_eq!((t.max_seg_size, t.window_scale, t.sack_permitted), (Some(1452), Some(7), true));

    // The handshake's ACK grows by the 8-byte option: kind 254, length 8, port, address.
    let mut ack = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"");
    let before = ack.len();
    assert_eq!(run(&mut n, 0, &mut ack), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&ack, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    assert_eq!(ack.len(), before + TOA_LEN);
    let ip = Ipv4Packet::new_checked(&ack[14..]).unwrap();
    assert_eq!(usize::from(ip.total_len()), ack.len() - 14);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(tcp.header_len(), 20 + TOA_LEN);
    assert_eq!(&ip.payload()[20..28], &[wire::Toa::KIND, 8, 0x9c, 0x40, 198, 18, 0, 1], "port 40000, 198.18.0.1");
    assert_eq!(
        wire::Toa::find(tcp.options()),
        Some(wire::Toa { addr: CLIENT.into(), port: 40000 }),
        "as a reader finds it"
    );
    // Later segments go as they are.
    let mut data = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"GET / HTTP/1.0\r\n\r\n");
    let before = data.len();
    assert_eq!(run(&mut n, 0, &mut data), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(data.len(), before);
    check(&data, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
}

#[test]
fn translated_packets_lose_one_ttl_and_an_expiring_one_is_answered_with_time_exceeded() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"query");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    assert_eq!(Ipv4Packet::new_checked(&f[14..]).unwrap().ttl(), 63, "routed: TTL 64 -> 63, checksum kept valid");
    // TTL 1 would reach zero here.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"query 2");
    Ipv4Packet::new_unchecked(&mut f[14..]).set_ttl(1);
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    let original = f[14..14 + 28].to_vec();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::TimeExceeded);
    assert!(crate::pipeline::icmp_error(&mut f, 14, VIP, P0, crate::pipeline::IcmpError::TimeExceeded));
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), (P0, CLIENT_MAC), "back to the sender");
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (VIP, CLIENT, IpProtocol::Icmp));
    let icmp = wire::Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (wire::Icmpv4Message::TimeExceeded, 0));
    assert_eq!(&ip.payload()[8..], &original[..], "the original header and 8 bytes quoted");
    assert_eq!(f.len(), 14 + 20 + 8 + 28);
}

#[test]
fn a_packet_bigger_than_the_out_ports_mtu_is_answered_with_fragmentation_needed_or_dropped() {
    let mut s = store();
    let shard = s.shard();
    let services = build_services(&runtime(&[(8080, 1)]), (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    // The real servers' side (port slot 1) takes 1400 bytes; the clients' 1500.
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0).with_mtus(vec![1500, 1400]);
    let big = vec![1u8; 1401 - 28];
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), &big);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1400 });
    Ipv4Packet::new_unchecked(&mut f[14..]).set_dont_frag(false);
    Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::TooBig));
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), &big[1..]);
    assert!(matches!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, .. }), "1400 bytes fit");
    // The answer of 1401 bytes goes to the clients' side, which takes it.
    let mut r = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), &big);
    assert!(matches!(run(&mut n, 1, &mut r), Verdict::Out { port: 0, .. }));
}

mod random_segments {
    //! Whatever segments come, in whatever order: nothing panics, and every frame the pipeline
    //! sends out carries valid IPv4 and transport checksums (a service with the PROXY protocol,
    //! thresholds and an access list; a second, UDP one with PROXY protocol version 2, whose
    //! second real server is reached by IP-in-IP).
    use super::*;
    use proptest::prelude::*;

    fn fnat_with_everything(s: &mut Store) -> Balancer<'_> {
        let shard = s.shard();
        let mut rt = runtime(&[(8080, 1), (53, 1)]);
        rt.services[0].proxy_protocol = conf::ProxyProtocol::V1;
        rt.services[0].reals[0].upper = 3;
        rt.services[0].deny = vec![conf::Prefix::parse("198.18.0.9").unwrap()];
        rt.services[1].reals[1].forward = conf::Forward::Tunnel;
        rt.services[1].persistence = 30;
        rt.services[1].proxy_protocol = conf::ProxyProtocol::V2;
        Balancer::new(
            build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(),
            shard,
            vec![P0, P1],
            0,
        )
        .with_mtus(vec![1500, 1400])
    }

    #[derive(Debug, Clone)]
    struct Seg {
        from_client: bool,
        tcp: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        port: u16,
        payload: Vec<u8>,
    }

    fn seg() -> impl Strategy<Value = Seg> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<u8>(),
            4990u32..5100,
            8990u32..9100,
            40000u16..40004,
            proptest::collection::vec(any::<u8>(), 0..1450),
        )
            .prop_map(|(from_client, tcp, flags, seq, ack, port, payload)| Seg {
                from_client,
                tcp,
                flags,
                seq,
                ack,
                port,
                payload,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics_and_sends_only_valid_frames(segs in proptest::collection::vec(seg(), 1..24)) {
            let mut s = store();
            let mut n = fnat_with_everything(&mut s);
            for (i, g) in segs.iter().enumerate() {
                let flags = TcpFlags::from_bits(g.flags);
                let lport = LPORT_MIN + (g.port - 40000);
                let mut f = match (g.from_client, g.tcp) {
                    (true, true) => tcp_segment((CLIENT_MAC, P0), (CLIENT, g.port), (VIP, 80), flags, (g.seq, g.ack), &g.payload),
                    (true, false) => udp_frame(CLIENT_MAC, P0, (CLIENT, g.port), (VIP, 53), &g.payload),
                    (false, true) => tcp_segment((RS_MAC, P1), (RS, 8080), (LIP, lport), flags, (g.ack, g.seq), &g.payload),
                    (false, false) => udp_frame(RS_MAC, P1, (RS, 8080), (LIP, lport), &g.payload),
                };
                let rx = if g.from_client { 0 } else { 1 };
                if let Verdict::Out { .. } = run(&mut n, rx, &mut f) {
                    prop_assert!(wire::classify_with(&f, wire::parse::Checks::ALL).is_ok(), "segment {i}: {g:?}");
                }
                n.advance((i as u64 + 1) * 7_000_000_000, 1000);
            }
        }
    }
}
