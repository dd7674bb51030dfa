//! Configuration generations ([`shm_layout::config`]): the primary encodes and publishes,
//! workers read under an announcement in their slot, `dpvsctl` takes snapshots.
//!
//! A generation's payload is [`FORMAT_VERSION`] (u16, little-endian) then the bincode of a
//! [`conf::Runtime`]; a reader of another format refuses it with an error naming both. The
//! encoding of each version is pinned by a golden file (`tests/golden/generation-v*.hex`).

use std::sync::atomic::{AtomicU64, Ordering};

use shm_layout::config::{ConfigArea, ConfigBuf, Generations, STATIC_TEXT_BYTES};
use shm_layout::WorkerSlot;

use crate::proto::DecodeError;

/// Version of the generation payload. Bump it whenever [`conf::Runtime`] changes shape (a
/// field, a field's type, an enum variant, here or in the types it holds), say here what
/// changed, and write the new version's golden file (`tests/golden.rs` says how): that test
/// fails until both are done.
///
/// 1. Addresses, neighbours, services with their real servers and local addresses.
/// 2. Forwarding method per real server, persistence per service.
/// 3. Routes.
/// 4. Upper and lower connection thresholds per real server, `deny` and `allow` networks per
///    service. The `tunnel` forwarding method was added later without a bump.
/// 5. Worker group per service. The PROXY protocol version per service had been added to 4
///    without a bump, so two builds both saying 4 may not read each other.
/// 6. `sapool` per address.
pub const FORMAT_VERSION: u16 = 6;

/// Encodes a runtime configuration as a generation payload.
pub fn encode(rt: &conf::Runtime) -> Vec<u8> {
    crate::proto::encode_versioned(FORMAT_VERSION, rt)
}

/// Decodes a generation payload.
///
/// # Errors
/// Another format version, or a malformed body.
pub fn decode(bytes: &[u8]) -> Result<conf::Runtime, DecodeError> {
    crate::proto::decode_versioned(FORMAT_VERSION, bytes)
}

/// Why a generation could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// A worker still reads the buffer the next generation goes to; try again shortly.
    #[error("a worker is still reading generation {0}")]
    Busy(u64),
    /// The encoded configuration does not fit a generation buffer (sized from `[limits]`).
    #[error(
        "the configuration is {len} bytes encoded, more than a generation buffer holds ({max}): raise [limits] in the configuration file"
    )]
    TooLarge { len: usize, max: usize },
}

/// Why a generation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No generation published yet.
    #[error("no configuration generation is published")]
    None,
    /// The buffer kept changing under the reader.
    #[error("the configuration kept changing while being read")]
    Unstable,
}

fn checksum(generation: u64, words: &[AtomicU64], len: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |w: u64| {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    mix(generation);
    mix(len as u64);
    for w in words.iter().take(len.div_ceil(8)) {
        mix(w.load(Ordering::Relaxed));
    }
    h
}

fn write_buf((buf, words): (&ConfigBuf, &[AtomicU64]), generation: u64, bytes: &[u8]) {
    buf.generation.store(0, Ordering::SeqCst);
    crate::write_words(words, bytes);
    buf.len.store(bytes.len() as u64, Ordering::Relaxed);
    buf.checksum.store(checksum(generation, words, bytes.len()), Ordering::Relaxed);
    buf.generation.store(generation, Ordering::Release);
}

/// Copies generation `g` out of its buffer, if the buffer holds it intact.
fn read_buf(gens: Generations<'_>, g: u64) -> Option<Vec<u8>> {
    let (buf, words) = gens.buf(g);
    if buf.generation.load(Ordering::Acquire) != g {
        return None;
    }
    let len = buf.len.load(Ordering::Relaxed) as usize;
    if len > gens.max_payload() {
        return None;
    }
    let bytes = crate::read_words(words, len);
    let intact =
        buf.checksum.load(Ordering::Relaxed) == checksum(g, words, len) && buf.generation.load(Ordering::Acquire) == g;
    intact.then_some(bytes)
}

/// Fills a fresh (zeroed) area before the layout is published: the startup text (cut at
/// [`STATIC_TEXT_BYTES`]) and generation 1, into the payloads `words`
/// ([`shm_layout::Tables::config_words`]).
///
/// # Errors
/// [`PublishError::TooLarge`].
pub fn init(
    area: &mut ConfigArea,
    words: [&[AtomicU64]; 2],
    static_text: &str,
    first: &[u8],
    now_ns: u64,
) -> Result<(), PublishError> {
    let max = words[0].len() * 8;
    if first.len() > max {
        return Err(PublishError::TooLarge { len: first.len(), max });
    }
    let text = static_text.as_bytes();
    let n = text.len().min(STATIC_TEXT_BYTES);
    area.static_text[..n].copy_from_slice(&text[..n]);
    area.static_len = n as u64;
    let gens = Generations::new(area, words);
    write_buf(gens.buf(1), 1, first);
    area.published_ns.store(now_ns, Ordering::Relaxed);
    area.generation.store(1, Ordering::SeqCst);
    Ok(())
}

/// Publishes `bytes` as the next generation and returns its number. It goes to the buffer of
/// the generation before the current one, so it fails with [`PublishError::Busy`] while any
/// slot (polling or incoming process) announces reading that one.
///
/// # Errors
/// [`PublishError`].
pub fn publish(gens: Generations<'_>, slots: &[WorkerSlot], bytes: &[u8], now_ns: u64) -> Result<u64, PublishError> {
    if bytes.len() > gens.max_payload() {
        return Err(PublishError::TooLarge { len: bytes.len(), max: gens.max_payload() });
    }
    let area = gens.area;
    let next = area.generation.load(Ordering::SeqCst) + 1;
    let old = next - 2;
    if old > 0
        && slots.iter().any(|s| {
            s.cfg_reading.load(Ordering::SeqCst) == old || s.cfg_reading_incoming.load(Ordering::SeqCst) == old
        })
    {
        return Err(PublishError::Busy(old));
    }
    write_buf(gens.buf(next), next, bytes);
    area.acked_ns.store(0, Ordering::Relaxed);
    area.published_ns.store(now_ns, Ordering::Relaxed);
    area.generation.store(next, Ordering::SeqCst);
    Ok(next)
}

/// Reads the current generation for a worker, announcing it in `reading` (its slot's
/// `cfg_reading`, or `cfg_reading_incoming` while it is not the polling process) for as long
/// as it copies. Returns the generation and its payload.
///
/// # Errors
/// [`ReadError::None`] before the first publication; [`ReadError::Unstable`] if generations
/// keep moving for 1000 tries (never, with a sane primary).
pub fn read_current(gens: Generations<'_>, reading: &AtomicU64) -> Result<(u64, Vec<u8>), ReadError> {
    let area = gens.area;
    for _ in 0..1000 {
        let g = area.generation.load(Ordering::SeqCst);
        if g == 0 {
            return Err(ReadError::None);
        }
        reading.store(g, Ordering::SeqCst);
        if area.generation.load(Ordering::SeqCst) != g {
            continue;
        }
        let got = read_buf(gens, g);
        reading.store(0, Ordering::Release);
        if let Some(bytes) = got {
            return Ok((g, bytes));
        }
    }
    reading.store(0, Ordering::Release);
    Err(ReadError::Unstable)
}

/// A copy of the current generation without announcing it (for `dpvsctl`, which has no
/// slot): the copy is kept only if its checksum holds and no newer generation reused the
/// buffer meanwhile.
///
/// # Errors
/// As [`read_current`].
pub fn snapshot(gens: Generations<'_>) -> Result<(u64, Vec<u8>), ReadError> {
    let area = gens.area;
    for _ in 0..1000 {
        let g = area.generation.load(Ordering::SeqCst);
        if g == 0 {
            return Err(ReadError::None);
        }
        if let Some(bytes) = read_buf(gens, g) {
            if area.generation.load(Ordering::SeqCst) <= g + 1 {
                return Ok((g, bytes));
            }
        }
        std::thread::yield_now();
    }
    Err(ReadError::Unstable)
}

/// Whether every slot that `polling` selects has applied generation `g` or a later one.
pub fn applied_by_all(slots: &[WorkerSlot], g: u64, polling: impl Fn(usize) -> bool) -> bool {
    slots.iter().enumerate().all(|(i, s)| !polling(i) || s.cfg_applied.load(Ordering::Acquire) >= g)
}
