//! The producer side (`dpvsctl`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_layout::mailbox::{Mailbox, MAIL_SLOTS, REQUEST_BYTES};

use crate::{checksum, read_words, write_words};

/// Why a call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// The request does not fit a slot.
    #[error("request of {0} bytes is larger than a mailbox slot ({REQUEST_BYTES} bytes)")]
    TooLarge(usize),
    /// Every slot stayed busy until the deadline.
    #[error("the control mailbox stayed full for {0:?} (is the primary stuck?)")]
    Busy(Duration),
    /// The primary gave the claim up before the request was published (this process was
    /// stopped or too slow between claiming and publishing).
    #[error("the primary gave up on this request before it was sent; nothing was applied")]
    Abandoned,
    /// No reply before the deadline; the request may still be applied.
    #[error("no reply within {0:?}; the request may still be applied (check the state before retrying)")]
    Timeout(Duration),
    /// The reply was corrupt or did not belong to this request.
    #[error("the reply was corrupt ({0})")]
    BadReply(&'static str),
}

/// A producer on one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    mb: &'a Mailbox,
}

impl<'a> Client<'a> {
    /// A client of `mb`.
    pub fn new(mb: &'a Mailbox) -> Client<'a> {
        Client { mb }
    }

    /// Sends `request` and waits up to `timeout` for the reply bytes.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn call(&self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        if request.len() > REQUEST_BYTES {
            return Err(CallError::TooLarge(request.len()));
        }
        let deadline = Instant::now() + timeout;
        let pos = self.claim(deadline, timeout)?;
        let slot = &self.mb.slots[pos as usize % MAIL_SLOTS];
        let id = request_id(pos);
        slot.request_id.store(id, Ordering::Relaxed);
        slot.client_pid.store(std::process::id(), Ordering::Relaxed);
        slot.request_len.store(request.len() as u32, Ordering::Relaxed);
        slot.request_sum.store(checksum(pos, request), Ordering::Relaxed);
        write_words(&slot.request, request);
        // Publish. Fails only if the primary gave the claim up meanwhile.
        if slot.seq.compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(CallError::Abandoned);
        }
        shm_layout::ring(&self.mb.doorbell);
        // Wait for the answer on the slot's bell: the primary bumps it after the sequence word,
        // so a bump between the read below and the wait makes the wait return at once.
        loop {
            let bell = slot.bell.load(Ordering::Acquire);
            if slot.seq.load(Ordering::Acquire) == pos + 2 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CallError::Timeout(timeout));
            }
            // Bounded, so that a lost wake-up (the primary died mid-reply) costs 2 ms, not the
            // whole timeout.
            shm_layout::futex_wait(&slot.bell, bell, (deadline - now).min(Duration::from_millis(2)));
        }
        let len = slot.reply_len.load(Ordering::Relaxed);
        let sum = slot.reply_sum.load(Ordering::Relaxed);
        let rid = slot.request_id.load(Ordering::Relaxed);
        let reply =
            if len as usize <= slot.reply.len() * 8 { Some(read_words(&slot.reply, len as usize)) } else { None };
        // Release, and learn whether the reply was still ours while we read it.
        if slot.seq.compare_exchange(pos + 2, pos + MAIL_SLOTS as u64, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(CallError::Timeout(timeout));
        }
        let reply = reply.ok_or(CallError::BadReply("length out of range"))?;
        if rid != id {
            return Err(CallError::BadReply("reply to another request"));
        }
        if checksum(pos, &reply) != sum {
            return Err(CallError::BadReply("checksum mismatch"));
        }
        Ok(reply)
    }

    /// Claims the next position whose slot is free.
    fn claim(&self, deadline: Instant, timeout: Duration) -> Result<u64, CallError> {
        let mut backoff = Duration::from_micros(20);
        loop {
            let pos = self.mb.enqueue_pos.load(Ordering::Relaxed);
            let slot = &self.mb.slots[pos as usize % MAIL_SLOTS];
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == pos {
                if self.mb.enqueue_pos.compare_exchange_weak(pos, pos + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
                {
                    return Ok(pos);
                }
                continue;
            }
            if seq < pos {
                // The slot's previous lap is not released yet: the queue is full.
                if Instant::now() >= deadline {
                    return Err(CallError::Busy(timeout));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(2));
            }
            // seq > pos: another producer claimed this position; reload.
        }
    }

    /// Claims a slot and never publishes it: a producer killed at the worst moment. For tests.
    #[doc(hidden)]
    pub fn claim_and_vanish(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(1);
        self.claim(deadline, Duration::from_secs(1)).unwrap_or(u64::MAX)
    }
}

/// A request id unique within this process and position.
fn request_id(pos: u64) -> u64 {
    (u64::from(std::process::id()) << 40) ^ pos
}
