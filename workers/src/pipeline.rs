//! The per-lcore packet pipeline, free of I/O so it runs over byte arrays in tests.
//!
//! For each frame received on a port: frames shorter than an Ethernet header are dropped;
//! an ARP request or an IPv6 neighbour solicitation for an address the port owns is answered
//! ([`crate::ipv6`] for IPv6); an ICMP or ICMPv6 echo request to an address the port owns is
//! answered; TCP and UDP of a Full-NAT connection or service are
//! translated ([`crate::lb`]); everything else is forwarded at layer 2 (two-arm pairs send it
//! out of the peer port unchanged; one-arm ports send it back out with MAC addresses swapped).
//! Answers are written in place, in the frame that asked, and go back out of the port it came
//! in on.
//!
//! Only frames without VLAN tags are answered; tagged frames are forwarded. A malformed IPv4
//! or IPv6 frame (truncated, bad lengths, a bad extension header chain, bad TCP offset or
//! options, ...) is dropped and counted by reason. Nothing here allocates or logs: [`Pipeline::process`] returns an [`Action`] that
//! counts itself ([`Action::count`]).

use std::net::Ipv4Addr;

use wire::checksum;
use wire::{ArpOperation, ArpPacket, EtherType, EthernetAddress, EthernetFrame, Icmpv4Message, Icmpv4Packet};
use wire::{Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Parsed};

use crate::frame::Frame;
use crate::lb::{Balancer, Verdict};
pub use crate::outcome::{Action, DropReason, Handoff, Reply};

/// TTL of the answers the balancer sends.
pub const REPLY_TTL: u8 = 64;

/// From this many connections a burst's buckets and entries lie on more pages than the
/// first-level TLB covers, and outside L1: its lookups' cache lines are prefetched a burst at a
/// time ([`Pipeline::classify`]). Measured: 2-3% fewer cycles a packet with 1k flows than with
/// the earlier threshold of 64k, nothing lost with one flow.
pub const PREFETCH_FROM: u32 = 1 << 8;

/// The ICMP (and ICMPv6) errors the balancer sends as a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Time to live (hop limit) exceeded in transit.
    TimeExceeded,
    /// Fragmentation needed and DF set (IPv6: packet too big); `mtu` fits.
    FragNeeded { mtu: u16 },
}

/// A port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCtx {
    /// The port's MAC address (source of its answers).
    pub mac: EthernetAddress,
    /// Port slot that layer-2 forwarding sends to (itself for one-arm).
    pub peer: u16,
    /// IPv4 addresses the port owns.
    pub addrs: Vec<Ipv4Addr>,
    /// IPv6 addresses the port owns.
    pub addrs6: Vec<std::net::Ipv6Addr>,
    /// The port slot of its exception path (the host kernel's TAP interface): frames the fast
    /// path does not take go there instead of being forwarded at layer 2.
    pub exception: Option<u16>,
    /// Whether it is an exception path's TAP port: what the kernel sends goes out of `peer`
    /// (its data port) unchanged.
    pub is_exception: bool,
}

impl PortCtx {
    /// The IPv4 and the IPv6 addresses of port slot `port` in `rt`.
    pub fn addresses(rt: &conf::Runtime, port: usize) -> (Vec<Ipv4Addr>, Vec<std::net::Ipv6Addr>) {
        let here = || rt.addresses.iter().filter(move |a| a.port == port);
        (here().filter_map(conf::IfAddr::ipv4).collect(), here().filter_map(conf::IfAddr::ipv6).collect())
    }
}

/// The pipeline of one lcore: the ports, indexed by port slot, and the balancer.
#[derive(Debug)]
pub struct Pipeline<'a> {
    ports: Vec<PortCtx>,
    lb: Option<Balancer<'a>>,
    /// What [`Pipeline::classify`] learned of the frames of a burst, in its order, and the
    /// next one [`Pipeline::process`] takes (each call takes one).
    seen: Seen,
}

/// What a frame is, as far as the pipeline's first decision goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Shorter than an Ethernet header.
    Runt,
    /// A malformed IPv4 or IPv6 frame.
    Malformed(wire::Error),
    /// Neither IPv4 nor IPv6 (ARP, ...) or not parsed (three VLAN tags of something else).
    Other,
    /// IPv4 or IPv6, its headers parsed.
    Ip,
}

/// The one parse of `frame` into `parsed`, and what it found.
#[inline]
fn parse(frame: &[u8], parsed: &mut Parsed) -> Status {
    if frame.len() < wire::ethernet::HEADER_LEN {
        return Status::Runt;
    }
    match wire::classify_into(frame, wire::Checks::NONE, parsed) {
        Ok(()) => Status::Ip,
        Err(e) if is_ip(frame) => Status::Malformed(e),
        Err(_) => Status::Other,
    }
}

/// One frame of a burst, classified ahead.
#[derive(Debug, Clone, Copy)]
struct Classified {
    /// The frame's length then: a frame of another length is not this one (a caller out of
    /// step), and is classified again.
    len: u32,
    /// The port slot it arrived on (`None`: a port the instance does not have).
    port: Option<u16>,
    /// The lcore of the group that owns its connection, and why, when another one does.
    owner: Option<(u16, Handoff)>,
    status: Status,
    /// Its headers (when `status` is `Ip`), parsed in place.
    parsed: Parsed,
    /// Its 5-tuple hashed for this lcore's connection table.
    hashed: Option<conn::Hashed>,
}

impl Classified {
    const NONE: Classified = Classified {
        len: u32::MAX,
        port: None,
        owner: None,
        status: Status::Runt,
        parsed: Parsed::EMPTY,
        hashed: None,
    };
}

/// Per-burst classifications (see [`Pipeline::classify`]), written and read in place (a
/// copy of each would cost more than the parse it saves).
#[derive(Debug)]
struct Seen {
    frames: [Classified; dpdk::BURST_SIZE],
    len: usize,
    next: usize,
}

impl Seen {
    const NONE: Seen = Seen { frames: [Classified::NONE; dpdk::BURST_SIZE], len: 0, next: 0 };

    /// The next frame's classification, if [`Pipeline::classify`] left one for a frame of
    /// `len` bytes.
    #[inline]
    fn next(&mut self, len: usize) -> Option<&Classified> {
        let i = self.next;
        if i >= self.len {
            return None;
        }
        self.next = i + 1;
        let c = &self.frames[i];
        (c.len as usize == len).then_some(c)
    }
}

impl<'a> Pipeline<'a> {
    /// A pipeline over `ports`, indexed by port slot, without load balancing.
    pub fn new(ports: Vec<PortCtx>) -> Pipeline<'a> {
        Pipeline { ports, lb: None, seen: Seen::NONE }
    }

    /// A pipeline with load balancing.
    pub fn with_balancer(ports: Vec<PortCtx>, lb: Balancer<'a>) -> Pipeline<'a> {
        Pipeline { ports, lb: Some(lb), seen: Seen::NONE }
    }

    /// Switches to configuration generation `generation`: the ports' addresses and the
    /// services of `rt`, for the lcore `share = (slot, lcores)`, calling `beat` now and then
    /// while it builds them. On an error nothing changes.
    ///
    /// # Errors
    /// The services cannot be built (see [`crate::lb::build_services`]).
    pub fn reconfigure(
        &mut self,
        generation: u64,
        rt: &conf::Runtime,
        share: (u16, u16),
        learned: &crate::neigh::Hops,
        beat: &mut dyn FnMut(),
    ) -> Result<(), crate::lb::BuildError> {
        if let Some(f) = self.lb.as_mut() {
            let mut old = f.take_services();
            let built = crate::lb::build_services_beating(rt, share, &mut old, learned, beat);
            beat();
            match built {
                Ok(services) => f.reconfigure(generation, services),
                Err(e) => {
                    f.reconfigure(f.generation(), old);
                    return Err(e);
                }
            }
        }
        for (i, p) in self.ports.iter_mut().enumerate() {
            (p.addrs, p.addrs6) = PortCtx::addresses(rt, i);
        }
        Ok(())
    }

    /// Switches to generation `generation`, which removes the services `gone` (by protocol,
    /// VIP, port) and adds or replaces the services `put` of `rt` (the configuration before
    /// the change: its addresses, routes and neighbours are the generation's too), for the
    /// lcore `share`, calling `beat` every 1 024 services it builds; the others are untouched.
    ///
    /// # Errors
    /// A service cannot be built (see [`crate::lb::build_services`]); nothing changed.
    pub fn update(
        &mut self,
        generation: u64,
        gone: &[(u8, std::net::IpAddr, u16)],
        put: &[&conf::Shared<conf::Service>],
        (rt, share): (&conf::Runtime, (u16, u16)),
        (learned, beat): (&crate::neigh::Hops, &mut dyn FnMut()),
    ) -> Result<(), crate::lb::BuildError> {
        let Some(f) = self.lb.as_mut() else { return Ok(()) };
        let hops = crate::lb::Hops::new(rt, learned);
        let mut built = Vec::with_capacity(put.len());
        for (n, def) in put.iter().enumerate() {
            if n % 1024 == 1023 {
                beat();
            }
            built.push(hops.service(def, share, f.service(def.protocol.number(), def.vip, def.port))?);
        }
        beat();
        f.update(generation, gone, built);
        beat();
        Ok(())
    }

    /// Whether any service is configured.
    #[inline]
    pub fn has_services(&self) -> bool {
        self.lb.as_ref().is_some_and(|f| !f.services().is_empty())
    }

    /// The lcores of this lcore's group (1 without a balancer): with several, packets are
    /// handed to the lcore that owns their connection.
    pub fn group_lcores(&self) -> u16 {
        self.lb.as_ref().map_or(1, Balancer::lcores)
    }

    /// The balancer, if any.
    pub fn balancer_mut(&mut self) -> Option<&mut Balancer<'a>> {
        self.lb.as_mut()
    }

    /// The one parse of each of `frames` (a burst, at most [`dpdk::BURST_SIZE`] used, each
    /// with the port slot it arrived on), for the [`Pipeline::process`] calls that follow, one
    /// a frame in the same order. With `steer` (received by an lcore of several, not handed
    /// over), a frame whose connection another lcore owns is marked for it
    /// ([`Action::Redirect`]). The 5-tuples of the frames this lcore keeps are hashed
    /// together, instead of each at the head of its lookup's chain of dependent steps; with a
    /// large connection table each lookup's bucket, then the first entry of its chain, start
    /// loading, so that the cache misses of a burst overlap instead of coming one after the
    /// other.
    pub fn classify<'f>(&mut self, frames: impl Iterator<Item = (Option<u16>, &'f [u8])>, steer: bool) {
        // With no service there is no connection to hand over.
        let steer = steer && self.has_services();
        let seen = &mut self.seen;
        seen.len = 0;
        seen.next = 0;
        let lb = self.lb.as_ref();
        // Each frame's bytes, for the second pass (an IPv6 frame's addresses are read there).
        let mut bytes: [&[u8]; dpdk::BURST_SIZE] = [&[]; dpdk::BURST_SIZE];
        for (port, frame) in frames.take(dpdk::BURST_SIZE) {
            bytes[seen.len] = frame;
            let c = &mut seen.frames[seen.len];
            seen.len += 1;
            c.len = frame.len() as u32;
            c.port = port;
            c.status = parse(frame, &mut c.parsed);
            c.owner = None;
            c.hashed = None;
        }
        let Some(f) = lb else { return };
        let shard = f.shard();
        let prefetch = shard.used() >= PREFETCH_FROM;
        // A second pass: a header just parsed is read back only once the burst's other
        // frames have been, when its stores have left the store buffer (read at once, the
        // ports' two 16-bit stores meet a 32-bit load that cannot be forwarded from them).
        // Each bucket starts loading as soon as its hash is known.
        for (c, &frame) in seen.frames[..seen.len].iter_mut().zip(bytes.iter()).filter(|(c, _)| c.status == Status::Ip)
        {
            let p = &c.parsed;
            c.owner = c.port.filter(|_| steer).and_then(|port| f.owner(port, p, frame));
            if c.owner.is_none() {
                c.hashed = crate::lb::flow_of(p, frame).map(|(t, _)| shard.hashed(t));
                if let (Some(h), true) = (&c.hashed, prefetch) {
                    shard.prefetch_bucket(h);
                }
            }
        }
        if prefetch {
            for h in seen.frames[..seen.len].iter().filter_map(|c| c.hashed.as_ref()) {
                shard.prefetch_chain(h.bucket());
            }
        }
    }

    /// Passes over the next frame's classification: a frame the caller does not process
    /// (from a port it does not know) must not leave its parse to the frame after it.
    #[inline]
    pub fn skip(&mut self) {
        if self.seen.next < self.seen.len {
            self.seen.next += 1;
        }
    }

    /// Decides what to do with `frame`, received on port slot `rx_port`, rewriting it in
    /// place when it is answered or translated. Takes the frame's classification from
    /// [`Pipeline::classify`], or classifies it now when there is none for it.
    ///
    /// # Panics
    /// If `rx_port` is not a port slot of this pipeline (the caller's rx paths come from the
    /// same port table).
    #[inline]
    pub fn process<F: Frame>(&mut self, rx_port: u16, buf: &mut F) -> Action {
        let len = buf.bytes().len();
        let mut now = Parsed::EMPTY;
        let (status, parsed, hashed) = match self.seen.next(len) {
            Some(Classified { owner: Some((lcore, why)), .. }) => return Action::Redirect { lcore: *lcore, why: *why },
            Some(c) => (c.status, &c.parsed, c.hashed.as_ref()),
            None => (parse(buf.bytes(), &mut now), &now, None),
        };
        let port = &self.ports[usize::from(rx_port)];
        if port.is_exception {
            // From the host's kernel: out of its data port as it is.
            return Action::Forward(port.peer);
        }
        let p = match status {
            Status::Runt => return Action::Drop(DropReason::Runt),
            // A malformed IPv4 frame goes no further.
            Status::Malformed(e) => return Action::Drop(DropReason::Malformed(e)),
            Status::Other => None,
            Status::Ip => Some(parsed),
        };
        // Neighbour discovery and echo are ICMPv6: other IPv6 packets (the services' traffic)
        // are not parsed again for them.
        if p.and_then(|p| p.ipv6()).is_some_and(|ip| matches!(ip.l4, wire::L4::Icmpv6 { .. })) {
            if let (Some(f), Some((addr, mac))) = (self.lb.as_mut(), crate::ipv6::neighbour_of(buf.bytes())) {
                // As ARP: whichever worker receives an answer (or a question) from a wanted
                // next hop learns it.
                f.learn(rx_port, addr, mac);
            }
            if !port.addrs6.is_empty() {
                if let Some(reply) = crate::ipv6::answer(port, buf) {
                    return Action::Reply(reply);
                }
            }
        }
        if let (Some(lb), Some(p)) = (self.lb.as_mut(), p) {
            let error = match lb.process(rx_port, buf, p, hashed) {
                Verdict::NotOurs => None,
                Verdict::Out { port, dir, new } => return Action::Nat { port, inbound: dir == conn::Dir::In, new },
                Verdict::Drop(d) => return Action::Drop(d),
                Verdict::TimeExceeded => Some(IcmpError::TimeExceeded),
                Verdict::FragNeeded { mtu } => Some(IcmpError::FragNeeded { mtu }),
            };
            if let Some(error) = error {
                let l3 = usize::from(p.l3_offset);
                return icmp_error_action(&self.ports[usize::from(rx_port)], buf, l3, error);
            }
        }
        self.local_or_bridged(rx_port, buf.bytes())
    }
}

/// Answers the packet at `l3` received on `port` with ICMP `error` from the port's first
/// address, in place; drops it when the port has no address to answer from, or no room.
fn icmp_error_action<F: Frame>(port: &PortCtx, buf: &mut F, l3: usize, error: IcmpError) -> Action {
    let reply = match error {
        IcmpError::TimeExceeded => Reply::TimeExceeded,
        IcmpError::FragNeeded { .. } => Reply::FragNeeded,
    };
    let sent = if buf.bytes().get(l3).is_some_and(|b| b >> 4 == 6) {
        port.addrs6.first().is_some_and(|&src| crate::ipv6::icmp_error(buf, l3, src, port.mac, error))
    } else {
        port.addrs.first().is_some_and(|&src| icmp_error(buf, l3, src, port.mac, error))
    };
    if sent {
        Action::Reply(reply)
    } else {
        Action::Drop(DropReason::NoResource)
    }
}

impl Pipeline<'_> {
    /// What the balancer did not take: ARP learned from, ARP and ping for the port's own
    /// addresses answered, the rest to the kernel's exception path or bridged at layer 2.
    fn local_or_bridged(&mut self, rx_port: u16, frame: &mut [u8]) -> Action {
        let port = &self.ports[usize::from(rx_port)];
        let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
            return Action::Drop(DropReason::Runt);
        };
        if eth.ethertype() == EtherType::Arp {
            if let (Some(f), Ok(arp)) = (self.lb.as_mut(), ArpPacket::new_checked(&*eth.payload_mut())) {
                // The next hops ARP resolves answer the requests of each group's first worker,
                // and announce themselves; whichever worker receives it learns it.
                if arp.check_format().is_ok() {
                    f.learn(rx_port, arp.sender_protocol_addr(), arp.sender_hardware_addr());
                }
            }
        }

        if !port.addrs.is_empty() {
            let answered = match eth.ethertype() {
                EtherType::Arp => answer_arp(port, &mut eth),
                EtherType::Ipv4 => answer_echo(port, &mut eth),
                _ => None,
            };
            if let Some(reply) = answered {
                return Action::Reply(reply);
            }
        }
        if let Some(kernel) = port.exception {
            // Neither translated nor answered: the host's kernel has it (its addresses, its
            // daemons, its neighbours' answers), as DPVS gives it to its KNI device.
            return Action::Forward(kernel);
        }
        if port.peer == rx_port {
            let (src, dst) = (eth.src_addr(), eth.dst_addr());
            eth.set_src_addr(dst);
            eth.set_dst_addr(src);
        }
        Action::Forward(port.peer)
    }
}

/// Turns the frame (an untagged IPv4 packet at `l3`) into the ICMP error that answers it:
/// from `src` (an address of the port it came in on) and the port's `mac`, to the sender's
/// address and MAC, quoting the original IP header and 8 bytes of its payload.
/// Returns false when the frame cannot take the new length.
pub(crate) fn icmp_error<F: Frame>(
    buf: &mut F,
    l3: usize,
    src: Ipv4Addr,
    mac: EthernetAddress,
    error: IcmpError,
) -> bool {
    let mut quote = [0u8; 60 + 8];
    let (quote_len, to, peer) = {
        let f = buf.bytes();
        let ip = Ipv4Packet::new_unchecked(&f[l3..]);
        let n = (ip.header_len() + 8).min(f.len() - l3).min(quote.len());
        quote[..n].copy_from_slice(&f[l3..l3 + n]);
        (n, ip.src_addr(), EthernetFrame::new_unchecked(&f[..]).src_addr())
    };
    let original = &quote[..quote_len];
    let icmp = match error {
        IcmpError::TimeExceeded => {
            Icmpv4Repr::TimeExceeded { reason: wire::icmpv4::TimeExceeded::TtlExpired, original }
        }
        IcmpError::FragNeeded { mtu } => {
            Icmpv4Repr::DstUnreachable { reason: wire::icmpv4::DstUnreachable::FragNeeded, next_hop_mtu: mtu, original }
        }
    };
    if !buf.resize(wire::ethernet::HEADER_LEN + 20 + icmp.buffer_len()) {
        return false;
    }
    write_icmpv4_frame(buf.bytes(), (mac, peer), (src, to), &icmp);
    true
}

/// Writes a whole untagged Ethernet, IPv4 and ICMP frame of `icmp` into `f`, which is exactly
/// as long: from `src` (at the first MAC) to `dst` (at the second).
pub(crate) fn write_icmpv4_frame(
    f: &mut [u8],
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    icmp: &Icmpv4Repr<'_>,
) {
    let eth = wire::EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv4 };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        ttl: REPLY_TTL,
        tos: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let l3 = wire::ethernet::HEADER_LEN;
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[l3..]));
    Ipv4Packet::new_unchecked(&mut f[l3..]).fill_checksum();
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut f[l3 + 20..]));
}

/// Length of a gratuitous ARP frame (Ethernet header and ARP packet, no padding: the PMD or
/// the wire pads it).
pub const GARP_LEN: usize = wire::ethernet::HEADER_LEN + wire::arp::PACKET_LEN;

/// A gratuitous ARP announcing that `addr` is at `mac`: a broadcast ARP request whose sender
/// and target address are both `addr`, as Linux and DPVS send when an address is added, so
/// that neighbours update their caches.
pub fn gratuitous_arp(mac: EthernetAddress, addr: Ipv4Addr) -> [u8; GARP_LEN] {
    arp_request(mac, addr, addr)
}

/// A broadcast ARP request from `sender` (at `mac`) asking for `target`'s MAC.
pub fn arp_request(mac: EthernetAddress, sender: Ipv4Addr, target: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    let eth = wire::EthernetRepr { src_addr: mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EtherType::Arp };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let arp = wire::ArpRepr {
        operation: ArpOperation::Request,
        sender_hardware_addr: mac,
        sender_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    arp.emit(&mut ArpPacket::new_unchecked(&mut f[wire::ethernet::HEADER_LEN..]));
    f
}

/// Whether a frame carries IPv4 or IPv6 (under at most two VLAN tags).
fn is_ip(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    let ethertype = match eth.vlan_info() {
        Ok(v) => v.ethertype,
        Err(_) => eth.ethertype(),
    };
    matches!(ethertype, EtherType::Ipv4 | EtherType::Ipv6)
}

/// Turns an ARP request for an owned address into the reply.
fn answer_arp(port: &PortCtx, eth: &mut EthernetFrame<&mut [u8]>) -> Option<Reply> {
    let requester = {
        let arp = ArpPacket::new_checked(&*eth.payload_mut()).ok()?;
        arp.check_format().ok()?;
        let target = arp.target_protocol_addr();
        let sender = arp.sender_protocol_addr();
        // Requests only; a gratuitous announcement (sender == target) asks nothing.
        if arp.operation() != ArpOperation::Request || sender == target || !port.addrs.contains(&target) {
            return None;
        }
        arp.sender_hardware_addr()
    };
    let mut arp = ArpPacket::new_unchecked(eth.payload_mut());
    let (sender_ip, target_ip) = (arp.sender_protocol_addr(), arp.target_protocol_addr());
    arp.set_operation(ArpOperation::Reply);
    arp.set_target_hardware_addr(requester);
    arp.set_target_protocol_addr(sender_ip);
    arp.set_sender_hardware_addr(port.mac);
    arp.set_sender_protocol_addr(target_ip);
    eth.set_dst_addr(requester);
    eth.set_src_addr(port.mac);
    Some(Reply::Arp)
}

/// Turns a valid ICMP echo request to an owned address into the reply.
fn answer_echo(port: &PortCtx, eth: &mut EthernetFrame<&mut [u8]>) -> Option<Reply> {
    {
        let ip = Ipv4Packet::new_checked(&*eth.payload_mut()).ok()?;
        if ip.protocol() != IpProtocol::Icmp
            || ip.is_fragment()
            || !port.addrs.contains(&ip.dst_addr())
            || !ip.verify_checksum()
        {
            return None;
        }
        let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
        if icmp.msg_type() != Icmpv4Message::EchoRequest || icmp.msg_code() != 0 || !icmp.verify_checksum() {
            return None;
        }
    }
    let src_mac = eth.src_addr();
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(REPLY_TTL);
    ip.fill_checksum();
    let mut icmp = Icmpv4Packet::new_unchecked(ip.payload_mut());
    let old = u16::from(u8::from(Icmpv4Message::EchoRequest)) << 8;
    let new = u16::from(u8::from(Icmpv4Message::EchoReply)) << 8;
    let csum = checksum::update_u16(icmp.checksum(), old, new);
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.set_checksum(csum);
    eth.set_dst_addr(src_mac);
    eth.set_src_addr(port.mac);
    Some(Reply::IcmpEcho)
}

#[cfg(test)]
mod tests;
