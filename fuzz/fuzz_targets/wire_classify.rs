//! `wire::classify` on arbitrary frames: never panics, and what it accepts lies inside the
//! frame (every offset and length it reports).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{Checks, Network};

fuzz_target!(|frame: &[u8]| {
    for checks in [Checks::NONE, Checks::ALL] {
        let Ok(p) = wire::classify_with(frame, checks) else { continue };
        let l3 = usize::from(p.l3_offset);
        assert!(l3 <= frame.len() && usize::from(p.vlan_count) <= 2);
        match p.net {
            Network::V4(ip) => {
                assert!(l3 + usize::from(ip.total_len) <= frame.len(), "the packet is inside the frame");
                assert!((20..=60).contains(&ip.header_len));
                assert!(usize::from(ip.l4_offset) == l3 + usize::from(ip.header_len));
                assert!(usize::from(ip.l4_offset) <= l3 + usize::from(ip.total_len));
            }
            Network::V6(ip) => {
                assert!(usize::from(ip.l4_offset) <= frame.len());
                assert!(l3 + 40 <= frame.len());
            }
            Network::None => {}
        }
    }
});
