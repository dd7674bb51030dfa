//! Direct routing: a connection's inbound packets go to the real server's MAC unchanged (it
//! has the VIP and answers the client itself); and what it shares with IP-in-IP, the other
//! inbound-only mode.

use conn::tcp::{State, Way};
use conn::Dir;
use shm_layout::conn::ConnEntry;
use wire::{EthernetFrame, TcpFlags};

use super::state::track;
use super::{ticks, Balancer, Verdict};

impl Balancer<'_> {
    pub(super) fn direct_route(
        &mut self,
        idx: u32,
        e: Hit,
        dir: Dir,
        frame: &mut [u8],
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        if dir != Dir::In {
            // From the real server's own address to the client: not this connection's
            // traffic (its replies come from the VIP and never need the balancer).
            return Verdict::NotOurs;
        }
        self.send_inbound_only(idx, e, frame, flags, new)
    }

    /// Sends an inbound packet of an inbound-only connection (direct routing, IP-in-IP) to
    /// its real server's next hop, and accounts for it: LVS's inbound-only state table, the
    /// entry's and the counters' packets and bytes, the timeout.
    pub(super) fn send_inbound_only(
        &mut self,
        idx: u32,
        e: Hit,
        frame: &mut [u8],
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        let (via, mac) = {
            let real = &self.services[e.service].reals[e.real];
            (real.via, real.mac)
        };
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        eth.set_dst_addr(mac);
        eth.set_src_addr(self.port_macs[usize::from(via)]);
        let (state, timeout) = track(State::from_u8(e.state), flags, Way::InOnly);
        self.conn_moved(e.service, e.real, State::from_u8(e.state), state);
        let len = frame.len() as u64;
        let em = self.shard.entry_mut(idx);
        em.state = state as u8;
        em.packets[0] += 1;
        em.bytes[0] += len;
        self.shard.set_timeout(idx, self.now_tick, ticks(timeout));
        self.count(e.service, e.real, Dir::In, len);
        Verdict::Out { port: via, dir: Dir::In, new }
    }
}

/// What an inbound-only connection's packet needs of its entry: a few words read out of it,
/// rather than a copy of all 192 bytes (whose last packet's counter stores a wide copy would
/// wait for).
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit {
    pub(super) service: usize,
    pub(super) real: usize,
    pub(super) state: u8,
}

impl Hit {
    pub(super) fn of(e: &ConnEntry) -> Hit {
        Hit { service: e.service as usize, real: e.real as usize, state: e.state }
    }
}
