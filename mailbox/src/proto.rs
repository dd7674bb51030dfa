//! What travels through the mailbox: versioned, bincode-encoded requests and responses.
//!
//! Every payload starts with the protocol version (u16, little-endian), then the bincode body.
//! A peer that reads another version answers [`Response::Error`] naming both versions instead
//! of misreading the body. The encoding of each version is pinned by a golden file
//! (`tests/golden/protocol-v*.hex`).

use serde::{Deserialize, Serialize};

/// Version of [`Request`] and [`Response`]. Bump it whenever either changes shape (a variant,
/// a field, a field's type, here or in the types they hold), say here what changed, and write
/// the new version's golden file (`tests/golden.rs` says how): that test fails until both
/// are done.
///
/// 1. `WorkerRestart`, `WorkerRestarted`, `Error`.
/// 2. `gap_us` in `WorkerRestarted`. `WorkerRestart`'s `binary` was added later without a bump.
/// 3. `Change`, `Reload` and `Applied`: runtime configuration through the mailbox. The
///    forwarding method of `RealAdd`/`RealEdit`, the persistence of `ServiceAdd`/`ServiceEdit`
///    (with `ServiceEdit`'s scheduler made optional) and `RouteAdd`/`RouteDel` were added
///    later without a bump.
/// 4. Connection thresholds in `RealAdd`/`RealEdit`, `AclAdd`/`AclDel`, `ZeroCounters` and
///    `Zeroed`. The `tunnel` forwarding method and the PROXY protocol version of
///    `ServiceAdd`/`ServiceEdit` were added later without a bump.
/// 5. `group` in `ServiceAdd`.
/// 6. `port` in `LaddrAdd`.
/// 7. `Changes`.
/// 8. IPv6 addresses in `AddrAdd`/`AddrDel` (an `IpAddr`).
/// 9. IPv6 services: the VIP of a `ServiceKey`, the real server of `RealAdd`/`RealEdit`/
///    `RealDel` and the local address of `LaddrAdd`/`LaddrDel` are `IpAddr`s.
/// 10. IPv6 networks in `AclAdd`/`AclDel` (a `conf::Prefix` holds an `IpAddr`), IPv6 routes
///     and static neighbours (`RouteAdd`/`RouteDel`, `NeighSet`/`NeighDel`).
/// 11. The persistence prefix of `ServiceAdd`/`ServiceEdit` (ipvsadm's `-M`).
/// 12. Health checks: `CheckSet` (a service's `conf::HealthCheck`) and `RealHealth`
///     (`dpvs-health`'s verdict on a real server).
pub const PROTOCOL_VERSION: u16 = 12;

/// A command for the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Replace the worker of a slot with a new process without a gap in service: the
    /// successor attaches on a spare lcore id and waits; the worker finishes its burst and
    /// hands its queues over with one store; the successor polls on. Answered once it polls.
    WorkerRestart {
        /// Worker slot.
        slot: u32,
        /// Start the successor from this worker binary instead of the current one (an
        /// upgrade); it must speak the same shared-memory layout version, or it refuses to
        /// attach and the old worker keeps running.
        binary: Option<String>,
    },
    /// Change the runtime configuration: validated against the rest of it, published as the
    /// next generation, answered once every polling worker forwards with it. A change that
    /// fails validation changes nothing (the generation does not move).
    Change(Change),
    /// Replace the runtime configuration (addresses, neighbours, services) with a file's, as
    /// one change. `None`: the file the instance started from. The file's other sections
    /// must equal the running ones (they cannot change without a restart).
    Reload { path: Option<String> },
    /// Zero the per-service and per-real-server counters (`ipvsadm -Z`) of one service, or
    /// of all: each worker zeroes its own tables (their only writer). Answered once every
    /// polling worker has.
    ZeroCounters { service: Option<ServiceKey> },
    /// Apply the changes in the file at `path` ([`encode_changes`]; too many for one
    /// request) as one: in order, all or none, one generation (`ipvsadm -R`). A refusal names
    /// the change by its index, from 0.
    Changes { path: String },
}

/// A list of changes as a [`Request::Changes`] file holds it.
pub fn encode_changes(changes: &[Change]) -> Vec<u8> {
    encode(&changes)
}

/// The inverse of [`encode_changes`].
///
/// # Errors
/// Another protocol version, or a malformed list.
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, DecodeError> {
    decode(bytes)
}

/// A virtual service, by what clients connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub protocol: conf::Protocol,
    pub vip: std::net::IpAddr,
    pub port: u16,
}

impl Change {
    /// The service a change adds or edits (its definition, real servers, local addresses or
    /// access lists), if it is such a change.
    pub fn edited_service(&self) -> Option<&ServiceKey> {
        match self {
            Change::ServiceAdd { service, .. }
            | Change::ServiceEdit { service, .. }
            | Change::RealAdd { service, .. }
            | Change::RealEdit { service, .. }
            | Change::RealDel { service, .. }
            | Change::LaddrAdd { service, .. }
            | Change::LaddrDel { service, .. }
            | Change::AclAdd { service, .. }
            | Change::AclDel { service, .. }
            | Change::CheckSet { service, .. }
            | Change::RealHealth { service, .. } => Some(service),
            _ => None,
        }
    }
}

impl ServiceKey {
    /// The key of service `s`.
    pub fn of(s: &conf::Service) -> ServiceKey {
        ServiceKey { protocol: s.protocol, vip: s.vip, port: s.port }
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.protocol.name(), std::net::SocketAddr::new(self.vip, self.port))
    }
}

/// One change of the runtime configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Give a port an address (it answers ARP and ICMP echo for it).
    AddrAdd { port: String, addr: std::net::IpAddr, prefix: u8 },
    /// Take an address away (refused while a service uses it as a local address, or as its VIP
    /// unless another interface address covers the VIP's network).
    AddrDel { addr: std::net::IpAddr },
    /// Add a static neighbour, or replace the one of that address.
    NeighSet { addr: std::net::IpAddr, mac: [u8; 6], port: String },
    /// Remove a static neighbour (refused while a real server needs it).
    NeighDel { addr: std::net::IpAddr },
    /// Add a static route: `prefix/len` through gateway `via`.
    RouteAdd { prefix: std::net::IpAddr, len: u8, via: std::net::IpAddr },
    /// Remove the static route of `prefix/len` (refused while a real server needs it).
    RouteDel { prefix: std::net::IpAddr, len: u8 },
    /// Add a service (no real servers, no local addresses yet), with a persistence timeout in
    /// seconds (0: none) and the prefix length its clients are grouped by (0: each address),
    /// the PROXY protocol header its Full-NAT real servers get, and the worker group serving it
    /// (`None`: the group polling its VIP's port; fixed for its life).
    ServiceAdd {
        service: ServiceKey,
        scheduler: String,
        persistence: u32,
        persistence_prefix: u8,
        proxy_protocol: conf::ProxyProtocol,
        group: Option<String>,
    },
    /// Change a service's scheduler, persistence timeout, persistence prefix and/or PROXY
    /// protocol version.
    ServiceEdit {
        service: ServiceKey,
        scheduler: Option<String>,
        persistence: Option<u32>,
        persistence_prefix: Option<u8>,
        proxy_protocol: Option<conf::ProxyProtocol>,
    },
    /// Remove a service; its connections expire on their next packet.
    ServiceDel { service: ServiceKey },
    /// Remove every service (`ipvsadm -C`).
    ServiceClear,
    /// Add a real server to a service, with connection thresholds (0: none).
    RealAdd {
        service: ServiceKey,
        addr: std::net::IpAddr,
        port: u16,
        weight: u32,
        forward: conf::Forward,
        thresholds: (u32, u32),
    },
    /// Change a real server's weight (0: quiescent, existing connections go on) and,
    /// if given, its forwarding method (for new connections) and its upper and lower
    /// connection thresholds.
    RealEdit {
        service: ServiceKey,
        addr: std::net::IpAddr,
        port: u16,
        weight: u32,
        forward: Option<conf::Forward>,
        upper: Option<u32>,
        lower: Option<u32>,
    },
    /// Remove a real server; its connections are expired.
    RealDel { service: ServiceKey, addr: std::net::IpAddr, port: u16 },
    /// Add a local address (a Full-NAT source) to a service; with `port`, installed on that
    /// port first when no port has it (ipvsadm's `-F`).
    LaddrAdd { service: ServiceKey, addr: std::net::IpAddr, port: Option<String> },
    /// Remove a local address from a service.
    LaddrDel { service: ServiceKey, addr: std::net::IpAddr },
    /// Add a network to a service's deny or allow list.
    AclAdd { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// Remove a network from a service's deny or allow list.
    AclDel { service: ServiceKey, list: AclList, prefix: conf::Prefix },
    /// Give a service an active health check of its real servers, or (`None`) take it away
    /// (its real servers are all up again).
    CheckSet { service: ServiceKey, check: Option<conf::HealthCheck> },
    /// A real server's health (`dpvs-health`'s verdict): down, it takes no new connections
    /// (its service's check says whether it is listed with weight 0 or hidden); up, it is
    /// scheduled with its weight again. Refused for a service without a health check.
    RealHealth { service: ServiceKey, addr: std::net::IpAddr, port: u16, down: bool },
}

/// Which access list of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclList {
    /// Clients whose new connections are dropped (DPVS's blacklist).
    Deny,
    /// When not empty, the only clients that may connect (DPVS's whitelist).
    Allow,
}

impl AclList {
    /// `deny` or `allow`.
    pub fn name(self) -> &'static str {
        match self {
            AclList::Deny => "deny",
            AclList::Allow => "allow",
        }
    }
}

/// The primary's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A worker was replaced.
    WorkerRestarted {
        slot: u32,
        old_pid: u32,
        new_pid: u32,
        /// From the request to the successor's first poll, µs.
        took_us: u64,
        /// From the old worker's last poll to the successor's first, µs (packets wait in the
        /// rx rings meanwhile).
        gap_us: u64,
    },
    /// A change or reload was applied: every polling worker forwards with `generation`.
    Applied {
        generation: u64,
        /// From the request's arrival to the last worker's acknowledgement, µs.
        took_us: u64,
    },
    /// Counters were zeroed by every polling worker.
    Zeroed {
        /// From the request's arrival to the last worker's acknowledgement, µs.
        took_us: u64,
    },
    /// The command was refused or failed; nothing was changed unless the message says so.
    Error { message: String },
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload speaks another protocol version.
    #[error("protocol version {found} is not supported (this side speaks {supported})")]
    Version { found: u16, supported: u16 },
    /// The body is not a valid message of this version.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// `version` (u16, little-endian), then the bincode of `msg`.
pub(crate) fn encode_versioned<T: Serialize>(version: u16, msg: &T) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    // Serialising plain enums and structs of integers, addresses and strings into a Vec
    // cannot fail.
    out.extend(bincode::serialize(msg).unwrap_or_default());
    out
}

/// The inverse of [`encode_versioned`]; another version is refused, not misread.
pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(version: u16, bytes: &[u8]) -> Result<T, DecodeError> {
    let (head, body) =
        bytes.split_at_checked(2).ok_or_else(|| DecodeError::Malformed("shorter than a version".into()))?;
    let found = u16::from_le_bytes([head[0], head[1]]);
    if found != version {
        return Err(DecodeError::Version { found, supported: version });
    }
    bincode::deserialize(body).map_err(|e| DecodeError::Malformed(e.to_string()))
}

fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    encode_versioned(PROTOCOL_VERSION, msg)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_versioned(PROTOCOL_VERSION, bytes)
}

impl Request {
    /// Encodes it for the mailbox.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a request.
    ///
    /// # Errors
    /// [`DecodeError`] for another version or a malformed body.
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        decode(bytes)
    }
}

impl Response {
    /// Encodes it for the mailbox.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a response.
    ///
    /// # Errors
    /// [`DecodeError`] for another version or a malformed body.
    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        decode(bytes)
    }

    /// An error response.
    pub fn error(message: impl Into<String>) -> Response {
        Response::Error { message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Request::WorkerRestart { slot: 3, binary: Some("/opt/dpvs/dpvs-worker".into()) };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let a = Response::WorkerRestarted { slot: 3, old_pid: 10, new_pid: 11, took_us: 42, gap_us: 7 };
        assert_eq!(Response::decode(&a.encode()), Ok(a));
    }

    #[test]
    fn another_version_is_refused_not_misread() {
        let mut b = Request::WorkerRestart { slot: 3, binary: None }.encode();
        let other = PROTOCOL_VERSION as u8 + 1;
        b[0] = other;
        assert_eq!(Request::decode(&b), Err(DecodeError::Version { found: other.into(), supported: PROTOCOL_VERSION }));
        assert!(Request::decode(&[1]).is_err());
        let v = PROTOCOL_VERSION.to_le_bytes();
        assert!(matches!(Request::decode(&[v[0], v[1], 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Malformed(_))));
        assert!(matches!(Request::decode(&[1, 0, 0, 0, 0, 0]), Err(DecodeError::Version { found: 1, .. })));
    }
}
