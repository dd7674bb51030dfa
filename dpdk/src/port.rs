use std::collections::HashSet;
use std::ffi::{c_char, CStr};
use std::fmt;
use std::sync::Mutex;

use dpdk_sys as sys;

use crate::error::c_name;
use crate::{Burst, Error, Mempool};

/// Queues that have a handle in this process: a queue is not thread-safe, so this process
/// hands out at most one handle per (port, direction, queue).
static CLAIMED: Mutex<Option<HashSet<(u16, bool, u16)>>> = Mutex::new(None);

fn claim(port: u16, rx: bool, queue: u16) -> Result<(), Error> {
    let mut g = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if g.get_or_insert_with(HashSet::new).insert((port, rx, queue)) {
        Ok(())
    } else {
        Err(Error::QueueBusy { port, queue })
    }
}

fn release(port: u16, rx: bool, queue: u16) {
    let mut g = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.as_mut() {
        s.remove(&(port, rx, queue));
    }
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a port's driver reports about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Driver name (`net_memif`, `net_tap`, ...).
    pub driver: String,
    /// Most rx queues the device supports.
    pub max_rx_queues: u16,
    /// Most tx queues the device supports.
    pub max_tx_queues: u16,
    /// Entries of its RSS redirection table (0: none).
    pub reta_size: u16,
    /// Bytes of its RSS hash key.
    pub hash_key_size: u8,
    /// The RSS hash types it supports (`RTE_ETH_RSS_*` bits; 0: no RSS).
    pub rss_offloads: u64,
}

/// RSS hash types (`RTE_ETH_RSS_*` of rte_ethdev.h, macros bindgen does not see).
pub mod rss_hf {
    /// IPv4 addresses.
    pub const IPV4: u64 = 1 << 2;
    /// IPv4 fragments, by addresses.
    pub const FRAG_IPV4: u64 = 1 << 3;
    /// Unfragmented IPv4 TCP, by addresses and ports.
    pub const NONFRAG_IPV4_TCP: u64 = 1 << 4;
    /// Unfragmented IPv4 UDP, by addresses and ports.
    pub const NONFRAG_IPV4_UDP: u64 = 1 << 5;
    /// IPv6 addresses.
    pub const IPV6: u64 = 1 << 8;
    /// IPv6 fragments, by addresses.
    pub const FRAG_IPV6: u64 = 1 << 9;
    /// Unfragmented IPv6 TCP, by addresses and ports.
    pub const NONFRAG_IPV6_TCP: u64 = 1 << 10;
    /// Unfragmented IPv6 UDP, by addresses and ports.
    pub const NONFRAG_IPV6_UDP: u64 = 1 << 11;
}

/// Basic port counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device for want of rx descriptors.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Mbuf allocation failures on rx.
    pub rx_nombuf: u64,
}

/// An Ethernet port (a NIC or a vdev), by DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    id: u16,
}

impl Port {
    /// Finds a port by its DPDK device name (`net_memif0`, `0000:03:00.0`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no such port exists in this process.
    pub fn by_name(name: &str) -> Result<Port, Error> {
        let cname = c_name(name)?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string; id is a valid out-pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::NotFound { what: "port", name: name.to_owned() });
        }
        Ok(Port { id })
    }

    /// The port with DPDK port id `id`, if it exists in this process.
    pub fn by_id(id: u16) -> Option<Port> {
        // SAFETY: plain query.
        (unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0).then_some(Port { id })
    }

    /// Number of ports known to this process.
    pub fn count() -> u16 {
        // SAFETY: no preconditions after EAL init.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The DPDK device name.
    pub fn name(&self) -> Result<String, Error> {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf is a writable buffer of RTE_ETH_NAME_MAX_LEN bytes.
        Error::check("rte_eth_dev_get_name_by_port", unsafe {
            sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr())
        })?;
        // SAFETY: the call NUL-terminated the name within buf.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
    }

    /// Driver name and queue limits.
    pub fn info(&self) -> Result<PortInfo, Error> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-parameter.
        Error::check("rte_eth_dev_info_get", unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points to the driver's static name string.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
            rss_offloads: info.flow_type_rss_offloads,
        })
    }

    /// NUMA socket of the device (-1 when unknown).
    pub fn socket(&self) -> i32 {
        // SAFETY: plain query.
        unsafe { sys::rte_eth_dev_socket_id(self.id) }
    }

    /// Configures `rx` rx queues and `tx` tx queues with default offloads.
    pub fn configure(&self, rx: u16, tx: u16) -> Result<(), Error> {
        let conf = sys::rte_eth_conf::default();
        // SAFETY: conf is a valid, zero-initialised configuration.
        Error::check("rte_eth_dev_configure", unsafe { sys::rte_eth_dev_configure(self.id, rx, tx, &conf) })?;
        Ok(())
    }

    /// Configures `rx` rx queues and `tx` tx queues, spreading received packets over the rx
    /// queues by RSS: the Toeplitz hash of `hash_types` (`rss_hf` bits) under `key` (padded
    /// with zeros to the device's key size).
    pub fn configure_rss(&self, rx: u16, tx: u16, key: &[u8], hash_types: u64) -> Result<(), Error> {
        let size = usize::from(self.info()?.hash_key_size).max(key.len());
        let mut padded = vec![0u8; size];
        padded[..key.len()].copy_from_slice(key);
        let mut conf = sys::rte_eth_conf::default();
        conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = padded.as_mut_ptr();
        conf.rx_adv_conf.rss_conf.rss_key_len = size as u8;
        conf.rx_adv_conf.rss_conf.rss_hf = hash_types;
        // SAFETY: conf is a valid configuration whose key buffer outlives the call (the
        // driver copies it).
        Error::check("rte_eth_dev_configure", unsafe { sys::rte_eth_dev_configure(self.id, rx, tx, &conf) })?;
        Ok(())
    }

    /// Sets the RSS key (padded with zeros to the device's key size) and hash types of a
    /// configured port (some drivers ignore the key given to [`Port::configure_rss`]).
    pub fn set_rss_hash(&self, key: &[u8], hash_types: u64) -> Result<(), Error> {
        let size = usize::from(self.info()?.hash_key_size).max(key.len());
        let mut padded = vec![0u8; size];
        padded[..key.len()].copy_from_slice(key);
        let mut conf =
            sys::rte_eth_rss_conf { rss_key: padded.as_mut_ptr(), rss_key_len: size as u8, rss_hf: hash_types };
        // SAFETY: conf points to a key of rss_key_len bytes, which the driver copies.
        Error::check("rte_eth_dev_rss_hash_update", unsafe { sys::rte_eth_dev_rss_hash_update(self.id, &mut conf) })?;
        Ok(())
    }

    /// The RSS key and hash types the device uses.
    pub fn rss_hash(&self) -> Result<(Vec<u8>, u64), Error> {
        let mut key = vec![0u8; usize::from(self.info()?.hash_key_size).max(40)];
        let mut conf = sys::rte_eth_rss_conf { rss_key: key.as_mut_ptr(), rss_key_len: key.len() as u8, rss_hf: 0 };
        // SAFETY: conf points to a buffer of rss_key_len bytes.
        Error::check("rte_eth_dev_rss_hash_conf_get", unsafe {
            sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf)
        })?;
        key.truncate(usize::from(conf.rss_key_len).min(key.len()));
        Ok((key, conf.rss_hf))
    }

    /// Programs the RSS redirection table: entry `i` sends its hashes to queue `table[i]`
    /// (`table` as long as the device's table).
    pub fn set_reta(&self, table: &[u16]) -> Result<(), Error> {
        let mut groups: Vec<sys::rte_eth_rss_reta_entry64> = table
            .chunks(64)
            .map(|c| {
                let mut g = sys::rte_eth_rss_reta_entry64 { mask: u64::MAX >> (64 - c.len()), reta: [0; 64] };
                g.reta[..c.len()].copy_from_slice(c);
                g
            })
            .collect();
        // SAFETY: groups holds table.len() entries in groups of 64, as the call reads them.
        Error::check("rte_eth_dev_rss_reta_update", unsafe {
            sys::rte_eth_dev_rss_reta_update(self.id, groups.as_mut_ptr(), table.len() as u16)
        })?;
        Ok(())
    }

    /// The RSS redirection table of `size` entries (the device's table size).
    pub fn reta(&self, size: u16) -> Result<Vec<u16>, Error> {
        let n = usize::from(size);
        let mut groups: Vec<sys::rte_eth_rss_reta_entry64> = (0..n.div_ceil(64))
            .map(|g| sys::rte_eth_rss_reta_entry64 { mask: u64::MAX >> (64 - (n - g * 64).min(64)), reta: [0; 64] })
            .collect();
        // SAFETY: groups has room for size entries in groups of 64.
        Error::check("rte_eth_dev_rss_reta_query", unsafe {
            sys::rte_eth_dev_rss_reta_query(self.id, groups.as_mut_ptr(), size)
        })?;
        Ok(groups.iter().flat_map(|g| g.reta).take(n).collect())
    }

    /// Sets up rx queue `queue` with `desc` descriptors, filled from `pool`.
    pub fn setup_rx_queue(&self, queue: u16, desc: u16, pool: &Mempool) -> Result<(), Error> {
        let socket = u32::try_from(self.socket()).unwrap_or(0);
        // SAFETY: pool is valid for the life of the EAL; a NULL rxconf means defaults.
        Error::check("rte_eth_rx_queue_setup", unsafe {
            sys::rte_eth_rx_queue_setup(self.id, queue, desc, socket, std::ptr::null(), pool.as_ptr())
        })?;
        Ok(())
    }

    /// Sets up tx queue `queue` with `desc` descriptors.
    pub fn setup_tx_queue(&self, queue: u16, desc: u16) -> Result<(), Error> {
        let socket = u32::try_from(self.socket()).unwrap_or(0);
        // SAFETY: a NULL txconf means defaults.
        Error::check("rte_eth_tx_queue_setup", unsafe {
            sys::rte_eth_tx_queue_setup(self.id, queue, desc, socket, std::ptr::null())
        })?;
        Ok(())
    }

    /// Starts the port.
    pub fn start(&self) -> Result<(), Error> {
        // SAFETY: plain call on a configured port.
        Error::check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(self.id) })?;
        Ok(())
    }

    /// Stops the port.
    pub fn stop(&self) -> Result<(), Error> {
        // SAFETY: plain call.
        Error::check("rte_eth_dev_stop", unsafe { sys::rte_eth_dev_stop(self.id) })?;
        Ok(())
    }

    /// Closes the port and releases its queues.
    pub fn close(&self) -> Result<(), Error> {
        // SAFETY: plain call; the port id must not be used afterwards (it is Copy, so this
        // is the caller's shutdown discipline, not memory safety).
        Error::check("rte_eth_dev_close", unsafe { sys::rte_eth_dev_close(self.id) })?;
        Ok(())
    }

    /// Whether the link is up, without waiting. Drivers refresh per-process state here:
    /// a memif port in a secondary process unmaps the regions of a peer that went away, and
    /// maps the new peer's on the next burst.
    pub fn link_up(&self) -> bool {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: link is a valid out-parameter.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        ret == 0 && link.link_status() != 0
    }

    /// Turns promiscuous mode on.
    pub fn promiscuous_enable(&self) -> Result<(), Error> {
        // SAFETY: plain call.
        Error::check("rte_eth_promiscuous_enable", unsafe { sys::rte_eth_promiscuous_enable(self.id) })?;
        Ok(())
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<MacAddr, Error> {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: a is a valid out-parameter.
        Error::check("rte_eth_macaddr_get", unsafe { sys::rte_eth_macaddr_get(self.id, &mut a) })?;
        Ok(MacAddr(a.addr_bytes))
    }

    /// Sets the port's MTU (a TAP port passes it on to its kernel interface).
    pub fn set_mtu(&self, mtu: u16) -> Result<(), Error> {
        // SAFETY: plain call.
        Error::check("rte_eth_dev_set_mtu", unsafe { sys::rte_eth_dev_set_mtu(self.id, mtu) })?;
        Ok(())
    }

    /// Gives the port the MAC address `mac` (a TAP port passes it on to its kernel interface).
    pub fn set_mac_addr(&self, mac: MacAddr) -> Result<(), Error> {
        let mut a = sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: a is a valid in-parameter for the duration of the call.
        Error::check("rte_eth_dev_default_mac_addr_set", unsafe {
            sys::rte_eth_dev_default_mac_addr_set(self.id, &mut a)
        })?;
        Ok(())
    }

    /// Device counters.
    pub fn stats(&self) -> Result<PortStats, Error> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid out-parameter.
        Error::check("rte_eth_stats_get", unsafe { sys::rte_eth_stats_get(self.id, &mut s) })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Takes the only handle of this process on rx queue `queue`.
    ///
    /// # Errors
    /// [`Error::QueueBusy`] when this process has a handle on it already.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, Error> {
        claim(self.id, true, queue)?;
        Ok(RxQueue { port: self.id, queue })
    }

    /// Takes the only handle of this process on tx queue `queue`.
    ///
    /// # Errors
    /// [`Error::QueueBusy`] when this process has a handle on it already.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, Error> {
        claim(self.id, false, queue)?;
        Ok(TxQueue { port: self.id, queue })
    }
}

/// The receive side of one queue. Polled by one thread at a time (it is not `Sync`).
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

impl RxQueue {
    /// Port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the free room of `burst`; returns how many packets arrived.
    #[inline]
    pub fn rx(&mut self, burst: &mut Burst) -> usize {
        let (p, n) = burst.spare();
        if n == 0 {
            return 0;
        }
        // SAFETY: p points to n writable entries of the burst; &mut self makes this the only
        // poller of the queue in this process.
        let got = unsafe { sys::shim_rx_burst(self.port, self.queue, p, n) };
        // SAFETY: the PMD wrote `got` valid mbufs that are now ours.
        unsafe { burst.filled(usize::from(got)) };
        usize::from(got)
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        release(self.port, true, self.queue);
    }
}

/// The transmit side of one queue. Used by one thread at a time (it is not `Sync`).
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
}

impl TxQueue {
    /// Port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Sends as many of `burst`'s packets as the queue takes, from the front; the ones not
    /// taken stay in `burst`. Returns how many were sent.
    #[inline]
    pub fn tx(&mut self, burst: &mut Burst) -> usize {
        let (p, n) = burst.held();
        if n == 0 {
            return 0;
        }
        // SAFETY: p points to n owned mbufs; the PMD takes ownership of the first `sent`.
        let sent = usize::from(unsafe { sys::shim_tx_burst(self.port, self.queue, p, n) });
        burst.consumed(sent);
        sent
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        release(self.port, false, self.queue);
    }
}
