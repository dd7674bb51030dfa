//! The PROXY protocol, TCP and UDP.

use super::*;

#[test]
fn the_proxy_protocol_header_goes_before_the_first_byte_and_sequence_numbers_follow() {
    for (version, text) in [
        (conf::ProxyProtocol::V1, &b"PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\n"[..]),
        (
            conf::ProxyProtocol::V2,
            &[
                0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12, 198, 18, 0,
                1, 198, 18, 0, 100, 0x9c, 0x40, 0, 80,
            ][..],
        ),
    ] {
        let mut s = store();
        let shard = s.shard();
        let mut rt = runtime(&[(8080, 1)]);
        rt.services[0].proxy_protocol = version;
        let mut n = Balancer::new(
            build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(),
            shard,
            vec![P0, P1],
            0,
        );
        let n_hdr = text.len() as u32;
        let (cli, srv) = ((CLIENT_MAC, P0), (RS_MAC, P1));
        let (c, v, r, l) = ((CLIENT, 40000), (VIP, 80), (RS, 8080), (LIP, LPORT_MIN));
        let seg = |m, a, b, flags, sa, p: &[u8]| tcp_segment(m, a, b, flags, sa, p);
        // Handshake: client ISN 5000, server ISN 9000; nothing moves yet.
        let mut f = seg(cli, c, v, TcpFlags::SYN, (5000, 0), b"");
        assert!(matches!(run(&mut n, 0, &mut f), Verdict::Out { new: true, .. }));
        let mut f = seg(srv, r, l, TcpFlags::SYN | TcpFlags::ACK, (9000, 5001), b"");
        run(&mut n, 1, &mut f);
        assert_eq!(TcpPacket::new_checked(&f[34..]).unwrap().ack_number(), 5001);
        let mut f = seg(cli, c, v, TcpFlags::ACK, (5001, 9001), b"");
        run(&mut n, 0, &mut f);
        let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
        assert_eq!((tcp.seq_number(), tcp.payload().len(), tcp.header_len()), (5001, 0, 20), "no header yet, no TOA");
        // The first byte: the header in front of it.
        let mut f = seg(cli, c, v, TcpFlags::ACK | TcpFlags::PSH, (5001, 9001), b"GET /");
        run(&mut n, 0, &mut f);
        check(&f, (P1, RS_MAC), l, r);
        let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
        assert_eq!(tcp.seq_number(), 5001);
        assert_eq!(&tcp.payload()[..text.len()], text, "{version:?}");
        assert_eq!(&tcp.payload()[text.len()..], b"GET /");
        // Retransmitted: the header again.
        let mut f = seg(cli, c, v, TcpFlags::ACK | TcpFlags::PSH, (5001, 9001), b"GET /");
        run(&mut n, 0, &mut f);
        assert_eq!(TcpPacket::new_checked(&f[34..]).unwrap().payload().len(), text.len() + 5);
        // The real server acknowledges header and data; the client sees only its data acked.
        let mut f = seg(srv, r, l, TcpFlags::ACK, (9001, 5001 + n_hdr + 5), b"200");
        run(&mut n, 1, &mut f);
        check(&f, (P0, CLIENT_MAC), v, c);
        assert_eq!(TcpPacket::new_checked(&f[34..]).unwrap().ack_number(), 5006);
        // Part of the header acknowledged: the client's first byte is not.
        let mut f = seg(srv, r, l, TcpFlags::ACK, (9004, 5001 + 10), b"");
        run(&mut n, 1, &mut f);
        assert_eq!(TcpPacket::new_checked(&f[34..]).unwrap().ack_number(), 5001);
        // The client's next segment moves up by the header.
        let mut f = seg(cli, c, v, TcpFlags::ACK, (5006, 9004), b" HTTP/1.0");
        run(&mut n, 0, &mut f);
        check(&f, (P1, RS_MAC), l, r);
        let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
        assert_eq!((tcp.seq_number(), tcp.payload()), (5006 + n_hdr, &b" HTTP/1.0"[..]));
    }
}

#[test]
fn a_connection_keeps_the_proxy_protocol_version_it_started_with() {
    let mut s = store();
    let mut rt = runtime(&[(8080, 1)]);
    rt.services[0].proxy_protocol = conf::ProxyProtocol::V1;
    let mut n = fnat_of(&mut s, &rt);
    let (c, v) = ((CLIENT, 40000), (VIP, 80));
    let mut f = tcp_segment((CLIENT_MAC, P0), c, v, TcpFlags::SYN, (5000, 0), b"");
    run(&mut n, 0, &mut f);
    // The service moves to version 2; the connection open already goes on with version 1.
    rt.services[0].proxy_protocol = conf::ProxyProtocol::V2;
    let mut old = n.take_services();
    n.reconfigure(2, build_services(&rt, (0, 1), &mut old, &Default::default()).unwrap());
    let mut f = tcp_segment((CLIENT_MAC, P0), c, v, TcpFlags::ACK | TcpFlags::PSH, (5001, 9001), b"GET /");
    assert!(matches!(run(&mut n, 0, &mut f), Verdict::Out { new: false, .. }));
    let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
    assert!(tcp.payload().starts_with(b"PROXY TCP4 198.18.0.1 198.18.0.100 40000 80\r\nGET /"));
    // A new connection gets version 2's binary header.
    let mut f = tcp_segment((CLIENT_MAC, P0), (CLIENT, 40001), v, TcpFlags::SYN, (7000, 0), b"");
    run(&mut n, 0, &mut f);
    let mut f = tcp_segment((CLIENT_MAC, P0), (CLIENT, 40001), v, TcpFlags::ACK, (7001, 9001), b"x");
    run(&mut n, 0, &mut f);
    let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
    assert_eq!(tcp.payload().len(), 28 + 1);
    assert_eq!(&tcp.payload()[..12], b"\r\n\r\n\0\r\nQUIT\n");
}

#[test]
fn a_udp_flows_real_server_gets_a_version_2_header_in_front_of_every_datagram() {
    let mut s = store();
    let mut rt = runtime(&[(8080, 1)]);
    rt.services[1].proxy_protocol = conf::ProxyProtocol::V2;
    let mut n = fnat_of(&mut s, &rt);
    let header: &[u8] = &[
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x12, 0, 12, 198, 18, 0, 1, 198,
        18, 0, 100, 0x14, 0xe9, 0, 53,
    ];
    for (i, payload) in [&b"query"[..], b"second query"].into_iter().enumerate() {
        let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), payload);
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: i == 0 });
        check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(usize::from(udp.len()), 8 + header.len() + payload.len());
        assert_eq!(&udp.payload()[..header.len()], header, "UDP over IPv4, client 198.18.0.1:5353, VIP :53");
        assert_eq!(&udp.payload()[header.len()..], payload);
    }
    // The real server's answer comes back as it is.
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"answer");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Out { port: 0, dir: Dir::Out, new: false });
    check(&f, (P0, CLIENT_MAC), (VIP, 53), (CLIENT, 5353));
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(UdpPacket::new_checked(ip.payload()).unwrap().payload(), b"answer");
    // A datagram that would not fit the real server's port with the header: fragmentation
    // needed (DF), at the size that fits.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), &[7u8; 1472]);
    assert_eq!(run(&mut n, 0, &mut f), Verdict::FragNeeded { mtu: 1472 });
}
