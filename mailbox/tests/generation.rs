//! Configuration generations over a real shared-memory region: publication, the reader's
//! announcement that holds a buffer, snapshots racing a publisher, and the size limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mailbox::generation::{self, PublishError};
use shm_layout::{Shm, TableSizes};

fn region(tag: &str) -> (Shm, std::path::PathBuf) {
    let p = std::env::temp_dir().join(format!("generation-test-{}-{tag}", std::process::id()));
    let first = generation::encode(&conf::Config::embedded_default().runtime());
    let shm = Shm::create(&p, TableSizes::SMALL, |l, t| {
        l.header.n_workers = 2;
        generation::init(&mut l.config, t.config_words(), conf::EMBEDDED_DEFAULT, &first, 1).unwrap();
    })
    .unwrap();
    (shm, p)
}

fn runtime(weight: u32) -> conf::Runtime {
    let mut rt = conf::Config::embedded_default().runtime();
    rt.services[0].reals[0].weight = weight;
    rt
}

/// The delta that makes the first service's first real server's weight `weight`.
fn weight_delta(weight: u32) -> generation::Delta {
    generation::Delta { put: vec![runtime(weight).services[0].clone()], ..Default::default() }
}

#[test]
fn a_reader_holds_its_snapshot_deltas_replay_and_the_ring_never_laps_the_snapshot() {
    let (shm, p) = region("hold");
    let l = shm.layout();
    let (gens, area) = (shm.generations(), &l.config);
    let reading = &l.workers[0].cfg_reading;
    assert_eq!(area.static_text(), conf::EMBEDDED_DEFAULT);
    assert_eq!(generation::current(gens, Some(reading)).unwrap(), (1, runtime(1)));
    assert_eq!(reading.load(Ordering::Relaxed), 0, "the announcement ends with the copy");

    assert_eq!(generation::publish_snapshot(gens, l.workers(), &generation::encode(&runtime(2)), 2), Ok(2));
    // A slot still announcing the snapshot of generation 1 keeps its buffer: the next
    // snapshot must wait.
    l.workers[0].cfg_reading_incoming.store(1, Ordering::SeqCst);
    let three = generation::encode(&runtime(3));
    assert_eq!(generation::publish_snapshot(gens, l.workers(), &three, 3), Err(PublishError::Busy(1)));
    assert_eq!(area.generation.load(Ordering::SeqCst), 2, "a refused publication changes nothing");
    l.workers[0].cfg_reading_incoming.store(0, Ordering::SeqCst);
    assert_eq!(generation::publish_snapshot(gens, l.workers(), &three, 3), Ok(3));
    assert_eq!(generation::current(gens, None).unwrap(), (3, runtime(3)));

    // A delta: a reader at 3 gets it, any other reader the snapshot with it replayed.
    assert_eq!(generation::publish_delta(gens, &weight_delta(4), 4), Ok(4));
    assert_eq!(generation::current(gens, None).unwrap(), (4, runtime(4)));
    match generation::update(gens, reading, 3).unwrap() {
        (4, generation::Update::Deltas(d)) => assert_eq!(d, vec![weight_delta(4)]),
        other => panic!("{other:?}"),
    }
    match generation::update(gens, reading, 2).unwrap() {
        (4, generation::Update::Deltas(d)) => panic!("no delta takes 2 to 3 (a snapshot): {d:?}"),
        (4, generation::Update::Whole(rt)) => assert_eq!(rt, runtime(4)),
        other => panic!("{other:?}"),
    }

    // The ring holds the deltas after the newest snapshot (3) up to its size, no further.
    let ring = shm_layout::config::DELTA_SLOTS as u64;
    for w in 5..3 + ring {
        assert_eq!(generation::publish_delta(gens, &weight_delta(w as u32), w), Ok(w));
    }
    assert_eq!(generation::publish_delta(gens, &weight_delta(99), 99), Err(PublishError::Lapping(3 + ring)));
    assert_eq!(generation::current(gens, None).unwrap(), (2 + ring, runtime(2 + ring as u32)));
    let snap = generation::encode(&runtime(2 + ring as u32));
    generation::write_snapshot(gens, l.workers(), 2 + ring, &snap).unwrap();
    assert_eq!(generation::snapshot_generation(gens), 2 + ring);
    assert_eq!(generation::publish_delta(gens, &weight_delta(7), 7), Ok(3 + ring));
    assert_eq!(generation::current(gens, None).unwrap(), (3 + ring, runtime(7)));

    let max = TableSizes::SMALL.config_words as usize * 8;
    assert_eq!(gens.max_payload(), max);
    let huge = vec![0u8; max + 1];
    let too_large = Err(PublishError::TooLarge { len: max + 1, max });
    assert_eq!(generation::publish_snapshot(gens, l.workers(), &huge, 4), too_large);
    let mut big = runtime(1).services[0].clone();
    big.reals = vec![big.reals[0]; gens.max_delta() / 8];
    let d = generation::Delta { put: vec![big], ..Default::default() };
    assert!(matches!(generation::publish_delta(gens, &d, 5), Err(PublishError::DeltaTooLarge { .. })));
    assert_eq!(area.generation.load(Ordering::SeqCst), 3 + ring, "refused publications change nothing");
    // A payload of another format is refused by name, not misread.
    let mut other = generation::encode(&runtime(4));
    other[0] ^= 0x40;
    assert!(generation::decode(&other).unwrap_err().to_string().contains("version"));
    drop(shm);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn readers_racing_a_publisher_of_deltas_and_snapshots_always_see_a_whole_generation() {
    let (shm, p) = region("race");
    let shm = Arc::new(shm);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (shm, stop) = (Arc::clone(&shm), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (l, gens) = (shm.layout(), shm.generations());
            // Generation g has weight g.
            let mut g = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let w = g + 1;
                let r = if w.is_multiple_of(7) {
                    generation::publish_snapshot(gens, l.workers(), &generation::encode(&runtime(w as u32)), w)
                } else {
                    generation::publish_delta(gens, &weight_delta(w as u32), w)
                };
                match r {
                    Ok(n) => g = n,
                    Err(PublishError::Lapping(_)) => {
                        let snap = generation::encode(&runtime(g as u32));
                        let _ = generation::write_snapshot(gens, l.workers(), g, &snap);
                    }
                    Err(_) => {}
                }
            }
            g
        })
    };
    let mut last = 0;
    for _ in 0..2000 {
        // No announcement: the copy is checked by checksum and generation instead.
        let (g, rt) = generation::current(shm.generations(), None).unwrap();
        assert_eq!(u64::from(rt.services[0].reals[0].weight), g, "generation {g} holds its own payload");
        assert!(g >= last);
        last = g;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(publisher.join().unwrap() > 2);
    drop(shm);
    std::fs::remove_file(p).unwrap();
}
