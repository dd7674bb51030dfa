//! Packet parsing and checksums (`cargo bench -p wire --bench parse`): `classify` of a 64-byte
//! UDP frame, a TCP SYN with options and the same UDP datagram over IPv6, without and with
//! checksum verification; the full
//! Internet checksum over 64 and 1500 bytes; the incremental update a Full-NAT rewrite makes,
//! field by field and as one sum of the changes with one fold.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wire::checksum;
use wire::{classify_with, Checks, EthernetAddress, IpProtocol, TcpFlags, TcpPacket, TcpRepr, UdpPacket, UdpRepr};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn frame(protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let macs = (EthernetAddress([2, 0, 0, 0, 1, 1]), EthernetAddress([2, 0, 0, 0, 0, 0x10]));
    let mut f = vec![0u8; 34 + l4.len()];
    wire::emit_ipv4_frame(&mut f, macs, (SRC, DST), protocol, l4);
    f
}

fn udp() -> Vec<u8> {
    let payload = [0xa5u8; 18];
    let udp = UdpRepr { src_port: 5353, dst_port: 53, payload: &payload };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d[..]), SRC, DST);
    frame(IpProtocol::Udp, &d)
}

fn udp6() -> Vec<u8> {
    let (src, dst) =
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100));
    let payload = [0xa5u8; 18];
    let udp = UdpRepr { src_port: 5353, dst_port: 53, payload: &payload };
    let mut d = vec![0u8; udp.buffer_len()];
    udp.emit(&mut UdpPacket::new_unchecked(&mut d[..]), src, dst);
    let macs = (EthernetAddress([2, 0, 0, 0, 1, 1]), EthernetAddress([2, 0, 0, 0, 0, 0x10]));
    let mut f = vec![0u8; 54 + d.len()];
    wire::emit_ipv6_frame(&mut f, macs, (src, dst), IpProtocol::Udp, &d);
    f
}

fn syn() -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        flags: TcpFlags::SYN,
        seq_number: 5000,
        ack_number: 0,
        window_len: 64240,
        max_seg_size: Some(1460),
        sack_permitted: true,
        window_scale: Some(7),
        urgent_at: 0,
        timestamp: None,
        payload: &[],
    };
    let mut s = vec![0u8; tcp.buffer_len()];
    tcp.emit(&mut TcpPacket::new_unchecked(&mut s[..]), SRC, DST);
    frame(IpProtocol::Tcp, &s)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    for (name, f) in [("udp64", udp()), ("tcp_syn", syn()), ("udp6", udp6())] {
        g.bench_function(format!("{name}_no_checks"), |b| b.iter(|| classify_with(black_box(&f), Checks::NONE)));
        g.bench_function(format!("{name}_all_checks"), |b| b.iter(|| classify_with(black_box(&f), Checks::ALL)));
    }
    g.finish();
    let mut g = c.benchmark_group("checksum");
    for len in [64usize, 1500] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("sum_{len}_bytes"), |b| b.iter(|| checksum::sum(black_box(&data))));
    }
    g.throughput(Throughput::Elements(1));
    // What a Full-NAT rewrite does to a UDP checksum: both addresses and both ports.
    g.bench_function("update_two_addresses_two_ports", |b| {
        b.iter(|| {
            let (a, n) = black_box((SRC, Ipv4Addr::new(198, 18, 1, 254)));
            let mut c = checksum::update_addr(black_box(0x1234), a, n);
            c = checksum::update_addr(c, DST, Ipv4Addr::new(198, 18, 1, 2));
            c = checksum::update_u16(c, 5353, 1025);
            checksum::update_u16(c, 53, 5353)
        })
    });
    // The same as one sum of the changes and one fold (what the Full-NAT rewrite does now).
    g.bench_function("apply_two_addresses_two_ports", |b| {
        b.iter(|| {
            let (a, n) = black_box((SRC, Ipv4Addr::new(198, 18, 1, 254)));
            let d = checksum::delta_addr(a, n)
                + checksum::delta_addr(DST, Ipv4Addr::new(198, 18, 1, 2))
                + checksum::delta_u16(5353, 1025)
                + checksum::delta_u16(53, 5353);
            checksum::apply(black_box(0x1234), d)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
