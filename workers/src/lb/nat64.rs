//! NAT64: Full-NAT between an IPv6 client (to an IPv6 VIP) and an IPv4 real server (from an
//! IPv4 local address), as DPVS does it. Each packet is routed like Full-NAT's (its TTL goes
//! down, addresses and ports are the connection's) and its IP header translated to the other
//! family (`wire::nat64`, RFC 7915): 20 bytes shorter on the way in, 20 longer on the way out.
//! The real server learns the client's IPv6 address from TOA (20 bytes, as DPVS's `toa`
//! module reads it) or the PROXY protocol (`TCP6`, `AF_INET6`), like an IPv6 Full-NAT one.

use conn::Dir;
use wire::nat::Endpoints;
use wire::{ipv4, ipv6, EthernetAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags};

use super::{addr4, addr6, Balancer, Offsets, Verdict};
use crate::frame::Frame;
use crate::outcome::DropReason;

impl Balancer<'_> {
    /// A packet of NAT64 connection `idx` going `dir` (IPv6 in, IPv4 out): TTL (ICMP time
    /// exceeded in its own family when it runs out), the header translated with the
    /// connection's addresses and ports, the client's address for the real server, MACs, then
    /// the connection's state, timeout and counters. Out of line: the other modes' path stays
    /// small.
    #[inline(never)]
    pub(super) fn route64<F: Frame>(
        &mut self,
        idx: u32,
        dir: Dir,
        buf: &mut F,
        at: Offsets,
        flags: Option<TcpFlags>,
        new: bool,
    ) -> Verdict {
        let e = self.shard.entry(idx);
        let protocol = if flags.is_some() { IpProtocol::Tcp } else { IpProtocol::Udp };
        // The link header (Ethernet) stays in front of the new IP header.
        let link = at.l3;
        let (out_port, dst_mac, new_at) = match (dir, at.v6) {
            (Dir::In, true) => {
                let real = &self.services[e.service as usize].reals[e.real as usize];
                let frame = buf.bytes();
                let ip = Ipv6Packet::new_unchecked(&frame[at.l3..]);
                let (hops, ip_end) = (ip.hop_limit(), at.l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len()));
                if hops <= 1 {
                    return Verdict::TimeExceeded;
                }
                let to = Endpoints { src: addr4(&e.laddr), dst: addr4(&e.raddr), sport: e.lport, dport: e.rport };
                let start = wire::nat64::to_ipv4(frame, link, (at.l3, at.l4), protocol, hops - 1, to);
                if !buf.cut_front(start) {
                    return Verdict::Drop(DropReason::NoResource);
                }
                // Whatever followed the packet in its frame (padding) stays behind.
                buf.truncate(ip_end - start);
                (real.via, real.mac, Offsets { l3: link, l4: link + ipv4::HEADER_LEN, v6: false })
            }
            (Dir::Out, false) => {
                let ip = Ipv4Packet::new_unchecked(&buf.bytes()[at.l3..]);
                let (ttl, ip_end) = (ip.ttl(), at.l3 + usize::from(ip.total_len()));
                if ttl <= 1 {
                    return Verdict::TimeExceeded;
                }
                // Room in front for the longer header (none when IPv4 options make up for it).
                let room = (at.l3 + ipv6::HEADER_LEN).saturating_sub(at.l4);
                if !buf.prepend(room) {
                    return Verdict::Drop(DropReason::NoResource);
                }
                let to = Endpoints { src: addr6(&e.vaddr), dst: addr6(&e.caddr), sport: e.vport, dport: e.cport };
                let (l3, l4) = (at.l3 + room, at.l4 + room);
                let start = wire::nat64::to_ipv6(buf.bytes(), link, (l3, l4), protocol, ttl - 1, to);
                if !buf.cut_front(start) {
                    return Verdict::Drop(DropReason::NoResource);
                }
                buf.truncate(ip_end + room - start);
                let client = (e.client_port, EthernetAddress(e.client_mac));
                (client.0, client.1, Offsets { l3: link, l4: link + ipv6::HEADER_LEN, v6: true })
            }
            // A packet of the other family on a side: its tuple cannot be the entry's (the
            // table keys each side by its own family's addresses).
            _ => return Verdict::Drop(DropReason::NoConnection),
        };
        if !self.client_address(e, dir, buf, new_at, flags, out_port) {
            return Verdict::Drop(DropReason::NoResource);
        }
        self.forwarded(idx, dir, buf, flags, (out_port, dst_mac), new)
    }
}

/// What a packet of a NAT64 connection going `dir`, whose IP header (with options or
/// extension headers) is `header` bytes long, gains and loses on its way: (the new header and
/// the PROXY header of `pp_len` bytes a UDP datagram going in gets, the old header).
#[inline]
pub(super) fn growth(dir: Dir, header: usize, pp_len: u16) -> (usize, usize) {
    match dir {
        Dir::In => (ipv4::HEADER_LEN + usize::from(pp_len), header),
        Dir::Out => (ipv6::HEADER_LEN, header),
    }
}
