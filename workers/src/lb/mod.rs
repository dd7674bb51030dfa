//! Load balancing on one lcore: the LVS forwarding modes over a connection table in shared
//! memory.
//!
//! Full-NAT: client -> VIP:port becomes local address:local port -> real server, and the
//! reply real server -> local address:port becomes VIP:port -> client. One connection entry
//! in the lcore's shard finds both directions; the scheduler picks the real server of a new
//! connection; checksums are updated incrementally. NAT, direct routing and IP-in-IP are
//! chosen per real server.
//!
//! New TCP connections start only on a SYN; any other segment to a service with no
//! connection is dropped and counted (LVS does the same). The client side's MAC address and
//! port are kept in the entry, so replies go back the way the client came.
//!
//! One concern a file:
//!
//! | file | what |
//! |---|---|
//! | `service.rs` | the service model: real servers, limits, access lists, local addresses, [`build_services`] |
//! | `steer.rs` | which lcore owns a packet ([`owner`]) and the sorted lookups ([`Index`]) |
//! | `receive.rs` | which lcore each port's RSS delivers a packet to, local ports chosen by it ([`Receive`]) |
//! | `setup.rs` | a new connection: scheduling, persistence templates, the local address and port |
//! | `fullnat.rs` | the routed modes, Full-NAT and NAT: TTL, addresses and ports, TOA or PROXY, MACs |
//! | `nat64.rs` | NAT64: Full-NAT from IPv6 clients to IPv4 real servers, each header translated |
//! | `icmp.rs` | ICMP errors about a connection's packets, relayed to its other side |
//! | `ip.rs` | the IP header of either family: length, addresses, transport checksum |
//! | `dr.rs` | direct routing (and what it shares with IP-in-IP: inbound only) |
//! | `tunnel.rs` | IP-in-IP |
//! | `toa.rs`, `proxy.rs` | the client's address for the real server: TOA, the PROXY protocol |
//! | `state.rs` | TCP states, the clock and expiry |
//! | `hops.rs` | next hops that ARP resolves |
//! | `counters.rs` | per-service and per-real-server counters in shared memory |
//!
//! Packet formats (tuples, options, rewrites) are `wire`'s; this module decides.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU64;

use conn::{v4, Dir, Hashed, Shard, Tuple};
use shm_layout::conn::Mode;
use wire::{EthernetAddress, Ipv4Packet, Parsed, TcpFlags};

use crate::frame::Frame;
use crate::neigh::Want;
use crate::outcome::DropReason;

mod counters;
mod dr;
mod fullnat;
mod hops;
mod icmp;
mod ip;
mod nat64;
pub mod proxy;
mod receive;
mod service;
mod setup;
mod state;
mod steer;
mod toa;
mod tunnel;

use counters::Slots;
use dr::Hit;
pub use receive::{PortRss, PortSpec, Receive, RssAddr};
use service::resolve;
use service::LPORT_MIN;
pub use service::{build_services, build_services_beating, BuildError, Hops, Limits, Real, Service};
pub use steer::{flow_of, owner, transport, Index, Place};
pub use toa::TOA_LEN;
use tunnel::tunnel_header_len;

/// Connection timer tick.
pub const TICK_NS: u64 = 10_000_000;

/// MTU of a port whose MTU was not given ([`Balancer::with_mtus`]).
pub const DEFAULT_MTU: usize = 1500;

/// What the balancer did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not the balancer's traffic: no connection and no service.
    NotOurs,
    /// Rewritten; send it out of this port slot. `new` when it created the connection.
    Out { port: u16, dir: Dir, new: bool },
    /// Drop it.
    Drop(DropReason),
    /// Its TTL ran out: answer with ICMP time exceeded instead (Full-NAT and NAT route it).
    TimeExceeded,
    /// Too big for the port once encapsulated (IP-in-IP), with DF set: answer with ICMP
    /// fragmentation needed, naming the MTU that fits.
    FragNeeded { mtu: u16 },
}

/// Where a packet's headers start in its frame.
#[derive(Debug, Clone, Copy)]
struct Offsets {
    /// The IP header.
    l3: usize,
    /// The TCP or UDP header.
    l4: usize,
    /// Whether the IP header is IPv6's (known from the parse: the packet path branches on it
    /// once rather than reading the version again).
    v6: bool,
}

/// The load-balancing state of one lcore: its services, its connection table, its counters.
pub struct Balancer<'a> {
    services: Vec<Service>,
    /// Lookups over `services`.
    index: Index,
    shard: Shard<'a>,
    /// MAC of every port slot.
    port_macs: Vec<EthernetAddress>,
    now_tick: u64,
    /// Configuration generation of `services` (connection entries cache their service and
    /// real server indices per generation).
    generation: u64,
    /// This worker's per-service counters in shared memory (empty: not counted).
    stats: &'a [shm_layout::ServiceCounters],
    /// This worker's per-real-server counters in shared memory (empty: not counted).
    real_stats: &'a [shm_layout::RealCounters],
    /// Which of those counters each service and real server has.
    slots: Slots,
    /// Identification of the last outer IPv4 header it built (IP-in-IP).
    ip_id: u16,
    /// MTU of every port slot.
    mtus: Vec<u16>,
    /// Templates whose connections expired in this [`Balancer::advance`] (reserved once).
    unlinks: Vec<Tuple>,
    /// This worker's table of learned neighbours in shared memory and the epoch to bump when
    /// it changes (None: nothing is learned).
    neigh: Option<(&'a [shm_layout::LearnedNeighbour], &'a AtomicU64)>,
    /// The next hops ARP resolves, and whether each is resolved ([`Balancer::wanted`]).
    wants: Vec<(Want, bool)>,
    /// How many real servers each of `wants` serves.
    want_refs: rustc_hash::FxHashMap<IpAddr, u32>,
    /// Which lcore of the group the ports' RSS delivers a packet to.
    receive: Receive,
    /// What makes this process's stamps its own ([`Balancer::stamp`]): its start time.
    epoch: u64,
    /// The connections of the table it adopted, by (service, real) index: (active, inactive),
    /// for [`Balancer::recount_connections`] once the counter slots are assigned.
    adopted: rustc_hash::FxHashMap<(usize, usize), (u32, u32)>,
}

impl std::fmt::Debug for Balancer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer").field("services", &self.services.len()).field("shard", &self.shard).finish()
    }
}

/// `seconds` in timer ticks.
fn ticks(seconds: u32) -> u32 {
    (u64::from(seconds) * 1_000_000_000 / TICK_NS) as u32
}

/// The IPv4 address of an entry's 16-byte address field.
fn addr4(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[12], a[13], a[14], a[15])
}

/// The IPv6 address of an entry's 16-byte address field.
fn addr6(a: &[u8; 16]) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::from(*a)
}

/// The address of an entry's 16-byte field, of its family (IPv4 is kept IPv4-mapped).
#[inline]
pub(crate) fn ip_of(a: &[u8; 16]) -> IpAddr {
    addr6(a).to_canonical()
}

/// `a` in the entries' 16-byte form.
#[inline]
pub(crate) fn entry_form(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => v4(a.octets()),
        IpAddr::V6(a) => a.octets(),
    }
}

impl<'a> Balancer<'a> {
    /// A balancer over `services`, with connections in `shard`.
    /// Connections adopted from the shard count towards their real servers' active
    /// connections (lc, wlc), and the clock starts at `now_ns`.
    pub fn new(services: Vec<Service>, shard: Shard<'a>, port_macs: Vec<EthernetAddress>, now_ns: u64) -> Balancer<'a> {
        let index = Index::build(&services);
        let mut f = Balancer {
            services,
            index,
            shard,
            port_macs,
            now_tick: now_ns / TICK_NS,
            generation: 0,
            stats: &[],
            real_stats: &[],
            slots: Slots::default(),
            ip_id: 0,
            mtus: Vec::new(),
            unlinks: Vec::new(),
            neigh: None,
            wants: Vec::new(),
            want_refs: rustc_hash::FxHashMap::default(),
            receive: Receive::single(),
            adopted: rustc_hash::FxHashMap::default(),
            epoch: now_ns | 1,
        };
        let (services, index, adopted) = (&mut f.services, &f.index, &mut f.adopted);
        f.shard.for_each_used(|_, e| {
            if e.is_template() {
                return;
            }
            if let Some((s, r)) = resolve(index, services, e) {
                services[s].backends[r].active_conns += 1;
                let n = adopted.entry((s, r)).or_default();
                if e.proto == 6 && e.state == conn::tcp::State::Established as u8 {
                    n.0 += 1;
                } else {
                    n.1 += 1;
                }
            }
        });
        for s in &mut f.services {
            s.refresh_availability();
        }
        f.list_wants();
        f
    }

    /// Switches to configuration generation `generation` with `services` (built by
    /// [`build_services`] from the current ones). Connections of a service or real server
    /// that is gone expire on their next packet.
    pub fn reconfigure(&mut self, generation: u64, mut services: Vec<Service>) {
        self.index = Index::build(&services);
        self.slots = Slots::assign(self.stats, self.real_stats, &mut services);
        self.services = services;
        self.generation = generation;
        self.list_wants();
    }

    /// Switches to configuration generation `generation`, which removes the services `gone`
    /// (by protocol, VIP, port; one it does not have is no error) and then adds or replaces
    /// the services `put` (built by [`Hops::service`], each going on from the one it
    /// replaces): the cost is theirs, whatever the number of services. Connections of a
    /// service or real server that is gone expire on their next packet.
    pub fn update(&mut self, generation: u64, gone: &[(u8, IpAddr, u16)], put: Vec<Service>) {
        for &(proto, vip, port) in gone {
            let Some(i) = self.index.service(proto, vip, port) else { continue };
            let old = self.services.swap_remove(i);
            self.index.remove(&old);
            if let Some(moved) = self.services.get(i) {
                self.index.moved(i, moved);
            }
            self.slots.release(self.stats, self.real_stats, &old, None);
            self.unwant_hops_of(&old);
        }
        for mut svc in put {
            self.slots.take(self.stats, self.real_stats, &mut svc);
            self.want_hops_of(&svc);
            match self.index.service(svc.proto, svc.vip, svc.port) {
                Some(i) => {
                    let old = std::mem::replace(&mut self.services[i], svc);
                    self.index.remove(&old);
                    self.index.add(i, &self.services[i]);
                    self.slots.release(self.stats, self.real_stats, &old, Some(&self.services[i]));
                    self.unwant_hops_of(&old);
                }
                None => {
                    self.index.add(self.services.len(), &svc);
                    self.services.push(svc);
                }
            }
        }
        self.generation = generation;
    }

    /// The service `proto vip:port` (to build its replacement from).
    pub fn service(&self, proto: u8, vip: IpAddr, port: u16) -> Option<&Service> {
        self.index.service(proto, vip, port).map(|i| &self.services[i])
    }

    /// This lcore's place in its group and the ports' RSS: it owns the connections whose
    /// packets RSS delivers to it, and chooses local ports whose replies RSS delivers to it.
    pub fn with_receive(mut self, receive: Receive) -> Balancer<'a> {
        self.receive = receive;
        self
    }

    /// The lcores of this lcore's group.
    pub fn lcores(&self) -> u16 {
        self.receive.lcores()
    }

    /// Which lcore of the group owns the connection of `p`, received on port slot `rx_port`,
    /// and why, when another one does (see [`owner`]).
    #[inline]
    pub fn owner(&self, rx_port: u16, p: &Parsed, frame: &[u8]) -> Option<(u16, crate::outcome::Handoff)> {
        owner(&self.index, &self.receive, rx_port, p, frame)
    }

    /// The MTU of every port slot (packets bigger than the out port's are answered with ICMP
    /// fragmentation needed, or dropped without DF).
    pub fn with_mtus(mut self, mtus: Vec<u16>) -> Balancer<'a> {
        self.mtus = mtus;
        self
    }

    /// The MTU of port slot `port`.
    #[inline]
    pub(super) fn mtu(&self, port: u16) -> usize {
        self.mtus.get(usize::from(port)).map_or(DEFAULT_MTU, |&m| usize::from(m))
    }

    /// Takes the services out (to rebuild them), leaving none.
    pub fn take_services(&mut self) -> Vec<Service> {
        self.index = Index::default();
        std::mem::take(&mut self.services)
    }

    /// The lookups over the services.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The configuration generation it runs with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The (service, real server) indices of entry `idx` in the current generation, resolved
    /// again (and cached in the entry) when it was last resolved in another one. `None`: the
    /// service or the real server is gone.
    pub(super) fn indices(&mut self, idx: u32) -> Option<(usize, usize)> {
        let e = self.shard.entry(idx);
        let stamp = self.stamp();
        if e.cfg_gen == stamp && self.generation != 0 {
            return Some((e.service as usize, e.real as usize));
        }
        let (s, r) = resolve(&self.index, &self.services, e)?;
        let em = self.shard.entry_mut(idx);
        em.service = s as u32;
        em.real = r as u32;
        em.cfg_gen = stamp;
        Some((s, r))
    }

    /// The stamp under which an entry's cached service and real server indices are this
    /// process's at this generation. Not the generation alone: the order of the services is
    /// the process's own (a worker removing a service moves the last one into its place; a
    /// successor builds them in the configuration's order), so indices cached by the process
    /// that polled before it, at the same generation, must be resolved again.
    #[inline]
    pub(super) fn stamp(&self) -> u64 {
        self.generation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.epoch
    }

    /// The connection table.
    pub fn shard(&self) -> &Shard<'a> {
        &self.shard
    }

    /// The services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Handles a frame received on `rx_port` whose headers `p` describes; `hint`: its tuple
    /// hashed ahead (see [`crate::pipeline::Pipeline::classify`]), used if it is this
    /// packet's.
    pub fn process<F: Frame>(&mut self, rx_port: u16, buf: &mut F, p: &Parsed, hint: Option<&Hashed>) -> Verdict {
        let Some((proto, sport, dport, flags)) = steer::transport(p) else {
            if icmp::is_error(p) {
                return self.relay_error(buf, p);
            }
            return Verdict::NotOurs;
        };
        // The transport header, and the packet's length from the IP header on.
        let (l4, ip_len, v6) = match &p.net {
            wire::Network::V4(ip) => (ip.l4_offset, usize::from(ip.total_len), false),
            wire::Network::V6(ip) => (ip.l4_offset, wire::ipv6::HEADER_LEN + usize::from(ip.payload_len), true),
            wire::Network::None => return Verdict::NotOurs,
        };
        let at = Offsets { l3: usize::from(p.l3_offset), l4: usize::from(l4), v6 };
        // The hint's tuple, when it is this packet's (a burst's hints out of step cost time,
        // never a wrong lookup); else the tuple built and hashed now.
        let own;
        let (t, hint) = match hint {
            Some(h) if steer::is_flow(h.tuple(), p, buf.bytes(), (proto, sport, dport)) => (h.tuple(), Some(h)),
            _ => {
                let Some((src, dst)) = steer::addrs_of(p, buf.bytes()) else { return Verdict::NotOurs };
                own = Tuple { proto, src, sport, dst, dport };
                (&own, None)
            }
        };
        let (idx, dir, new) = match self.connection(rx_port, buf.bytes(), t, flags, hint, at) {
            Ok(found) => found,
            Err(v) => return v,
        };
        // Read in place: a copy of all 192 bytes would wait for the stores of the flow's last
        // packet (its counters) to land, and cost a quarter of the packet's time.
        let e = self.shard.entry(idx);
        if e.is_template() {
            // Port 0: a crafted packet that met a template's key.
            return Verdict::Drop(DropReason::NoConnection);
        }
        let mode = e.mode();
        if let Some(v) = self.too_big(e, mode, dir, flags.is_none(), (ip_len, buf.bytes(), at)) {
            return v;
        }
        match mode {
            Some(Mode::FullNat | Mode::Nat) => self.route(idx, dir, buf, at, flags, new),
            Some(Mode::Nat64) => self.route64(idx, dir, buf, at, flags, new),
            Some(Mode::Dr) => {
                let hit = Hit::of(e);
                self.direct_route(idx, hit, dir, buf.bytes(), flags, new)
            }
            Some(Mode::Tunnel) => {
                let hit = Hit::of(e);
                self.tunnel(idx, hit, dir, buf, at.l3, flags, new)
            }
            // (Checked above.) An entry of an unknown mode: written by another build.
            Some(Mode::Template) | None => Verdict::Drop(DropReason::NoConnection),
        }
    }

    /// The connection of tuple `t` (hashed ahead in `hint`, if any), or a new one when
    /// it is the first packet of a service's connection: (entry, direction, created). `Err`:
    /// what to do with a packet that has none.
    #[inline]
    fn connection(
        &mut self,
        rx_port: u16,
        frame: &[u8],
        t: &Tuple,
        flags: Option<TcpFlags>,
        hint: Option<&Hashed>,
        at: Offsets,
    ) -> Result<(u32, Dir, bool), Verdict> {
        let own;
        let h = match hint {
            Some(h) => h,
            None => {
                own = self.shard.hashed(*t);
                &own
            }
        };
        if let Some((idx, dir)) = self.shard.lookup_hashed(h) {
            if self.indices(idx).is_some() {
                return Ok((idx, dir, false));
            }
            // Its service or real server was removed: the connection expires now, and the
            // packet is treated as the first of a new one.
            let e = *self.shard.entry(idx);
            self.shard.remove(idx);
            if e.is_controlled() {
                self.unlink(&setup::template_of(&e));
            }
        }
        let tcp = flags.map(|f| (f, wire::TcpPacket::new_unchecked(&frame[at.l4..]).seq_number()));
        match self.create(rx_port, frame, t, tcp) {
            Ok(Some(idx)) => Ok((idx, Dir::In, true)),
            // A reply to a local address with no connection (expired, or never ours): nothing
            // to translate it to.
            Ok(None) if self.index.is_laddr(t.proto, ip_of(&t.dst)) => Err(Verdict::Drop(DropReason::NoConnection)),
            Ok(None) => Err(Verdict::NotOurs),
            Err(d) => Err(Verdict::Drop(d)),
        }
    }

    /// Whether a packet (at `l3` of `frame`) of connection `e` is too big for the port it
    /// leaves by (with the IP-in-IP header, a UDP datagram's PROXY header, or NAT64's header of
    /// the other family, if it gets one):
    /// a router answers "fragmentation needed" (IPv6: "packet too big") when DF is set (IPv6
    /// always); this one does not fragment otherwise. Inbound-only modes check inbound
    /// packets only.
    #[inline]
    fn too_big(
        &self,
        e: &shm_layout::conn::ConnEntry,
        mode: Option<Mode>,
        dir: Dir,
        udp: bool,
        (ip_len, frame, at): (usize, &[u8], Offsets),
    ) -> Option<Verdict> {
        let routed = matches!(mode, Some(Mode::FullNat | Mode::Nat | Mode::Nat64));
        if dir != Dir::In && !routed {
            return None;
        }
        let out = match dir {
            Dir::In => self.services.get(e.service as usize)?.reals.get(e.real as usize)?.via,
            Dir::Out => e.client_port,
        };
        // What the packet gains on its way, and the header it loses (NAT64's translation).
        let (grow, shrink) = match mode {
            Some(Mode::Tunnel) => (tunnel_header_len(ip_of(&e.raddr)), 0),
            // A UDP flow's datagrams to a PROXY protocol real server carry the header.
            Some(Mode::FullNat) if dir == Dir::In && udp => (usize::from(e.pp_len), 0),
            Some(Mode::Nat64) => nat64::growth(dir, at.l4 - at.l3, if udp { e.pp_len } else { 0 }),
            _ => (0, 0),
        };
        let mtu = self.mtu(out) + shrink;
        if ip_len + grow <= mtu {
            return None;
        }
        // IPv6 is never fragmented on the way: always "packet too big".
        Some(if at.v6 || Ipv4Packet::new_unchecked(&frame[at.l3..]).dont_frag() {
            Verdict::FragNeeded { mtu: mtu.saturating_sub(grow).min(0xffff) as u16 }
        } else {
            Verdict::Drop(DropReason::TooBig)
        })
    }
}

#[cfg(test)]
mod tests;
