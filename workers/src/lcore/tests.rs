//! The poll loop over the in-memory queues: a burst's outcomes and their counters, a full tx
//! queue, hand-overs between the lcores of a group, a stop with and without a successor, and
//! configuration switches, counter zeroing, announcements.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use shm_layout::{Layout, Shm};
use wire::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, UdpPacket, UdpRepr};

use super::*;
use crate::fixtures::*;
use crate::io::mem::MemIo;
use crate::lb::{build_services, Balancer};
use crate::pipeline::PortCtx;

/// DPDK port ids of port slots 0 and 1.
const IDS: [u16; 2] = [3, 5];

/// A layout in a file of its own (removed when dropped), with generation 1 empty.
struct Rig {
    dir: PathBuf,
    shm: Shm,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let dir = std::env::temp_dir().join(format!("workers-lcore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = mailbox::generation::encode(&empty());
        let shm = Shm::create(&dir.join("t.shm"), shm_layout::TableSizes::SMALL, |l, t| {
            mailbox::generation::init(&mut l.config, t.config_words(), "", &first, monotonic_ns()).unwrap();
        })
        .unwrap();
        Rig { dir, shm }
    }

    fn layout(&self) -> &Layout {
        self.shm.layout()
    }

    /// Publishes `rt` as the next generation; returns its number.
    fn publish(&self, rt: &conf::Runtime) -> u64 {
        self.publish_bytes(&mailbox::generation::encode(rt))
    }

    fn publish_bytes(&self, bytes: &[u8]) -> u64 {
        let l = self.layout();
        mailbox::generation::publish_snapshot(self.shm.generations(), &l.workers, bytes, monotonic_ns()).unwrap()
    }

    /// Publishes `d` as the next generation, a delta; returns its number.
    fn publish_delta(&self, d: &mailbox::generation::Delta) -> u64 {
        mailbox::generation::publish_delta(self.shm.generations(), d, monotonic_ns()).unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// No services, no addresses.
fn empty() -> conf::Runtime {
    conf::Runtime { addresses: vec![], neighbours: vec![], routes: vec![], services: vec![] }
}

/// The emulated RSS of both ports in [`rss_pipeline`]: Microsoft's key, lcore `q` polls
/// queue `q` of both ports.
fn reta(lcores: u16) -> rss::Reta {
    rss::Reta::round_robin(rss::DEFAULT_RETA_SIZE, lcores).unwrap()
}

/// The lcore that RSS (see [`reta`]) delivers a UDP datagram from `src` to `dst` to.
fn rss_lcore(lcores: u16, (src, sport): (Ipv4Addr, u16), (dst, dport): (Ipv4Addr, u16)) -> usize {
    let t = rss::Toeplitz::new(rss::MS_KEY);
    usize::from(reta(lcores).queue(t.ipv4(src.octets(), dst.octets(), sport, dport)))
}

/// Lcore `me` of a group of `lcores` (worker slots 0..lcores), its pipeline running `rt` as
/// generation `g` of `rig`, the ports' RSS unknown.
fn pipeline<'s>(
    rig: &'s Rig,
    store: &'s mut Store,
    (me, lcores): (u16, u16),
    g: u64,
    rt: &conf::Runtime,
) -> Pipeline<'s> {
    let unknown = crate::lb::Receive::new((me, lcores), [None, None], |_, _| None);
    rss_pipeline(rig, store, (me, lcores), g, rt, unknown)
}

/// [`pipeline`] with the ports' RSS `receive`.
fn rss_pipeline<'s>(
    rig: &'s Rig,
    store: &'s mut Store,
    (me, lcores): (u16, u16),
    g: u64,
    rt: &conf::Runtime,
    receive: crate::lb::Receive,
) -> Pipeline<'s> {
    let shard = store.shard();
    let slot = usize::from(me);
    let services = build_services(rt, (me, lcores), &mut Vec::new(), &Default::default()).unwrap();
    let mut lb = Balancer::new(services, shard, vec![P0, P1], monotonic_ns())
        .with_stats(rig.shm.service_counters(slot), rig.shm.real_counters(slot))
        .with_receive(receive);
    let services = lb.take_services();
    lb.reconfigure(g, services);
    let port = |mac, peer, i| {
        let (addrs, addrs6) = PortCtx::addresses(rt, i);
        PortCtx { mac, peer, addrs, addrs6, exception: None, is_exception: false }
    };
    Pipeline::with_balancer(vec![port(P0, 1, 0), port(P1, 0, 1)], lb)
}

/// The configuration follower of worker slot `slot` in a group of `lcores`, running
/// generation `g` with `rt`; the group's first lcore announces.
fn reconfig<'r>(rig: &'r Rig, slot: usize, lcores: usize, g: u64, rt: &conf::Runtime) -> Reconfig<'r> {
    let l = rig.layout();
    let pollers = conf::Pollers::new((0..lcores).flat_map(|_| [(0, "g"), (1, "g")]));
    let group = Group { name: "g".into(), members: (0..lcores).collect(), pollers };
    let addrs = group.addresses(rt);
    Reconfig {
        gens: rig.shm.generations(),
        bell: &l.mailbox.doorbell,
        share: group.share(slot),
        group,
        applied: g,
        rt: mailbox::generation::Indexed::new(rt.clone()),
        failed: 0,
        zeroed: 0,
        learned: &l.learned[..lcores],
        neigh_seen: 0,
        own_learned: &l.learned[slot],
        asked_ns: monotonic_ns(),
        addrs,
        announcer: (slot == 0).then(|| vec![P0, P1]),
        queues: &l.queue_counters[slot],
    }
}

fn counts(rig: &Rig, slot: usize) -> Counts<'_> {
    Counts { lcore: &rig.layout().counters[slot], queues: &rig.layout().queue_counters[slot], gaps: None }
}

fn udp(sport: u16) -> Vec<u8> {
    udp_between((CLIENT_MAC, P0), (CLIENT, sport), (VIP, 53))
}

/// A 4-byte UDP datagram from `src` to `dst`, between MAC addresses `macs`.
fn udp_between(macs: (EthernetAddress, EthernetAddress), src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    let mut seg = vec![0u8; 8 + 4];
    let repr = UdpRepr { src_port: src.1, dst_port: dst.1, payload: b"ping" };
    repr.emit(&mut UdpPacket::new_unchecked(&mut seg[..]), src.0, dst.0);
    let mut f = vec![0u8; 34 + seg.len()];
    wire::emit_ipv4_frame(&mut f, macs, (src.0, dst.0), IpProtocol::Udp, &seg);
    f
}

fn arp_request_for(addr: Ipv4Addr) -> Vec<u8> {
    crate::pipeline::arp_request(CLIENT_MAC, CLIENT, addr).to_vec()
}

/// An IPv6 frame: neither answered nor translated, bridged.
fn ipv6() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    EthernetRepr { src_addr: CLIENT_MAC, dst_addr: P0, ethertype: EtherType::Ipv6 }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14] = 0x60;
    // No next header: a well-formed, empty packet.
    f[20] = 59;
    f
}

/// The UDP service's counters in a worker's table.
fn udp_counters(table: &[shm_layout::ServiceCounters]) -> &shm_layout::ServiceCounters {
    let key = shm_layout::ServiceCounters::key_of(17, VIP, 53);
    table.iter().find(|c| c.key.load(Relaxed) == key).expect("the UDP service has a slot")
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Relaxed)
}

#[test]
fn a_burst_is_translated_answered_bridged_dropped_and_counted_once() {
    let rig = Rig::new("burst");
    let rt = runtime(&[(8053, 1)]);
    let g = rig.publish(&rt);
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
    let mut io = MemIo::new(1, IDS.to_vec());
    let mut bad_version = udp(1000);
    bad_version[14] = 0x55;
    // The frame from a port id the instance lacks comes right before a datagram of another
    // flow of the same length: its parse must not be taken for that one's.
    io.rx[0].extend([
        (IDS[0], arp_request_for(VIP)),
        (IDS[0], vec![0u8; 10]),
        (IDS[0], bad_version),
        (9, udp(1001)),
        (IDS[0], udp(1000)),
        (IDS[0], ipv6()),
    ]);
    let mut lcore = Lcore::new(&rig.layout().workers[0], counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
    lcore.start();
    assert_eq!(lcore.round(), None);
    let io = lcore.io();
    assert_eq!(io.sent[1].len(), 2, "the translated datagram and the bridged IPv6 frame");
    assert_eq!(io.sent[0].len(), 1, "the ARP reply");
    let eth = EthernetFrame::new_checked(&io.sent[1][0][..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (P1, RS_MAC));
    let c = &rig.layout().counters[0];
    assert_eq!((load(&c.rx_packets), load(&c.rx_bursts), load(&c.tx_packets)), (6, 1, 3));
    assert_eq!((load(&c.fnat_in), load(&c.arp_replies)), (1, 1));
    assert_eq!(load(&c.drop_runt), 2, "the runt and the frame from a port id the instance lacks");
    assert_eq!(load(&c.drop_malformed[wire::Error::BadVersion.index()]), 1);
    assert_eq!((load(&c.drop_tx_full), load(&c.redirected)), (0, 0));
    let q = &rig.layout().queue_counters[0];
    assert_eq!((load(&q.rx[0]), load(&q.tx[0]), load(&q.tx[1])), (6, 1, 2));
    let s = udp_counters(rig.shm.service_counters(0));
    assert_eq!((load(&s.conns), load(&s.in_packets)), (1, 1), "the service's own counters");
    drop(lcore);
    // The datagram after the unknown port's frame was translated as its own flow.
    let shard = p.balancer_mut().unwrap().shard();
    let clients: Vec<u16> =
        (0..shard.capacity()).map(|i| shard.entry(i)).filter(|e| e.in_use()).map(|e| e.cport).collect();
    assert_eq!(clients, [1000]);
}

#[test]
fn what_a_full_tx_queue_does_not_take_is_counted_and_freed() {
    let rig = Rig::new("txfull");
    let rt = runtime(&[(8053, 1)]);
    let g = rig.publish(&rt);
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
    let mut io = MemIo::new(1, IDS.to_vec());
    io.tx_room = Some(1);
    io.rx[0].extend((0..5).map(|i| (IDS[0], udp(2000 + i))));
    let mut lcore = Lcore::new(&rig.layout().workers[0], counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
    lcore.start();
    lcore.round();
    assert_eq!(lcore.io().sent[1].len(), 1);
    let c = &rig.layout().counters[0];
    assert_eq!((load(&c.fnat_in), load(&c.tx_packets), load(&c.drop_tx_full)), (5, 1, 4));
}

/// Ports whose RSS is unknown (or a driver whose table could not be read): packets are owned
/// by a hash of the client's tuple, as before RSS ownership, and handed over.
#[test]
fn packets_another_lcore_owns_are_handed_to_it_once_and_translated_there() {
    let rig = Rig::new("redirect");
    let rt = runtime(&[(8053, 1)]);
    let g = rig.publish(&rt);
    let (mut sa, mut sb) = (Store::new(2048), Store::new(2048));
    let mut pa = pipeline(&rig, &mut sa, (0, 2), g, &rt);
    let mut pb = pipeline(&rig, &mut sb, (1, 2), g, &rt);
    let (mut ia, mut ib) = (MemIo::new(1, IDS.to_vec()), MemIo::new(1, IDS.to_vec()));
    MemIo::pair(&mut ia, &mut ib, (0, 1), 2);
    // 32 client flows, all received by lcore 0.
    ia.rx[0].extend((0..32).map(|i| (IDS[0], udp(3000 + i))));
    let layout = rig.layout();
    let mut a = Lcore::new(&layout.workers[0], counts(&rig, 0), &mut pa, ia, reconfig(&rig, 0, 2, g, &rt));
    let mut b = Lcore::new(&layout.workers[1], counts(&rig, 1), &mut pb, ib, reconfig(&rig, 1, 2, g, &rt));
    a.start();
    b.start();
    a.round();
    let (ca, cb) = (&layout.counters[0], &layout.counters[1]);
    let kept = load(&ca.fnat_in);
    let handed = load(&ca.redirected);
    assert_eq!(kept + handed, 32);
    assert!(kept > 0 && handed > 0, "a hash spreads 32 flows over both lcores ({kept} kept)");
    assert_eq!(load(&ca.handed_no_rss), handed, "counted as handed over for want of RSS");
    assert_eq!(a.io().sent[1].len() as u64, kept);
    b.round();
    assert_eq!(load(&cb.fnat_in), handed, "the owner translates what it was handed");
    assert_eq!(load(&cb.redirected), 0, "and hands nothing back");
    assert_eq!(b.io().sent[1].len() as u64, handed);
    assert_eq!(load(&cb.rx_packets), 0, "handed packets are not received from a port");
    // Local ports name their lcore: lcore 1's connections use odd ones.
    for f in &b.io().sent[1] {
        let sport = UdpPacket::new_unchecked(&f[34..]).src_port();
        assert_eq!(sport % 2, 1, "lcore 1's share of local ports");
    }
    // A full ring: what it does not take is counted as dropped.
    a.io_mut().ring_room = 0;
    a.io_mut().rx[0].extend((0..32).map(|i| (IDS[0], udp(4000 + i))));
    a.round();
    assert!(load(&ca.drop_redirect) > 0);
    assert_eq!(load(&ca.redirected), handed, "nothing more went on the ring");
}

/// Emulated RSS on both ports, a peer that applies it: each lcore owns the flows it receives
/// and chooses local ports whose replies it receives too, so nothing is handed over in either
/// direction. A peer that does not apply it (every flow on lcore 0's queue): each flow is
/// handed to the lcore RSS names, counted as a mismatch, and still translated.
#[test]
fn with_rss_each_lcore_owns_what_it_receives_in_both_directions() {
    let rig = Rig::new("rss");
    let rt = runtime(&[(8053, 1)]);
    let g = rig.publish(&rt);
    let (mut sa, mut sb) = (Store::new(2048), Store::new(2048));
    let reta = reta(2);
    let spec = crate::lb::PortSpec { key: rss::MS_KEY, reta: reta.entries() };
    let receive = |me| crate::lb::Receive::new((me, 2), [Some(spec), Some(spec)], |_, q| Some(q));
    let mut pa = rss_pipeline(&rig, &mut sa, (0, 2), g, &rt, receive(0));
    let mut pb = rss_pipeline(&rig, &mut sb, (1, 2), g, &rt, receive(1));
    let (mut ia, mut ib) = (MemIo::new(1, IDS.to_vec()), MemIo::new(1, IDS.to_vec()));
    MemIo::pair(&mut ia, &mut ib, (0, 1), 2);
    let flows = 3000..3064u16;
    let mut on = [0usize; 2];
    for sport in flows.clone() {
        let l = rss_lcore(2, (CLIENT, sport), (VIP, 53));
        on[l] += 1;
        [&mut ia, &mut ib][l].rx[0].push_back((IDS[0], udp(sport)));
    }
    assert!(on[0] > 0 && on[1] > 0, "RSS spreads 64 flows over both lcores: {on:?}");
    let layout = rig.layout();
    let mut a = Lcore::new(&layout.workers[0], counts(&rig, 0), &mut pa, ia, reconfig(&rig, 0, 2, g, &rt));
    let mut b = Lcore::new(&layout.workers[1], counts(&rig, 1), &mut pb, ib, reconfig(&rig, 1, 2, g, &rt));
    a.start();
    b.start();
    a.round();
    b.round();
    let (ca, cb) = (&layout.counters[0], &layout.counters[1]);
    assert_eq!((load(&ca.fnat_in), load(&cb.fnat_in)), (on[0] as u64, on[1] as u64));
    assert_eq!((load(&ca.redirected), load(&cb.redirected)), (0, 0), "nothing handed over inbound");
    // The real server answers each datagram; the answer's RSS lands on the lcore that sent it.
    let mut replies = 0;
    for l in 0..2 {
        let sent: Vec<Vec<u8>> = [a.io(), b.io()][l].sent[1].clone();
        for f in sent {
            let udp = UdpPacket::new_unchecked(&f[34..]);
            let (lport, rport) = (udp.src_port(), udp.dst_port());
            assert!(lport >= 1025, "a local port: {lport}");
            assert_eq!(
                rss_lcore(2, (RS, rport), (LIP, lport)),
                l,
                "the reply to local port {lport} lands on lcore {l}"
            );
            let reply = udp_between((RS_MAC, P1), (RS, rport), (LIP, lport));
            [a.io_mut(), b.io_mut()][l].rx[0].push_back((IDS[1], reply));
            replies += 1;
        }
    }
    assert_eq!(replies, 64);
    a.round();
    b.round();
    assert_eq!((load(&ca.fnat_out), load(&cb.fnat_out)), (on[0] as u64, on[1] as u64), "every reply translated");
    assert_eq!((load(&ca.redirected), load(&cb.redirected)), (0, 0), "nothing handed over outbound");
    // A peer that puts every flow on lcore 0's queue: RSS still names the owner.
    a.io_mut().rx[0].extend(flows.clone().map(|sport| (IDS[0], udp(sport))));
    for _ in 0..2 {
        // A burst at a time.
        a.round();
        b.round();
    }
    assert_eq!(load(&ca.handed_rss_mismatch), on[1] as u64, "lcore 1's flows handed to it");
    assert_eq!(load(&ca.redirected), on[1] as u64);
    assert_eq!((load(&ca.fnat_in), load(&cb.fnat_in)), (2 * on[0] as u64, 2 * on[1] as u64), "and translated there");
    let handed: u64 = [&ca.handed_nat, &ca.handed_persistent, &ca.handed_no_rss].iter().map(|c| load(c)).sum();
    assert_eq!(handed, 0);
}

#[test]
fn a_stop_with_a_successor_hands_the_queues_over_and_without_one_ends() {
    let rig = Rig::new("stop");
    let rt = empty();
    let g = rig.publish(&rt);
    let slot = &rig.layout().workers[0];
    for (successor, handed_over) in [(7, true), (0, false)] {
        let mut store = Store::new(2048);
        let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
        let io = MemIo::new(1, IDS.to_vec());
        let mut lcore = Lcore::new(slot, counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
        lcore.start();
        assert_eq!(lcore.round(), None, "no stop asked");
        slot.handover_to.store(successor, SeqCst);
        slot.stop.store(if handed_over { shm_layout::STOP_HANDOVER } else { shm_layout::STOP_EXIT }, SeqCst);
        assert_eq!(lcore.round(), Some(handed_over));
        if handed_over {
            assert_eq!(slot.owner.load(SeqCst), 7, "the successor owns the slot");
            assert_eq!((slot.stop.load(SeqCst), slot.handover_to.load(SeqCst)), (0, 0), "for the successor to poll");
        } else {
            assert_eq!(slot.stop.load(SeqCst), shm_layout::STOP_EXIT, "left for the primary to see");
            slot.stop.store(0, SeqCst);
        }
        assert!(lcore.io().refreshes > 0, "links refreshed once a millisecond");
    }
}

/// A handover request the primary cancels (its successor died) before the worker's tick took
/// it: the worker keeps polling and the slot stays its own; a plain exit request still ends it.
#[test]
fn a_cancelled_handover_request_leaves_the_worker_polling() {
    let rig = Rig::new("cancelreq");
    let rt = empty();
    let g = rig.publish(&rt);
    let slot = &rig.layout().workers[0];
    slot.owner.store(3, SeqCst);
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
    let io = MemIo::new(1, IDS.to_vec());
    let mut lcore = Lcore::new(slot, counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
    lcore.start();
    slot.handover_to.store(7, SeqCst);
    slot.stop.store(shm_layout::STOP_HANDOVER, SeqCst);
    // The primary's cancel, as in `cancel_incoming`: the CAS wins, the request is gone.
    assert!(slot.stop.compare_exchange(shm_layout::STOP_HANDOVER, shm_layout::STOP_NONE, SeqCst, SeqCst).is_ok());
    slot.handover_to.store(0, SeqCst);
    assert_eq!(lcore.round(), None, "still polling");
    assert_eq!(slot.owner.load(SeqCst), 3, "the slot is still its own");
    slot.stop.store(shm_layout::STOP_EXIT, SeqCst);
    assert_eq!(lcore.round(), Some(false), "an exit request ends it");
    assert_eq!(slot.owner.load(SeqCst), 3);
}

#[test]
fn a_new_generation_is_applied_between_bursts_announced_and_acknowledged() {
    let rig = Rig::new("generation");
    let g1 = rig.publish(&empty());
    let slot = &rig.layout().workers[0];
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g1, &empty());
    let io = MemIo::new(1, IDS.to_vec());
    let mut lcore = Lcore::new(slot, counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g1, &empty()));
    lcore.start();
    lcore.io_mut().rx[0].push_back((IDS[0], udp(5000)));
    lcore.round();
    assert_eq!(lcore.io().sent[1].len(), 1, "no service yet: bridged to the peer port unchanged");
    assert_eq!(load(&rig.layout().counters[0].fnat_in), 0);
    let g2 = rig.publish(&runtime(&[(8053, 1)]));
    lcore.io_mut().rx[0].push_back((IDS[0], udp(5000)));
    lcore.round();
    assert_eq!(slot.cfg_applied.load(SeqCst), g2, "acknowledged");
    assert_eq!(slot.cfg_switches.load(SeqCst), 1);
    assert_eq!(load(&rig.layout().counters[0].fnat_in), 1, "the burst after the switch is translated");
    // The addresses the generation added, announced by gratuitous ARP out of their ports.
    let garp = |port: usize, addr: Ipv4Addr| {
        lcore.io().sent[port].iter().any(|f| f[..] == crate::pipeline::gratuitous_arp([P0, P1][port], addr)[..])
    };
    assert!(garp(0, VIP) && garp(1, LIP));
    let q = &rig.layout().queue_counters[0];
    // Port 0: the VIP's announcement; port 1: the bridged datagram, the translated one and the
    // local address's announcement.
    assert_eq!((load(&q.tx[0]), load(&q.tx[1])), (1, 3), "the announcements counted with the port's traffic");
    // A generation that does not decode is not applied, and not tried again.
    let g3 = rig.publish_bytes(b"\x05\x00 not a runtime");
    lcore.round();
    lcore.round();
    assert_eq!(slot.cfg_applied.load(SeqCst), g2);
    assert_eq!(slot.cfg_switches.load(SeqCst), 1);
    assert_eq!(lcore.cfg.failed, g3);
    lcore.io_mut().rx[0].push_back((IDS[0], udp(5000)));
    lcore.round();
    assert_eq!(load(&rig.layout().counters[0].fnat_in), 2, "still forwarding with the last good one");
}

#[test]
fn a_counter_zeroing_request_is_carried_out_and_acknowledged() {
    let rig = Rig::new("zero");
    let rt = runtime(&[(8053, 1)]);
    let g = rig.publish(&rt);
    let l = rig.layout();
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
    let io = MemIo::new(1, IDS.to_vec());
    let mut lcore = Lcore::new(&l.workers[0], counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
    lcore.start();
    lcore.io_mut().rx[0].push_back((IDS[0], udp(6000)));
    lcore.round();
    let s = udp_counters(rig.shm.service_counters(0));
    assert_eq!(load(&s.in_packets), 1);
    l.config.zero_key.store(0, SeqCst);
    l.config.zero_epoch.store(1, SeqCst);
    lcore.round();
    assert_eq!(load(&s.in_packets), 0, "zeroed");
    assert_eq!(l.workers[0].zero_applied.load(SeqCst), 1, "acknowledged");
}

#[test]
fn deltas_rebuild_the_services_they_name_and_end_where_a_whole_build_does() {
    let rig = Rig::new("delta");
    let rt = runtime(&[(8053, 1), (8054, 1)]);
    let g = rig.publish(&rt);
    let slot = &rig.layout().workers[0];
    let mut store = Store::new(2048);
    let mut p = pipeline(&rig, &mut store, (0, 1), g, &rt);
    let io = MemIo::new(1, IDS.to_vec());
    let mut lcore = Lcore::new(slot, counts(&rig, 0), &mut p, io, reconfig(&rig, 0, 1, g, &rt));
    lcore.start();
    lcore.io_mut().rx[0].push_back((IDS[0], udp(5000)));
    lcore.round();
    assert_eq!(load(&udp_counters(rig.shm.service_counters(0)).in_packets), 1);
    // A real server more for tcp VIP:80; udp VIP:53 removed; udp VIP:5353 added.
    let mut next = rt.clone();
    next.services[0].reals.push(conf::Real {
        addr: RS.into(),
        port: 8055,
        weight: 2,
        forward: conf::Forward::Fnat,
        upper: 0,
        lower: 0,
        down: false,
    });
    let dns = next.services.remove(1);
    let mut mdns = (*dns).clone();
    mdns.port = 5353;
    next.services.push(mdns.into());
    // Two generations before the worker looks: it makes both deltas, one after the other.
    let removal = mailbox::generation::Delta {
        removed: vec![mailbox::proto::ServiceKey::of(&dns)],
        put: vec![next.services[0].clone()],
        ..Default::default()
    };
    let addition = mailbox::generation::Delta { put: vec![next.services[1].clone()], ..Default::default() };
    rig.publish_delta(&removal);
    let g2 = rig.publish_delta(&addition);
    lcore.round();
    assert_eq!(slot.cfg_applied.load(SeqCst), g2, "acknowledged");
    assert_eq!(lcore.cfg.rt.runtime(), &next, "its whole configuration follows the delta");
    // The removed service's counters are freed, zeroed; the datagram to it is not translated.
    let key = shm_layout::ServiceCounters::key_of(17, VIP, 53);
    assert!(rig.shm.service_counters(0).iter().all(|c| c.key.load(Relaxed) != key));
    lcore.io_mut().rx[0].push_back((IDS[0], udp(5001)));
    lcore.round();
    assert_eq!(load(&rig.layout().counters[0].fnat_in), 1, "udp VIP:53 is gone");
    lcore.io_mut().rx[0].push_back((IDS[0], udp_between((CLIENT_MAC, P0), (CLIENT, 5002), (VIP, 5353))));
    lcore.round();
    assert_eq!(load(&rig.layout().counters[0].fnat_in), 2, "udp VIP:5353 is served");
    drop(lcore);
    // The services, their lookups and counter slots are what a whole build of the final
    // configuration makes.
    let f = p.balancer_mut().unwrap();
    let whole = build_services(&next, (0, 1), &mut Vec::new(), &Default::default()).unwrap();
    assert_eq!(f.services().len(), whole.len());
    for w in &whole {
        let i = f.index().service(w.proto, w.vip, w.port).expect("looked up");
        let s = &f.services()[i];
        assert_eq!((&s.reals, &s.laddrs, &s.def), (&w.reals, &w.laddrs, &w.def), "{}:{}", w.vip, w.port);
        let counted = shm_layout::ServiceCounters::key_of(w.proto, w.vip, w.port);
        assert!(
            rig.shm.service_counters(0).iter().any(|c| c.key.load(Relaxed) == counted),
            "{}:{} has counters",
            w.vip,
            w.port
        );
    }
    let reals = rig.shm.real_counters(0).iter().filter(|c| c.service.load(Relaxed) != 0).count();
    assert_eq!(reals, 5, "a counter slot for each real server, none for the removed service's");
}
