//! `dpvsctl conn list`, `ipvsadm -lnc`, and the per-real-server connection counts of
//! `ipvsadm -ln` and `service list`: read from the workers' connection shards.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::Serialize;
use shm_layout::conn::{conn_shard_path, ConnEntry};
use shm_layout::{monotonic_ns, ConnShardFile, Shm};

/// One connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnRow {
    /// Worker slot whose shard holds it.
    pub worker: usize,
    pub protocol: String,
    pub state: String,
    /// Until it expires if no packet comes, ms.
    pub expires_ms: u64,
    pub client: String,
    #[serde(rename = "virtual")]
    pub virtual_: String,
    pub local: String,
    pub real: String,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Which connections to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub protocol: Option<conf::Protocol>,
    pub vip: Option<std::net::SocketAddrV4>,
    pub client: Option<Ipv4Addr>,
    pub worker: Option<usize>,
}

fn addr(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[12], a[13], a[14], a[15])
}

fn protocol(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        p => format!("proto {p}"),
    }
}

/// Every entry in use of every worker's shard, with its worker slot and the shard's tick.
fn each(shm: &Shm, mut f: impl FnMut(usize, &ConnEntry, u64)) {
    for slot in 0..shm.layout().workers().len() {
        let Ok(file) = ConnShardFile::open(&conn_shard_path(shm.path(), slot)) else { continue };
        let tick_ns = u64::from(file.header().tick_us) * 1000;
        for idx in 0..file.header().capacity {
            match file.entry_snapshot(idx) {
                Some(e) if e.in_use() => f(slot, &e, tick_ns),
                _ => {}
            }
        }
    }
}

/// The connections that `filter` selects, skipping `offset` and keeping at most `limit`;
/// also returns how many matched in all.
pub fn list(shm: &Shm, filter: &Filter, offset: usize, limit: usize) -> (Vec<ConnRow>, usize) {
    let now = monotonic_ns();
    let mut rows = Vec::new();
    let mut matched = 0;
    each(shm, |worker, e, tick_ns| {
        let (vaddr, caddr) = (addr(&e.vaddr), addr(&e.caddr));
        let keep = filter.worker.is_none_or(|w| w == worker)
            && filter.protocol.is_none_or(|p| p.number() == e.proto)
            && filter.vip.is_none_or(|v| *v.ip() == vaddr && v.port() == e.vport)
            && filter.client.is_none_or(|c| c == caddr);
        if !keep {
            return;
        }
        matched += 1;
        if matched <= offset || rows.len() >= limit {
            return;
        }
        let state = if e.proto == 6 { conn::tcp::State::from_u8(e.state).name().to_owned() } else { "UDP".into() };
        rows.push(ConnRow {
            worker,
            protocol: protocol(e.proto),
            state,
            expires_ms: (e.expires.saturating_mul(tick_ns)).saturating_sub(now) / 1_000_000,
            client: format!("{caddr}:{}", e.cport),
            virtual_: format!("{vaddr}:{}", e.vport),
            local: format!("{}:{}", addr(&e.laddr), e.lport),
            real: format!("{}:{}", addr(&e.raddr), e.rport),
            packets_in: e.packets[0],
            packets_out: e.packets[1],
            bytes_in: e.bytes[0],
            bytes_out: e.bytes[1],
        });
    });
    (rows, matched)
}

/// A real server of a service: (protocol number, VIP, port, real address, real port).
pub type RealKey = (u8, Ipv4Addr, u16, Ipv4Addr, u16);

/// Connections per real server: (active, inactive), as ipvsadm counts them (active: TCP
/// ESTABLISHED; everything else, UDP included, inactive).
pub fn per_real(shm: &Shm) -> HashMap<RealKey, (u64, u64)> {
    let mut out: HashMap<RealKey, (u64, u64)> = HashMap::new();
    each(shm, |_, e, _| {
        let key = (e.proto, addr(&e.vaddr), e.vport, addr(&e.raddr), e.rport);
        let c = out.entry(key).or_default();
        if e.proto == 6 && e.state == conn::tcp::State::Established as u8 {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    });
    out
}

/// The rows as a table.
pub fn render(rows: &[ConnRow], matched: usize) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.worker.to_string(),
                r.protocol.clone(),
                r.state.clone(),
                format!("{:.1}s", r.expires_ms as f64 / 1000.0),
                r.client.clone(),
                r.virtual_.clone(),
                r.local.clone(),
                r.real.clone(),
                r.packets_in.to_string(),
                r.packets_out.to_string(),
            ]
        })
        .collect();
    let mut out = super::table(
        &["WORKER", "PROTO", "STATE", "EXPIRES", "CLIENT", "VIRTUAL", "LOCAL", "REAL", "PKTS-IN", "PKTS-OUT"],
        &body,
    );
    if matched > rows.len() {
        out.push_str(&format!("({} shown of {matched}; --offset and --limit page)\n", rows.len()));
    }
    out
}

/// `ipvsadm -lnc`.
pub fn render_ipvsadm(rows: &[ConnRow]) -> String {
    let mut out = String::from("IPVS connection entries\npro expire state       source                virtual               local                 destination\n");
    for r in rows {
        let s = r.expires_ms / 1000;
        out.push_str(&format!(
            "{:<3} {:02}:{:02}  {:<11} {:<21} {:<21} {:<21} {}\n",
            r.protocol,
            s / 60,
            s % 60,
            r.state,
            r.client,
            r.virtual_,
            r.local,
            r.real
        ));
    }
    out
}
