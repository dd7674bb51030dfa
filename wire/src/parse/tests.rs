//! Frame fixtures for the classifier, each a packet as it appears on the wire (checksums
//! computed, Ethernet padding where a NIC would see it), and a table of malformed variants.

use super::*;
use proptest::prelude::*;

/// A Linux SYN, 192.168.1.10:54321 -> 10.0.0.100:80 (the VIP).
#[rustfmt::skip]
static TCP_SYN_FRAME: [u8; 74] = [
    // Ethernet: dst 02:00:00:00:00:01, src 02:00:00:00:00:02, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // IPv4 (14): IHL 5, total 60, ident 0x1c46, DF, TTL 64, TCP, checksum 0x5260,
    // 192.168.1.10 -> 10.0.0.100
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x52, 0x60,
    0xc0, 0xa8, 0x01, 0x0a, 0x0a, 0x00, 0x00, 0x64,
    // TCP (34): 54321 -> 80, seq 0x3a1c8b2d, ack 0, offset 10, SYN, window 64240,
    // checksum 0xb0d5, urgent 0
    0xd4, 0x31, 0x00, 0x50, 0x3a, 0x1c, 0x8b, 0x2d, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xb0, 0xd5, 0x00, 0x00,
    // options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];

/// A DNS query on VLAN 100 (PCP 1), 10.0.0.1:5353 -> 10.0.0.2:53.
#[rustfmt::skip]
static VLAN_UDP_FRAME: [u8; 75] = [
    // Ethernet: dst, src, TPID 0x8100, TCI 0x2064 (PCP 1, VID 100), type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x81, 0x00, 0x20, 0x64, 0x08, 0x00,
    // IPv4 (18): IHL 5, total 57, ident 0xbeef, TTL 63, UDP, checksum 0xa8c2,
    // 10.0.0.1 -> 10.0.0.2
    0x45, 0x00, 0x00, 0x39, 0xbe, 0xef, 0x00, 0x00, 0x3f, 0x11, 0xa8, 0xc2,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
    // UDP (38): 5353 -> 53, length 37, checksum 0xf4e1
    0x14, 0xe9, 0x00, 0x35, 0x00, 0x25, 0xf4, 0xe1,
    // DNS: id 0x1234, RD, one question: example.com A IN
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
    0x00, 0x01, 0x00, 0x01,
];

/// The SYN of `TCP_SYN_FRAME` behind an S-tag (VID 10) and a C-tag (VID 20).
#[rustfmt::skip]
static QINQ_TCP_FRAME: [u8; 82] = [
    // Ethernet: dst, src
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    // S-tag: TPID 0x88a8, VID 10; C-tag: TPID 0x8100, VID 20; type IPv4
    0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00,
    // IPv4 (22)
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x52, 0x60,
    0xc0, 0xa8, 0x01, 0x0a, 0x0a, 0x00, 0x00, 0x64,
    // TCP (42)
    0xd4, 0x31, 0x00, 0x50, 0x3a, 0x1c, 0x8b, 0x2d, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xb0, 0xd5, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];

/// "Who has 10.0.0.1? Tell 10.0.0.2", broadcast and padded to 60 bytes.
#[rustfmt::skip]
static ARP_FRAME: [u8; 60] = [
    // Ethernet: dst broadcast, src 02:00:00:00:00:02, type ARP
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06,
    // ARP: Ethernet/IPv4 request, 02:00:00:00:00:02 10.0.0.2 -> 00:..:00 10.0.0.1
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
    // padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// A ping, 172.16.0.1 -> 172.16.0.2, padded to 60 bytes.
#[rustfmt::skip]
static ICMP_ECHO_FRAME: [u8; 60] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // IPv4 (14): IHL 5, total 36, ident 0x4242, DF, TTL 64, ICMP, checksum 0xa073,
    // 172.16.0.1 -> 172.16.0.2
    0x45, 0x00, 0x00, 0x24, 0x42, 0x42, 0x40, 0x00, 0x40, 0x01, 0xa0, 0x73,
    0xac, 0x10, 0x00, 0x01, 0xac, 0x10, 0x00, 0x02,
    // ICMP (34): echo request, checksum 0x5435, ident 0x1234, seq 1, "abcdefgh"
    0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01,
    0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    // padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// A router's "fragmentation needed, MTU 1400" for a reply the VIP sent.
#[rustfmt::skip]
static FRAG_NEEDED_FRAME: [u8; 70] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // IPv4 (14): IHL 5, TOS 0xc0, total 56, ident 0x0101, TTL 255, ICMP, checksum 0xedf6,
    // 192.168.1.1 -> 10.0.0.100
    0x45, 0xc0, 0x00, 0x38, 0x01, 0x01, 0x00, 0x00, 0xff, 0x01, 0xed, 0xf6,
    0xc0, 0xa8, 0x01, 0x01, 0x0a, 0x00, 0x00, 0x64,
    // ICMP (34): destination unreachable, fragmentation needed, checksum 0xde9b, MTU 1400
    0x03, 0x04, 0xde, 0x9b, 0x00, 0x00, 0x05, 0x78,
    // original IPv4 header: total 1500, DF, TCP, 10.0.0.100 -> 192.168.1.10
    0x45, 0x00, 0x05, 0xdc, 0x77, 0x77, 0x40, 0x00, 0x40, 0x06, 0xf1, 0x8e,
    0x0a, 0x00, 0x00, 0x64, 0xc0, 0xa8, 0x01, 0x0a,
    // original TCP: 80 -> 54321, seq 0x11223344
    0x00, 0x50, 0xd4, 0x31, 0x11, 0x22, 0x33, 0x44,
];

/// First fragment of a 40-byte UDP datagram 10.0.0.1:4000 -> 10.0.0.2:4001.
#[rustfmt::skip]
static FIRST_FRAGMENT_FRAME: [u8; 58] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // IPv4 (14): total 44, ident 0x5555, MF, offset 0, TTL 64, UDP, checksum 0xf169
    0x45, 0x00, 0x00, 0x2c, 0x55, 0x55, 0x20, 0x00, 0x40, 0x11, 0xf1, 0x69,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
    // UDP (34): 4000 -> 4001, length 40 (the whole datagram), checksum 0xdb59
    0x0f, 0xa0, 0x0f, 0xa1, 0x00, 0x28, 0xdb, 0x59,
    // first 16 bytes of data
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];

/// The second and last fragment of the same datagram, padded to 60 bytes.
#[rustfmt::skip]
static SECOND_FRAGMENT_FRAME: [u8; 60] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // IPv4 (14): total 36, ident 0x5555, offset 3 (24 bytes), TTL 64, UDP, checksum 0x116f
    0x45, 0x00, 0x00, 0x24, 0x55, 0x55, 0x00, 0x03, 0x40, 0x11, 0x11, 0x6f,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
    // last 16 bytes of data
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    // padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// The DNS query of `VLAN_UDP_FRAME` tunnelled IP-in-IP, 192.168.0.1 -> 192.168.0.2.
#[rustfmt::skip]
static IPIP_FRAME: [u8; 91] = [
    // Ethernet: dst, src, type IPv4
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00,
    // outer IPv4 (14): total 77, ident 0x0a0a, DF, TTL 64, IPIP, checksum 0xaf4f
    0x45, 0x00, 0x00, 0x4d, 0x0a, 0x0a, 0x40, 0x00, 0x40, 0x04, 0xaf, 0x4f,
    0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x02,
    // inner IPv4 (34)
    0x45, 0x00, 0x00, 0x39, 0xbe, 0xef, 0x00, 0x00, 0x3f, 0x11, 0xa8, 0xc2,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
    // inner UDP and DNS
    0x14, 0xe9, 0x00, 0x35, 0x00, 0x25, 0xf4, 0xe1,
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
    0x00, 0x01, 0x00, 0x01,
];

/// An empty IPv6 packet (next header 59) between link-local addresses, padded to 60.
#[rustfmt::skip]
static IPV6_FRAME: [u8; 60] = [
    // Ethernet: dst 33:33:00:00:00:01, src, type IPv6
    0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd,
    // IPv6: version 6, payload length 0, next header 59, hop limit 64, fe80::1 -> fe80::2
    0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3b, 0x40,
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    // padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// A TCP SYN [2001:db8::1]:40000 -> [2001:db8::2]:80 behind hop-by-hop options, destination options and a first fragment header (more fragments).
#[rustfmt::skip]
static IPV6_TCP_FRAME: [u8; 98] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60, 0x00,
    0x00, 0x00, 0x00, 0x2c, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00,
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x9c, 0x40,
    0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff, 0xb7, 0xdc,
    0x00, 0x00,
];

/// UDP [2001:db8::1]:5353 -> [2001:db8::2]:53 "hello" on VLAN 100, hop limit 63.
#[rustfmt::skip]
static IPV6_VLAN_UDP_FRAME: [u8; 71] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00, 0x64,
    0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x11, 0x3f, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d,
    0x4b, 0x6f, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
];

/// An ICMPv6 echo request 2001:db8::1 -> 2001:db8::2.
#[rustfmt::skip]
static IPV6_ECHO_FRAME: [u8; 66] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60, 0x00,
    0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x33, 0x3e, 0x12, 0x34, 0x00, 0x01, 0x70, 0x69,
    0x6e, 0x67,
];

static ALL_FRAMES: [&[u8]; 13] = [
    &TCP_SYN_FRAME,
    &VLAN_UDP_FRAME,
    &QINQ_TCP_FRAME,
    &ARP_FRAME,
    &ICMP_ECHO_FRAME,
    &FRAG_NEEDED_FRAME,
    &FIRST_FRAGMENT_FRAME,
    &SECOND_FRAGMENT_FRAME,
    &IPIP_FRAME,
    &IPV6_FRAME,
    &IPV6_TCP_FRAME,
    &IPV6_VLAN_UDP_FRAME,
    &IPV6_ECHO_FRAME,
];

const NO_VLAN: [VlanTci; 2] = [VlanTci(0), VlanTci(0)];

fn untagged(ethertype: EtherType, ipv4: Option<Ipv4Info>) -> Parsed {
    let net = ipv4.map_or(Network::None, Network::V4);
    Parsed { ethertype, l3_offset: 14, vlan_count: 0, vlan_tci: NO_VLAN, net }
}

fn syn_info(l3_offset: u16) -> Ipv4Info {
    Ipv4Info {
        header_len: 20,
        total_len: 60,
        l4_offset: l3_offset + 20,
        protocol: IpProtocol::Tcp,
        src_addr: Ipv4Addr::new(192, 168, 1, 10),
        dst_addr: Ipv4Addr::new(10, 0, 0, 100),
        ttl: 64,
        tos: 0,
        is_fragment: false,
        l4: L4::Tcp { src_port: 54321, dst_port: 80, flags: TcpFlags::SYN, header_len: 40 },
    }
}

fn fragment_info(total_len: u16, l4: L4) -> Ipv4Info {
    Ipv4Info {
        header_len: 20,
        total_len,
        l4_offset: 34,
        protocol: IpProtocol::Udp,
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        ttl: 64,
        tos: 0,
        is_fragment: true,
        l4,
    }
}

/// (fixture, what `classify_with(.., Checks::ALL)` returns).
fn expected() -> [(&'static [u8], Parsed); 13] {
    [
        (&TCP_SYN_FRAME, untagged(EtherType::Ipv4, Some(syn_info(14)))),
        (
            &VLAN_UDP_FRAME,
            Parsed {
                ethertype: EtherType::Ipv4,
                l3_offset: 18,
                vlan_count: 1,
                vlan_tci: [VlanTci(0x2064), VlanTci(0)],
                net: Network::V4(Ipv4Info {
                    header_len: 20,
                    total_len: 57,
                    l4_offset: 38,
                    protocol: IpProtocol::Udp,
                    src_addr: Ipv4Addr::new(10, 0, 0, 1),
                    dst_addr: Ipv4Addr::new(10, 0, 0, 2),
                    ttl: 63,
                    tos: 0,
                    is_fragment: false,
                    l4: L4::Udp { src_port: 5353, dst_port: 53 },
                }),
            },
        ),
        (
            &QINQ_TCP_FRAME,
            Parsed {
                ethertype: EtherType::Ipv4,
                l3_offset: 22,
                vlan_count: 2,
                vlan_tci: [VlanTci(10), VlanTci(20)],
                net: Network::V4(syn_info(22)),
            },
        ),
        (&ARP_FRAME, untagged(EtherType::Arp, None)),
        (
            &ICMP_ECHO_FRAME,
            untagged(
                EtherType::Ipv4,
                Some(Ipv4Info {
                    header_len: 20,
                    total_len: 36,
                    l4_offset: 34,
                    protocol: IpProtocol::Icmp,
                    src_addr: Ipv4Addr::new(172, 16, 0, 1),
                    dst_addr: Ipv4Addr::new(172, 16, 0, 2),
                    ttl: 64,
                    tos: 0,
                    is_fragment: false,
                    l4: L4::Icmp { msg_type: Icmpv4Message::EchoRequest, code: 0 },
                }),
            ),
        ),
        (
            &FRAG_NEEDED_FRAME,
            untagged(
                EtherType::Ipv4,
                Some(Ipv4Info {
                    header_len: 20,
                    total_len: 56,
                    l4_offset: 34,
                    protocol: IpProtocol::Icmp,
                    src_addr: Ipv4Addr::new(192, 168, 1, 1),
                    dst_addr: Ipv4Addr::new(10, 0, 0, 100),
                    ttl: 255,
                    tos: 0xc0,
                    is_fragment: false,
                    l4: L4::Icmp { msg_type: Icmpv4Message::DstUnreachable, code: 4 },
                }),
            ),
        ),
        (
            &FIRST_FRAGMENT_FRAME,
            untagged(EtherType::Ipv4, Some(fragment_info(44, L4::Udp { src_port: 4000, dst_port: 4001 }))),
        ),
        (&SECOND_FRAGMENT_FRAME, untagged(EtherType::Ipv4, Some(fragment_info(36, L4::Fragment)))),
        (
            &IPIP_FRAME,
            untagged(
                EtherType::Ipv4,
                Some(Ipv4Info {
                    header_len: 20,
                    total_len: 77,
                    l4_offset: 34,
                    protocol: IpProtocol::IpIp,
                    src_addr: Ipv4Addr::new(192, 168, 0, 1),
                    dst_addr: Ipv4Addr::new(192, 168, 0, 2),
                    ttl: 64,
                    tos: 0,
                    is_fragment: false,
                    l4: L4::Other,
                }),
            ),
        ),
        (
            &IPV6_FRAME,
            Parsed {
                net: Network::V6(Ipv6Info {
                    payload_len: 0,
                    l4_offset: 54,
                    protocol: IpProtocol::Ipv6NoNxt,
                    hop_limit: 64,
                    traffic_class: 0,
                    is_fragment: false,
                    l4: L4::Other,
                }),
                ..untagged(EtherType::Ipv6, None)
            },
        ),
        (
            &IPV6_TCP_FRAME,
            Parsed {
                net: Network::V6(Ipv6Info {
                    payload_len: 44,
                    l4_offset: 14 + 40 + 24,
                    protocol: IpProtocol::Tcp,
                    hop_limit: 64,
                    traffic_class: 0,
                    is_fragment: true,
                    l4: L4::Tcp { src_port: 40000, dst_port: 80, flags: TcpFlags::SYN, header_len: 20 },
                }),
                ..untagged(EtherType::Ipv6, None)
            },
        ),
        (
            &IPV6_VLAN_UDP_FRAME,
            Parsed {
                ethertype: EtherType::Ipv6,
                l3_offset: 18,
                vlan_count: 1,
                vlan_tci: [VlanTci(0x0064), VlanTci(0)],
                net: Network::V6(Ipv6Info {
                    payload_len: 13,
                    l4_offset: 58,
                    protocol: IpProtocol::Udp,
                    hop_limit: 63,
                    traffic_class: 0,
                    is_fragment: false,
                    l4: L4::Udp { src_port: 5353, dst_port: 53 },
                }),
            },
        ),
        (
            &IPV6_ECHO_FRAME,
            Parsed {
                net: Network::V6(Ipv6Info {
                    payload_len: 12,
                    l4_offset: 54,
                    protocol: IpProtocol::Icmpv6,
                    hop_limit: 64,
                    traffic_class: 0,
                    is_fragment: false,
                    l4: L4::Icmpv6 { msg_type: Icmpv6Message::EchoRequest, code: 0 },
                }),
                ..untagged(EtherType::Ipv6, None)
            },
        ),
    ]
}

#[test]
fn good_frames() {
    for (frame, parsed) in expected() {
        assert_eq!(classify_with(frame, Checks::ALL), Ok(parsed));
        assert_eq!(classify(frame), Ok(parsed));
    }
}

#[test]
fn classifying_in_place_over_another_frame_leaves_nothing_of_it() {
    // Every ordered pair of fixtures: the second classified into what the first left.
    for first in ALL_FRAMES {
        for (frame, want) in expected() {
            let mut out = Parsed::EMPTY;
            let _ = classify_into(first, Checks::NONE, &mut out);
            classify_into(frame, Checks::NONE, &mut out).unwrap();
            assert_eq!(out, want);
        }
    }
}

#[test]
fn helpers() {
    let parsed = classify(&TCP_SYN_FRAME).unwrap();
    let ip = parsed.ipv4().copied().unwrap();
    assert_eq!(ip.ports(), Some((54321, 80)));
    assert_eq!(ip.tcp_flags(), TcpFlags::SYN);
    assert_eq!(ip.l4_len(), 40);
    let ip = classify(&ICMP_ECHO_FRAME).unwrap().ipv4().copied().unwrap();
    assert_eq!((ip.ports(), ip.tcp_flags()), (None, TcpFlags::empty()));
}

/// The offsets `classify` returns index the right bytes.
#[test]
fn offsets_agree_with_views() {
    for (frame, _) in expected() {
        let parsed = classify(frame).unwrap();
        let Some(&ip) = parsed.ipv4() else { continue };
        let l3 = &frame[usize::from(parsed.l3_offset)..];
        let view = Ipv4Packet::new_checked(l3).unwrap();
        assert_eq!(view.src_addr(), ip.src_addr);
        assert_eq!(usize::from(ip.l4_offset), usize::from(parsed.l3_offset) + view.header_len());
        if let L4::Tcp { src_port, .. } | L4::Udp { src_port, .. } = ip.l4 {
            let l4 = usize::from(ip.l4_offset);
            assert_eq!(u16::from_be_bytes([frame[l4], frame[l4 + 1]]), src_port);
        }
    }
}

/// One malformed frame: a fixture, cut to `len` bytes if given, with byte patches.
struct Malformed {
    what: &'static str,
    base: &'static [u8],
    len: Option<usize>,
    patches: &'static [(usize, u8)],
    checks: Checks,
    error: Error,
}

#[rustfmt::skip]
const MALFORMED: &[Malformed] = &[
    Malformed { what: "IPv6 payload length past the frame", base: &IPV6_ECHO_FRAME, len: None, patches: &[(19, 13)],
                checks: Checks::NONE, error: Error::BadPayloadLen },
    Malformed { what: "IPv6 ethertype, version 4", base: &IPV6_ECHO_FRAME, len: None, patches: &[(14, 0x40)],
                checks: Checks::NONE, error: Error::BadVersion },
    Malformed { what: "IPv6 shorter than its header", base: &IPV6_ECHO_FRAME, len: Some(14 + 39), patches: &[],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "hop-by-hop options after destination options", base: &IPV6_TCP_FRAME, len: None,
                patches: &[(14 + 48, 0)], checks: Checks::NONE, error: Error::BadExtHeader },
    Malformed { what: "destination options past the payload", base: &IPV6_TCP_FRAME, len: None,
                patches: &[(14 + 49, 9)], checks: Checks::NONE, error: Error::BadExtHeader },
    Malformed { what: "TCP data offset past the segment, over IPv6", base: &IPV6_TCP_FRAME, len: None,
                patches: &[(78 + 12, 0xf0)], checks: Checks::NONE, error: Error::BadTcpOffset },
    Malformed { what: "UDP over IPv6 without a checksum", base: &IPV6_VLAN_UDP_FRAME, len: None,
                patches: &[(64, 0), (65, 0)], checks: Checks { ipv4: false, l4: true }, error: Error::BadChecksum },
    Malformed { what: "UDP length past the IPv6 payload", base: &IPV6_VLAN_UDP_FRAME, len: None,
                patches: &[(63, 14)], checks: Checks::NONE, error: Error::BadUdpLen },
    Malformed { what: "IPv6 to an IPv4-mapped address", base: &IPV6_ECHO_FRAME, len: None,
                patches: &[(14 + 24, 0), (14 + 25, 0), (14 + 26, 0), (14 + 27, 0), (14 + 32, 0), (14 + 33, 0),
                           (14 + 34, 0xff), (14 + 35, 0xff)],
                checks: Checks::NONE, error: Error::Unsupported },
    Malformed { what: "IPv6 from a multicast address", base: &IPV6_ECHO_FRAME, len: None,
                patches: &[(14 + 8, 0xff), (14 + 9, 0x02)], checks: Checks::NONE, error: Error::Unsupported },
    Malformed { what: "UDP over IPv6 from the unspecified address", base: &IPV6_VLAN_UDP_FRAME, len: None,
                patches: &[(18 + 8, 0), (18 + 9, 0), (18 + 10, 0), (18 + 11, 0), (18 + 23, 0)],
                checks: Checks::NONE, error: Error::Unsupported },
    Malformed { what: "ICMPv6 under 8 bytes", base: &IPV6_ECHO_FRAME, len: None, patches: &[(19, 4)],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "ICMPv6 checksum", base: &IPV6_ECHO_FRAME, len: None, patches: &[(14 + 40 + 8, 0)],
                checks: Checks { ipv4: false, l4: true }, error: Error::BadChecksum },
    Malformed { what: "shorter than an Ethernet header", base: &TCP_SYN_FRAME, len: Some(13), patches: &[],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "VLAN tag cut off", base: &VLAN_UDP_FRAME, len: Some(16), patches: &[],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "three VLAN tags", base: &QINQ_TCP_FRAME, len: None, patches: &[(20, 0x81), (21, 0x00)],
                checks: Checks::NONE, error: Error::Unsupported },
    Malformed { what: "IPv4 header cut off", base: &TCP_SYN_FRAME, len: Some(33), patches: &[],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "IP version 6 under type IPv4", base: &TCP_SYN_FRAME, len: None, patches: &[(14, 0x65)],
                checks: Checks::NONE, error: Error::BadVersion },
    Malformed { what: "IHL 4", base: &TCP_SYN_FRAME, len: None, patches: &[(14, 0x44)],
                checks: Checks::NONE, error: Error::BadHeaderLen },
    Malformed { what: "IHL 15 beyond total length 36", base: &ICMP_ECHO_FRAME, len: None, patches: &[(14, 0x4f)],
                checks: Checks::NONE, error: Error::BadHeaderLen },
    Malformed { what: "total length 19", base: &TCP_SYN_FRAME, len: None, patches: &[(17, 19)],
                checks: Checks::NONE, error: Error::BadTotalLen },
    Malformed { what: "total length past the frame", base: &TCP_SYN_FRAME, len: None, patches: &[(17, 61)],
                checks: Checks::NONE, error: Error::BadTotalLen },
    Malformed { what: "frame cut inside the TCP options", base: &TCP_SYN_FRAME, len: Some(70), patches: &[],
                checks: Checks::NONE, error: Error::BadTotalLen },
    Malformed { what: "IPv4 checksum", base: &TCP_SYN_FRAME, len: None, patches: &[(22, 63)],
                checks: Checks { ipv4: true, l4: false }, error: Error::BadChecksum },
    Malformed { what: "TCP checksum", base: &TCP_SYN_FRAME, len: None, patches: &[(49, 0xf1)],
                checks: Checks { ipv4: false, l4: true }, error: Error::BadChecksum },
    Malformed { what: "UDP checksum", base: &VLAN_UDP_FRAME, len: None, patches: &[(60, 0x66)],
                checks: Checks::ALL, error: Error::BadChecksum },
    Malformed { what: "ICMP checksum", base: &ICMP_ECHO_FRAME, len: None, patches: &[(42, 0x41)],
                checks: Checks::ALL, error: Error::BadChecksum },
    Malformed { what: "TCP header of 12 bytes", base: &TCP_SYN_FRAME, len: None, patches: &[(17, 32)],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "TCP data offset 4", base: &TCP_SYN_FRAME, len: None, patches: &[(46, 0x40)],
                checks: Checks::NONE, error: Error::BadTcpOffset },
    Malformed { what: "TCP data offset 15 past the segment", base: &QINQ_TCP_FRAME, len: None, patches: &[(54, 0xf0)],
                checks: Checks::NONE, error: Error::BadTcpOffset },
    Malformed { what: "UDP header of 6 bytes", base: &VLAN_UDP_FRAME, len: None, patches: &[(21, 26)],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "UDP length 7", base: &VLAN_UDP_FRAME, len: None, patches: &[(43, 7)],
                checks: Checks::NONE, error: Error::BadUdpLen },
    Malformed { what: "UDP length past the IP payload", base: &VLAN_UDP_FRAME, len: None, patches: &[(43, 38)],
                checks: Checks::NONE, error: Error::BadUdpLen },
    Malformed { what: "ICMP header of 4 bytes", base: &ICMP_ECHO_FRAME, len: None, patches: &[(17, 24)],
                checks: Checks::NONE, error: Error::Truncated },
    Malformed { what: "first fragment with 6 bytes of UDP", base: &FIRST_FRAGMENT_FRAME, len: None,
                patches: &[(17, 26)], checks: Checks::NONE, error: Error::Truncated },
];

fn build(case: &Malformed) -> std::vec::Vec<u8> {
    let mut bytes = case.base[..case.len.unwrap_or(case.base.len())].to_vec();
    for &(at, value) in case.patches {
        bytes[at] = value;
    }
    bytes
}

#[test]
fn malformed_frames() {
    for case in MALFORMED {
        let bytes = build(case);
        assert_eq!(classify_with(&bytes, case.checks), Err(case.error), "{}", case.what);
        // A checksum is reported only where one was asked to verify.
        if case.error == Error::BadChecksum {
            assert!(classify(&bytes).is_ok(), "{}", case.what);
        }
    }
}

#[test]
fn every_malformed_class_has_a_fixture() {
    // Every class but the TCP options', which the classifier does not parse.
    for class in Error::ALL.into_iter().filter(|&e| e != Error::BadTcpOption) {
        assert!(MALFORMED.iter().any(|case| case.error == class), "{class:?}");
    }
}

#[test]
fn fragments_skip_l4_checks() {
    // The first fragment's UDP length (40) is past its IP payload (24), and its checksum
    // covers bytes this frame does not hold: neither is checked.
    assert!(classify_with(&FIRST_FRAGMENT_FRAME, Checks::ALL).is_ok());
    // A later fragment's bytes are data, whatever they look like.
    let mut bytes = SECOND_FRAGMENT_FRAME;
    bytes[34..42].fill(0);
    let ip = classify(&bytes).unwrap().ipv4().copied().unwrap();
    assert_eq!(ip.l4, L4::Fragment);
}

#[test]
fn every_prefix() {
    for frame in ALL_FRAMES {
        let full = classify_with(frame, Checks::ALL).unwrap();
        for len in 0..=frame.len() {
            let prefix = &frame[..len];
            match classify_with(prefix, Checks::ALL) {
                Ok(parsed) => {
                    // A prefix parses only once it holds the whole IPv4 packet (or, for other
                    // types, the Ethernet header), and then parses the same.
                    assert_eq!(parsed, full, "prefix of {len}");
                    if let Some(&ip) = parsed.ipv4() {
                        assert!(usize::from(parsed.l3_offset) + usize::from(ip.total_len) <= len);
                    }
                    if let Some(&ip) = parsed.ipv6() {
                        assert!(usize::from(parsed.l3_offset) + 40 + usize::from(ip.payload_len) <= len);
                    }
                }
                Err(error) => {
                    let cut = matches!(error, Error::Truncated | Error::BadTotalLen | Error::BadPayloadLen);
                    assert!(cut, "prefix of {len}: {error:?}")
                }
            }
        }
    }
}

fn check_consistent(frame: &[u8], parsed: &Parsed) {
    let l3 = usize::from(parsed.l3_offset);
    assert!(l3 <= frame.len());
    assert_eq!(l3, 14 + 4 * usize::from(parsed.vlan_count));
    if let Some(&ip) = parsed.ipv4() {
        assert!(l3 + usize::from(ip.total_len) <= frame.len());
        assert!(ip.header_len >= 20 && u16::from(ip.header_len) <= ip.total_len);
        assert_eq!(usize::from(ip.l4_offset), l3 + usize::from(ip.header_len));
        if let L4::Tcp { header_len, .. } = ip.l4 {
            assert!(header_len >= 20 && u16::from(header_len) <= ip.l4_len());
        }
    }
    if let Some(&ip) = parsed.ipv6() {
        let end = l3 + 40 + usize::from(ip.payload_len);
        assert!(end <= frame.len());
        assert!(usize::from(ip.l4_offset) >= l3 + 40 && usize::from(ip.l4_offset) <= end);
        if let L4::Tcp { header_len, .. } = ip.l4 {
            assert!(header_len >= 20 && u16::from(header_len) <= ip.l4_len(parsed.l3_offset));
        }
    }
}

proptest! {
    #[test]
    fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        for checks in [Checks::NONE, Checks::ALL] {
            if let Ok(parsed) = classify_with(&bytes, checks) {
                check_consistent(&bytes, &parsed);
            }
        }
    }

    /// Random bytes rarely get past the Ethernet type; mutated real frames reach every layer.
    #[test]
    fn classify_never_panics_on_mutated_frames(
        which in 0..ALL_FRAMES.len(),
        patches in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut bytes = ALL_FRAMES[which].to_vec();
        for (at, value) in patches {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let len = cut.index(bytes.len() + 1);
        for frame in [&bytes[..], &bytes[..len]] {
            for checks in [Checks::NONE, Checks::ALL] {
                if let Ok(parsed) = classify_with(frame, checks) {
                    check_consistent(frame, &parsed);
                }
            }
        }
    }
}
