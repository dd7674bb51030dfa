//! The consumer side (the primary).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_layout::mailbox::{Mailbox, MAIL_SLOTS, REPLY_BYTES};

use crate::{checksum, read_words, write_words};

/// A request taken from the mailbox, to be answered with [`Server::reply`] (now or later).
#[derive(Debug, PartialEq, Eq)]
pub struct Taken {
    pos: u64,
    /// The request bytes; `None` when they failed their checksum or length check (answer
    /// with an error).
    pub bytes: Option<Vec<u8>>,
}

/// The single consumer of a mailbox.
#[derive(Debug)]
pub struct Server<'a> {
    mb: &'a Mailbox,
    abandon_after: Duration,
    reclaim_after_ns: u64,
    /// The claimed-but-unpublished position at the head, and since when it has waited.
    stalled: Option<(u64, Instant)>,
}

impl<'a> Server<'a> {
    /// Serves `mb`, starting from its current positions. A claim left unpublished for
    /// `abandon_after` is given up; a reply left uncollected for `reclaim_after` is reclaimed.
    pub fn new(mb: &'a Mailbox, abandon_after: Duration, reclaim_after: Duration) -> Server<'a> {
        Server { mb, abandon_after, reclaim_after_ns: reclaim_after.as_nanos() as u64, stalled: None }
    }

    /// Takes the next published request, if any, moving the queue head past it.
    pub fn take(&mut self) -> Option<Taken> {
        loop {
            let pos = self.mb.dequeue_pos.load(Ordering::Relaxed);
            let slot = &self.mb.slots[pos as usize % MAIL_SLOTS];
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == pos + 1 {
                self.stalled = None;
                self.mb.dequeue_pos.store(pos + 1, Ordering::Release);
                let len = slot.request_len.load(Ordering::Relaxed) as usize;
                let bytes = (len <= slot.request.len() * 8)
                    .then(|| read_words(&slot.request, len))
                    .filter(|b| checksum(pos, b) == slot.request_sum.load(Ordering::Relaxed));
                if bytes.is_none() {
                    bump(&self.mb.refused);
                }
                return Some(Taken { pos, bytes });
            }
            if seq == pos && self.mb.enqueue_pos.load(Ordering::Acquire) > pos {
                // Claimed, not published: wait a while, then give the claim up.
                let since = match self.stalled {
                    Some((p, t)) if p == pos => t,
                    _ => {
                        let now = Instant::now();
                        self.stalled = Some((pos, now));
                        now
                    }
                };
                if since.elapsed() < self.abandon_after {
                    return None;
                }
                if slot.seq.compare_exchange(pos, pos + MAIL_SLOTS as u64, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    self.mb.dequeue_pos.store(pos + 1, Ordering::Release);
                    bump(&self.mb.abandoned);
                    self.stalled = None;
                }
                // Either way the head moved on or got published: look again.
                continue;
            }
            return None;
        }
    }

    /// Answers a taken request. A reply larger than a slot is replaced by `too_large`.
    pub fn reply(&mut self, taken: Taken, reply: &[u8], too_large: &[u8], now_ns: u64) {
        let slot = &self.mb.slots[taken.pos as usize % MAIL_SLOTS];
        let reply = if reply.len() <= REPLY_BYTES { reply } else { too_large };
        slot.reply_len.store(reply.len() as u32, Ordering::Relaxed);
        slot.reply_sum.store(checksum(taken.pos, reply), Ordering::Relaxed);
        write_words(&slot.reply, reply);
        slot.replied_ns.store(now_ns, Ordering::Relaxed);
        slot.seq.store(taken.pos + 2, Ordering::Release);
        shm_layout::ring(&slot.bell);
        bump(&self.mb.served);
    }

    /// Frees slots whose reply no one collected for `reclaim_after`, or for 100 ms when the
    /// client's process no longer exists.
    /// Returns how many.
    pub fn reclaim(&mut self, now_ns: u64) -> usize {
        let head = self.mb.dequeue_pos.load(Ordering::Relaxed);
        let mut n = 0;
        for (i, slot) in self.mb.slots.iter().enumerate() {
            let seq = slot.seq.load(Ordering::Acquire);
            // A replied slot i holds pos + 2 with pos < head and pos % SLOTS == i (a free slot
            // holds a position of its own index, a published one pos + 1: neither matches).
            let Some(pos) = seq.checked_sub(2) else { continue };
            if pos >= head || pos as usize % MAIL_SLOTS != i {
                continue;
            }
            let age = now_ns.saturating_sub(slot.replied_ns.load(Ordering::Relaxed));
            // A client that is gone will never collect its reply: no need to wait the full
            // time (a reused pid only makes it wait).
            let gone = age >= DEAD_CLIENT_NS && !process_exists(slot.client_pid.load(Ordering::Relaxed));
            if age < self.reclaim_after_ns && !gone {
                continue;
            }
            if slot.seq.compare_exchange(seq, pos + MAIL_SLOTS as u64, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                bump(&self.mb.reclaimed);
                n += 1;
            }
        }
        n
    }
}

/// How long an answered slot waits before its client's process is looked for.
const DEAD_CLIENT_NS: u64 = 100_000_000;

fn process_exists(pid: u32) -> bool {
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
