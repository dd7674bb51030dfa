//! Full-NAT fixtures: a client's TCP handshake and data through a service and back, UDP, the
//! refusals, and expiry. Frames are built with the `wire` crate and checked after the rewrite
//! by full checksum verification.

use super::service::LPORT_MIN;
use super::*;
use conn::tcp::State;
use conn::v4;
use sched::{Backend, Scheduler};
use shm_layout::conn::{ConnEntry, ConnShardHeader};
use shm_layout::ConnParts;
use wire::{EtherType, EthernetRepr, TcpRepr, UdpRepr};
use wire::{EthernetFrame, IpProtocol, TcpFlags, TcpPacket, UdpPacket};

const P0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
const P1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
const RS_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 2]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const RS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

struct Store {
    h: ConnShardHeader,
    buckets: Vec<u32>,
    wheel: Vec<u32>,
    entries: Vec<ConnEntry>,
}

fn store() -> Store {
    let h = ConnShardHeader { capacity: 256, n_buckets: 1024, wheel_slots: 256, seed: 7, ..Default::default() };
    Store { h, buckets: vec![0; 1024], wheel: vec![0; 256], entries: vec![ConnEntry::EMPTY; 256] }
}

fn service(proto: u8, port: u16, backends: Vec<Backend>) -> Service {
    let real = Real::new(RS, 8080, RS_MAC, 1, conf::Forward::Fnat);
    let ids = [sched::identity(std::net::SocketAddr::from((RS, 8080)))];
    let scheduler = Scheduler::with_ids(sched::Kind::Rr, &backends, &ids).unwrap();
    Service::new(VIP, port, proto, scheduler, backends, vec![real], vec![LIP], (0, 1))
}

fn fnat(s: &mut Store, weight: u32) -> Balancer<'_> {
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
    let services = vec![service(6, 80, vec![Backend::new(weight)]), service(17, 53, vec![Backend::new(weight)])];
    Balancer::new(services, shard, vec![P0, P1], 0)
}

/// A Full-NAT lcore (alone) running the services of `rt`.
fn fnat_of<'s>(s: &'s mut Store, rt: &conf::Runtime) -> Balancer<'s> {
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
    let mut n = Balancer::new(Vec::new(), shard, vec![P0, P1], 0);
    n.reconfigure(1, build_services(rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap());
    n
}

fn tcp_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    tcp_segment((src_mac, dst_mac), src, dst, flags, (1000, 0), payload)
}

/// A TCP frame with sequence and acknowledgement numbers `(seq, ack)`.
fn tcp_segment(
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: TcpFlags,
    (seq, ack): (u32, u32),
    payload: &[u8],
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        payload,
    };
    let mut seg = vec![0xa5; tcp.buffer_len()];
    tcp.emit(&mut TcpPacket::new_unchecked(&mut seg[..]), src.0, dst.0);
    frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Tcp, &seg)
}

fn udp_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr { src_port: src.1, dst_port: dst.1, payload };
    let mut dgram = vec![0xa5; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut dgram[..]), src.0, dst.0);
    frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Udp, &dgram)
}

fn frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 34 + l4.len()];
    wire::emit_ipv4_frame(&mut f, (src_mac, dst_mac), (src, dst), protocol, l4);
    f
}

/// Runs a frame through Full-NAT, returning the verdict.
fn run(n: &mut Balancer<'_>, rx_port: u16, f: &mut Vec<u8>) -> Verdict {
    let p = wire::classify(f).unwrap();
    n.process(rx_port, f, &p, None)
}

/// Checks the frame's MACs, addresses and ports, and that both checksums verify.
fn check(f: &[u8], macs: (EthernetAddress, EthernetAddress), src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) {
    let e = EthernetFrame::new_checked(f).unwrap();
    assert_eq!((e.src_addr(), e.dst_addr()), macs, "MACs");
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum(), "IP checksum");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (src.0, dst.0), "addresses");
    match ip.protocol() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum(src.0, dst.0), "TCP checksum");
            assert_eq!((t.src_port(), t.dst_port()), (src.1, dst.1), "ports");
        }
        _ => {
            let u = UdpPacket::new_checked(ip.payload()).unwrap();
            assert!(u.verify_checksum(src.0, dst.0), "UDP checksum");
            assert_eq!((u.src_port(), u.dst_port()), (src.1, dst.1), "ports");
        }
    }
}

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

/// The 5-tuple of a TCP or UDP frame.
fn tuple_of(f: &[u8]) -> Tuple {
    flow_of(&wire::classify(f).unwrap()).unwrap().0
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
    assert_eq!(n.process(0, &mut f, &p, Some(hint)), Verdict::Out { port: 1, dir: Dir::In, new: false });
    check(&f, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
    // With its own hint, the same.
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 5353), (VIP, 53), b"third");
    let hint = n.shard().hashed(tuple_of(&f));
    let p = wire::classify(&f).unwrap();
    assert_eq!(n.process(0, &mut f, &p, Some(hint)), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(n.shard().used(), 1, "one flow, one connection");
}

#[test]
fn local_ports_are_shared_out_by_lcore_and_owners_agree() {
    let real = Real::new(RS, 8080, RS_MAC, 1, conf::Forward::Fnat);
    let ids = [sched::identity(std::net::SocketAddr::from((RS, 8080)))];
    let mk = |slot| {
        let b = vec![Backend::new(1)];
        let sch = Scheduler::with_ids(sched::Kind::Rr, &b, &ids).unwrap();
        Service::new(VIP, 80, 6, sch, b, vec![real], vec![LIP], (slot, 3))
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
    assert_eq!(owner(&Index::build(&services), 3, &wire::classify(&reply).unwrap()), Some(2000 % 3));
    // A client flow always belongs to one lcore; other flows spread.
    let mut seen = [0usize; 3];
    for port in 40000..40300 {
        let f = tcp_frame(CLIENT_MAC, P0, (CLIENT, port), (VIP, 80), TcpFlags::SYN, b"");
        let p = wire::classify(&f).unwrap();
        let o = owner(&Index::build(&services), 3, &p).unwrap();
        assert_eq!(owner(&Index::build(&services), 3, &p), Some(o));
        seen[usize::from(o)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
    let other = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (Ipv4Addr::new(198, 18, 0, 9), 80), TcpFlags::SYN, b"");
    assert_eq!(owner(&Index::build(&services), 3, &wire::classify(&other).unwrap()), None, "not Full-NAT traffic");
    assert_eq!(owner(&Index::build(&services), 1, &wire::classify(&reply).unwrap()), None, "one lcore owns everything");
}

/// The runtime configuration of the fixtures: tcp VIP:80 and udp VIP:53, each with the real
/// servers `reals` (port, weight); VIP/24 on port slot 0, LIP/24 and RS's neighbour on port
/// slot 1.
fn runtime(reals: &[(u16, u32)]) -> conf::Runtime {
    let svc = |protocol, port| conf::Service {
        vip: VIP,
        port,
        protocol,
        scheduler: sched::Kind::Wlc,
        local_addresses: vec![LIP],
        reals: reals
            .iter()
            .map(|&(port, weight)| conf::Real {
                addr: RS,
                port,
                weight,
                forward: conf::Forward::Fnat,
                upper: 0,
                lower: 0,
            })
            .collect(),
        persistence: 0,
        deny: vec![],
        allow: vec![],
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
    };
    conf::Runtime {
        addresses: vec![
            conf::IfAddr { port: 0, addr: VIP, prefix: 24 },
            conf::IfAddr { port: 1, addr: LIP, prefix: 24 },
        ],
        neighbours: vec![conf::Neighbour { addr: RS, mac: RS_MAC.0, port: 1 }],
        routes: vec![],
        services: vec![svc(conf::Protocol::Tcp, 80), svc(conf::Protocol::Udp, 53)],
    }
}

#[test]
fn a_new_generation_keeps_connections_of_kept_reals_and_expires_those_of_removed_ones() {
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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

#[test]
fn direct_routing_changes_only_the_macs_and_tracks_the_client_side() {
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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
        let a = owner(n.index(), lcores, &wire::classify(&syn).unwrap());
        let b = owner(n.index(), lcores, &wire::classify(&reply).unwrap());
        assert!(a.is_some() && a == b, "{lcores} lcores: {a:?} {b:?}");
    }
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
    // Later segments go as they are.
    let mut data = tcp_frame(CLIENT_MAC, P0, (CLIENT, 40000), (VIP, 80), TcpFlags::ACK, b"GET / HTTP/1.0\r\n\r\n");
    let before = data.len();
    assert_eq!(run(&mut n, 0, &mut data), Verdict::Out { port: 1, dir: Dir::In, new: false });
    assert_eq!(data.len(), before);
    check(&data, (P1, RS_MAC), (LIP, LPORT_MIN), (RS, 8080));
}

#[test]
fn a_persistent_service_sends_a_clients_new_connections_to_its_real_server_while_its_template_lives() {
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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
        let oa = owner(n.index(), lcores, &wire::classify(&a).unwrap());
        assert_eq!(oa, owner(n.index(), lcores, &wire::classify(&b).unwrap()));
    }
}

#[test]
fn per_service_and_per_real_counters_follow_them_across_generations_and_zero_on_request() {
    use std::sync::atomic::Ordering::Relaxed;
    let table: Vec<shm_layout::ServiceCounters> = (0..4).map(|_| Default::default()).collect();
    let reals: Vec<shm_layout::RealCounters> = (0..4).map(|_| Default::default()).collect();
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
    let rt = runtime(&[(8080, 1)]);
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let mut n = Balancer::new(Vec::new(), shard, vec![P0, P1], 0).with_stats(&table, &reals);
    n.reconfigure(1, services);
    let udp_key = shm_layout::ServiceCounters::key_of(17, VIP.octets(), 53);
    let slot = table.iter().position(|c| c.key.load(Relaxed) == udp_key).unwrap();
    let mut f = udp_frame(CLIENT_MAC, P0, (CLIENT, 1000), (VIP, 53), b"query");
    run(&mut n, 0, &mut f);
    let mut r = udp_frame(RS_MAC, P1, (RS, 8080), (LIP, LPORT_MIN), b"answer!");
    run(&mut n, 1, &mut r);
    let c = &table[slot];
    let got = c.counts().map(|a| a.load(Relaxed));
    assert_eq!(got, [1, 1, 1, f.len() as u64, r.len() as u64]);
    let real_key = shm_layout::RealCounters::key_of(RS.octets(), 8080);
    let rslot = reals.iter().position(|c| c.service.load(Relaxed) == udp_key).unwrap();
    let c = &reals[rslot];
    assert_eq!(c.real.load(Relaxed), real_key);
    let got = c.counts().map(|a| a.load(Relaxed));
    assert_eq!(got, [1, 1, 1, f.len() as u64, r.len() as u64], "the real server counts the same");
    assert_eq!(reals.iter().filter(|c| c.service.load(Relaxed) != 0).count(), 2, "one real per service");
    // Zeroing the TCP service leaves the UDP one alone; zeroing all clears it.
    n.zero_counters(shm_layout::ServiceCounters::key_of(6, VIP.octets(), 80));
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
fn thresholds_share_out_over_lcores() {
    assert_eq!(Limits::share(0, 0, 4), Limits::default());
    assert_eq!(Limits::share(10, 0, 1), Limits { upper: 10, lower: 8 });
    assert_eq!(Limits::share(10, 4, 3), Limits { upper: 4, lower: 2 });
    assert_eq!(Limits::share(1, 0, 8), Limits { upper: 1, lower: 1 }, "never below one per lcore");
}

#[test]
fn a_real_at_its_upper_threshold_takes_no_new_connection_until_below_its_lower_one() {
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = Shard::adopt(parts, 0);
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
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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

/// The fixtures' runtime with the UDP service's real server reached by IP-in-IP (listening on
/// the virtual port).
fn tunnel_fnat(s: &mut Store) -> Balancer<'_> {
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
    let mut rt = runtime(&[(53, 1)]);
    rt.services[1].reals[0].forward = conf::Forward::Tunnel;
    Balancer::new(build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(), shard, vec![P0, P1], 0)
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

/// An ARP reply from `ip` at `mac` to the balancer's port slot 1.
fn arp_reply(ip: Ipv4Addr, mac: EthernetAddress) -> Vec<u8> {
    let mut f = vec![0u8; crate::pipeline::GARP_LEN];
    EthernetRepr { src_addr: mac, dst_addr: P1, ethertype: EtherType::Arp }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let arp = wire::ArpRepr {
        operation: wire::ArpOperation::Reply,
        sender_hardware_addr: mac,
        sender_protocol_addr: ip,
        target_hardware_addr: P1,
        target_protocol_addr: LIP,
    };
    arp.emit(&mut wire::ArpPacket::new_unchecked(&mut f[14..]));
    f
}

#[test]
fn a_real_without_a_static_neighbour_waits_for_arp_then_takes_connections() {
    use crate::pipeline::{Action, DropReason, Pipeline, PortCtx};
    let table: Vec<shm_layout::LearnedNeighbour> = (0..8).map(|_| Default::default()).collect();
    let epoch = std::sync::atomic::AtomicU64::new(0);
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
    let mut rt = runtime(&[(8080, 1)]);
    rt.neighbours.clear();
    let services = build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    let n = Balancer::new(services, shard, vec![P0, P1], 0).with_neighbours(&table, &epoch);
    let want = crate::neigh::Want { hop: RS, port: 1, src: LIP };
    assert_eq!(n.wanted(), &[(want, false)], "slot 0 asks for RS from LIP on port 1");
    let ports = vec![
        PortCtx { mac: P0, peer: 1, addrs: vec![VIP], exception: None, is_exception: false },
        PortCtx { mac: P1, peer: 0, addrs: vec![LIP], exception: None, is_exception: false },
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
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = Shard::adopt(parts, 0);
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
fn a_packet_bigger_than_the_out_ports_mtu_is_answered_with_fragmentation_needed_or_dropped() {
    let mut s = store();
    let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
    let (shard, _) = Shard::adopt(parts, 0);
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
        let parts = ConnParts { header: &s.h, buckets: &mut s.buckets, wheel: &mut s.wheel, entries: &mut s.entries };
        let (shard, _) = Shard::adopt(parts, 0);
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
