//! Changes against the embedded default configuration (ports dpdk0 198.18.0.100/24 and
//! dpdk1 198.18.1.254/24, neighbour 198.18.1.2, service tcp 198.18.0.100:80).

use super::*;
use conf::Protocol;

const F: conf::Forward = conf::Forward::Fnat;

fn key(port: u16) -> ServiceKey {
    ServiceKey { protocol: Protocol::Tcp, vip: "198.18.0.100".parse().unwrap(), port }
}

/// An address of the type the place wants (`Ipv4Addr` or `IpAddr`).
fn ip<A: std::str::FromStr>(s: &str) -> A
where
    A::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn net(s: &str) -> conf::Prefix {
    conf::Prefix::parse(s).unwrap()
}

#[test]
fn changes_apply_and_errors_change_nothing() {
    let cfg = Config::embedded_default();
    let rt = cfg.runtime();
    // (change, expected error substring or None for success)
    let cases: Vec<(Change, Option<&str>)> = vec![
        (
            Change::ServiceAdd {
                service: key(443),
                scheduler: "wrr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            },
            None,
        ),
        (
            Change::ServiceAdd {
                service: key(80),
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            },
            Some("exists already"),
        ),
        (
            Change::ServiceAdd {
                service: key(443),
                scheduler: "fastest".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            },
            Some("fastest"),
        ),
        (
            Change::ServiceAdd {
                service: ServiceKey { protocol: Protocol::Udp, vip: ip("198.18.5.5"), port: 53 },
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            },
            Some("not an interface address"),
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: Some("mh".into()),
                persistence: None,
                persistence_prefix: None,
                proxy_protocol: None,
            },
            None,
        ),
        (
            Change::ServiceEdit {
                service: key(81),
                scheduler: Some("mh".into()),
                persistence: None,
                persistence_prefix: None,
                proxy_protocol: None,
            },
            Some("no service tcp 198.18.0.100:81"),
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: Some(600),
                persistence_prefix: None,
                proxy_protocol: None,
            },
            None,
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: None,
                persistence_prefix: None,
                proxy_protocol: None,
            },
            Some("nothing to change"),
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: Some(99_999_999),
                persistence_prefix: None,
                proxy_protocol: None,
            },
            Some("persistence"),
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: None,
                persistence_prefix: Some(33),
                proxy_protocol: None,
            },
            Some("persistence_prefix: expected an integer in 1..=32"),
        ),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: None,
                persistence_prefix: Some(24),
                proxy_protocol: None,
            },
            None,
        ),
        (Change::ServiceDel { service: key(80) }, None),
        (Change::ServiceClear, None),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8081,
                weight: 3,
                forward: F,
                thresholds: (0, 0),
            },
            None,
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8080,
                weight: 3,
                forward: F,
                thresholds: (0, 0),
            },
            Some("already"),
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.3"),
                port: 8080,
                weight: 1,
                forward: F,
                thresholds: (0, 0),
            },
            None,
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("10.0.0.1"),
                port: 8080,
                weight: 1,
                forward: F,
                thresholds: (0, 0),
            },
            Some("no port's network"),
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 80,
                weight: 1,
                forward: conf::Forward::Dr,
                thresholds: (0, 0),
            },
            None,
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 81,
                weight: 1,
                forward: conf::Forward::Dr,
                thresholds: (0, 0),
            },
            Some("must listen on the virtual port 80"),
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8081,
                weight: 70_000,
                forward: F,
                thresholds: (0, 0),
            },
            Some("weight"),
        ),
        (
            Change::RealEdit {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8080,
                weight: 0,
                forward: None,
                upper: None,
                lower: None,
            },
            None,
        ),
        (
            Change::RealEdit {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 9,
                weight: 0,
                forward: None,
                upper: None,
                lower: None,
            },
            Some("not a real server"),
        ),
        (Change::RealDel { service: key(80), addr: ip("198.18.1.2"), port: 8080 }, None),
        (Change::LaddrAdd { service: key(80), addr: ip("198.18.1.254"), port: None }, Some("already")),
        (Change::LaddrAdd { service: key(80), addr: ip("198.18.1.77"), port: None }, Some("not an interface address")),
        (Change::LaddrAdd { service: key(80), addr: ip("198.18.0.100"), port: None }, Some("must not be a VIP")),
        (Change::LaddrDel { service: key(80), addr: ip("198.18.1.254") }, None),
        (Change::AddrAdd { port: "dpdk1".into(), addr: ip("198.18.1.77"), prefix: 24 }, None),
        (Change::AddrAdd { port: "dpdk9".into(), addr: ip("198.18.1.77"), prefix: 24 }, Some("no port \"dpdk9\"")),
        (Change::AddrAdd { port: "dpdk1".into(), addr: ip("198.18.1.254"), prefix: 24 }, Some("already assigned")),
        (Change::AddrAdd { port: "dpdk1".into(), addr: ip("198.18.1.78"), prefix: 33 }, Some("prefix length")),
        (Change::AddrDel { addr: ip("198.18.1.254") }, Some("used by service tcp 198.18.0.100:80")),
        (Change::AddrDel { addr: ip("198.18.9.9") }, Some("no address")),
        (Change::NeighSet { addr: ip("198.18.1.3"), mac: [2, 0, 0, 0, 1, 3], port: "dpdk1".into() }, None),
        (Change::NeighSet { addr: ip("198.18.1.2"), mac: [2, 0, 0, 0, 1, 9], port: "dpdk1".into() }, None),
        (Change::NeighDel { addr: ip("198.18.1.2") }, None),
        (Change::NeighDel { addr: ip("198.18.1.9") }, Some("no neighbour")),
        (Change::RouteAdd { prefix: ip("198.18.2.0"), len: 24, via: ip("198.18.1.2") }, None),
        (Change::RouteAdd { prefix: ip("0.0.0.0"), len: 0, via: ip("198.18.1.2") }, None),
        (Change::RouteAdd { prefix: ip("198.18.2.1"), len: 24, via: ip("198.18.1.2") }, Some("host bits")),
        (Change::RouteAdd { prefix: ip("198.18.2.0"), len: 24, via: ip("198.18.1.3") }, None),
        (Change::RouteAdd { prefix: ip("198.18.2.0"), len: 24, via: ip("10.0.0.1") }, Some("no port's network")),
        (Change::RouteDel { prefix: ip("198.18.2.0"), len: 24 }, Some("no route")),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8081,
                weight: 1,
                forward: F,
                thresholds: (100, 50),
            },
            None,
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8081,
                weight: 1,
                forward: F,
                thresholds: (10, 50),
            },
            Some("lower threshold 50"),
        ),
        (
            Change::RealAdd {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8081,
                weight: 1,
                forward: F,
                thresholds: (0, 5),
            },
            Some("needs an upper threshold"),
        ),
        (
            Change::RealEdit {
                service: key(80),
                addr: ip("198.18.1.2"),
                port: 8080,
                weight: 1,
                forward: None,
                upper: Some(1000),
                lower: None,
            },
            None,
        ),
        (Change::AclAdd { service: key(80), list: AclList::Deny, prefix: net("198.18.9.0/24") }, None),
        (
            Change::ServiceEdit {
                service: key(80),
                scheduler: None,
                persistence: None,
                persistence_prefix: None,
                proxy_protocol: Some(conf::ProxyProtocol::V2),
            },
            None,
        ),
        (
            Change::ServiceAdd {
                service: ServiceKey { protocol: Protocol::Udp, vip: ip("198.18.0.100"), port: 53 },
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::V1,
                group: None,
            },
            Some("a UDP service takes \"v2\""),
        ),
        (
            Change::ServiceAdd {
                service: ServiceKey { protocol: Protocol::Udp, vip: ip("198.18.0.100"), port: 53 },
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::V2,
                group: None,
            },
            None,
        ),
        (Change::AclAdd { service: key(80), list: AclList::Allow, prefix: net("198.18.0.0/16") }, None),
        (Change::AclAdd { service: key(81), list: AclList::Deny, prefix: net("198.18.9.0/24") }, Some("no service")),
        (
            Change::AclDel { service: key(80), list: AclList::Deny, prefix: net("198.18.9.0/24") },
            Some("not in the deny list"),
        ),
    ];
    for (change, want) in cases {
        assert_same_checks(&cfg, &rt, &change);
        match (apply(&cfg, &rt, &change), want) {
            (Ok(next), None) => assert_ne!(next, rt, "{change:?} changed nothing"),
            (Err(e), Some(s)) => assert!(e.to_string().contains(s), "{change:?}: error {e:?} lacks {s:?}"),
            (Ok(_), Some(s)) => panic!("{change:?} accepted, expected an error with {s:?}"),
            (Err(e), None) => panic!("{change:?} refused: {e}"),
        }
    }
}

/// [`apply`], checking everything.
fn apply_whole(cfg: &Config, rt: &Runtime, change: &Change) -> Result<Runtime, ChangeError> {
    let mut next = rt.clone();
    apply_in(cfg, (&mut next, &mut Derived::of(rt)), change, true)?;
    Ok(next)
}

/// `apply`'s check of the touched service alone answers as the check of everything does.
fn assert_same_checks(cfg: &Config, rt: &Runtime, change: &Change) {
    let text = |r: Result<Runtime, ChangeError>| r.map_err(|e| e.to_string());
    assert_eq!(text(apply(cfg, rt, change)), text(apply_whole(cfg, rt, change)), "{change:?}");
}

/// The rules between services (one key each, no local address that is a VIP) and the limits
/// over all of them, checked by `apply` for the touched service only, as the whole check
/// finds them.
#[test]
fn the_check_of_one_service_finds_what_the_whole_check_finds() {
    let text = conf::EMBEDDED_DEFAULT.replace("services = 4096", "services = 3").replace("reals = 16384", "reals = 3");
    let cfg = Config::from_str(&text, "limits").unwrap();
    let mut rt = cfg.runtime();
    let add = |port: u16, vip: &str| Change::ServiceAdd {
        service: ServiceKey { protocol: Protocol::Tcp, vip: ip(vip), port },
        scheduler: "rr".into(),
        persistence: 0,
        persistence_prefix: 0,
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
    };
    let real = |port: u16, rport: u16| Change::RealAdd {
        service: key(port),
        addr: ip("198.18.1.2"),
        port: rport,
        weight: 1,
        forward: F,
        thresholds: (0, 0),
    };
    for c in [Change::AddrAdd { port: "dpdk1".into(), addr: ip("198.18.1.250"), prefix: 24 }, add(81, "198.18.0.100")] {
        rt = apply(&cfg, &rt, &c).unwrap();
    }
    let laddr_vip = ServiceKey { protocol: Protocol::Udp, vip: ip("198.18.1.254"), port: 53 };
    let cases = [
        (add(82, "198.18.0.100"), None),
        (add(82, "198.18.1.254"), Some("a local address must not be a VIP")),
        (
            Change::ServiceAdd {
                service: laddr_vip,
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            },
            Some("services[0].local_addresses[0]: 198.18.1.254 is the virtual address of services[2]"),
        ),
        (Change::LaddrAdd { service: key(81), addr: ip("198.18.0.100"), port: None }, Some("must not be a VIP")),
        (Change::LaddrAdd { service: key(81), addr: ip("198.18.1.250"), port: None }, None),
        (real(81, 80), None),
        (real(81, 81), None),
        (Change::ServiceDel { service: key(81) }, None),
        (Change::ServiceClear, None),
    ];
    for (change, want) in cases {
        assert_same_checks(&cfg, &rt, &change);
        match (apply(&cfg, &rt, &change), want) {
            (Ok(_), None) => {}
            (Err(e), Some(s)) => assert!(e.to_string().contains(s), "{change:?}: error {e} lacks {s:?}"),
            (r, _) => panic!("{change:?}: {r:?}, expected {want:?}"),
        }
    }
    // At the limits: a fourth real server (the embedded default's service has one) and a
    // fourth service are refused, by both checks alike.
    for c in [real(81, 80), real(81, 81), add(82, "198.18.0.100")] {
        rt = apply(&cfg, &rt, &c).unwrap();
    }
    for (change, want) in [(real(81, 82), "too many reals: at most 3"), (add(83, "198.18.0.100"), "too many services")]
    {
        assert_same_checks(&cfg, &rt, &change);
        assert!(apply(&cfg, &rt, &change).unwrap_err().to_string().contains(want), "{change:?}");
    }
}

#[test]
fn a_real_server_behind_a_gateway_needs_its_route() {
    let cfg = Config::embedded_default();
    let mut rt = cfg.runtime();
    let far = Change::RealAdd {
        service: key(80),
        addr: ip("198.18.2.2"),
        port: 8080,
        weight: 1,
        forward: F,
        thresholds: (0, 0),
    };
    assert!(apply(&cfg, &rt, &far).unwrap_err().to_string().contains("no route reaches it"));
    rt = apply(&cfg, &rt, &Change::RouteAdd { prefix: ip("198.18.2.0"), len: 24, via: ip("198.18.1.2") }).unwrap();
    rt = apply(&cfg, &rt, &far).unwrap();
    assert_eq!(rt.next_hop(ip("198.18.2.2")), Some(ip("198.18.1.2")));
    // Direct routing needs the real server on a port's network.
    let dr = Change::RealAdd {
        service: key(80),
        addr: ip("198.18.2.3"),
        port: 80,
        weight: 1,
        forward: conf::Forward::Dr,
        thresholds: (0, 0),
    };
    assert!(apply(&cfg, &rt, &dr).unwrap_err().to_string().contains("direct routing needs"));
    // The route cannot go while the real server needs it.
    let del = Change::RouteDel { prefix: ip("198.18.2.0"), len: 24 };
    assert!(apply(&cfg, &rt, &del).unwrap_err().to_string().contains("no route reaches it"));
}

#[test]
fn quick_start_sequence_builds_a_service() {
    let cfg = Config::embedded_default();
    let mut rt = cfg.runtime();
    rt.services.clear();
    for c in [
        Change::ServiceAdd {
            service: key(8080),
            scheduler: "rr".into(),
            persistence: 0,
            persistence_prefix: 0,
            proxy_protocol: conf::ProxyProtocol::Off,
            group: None,
        },
        Change::RealAdd {
            service: key(8080),
            addr: ip("198.18.1.2"),
            port: 80,
            weight: 1,
            forward: F,
            thresholds: (0, 0),
        },
        Change::LaddrAdd { service: key(8080), addr: ip("198.18.1.254"), port: None },
    ] {
        rt = apply(&cfg, &rt, &c).unwrap();
    }
    let s = &rt.services[0];
    assert_eq!((s.reals.len(), s.local_addresses.len(), s.reals[0].port), (1, 1, 80));
}

/// DPVS's `ipvsadm --add-laddr -z LIP -t VIP:PORT -F dpdk0`: a local address no port has is
/// installed on the port as a /32 `sapool` address, which lives while a service uses it, and
/// survives a dump and reload; an address of another port or a missing port is refused and
/// changes nothing.
#[test]
fn a_local_address_given_with_its_port_is_installed_there_and_removed_with_its_last_use() {
    let cfg = Config::embedded_default();
    let mut rt = cfg.runtime();
    let lip = ip("198.18.0.200");
    let add = |service, port: &str| Change::LaddrAdd { service, addr: lip, port: Some(port.into()) };
    let add_443 = Change::ServiceAdd {
        service: key(443),
        scheduler: "rr".into(),
        persistence: 0,
        persistence_prefix: 0,
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
    };
    for c in [add(key(80), "dpdk0"), add_443, add(key(443), "dpdk0")] {
        rt = apply(&cfg, &rt, &c).unwrap();
    }
    let installed = conf::IfAddr { port: 0, addr: lip, prefix: 32, sapool: true };
    assert_eq!(rt.addresses.iter().filter(|a| a.addr == lip).collect::<Vec<_>>(), [&installed]);
    assert!(rt.services.iter().all(|s| s.local_addresses.contains(&lip)));
    let text = conf::replace_runtime_tables(conf::EMBEDDED_DEFAULT, &cfg.render_runtime(&rt)).unwrap();
    assert!(text.contains("address = \"198.18.0.200/32\"\nsapool = true"), "{text}");
    assert_eq!(Config::from_str(&text, "dump").unwrap().runtime(), rt, "dump then reload is a fixed point");
    for (c, error) in [
        (add(key(80), "dpdk1"), "198.18.0.200 is an address of dpdk0, not of dpdk1"),
        (add(key(80), "dpdk9"), "no port \"dpdk9\""),
        (add(key(80), "dpdk0"), "already"),
        (
            Change::LaddrAdd { service: key(80), addr: ip("198.18.1.254"), port: Some("dpdk0".into()) },
            "198.18.1.254 is an address of dpdk1, not of dpdk0",
        ),
    ] {
        assert!(apply(&cfg, &rt, &c).unwrap_err().to_string().contains(error), "{c:?}");
    }
    // It stays while another service uses it, and goes with the last.
    rt = apply(&cfg, &rt, &Change::LaddrDel { service: key(80), addr: lip }).unwrap();
    assert!(rt.addresses.contains(&installed));
    let gone = apply(&cfg, &rt, &Change::LaddrDel { service: key(443), addr: lip }).unwrap();
    assert!(!gone.addresses.iter().any(|a| a.addr == lip), "{:?}", gone.addresses);
    let gone = apply(&cfg, &rt, &Change::ServiceDel { service: key(443) }).unwrap();
    assert!(!gone.addresses.iter().any(|a| a.addr == lip));
    // An address the operator added stays when its last service lets it go.
    let kept = apply(&cfg, &rt, &Change::LaddrDel { service: key(80), addr: ip("198.18.1.254") }).unwrap();
    assert!(kept.addresses.iter().any(|a| a.addr == ip::<std::net::IpAddr>("198.18.1.254")));
}

/// `ipvsadm -R`'s changes: made in order on one copy, checked once; the first that cannot be
/// made is named by its index, a result that breaks a rule is refused whole.
#[test]
fn a_list_of_changes_is_made_all_or_none() {
    let cfg = Config::embedded_default();
    let rt = cfg.runtime();
    let add = Change::ServiceAdd {
        service: key(443),
        scheduler: "rr".into(),
        persistence: 0,
        persistence_prefix: 0,
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
    };
    let real = |addr: &str| Change::RealAdd {
        service: key(443),
        addr: ip(addr),
        port: 443,
        weight: 1,
        forward: F,
        thresholds: (0, 0),
    };
    let laddr = Change::LaddrAdd { service: key(443), addr: ip("198.18.1.200"), port: Some("dpdk1".into()) };
    let next = apply_all(&cfg, &rt, &[Change::ServiceClear, add.clone(), real("198.18.1.2"), laddr.clone()]).unwrap();
    assert_eq!(next.services.len(), 1);
    assert_eq!((next.services[0].port, next.services[0].reals.len()), (443, 1));
    assert!(next.addresses.iter().any(|a| a.addr == ip::<std::net::IpAddr>("198.18.1.200") && a.sapool));
    // The service is looked up by key as it goes: deleted and added back within the list.
    let again = [add.clone(), Change::ServiceDel { service: key(443) }, add.clone(), real("198.18.1.2")];
    assert_eq!(apply_all(&cfg, &rt, &again).unwrap().services.len(), 2);
    let e = apply_all(&cfg, &rt, &[add.clone(), real("198.18.1.2"), real("198.18.1.2")]).unwrap_err();
    assert_eq!(e.to_string(), "change 2: 198.18.1.2:443 is a real server of tcp 198.18.0.100:443 already");
    let e = apply_all(&cfg, &rt, &[add, real("10.9.9.9")]).unwrap_err();
    assert!(matches!(e, BatchError::Invalid(_)) && e.to_string().contains("10.9.9.9"), "{e}");
}

#[test]
fn reload_refuses_a_changed_port_section() {
    let dir = std::env::temp_dir().join(format!("dpvs-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = Config::embedded_default();
    let same = dir.join("same.toml");
    std::fs::write(&same, conf::EMBEDDED_DEFAULT.replace("weight = 1", "weight = 5")).unwrap();
    assert_eq!(reload(&cfg, &same).unwrap().services[0].reals[0].weight, 5);
    let ports = dir.join("ports.toml");
    std::fs::write(
        &ports,
        conf::EMBEDDED_DEFAULT.replace("name = \"dpdk1\"\nvdev = \"net_tap1,", "name = \"dpdk1\"\nvdev = \"net_tap7,"),
    )
    .unwrap();
    let e = reload(&cfg, &ports).unwrap_err();
    assert!(e.to_string().contains("[[ports]] differs from the running configuration"), "{e}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, conf::EMBEDDED_DEFAULT.replace("port = 8080", "port = 0")).unwrap();
    assert!(reload(&cfg, &bad).unwrap_err().to_string().contains("bad.toml:"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn access_lists_and_thresholds_round_trip_through_the_file_form() {
    let cfg = Config::embedded_default();
    let mut rt = cfg.runtime();
    for c in [
        Change::AclAdd { service: key(80), list: AclList::Deny, prefix: net("198.18.9.7") },
        Change::AclAdd { service: key(80), list: AclList::Allow, prefix: net("198.18.0.0/16") },
        Change::RealEdit {
            service: key(80),
            addr: ip("198.18.1.2"),
            port: 8080,
            weight: 2,
            forward: None,
            upper: Some(100),
            lower: Some(60),
        },
    ] {
        rt = apply(&cfg, &rt, &c).unwrap();
    }
    let again = apply(&cfg, &rt, &Change::AclAdd { service: key(80), list: AclList::Deny, prefix: net("198.18.9.7") });
    assert!(again.unwrap_err().to_string().contains("already"));
    let text = conf::replace_runtime_tables(conf::EMBEDDED_DEFAULT, &cfg.render_runtime(&rt)).unwrap();
    let back = Config::from_str(&text, "dump").unwrap();
    assert_eq!(back.runtime(), rt, "dump then reload is a fixed point:\n{text}");
}

/// A change drawn from `n`: services, their real servers and local addresses (installed with
/// `-F` or not), addresses, neighbours and routes, among a few of each so that they collide.
fn drawn_change(n: u64) -> Change {
    let pick = |k: u64| (n >> 8) % k;
    let service = key(1000 + pick(6) as u16);
    let real: std::net::Ipv4Addr = ip(&format!("198.18.1.{}", 10 + pick(5)));
    let laddr = ip(&format!("198.18.1.{}", 200 + pick(3)));
    match n % 13 {
        0 | 1 => Change::ServiceAdd {
            service,
            scheduler: ["rr", "wlc", "mh"][pick(3) as usize].into(),
            persistence: 0,
            persistence_prefix: 0,
            proxy_protocol: conf::ProxyProtocol::Off,
            group: None,
        },
        2 => Change::ServiceDel { service },
        3 | 4 => Change::RealAdd { service, addr: real.into(), port: 80, weight: 1, forward: F, thresholds: (0, 0) },
        5 => Change::RealEdit {
            service,
            addr: real.into(),
            port: 80,
            weight: 3,
            forward: None,
            upper: None,
            lower: None,
        },
        6 => Change::RealDel { service, addr: real.into(), port: 80 },
        7 => Change::LaddrAdd { service, addr: laddr, port: (pick(2) == 0).then(|| "dpdk1".into()) },
        8 => Change::LaddrDel { service, addr: laddr },
        9 => Change::AddrAdd { port: "dpdk0".into(), addr: ip(&format!("198.18.0.{}", 150 + pick(3))), prefix: 32 },
        10 => Change::NeighSet { addr: real.into(), mac: [2, 0, 0, 0, 1, pick(200) as u8], port: "dpdk1".into() },
        11 => Change::NeighDel { addr: real.into() },
        _ if pick(40) == 0 => Change::ServiceClear,
        _ => Change::AclAdd { service, list: AclList::Deny, prefix: net(&format!("192.0.2.{}", pick(4))) },
    }
}

#[test]
fn the_delta_of_staged_changes_takes_the_published_generation_to_them_and_refusals_roll_back() {
    let cfg = Config::embedded_default();
    let mut latest = cfg.runtime();
    let mut derived = Derived::of(&latest);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let (mut deltas, mut snapshots, mut refused, mut rolled_back) = (0, 0, 0, 0);
    for _ in 0..400 {
        // A batch of changes made in place and staged together, as requests arriving while a
        // generation is in flight are; a refused one changes nothing.
        let published = latest.clone();
        let tables = (published.addresses.clone(), published.neighbours.clone(), published.routes.clone());
        let mut staged: Option<Staged> = None;
        for _ in 0..1 + seed % 4 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let before = latest.clone();
            match apply_in(&cfg, (&mut latest, &mut derived), &drawn_change(seed >> 16), false) {
                Ok(next) => match staged.as_mut() {
                    Some(s) => s.then(next),
                    None => staged = Some(next),
                },
                Err(_) => {
                    assert_eq!(latest, before, "a refused change leaves the configuration as it was");
                    refused += 1;
                }
            }
            let fresh = Derived::of(&latest);
            assert_eq!((&derived.index, &derived.counts), (&fresh.index, &fresh.counts), "lookups kept up to date");
        }
        let Some(next) = staged else { continue };
        match delta(&tables, &latest, &derived.index, &next.touched) {
            Some(d) => {
                let mut replayed = published.clone();
                d.apply(&mut replayed);
                assert_eq!(replayed, latest, "{d:?}");
                deltas += 1;
            }
            None => {
                assert!(next.touched.all, "a snapshot only for a clear or many services");
                snapshots += 1;
            }
        }
        // Every tenth batch is not published (a generation buffer too small, say): it is
        // taken back whole.
        if (seed >> 33).is_multiple_of(10) {
            roll_back(&mut latest, &mut derived, next.undo);
            assert_eq!(latest, published, "the staged changes taken back");
            rolled_back += 1;
        }
    }
    assert!(deltas > 200 && snapshots > 0, "{deltas} deltas, {snapshots} snapshots");
    assert!(refused > 100 && rolled_back > 10, "{refused} refused, {rolled_back} rolled back");
}

#[test]
fn health_is_reported_for_checked_services_only_and_survives_a_reload() {
    let cfg = Config::embedded_default();
    let rt = cfg.runtime();
    let (addr, port) = (ip("198.18.1.2"), 8080);
    let health = |down| Change::RealHealth { service: key(80), addr, port, down };
    let e = apply(&cfg, &rt, &health(true)).unwrap_err();
    assert_eq!(e.to_string(), "tcp 198.18.0.100:80 has no health check: give it one first (dpvsctl check set)");
    let check = conf::HealthCheck {
        probe: conf::Probe::Http { path: "/health".into(), status: 200, body: String::new() },
        port: 0,
        interval_ms: 1000,
        timeout_ms: 500,
        rise: 2,
        fall: 3,
        on_failure: conf::OnFailure::Inhibit,
    };
    let set = Change::CheckSet { service: key(80), check: Some(check.clone()) };
    let checked = apply(&cfg, &rt, &set).unwrap();
    let down = apply(&cfg, &checked, &health(true)).unwrap();
    let r = down.services[0].reals[0];
    assert!(r.down && r.weight == 1 && r.effective_weight() == 0, "{r:?}");
    let e = apply(&cfg, &down, &Change::RealHealth { service: key(80), addr, port: 81, down: true }).unwrap_err();
    assert!(e.to_string().contains("198.18.1.2:81 is not a real server of tcp 198.18.0.100:80"), "{e}");
    // A check that breaks the file's rules is refused as the file's would be.
    let bad = Change::CheckSet { service: key(80), check: Some(conf::HealthCheck { timeout_ms: 2000, ..check }) };
    let e = apply(&cfg, &down, &bad).unwrap_err();
    assert!(e.to_string().starts_with("check.timeout_ms: a check must end before the next starts"), "{e}");
    // A reload keeps what the checker found, for services that still check; without a check
    // every real server is up.
    let mut reloaded = checked.clone();
    keep_health(&down, &mut reloaded);
    assert!(reloaded.services[0].reals[0].down);
    let mut unchecked = rt.clone();
    keep_health(&down, &mut unchecked);
    assert!(!unchecked.services[0].reals[0].down);
    let off = apply(&cfg, &down, &Change::CheckSet { service: key(80), check: None }).unwrap();
    assert!(!off.services[0].reals[0].down && off.services[0].check.is_none());
    // The file form carries the check, not the health.
    let text = cfg.render_runtime(&down).to_string();
    assert!(text.contains("[services.check]\ntype = \"http\"\npath = \"/health\""), "{text}");
    assert!(!text.contains("down"), "{text}");
}

/// A VRRP backup gives its VIP up and keeps the service (keepalived's notify script runs
/// `dpip addr del`): allowed while another address of the port covers the VIP's network.
#[test]
fn a_vip_may_go_while_its_port_keeps_its_network_and_a_local_address_may_not() {
    let cfg = Config::embedded_default();
    let rt = cfg.runtime();
    let vip: IpAddr = ip("198.18.0.100");
    // The embedded default's VIP is dpdk0's only address: its network would go with it.
    let e = apply(&cfg, &rt, &Change::AddrDel { addr: vip }).unwrap_err();
    assert!(e.to_string().contains("198.18.0.100 is used by service tcp 198.18.0.100:80"), "{e}");
    let own = Change::AddrAdd { port: "dpdk0".into(), addr: ip("198.18.0.254"), prefix: 24 };
    let with_own = apply(&cfg, &rt, &own).unwrap();
    let backup = apply(&cfg, &with_own, &Change::AddrDel { addr: vip }).unwrap();
    assert!(!backup.addresses.iter().any(|a| a.addr == vip) && backup.services.len() == 1);
    // Back as a /32 when it is master again.
    let master = apply(&cfg, &backup, &Change::AddrAdd { port: "dpdk0".into(), addr: vip, prefix: 32 }).unwrap();
    assert!(master.addresses.iter().any(|a| a.addr == vip && a.prefix == 32));
    // A service on a VIP on no port's network is refused.
    let far = Change::ServiceAdd {
        service: ServiceKey { protocol: Protocol::Tcp, vip: ip("198.18.9.9"), port: 80 },
        scheduler: "rr".into(),
        persistence: 0,
        persistence_prefix: 0,
        proxy_protocol: conf::ProxyProtocol::Off,
        group: None,
    };
    let e = apply(&cfg, &backup, &far).unwrap_err();
    assert!(e.to_string().contains("198.18.9.9 is not an interface address and on no port's network"), "{e}");
    // A local address stays while a service uses it.
    let e = apply(&cfg, &backup, &Change::AddrDel { addr: ip("198.18.1.254") }).unwrap_err();
    assert!(e.to_string().contains("used by service"), "{e}");
}

/// A reload keeps the VIP keepalived gave the master at run time when the file does not list
/// it but its service is still there.
#[test]
fn a_reload_keeps_a_vip_held_at_run_time_that_the_file_does_not_list() {
    let cfg = Config::embedded_default();
    let rt = cfg.runtime();
    let with_own =
        apply(&cfg, &rt, &Change::AddrAdd { port: "dpdk0".into(), addr: ip("198.18.0.254"), prefix: 24 }).unwrap();
    let vip: IpAddr = ip("198.18.0.100");
    // The file: the port's own address, not the VIP.
    let mut file = apply(&cfg, &with_own, &Change::AddrDel { addr: vip }).unwrap();
    let held = with_own.clone();
    keep_held_vips(&held, &mut file);
    assert!(file.addresses.iter().any(|a| a.addr == vip), "{:?}", file.addresses);
    cfg.check_runtime(&file).unwrap();
    // Not once its service is gone from the file.
    let mut gone = apply(&cfg, &with_own, &Change::ServiceDel { service: key(80) }).unwrap();
    gone = apply(&cfg, &gone, &Change::AddrDel { addr: vip }).unwrap();
    keep_held_vips(&held, &mut gone);
    assert!(!gone.addresses.iter().any(|a| a.addr == vip));
}
