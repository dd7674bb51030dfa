//! IP-in-IP: a connection's inbound packets go whole inside an outer IPv4 header to the real
//! server, which may be anywhere routed, decapsulates and answers the client itself.

use conn::Dir;
use wire::{IpProtocol, Ipv4Packet, TcpFlags};

use super::dr::Hit;
use super::{Balancer, Verdict};
use crate::frame::Frame;
use crate::outcome::DropReason;

/// The outer IPv4 header of IP-in-IP.
pub(super) const TUNNEL_HEADER_LEN: usize = 20;

impl Balancer<'_> {
    /// A packet of an IP-in-IP connection: encapsulated whole in an IPv4 header from the
    /// balancer's address to the real server (TOS, TTL and DF copied from the packet, as LVS
    /// does), sent to the next hop's MAC. Inbound only: the real server answers the client
    /// directly.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tunnel<F: Frame>(
        &mut self,
        idx: u32,
        e: Hit,
        dir: Dir,
        buf: &mut F,
        l3: usize,
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        if dir != Dir::In {
            return Verdict::NotOurs;
        }
        let real = self.services[e.service].reals[e.real];
        // IP-in-IP is IPv4 (the configuration keeps IPv6 services Full-NAT).
        let (std::net::IpAddr::V4(src_addr), std::net::IpAddr::V4(dst_addr)) = (real.hop_src, real.addr) else {
            return Verdict::Drop(DropReason::NoResource);
        };
        let (len, tos, ttl, df) = {
            let ip = Ipv4Packet::new_unchecked(&buf.bytes()[l3..]);
            (usize::from(ip.total_len()), ip.tos(), ip.ttl(), ip.dont_frag())
        };
        // (Its size was checked against the port's MTU with the outer header.)
        // Ethernet padding after the packet does not go into the tunnel.
        buf.truncate(l3 + len);
        if !buf.insert(l3, TUNNEL_HEADER_LEN) {
            return Verdict::Drop(DropReason::NoResource);
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let outer = wire::Ipv4Repr {
            src_addr,
            dst_addr,
            protocol: IpProtocol::IpIp,
            payload_len: len,
            ttl,
            tos,
            ident: self.ip_id,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
        };
        let frame = buf.bytes();
        outer.emit(&mut Ipv4Packet::new_unchecked(&mut frame[l3..]));
        Ipv4Packet::new_unchecked(&mut frame[l3..]).fill_checksum();
        self.send_inbound_only(idx, e, frame, flags, new)
    }
}
