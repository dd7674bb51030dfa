//! `lc`, `wlc` and `fo`: stateless scans that read the live connection counts and weights.
//!
//! All three scan the slice in order and replace the current choice only on a strictly better
//! backend, so ties go to the first (lowest index), as in LVS and DPVS.

use crate::Backend;

/// LVS connection overhead: `active * 256 + inactive` (`ip_vs_dest_conn_overhead`), so an
/// active connection weighs 256 idle ones. In `u64`, so it cannot overflow.
#[inline]
pub(crate) fn overhead(b: &Backend) -> u64 {
    (u64::from(b.active_conns) << 8) + u64::from(b.inactive_conns)
}

/// Least connections (kernel LVS `ip_vs_lc.c`): the lowest overhead.
#[inline]
pub(crate) fn lc(backends: &[Backend]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, b) in backends.iter().enumerate() {
        if !b.can_take_new() {
            continue;
        }
        let oh = overhead(b);
        if least.is_none_or(|(_, loh)| oh < loh) {
            least = Some((i, oh));
        }
    }
    least.map(|(i, _)| i)
}

/// Weighted least connections (DPVS `ip_vs_wlc.c`): the lowest `overhead / weight`, compared as
/// LVS does without division: `d` replaces `least` when `loh * w_d > doh * w_least`. The
/// products are taken in `u128` (a 40-bit overhead times a 32-bit weight), so they cannot wrap
/// where LVS's 32-bit ones can.
#[inline]
pub(crate) fn wlc(backends: &[Backend]) -> Option<usize> {
    let mut least: Option<(usize, u64, u32)> = None;
    for (i, b) in backends.iter().enumerate() {
        if !b.can_take_new() {
            continue;
        }
        let doh = overhead(b);
        // Widening 64 x 32 -> 128-bit products: one multiply instruction each on x86-64.
        if least.is_none_or(|(_, loh, lw)| u128::from(loh) * u128::from(b.weight) > u128::from(doh) * u128::from(lw)) {
            least = Some((i, doh, b.weight));
        }
    }
    least.map(|(i, _, _)| i)
}

/// Weighted failover (DPVS `ip_vs_fo.c`): the highest weight.
#[inline]
pub(crate) fn fo(backends: &[Backend]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, b) in backends.iter().enumerate() {
        if b.can_take_new() && best.is_none_or(|(_, hw)| b.weight > hw) {
            best = Some((i, b.weight));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(weight: u32, active: u32, inactive: u32) -> Backend {
        Backend { weight, active_conns: active, inactive_conns: inactive, available: true }
    }

    #[test]
    fn overhead_weighs_active_256_times() {
        assert_eq!(overhead(&b(1, 2, 3)), 515);
        assert_eq!(overhead(&b(1, u32::MAX, u32::MAX)), (u64::from(u32::MAX) << 8) + u64::from(u32::MAX));
    }

    #[test]
    fn lc_takes_least_overhead_first_on_ties() {
        // 1 active (256) loses to 255 inactive; the 255s tie and the first wins.
        assert_eq!(lc(&[b(1, 1, 0), b(1, 0, 255), b(1, 0, 255)]), Some(1));
        assert_eq!(lc(&[b(1, 0, 0), b(5, 0, 0)]), Some(0));
        // lc ignores weight except 0 = quiescent.
        assert_eq!(lc(&[b(100, 0, 3), b(1, 0, 2)]), Some(1));
        assert_eq!(lc(&[b(0, 0, 0), b(1, 9, 9)]), Some(1));
        let mut down = b(1, 0, 0);
        down.available = false;
        assert_eq!(lc(&[down, b(1, 9, 9)]), Some(1));
        assert_eq!(lc(&[down, b(0, 0, 0)]), None);
        assert_eq!(lc(&[]), None);
    }

    #[test]
    fn wlc_compares_by_cross_multiplication() {
        // 512/2 = 256 vs 300/1 = 300: the weighted one wins although its overhead is higher.
        assert_eq!(wlc(&[b(1, 0, 300), b(2, 2, 0)]), Some(1));
        // 512/2 == 256/1: a tie, so the first.
        assert_eq!(wlc(&[b(1, 1, 0), b(2, 2, 0)]), Some(0));
        assert_eq!(wlc(&[b(2, 2, 0), b(1, 1, 0)]), Some(0));
        // Integer division would call 3/2 and 2/2 equal (1); cross-multiplying does not.
        assert_eq!(wlc(&[b(2, 0, 3), b(2, 0, 2)]), Some(1));
        // Idle backends tie at 0 whatever their weight.
        assert_eq!(wlc(&[b(1, 0, 0), b(9, 0, 0)]), Some(0));
        // Weight 0 is quiescent even with no connections.
        assert_eq!(wlc(&[b(0, 0, 0), b(1, 50, 0)]), Some(1));
        assert_eq!(wlc(&[b(0, 0, 0)]), None);
    }

    #[test]
    fn wlc_does_not_wrap_at_the_extremes() {
        // In 32 bits LVS's products wrap here; u128 keeps the order right.
        let heavy = b(u32::MAX, u32::MAX, 0);
        let light = b(1, u32::MAX / 2, 0);
        assert_eq!(wlc(&[light, heavy]), Some(1));
        assert_eq!(wlc(&[heavy, light]), Some(0));
    }

    #[test]
    fn fo_takes_highest_weight_and_fails_over() {
        let mut set = [b(5, 0, 0), b(10, 99, 99), b(10, 0, 0), b(7, 0, 0)];
        assert_eq!(fo(&set), Some(1), "highest weight, first on ties, load ignored");
        set[1].available = false;
        assert_eq!(fo(&set), Some(2));
        set[2].weight = 0;
        assert_eq!(fo(&set), Some(3));
        set[3].available = false;
        set[0].available = false;
        assert_eq!(fo(&set), None);
    }
}
