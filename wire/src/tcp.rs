//! TCP headers (RFC 9293) and their options.
//!
//! ```text
//!  0               1               2               3
//! +-------------------------------+-------------------------------+
//! |          source port          |       destination port        |  0
//! +-------------------------------+-------------------------------+
//! |                        sequence number                        |  4
//! +---------------------------------------------------------------+
//! |                     acknowledgment number                     |  8
//! +-------+-------+---------------+-------------------------------+
//! |offset | rsvd  |C E U A P R S F|            window             | 12
//! +-------+-------+---------------+-------------------------------+
//! |           checksum            |        urgent pointer         | 16
//! +-------------------------------+-------------------------------+
//! |               options (offset > 5), then payload              | 20
//! ```
//!
//! A [`TcpPacket`] wraps exactly one segment: the IPv4 payload, from the TCP header to the
//! end of the data. Its checksum routines take the IPv4 addresses of the pseudo-header.
//!
//! [`TcpPacket::new_checked`] establishes `20 <= header_len <= buffer.len()`. Options are
//! parsed lazily by [`TcpPacket::options_iter`]; a malformed option yields
//! [`Error::BadTcpOption`] and ends the iteration, it never panics.
//!
//! # Panics
//!
//! After [`TcpPacket::new_checked`] (or [`TcpPacket::check_len`]) succeeds, no accessor,
//! setter, payload slice, option iterator or checksum routine panics. [`TcpRepr::emit`]
//! panics on a buffer shorter than [`TcpRepr::buffer_len`].

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign};

use crate::checksum::Family;
use crate::ipv4::IpProtocol;
use crate::{checksum, read_u16, read_u32, write_u16, write_u32, Error};

mod field {
    use crate::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Length of the longest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The eight TCP flag bits (byte 13 of the header), as a small bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is valid.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is valid.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    const NAMES: [(TcpFlags, &'static str); 8] = [
        (Self::FIN, "FIN"),
        (Self::SYN, "SYN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    /// No flag set.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// The flags in a raw header byte (every bit is a flag).
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw header byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag in `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags in `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags in `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }

    /// Sets or clears the flags in `other`.
    pub fn set(&mut self, other: TcpFlags, value: bool) {
        if value {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl BitAndAssign for TcpFlags {
    fn bitand_assign(&mut self, rhs: TcpFlags) {
        self.0 &= rhs.0;
    }
}

/// `SYN|ACK`, or `-` for no flag.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// Option kinds this module names.
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// The blocks of a SACK option: 1 to 4 `(left edge, right edge)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SackBlocks<'a>(&'a [u8]);

impl<'a> SackBlocks<'a> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether there is no block (never, for a parsed option).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `(left edge, right edge)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let (blocks, _) = self.0.as_chunks::<8>();
        blocks
            .iter()
            .map(|&[a, b, c, d, e, f, g, h]| (u32::from_be_bytes([a, b, c, d]), u32::from_be_bytes([e, f, g, h])))
    }

    /// The option's raw data.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); the rest of the options area is padding.
    EndOfList,
    /// No operation (kind 1), used for alignment.
    NoOperation,
    /// Maximum segment size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// Selective acknowledgment blocks (kind 5, length 10, 18, 26 or 34).
    Sack(SackBlocks<'a>),
    /// Timestamps (kind 8, length 10).
    Timestamp {
        /// The sender's timestamp value.
        tsval: u32,
        /// The echoed timestamp.
        tsecr: u32,
    },
    /// Any other kind; `data` is the option after its kind and length bytes, so the length
    /// byte is `data.len() + 2`.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Bytes this option takes in the header.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(blocks) => 2 + blocks.0.len(),
            TcpOption::Timestamp { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buffer` and returns the bytes written.
    ///
    /// # Panics
    ///
    /// When `buffer` is shorter than [`buffer_len`](Self::buffer_len), or an unknown option
    /// has more than 253 bytes of data.
    pub fn emit(&self, buffer: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let (kind, data): (u8, &[u8]) = match self {
            TcpOption::EndOfList => {
                buffer[0] = kind::EOL;
                return 1;
            }
            TcpOption::NoOperation => {
                buffer[0] = kind::NOP;
                return 1;
            }
            TcpOption::MaxSegmentSize(mss) => {
                write_u16(buffer, 2..4, *mss);
                (kind::MSS, &[])
            }
            TcpOption::WindowScale(shift) => {
                buffer[2] = *shift;
                (kind::WSCALE, &[])
            }
            TcpOption::SackPermitted => (kind::SACK_PERMITTED, &[]),
            TcpOption::Sack(blocks) => (kind::SACK, blocks.0),
            TcpOption::Timestamp { tsval, tsecr } => {
                write_u32(buffer, 2..6, *tsval);
                write_u32(buffer, 6..10, *tsecr);
                (kind::TIMESTAMP, &[])
            }
            TcpOption::Unknown { kind, data } => (*kind, *data),
        };
        let Ok(len_byte) = u8::try_from(len) else {
            panic!("a TCP option of {len} bytes does not fit its length byte");
        };
        buffer[0] = kind;
        buffer[1] = len_byte;
        buffer[2..2 + data.len()].copy_from_slice(data);
        len
    }
}

/// The TCP option that carries a Full-NAT client's address and port (TOA, "TCP option
/// address"), which the balancer puts in a segment for the real server, as DPVS and the `toa`
/// kernel module do: 8 bytes for an IPv4 client, 20 for an IPv6 one (DPVS's IPv6 TOA, which
/// its `toa` module reads for NAT64 as well).
///
/// ```text
///  0      1      2      3      4 ...
/// +------+------+------+------+---------------------------------------+
/// | 254  | 8/20 |  port (BE)  | IPv4 (4 bytes) or IPv6 (16) address   |
/// +------+------+------+------+---------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toa {
    /// The client's address.
    pub addr: IpAddr,
    /// The client's port.
    pub port: u16,
}

impl Toa {
    /// Option kind (an experimental number, as DPVS uses it).
    pub const KIND: u8 = 254;
    /// Option length for an IPv4 client: kind, length, port, address.
    pub const LEN: usize = 8;
    /// Option length for an IPv6 client.
    pub const LEN_V6: usize = 20;

    /// The option's length: [`Toa::LEN`] or [`Toa::LEN_V6`].
    pub const fn option_len(&self) -> usize {
        match self.addr {
            IpAddr::V4(_) => Toa::LEN,
            IpAddr::V6(_) => Toa::LEN_V6,
        }
    }

    /// Writes the option into the first [`Toa::option_len`] bytes of `buffer`.
    ///
    /// # Panics
    /// When `buffer` is shorter than [`Toa::option_len`].
    pub fn emit(&self, buffer: &mut [u8]) {
        buffer[0] = Toa::KIND;
        buffer[1] = self.option_len() as u8;
        write_u16(buffer, 2..4, self.port);
        match self.addr {
            IpAddr::V4(a) => buffer[4..8].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => buffer[4..20].copy_from_slice(&a.octets()),
        }
    }

    /// The TOA option of an options area, if it has a well-formed one (of either length).
    pub fn find(options: &[u8]) -> Option<Toa> {
        let (_, at, len) =
            option_spans(options).find(|&(k, _, len)| k == Toa::KIND && (len == Toa::LEN || len == Toa::LEN_V6))?;
        let o = &options[at..at + len];
        let addr = if len == Toa::LEN {
            IpAddr::V4(Ipv4Addr::new(o[4], o[5], o[6], o[7]))
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&o[4..20]);
            IpAddr::V6(a.into())
        };
        Some(Toa { addr, port: read_u16(o, 2..4) })
    }
}

/// Where each option of an options area is, for rewriting in place: `(kind, offset, length)`
/// of every option other than NOP, up to the end of the list; a malformed option ends it.
pub fn option_spans(options: &[u8]) -> impl Iterator<Item = (u8, usize, usize)> + '_ {
    let mut at = 0;
    core::iter::from_fn(move || loop {
        let kind = *options.get(at)?;
        match kind {
            kind::EOL => return None,
            kind::NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1)?);
                if len < 2 || at + len > options.len() {
                    return None;
                }
                let span = (kind, at, len);
                at += len;
                return Some(span);
            }
        }
    })
}

/// Iterator over the options area of a TCP header. Yields `Err(BadTcpOption)` once for a
/// malformed option and then ends; ends after [`TcpOption::EndOfList`].
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over an options area (the bytes between the fixed header and the payload).
    pub const fn new(options: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { rest: options }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>, Error>> {
        self.rest = &[];
        Some(Err(Error::BadTcpOption))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            kind::EOL => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            return self.fail();
        };
        let len = usize::from(len);
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let (option, rest) = self.rest.split_at(len);
        self.rest = rest;
        let data = &option[2..];
        let option = match (kind, data) {
            (kind::MSS, &[a, b]) => TcpOption::MaxSegmentSize(u16::from_be_bytes([a, b])),
            (kind::WSCALE, &[shift]) => TcpOption::WindowScale(shift),
            (kind::SACK_PERMITTED, &[]) => TcpOption::SackPermitted,
            (kind::SACK, blocks) if blocks.len().is_multiple_of(8) && (8..=32).contains(&blocks.len()) => {
                TcpOption::Sack(SackBlocks(blocks))
            }
            (kind::TIMESTAMP, &[a, b, c, d, e, f, g, h]) => TcpOption::Timestamp {
                tsval: u32::from_be_bytes([a, b, c, d]),
                tsecr: u32::from_be_bytes([e, f, g, h]),
            },
            (kind::MSS | kind::WSCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMP, _) => {
                return self.fail();
            }
            (kind, data) => TcpOption::Unknown { kind, data },
        };
        Some(Ok(option))
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks `20 <= header_len <= buffer.len()`, which every accessor needs.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] for fewer than 20 bytes, [`Error::BadTcpOffset`] for a data offset
    /// below 5 or past the end of the segment.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadTcpOffset);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset x 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window size (unscaled).
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options area, unparsed (empty when the data offset is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The options, parsed one by one.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// Whether the checksum verifies, with the pseudo-header of `src` and `dst`.
    pub fn verify_checksum<A: Family>(&self, src: A, dst: A) -> bool {
        segment_sum(self.buffer.as_ref(), src, dst) == 0xffff
    }
}

/// The sum of a segment and its pseudo-header. A buffer over 65535 bytes is no IPv4 payload;
/// its length is clamped so that nothing panics.
fn segment_sum<A: Family>(data: &[u8], src: A, dst: A) -> u16 {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    checksum::combine(&[A::pseudo_header(src, dst, IpProtocol::Tcp, len), checksum::sum(data)])
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The data after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, value);
    }

    /// Sets the header length in bytes, a multiple of 4 from 20 to 60 (other values are
    /// stored as `(value / 4) & 0xf`), and clears the reserved bits.
    pub fn set_header_len(&mut self, value: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = (((value / 4) & 0x0f) as u8) << 4;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, value: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = value.0;
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, value);
    }

    /// Sets the checksum.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// Computes the checksum with the pseudo-header of `src` and `dst` and stores it.
    pub fn fill_checksum<A: Family>(&mut self, src: A, dst: A) {
        self.set_checksum(0);
        let csum = checksum::finish(segment_sum(self.buffer.as_ref(), src, dst));
        self.set_checksum(csum);
    }

    /// Lowers the MSS option (kind 2, length 4) by `by`, to no less than `floor`, updating the
    /// checksum incrementally; returns the new MSS, or `None` (nothing changed) when the
    /// header has no MSS option. Only the bytes present in the buffer are looked at, so a
    /// header longer than the buffer (a view never checked) does not panic.
    pub fn lower_mss(&mut self, by: u16, floor: u16) -> Option<u16> {
        let data = self.buffer.as_ref();
        let end = self.header_len().min(data.len());
        let options = data.get(HEADER_LEN..end)?;
        let (_, at, _) = option_spans(options).find(|&(k, _, len)| k == kind::MSS && len == 4)?;
        let value = HEADER_LEN + at + 2..HEADER_LEN + at + 4;
        let old = read_u16(data, value.clone());
        let new = old.saturating_sub(by).max(floor);
        write_u16(self.buffer.as_mut(), value, new);
        let csum = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(csum);
        Some(new)
    }

    /// The options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The data after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The timestamps option's two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpTimestamp {
    /// The sender's timestamp value.
    pub tsval: u32,
    /// The echoed timestamp.
    pub tsecr: u32,
}

/// A TCP segment as plain values. Parsing keeps MSS, window scale, SACK-permitted and
/// timestamps, and drops SACK blocks and unknown options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window size (unscaled).
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Maximum segment size option.
    pub max_seg_size: Option<u16>,
    /// Window scale option.
    pub window_scale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// Timestamps option.
    pub timestamp: Option<TcpTimestamp>,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a segment, checking its length, its options and its checksum.
    ///
    /// # Errors
    ///
    /// As [`TcpPacket::check_len`], then [`Error::BadTcpOption`], then
    /// [`Error::BadChecksum`].
    pub fn parse<T: AsRef<[u8]> + ?Sized, A: Family>(
        packet: &TcpPacket<&'a T>,
        src: A,
        dst: A,
    ) -> Result<TcpRepr<'a>, Error> {
        packet.check_len()?;
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            timestamp: None,
            payload: packet.payload(),
        };
        for option in packet.options_iter() {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some(TcpTimestamp { tsval, tsecr }),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Sack(_) | TcpOption::Unknown { .. } => {}
            }
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(repr)
    }

    /// Length of the emitted header: 20 plus the options, padded to a multiple of 4.
    pub const fn header_len(&self) -> usize {
        let mut options: usize = 0;
        if self.max_seg_size.is_some() {
            options += 4;
        }
        if self.sack_permitted {
            options += 2;
        }
        if self.timestamp.is_some() {
            options += 10;
        }
        if self.window_scale.is_some() {
            options += 4; // NOP + window scale
        }
        HEADER_LEN + options.div_ceil(4) * 4
    }

    /// Length of the emitted segment: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment: header, options in Linux's order (MSS, SACK-permitted,
    /// timestamps, NOP, window scale) padded with end-of-list bytes, payload, and the
    /// checksum for `src` and `dst`. The packet's buffer must be exactly the segment.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>, A: Family>(&self, packet: &mut TcpPacket<T>, src: A, dst: A) {
        let header_len = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(header_len);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        let options = packet.options_mut();
        let mut at = 0;
        if let Some(mss) = self.max_seg_size {
            at += TcpOption::MaxSegmentSize(mss).emit(&mut options[at..]);
        }
        if self.sack_permitted {
            at += TcpOption::SackPermitted.emit(&mut options[at..]);
        }
        if let Some(TcpTimestamp { tsval, tsecr }) = self.timestamp {
            at += TcpOption::Timestamp { tsval, tsecr }.emit(&mut options[at..]);
        }
        if let Some(shift) = self.window_scale {
            at += TcpOption::NoOperation.emit(&mut options[at..]);
            at += TcpOption::WindowScale(shift).emit(&mut options[at..]);
        }
        options[at..].fill(kind::EOL);
        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests;
