//! Receive-side scaling as NICs do it: the Toeplitz hash of a packet's addresses and ports
//! under a 40-byte key, and the redirection table (RETA) that maps the hash's low bits to an
//! rx queue. The balancer computes it in software to know which queue, and so which lcore, a
//! packet will arrive on before it is sent: for a Full-NAT connection, a local port whose reply
//! lands on the lcore that holds the connection.
//!
//! Toeplitz is linear over GF(2): the hash of an input is the XOR, over the input's set bits
//! `i` (most significant bit of byte 0 first), of the key's 32-bit window starting at bit `i`.
//! So the hash of a tuple is the XOR of its fields' hashes, each field's taken at its offset
//! ([`Toeplitz::field`]), and a table per byte offset ([`ByteTable`]) gives a field's part in
//! one lookup a byte.
//!
//! Inputs are laid out as DPDK's `rte_softrss` and Microsoft's specification do: source
//! address, destination address (4 bytes each for IPv4, 16 for IPv6, network order), then
//! source and destination port (2 bytes each, network order); the addresses-only hash stops
//! after the addresses.
#![forbid(unsafe_code)]

/// Length of an RSS key: 40 bytes hash inputs of up to 36 bytes (IPv6 addresses and ports).
pub const KEY_LEN: usize = 40;

/// The key of Microsoft's RSS specification and verification suite, which many NICs and DPDK
/// drivers use by default.
pub const MS_KEY: [u8; KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// Byte offsets of the IPv4 fields in an RSS input.
pub mod offset {
    /// Source address.
    pub const SRC_ADDR: usize = 0;
    /// Destination address.
    pub const DST_ADDR: usize = 4;
    /// Source port.
    pub const SRC_PORT: usize = 8;
    /// Destination port.
    pub const DST_PORT: usize = 10;
    /// End of the IPv4 input with ports.
    pub const END: usize = 12;
}

/// The Toeplitz hash under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toeplitz {
    key: [u8; KEY_LEN],
}

impl Toeplitz {
    /// The hash under `key`.
    pub const fn new(key: [u8; KEY_LEN]) -> Toeplitz {
        Toeplitz { key }
    }

    /// The key.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The key's 32 bits starting at bit `bit` (most significant bit of byte 0 is bit 0),
    /// zeros past the key's end: what an input bit set at position `bit` adds to the hash.
    pub fn window(&self, bit: usize) -> u32 {
        let byte = bit / 8;
        let mut w = 0u64;
        for i in 0..5 {
            w = w << 8 | u64::from(self.key.get(byte + i).copied().unwrap_or(0));
        }
        (w >> (8 - bit % 8)) as u32
    }

    /// The hash of `input` (at most 36 bytes, so that every bit has a 32-bit window).
    ///
    /// # Panics
    /// When `input` is longer than 36 bytes.
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.field(0, input)
    }

    /// The part of the hash that `bytes` make at byte offset `at` of an input: the hash of an
    /// input is the XOR of its fields' parts.
    ///
    /// # Panics
    /// When the field ends past byte 36.
    pub fn field(&self, at: usize, bytes: &[u8]) -> u32 {
        assert!(at + bytes.len() <= KEY_LEN - 4, "an RSS input ends by byte {}", KEY_LEN - 4);
        let mut h = 0;
        for (i, &b) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    h ^= self.window((at + i) * 8 + bit);
                }
            }
        }
        h
    }

    /// The hash of IPv4 addresses and ports (TCP or UDP), as a NIC hashes a received packet
    /// from `src` to `dst`.
    pub fn ipv4(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
        let mut input = [0u8; offset::END];
        input[offset::SRC_ADDR..offset::DST_ADDR].copy_from_slice(&src);
        input[offset::DST_ADDR..offset::SRC_PORT].copy_from_slice(&dst);
        input[offset::SRC_PORT..offset::DST_PORT].copy_from_slice(&sport.to_be_bytes());
        input[offset::DST_PORT..offset::END].copy_from_slice(&dport.to_be_bytes());
        self.hash(&input)
    }

    /// The hash of IPv4 addresses alone (a NIC hashing by addresses only, or a fragment).
    pub fn ipv4_addrs(&self, src: [u8; 4], dst: [u8; 4]) -> u32 {
        let mut input = [0u8; offset::SRC_PORT];
        input[..4].copy_from_slice(&src);
        input[4..].copy_from_slice(&dst);
        self.hash(&input)
    }

    /// The hash of IPv6 addresses and ports (TCP or UDP; 36 bytes, the longest input a
    /// 40-byte key hashes), as a NIC hashes a received packet from `src` to `dst`.
    pub fn ipv6(&self, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> u32 {
        self.ipv6_addrs(src, dst) ^ self.field(32, &sport.to_be_bytes()) ^ self.field(34, &dport.to_be_bytes())
    }

    /// The hash of IPv6 addresses alone.
    pub fn ipv6_addrs(&self, src: [u8; 16], dst: [u8; 16]) -> u32 {
        self.field(0, &src) ^ self.field(16, &dst)
    }
}

/// The part each value of one input byte makes of the hash at a fixed offset: a field's part
/// is the XOR of its bytes' entries.
#[derive(Clone, PartialEq, Eq)]
pub struct ByteTable([u32; 256]);

impl std::fmt::Debug for ByteTable {
    /// Its first entries (all 256 say nothing to a reader).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ByteTable([{:#x}, {:#x}, ..])", self.0[1], self.0[2])
    }
}

impl ByteTable {
    /// The table of byte offset `at` under `t`.
    ///
    /// # Panics
    /// When `at` is past byte 35.
    pub fn new(t: &Toeplitz, at: usize) -> ByteTable {
        let mut table = [0u32; 256];
        for bit in 0..8 {
            let w = t.window(at * 8 + bit);
            let mask = 0x80 >> bit;
            for (v, e) in table.iter_mut().enumerate() {
                if v & mask != 0 {
                    *e ^= w;
                }
            }
        }
        ByteTable(table)
    }

    /// The part of byte value `v`.
    #[inline]
    pub fn get(&self, v: u8) -> u32 {
        self.0[usize::from(v)]
    }
}

/// The parts of a 16-bit port at a fixed offset (two byte tables): for choosing, among ports,
/// one whose packets hash to a given queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortTable {
    high: ByteTable,
    low: ByteTable,
}

impl PortTable {
    /// The table of a port at byte offset `at` (such as [`offset::DST_PORT`]) under `t`.
    pub fn new(t: &Toeplitz, at: usize) -> PortTable {
        PortTable { high: ByteTable::new(t, at), low: ByteTable::new(t, at + 1) }
    }

    /// The part of port `port`.
    #[inline]
    pub fn get(&self, port: u16) -> u32 {
        let [h, l] = port.to_be_bytes();
        self.high.get(h) ^ self.low.get(l)
    }
}

/// The Toeplitz hash of a TCP or UDP tuple whose addresses are `A` bytes long by table: one
/// lookup an input byte (1 KiB a byte: 12 KiB for IPv4, 36 KiB for IPv6), what the packet
/// path computes per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleHasher<const A: usize> {
    /// One table per input byte: `2 * A + 4` of them.
    bytes: Box<[ByteTable]>,
}

/// [`TupleHasher`] of IPv4 addresses and ports.
pub type Ipv4Hasher = TupleHasher<4>;
/// [`TupleHasher`] of IPv6 addresses and ports.
pub type Ipv6Hasher = TupleHasher<16>;

impl<const A: usize> TupleHasher<A> {
    /// Input bytes: two addresses and two ports.
    const LEN: usize = 2 * A + 4;
    /// Offset of the destination port in the input.
    const DST_PORT: usize = 2 * A + 2;

    /// The tables of `t`.
    ///
    /// # Panics
    /// When the input is longer than 36 bytes (`A` over 16).
    pub fn new(t: &Toeplitz) -> TupleHasher<A> {
        TupleHasher { bytes: (0..Self::LEN).map(|at| ByteTable::new(t, at)).collect() }
    }

    /// The hash of addresses and ports, equal to [`Toeplitz::ipv4`] (or [`Toeplitz::ipv6`]).
    #[inline]
    pub fn hash(&self, src: [u8; A], dst: [u8; A], sport: u16, dport: u16) -> u32 {
        let b = &self.bytes[..Self::LEN];
        let mut h = 0;
        for i in 0..A {
            h ^= b[i].get(src[i]) ^ b[A + i].get(dst[i]);
        }
        let [sp0, sp1] = sport.to_be_bytes();
        h ^ (b[2 * A].get(sp0) ^ b[2 * A + 1].get(sp1)) ^ self.dst_port(dport)
    }

    /// The part a destination port makes of the hash: `hash(s, d, sp, dp) == hash(s, d, sp, 0)
    /// ^ dst_port(dp)`.
    #[inline]
    pub fn dst_port(&self, port: u16) -> u32 {
        let [h, l] = port.to_be_bytes();
        let b = &self.bytes[..Self::LEN];
        b[Self::DST_PORT].get(h) ^ b[Self::DST_PORT + 1].get(l)
    }

    /// The destination port's table, for a [`PortPicker`].
    pub fn dst_port_table(&self) -> PortTable {
        PortTable { high: self.bytes[Self::DST_PORT].clone(), low: self.bytes[Self::DST_PORT + 1].clone() }
    }
}

/// Entries of an emulated redirection table (a port without RSS in hardware whose peer picks
/// the queue, see the configuration's `reta`), and of DPDK's generator default: 128, as
/// ixgbe's and many other drivers' tables.
pub const DEFAULT_RETA_SIZE: usize = 128;

/// Why a key's text is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not hexadecimal digits (optionally in pairs separated by colons).
    #[error("an RSS key is {KEY_LEN} bytes in hexadecimal (\"6d:5a:56:...\" or \"6d5a56...\")")]
    NotHex,
    /// Another number of bytes.
    #[error("an RSS key is {KEY_LEN} bytes, not {0}")]
    Length(usize),
}

/// A key written as hexadecimal bytes, with or without colons between them (`6d:5a:56:da:...`,
/// as `ethtool -x` prints it, or `6d5a56da...`).
///
/// # Errors
/// [`KeyError`].
pub fn parse_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let digits: String = text.trim().split(':').collect();
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex);
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| KeyError::NotHex)?;
    bytes.as_slice().try_into().map_err(|_| KeyError::Length(bytes.len()))
}

/// `key` as [`parse_key`] reads it, with colons.
pub fn key_text(key: &[u8; KEY_LEN]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A redirection table: the queue of a hash is the entry its low bits index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reta {
    entries: Vec<u16>,
}

/// Why a redirection table cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetaError {
    /// Its size is not a power of two from 1 to 65536.
    #[error("a redirection table has a power-of-two size from 1 to 65536 entries, not {0}")]
    BadSize(usize),
}

impl Reta {
    /// The table `entries` (queue numbers).
    ///
    /// # Errors
    /// [`RetaError::BadSize`].
    pub fn new(entries: Vec<u16>) -> Result<Reta, RetaError> {
        if !entries.len().is_power_of_two() || entries.len() > 1 << 16 {
            return Err(RetaError::BadSize(entries.len()));
        }
        Ok(Reta { entries })
    }

    /// The table a driver fills by default: `size` entries spreading `queues` queues round
    /// robin (entry `i` is queue `i % queues`).
    ///
    /// # Errors
    /// [`RetaError::BadSize`].
    pub fn round_robin(size: usize, queues: u16) -> Result<Reta, RetaError> {
        let queues = usize::from(queues.max(1));
        Reta::new((0..size).map(|i| (i % queues) as u16).collect())
    }

    /// Its entries.
    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// The entry `hash` selects.
    #[inline]
    pub fn index(&self, hash: u32) -> usize {
        hash as usize & (self.entries.len() - 1)
    }

    /// The queue of a packet whose hash is `hash`.
    #[inline]
    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[self.index(hash)]
    }
}

/// The ports of one local address, grouped by the RETA index bits their part of a reply's
/// hash sets, for choosing in O(1) a port whose replies a NIC delivers to a given queue.
///
/// A reply to a Full-NAT connection comes from (real server, real port) to (local address,
/// local port); its hash is `fixed ^ part(port)`, where `fixed` is the part of the other three
/// fields. Its queue is `reta[(fixed ^ part(port)) & mask]`. So for a queue `q`, every RETA
/// index `i` with `reta[i] == q` names the bucket `(i ^ fixed) & mask` of ports that land on
/// `q`; the picker walks those indices and buckets round robin.
#[derive(Debug, Clone)]
pub struct PortPicker {
    mask: u32,
    /// Ports by `part(port) & mask`.
    buckets: Vec<Vec<u16>>,
    /// The next port to offer in each bucket.
    cursors: Vec<u32>,
    /// The RETA indices of each queue, and the next one to try.
    indices: Vec<(Vec<u32>, usize)>,
}

impl PortPicker {
    /// The picker of `ports` (port parts from `table`) for replies hashed through `reta`.
    pub fn new(table: &PortTable, reta: &Reta, ports: impl IntoIterator<Item = u16>) -> PortPicker {
        let size = reta.entries().len();
        let mask = (size - 1) as u32;
        let mut buckets = vec![Vec::new(); size];
        for p in ports {
            buckets[(table.get(p) & mask) as usize].push(p);
        }
        let queues = reta.entries().iter().map(|&q| usize::from(q) + 1).max().unwrap_or(0);
        let mut indices = vec![(Vec::new(), 0); queues];
        for (i, &q) in reta.entries().iter().enumerate() {
            indices[usize::from(q)].0.push(i as u32);
        }
        PortPicker { mask, cursors: vec![0; size], buckets, indices }
    }

    /// A port whose reply, with `fixed` the part of its other fields, lands on `queue`, and for
    /// which `free` says yes; at most `tries` ports are offered. `None`: no such port was
    /// found (the queue is in no RETA entry, its buckets are empty, or every port offered was
    /// taken).
    pub fn pick(&mut self, queue: u16, fixed: u32, tries: usize, mut free: impl FnMut(u16) -> bool) -> Option<u16> {
        let (indices, next) = self.indices.get_mut(usize::from(queue))?;
        if indices.is_empty() {
            return None;
        }
        for _ in 0..tries {
            let i = indices[*next % indices.len()];
            *next = next.wrapping_add(1);
            let b = ((i ^ fixed) & self.mask) as usize;
            let bucket = &self.buckets[b];
            if bucket.is_empty() {
                continue;
            }
            let c = &mut self.cursors[b];
            let port = bucket[*c as usize % bucket.len()];
            *c = c.wrapping_add(1);
            if free(port) {
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
