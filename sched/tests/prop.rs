//! Property tests over arbitrary backend sets, live changes and flows.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::id;
use proptest::prelude::*;
use sched::{Backend, ConhashBy, FlowKey, Kind, MhParams, Scheduler};

fn backend() -> impl Strategy<Value = Backend> {
    (prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)], any::<u32>(), any::<u32>(), prop::bool::weighted(0.8)).prop_map(
        |(weight, active_conns, inactive_conns, available)| Backend { weight, active_conns, inactive_conns, available },
    )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Rr),
        Just(Kind::Wrr),
        Just(Kind::Wlc),
        Just(Kind::Lc),
        Just(Kind::Fo),
        Just(Kind::Conhash(ConhashBy::SourceIp)),
        Just(Kind::Conhash(ConhashBy::FiveTuple)),
        Just(Kind::Mh(MhParams { table_size: 251, hash_port: false })),
        Just(Kind::Mh(MhParams { table_size: 4093, hash_port: true })),
    ]
}

fn flow() -> impl Strategy<Value = FlowKey> {
    (any::<u32>(), any::<u16>(), prop_oneof![Just(6u8), Just(17), Just(1)]).prop_map(|(ip, port, proto)| FlowKey {
        src: IpAddr::V4(Ipv4Addr::from(ip)),
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        src_port: port,
        dst_port: 443,
        proto,
    })
}

/// Whether `pick` must find a backend: always for the scanning kinds if any qualifies.
fn must_find(kind: Kind) -> bool {
    !kind.needs_identity()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A pick is `None` or the index of an available, weight > 0 backend of the slice passed,
    /// including after live changes the scheduler was not told about; and the scanning kinds
    /// find one whenever one exists.
    #[test]
    fn picks_are_always_eligible(
        kind in kind(),
        built in prop::collection::vec(backend(), 0..24),
        changes in prop::collection::vec((any::<prop::sample::Index>(), backend()), 0..6),
        flows in prop::collection::vec(flow(), 1..40),
    ) {
        let ids: Vec<String> = (0..built.len()).map(id).collect();
        let mut s = Scheduler::with_ids(kind, &built, &ids).unwrap();
        let mut live = built.clone();
        for round in 0..2 {
            for f in &flows {
                match s.pick(&live, f) {
                    Some(i) => prop_assert!(i < live.len() && live[i].can_take_new(), "{} picked {}", kind, i),
                    None => prop_assert!(
                        !must_find(kind) || !live.iter().any(Backend::can_take_new),
                        "{} found nothing in {:?}", kind, live
                    ),
                }
            }
            if round == 0 && !live.is_empty() {
                for (at, b) in &changes {
                    let i = at.index(live.len());
                    live[i] = *b;
                }
            }
        }
    }

    /// After an update, the hashing kinds find a backend whenever one qualifies.
    #[test]
    fn hashing_kinds_find_one_after_update(
        kind in kind(),
        backends in prop::collection::vec(backend(), 1..24),
        flows in prop::collection::vec(flow(), 1..40),
    ) {
        let ids: Vec<String> = (0..backends.len()).map(id).collect();
        let mut s = Scheduler::with_ids(kind, &backends[..1], &ids[..1]).unwrap();
        s.update_with_ids(&backends, &ids).unwrap();
        let any = backends.iter().any(Backend::can_take_new);
        for f in &flows {
            prop_assert_eq!(s.pick(&backends, f).is_some(), any);
        }
    }

    /// `lc` and `wlc` pick a minimum; `fo` picks a maximum weight.
    #[test]
    fn least_and_failover_are_extremes(backends in prop::collection::vec(backend(), 1..24), f in flow()) {
        let oh = |b: &Backend| (u128::from(b.active_conns) << 8) + u128::from(b.inactive_conns);
        let ok: Vec<&Backend> = backends.iter().filter(|b| b.can_take_new()).collect();
        if let Some(i) = Scheduler::new(Kind::Lc, &backends).unwrap().pick(&backends, &f) {
            prop_assert!(ok.iter().all(|b| oh(&backends[i]) <= oh(b)));
        }
        if let Some(i) = Scheduler::new(Kind::Wlc, &backends).unwrap().pick(&backends, &f) {
            let c = &backends[i];
            prop_assert!(ok.iter().all(|b| oh(c) * u128::from(b.weight) <= oh(b) * u128::from(c.weight)));
        }
        if let Some(i) = Scheduler::new(Kind::Fo, &backends).unwrap().pick(&backends, &f) {
            prop_assert!(ok.iter().all(|b| backends[i].weight >= b.weight));
        }
    }
}
