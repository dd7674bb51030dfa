//! A port's receive-side scaling as the configuration states it (`rss_key`, `reta`): what a
//! NIC is programmed with, or, for a port without RSS in hardware (memif, ring, null, tap),
//! what its peer must apply when it picks the queue it sends a packet on.

use crate::error::{Fault, KeyPath};
use crate::raw::Int;

/// Most redirection table entries a port may be given (drivers have 64 to 512).
pub const MAX_RETA: usize = 512;

/// `rss_key` and `reta` of a `[[ports]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRss {
    /// The Toeplitz key (default: Microsoft's, [`rss::MS_KEY`], which most drivers use).
    pub key: [u8; rss::KEY_LEN],
    /// The redirection table's queues; `None`: round robin over the port's rx queues, as big
    /// as the driver's table (hardware) or [`rss::DEFAULT_RETA_SIZE`] entries (emulated).
    pub reta: Option<Vec<u16>>,
}

impl Default for PortRss {
    fn default() -> Self {
        PortRss { key: rss::MS_KEY, reta: None }
    }
}

impl PortRss {
    /// The table of a port with `queues` rx queues and a driver table of `size` entries: the
    /// configured one, repeated to fill `size` when smaller (it maps the same hashes to the
    /// same queues), else round robin. `None`: the configured table is bigger than `size`.
    pub fn table(&self, queues: u16, size: usize) -> Option<Vec<u16>> {
        match &self.reta {
            None => Some((0..size).map(|i| (i % usize::from(queues.max(1))) as u16).collect()),
            Some(t) if t.len() <= size && size.is_multiple_of(t.len()) => {
                Some(t.iter().copied().cycle().take(size).collect())
            }
            Some(_) => None,
        }
    }
}

/// The RSS settings of a port with `rx_queues` queues.
pub(crate) fn port_rss(
    key: Option<String>,
    reta: Option<Vec<Int>>,
    rx_queues: u16,
    path: &KeyPath,
) -> Result<PortRss, Fault> {
    let key = match key {
        None => rss::MS_KEY,
        Some(text) => rss::parse_key(&text).map_err(|e| Fault::at(&path.key("rss_key"), e.to_string()))?,
    };
    let reta = match reta {
        None => None,
        Some(entries) => {
            let p = path.key("reta");
            if !entries.len().is_power_of_two() || entries.len() > MAX_RETA {
                return Err(Fault::at(
                    &p,
                    format!("expected a power of two from 1 to {MAX_RETA} queue numbers, got {}", entries.len()),
                ));
            }
            let mut out = Vec::with_capacity(entries.len());
            for (i, Int(q)) in entries.into_iter().enumerate() {
                if !(0..i64::from(rx_queues)).contains(&q) {
                    return Err(Fault::at(
                        &p.index(i),
                        format!("expected a queue of the port, 0..={}, got {q}", rx_queues - 1),
                    ));
                }
                out.push(q as u16);
            }
            Some(out)
        }
    };
    Ok(PortRss { key, reta })
}
