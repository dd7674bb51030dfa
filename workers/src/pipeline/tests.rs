//! Table-driven fixtures through the pipeline: {description, port, frame in, action, frame out}.
//! Expected frames are built independently with the `wire` crate's `Repr` emitters, so an
//! in-place rewrite that forgets a field shows.

use super::*;
use wire::{ArpRepr, EthernetRepr, Icmpv4Repr, Ipv4Repr};

const PORT0_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x10]);
const PORT1_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x11]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 1, 1]);
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 1, 2]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const OWNED0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const OWNED1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);

/// Port 0 and 1 are a two-arm pair; port 2 is one-arm. Port 0 owns OWNED0, port 1 OWNED1.
fn pipeline() -> Pipeline<'static> {
    Pipeline::new(vec![
        PortCtx { mac: PORT0_MAC, peer: 1, addrs: vec![OWNED0], addrs6: vec![], exception: None, is_exception: false },
        PortCtx { mac: PORT1_MAC, peer: 0, addrs: vec![OWNED1], addrs6: vec![], exception: None, is_exception: false },
        PortCtx {
            mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x12]),
            peer: 2,
            addrs: vec![],
            addrs6: vec![],
            exception: None,
            is_exception: false,
        },
    ])
}

fn eth(src: EthernetAddress, dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr { src_addr: src, dst_addr: dst, ethertype };
    let mut buf = vec![0xa5; EthernetFrame::<&[u8]>::buffer_len(payload.len())];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn arp(op: ArpOperation, sha: EthernetAddress, spa: Ipv4Addr, tha: EthernetAddress, tpa: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        sender_hardware_addr: sha,
        sender_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut buf = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    buf
}

fn icmp_ip(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, icmp: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut msg = vec![0xa5; icmp.buffer_len()];
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut msg[..]));
    ip(src, dst, ttl, IpProtocol::Icmp, &msg)
}

fn ip(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl,
        tos: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut buf = vec![0xa5; repr.buffer_len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p);
    p.payload_mut().copy_from_slice(payload);
    p.fill_checksum();
    buf
}

const PING: &[u8] = b"abcdefghijklmnopqrstuvwabcdefghi";

fn echo_request(dst: Ipv4Addr) -> Vec<u8> {
    let req = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: 7, data: PING };
    eth(CLIENT_MAC, PORT0_MAC, EtherType::Ipv4, &icmp_ip(CLIENT, dst, 63, &req))
}

struct Case {
    what: &'static str,
    port: u16,
    frame: Vec<u8>,
    action: Action,
    /// None: the frame must leave unchanged.
    out: Option<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let bcast = EthernetAddress([0xff; 6]);
    let zero = EthernetAddress([0; 6]);
    let arp_req =
        |tpa| eth(CLIENT_MAC, bcast, EtherType::Arp, &arp(ArpOperation::Request, CLIENT_MAC, CLIENT, zero, tpa));
    let udp = ip(CLIENT, SERVER, 64, IpProtocol::Udp, &[0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4]);
    let mut bad_icmp = echo_request(OWNED0);
    let n = bad_icmp.len();
    bad_icmp[n - 1] ^= 0xff; // payload changed under its checksum
    let mut bad_ip = echo_request(OWNED0);
    bad_ip[14 + 8] = 1; // TTL changed under the header checksum
    let mut reply_to_client = Icmpv4Repr::EchoReply { ident: 0x4242, seq_no: 7, data: PING };
    let echo_reply = eth(PORT0_MAC, CLIENT_MAC, EtherType::Ipv4, &icmp_ip(OWNED0, CLIENT, REPLY_TTL, &reply_to_client));
    reply_to_client = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: 7, data: PING };
    let request_to_server = echo_request(SERVER);
    let _ = reply_to_client;
    let udp_frame = eth(SERVER_MAC, CLIENT_MAC, EtherType::Ipv4, &udp);
    let mut bad_version = udp_frame.clone();
    bad_version[14] = 0x65;
    let mut bad_udp_len = udp_frame.clone();
    bad_udp_len[14 + 20 + 4] = 0x01; // UDP length 0x010c: far past the datagram
    let mut reflected = udp.clone();
    let reflected_in = eth(CLIENT_MAC, SERVER_MAC, EtherType::Ipv4, &udp);
    reflected = eth(SERVER_MAC, CLIENT_MAC, EtherType::Ipv4, &reflected);
    vec![
        Case {
            what: "ARP request for the port's own address: answered from the port's MAC",
            port: 0,
            frame: arp_req(OWNED0),
            action: Action::Reply(Reply::Arp),
            out: Some(eth(
                PORT0_MAC,
                CLIENT_MAC,
                EtherType::Arp,
                &arp(ArpOperation::Reply, PORT0_MAC, OWNED0, CLIENT_MAC, CLIENT),
            )),
        },
        Case {
            what: "ARP request for another host: bridged to the peer unchanged",
            port: 0,
            frame: arp_req(SERVER),
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "ARP request for an address of another port: not answered here",
            port: 0,
            frame: arp_req(OWNED1),
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "gratuitous ARP for an owned address: asks nothing",
            port: 0,
            frame: eth(
                CLIENT_MAC,
                bcast,
                EtherType::Arp,
                &arp(ArpOperation::Request, CLIENT_MAC, OWNED0, zero, OWNED0),
            ),
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "ARP reply addressed to an owned address: bridged",
            port: 0,
            frame: eth(
                CLIENT_MAC,
                PORT0_MAC,
                EtherType::Arp,
                &arp(ArpOperation::Reply, CLIENT_MAC, CLIENT, PORT0_MAC, OWNED0),
            ),
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "ICMP echo request to the port's own address: answered, TTL 64, checksums right",
            port: 0,
            frame: echo_request(OWNED0),
            action: Action::Reply(Reply::IcmpEcho),
            out: Some(echo_reply),
        },
        Case {
            what: "ICMP echo request to another host: bridged",
            port: 0,
            frame: request_to_server,
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "echo request whose ICMP checksum is wrong: not answered",
            port: 0,
            frame: bad_icmp,
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "echo request whose IP header checksum is wrong: not answered",
            port: 0,
            frame: bad_ip,
            action: Action::Forward(1),
            out: None,
        },
        Case {
            what: "UDP on a two-arm port: out of the peer, unchanged",
            port: 1,
            frame: eth(SERVER_MAC, CLIENT_MAC, EtherType::Ipv4, &udp),
            action: Action::Forward(0),
            out: None,
        },
        Case {
            what: "UDP on a one-arm port: back out with MACs swapped",
            port: 2,
            frame: reflected_in,
            action: Action::Forward(2),
            out: Some(reflected),
        },
        Case {
            what: "runt frame: dropped",
            port: 0,
            frame: vec![0x02, 0, 0, 0, 0, 0x10, 0x02, 0, 0, 0, 1, 1, 0x08],
            action: Action::Drop(DropReason::Runt),
            out: None,
        },
        Case {
            what: "IPv4 cut inside its header: dropped as truncated",
            port: 0,
            frame: udp_frame[..14 + 12].to_vec(),
            action: Action::Drop(DropReason::Malformed(wire::Error::Truncated)),
            out: None,
        },
        Case {
            what: "IP version 6 in an IPv4 ethertype: dropped",
            port: 0,
            frame: bad_version,
            action: Action::Drop(DropReason::Malformed(wire::Error::BadVersion)),
            out: None,
        },
        Case {
            what: "UDP length beyond the datagram: dropped",
            port: 1,
            frame: bad_udp_len,
            action: Action::Drop(DropReason::Malformed(wire::Error::BadUdpLen)),
            out: None,
        },
        Case {
            what: "truncated ARP to an owned address: bridged, not answered, no panic",
            port: 0,
            frame: arp_req(OWNED0)[..30].to_vec(),
            action: Action::Forward(1),
            out: None,
        },
    ]
}

#[test]
fn fixtures() {
    let mut p = pipeline();
    for c in cases() {
        let mut frame = c.frame.clone();
        let action = p.process(c.port, &mut frame);
        assert_eq!(action, c.action, "{}", c.what);
        let want = c.out.unwrap_or(c.frame);
        assert_eq!(frame, want, "{}: frame out", c.what);
    }
}

#[test]
fn every_prefix_of_every_fixture_is_handled_without_panic() {
    let mut p = pipeline();
    for c in cases() {
        for len in 0..=c.frame.len() {
            let mut f = c.frame[..len].to_vec();
            let _ = p.process(c.port, &mut f);
        }
    }
}

#[test]
fn the_echo_reply_verifies() {
    let mut p = pipeline();
    let mut f = echo_request(OWNED0);
    assert_eq!(p.process(0, &mut f), Action::Reply(Reply::IcmpEcho));
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.msg_type(), Icmpv4Message::EchoReply);
}

#[test]
fn a_gratuitous_arp_announces_the_address_to_everyone() {
    let mac = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
    let addr = Ipv4Addr::new(198, 18, 0, 100);
    let f = gratuitous_arp(mac, addr);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((eth.dst_addr(), eth.src_addr(), eth.ethertype()), (EthernetAddress::BROADCAST, mac, EtherType::Arp));
    let arp = wire::ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!(arp.operation, ArpOperation::Request);
    assert_eq!((arp.sender_hardware_addr, arp.sender_protocol_addr, arp.target_protocol_addr), (mac, addr, addr));
    // The balancer itself does not answer it: a request whose sender is its target asks nothing.
    let mut p = Pipeline::new(vec![PortCtx {
        mac,
        peer: 0,
        addrs: vec![addr],
        addrs6: vec![],
        exception: None,
        is_exception: false,
    }]);
    let mut g = f.to_vec();
    assert_ne!(p.process(0, &mut g), Action::Reply(Reply::Arp));
}

#[test]
fn with_an_exception_path_what_the_fast_path_leaves_goes_to_the_kernel_and_back() {
    let tap_mac = PORT0_MAC;
    let mut p = Pipeline::new(vec![
        PortCtx {
            mac: PORT0_MAC,
            peer: 0,
            addrs: vec![OWNED0],
            addrs6: vec![],
            exception: Some(1),
            is_exception: false,
        },
        PortCtx { mac: tap_mac, peer: 0, addrs: vec![], addrs6: vec![], exception: None, is_exception: true },
    ]);
    // Still answered by the worker: ARP for its address, ping.
    let bcast = EthernetAddress::BROADCAST;
    let request = |tpa| arp(ArpOperation::Request, CLIENT_MAC, CLIENT, EthernetAddress([0; 6]), tpa);
    let mut f = eth(CLIENT_MAC, bcast, EtherType::Arp, &request(OWNED0));
    assert_eq!(p.process(0, &mut f), Action::Reply(Reply::Arp));
    let mut f = echo_request(OWNED0);
    assert_eq!(p.process(0, &mut f), Action::Reply(Reply::IcmpEcho));
    // UDP 5000 -> 22, 8 bytes, no checksum.
    let udp_to_ssh = [0x13, 0x88, 0, 22, 0, 8, 0, 0];
    // The rest goes to the kernel unchanged: a datagram to the port's address, an ARP reply
    // to the kernel's own request, a request for an address only the kernel has.
    for mut f in [
        eth(CLIENT_MAC, PORT0_MAC, EtherType::Ipv4, &ip(CLIENT, OWNED0, 64, IpProtocol::Udp, &udp_to_ssh)),
        eth(CLIENT_MAC, PORT0_MAC, EtherType::Arp, &arp(ArpOperation::Reply, CLIENT_MAC, CLIENT, PORT0_MAC, OWNED0)),
        eth(CLIENT_MAC, bcast, EtherType::Arp, &request(Ipv4Addr::new(198, 18, 0, 77))),
    ] {
        let before = f.clone();
        assert_eq!(p.process(0, &mut f), Action::Forward(1));
        assert_eq!(f, before);
    }
    // What the kernel sends leaves through the data port as it is.
    let mut f = eth(PORT0_MAC, CLIENT_MAC, EtherType::Ipv4, &ip(OWNED0, CLIENT, 64, IpProtocol::Udp, &udp_to_ssh));
    let before = f.clone();
    assert_eq!(p.process(1, &mut f), Action::Forward(0));
    assert_eq!(f, before);
}
