//! The health of each checked real server, as `dpvs-health` last found it: its one writer
//! (an instance runs one checker, which holds `<shm>.health.lock`); `dpvsctl`, `ipvsadm` and
//! the exporter read it. What the workers act on is not here but in the configuration (a real
//! server's `down`, set through the mailbox): this table says why, and since when.
//!
//! The region after the configuration tables: a [`HealthHeader`], then one [`HealthEntry`]
//! per real-server slot (`real_slots` of the header: as many as the configuration may have
//! real servers). Each entry is a sequence lock as [`crate::LearnedNeighbour`] is, with the
//! same orderings.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// The checker's presence.
#[repr(C, align(64))]
#[derive(Default)]
pub struct HealthHeader {
    /// The checker's pid (0: none ever ran).
    pub pid: AtomicU64,
    /// Its start time in clock ticks since boot (tells it from a reused pid).
    pub start_ticks: AtomicU64,
    /// CLOCK_MONOTONIC of its last round, ns.
    pub heartbeat_ns: AtomicU64,
    /// Entries in use: the first `used` (entries past it are stale).
    pub used: AtomicU64,
    /// The configuration generation its last round read.
    pub generation: AtomicU64,
    /// Room for later layout versions (zero).
    pub reserved: [AtomicU64; 3],
}

/// Longest error text an entry keeps, bytes.
pub const HEALTH_ERROR_BYTES: usize = 40;

/// A real server's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    /// Not checked yet (it takes connections: a new real server is presumed alive).
    Unknown = 0,
    Up = 1,
    /// Its check failed `fall` times in a row.
    Down = 2,
}

/// One real server of one service.
#[repr(C, align(64))]
#[derive(Default)]
pub struct HealthEntry {
    /// Sequence word: even when stable, odd while the writer changes the fields.
    pub seq: AtomicU64,
    /// Protocol number (bits 0-7), 1 + state (8-14), whether the last check succeeded (15),
    /// virtual port (16-31), real port (32-47), results alike in a row (48-63); 0: free.
    pub key: AtomicU64,
    /// The virtual address, 16 bytes (IPv4 as `::ffff:a.b.c.d`), big-endian halves.
    pub vip: [AtomicU64; 2],
    /// The real server's address, likewise.
    pub real: [AtomicU64; 2],
    /// Wall clock of its last check's end, ms since the Unix epoch.
    pub checked_ms: AtomicU64,
    /// Wall clock of its last change of state, ms since the Unix epoch.
    pub since_ms: AtomicU64,
    /// Times it went down (low 32 bits), and checks made (high 32 bits).
    pub counts: AtomicU64,
    /// How long its last check took, µs.
    pub took_us: AtomicU64,
    /// Its last failure's reason, UTF-8, NUL-padded.
    pub error: [AtomicU64; HEALTH_ERROR_BYTES / 8],
    /// Room for later layout versions (zero).
    pub reserved: AtomicU64,
}

/// A copy of a [`HealthEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub protocol: u8,
    pub vip: std::net::IpAddr,
    pub vport: u16,
    pub real: std::net::IpAddr,
    pub rport: u16,
    pub state: HealthState,
    /// Whether the last check succeeded.
    pub last_ok: bool,
    /// Results like the last in a row, up to 65 535.
    pub in_a_row: u16,
    pub checked_ms: u64,
    pub since_ms: u64,
    /// Times it went down.
    pub flaps: u32,
    /// Checks made.
    pub checks: u32,
    pub took_us: u64,
    /// The last failure's reason (empty: none yet).
    pub error: String,
}

const READ_TRIES: usize = 64;

fn split(a: std::net::IpAddr) -> [u64; 2] {
    let v = match a {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    };
    let n = u128::from(v);
    [(n >> 64) as u64, n as u64]
}

fn join(w: [u64; 2]) -> std::net::IpAddr {
    let v6 = std::net::Ipv6Addr::from(u128::from(w[0]) << 64 | u128::from(w[1]));
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.into(),
        None => v6.into(),
    }
}

impl HealthEntry {
    /// A consistent copy, or `None` when free or still being written after a few attempts.
    pub fn read(&self) -> Option<Health> {
        for _ in 0..READ_TRIES {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let r = |w: &AtomicU64| w.load(Ordering::Relaxed);
            let key = r(&self.key);
            let (vip, real) = ([r(&self.vip[0]), r(&self.vip[1])], [r(&self.real[0]), r(&self.real[1])]);
            let (checked_ms, since_ms, counts, took_us) =
                (r(&self.checked_ms), r(&self.since_ms), r(&self.counts), r(&self.took_us));
            let mut text = [0u8; HEALTH_ERROR_BYTES];
            for (chunk, w) in text.chunks_mut(8).zip(&self.error) {
                chunk.copy_from_slice(&r(w).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                std::hint::spin_loop();
                continue;
            }
            if key == 0 {
                return None;
            }
            let state = match (key >> 8) as u8 & 0x7f {
                2 => HealthState::Up,
                3 => HealthState::Down,
                _ => HealthState::Unknown,
            };
            let end = text.iter().position(|&b| b == 0).unwrap_or(HEALTH_ERROR_BYTES);
            return Some(Health {
                protocol: key as u8,
                vip: join(vip),
                vport: (key >> 16) as u16,
                real: join(real),
                rport: (key >> 32) as u16,
                state,
                last_ok: key & 1 << 15 != 0,
                in_a_row: (key >> 48) as u16,
                checked_ms,
                since_ms,
                flaps: counts as u32,
                checks: (counts >> 32) as u32,
                took_us,
                error: String::from_utf8_lossy(&text[..end]).into_owned(),
            });
        }
        None
    }

    /// Frees the entry (readers see `None`). Only the checker may call it.
    pub fn clear(&self) {
        let odd = self.seq.load(Ordering::Relaxed) | 1;
        self.seq.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        self.key.store(0, Ordering::Relaxed);
        self.seq.store(odd.wrapping_add(1), Ordering::Release);
    }

    /// Stores `h` as one change. Only the checker may call it.
    pub fn write(&self, h: &Health) {
        let key = u64::from(h.protocol)
            | u64::from(h.state as u8 + 1) << 8
            | u64::from(h.last_ok) << 15
            | u64::from(h.vport) << 16
            | u64::from(h.rport) << 32
            | u64::from(h.in_a_row) << 48;
        let mut text = [0u8; HEALTH_ERROR_BYTES];
        // Cut at a character boundary.
        let mut n = h.error.len().min(HEALTH_ERROR_BYTES);
        while !h.error.is_char_boundary(n) {
            n -= 1;
        }
        text[..n].copy_from_slice(&h.error.as_bytes()[..n]);
        let odd = self.seq.load(Ordering::Relaxed) | 1;
        self.seq.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        let w = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        w(&self.key, key);
        let (vip, real) = (split(h.vip), split(h.real));
        w(&self.vip[0], vip[0]);
        w(&self.vip[1], vip[1]);
        w(&self.real[0], real[0]);
        w(&self.real[1], real[1]);
        w(&self.checked_ms, h.checked_ms);
        w(&self.since_ms, h.since_ms);
        w(&self.counts, u64::from(h.flaps) | u64::from(h.checks) << 32);
        w(&self.took_us, h.took_us);
        for (chunk, a) in text.chunks(8).zip(&self.error) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w(a, u64::from_le_bytes(b));
        }
        self.seq.store(odd.wrapping_add(1), Ordering::Release);
    }
}

const _: () = {
    assert!(std::mem::size_of::<HealthHeader>() == 64);
    assert!(std::mem::size_of::<HealthEntry>() == 128);
    assert!(std::mem::offset_of!(HealthEntry, key) == 8 && std::mem::offset_of!(HealthEntry, error) == 80);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written_and_free_reads_none() {
        let e = HealthEntry::default();
        assert_eq!(e.read(), None);
        let mut h = Health {
            protocol: 6,
            vip: "198.18.0.100".parse().unwrap(),
            vport: 80,
            real: "2001:db8::2".parse().unwrap(),
            rport: 8080,
            state: HealthState::Down,
            last_ok: false,
            in_a_row: 3,
            checked_ms: 1_700_000_000_123,
            since_ms: 1_700_000_000_000,
            flaps: 2,
            checks: 41,
            took_us: 1500,
            error: "connect: Connection refused (os error 111)".into(),
        };
        e.write(&h);
        let got = e.read().unwrap();
        // The reason is cut to 40 bytes.
        assert_eq!(got.error, "connect: Connection refused (os error 11");
        h.error = got.error.clone();
        assert_eq!(got, h);
        (h.state, h.last_ok) = (HealthState::Up, true);
        h.error = "é".repeat(30);
        e.write(&h);
        assert_eq!(e.read().unwrap().state, HealthState::Up);
        assert!(e.read().unwrap().last_ok);
        assert_eq!(e.read().unwrap().error, "é".repeat(20), "cut at a character boundary");
        assert_eq!(e.seq.load(Ordering::Relaxed), 4);
        e.clear();
        assert_eq!((e.read(), e.seq.load(Ordering::Relaxed)), (None, 6));
    }
}
