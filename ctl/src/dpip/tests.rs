//! dpip command lines -> operations, and the listings.

use super::*;

fn p(line: &str) -> Result<Op, String> {
    parse(&line.split_whitespace().map(str::to_owned).collect::<Vec<_>>()).map_err(|e| e.to_string())
}

#[test]
fn command_lines_parse() {
    let a: Ipv4Addr = "198.18.0.100".parse().unwrap();
    assert_eq!(
        p("addr add 198.18.0.100/24 dev dpdk0"),
        Ok(Op::Change(Change::AddrAdd { port: "dpdk0".into(), addr: a.into(), prefix: 24 }))
    );
    assert_eq!(p("addr del 198.18.0.100/24 dev dpdk0"), Ok(Op::Change(Change::AddrDel { addr: a.into() })));
    let a6: std::net::IpAddr = "2001:db8::100".parse().unwrap();
    assert_eq!(
        p("addr add 2001:db8::100/64 dev dpdk0"),
        Ok(Op::Change(Change::AddrAdd { port: "dpdk0".into(), addr: a6, prefix: 64 }))
    );
    assert_eq!(p("-6 addr del 2001:db8::100 dev dpdk0"), Ok(Op::Change(Change::AddrDel { addr: a6 })));
    assert_eq!(p("a show"), Ok(Op::AddrShow { dev: None, family: None }));
    assert_eq!(p("addr show dev dpdk1"), Ok(Op::AddrShow { dev: Some("dpdk1".into()), family: None }));
    assert_eq!(p("addr"), Ok(Op::AddrShow { dev: None, family: None }));
    assert_eq!(p("-6 addr show"), Ok(Op::AddrShow { dev: None, family: Some(Family::V6) }));
    assert_eq!(p("route show"), Ok(Op::RouteShow { family: None }));
    assert_eq!(p("-6 route show"), Ok(Op::RouteShow { family: Some(Family::V6) }));
    let gw: std::net::IpAddr = "198.18.1.1".parse().unwrap();
    assert_eq!(
        p("route add default via 198.18.1.1 dev dpdk1"),
        Ok(Op::Change(Change::RouteAdd { prefix: Ipv4Addr::UNSPECIFIED.into(), len: 0, via: gw }))
    );
    let gw6: std::net::IpAddr = "2001:db8:1::1".parse().unwrap();
    assert_eq!(
        p("-6 route add default via 2001:db8:1::1 dev dpdk1"),
        Ok(Op::Change(Change::RouteAdd { prefix: std::net::Ipv6Addr::UNSPECIFIED.into(), len: 0, via: gw6 }))
    );
    assert_eq!(
        p("route add 2001:db8:2::/48 via 2001:db8:1::1"),
        Ok(Op::Change(Change::RouteAdd { prefix: "2001:db8:2::".parse().unwrap(), len: 48, via: gw6 }))
    );
    assert_eq!(
        p("route del 198.18.2.0/24"),
        Ok(Op::Change(Change::RouteDel { prefix: "198.18.2.0".parse().unwrap(), len: 24 }))
    );
    assert_eq!(
        p("neigh add 198.18.1.2 lladdr 02:00:00:00:01:02 dev dpdk1"),
        Ok(Op::Change(Change::NeighSet {
            addr: "198.18.1.2".parse().unwrap(),
            mac: [2, 0, 0, 0, 1, 2],
            port: "dpdk1".into()
        }))
    );
    assert_eq!(p("neigh show"), Ok(Op::NeighShow));
    assert_eq!(p("link show"), Ok(Op::LinkShow { stats: false }));
    assert_eq!(p("-s link show"), Ok(Op::LinkShow { stats: true }));
    let bad = [
        ("", "usage"),
        ("frob show", "unknown object \"frob\""),
        ("addr add 198.18.0.100 dev dpdk0", "prefix length"),
        ("addr add 198.18.0.100/24", "\"dev\" is required"),
        ("addr add 198.18.0.100/24 dev", "needs a value"),
        ("addr add 198.18.0.100/24 dev dpdk0 extra", "unexpected \"extra\""),
        ("addr add 198.18.0.100/24 dev dpdk0 via 1.2.3.4", "\"via\" is not supported"),
        ("addr flush", "unknown command \"flush\""),
        ("route add 198.18.2.0/24 dev dpdk1", "\"via\" is required"),
        ("route add 198.18.2.0/24 via 198.18.1.x", "IPv4 or IPv6"),
        ("route add 198.18.2.0/24 via 2001:db8:1::1", "not of the family of 198.18.2.0/24"),
        ("-6 route add 198.18.2.0/24 via 198.18.1.1", "-6: expected an IPv6 address"),
        ("neigh add 198.18.1.2 lladdr 02:00 dev dpdk1", "MAC"),
        ("neigh add 198.18.1.x lladdr 02:00:00:00:01:02 dev dpdk1", "IPv4 or IPv6"),
        ("-s addr show", "only for `link show`"),
        ("-6 addr add 198.18.0.100/24 dev dpdk0", "-6: expected an IPv6 address"),
        ("-4 addr add 2001:db8::1/64 dev dpdk0", "-4: expected an IPv4 address"),
        ("addr add 2001:db8::1/129 dev dpdk0", "0..=128"),
        ("addr del 2001:db8::x dev dpdk0", "IPv4 or IPv6"),
    ];
    for (line, needle) in bad {
        let e = p(line).unwrap_err();
        assert!(e.contains(needle), "{line:?}: {e:?} lacks {needle:?}");
    }
}

#[test]
fn listings() {
    let rt = conf::Config::embedded_default().runtime();
    let ports = vec!["dpdk0".to_owned(), "dpdk1".to_owned()];
    assert_eq!(
        addr_show(&rt, &ports, None, None),
        "inet 198.18.0.100/24 scope global dpdk0\ninet 198.18.1.254/24 scope global dpdk1\n"
    );
    assert_eq!(addr_show(&rt, &ports, Some("dpdk1"), None), "inet 198.18.1.254/24 scope global dpdk1\n");
    let mut with_lip = rt.clone();
    with_lip.addresses.push(conf::IfAddr { port: 0, addr: "198.18.0.200".parse().unwrap(), prefix: 32, sapool: true });
    assert_eq!(
        addr_show(&with_lip, &ports, Some("dpdk0"), None),
        "inet 198.18.0.100/24 scope global dpdk0\ninet 198.18.0.200/32 scope global dpdk0 sapool\n"
    );
    with_lip.addresses.push(conf::IfAddr { port: 1, addr: "2001:db8::1".parse().unwrap(), prefix: 64, sapool: false });
    assert_eq!(addr_show(&with_lip, &ports, None, Some(Family::V6)), "inet6 2001:db8::1/64 scope global dpdk1\n");
    assert_eq!(
        addr_show(&with_lip, &ports, Some("dpdk1"), Some(Family::V4)),
        "inet 198.18.1.254/24 scope global dpdk1\n"
    );
    assert_eq!(
        route_show(&rt, &ports, None),
        "inet 198.18.0.0/24 src 198.18.0.100 dev dpdk0 scope link\ninet 198.18.1.0/24 src 198.18.1.254 dev dpdk1 scope link\n"
    );
    let mut rt6 = rt.clone();
    rt6.addresses.push(conf::IfAddr { port: 1, addr: "2001:db8:1::fe".parse().unwrap(), prefix: 64, sapool: false });
    let (prefix, via) = ("2001:db8:2::".parse().unwrap(), "2001:db8:1::1".parse().unwrap());
    rt6.routes.push(conf::Route { prefix, len: 48, via });
    assert_eq!(
        route_show(&rt6, &ports, Some(Family::V6)),
        "inet6 2001:db8:1::/64 src 2001:db8:1::fe dev dpdk1 scope link\n\
         inet6 2001:db8:2::/48 via 2001:db8:1::1 dev dpdk1 scope global\n"
    );
    let e = |addr: &str, mac: [u8; 6], learned_ns| {
        let addr = match addr.parse().unwrap() {
            std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(a) => a.octets(),
        };
        shm_layout::Learned { addr, port: 1, mac, learned_ns }
    };
    let learned = [
        e("198.18.1.2", [2, 0, 0, 0, 9, 9], 5),
        e("198.18.1.7", [2, 0, 0, 0, 1, 7], 5),
        e("198.18.1.8", [2, 0, 0, 0, 1, 8], 0),
        e("2001:db8::8", [2, 0, 0, 0, 1, 9], 5),
    ];
    assert_eq!(
        neigh_show(&crate::cmd::service::neigh_view(&rt, (&learned, shm_layout::NEIGH_REACHABLE_NS + 2), &ports)),
        "ip: 198.18.1.2       mac: 02:00:00:00:01:02   state: PERMANENT   dev: dpdk1\n\
         ip: 198.18.1.7       mac: 02:00:00:00:01:07   state: REACHABLE   dev: dpdk1\n\
         ip: 198.18.1.8       mac: 02:00:00:00:01:08   state: STALE       dev: dpdk1\n\
         ip: 2001:db8::8      mac: 02:00:00:00:01:09   state: REACHABLE   dev: dpdk1\n",
        "a static entry hides a learned one; one not confirmed for 30 s is stale"
    );
}
