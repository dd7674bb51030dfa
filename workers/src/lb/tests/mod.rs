//! Full-NAT fixtures: a client's TCP handshake and data through a service and back, UDP, the
//! refusals, and expiry. Frames are built with the `wire` crate and checked after the rewrite
//! by full checksum verification.

use super::service::LPORT_MIN;
use super::*;
use conn::tcp::State;
use conn::v4;
use sched::{Backend, Scheduler};
use wire::{EtherType, EthernetRepr, TcpRepr, UdpRepr};
use wire::{EthernetFrame, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket, UdpPacket};

pub(super) use crate::fixtures::*;

/// The lcore of a group of `lcores` that owns `frame`'s connection, seen from outside the
/// group (an observer that owns nothing), when the ports' RSS is unknown.
fn owner_of(index: &Index, lcores: u16, frame: &[u8]) -> Option<u16> {
    let rx = Receive::new((u16::MAX, lcores), std::iter::empty(), |_, _| None);
    owner(index, &rx, 0, &wire::classify(frame).unwrap(), frame).map(|(lcore, _)| lcore)
}

fn store() -> Store {
    Store::new(1024)
}

fn service(proto: u8, port: u16, backends: Vec<Backend>) -> Service {
    let real = Real::new(RS, 8080, RS_MAC, 1, conf::Forward::Fnat);
    let ids = [sched::identity(std::net::SocketAddr::from((RS, 8080)))];
    let scheduler = Scheduler::with_ids(sched::Kind::Rr, &backends, &ids).unwrap();
    Service::new(VIP, port, proto, scheduler, backends, vec![real], vec![LIP.into()], (0, 1))
}

fn fnat(s: &mut Store, weight: u32) -> Balancer<'_> {
    let shard = s.shard();
    let services = vec![service(6, 80, vec![Backend::new(weight)]), service(17, 53, vec![Backend::new(weight)])];
    Balancer::new(services, shard, vec![P0, P1], 0)
}

/// A Full-NAT lcore (alone) running the services of `rt`.
fn fnat_of<'s>(s: &'s mut Store, rt: &conf::Runtime) -> Balancer<'s> {
    let shard = s.shard();
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

/// Whether a frame the balancer sent out holds one IPv4 or IPv6 TCP or UDP packet, whole,
/// whose checksums verify (what the property tests ask of every emitted frame).
fn leaves_valid(f: &[u8]) -> bool {
    fn transport<A: wire::checksum::Family>(protocol: IpProtocol, seg: &[u8], s: A, d: A) -> bool {
        match protocol {
            IpProtocol::Tcp => TcpPacket::new_checked(seg).is_ok_and(|t| t.verify_checksum(s, d)),
            IpProtocol::Udp => UdpPacket::new_checked(seg).is_ok_and(|u| u.verify_checksum(s, d)),
            _ => false,
        }
    }
    let Ok(e) = EthernetFrame::new_checked(f) else { return false };
    match e.ethertype() {
        EtherType::Ipv4 => Ipv4Packet::new_checked(e.payload()).is_ok_and(|ip| {
            ip.verify_checksum()
                && e.payload().len() == usize::from(ip.total_len())
                && transport(ip.protocol(), ip.payload(), ip.src_addr(), ip.dst_addr())
        }),
        EtherType::Ipv6 => wire::Ipv6Packet::new_checked(e.payload()).is_ok_and(|ip| {
            e.payload().len() == 40 + usize::from(ip.payload_len())
                && transport(ip.next_header(), ip.payload(), ip.src_addr(), ip.dst_addr())
        }),
        _ => false,
    }
}

/// The 5-tuple of a TCP or UDP frame.
fn tuple_of(f: &[u8]) -> Tuple {
    flow_of(&wire::classify(f).unwrap(), f).unwrap().0
}

/// The fixtures' runtime with the UDP service's real server reached by IP-in-IP (listening on
/// the virtual port).
fn tunnel_fnat(s: &mut Store) -> Balancer<'_> {
    let shard = s.shard();
    let mut rt = runtime(&[(53, 1)]);
    rt.services[1].reals[0].forward = conf::Forward::Tunnel;
    Balancer::new(build_services(&rt, (0, 1), &mut Vec::new(), &Default::default()).unwrap(), shard, vec![P0, P1], 0)
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

mod admission;
mod config;
mod fullnat;
mod icmp;
mod ipv6;
mod modes;
mod nat64;
mod proxy;
