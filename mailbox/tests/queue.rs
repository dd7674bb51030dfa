//! The mailbox queue with real threads over a real shared-memory region.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mailbox::{CallError, Client, Server};
use shm_layout::mailbox::MAIL_SLOTS;
use shm_layout::Shm;

fn region(tag: &str) -> (Shm, std::path::PathBuf) {
    let p = std::env::temp_dir().join(format!("mailbox-test-{}-{tag}", std::process::id()));
    let shm = Shm::create(&p, shm_layout::TableSizes::SMALL, |l, _| mailbox::init(&l.mailbox)).unwrap();
    (shm, p)
}

const T: Duration = Duration::from_secs(10);

/// Serves until `stop`: replies with the request reversed.
fn serve(shm: &Shm, stop: &AtomicBool, abandon: Duration, reclaim: Duration) {
    let mut s = Server::new(&shm.layout().mailbox, abandon, reclaim);
    while !stop.load(Ordering::Relaxed) {
        while let Some(t) = s.take() {
            let mut r = t.bytes.clone().unwrap_or_else(|| b"refused".to_vec());
            r.reverse();
            s.reply(t, &r, b"too large", shm_layout::monotonic_ns());
        }
        s.reclaim(shm_layout::monotonic_ns());
        std::thread::sleep(Duration::from_micros(50));
    }
}

#[test]
fn many_clients_each_get_their_own_replies() {
    let (shm, p) = region("many");
    let shm = Arc::new(shm);
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (shm, stop) = (Arc::clone(&shm), Arc::clone(&stop));
        std::thread::spawn(move || serve(&shm, &stop, Duration::from_secs(1), Duration::from_secs(5)))
    };
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let shm = Arc::clone(&shm);
            std::thread::spawn(move || {
                let client = Client::new(&shm.layout().mailbox);
                for i in 0..300 {
                    let req = format!("client {c} request {i} {}", "x".repeat(i % 200)).into_bytes();
                    let rep = client.call(&req, T).unwrap();
                    let mut want = req.clone();
                    want.reverse();
                    assert_eq!(rep, want);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let mb = &shm.layout().mailbox;
    assert_eq!(mb.served.load(Ordering::Relaxed), 2400, "every call served exactly once");
    assert_eq!(mb.enqueue_pos.load(Ordering::Relaxed), 2400);
    assert_eq!(mb.dequeue_pos.load(Ordering::Relaxed), 2400);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn a_producer_that_vanished_after_claiming_is_skipped() {
    let (shm, p) = region("vanish");
    let mb = &shm.layout().mailbox;
    let pos = Client::new(mb).claim_and_vanish();
    assert_eq!(pos, 0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| serve(&shm, &stop, Duration::from_millis(50), Duration::from_secs(5)));
        let rep = Client::new(mb).call(b"after", T).unwrap();
        assert_eq!(rep, b"retfa");
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(mb.abandoned.load(Ordering::Relaxed), 1);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn uncollected_replies_are_reclaimed_and_the_queue_does_not_leak() {
    let (shm, p) = region("reclaim");
    let mb = &shm.layout().mailbox;
    // Clients that give up before the reply (as if killed): one full lap of slots.
    for _ in 0..MAIL_SLOTS {
        assert_eq!(
            Client::new(mb).call(b"lost", Duration::from_millis(1)),
            Err(CallError::Timeout(Duration::from_millis(1)))
        );
    }
    // The queue is full now: nothing more fits until the replies are reclaimed.
    assert!(matches!(Client::new(mb).call(b"x", Duration::from_millis(20)), Err(CallError::Busy(_))));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| serve(&shm, &stop, Duration::from_secs(1), Duration::from_millis(30)));
        for i in 0..3 * MAIL_SLOTS {
            let req = format!("again {i}").into_bytes();
            let mut want = req.clone();
            want.reverse();
            assert_eq!(Client::new(mb).call(&req, T).unwrap(), want);
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(mb.reclaimed.load(Ordering::Relaxed), MAIL_SLOTS as u64);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn a_corrupted_request_is_refused_not_served() {
    let (shm, p) = region("corrupt");
    let mb = &shm.layout().mailbox;
    std::thread::scope(|s| {
        let caller = s.spawn(|| Client::new(mb).call(b"hello world", T));
        // Wait for the request, then scribble over it as a late writer would.
        while mb.slots[0].seq.load(Ordering::Acquire) != 1 {
            std::thread::yield_now();
        }
        mb.slots[0].request[0].store(0xdead_beef, Ordering::Relaxed);
        let mut server = Server::new(mb, Duration::from_secs(1), Duration::from_secs(5));
        let t = server.take().expect("published");
        assert_eq!(t.bytes, None, "the checksum catches it");
        server.reply(t, b"refused", b"", 0);
        assert_eq!(caller.join().unwrap().unwrap(), b"refused");
    });
    assert_eq!(mb.refused.load(Ordering::Relaxed), 1);
    assert!(matches!(Client::new(mb).call(&vec![0u8; 5000], T), Err(CallError::TooLarge(5000))));
    std::fs::remove_file(p).unwrap();
}
