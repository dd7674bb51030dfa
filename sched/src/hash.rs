//! The one hash behind every placement decision: SipHash (Aumasson & Bernstein, 2012) with fixed,
//! published keys.
//!
//! Invariants:
//! - The output for a given key and byte string is the same in every process, on every machine
//!   and in every release of this crate: the hashing schedulers (`conhash`, `mh`) must agree
//!   across workers, across restarts and across load balancers sharing one VIP behind ECMP. So no
//!   `RandomState`, no `std::hash::Hasher` (whose integer writes use native endianness): callers
//!   feed explicit little- or big-endian bytes. Golden values in the tests pin the output.
//! - Hashing never allocates.
//!
//! The keys are not secret. A client that can choose its source address can aim at one backend
//! with any fixed-key hash; that is inherent to source hashing (LVS `sh`/`mh` and DPVS share
//! it), and the defence is rate limiting, not a secret key that would differ between nodes.

use std::net::IpAddr;

/// SipHash with `C` compression rounds and `D` finalization rounds, fed incrementally.
///
/// The crate uses SipHash-1-3 ([`SipHasher13`], the variant Rust's standard library and Python
/// use for their hash tables); SipHash-2-4 is kept for checking the core against the reference
/// vectors of the SipHash paper.
#[derive(Clone, Debug)]
pub struct SipHasher<const C: usize, const D: usize> {
    v: [u64; 4],
    /// Bytes written but not yet compressed, little-endian, `ntail` of them.
    tail: u64,
    ntail: usize,
    /// Total bytes written (only the low 8 bits enter the hash, per the specification).
    len: u64,
}

/// SipHash-1-3: the variant every placement decision in this crate uses.
pub type SipHasher13 = SipHasher<1, 3>;

/// A 128-bit SipHash key as two little-endian words, `k0` first.
pub type SipKey = [u64; 2];

/// Key for hashing flows (source address, source port, 5-tuple).
pub const FLOW_KEY: SipKey = [u64::from_le_bytes(*b"sched-fl"), u64::from_le_bytes(*b"ow-key-1")];
/// Key for a backend's Maglev offset (`h1` in the paper).
pub const MH_OFFSET_KEY: SipKey = [u64::from_le_bytes(*b"sched-mh"), u64::from_le_bytes(*b"-offset1")];
/// Key for a backend's Maglev skip (`h2` in the paper).
pub const MH_SKIP_KEY: SipKey = [u64::from_le_bytes(*b"sched-mh"), u64::from_le_bytes(*b"-skip--1")];
/// Key for the positions of a backend's virtual nodes on the `conhash` ring.
pub const RING_KEY: SipKey = [u64::from_le_bytes(*b"sched-co"), u64::from_le_bytes(*b"nhash-v1")];

impl<const C: usize, const D: usize> SipHasher<C, D> {
    /// A hasher keyed with `key`.
    pub const fn new(key: SipKey) -> Self {
        let [k0, k1] = key;
        Self {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        for _ in 0..C {
            Self::round(&mut self.v);
        }
        self.v[0] ^= m;
    }

    /// Feeds `bytes`. Splitting a byte string over several calls gives the same hash as one call.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        let mut rest = bytes;
        if self.ntail > 0 {
            while self.ntail < 8 {
                let Some((&b, more)) = rest.split_first() else { return };
                self.tail |= u64::from(b) << (8 * self.ntail);
                self.ntail += 1;
                rest = more;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
        let mut words = rest.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.compress(u64::from_le_bytes(b));
        }
        for (i, &b) in words.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.ntail = words.remainder().len();
    }

    /// The hash of everything written so far. The hasher can go on being fed afterwards.
    #[inline]
    pub fn finish(&self) -> u64 {
        let mut s = self.clone();
        let last = ((s.len & 0xff) << 56) | s.tail;
        s.compress(last);
        s.v[2] ^= 0xff;
        for _ in 0..D {
            Self::round(&mut s.v);
        }
        s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3]
    }
}

/// SipHash-1-3 of `bytes` under `key`.
#[inline]
pub fn sip13(key: SipKey, bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new(key);
    h.write(bytes);
    h.finish()
}

/// An address as 16 bytes: IPv6 as is, IPv4 as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so
/// `10.0.0.1` and `::ffff:10.0.0.1` hash alike.
#[inline]
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type SipHasher24 = SipHasher<2, 4>;

    /// Key `00 01 .. 0f` as the paper's test vectors use it.
    const REF_KEY: SipKey = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];

    fn sip24(key: SipKey, bytes: &[u8]) -> u64 {
        let mut h = SipHasher24::new(key);
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn siphash24_matches_the_paper() {
        // Appendix A of "SipHash: a fast short-input PRF": key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(sip24(REF_KEY, &msg), 0xa129_ca61_49be_45e5);
        // First entries of the reference implementation's vector table (message 00..len-1).
        assert_eq!(sip24(REF_KEY, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(sip24(REF_KEY, &[0]), 0x74f8_39c5_93dc_67fd);
    }

    #[test]
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4 and deprecated only as a HashMap hasher.
    fn siphash24_matches_std_at_every_length_and_split() {
        use std::hash::Hasher;
        let data: Vec<u8> = (0..70u32).map(|i| (i.wrapping_mul(37) ^ 0x5a) as u8).collect();
        for len in 0..data.len() {
            let mut reference = std::hash::SipHasher::new_with_keys(REF_KEY[0], REF_KEY[1]);
            reference.write(&data[..len]);
            let want = reference.finish();
            assert_eq!(sip24(REF_KEY, &data[..len]), want, "len {len}");
            for split in 0..=len {
                let mut h = SipHasher24::new(REF_KEY);
                h.write(&data[..split]);
                h.write(&data[split..len]);
                assert_eq!(h.finish(), want, "len {len} split {split}");
            }
        }
    }

    /// Golden SipHash-1-3 values. They pin the placement of every backend and flow: if this test
    /// fails, every `conhash` ring and Maglev table in a mixed-version fleet would disagree.
    #[test]
    fn siphash13_golden_values() {
        assert_eq!(sip13([0, 0], &[]), 0xd1fb_a762_150c_532c);
        assert_eq!(sip13(REF_KEY, b"hello, world"), GOLDEN_HELLO);
        assert_eq!(sip13(FLOW_KEY, &ip_bytes("10.0.0.1".parse().unwrap())), GOLDEN_FLOW);
    }

    /// Computed by this implementation when, at the time they were frozen, it matched Rust 1.95's
    /// `DefaultHasher` (SipHash-1-3 under keys 0 and 0) at every length up to 40 bytes.
    const GOLDEN_HELLO: u64 = 0xc657_a05e_198b_b2b6;
    const GOLDEN_FLOW: u64 = 0x01ca_1978_c4d1_0dcd;

    #[test]
    fn ipv4_hashes_as_mapped_ipv6() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_bytes(v4), ip_bytes(mapped));
        assert_ne!(ip_bytes(v4), ip_bytes("192.0.2.8".parse().unwrap()));
    }
}
