//! Connection state over time: LVS's TCP state tables per packet, the clock, expiry (with
//! the connection counts and persistence templates it releases).

use conn::tcp::{self, Event, State, Way};
use conn::Tuple;
use wire::TcpFlags;

use super::service::resolve;
use super::setup::template_of;
use super::{ip_of, Balancer, TICK_NS};

impl Balancer<'_> {
    /// Moves its clock to `now_ns` without expiring anything: a successor that waited (a hot
    /// standby) before it polls, so that what it stamps (learned neighbours) is not old.
    pub fn set_clock(&mut self, now_ns: u64) {
        self.now_tick = self.now_tick.max(now_ns / TICK_NS);
    }

    /// Advances the clock to `now_ns` and expires due connections (at most `budget` entries
    /// looked at). Returns how many expired.
    pub fn advance(&mut self, now_ns: u64, budget: usize) -> usize {
        self.now_tick = now_ns / TICK_NS;
        let now_tick = self.now_tick;
        if self.unlinks.capacity() < budget.min(1 << 16) {
            // Not the packet path: the first call, or a larger budget than before.
            self.unlinks.reserve(budget.min(1 << 16));
        }
        let (generation, stamp) = (self.generation, self.stamp());
        let (services, index) = (&mut self.services, &self.index);
        let unlinks = &mut self.unlinks;
        let real_stats = self.real_stats;
        let expired = self.shard.advance_renewing(now_tick, budget, |_, e| {
            if e.is_template() {
                // A template lives on while connections it placed do (LVS), as long as its
                // service is still persistent.
                if e.controls == 0 {
                    return None;
                }
                let p = services.get(index.service(e.proto, ip_of(&e.vaddr), e.vport)?)?.persistence;
                return (p > 0).then(|| now_tick + u64::from(p));
            }
            if e.is_controlled() && unlinks.len() < unlinks.capacity() {
                unlinks.push(template_of(e));
            }
            let at = if e.cfg_gen == stamp && generation != 0 {
                Some((e.service as usize, e.real as usize))
            } else {
                resolve(index, services, e)
            };
            let (s, r) = at?;
            let svc = services.get_mut(s)?;
            let limits = svc.limits.get(r).copied().unwrap_or_default();
            let resolved = svc.reals.get(r).is_some_and(|x| x.resolved);
            if let Some(c) = svc.real_slots.get(r).and_then(|&i| real_stats.get(i)) {
                if e.proto == 6 && e.state == State::Established as u8 {
                    c.move_now(-1, 0);
                } else {
                    c.move_now(0, -1);
                }
            }
            if let Some(b) = svc.backends.get_mut(r) {
                b.active_conns = b.active_conns.saturating_sub(1);
                if !b.available && resolved && limits.relieved(b.active_conns) {
                    b.available = true;
                }
            }
            None
        });
        while let Some(t) = self.unlinks.pop() {
            self.unlink(&t);
        }
        expired
    }

    /// One connection the template `t` placed is gone.
    pub(super) fn unlink(&mut self, t: &Tuple) {
        if let Some((tidx, _)) = self.shard.lookup(t) {
            let e = self.shard.entry_mut(tidx);
            if e.is_template() {
                e.controls = e.controls.saturating_sub(1);
            }
        }
    }
}

/// The new TCP state of a connection in `old` after a segment with `flags` going `way`, and
/// the timeout it gets; UDP (no flags): the UDP timeout.
pub(super) fn track(old: State, flags: Option<TcpFlags>, way: Way) -> (State, u32) {
    match flags {
        Some(f) => {
            let ev = Event::from_flags(
                f.contains(TcpFlags::SYN),
                f.contains(TcpFlags::FIN),
                f.contains(TcpFlags::ACK),
                f.contains(TcpFlags::RST),
            );
            let state = ev.map_or(old, |ev| tcp::next(old, way, ev));
            (state, state.default_timeout_s())
        }
        None => (old, tcp::UDP_TIMEOUT_S),
    }
}
