//! `rr` and `wrr`: the two schedulers that keep a position between picks.
//!
//! Both follow DPVS `src/ipvs/ip_vs_rr.c` / `ip_vs_wrr.c` (themselves kernel LVS's): the position
//! is an index into the backend slice with a "before the first backend" start value, a pick
//! advances from the last pick, and a control-path update moves the position back to the start.
//! Indices at or past the slice's end wrap to 0, so a shorter slice never panics.

use crate::Backend;

/// The position before the first backend (LVS: the list head).
const HEAD: usize = usize::MAX;

/// Round robin: the next backend after the last pick that can take a new connection.
#[derive(Debug, Clone)]
pub(crate) struct Rr {
    last: usize,
}

impl Rr {
    pub(crate) const fn new() -> Self {
        Self { last: HEAD }
    }

    /// One full lap at most; `None` (position unchanged) when no backend qualifies.
    #[inline]
    pub(crate) fn pick(&mut self, backends: &[Backend]) -> Option<usize> {
        let n = backends.len();
        let start = match self.last.checked_add(1) {
            Some(s) if s < n => s,
            _ => 0,
        };
        let found = (start..n).chain(0..start).find(|&i| backends[i].can_take_new())?;
        self.last = found;
        Some(found)
    }
}

/// Interleaved weighted round robin (LVS `ip_vs_wrr.c`).
///
/// The current weight `cw` starts at the largest weight `mw` and drops by the gcd `di` of the
/// weights each time the position wraps; a backend is picked when its weight is at least `cw`.
/// Over one cycle of `mw / di` laps each backend is picked `weight / di` times, and heavier
/// backends are picked first within the cycle: weights 4, 3, 2 give `A A B A B C A B C`.
///
/// `mw` and `di` are taken from the backends that can take new connections when the scheduler
/// is built or updated (LVS takes them from its destination list, from which a down server has
/// been removed). The weights read during a pick are the live ones; a changed weight should be
/// followed by an update, as in LVS, or proportions drift (correctness does not: see `pick`).
#[derive(Debug, Clone)]
pub(crate) struct Wrr {
    pos: usize,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The gcd of the weights of the backends that can take new connections; 0 when there is none.
pub(crate) fn gcd_weight(backends: &[Backend]) -> u32 {
    backends.iter().filter(|b| b.can_take_new()).fold(0, |g, b| gcd(g, b.weight))
}

impl Wrr {
    pub(crate) fn new(backends: &[Backend]) -> Self {
        let mut w = Self { pos: HEAD, cw: 0, mw: 0, di: 1 };
        w.update(backends);
        w
    }

    /// LVS `update_service`: back to the start, new `mw` and `di`, and `cw` kept unless it now
    /// exceeds `mw`.
    pub(crate) fn update(&mut self, backends: &[Backend]) {
        self.pos = HEAD;
        self.mw = backends.iter().filter(|b| b.can_take_new()).map(|b| i64::from(b.weight)).max().unwrap_or(0);
        self.di = i64::from(gcd_weight(backends).max(1));
        if self.cw > self.mw {
            self.cw = 0;
        }
    }

    /// LVS's loop, with one change that keeps a pick O(n) where LVS's can take O(n * mw / di)
    /// steps: after a full lap without a pick, it reads the largest live weight `top` (and
    /// returns `None` if no backend can take a new connection), and from then on each wrap
    /// lowers `cw` straight to the first value of its sequence that is at most `top`. The laps
    /// skipped that way are exactly those in which nothing could be picked (every weight is
    /// below `cw`), so the sequence of picks is LVS's. Only if the weights changed without an
    /// update, so that `top` is below `di`, does `cw` become `top` instead. Either way the
    /// lap after that wrap picks the backend of weight `top`: at most three laps in all. If
    /// nothing could take a connection at the last update (`mw` = 0), `cw` stays 0 and the
    /// pick degrades to round robin until the next update. A pick that returns `None` leaves
    /// the position as it was (LVS instead walks on until `cw` reaches `di`).
    #[inline]
    pub(crate) fn pick(&mut self, backends: &[Backend]) -> Option<usize> {
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = (self.pos, self.cw);
        let mut steps = 0usize;
        let mut top: Option<i64> = None;
        loop {
            if self.pos == HEAD || self.pos + 1 >= n {
                self.pos = 0;
                self.cw -= self.di;
                if self.cw <= 0 {
                    self.cw = self.mw;
                }
                if let Some(top) = top {
                    self.cw = self.skip_to(top);
                }
            } else {
                self.pos += 1;
            }
            let b = &backends[self.pos];
            if b.can_take_new() && i64::from(b.weight) >= self.cw {
                return Some(self.pos);
            }
            steps += 1;
            if steps == n {
                let Some(t) = backends.iter().filter(|b| b.can_take_new()).map(|b| i64::from(b.weight)).max() else {
                    (self.pos, self.cw) = start;
                    return None;
                };
                top = Some(t);
            }
        }
    }

    /// The first value at most `top` in the sequence `cw`, `cw - di`, ... (restarting at `mw`
    /// when it reaches 0), or `top` itself if that sequence has none.
    fn skip_to(&self, top: i64) -> i64 {
        let lower = |from: i64| from - (from - top + self.di - 1) / self.di * self.di;
        if self.cw <= top {
            return self.cw;
        }
        let cw = lower(self.cw);
        if cw > 0 {
            return cw;
        }
        let cw = if self.mw > top { lower(self.mw) } else { self.mw };
        if cw > 0 {
            cw
        } else {
            top
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(weights: &[u32]) -> Vec<Backend> {
        weights.iter().map(|&w| Backend::new(w)).collect()
    }

    fn seq(picks: impl FnMut() -> Option<usize>, n: usize) -> String {
        std::iter::repeat_with(picks).take(n).map(|p| p.map_or('-', |i| (b'A' + i as u8) as char)).collect()
    }

    #[test]
    fn rr_cycles_in_order_and_skips_quiescent_and_down() {
        let mut b = up(&[1, 1, 1, 1]);
        let mut rr = Rr::new();
        assert_eq!(seq(|| rr.pick(&b), 6), "ABCDAB");
        b[2].weight = 0; // quiescent
        b[3].available = false;
        assert_eq!(seq(|| rr.pick(&b), 5), "ABABA");
        b[0].available = false;
        b[1].available = false;
        assert_eq!(rr.pick(&b), None);
        assert_eq!(rr.pick(&[]), None);
        // The position survived the failed picks: A was last, so B comes next.
        b[1].available = true;
        b[2].weight = 5;
        assert_eq!(seq(|| rr.pick(&b), 4), "BCBC");
    }

    #[test]
    fn rr_wraps_when_the_slice_shrinks() {
        let b = up(&[1, 1, 1, 1]);
        let mut rr = Rr::new();
        assert_eq!(seq(|| rr.pick(&b), 4), "ABCD");
        assert_eq!(seq(|| rr.pick(&b[..2]), 3), "ABA");
    }

    #[test]
    fn wrr_gives_the_lvs_sequence() {
        let b = up(&[4, 3, 2]);
        let mut w = Wrr::new(&b);
        assert_eq!(seq(|| w.pick(&b), 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn wrr_divides_by_the_gcd() {
        // Weights 100, 50, 50 step like 2, 1, 1: A A B C, not fifty laps of A alone.
        let b = up(&[100, 50, 50]);
        let mut w = Wrr::new(&b);
        assert_eq!(seq(|| w.pick(&b), 8), "AABCAABC");
    }

    #[test]
    fn wrr_equal_weights_is_round_robin() {
        let b = up(&[7, 7, 7]);
        let mut w = Wrr::new(&b);
        assert_eq!(seq(|| w.pick(&b), 7), "ABCABCA");
    }

    #[test]
    fn wrr_skips_quiescent_and_down_and_ends_when_none_left() {
        let mut b = up(&[4, 0, 3, 2]);
        b[3].available = false;
        let mut w = Wrr::new(&b);
        // Only A (4) and C (3) count: cw 4: A; 3: A C; 2: A C; 1: A C.
        assert_eq!(seq(|| w.pick(&b), 7), "AACACAC");
        b[0].available = false;
        b[2].available = false;
        assert_eq!(w.pick(&b), None);
        let mut none = Wrr::new(&b);
        assert_eq!(none.pick(&b), None);
    }

    #[test]
    fn wrr_skips_fruitless_laps_without_changing_the_sequence() {
        // The heaviest goes down without an update: cw must come down from 1000 to 3 before
        // anything qualifies. The skip gets there in one wrap; the sequence is what stepping
        // one lap at a time gives: B (3) and C (2) in the wrr pattern of 3:2.
        let mut b = up(&[1000, 3, 2]);
        let mut w = Wrr::new(&b);
        assert_eq!(w.pick(&b), Some(0));
        b[0].available = false;
        assert_eq!(seq(|| w.pick(&b), 10), "BBCBCBBCBC");
    }

    #[test]
    fn wrr_skip_matches_plain_stepping() {
        // Reference: LVS's loop without the skip, unbounded but fine on small weights.
        fn plain(w: &mut Wrr, b: &[Backend]) -> Option<usize> {
            if !b.iter().any(|x| x.can_take_new() && i64::from(x.weight) >= w.di) {
                return None;
            }
            loop {
                if w.pos == HEAD || w.pos + 1 >= b.len() {
                    w.pos = 0;
                    w.cw -= w.di;
                    if w.cw <= 0 {
                        w.cw = w.mw;
                    }
                } else {
                    w.pos += 1;
                }
                if b[w.pos].can_take_new() && i64::from(b[w.pos].weight) >= w.cw {
                    return Some(w.pos);
                }
            }
        }
        let built = [up(&[60, 30, 20, 10]), up(&[9, 6, 3]), up(&[50, 1, 7, 7])];
        for (k, b0) in built.iter().enumerate() {
            for down in 0..b0.len() {
                let mut b = b0.clone();
                let (mut fast, mut slow) = (Wrr::new(&b), Wrr::new(&b));
                for step in 0..200 {
                    if step == 37 {
                        b[down].available = false;
                    }
                    let (f, s) = (fast.pick(&b), plain(&mut slow, &b));
                    assert_eq!(f, s, "set {k}, {down} down, step {step}");
                }
            }
        }
        // Random sets, with updates that change the weights (so `cw` is kept but may no longer
        // be a multiple of the new gcd), and backends going down and up without an update.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for case in 0..500 {
            let n = 2 + rand(5) as usize;
            let mut b: Vec<Backend> = (0..n).map(|_| Backend::new(rand(13) as u32)).collect();
            let (mut fast, mut slow) = (Wrr::new(&b), Wrr::new(&b));
            for step in 0..120 {
                if rand(10) == 0 {
                    b.iter_mut().for_each(|x| x.weight = rand(13) as u32);
                    fast.update(&b);
                    slow.update(&b);
                }
                if rand(6) == 0 {
                    // Up only with a weight the last update's gcd divides: otherwise LVS's loop
                    // could never pick it, and this one deliberately does (see `skip_to`).
                    let i = rand(n as u64) as usize;
                    b[i].available = !b[i].available && i64::from(b[i].weight) % fast.di == 0;
                }
                let (f, s) = (fast.pick(&b), plain(&mut slow, &b));
                assert_eq!(f, s, "case {case}, step {step}: {b:?}");
                assert_eq!(fast.cw, slow.cw, "case {case}, step {step}");
            }
        }
    }

    #[test]
    fn wrr_terminates_when_weights_change_without_update() {
        // Built with gcd 4; C drops to weight 1, below di, and A and B go down: C is still
        // eligible, so it is picked (cw drops to its weight) rather than spinning.
        let mut b = up(&[8, 4, 4]);
        let mut w = Wrr::new(&b);
        b[0].available = false;
        b[1].available = false;
        b[2].weight = 1;
        assert_eq!(seq(|| w.pick(&b), 3), "CCC");
        b[2].available = false;
        assert_eq!(w.pick(&b), None);
        b[2].available = true;
        b[2].weight = 4;
        assert_eq!(w.pick(&b), Some(2));
        // Built with nothing eligible, then one comes up without an update: round robin.
        let mut b = up(&[0, 0, 0]);
        let mut w = Wrr::new(&b);
        assert_eq!(w.pick(&b), None);
        b[1].weight = 3;
        b[2].weight = 1;
        assert_eq!(seq(|| w.pick(&b), 4), "BCBC");
    }

    #[test]
    fn wrr_update_restarts_the_lap_and_keeps_cw_if_it_fits() {
        let b = up(&[4, 3, 2]);
        let mut w = Wrr::new(&b);
        assert_eq!(seq(|| w.pick(&b), 3), "AAB"); // cw = 3
        w.update(&b);
        assert_eq!(seq(|| w.pick(&b), 3), "ABC"); // cw 3 -> 2 at the wrap: A, B, C
        let small = up(&[1, 1]);
        w.update(&small); // cw 2 > mw 1: reset
        assert_eq!(seq(|| w.pick(&small), 3), "ABA");
    }

    #[test]
    fn gcd_ignores_quiescent_and_down() {
        let mut b = up(&[6, 0, 9, 4]);
        b[3].available = false;
        assert_eq!(gcd_weight(&b), 3);
        assert_eq!(gcd_weight(&up(&[0, 0])), 0);
    }
}
