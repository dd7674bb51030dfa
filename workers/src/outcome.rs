//! What happens to a frame, and the counter each outcome bumps: the one type the pipeline
//! returns ([`Action`]) and the per-burst tally the poll loop adds to the shared counters once
//! a burst ([`Tally`]).

use shm_layout::LcoreCounters;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send it out of this port slot.
    Forward(u16),
    /// It was rewritten into an answer: send it back out of the port it came in on.
    Reply(Reply),
    /// The balancer translated it: send it out of `port`; `inbound` from the client side,
    /// `new` when it opened the connection.
    Nat { port: u16, inbound: bool, new: bool },
    /// Another lcore of the group owns its connection: hand it to `lcore` (its index in the
    /// group), counting why.
    Redirect { lcore: u16, why: Handoff },
    /// Drop it, counting why.
    Drop(DropReason),
}

/// Why a packet is handed to another lcore: the classes RSS cannot place on the lcore that
/// receives them (Full-NAT and direct routing without persistence are placed by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// A NAT-mode service: its real servers' replies keep the client's tuple.
    Nat,
    /// A persistent service: a client's connections follow its template.
    Persistent,
    /// RSS put it on another lcore than the one the port's RSS names (a peer that does not
    /// apply the emulated RSS, a NIC that hashed other fields).
    RssMismatch,
    /// Its port's RSS is unknown, or leaves a queue or an lcore out.
    NoRss,
}

/// Which answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// ARP reply for an owned address.
    Arp,
    /// ICMP or ICMPv6 echo reply from an owned address.
    IcmpEcho,
    /// IPv6 neighbour advertisement for an owned address.
    Neighbor,
    /// ICMP time exceeded, in place of a translated packet whose TTL ran out.
    TimeExceeded,
    /// ICMP fragmentation needed, in place of a packet too big for the port it would leave by.
    FragNeeded,
}

/// Why a frame is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header, or from a port this worker does not know.
    Runt,
    /// A malformed IPv4 frame (it is neither answered, translated nor bridged).
    Malformed(wire::Error),
    /// A TCP segment other than a SYN for a service, with no connection; or a reply to a
    /// local address with no connection.
    NoConnection,
    /// No real server can take a new connection (all down or quiescent).
    NoReal,
    /// No free local port, a full table, or no room in the buffer.
    NoResource,
    /// The client is in the service's deny list, or not in its allow list.
    Denied,
    /// Every real server that could take the connection is at its upper threshold.
    Overloaded,
    /// Too big for the port it would leave by, without DF: the balancer does not fragment.
    TooBig,
}

/// A counter of [`LcoreCounters`] that an outcome bumps (the malformed ones by reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    ArpReplies,
    IcmpEchoReplies,
    IcmpTimeExceeded,
    IcmpFragNeeded,
    FnatIn,
    FnatOut,
    DropRunt,
    DropNoConn,
    DropNoResource,
    DropAcl,
    DropOverloaded,
    DropTooBig,
    HandedNat,
    HandedPersistent,
    HandedRssMismatch,
    HandedNoRss,
    NdReplies,
}

impl Counter {
    const COUNT: usize = Counter::NdReplies as usize + 1;

    /// The shared counter.
    fn of(self, c: &LcoreCounters) -> &std::sync::atomic::AtomicU64 {
        match self {
            Counter::ArpReplies => &c.arp_replies,
            Counter::IcmpEchoReplies => &c.icmp_echo_replies,
            Counter::IcmpTimeExceeded => &c.icmp_time_exceeded,
            Counter::IcmpFragNeeded => &c.icmp_frag_needed,
            Counter::FnatIn => &c.fnat_in,
            Counter::FnatOut => &c.fnat_out,
            Counter::DropRunt => &c.drop_runt,
            Counter::DropNoConn => &c.drop_no_conn,
            Counter::DropNoResource => &c.drop_no_resource,
            Counter::DropAcl => &c.drop_acl,
            Counter::DropOverloaded => &c.drop_overloaded,
            Counter::DropTooBig => &c.drop_too_big,
            Counter::HandedNat => &c.handed_nat,
            Counter::HandedPersistent => &c.handed_persistent,
            Counter::HandedRssMismatch => &c.handed_rss_mismatch,
            Counter::HandedNoRss => &c.handed_no_rss,
            Counter::NdReplies => &c.nd_replies,
        }
    }
}

// One counter of drop_malformed per wire::Error, in wire's order.
const _: () = assert!(wire::Error::ALL.len() == shm_layout::MALFORMED_REASONS.len());

impl Action {
    /// Counts the outcome into `tally`. Forwards count nothing here, redirects only why: the
    /// poll loop counts what the tx queues and the redirect rings take.
    #[inline]
    pub fn count(self, tally: &mut Tally) {
        let counter = match self {
            Action::Forward(_) => return,
            Action::Redirect { why: Handoff::Nat, .. } => Counter::HandedNat,
            Action::Redirect { why: Handoff::Persistent, .. } => Counter::HandedPersistent,
            Action::Redirect { why: Handoff::RssMismatch, .. } => Counter::HandedRssMismatch,
            Action::Redirect { why: Handoff::NoRss, .. } => Counter::HandedNoRss,
            Action::Reply(Reply::Arp) => Counter::ArpReplies,
            Action::Reply(Reply::IcmpEcho) => Counter::IcmpEchoReplies,
            Action::Reply(Reply::Neighbor) => Counter::NdReplies,
            Action::Reply(Reply::TimeExceeded) => Counter::IcmpTimeExceeded,
            Action::Reply(Reply::FragNeeded) => Counter::IcmpFragNeeded,
            Action::Nat { inbound: true, .. } => Counter::FnatIn,
            Action::Nat { inbound: false, .. } => Counter::FnatOut,
            Action::Drop(why) => match why.counter(tally) {
                Some(counter) => counter,
                None => return,
            },
        };
        tally.counts[counter as usize] += 1;
    }
}

impl DropReason {
    /// The counter of this reason; `None` when it was counted in `tally` already (a
    /// malformed frame, by its reason).
    fn counter(self, tally: &mut Tally) -> Option<Counter> {
        Some(match self {
            DropReason::Runt => Counter::DropRunt,
            DropReason::Malformed(e) => {
                tally.malformed[e.index()] += 1;
                return None;
            }
            DropReason::NoConnection => Counter::DropNoConn,
            DropReason::NoReal | DropReason::NoResource => Counter::DropNoResource,
            DropReason::Denied => Counter::DropAcl,
            // Also a refusal for want of resources, as LVS counts it.
            DropReason::Overloaded => {
                tally.counts[Counter::DropNoResource as usize] += 1;
                Counter::DropOverloaded
            }
            DropReason::TooBig => Counter::DropTooBig,
        })
    }
}

/// Per-burst counts, added to the shared counters once a burst ([`Tally::flush`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    counts: [u64; Counter::COUNT],
    malformed: [u64; shm_layout::MALFORMED_REASONS.len()],
}

impl Tally {
    /// Adds the counts to `c` (this worker's counters: it is their only writer) and starts
    /// again from zero.
    pub fn flush(&mut self, c: &LcoreCounters) {
        for (i, n) in self.counts.iter().enumerate() {
            if *n > 0 {
                LcoreCounters::bump(COUNTERS[i].of(c), *n);
            }
        }
        for (counter, &n) in c.drop_malformed.iter().zip(&self.malformed) {
            if n > 0 {
                LcoreCounters::bump(counter, n);
            }
        }
        *self = Tally::default();
    }
}

/// Every [`Counter`], in index order.
const COUNTERS: [Counter; Counter::COUNT] = [
    Counter::ArpReplies,
    Counter::IcmpEchoReplies,
    Counter::IcmpTimeExceeded,
    Counter::IcmpFragNeeded,
    Counter::FnatIn,
    Counter::FnatOut,
    Counter::DropRunt,
    Counter::DropNoConn,
    Counter::DropNoResource,
    Counter::DropAcl,
    Counter::DropOverloaded,
    Counter::DropTooBig,
    Counter::HandedNat,
    Counter::HandedPersistent,
    Counter::HandedRssMismatch,
    Counter::HandedNoRss,
    Counter::NdReplies,
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn counters_are_listed_at_their_index() {
        for (i, c) in COUNTERS.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }

    /// Every outcome against the counter it must move (and only that one), through a flush
    /// into real shared counters.
    #[test]
    fn every_outcome_bumps_its_counter() {
        type Field = fn(&LcoreCounters) -> &std::sync::atomic::AtomicU64;
        let redirect = |why| Action::Redirect { lcore: 1, why };
        let cases: [(Action, Option<Field>); 17] = [
            (Action::Forward(1), None),
            (redirect(Handoff::Nat), Some(|c| &c.handed_nat)),
            (redirect(Handoff::Persistent), Some(|c| &c.handed_persistent)),
            (redirect(Handoff::RssMismatch), Some(|c| &c.handed_rss_mismatch)),
            (redirect(Handoff::NoRss), Some(|c| &c.handed_no_rss)),
            (Action::Reply(Reply::Arp), Some(|c| &c.arp_replies)),
            (Action::Reply(Reply::IcmpEcho), Some(|c| &c.icmp_echo_replies)),
            (Action::Reply(Reply::Neighbor), Some(|c| &c.nd_replies)),
            (Action::Reply(Reply::TimeExceeded), Some(|c| &c.icmp_time_exceeded)),
            (Action::Reply(Reply::FragNeeded), Some(|c| &c.icmp_frag_needed)),
            (Action::Nat { port: 1, inbound: true, new: true }, Some(|c| &c.fnat_in)),
            (Action::Nat { port: 0, inbound: false, new: false }, Some(|c| &c.fnat_out)),
            (Action::Drop(DropReason::Runt), Some(|c| &c.drop_runt)),
            (Action::Drop(DropReason::NoConnection), Some(|c| &c.drop_no_conn)),
            (Action::Drop(DropReason::NoReal), Some(|c| &c.drop_no_resource)),
            (Action::Drop(DropReason::Denied), Some(|c| &c.drop_acl)),
            (Action::Drop(DropReason::TooBig), Some(|c| &c.drop_too_big)),
        ];
        for (action, field) in cases {
            let c = LcoreCounters::default();
            let mut t = Tally::default();
            action.count(&mut t);
            action.count(&mut t);
            t.flush(&c);
            let total: u64 = COUNTERS.iter().map(|k| k.of(&c).load(Relaxed)).sum();
            match field {
                Some(f) => assert_eq!((f(&c).load(Relaxed), total), (2, 2), "{action:?}"),
                None => assert_eq!(total, 0, "{action:?}"),
            }
            assert_eq!(t, Tally::default(), "a flush starts again from zero");
        }
    }

    #[test]
    fn an_overloaded_refusal_is_also_a_refusal_for_want_of_resources() {
        let c = LcoreCounters::default();
        let mut t = Tally::default();
        Action::Drop(DropReason::Overloaded).count(&mut t);
        Action::Drop(DropReason::NoResource).count(&mut t);
        t.flush(&c);
        assert_eq!((c.drop_overloaded.load(Relaxed), c.drop_no_resource.load(Relaxed)), (1, 2));
    }

    #[test]
    fn every_malformed_reason_has_its_own_counter() {
        for e in wire::Error::ALL {
            let c = LcoreCounters::default();
            let mut t = Tally::default();
            Action::Drop(DropReason::Malformed(e)).count(&mut t);
            t.flush(&c);
            let others: u64 = COUNTERS.iter().map(|k| k.of(&c).load(Relaxed)).sum();
            assert_eq!(others, 0, "{e:?} counts only by reason");
            let moved: Vec<usize> =
                (0..c.drop_malformed.len()).filter(|&i| c.drop_malformed[i].load(Relaxed) == 1).collect();
            assert_eq!(moved, [e.index()], "{e:?}");
            assert_eq!(shm_layout::MALFORMED_REASONS[e.index()], e.name(), "the name dpvsctl shows");
        }
    }
}
