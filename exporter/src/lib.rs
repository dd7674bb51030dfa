//! `dpvs-exporter`: the counters a dpvs instance keeps in shared memory, as Prometheus metrics.
//!
//! [`Exporter`] attaches to the instance like `dpvsctl` (read only, no DPDK, no slot) and, on
//! each scrape, reads what `dpvsctl stats`, `worker list` and `service list --stats` read, and
//! encodes it through `prometheus-client`'s collector interface (nothing kept between scrapes,
//! nothing read per connection). When the instance's primary is gone or was replaced, the next
//! scrape attaches to the new one; until there is one, `dpvs_up` is 0 and nothing else is
//! exported. Metric names and labels: README, "Metrics".
#![forbid(unsafe_code)]

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use shm_layout::{process_start_ticks, Shm};

/// The instance it exports, attached on demand.
#[derive(Debug)]
pub struct Exporter {
    target: ctl::cli::Target,
    shm: Mutex<Option<Shm>>,
}

impl Exporter {
    /// An exporter of the instance `target` names (not attached yet).
    pub fn new(target: ctl::cli::Target) -> Exporter {
        Exporter { target, shm: Mutex::new(None) }
    }

    /// A registry whose only collector is this exporter.
    pub fn registry(self) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(self));
        r
    }
}

/// Whether the primary that made `shm` still runs it.
fn alive(shm: &Shm) -> bool {
    let h = &shm.layout().header;
    process_start_ticks(h.primary_pid).is_some_and(|t| h.primary_start_ticks == 0 || t == h.primary_start_ticks)
}

/// Labels: name and value pairs.
type Labels<'a> = Vec<(&'static str, std::borrow::Cow<'a, str>)>;

/// One metric family: its descriptor, then a sample per label set.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    samples: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else { return Ok(()) };
    let mut f = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, m) in samples {
        m.encode(f.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: i64) -> ConstGauge<i64> {
    ConstGauge::new(v)
}

fn seconds(ns: u64) -> ConstGauge<f64> {
    ConstGauge::new(ns as f64 / 1e9)
}

/// A label value.
fn v<'a>(s: impl Into<std::borrow::Cow<'a, str>>) -> std::borrow::Cow<'a, str> {
    s.into()
}

impl Collector for Exporter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut held = self.shm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.as_ref().is_some_and(alive) {
            // Gone, replaced, or never attached: the instance running now, if any.
            *held = ctl::instance::attach(&self.target).ok();
        }
        let up = i64::from(held.is_some());
        family(
            &mut encoder,
            ("dpvs_up", "Whether the instance's primary is running and attached (1) or not (0)"),
            [(vec![], gauge(up))],
        )?;
        match held.as_ref() {
            Some(shm) => encode_instance(shm, &mut encoder),
            None => Ok(()),
        }
    }
}

/// Every metric of a running instance.
fn encode_instance(shm: &Shm, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let l = shm.layout();
    let area = &l.config;
    use std::sync::atomic::Ordering::Acquire;
    let generation = area.generation.load(Acquire);
    family(
        e,
        ("dpvs_config_generation", "The configuration generation the primary published last"),
        [(vec![], gauge(generation as i64))],
    )?;
    family(
        e,
        ("dpvs_config_changes", "Configuration changes applied since start"),
        [(vec![], counter(area.changes.load(Acquire)))],
    )?;
    let (published, acked) = (area.published_ns.load(Acquire), area.acked_ns.load(Acquire));
    if acked >= published && published > 0 {
        family(
            e,
            (
                "dpvs_config_ack_seconds",
                "From the last generation's publication to every polling worker forwarding with it",
            ),
            [(vec![], seconds(acked - published))],
        )?;
    }
    encode_workers(shm, e)?;
    encode_lcores(shm, e)?;
    encode_neighbours(shm, e)?;
    encode_services(shm, e)
}

/// Neighbours by port and state (`static`, `learned`, `stale`), as `dpvsctl neigh list`.
fn encode_neighbours(shm: &Shm, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Ok((_, rt)) = ctl::cmd::config::snapshot(shm) else { return Ok(()) };
    let ports: Vec<String> = shm.layout().ports().iter().map(|p| p.name.as_str().into_owned()).collect();
    let rows =
        ctl::cmd::service::neigh_view(&rt, (&ctl::cmd::service::learned(shm), shm_layout::monotonic_ns()), &ports);
    let mut by: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for r in rows {
        *by.entry((r.port, r.state)).or_default() += 1;
    }
    family(
        e,
        (
            "dpvs_neighbours",
            "Neighbours by port and state: static (configured), learned (ARP, confirmed in the last 30 s) or stale",
        ),
        by.into_iter().map(|((port, state), n)| (vec![("port", v(port)), ("state", v(state))], gauge(n))),
    )
}

fn encode_workers(shm: &Shm, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let rows = ctl::cmd::worker::view(shm);
    let slot = |w: &ctl::cmd::worker::WorkerRow| -> Labels<'static> {
        vec![("slot", v(w.slot.to_string())), ("group", v(w.group.clone()))]
    };
    family(
        e,
        ("dpvs_worker_up", "Whether the worker slot's process is polling (1) or not (0)"),
        rows.iter().map(|w| (slot(w), gauge(i64::from(w.state == "running")))),
    )?;
    family(
        e,
        ("dpvs_worker_restarts", "Processes started in the slot after its first (crashes, kills as hung)"),
        rows.iter().map(|w| (slot(w), counter(u64::from(w.restarts)))),
    )?;
    family(
        e,
        ("dpvs_worker_last_exit", "How the slot's last process ended: its exit code, or minus its signal"),
        rows.iter().filter_map(|w| Some((slot(w), gauge(i64::from(w.last_exit?))))),
    )?;
    family(
        e,
        ("dpvs_worker_config_generation", "The configuration generation the worker forwards with"),
        rows.iter().map(|w| (slot(w), gauge(w.config_generation as i64))),
    )?;
    family(
        e,
        ("dpvs_worker_handovers", "Handovers (and hot-standby takeovers) recorded in the slot"),
        rows.iter().map(|w| (slot(w), counter(w.handover_gaps.count))),
    )?;
    for (name, help, pick) in [
        (
            "dpvs_worker_handover_gap_p50_seconds",
            "The median gap in polling over the slot's recent handovers (up to 126 kept)",
            (|g| g.p50_us) as fn(&ctl::cmd::worker::Gaps) -> Option<u64>,
        ),
        ("dpvs_worker_handover_gap_p99_seconds", "The 99th percentile of the same gaps", |g| g.p99_us),
        ("dpvs_worker_handover_gap_max_seconds", "The longest of the same gaps", |g| g.max_us),
    ] {
        family(e, (name, help), rows.iter().filter_map(|w| Some((slot(w), seconds(pick(&w.handover_gaps)? * 1000)))))?;
    }
    family(
        e,
        ("dpvs_worker_pool_free_mbufs", "Free mbufs in the worker's pool"),
        rows.iter().map(|w| (slot(w), gauge(i64::from(w.pool_avail)))),
    )?;
    Ok(())
}

/// A label value and the counter of an lcore that has it.
type Field = (&'static str, fn(&ctl::cmd::stats::LcoreStats) -> u64);

fn encode_lcores(shm: &Shm, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let s = ctl::cmd::stats::view(shm);
    let at = |r: &ctl::cmd::stats::LcoreRow| -> Labels<'static> {
        vec![("slot", v(r.slot.to_string())), ("lcore", v(r.lcore.to_string()))]
    };
    let each = |f: fn(&ctl::cmd::stats::LcoreStats) -> u64| s.lcores.iter().map(move |r| (at(r), counter(f(&r.stats))));
    family(e, ("dpvs_lcore_rx_packets", "Packets the lcore received"), each(|c| c.rx_packets))?;
    family(e, ("dpvs_lcore_tx_packets", "Packets the lcore sent"), each(|c| c.tx_packets))?;
    family(
        e,
        ("dpvs_lcore_busy_cycles", "TSC cycles of the lcore's polls that found packets"),
        each(|c| c.busy_cycles),
    )?;
    family(e, ("dpvs_lcore_polls", "Poll rounds of the lcore"), each(|c| c.polls))?;
    family(e, ("dpvs_lcore_idle_polls", "Poll rounds of the lcore that found no packet"), each(|c| c.idle_polls))?;
    family(
        e,
        ("dpvs_lcore_redirected_packets", "Packets the lcore handed to the lcore that owns their connection"),
        each(|c| c.redirected),
    )?;
    let with = |key: &'static str, kinds: &[Field]| {
        let kinds = kinds.to_vec();
        s.lcores
            .iter()
            .flat_map(move |r| {
                let kinds = kinds.clone();
                kinds.into_iter().map(move |(name, f)| {
                    let mut l = at(r);
                    l.push((key, v(name)));
                    (l, counter(f(&r.stats)))
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        e,
        (
            "dpvs_lcore_translated_packets",
            "Packets the lcore rewrote for a connection, by direction (in: client to real server)",
        ),
        with("direction", &[("in", |c| c.fnat_in), ("out", |c| c.fnat_out)]),
    )?;
    let mut drops = with(
        "reason",
        &[
            ("tx_full", |c| c.drop_tx_full),
            ("runt", |c| c.drop_runt),
            ("no_connection", |c| c.drop_no_conn),
            ("no_resource", |c| c.drop_no_resource),
            ("acl", |c| c.drop_acl),
            ("overloaded", |c| c.drop_overloaded),
            ("too_big", |c| c.drop_too_big),
            ("redirect_ring_full", |c| c.drop_redirect),
        ],
    );
    for r in &s.lcores {
        for (reason, n) in &r.stats.drop_malformed_by_reason {
            let mut l = at(r);
            l.push(("reason", v(format!("malformed_{reason}"))));
            drops.push((l, counter(*n)));
        }
    }
    family(e, ("dpvs_lcore_dropped_packets", "Packets the lcore dropped, by reason"), drops)?;
    family(
        e,
        ("dpvs_lcore_handed_packets", "Packets handed to another lcore of the group, by why"),
        with(
            "why",
            &[
                ("nat", |c| c.handed_nat),
                ("persistent", |c| c.handed_persistent),
                ("rss_mismatch", |c| c.handed_rss_mismatch),
                ("no_rss", |c| c.handed_no_rss),
            ],
        ),
    )?;
    family(
        e,
        ("dpvs_lcore_sent_replies", "Answers the lcore generated itself, by kind"),
        with(
            "kind",
            &[
                ("arp", |c| c.arp_replies),
                ("icmp_echo", |c| c.icmp_echo_replies),
                ("nd", |c| c.nd_replies),
                ("icmp_time_exceeded", |c| c.icmp_time_exceeded),
                ("icmp_frag_needed", |c| c.icmp_frag_needed),
            ],
        ),
    )?;
    let conn = |r: &ctl::cmd::stats::ConnRow| -> Labels<'static> { vec![("slot", v(r.slot.to_string()))] };
    family(
        e,
        ("dpvs_connections", "Connections in the lcore's table now"),
        s.connections.iter().map(|r| (conn(r), gauge(i64::from(r.active)))),
    )?;
    family(
        e,
        ("dpvs_connection_capacity", "Entries of the lcore's connection table"),
        s.connections.iter().map(|r| (conn(r), gauge(i64::from(r.capacity)))),
    )?;
    family(
        e,
        ("dpvs_connections_created", "Connections the lcore created"),
        s.connections.iter().map(|r| (conn(r), counter(r.created))),
    )?;
    family(
        e,
        ("dpvs_connections_expired", "Connections that expired on the lcore"),
        s.connections.iter().map(|r| (conn(r), counter(r.expired))),
    )?;
    family(
        e,
        ("dpvs_connection_table_full", "Connections refused because the lcore's table was full"),
        s.connections.iter().map(|r| (conn(r), counter(r.full))),
    )?;
    Ok(())
}

/// A real server's labels and numbers.
struct Real {
    labels: Labels<'static>,
    weight: u32,
    /// Whether it is scheduled (1) or down by its health check (0); `None`: not checked.
    up: Option<i64>,
    /// Times the checker found it going down, if checked and the checker wrote it.
    flaps: Option<u32>,
    /// Its traffic counters, if counted.
    counts: Option<ctl::cmd::service::ServiceStats>,
    /// Its connections now (active, inactive), if counted.
    now: Option<(u64, u64)>,
}

fn encode_services(shm: &Shm, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Ok((_, rt)) = ctl::cmd::config::snapshot(shm) else { return Ok(()) };
    let c = ctl::cmd::service::stats(shm);
    let health = ctl::cmd::service::health(shm);
    let service = |s: &conf::Service| -> Labels<'static> {
        vec![("protocol", v(s.protocol.name())), ("vip", v(s.vip.to_string())), ("port", v(s.port.to_string()))]
    };
    let counted: Vec<(Labels<'static>, ctl::cmd::service::ServiceStats)> = rt
        .services
        .iter()
        .filter_map(|s| Some((service(s), *c.services.get(&ctl::cmd::service::key_of(s))?)))
        .collect();
    let reals: Vec<Real> = rt
        .services
        .iter()
        .flat_map(|s| {
            let key = ctl::cmd::service::key_of(s);
            let (c, health) = (&c, &health);
            let base = service(s);
            s.reals.iter().map(move |r| {
                let mut labels = base.clone();
                labels.push(("real", v(std::net::SocketAddr::new(r.addr, r.port).to_string())));
                let checked = s.check.is_some();
                let found = health.get(&(s.protocol.number(), s.vip, s.port, r.addr, r.port));
                Real {
                    labels,
                    weight: r.weight,
                    up: checked.then_some(i64::from(!r.down)),
                    flaps: found.filter(|_| checked).map(|h| h.flaps),
                    counts: c.reals.get(&(key, shm_layout::RealCounters::key_of(r.addr, r.port))).copied(),
                    now: c.reals_now.get(&(key, shm_layout::RealCounters::key_of(r.addr, r.port))).copied(),
                }
            })
        })
        .collect();
    traffic(e, "service", &counted)?;
    family(
        e,
        ("dpvs_real_connections_active", "The real server's connections now in TCP ESTABLISHED (ipvsadm's ActiveConn)"),
        reals.iter().filter_map(|r| Some((r.labels.clone(), gauge(r.now?.0 as i64)))),
    )?;
    family(
        e,
        (
            "dpvs_real_connections_inactive",
            "The real server's other connections now, UDP included (ipvsadm's InActConn)",
        ),
        reals.iter().filter_map(|r| Some((r.labels.clone(), gauge(r.now?.1 as i64)))),
    )?;
    family(
        e,
        ("dpvs_real_weight", "The real server's configured weight (0: takes no new connection)"),
        reals.iter().map(|r| (r.labels.clone(), gauge(i64::from(r.weight)))),
    )?;
    family(
        e,
        (
            "dpvs_real_up",
            "1 while the real server's health check passes, 0 while it is taken out (checked real servers only)",
        ),
        reals.iter().filter_map(|r| Some((r.labels.clone(), gauge(r.up?)))),
    )?;
    family(
        e,
        ("dpvs_real_health_flaps", "Times the health checker found the real server going down"),
        reals.iter().filter_map(|r| Some((r.labels.clone(), counter(u64::from(r.flaps?))))),
    )?;
    let real_counted: Vec<_> = reals.iter().filter_map(|r| Some((r.labels.clone(), r.counts?))).collect();
    traffic(e, "real", &real_counted)
}

/// `dpvs_<what>_connections_total`, `_packets_total` and `_bytes_total` (by direction) of
/// `rows` (services or real servers by their labels).
fn traffic(
    e: &mut DescriptorEncoder,
    what: &str,
    rows: &[(Labels<'static>, ctl::cmd::service::ServiceStats)],
) -> Result<(), std::fmt::Error> {
    let whose = if what == "real" { "real server" } else { what };
    let connections = format!("Connections the {whose} got");
    family(
        e,
        (&format!("dpvs_{what}_connections"), &connections),
        rows.iter().map(|(l, st)| (l.clone(), counter(st.conns))),
    )?;
    let by_direction = |f: fn(&ctl::cmd::service::ServiceStats) -> (u64, u64)| {
        rows.iter().flat_map(move |(l, st)| {
            let (i, o) = f(st);
            [("in", i), ("out", o)].map(|(d, n)| {
                let mut l = l.clone();
                l.push(("direction", v(d)));
                (l, counter(n))
            })
        })
    };
    for (unit, f) in [
        ("packets", (|s| (s.in_packets, s.out_packets)) as fn(&ctl::cmd::service::ServiceStats) -> (u64, u64)),
        ("bytes", |s| (s.in_bytes, s.out_bytes)),
    ] {
        let help = format!(
            "{} of the {whose}'s connections, by direction (in: from clients)",
            unit[..1].to_uppercase() + &unit[1..]
        );
        family(e, (&format!("dpvs_{what}_{unit}"), &help), by_direction(f))?;
    }
    Ok(())
}

/// The registry's metrics in the Prometheus text format (version 0.0.4).
///
/// # Errors
/// A formatting error of the encoder (none with a `String`).
pub fn scrape(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}
