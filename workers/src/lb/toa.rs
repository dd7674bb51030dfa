//! The client's address for the real server of a Full-NAT connection, which sees only the
//! balancer's local address: TOA (a TCP option in the handshake's last ACK, as DPVS and the
//! `toa` kernel module do), or, where the service asks for it, the PROXY protocol header
//! ([`super::proxy`]). Both are best effort where the packet has no room, as in DPVS.

use std::net::IpAddr;

use conn::tcp::State;
use conn::Dir;
use shm_layout::conn::{ConnEntry, Mode};
use wire::{IpProtocol, TcpFlags, TcpPacket, Toa};

use super::ip::Ip;
use super::{ip_of, proxy, Balancer, Offsets};
use crate::frame::Frame;

/// Length of the TOA option of an IPv4 client: the client's segments are left this much room
/// by the MSS ([`Toa::LEN_V6`] for an IPv6 one).
pub const TOA_LEN: usize = Toa::LEN;

/// The smallest MSS the balancer lowers a SYN-ACK's to (RFC 9293's default for IPv4).
const MIN_MSS: u16 = 536;

impl Balancer<'_> {
    /// Puts the client's address in a packet of connection `e` (translated already) going
    /// `dir` out of port slot `out_port`, when the connection is Full-NAT (or NAT64): the PROXY header
    /// (TCP: in front of the first byte, sequence numbers shifted; UDP: in front of every
    /// datagram) when it has one, else TOA in the handshake's last ACK; the SYN-ACK's MSS is
    /// lowered to leave room. Returns false when a PROXY header cannot be put in (the packet
    /// is dropped: the stream would be wrong without it). Always inlined: most packets need
    /// nothing of it, and a call (it has two callers) cost IPv4 Full-NAT 7% of a packet's time.
    #[inline(always)]
    pub(super) fn client_address<F: Frame>(
        &self,
        e: &ConnEntry,
        dir: Dir,
        buf: &mut F,
        at: Offsets,
        flags: Option<TcpFlags>,
        out_port: u16,
    ) -> bool {
        if !matches!(e.mode(), Some(Mode::FullNat | Mode::Nat64)) {
            return true;
        }
        // Read only where a branch needs them (most packets need neither).
        let client = || (ip_of(&e.caddr), e.cport);
        let vip = || (ip_of(&e.vaddr), e.vport);
        let syn_ack = |f: TcpFlags| f.contains(TcpFlags::SYN | TcpFlags::ACK);
        match (flags, e.pp_len > 0, dir) {
            (Some(_), true, Dir::In) => {
                // The header the connection started with (the service may have changed
                // version since).
                let version = if e.pp_version == 1 { conf::ProxyProtocol::V1 } else { conf::ProxyProtocol::V2 };
                let mut hdr = [0u8; proxy::MAX_LEN];
                let n = proxy::header(version, client(), vip(), &mut hdr);
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
            (None, true, Dir::In) => proxy::datagram(buf, at.l3, at.l4, client(), vip()),
            // The handshake's last ACK carries the client's address to the real server.
            (Some(f), false, Dir::In)
                if State::from_u8(e.state) == State::SynRecv
                    && f.contains(TcpFlags::ACK)
                    && !f.intersects(TcpFlags::SYN | TcpFlags::RST) =>
            {
                insert_toa(buf, at, client(), self.mtu(out_port));
                true
            }
            // Leave the client room for the option in its segments.
            (Some(f), false, Dir::Out) if syn_ack(f) => {
                let room = if at.v6 { Toa::LEN_V6 } else { Toa::LEN } as u16;
                TcpPacket::new_unchecked(&mut buf.bytes()[at.l4..]).lower_mss(room, MIN_MSS);
                true
            }
            _ => true,
        }
    }
}

/// Inserts the TOA option (client address and port: 8 bytes for IPv4, 20 for IPv6) after the
/// TCP options of the segment at `at`, when the header has room for it (60 bytes at most),
/// the packet stays within the port MTU and the buffer can grow; the IP length, the TCP data
/// offset and the checksums are updated. Otherwise the segment is left as it is: TOA is best
/// effort, as in DPVS.
fn insert_toa<F: Frame>(buf: &mut F, at: Offsets, (addr, port): (IpAddr, u16), mtu: usize) {
    let toa = Toa { addr, port };
    let n = toa.option_len();
    let (hlen, total) = {
        let frame = buf.bytes();
        (TcpPacket::new_unchecked(&frame[at.l4..]).header_len(), Ip::at(frame, at.l3).len())
    };
    // A handshake ACK that carries a full segment already has no room on the wire.
    if hlen + n > wire::tcp::MAX_HEADER_LEN || total + n > mtu || !buf.insert(at.l4 + hlen, n) {
        return;
    }
    let frame = buf.bytes();
    toa.emit(&mut frame[at.l4 + hlen..]);
    TcpPacket::new_unchecked(&mut frame[at.l4..]).set_header_len(hlen + n);
    let mut ip = Ip::at(frame, at.l3);
    ip.grow(n as u16);
    ip.fill_transport_checksum(at.l4, IpProtocol::Tcp);
}
