//! Microsoft's RSS verification suite (also DPDK's `app/test/test_thash.c`), and the linear
//! decomposition the balancer relies on.

use proptest::prelude::*;

use super::*;

/// (source, destination, source port, destination port, IPv4-only hash, IPv4 with TCP hash).
type Vector = ([u8; 4], [u8; 4], u16, u16, u32, u32);

/// From Microsoft's "Verifying the RSS Hash Calculation".
const IPV4_VECTORS: [Vector; 5] = [
    ([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766, 0x323e_8fc2, 0x51cc_c178),
    ([199, 92, 111, 2], [65, 69, 140, 83], 14230, 4739, 0xd718_262a, 0xc626_b0ea),
    ([24, 19, 198, 95], [12, 22, 207, 184], 12898, 38024, 0xd2d0_a5de, 0x5c2b_394a),
    ([38, 27, 205, 30], [209, 142, 163, 6], 48228, 2217, 0x8298_9176, 0xafc7_327f),
    ([153, 39, 163, 191], [202, 188, 127, 2], 44251, 1303, 0x5d18_09c5, 0x10e8_28a2),
];

#[test]
fn the_microsoft_ipv4_vectors() {
    let t = Toeplitz::new(MS_KEY);
    for (src, dst, sport, dport, addrs, tcp) in IPV4_VECTORS {
        assert_eq!(t.ipv4_addrs(src, dst), addrs, "{src:?} -> {dst:?}");
        assert_eq!(t.ipv4(src, dst, sport, dport), tcp, "{src:?}:{sport} -> {dst:?}:{dport}");
    }
}

/// (source, destination, source port, destination port, IPv6-only hash, IPv6 with TCP hash).
type Vector6 = (&'static str, &'static str, u16, u16, u32, u32);

/// From Microsoft's "Verifying the RSS Hash Calculation" (also in DPDK's `test_thash.c`).
const IPV6_VECTORS: [Vector6; 3] = [
    ("3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766, 0x2cc1_8cd5, 0x4020_7d3d),
    ("3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739, 0x0f0c_461c, 0xdde5_1bbf),
    ("3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf", 44251, 38024, 0x4b61_e985, 0x02d1_feef),
];

#[test]
fn the_microsoft_ipv6_vectors() {
    let t = Toeplitz::new(MS_KEY);
    let h = Ipv6Hasher::new(&t);
    let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    for (src, dst, sport, dport, addrs, tcp) in IPV6_VECTORS {
        assert_eq!(t.ipv6_addrs(a(src), a(dst)), addrs, "{src} -> {dst}");
        assert_eq!(t.ipv6(a(src), a(dst), sport, dport), tcp, "[{src}]:{sport} -> [{dst}]:{dport}");
        assert_eq!(h.hash(a(src), a(dst), sport, dport), tcp, "by table");
    }
}

#[test]
fn windows_at_byte_boundaries_are_the_key_bytes() {
    let t = Toeplitz::new(MS_KEY);
    assert_eq!(t.window(0), 0x6d5a_56da);
    assert_eq!(t.window(8), 0x5a56_da25);
    assert_eq!(t.window(4), 0xd5a5_6da2);
    // Past the key: zeros come in.
    assert_eq!(t.window(36 * 8), 0xbeac_01fa);
    assert_eq!(t.window(37 * 8), 0xac01_fa00);
}

#[test]
fn a_port_table_gives_the_port_part_of_the_hash() {
    let t = Toeplitz::new(MS_KEY);
    let ports = PortTable::new(&t, offset::DST_PORT);
    for (src, dst, sport, dport, _, tcp) in IPV4_VECTORS {
        let rest = t.ipv4(src, dst, sport, 0);
        assert_eq!(rest ^ ports.get(dport), tcp);
    }
}

#[test]
fn reta_sizes_and_queues() {
    assert_eq!(Reta::new(vec![0; 3]), Err(RetaError::BadSize(3)));
    assert_eq!(Reta::new(vec![]), Err(RetaError::BadSize(0)));
    let r = Reta::round_robin(128, 3).unwrap();
    assert_eq!(&r.entries()[..7], &[0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(r.queue(0x51cc_c178), (0x78 % 3) as u16);
    assert_eq!(r.queue(0xffff_ff7f), 127 % 3);
}

#[test]
fn a_picked_port_replies_to_its_queue_and_taken_ports_are_skipped() {
    let t = Toeplitz::new(MS_KEY);
    let reta = Reta::round_robin(128, 4).unwrap();
    let table = PortTable::new(&t, offset::DST_PORT);
    let mut picker = PortPicker::new(&table, &reta, 1025..=65535);
    let (rs, laddr, rport) = ([198, 18, 1, 2], [198, 18, 1, 254], 8080);
    let fixed = t.ipv4(rs, laddr, rport, 0);
    let mut taken = std::collections::HashSet::new();
    for queue in 0..4 {
        for _ in 0..500 {
            let p = picker.pick(queue, fixed, 64, |p| !taken.contains(&p)).unwrap();
            assert_eq!(reta.queue(t.ipv4(rs, laddr, rport, p)), queue);
            assert!(taken.insert(p), "port {p} given twice");
        }
    }
    // A queue in no RETA entry has no port.
    assert_eq!(picker.pick(4, fixed, 64, |_| true), None);
}

proptest! {
    /// For any key, RETA and reply tuple, a picked port's reply lands on the picking queue, no
    /// port is given twice while it is taken, and none is found only when no free port lands
    /// there.
    #[test]
    fn picked_ports_land_on_their_queue(
        head in prop::array::uniform32(any::<u8>()),
        reta in prop::collection::vec(0u16..8, 64),
        rs in any::<[u8; 4]>(), laddr in any::<[u8; 4]>(), rport in any::<u16>(),
        picks in prop::collection::vec(0u16..8, 1..200),
    ) {
        let mut key = MS_KEY;
        key[..32].copy_from_slice(&head);
        let t = Toeplitz::new(key);
        let reta = Reta::new(reta).unwrap();
        let mut picker = PortPicker::new(&PortTable::new(&t, offset::DST_PORT), &reta, 1025..=65535);
        let fixed = t.ipv4(rs, laddr, rport, 0);
        let mut taken = std::collections::HashSet::new();
        for queue in picks {
            let Some(p) = picker.pick(queue, fixed, 256, |p| !taken.contains(&p)) else {
                // None only when no free port's reply lands there: a degenerate key can leave
                // a queue unreachable by any port.
                let lands = |p: u16| !taken.contains(&p) && reta.queue(t.ipv4(rs, laddr, rport, p)) == queue;
                prop_assert!(!(1025..=65535).any(lands), "a free port lands on queue {}", queue);
                continue;
            };
            prop_assert_eq!(reta.queue(t.ipv4(rs, laddr, rport, p)), queue);
            prop_assert!(taken.insert(p));
        }
    }
}

proptest! {
    /// Toeplitz is linear: the hash of two inputs XORed is the XOR of their hashes, under any
    /// key; and a field's part at its offset is the hash of an input holding only that field.
    #[test]
    fn the_hash_is_linear(key in prop::array::uniform32(any::<u8>()), tail in prop::array::uniform8(any::<u8>()),
                          a in prop::array::uniform12(any::<u8>()), b in prop::array::uniform12(any::<u8>())) {
        let mut k = [0u8; KEY_LEN];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&tail);
        let t = Toeplitz::new(k);
        let x: Vec<u8> = a.iter().zip(&b).map(|(p, q)| p ^ q).collect();
        prop_assert_eq!(t.hash(&x), t.hash(&a) ^ t.hash(&b));
        let mut only = [0u8; offset::END];
        only[offset::SRC_PORT..offset::DST_PORT].copy_from_slice(&a[..2]);
        prop_assert_eq!(t.field(offset::SRC_PORT, &a[..2]), t.hash(&only));
        let bytes = ByteTable::new(&t, 5);
        let mut one = [0u8; 6];
        one[5] = a[0];
        prop_assert_eq!(bytes.get(a[0]), t.hash(&one));
    }
}

proptest! {
    #[test]
    fn the_table_hasher_is_the_hash(
        key in proptest::array::uniform32(any::<u8>()),
        tail in proptest::array::uniform8(any::<u8>()),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(), dport in any::<u16>(),
    ) {
        let mut k = [0u8; KEY_LEN];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&tail);
        let t = Toeplitz::new(k);
        let h = Ipv4Hasher::new(&t);
        prop_assert_eq!(h.hash(src, dst, sport, dport), t.ipv4(src, dst, sport, dport));
        prop_assert_eq!(h.hash(src, dst, sport, dport), h.hash(src, dst, sport, 0) ^ h.dst_port(dport));
        prop_assert_eq!(h.dst_port_table().get(dport), h.dst_port(dport));
        // The same tuple's addresses as the low bytes of IPv6 ones.
        let six = |a: [u8; 4]| { let mut x = [0xa5u8; 16]; x[12..].copy_from_slice(&a); x };
        let h6 = Ipv6Hasher::new(&t);
        let (s6, d6) = (six(src), six(dst));
        prop_assert_eq!(h6.hash(s6, d6, sport, dport), t.ipv6(s6, d6, sport, dport));
        let mut input = [0u8; 36];
        input[..16].copy_from_slice(&s6);
        input[16..32].copy_from_slice(&d6);
        input[32..34].copy_from_slice(&sport.to_be_bytes());
        input[34..].copy_from_slice(&dport.to_be_bytes());
        prop_assert_eq!(t.ipv6(s6, d6, sport, dport), t.hash(&input));
        prop_assert_eq!(h6.hash(s6, d6, sport, dport), h6.hash(s6, d6, sport, 0) ^ h6.dst_port(dport));
        prop_assert_eq!(h6.dst_port_table().get(dport), h6.dst_port(dport));
    }
}

#[test]
fn keys_read_as_ethtool_prints_them() {
    let text = key_text(&MS_KEY);
    assert!(text.starts_with("6d:5a:56:da:"), "{text}");
    assert_eq!(parse_key(&text), Ok(MS_KEY));
    assert_eq!(parse_key(&text.replace(':', "")), Ok(MS_KEY));
    assert_eq!(parse_key("6d:5a"), Err(KeyError::Length(2)));
    assert_eq!(parse_key("6d:5g"), Err(KeyError::NotHex));
    assert_eq!(parse_key("6d5"), Err(KeyError::NotHex));
    assert_eq!(parse_key("+6d5"), Err(KeyError::NotHex));
}
