//! The next hops of the real servers whose MAC ARP or neighbour discovery resolves: which are
//! wanted, learning answers into this worker's table in shared memory, and filling in the
//! real servers' MACs from every worker's merged tables (see `crate::neigh`). Not the packet
//! path, except [`Balancer::learn`] on ARP and neighbour discovery frames.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use wire::EthernetAddress;

use super::{Balancer, TICK_NS};
use crate::neigh::{Hops, Want};

impl<'a> Balancer<'a> {
    /// Learns neighbours into `table` (this worker's in shared memory), bumping `epoch` on a
    /// change.
    pub fn with_neighbours(mut self, table: &'a [shm_layout::LearnedNeighbour], epoch: &'a AtomicU64) -> Balancer<'a> {
        self.neigh = Some((table, epoch));
        self
    }

    /// Fills in the MACs of the real servers whose next hop ARP resolves, from `hops` (every
    /// worker's learned neighbours); a next hop no longer known leaves its real servers
    /// unresolved. Not the packet path.
    pub fn resolve(&mut self, hops: &Hops) {
        for s in &mut self.services {
            let mut changed = false;
            for r in s.reals.iter_mut().filter(|r| r.learned) {
                let known = hops.get(&r.hop).copied();
                let (mac, via, resolved) = known.map_or((r.mac, r.via, false), |(m, p)| (EthernetAddress(m), p, true));
                if (mac, via, resolved) != (r.mac, r.via, r.resolved) {
                    (r.mac, r.via, r.resolved) = (mac, via, resolved);
                    changed = true;
                }
            }
            if changed {
                s.refresh_availability();
            }
        }
        self.list_wants();
    }

    /// The next hops of the real servers that ARP resolves (each once), and whether each is
    /// resolved now.
    pub fn wanted(&self) -> &[(Want, bool)] {
        &self.wants
    }

    /// Lists the next hops ARP resolves again (after the services or their MACs changed),
    /// sorted by address, and how many real servers each one serves.
    pub(super) fn list_wants(&mut self) {
        self.wants.clear();
        self.want_refs.clear();
        for r in self.services.iter().flat_map(|s| &s.reals).filter(|r| r.learned) {
            *self.want_refs.entry(r.hop).or_default() += 1;
            self.wants.push((Want { hop: r.hop, port: r.via, src: r.hop_src }, r.resolved));
        }
        self.wants.sort_unstable_by_key(|(w, _)| w.hop);
        self.wants.dedup_by_key(|(w, _)| w.hop);
    }

    /// Adds the next hops of service `s`'s real servers that ARP resolves to the list (a
    /// service added or replaced).
    pub(super) fn want_hops_of(&mut self, s: &super::Service) {
        for r in s.reals.iter().filter(|r| r.learned) {
            let refs = self.want_refs.entry(r.hop).or_default();
            *refs += 1;
            if *refs == 1 {
                let at = self.wants.partition_point(|(w, _)| w.hop < r.hop);
                self.wants.insert(at, (Want { hop: r.hop, port: r.via, src: r.hop_src }, r.resolved));
            }
        }
    }

    /// Takes the next hops of service `s`'s real servers off the list, those no other real
    /// server needs (a service removed or replaced).
    pub(super) fn unwant_hops_of(&mut self, s: &super::Service) {
        for r in s.reals.iter().filter(|r| r.learned) {
            let Some(refs) = self.want_refs.get_mut(&r.hop) else { continue };
            *refs -= 1;
            if *refs == 0 {
                self.want_refs.remove(&r.hop);
                if let Ok(at) = self.wants.binary_search_by_key(&r.hop, |(w, _)| w.hop) {
                    self.wants.remove(at);
                }
            }
        }
    }

    /// An ARP request or reply, or a neighbour solicitation or advertisement, from `addr` at
    /// `mac`, received on port slot `port`: learned into this worker's table when `addr` is a
    /// next hop ARP or neighbour discovery resolves, reached on that port. Returns whether the
    /// table changed (the worker then resolves again).
    pub fn learn(&mut self, port: u16, addr: impl Into<IpAddr>, mac: EthernetAddress) -> bool {
        let addr = addr.into();
        let Some((table, epoch)) = self.neigh else { return false };
        if mac.0 == [0; 6] || mac.0[0] & 1 != 0 {
            return false;
        }
        // A binary search: ARP frames may come fast, and only wanted next hops are learned.
        let wanted = self.wants.binary_search_by_key(&addr, |(w, _)| w.hop).is_ok_and(|i| self.wants[i].0.port == port);
        wanted && crate::neigh::learn(table, epoch, addr, port, mac.0, self.now_tick * TICK_NS)
    }
}
