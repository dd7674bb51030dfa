//! Who gets a new connection: persistence templates, thresholds, access lists.

use std::net::Ipv4Addr;

use super::*;

#[test]
fn a_persistent_service_sends_a_clients_new_connections_to_its_real_server_while_its_template_lives() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1), (8081, 1), (8082, 1)]);
    rt.services[1].scheduler = sched::Kind::Rr;
    rt.services[1].persistence = 60;
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);
    let real_of = |f: &[u8]| UdpPacket::new_checked(&f[34..]).unwrap().dst_port();
    let other = Ipv4Addr::new(198, 18, 0, 2);
    // rr would move every new flow on; persistence keeps the client on its first real server.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let first = real_of(&f);
    for port in 1001..1010 {
        let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, port), (VIP, 53), b"b");
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
        assert_eq!(real_of(&f), first, "client port {port}");
    }
    // Another client gets the scheduler's next pick (and its own template).
    let mut f = udp_frame(CLIENT_MAC, P0, (other, 1000), (VIP, 53), b"c");
    run(&mut n, 0, &mut f);
    assert_ne!(real_of(&f), first);
    // 11 flows and 2 templates; templates count towards no real server.
    assert_eq!(n.shard.used(), 13);
    let counts: u32 = n.services[1].backends.iter().map(|b| b.active_conns).sum();
    assert_eq!(counts, 11);
    // A packet that meets a template's key (port 0) is not a connection's.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 0), (VIP, 53), b"x");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::NoConnection));
    // A template lives on while flows it placed do (LVS): at 61 s nothing has gone.
    let s = 1_000_000_000u64;
    assert_eq!(n.advance(61 * s, usize::MAX), 0);
    assert_eq!(n.shard.used(), 13);
    // The flows expire at 300 s; the templates, which no flow holds any more, 60 s after.
    assert_eq!(n.advance(301 * s, usize::MAX), 11);
    assert_eq!(n.services[1].backends.iter().map(|b| b.active_conns).sum::<u32>(), 0);
    assert_eq!(n.shard.used(), 2);
    assert_eq!(n.advance(362 * s, usize::MAX), 2);
    // Then the scheduler places the client again.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 2000), (VIP, 53), b"d");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    // Ownership on several lcores: by client address alone for a persistent service.
    let a = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"");
    let b = udp_frame(CLIENT_MAC, P0, (CLIENT, 4321), (VIP, 53), b"");
    for lcores in 2..6 {
        let oa = owner_of(n.index(), lcores, &a);
        assert_eq!(oa, owner_of(n.index(), lcores, &b));
    }
}

/// Persistence by network (ipvsadm's `-M`): clients of one /24 share their template, so their
/// real server and their lcore; a client of another network has its own; when the flows
/// expire, the template they held is found again by its network and lets go.
#[test]
fn clients_of_one_network_share_their_persistence() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1), (8081, 1), (8082, 1)]);
    rt.services[1].scheduler = sched::Kind::Rr;
    rt.services[1].persistence = 60;
    rt.services[1].persistence_prefix = 24;
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);
    let real_of = |f: &[u8]| UdpPacket::new_checked(&f[34..]).unwrap().dst_port();
    let mut f = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 5, 1), 1000), (VIP, 53), b"a");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let first = real_of(&f);
    for host in [2u8, 77, 254] {
        let client = Ipv4Addr::new(198, 18, 5, host);
        let mut f = udp_frame(CLIENT_MAC, P0, (client, 1000), (VIP, 53), b"b");
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
        assert_eq!(real_of(&f), first, "{client}: the network's real server");
    }
    let mut f = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 6, 1), 1000), (VIP, 53), b"c");
    run(&mut n, 0, &mut f);
    assert_ne!(real_of(&f), first, "another network, the scheduler's next pick");
    // 5 flows, 2 templates (one a network).
    assert_eq!(n.shard.used(), 7);
    let s = 1_000_000_000u64;
    assert_eq!(n.advance(301 * s, usize::MAX), 5, "the flows expire");
    assert_eq!(n.advance(362 * s, usize::MAX), 2, "then the templates they held");
    assert_eq!(n.shard.used(), 0);
    // On several lcores, one network is one lcore's.
    let a = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 5, 1), 1000), (VIP, 53), b"");
    let b = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 5, 200), 4321), (VIP, 53), b"");
    for lcores in 2..6 {
        assert_eq!(owner_of(n.index(), lcores, &a), owner_of(n.index(), lcores, &b), "{lcores} lcores");
    }
}

#[test]
fn thresholds_share_out_over_lcores() {
    assert_eq!(Limits::share(0, 0, 4), Limits::default());
    assert_eq!(Limits::share(10, 0, 1), Limits { upper: 10, lower: 8 });
    assert_eq!(Limits::share(10, 4, 3), Limits { upper: 4, lower: 2 });
    assert_eq!(Limits::share(1, 0, 8), Limits { upper: 1, lower: 1 }, "never below one per lcore");
}

#[test]
fn a_real_at_its_upper_threshold_takes_no_new_connection_until_below_its_lower_one() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1)]);
    rt.services[1].reals[0].upper = 3;
    rt.services[1].reals[0].lower = 2;
    let mut n = Balancer::new(
        build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(),
        shard,
        vec![P0, P1],
        0,
    );
    let flow =
        |n: &mut Balancer<'_>, port: u16| run(n, 0, &mut udp_frame(CLIENT_MAC, P0, (CLIENT, port), (VIP, 53), b"q"));
    let s = 1_000_000_000u64;
    assert!(matches!(flow(&mut n, 1000), Verdict::Out { new: true, .. }));
    n.advance(50 * s, 1000);
    assert!(matches!(flow(&mut n, 1001), Verdict::Out { new: true, .. }));
    n.advance(100 * s, 1000);
    assert!(matches!(flow(&mut n, 1002), Verdict::Out { new: true, .. }));
    assert_eq!(flow(&mut n, 1003), Verdict::Drop(DropReason::Overloaded), "3 connections: overloaded");
    assert!(matches!(flow(&mut n, 1002), Verdict::Out { new: false, .. }), "existing flows go on");
    // UDP flows live 300 s: at 301 s two are left, not below the lower threshold of 2.
    n.advance(301 * s, 1000);
    assert_eq!(n.services()[1].backends[0].active_conns, 2);
    assert_eq!(flow(&mut n, 1004), Verdict::Drop(DropReason::Overloaded), "2 left: still overloaded");
    n.advance(351 * s, 1000);
    assert_eq!(n.services()[1].backends[0].active_conns, 1);
    assert!(matches!(flow(&mut n, 1005), Verdict::Out { new: true, .. }), "below the lower threshold: taken again");
}

#[test]
fn access_lists_refuse_new_connections_of_denied_clients_and_of_clients_not_allowed() {
    let net = |t: &str| conf::Prefix::parse(t).unwrap();
    let cases: [(&str, Vec<conf::Prefix>, Vec<conf::Prefix>, bool); 6] = [
        ("no lists", vec![], vec![], true),
        ("denied address", vec![net("198.18.0.1")], vec![], false),
        ("denied network", vec![net("198.18.0.0/24")], vec![], false),
        ("another network denied", vec![net("198.18.9.0/24")], vec![], true),
        ("not in the allow list", vec![], vec![net("198.18.9.0/24")], false),
        ("allowed, but denied first", vec![net("198.18.0.1")], vec![net("198.18.0.0/16")], false),
    ];
    for (what, deny, allow, admitted) in cases {
        let mut s = store();
        let shard = s.shard();
        let mut rt = runtime(&[(8080, 1)]);
        rt.services[1].deny = deny;
        rt.services[1].allow = allow;
        let mut n = Balancer::new(
            build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(),
            shard,
            vec![P0, P1],
            0,
        );
        let v = run(&mut n, 0, &mut udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q"));
        let expected = if admitted {
            Verdict::Out { port: 1, dir: Dir::In, new: true }
        } else {
            Verdict::Drop(DropReason::Denied)
        };
        assert_eq!(v, expected, "{what}");
    }
    // Allowed explicitly.
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1)]);
    rt.services[1].allow = vec![net("198.18.0.0/16")];
    let mut n = Balancer::new(
        build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(),
        shard,
        vec![P0, P1],
        0,
    );
    let v = run(&mut n, 0, &mut udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q"));
    assert!(matches!(v, Verdict::Out { new: true, .. }));
}

#[test]
fn a_long_access_list_answers_as_a_scan_of_it_does() {
    use crate::lb::service::Networks;
    // 1000 networks of lengths 8 to 32, and addresses in and around them.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 32) as u32
    };
    let list: Vec<conf::Prefix> = (0..1000)
        .map(|_| {
            let len = 8 + (next() % 25) as u8;
            let addr = conf::network(Ipv4Addr::from(next() & 0xc612_ffff | 0xc612_0000), len);
            conf::Prefix { addr: addr.into(), len }
        })
        .collect();
    let (hashed, scanned) = (Networks::new(&list), Networks::new(&list[..10]));
    for _ in 0..20_000 {
        let a = Ipv4Addr::from(next() & 0xc612_ffff | 0xc612_0000);
        assert_eq!(hashed.contains(a.into()), list.iter().any(|p| p.contains(a)), "{a}");
        assert_eq!(scanned.contains(a.into()), list[..10].iter().any(|p| p.contains(a)), "{a}");
    }
    assert!(list.iter().all(|p| hashed.contains(p.addr)));
    assert!(!Networks::new(&[]).contains(Ipv4Addr::new(198, 18, 0, 1).into()));
}

/// A SYN or a datagram from a group, a broadcast, nobody or the loopback opens nothing.
#[test]
fn no_connection_from_an_address_that_is_no_client() {
    let mut s = store();
    let mut n = fnat(&mut s, 1);
    for src in ["224.0.0.1", "255.255.255.255", "0.0.0.0", "127.0.0.1"] {
        let src: Ipv4Addr = src.parse().unwrap();
        let mut f = tcp_frame(CLIENT_MAC, P0, (src, 40000), (VIP, 80), TcpFlags::SYN, b"");
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::Malformed(wire::Error::Unsupported)), "{src}");
        let mut f = udp_frame(CLIENT_MAC, P0, (src, 5353), (VIP, 53), b"q");
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Drop(DropReason::Malformed(wire::Error::Unsupported)), "{src}");
    }
    assert_eq!(n.shard().used(), 0, "no entry");
}

/// A real server its health check took out (`down`): no new connections, its persistent
/// clients scheduled again, its established connections go on; up again, it is scheduled.
#[test]
fn a_real_server_down_by_its_health_check_keeps_its_connections_and_loses_its_clients_templates() {
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1), (8081, 1)]);
    rt.services[1].scheduler = sched::Kind::Rr;
    rt.services[1].persistence = 60;
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);
    let real_of = |f: &[u8]| UdpPacket::new_checked(&f[34..]).unwrap().dst_port();
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let first = real_of(&f);
    let other = if first == 8080 { 8081 } else { 8080 };
    // The client's real server goes down.
    let mut old = n.take_services();
    let i = rt.services[1].reals.iter().position(|r| r.port == first).unwrap();
    rt.services[1].reals[i].down = true;
    n.reconfigure(2, build_services(&rt, (0, 1), &mut old, &Default::default()).unwrap());
    // Its established flow goes on to it.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a2");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(real_of(&f), first);
    // A new flow of the same client leaves its template for the other real server.
    for port in 1001..1005 {
        let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, port), (VIP, 53), b"b");
        assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
        assert_eq!(real_of(&f), other, "client port {port}");
    }
    // Up again: the scheduler may pick it (the client's new template stays on the other).
    let mut old = n.take_services();
    rt.services[1].reals[i].down = false;
    n.reconfigure(3, build_services(&rt, (0, 1), &mut old, &Default::default()).unwrap());
    let mut f = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 0, 2), 1000), (VIP, 53), b"c");
    run(&mut n, 0, &mut f);
    let mut g = udp_frame(CLIENT_MAC, P0, (Ipv4Addr::new(198, 18, 0, 3), 1000), (VIP, 53), b"c");
    run(&mut n, 0, &mut g);
    assert!([real_of(&f), real_of(&g)].contains(&first), "rr places one of two new clients on it");
}
