//! Mempools and ports: one pool per forwarding lcore, every port configured with the rx queues
//! of the config (each filled from the pool of the lcore that polls it) and one tx queue per
//! forwarding lcore.

use conf::{Config, Device};
use dpdk::{Mempool, Port};

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
        port.configure(p.rx_queues, p.tx_queues)
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
        let mac = port.mac_addr().unwrap_or_default();
        tracing::info!(port = %p.name, device = name, driver = %info.driver, %mac, rxq = p.rx_queues, txq = p.tx_queues, "port started");
        ready.push(ReadyPort {
            port,
            rx_holds_mbufs: rx_holds_mbufs(&info.driver, &p.device),
            tx_holds_mbufs: tx_holds_mbufs(&info.driver),
            driver: info.driver,
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
}
