//! IPv6 for the ports' own addresses: neighbour solicitations answered with advertisements
//! (RFC 4861), echo requests answered (RFC 4443), the unsolicited advertisement that
//! announces an address when it is added (as the gratuitous ARP of IPv4), the solicitations
//! that resolve the real servers' next hops and the answers learned from them
//! ([`neighbour_of`]), and the ICMPv6 errors the balancer sends as a router ([`icmp_error`]).
//!
//! Answers are written in place, in the frame that asked, like ARP and ICMP echo
//! ([`crate::pipeline`]). What a port does not answer goes on: to the exception path or
//! bridged. Nothing here allocates or logs.

use std::net::Ipv6Addr;

use wire::icmpv6::{ndp_option, NDP_LEN};
use wire::ipv6::{Ipv6Packet, HEADER_LEN as IPV6_LEN};
use wire::{EtherType, EthernetAddress, EthernetFrame, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Repr};

use crate::frame::Frame;
use crate::outcome::Reply;
use crate::pipeline::{IcmpError, PortCtx, REPLY_TTL};

/// The hop limit neighbour discovery messages are sent with, and must arrive with (a
/// message from off the link has a lower one).
pub const ND_HOP_LIMIT: u8 = 255;

/// All-nodes multicast: where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Length of a neighbour advertisement frame with its target link-layer address option.
pub const NA_FRAME_LEN: usize = wire::ethernet::HEADER_LEN + IPV6_LEN + NDP_LEN + ndp_option::LLADDR_LEN;

/// What an IPv6 frame to the port asks, once checked.
enum Ask {
    /// A neighbour solicitation for an owned address: answer to `to` (at `mac`), solicited
    /// unless it is duplicate address detection (from the unspecified address).
    Solicit { target: Ipv6Addr, to: Ipv6Addr, mac: EthernetAddress, solicited: bool },
    /// An echo request to an owned address, without extension headers.
    Echo,
}

/// Answers an untagged IPv6 frame that asks something of `port`'s own addresses, in place;
/// `None` (the frame unchanged) for anything else.
pub fn answer<F: Frame>(port: &PortCtx, buf: &mut F) -> Option<Reply> {
    match ask(port, buf.bytes())? {
        Ask::Solicit { target, to, mac, solicited } => {
            if !buf.resize(NA_FRAME_LEN) {
                return None;
            }
            let na = Icmpv6Repr::NeighborAdvert {
                router: false,
                solicited,
                override_: true,
                target,
                lladdr: Some(port.mac),
            };
            write_frame(buf.bytes(), (port.mac, mac), (target, to), ND_HOP_LIMIT, &na);
            Some(Reply::Neighbor)
        }
        Ask::Echo => {
            let f = buf.bytes();
            let src_mac = EthernetFrame::new_unchecked(&f[..]).src_addr();
            let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
            eth.set_dst_addr(src_mac);
            eth.set_src_addr(port.mac);
            let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_hop_limit(REPLY_TTL);
            // Swapping the addresses leaves the pseudo-header's sum as it was: only the type
            // changes.
            let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
            let old = u16::from(u8::from(Icmpv6Message::EchoRequest)) << 8;
            let new = u16::from(u8::from(Icmpv6Message::EchoReply)) << 8;
            let csum = wire::checksum::update_u16(icmp.checksum(), old, new);
            icmp.set_msg_type(Icmpv6Message::EchoReply);
            icmp.set_checksum(csum);
            Some(Reply::IcmpEcho)
        }
    }
}

/// What `frame` asks of `port`, after every check RFC 4861 section 7.1.1 and RFC 4443 ask
/// for (hop limit 255, code 0, checksum, a target that is not multicast, a source link-layer
/// address only from a specified source).
fn ask(port: &PortCtx, frame: &[u8]) -> Option<Ask> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let upper = ip.upper_layer().ok()?;
    // No extension headers: the answers are written over the question.
    if upper.protocol != IpProtocol::Icmpv6 || upper.offset != IPV6_LEN {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_code() != 0 || !icmp.verify_checksum(src, dst) {
        return None;
    }
    match icmp.msg_type() {
        Icmpv6Message::NeighborSolicit => {
            let target = icmp.target_addr();
            let to_us = dst == target || dst == wire::ipv6::solicited_node(target);
            if ip.hop_limit() != ND_HOP_LIMIT || !port.addrs6.contains(&target) || !to_us {
                return None;
            }
            let lladdr = icmp.lladdr_option(ndp_option::SOURCE_LLADDR).ok()?;
            if src.is_unspecified() {
                // Duplicate address detection: no source link-layer address, and the answer
                // goes to all nodes (RFC 4861 section 7.2.4).
                if lladdr.is_some() || !dst.is_multicast() {
                    return None;
                }
                return Some(Ask::Solicit {
                    target,
                    to: ALL_NODES,
                    mac: wire::ipv6::multicast_mac(ALL_NODES),
                    solicited: false,
                });
            }
            // Without the option (a unicast probe), the answer goes where the question came from.
            let mac = lladdr.unwrap_or(eth.src_addr());
            Some(Ask::Solicit { target, to: src, mac, solicited: true })
        }
        Icmpv6Message::EchoRequest if port.addrs6.contains(&dst) && !src.is_multicast() => Some(Ask::Echo),
        _ => None,
    }
}

/// The neighbour a neighbour discovery frame tells of, to learn: an advertisement's target
/// at its target link-layer address, or a solicitation's (specified) source at its source
/// link-layer address; after the checks of RFC 4861 (untagged, hop limit 255, code 0,
/// checksum, no extension headers).
pub fn neighbour_of(frame: &[u8]) -> Option<(Ipv6Addr, EthernetAddress)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != ND_HOP_LIMIT {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_code() != 0 || !icmp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return None;
    }
    match icmp.msg_type() {
        // A solicited advertisement is unicast (RFC 4861 section 7.1.2).
        Icmpv6Message::NeighborAdvert if !(ip.dst_addr().is_multicast() && icmp.solicited_flag()) => {
            Some((icmp.target_addr(), icmp.lladdr_option(ndp_option::TARGET_LLADDR).ok()??))
        }
        Icmpv6Message::NeighborSolicit if !ip.src_addr().is_unspecified() => {
            Some((ip.src_addr(), icmp.lladdr_option(ndp_option::SOURCE_LLADDR).ok()??))
        }
        _ => None,
    }
}

/// Turns the frame (an untagged IPv6 packet at `l3`) into the ICMPv6 error that answers it,
/// in place: from `src` (an address of the port it came in on) and the port's `mac`, to the
/// sender's address and MAC, quoting as much of the original packet as fits in 1280 bytes
/// (RFC 4443). Returns false when the frame cannot take the new length.
pub fn icmp_error<F: Frame>(buf: &mut F, l3: usize, src: Ipv6Addr, mac: EthernetAddress, error: IcmpError) -> bool {
    let mut quote = [0u8; wire::icmpv6::MAX_QUOTE_LEN];
    let (quote_len, to, peer) = {
        let f = buf.bytes();
        let ip = Ipv6Packet::new_unchecked(&f[l3..]);
        let len = (IPV6_LEN + usize::from(ip.payload_len())).min(f.len() - l3).min(quote.len());
        quote[..len].copy_from_slice(&f[l3..l3 + len]);
        (len, ip.src_addr(), EthernetFrame::new_unchecked(&f[..]).src_addr())
    };
    // Never to the unspecified address or a multicast group (RFC 4443 section 2.4 (e)).
    if to.is_unspecified() || to.is_multicast() {
        return false;
    }
    let original = &quote[..quote_len];
    let message = match error {
        IcmpError::TimeExceeded => {
            Icmpv6Repr::TimeExceeded { reason: wire::icmpv6::TimeExceeded::HopLimitExceeded, original }
        }
        IcmpError::FragNeeded { mtu } => Icmpv6Repr::PacketTooBig { mtu: u32::from(mtu), original },
    };
    if !buf.resize(wire::ethernet::HEADER_LEN + IPV6_LEN + message.buffer_len()) {
        return false;
    }
    write_frame(buf.bytes(), (mac, peer), (src, to), REPLY_TTL, &message);
    true
}

/// Writes a whole untagged Ethernet, IPv6 and ICMPv6 frame of `message` into `f`, which is
/// exactly as long.
pub(crate) fn write_frame(
    f: &mut [u8],
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    hop_limit: u8,
    message: &Icmpv6Repr<'_>,
) {
    let eth = wire::EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv6 };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let l3 = wire::ethernet::HEADER_LEN;
    let ip = Ipv6Repr { hop_limit, ..Ipv6Repr::plain(src, dst, IpProtocol::Icmpv6, message.buffer_len()) };
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut f[l3..]));
    message.emit(&mut Icmpv6Packet::new_unchecked(&mut f[l3 + IPV6_LEN..]), src, dst);
}

/// Length of a neighbour solicitation frame with its source link-layer address option.
pub const NS_FRAME_LEN: usize = NA_FRAME_LEN;

/// A neighbour solicitation from `src` (at `mac`) for `target`'s MAC, to its solicited-node
/// address: how the workers resolve their IPv6 real servers (as ARP requests do for IPv4).
pub fn solicit(mac: EthernetAddress, src: Ipv6Addr, target: Ipv6Addr) -> [u8; NS_FRAME_LEN] {
    let mut f = [0u8; NS_FRAME_LEN];
    let to = wire::ipv6::solicited_node(target);
    let ns = Icmpv6Repr::NeighborSolicit { target, lladdr: Some(mac) };
    write_frame(&mut f, (mac, wire::ipv6::multicast_mac(to)), (src, to), ND_HOP_LIMIT, &ns);
    f
}

/// An unsolicited neighbour advertisement announcing that `addr` is at `mac`, to all nodes
/// with the override flag, as Linux and DPVS send when an address is added (RFC 4861 section
/// 7.2.6), so that neighbours update their caches.
pub fn unsolicited_na(mac: EthernetAddress, addr: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    let na = Icmpv6Repr::NeighborAdvert {
        router: false,
        solicited: false,
        override_: true,
        target: addr,
        lladdr: Some(mac),
    };
    write_frame(&mut f, (mac, wire::ipv6::multicast_mac(ALL_NODES)), (addr, ALL_NODES), ND_HOP_LIMIT, &na);
    f
}

#[cfg(test)]
mod tests;
