//! A new connection: the service's admission (TCP SYN, access lists), its real server
//! (persistence template or scheduler), its local address and port (Full-NAT), the PROXY
//! protocol header it will carry; and the persistence templates themselves.

use std::net::IpAddr;

use conn::tcp::State;
use conn::{NewConn, Tuple};
use sched::FlowKey;
use shm_layout::conn::{ConnEntry, Mode};
use shm_layout::LcoreCounters;
use wire::{EthernetFrame, TcpFlags};

use super::{entry_form, ip_of, proxy, ticks, Balancer, Real};
use crate::outcome::DropReason;

/// Local ports tried for one new connection before giving up.
const LPORT_TRIES: usize = 64;

impl Balancer<'_> {
    /// A new connection for a service, if the packet is for one (`Ok(None)`: not a service):
    /// TCP only on a SYN; the client admitted by the access lists; the real server its
    /// persistence template names, else the scheduler's pick; for Full-NAT a free local
    /// address and port.
    pub(super) fn create(
        &mut self,
        rx_port: u16,
        frame: &[u8],
        t: &Tuple,
        tcp: Option<(TcpFlags, u32)>,
    ) -> Result<Option<u32>, DropReason> {
        let (vip, vport) = (ip_of(&t.dst), t.dport);
        let Some(si) = self.index.service(t.proto, vip, vport) else {
            return Ok(None);
        };
        if let Some((f, _)) = tcp {
            if !f.contains(TcpFlags::SYN) || f.intersects(TcpFlags::ACK | TcpFlags::RST) {
                return Err(DropReason::NoConnection);
            }
        }
        let client = ip_of(&t.src);
        if !is_unicast(client) {
            // A group, a broadcast, nobody or the sender itself: no client (IPv6's are refused
            // by the classifier already).
            return Err(DropReason::Malformed(wire::Error::Unsupported));
        }
        if !self.services[si].admits(client) {
            return Err(DropReason::Denied);
        }
        let (ri, template) = self.place(si, t)?;
        let real = self.services[si].reals[ri];
        let client_mac = EthernetFrame::new_unchecked(frame).src_addr().0;
        let state = if tcp.is_some() { State::None } else { State::Established };
        let client_side = match real.forward {
            conf::Forward::Fnat => None,
            // Direct routing: the client's tuple on both sides (the real server has the VIP).
            conf::Forward::Dr => Some(Mode::Dr),
            // NAT: the real server sees the client; its replies (routed through the balancer)
            // are the outbound side, to the client.
            conf::Forward::Nat => Some(Mode::Nat),
            // IP-in-IP: like direct routing, the replies do not cross the balancer.
            conf::Forward::Tunnel => Some(Mode::Tunnel),
        };
        if let Some(mode) = client_side {
            let c = new_conn(t, (t.src, t.sport), &real, (state, mode), (si, ri), (client_mac, rx_port));
            return self.insert(&c, si, ri, template).map(Some);
        }
        let (laddr, lport) = self.local_port(si, t, &real)?;
        // An IPv4 real server of an IPv6 VIP: NAT64.
        let mode = if real.addr.is_ipv4() == vip.is_ipv4() { Mode::FullNat } else { Mode::Nat64 };
        let c = new_conn(t, (entry_form(laddr), lport), &real, (state, mode), (si, ri), (client_mac, rx_port));
        let idx = self.insert(&c, si, ri, template)?;
        self.start_proxy(idx, si, t, tcp.map(|(_, seq)| seq));
        Ok(Some(idx))
    }

    /// The real server of a new connection of client `t` to service `si` and the persistence
    /// template that placed it, if the service is persistent.
    fn place(&mut self, si: usize, t: &Tuple) -> Result<(usize, Option<u32>), DropReason> {
        let placed = match self.services[si].persistence {
            0 => None,
            p => self.persistent_real(si, t, p),
        };
        if let Some((ri, tidx)) = placed {
            return Ok((ri, Some(tidx)));
        }
        let svc = &mut self.services[si];
        let key =
            FlowKey { src: ip_of(&t.src), dst: ip_of(&t.dst), src_port: t.sport, dst_port: t.dport, proto: t.proto };
        let Some(ri) = svc.scheduler.pick(&svc.backends, &key) else {
            // Weight 0 is quiescent and an unresolved next hop unknown: not overloaded.
            let over = svc.backends.iter().zip(&svc.reals).any(|(b, r)| b.weight > 0 && r.resolved && !b.available);
            return Err(if over { DropReason::Overloaded } else { DropReason::NoReal });
        };
        let template = if svc.persistence > 0 { self.new_template(si, ri, t) } else { None };
        Ok((ri, template))
    }

    /// A local address and port of service `si` whose outbound tuple (from `real`) is free:
    /// one whose replies the RSS of the port they come in on (the real server's) delivers to
    /// this lcore; from this lcore's share of ports when that port's RSS cannot deliver
    /// replies to every lcore of the group (replies then find their lcore by port).
    fn local_port(&mut self, si: usize, t: &Tuple, real: &Real) -> Result<(IpAddr, u16), DropReason> {
        let out = |laddr: IpAddr, lport: u16| Tuple {
            proto: t.proto,
            src: entry_form(real.addr),
            sport: real.port,
            dst: entry_form(laddr),
            dport: lport,
        };
        if self.receive.places_replies(real.via) {
            // Each local address in turn, until one has a free port that lands here.
            for _ in 0..self.services[si].laddrs.len() {
                let laddr = self.services[si].next_laddr().ok_or(DropReason::NoResource)?;
                let shard = &mut self.shard;
                let free = |lport| shard.lookup(&out(laddr, lport)).is_none();
                let (rx, rport) = (&mut self.receive, real.port);
                let picked = match (real.addr, laddr) {
                    (IpAddr::V4(r), IpAddr::V4(l)) => {
                        rx.local_port(real.via, (r.octets(), rport), l.octets(), LPORT_TRIES, free)
                    }
                    (IpAddr::V6(r), IpAddr::V6(l)) => {
                        rx.local_port(real.via, (r.octets(), rport), l.octets(), LPORT_TRIES, free)
                    }
                    // (The configuration gives a service's real servers and local addresses
                    // one family.)
                    _ => continue,
                };
                if let Some(lport) = picked {
                    return Ok((laddr, lport));
                }
            }
            return Err(DropReason::NoResource);
        }
        for _ in 0..LPORT_TRIES {
            // A service being set up has no local address yet (`ipvsadm -A`, `-a`, then
            // `--add-laddr`).
            let (laddr, lport) = self.services[si].next_local().ok_or(DropReason::NoResource)?;
            if self.shard.lookup(&out(laddr, lport)).is_none() {
                return Ok((laddr, lport));
            }
        }
        Err(DropReason::NoResource)
    }

    /// Records the PROXY protocol header new Full-NAT connection `idx` of service `si` gets,
    /// if the service asks for one: for TCP (`syn_seq`: the SYN's sequence number) in front
    /// of the client's first byte, for UDP (version 2 only, by the configuration's rules) in
    /// front of every datagram.
    fn start_proxy(&mut self, idx: u32, si: usize, t: &Tuple, syn_seq: Option<u32>) {
        let proxy = self.services[si].proxy;
        if proxy == conf::ProxyProtocol::Off {
            return;
        }
        let e = self.shard.entry_mut(idx);
        match syn_seq {
            Some(seq) => {
                let mut hdr = [0u8; proxy::MAX_LEN];
                let len = proxy::header(proxy, (ip_of(&t.src), t.sport), (ip_of(&t.dst), t.dport), &mut hdr);
                e.pp_seq = seq.wrapping_add(1);
                e.pp_len = len as u16;
                e.pp_version = if proxy == conf::ProxyProtocol::V1 { 1 } else { 2 };
            }
            None => {
                e.pp_len = proxy::v2_len(ip_of(&t.src)) as u16;
                e.pp_version = 2;
            }
        }
    }

    /// The real server the template of client `t.src` names for persistent service `si`, if
    /// there is one and the real server still exists; the template's life starts again.
    fn persistent_real(&mut self, si: usize, t: &Tuple, persistence: u32) -> Option<(usize, u32)> {
        let (tidx, _) = self.shard.lookup(&template_tuple(t, self.services[si].persistence_prefix))?;
        let e = *self.shard.entry(tidx);
        if !e.is_template() {
            return None;
        }
        let raddr = ip_of(&e.raddr);
        let svc = &self.services[si];
        let found = svc.reals.iter().position(|r| r.addr == raddr && r.port == e.rport);
        // Down by its health check: as good as gone for persistence.
        let down = |ri: usize| svc.def.as_ref().is_some_and(|d| d.reals.get(ri).is_some_and(|r| r.down));
        let Some(ri) = found.filter(|&ri| !down(ri)) else {
            // Its real server is gone: a new template follows the scheduler's pick.
            self.shard.remove(tidx);
            return None;
        };
        self.shard.set_timeout(tidx, self.now_tick, persistence);
        Some((ri, tidx))
    }

    /// Files the template that sends client `t.src`'s next connections to service `si` to
    /// real server `ri` (best effort: a full table leaves the client without persistence).
    fn new_template(&mut self, si: usize, ri: usize, t: &Tuple) -> Option<u32> {
        let real = self.services[si].reals[ri];
        let tt = template_tuple(t, self.services[si].persistence_prefix);
        // Its outbound side (real -> client:0) matches no packet either.
        let c = new_conn(&tt, (tt.src, 0), &real, (State::None, Mode::Template), (si, ri), ([0; 6], 0));
        let idx = self.shard.insert(&c, self.now_tick, self.services[si].persistence).ok()?;
        self.shard.entry_mut(idx).cfg_gen = self.stamp();
        Some(idx)
    }

    /// Files a new connection of real server `ri` of service `si`, placed by the persistence
    /// template at `template` if any.
    fn insert(&mut self, c: &NewConn, si: usize, ri: usize, template: Option<u32>) -> Result<u32, DropReason> {
        let idx = self
            .shard
            .insert(c, self.now_tick, ticks(State::SynRecv.default_timeout_s()))
            .map_err(|_| DropReason::NoResource)?;
        self.shard.entry_mut(idx).cfg_gen = self.stamp();
        if let Some(t) = template {
            self.shard.entry_mut(t).controls += 1;
            let em = self.shard.entry_mut(idx);
            em.set_controlled();
            em.template_prefix = self.services[si].persistence_prefix;
        }
        let svc = &mut self.services[si];
        let b = &mut svc.backends[ri];
        b.active_conns += 1;
        if svc.limits.get(ri).is_some_and(|l| l.over(b.active_conns)) {
            b.available = false;
        }
        if let Some(c) = self.stats.get(svc.stats_slot) {
            LcoreCounters::bump(&c.conns, 1);
        }
        if let Some(c) = svc.real_slots.get(ri).and_then(|&i| self.real_stats.get(i)) {
            LcoreCounters::bump(&c.conns, 1);
            // A new connection is inactive until it is established (LVS).
            c.move_now(0, 1);
        }
        Ok(idx)
    }
}

/// Whether `a` can be a client: not unspecified, multicast, broadcast or loopback.
fn is_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

/// The key of the template that placed connection `e`.
pub(super) fn template_of(e: &ConnEntry) -> Tuple {
    let client = entry_form(masked(ip_of(&e.caddr), e.template_prefix));
    Tuple { proto: e.proto, src: client, sport: 0, dst: e.vaddr, dport: e.vport }
}

/// The key of a persistence template: the client's network of `prefix` bits (0: its
/// address), port 0, and the service.
fn template_tuple(t: &Tuple, prefix: u8) -> Tuple {
    let client = entry_form(masked(ip_of(&t.src), prefix));
    Tuple { proto: t.proto, src: client, sport: 0, dst: t.dst, dport: t.dport }
}

/// `a`'s network of `prefix` bits (0: `a` itself).
pub(super) fn masked(a: IpAddr, prefix: u8) -> IpAddr {
    if prefix == 0 {
        a
    } else {
        conf::network_of(a, prefix)
    }
}

/// A new connection of client tuple `t` (client -> VIP) to `real`, whose outbound side is
/// `real -> local` (Full-NAT: a local address and port; direct routing: the client itself).
fn new_conn(
    t: &Tuple,
    local: ([u8; 16], u16),
    real: &Real,
    (state, mode): (State, Mode),
    (si, ri): (usize, usize),
    (client_mac, client_port): ([u8; 6], u16),
) -> NewConn {
    NewConn {
        proto: t.proto,
        caddr: t.src,
        cport: t.sport,
        vaddr: t.dst,
        vport: t.dport,
        laddr: local.0,
        lport: local.1,
        raddr: entry_form(real.addr),
        rport: real.port,
        state: state as u8,
        mode,
        service: si as u32,
        real: ri as u32,
        client_mac,
        client_port,
    }
}
