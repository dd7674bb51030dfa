//! The DPVS schedulers (`rr`, `wrr`, `wlc`, `lc`, `conhash`, `fo`, `mh`) as pure functions of a
//! backend slice and a flow key.
//!
//! A service's backends are a slice of [`Backend`]s owned by the caller; a [`Scheduler`] is
//! built from a [`Kind`] and that slice (plus one identity key per backend for the hashing
//! schedulers), and [`Scheduler::pick`] returns the index of the backend for a new connection,
//! or `None` when no backend can take one. The connection table, persistence templates and
//! the counters in [`Backend`] are the caller's; this crate only decides.
//!
//! Invariants:
//! - A pick returns only the index of a backend with `available` set and `weight > 0`, read from
//!   the slice passed to that pick. Weight 0 is LVS's quiescent state: the backend keeps its
//!   connections but gets no new ones. `available = false` is a backend that is down or being
//!   removed.
//! - [`Scheduler::pick`] never allocates, never panics and never blocks; building and updating
//!   (the control path) allocate.
//! - The slice passed to `pick` is the one the scheduler was last built or updated with, with
//!   live changes to connection counts, and to weights and availability between updates. After
//!   the backend set, a weight or an availability changes, the control path calls
//!   [`Scheduler::update`] (as LVS calls `update_service`); until then `rr`/`lc`/`wlc`/`fo` are
//!   exact, `wrr` keeps its old weight steps, and `conhash`/`mh` keep their placement but
//!   return `None` for flows that land on a backend that can no longer take connections (DPVS
//!   without `mh-fallback`). A shorter slice is safe: out-of-range indices are never returned.
//! - `conhash` and `mh` place each backend by its identity key (for example [`identity`] of
//!   its address and port), never by its slice index or slice order, and hash with fixed-key
//!   SipHash-1-3 ([`hash`]), so every worker, process and machine given the same set of
//!   (identity, weight) pairs builds the same ring or table, and adding or removing one
//!   backend moves few flows between the others.
//! - Cost of a pick: `mh` one hash and one load; `conhash` one hash and a binary search;
//!   `rr` and `wrr` one step per backend skipped, O(n) at worst; `lc`, `wlc`, `fo` O(n).
//!
//! Semantics follow DPVS (`src/ipvs/ip_vs_*.c`) and kernel LVS; each module cites its source.
//! `lc` is kernel LVS's (DPVS does not register it).
//!
//! Not here: DPVS's `mh-fallback` (re-hash when the chosen backend is down) and `conhash`'s
//! QUIC connection-id target; LVS's other schedulers (`sh`, `dh`, `sed`, `nq`, `lblc`,
//! `lblcr`, `ovf`, `twos`); connection thresholds (fold an overloaded backend into
//! `available = false`); persistence templates and the connection table.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conhash;
pub mod hash;
mod kind;
mod least;
pub mod maglev;
mod rr;

use std::net::{IpAddr, SocketAddr};

pub use conhash::ConhashRing;
pub use kind::{ConhashBy, Kind, MhParams, ParseKindError};
pub use maglev::MaglevTable;

use hash::{ip_bytes, SipHasher13, FLOW_KEY};

/// One backend (LVS "real server", DPVS `dp_vs_dest`) as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Backend {
    /// Relative weight; 0 is quiescent: never picked for a new connection.
    pub weight: u32,
    /// Connections in ESTABLISHED (LVS `activeconns`).
    pub active_conns: u32,
    /// Connections in any other state (LVS `inactconns`).
    pub inactive_conns: u32,
    /// False when the backend is down or being removed: never picked.
    pub available: bool,
}

impl Backend {
    /// An available backend with `weight` and no connections.
    pub const fn new(weight: u32) -> Self {
        Self { weight, active_conns: 0, inactive_conns: 0, available: true }
    }

    /// Whether the backend can be picked for a new connection: available and weight > 0
    /// (DPVS `dp_vs_dest_is_valid`, less the overload flag, which the caller folds into
    /// `available`).
    #[inline]
    pub const fn can_take_new(&self) -> bool {
        self.available && self.weight > 0
    }
}

/// The flow a new connection belongs to, as the hashing schedulers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address.
    pub src: IpAddr,
    /// Virtual (service) address.
    pub dst: IpAddr,
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// Service port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// IP protocol numbers whose first four transport bytes are the source and destination ports.
const fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132) // TCP, UDP, SCTP
}

impl FlowKey {
    /// Hash of the source address, and of the source port if `with_port` and the protocol has
    /// ports (TCP, UDP, SCTP; DPVS `dp_vs_mh_get_port` reads no port for the others).
    /// IPv4 hashes as its IPv4-mapped IPv6 form. Stable across processes and releases.
    #[inline]
    pub fn source_hash(&self, with_port: bool) -> u64 {
        let mut h = SipHasher13::new(FLOW_KEY);
        h.write(&ip_bytes(self.src));
        if with_port {
            let port = if has_ports(self.proto) { self.src_port } else { 0 };
            h.write(&port.to_be_bytes());
        }
        h.finish()
    }

    /// Hash of source and destination address and port and the protocol. Stable across
    /// processes and releases.
    #[inline]
    pub fn five_tuple_hash(&self) -> u64 {
        let mut buf = [0u8; 37];
        buf[..16].copy_from_slice(&ip_bytes(self.src));
        buf[16..32].copy_from_slice(&ip_bytes(self.dst));
        buf[32..34].copy_from_slice(&self.src_port.to_be_bytes());
        buf[34..36].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[36] = self.proto;
        hash::sip13(FLOW_KEY, &buf)
    }
}

/// A stable identity key for a backend at `addr`: the address as 16 bytes (IPv4 as
/// IPv4-mapped IPv6) followed by the port, big-endian. Pass these to
/// [`Scheduler::with_ids`]; any other byte strings that are unique within the service and
/// stable across restarts work as well.
pub fn identity(addr: SocketAddr) -> [u8; 18] {
    let mut id = [0u8; 18];
    id[..16].copy_from_slice(&ip_bytes(addr.ip()));
    id[16..].copy_from_slice(&addr.port().to_be_bytes());
    id
}

/// Why a scheduler could not be built or updated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `conhash` and `mh` place backends by identity and were given no identity keys.
    #[error("scheduler `{kind}` places backends by identity: build it with one identity key per backend")]
    IdentityRequired {
        /// The scheduler's name.
        kind: &'static str,
    },
    /// The number of identity keys differs from the number of backends.
    #[error("{ids} identity keys for {backends} backends: expected one per backend")]
    IdentityCount {
        /// Backends given.
        backends: usize,
        /// Identity keys given.
        ids: usize,
    },
    /// Two backends have the same identity key, so a hashing scheduler could not tell them apart.
    #[error("backends {first} and {second} have the same identity key")]
    DuplicateIdentity {
        /// Lower index of the pair.
        first: usize,
        /// Higher index of the pair.
        second: usize,
    },
    /// The `mh` table size is not a prime number.
    #[error("mh table size {0} is not prime (try 65537, 131071 or 655373)")]
    TableSizeNotPrime(u32),
    /// The `mh` table size is not larger than the number of backends.
    #[error("mh table size {size} must be larger than the number of backends ({backends})")]
    TableTooSmall {
        /// The table size given.
        size: u32,
        /// Backends given.
        backends: usize,
    },
    /// The `mh` table size is above [`maglev::MAX_TABLE_SIZE`].
    #[error("mh table size {size} is above the limit of {max}")]
    TableTooLarge {
        /// The table size given.
        size: u32,
        /// [`maglev::MAX_TABLE_SIZE`].
        max: u32,
    },
    /// More backends than a `u32` index can name.
    #[error("{0} backends: at most {max} are supported", max = MAX_BACKENDS)]
    TooManyBackends(usize),
}

/// Most backends one scheduler accepts (indices are stored as `u32`, with `u32::MAX` reserved).
pub const MAX_BACKENDS: usize = u32::MAX as usize - 1;

/// A scheduler for one service: the algorithm and whatever it keeps between picks.
///
/// Meant to be owned by one worker (`pick` takes `&mut self`): each worker builds its own copy,
/// and since construction is deterministic every copy of a `conhash` ring or `mh` table is
/// identical. `rr`/`wrr` positions are per copy.
#[derive(Debug, Clone)]
pub struct Scheduler {
    kind: Kind,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Rr(rr::Rr),
    Wrr(rr::Wrr),
    Lc,
    Wlc,
    Fo,
    Conhash(ConhashRing),
    Mh(MaglevTable),
}

impl Scheduler {
    /// Builds a scheduler that needs no identity keys (`rr`, `wrr`, `wlc`, `lc`, `fo`).
    ///
    /// # Errors
    /// [`BuildError::IdentityRequired`] for `conhash` and `mh` (use [`Scheduler::with_ids`]);
    /// [`BuildError::TooManyBackends`].
    pub fn new(kind: Kind, backends: &[Backend]) -> Result<Self, BuildError> {
        if kind.needs_identity() {
            return Err(BuildError::IdentityRequired { kind: kind.name() });
        }
        Self::with_ids::<&[u8]>(kind, backends, &[])
    }

    /// Builds any scheduler. `ids[i]` is backend `i`'s identity key: unique within the service
    /// and stable across restarts and machines (see [`identity`]). Only `conhash` and `mh` use
    /// the keys; the others accept them, or an empty slice, and ignore them.
    ///
    /// # Errors
    /// [`BuildError::IdentityCount`] if `ids` is neither empty (for a kind that needs no
    /// identity) nor one per backend; [`BuildError::DuplicateIdentity`] (hashing kinds);
    /// for `mh`, [`BuildError::TableSizeNotPrime`], [`BuildError::TableTooSmall`],
    /// [`BuildError::TableTooLarge`]; [`BuildError::TooManyBackends`].
    pub fn with_ids<K: AsRef<[u8]>>(kind: Kind, backends: &[Backend], ids: &[K]) -> Result<Self, BuildError> {
        validate(kind, backends, ids)?;
        Ok(Self { kind, state: Self::fresh_state(kind, backends, ids) })
    }

    fn fresh_state<K: AsRef<[u8]>>(kind: Kind, backends: &[Backend], ids: &[K]) -> State {
        match kind {
            Kind::Rr => State::Rr(rr::Rr::new()),
            Kind::Wrr => State::Wrr(rr::Wrr::new(backends)),
            Kind::Lc => State::Lc,
            Kind::Wlc => State::Wlc,
            Kind::Fo => State::Fo,
            Kind::Conhash(_) => State::Conhash(ConhashRing::build(backends, ids)),
            Kind::Mh(p) => State::Mh(MaglevTable::build(backends, ids, p.table_size)),
        }
    }

    /// Takes a changed backend set, weight or availability into account (LVS
    /// `update_service`). `rr` starts again from the first backend and `wrr` from the first
    /// backend of its current round, as in DPVS; `conhash` and `mh` are rebuilt. On error the
    /// scheduler is unchanged.
    ///
    /// # Errors
    /// As [`Scheduler::new`].
    pub fn update(&mut self, backends: &[Backend]) -> Result<(), BuildError> {
        if self.kind.needs_identity() {
            return Err(BuildError::IdentityRequired { kind: self.kind.name() });
        }
        self.update_with_ids::<&[u8]>(backends, &[])
    }

    /// As [`Scheduler::update`], with identity keys as for [`Scheduler::with_ids`].
    ///
    /// # Errors
    /// As [`Scheduler::with_ids`].
    pub fn update_with_ids<K: AsRef<[u8]>>(&mut self, backends: &[Backend], ids: &[K]) -> Result<(), BuildError> {
        validate(self.kind, backends, ids)?;
        self.apply(backends, ids);
        Ok(())
    }

    fn apply<K: AsRef<[u8]>>(&mut self, backends: &[Backend], ids: &[K]) {
        match &mut self.state {
            State::Rr(r) => *r = rr::Rr::new(),
            State::Wrr(w) => w.update(backends),
            _ => self.state = Self::fresh_state(self.kind, backends, ids),
        }
    }

    /// The backend for a new connection of flow `key`, as an index into `backends`, or `None`
    /// when none can take it. Never allocates. `rr` and `wrr` advance their position;
    /// `lc`, `wlc` and `fo` read the live counts and weights; `conhash` and `mh` hash `key`
    /// (the others ignore it).
    #[inline]
    pub fn pick(&mut self, backends: &[Backend], key: &FlowKey) -> Option<usize> {
        let found = match &mut self.state {
            State::Rr(r) => r.pick(backends),
            State::Wrr(w) => w.pick(backends),
            State::Lc => least::lc(backends),
            State::Wlc => least::wlc(backends),
            State::Fo => least::fo(backends),
            State::Conhash(ring) => {
                let h = match self.kind {
                    Kind::Conhash(ConhashBy::FiveTuple) => key.five_tuple_hash(),
                    _ => key.source_hash(false),
                };
                ring.lookup(h).map(|i| i as usize)
            }
            State::Mh(table) => {
                let hash_port = matches!(self.kind, Kind::Mh(MhParams { hash_port: true, .. }));
                table.lookup(key.source_hash(hash_port)).map(|i| i as usize)
            }
        };
        found.filter(|&i| backends.get(i).is_some_and(Backend::can_take_new))
    }

    /// The algorithm and its parameters.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The Maglev table, for an `mh` scheduler (to measure balance or disruption).
    pub fn maglev(&self) -> Option<&MaglevTable> {
        match &self.state {
            State::Mh(t) => Some(t),
            _ => None,
        }
    }

    /// The ring, for a `conhash` scheduler.
    pub fn conhash_ring(&self) -> Option<&ConhashRing> {
        match &self.state {
            State::Conhash(r) => Some(r),
            _ => None,
        }
    }
}

fn check_count(backends: &[Backend]) -> Result<(), BuildError> {
    if backends.len() > MAX_BACKENDS {
        return Err(BuildError::TooManyBackends(backends.len()));
    }
    Ok(())
}

fn validate<K: AsRef<[u8]>>(kind: Kind, backends: &[Backend], ids: &[K]) -> Result<(), BuildError> {
    check_count(backends)?;
    let n = backends.len();
    if ids.len() != n && (kind.needs_identity() || !ids.is_empty()) {
        return Err(BuildError::IdentityCount { backends: n, ids: ids.len() });
    }
    if kind.needs_identity() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| ids[a].as_ref().cmp(ids[b].as_ref()).then(a.cmp(&b)));
        if let Some(w) = order.windows(2).find(|w| ids[w[0]].as_ref() == ids[w[1]].as_ref()) {
            return Err(BuildError::DuplicateIdentity { first: w[0], second: w[1] });
        }
    }
    if let Kind::Mh(MhParams { table_size, .. }) = kind {
        if table_size > maglev::MAX_TABLE_SIZE {
            return Err(BuildError::TableTooLarge { size: table_size, max: maglev::MAX_TABLE_SIZE });
        }
        if !maglev::is_prime(table_size) {
            return Err(BuildError::TableSizeNotPrime(table_size));
        }
        if u64::from(table_size) <= n as u64 {
            return Err(BuildError::TableTooSmall { size: table_size, backends: n });
        }
    }
    Ok(())
}
