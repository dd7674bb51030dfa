//! Golden bytes of the two bincode encodings that other processes (and other builds, during a
//! worker upgrade) read: the configuration generation ([`generation::FORMAT_VERSION`], a
//! [`conf::Runtime`]) and the mailbox protocol ([`PROTOCOL_VERSION`], [`Request`] and
//! [`Response`]).
//!
//! A fixed value that fills every table and uses every variant of every enum it carries is
//! encoded and compared with `tests/golden/<format>-v<version>.hex`, the file named by the
//! current version constant. A change of shape fails here until the version is bumped (with a
//! line in its doc saying what changed) and the new version's file is written:
//!
//! ```text
//! DPVS_BLESS=1 cargo test -p mailbox --test golden
//! ```
//!
//! Files of older versions stay, as the record of what older builds send. A diff to the
//! committed file of an existing version is a compatibility break unless only the fixture
//! changed.
//!
//! Coverage is enforced twice: [`request_name`], [`change_name`] and [`response_name`] match
//! every variant without a wildcard (a new variant does not compile until it is named there,
//! next to the fixture), and [`every_variant_is_in_the_fixtures`] compares the fixtures with
//! the variant lists serde derives, for the nested enums as well.

use std::any::type_name;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use conf::{
    Forward, HealthCheck, IfAddr, Neighbour, OnFailure, Prefix, Probe, Protocol, ProxyProtocol, Real, Route, Runtime,
    Service,
};
use mailbox::generation::{self, FORMAT_VERSION};
use mailbox::proto::{AclList, Change, Request, Response, ServiceKey, PROTOCOL_VERSION};
use sched::{ConhashBy, Kind, MhParams};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The environment variable that makes the tests write the golden files instead of comparing.
const BLESS: &str = "DPVS_BLESS";

const fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

const fn ipa(a: u8, b: u8, c: u8, d: u8) -> std::net::IpAddr {
    std::net::IpAddr::V4(ip(a, b, c, d))
}

fn prefix(addr: Ipv4Addr, len: u8) -> Prefix {
    Prefix { addr: addr.into(), len }
}

/// An HTTP check with every field set.
fn http_check() -> HealthCheck {
    HealthCheck {
        probe: Probe::Http { path: "/health".into(), status: 204, body: "ok".into() },
        port: 8081,
        interval_ms: 1500,
        timeout_ms: 700,
        rise: 2,
        fall: 3,
        on_failure: OnFailure::Inhibit,
    }
}

/// A service with only what every service has (the other schedulers' entries).
fn bare_service(port: u16, scheduler: Kind) -> Service {
    Service {
        vip: ipa(198, 18, 0, 254),
        port,
        protocol: Protocol::Tcp,
        scheduler,
        local_addresses: vec![ipa(198, 19, 0, 254)],
        reals: vec![],
        persistence: 0,
        persistence_prefix: 0,
        deny: vec![],
        allow: vec![],
        proxy_protocol: ProxyProtocol::Off,
        group: None,
        check: None,
    }
}

/// Every table filled: two addresses, a neighbour, a route, and services using every
/// scheduler, forwarding method and PROXY protocol version, with thresholds, access lists,
/// persistence and a group. Struct literals throughout, so that a new field does not compile
/// until it is given a value here.
fn runtime() -> Runtime {
    let real = |addr, port, forward, upper, lower| Real { addr, port, weight: 5, forward, upper, lower, down: false };
    let web = Service {
        vip: ipa(198, 18, 0, 254),
        port: 80,
        protocol: Protocol::Tcp,
        scheduler: Kind::Wlc,
        local_addresses: vec![ipa(198, 19, 0, 254), ipa(198, 19, 0, 253)],
        reals: vec![
            real(ipa(198, 19, 0, 1), 8080, Forward::Fnat, 1000, 750),
            real(ipa(198, 19, 0, 2), 80, Forward::Dr, 0, 0),
            real(ipa(198, 19, 0, 3), 8080, Forward::Nat, 200, 0),
            real(ipa(10, 1, 0, 5), 80, Forward::Tunnel, 0, 0),
            Real { down: true, ..real(ipa(198, 19, 0, 6), 8080, Forward::Fnat, 0, 0) },
        ],
        persistence: 300,
        persistence_prefix: 24,
        deny: vec![prefix(ip(192, 0, 2, 0), 24)],
        allow: vec![prefix(ip(198, 51, 100, 0), 24), prefix(ip(203, 0, 113, 7), 32)],
        proxy_protocol: ProxyProtocol::V2,
        group: Some("edge".into()),
        check: Some(http_check()),
    };
    let dns = Service {
        vip: ipa(198, 18, 0, 253),
        port: 53,
        protocol: Protocol::Udp,
        scheduler: Kind::Conhash(ConhashBy::FiveTuple),
        local_addresses: vec![ipa(198, 19, 0, 254)],
        reals: vec![real(ipa(198, 19, 0, 4), 53, Forward::Fnat, 0, 0)],
        persistence: 0,
        persistence_prefix: 0,
        deny: vec![],
        allow: vec![],
        proxy_protocol: ProxyProtocol::V1,
        group: None,
        check: Some(HealthCheck {
            probe: Probe::Udp { send: "ping".into(), expect: "pong".into() },
            on_failure: OnFailure::Remove,
            ..http_check()
        }),
    };
    let v6 = Service {
        vip: "2001:db8:1::fe".parse().unwrap(),
        port: 443,
        protocol: Protocol::Tcp,
        scheduler: Kind::Rr,
        local_addresses: vec!["2001:db8:1::fe".parse().unwrap()],
        reals: vec![real("2001:db8:1::2".parse().unwrap(), 8443, Forward::Fnat, 0, 0)],
        persistence: 0,
        persistence_prefix: 0,
        deny: vec![Prefix { addr: "2001:db8:bad::".parse().unwrap(), len: 48 }],
        allow: vec![],
        proxy_protocol: ProxyProtocol::Off,
        group: None,
        check: Some(HealthCheck { probe: Probe::Icmp, ..http_check() }),
    };
    let tcp = |port| Service {
        check: Some(HealthCheck { probe: Probe::Tcp, ..http_check() }),
        ..bare_service(port, Kind::Rr)
    };
    let command = |port| Service {
        check: Some(HealthCheck {
            probe: Probe::Command { argv: vec!["/bin/check".into(), "-q".into()] },
            ..http_check()
        }),
        ..bare_service(port, Kind::Rr)
    };
    let mut services = vec![web, dns, v6, tcp(90), command(91)];
    let others = [
        Kind::Rr,
        Kind::Wrr,
        Kind::Lc,
        Kind::Conhash(ConhashBy::SourceIp),
        Kind::Fo,
        Kind::Mh(MhParams { table_size: 251, hash_port: true }),
    ];
    services.extend(others.into_iter().zip(81..).map(|(k, port)| bare_service(port, k)));
    Runtime {
        addresses: vec![
            IfAddr { port: 0, addr: ip(198, 18, 0, 254).into(), prefix: 24, sapool: false },
            IfAddr { port: 0, addr: ip(198, 18, 0, 253).into(), prefix: 24, sapool: false },
            IfAddr { port: 1, addr: ip(198, 19, 0, 254).into(), prefix: 16, sapool: false },
            IfAddr { port: 1, addr: ip(198, 19, 0, 252).into(), prefix: 32, sapool: true },
            IfAddr { port: 1, addr: "2001:db8:1::fe".parse().unwrap(), prefix: 64, sapool: false },
        ],
        neighbours: vec![
            Neighbour { addr: ipa(198, 19, 0, 2), mac: [0x02, 0, 0, 0, 0x01, 0x02], port: 1 },
            Neighbour { addr: "2001:db8:1::2".parse().unwrap(), mac: [0x02, 0, 0, 0, 0x01, 0x02], port: 1 },
        ],
        routes: vec![
            Route { prefix: ipa(10, 1, 0, 0), len: 16, via: ipa(198, 19, 0, 9) },
            Route { prefix: "2001:db8:2::".parse().unwrap(), len: 48, via: "2001:db8:1::9".parse().unwrap() },
        ],
        services: services.into_iter().map(Into::into).collect(),
    }
}

const WEB: ServiceKey = ServiceKey { protocol: Protocol::Tcp, vip: ipa(198, 18, 0, 254), port: 80 };
const DNS: ServiceKey = ServiceKey { protocol: Protocol::Udp, vip: ipa(198, 18, 0, 253), port: 53 };

/// Every change, and every forwarding method and PROXY protocol version.
fn changes() -> Vec<Change> {
    let (addr, port) = (ipa(198, 19, 0, 1), 8080);
    vec![
        Change::AddrAdd { port: "dpdk0".into(), addr: ip(198, 18, 0, 252).into(), prefix: 24 },
        Change::AddrDel { addr: ip(198, 18, 0, 252).into() },
        Change::AddrAdd { port: "dpdk1".into(), addr: "2001:db8:1::1".parse().unwrap(), prefix: 64 },
        Change::NeighSet { addr: ipa(198, 19, 0, 2), mac: [0x02, 0, 0, 0, 0x01, 0x02], port: "dpdk1".into() },
        Change::NeighDel { addr: ipa(198, 19, 0, 2) },
        Change::RouteAdd { prefix: ipa(10, 1, 0, 0), len: 16, via: ipa(198, 19, 0, 9) },
        Change::RouteAdd { prefix: "2001:db8:2::".parse().unwrap(), len: 48, via: "2001:db8:1::9".parse().unwrap() },
        Change::RouteDel { prefix: ipa(10, 1, 0, 0), len: 16 },
        Change::ServiceAdd {
            service: WEB,
            scheduler: "wlc".into(),
            persistence: 300,
            persistence_prefix: 24,
            proxy_protocol: ProxyProtocol::V2,
            group: Some("edge".into()),
        },
        Change::ServiceAdd {
            service: DNS,
            scheduler: "conhash".into(),
            persistence: 0,
            persistence_prefix: 0,
            proxy_protocol: ProxyProtocol::V1,
            group: None,
        },
        Change::ServiceEdit {
            service: WEB,
            scheduler: Some("mh".into()),
            persistence: None,
            persistence_prefix: None,
            proxy_protocol: Some(ProxyProtocol::Off),
        },
        Change::ServiceDel { service: DNS },
        Change::ServiceClear,
        Change::RealAdd { service: WEB, addr, port, weight: 5, forward: Forward::Tunnel, thresholds: (1000, 750) },
        Change::RealEdit {
            service: WEB,
            addr,
            port,
            weight: 0,
            forward: Some(Forward::Dr),
            upper: Some(200),
            lower: None,
        },
        Change::RealEdit {
            service: WEB,
            addr,
            port,
            weight: 5,
            forward: Some(Forward::Nat),
            upper: None,
            lower: Some(50),
        },
        Change::RealEdit {
            service: WEB,
            addr,
            port,
            weight: 5,
            forward: Some(Forward::Fnat),
            upper: None,
            lower: None,
        },
        Change::RealDel { service: WEB, addr, port },
        Change::LaddrAdd { service: WEB, addr: ipa(198, 19, 0, 253), port: None },
        Change::LaddrAdd { service: WEB, addr: ipa(198, 19, 0, 252), port: Some("dpdk1".into()) },
        Change::LaddrDel { service: WEB, addr: ipa(198, 19, 0, 253) },
        Change::AclAdd { service: WEB, list: AclList::Deny, prefix: prefix(ip(192, 0, 2, 0), 24) },
        Change::AclDel { service: WEB, list: AclList::Allow, prefix: prefix(ip(203, 0, 113, 7), 32) },
        Change::CheckSet { service: WEB, check: Some(http_check()) },
        Change::CheckSet { service: DNS, check: None },
        Change::RealHealth { service: WEB, addr, port, down: true },
        Change::RealHealth { service: WEB, addr, port, down: false },
    ]
}

/// Every request once (a change of every kind).
fn requests() -> Vec<Request> {
    let mut r = vec![Request::WorkerRestart { slot: 3, binary: Some("/opt/dpvs/dpvs-worker".into()) }];
    r.extend(changes().into_iter().map(Request::Change));
    r.push(Request::Reload { path: Some("/etc/dpvs/dpvs.toml".into()) });
    r.push(Request::ZeroCounters { service: Some(WEB) });
    r.push(Request::Changes { path: "/run/dpvs/restore-4242.bin".into() });
    r
}

/// Every response once.
fn responses() -> Vec<Response> {
    vec![
        Response::WorkerRestarted { slot: 3, old_pid: 4100, new_pid: 4242, took_us: 52_000, gap_us: 7 },
        Response::Applied { generation: 12, took_us: 830 },
        Response::Zeroed { took_us: 95 },
        Response::error("no service tcp 198.18.0.254:80"),
    ]
}

/// The variant's name. No wildcard: a new variant of [`Request`] does not compile until it is
/// named here, and [`requests`] must then hold one.
fn request_name(r: &Request) -> &'static str {
    match r {
        Request::WorkerRestart { .. } => "WorkerRestart",
        Request::Change(_) => "Change",
        Request::Reload { .. } => "Reload",
        Request::ZeroCounters { .. } => "ZeroCounters",
        Request::Changes { .. } => "Changes",
    }
}

/// As [`request_name`], for [`changes`].
fn change_name(c: &Change) -> &'static str {
    match c {
        Change::AddrAdd { .. } => "AddrAdd",
        Change::AddrDel { .. } => "AddrDel",
        Change::NeighSet { .. } => "NeighSet",
        Change::NeighDel { .. } => "NeighDel",
        Change::RouteAdd { .. } => "RouteAdd",
        Change::RouteDel { .. } => "RouteDel",
        Change::ServiceAdd { .. } => "ServiceAdd",
        Change::ServiceEdit { .. } => "ServiceEdit",
        Change::ServiceDel { .. } => "ServiceDel",
        Change::ServiceClear => "ServiceClear",
        Change::RealAdd { .. } => "RealAdd",
        Change::RealEdit { .. } => "RealEdit",
        Change::RealDel { .. } => "RealDel",
        Change::LaddrAdd { .. } => "LaddrAdd",
        Change::LaddrDel { .. } => "LaddrDel",
        Change::AclAdd { .. } => "AclAdd",
        Change::AclDel { .. } => "AclDel",
        Change::CheckSet { .. } => "CheckSet",
        Change::RealHealth { .. } => "RealHealth",
    }
}

/// As [`request_name`], for [`responses`].
fn response_name(r: &Response) -> &'static str {
    match r {
        Response::WorkerRestarted { .. } => "WorkerRestarted",
        Response::Applied { .. } => "Applied",
        Response::Zeroed { .. } => "Zeroed",
        Response::Error { .. } => "Error",
    }
}

/// The variant names of enum `T` as its derived `Deserialize` declares them: all of them, in
/// declaration order.
fn variants<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let seen = Cell::new(&[][..]);
    let _ = T::deserialize(VariantNames(&seen));
    assert!(!seen.get().is_empty(), "{} is not an enum", type_name::<T>());
    seen.get()
}

/// A deserializer that only notes the variant list it is asked for.
struct VariantNames<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> Deserializer<'de> for VariantNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(variants);
        Err(de::Error::custom("only the variant names are wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Asserts that `names` are exactly the variants of `T`.
fn assert_names<T: for<'de> Deserialize<'de>>(names: impl IntoIterator<Item = &'static str>) {
    let names: BTreeSet<&str> = names.into_iter().collect();
    let all: BTreeSet<&str> = variants::<T>().iter().copied().collect();
    assert_eq!(names, all, "the fixture must hold every variant of {}", type_name::<T>());
}

/// Asserts that every variant name of `T` is a word of `debug` (a fixture's `{:?}`; the
/// fixtures' strings hold no capitalised words that could stand in for one).
fn assert_in_debug<T: for<'de> Deserialize<'de>>(debug: &str) {
    let words: BTreeSet<&str> = debug.split(|c: char| !c.is_alphanumeric() && c != '_').collect();
    let missing: Vec<&str> = variants::<T>().iter().copied().filter(|v| !words.contains(v)).collect();
    assert!(missing.is_empty(), "the fixtures use no {missing:?} of {}: add them", type_name::<T>());
}

#[test]
fn every_variant_is_in_the_fixtures() {
    assert_names::<Request>(requests().iter().map(request_name));
    assert_names::<Change>(changes().iter().map(change_name));
    assert_names::<Response>(responses().iter().map(response_name));
    let messages = format!("{:?} {:?}", requests(), responses());
    assert_in_debug::<AclList>(&messages);
    assert_in_debug::<Protocol>(&messages);
    assert_in_debug::<Forward>(&messages);
    assert_in_debug::<ProxyProtocol>(&messages);
    let rt = format!("{:?}", runtime());
    assert_in_debug::<Protocol>(&rt);
    assert_in_debug::<Forward>(&rt);
    assert_in_debug::<ProxyProtocol>(&rt);
    assert_in_debug::<Kind>(&rt);
    assert_in_debug::<ConhashBy>(&rt);
    assert_in_debug::<Probe>(&rt);
    assert_in_debug::<OnFailure>(&rt);
}

/// `# label` and the bytes in hex, 32 a line, for each entry.
fn hex(entries: &[(String, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (label, bytes) in entries {
        out += &format!("# {label}\n");
        for line in bytes.chunks(32) {
            out.extend(line.iter().map(|b| format!("{b:02x}")));
            out.push('\n');
        }
    }
    out
}

/// Compares `text` with the golden file `<format>-v<version>.hex`, or writes it under
/// [`BLESS`]. `constant` names the version constant and where it is.
fn check(format: &str, version: u16, constant: &str, text: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let name = format!("{format}-v{version}.hex");
    let path = dir.join(&name);
    let renew = format!(
        "if the shape changed on purpose, bump {constant} (with a line in its doc saying what changed) and write \
         {format}-v<new version>.hex with `{BLESS}=1 cargo test -p mailbox --test golden`; if only the fixture \
         changed, the same command rewrites {name}"
    );
    if std::env::var_os(BLESS).is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, text).unwrap();
        eprintln!("wrote {}", path.display());
    }
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_prefix(&format!("{format}-v"))?.strip_suffix(".hex")?.parse::<u16>().ok())
        .max();
    assert_eq!(
        newest,
        Some(version),
        "the newest golden file of {format} must be {name}, named by {constant}; {renew}"
    );
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; {renew}", path.display()));
    if let Some((n, (want, got))) = golden.lines().zip(text.lines()).enumerate().find(|(_, (w, g))| w != g) {
        panic!("{}:{}: the encoding changed:\n  golden {want}\n  now    {got}\n{renew}", path.display(), n + 1);
    }
    assert_eq!(
        golden.lines().count(),
        text.lines().count(),
        "{}: the encoding's length changed; {renew}",
        path.display()
    );
}

#[test]
fn the_generation_format_is_golden() {
    let rt = runtime();
    let bytes = generation::encode(&rt);
    assert_eq!(bytes[..2], FORMAT_VERSION.to_le_bytes(), "a payload starts with its version");
    assert_eq!(generation::decode(&bytes).as_ref(), Ok(&rt));
    // Ring entries: a snapshot's, and a delta with every part.
    let delta = generation::Delta {
        addresses: Some(rt.addresses.clone()),
        neighbours: Some(rt.neighbours.clone()),
        routes: Some(rt.routes.clone()),
        removed: vec![DNS],
        put: rt.services[..2].to_vec(),
    };
    let mut entries = vec![("conf::Runtime".to_owned(), bytes)];
    for (label, e) in
        [("Entry::Snapshot", generation::Entry::Snapshot), ("Entry::Delta", generation::Entry::Delta(delta))]
    {
        let bytes = generation::encode_entry(&e);
        assert_eq!(generation::decode_entry(&bytes).as_ref(), Ok(&e));
        entries.push((label.to_owned(), bytes));
    }
    let text = hex(&entries);
    check("generation", FORMAT_VERSION, "FORMAT_VERSION in mailbox/src/generation.rs", &text);
}

#[test]
fn the_mailbox_protocol_is_golden() {
    let mut entries = Vec::new();
    for r in requests() {
        let label = match &r {
            Request::Change(c) => format!("Request::Change({})", change_name(c)),
            r => format!("Request::{}", request_name(r)),
        };
        let bytes = r.encode();
        assert_eq!(Request::decode(&bytes).as_ref(), Ok(&r));
        entries.push((label, bytes));
    }
    for r in responses() {
        let bytes = r.encode();
        assert_eq!(Response::decode(&bytes).as_ref(), Ok(&r));
        entries.push((format!("Response::{}", response_name(&r)), bytes));
    }
    assert!(entries.iter().all(|(_, b)| b[..2] == PROTOCOL_VERSION.to_le_bytes()), "a message starts with its version");
    check("protocol", PROTOCOL_VERSION, "PROTOCOL_VERSION in mailbox/src/proto.rs", &hex(&entries));
}
