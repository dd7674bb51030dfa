//! Which lcore of a group receives a packet: each port's receive-side scaling (its Toeplitz
//! key and redirection table, in shared memory) mapped to the lcores that poll its queues.
//!
//! A Full-NAT connection is owned by the lcore that receives its client's packets, and its
//! local port is chosen so that the real server's replies are received there too (the reply's
//! hash is `fixed ^ part(local port)`, see [`rss::PortPicker`]): no packet of it crosses lcores.
//! Each lcore computes the same answer for a packet whatever queue it came in on, so a packet
//! that arrives elsewhere (a peer that does not apply a port's emulated RSS) still finds its
//! owner, handed over. IPv4 and IPv6 alike ([`RssAddr`]: their hashes take different inputs,
//! so each family has its tables and its local ports' picker).

use rss::{PortPicker, Reta, Toeplitz};

use super::LPORT_MIN;

/// A redirection table entry whose queue no lcore of the group polls.
const NOBODY: u16 = u16::MAX;

/// One port's RSS as one lcore of a group sees it.
#[derive(Debug, Clone)]
pub struct PortRss {
    v4: Family<4>,
    v6: Family<16>,
    mask: u32,
    /// The lcore (index in the group) polling the queue of each table entry, or [`NOBODY`].
    lcore_of: Box<[u16]>,
}

/// One port's RSS for one address family.
#[derive(Debug, Clone)]
struct Family<const A: usize> {
    hasher: rss::TupleHasher<A>,
    /// This lcore's choice of local ports whose replies arrive on it; `None` when some lcore
    /// of the group polls no queue of the table (replies cannot be placed on every lcore).
    picker: Option<PortPicker>,
}

impl<const A: usize> Family<A> {
    /// The tables of `key`, and a local-port picker when every lcore of the group has an entry
    /// of the table (`by_lcore`: the table's entries as lcores).
    fn new(key: &Toeplitz, by_lcore: Option<&Reta>) -> Family<A> {
        let hasher = rss::TupleHasher::new(key);
        let picker = by_lcore.map(|r| PortPicker::new(&hasher.dst_port_table(), r, LPORT_MIN..=u16::MAX));
        Family { hasher, picker }
    }
}

/// An address family whose packets RSS places: its address, and which of a port's tables hash
/// it.
pub trait RssAddr: Copy {
    /// The hash of a packet from `src:sport` to `dst:dport` under port `p`'s RSS.
    fn hash(p: &PortRss, src: Self, dst: Self, sport: u16, dport: u16) -> u32;
    /// Port `p`'s picker of local ports of this family, if it places replies.
    fn picker(p: &mut PortRss) -> Option<&mut PortPicker>;
}

impl RssAddr for [u8; 4] {
    #[inline]
    fn hash(p: &PortRss, src: Self, dst: Self, sport: u16, dport: u16) -> u32 {
        p.v4.hasher.hash(src, dst, sport, dport)
    }

    fn picker(p: &mut PortRss) -> Option<&mut PortPicker> {
        p.v4.picker.as_mut()
    }
}

impl RssAddr for [u8; 16] {
    #[inline]
    fn hash(p: &PortRss, src: Self, dst: Self, sport: u16, dport: u16) -> u32 {
        p.v6.hasher.hash(src, dst, sport, dport)
    }

    fn picker(p: &mut PortRss) -> Option<&mut PortPicker> {
        p.v6.picker.as_mut()
    }
}

/// The RSS of every port, for one lcore of a group.
#[derive(Debug, Clone)]
pub struct Receive {
    /// This lcore's index in its group.
    me: u16,
    /// The group's lcores.
    lcores: u16,
    /// By port slot; `None`: RSS unknown.
    ports: Vec<Option<PortRss>>,
}

/// One port's RSS, as shared memory describes it.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec<'s> {
    /// The Toeplitz key.
    pub key: [u8; rss::KEY_LEN],
    /// The redirection table (queues).
    pub reta: &'s [u16],
}

impl Receive {
    /// An lcore alone in its group: it receives everything.
    pub fn single() -> Receive {
        Receive { me: 0, lcores: 1, ports: Vec::new() }
    }

    /// Lcore `me` of `lcores`, over ports (by slot) of RSS `specs` (`None`: unknown), whose
    /// queue `q` of port slot `p` is polled by lcore `poller(p, q)` of the group.
    pub fn new<'s>(
        (me, lcores): (u16, u16),
        specs: impl IntoIterator<Item = Option<PortSpec<'s>>>,
        poller: impl Fn(u16, u16) -> Option<u16>,
    ) -> Receive {
        let ports = specs
            .into_iter()
            .enumerate()
            .map(|(slot, spec)| {
                let spec = spec?;
                let reta = Reta::new(spec.reta.to_vec()).ok()?;
                let lcore_of: Box<[u16]> = reta
                    .entries()
                    .iter()
                    .map(|&q| poller(slot as u16, q).filter(|&l| l < lcores).unwrap_or(NOBODY))
                    .collect();
                let key = Toeplitz::new(spec.key);
                let every = (0..lcores).all(|l| lcore_of.contains(&l));
                // Entries no lcore polls name one queue past the lcores: never picked.
                let by_lcore =
                    every.then(|| Reta::new(lcore_of.iter().map(|&l| l.min(lcores)).collect()).ok()).flatten();
                let (v4, v6) = (Family::new(&key, by_lcore.as_ref()), Family::new(&key, by_lcore.as_ref()));
                Some(PortRss { mask: (lcore_of.len() - 1) as u32, v4, v6, lcore_of })
            })
            .collect();
        Receive { me, lcores, ports }
    }

    /// This lcore's index in its group.
    #[inline]
    pub fn me(&self) -> u16 {
        self.me
    }

    /// The group's lcores.
    #[inline]
    pub fn lcores(&self) -> u16 {
        self.lcores
    }

    /// The lcore that port slot `port`'s RSS delivers a packet from `src:sport` to
    /// `dst:dport` (IPv4 or IPv6) to; `None` when the RSS is unknown or no lcore of the group
    /// polls that queue.
    #[inline]
    pub fn lcore<A: RssAddr>(&self, port: u16, (src, sport): (A, u16), (dst, dport): (A, u16)) -> Option<u16> {
        let p = self.ports.get(usize::from(port))?.as_ref()?;
        let l = p.lcore_of[(A::hash(p, src, dst, sport, dport) & p.mask) as usize];
        (l != NOBODY).then_some(l)
    }

    /// Whether port slot `port`'s RSS can deliver replies to every lcore of the group, so that
    /// each places the replies of its connections on itself ([`Receive::local_port`]): for
    /// both families, since it depends on the redirection table alone.
    #[inline]
    pub fn places_replies(&self, port: u16) -> bool {
        self.ports.get(usize::from(port)).is_some_and(|p| p.as_ref().is_some_and(|p| p.v4.picker.is_some()))
    }

    /// A local port for a connection from local address `laddr` to real server `rs:rport`
    /// reached through port slot `port`, whose replies that port's RSS delivers to this lcore,
    /// and for which `free` says yes (at most `tries` offered). `None`: none found, or the
    /// port does not place replies.
    pub fn local_port<A: RssAddr>(
        &mut self,
        port: u16,
        (rs, rport): (A, u16),
        laddr: A,
        tries: usize,
        free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let p = self.ports.get_mut(usize::from(port))?.as_mut()?;
        // The reply comes from rs:rport to laddr:lport: its hash is this part ^ part(lport).
        let fixed = A::hash(p, rs, laddr, rport, 0);
        A::picker(p)?.pick(self.me, fixed, tries, free)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// For key `key` and redirection table `reta` (of queues polled by `poller`'s lcores of a
    /// group of 2): every local port an lcore picks for replies from `rs:rport` to `laddr`
    /// brings them to that lcore, as every lcore computes it, and no port is given twice while
    /// it is taken.
    fn picked_ports_bring_replies_home<A: RssAddr + std::fmt::Debug>(
        key: [u8; rss::KEY_LEN],
        reta: &[u16],
        poller: &[Option<u16>],
        (rs, rport): (A, u16),
        laddr: A,
    ) -> Result<(), TestCaseError> {
        let spec = PortSpec { key, reta };
        let mut lcores: Vec<Receive> =
            (0..2).map(|me| Receive::new((me, 2), [Some(spec)], |_, q| poller[usize::from(q)])).collect();
        let places = lcores.iter().all(|r| r.places_replies(0));
        let polled: HashSet<u16> = reta.iter().filter_map(|&q| poller[usize::from(q)]).collect();
        prop_assert_eq!(places, polled.len() == 2, "replies are placed when every lcore polls a queue of the table");
        let mut taken = HashSet::new();
        for me in 0..2u16 {
            for _ in 0..200 {
                let free = |p: u16| !taken.contains(&p);
                let Some(port) = lcores[usize::from(me)].local_port(0, (rs, rport), laddr, 64, free) else {
                    prop_assert!(!places, "lcore {} found no port for {:?}", me, laddr);
                    break;
                };
                prop_assert!(port >= LPORT_MIN);
                prop_assert!(taken.insert(port), "port {} given twice", port);
                for other in &lcores {
                    prop_assert_eq!(other.lcore(0, (rs, rport), (laddr, port)), Some(me));
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For random keys, redirection tables (queues spread over the lcores of a group in any
        /// way, some queues polled by nobody) and real servers of either family: see
        /// [`picked_ports_bring_replies_home`].
        #[test]
        fn a_picked_port_brings_the_reply_to_the_lcore_that_picked_it(
            key in proptest::collection::vec(any::<u8>(), rss::KEY_LEN),
            reta_bits in 0u32..8,
            queues in 1u16..6,
            reta_seed in any::<u64>(),
            poller_seed in any::<u64>(),
            rs in any::<[u8; 16]>(),
            rport in any::<u16>(),
            laddr in any::<[u8; 16]>(),
        ) {
            let key: [u8; rss::KEY_LEN] = key.try_into().unwrap();
            let size = 1usize << reta_bits;
            let mix = |seed: u64, i: u64| (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xff51_afd7_ed55_8ccd) >> 40;
            let reta: Vec<u16> = (0..size as u64).map(|i| (mix(reta_seed, i) % u64::from(queues)) as u16).collect();
            // Queue q is polled by lcore poller[q] of 2, or by another group.
            let poller: Vec<Option<u16>> = (0..u64::from(queues))
                .map(|q| match mix(poller_seed, q) % 3 { 2 => None, l => Some(l as u16) })
                .collect();
            let four = |a: [u8; 16]| -> [u8; 4] { a[..4].try_into().unwrap() };
            picked_ports_bring_replies_home(key, &reta, &poller, (four(rs), rport), four(laddr))?;
            picked_ports_bring_replies_home(key, &reta, &poller, (rs, rport), laddr)?;
        }
    }

    #[test]
    fn a_port_of_unknown_rss_names_no_lcore_and_places_nothing() {
        let mut r = Receive::new((0, 2), [None], |_, _| Some(0));
        assert_eq!(r.lcore(0, ([198, 18, 0, 1], 1000), ([198, 18, 0, 100], 53)), None);
        assert!(!r.places_replies(0) && !r.places_replies(7));
        assert_eq!(r.local_port(0, ([198, 18, 1, 2], 53), [198, 18, 1, 254], 64, |_| true), None);
        assert_eq!(r.lcore(0, ([0x20; 16], 1000), ([0x21; 16], 53)), None);
        assert_eq!(r.local_port(0, ([0x20; 16], 53), [0x21; 16], 64, |_| true), None);
    }
}
