//! The Internet checksum: full computation (RFC 1071) and incremental update (RFC 1624).
//!
//! Vocabulary used below:
//!
//! - a *sum* is the 16-bit one's-complement sum of some data, folded, not inverted
//!   ([`sum`], [`pseudo_header_v4`], [`combine`]);
//! - a *checksum* is the inverted sum of the data with the checksum field zeroed; it is what
//!   goes on the wire ([`finish`]). Data that holds a correct checksum sums to `0xffff`.
//!
//! The incremental helpers ([`update_u16`], [`update_u32`], [`update_addr`]) give the checksum
//! a header would have after one of its fields changes, from the old checksum and the old and
//! new field values only (RFC 1624, eqn. 3). That is how NAT rewrites addresses and ports
//! without touching the payload. An IPv4 address change must be applied to the IPv4 header
//! checksum *and* to the TCP/UDP checksum, whose pseudo-header covers the addresses.
//!
//! UDP over IPv4 reserves checksum `0` for "no checksum"; a computed `0` is sent as `0xffff`.
//! The `udp_*` variants keep both rules: a `0` checksum stays `0`, and a result of `0`
//! becomes `0xffff`.
//!
//! Nothing here panics or allocates.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::ipv4::IpProtocol;

/// Bytes summed between two folds of the wide accumulator. Each 8-byte word adds less than
/// 2^33, so a block adds less than 2^46 and the `u64` accumulator never overflows.
const BLOCK: usize = 1 << 16;

/// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
const fn fold(acc: u64) -> u16 {
    // < 2^33, then < 2^17 + 2^16, then <= 0xffff + 2, then <= 0xffff.
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Adds `data`, read as big-endian 16-bit words (an odd last byte padded with a zero byte on
/// the right), to a wide accumulator that is at most 2^48.
#[inline]
fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    // Summing big-endian 32-bit halves of 64-bit words and folding later gives the same
    // result as summing 16-bit words, because 2^16 = 1 (mod 0xffff). Splitting the words into
    // halves instead of using a carry chain lets the compiler vectorise the loop.
    for block in data.chunks(BLOCK) {
        let (words, tail) = block.as_chunks::<8>();
        let mut wide = 0u64;
        for word in words {
            let word = u64::from_be_bytes(*word);
            wide += (word >> 32) + (word & 0xffff_ffff);
        }
        // `tail` is non-empty only in the last block, since BLOCK is a multiple of 8.
        let (pairs, odd) = tail.as_chunks::<2>();
        for pair in pairs {
            wide += u64::from(u16::from_be_bytes(*pair));
        }
        if let [last] = odd {
            wide += u64::from(*last) << 8;
        }
        acc = u64::from(fold(acc)) + u64::from(fold(wide));
    }
    acc
}

/// The one's-complement sum of `data` (RFC 1071), folded to 16 bits, not inverted.
///
/// An odd trailing byte is padded with a zero byte on the right, as the RFC says.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The one's-complement sum of several partial sums (for example a pseudo-header sum and the
/// sum of a segment). Each partial sum must cover an even number of bytes, except the last.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The checksum to store for data whose sum (with the checksum field zeroed) is `sum`.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// The checksum of `data`: `finish(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// The sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source and
/// destination address, a zero byte, the protocol, and `length`, the TCP or UDP length
/// (header plus payload) in bytes.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let src = src.to_bits();
    let dst = dst.to_bits();
    fold(
        u64::from(src >> 16)
            + u64::from(src & 0xffff)
            + u64::from(dst >> 16)
            + u64::from(dst & 0xffff)
            + u64::from(u8::from(protocol))
            + u64::from(length),
    )
}

/// The sum of the IPv6 pseudo-header that TCP, UDP and ICMPv6 checksums cover (RFC 8200
/// section 8.1): source and destination address, the upper-layer length as 32 bits, three
/// zero bytes and the upper-layer protocol.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: IpProtocol, length: u32) -> u16 {
    let (src, dst) = (src.to_bits(), dst.to_bits());
    let words = |a: u128| (a >> 96) as u64 + ((a >> 64) as u32) as u64 + ((a >> 32) as u32) as u64 + (a as u32) as u64;
    // Each 32-bit half sums like its two 16-bit words (2^16 = 1 mod 0xffff).
    fold(words(src) + words(dst) + u64::from(length) + u64::from(u8::from(protocol)))
}

/// An address family, as the checksums of TCP and UDP see it: its pseudo-header, and whether
/// a UDP checksum of `0` means none (IPv4) or is invalid (IPv6, RFC 8200 section 8.1).
pub trait Family: Copy + Eq + core::fmt::Debug {
    /// Whether a UDP checksum of `0` means "no checksum".
    const UDP_CHECKSUM_OPTIONAL: bool;

    /// The sum of the pseudo-header for `length` bytes of `protocol` from `src` to `dst`.
    fn pseudo_header(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16;

    /// The change from `old` to `new` as a term of [`apply`].
    fn delta(old: Self, new: Self) -> u64;
}

impl Family for Ipv4Addr {
    const UDP_CHECKSUM_OPTIONAL: bool = true;

    #[inline]
    fn pseudo_header(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16 {
        // An IPv4 payload is at most 65535 bytes; a longer buffer is clamped (and fails).
        pseudo_header_v4(src, dst, protocol, u16::try_from(length).unwrap_or(u16::MAX))
    }

    #[inline]
    fn delta(old: Self, new: Self) -> u64 {
        delta_addr(old, new)
    }
}

impl Family for Ipv6Addr {
    const UDP_CHECKSUM_OPTIONAL: bool = false;

    #[inline]
    fn pseudo_header(src: Self, dst: Self, protocol: IpProtocol, length: u32) -> u16 {
        pseudo_header_v6(&src, &dst, protocol, length)
    }

    #[inline]
    fn delta(old: Self, new: Self) -> u64 {
        delta_addr_v6(&old, &new)
    }
}

/// The checksum after a 16-bit field covered by `old_csum` changes from `old` to `new`
/// (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// When `old_csum` was computed in full, the result equals a full recomputation over the new
/// data, except where the old or the new data (checksum field zeroed) is all zeros: the two
/// results then differ as `0x0000` and `0xffff`, the two one's-complement zeros, and both
/// verify. No IPv4, TCP or UDP header is all zeros. For a UDP checksum use
/// [`udp_update_u16`].
#[inline]
pub const fn update_u16(old_csum: u16, old: u16, new: u16) -> u16 {
    apply(old_csum, delta_u16(old, new))
}

/// [`update_u16`] for a 32-bit field (two adjacent 16-bit words, big-endian), such as a TCP
/// sequence number or an IPv4 address.
#[inline]
pub const fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    apply(old_csum, delta_u32(old, new))
}

/// [`update_u32`] for an IPv4 address: use it on the IPv4 header checksum and on the TCP or
/// UDP checksum (whose pseudo-header covers both addresses) when NAT rewrites an address.
#[inline]
pub const fn update_addr(old_csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_u32(old_csum, old.to_bits(), new.to_bits())
}

/// The value to put on the wire for a computed UDP-over-IPv4 checksum: `0` means "no
/// checksum", so a computed `0` is sent as `0xffff` (its one's-complement twin).
#[inline]
pub const fn udp_on_wire(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// [`update_u16`] for a UDP-over-IPv4 checksum: `0` (none) stays `0`, and a result of `0` is
/// sent as `0xffff`.
#[inline]
pub const fn udp_update_u16(old_csum: u16, old: u16, new: u16) -> u16 {
    udp_apply(old_csum, delta_u16(old, new))
}

/// [`update_u32`] for a UDP-over-IPv4 checksum; see [`udp_update_u16`].
#[inline]
pub const fn udp_update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    udp_apply(old_csum, delta_u32(old, new))
}

/// [`update_addr`] for a UDP-over-IPv4 checksum; see [`udp_update_u16`].
#[inline]
pub const fn udp_update_addr(old_csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    udp_update_u32(old_csum, old.to_bits(), new.to_bits())
}

/// The change of a 16-bit field from `old` to `new`, as a term of [`apply`] (RFC 1624, eqn. 3:
/// `~m + m'`). Terms add up in a `u64`: one [`apply`] then covers any number of changes with
/// one fold, where [`update_u16`] per field folds after each (a chain of dependent steps).
#[inline]
pub const fn delta_u16(old: u16, new: u16) -> u64 {
    !old as u64 + new as u64
}

/// [`delta_u16`] for a 32-bit field (two adjacent 16-bit words, big-endian).
#[inline]
pub const fn delta_u32(old: u32, new: u32) -> u64 {
    delta_u16((old >> 16) as u16, (new >> 16) as u16) + delta_u16(old as u16, new as u16)
}

/// [`delta_u32`] for an IPv4 address.
#[inline]
pub const fn delta_addr(old: Ipv4Addr, new: Ipv4Addr) -> u64 {
    delta_u32(old.to_bits(), new.to_bits())
}

/// [`delta_u32`] for an IPv6 address (eight 16-bit words).
#[inline]
pub const fn delta_addr_v6(old: &Ipv6Addr, new: &Ipv6Addr) -> u64 {
    let (old, new) = (old.to_bits(), new.to_bits());
    delta_u32((old >> 96) as u32, (new >> 96) as u32)
        + delta_u32((old >> 64) as u32, (new >> 64) as u32)
        + delta_u32((old >> 32) as u32, (new >> 32) as u32)
        + delta_u32(old as u32, new as u32)
}

/// The checksum after the changes whose [`delta_u16`] / [`delta_u32`] terms sum to `delta`
/// (fewer than 2^40 of them): what [`update_u16`] once per change gives, with the same caveat
/// about all-zero data.
#[inline]
pub const fn apply(old_csum: u16, delta: u64) -> u16 {
    !fold(!old_csum as u64 + delta)
}

/// [`apply`] for a UDP-over-IPv4 checksum; see [`udp_update_u16`].
#[inline]
pub const fn udp_apply(old_csum: u16, delta: u64) -> u16 {
    if old_csum == 0 {
        0
    } else {
        udp_on_wire(apply(old_csum, delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious 16-bit-word loop, to check the fast one against.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let word = if pair.len() == 2 { u16::from_be_bytes([pair[0], pair[1]]) } else { u16::from(pair[0]) << 8 };
            acc += u32::from(word);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        assert_eq!(sum(&data[..0]), 0);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x00, 0x01, 0xf2]), 0xf201);
    }

    #[test]
    fn all_ones_sum_stays_negative_zero() {
        let data = [0xffu8; 1500];
        assert_eq!(sum(&data), 0xffff);
        assert_eq!(reference_sum(&data), 0xffff);
    }

    #[test]
    fn large_buffer_crosses_blocks() {
        let data: std::vec::Vec<u8> = (0..(3 * BLOCK + 13)).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(sum(&data), reference_sum(&data));
    }

    #[test]
    fn combine_splits_at_even_offsets() {
        let data: std::vec::Vec<u8> = (0..101u8).collect();
        for cut in (0..data.len()).step_by(2) {
            assert_eq!(combine(&[sum(&data[..cut]), sum(&data[cut..])]), sum(&data));
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(192, 168, 1, 10);
        let dst = Ipv4Addr::new(10, 0, 0, 1);
        let bytes = [192, 168, 1, 10, 10, 0, 0, 1, 0, 6, 0x05, 0xdc];
        assert_eq!(pseudo_header_v4(src, dst, IpProtocol::Tcp, 1500), sum(&bytes));
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_on_wire(0), 0xffff);
        assert_eq!(udp_on_wire(0x1234), 0x1234);
        // "No checksum" stays "no checksum" whatever changes.
        assert_eq!(udp_update_u16(0, 1, 2), 0);
        assert_eq!(udp_update_addr(0, Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)), 0);
        // A result of 0 goes out as 0xffff: checksum 0x0001 over a word 0xfffe that becomes
        // 0xffff gives ~(0xfffe + 0x0001 + 0xffff) = ~0xffff = 0.
        assert_eq!(update_u16(0x0001, 0xfffe, 0xffff), 0);
        assert_eq!(udp_update_u16(0x0001, 0xfffe, 0xffff), 0xffff);
        assert_eq!(udp_update_u32(0x0001, 0x0000_fffe, 0x0000_ffff), 0xffff);
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        #[test]
        fn incremental_u16_matches_full(
            mut words in proptest::collection::vec(any::<u16>(), 2..32),
            at in any::<proptest::sample::Index>(),
            new in any::<u16>(),
        ) {
            // The last word is the checksum field.
            let last = words.len() - 1;
            words[last] = 0;
            let at = at.index(last);
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<std::vec::Vec<u8>>();
            let old_csum = checksum(&bytes(&words));
            let old = words[at];
            words[at] = new;
            // All-zero data sums to +0; see `update_u16`.
            prop_assume!(old_csum != 0xffff && words.iter().any(|&w| w != 0));
            prop_assert_eq!(update_u16(old_csum, old, new), checksum(&bytes(&words)));
        }

        #[test]
        fn incremental_u32_matches_full(
            mut data in proptest::collection::vec(any::<u8>(), 8..64),
            new in any::<u32>(),
        ) {
            let cs = (data.len() - 2) & !1;
            data[cs..cs + 2].fill(0);
            let old_csum = checksum(&data);
            let old = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            data[..4].copy_from_slice(&new.to_be_bytes());
            // All-zero data sums to +0; see `update_u16`.
            prop_assume!(old_csum != 0xffff && data.iter().any(|&b| b != 0));
            prop_assert_eq!(update_u32(old_csum, old, new), checksum(&data));
        }

        #[test]
        fn one_apply_of_summed_deltas_matches_full(
            mut data in proptest::collection::vec(any::<u8>(), 12..64),
            new in (any::<u32>(), any::<u32>(), any::<u16>()),
        ) {
            // Two 32-bit fields and a 16-bit one change at once (a NAT rewrite), the checksum
            // field is the last whole word.
            let cs = (data.len() - 2) & !1;
            data[cs..cs + 2].fill(0);
            let old_csum = checksum(&data);
            let word = |d: &[u8], i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
            let (a, b, c) = (word(&data, 0), word(&data, 4), u16::from_be_bytes([data[8], data[9]]));
            data[..4].copy_from_slice(&new.0.to_be_bytes());
            data[4..8].copy_from_slice(&new.1.to_be_bytes());
            data[8..10].copy_from_slice(&new.2.to_be_bytes());
            prop_assume!(old_csum != 0xffff && data.iter().any(|&b| b != 0));
            let delta = delta_u32(a, new.0) + delta_u32(b, new.1) + delta_u16(c, new.2);
            prop_assert_eq!(apply(old_csum, delta), checksum(&data));
            // The same as one update per field.
            let stepwise = update_u16(update_u32(update_u32(old_csum, a, new.0), b, new.1), c, new.2);
            prop_assert_eq!(apply(old_csum, delta), stepwise);
        }
    }
}
