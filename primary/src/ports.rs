//! Mempools and ports: one pool per forwarding lcore, every port configured with the rx queues
//! of the config (each filled from the pool of the lcore that polls it) and one tx queue per
//! forwarding lcore.

use conf::{Config, Device};
use dpdk::{rss_hf, Mempool, Port};
use shm_layout::RssKind;

use crate::shm_init::RssFacts;

/// Data room of every mbuf (DPDK's default: 2048 bytes plus headroom).
pub const MBUF_DATA_ROOM: u16 = 2048 + 128;

/// A failed set-up step.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SetupError {
    /// The step, naming the port, queue or pool.
    pub what: String,
    /// DPDK's error.
    pub source: dpdk::Error,
}

fn step(what: impl Into<String>) -> impl FnOnce(dpdk::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError { what, source }
}

/// Name of the mbuf pool of worker slot `slot`.
pub fn pool_name(slot: usize) -> String {
    format!("mbuf_pool_{slot}")
}

/// Creates one mbuf pool per forwarding lcore, in slot order.
///
/// # Errors
/// The first pool that cannot be created.
pub fn create_pools(cfg: &Config) -> Result<Vec<Mempool>, SetupError> {
    cfg.worker_lcores()
        .map(|(_, wl)| {
            let name = pool_name(wl.slot);
            Mempool::create_pktmbuf(&name, cfg.memory.mbufs_per_lcore, cfg.memory.mbuf_cache, MBUF_DATA_ROOM, -1)
                .map_err(step(format!("mempool {name} ({} mbufs)", cfg.memory.mbufs_per_lcore)))
        })
        .collect()
}

/// A configured, started port.
#[derive(Debug, Clone)]
pub struct ReadyPort {
    /// The DPDK port.
    pub port: Port,
    /// Driver name.
    pub driver: String,
    /// Whether its rx queues keep mbufs between calls (pre-posted rx buffers).
    pub rx_holds_mbufs: bool,
    /// Whether its tx queues keep mbufs after a tx call (freed on completion, later).
    pub tx_holds_mbufs: bool,
    /// How it spreads received packets over its rx queues.
    pub rss: RssFacts,
}

/// What a NIC hashes for RSS: IPv4 and IPv6 addresses, and the ports of unfragmented TCP and
/// UDP (the fields the workers compute the hash of; other IP by addresses), as far as the
/// device supports them. IPv4 TCP and UDP ports are required for the port's RSS to be known;
/// a device that does not hash IPv6 ports delivers IPv6 flows elsewhere than the workers
/// compute, and they are handed to their owner (counted as RSS mismatches).
const RSS_TYPES: u64 = rss_hf::IPV4
    | rss_hf::FRAG_IPV4
    | rss_hf::NONFRAG_IPV4_TCP
    | rss_hf::NONFRAG_IPV4_UDP
    | rss_hf::IPV6
    | rss_hf::FRAG_IPV6
    | rss_hf::NONFRAG_IPV6_TCP
    | rss_hf::NONFRAG_IPV6_UDP;

/// Programs a started port's RSS (the configured key and redirection table) and reads back
/// what the driver uses. Unknown, with a warning, when the driver does not keep the key, does
/// not hash TCP and UDP ports, or does not take or report the table: workers then own its
/// packets by a hash and hand them over.
fn program_rss(port: &Port, p: &conf::Port, info: &dpdk::PortInfo) -> RssFacts {
    let unknown = |why: String| {
        tracing::warn!(port = %p.name, "RSS unknown, packets will be handed between lcores: {why}");
        RssFacts { kind: RssKind::Unknown, key: p.rss.key, reta: Vec::new() }
    };
    let size = usize::from(info.reta_size);
    let Some(table) = p.rss.table(p.rx_queues, size) else {
        return unknown(format!("the configured reta is bigger than the device's {size} entries"));
    };
    if let Err(e) = port.set_reta(&table) {
        return unknown(format!("setting the redirection table: {e}"));
    }
    let types = RSS_TYPES & info.rss_offloads;
    let mut hash = port.rss_hash();
    if hash.as_ref().is_ok_and(|(key, _)| key.get(..rss::KEY_LEN) != Some(&p.rss.key[..])) {
        // Some drivers apply the key only through the update call.
        if let Err(e) = port.set_rss_hash(&p.rss.key, types) {
            return unknown(format!("setting the key: {e}"));
        }
        hash = port.rss_hash();
    }
    let (key, hf) = match hash {
        Ok(h) => h,
        Err(e) => return unknown(format!("reading the key back: {e}")),
    };
    let ports = rss_hf::NONFRAG_IPV4_TCP | rss_hf::NONFRAG_IPV4_UDP;
    if key.get(..rss::KEY_LEN) != Some(&p.rss.key[..]) || hf & ports != ports {
        return unknown(format!("the device hashes with another key or without TCP/UDP ports (types {hf:#x})"));
    }
    match port.reta(info.reta_size) {
        Ok(read) if read.iter().all(|&q| q < p.rx_queues) => {
            RssFacts { kind: RssKind::Hardware, key: p.rss.key, reta: read }
        }
        Ok(_) => unknown("the redirection table read back names queues the port does not have".into()),
        Err(e) => unknown(format!("reading the redirection table back: {e}")),
    }
}

/// The RSS a port without it in hardware gets from the configuration, for its peer to apply.
fn emulated_rss(p: &conf::Port) -> RssFacts {
    let size = p.rss.reta.as_ref().map_or(rss::DEFAULT_RETA_SIZE, Vec::len);
    let reta = p.rss.table(p.rx_queues, size).unwrap_or_default();
    RssFacts { kind: RssKind::Emulated, key: p.rss.key, reta }
}

/// Whether a driver's rx queues hold pool buffers between rx calls. memif in copy mode (every
/// server, and clients without `zero-copy=yes`) allocates at rx time; null allocates at rx
/// time; tap and NIC drivers pre-post buffers.
fn rx_holds_mbufs(driver: &str, device: &Device) -> bool {
    match (driver, device) {
        ("net_memif", Device::Vdev(v)) => v.split(',').any(|kv| kv.trim() == "zero-copy=yes"),
        ("net_null", _) => false,
        _ => true,
    }
}

/// Whether a driver's tx queues hold buffers after a tx call. memif copies and frees, tap
/// writes and frees, null frees; NICs free on completion, later.
fn tx_holds_mbufs(driver: &str) -> bool {
    !matches!(driver, "net_memif" | "net_tap" | "net_null")
}

/// One more than the highest worker slot that may send on port `pi`: the slots of every group
/// that polls one of its queues (a group sends on the ports it polls, which validation ensures
/// cover its services' ports; l2 forwarding pairs ports polled by the same lcores). 0: none.
fn senders(cfg: &Config, pi: usize) -> usize {
    cfg.groups
        .iter()
        .filter(|g| g.lcores.iter().any(|l| l.rx.iter().any(|r| r.port == pi)))
        .flat_map(|g| g.lcores.iter().map(|l| l.slot + 1))
        .max()
        .unwrap_or(0)
}

/// A memif port's queues pair with its peer's: a peer with `rx_queues` queue pairs leaves the
/// tx queues above them unconnected, and what a worker slot sends there is dropped. The
/// warning, when a slot that sends on the port has no queue its peer would pair.
fn memif_queue_warning(cfg: &Config, pi: usize, driver: &str) -> Option<String> {
    let p = &cfg.ports[pi];
    let needed = senders(cfg, pi);
    (driver == "net_memif" && needed > usize::from(p.rx_queues)).then(|| {
        format!(
            "memif port {}: worker slots up to {} send on it, each on the tx queue of its slot number, but it has {} \
             queue(s), as its peer will: give it `queues = {needed}` (every queue polled by some lcore of its group) \
             and the peer {needed} queue pairs, or what slots {}.. send here is dropped (DROP-TXFULL)",
            p.name,
            needed - 1,
            p.rx_queues,
            p.rx_queues
        )
    })
}

/// Configures and starts every port of the config, in config order.
///
/// # Errors
/// The first step that fails, naming the port and queue.
pub fn setup_ports(cfg: &Config, pools: &[Mempool]) -> Result<Vec<ReadyPort>, SetupError> {
    let mut ready: Vec<ReadyPort> = Vec::with_capacity(cfg.ports.len());
    for (pi, p) in cfg.ports.iter().enumerate() {
        let name = p.device.dpdk_name();
        let port = Port::by_name(name).map_err(step(format!("port {} ({name})", p.name)))?;
        let info = port.info().map_err(step(format!("port {}: device info", p.name)))?;
        let hardware_rss = p.rx_queues > 1 && info.rss_offloads & RSS_TYPES != 0 && info.reta_size > 0;
        let configured = if hardware_rss {
            port.configure_rss(p.rx_queues, p.tx_queues, &p.rss.key, RSS_TYPES & info.rss_offloads)
        } else {
            port.configure(p.rx_queues, p.tx_queues)
        };
        configured
            .map_err(step(format!("port {}: configure {} rx / {} tx queues", p.name, p.rx_queues, p.tx_queues)))?;
        for q in 0..p.rx_queues {
            let slot = cfg
                .worker_lcores()
                .find(|(_, wl)| wl.rx.iter().any(|r| r.port == pi && r.queue == q))
                .map(|(_, wl)| wl.slot)
                .ok_or_else(|| SetupError {
                    what: format!("port {} rx queue {q}", p.name),
                    source: dpdk::Error::NotFound { what: "lcore polling", name: format!("{}:{q}", p.name) },
                })?;
            port.setup_rx_queue(q, cfg.memory.rx_desc, &pools[slot])
                .map_err(step(format!("port {}: rx queue {q}", p.name)))?;
        }
        for q in 0..p.tx_queues {
            port.setup_tx_queue(q, cfg.memory.tx_desc).map_err(step(format!("port {}: tx queue {q}", p.name)))?;
        }
        port.start().map_err(step(format!("port {}: start", p.name)))?;
        if let Err(e) = port.promiscuous_enable() {
            tracing::debug!(port = %p.name, "promiscuous mode not available: {e}");
        }
        // An exception path's TAP interface answers for the data port: it takes its MAC, so
        // that what the host's kernel sends carries it and what comes back is addressed to it.
        if let Some(data) = p.exception_of.and_then(|d| ready.get(d)) {
            let mac = data.port.mac_addr().map_err(step(format!("port {}: MAC address", p.name)))?;
            port.set_mac_addr(mac).map_err(step(format!("port {}: set MAC address {mac}", p.name)))?;
        }
        let set = if p.mtu != 1500 { port.set_mtu(p.mtu) } else { Ok(()) };
        if let Err(e) = set {
            // The workers keep to it anyway: what is bigger is answered or dropped by them.
            tracing::warn!(port = %p.name, mtu = p.mtu, "the device does not take the MTU: {e}");
        }
        let rss = match (p.rx_queues, hardware_rss) {
            (1, _) => RssFacts::single(),
            (_, true) => program_rss(&port, p, &info),
            (_, false) => emulated_rss(p),
        };
        tracing::info!(port = %p.name, rss = rss.kind.as_str(), reta = rss.reta.len(), "receive-side scaling");
        let mac = port.mac_addr().unwrap_or_default();
        tracing::info!(port = %p.name, device = name, driver = %info.driver, %mac, rxq = p.rx_queues, txq = p.tx_queues, "port started");
        if let Some(w) = memif_queue_warning(cfg, pi, &info.driver) {
            tracing::warn!("{w}");
        }
        ready.push(ReadyPort {
            port,
            rx_holds_mbufs: rx_holds_mbufs(&info.driver, &p.device),
            tx_holds_mbufs: tx_holds_mbufs(&info.driver),
            driver: info.driver,
            rss,
        });
    }
    Ok(ready)
}

/// Stops and closes every port (workers must be gone).
pub fn shutdown_ports(ports: &[ReadyPort]) {
    for p in ports {
        if let Err(e) = p.port.stop() {
            tracing::warn!(port = p.port.id(), "stop: {e}");
        }
        if let Err(e) = p.port.close() {
            tracing::warn!(port = p.port.id(), "close: {e}");
        }
    }
}

/// Creates the redirect rings between the forwarding lcores when there are several (services
/// can be added at any time):
/// one single-producer, single-consumer ring per ordered pair of worker slots. Returns them as
/// `(src, dst, ring)`.
///
/// # Errors
/// The first ring that cannot be created.
pub fn create_redirect_rings(cfg: &Config) -> Result<Vec<(usize, usize, dpdk::Ring)>, SetupError> {
    let n = cfg.worker_lcores().count();
    let mut rings = Vec::new();
    if n < 2 {
        return Ok(rings);
    }
    for src in 0..n {
        for dst in (0..n).filter(|&d| d != src) {
            let name = shm_layout::redirect_ring_name(src, dst);
            let ring = dpdk::Ring::create_spsc(&name, 4096, -1).map_err(step(format!("redirect ring {name}")))?;
            rings.push((src, dst, ring));
        }
    }
    Ok(rings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_drivers_hold_buffers() {
        let v = |s: &str| Device::Vdev(s.to_owned());
        assert!(!rx_holds_mbufs("net_memif", &v("net_memif0,role=server,socket=/x")));
        assert!(rx_holds_mbufs("net_memif", &v("net_memif0,role=client,zero-copy=yes")));
        assert!(!rx_holds_mbufs("net_null", &v("net_null0")));
        assert!(rx_holds_mbufs("net_tap", &v("net_tap0,iface=t")));
        assert!(rx_holds_mbufs("net_ixgbe", &Device::Pci("0000:03:00.0".into())));
        assert!(!tx_holds_mbufs("net_tap"));
        assert!(tx_holds_mbufs("net_ice"));
    }

    #[test]
    fn a_memif_port_warns_when_a_sending_slot_has_no_queue_its_peer_pairs() {
        let port = |name: &str, sock: &str, queues: u16| {
            format!(
                "[[ports]]\nname = \"{name}\"\nvdev = \"net_memif{sock},role=server,id=0,socket=/tmp/{sock}.sock\"\nqueues = {queues}\n"
            )
        };
        let text = |b_queues: u16| {
            // The second lcore also polls b's third queue, if it has one.
            let third = if b_queues == 3 { ", \"b:2\"" } else { "" };
            let lcores = format!(
                "[[groups.lcores]]\nid = 2\nrx = [\"b:0\"]\n[[groups.lcores]]\nid = 3\nrx = [\"b:1\"{third}]\n"
            );
            format!(
                "[instance]\nname = \"t\"\n{}{}[forwarding]\nmode = \"l2-reflect\"\n[[groups]]\nname = \"one\"\n[[groups.lcores]]\nid = 1\nrx = [\"a:0\"]\n\
                 [[groups]]\nname = \"two\"\n{lcores}",
                port("a", "0", 1),
                port("b", "1", b_queues)
            )
        };
        // Group "two" (slots 1 and 2) polls both queues of b: the peer of b must pair 3 tx
        // queues, b has 2; a is polled by slot 0 only.
        let cfg = Config::from_str(&text(2), "t.toml").unwrap();
        assert_eq!((senders(&cfg, 0), senders(&cfg, 1)), (1, 3));
        assert_eq!(memif_queue_warning(&cfg, 0, "net_memif"), None);
        let w = memif_queue_warning(&cfg, 1, "net_memif").unwrap();
        assert!(w.contains("memif port b") && w.contains("queues = 3"), "{w}");
        // Not memif: queues are not paired with a peer.
        assert_eq!(memif_queue_warning(&cfg, 1, "net_tap"), None);
        // With three queues, all polled, every sending slot has one.
        let cfg = Config::from_str(&text(3), "t.toml").unwrap();
        assert_eq!(memif_queue_warning(&cfg, 1, "net_memif"), None);
    }
}
