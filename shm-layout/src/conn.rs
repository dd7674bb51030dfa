//! The connection table shard of one forwarding lcore, in its own shared-memory file so it
//! outlives the worker process and a replacement adopts it.
//!
//! ```text
//!  offset 0   ConnShardHeader   magic, version, geometry, owner's sequence word, counters
//!  buckets    u32 x n_buckets   in/out hash chains: entry index + 1, 0 = end
//!  wheel      u32 x wheel_slots timer wheel: entry index + 1 of each slot's first entry
//!  entries    ConnEntry x capacity
//! ```
//!
//! Single writer: the lcore that owns the shard. It makes every change to the indexes between
//! two increments of [`ConnShardHeader::seq`] (odd while a change is in progress), so a
//! replacement that finds it odd knows its predecessor died mid-change and rebuilds the
//! indexes from the entries, which are only ever marked in use after being fully written.

use std::sync::atomic::{AtomicU32, AtomicU64};

/// `b"DPVSCONN"` read as a little-endian u64.
pub const CONN_MAGIC: u64 = u64::from_le_bytes(*b"DPVSCONN");
/// Version of the shard layout. Bump it whenever a struct here changes, or the bucket hash
/// (`conn::shard`): chains built under one hash are not found under another. 4: one fmix64
/// round over independently multiplied words instead of five chained rounds. 5: four buckets
/// an entry instead of two; 6: eight.
pub const CONN_LAYOUT_VERSION: u32 = 6;

/// Hash buckets per entry of capacity: each entry is in two chains (its two directions), so
/// eight buckets an entry load the index at one quarter: a hit seldom walks past another
/// entry's link (each such step a cache miss in a large table). 32 bytes a connection.
pub const BUCKETS_PER_ENTRY: u32 = 8;

/// Counters of one shard (single writer: the owning lcore).
#[repr(C)]
#[derive(Default)]
pub struct ConnCounters {
    /// Lookups.
    pub lookups: AtomicU64,
    /// Lookups that found an entry.
    pub hits: AtomicU64,
    /// Entries created.
    pub created: AtomicU64,
    /// Entries removed by their timer.
    pub expired: AtomicU64,
    /// Entries removed otherwise (RST, real server removed, ...).
    pub removed: AtomicU64,
    /// Creations refused because the shard was full.
    pub full: AtomicU64,
    /// Index rebuilds after an owner died mid-change.
    pub rebuilds: AtomicU64,
    /// Room for later counters.
    pub reserved: [AtomicU64; 9],
}

/// The start of a shard file.
#[repr(C, align(64))]
#[derive(Default)]
pub struct ConnShardHeader {
    /// [`CONN_MAGIC`].
    pub magic: u64,
    /// [`CONN_LAYOUT_VERSION`], stored last by the creator.
    pub layout_version: AtomicU32,
    /// Worker slot that owns it.
    pub slot: u32,
    /// Entries (a power of two).
    pub capacity: u32,
    /// Hash buckets (a power of two; twice the capacity: each entry is in two chains).
    pub n_buckets: u32,
    /// Timer wheel slots (a power of two).
    pub wheel_slots: u32,
    /// Timer tick, µs.
    pub tick_us: u32,
    /// Hash seed, chosen at creation.
    pub seed: u64,
    /// Even when the indexes are consistent, odd while the owner changes them.
    pub seq: AtomicU64,
    /// First free entry (index + 1, 0 = none). Owner only.
    pub free_head: AtomicU32,
    /// Entries in use. Owner only.
    pub used: AtomicU32,
    /// The wheel's current tick (all ticks before it are processed). Owner only.
    pub wheel_tick: AtomicU64,
    /// Counters.
    pub counters: ConnCounters,
}

/// How a connection entry forwards its packets (bits 4..8 of [`ConnEntry::flags`]).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Full-NAT: both addresses rewritten; replies come back to a local address.
    FullNat = 1,
    /// Direct routing: inbound only, MACs rewritten, the packet otherwise unchanged.
    Dr = 2,
    /// NAT: the Full-NAT rewrite with the client as the local side.
    Nat = 3,
    /// A persistence template (client address -> real server of a persistent service): it
    /// carries no traffic and is no connection of its real server.
    Template = 4,
    /// IP-in-IP: inbound only, the packet unchanged inside an outer IPv4 header.
    Tunnel = 5,
    /// NAT64: Full-NAT between an IPv6 client (and VIP) and an IPv4 real server (and local
    /// address), each packet's header translated to the other family (RFC 7915).
    Nat64 = 6,
}

impl Mode {
    /// Decodes a stored mode value (the high nibble of `flags`); `None` for an unknown one.
    pub const fn from_u8(v: u8) -> Option<Mode> {
        match v {
            1 => Some(Mode::FullNat),
            2 => Some(Mode::Dr),
            3 => Some(Mode::Nat),
            4 => Some(Mode::Template),
            5 => Some(Mode::Tunnel),
            6 => Some(Mode::Nat64),
            _ => None,
        }
    }
}

/// One connection, indexed by both of its directions.
///
/// Addresses are 16 bytes (IPv4 as `::ffff:a.b.c.d`), ports in host order.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct ConnEntry {
    /// Client address (inbound source).
    pub caddr: [u8; 16],
    /// Virtual address (inbound destination).
    pub vaddr: [u8; 16],
    /// Local address (outbound destination; the client address unless Full-NAT).
    pub laddr: [u8; 16],
    /// Real server address (outbound source).
    pub raddr: [u8; 16],
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Local port (outbound destination port).
    pub lport: u16,
    /// Real server port.
    pub rport: u16,
    /// IP protocol (6, 17, ...).
    pub proto: u8,
    /// Protocol state (TCP states of LVS; UDP: 0 normal).
    pub state: u8,
    /// What the entry is, read through [`ConnEntry::in_use`], [`ConnEntry::mode`] and
    /// [`ConnEntry::is_controlled`]:
    ///
    /// ```text
    ///    7   6   5   4   3   2   1   0
    ///  +---------------+---+---+---+---+
    ///  |     mode      | 0 | C | 0 | U |
    ///  +---------------+---+---+---+---+
    ///  U     FLAG_IN_USE       set with the whole entry by conn::Shard::insert, cleared (the
    ///                          byte zeroed) when the entry is freed
    ///  C     FLAG_CONTROLLED   set by the owning worker right after insert when a persistence
    ///                          template placed the connection (counted in its `controls`)
    ///  mode  Mode (1..=5)      set by insert from NewConn::mode (flags_for), never changed
    ///  0     reserved: nothing sets bits 1 and 3 (activity is `state`, not a flag)
    /// ```
    ///
    /// The owning lcore is the only writer; readers (dpvsctl, a replacement worker) decode it.
    pub flags: u8,
    /// A connection a persistence template placed (`C` set): the prefix length its client was
    /// grouped by, which finds the template again (0: the whole address).
    pub template_prefix: u8,
    /// Service index under the stamp `cfg_gen` (a cache: the service is the one of `proto`,
    /// `vaddr`, `vport`).
    pub service: u32,
    /// Real server index in that service (a cache: the real server is `raddr`, `rport`).
    pub real: u32,
    /// Next entry in the inbound hash chain (index + 1, 0 = end).
    pub next_in: u32,
    /// Next entry in the outbound hash chain.
    pub next_out: u32,
    /// Next entry in its timer wheel slot (or the free list).
    pub next_timer: u32,
    /// Previous entry in its timer wheel slot (index + 1, 0 = it is the slot's head).
    pub prev_timer: u32,
    /// The wheel slot it is filed in (valid while in use).
    pub wheel_slot: u32,
    /// Tick at which it expires.
    pub expires: u64,
    /// Packets in, out.
    pub packets: [u64; 2],
    /// Bytes in, out.
    pub bytes: [u64; 2],
    /// TCP sequence offsets applied inbound and outbound (TOA, SYN proxy).
    pub seq_delta: [i32; 2],
    /// MAC address replies to the client go to (the client's, or its router's).
    pub client_mac: [u8; 6],
    /// Port slot the client side is on.
    pub client_port: u16,
    /// The stamp under which `service` and `real` were last resolved: the configuration
    /// generation mixed with the resolving process's start (the order of services is each
    /// process's own), so any other value resolves them again (0: never).
    pub cfg_gen: u64,
    /// PROXY protocol: the client's first sequence number (its SYN's + 1), where the header
    /// goes in; valid when `pp_len` is not 0.
    pub pp_seq: u32,
    /// PROXY protocol: the header's length (0: none); the client's later sequence numbers go
    /// up by it, the real server's acknowledgements down.
    pub pp_len: u16,
    /// PROXY protocol version of the header (1, 2; 0: none).
    pub pp_version: u8,
    pub _pad2: u8,
    /// A persistence template: the connections it placed that still live (it does not expire
    /// while there are any, as in LVS).
    pub controls: u32,
    /// Reserved for later versions.
    pub reserved: [u8; 4],
}

impl ConnEntry {
    /// Flag: the entry holds a connection (or a template); 0 when free.
    pub const FLAG_IN_USE: u8 = 1;
    /// Flag: the connection was placed by a persistence template (counted in its `controls`).
    pub const FLAG_CONTROLLED: u8 = 1 << 2;
    /// Where the mode starts in `flags`.
    const MODE_SHIFT: u32 = 4;

    /// Whether the entry holds a connection.
    #[inline]
    pub fn in_use(&self) -> bool {
        self.flags & Self::FLAG_IN_USE != 0
    }

    /// How it forwards; `None` for a free entry or an unknown mode value.
    #[inline]
    pub fn mode(&self) -> Option<Mode> {
        if !self.in_use() {
            return None;
        }
        Mode::from_u8(self.flags >> Self::MODE_SHIFT)
    }

    /// Whether it is a persistence template.
    #[inline]
    pub fn is_template(&self) -> bool {
        self.mode() == Some(Mode::Template)
    }

    /// Whether a persistence template placed it.
    #[inline]
    pub fn is_controlled(&self) -> bool {
        self.flags & Self::FLAG_CONTROLLED != 0
    }

    /// Marks it as placed by a persistence template.
    #[inline]
    pub fn set_controlled(&mut self) {
        self.flags |= Self::FLAG_CONTROLLED;
    }

    /// The flags of a new entry of `mode`: in use, not controlled.
    #[inline]
    pub const fn flags_for(mode: Mode) -> u8 {
        Self::FLAG_IN_USE | (mode as u8) << Self::MODE_SHIFT
    }

    /// An all-zero, unused entry.
    pub const EMPTY: ConnEntry = ConnEntry {
        caddr: [0; 16],
        vaddr: [0; 16],
        laddr: [0; 16],
        raddr: [0; 16],
        cport: 0,
        vport: 0,
        lport: 0,
        rport: 0,
        proto: 0,
        state: 0,
        flags: 0,
        template_prefix: 0,
        service: 0,
        real: 0,
        next_in: 0,
        next_out: 0,
        next_timer: 0,
        prev_timer: 0,
        wheel_slot: 0,
        expires: 0,
        packets: [0; 2],
        bytes: [0; 2],
        seq_delta: [0; 2],
        client_mac: [0; 6],
        client_port: 0,
        cfg_gen: 0,
        pp_seq: 0,
        pp_len: 0,
        pp_version: 0,
        _pad2: 0,
        controls: 0,
        reserved: [0; 4],
    };
}

/// The shard file of worker slot `slot` of the instance whose shm file is `shm`.
pub fn conn_shard_path(shm: &std::path::Path, slot: usize) -> std::path::PathBuf {
    let mut name = shm.as_os_str().to_owned();
    name.push(format!(".conn{slot}"));
    std::path::PathBuf::from(name)
}

/// Bytes a shard of `capacity` entries with `wheel_slots` wheel slots takes.
pub const fn conn_shard_bytes(capacity: u32, wheel_slots: u32) -> usize {
    let buckets = BUCKETS_PER_ENTRY as usize * capacity as usize;
    let head = std::mem::size_of::<ConnShardHeader>();
    let idx = (buckets + wheel_slots as usize) * 4;
    // Entries start on a 64-byte boundary.
    let entries_off = (head + idx).div_ceil(64) * 64;
    entries_off + capacity as usize * std::mem::size_of::<ConnEntry>()
}

/// Byte offsets of the parts of a shard.
pub const fn conn_shard_offsets(capacity: u32, wheel_slots: u32) -> (usize, usize, usize) {
    let head = std::mem::size_of::<ConnShardHeader>();
    let buckets_off = head;
    let wheel_off = buckets_off + BUCKETS_PER_ENTRY as usize * capacity as usize * 4;
    let entries_off = (wheel_off + wheel_slots as usize * 4).div_ceil(64) * 64;
    (buckets_off, wheel_off, entries_off)
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ConnCounters>() == 128);
    assert!(size_of::<ConnShardHeader>() == 192);
    assert!(offset_of!(ConnShardHeader, layout_version) == 8);
    assert!(offset_of!(ConnShardHeader, seq) == 40);
    assert!(offset_of!(ConnShardHeader, counters) == 64);
    assert!(size_of::<ConnEntry>() == 192 && align_of::<ConnEntry>() == 64);
    assert!(offset_of!(ConnEntry, cport) == 64);
    assert!(offset_of!(ConnEntry, proto) == 72);
    assert!(offset_of!(ConnEntry, flags) == 74);
    assert!(offset_of!(ConnEntry, next_in) == 84);
    assert!(offset_of!(ConnEntry, expires) == 104);
    // 1M entries per lcore fit in ~230 MiB.
    assert!(conn_shard_bytes(1 << 20, 4096) < 230 * 1024 * 1024);
};

// The flag bits and the mode nibble do not overlap, and every mode fits in its nibble.
const _: () = {
    let flags = ConnEntry::FLAG_IN_USE | ConnEntry::FLAG_CONTROLLED;
    let modes = [Mode::FullNat, Mode::Dr, Mode::Nat, Mode::Template, Mode::Tunnel, Mode::Nat64];
    let mut i = 0;
    while i < modes.len() {
        let m = modes[i] as u8;
        assert!(m != 0 && m >> (8 - ConnEntry::MODE_SHIFT) == 0);
        assert!((m << ConnEntry::MODE_SHIFT) & flags == 0);
        assert!(matches!(Mode::from_u8(m), Some(x) if x as u8 == m));
        i += 1;
    }
    assert!(flags >> ConnEntry::MODE_SHIFT == 0);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn with_flags(flags: u8) -> ConnEntry {
        ConnEntry { flags, ..ConnEntry::EMPTY }
    }

    #[test]
    fn flag_bytes_decode() {
        // (flags byte, in use, mode, template, controlled)
        let fixtures: [(u8, bool, Option<Mode>, bool, bool); 9] = [
            (0x00, false, None, false, false),
            (0x11, true, Some(Mode::FullNat), false, false),
            (0x21, true, Some(Mode::Dr), false, false),
            (0x35, true, Some(Mode::Nat), false, true),
            (0x41, true, Some(Mode::Template), true, false),
            (0x45, true, Some(Mode::Template), true, true),
            (0x51, true, Some(Mode::Tunnel), false, false),
            (0x61, true, Some(Mode::Nat64), false, false),
            // A mode this build does not know.
            (0x71, true, None, false, false),
        ];
        for (flags, in_use, mode, template, controlled) in fixtures {
            let e = with_flags(flags);
            assert_eq!(
                (e.in_use(), e.mode(), e.is_template(), e.is_controlled()),
                (in_use, mode, template, controlled),
                "flags {flags:#04x}"
            );
        }
        // A free entry has no mode, whatever its high bits say.
        assert_eq!(with_flags(0x20).mode(), None);
    }

    #[test]
    fn new_entries_are_encoded_as_the_bytes_readers_expect() {
        let fixtures = [
            (Mode::FullNat, 0x11),
            (Mode::Dr, 0x21),
            (Mode::Nat, 0x31),
            (Mode::Template, 0x41),
            (Mode::Tunnel, 0x51),
            (Mode::Nat64, 0x61),
        ];
        for (mode, byte) in fixtures {
            assert_eq!(ConnEntry::flags_for(mode), byte, "{mode:?}");
            assert_eq!(with_flags(byte).mode(), Some(mode));
            assert_eq!(Mode::from_u8(mode as u8), Some(mode));
        }
        let mut e = with_flags(ConnEntry::flags_for(Mode::Template));
        e.set_controlled();
        assert_eq!(e.flags, 0x45);
        assert_eq!([Mode::from_u8(0), Mode::from_u8(7), Mode::from_u8(15)], [None, None, None]);
    }
}
