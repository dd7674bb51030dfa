//! ICMP errors about a connection's packets, relayed to its other side, as LVS and DPVS do for
//! Full-NAT and NAT: a router between the balancer and a real server that cannot forward the
//! balancer's packet (too big, unreachable, out of hops) tells the balancer's local address,
//! and the client must hear it as an error about its own packet to the VIP (path MTU discovery
//! through the balancer depends on it); the other way round for errors about the balancer's
//! packets to the client.
//!
//! The message is rebuilt for the side it goes to: in that side's family (NAT64: RFC 7915's
//! mapping of types and codes, the MTU told 20 bytes bigger or smaller), from the address that
//! side knows (the VIP for the client, the local address for the real server), quoting the
//! packet as that side sent it (its addresses and ports; the rest of the quote as it came, the
//! transport checksum included, which a partial quote cannot be checked by).
//!
//! Only an error sent to the quoted packet's source is relayed (anyone can write a quote; a
//! router answers the sender), and only about a TCP or UDP packet of a routed connection
//! (Full-NAT, NAT, NAT64). Not relayed yet: errors about a direct-routing or IP-in-IP real
//! server's replies (sent to the VIP; LVS forwards them to the real server), and tagged
//! frames.

use conn::{Dir, Tuple};
use shm_layout::conn::Mode;
use wire::icmpv4::{self, Icmpv4Message};
use wire::icmpv6::{self, Icmpv6Message};
use wire::{EthernetAddress, IpProtocol, Ipv4Packet, Ipv6Packet, Network, Parsed, L4};

use super::{ip_of, Balancer, Verdict};
use crate::frame::Frame;

/// What an ICMP or ICMPv6 error says, with its code in both families (RFC 7915 sections 4.2
/// and 5.2: a relay in the same family keeps the code, NAT64's takes the other family's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Said {
    /// Destination unreachable, with its ICMP and ICMPv6 codes.
    Unreachable { v4: u8, v6: u8 },
    /// Too big for the next hop, whose MTU it names.
    TooBig(u32),
    /// Time exceeded (code 0: in transit, 1: fragment reassembly; the same in both families).
    TimeExceeded(u8),
}

impl Said {
    /// What ICMP type `t`, code `code` and next-hop MTU `mtu` say; `None` for what is not
    /// relayed (not an error; protocol unreachable, parameter problems and codes RFC 7915
    /// drops: about the balancer's own packet, not the path).
    pub(crate) fn of_v4(t: Icmpv4Message, code: u8, mtu: u16) -> Option<Said> {
        let unreachable = |v6| Said::Unreachable { v4: code, v6 };
        Some(match (t, code) {
            (Icmpv4Message::DstUnreachable, 4) => Said::TooBig(u32::from(mtu)),
            (Icmpv4Message::DstUnreachable, 3) => unreachable(4),
            (Icmpv4Message::DstUnreachable, 0 | 1 | 5..=8 | 11 | 12) => unreachable(0),
            (Icmpv4Message::DstUnreachable, 9 | 10 | 13 | 15) => unreachable(1),
            (Icmpv4Message::TimeExceeded, 0 | 1) => Said::TimeExceeded(code),
            _ => return None,
        })
    }

    /// What ICMPv6 type `t`, code `code` and MTU field `mtu` say (see [`Said::of_v4`]).
    pub(crate) fn of_v6(t: Icmpv6Message, code: u8, mtu: u32) -> Option<Said> {
        let unreachable = |v4| Said::Unreachable { v4, v6: code };
        Some(match (t, code) {
            (Icmpv6Message::PacketTooBig, 0) => Said::TooBig(mtu),
            (Icmpv6Message::DstUnreachable, 0 | 2 | 3) => unreachable(1),
            (Icmpv6Message::DstUnreachable, 1) => unreachable(10),
            (Icmpv6Message::DstUnreachable, 4) => unreachable(3),
            (Icmpv6Message::TimeExceeded, 0 | 1) => Said::TimeExceeded(code),
            _ => return None,
        })
    }
}

/// The packet an error quotes: a TCP or UDP packet's IP header (IPv6: with no extension
/// header) and at least the 8 bytes of its transport header with the ports.
#[derive(Debug, Clone, Copy)]
struct Quote {
    /// Where its transport header starts in the frame, and where the quote ends.
    l4: usize,
    end: usize,
    protocol: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    /// Its TTL or hop limit, type of service or traffic class.
    ttl: u8,
    tos: u8,
    /// The length of its transport header and payload, as its IP header says.
    upper_len: u16,
}

/// What the error in `frame` (classified as `p`) says, and the packet it quotes; `None` when
/// it is no error about a whole TCP or UDP header.
fn error_of(frame: &[u8], p: &Parsed) -> Option<(Said, Quote)> {
    let (said, icmp, end) = match &p.net {
        Network::V4(ip) => {
            let L4::Icmp { msg_type, code } = ip.l4 else { return None };
            let at = usize::from(ip.l4_offset);
            let mtu = u16::from_be_bytes(frame.get(at + 6..at + 8)?.try_into().ok()?);
            (Said::of_v4(msg_type, code, mtu)?, at, usize::from(p.l3_offset) + usize::from(ip.total_len))
        }
        Network::V6(ip) => {
            let L4::Icmpv6 { msg_type, code } = ip.l4 else { return None };
            let at = usize::from(ip.l4_offset);
            let mtu = u32::from_be_bytes(frame.get(at + 4..at + 8)?.try_into().ok()?);
            let end = usize::from(p.l3_offset) + wire::ipv6::HEADER_LEN + usize::from(ip.payload_len);
            (Said::of_v6(msg_type, code, mtu)?, at, end)
        }
        Network::None => return None,
    };
    let inner = icmp + icmpv4::HEADER_LEN;
    let end = end.min(frame.len());
    let q = frame.get(inner..end)?;
    let (hdr, protocol, src, dst, ttl, tos, upper_len) = match (&p.net, q.first()? >> 4) {
        (Network::V4(_), 4) => {
            let ip = Ipv4Packet::new_unchecked(q);
            let hdr = ip.header_len();
            if q.len() < hdr + 8 || hdr < wire::ipv4::HEADER_LEN || ip.frag_offset() != 0 {
                return None;
            }
            let upper = ip.total_len().checked_sub(hdr as u16)?;
            let (s, d) = (conn::v4(ip.src_addr().octets()), conn::v4(ip.dst_addr().octets()));
            (hdr, ip.protocol(), s, d, ip.ttl(), ip.tos(), upper)
        }
        (Network::V6(_), 6) => {
            if q.len() < wire::ipv6::HEADER_LEN + 8 {
                return None;
            }
            let ip = Ipv6Packet::new_unchecked(q);
            let (s, d) = (ip.src_addr().octets(), ip.dst_addr().octets());
            (wire::ipv6::HEADER_LEN, ip.next_header(), s, d, ip.hop_limit(), ip.traffic_class(), ip.payload_len())
        }
        _ => return None,
    };
    if !matches!(protocol, IpProtocol::Tcp | IpProtocol::Udp) {
        return None;
    }
    let ports = &q[hdr..hdr + 4];
    let quote = Quote {
        l4: inner + hdr,
        end,
        protocol: protocol.into(),
        src,
        dst,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        ttl,
        tos,
        upper_len,
    };
    Some((said, quote))
}

/// Whether `p` is an ICMP or ICMPv6 error (cheap: the packet path asks it of everything that
/// is not TCP or UDP).
#[inline]
pub(super) fn is_error(p: &Parsed) -> bool {
    if p.vlan_count != 0 {
        // Tagged: not the balancer's traffic (as TCP and UDP, see `steer::transport`).
        return false;
    }
    match &p.net {
        Network::V4(ip) => {
            matches!(ip.l4, L4::Icmp { msg_type: Icmpv4Message::DstUnreachable | Icmpv4Message::TimeExceeded, .. })
        }
        Network::V6(ip) => matches!(ip.l4, L4::Icmpv6 { msg_type, .. } if msg_type.is_error()),
        Network::None => false,
    }
}

/// The connection key an error quoting a packet of it names: the quoted packet turned around
/// (what the packet's receiver would have sent back), for the owner of the connection.
pub(super) fn key_of(frame: &[u8], p: &Parsed) -> Option<Tuple> {
    error_of(frame, p).map(|(_, q)| q.key())
}

impl Quote {
    /// See [`key_of`].
    fn key(&self) -> Tuple {
        Tuple { proto: self.protocol, src: self.dst, sport: self.dport, dst: self.src, dport: self.sport }
    }
}

/// The longest quote an ICMPv4 error carries here: the message within 576 bytes (RFC 1812
/// section 4.3.2.3).
const V4_QUOTE_MAX: usize = 576 - wire::ipv4::HEADER_LEN - icmpv4::HEADER_LEN;

impl Balancer<'_> {
    /// Relays the ICMP error in `buf` (classified as `p`) about a packet of a routed
    /// connection to the connection's other side, rebuilt for it (see the module's
    /// documentation). `NotOurs`: not an error about one of this lcore's connections.
    #[inline(never)]
    pub(super) fn relay_error<F: Frame>(&mut self, buf: &mut F, p: &Parsed) -> Verdict {
        let Some((said, q)) = error_of(buf.bytes(), p) else { return Verdict::NotOurs };
        let Some((idx, dir)) = self.shard.lookup(&q.key()) else { return Verdict::NotOurs };
        // A router answers the quoted packet's sender: that is where the error goes.
        let Some((router, to)) = super::steer::addrs_of(p, buf.bytes()) else { return Verdict::NotOurs };
        if to != q.src || self.indices(idx).is_none() {
            return Verdict::NotOurs;
        }
        let e = *self.shard.entry(idx);
        if !matches!(e.mode(), Some(Mode::FullNat | Mode::Nat | Mode::Nat64)) {
            return Verdict::NotOurs;
        }
        // The side it goes to, and the packet that side sent: (from, to) of the message, the
        // quoted packet's (source, destination), the way out.
        let (outer, inner, (port, mac)) = match dir {
            Dir::Out => (
                (e.vaddr, e.caddr),
                ((e.caddr, e.cport), (e.vaddr, e.vport)),
                (e.client_port, EthernetAddress(e.client_mac)),
            ),
            Dir::In => {
                let real = &self.services[e.service as usize].reals[e.real as usize];
                // NAT hides nothing from the real server: the router's own address.
                let from = if e.mode() == Some(Mode::Nat) { router } else { e.laddr };
                ((from, e.raddr), ((e.raddr, e.rport), (e.laddr, e.lport)), (real.via, real.mac))
            }
        };
        // The client's segments reach the real server with the PROXY header's bytes before
        // them: the quoted sequence number back in the client's numbering.
        let shift = (dir == Dir::Out && e.proto == 6 && e.pp_len > 0).then_some((e.pp_seq, u32::from(e.pp_len)));
        let mut original = [0u8; icmpv6::MAX_QUOTE_LEN];
        let Some(n) = requote(buf.bytes(), &q, (inner, shift), &mut original) else { return Verdict::NotOurs };
        let (from, to) = (ip_of(&outer.0), ip_of(&outer.1));
        let mut said = resize_mtu(said, p.ipv6().is_some(), to.is_ipv6());
        // A UDP datagram from the client grows by its PROXY header on the way.
        if let (Said::TooBig(mtu), Dir::Out, 17) = (said, dir, e.proto) {
            let floor = if to.is_ipv6() { 1280 } else { 68 };
            said = Said::TooBig(mtu.saturating_sub(u32::from(e.pp_len)).max(floor));
        }
        let written = write_error(buf, (self.port_macs[usize::from(port)], mac), (from, to), said, &original[..n]);
        if !written {
            return Verdict::Drop(crate::outcome::DropReason::NoResource);
        }
        Verdict::Out { port, dir, new: false }
    }
}

/// An MTU from one family's error told in the other's (NAT64: the IPv6 packet is 20 bytes
/// longer than the IPv4 one; IPv6 never below 1280, RFC 7915 section 4.2).
fn resize_mtu(said: Said, from_v6: bool, to_v6: bool) -> Said {
    let growth = (wire::ipv6::HEADER_LEN - wire::ipv4::HEADER_LEN) as u32;
    match (said, from_v6, to_v6) {
        (Said::TooBig(mtu), false, true) => Said::TooBig((mtu + growth).max(1280)),
        (Said::TooBig(mtu), true, false) => Said::TooBig(mtu.saturating_sub(growth).max(68)),
        _ => said,
    }
}

/// The quoted packet's (source, destination) as the side an error goes to sent it, and the
/// TCP sequence number's PROXY shift to undo (start, length), if any.
type Requote = ((([u8; 16], u16), ([u8; 16], u16)), Option<(u32, u32)>);

/// Writes into `out` the quoted packet `q` of `frame` as the side it goes to sent it: from
/// `src` to `dst` (entry-form addresses, whose family is the new header's) with the quote's
/// transport bytes, its ports set (and its sequence number shifted); as much as the message
/// may carry. Its length; `None` when the quote's addresses mix families.
fn requote(
    frame: &[u8],
    q: &Quote,
    (((src, sport), (dst, dport)), shift): Requote,
    out: &mut [u8; icmpv6::MAX_QUOTE_LEN],
) -> Option<usize> {
    let protocol = IpProtocol::from(q.protocol);
    let (hdr, max) = match (ip_of(&src), ip_of(&dst)) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            let ip = wire::Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                protocol,
                // (An IPv6 quote may say more than an IPv4 packet holds.)
                payload_len: usize::from(q.upper_len).min(0xffff - wire::ipv4::HEADER_LEN),
                ttl: q.ttl,
                tos: q.tos,
                ident: 0,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
            };
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
            (wire::ipv4::HEADER_LEN, V4_QUOTE_MAX)
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            let ip = wire::Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: protocol,
                payload_len: usize::from(q.upper_len),
                hop_limit: q.ttl,
                traffic_class: q.tos,
                flow_label: 0,
            };
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
            (wire::ipv6::HEADER_LEN, icmpv6::MAX_QUOTE_LEN)
        }
        _ => return None,
    };
    let rest = &frame[q.l4..q.end];
    let n = rest.len().min(max - hdr);
    out[hdr..hdr + n].copy_from_slice(&rest[..n]);
    out[hdr..hdr + 2].copy_from_slice(&sport.to_be_bytes());
    out[hdr + 2..hdr + 4].copy_from_slice(&dport.to_be_bytes());
    if let Some((start, len)) = shift {
        let at = hdr + 4..hdr + 8;
        let seq = u32::from_be_bytes(out[at.clone()].try_into().unwrap_or_default());
        out[at].copy_from_slice(&super::proxy::shift_down(seq, start, len).to_be_bytes());
    }
    Some(hdr + n)
}

/// Makes `buf` the frame of the error `said` quoting `original`, from `from` (at the first
/// MAC) to `to` (at the second), in their family. False when the buffer cannot take it (or
/// the addresses mix families).
fn write_error<F: Frame>(
    buf: &mut F,
    macs: (EthernetAddress, EthernetAddress),
    (from, to): (std::net::IpAddr, std::net::IpAddr),
    said: Said,
    original: &[u8],
) -> bool {
    use std::net::IpAddr;
    match (from, to) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let icmp = match said {
                Said::Unreachable { v4, .. } => {
                    wire::Icmpv4Repr::DstUnreachable { reason: v4.into(), next_hop_mtu: 0, original }
                }
                Said::TooBig(mtu) => wire::Icmpv4Repr::DstUnreachable {
                    reason: icmpv4::DstUnreachable::FragNeeded,
                    next_hop_mtu: mtu.min(0xffff) as u16,
                    original,
                },
                Said::TimeExceeded(code) => wire::Icmpv4Repr::TimeExceeded { reason: code.into(), original },
            };
            if !buf.resize(wire::ethernet::HEADER_LEN + wire::ipv4::HEADER_LEN + icmp.buffer_len()) {
                return false;
            }
            crate::pipeline::write_icmpv4_frame(buf.bytes(), macs, (s, d), &icmp);
            true
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let icmp = match said {
                Said::Unreachable { v6, .. } => wire::Icmpv6Repr::DstUnreachable { reason: v6.into(), original },
                Said::TooBig(mtu) => wire::Icmpv6Repr::PacketTooBig { mtu, original },
                Said::TimeExceeded(code) => wire::Icmpv6Repr::TimeExceeded { reason: code.into(), original },
            };
            if !buf.resize(wire::ethernet::HEADER_LEN + wire::ipv6::HEADER_LEN + icmp.buffer_len()) {
                return false;
            }
            crate::ipv6::write_frame(buf.bytes(), macs, (s, d), crate::pipeline::REPLY_TTL, &icmp);
            true
        }
        _ => false,
    }
}
