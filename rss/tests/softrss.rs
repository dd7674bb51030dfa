//! The balancer's Toeplitz against DPDK's own (`rte_softrss`, through the bindings), for the
//! Microsoft key and random keys, addresses and ports: the queue the balancer predicts is the
//! one a NIC with DPDK's implementation picks.

use proptest::prelude::*;
use rss::{Toeplitz, MS_KEY};

/// DPDK's IPv4 input in host byte order: source, destination, source port << 16 | destination
/// port.
fn dpdk_ipv4(t: &Toeplitz, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
    let tuple = [u32::from_be_bytes(src), u32::from_be_bytes(dst), u32::from(sport) << 16 | u32::from(dport)];
    dpdk::softrss(&tuple, t.key())
}

#[test]
fn dpdk_agrees_on_the_microsoft_key() {
    let t = Toeplitz::new(MS_KEY);
    let (src, dst) = ([66, 9, 149, 187], [161, 142, 100, 80]);
    assert_eq!(dpdk_ipv4(&t, src, dst, 2794, 1766), 0x51cc_c178);
    assert_eq!(t.ipv4(src, dst, 2794, 1766), 0x51cc_c178);
}

proptest! {
    #[test]
    fn dpdk_agrees_on_any_key_and_tuple(
        head in prop::array::uniform32(any::<u8>()),
        tail in prop::array::uniform8(any::<u8>()),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(), dport in any::<u16>(),
    ) {
        let mut key = [0u8; 40];
        key[..32].copy_from_slice(&head);
        key[32..].copy_from_slice(&tail);
        let t = Toeplitz::new(key);
        prop_assert_eq!(t.ipv4(src, dst, sport, dport), dpdk_ipv4(&t, src, dst, sport, dport));
        let addrs = [u32::from_be_bytes(src), u32::from_be_bytes(dst)];
        prop_assert_eq!(t.ipv4_addrs(src, dst), dpdk::softrss(&addrs, &key));
    }
}
