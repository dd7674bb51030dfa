//! Owners and next hops of addresses over a runtime's interface addresses and routes, each
//! lookup in time independent of how many addresses there are (a cloud balancer carries tens of
//! thousands of VIPs, each an interface address).

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

use crate::{IfAddr, Route};

/// Lookups over `addresses` and `routes`, built once for many.
#[derive(Debug)]
pub struct Resolver<'a> {
    addresses: &'a [IfAddr],
    routes: &'a [Route],
    /// Each address's index.
    owners: HashMap<IpAddr, usize>,
    /// The prefix lengths the addresses of each family have, longest first: IPv4's, IPv6's.
    lens: [Vec<u8>; 2],
    /// The first address (in order) of each connected network (network, prefix length).
    networks: HashMap<(IpAddr, u8), usize>,
}

/// Index of `a`'s family in [`Resolver::lens`].
fn family(a: IpAddr) -> usize {
    usize::from(a.is_ipv6())
}

impl<'a> Resolver<'a> {
    /// The lookups of `addresses` (the first of two equal ones wins) and `routes`.
    pub fn new(addresses: &'a [IfAddr], routes: &'a [Route]) -> Self {
        let mut owners = HashMap::with_capacity_and_hasher(addresses.len(), Default::default());
        let mut networks = HashMap::default();
        let mut lens: [Vec<u8>; 2] = Default::default();
        for (i, a) in addresses.iter().enumerate() {
            owners.entry(a.addr).or_insert(i);
            networks.entry((crate::network_of(a.addr, a.prefix), a.prefix)).or_insert(i);
            let lens = &mut lens[family(a.addr)];
            if !lens.contains(&a.prefix) {
                lens.push(a.prefix);
            }
        }
        for l in &mut lens {
            l.sort_unstable_by(|a, b| b.cmp(a));
        }
        Resolver { addresses, routes, owners, lens, networks }
    }

    /// The interface address `addr`, if it is one.
    pub fn owner(&self, addr: impl Into<IpAddr>) -> Option<&'a IfAddr> {
        self.owners.get(&addr.into()).map(|&i| &self.addresses[i])
    }

    /// The port a virtual address's packets arrive on: the port that has it, else the port
    /// on whose network it is (a VIP that a VRRP backup does not hold, or that only the
    /// upstream router's static route or ARP entry names: nothing answers ARP for it).
    pub fn vip_port(&self, vip: impl Into<IpAddr>) -> Option<usize> {
        let vip = vip.into();
        self.owner(vip).or_else(|| self.connected(vip)).map(|a| a.port)
    }

    /// The first interface address (in order) whose connected network holds `addr`.
    pub fn connected(&self, addr: impl Into<IpAddr>) -> Option<&'a IfAddr> {
        let addr = addr.into();
        let first = self.lens[family(addr)]
            .iter()
            .filter_map(|&len| self.networks.get(&(crate::network_of(addr, len), len)))
            .min()?;
        Some(&self.addresses[*first])
    }

    /// The next hop towards `addr`: itself on a connected network, else the gateway of the
    /// longest matching route of its family.
    pub fn next_hop(&self, addr: impl Into<IpAddr>) -> Option<IpAddr> {
        let addr = addr.into();
        if self.connected(addr).is_some() {
            return Some(addr);
        }
        self.routes.iter().filter(|r| r.contains(addr)).max_by_key(|r| r.len).map(|r| r.via)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> std::net::Ipv4Addr {
        s.parse().unwrap()
    }

    fn addr(port: usize, a: &str, prefix: u8) -> IfAddr {
        IfAddr { port, addr: ip(a).into(), prefix, sapool: false }
    }

    /// The same answers as a scan of the addresses in order: the first whose network holds
    /// the address, whatever the prefix lengths.
    #[test]
    fn lookups_answer_as_a_scan_in_order_does() {
        let addresses = [
            addr(0, "198.18.0.100", 24),
            addr(0, "198.18.0.200", 32),
            addr(1, "198.18.1.254", 24),
            addr(1, "198.18.0.7", 16),
            addr(2, "10.0.0.1", 8),
        ];
        let routes = [Route { prefix: ip("192.0.2.0").into(), len: 24, via: ip("198.18.1.1").into() }];
        let r = Resolver::new(&addresses, &routes);
        for probe in ["198.18.0.5", "198.18.0.200", "198.18.1.9", "198.18.7.7", "10.9.9.9", "192.0.2.3", "203.0.113.1"]
        {
            let p = ip(probe);
            let scan =
                addresses.iter().find(|a| crate::network(a.ipv4().unwrap(), a.prefix) == crate::network(p, a.prefix));
            assert_eq!(r.connected(p), scan, "{probe}");
            assert_eq!(r.next_hop(p), crate::validate::next_hop(p.into(), &addresses, &routes), "{probe}");
        }
        assert_eq!(r.owner(ip("198.18.0.7")).map(|a| a.port), Some(1));
        assert_eq!(r.owner(ip("198.18.0.8")), None);
    }

    /// IPv6 addresses are looked up among the IPv6 ones only, on connected networks.
    #[test]
    fn ipv6_lookups_stay_in_their_family() {
        let v6 = |port, a: &str, prefix| IfAddr { port, addr: a.parse().unwrap(), prefix, sapool: false };
        let addresses = [addr(0, "198.18.0.100", 0), v6(1, "2001:db8::1", 64), v6(2, "2001:db8:1::1", 48)];
        let a6 = |a: &str| a.parse::<std::net::Ipv6Addr>().unwrap();
        let routes = [
            Route { prefix: a6("2001:db8:2::").into(), len: 48, via: a6("2001:db8::7").into() },
            Route { prefix: a6("2001:db8:2:5::").into(), len: 64, via: a6("2001:db8::8").into() },
            Route { prefix: ip("0.0.0.0").into(), len: 0, via: ip("198.18.0.1").into() },
        ];
        let r = Resolver::new(&addresses, &routes);
        assert_eq!(r.next_hop(a6("2001:db8:2:1::9")), Some(a6("2001:db8::7").into()), "the /48");
        assert_eq!(r.next_hop(a6("2001:db8:2:5::9")), Some(a6("2001:db8::8").into()), "the longer /64");
        assert_eq!(r.connected(a6("2001:db8::99")).map(|a| a.port), Some(1));
        assert_eq!(r.connected(a6("2001:db8:1:5::9")).map(|a| a.port), Some(2));
        assert_eq!(r.connected(a6("2001:db9::1")), None, "the IPv4 default network holds no IPv6 address");
        assert_eq!(r.next_hop(a6("2001:db8::99")), Some(a6("2001:db8::99").into()));
        assert_eq!(r.next_hop(a6("2001:db9::1")), None, "the IPv4 default route takes no IPv6 address");
        assert_eq!(r.owner(a6("2001:db8::1")).map(|a| a.port), Some(1));
        assert_eq!(r.connected(ip("203.0.113.9")).map(|a| a.port), Some(0));
    }
}
