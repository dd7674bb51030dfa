//! Which queue each packet goes out on, and which lcore sends which flows.
//!
//! Flow `f` (of `--flows`) comes from source port `1024 + f % 64512` of address `--src + f /
//! 64512` (IPv4 or IPv6), to `--dst`. Its client packets go on one queue of the port towards the balancer:
//! under [`Steer::Rss`] the queue the balancer's emulated RSS gives the flow's tuple (what a NIC
//! with that key and redirection table would deliver it to), under [`Steer::Modulo`] queue
//! `f % queues` (a peer that does not apply RSS). Lcore `i` of `L` owns the queues `q` with
//! `q % L == i` on both ports, and so sends exactly the flows on those queues: [`split`] gives
//! every flow to exactly one lcore, the one that owns its queue.
//!
//! The sequence of packets is the one a single lcore sends: packet `k` (of `--count`) is flow
//! `k % flows`. Each lcore sends, in order, the packets of that sequence whose flow it owns
//! ([`shares`]), so `--count` keeps its meaning per flow (with `--count` equal to `--flows`,
//! every flow once) whatever the number of lcores.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Source ports per source address.
pub const PORTS_PER_ADDR: u32 = 64_512;

/// The source address and port of flow `flow`, the first flow's address being `base`.
pub fn flow_source(base: IpAddr, flow: u32) -> (IpAddr, u16) {
    let n = flow / PORTS_PER_ADDR;
    let src = match base {
        IpAddr::V4(b) => IpAddr::V4(Ipv4Addr::from(u32::from(b).wrapping_add(n))),
        IpAddr::V6(b) => IpAddr::V6(Ipv6Addr::from(u128::from(b).wrapping_add(u128::from(n)))),
    };
    (src, 1024 + (flow % PORTS_PER_ADDR) as u16)
}

/// The addresses and ports of a packet, as RSS hashes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// The tuple of flow `flow` from `base` (its first address) to `dst`.
    pub fn of_flow(base: IpAddr, dst: SocketAddr, flow: u32) -> Tuple {
        let (src, sport) = flow_source(base, flow);
        Tuple { src, dst: dst.ip(), sport, dport: dst.port() }
    }

    /// The tuple of the IPv4 (option-less header) or IPv6 (no extension header) TCP or UDP
    /// frame `f`, if it is long enough.
    pub fn of_frame(f: &[u8]) -> Option<Tuple> {
        let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        match f.get(12..14)? {
            [0x86, 0xdd] => {
                let b = f.get(22..58)?;
                let addr = |b: &[u8]| IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default());
                Some(Tuple { src: addr(&b[..16]), dst: addr(&b[16..32]), sport: port(&b[32..]), dport: port(&b[34..]) })
            }
            _ => {
                let b = f.get(26..38)?;
                Some(Tuple {
                    src: IpAddr::from([b[0], b[1], b[2], b[3]]),
                    dst: IpAddr::from([b[4], b[5], b[6], b[7]]),
                    sport: port(&b[8..]),
                    dport: port(&b[10..]),
                })
            }
        }
    }
}

/// How a packet's queue is chosen.
#[derive(Debug, Clone)]
pub enum Steer {
    /// Flow `f` on queue `f % queues`; answers on the queue their cause arrived on.
    Modulo {
        /// Queue pairs per port.
        queues: u16,
    },
    /// Every packet, flows and answers, on the queue the RSS of its own tuple gives.
    Rss {
        /// The Toeplitz hash of IPv4 tuples under the balancer's key, by table.
        v4: rss::Ipv4Hasher,
        /// The same of IPv6 tuples.
        v6: rss::Ipv6Hasher,
        /// The balancer's redirection table.
        reta: rss::Reta,
    },
}

impl Steer {
    /// The RSS of key `key` and a round-robin redirection table of `reta_size` entries over
    /// `queues` queues.
    ///
    /// # Errors
    /// When `reta_size` is not a power of two from 1 to 65536.
    pub fn rss(key: [u8; rss::KEY_LEN], reta_size: usize, queues: u16) -> Result<Steer, rss::RetaError> {
        let reta = rss::Reta::round_robin(reta_size, queues)?;
        let key = rss::Toeplitz::new(key);
        Ok(Steer::Rss { v4: rss::Ipv4Hasher::new(&key), v6: rss::Ipv6Hasher::new(&key), reta })
    }

    /// The queue of flow `flow`, whose tuple is `t`.
    #[inline]
    pub fn flow_queue(&self, flow: u32, t: Tuple) -> u16 {
        match self {
            Steer::Modulo { queues } => (flow % u32::from(*queues)) as u16,
            Steer::Rss { .. } => self.answer_queue(t).unwrap_or(0),
        }
    }

    /// The queue of an answer whose tuple is `t`; `None` under `Modulo` (the queue its cause
    /// arrived on), or for addresses of two families.
    #[inline]
    pub fn answer_queue(&self, t: Tuple) -> Option<u16> {
        let Steer::Rss { v4, v6, reta } = self else { return None };
        let hash = match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => v4.hash(s.octets(), d.octets(), t.sport, t.dport),
            (IpAddr::V6(s), IpAddr::V6(d)) => v6.hash(s.octets(), d.octets(), t.sport, t.dport),
            _ => return None,
        };
        Some(reta.queue(hash))
    }
}

/// The flows one lcore sends, in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnFlows {
    /// Every flow `0..n` (a single lcore: nothing stored).
    All(u32),
    /// These (4 bytes a flow).
    List(Vec<u32>),
}

impl OwnFlows {
    /// How many.
    pub fn len(&self) -> u32 {
        match self {
            OwnFlows::All(n) => *n,
            OwnFlows::List(v) => v.len() as u32,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flow of this lcore's packet `j`: its flows round robin.
    ///
    /// # Panics
    /// When there are none.
    #[inline]
    pub fn flow(&self, j: u64) -> u32 {
        match self {
            OwnFlows::All(n) => (j % u64::from(*n)) as u32,
            OwnFlows::List(v) => v[(j % v.len() as u64) as usize],
        }
    }

    /// How many of them are below `n`.
    pub fn below(&self, n: u32) -> u32 {
        match self {
            OwnFlows::All(m) => n.min(*m),
            OwnFlows::List(v) => v.partition_point(|&f| f < n) as u32,
        }
    }
}

/// The flows of each of `lcores` lcores: those whose queue (under `steer`, flows `0..flows`
/// from `base` to `dst`) the lcore owns (queue `q` belongs to lcore `q % lcores`).
pub fn split(steer: &Steer, (base, dst): (IpAddr, SocketAddr), flows: u32, lcores: u16) -> Vec<OwnFlows> {
    if lcores <= 1 {
        return vec![OwnFlows::All(flows)];
    }
    let mut lists = vec![Vec::new(); usize::from(lcores)];
    for f in 0..flows {
        let q = steer.flow_queue(f, Tuple::of_flow(base, dst, f));
        lists[usize::from(q % lcores)].push(f);
    }
    lists.into_iter().map(OwnFlows::List).collect()
}

/// What one lcore sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Its flows.
    pub flows: OwnFlows,
    /// Its packets (`None`: until stopped).
    pub limit: Option<u64>,
    /// Its packets per second (0: as fast as its queues take them).
    pub rate: u64,
}

/// Each lcore's share of `count` packets (0: until stopped) at `rate` packets per second (0:
/// flat out) over `flows` flows, split as `split` gave the flows: an lcore sends the packets
/// of the single-lcore sequence whose flow it owns, and its part of the rate in proportion to
/// its packets (its flows when there is no count), at least 1 per second if it sends at all,
/// so that every lcore finishes together and every flow gets the same rate.
pub fn shares(split: Vec<OwnFlows>, flows: u32, count: u64, rate: u64) -> Vec<Share> {
    let flows = u64::from(flows.max(1));
    let limits: Vec<Option<u64>> = split
        .iter()
        .map(|own| {
            (count > 0).then(|| count / flows * u64::from(own.len()) + u64::from(own.below((count % flows) as u32)))
        })
        .collect();
    let weights: Vec<u64> = split.iter().zip(&limits).map(|(own, l)| l.unwrap_or(u64::from(own.len()))).collect();
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum::<u128>().max(1);
    let mut before = 0u128;
    let rates = weights.iter().map(|&w| {
        let lo = u128::from(rate) * before / total;
        before += u128::from(w);
        let r = (u128::from(rate) * before / total - lo) as u64;
        if rate > 0 && w > 0 {
            r.max(1)
        } else {
            r
        }
    });
    let rates: Vec<u64> = rates.collect();
    split.into_iter().zip(limits).zip(rates).map(|((flows, limit), rate)| Share { flows, limit, rate }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const DST: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 53));
    const BASE6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1));

    /// The octets of an IPv4 address.
    fn v4(a: IpAddr) -> [u8; 4] {
        match a {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => panic!("IPv4 expected"),
        }
    }

    fn rss(queues: u16) -> Steer {
        Steer::rss(rss::MS_KEY, rss::DEFAULT_RETA_SIZE, queues).unwrap()
    }

    /// Under RSS a flow's queue is the one the redirection table gives its Toeplitz hash.
    #[test]
    fn an_rss_flow_goes_on_the_queue_of_its_hash() {
        let t = rss::Toeplitz::new(rss::MS_KEY);
        for queues in [1, 2, 3, 4, 16] {
            let steer = rss(queues);
            let reta = rss::Reta::round_robin(rss::DEFAULT_RETA_SIZE, queues).unwrap();
            for flow in [0, 1, 2, 1000, 64_511, 64_512, 1_000_000] {
                let (src, sport) = flow_source(BASE, flow);
                let want = reta.queue(t.ipv4(v4(src), v4(DST.ip()), sport, DST.port()));
                assert_eq!(
                    steer.flow_queue(flow, Tuple::of_flow(BASE, DST, flow)),
                    want,
                    "flow {flow}, {queues} queues"
                );
            }
        }
        // One of Microsoft's verification tuples, whose hash is 0x51ccc178: RETA entry 0x78
        // (120), queue 120 % 4.
        let ms = Tuple { src: [66, 9, 149, 187].into(), dst: [161, 142, 100, 80].into(), sport: 2794, dport: 1766 };
        assert_eq!(rss(4).answer_queue(ms), Some(0));
        assert_eq!(rss(3).answer_queue(ms), Some(0));
        assert_eq!(rss(7).answer_queue(ms), Some(120 % 7));
        // Another key, another table size.
        let key = [0x3c; rss::KEY_LEN];
        let steer = Steer::rss(key, 64, 5).unwrap();
        let reta = rss::Reta::round_robin(64, 5).unwrap();
        let hash = rss::Toeplitz::new(key).ipv4(v4(ms.src), v4(ms.dst), 2794, 1766);
        assert_eq!(steer.answer_queue(ms), Some(reta.queue(hash)));
        assert!(Steer::rss(key, 100, 5).is_err());
    }

    /// IPv6 flows from consecutive addresses, steered by the IPv6 hash: Microsoft's first IPv6
    /// vector hashes to 0x40207d3d, RETA entry 0x3d (61).
    #[test]
    fn ipv6_flows_are_steered_by_the_ipv6_hash() {
        assert_eq!(flow_source(BASE6, 64_512 * 3 + 5), ("2001:db8:c::4".parse().unwrap(), 1029));
        let ms = Tuple {
            src: "3ffe:2501:200:1fff::7".parse().unwrap(),
            dst: "3ffe:2501:200:3::1".parse().unwrap(),
            sport: 2794,
            dport: 1766,
        };
        assert_eq!(rss(4).answer_queue(ms), Some(61 % 4));
        assert_eq!(rss(3).answer_queue(ms), Some(61 % 3));
        // Two families: no hash.
        assert_eq!(rss(4).answer_queue(Tuple { dst: DST.ip(), ..ms }), None);
        let dst6: SocketAddr = "[2001:db8::100]:53".parse().unwrap();
        let own = split(&rss(2), (BASE6, dst6), 1000, 2);
        assert!(own.iter().all(|o| o.len() > 300), "RSS spreads IPv6 flows: {own:?}");
    }

    /// Modulo is what one lcore always did: packet k is flow k % flows, on queue flow % queues.
    #[test]
    fn modulo_sends_flow_f_on_queue_f_mod_queues() {
        let steer = Steer::Modulo { queues: 3 };
        let own = split(&steer, (BASE, DST), 10, 1);
        assert_eq!(own, vec![OwnFlows::All(10)]);
        for k in 0..50u64 {
            let f = own[0].flow(k);
            assert_eq!(f, (k % 10) as u32);
            assert_eq!(steer.flow_queue(f, Tuple::of_flow(BASE, DST, f)), (k % 10 % 3) as u16);
        }
        // Answers stay on the queue they came from.
        assert_eq!(steer.answer_queue(Tuple::of_flow(BASE, DST, 0)), None);
    }

    /// Every flow is sent by exactly one lcore, the one that owns its queue, in order.
    #[test]
    fn the_split_gives_every_flow_to_the_lcore_of_its_queue_once() {
        for steer in [rss(2), rss(4), rss(16), Steer::Modulo { queues: 4 }, Steer::Modulo { queues: 6 }] {
            let queues = match &steer {
                Steer::Modulo { queues } => *queues,
                Steer::Rss { reta, .. } => reta.entries().iter().max().map_or(1, |m| m + 1),
            };
            for lcores in (1..=queues).filter(|l| *l <= 4) {
                for flows in [1, 5, 1000, 70_000] {
                    let own = split(&steer, (BASE, DST), flows, lcores);
                    assert_eq!(own.len(), usize::from(lcores));
                    let mut seen = vec![0u8; flows as usize];
                    for (i, o) in own.iter().enumerate() {
                        let mut last = None;
                        for j in 0..u64::from(o.len()) {
                            let f = o.flow(j);
                            assert!(last < Some(f), "increasing");
                            last = Some(f);
                            seen[f as usize] += 1;
                            let q = steer.flow_queue(f, Tuple::of_flow(BASE, DST, f));
                            assert_eq!(usize::from(q % lcores), i, "flow {f} on queue {q}");
                        }
                    }
                    assert!(seen.iter().all(|&n| n == 1), "{lcores} lcores, {flows} flows: {steer:?}");
                }
            }
        }
    }

    /// The lcores' packets are the single-lcore sequence's, each flow as often as there.
    #[test]
    fn shares_split_the_count_by_flow_and_the_rate_by_packets() {
        let own = split(&rss(4), (BASE, DST), 1000, 4);
        for count in [0u64, 1, 999, 1000, 1001, 2500, 1_000_000] {
            let s = shares(own.clone(), 1000, count, 1_000_000);
            if count == 0 {
                assert!(s.iter().all(|s| s.limit.is_none()));
                let per_flow: Vec<f64> = s.iter().map(|s| s.rate as f64 / f64::from(s.flows.len())).collect();
                assert!(per_flow.iter().all(|r| (r - 1000.0).abs() < 1.0), "{per_flow:?}");
            } else {
                assert_eq!(s.iter().map(|s| s.limit.unwrap()).sum::<u64>(), count);
                // Each lcore's packets: those of the single-lcore sequence (packet k is flow
                // k % 1000) whose flow it owns.
                let mut owner = vec![usize::MAX; 1000];
                for (i, sh) in s.iter().enumerate() {
                    (0..u64::from(sh.flows.len())).for_each(|j| owner[sh.flows.flow(j) as usize] = i);
                }
                let mut want = vec![0u64; s.len()];
                (0..count).for_each(|k| want[owner[(k % 1000) as usize]] += 1);
                assert_eq!(s.iter().map(|s| s.limit.unwrap()).collect::<Vec<_>>(), want, "{count}");
            }
            let total: u64 = s.iter().map(|s| s.rate).sum();
            assert!(total.abs_diff(1_000_000) <= 4, "{total}");
        }
        // An lcore without flows sends nothing; one that sends gets some rate.
        let s = shares(vec![OwnFlows::List(vec![0]), OwnFlows::List(vec![])], 1, 10, 1);
        assert_eq!((s[0].limit, s[0].rate, s[1].limit, s[1].rate), (Some(10), 1, Some(0), 0));
        // Flat out stays flat out.
        assert!(shares(own, 1000, 0, 0).iter().all(|s| s.rate == 0));
    }
}
