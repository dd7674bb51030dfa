//! Layer-2 forwarding decisions, free of I/O so they are tested on byte arrays.
//!
//! Until the load-balancer data path lands, a worker forwards at layer 2: two-arm pairs send
//! what arrives on one port out of the other unchanged; one-arm reflects a frame out of the
//! port it came in on with source and destination MAC addresses swapped.

/// Length of an Ethernet header without VLAN tags.
pub const ETHER_HDR_LEN: usize = 14;

/// Where a frame received on a port goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2Plan {
    /// Out of `peer[rx_port]`, unchanged.
    Pair,
    /// Out of the rx port, MACs swapped.
    Reflect,
}

/// Outcome for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Forward,
    /// Too short to be an Ethernet frame: drop and count.
    DropRunt,
}

/// Applies the plan to one frame in place.
#[inline]
pub fn l2_process(plan: L2Plan, frame: &mut [u8]) -> Verdict {
    if frame.len() < ETHER_HDR_LEN {
        return Verdict::DropRunt;
    }
    if plan == L2Plan::Reflect {
        let (dst, rest) = frame.split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }
    Verdict::Forward
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const FRAME: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00,                         // IPv4
        0x45, 0x00, 0x00, 0x14,             // start of an IPv4 header
    ];

    #[test]
    fn reflect_swaps_macs_and_keeps_the_rest() {
        let mut f = FRAME;
        assert_eq!(l2_process(L2Plan::Reflect, &mut f), Verdict::Forward);
        assert_eq!(&f[..6], &FRAME[6..12]);
        assert_eq!(&f[6..12], &FRAME[..6]);
        assert_eq!(&f[12..], &FRAME[12..]);
    }

    #[test]
    fn pair_leaves_frame_unchanged() {
        let mut f = FRAME;
        assert_eq!(l2_process(L2Plan::Pair, &mut f), Verdict::Forward);
        assert_eq!(f, FRAME);
    }

    #[test]
    fn runts_are_dropped() {
        for len in 0..ETHER_HDR_LEN {
            let mut f = FRAME[..len].to_vec();
            assert_eq!(l2_process(L2Plan::Reflect, &mut f), Verdict::DropRunt, "len {len}");
            assert_eq!(f, FRAME[..len], "a runt is not modified");
        }
        let mut f = FRAME[..ETHER_HDR_LEN].to_vec();
        assert_eq!(l2_process(L2Plan::Pair, &mut f), Verdict::Forward);
    }
}
