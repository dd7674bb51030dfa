//! Every structure shared between the primary, the workers and `dpvsctl`, declared once.
//!
//! The instance's shared memory is one file (`<shm_dir>/<instance>.shm`) holding one
//! [`Layout`]: plain `#[repr(C)]` data with no pointers, whose size and field offsets are
//! pinned by the `const` asserts at the bottom of this file. Change any of them and
//! [`LAYOUT_VERSION`] must change too; the asserts make that a conscious act.
//!
//! ```text
//!  offset 0      Header          magic, layout version (stored last), sizes, instance, primary
//!                PortSlot  x 32  port names, driver, MAC, queue counts, L2 peer
//!                WorkerSlot x 64 per worker: lcore, queues, pool, state, pid, heartbeat, restarts
//!                LcoreCounters x 64  per worker slot, four cache lines each, single writer
//!                QueueCounters x 64  packets per rx queue and per port, by worker slot
//!                LearnedNeighbour 1024 x 64  neighbours learned from ARP, a table per worker slot
//!                ConfigArea      the startup file's text, the two configuration snapshot
//!                                buffers' and the delta ring's headers (see [`config`]), 128 KiB
//!                Mailbox         the control mailbox (see [`mailbox`]), 256 KiB
//!  size_of::<Layout>()
//!                the tables sized by the configuration's `[limits]` ([`TableSizes`], in the
//!                header), each reached through [`Shm`]:
//!                ServiceCounters service_slots x workers  a table per worker slot
//!                RealCounters    real_slots x workers     a table per worker slot
//!                AtomicU64       config_words x 2         the snapshot buffers' payloads
//!                AtomicU64       delta_words              the delta ring's arena
//! ```
//!
//! Who writes what:
//! - fields that are not atomics are written by the primary before it publishes the layout
//!   version and never change afterwards;
//! - atomics name their writer in their doc comment; a counter has exactly one writer, which
//!   updates it with a relaxed load + store (no read-modify-write on the packet path).
//!
//! `unsafe` lives only in [`map`], which maps the file.
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
pub mod conn;
pub mod health;
pub mod mailbox;
pub mod map;
mod time;

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

pub use map::{
    futex_wait, futex_wake, heap_mailbox, prefetch, prefetch_at, ring, ConnParts, ConnShardFile, Shm, ShmError,
    TableSizes, Tables,
};
pub use time::{monotonic_ns, pin_to_cpu, process_start_ticks};

/// `b"DPVS-SHM"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"DPVS-SHM");
/// Version of [`Layout`]. Bump it whenever a shared struct changes.
pub const LAYOUT_VERSION: u32 = 19;

/// Port slots.
pub const MAX_PORTS: usize = 32;
/// Worker slots (one forwarding lcore each).
pub const MAX_WORKERS: usize = 64;
/// Rx queues one worker polls.
pub const MAX_RX_PER_WORKER: usize = 16;
/// Bytes reserved for the control mailbox.
pub const MAILBOX_BYTES: usize = 256 * 1024;
/// Fixed-size text fields.
pub const NAME_LEN: usize = 32;

/// A NUL-padded fixed-size string.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name<const N: usize>(pub [u8; N]);

impl<const N: usize> Name<N> {
    /// Copies `s`, cut at `N - 1` bytes (on a char boundary) so a NUL always ends it.
    pub fn new(s: &str) -> Self {
        let mut b = [0u8; N];
        let mut end = s.len().min(N - 1);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        b[..end].copy_from_slice(&s.as_bytes()[..end]);
        Name(b)
    }

    /// The text up to the first NUL (invalid UTF-8 is replaced).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(N);
        String::from_utf8_lossy(&self.0[..end])
    }
}

impl<const N: usize> std::fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Lifecycle of the instance, in [`Header::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum InstanceState {
    /// Ports and workers are being set up.
    Starting = 1,
    /// Forwarding.
    Running = 2,
    /// Shutting down.
    Stopping = 3,
}

impl InstanceState {
    /// Decodes a stored value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Starting),
            2 => Some(Self::Running),
            3 => Some(Self::Stopping),
            _ => None,
        }
    }
}

/// The start of the region.
#[repr(C, align(64))]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`LAYOUT_VERSION`], stored last (release) by the creator; 0 while being created.
    pub layout_version: AtomicU32,
    /// `size_of::<Header>()`.
    pub header_size: u32,
    /// The file's length: `size_of::<Layout>()` and the tables after it.
    pub total_size: u64,
    /// Instance name.
    pub instance: Name<NAME_LEN>,
    /// EAL file prefix.
    pub file_prefix: Name<NAME_LEN>,
    /// Ports in use (the first `n_ports` port slots).
    pub n_ports: u32,
    /// Workers in use (the first `n_workers` worker slots).
    pub n_workers: u32,
    /// Primary's pid.
    pub primary_pid: u32,
    /// [`InstanceState`]; written by the primary.
    pub state: AtomicU32,
    /// Primary's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), to tell
    /// a live primary from a reused pid.
    pub primary_start_ticks: u64,
    /// CLOCK_MONOTONIC at primary start, ns.
    pub started_mono_ns: u64,
    /// Wall clock at primary start, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// CLOCK_MONOTONIC of the primary's last supervisor round, ns; written by the primary.
    pub primary_heartbeat_ns: AtomicU64,
    /// Primary EAL init time, µs.
    pub eal_init_us: u64,
    /// Byte offset of [`Layout::mailbox`] (for tools that only read the header).
    pub mailbox_offset: u64,
    /// [`MAILBOX_BYTES`].
    pub mailbox_size: u64,
    /// The instance's housekeeping CPU, where the primary runs, successors initialise and
    /// departing workers exit (-1: none pinned).
    pub housekeeping_cpu: i32,
    /// Worker slots the tables after the layout have a table for ([`TableSizes::workers`]).
    pub table_workers: u32,
    /// Service counter slots per worker ([`TableSizes::service_slots`]).
    pub service_slots: u32,
    /// Connection table entries per forwarding lcore (shard files `<shm>.conn<slot>`).
    pub conn_capacity: u32,
    /// Real-server counter slots per worker ([`TableSizes::real_slots`]).
    pub real_slots: u32,
    /// Words of the delta ring's arena ([`TableSizes::delta_words`]).
    pub delta_words: u32,
    /// Words of each configuration snapshot buffer ([`TableSizes::config_words`]).
    pub config_words: u64,
}

/// A port, as the primary configured it.
#[repr(C, align(64))]
pub struct PortSlot {
    /// Operator's name (`dpdk0`).
    pub name: Name<16>,
    /// DPDK device name (`net_memif0`).
    pub device: Name<NAME_LEN>,
    /// Driver (`net_memif`).
    pub driver: Name<NAME_LEN>,
    /// MAC address (6 bytes, then 2 of padding).
    pub mac: [u8; 8],
    /// DPDK port id.
    pub port_id: u16,
    /// Rx queues.
    pub rx_queues: u16,
    /// Tx queues.
    pub tx_queues: u16,
    /// Port slot that frames received here are sent out of, at layer 2. Equal to this slot's
    /// own index for a one-arm port: frames go back out with MAC addresses swapped. For an
    /// exception path's TAP port: the data port it serves.
    pub peer: u16,
    /// Port slot of this data port's exception path (a TAP device for the host's kernel);
    /// [`NO_PORT`]: none.
    pub exception: u16,
    /// Whether this is an exception path's TAP port (1) or a data port (0).
    pub is_exception: u16,
    /// Largest IPv4 packet it sends.
    pub mtu: u16,
    pub _pad: u16,
    /// Room for per-port fields of later layout versions (zero).
    pub reserved: [u64; 11],
}

/// Redirection table entries a [`PortRss`] holds: drivers have 64 to 512.
pub const RETA_MAX: usize = 512;

/// How a port's packets are spread over its rx queues, in [`PortRss::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum RssKind {
    /// Unknown: the driver has RSS but its key or table could not be set or read back.
    /// Workers own this port's packets by a hash of their tuple and hand them over.
    Unknown = 0,
    /// One rx queue: every packet arrives on queue 0.
    Single = 1,
    /// The device hashes (Toeplitz, IPv4 addresses and TCP/UDP ports) with the key and
    /// redirection table here, read back from the driver.
    Hardware = 2,
    /// The device has no RSS (memif, ring, null, tap): the peer applies the key and table
    /// here when it picks the queue it sends on (the configuration's `rss_key` and `reta`).
    Emulated = 3,
}

impl RssKind {
    /// Decodes a stored value.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Self::Unknown,
            1 => Self::Single,
            2 => Self::Hardware,
            3 => Self::Emulated,
            _ => return None,
        })
    }

    /// Lower-case name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Single => "single-queue",
            Self::Hardware => "hardware",
            Self::Emulated => "emulated",
        }
    }
}

/// One port's receive-side scaling: which rx queue a packet arrives on, as the workers
/// compute it to own a connection on the lcore that receives it.
#[repr(C, align(64))]
pub struct PortRss {
    /// [`RssKind`].
    pub kind: u16,
    /// Entries of `reta` in use (a power of two up to [`RETA_MAX`]).
    pub reta_size: u16,
    pub _pad: u32,
    /// The Toeplitz key (the first 40 bytes of the driver's, which are all an IPv4 hash reads).
    pub key: [u8; 40],
    /// Room for later layout versions (zero).
    pub reserved: [u8; 16],
    /// The redirection table: queue of each entry (the hash's low bits index it).
    pub reta: [u16; RETA_MAX],
}

impl PortRss {
    /// The kind, `Unknown` for a value this version does not know.
    pub fn kind(&self) -> RssKind {
        RssKind::from_u16(self.kind).unwrap_or(RssKind::Unknown)
    }

    /// The redirection table in use.
    pub fn reta(&self) -> &[u16] {
        &self.reta[..usize::from(self.reta_size).min(RETA_MAX)]
    }
}

/// Handover gaps a [`HandoverGaps`] keeps.
pub const GAPS: usize = 126;

/// The last [`GAPS`] gaps in polling of one worker slot, each from the last poll of a process
/// that handed the slot over (or of one that died, as the primary saw it) to its successor's
/// first poll: a ring, entry `i % GAPS` the `i`-th gap.
#[repr(C, align(64))]
pub struct HandoverGaps {
    /// Gaps recorded, ever (stored after the entry, release).
    pub count: AtomicU64,
    /// Gaps in ns (saturating at `u32::MAX`, about 4.3 s).
    pub gaps_ns: [AtomicU32; GAPS],
}

impl HandoverGaps {
    /// Records a gap of `ns` (the slot's polling process alone calls this).
    pub fn record(&self, ns: u64) {
        let n = self.count.load(Ordering::Relaxed);
        self.gaps_ns[(n % GAPS as u64) as usize].store(u32::try_from(ns).unwrap_or(u32::MAX), Ordering::Relaxed);
        self.count.store(n + 1, Ordering::Release);
    }

    /// The gaps kept, oldest first, and how many were recorded in all.
    pub fn recent(&self) -> (Vec<u32>, u64) {
        let n = self.count.load(Ordering::Acquire);
        let kept = n.min(GAPS as u64);
        let gaps = (n - kept..n).map(|i| self.gaps_ns[(i % GAPS as u64) as usize].load(Ordering::Relaxed)).collect();
        (gaps, n)
    }
}

/// No port slot.
pub const NO_PORT: u16 = u16::MAX;

/// One rx queue a worker polls.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueRef {
    /// Index of the port slot (= DPDK port id order of the config).
    pub port: u16,
    /// Rx queue id.
    pub queue: u16,
}

/// [`WorkerSlot::stop`]: nothing asked.
pub const STOP_NONE: u32 = 0;
/// [`WorkerSlot::stop`]: exit (the instance stops).
pub const STOP_EXIT: u32 = 1;
/// [`WorkerSlot::stop`]: hand the queues over to `handover_to`, then exit.
pub const STOP_HANDOVER: u32 = 2;

/// Lifecycle of a worker, in [`WorkerSlot::state`] (value 3 is reserved).
///
/// ```text
///  (primary)                 (worker)                        (worker, on its stop flag)
///  Spawning --claims the slot (CAS)--> Running --finishes its burst--> Exited
///     ^                                   |
///     |                          dies (primary reaps it)
///     +--- restart (primary) <--- Dead (primary: pool recovered)
/// ```
/// At shutdown the primary also writes `Exited` for workers it had to kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum WorkerState {
    /// Slot not in use.
    Empty = 0,
    /// Process started by the primary, not yet polling.
    Spawning = 1,
    /// Polling its queues.
    Running = 2,
    /// Stopped (on request, or killed at shutdown).
    Exited = 4,
    /// Died; waiting for its restart.
    Dead = 5,
}

impl WorkerState {
    /// Decodes a stored value.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Empty,
            1 => Self::Spawning,
            2 => Self::Running,
            4 => Self::Exited,
            5 => Self::Dead,
            _ => return None,
        })
    }

    /// Lower-case name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Spawning => "spawning",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

/// A worker process's slot: its assignment (fixed) and its life (atomics).
#[repr(C, align(64))]
pub struct WorkerSlot {
    /// Worker group name.
    pub group: Name<NAME_LEN>,
    /// Mempool its rx queues fill from (one pool per forwarding lcore).
    pub pool: Name<NAME_LEN>,
    /// EAL lcore id.
    pub lcore: u32,
    /// CPU the lcore is pinned to, or -1.
    pub cpu: i32,
    /// Tx queue this worker owns on every port.
    pub tx_queue: u16,
    /// Entries used in `rx`.
    pub n_rx: u16,
    /// Sleep after an empty poll round, µs.
    pub idle_sleep_us: u32,
    /// Rx queues it polls.
    pub rx: [QueueRef; MAX_RX_PER_WORKER],
    /// [`WorkerState`]; the primary writes Spawning/Dead (and Exited at shutdown), the worker
    /// Running/Exited.
    pub state: AtomicU32,
    /// Pid of the current process; written by the primary at spawn.
    pub pid: AtomicU32,
    /// What the primary asks of the polling process: [`STOP_NONE`], [`STOP_EXIT`], or
    /// [`STOP_HANDOVER`] (to `handover_to`). The worker takes a handover request with a CAS
    /// `STOP_HANDOVER -> STOP_NONE`, the primary cancels one with the same CAS: exactly one of
    /// them wins, so a cancelled handover never reads as a request to exit.
    pub stop: AtomicU32,
    /// Restarts after a death; written by the primary.
    pub restarts: AtomicU32,
    /// Last exit of a process in this slot: exit code (>= 0), or minus the signal number;
    /// written by the primary.
    pub last_exit: AtomicI32,
    /// Processes started in this slot; written by the primary.
    pub spawns: AtomicU32,
    /// CLOCK_MONOTONIC of the worker's last loop round, ns; written by the worker.
    pub heartbeat_ns: AtomicU64,
    /// CLOCK_MONOTONIC when the current process was started, ns; written by the primary.
    pub spawned_ns: AtomicU64,
    /// CLOCK_MONOTONIC of the worker's first poll, ns; written by the worker.
    pub polling_ns: AtomicU64,
    /// CLOCK_MONOTONIC when the primary saw the last death, ns; written by the primary.
    pub died_ns: AtomicU64,
    /// From death seen to the replacement's first poll, µs, for the last restart after a
    /// death; for the last handover, the gap between the old worker's last poll and the new
    /// one's first. Written by the primary.
    pub last_restart_us: AtomicU64,
    /// Mbufs returned to the pool after deaths (cache flushes and stranded buffers), total;
    /// written by the primary.
    pub reclaimed_mbufs: AtomicU64,
    /// Size of `pool`.
    pub pool_size: u32,
    /// Available mbufs of `pool`, sampled every supervisor round; written by the primary.
    pub pool_avail: AtomicU32,
    /// Spawn number of the process allowed to poll the slot's queues. A process polls only
    /// while this is its own; a handover is one release store of the successor's number.
    pub owner: AtomicU32,
    /// Spawn number the polling process hands its queues to on [`STOP_HANDOVER`]; written by
    /// the primary before it sets `stop`.
    pub handover_to: AtomicU32,
    /// Pid of a successor attaching for a handover (0: none); written by the primary.
    pub incoming_pid: AtomicU32,
    /// 1 while a successor attaches, 2 once it is ready to poll; 0 otherwise.
    pub incoming_state: AtomicU32,
    /// EAL lcore id of the polling process (it changes with each handover); written by the
    /// worker when it starts polling.
    pub lcore_now: AtomicU32,
    _pad2: u32,
    /// CLOCK_MONOTONIC of the last poll of a worker that handed over, ns; written by it.
    pub last_poll_ns: AtomicU64,
    /// Configuration generation the polling process is reading right now (0: none): the
    /// primary does not reuse that generation's buffer meanwhile. Written by the polling
    /// process; cleared by the primary when it dies.
    pub cfg_reading: AtomicU64,
    /// The same, for a process attaching to take the slot over (a successor, a hot standby).
    pub cfg_reading_incoming: AtomicU64,
    /// Configuration generation the polling process forwards with; written by it after it
    /// has built its tables from that generation (its acknowledgement), cleared by the
    /// primary when it dies.
    pub cfg_applied: AtomicU64,
    /// Configuration generations the slot's processes applied while polling; written by the
    /// polling process.
    pub cfg_switches: AtomicU64,
    /// The last counter-zeroing request (`ConfigArea::zero_epoch`) the slot's processes
    /// carried out on its counter tables; written by the polling process.
    pub zero_applied: AtomicU64,
}

impl WorkerSlot {
    /// The rx queues in use.
    pub fn rx_queues(&self) -> &[QueueRef] {
        &self.rx[..usize::from(self.n_rx).min(MAX_RX_PER_WORKER)]
    }

    /// Current state (unknown values read as Empty).
    pub fn state(&self) -> WorkerState {
        WorkerState::from_u32(self.state.load(Ordering::Acquire)).unwrap_or(WorkerState::Empty)
    }
}

/// Name of the redirect ring from worker slot `src` to worker slot `dst` (single producer,
/// single consumer; created by the primary when Full-NAT runs on several lcores).
pub fn redirect_ring_name(src: usize, dst: usize) -> String {
    format!("redir_{src}_{dst}")
}

/// Counters of one forwarding lcore, indexed by worker slot. Single writer (the slot's
/// polling process); they survive the worker process and its handovers (which change the lcore
/// id), so they are monotonic across restarts. Eight cache lines, a multiple of two, so the
/// adjacent-line prefetcher never pulls in a neighbour's.
#[repr(C, align(128))]
#[derive(Default)]
pub struct LcoreCounters {
    /// Packets received.
    pub rx_packets: AtomicU64,
    /// Non-empty rx bursts.
    pub rx_bursts: AtomicU64,
    /// Packets sent.
    pub tx_packets: AtomicU64,
    /// Packets dropped because a tx queue was full.
    pub drop_tx_full: AtomicU64,
    /// Packets dropped because they were too short to be Ethernet frames.
    pub drop_runt: AtomicU64,
    /// Poll rounds over all the lcore's queues.
    pub polls: AtomicU64,
    /// Poll rounds that received nothing.
    pub idle_polls: AtomicU64,
    /// TSC cycles spent in rounds that received something.
    pub busy_cycles: AtomicU64,
    /// ARP requests for an owned address answered.
    pub arp_replies: AtomicU64,
    /// ICMP and ICMPv6 echo requests to an owned address answered.
    pub icmp_echo_replies: AtomicU64,
    /// Full-NAT packets client -> real server.
    pub fnat_in: AtomicU64,
    /// Full-NAT packets real server -> client.
    pub fnat_out: AtomicU64,
    /// TCP segments to a service with no connection that are not a SYN: dropped.
    pub drop_no_conn: AtomicU64,
    /// New connections refused: no real server available, no free local port, table full.
    pub drop_no_resource: AtomicU64,
    /// Packets handed to the lcore that owns their connection (redirect rings).
    pub redirected: AtomicU64,
    /// Packets dropped because the redirect ring to their owner was full.
    pub drop_redirect: AtomicU64,
    /// Malformed IPv4 and IPv6 frames dropped, by reason: see [`MALFORMED_REASONS`].
    pub drop_malformed: [AtomicU64; MALFORMED_REASONS.len()],
    /// ICMP time exceeded sent for translated packets whose TTL ran out.
    pub icmp_time_exceeded: AtomicU64,
    /// New connections refused by a service's deny or allow list.
    pub drop_acl: AtomicU64,
    /// New connections refused because every real server that could take them was at its
    /// upper connection threshold (also counted in `drop_no_resource`).
    pub drop_overloaded: AtomicU64,
    /// ICMP fragmentation needed sent for packets too big to encapsulate (IP-in-IP) with DF.
    pub icmp_frag_needed: AtomicU64,
    /// Packets too big to encapsulate without DF: dropped (the balancer does not fragment).
    pub drop_too_big: AtomicU64,
    /// Packets handed over because they belong to a NAT-mode service: a NAT real server's
    /// replies keep the client's tuple, which RSS cannot place, so both directions go to the
    /// lcore a hash of the client names (counted by the lcore that hands them over, whether
    /// or not the ring took them; so are the next three).
    pub handed_nat: AtomicU64,
    /// Packets handed over because they belong to a persistent service: a client's template
    /// and all its connections live on the lcore a hash of its address names.
    pub handed_persistent: AtomicU64,
    /// Packets handed over because RSS put them on another lcore's queue than the one that
    /// owns them: a peer that does not apply the port's emulated RSS, or a NIC that hashed
    /// other fields than the balancer computed.
    pub handed_rss_mismatch: AtomicU64,
    /// Packets handed over because their port's RSS is unknown (a driver whose key or
    /// redirection table could not be read): owned by a hash, as before RSS ownership.
    pub handed_no_rss: AtomicU64,
    /// IPv6 neighbour solicitations for an owned address answered with an advertisement.
    pub nd_replies: AtomicU64,
    /// Room for counters of later layout versions (zero).
    pub reserved: [AtomicU64; 64 - 35 - MALFORMED_REASONS.len()],
}

/// Packets one worker received on each of its rx queues and sent on each port (through its
/// own tx queue there): the per-port and per-queue counts of `dpvsctl link show` (device
/// counters of virtual ports are process-local in DPDK, so the workers count).
#[repr(C, align(64))]
#[derive(Default)]
pub struct QueueCounters {
    /// By index into the slot's `rx` queues.
    pub rx: [AtomicU64; MAX_RX_PER_WORKER],
    /// By port slot.
    pub tx: [AtomicU64; MAX_PORTS],
}

/// One service's counters in one worker's table. The worker claims a slot for each service
/// of a generation by its key (protocol, VIP, port), keeps it while the service exists (so the
/// counters continue across generations and worker restarts), and zeroes the slots of
/// services that are gone. Readers sum the slots with the same key over all workers.
#[repr(C, align(64))]
#[derive(Default)]
pub struct ServiceCounters {
    /// Key: IPv4 VIP (network order) << 32 | port << 8 | protocol; 0: free.
    pub key: AtomicU64,
    /// Connections created.
    pub conns: AtomicU64,
    /// Packets and bytes client -> real server.
    pub in_packets: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Packets and bytes real server -> client.
    pub out_packets: AtomicU64,
    pub out_bytes: AtomicU64,
    /// Reserved.
    pub _pad: [u64; 2],
}

/// A 64-bit mix of an IPv6 address and a word: the counter keys of IPv6 services and real
/// servers (collisions at 2^-56 per pair, where an IPv4 key is exact).
fn mix_v6(addr: std::net::Ipv6Addr, word: u64) -> u64 {
    let a = addr.to_bits();
    let mut h = (a >> 64) as u64 ^ (a as u64).rotate_left(29) ^ word.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    h ^ (h >> 33)
}

impl ServiceCounters {
    /// The key of service `proto vip:port`: for IPv4 the address, port and protocol (bits 24
    /// to 31 zero); for IPv6 a hash of them with bit 24 set.
    pub fn key_of(proto: u8, vip: impl Into<std::net::IpAddr>, port: u16) -> u64 {
        match vip.into() {
            std::net::IpAddr::V4(a) => u64::from(a.to_bits()) << 32 | u64::from(port) << 8 | u64::from(proto),
            std::net::IpAddr::V6(a) => mix_v6(a, u64::from(port) << 8 | u64::from(proto)) & !(0xff << 24) | 1 << 24,
        }
    }

    /// Connections, packets in, packets out, bytes in, bytes out.
    pub fn counts(&self) -> [&AtomicU64; 5] {
        [&self.conns, &self.in_packets, &self.out_packets, &self.in_bytes, &self.out_bytes]
    }

    /// Zeroes the counts (by their writer; the key stays).
    pub fn zero(&self) {
        self.counts().iter().for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

/// One real server's counters in one worker's table: claimed, kept and zeroed like
/// [`ServiceCounters`], keyed by its service and its address and port.
#[repr(C, align(64))]
#[derive(Default)]
pub struct RealCounters {
    /// Its service's key ([`ServiceCounters::key_of`]); 0: free. Stored last when claimed.
    pub service: AtomicU64,
    /// IPv4 address (network order) << 16 | port.
    pub real: AtomicU64,
    /// Connections created.
    pub conns: AtomicU64,
    /// Packets and bytes client -> real server.
    pub in_packets: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Packets and bytes real server -> client.
    pub out_packets: AtomicU64,
    pub out_bytes: AtomicU64,
    /// Connections now, a gauge ([`RealCounters::now`]; `ipvsadm -Z` leaves it): TCP
    /// ESTABLISHED ones in the high 32 bits, the others (UDP included) in the low ones.
    pub now_conns: AtomicU64,
}

impl RealCounters {
    /// The `real` key of `addr:port`: for IPv4 the address and port (bits 48 to 63 zero); for
    /// IPv6 a hash of them with bit 63 set.
    pub fn key_of(addr: impl Into<std::net::IpAddr>, port: u16) -> u64 {
        match addr.into() {
            std::net::IpAddr::V4(a) => u64::from(a.to_bits()) << 16 | u64::from(port),
            std::net::IpAddr::V6(a) => mix_v6(a, u64::from(port)) | 1 << 63,
        }
    }

    /// Connections, packets in, packets out, bytes in, bytes out.
    pub fn counts(&self) -> [&AtomicU64; 5] {
        [&self.conns, &self.in_packets, &self.out_packets, &self.in_bytes, &self.out_bytes]
    }

    /// Connections now: (active: TCP ESTABLISHED, inactive: the others), as LVS counts a
    /// real server's `activeconns` and `inactconns` (persistence templates are neither).
    pub fn now(&self) -> (u32, u32) {
        let v = self.now_conns.load(Ordering::Relaxed);
        ((v >> 32) as u32, v as u32)
    }

    /// Sets the connections now (by their single writer).
    pub fn set_now(&self, active: u32, inactive: u32) {
        self.now_conns.store(u64::from(active) << 32 | u64::from(inactive), Ordering::Relaxed);
    }

    /// Moves the connections now by `active` and `inactive` (by their single writer), never
    /// below zero.
    #[inline]
    pub fn move_now(&self, active: i32, inactive: i32) {
        let (a, i) = self.now();
        self.set_now(a.saturating_add_signed(active), i.saturating_add_signed(inactive));
    }

    /// Zeroes the counts (by their writer; the keys stay).
    pub fn zero(&self) {
        self.counts().iter().for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

/// Learned neighbour entries per worker.
pub const LEARNED_NEIGHBOURS: usize = 1024;

/// One neighbour a worker learned from ARP (a next hop the services need that has no static
/// entry).
///
/// A sequence lock: one writer (the slot's polling process, through [`LearnedNeighbour::write`]
/// and [`LearnedNeighbour::clear`]), any number of readers in any process
/// ([`LearnedNeighbour::read`]). `seq` is even while the entry is stable and odd while it is
/// being written; a reader keeps a copy only when `seq` was even and unchanged around it:
///
/// ```text
///  writer                                   reader
///  seq = s | 1        Relaxed     (odd)     s1 = seq          Acquire   odd: busy
///  fence(Release)                           key, mac, time    Relaxed
///  key, mac, time     Relaxed               fence(Acquire)
///  seq = (s | 1) + 1  Release     (even)    s2 = seq          Relaxed   s1 != s2: busy
/// ```
///
/// Why each ordering:
/// - the writer's release fence (after the odd store) pairs with the reader's acquire fence
///   (after its field loads): if a field load sees a store made after the fence, the odd
///   `seq` happens-before the reader's `s2`, which cannot then equal an even `s1`. Without it
///   the field stores could become visible before the odd `seq`, and a torn copy pass;
/// - the writer's release store of the even `seq` pairs with the reader's acquire load of
///   `s1`: a reader that sees it sees every field that write stored (or a later store, which
///   the check of `s2` then catches);
/// - the reader's acquire fence keeps its `s2` load after the field loads, so `s2` may itself
///   be relaxed; the fields are relaxed on both sides, the fences order them.
///
/// The fields are atomics (not plain data read racily, as in C seqlocks), so a torn read is a
/// discarded value, never undefined behaviour. The writer's data is `key`, the MAC and the time
/// together: a MAC that changes under the same key can no longer pair with another MAC's time.
/// A writer that dies mid-write leaves `seq` odd: readers skip the entry until its successor
/// writes it again (writing starts from `seq | 1`, so the successor just carries on).
#[repr(C, align(64))]
#[derive(Default)]
pub struct LearnedNeighbour {
    /// Port slot + 1; 0: free.
    pub key: AtomicU64,
    /// The MAC address in the low 48 bits (byte 0 of the address lowest).
    pub mac: AtomicU64,
    /// CLOCK_MONOTONIC when it was learned or last confirmed, ns.
    pub learned_ns: AtomicU64,
    /// Sequence word: even when stable, odd while the writer changes the fields.
    pub seq: AtomicU64,
    /// The address, 16 bytes (IPv4 as `::ffff:a.b.c.d`): its first 8 bytes, big-endian.
    pub addr_hi: AtomicU64,
    /// Its last 8 bytes, big-endian.
    pub addr_lo: AtomicU64,
    /// Room for later layout versions (zero).
    pub reserved: [AtomicU64; 2],
}

/// Attempts a reader makes on an entry being written before it gives up on it (the writer's
/// change is four stores, so one or two suffice unless the writer was preempted or died).
const LEARNED_READ_TRIES: usize = 64;

/// What one attempt at reading a [`LearnedNeighbour`] saw.
enum Snapshot {
    Free,
    Busy,
    Entry(Learned),
}

impl LearnedNeighbour {
    /// The key of port slot `port`.
    pub fn key_of(port: u16) -> u64 {
        u64::from(port) + 1
    }

    /// `mac` as stored.
    pub fn mac_word(mac: [u8; 6]) -> u64 {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(&mac);
        u64::from_le_bytes(b)
    }

    /// The MAC address of a stored word.
    pub fn mac_of(word: u64) -> [u8; 6] {
        let b = word.to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// A consistent copy of the entry, or `None` when it is free, or still being written after
    /// a few attempts (its writer preempted, or dead mid-write).
    pub fn read(&self) -> Option<Learned> {
        for _ in 0..LEARNED_READ_TRIES {
            match self.snapshot() {
                Snapshot::Free => return None,
                Snapshot::Entry(e) => return Some(e),
                Snapshot::Busy => std::hint::spin_loop(),
            }
        }
        None
    }

    /// One attempt: the reader's side of the protocol in the type's doc.
    fn snapshot(&self) -> Snapshot {
        use std::sync::atomic::{
            fence,
            Ordering::{Acquire, Relaxed},
        };
        let s1 = self.seq.load(Acquire);
        if s1 & 1 == 1 {
            return Snapshot::Busy;
        }
        let key = self.key.load(Relaxed);
        let (hi, lo) = (self.addr_hi.load(Relaxed), self.addr_lo.load(Relaxed));
        let mac = self.mac.load(Relaxed);
        let at = self.learned_ns.load(Relaxed);
        fence(Acquire);
        if self.seq.load(Relaxed) != s1 {
            return Snapshot::Busy;
        }
        if key == 0 {
            return Snapshot::Free;
        }
        let addr = (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes();
        Snapshot::Entry(Learned { addr, port: (key - 1) as u16, mac: Self::mac_of(mac), learned_ns: at })
    }

    /// Stores `addr` (16 bytes, IPv4 mapped) reached on port slot `port`, `mac` and
    /// `learned_ns` as one change. Only the entry's writer (its slot's polling process) may
    /// call it.
    pub fn write(&self, addr: [u8; 16], port: u16, mac: [u8; 6], learned_ns: u64) {
        let a = u128::from_be_bytes(addr);
        self.change(Self::key_of(port), ((a >> 64) as u64, a as u64), Self::mac_word(mac), learned_ns);
    }

    /// Frees the entry. Only its writer may call it.
    pub fn clear(&self) {
        self.change(0, (0, 0), 0, 0);
    }

    /// The writer's side of the protocol in the type's doc.
    fn change(&self, key: u64, (hi, lo): (u64, u64), mac: u64, learned_ns: u64) {
        use std::sync::atomic::{
            fence,
            Ordering::{Relaxed, Release},
        };
        // Odd from here on (already odd if a writer before this one died mid-change).
        let odd = self.seq.load(Relaxed) | 1;
        self.seq.store(odd, Relaxed);
        fence(Release);
        self.key.store(key, Relaxed);
        self.addr_hi.store(hi, Relaxed);
        self.addr_lo.store(lo, Relaxed);
        self.mac.store(mac, Relaxed);
        self.learned_ns.store(learned_ns, Relaxed);
        self.seq.store(odd.wrapping_add(1), Release);
    }
}

/// A copy of a [`LearnedNeighbour`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// The address, 16 bytes (IPv4 as `::ffff:a.b.c.d`).
    pub addr: [u8; 16],
    /// Port slot.
    pub port: u16,
    pub mac: [u8; 6],
    /// CLOCK_MONOTONIC when it was learned or last confirmed, ns.
    pub learned_ns: u64,
}

/// A learned neighbour confirmed less than this long ago is reachable; older, it is stale (and
/// asked for again every second until it answers).
pub const NEIGH_REACHABLE_NS: u64 = 30_000_000_000;
/// A learned neighbour not confirmed for this long is forgotten (its real servers take no new
/// connection until it answers again).
pub const NEIGH_EXPIRE_NS: u64 = 40_000_000_000;

/// How fresh a learned neighbour is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    Reachable,
    Stale,
    Expired,
}

impl Learned {
    /// Its address, of its family.
    pub fn ip(&self) -> std::net::IpAddr {
        std::net::Ipv6Addr::from(self.addr).to_canonical()
    }

    /// Its state at CLOCK_MONOTONIC `now_ns`.
    pub fn state(&self, now_ns: u64) -> NeighState {
        match now_ns.saturating_sub(self.learned_ns) {
            a if a < NEIGH_REACHABLE_NS => NeighState::Reachable,
            a if a < NEIGH_EXPIRE_NS => NeighState::Stale,
            _ => NeighState::Expired,
        }
    }
}

/// The neighbours of every table in `tables` that have not expired at `now_ns`, one per
/// address: the one learned last.
pub fn merge_learned<'t>(tables: impl IntoIterator<Item = &'t [LearnedNeighbour]>, now_ns: u64) -> Vec<Learned> {
    let mut latest: std::collections::HashMap<[u8; 16], Learned> = std::collections::HashMap::new();
    let fresh = |e: &Learned| e.state(now_ns) != NeighState::Expired;
    for e in tables.into_iter().flatten().filter_map(LearnedNeighbour::read).filter(fresh) {
        let x = latest.entry(e.addr).or_insert(e);
        if x.learned_ns < e.learned_ns {
            *x = e;
        }
    }
    let mut out: Vec<Learned> = latest.into_values().collect();
    out.sort_unstable_by_key(|e| e.addr);
    out
}

/// The reasons of [`LcoreCounters::drop_malformed`], in index order.
pub const MALFORMED_REASONS: [&str; 11] = [
    "truncated",
    "bad_version",
    "bad_header_len",
    "bad_total_len",
    "bad_checksum",
    "bad_tcp_offset",
    "bad_tcp_option",
    "bad_udp_len",
    "unsupported",
    "bad_payload_len",
    "bad_ext_header",
];

impl LcoreCounters {
    /// Adds `n` to a counter this thread alone writes (relaxed load + store: no atomic
    /// read-modify-write on the packet path).
    #[inline]
    pub fn bump(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

/// The whole shared region.
#[repr(C)]
pub struct Layout {
    pub header: Header,
    pub ports: [PortSlot; MAX_PORTS],
    pub workers: [WorkerSlot; MAX_WORKERS],
    /// Indexed by worker slot.
    pub counters: [LcoreCounters; MAX_WORKERS],
    /// Per-queue counters, by worker slot (single writer: the slot's polling process).
    pub queue_counters: [QueueCounters; MAX_WORKERS],
    /// Neighbours learned from ARP and neighbour discovery, a table per worker slot (single writer: the slot's polling
    /// process); readers merge them, the latest `learned_ns` winning.
    pub learned: [[LearnedNeighbour; LEARNED_NEIGHBOURS]; MAX_WORKERS],
    /// Each port's receive-side scaling, by port slot (written by the primary before any
    /// worker starts, then fixed).
    pub rss: [PortRss; MAX_PORTS],
    /// The handover gaps of each worker slot (single writer: the slot's successor process,
    /// when it starts polling).
    pub handover_gaps: [HandoverGaps; MAX_WORKERS],
    /// Packet captures by port slot (single writer: the primary).
    pub captures: capture::Captures,
    pub config: config::ConfigArea,
    pub mailbox: mailbox::Mailbox,
}

impl Layout {
    /// The ports in use.
    pub fn ports(&self) -> &[PortSlot] {
        &self.ports[..(self.header.n_ports as usize).min(MAX_PORTS)]
    }

    /// The receive-side scaling of the ports in use, by port slot.
    pub fn rss(&self) -> &[PortRss] {
        &self.rss[..(self.header.n_ports as usize).min(MAX_PORTS)]
    }

    /// The worker slots in use.
    pub fn workers(&self) -> &[WorkerSlot] {
        &self.workers[..(self.header.n_workers as usize).min(MAX_WORKERS)]
    }
}

/// Byte offset of [`Layout::config`].
const CONFIG_OFFSET: usize = 26_880
    + 64 * 512
    + 64 * 384
    + 64 * LEARNED_NEIGHBOURS * 64
    + MAX_PORTS * 1088
    + MAX_WORKERS * 512
    + (64 + MAX_PORTS * 96 + MAX_WORKERS * 64);

// Pinned sizes and offsets: a change here is a layout change, so LAYOUT_VERSION must move too.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == 192);
    assert!(offset_of!(Header, layout_version) == 8);
    assert!(offset_of!(Header, instance) == 24);
    assert!(offset_of!(Header, state) == 100);
    assert!(offset_of!(Header, primary_heartbeat_ns) == 128);
    assert!(size_of::<PortSlot>() == 192);
    assert!(offset_of!(PortSlot, peer) == 94);
    assert!(size_of::<QueueRef>() == 4);
    assert!(size_of::<WorkerSlot>() == 320);
    assert!(offset_of!(WorkerSlot, rx) == 80);
    assert!(offset_of!(WorkerSlot, state) == 144);
    assert!(offset_of!(WorkerSlot, heartbeat_ns) == 168);
    assert!(offset_of!(WorkerSlot, pool_avail) == 220);
    assert!(size_of::<LcoreCounters>() == 512 && align_of::<LcoreCounters>() == 128);
    assert!(offset_of!(LcoreCounters, handed_nat) == 8 * 32);
    assert!(size_of::<PortRss>() == 1088 && offset_of!(PortRss, reta) == 64);
    assert!(offset_of!(Layout, ports) == 192);
    assert!(offset_of!(Layout, workers) == 192 + 32 * 192);
    assert!(offset_of!(Layout, counters) == 26_880);
    assert!(offset_of!(Header, housekeeping_cpu) == 160 && offset_of!(Header, table_workers) == 164);
    assert!(offset_of!(Header, service_slots) == 168 && offset_of!(Header, real_slots) == 176);
    assert!(offset_of!(Header, config_words) == 184);
    assert!(size_of::<HandoverGaps>() == 512);
    assert!(offset_of!(Header, conn_capacity) == 172);
    assert!(offset_of!(WorkerSlot, cfg_reading) == 256);
    assert!(offset_of!(WorkerSlot, zero_applied) == 288);
    assert!(size_of::<RealCounters>() == 64);
    assert!(size_of::<LearnedNeighbour>() == 64);
    assert!(offset_of!(LearnedNeighbour, learned_ns) == 16 && offset_of!(LearnedNeighbour, seq) == 24);
    assert!(offset_of!(LearnedNeighbour, addr_hi) == 32 && offset_of!(LearnedNeighbour, addr_lo) == 40);
    assert!(size_of::<ServiceCounters>() == 64);
    assert!(size_of::<QueueCounters>() == 384);
    assert!(offset_of!(Layout, queue_counters) == 26_880 + 64 * 512);
    assert!(size_of::<Layout>().is_multiple_of(64));
    assert!(offset_of!(Layout, config) == CONFIG_OFFSET);
    assert!(offset_of!(Layout, mailbox) == CONFIG_OFFSET + size_of::<config::ConfigArea>());
    assert!(
        size_of::<Layout>() == (CONFIG_OFFSET + size_of::<config::ConfigArea>() + MAILBOX_BYTES).next_multiple_of(128)
    );
};

#[cfg(test)]
mod learned_tests {
    use super::*;

    /// 198.18.1.2 (on port slot 1).
    const ADDR: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 1, 2];

    #[test]
    fn an_entry_reads_back_what_was_written_and_clears() {
        let e = LearnedNeighbour::default();
        assert_eq!(e.read(), None, "free");
        e.write(ADDR, 1, [2, 0, 0, 0, 1, 2], 77);
        let l = Learned { addr: ADDR, port: 1, mac: [2, 0, 0, 0, 1, 2], learned_ns: 77 };
        assert_eq!(e.read(), Some(l));
        assert_eq!(l.ip(), std::net::Ipv4Addr::new(198, 18, 1, 2));
        let v6: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        e.write(v6.octets(), 0, [2, 0, 0, 0, 1, 3], 78);
        assert_eq!(e.read().map(|l| (l.ip(), l.port)), Some((v6.into(), 0)));
        assert_eq!(e.seq.load(Ordering::Relaxed), 4, "two changes: odd, then even, each");
        e.clear();
        assert_eq!((e.read(), e.seq.load(Ordering::Relaxed)), (None, 6));
    }

    #[test]
    fn a_reader_skips_an_entry_being_written() {
        let e = LearnedNeighbour::default();
        e.write(ADDR, 1, [2, 0, 0, 0, 1, 2], 77);
        // The writer's first step done, the fields not yet: whatever they hold, no copy.
        e.seq.store(3, Ordering::Relaxed);
        assert!(matches!(e.snapshot(), Snapshot::Busy));
        assert_eq!(e.read(), None);
        // A writer that carries on after one that died mid-change: even again, readable.
        e.write(ADDR, 1, [2, 0, 0, 0, 9, 9], 88);
        assert_eq!(e.seq.load(Ordering::Relaxed), 4);
        assert_eq!(e.read().map(|l| (l.mac, l.learned_ns)), Some(([2, 0, 0, 0, 9, 9], 88)));
    }

    /// A writer switches one entry between two (MAC, time) pairs under the same key (a next
    /// hop whose MAC changes back and forth) while a reader copies it: every copy must be one
    /// of the two pairs, never one's MAC with the other's time. Against the protocol before
    /// the sequence word (the key as its own version: a MAC change stored the same key again)
    /// it failed in 10 runs of 10 at this count on x86-64 (in 4 of 12 at 200 000 writes): a
    /// reader that loaded the key, then the old MAC, then the new time, then the same key
    /// again, kept the mix.
    #[test]
    fn a_reader_racing_the_writer_never_sees_a_torn_pair() {
        use std::sync::atomic::AtomicBool;
        const WRITES: u64 = 2_000_000;
        let pairs = [([2, 0, 0, 0, 0, 0x0a], 0x0a), ([2, 0, 0, 0, 0, 0x0b], 0x0b)];
        let e = LearnedNeighbour::default();
        e.write(ADDR, 1, pairs[0].0, pairs[0].1);
        let done = AtomicBool::new(false);
        let (seen, torn) = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..WRITES {
                    let (mac, at) = pairs[(i % 2) as usize];
                    e.write(ADDR, 1, mac, at);
                }
                done.store(true, Ordering::Release);
            });
            let (mut seen, mut torn) = ([0u64; 2], Vec::new());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !done.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
                if let Some(l) = e.read() {
                    match pairs.iter().position(|&(mac, at)| (mac, at) == (l.mac, l.learned_ns)) {
                        Some(i) => seen[i] += 1,
                        None if torn.len() < 8 => torn.push((l.mac, l.learned_ns)),
                        None => {}
                    }
                }
            }
            (seen, torn)
        });
        assert!(torn.is_empty(), "torn copies {torn:x?} (and {seen:?} good ones)");
        assert!(seen[0] + seen[1] > 0, "the reader got no copy at all");
    }
}

#[cfg(test)]
mod gap_tests {
    use super::*;

    #[test]
    fn gaps_keep_the_last_ones_in_order() {
        let g = HandoverGaps { count: AtomicU64::new(0), gaps_ns: std::array::from_fn(|_| AtomicU32::new(0)) };
        assert_eq!(g.recent(), (vec![], 0));
        for i in 0..(GAPS as u64 + 5) {
            g.record(i * 1000);
        }
        let (gaps, n) = g.recent();
        assert_eq!(n, GAPS as u64 + 5);
        assert_eq!(gaps.len(), GAPS);
        assert_eq!((gaps[0], gaps[GAPS - 1]), (5_000, (GAPS as u32 + 4) * 1000), "oldest first");
        g.record(u64::MAX);
        assert_eq!(*g.recent().0.last().unwrap(), u32::MAX, "saturates");
    }
}
