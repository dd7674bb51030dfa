//! Fixtures shared by the integration tests.
#![allow(dead_code)] // each test file uses a different subset

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sched::{Backend, FlowKey};

/// splitmix64: a fixed, seedable stream for reproducible flows.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `n` pseudo-random TCP flows to 192.0.2.1:80, every fourth from an IPv6 client.
pub fn flows(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let r = rng.next_u64();
            let src = if i % 4 == 3 {
                IpAddr::V6(Ipv6Addr::from(u128::from(r) << 64 | u128::from(rng.next_u64())))
            } else {
                IpAddr::V4(Ipv4Addr::from(r as u32))
            };
            FlowKey {
                src,
                dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                src_port: (r >> 32) as u16 | 1024,
                dst_port: 80,
                proto: 6,
            }
        })
        .collect()
}

/// The identity `"10.1.x.y:80"` of backend `i`.
pub fn id(i: usize) -> String {
    format!("10.1.{}.{}:80", i / 256, i % 256)
}

pub fn equal(n: usize) -> Vec<Backend> {
    vec![Backend::new(1); n]
}
