//! The queue's concurrency under Miri (`scripts/miri.sh`): client threads and a server thread
//! over a heap mailbox, small enough for Miri, which checks every access for data races and
//! explores weak-memory behaviours of the atomics across its random schedules. Also an
//! ordinary test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mailbox::{Client, Server};

#[test]
fn concurrent_clients_each_get_their_own_reply_once() {
    let mb: Arc<shm_layout::mailbox::Mailbox> = Arc::from(shm_layout::heap_mailbox());
    mailbox::init(&mb);
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (mb, stop) = (Arc::clone(&mb), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut s = Server::new(&mb, Duration::from_secs(60), Duration::from_secs(60));
            let mut served = 0;
            while !stop.load(Ordering::Acquire) {
                while let Some(t) = s.take() {
                    let mut r = t.bytes.clone().expect("no corrupt request");
                    r.reverse();
                    s.reply(t, &r, b"too large", 1);
                    served += 1;
                }
                std::thread::yield_now();
            }
            served
        })
    };
    let clients: Vec<_> = (0..3u8)
        .map(|c| {
            let mb = Arc::clone(&mb);
            std::thread::spawn(move || {
                let client = Client::new(&mb);
                for i in 0..4u8 {
                    let req = vec![c, i, c ^ i];
                    let rep = client.call(&req, Duration::from_secs(600)).unwrap();
                    assert_eq!(rep, [c ^ i, i, c], "client {c} call {i}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    assert_eq!(server.join().unwrap(), 12, "every request served exactly once");
}

#[test]
fn a_vanished_producer_and_an_impatient_client_leave_the_queue_working() {
    let mb: Arc<shm_layout::mailbox::Mailbox> = Arc::from(shm_layout::heap_mailbox());
    mailbox::init(&mb);
    // A producer killed between claim and publish, before the server runs.
    assert_eq!(Client::new(&mb).claim_and_vanish(), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (mb, stop) = (Arc::clone(&mb), Arc::clone(&stop));
        std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            let now = || t0.elapsed().as_nanos() as u64;
            // Claims silent for 500 ms are given up (long enough for Miri's slow clients to
            // publish theirs); uncollected replies wait the production 60 s.
            let mut s = Server::new(&mb, Duration::from_millis(500), Duration::from_secs(60));
            while !stop.load(Ordering::Acquire) {
                s.reclaim(now());
                while let Some(t) = s.take() {
                    let r = t.bytes.clone().unwrap_or_default();
                    s.reply(t, &r, b"", now());
                }
                std::thread::yield_now();
            }
        })
    };
    let impatient = {
        let mb = Arc::clone(&mb);
        // It gives up at once: its reply, if any, is left for the server to reclaim.
        std::thread::spawn(move || Client::new(&mb).call(b"gone", Duration::from_nanos(1)).is_err())
    };
    let patient = {
        let mb = Arc::clone(&mb);
        std::thread::spawn(move || Client::new(&mb).call(b"ok", Duration::from_secs(600)))
    };
    let _ = impatient.join().unwrap();
    assert_eq!(patient.join().unwrap().unwrap(), b"ok");
    // A later call goes through too.
    assert_eq!(Client::new(&mb).call(b"later", Duration::from_secs(600)).unwrap(), b"later");
    stop.store(true, Ordering::Release);
    server.join().unwrap();
    assert_eq!(mb.abandoned.load(Ordering::Relaxed), 1, "the vanished claim was given up");
}
