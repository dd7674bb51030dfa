//! The public API: building, errors, and the invariants every kind shares.

mod common;

use std::net::SocketAddr;

use common::{equal, flows, id};
use sched::{identity, Backend, BuildError, ConhashBy, Kind, MhParams, Scheduler};

fn all_kinds() -> [Kind; 8] {
    [
        Kind::Rr,
        Kind::Wrr,
        Kind::Wlc,
        Kind::Lc,
        Kind::Fo,
        Kind::Conhash(ConhashBy::SourceIp),
        Kind::Conhash(ConhashBy::FiveTuple),
        Kind::Mh(MhParams { table_size: 251, hash_port: true }),
    ]
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(id).collect()
}

fn letters(s: &mut Scheduler, b: &[Backend], n: usize) -> String {
    let f = flows(1, 0)[0];
    (0..n).map(|_| s.pick(b, &f).map_or('-', |i| (b'A' + i as u8) as char)).collect()
}

#[test]
fn sequences_through_the_public_api() {
    let b = [Backend::new(4), Backend::new(3), Backend::new(2)];
    let mut wrr = Scheduler::new(Kind::Wrr, &b).unwrap();
    assert_eq!(letters(&mut wrr, &b, 9), "AABABCABC");
    let mut rr = Scheduler::new("rr".parse().unwrap(), &b).unwrap();
    assert_eq!(letters(&mut rr, &b, 4), "ABCA");
    rr.update(&b).unwrap();
    assert_eq!(letters(&mut rr, &b, 2), "AB", "an update restarts rr from the first backend");

    let loaded = [
        Backend { active_conns: 3, ..Backend::new(1) },
        Backend { active_conns: 4, ..Backend::new(2) },
        Backend { active_conns: 1, ..Backend::new(1) },
    ];
    assert_eq!(Scheduler::new(Kind::Lc, &loaded).unwrap().pick(&loaded, &flows(1, 0)[0]), Some(2));
    // wlc: 3/1, 4/2 = 2, 1/1: backend 2 (1) beats backend 1 (2).
    assert_eq!(Scheduler::new(Kind::Wlc, &loaded).unwrap().pick(&loaded, &flows(1, 0)[0]), Some(2));
    assert_eq!(Scheduler::new(Kind::Fo, &loaded).unwrap().pick(&loaded, &flows(1, 0)[0]), Some(1));
}

#[test]
fn every_kind_picks_only_backends_that_can_take_new_connections() {
    let mut b = equal(6);
    b[0].weight = 0;
    b[2].available = false;
    b[4].weight = 0;
    b[5].weight = 7;
    b[3].active_conns = 2;
    let fl = flows(2000, 21);
    for kind in all_kinds() {
        let mut s = Scheduler::with_ids(kind, &b, &ids(6)).unwrap();
        let mut seen = [false; 6];
        for f in &fl {
            let i = s.pick(&b, f).unwrap_or_else(|| panic!("{kind}: no pick"));
            assert!(b[i].can_take_new(), "{kind} picked {i}");
            seen[i] = true;
        }
        assert!(!seen[0] && !seen[2] && !seen[4], "{kind}: {seen:?}");
    }
}

#[test]
fn every_kind_returns_none_when_all_are_down_or_quiescent() {
    let mut b = equal(4);
    b[0].available = false;
    b[1].weight = 0;
    b[2].available = false;
    b[3].weight = 0;
    for kind in all_kinds() {
        let mut s = Scheduler::with_ids(kind, &b, &ids(4)).unwrap();
        for f in flows(50, 5) {
            assert_eq!(s.pick(&b, &f), None, "{kind}");
        }
        // Also when everything goes down after the build, without an update.
        let up = equal(4);
        let mut s = Scheduler::with_ids(kind, &up, &ids(4)).unwrap();
        for f in flows(50, 6) {
            assert_eq!(s.pick(&b, &f), None, "{kind} after going down");
        }
        let mut empty = Scheduler::with_ids::<&str>(kind, &[], &[]).unwrap();
        assert_eq!(empty.pick(&[], &flows(1, 1)[0]), None, "{kind} with no backends");
    }
}

#[test]
fn a_shorter_slice_never_yields_an_out_of_range_index() {
    let b = equal(8);
    for kind in all_kinds() {
        let mut s = Scheduler::with_ids(kind, &b, &ids(8)).unwrap();
        for f in flows(500, 8) {
            if let Some(i) = s.pick(&b[..3], &f) {
                assert!(i < 3, "{kind}: {i}");
            }
        }
    }
}

#[test]
fn build_errors() {
    let b = equal(3);
    assert_eq!(
        Scheduler::new(Kind::Mh(MhParams::default()), &b).unwrap_err(),
        BuildError::IdentityRequired { kind: "mh" }
    );
    assert_eq!(
        Scheduler::new(Kind::Conhash(ConhashBy::SourceIp), &b).unwrap_err(),
        BuildError::IdentityRequired { kind: "conhash" }
    );
    assert_eq!(
        Scheduler::with_ids(Kind::Conhash(ConhashBy::SourceIp), &b, &ids(2)).unwrap_err(),
        BuildError::IdentityCount { backends: 3, ids: 2 }
    );
    assert_eq!(
        Scheduler::with_ids::<&str>(Kind::Mh(MhParams::default()), &b, &[]).unwrap_err(),
        BuildError::IdentityCount { backends: 3, ids: 0 }
    );
    // Kinds that ignore identities take none or one per backend, nothing else.
    assert!(Scheduler::with_ids::<&str>(Kind::Rr, &b, &[]).is_ok());
    assert!(Scheduler::with_ids(Kind::Rr, &b, &ids(3)).is_ok());
    assert!(Scheduler::with_ids(Kind::Rr, &b, &ids(1)).is_err());
    assert_eq!(
        Scheduler::with_ids(Kind::Mh(MhParams::default()), &b, &["x", "y", "x"]).unwrap_err(),
        BuildError::DuplicateIdentity { first: 0, second: 2 }
    );
    // Duplicate identities do not matter to kinds that ignore them.
    assert!(Scheduler::with_ids(Kind::Wlc, &b, &["x", "x", "x"]).is_ok());
    let msg = BuildError::IdentityCount { backends: 3, ids: 2 }.to_string();
    assert!(msg.contains('3') && msg.contains('2'), "{msg}");
}

#[test]
fn a_failed_update_leaves_the_scheduler_as_it_was() {
    let b = equal(3);
    let mut s = Scheduler::with_ids(Kind::Mh(MhParams::default()), &b, &ids(3)).unwrap();
    let before = s.maglev().unwrap().slots().to_vec();
    assert!(s.update_with_ids(&equal(4), &ids(3)).is_err());
    assert!(s.update(&b).is_err(), "mh needs identities on update too");
    assert_eq!(s.maglev().unwrap().slots(), &before[..]);
    let mut rr = Scheduler::new(Kind::Rr, &b).unwrap();
    assert_eq!(letters(&mut rr, &b, 2), "AB");
    assert!(rr.update_with_ids(&b, &ids(2)).is_err());
    assert_eq!(letters(&mut rr, &b, 1), "C", "the position survived");
}

#[test]
fn kind_and_accessors() {
    let b = equal(2);
    let s = Scheduler::with_ids(Kind::Conhash(ConhashBy::FiveTuple), &b, &ids(2)).unwrap();
    assert_eq!(s.kind(), Kind::Conhash(ConhashBy::FiveTuple));
    assert_eq!(s.conhash_ring().unwrap().len(), 320);
    assert!(s.maglev().is_none());
    let s = Scheduler::with_ids(Kind::Mh(MhParams::default()), &b, &ids(2)).unwrap();
    assert_eq!(s.maglev().unwrap().size(), 65537);
    assert!(s.conhash_ring().is_none());
}

#[test]
fn identity_is_address_then_port() {
    let v4: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let id = identity(v4);
    assert_eq!(&id[..16], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
    assert_eq!(&id[16..], &[0x1f, 0x90]);
    let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
    assert_eq!(identity(v6)[0..2], [0x20, 0x01]);
    assert_ne!(identity(v4), identity("10.0.0.1:8081".parse().unwrap()));
    // Usable directly as identity keys.
    let addrs: Vec<[u8; 18]> = (1..=3).map(|p| identity(SocketAddr::from(([10, 0, 0, 1], p)))).collect();
    assert!(Scheduler::with_ids(Kind::Mh(MhParams::default()), &equal(3), &addrs).is_ok());
}
