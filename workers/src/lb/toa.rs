//! The client's address for the real server of a Full-NAT connection, which sees only the
//! balancer's local address: TOA (a TCP option in the handshake's last ACK, as DPVS and the
//! `toa` kernel module do), or, where the service asks for it, the PROXY protocol header
//! ([`super::proxy`]). Both are best effort where the packet has no room, as in DPVS.

use std::net::Ipv4Addr;

use conn::tcp::State;
use conn::Dir;
use shm_layout::conn::{ConnEntry, Mode};
use wire::{Ipv4Packet, TcpFlags, TcpPacket, Toa};

use super::{addr4, proxy, Balancer, Offsets};
use crate::frame::Frame;

/// Length of the TOA option: the client's segments are left this much room by the MSS.
pub const TOA_LEN: usize = Toa::LEN;

/// The smallest MSS the balancer lowers a SYN-ACK's to (RFC 9293's default for IPv4).
const MIN_MSS: u16 = 536;

impl Balancer<'_> {
    /// Puts the client's address in a packet of connection `e` (translated already) going
    /// `dir` out of port slot `out_port`, when the connection is Full-NAT: the PROXY header
    /// (TCP: in front of the first byte, sequence numbers shifted; UDP: in front of every
    /// datagram) when it has one, else TOA in the handshake's last ACK; the SYN-ACK's MSS is
    /// lowered to leave room. Returns false when a PROXY header cannot be put in (the packet
    /// is dropped: the stream would be wrong without it).
    #[inline]
    pub(super) fn client_address<F: Frame>(
        &self,
        e: &ConnEntry,
        dir: Dir,
        buf: &mut F,
        at: Offsets,
        flags: Option<TcpFlags>,
        out_port: u16,
    ) -> bool {
        if e.mode() != Some(Mode::FullNat) {
            return true;
        }
        let client = (addr4(&e.caddr), e.cport);
        let vip = (addr4(&e.vaddr), e.vport);
        let syn_ack = |f: TcpFlags| f.contains(TcpFlags::SYN | TcpFlags::ACK);
        match (flags, e.pp_len > 0, dir) {
            (Some(_), true, Dir::In) => {
                // The header the connection started with (the service may have changed
                // version since).
                let version = if e.pp_version == 1 { conf::ProxyProtocol::V1 } else { conf::ProxyProtocol::V2 };
                let mut hdr = [0u8; proxy::MAX_LEN];
                let n = proxy::header(version, client, vip, &mut hdr);
                n == usize::from(e.pp_len) && proxy::inbound(buf, at.l3, at.l4, e.pp_seq, &hdr[..n])
            }
            (Some(f), true, Dir::Out) => {
                let frame = buf.bytes();
                proxy::outbound(frame, at.l4, e.pp_seq, u32::from(e.pp_len));
                if syn_ack(f) {
                    TcpPacket::new_unchecked(&mut frame[at.l4..]).lower_mss(e.pp_len, MIN_MSS);
                }
                true
            }
            // A UDP flow's datagram: the version 2 header in front of its payload.
            (None, true, Dir::In) => proxy::datagram(buf, at.l3, at.l4, client, vip),
            // The handshake's last ACK carries the client's address to the real server.
            (Some(f), false, Dir::In)
                if State::from_u8(e.state) == State::SynRecv
                    && f.contains(TcpFlags::ACK)
                    && !f.intersects(TcpFlags::SYN | TcpFlags::RST) =>
            {
                insert_toa(buf, at, client, self.mtu(out_port));
                true
            }
            // Leave the client room for the option in its segments.
            (Some(f), false, Dir::Out) if syn_ack(f) => {
                TcpPacket::new_unchecked(&mut buf.bytes()[at.l4..]).lower_mss(TOA_LEN as u16, MIN_MSS);
                true
            }
            _ => true,
        }
    }
}

/// Inserts the TOA option (client address and port) after the TCP options of the segment at
/// `at`, when the header has room for it (60 bytes at most), the packet stays within the port
/// MTU and the buffer can grow; the IPv4 total length, the TCP data offset and both checksums
/// are updated. Otherwise the segment is left as it is: TOA is best effort, as in DPVS.
fn insert_toa<F: Frame>(buf: &mut F, at: Offsets, (addr, port): (Ipv4Addr, u16), mtu: usize) {
    let (hlen, src, dst, total) = {
        let frame = buf.bytes();
        let tcp = TcpPacket::new_unchecked(&frame[at.l4..]);
        let ip = Ipv4Packet::new_unchecked(&frame[at.l3..]);
        (tcp.header_len(), ip.src_addr(), ip.dst_addr(), usize::from(ip.total_len()))
    };
    // A handshake ACK that carries a full segment already has no room on the wire.
    if hlen + Toa::LEN > wire::tcp::MAX_HEADER_LEN || total + Toa::LEN > mtu || !buf.insert(at.l4 + hlen, Toa::LEN) {
        return;
    }
    let frame = buf.bytes();
    Toa { addr, port }.emit(&mut frame[at.l4 + hlen..]);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[at.l3..]);
        ip.set_total_len(ip.total_len() + Toa::LEN as u16);
        ip.fill_checksum();
    }
    let end = at.l3 + total + Toa::LEN;
    let mut tcp = TcpPacket::new_unchecked(&mut frame[at.l4..end]);
    tcp.set_header_len(hlen + Toa::LEN);
    tcp.fill_checksum(src, dst);
}
