//! Configuration generations ([`shm_layout::config`]): the primary publishes each as a delta
//! against the one before it (or, when it changes much, as a snapshot of the whole
//! configuration), a worker that applied the one before applies the delta, and every other
//! reader takes the newest snapshot and replays the deltas after it.
//!
//! A payload is [`FORMAT_VERSION`] (u16, little-endian) then bincode: of a [`conf::Runtime`] in
//! a snapshot buffer, of an [`Entry`] in the delta ring. A reader of another format refuses it
//! with an error naming both. The encoding of each version is pinned by a golden file
//! (`tests/golden/generation-v*.hex`).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use shm_layout::config::{ConfigArea, ConfigBuf, Generations, Payloads, DELTA_SLOTS, STATIC_TEXT_BYTES};
use shm_layout::WorkerSlot;

use crate::proto::{DecodeError, ServiceKey};

/// Version of the generation payloads. Bump it whenever [`conf::Runtime`] or [`Entry`] changes
/// shape (a field, a field's type, an enum variant, here or in the types they hold), say here
/// what changed, and write the new version's golden file (`tests/golden.rs` says how): that
/// test fails until both are done.
///
/// 1. Addresses, neighbours, services with their real servers and local addresses.
/// 2. Forwarding method per real server, persistence per service.
/// 3. Routes.
/// 4. Upper and lower connection thresholds per real server, `deny` and `allow` networks per
///    service. The `tunnel` forwarding method was added later without a bump.
/// 5. Worker group per service. The PROXY protocol version per service had been added to 4
///    without a bump, so two builds both saying 4 may not read each other.
/// 6. `sapool` per address.
/// 7. Deltas: the ring's [`Entry`] (the snapshot's encoding is 6's).
/// 8. IPv6 interface addresses (an address is an `IpAddr`).
/// 9. IPv6 services (a VIP, a real server's address and a local address are `IpAddr`s).
/// 10. IPv6 access lists, routes and static neighbours (their addresses are `IpAddr`s).
/// 11. The persistence prefix per service.
/// 12. The health check per service, the health (`down`) per real server.
pub const FORMAT_VERSION: u16 = 12;

/// What a generation changes, against the generation before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The interface addresses, whole, when they changed.
    pub addresses: Option<Vec<conf::IfAddr>>,
    /// The static neighbours, whole, when they changed.
    pub neighbours: Option<Vec<conf::Neighbour>>,
    /// The static routes, whole, when they changed.
    pub routes: Option<Vec<conf::Route>>,
    /// Services removed (a key the configuration does not have is no error).
    pub removed: Vec<ServiceKey>,
    /// Services added or changed, whole, after the removals: one whose key the configuration
    /// has replaces it in place, a new one is appended (in this order).
    pub put: Vec<conf::Shared<conf::Service>>,
}

impl Delta {
    /// Whether it changes the addresses, neighbours or routes (which every real server's next
    /// hop depends on).
    pub fn tables_changed(&self) -> bool {
        self.addresses.is_some() || self.neighbours.is_some() || self.routes.is_some()
    }

    /// Makes the change in `rt`: `rt` becomes the generation this delta makes of the one it
    /// was made against. Costs a pass over the services ([`Indexed::apply`] costs the
    /// services put).
    pub fn apply(&self, rt: &mut conf::Runtime) {
        let mut indexed = Indexed::new(std::mem::take(rt));
        indexed.apply(self);
        *rt = indexed.rt;
    }
}

/// A whole configuration and its services' indices by key: deltas replayed on it cost the
/// services they put (a pass over the services when they remove any).
#[derive(Debug, Clone, Default)]
pub struct Indexed {
    rt: conf::Runtime,
    index: std::collections::HashMap<ServiceKey, usize>,
}

impl Indexed {
    /// `rt`, indexed.
    pub fn new(rt: conf::Runtime) -> Indexed {
        let index = rt.services.iter().enumerate().map(|(i, s)| (ServiceKey::of(s), i)).collect();
        Indexed { rt, index }
    }

    /// The configuration.
    pub fn runtime(&self) -> &conf::Runtime {
        &self.rt
    }

    /// The configuration, without its index.
    pub fn into_runtime(self) -> conf::Runtime {
        self.rt
    }

    /// Makes the change `d` ([`Delta::apply`]).
    pub fn apply(&mut self, d: &Delta) {
        let rt = &mut self.rt;
        if let Some(a) = &d.addresses {
            rt.addresses.clone_from(a);
        }
        if let Some(n) = &d.neighbours {
            rt.neighbours.clone_from(n);
        }
        if let Some(r) = &d.routes {
            rt.routes.clone_from(r);
        }
        if d.removed.iter().any(|k| self.index.contains_key(k)) {
            let gone: std::collections::HashSet<ServiceKey> = d.removed.iter().copied().collect();
            rt.services.retain(|s| !gone.contains(&ServiceKey::of(s)));
            self.index = rt.services.iter().enumerate().map(|(i, s)| (ServiceKey::of(s), i)).collect();
        }
        for s in &d.put {
            let k = ServiceKey::of(s);
            match self.index.get(&k) {
                Some(&i) => rt.services[i] = s.clone(),
                None => {
                    self.index.insert(k, rt.services.len());
                    rt.services.push(s.clone());
                }
            }
        }
    }
}

/// A generation's entry in the delta ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// The generation is a snapshot: read the snapshot buffers.
    Snapshot,
    /// The generation is this change to the one before it.
    Delta(Delta),
}

/// Encodes a runtime configuration as a snapshot payload.
pub fn encode(rt: &conf::Runtime) -> Vec<u8> {
    crate::proto::encode_versioned(FORMAT_VERSION, rt)
}

/// Decodes a snapshot payload.
///
/// # Errors
/// Another format version, or a malformed body.
pub fn decode(bytes: &[u8]) -> Result<conf::Runtime, DecodeError> {
    crate::proto::decode_versioned(FORMAT_VERSION, bytes)
}

/// Encodes a ring entry.
pub fn encode_entry(e: &Entry) -> Vec<u8> {
    crate::proto::encode_versioned(FORMAT_VERSION, e)
}

/// Decodes a ring entry.
///
/// # Errors
/// Another format version, or a malformed body.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    crate::proto::decode_versioned(FORMAT_VERSION, bytes)
}

/// Why a generation could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// A reader still reads the snapshot buffer the next snapshot goes to; try again shortly.
    #[error("a reader is still reading the snapshot of generation {0}")]
    Busy(u64),
    /// The encoded configuration does not fit a snapshot buffer (sized from `[limits]`).
    #[error(
        "the configuration is {len} bytes encoded, more than a generation buffer holds ({max}): raise [limits] in the configuration file"
    )]
    TooLarge { len: usize, max: usize },
    /// The delta takes more than a quarter of the ring's arena: publish a snapshot instead.
    #[error("the change is {len} bytes encoded, more than a delta holds ({max})")]
    DeltaTooLarge { len: usize, max: usize },
    /// The ring would lose the deltas after the newest snapshot: write a snapshot first.
    #[error("generation {0} would overwrite a delta after the newest snapshot")]
    Lapping(u64),
}

/// Why a generation could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No generation published yet.
    #[error("no configuration generation is published")]
    None,
    /// The buffers kept changing under the reader.
    #[error("the configuration kept changing while being read")]
    Unstable,
    /// A payload does not decode.
    #[error("configuration generation {generation}: {source}")]
    Decode { generation: u64, source: DecodeError },
}

/// Checksum of a payload for generation `generation`: a multiply-xor over its bytes eight at a
/// time, which tells a torn copy from an intact one at memory speed.
fn checksum(generation: u64, bytes: &[u8]) -> u64 {
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    let h = mix(mix(0xcbf2_9ce4_8422_2325, generation), bytes.len() as u64);
    bytes.chunks(8).fold(h, |h, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        mix(h, u64::from_le_bytes(w))
    })
}

fn write_buf((buf, words): (&ConfigBuf, &[AtomicU64]), generation: u64, bytes: &[u8]) {
    buf.generation.store(0, Ordering::SeqCst);
    crate::write_words(words, bytes);
    buf.len.store(bytes.len() as u64, Ordering::Relaxed);
    buf.checksum.store(checksum(generation, bytes), Ordering::Relaxed);
    buf.generation.store(generation, Ordering::Release);
}

/// Copies what the buffer holds for generation `g`, if it holds it intact.
fn read_buf((buf, words): (&ConfigBuf, &[AtomicU64]), g: u64) -> Option<Vec<u8>> {
    if g == 0 || buf.generation.load(Ordering::Acquire) != g {
        return None;
    }
    let len = buf.len.load(Ordering::Relaxed) as usize;
    if len > words.len() * 8 {
        return None;
    }
    let bytes = crate::read_words(words, len);
    let intact =
        buf.checksum.load(Ordering::Relaxed) == checksum(g, &bytes) && buf.generation.load(Ordering::Acquire) == g;
    intact.then_some(bytes)
}

/// Writes `bytes` as generation `g`'s entry in the delta ring, unless it would overwrite an
/// entry after the newest snapshot (a slot or arena bytes that a reader of that snapshot
/// replays).
fn write_entry(gens: Generations<'_>, g: u64, bytes: &[u8]) -> Result<(), PublishError> {
    if bytes.len() > gens.max_delta() {
        return Err(PublishError::DeltaTooLarge { len: bytes.len(), max: gens.max_delta() });
    }
    let (area, arena) = (gens.area, gens.arena());
    let size = arena.len() as u64 * 8;
    let head = area.arena_head.load(Ordering::SeqCst);
    let take = (bytes.len() as u64).next_multiple_of(8);
    let s = snapshot_generation(gens);
    if g.saturating_sub(s) >= DELTA_SLOTS as u64 {
        return Err(PublishError::Lapping(g));
    }
    // Where the first entry after the snapshot starts (none yet: here).
    let after = gens.delta(s + 1);
    let first = if g > s + 1 && after.generation.load(Ordering::Acquire) == s + 1 {
        after.offset.load(Ordering::Relaxed)
    } else {
        head
    };
    if head + take - first.min(head) > size {
        return Err(PublishError::Lapping(g));
    }
    let hdr = gens.delta(g);
    hdr.generation.store(0, Ordering::SeqCst);
    // The head moves first: a reader that copied bytes this write changes then sees it past
    // its entry by more than the arena.
    area.arena_head.store(head + take, Ordering::SeqCst);
    std::sync::atomic::fence(Ordering::SeqCst);
    let start = (head / 8) as usize;
    for (i, c) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        arena[(start + i) % arena.len()].store(u64::from_le_bytes(w), Ordering::Relaxed);
    }
    hdr.offset.store(head, Ordering::Relaxed);
    hdr.len.store(bytes.len() as u64, Ordering::Relaxed);
    hdr.checksum.store(checksum(g, bytes), Ordering::Relaxed);
    hdr.generation.store(g, Ordering::Release);
    Ok(())
}

/// Copies generation `g`'s entry out of the delta ring, if the ring holds it intact.
fn read_entry(gens: Generations<'_>, g: u64) -> Option<Vec<u8>> {
    let (hdr, arena) = (gens.delta(g), gens.arena());
    if g == 0 || hdr.generation.load(Ordering::Acquire) != g {
        return None;
    }
    let (at, len) = (hdr.offset.load(Ordering::Relaxed), hdr.len.load(Ordering::Relaxed) as usize);
    if len > gens.max_delta() || arena.is_empty() {
        return None;
    }
    let start = (at / 8) as usize;
    let mut bytes = Vec::with_capacity(len.next_multiple_of(8));
    for i in 0..len.div_ceil(8) {
        bytes.extend_from_slice(&arena[(start + i) % arena.len()].load(Ordering::Relaxed).to_le_bytes());
    }
    bytes.truncate(len);
    std::sync::atomic::fence(Ordering::SeqCst);
    let head = gens.area.arena_head.load(Ordering::SeqCst);
    let unmoved = at + len as u64 <= head && head - at <= arena.len() as u64 * 8;
    let intact = unmoved
        && hdr.checksum.load(Ordering::Relaxed) == checksum(g, &bytes)
        && hdr.generation.load(Ordering::Acquire) == g;
    intact.then_some(bytes)
}

/// Fills a fresh (zeroed) area before the layout is published: the startup text (cut at
/// [`STATIC_TEXT_BYTES`]) and generation 1, a snapshot (`first`, encoded by [`encode`]), into
/// the payloads `words` ([`shm_layout::Tables::config_words`]).
///
/// # Errors
/// [`PublishError::TooLarge`].
pub fn init(
    area: &mut ConfigArea,
    words: Payloads<'_>,
    static_text: &str,
    first: &[u8],
    now_ns: u64,
) -> Result<(), PublishError> {
    let max = words.snapshots[0].len() * 8;
    if first.len() > max {
        return Err(PublishError::TooLarge { len: first.len(), max });
    }
    let text = static_text.as_bytes();
    let n = text.len().min(STATIC_TEXT_BYTES);
    area.static_text[..n].copy_from_slice(&text[..n]);
    area.static_len = n as u64;
    let gens = Generations::new(area, words);
    write_buf(gens.buf(0), 1, first);
    area.snapshot_buf.store(0, Ordering::SeqCst);
    write_entry(gens, 1, &encode_entry(&Entry::Snapshot))?;
    area.published_ns.store(now_ns, Ordering::Relaxed);
    area.generation.store(1, Ordering::SeqCst);
    Ok(())
}

/// The generation the newest snapshot holds.
pub fn snapshot_generation(gens: Generations<'_>) -> u64 {
    let i = gens.area.snapshot_buf.load(Ordering::SeqCst) as usize;
    gens.buf(i).0.generation.load(Ordering::SeqCst)
}

/// Whether the deltas after the newest snapshot take a quarter of the ring (its slots or its
/// arena's bytes): time to write a snapshot, while there is room to write it in.
pub fn ring_filling(gens: Generations<'_>) -> bool {
    let g = gens.area.generation.load(Ordering::SeqCst);
    let s = snapshot_generation(gens);
    if g.saturating_sub(s) >= DELTA_SLOTS as u64 / 4 {
        return true;
    }
    let after = gens.delta(s + 1);
    if g <= s || after.generation.load(Ordering::Acquire) != s + 1 {
        return false;
    }
    let used = gens.area.arena_head.load(Ordering::SeqCst).saturating_sub(after.offset.load(Ordering::Relaxed));
    used >= gens.arena().len() as u64 * 2
}

/// Writes `bytes` (encoded by [`encode`]) as the snapshot of generation `g` (the current one,
/// or one whose deltas after it the ring still holds) into the older snapshot buffer, unless a
/// slot announces reading it.
///
/// # Errors
/// [`PublishError::Busy`], [`PublishError::TooLarge`].
pub fn write_snapshot(gens: Generations<'_>, slots: &[WorkerSlot], g: u64, bytes: &[u8]) -> Result<(), PublishError> {
    if bytes.len() > gens.max_payload() {
        return Err(PublishError::TooLarge { len: bytes.len(), max: gens.max_payload() });
    }
    let newest = gens.area.snapshot_buf.load(Ordering::SeqCst) as usize;
    let older = 1 - newest.min(1);
    let (buf, _) = gens.buf(older);
    let held = buf.generation.load(Ordering::SeqCst);
    if held > 0
        && slots.iter().any(|s| {
            s.cfg_reading.load(Ordering::SeqCst) == held || s.cfg_reading_incoming.load(Ordering::SeqCst) == held
        })
    {
        return Err(PublishError::Busy(held));
    }
    write_buf(gens.buf(older), g, bytes);
    gens.area.snapshot_buf.store(older as u64, Ordering::SeqCst);
    Ok(())
}

/// Publishes `bytes` (encoded by [`encode`]) as the next generation, a snapshot, and returns
/// its number.
///
/// # Errors
/// As [`write_snapshot`].
pub fn publish_snapshot(
    gens: Generations<'_>,
    slots: &[WorkerSlot],
    bytes: &[u8],
    now_ns: u64,
) -> Result<u64, PublishError> {
    let next = gens.area.generation.load(Ordering::SeqCst) + 1;
    write_snapshot(gens, slots, next, bytes)?;
    write_entry(gens, next, &encode_entry(&Entry::Snapshot))?;
    switch(gens.area, next, now_ns);
    Ok(next)
}

/// Publishes `delta` as the next generation, a change to the current one, and returns its
/// number.
///
/// # Errors
/// [`PublishError::DeltaTooLarge`] (publish a snapshot instead), [`PublishError::Lapping`]
/// (the ring holds as many deltas after the newest snapshot as it can: write a snapshot
/// first, or publish one).
pub fn publish_delta(gens: Generations<'_>, delta: &Delta, now_ns: u64) -> Result<u64, PublishError> {
    let next = gens.area.generation.load(Ordering::SeqCst) + 1;
    // A copy of the delta shares its services (`conf::Shared`).
    let bytes = encode_entry(&Entry::Delta(delta.clone()));
    write_entry(gens, next, &bytes)?;
    switch(gens.area, next, now_ns);
    Ok(next)
}

/// Makes `next` the current generation.
fn switch(area: &ConfigArea, next: u64, now_ns: u64) {
    area.acked_ns.store(0, Ordering::Relaxed);
    area.published_ns.store(now_ns, Ordering::Relaxed);
    area.generation.store(next, Ordering::SeqCst);
}

/// What a reader needs to reach the current generation.
#[derive(Debug)]
pub enum Update {
    /// The deltas after the generation it has, in order.
    Deltas(Vec<Delta>),
    /// The whole configuration.
    Whole(conf::Runtime),
}

/// Reads generation `g`'s ring entry, if the ring holds it intact.
fn ring_entry(gens: Generations<'_>, g: u64) -> Option<Result<Entry, ReadError>> {
    let bytes = read_entry(gens, g)?;
    Some(decode_entry(&bytes).map_err(|source| ReadError::Decode { generation: g, source }))
}

/// Copies the newest snapshot, announcing its generation in `reading` (if any) while it
/// copies: (generation, payload).
fn read_snapshot(gens: Generations<'_>, reading: Option<&AtomicU64>) -> Option<(u64, Vec<u8>)> {
    let i = gens.area.snapshot_buf.load(Ordering::SeqCst) as usize;
    let buf = gens.buf(i);
    let s = buf.0.generation.load(Ordering::SeqCst);
    if s == 0 {
        return None;
    }
    if let Some(r) = reading {
        r.store(s, Ordering::SeqCst);
    }
    let got = if buf.0.generation.load(Ordering::SeqCst) == s { read_buf(buf, s) } else { None };
    if let Some(r) = reading {
        r.store(0, Ordering::Release);
    }
    got.map(|b| (s, b))
}

/// The current generation and its whole configuration: the newest snapshot with the deltas
/// after it replayed. `reading`: the slot field a worker announces the snapshot it copies in
/// (`None` for `dpvsctl`, which has no slot: its copy is checked instead).
///
/// # Errors
/// [`ReadError::None`] before the first publication; [`ReadError::Unstable`] if generations
/// keep moving for 1000 tries (never, with a sane primary); [`ReadError::Decode`].
pub fn current(gens: Generations<'_>, reading: Option<&AtomicU64>) -> Result<(u64, conf::Runtime), ReadError> {
    'tries: for _ in 0..1000 {
        if gens.area.generation.load(Ordering::SeqCst) == 0 {
            return Err(ReadError::None);
        }
        let Some((s, bytes)) = read_snapshot(gens, reading) else {
            std::thread::yield_now();
            continue;
        };
        let rt = decode(&bytes).map_err(|source| ReadError::Decode { generation: s, source })?;
        let mut rt = Indexed::new(rt);
        let g = gens.area.generation.load(Ordering::SeqCst);
        for next in s + 1..=g {
            match ring_entry(gens, next) {
                Some(Ok(Entry::Delta(d))) => rt.apply(&d),
                Some(Err(e)) => return Err(e),
                // A newer snapshot, or the ring moved on: start again.
                Some(Ok(Entry::Snapshot)) | None => continue 'tries,
            }
        }
        return Ok((g, rt.into_runtime()));
    }
    Err(ReadError::Unstable)
}

/// What takes a reader that applied generation `applied` (0: none) to the current one: the
/// deltas after it when the ring holds them all, else the whole configuration ([`current`]).
/// Returns the generation it reaches.
///
/// # Errors
/// As [`current`].
pub fn update(gens: Generations<'_>, reading: &AtomicU64, applied: u64) -> Result<(u64, Update), ReadError> {
    let g = gens.area.generation.load(Ordering::SeqCst);
    if applied > 0 && g > applied && g - applied < DELTA_SLOTS as u64 {
        let mut deltas = Vec::with_capacity((g - applied) as usize);
        for next in applied + 1..=g {
            match ring_entry(gens, next) {
                Some(Ok(Entry::Delta(d))) => deltas.push(d),
                Some(Err(e)) => return Err(e),
                Some(Ok(Entry::Snapshot)) | None => break,
            }
        }
        if deltas.len() as u64 == g - applied {
            return Ok((g, Update::Deltas(deltas)));
        }
    }
    current(gens, Some(reading)).map(|(g, rt)| (g, Update::Whole(rt)))
}

/// Whether every slot that `polling` selects has applied generation `g` or a later one.
pub fn applied_by_all(slots: &[WorkerSlot], g: u64, polling: impl Fn(usize) -> bool) -> bool {
    slots.iter().enumerate().all(|(i, s)| !polling(i) || s.cfg_applied.load(Ordering::Acquire) >= g)
}
