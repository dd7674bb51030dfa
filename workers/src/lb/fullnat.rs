//! The routed modes, Full-NAT and NAT: the balancer routes each packet of the connection both
//! ways, so its TTL goes down and its addresses and ports are translated (NAT is Full-NAT with
//! the client itself as the local side: the entry's local address and port are the client's,
//! and the real server's replies, routed back through the balancer, are its outbound side).

use conn::tcp::{State, Way};
use conn::Dir;
use wire::nat::Endpoints;
use wire::{EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags};

use super::state::track;
use super::{addr4, addr6, ticks, Balancer, Offsets, Verdict};
use crate::frame::Frame;
use crate::outcome::DropReason;

impl Balancer<'_> {
    /// A packet of Full-NAT or NAT connection `idx` going `dir`: TTL (ICMP time exceeded when
    /// it runs out, as a router does), addresses and ports, the client's address for the real
    /// server (TOA or PROXY), MACs, then the connection's state, timeout and counters.
    #[inline]
    pub(super) fn route<F: Frame>(
        &mut self,
        idx: u32,
        dir: Dir,
        buf: &mut F,
        at: Offsets,
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        let e = self.shard.entry(idx);
        let frame = buf.bytes();
        // The connection's sides, in the entry's 16-byte form.
        let (src, dst, sport, dport, out_port, dst_mac) = match dir {
            Dir::In => {
                // Resolved for this generation by the lookup (or just created in it).
                let real = &self.services[e.service as usize].reals[e.real as usize];
                (&e.laddr, &e.raddr, e.lport, e.rport, real.via, real.mac)
            }
            Dir::Out => (&e.vaddr, &e.caddr, e.vport, e.cport, e.client_port, EthernetAddress(e.client_mac)),
        };
        let protocol = if flags.is_some() { IpProtocol::Tcp } else { IpProtocol::Udp };
        if at.v6 {
            let to = Endpoints { src: addr6(src), dst: addr6(dst), sport, dport };
            if !translate_v6(frame, at, protocol, to) {
                return Verdict::TimeExceeded;
            }
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[at.l3..]);
            if ip.ttl() <= 1 {
                return Verdict::TimeExceeded;
            }
            ip.decrement_ttl();
            let to = Endpoints { src: addr4(src), dst: addr4(dst), sport, dport };
            wire::nat::rewrite(frame, at.l3, at.l4, protocol, to);
        }
        if !self.client_address(e, dir, buf, at, flags, out_port) {
            return Verdict::Drop(DropReason::NoResource);
        }
        self.forwarded(idx, dir, buf, flags, (out_port, dst_mac), new)
    }

    /// The end of a routed packet's way (translated, the client's address in it): its MACs to
    /// leave by `out_port` for `dst_mac`, then the connection's state, timeout and counters.
    #[inline(always)]
    pub(super) fn forwarded<F: Frame>(
        &mut self,
        idx: u32,
        dir: Dir,
        buf: &mut F,
        flags: Option<TcpFlags>,
        (out_port, dst_mac): (u16, EthernetAddress),
        new: bool,
    ) -> Verdict {
        let frame = buf.bytes();
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        eth.set_dst_addr(dst_mac);
        eth.set_src_addr(self.port_macs[usize::from(out_port)]);
        let len = frame.len() as u64;
        let e = self.shard.entry(idx);
        let way = if dir == Dir::In { Way::In } else { Way::Out };
        let (state, timeout) = track(State::from_u8(e.state), flags, way);
        let (service, real) = (e.service as usize, e.real as usize);
        self.conn_moved(service, real, State::from_u8(e.state), state);
        let em = self.shard.entry_mut(idx);
        em.state = state as u8;
        em.packets[dir as usize] += 1;
        em.bytes[dir as usize] += len;
        self.shard.set_timeout(idx, self.now_tick, ticks(timeout));
        self.count(service, real, dir, len);
        Verdict::Out { port: out_port, dir, new }
    }
}

/// An IPv6 packet's hop and translation (false: its hop limit ran out, nothing changed). Out
/// of line: IPv4's path stays small enough to be inlined into the packet loop.
#[inline(never)]
fn translate_v6(frame: &mut [u8], at: Offsets, protocol: IpProtocol, to: Endpoints<std::net::Ipv6Addr>) -> bool {
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[at.l3..]);
    let left = ip.hop_limit();
    if left <= 1 {
        return false;
    }
    ip.set_hop_limit(left - 1);
    wire::nat::rewrite(frame, at.l3, at.l4, protocol, to);
    true
}
