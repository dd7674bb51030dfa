//! Owners and next hops of addresses over a runtime's interface addresses and routes, each
//! lookup in time independent of how many addresses there are (a cloud balancer carries tens of
//! thousands of VIPs, each an interface address).

use rustc_hash::FxHashMap as HashMap;
use std::net::Ipv4Addr;

use crate::{IfAddr, Route};

/// Lookups over `addresses` and `routes`, built once for many.
#[derive(Debug)]
pub struct Resolver<'a> {
    addresses: &'a [IfAddr],
    routes: &'a [Route],
    /// Each address's index.
    owners: HashMap<Ipv4Addr, usize>,
    /// The prefix lengths the addresses have, longest first.
    lens: Vec<u8>,
    /// The first address (in order) of each connected network (network, prefix length).
    networks: HashMap<(Ipv4Addr, u8), usize>,
}

impl<'a> Resolver<'a> {
    /// The lookups of `addresses` (the first of two equal ones wins) and `routes`.
    pub fn new(addresses: &'a [IfAddr], routes: &'a [Route]) -> Self {
        let mut owners = HashMap::with_capacity_and_hasher(addresses.len(), Default::default());
        let mut networks = HashMap::default();
        let mut lens = Vec::new();
        // Services are IPv4: their owners and next hops are among the IPv4 addresses.
        for (i, (a, v4)) in addresses.iter().enumerate().filter_map(|(i, a)| Some((i, (a, a.ipv4()?)))) {
            owners.entry(v4).or_insert(i);
            networks.entry((crate::network(v4, a.prefix), a.prefix)).or_insert(i);
            if !lens.contains(&a.prefix) {
                lens.push(a.prefix);
            }
        }
        lens.sort_unstable_by(|a, b| b.cmp(a));
        Resolver { addresses, routes, owners, lens, networks }
    }

    /// The interface address `addr`, if it is one.
    pub fn owner(&self, addr: Ipv4Addr) -> Option<&'a IfAddr> {
        self.owners.get(&addr).map(|&i| &self.addresses[i])
    }

    /// The first interface address (in order) whose connected network holds `addr`.
    pub fn connected(&self, addr: Ipv4Addr) -> Option<&'a IfAddr> {
        let first = self.lens.iter().filter_map(|&len| self.networks.get(&(crate::network(addr, len), len))).min()?;
        Some(&self.addresses[*first])
    }

    /// The next hop towards `addr`: itself on a connected network, else the gateway of the
    /// longest matching route.
    pub fn next_hop(&self, addr: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.connected(addr).is_some() {
            return Some(addr);
        }
        self.routes.iter().filter(|r| r.contains(addr)).max_by_key(|r| r.len).map(|r| r.via)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
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
        let routes = [Route { prefix: ip("192.0.2.0"), len: 24, via: ip("198.18.1.1") }];
        let r = Resolver::new(&addresses, &routes);
        for probe in ["198.18.0.5", "198.18.0.200", "198.18.1.9", "198.18.7.7", "10.9.9.9", "192.0.2.3", "203.0.113.1"]
        {
            let p = ip(probe);
            let scan =
                addresses.iter().find(|a| crate::network(a.ipv4().unwrap(), a.prefix) == crate::network(p, a.prefix));
            assert_eq!(r.connected(p), scan, "{probe}");
            assert_eq!(r.next_hop(p), crate::validate::next_hop(p, &addresses, &routes), "{probe}");
        }
        assert_eq!(r.owner(ip("198.18.0.7")).map(|a| a.port), Some(1));
        assert_eq!(r.owner(ip("198.18.0.8")), None);
    }
}
