//! IP-in-IP: a connection's inbound packets go whole inside an outer IP header of their own
//! family to the real server (IPv4 in IPv4, protocol 4; IPv6 in IPv6, next header 41), which
//! may be anywhere routed, decapsulates and answers the client itself.

use std::net::IpAddr;

use conn::Dir;
use wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags};

use super::dr::Hit;
use super::ip::Ip;
use super::{Balancer, Verdict};
use crate::frame::Frame;
use crate::outcome::DropReason;

/// The outer IPv4 header of IP-in-IP.
pub(super) const TUNNEL_HEADER_LEN: usize = 20;

/// The outer header of a tunnelled packet of `family`'s: IPv4's, or IPv6's 40 bytes.
pub(super) fn tunnel_header_len(family: IpAddr) -> usize {
    if family.is_ipv6() {
        wire::ipv6::HEADER_LEN
    } else {
        TUNNEL_HEADER_LEN
    }
}

impl Balancer<'_> {
    /// A packet of an IP-in-IP connection: encapsulated whole in an outer header from the
    /// balancer's address to the real server (IPv4: TOS, TTL and DF copied from the packet,
    /// as LVS does; IPv6: traffic class and hop limit copied), sent to the next hop's MAC.
    /// Inbound only: the real server answers the client directly.
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
        let (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) = (real.hop_src, real.addr) else {
            return self.tunnel_v4(idx, e, buf, l3, flags, new);
        };
        let (len, traffic_class, hop_limit) = {
            let frame = buf.bytes();
            let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
            (Ip::at(&*frame, l3).len(), ip.traffic_class(), ip.hop_limit())
        };
        // (Its size was checked against the port's MTU with the outer header.)
        buf.truncate(l3 + len);
        if !buf.insert(l3, wire::ipv6::HEADER_LEN) {
            return Verdict::Drop(DropReason::NoResource);
        }
        let outer = wire::Ipv6Repr {
            src_addr,
            dst_addr,
            next_header: IpProtocol::Ipv6,
            payload_len: len,
            hop_limit,
            traffic_class,
            flow_label: 0,
        };
        let frame = buf.bytes();
        outer.emit(&mut Ipv6Packet::new_unchecked(&mut frame[l3..]));
        self.send_inbound_only(idx, e, frame, flags, new)
    }

    /// [`Balancer::tunnel`] for IPv4.
    fn tunnel_v4<F: Frame>(
        &mut self,
        idx: u32,
        e: Hit,
        buf: &mut F,
        l3: usize,
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        let real = self.services[e.service].reals[e.real];
        let (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) = (real.hop_src, real.addr) else {
            // One connection, one family.
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
