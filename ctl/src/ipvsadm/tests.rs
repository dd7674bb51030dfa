//! ipvsadm command lines -> operations, and the listings.

use super::*;

const F: conf::Forward = conf::Forward::Fnat;
const DR: conf::Forward = conf::Forward::Dr;

fn op(line: &str) -> Result<Op, String> {
    let args =
        Args::try_parse_from(std::iter::once("ipvsadm").chain(line.split_whitespace())).map_err(|e| e.to_string())?;
    args.op().map_err(|e| e.to_string())
}

fn net(t: &str) -> conf::Prefix {
    conf::Prefix::parse(t).unwrap()
}

fn key(p: conf::Protocol, vip: &str) -> ServiceKey {
    let a: SocketAddr = vip.parse().unwrap();
    ServiceKey { protocol: p, vip: a.ip(), port: a.port() }
}

#[test]
fn dpvs_quick_start_lines_parse() {
    use conf::Protocol::{Tcp, Udp};
    let vip = key(Tcp, "198.18.0.100:80");
    let rs: IpAddr = "198.18.1.2".parse().unwrap();
    let cases: Vec<(&str, Op)> = vec![
        (
            "-A -t 198.18.0.100:80 -s rr",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            }),
        ),
        (
            "--add-service --tcp-service 198.18.0.100:80",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "wlc".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            }),
        ),
        (
            "-E -t 198.18.0.100:80 -s mh",
            Op::Change(Change::ServiceEdit {
                service: vip,
                scheduler: Some("mh".into()),
                persistence: None,
                persistence_prefix: None,
                proxy_protocol: None,
            }),
        ),
        ("-D -u 198.18.0.100:53", Op::Change(Change::ServiceDel { service: key(Udp, "198.18.0.100:53") })),
        ("-C", Op::Change(Change::ServiceClear)),
        (
            "-A -t 198.18.0.100:80 -s rr -p 600",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "rr".into(),
                persistence: 600,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            }),
        ),
        (
            "-A -t 198.18.0.100:80 -p",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "wlc".into(),
                persistence: 360,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            }),
        ),
        (
            "-A -t 198.18.0.100:80 -s rr -p 600 -M 255.255.255.0",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "rr".into(),
                persistence: 600,
                persistence_prefix: 24,
                proxy_protocol: conf::ProxyProtocol::Off,
                group: None,
            }),
        ),
        (
            "-E -t 198.18.0.100:80 --netmask 16",
            Op::Change(Change::ServiceEdit {
                service: vip,
                scheduler: None,
                persistence: None,
                persistence_prefix: Some(16),
                proxy_protocol: None,
            }),
        ),
        (
            "-E -t [2001:db8::100]:80 -M 64",
            Op::Change(Change::ServiceEdit {
                service: key(Tcp, "[2001:db8::100]:80"),
                scheduler: None,
                persistence: None,
                persistence_prefix: Some(64),
                proxy_protocol: None,
            }),
        ),
        (
            "-E -t 198.18.0.100:80 -M 255.255.255.255",
            Op::Change(Change::ServiceEdit {
                service: vip,
                scheduler: None,
                persistence: None,
                persistence_prefix: Some(0),
                proxy_protocol: None,
            }),
        ),
        (
            "-E -t 198.18.0.100:80 -p 0",
            Op::Change(Change::ServiceEdit {
                service: vip,
                scheduler: None,
                persistence: Some(0),
                persistence_prefix: None,
                proxy_protocol: None,
            }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2 -b",
            Op::Change(Change::RealAdd { service: vip, addr: rs, port: 80, weight: 1, forward: F, thresholds: (0, 0) }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 5",
            Op::Change(Change::RealAdd {
                service: vip,
                addr: rs,
                port: 8080,
                weight: 5,
                forward: F,
                thresholds: (0, 0),
            }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2 -g",
            Op::Change(Change::RealAdd {
                service: vip,
                addr: rs,
                port: 80,
                weight: 1,
                forward: DR,
                thresholds: (0, 0),
            }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2",
            Op::Change(Change::RealAdd {
                service: vip,
                addr: rs,
                port: 80,
                weight: 1,
                forward: DR,
                thresholds: (0, 0),
            }),
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 0",
            Op::Change(Change::RealEdit {
                service: vip,
                addr: rs,
                port: 8080,
                weight: 0,
                forward: Some(F),
                upper: None,
                lower: None,
            }),
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.18.1.2:8080 -w 2",
            Op::Change(Change::RealEdit {
                service: vip,
                addr: rs,
                port: 8080,
                weight: 2,
                forward: None,
                upper: None,
                lower: None,
            }),
        ),
        (
            "-d -t 198.18.0.100:80 -r 198.18.1.2:8080",
            Op::Change(Change::RealDel { service: vip, addr: rs, port: 8080 }),
        ),
        (
            "--add-laddr -z 198.18.1.254 -t 198.18.0.100:80 -F dpdk1",
            Op::Change(Change::LaddrAdd {
                service: vip,
                addr: "198.18.1.254".parse().unwrap(),
                port: Some("dpdk1".into()),
            }),
        ),
        (
            "-Q -z 198.18.1.254 -t 198.18.0.100:80 -F dpdk1",
            Op::Laddr(Change::LaddrDel { service: vip, addr: "198.18.1.254".parse().unwrap() }, "dpdk1".into()),
        ),
        ("-G", Op::GetLaddr(None)),
        ("-G -t 198.18.0.100:80", Op::GetLaddr(Some(vip))),
        ("-ln", Op::List),
        ("-L -n", Op::List),
        ("-Sn", Op::Save),
        ("-lnc", Op::ListConnections),
        ("-ln --stats", Op::ListStats { rate: false }),
        ("-L --rate", Op::ListStats { rate: true }),
        ("-R", Op::Restore),
        ("-Z", Op::Zero(None)),
        (
            "-A -t 198.18.0.100:80 -s rr --proxy-protocol v2",
            Op::Change(Change::ServiceAdd {
                service: vip,
                scheduler: "rr".into(),
                persistence: 0,
                persistence_prefix: 0,
                proxy_protocol: conf::ProxyProtocol::V2,
                group: None,
            }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2 -i",
            Op::Change(Change::RealAdd {
                service: vip,
                addr: rs,
                port: 80,
                weight: 1,
                forward: conf::Forward::Tunnel,
                thresholds: (0, 0),
            }),
        ),
        ("-Z -t 198.18.0.100:80", Op::Zero(Some(vip))),
        ("-ln --thresholds", Op::ListThresholds),
        ("--get-blklst", Op::GetAcl(AclList::Deny)),
        ("--get-whtlst", Op::GetAcl(AclList::Allow)),
        (
            "--add-blklst -k 198.18.9.0/24 -t 198.18.0.100:80",
            Op::Change(Change::AclAdd { service: vip, list: AclList::Deny, prefix: net("198.18.9.0/24") }),
        ),
        (
            "--del-whtlst -2 198.18.9.7 -t 198.18.0.100:80",
            Op::Change(Change::AclDel { service: vip, list: AclList::Allow, prefix: net("198.18.9.7/32") }),
        ),
        (
            "-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -x 100 -y 50",
            Op::Change(Change::RealAdd {
                service: vip,
                addr: rs,
                port: 8080,
                weight: 1,
                forward: F,
                thresholds: (100, 50),
            }),
        ),
        (
            "-e -t 198.18.0.100:80 -r 198.18.1.2:8080 -w 3 -x 0",
            Op::Change(Change::RealEdit {
                service: vip,
                addr: rs,
                port: 8080,
                weight: 3,
                forward: None,
                upper: Some(0),
                lower: None,
            }),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(op(line), Ok(want), "{line}");
    }
}

#[test]
fn bad_lines_name_what_is_wrong() {
    let cases = [
        ("-A", "a service is required"),
        ("-A -t 198.18.0.100", "198.18.0.100"),
        ("-A -t 198.18.0.100:80 -u 198.18.0.100:80", "cannot be used with"),
        ("-A -a -t 198.18.0.100:80", "cannot be used with"),
        ("-t 198.18.0.100:80", "required"),
        ("-a -t 198.18.0.100:80 -r 198.18.1.2 -b -g", "cannot be used with"),
        ("-A -t 198.18.0.100:80 -x 10", "thresholds"),
        ("--add-blklst -t 198.18.0.100:80", "-k|--blklst-address"),
        ("--add-whtlst -k 198.18.9.1 -t 198.18.0.100:80", "-2|--whtlst-address"),
        ("--add-blklst -k 198.18.9.1", "a service is required"),
        ("--add-blklst -k 198.18.9.1/24 -t 198.18.0.100:80", "host bits"),
        ("-L --stats --thresholds", "one at a time"),
        ("-a -t 198.18.0.100:80 -b", "-r|--real-server"),
        ("-a -t 198.18.0.100:80 -r 198.18.1.2:http -b", "198.18.1.2:http"),
        ("-a -t 198.18.0.100:80 -r 198.18.1.2 -b -w lots", "lots"),
        ("-E -t 198.18.0.100:80", "-s|--scheduler, -p|--persistent, -M|--netmask or --proxy-protocol"),
        ("-A -t 198.18.0.100:80 -p 60 -M 255.0.255.0", "-M: expected a netmask"),
        ("-A -t [2001:db8::100]:80 -p 60 -M 255.255.255.0", "prefix length from 1 to 128"),
        ("-A -t 198.18.0.100:80 --proxy-protocol v3", "v3"),
        ("--add-laddr -t 198.18.0.100:80 -F dpdk1", "-z|--laddr"),
        ("--add-laddr -z 198.18.1.254 -t 198.18.0.100:80", "-F|--ifname"),
        ("-L --stats --rate", "one at a time"),
    ];
    for (line, needle) in cases {
        let e = op(line).unwrap_err();
        assert!(e.contains(needle), "{line}: {e:?} lacks {needle:?}");
    }
}

#[test]
fn save_restores_what_it_lists() {
    let cfg = conf::Config::embedded_default();
    let rt = cfg.runtime();
    let ports = vec!["dpdk0".to_owned(), "dpdk1".to_owned()];
    let saved = save(&rt, &ports);
    assert_eq!(
        saved,
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 1\n\
         --add-laddr -z 198.18.1.254 -t 198.18.0.100:80 -F dpdk1\n"
    );
    for line in saved.lines() {
        assert!(matches!(op(line), Ok(Op::Change(_) | Op::Laddr(..))), "{line}");
    }
    let counts =
        HashMap::from([((6, "198.18.0.100".parse().unwrap(), 80, "198.18.1.2".parse().unwrap(), 8080), (3, 4))]);
    assert_eq!(
        list(&rt, &counts, 8192),
        "IP Virtual Server version 1.9.4 (size=8192)\nProt LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  198.18.0.100:80 rr\n  \
         -> 198.18.1.2:8080              FullNat 1      3          4\n"
    );
    assert!(check_laddr_port(&rt, &ports, "198.18.1.254".parse().unwrap(), "dpdk0")
        .unwrap_err()
        .to_string()
        .contains("of dpdk1"));
    assert!(check_laddr_port(&rt, &ports, "198.18.1.254".parse().unwrap(), "dpdk1").is_ok());
}

/// IPv6 services, real servers and local addresses as ipvsadm writes them (brackets around
/// an address with a port), parsed, listed and saved back.
#[test]
fn ipv6_services_parse_list_and_save() {
    use conf::Protocol::Tcp;
    let vip = key(Tcp, "[2001:db8::100]:80");
    let rs: IpAddr = "2001:db8:1::2".parse().unwrap();
    let real = |line: &str, port| {
        let want = Change::RealAdd {
            service: vip,
            addr: rs,
            port,
            weight: 1,
            forward: conf::Forward::Fnat,
            thresholds: (0, 0),
        };
        assert_eq!(op(line), Ok(Op::Change(want)), "{line}");
    };
    real("-a -t [2001:db8::100]:80 -r [2001:db8:1::2]:8080 -b", 8080);
    real("-a -t [2001:db8::100]:80 -r [2001:db8:1::2] -b", 80);
    real("-a -t [2001:db8::100]:80 -r 2001:db8:1::2 -b", 80);
    let laddr = "--add-laddr -z 2001:db8:1::fe -t [2001:db8::100]:80 -F dpdk1";
    let want = Change::LaddrAdd { service: vip, addr: "2001:db8:1::fe".parse().unwrap(), port: Some("dpdk1".into()) };
    assert_eq!(op(laddr), Ok(Op::Change(want)));
    assert!(op("-A -t 2001:db8::100:80").is_err(), "an IPv6 VIP with a port needs its brackets");

    let cfg = conf::Config::embedded_default();
    let mut rt = cfg.runtime();
    let mut s = (*rt.services[0]).clone();
    s.vip = "2001:db8::100".parse().unwrap();
    s.local_addresses = vec!["2001:db8:1::fe".parse().unwrap()];
    s.reals[0].addr = rs;
    rt.addresses.push(conf::IfAddr { port: 1, addr: "2001:db8:1::fe".parse().unwrap(), prefix: 64, sapool: false });
    rt.services = vec![s.into()];
    let ports = vec!["dpdk0".to_owned(), "dpdk1".to_owned()];
    let saved = save(&rt, &ports);
    assert_eq!(
        saved,
        "-A -t [2001:db8::100]:80 -s rr\n-a -t [2001:db8::100]:80 -r [2001:db8:1::2]:8080 -b -w 1\n\
         --add-laddr -z 2001:db8:1::fe -t [2001:db8::100]:80 -F dpdk1\n"
    );
    for line in saved.lines() {
        assert!(matches!(op(line), Ok(Op::Change(_) | Op::Laddr(..))), "{line}");
    }
    let listed = list(&rt, &HashMap::new(), 8192);
    assert!(listed.contains("TCP  [2001:db8::100]:80 rr\n  -> [2001:db8:1::2]:8080"), "{listed}");
}

#[test]
fn save_keeps_thresholds_and_access_lists() {
    let cfg = conf::Config::embedded_default();
    let mut rt = cfg.runtime();
    rt.services[0].reals[0].upper = 100;
    rt.services[0].reals[0].lower = 60;
    rt.services[0].deny = vec![net("198.18.9.0/24")];
    rt.services[0].allow = vec![net("198.18.0.7")];
    let saved = save(&rt, &["dpdk0".to_owned(), "dpdk1".to_owned()]);
    assert_eq!(
        saved,
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 1 -x 100 -y 60\n\
         --add-blklst -k 198.18.9.0/24 -t 198.18.0.100:80\n--add-whtlst -2 198.18.0.7 -t 198.18.0.100:80\n\
         --add-laddr -z 198.18.1.254 -t 198.18.0.100:80 -F dpdk1\n"
    );
    for line in saved.lines() {
        assert!(matches!(op(line), Ok(Op::Change(_) | Op::Laddr(..))), "{line}");
    }
    assert_eq!(
        get_acl(&rt, AclList::Deny),
        "VIP:VPORT                PROTO    BLACKLIST\n198.18.0.100:80          TCP      198.18.9.0/24\n"
    );
    assert!(list_thresholds(&rt, &HashMap::new(), 0)
        .contains("  -> 198.18.1.2:8080              100        60         0          0\n"));
}

/// [`op`] through [`Args::saved_form`] when it reads the line (`None` when it does not).
fn saved_op(line: &str) -> Option<Result<Op, String>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    Args::saved_form(&words).map(|a| a.op().map_err(|e| e.to_string()))
}

#[test]
fn the_saved_form_is_read_without_clap_as_clap_reads_it() {
    let mut rt = conf::Config::embedded_default().runtime();
    let s = &mut rt.services[0];
    s.reals[0].upper = 100;
    s.reals[0].lower = 60;
    s.persistence = 300;
    s.persistence_prefix = 24;
    s.proxy_protocol = conf::ProxyProtocol::V2;
    s.deny = vec![net("198.18.9.0/24")];
    s.allow = vec![net("198.18.0.7")];
    let mut udp = (**s).clone();
    udp.protocol = conf::Protocol::Udp;
    udp.reals[0].forward = DR;
    let mut nat = udp.clone();
    nat.port = 81;
    nat.reals[0].forward = conf::Forward::Nat;
    nat.reals[0].weight = 0;
    let mut tun = nat.clone();
    tun.port = 82;
    tun.reals[0].forward = conf::Forward::Tunnel;
    rt.services.extend([udp.into(), nat.into(), tun.into()]);
    let saved = save(&rt, &["dpdk0".to_owned(), "dpdk1".to_owned()]);
    assert!(saved.contains(" -p 300 -M 255.255.255.0 "), "{saved}");
    for line in saved.lines() {
        assert_eq!(saved_op(line), Some(op(line)), "every saved line is read without clap: {line}");
        assert!(op(line).is_ok(), "{line}");
    }
    // Other forms: read as clap reads them, or left to clap.
    let others = [
        "-A -t 198.18.0.100:80",
        "-E -t 198.18.0.100:80 -s wlc",
        "-e -t 198.18.0.100:80 -r 198.18.1.2 -w 3",
        "-a -u 198.18.0.100:53 -r 198.18.1.2 -g",
        "-A -t 198.18.0.100:80 -p",
        "-A -t 198.18.0.100:80 -p 0",
        "-A -t 198.18.0.100:80 -p 10 -M 33",
        "-A -t 198.18.0.100:80 -s rr -s wrr",
        "-A -t 198.18.0.100:80 -u 198.18.0.100:80",
        "-A -a -t 198.18.0.100:80",
        "-a -t 198.18.0.100:80 -r 198.18.1.2 -b -g",
        "-a -t 198.18.0.100:80 -r 198.18.1.2 -b -b",
        "-a -t 198.18.0.100:80 -r 198.18.1.2 -w -1",
        "-a -t 198.18.0.100:80 -r 198.18.1.2:http -b",
        "-a -t 198.18.0.100 -r 198.18.1.2 -b",
        "-A -t 198.18.0.100:80 -x 10",
        "-A -t 198.18.0.100:80 --proxy-protocol v3",
        "--add-laddr -t 198.18.0.100:80 -F dpdk1",
        "--add-blklst -k 198.18.9.1/24 -t 198.18.0.100:80",
        "-D -t 198.18.0.100:80",
        "-C",
        "-Lnc",
        "-t 198.18.0.100:80",
        "-A --tcp-service=198.18.0.100:80",
        "-A -t 198.18.0.100:80 -z",
    ];
    let mut read = 0;
    for line in others {
        if let Some(r) = saved_op(line) {
            assert_eq!(r, op(line), "{line}");
            read += 1;
        }
    }
    assert!(read >= 5, "the saved form reads the common lines ({read})");
}

#[test]
fn netmasks_read_as_ipvsadm_takes_them() {
    assert_eq!(parse_netmask("255.255.255.0", false), Ok(24));
    assert_eq!(parse_netmask("255.255.128.0", false), Ok(17));
    assert_eq!(parse_netmask("24", false), Ok(24));
    assert_eq!(parse_netmask("32", false), Ok(0), "the whole address");
    assert_eq!(parse_netmask("64", true), Ok(64));
    for (text, v6) in [
        ("255.0.255.0", false),
        ("33", false),
        ("0", false),
        ("0.0.0.0", false),
        ("255.255.255.0", true),
        ("129", true),
        ("x", false),
    ] {
        assert!(parse_netmask(text, v6).is_err(), "{text}");
    }
    assert_eq!(netmask_text("198.18.0.100".parse().unwrap(), 24), "255.255.255.0");
    assert_eq!(netmask_text("2001:db8::100".parse().unwrap(), 64), "64");
}
