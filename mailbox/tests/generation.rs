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

#[test]
fn a_reader_holds_its_generation_and_publication_waits() {
    let (shm, p) = region("hold");
    let l = shm.layout();
    let (gens, area) = (shm.generations(), &l.config);
    assert_eq!(area.static_text(), conf::EMBEDDED_DEFAULT);
    let (g, bytes) = generation::read_current(gens, &l.workers[0].cfg_reading).unwrap();
    assert_eq!((g, generation::decode(&bytes).unwrap()), (1, runtime(1)));
    assert_eq!(l.workers[0].cfg_reading.load(Ordering::Relaxed), 0, "the announcement ends with the copy");

    assert_eq!(generation::publish(gens, l.workers(), &generation::encode(&runtime(2)), 2), Ok(2));
    // A slot still announcing generation 1 keeps its buffer: generation 3 must wait.
    l.workers[0].cfg_reading_incoming.store(1, Ordering::SeqCst);
    let three = generation::encode(&runtime(3));
    assert_eq!(generation::publish(gens, l.workers(), &three, 3), Err(PublishError::Busy(1)));
    assert_eq!(area.generation.load(Ordering::SeqCst), 2, "a refused publication changes nothing");
    l.workers[0].cfg_reading_incoming.store(0, Ordering::SeqCst);
    assert_eq!(generation::publish(gens, l.workers(), &three, 3), Ok(3));
    let (g, bytes) = generation::snapshot(gens).unwrap();
    assert_eq!((g, generation::decode(&bytes).unwrap()), (3, runtime(3)));

    let max = TableSizes::SMALL.config_words as usize * 8;
    assert_eq!(gens.max_payload(), max);
    let huge = vec![0u8; max + 1];
    assert_eq!(generation::publish(gens, l.workers(), &huge, 4), Err(PublishError::TooLarge { len: max + 1, max }));
    // A payload of another format is refused by name, not misread.
    let mut other = generation::encode(&runtime(4));
    other[0] ^= 0x40;
    assert!(generation::decode(&other).unwrap_err().to_string().contains("version"));
    drop(shm);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn snapshots_racing_a_publisher_are_always_whole() {
    let (shm, p) = region("race");
    let shm = Arc::new(shm);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (shm, stop) = (Arc::clone(&shm), Arc::clone(&stop));
        std::thread::spawn(move || {
            let l = shm.layout();
            let mut w = 2;
            while !stop.load(Ordering::Relaxed) {
                if generation::publish(shm.generations(), l.workers(), &generation::encode(&runtime(w)), w.into())
                    .is_ok()
                {
                    w += 1;
                }
            }
            w
        })
    };
    let mut last = 0;
    for _ in 0..2000 {
        // No announcement: a snapshot is checked by checksum and generation instead.
        let (g, bytes) = generation::snapshot(shm.generations()).unwrap();
        let rt = generation::decode(&bytes).unwrap();
        assert_eq!(u64::from(rt.services[0].reals[0].weight), g, "generation {g} holds its own payload");
        assert!(g >= last);
        last = g;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(publisher.join().unwrap() > 2);
    drop(shm);
    std::fs::remove_file(p).unwrap();
}
