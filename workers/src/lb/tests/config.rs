//! Generations, steering between lcores, counters and next hops learned from ARP.

use super::*;

#[test]
fn local_ports_are_shared_out_by_lcore_and_owners_agree() {
    let real = Real::new(RS, 8080, RS_MAC, 1, conf::Forward::Fnat);
    let ids = [sched::identity(std::net::SocketAddr::from((RS, 8080)))];
    let mk = |slot| {
        let b = vec![Backend::new(1)];
        let sch = Scheduler::with_ids(sched::Kind::Rr, &b, &ids).unwrap();
        Service::new(VIP, 80, 6, sch, b, vec![real], vec![LIP.into()], (slot, 3))
    };
    for slot in 0..3u16 {
        let s = mk(slot);
        assert_eq!(s.next_lport % 3, slot, "first port of lcore {slot}");
        assert!(s.next_lport >= LPORT_MIN && s.next_lport < LPORT_MIN + 3);
        assert_eq!(s.lport_step, 3);
    }
    // Whatever lcore a SYN's 5-tuple hash names creates the connection with a local port
    // whose reply comes back to that same lcore, also across the wrap of the port range.
    let mut all: Vec<Service> = (0..3).map(mk).collect();
    for i in 0..30_000u32 {
        let h = (i % 3) as usize;
        let s = &mut all[h];
        let p = s.next_lport;
        s.next_lport = p.checked_add(s.lport_step).unwrap_or(s.lport_first);
        assert_eq!(p % 3, h as u16, "lport {p} of lcore {h}");
        assert!(p >= LPORT_MIN);
    }
    let services = vec![mk(0)];
    // A reply to the local address belongs to the lcore its destination port names.
    let reply = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, 2000), TcpFlags::ACK, b"");
    assert_eq!(owner_of(&Index::build(&services), 3, &reply), Some(2000 % 3));
    // A client flow always belongs to one lcore; other flows spread.
    let mut seen = [0usize; 3];
    for port in 40000..40300 {
        let f = tcp_frame(CLIENT_MAC, P0, (CLIENT, port), (VIP, 80), TcpFlags::SYN, b"");
        let o = owner_of(&Index::build(&services), 3, &f).unwrap();
        assert_eq!(owner_of(&Index::build(&services), 3, &f), Some(o));
        seen[usize::from(o)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
    let other = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (Ipv4Addr::new(198, 18, 0, 9), 80), TcpFlags::SYN, b"");
    assert_eq!(owner_of(&Index::build(&services), 3, &other), None, "not Full-NAT traffic");
    assert_eq!(owner_of(&Index::build(&services), 1, &reply), None, "one lcore owns everything");
}

#[test]
fn a_new_generation_keeps_connections_of_kept_reals_and_expires_those_of_removed_ones() {
    let mut s = store();
    let shard = s.shard();
    let services =
        build_services(&runtime(&[(8080, 1), (8081, 1)]), (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, shard, vec![P0, P1], 0);
    let services = n.take_services();
    n.reconfigure(1, services);
    // Two UDP flows: wlc places them on 8080 and 8081.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1001), (VIP, 53), b"b");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    let ports: Vec<u16> = n.services[1].reals.iter().map(|r| r.port).collect();
    assert_eq!(n.services[1].backends.iter().map(|b| b.active_conns).collect::<Vec<_>>(), vec![1, 1], "{ports:?}");

    // Generation 2: 8080 removed, 8082 added, the TCP service unchanged (kept as it is).
    let mut old = n.take_services();
    let tcp_sched = old[0].scheduler.kind();
    let next = build_services(&runtime(&[(8081, 1), (8082, 1)]), (0, 1), &mut old, &Default::default()).unwrap();
    n.reconfigure(2, next);
    assert_eq!(n.services[0].scheduler.kind(), tcp_sched);
    assert_eq!(
        n.services[1].backends.iter().map(|b| b.active_conns).collect::<Vec<_>>(),
        vec![1, 0],
        "8081 keeps its connection count, 8082 starts at zero"
    );
    // The flow on 8081 goes on; the one on 8080 is expired by its next packet, which opens a
    // new connection on a real server that exists.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1001), (VIP, 53), b"b2");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN + 1), (RS, 8081));
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a2");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::Out { port: 1, dir: Dir::In, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN + 2), (RS, 8082));
    // A reply for the removed real's connection finds nothing to translate.
    let mut f = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"late");
    assert_eq!(run(&mut n, 1, &mut f), Verdict::Drop(DropReason::NoConnection));
    assert_eq!(n.shard.used(), 2);

    // Generation 3: the UDP service removed. Its flows expire on their next packet.
    let mut old = n.take_services();
    let mut rt = runtime(&[(8081, 1), (8082, 1)]);
    rt.services.pop();
    n.reconfigure(3, build_services(&rt, (0, 1), &mut old, &Default::default()).unwrap());
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1001), (VIP, 53), b"b3");
    assert_eq!(run(&mut n, 0, &mut f), Verdict::NotOurs);
    assert_eq!(n.shard.used(), 1);
}

/// A generation the worker cannot build (a real server with no next hop: only a mismatch of
/// builds gets one past the primary) leaves the services it runs whole.
#[test]
fn a_generation_that_cannot_be_built_leaves_the_old_services_whole() {
    let mut old =
        build_services(&runtime(&[(8080, 1), (8081, 1)]), (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let kept: Vec<_> = old.iter().map(|s| (s.vip, s.port, s.reals.len())).collect();
    let mut rt = runtime(&[(8081, 1)]);
    rt.services[1].reals[0].addr = Ipv4Addr::new(10, 9, 9, 9).into();
    let e = build_services(&rt, (0, 1), &mut old, &Default::default()).unwrap_err();
    assert!(matches!(e, crate::lb::BuildError::NoNextHop(a) if a == Ipv4Addr::new(10, 9, 9, 9)), "{e}");
    assert_eq!(old.iter().map(|s| (s.vip, s.port, s.reals.len())).collect::<Vec<_>>(), kept);
}

#[test]
fn per_service_and_per_real_counters_follow_them_across_generations_and_zero_on_request() {
    use std::sync::atomic::Ordering::Relaxed;
    let table: Vec<shm_layout::ServiceCounters> = (0..4).map(|_| Default::default()).collect();
    let reals: Vec<shm_layout::RealCounters> = (0..4).map(|_| Default::default()).collect();
    let mut s = store();
    let shard = s.shard();
    let rt = runtime(&[(8080, 1)]);
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(Vec::new(), shard, vec![P0, P1], 0).with_stats(&table, &reals);
    n.reconfigure(1, services);
    let udp_key = shm_layout::ServiceCounters::key_of(17, VIP, 53);
    let slot = table.iter().position(|c| c.key.load(Relaxed) == udp_key).unwrap();
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"query");
    run(&mut n, 0, &mut f);
    let mut r = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"answer!");
    run(&mut n, 1, &mut r);
    let c = &table[slot];
    let got = c.counts().map(|a| a.load(Relaxed));
    assert_eq!(got, [1, 1, 1, f.len() as u64, r.len() as u64]);
    let real_key = shm_layout::RealCounters::key_of(RS, 8080);
    let rslot = reals.iter().position(|c| c.service.load(Relaxed) == udp_key).unwrap();
    let c = &reals[rslot];
    assert_eq!(c.real.load(Relaxed), real_key);
    let got = c.counts().map(|a| a.load(Relaxed));
    assert_eq!(got, [1, 1, 1, f.len() as u64, r.len() as u64], "the real server counts the same");
    assert_eq!(reals.iter().filter(|c| c.service.load(Relaxed) != 0).count(), 2, "one real per service");
    // Zeroing the TCP service leaves the UDP one alone; zeroing all clears it.
    n.zero_counters(shm_layout::ServiceCounters::key_of(6, VIP, 80));
    assert_eq!(table[slot].in_packets.load(Relaxed), 1);
    assert_eq!(reals[rslot].in_packets.load(Relaxed), 1);
    n.zero_counters(0);
    assert_eq!(table[slot].in_packets.load(Relaxed), 0);
    assert_eq!(reals[rslot].in_packets.load(Relaxed), 0);
    assert_eq!(table[slot].key.load(Relaxed), udp_key, "zeroed, not freed");
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"query");
    run(&mut n, 0, &mut f);
    // The next generation drops the TCP service: its slot is freed and zeroed; the UDP
    // service keeps its slot and counts.
    let mut rt2 = runtime(&[(8080, 1)]);
    rt2.services.remove(0);
    let mut old = n.take_services();
    n.reconfigure(2, build_services(&rt2, (0, 1), &mut old, &Default::default()).unwrap());
    assert_eq!(table.iter().filter(|c| c.key.load(Relaxed) != 0).count(), 1);
    assert_eq!(table[slot].in_packets.load(Relaxed), 1);
    assert_eq!(reals.iter().filter(|c| c.service.load(Relaxed) != 0).count(), 1, "the TCP real's slot is freed");
    assert_eq!(reals[rslot].in_packets.load(Relaxed), 1);
}

#[test]
fn a_real_without_a_static_neighbour_waits_for_arp_then_takes_connections() {
    use crate::pipeline::{Action, DropReason, Pipeline, PortCtx};
    let table: Vec<shm_layout::LearnedNeighbour> = (0..8).map(|_| Default::default()).collect();
    let epoch = std::sync::atomic::AtomicU64::new(0);
    let mut s = store();
    let shard = s.shard();
    let mut rt = runtime(&[(8080, 1)]);
    rt.neighbours.clear();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let n = Balancer::new(services, shard, vec![P0, P1], 0).with_neighbours(&table, &epoch);
    let want = crate::neigh::Want { hop: RS.into(), port: 1, src: LIP.into() };
    assert_eq!(n.wanted(), &[(want, false)], "slot 0 asks for RS from LIP on port 1");
    let ports = vec![
        PortCtx { mac: P0, peer: 1, addrs: vec![VIP], addrs6: vec![], exception: None, is_exception: false },
        PortCtx { mac: P1, peer: 0, addrs: vec![LIP], addrs6: vec![], exception: None, is_exception: false },
    ];
    let mut p = Pipeline::with_balancer(ports, n);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q");
    assert_eq!(p.process(0, &mut f), Action::Drop(DropReason::NoReal), "not resolved yet");
    // A neighbour nobody needs is not learned; the real server's answer is.
    p.process(1, &mut arp_reply(Ipv4Addr::new(198, 18, 1, 9), EthernetAddress([2, 0, 0, 0, 1, 9])));
    assert_eq!(epoch.load(std::sync::atomic::Ordering::Relaxed), 0);
    p.process(1, &mut arp_reply(RS, RS_MAC));
    assert_eq!(epoch.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The worker sees the epoch move and resolves from every worker's table.
    let fnat = p.balancer_mut().unwrap();
    fnat.resolve(&crate::neigh::learned([&table[..]], 0));
    assert_eq!(fnat.wanted(), &[(want, true)]);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q");
    assert_eq!(p.process(0, &mut f), Action::Nat { port: 1, inbound: true, new: true });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    // Confirming the same MAC changes nothing.
    p.process(1, &mut arp_reply(RS, RS_MAC));
    assert_eq!(epoch.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_frame_that_is_not_the_one_classified_is_parsed_again() {
    use crate::pipeline::{Action, Pipeline, PortCtx};
    let mut s = store();
    let ports = vec![
        PortCtx { mac: P0, peer: 1, addrs: vec![VIP], addrs6: vec![], exception: None, is_exception: false },
        PortCtx { mac: P1, peer: 0, addrs: vec![LIP], addrs6: vec![], exception: None, is_exception: false },
    ];
    let mut p = Pipeline::with_balancer(ports, fnat(&mut s, 1));
    // One datagram classified, another (of another flow and length) processed in its place:
    // a caller out of step. The second is translated as its own flow.
    let classified = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"a");
    let mut other = udp_frame(CLIENT_MAC, P0, (CLIENT, 2000), (VIP, 53), b"longer");
    p.classify([(Some(0), &classified[..])].into_iter(), false);
    assert_eq!(p.process(0, &mut other), Action::Nat { port: 1, inbound: true, new: true });
    let shard = p.balancer_mut().unwrap().shard();
    let clients: Vec<u16> =
        (0..shard.capacity()).map(|i| shard.entry(i)).filter(|e| e.in_use()).map(|e| e.cport).collect();
    assert_eq!(clients, [2000]);
}

/// Each real server's connections now, in its counter slot: a new connection is inactive,
/// ESTABLISHED makes it active, leaving ESTABLISHED inactive again, expiry takes it away (LVS's
/// activeconns and inactconns); zeroing the counters leaves them; a replacement adopting the
/// table sets them from it (correcting a wrong count).
#[test]
fn each_real_server_counts_its_connections_now_active_and_inactive_as_lvs_does() {
    use std::sync::atomic::Ordering::Relaxed;
    let table: Vec<shm_layout::ServiceCounters> = (0..4).map(|_| Default::default()).collect();
    let reals: Vec<shm_layout::RealCounters> = (0..4).map(|_| Default::default()).collect();
    let mut s = store();
    let shard = s.shard();
    let services = build_services(&runtime(&[(8080, 1)]), (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(Vec::new(), shard, vec![P0, P1], 0).with_stats(&table, &reals);
    n.reconfigure(1, services);
    let slot_of = |port: u16| {
        let key = shm_layout::ServiceCounters::key_of(if port == 80 { 6 } else { 17 }, VIP, port);
        reals.iter().position(|c| c.service.load(Relaxed) == key).unwrap()
    };
    let (tcp, udp) = (slot_of(80), slot_of(53));
    let now = |slot: usize| reals[slot].now();
    let mut synack = TcpFlags::SYN;
    synack.insert(TcpFlags::ACK);

    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::SYN, b"");
    run(&mut n, 0, &mut f);
    assert_eq!(now(tcp), (0, 1), "a new connection is inactive");
    let mut f = tcp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), synack, b"");
    run(&mut n, 1, &mut f);
    assert_eq!(now(tcp), (0, 1));
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"");
    run(&mut n, 0, &mut f);
    assert_eq!(now(tcp), (1, 0), "established: active");
    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40001), (VIP, 80), TcpFlags::SYN, b"");
    run(&mut n, 0, &mut f);
    assert_eq!(now(tcp), (1, 1));
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"query");
    run(&mut n, 0, &mut f);
    assert_eq!(now(udp), (0, 1), "UDP is inactive");

    n.zero_counters(0);
    assert_eq!((now(tcp), now(udp)), ((1, 1), (0, 1)), "a gauge, not a counter");
    // A replacement adopting the table (its predecessor died: the counts may be off) sets
    // them from what it adopted.
    reals[tcp].set_now(7, 7);
    drop(n);
    let services = build_services(&runtime(&[(8080, 1)]), (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(services, s.shard(), vec![P0, P1], 0).with_stats(&table, &reals);
    let services = n.take_services();
    n.reconfigure(1, services);
    assert_eq!(now(tcp), (7, 7));
    n.recount_connections();
    assert_eq!((now(tcp), now(udp)), ((1, 1), (0, 1)), "counted again from the table");

    let mut f = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::RST, b"");
    run(&mut n, 0, &mut f);
    assert_eq!(now(tcp), (0, 2), "reset: no longer established");
    assert_eq!(n.advance(3600 * 1_000_000_000, usize::MAX), 3);
    assert_eq!((now(tcp), now(udp)), ((0, 0), (0, 0)), "expired");
}

/// A worker that removed a service moved the last one into its place; a successor at the same
/// generation builds the services in the configuration's order. The indices the first cached in
/// a connection's entry are not the successor's: it resolves them again (they once sent the
/// connection's packets to another service's real server).
#[test]
fn a_successor_at_the_same_generation_resolves_what_its_predecessor_cached() {
    let mut rt = runtime(&[(8080, 1)]);
    // A third service, udp VIP:54 -> 198.18.1.3:9090 (another next hop): [tcp 80, udp 53,
    // udp 54].
    let other = (Ipv4Addr::new(198, 18, 1, 3), EthernetAddress([2, 0, 0, 0, 1, 3]));
    let mut extra = rt.services[1].clone();
    extra.port = 54;
    extra.reals[0].addr = other.0.into();
    extra.reals[0].port = 9090;
    rt.services.push(extra);
    rt.neighbours.push(conf::Neighbour { addr: other.0.into(), mac: other.1 .0, port: 1 });
    let mut s = store();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(Vec::new(), s.shard(), vec![P0, P1], 0);
    n.reconfigure(1, services);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q");
    run(&mut n, 0, &mut f);
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    // Generation 2 removes tcp 80: this worker's order is now [udp 54, udp 53]; the next
    // packet caches udp 53's index, 1, under generation 2.
    n.update(2, &[(6, VIP.into(), 80)], Vec::new());
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q");
    run(&mut n, 0, &mut f);
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    drop(n);
    // Its successor, at generation 2, in the configuration's order: [udp 53, udp 54].
    rt.services.remove(0);
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(Vec::new(), s.shard(), vec![P0, P1], 1_000_000_000);
    n.reconfigure(2, services);
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"q");
    run(&mut n, 0, &mut f);
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
}
