//! `dpvsctl conn list`, `ipvsadm -lnc`, and the per-real-server connection counts of
//! `ipvsadm -ln` and `service list`: read from the workers' connection shards.

use std::net::{IpAddr, SocketAddr};

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
    pub vip: Option<SocketAddr>,
    pub client: Option<IpAddr>,
    pub worker: Option<usize>,
}

/// An entry's 16-byte address (IPv4 mapped), of its family.
fn addr(a: &[u8; 16]) -> IpAddr {
    std::net::Ipv6Addr::from(*a).to_canonical()
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
            && filter.vip.is_none_or(|v| v.ip() == vaddr && v.port() == e.vport)
            && filter.client.is_none_or(|c| c == caddr);
        if !keep {
            return;
        }
        matched += 1;
        if matched <= offset || rows.len() >= limit {
            return;
        }
        rows.push(row(worker, e, tick_ns, now));
    });
    (rows, matched)
}

/// The row of entry `e` of worker `worker`'s shard (whose tick is `tick_ns`) at `now_ns`.
fn row(worker: usize, e: &ConnEntry, tick_ns: u64, now_ns: u64) -> ConnRow {
    ConnRow {
        worker,
        protocol: protocol(e.proto),
        state: state_name(e).to_owned(),
        expires_ms: (e.expires.saturating_mul(tick_ns)).saturating_sub(now_ns) / 1_000_000,
        client: SocketAddr::new(addr(&e.caddr), e.cport).to_string(),
        virtual_: SocketAddr::new(addr(&e.vaddr), e.vport).to_string(),
        local: SocketAddr::new(addr(&e.laddr), e.lport).to_string(),
        real: SocketAddr::new(addr(&e.raddr), e.rport).to_string(),
        packets_in: e.packets[0],
        packets_out: e.packets[1],
        bytes_in: e.bytes[0],
        bytes_out: e.bytes[1],
    }
}

/// The state column as LVS names it: a persistence template is `NONE` whatever its protocol
/// (`ip_vs_state_name` in net/netfilter/ipvs/ip_vs_proto.c names an entry with
/// `IP_VS_CONN_F_TEMPLATE` from `ip_vs_ctpl_state_name_table`), a TCP connection its TCP
/// state, anything else `UDP`.
fn state_name(e: &ConnEntry) -> &'static str {
    if e.is_template() {
        "NONE"
    } else if e.proto == 6 {
        conn::tcp::State::from_u8(e.state).name()
    } else {
        "UDP"
    }
}

/// A real server of a service: (protocol number, VIP, port, real address, real port).
pub type RealKey = (u8, IpAddr, u16, IpAddr, u16);

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

#[cfg(test)]
mod tests {
    use super::*;
    use conn::tcp::State;
    use shm_layout::conn::Mode;

    const CLIENT: [u8; 4] = [198, 18, 0, 1];
    const VIP: [u8; 4] = [198, 18, 0, 100];
    const REAL: [u8; 4] = [198, 18, 1, 2];

    /// An entry in use of `mode`, client -> VIP:`vport` -> REAL:`rport`, as the workers file
    /// them (a template: client port 0, local side client:0, state NONE).
    fn entry(proto: u8, mode: Mode, state: State, (vport, rport): (u16, u16)) -> ConnEntry {
        let template = mode == Mode::Template;
        ConnEntry {
            proto,
            state: state as u8,
            flags: ConnEntry::flags_for(mode),
            caddr: conn::v4(CLIENT),
            cport: if template { 0 } else { 40_000 },
            vaddr: conn::v4(VIP),
            vport,
            laddr: if template { conn::v4(CLIENT) } else { conn::v4([198, 18, 1, 254]) },
            lport: if template { 0 } else { 5_000 },
            raddr: conn::v4(REAL),
            rport,
            ..ConnEntry::EMPTY
        }
    }

    #[test]
    fn templates_are_listed_as_lvs_lists_them() {
        // LVS's `ipvsadm -lnc`: `TCP 05:49 NONE 198.18.0.1:0 198.18.0.100:80 198.18.1.2:8080`.
        let mut t = entry(17, Mode::Template, State::None, (53, 53));
        t.expires = 360;
        let rows = [
            row(0, &t, 1_000_000_000, 11_000_000_000),
            row(0, &entry(6, Mode::Template, State::None, (80, 8080)), 1, 0),
            row(1, &entry(6, Mode::FullNat, State::SynRecv, (80, 8080)), 1, 0),
            row(1, &entry(17, Mode::Dr, State::None, (53, 53)), 1, 0),
        ];
        let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
        assert_eq!(states, ["NONE", "NONE", "SYN_RECV", "UDP"]);
        let text = render_ipvsadm(&rows[..1]);
        assert!(
            text.ends_with(
                "UDP 05:49  NONE        198.18.0.1:0          198.18.0.100:53       198.18.0.1:0          198.18.1.2:53\n"
            ),
            "{text}"
        );
    }
}
