//! The raw document: what serde reads from TOML, before any validation.
//!
//! Invariants: every table refuses unknown keys; every key is optional here (required keys
//! and defaults are the business of [`crate::validate`], which can then name the missing key
//! and the line of the table lacking it); integers are read as [`Int`] so that range errors
//! are reported by validation in the operator's terms rather than as `u16` overflows.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The whole file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) instance: Option<RawInstance>,
    pub(crate) memory: Option<RawMemory>,
    pub(crate) ports: Option<Vec<RawPort>>,
    pub(crate) forwarding: Option<RawForwarding>,
    pub(crate) groups: Option<Vec<RawGroup>>,
    pub(crate) supervisor: Option<RawSupervisor>,
    pub(crate) addresses: Option<Vec<RawAddress>>,
    pub(crate) neighbours: Option<Vec<RawNeighbour>>,
    pub(crate) routes: Option<Vec<RawRoute>>,
    pub(crate) services: Option<Vec<RawService>>,
    pub(crate) connections: Option<RawConnections>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) exporter: Option<RawExporter>,
}

/// `[exporter]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExporter {
    pub(crate) listen: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) services: Option<Int>,
    pub(crate) reals: Option<Int>,
    pub(crate) reals_per_service: Option<Int>,
    pub(crate) local_addresses: Option<Int>,
    pub(crate) acl_entries: Option<Int>,
    pub(crate) neighbours: Option<Int>,
    pub(crate) addresses: Option<Int>,
    pub(crate) routes: Option<Int>,
}

/// `[instance]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    pub(crate) name: Option<String>,
    pub(crate) file_prefix: Option<String>,
    pub(crate) huge_dir: Option<String>,
    pub(crate) shm_dir: Option<String>,
    pub(crate) main_lcore: Option<Int>,
    pub(crate) main_cpu: Option<Int>,
    pub(crate) housekeeping_cpu: Option<Int>,
    pub(crate) log_level: Option<String>,
}

/// `[memory]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMemory {
    pub(crate) mbufs_per_lcore: Option<Int>,
    pub(crate) mbuf_cache: Option<Int>,
    pub(crate) rx_desc: Option<Int>,
    pub(crate) tx_desc: Option<Int>,
}

/// One `[[ports]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub(crate) name: Option<String>,
    pub(crate) vdev: Option<String>,
    pub(crate) pci: Option<String>,
    pub(crate) queues: Option<Int>,
    pub(crate) kni: Option<String>,
    pub(crate) mtu: Option<Int>,
    pub(crate) rss_key: Option<String>,
    pub(crate) reta: Option<Vec<Int>>,
}

/// `[forwarding]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForwarding {
    pub(crate) mode: Option<String>,
    pub(crate) ports: Option<Vec<String>>,
}

/// One `[[groups]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub(crate) name: Option<String>,
    pub(crate) idle_sleep_us: Option<Int>,
    pub(crate) hot_standby: Option<bool>,
    pub(crate) lcores: Option<Vec<RawLcore>>,
}

/// One `[[groups.lcores]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLcore {
    pub(crate) id: Option<Int>,
    pub(crate) cpu: Option<Int>,
    pub(crate) rx: Option<Vec<String>>,
}

/// `[supervisor]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSupervisor {
    pub(crate) heartbeat_timeout_ms: Option<Int>,
    pub(crate) max_restart_backoff_ms: Option<Int>,
}

/// One `[[addresses]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAddress {
    pub(crate) port: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) sapool: Option<bool>,
}

/// One `[[neighbours]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNeighbour {
    pub(crate) address: Option<String>,
    pub(crate) mac: Option<String>,
    pub(crate) port: Option<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) prefix: Option<String>,
    pub(crate) via: Option<String>,
}

/// One `[[services]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub(crate) vip: Option<String>,
    pub(crate) port: Option<Int>,
    pub(crate) protocol: Option<String>,
    pub(crate) scheduler: Option<String>,
    pub(crate) local_addresses: Option<Vec<String>>,
    pub(crate) persistence: Option<Int>,
    pub(crate) persistence_prefix: Option<Int>,
    pub(crate) deny: Option<Vec<String>>,
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) proxy_protocol: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) check: Option<RawCheck>,
    pub(crate) reals: Option<Vec<RawReal>>,
}

/// A `[services.check]` table.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) port: Option<Int>,
    pub(crate) interval_ms: Option<Int>,
    pub(crate) timeout_ms: Option<Int>,
    pub(crate) rise: Option<Int>,
    pub(crate) fall: Option<Int>,
    pub(crate) on_failure: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) status: Option<Int>,
    pub(crate) body: Option<String>,
    pub(crate) send: Option<String>,
    pub(crate) expect: Option<String>,
    pub(crate) command: Option<Vec<String>>,
}

/// One `[[services.reals]]` entry.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReal {
    pub(crate) address: Option<String>,
    pub(crate) port: Option<Int>,
    pub(crate) weight: Option<Int>,
    pub(crate) forward: Option<String>,
    pub(crate) upper: Option<Int>,
    pub(crate) lower: Option<Int>,
}

/// `[connections]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnections {
    pub(crate) capacity_per_lcore: Option<Int>,
}

/// A TOML integer, whatever its range (checked by validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}
