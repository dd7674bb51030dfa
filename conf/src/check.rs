//! Active health checks of a service's real servers (`[services.check]`), which `dpvs-health`
//! runs: the kind of probe, how often, how many results in a row change a real server's state,
//! and what a failed real server becomes.
//!
//! One validation for every source: the file's table, `dpvsctl check set` and a mailbox request
//! are all read as a [`RawCheck`](crate::raw::RawCheck) and checked by [`check`], so a value
//! refused in one is refused in all, with the same words.

use crate::error::{Fault, KeyPath};
use crate::raw::{Int, RawCheck};

/// An active health check of each real server of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthCheck {
    /// What is sent and what answer counts as alive.
    pub probe: Probe,
    /// Port probed (0: each real server's own; ICMP and commands ignore it unless given).
    pub port: u16,
    /// Time from the start of one check of a real server to the start of its next, ms.
    pub interval_ms: u32,
    /// How long a check may take before it counts as failed, ms (at most `interval_ms`).
    pub timeout_ms: u32,
    /// Successes in a row that bring a failed real server back.
    pub rise: u32,
    /// Failures in a row that take a real server out.
    pub fall: u32,
    /// What a failed real server becomes.
    pub on_failure: OnFailure,
}

/// The probe of a [`HealthCheck`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Probe {
    /// A TCP connection is accepted (then closed).
    Tcp,
    /// An HTTP/1.1 `GET path` answers with `status`, and its body (the first 64 KiB) contains
    /// `body` when that is not empty.
    Http { path: String, status: u16, body: String },
    /// A UDP datagram `send` is answered by a datagram containing `expect` (any answer when
    /// `expect` is empty).
    Udp { send: String, expect: String },
    /// An ICMP (or ICMPv6) echo request is answered.
    Icmp,
    /// A command exits with status 0 (keepalived's MISC_CHECK); it learns the real server from
    /// its environment (`DPVS_REAL_ADDR`, `DPVS_REAL_PORT`, `DPVS_VIP`, `DPVS_VPORT`,
    /// `DPVS_PROTOCOL`) and is killed at the timeout.
    Command { argv: Vec<String> },
}

impl Probe {
    /// The name of its `type`, as the file spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Probe::Tcp => "tcp",
            Probe::Http { .. } => "http",
            Probe::Udp { .. } => "udp",
            Probe::Icmp => "icmp",
            Probe::Command { .. } => "command",
        }
    }
}

/// What a real server whose check failed `fall` times in a row becomes, until it succeeds
/// `rise` times in a row. Either way its established connections go on, and the persistence
/// templates that name it are let go (a persistent client is scheduled again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum OnFailure {
    /// Weight 0 in effect (keepalived's `inhibit_on_failure`): listed, with weight 0, by
    /// `ipvsadm -ln`.
    #[default]
    Inhibit,
    /// Out of the service's scheduling and out of `ipvsadm -ln` (keepalived's default);
    /// `dpvsctl service list` still shows it, down.
    Remove,
}

impl OnFailure {
    /// `inhibit` or `remove`, as the file spells it.
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::Inhibit => "inhibit",
            OnFailure::Remove => "remove",
        }
    }
}

/// Longest probe interval and timeout, ms (an hour).
pub const MAX_CHECK_MS: i64 = 3_600_000;
/// Most successes or failures in a row a state change may wait for.
pub const MAX_RISE_FALL: i64 = 100;
/// Longest HTTP path, UDP payload, expected text or command line, bytes.
pub const MAX_CHECK_TEXT: usize = 1024;

/// Keys each probe type takes besides the common ones.
const TYPE_KEYS: [(&str, &[&str]); 5] = [
    ("tcp", &[]),
    ("http", &["path", "status", "body"]),
    ("udp", &["send", "expect"]),
    ("icmp", &[]),
    ("command", &["command"]),
];

/// The `[services.check]` table at `path`, validated.
pub(crate) fn check(raw: RawCheck, path: &KeyPath) -> Result<HealthCheck, Fault> {
    let tp = path.key("type");
    let kind = raw.kind.clone().ok_or_else(|| {
        Fault::at(&tp, "missing; expected \"tcp\", \"http\", \"udp\", \"icmp\" or \"command\"".to_owned())
    })?;
    let Some((_, takes)) = TYPE_KEYS.iter().find(|(k, _)| *k == kind) else {
        return Err(Fault::at(
            &tp,
            format!("expected \"tcp\", \"http\", \"udp\", \"icmp\" or \"command\", got \"{kind}\""),
        ));
    };
    let given = [
        ("path", raw.path.is_some()),
        ("status", raw.status.is_some()),
        ("body", raw.body.is_some()),
        ("send", raw.send.is_some()),
        ("expect", raw.expect.is_some()),
        ("command", raw.command.is_some()),
    ];
    if let Some((key, _)) = given.iter().find(|(k, set)| *set && !takes.contains(k)) {
        let owner = TYPE_KEYS.iter().find(|(_, keys)| keys.contains(key)).map_or("", |(t, _)| *t);
        return Err(Fault::at(
            &path.key(key),
            format!("`{key}` belongs to a \"{owner}\" check; this check's type is \"{kind}\""),
        ));
    }
    let text = |v: Option<String>, key: &str| -> Result<String, Fault> {
        let v = v.unwrap_or_default();
        if v.len() > MAX_CHECK_TEXT {
            return Err(Fault::at(&path.key(key), format!("longer than {MAX_CHECK_TEXT} bytes")));
        }
        Ok(v)
    };
    let probe = match kind.as_str() {
        "tcp" => Probe::Tcp,
        "icmp" => Probe::Icmp,
        "http" => {
            let p = text(raw.path, "path")?;
            let p = if p.is_empty() { "/".to_owned() } else { p };
            if !p.starts_with('/') || p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Fault::at(
                    &path.key("path"),
                    format!("expected an absolute path without spaces or control characters (\"/health\"), got {p:?}"),
                ));
            }
            let status = int(raw.status, 200, 100..=599, &path.key("status"))?;
            Probe::Http { path: p, status, body: text(raw.body, "body")? }
        }
        "udp" => {
            let send = text(raw.send, "send")?;
            if send.is_empty() {
                return Err(Fault::at(&path.key("send"), "missing; expected the datagram to send (text)".to_owned()));
            }
            Probe::Udp { send, expect: text(raw.expect, "expect")? }
        }
        _ => {
            let cp = path.key("command");
            let argv = raw.command.unwrap_or_default();
            if argv.first().is_none_or(|p| !p.starts_with('/')) {
                return Err(Fault::at(
                    &cp,
                    "expected the program's absolute path and its arguments ([\"/usr/local/bin/check\", \"--fast\"])"
                        .to_owned(),
                ));
            }
            if argv.iter().map(|a| a.len() + 1).sum::<usize>() > MAX_CHECK_TEXT || argv.iter().any(|a| a.contains('\0'))
            {
                return Err(Fault::at(&cp, format!("longer than {MAX_CHECK_TEXT} bytes, or holds a NUL")));
            }
            Probe::Command { argv }
        }
    };
    let text_len = match &probe {
        Probe::Http { path, body, .. } => path.len() + body.len(),
        Probe::Udp { send, expect } => send.len() + expect.len(),
        Probe::Command { argv } => argv.iter().map(|a| a.len() + 1).sum(),
        Probe::Tcp | Probe::Icmp => 0,
    };
    if text_len > MAX_CHECK_TEXT {
        // A check travels in one mailbox request.
        return Err(Fault::at(path, format!("its texts together are longer than {MAX_CHECK_TEXT} bytes")));
    }
    let port = int(raw.port, 0u16, 1..=65_535, &path.key("port"))?;
    let interval_ms: u32 = int(raw.interval_ms, 2000, 10..=MAX_CHECK_MS, &path.key("interval_ms"))?;
    let timeout_ms: u32 = int(raw.timeout_ms, interval_ms.min(1000), 1..=MAX_CHECK_MS, &path.key("timeout_ms"))?;
    if timeout_ms > interval_ms {
        return Err(Fault::at(
            &path.key("timeout_ms"),
            format!("a check must end before the next starts: at most interval_ms = {interval_ms}, got {timeout_ms}"),
        ));
    }
    let rise = int(raw.rise, 2, 1..=MAX_RISE_FALL, &path.key("rise"))?;
    let fall = int(raw.fall, 3, 1..=MAX_RISE_FALL, &path.key("fall"))?;
    let on_failure = match raw.on_failure.as_deref().unwrap_or("inhibit") {
        "inhibit" => OnFailure::Inhibit,
        "remove" => OnFailure::Remove,
        other => {
            return Err(Fault::at(
                &path.key("on_failure"),
                format!("expected \"inhibit\" or \"remove\", got \"{other}\""),
            ))
        }
    };
    Ok(HealthCheck { probe, port, interval_ms, timeout_ms, rise, fall, on_failure })
}

/// `c` as its table would read.
pub(crate) fn raw_check(c: &HealthCheck) -> RawCheck {
    let i = |v: i64| Some(Int(v));
    let mut raw = RawCheck {
        kind: Some(c.probe.name().to_owned()),
        port: (c.port > 0).then(|| Int(i64::from(c.port))),
        interval_ms: i(i64::from(c.interval_ms)),
        timeout_ms: i(i64::from(c.timeout_ms)),
        rise: i(i64::from(c.rise)),
        fall: i(i64::from(c.fall)),
        on_failure: Some(c.on_failure.name().to_owned()),
        ..RawCheck::default()
    };
    match &c.probe {
        Probe::Tcp | Probe::Icmp => {}
        Probe::Http { path, status, body } => {
            raw.path = Some(path.clone());
            raw.status = i(i64::from(*status));
            raw.body = (!body.is_empty()).then(|| body.clone());
        }
        Probe::Udp { send, expect } => {
            raw.send = Some(send.clone());
            raw.expect = (!expect.is_empty()).then(|| expect.clone());
        }
        Probe::Command { argv } => raw.command = Some(argv.clone()),
    }
    raw
}

/// A check as a command line gives it: the keys of the table, each optional.
#[derive(Debug, Default, Clone)]
pub struct CheckSpec {
    pub kind: Option<String>,
    pub port: Option<i64>,
    pub interval_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    pub on_failure: Option<String>,
    pub path: Option<String>,
    pub status: Option<i64>,
    pub body: Option<String>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub command: Option<Vec<String>>,
}

impl HealthCheck {
    /// The check `spec` describes, with the file's defaults and rules.
    ///
    /// # Errors
    /// What is wrong, naming the key as the file would (`check.timeout_ms: ...`).
    pub fn from_spec(spec: CheckSpec) -> Result<HealthCheck, String> {
        let raw = RawCheck {
            kind: spec.kind,
            port: spec.port.map(Int),
            interval_ms: spec.interval_ms.map(Int),
            timeout_ms: spec.timeout_ms.map(Int),
            rise: spec.rise.map(Int),
            fall: spec.fall.map(Int),
            on_failure: spec.on_failure,
            path: spec.path,
            status: spec.status.map(Int),
            body: spec.body,
            send: spec.send,
            expect: spec.expect,
            command: spec.command,
        };
        check(raw, &KeyPath::root().key("check")).map_err(|f| format!("{}: {}", f.path, f.message))
    }

    /// A check that did not come from a file (a mailbox request) as the file's rules make it:
    /// checked, with its defaults filled in (an empty HTTP path is `/`).
    ///
    /// # Errors
    /// What is wrong, naming the key as the file would (`check.timeout_ms: ...`).
    pub fn normalised(&self) -> Result<HealthCheck, String> {
        check(raw_check(self), &KeyPath::root().key("check")).map_err(|f| format!("{}: {}", f.path, f.message))
    }

    /// Its keys as a `[services.check]` table holds them, in order (for `config dump`).
    pub fn table(&self) -> toml_edit::Table {
        use toml_edit::value;
        let raw = raw_check(self);
        let mut t = toml_edit::Table::new();
        let ints = [
            ("port", raw.port),
            ("interval_ms", raw.interval_ms),
            ("timeout_ms", raw.timeout_ms),
            ("rise", raw.rise),
            ("fall", raw.fall),
            ("status", raw.status),
        ];
        t.insert("type", value(self.probe.name()));
        for (k, v) in [("path", raw.path), ("body", raw.body), ("send", raw.send), ("expect", raw.expect)] {
            if let Some(v) = v {
                t.insert(k, value(v));
            }
        }
        if let Some(argv) = raw.command {
            t.insert("command", value(argv.iter().collect::<toml_edit::Array>()));
        }
        for (k, v) in ints {
            if let Some(Int(v)) = v {
                t.insert(k, value(v));
            }
        }
        t.insert("on_failure", value(self.on_failure.name()));
        t
    }

    /// One line for listings: `http /health 200 every 1000 ms, timeout 500 ms, rise 2, fall 3, inhibit`.
    pub fn summary(&self) -> String {
        let what = match &self.probe {
            Probe::Http { path, status, body } if body.is_empty() => format!("http GET {path} {status}"),
            Probe::Http { path, status, body } => format!("http GET {path} {status} {body:?}"),
            Probe::Udp { send, expect } => format!("udp {send:?} -> {expect:?}"),
            Probe::Command { argv } => format!("command {}", argv.join(" ")),
            p => p.name().to_owned(),
        };
        let port = if self.port > 0 { format!(" port {}", self.port) } else { String::new() };
        format!(
            "{what}{port} every {} ms, timeout {} ms, rise {}, fall {}, {}",
            self.interval_ms,
            self.timeout_ms,
            self.rise,
            self.fall,
            self.on_failure.name()
        )
    }
}

/// An integer in `range` (`default` when absent).
fn int<T: TryFrom<i64>>(
    v: Option<Int>,
    default: T,
    range: std::ops::RangeInclusive<i64>,
    path: &KeyPath,
) -> Result<T, Fault> {
    crate::validate::int(v, default, range, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HealthCheck, String> {
        let raw: RawCheck = toml_edit::de::from_str(text).map_err(|e| e.to_string())?;
        check(raw, &KeyPath::root().key("check")).map_err(|f| format!("{}: {}", f.path, f.message))
    }

    #[test]
    fn defaults_and_every_type() {
        let c = parse("type = \"tcp\"").unwrap();
        assert_eq!((c.port, c.interval_ms, c.timeout_ms, c.rise, c.fall), (0, 2000, 1000, 2, 3));
        assert_eq!(c.on_failure, OnFailure::Inhibit);
        let h =
            parse("type = \"http\"\npath = \"/health\"\nbody = \"ok\"\nport = 8081\non_failure = \"remove\"").unwrap();
        assert_eq!(h.probe, Probe::Http { path: "/health".into(), status: 200, body: "ok".into() });
        assert_eq!((h.port, h.on_failure), (8081, OnFailure::Remove));
        assert_eq!(
            parse("type = \"http\"").unwrap().probe,
            Probe::Http { path: "/".into(), status: 200, body: String::new() }
        );
        let u = parse("type = \"udp\"\nsend = \"ping\"\nexpect = \"pong\"\ninterval_ms = 100").unwrap();
        assert_eq!((u.probe.clone(), u.timeout_ms), (Probe::Udp { send: "ping".into(), expect: "pong".into() }, 100));
        assert_eq!(parse("type = \"icmp\"").unwrap().probe, Probe::Icmp);
        let m = parse("type = \"command\"\ncommand = [\"/bin/true\", \"x\"]").unwrap();
        assert_eq!(m.probe, Probe::Command { argv: vec!["/bin/true".into(), "x".into()] });
        // Each one back to its table and through the rules again: the same check.
        for c in [c, h, u, m] {
            assert_eq!(check(raw_check(&c), &KeyPath::root()).unwrap(), c);
            assert_eq!(parse(&c.table().to_string()).unwrap(), c, "{}", c.table());
            assert_eq!(c.normalised().unwrap(), c);
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, says) in [
            ("port = 80", "check.type: missing; expected \"tcp\""),
            (
                "type = \"smtp\"",
                "check.type: expected \"tcp\", \"http\", \"udp\", \"icmp\" or \"command\", got \"smtp\"",
            ),
            (
                "type = \"tcp\"\npath = \"/\"",
                "check.path: `path` belongs to a \"http\" check; this check's type is \"tcp\"",
            ),
            ("type = \"http\"\nsend = \"x\"", "check.send: `send` belongs to a \"udp\" check"),
            ("type = \"http\"\npath = \"health\"", "check.path: expected an absolute path"),
            ("type = \"http\"\npath = \"/a b\"", "check.path: expected an absolute path"),
            ("type = \"http\"\nstatus = 600", "check.status: expected an integer in 100..=599, got 600"),
            ("type = \"udp\"", "check.send: missing"),
            ("type = \"command\"", "check.command: expected the program's absolute path"),
            ("type = \"command\"\ncommand = [\"true\"]", "check.command: expected the program's absolute path"),
            ("type = \"tcp\"\ninterval_ms = 5", "check.interval_ms: expected an integer in 10..=3600000, got 5"),
            (
                "type = \"tcp\"\ninterval_ms = 500\ntimeout_ms = 600",
                "check.timeout_ms: a check must end before the next starts: at most interval_ms = 500, got 600",
            ),
            ("type = \"tcp\"\nrise = 0", "check.rise: expected an integer in 1..=100, got 0"),
            ("type = \"tcp\"\nfall = 101", "check.fall: expected an integer in 1..=100"),
            ("type = \"tcp\"\nport = 0", "check.port: expected an integer in 1..=65535, got 0"),
            (
                "type = \"tcp\"\non_failure = \"drop\"",
                "check.on_failure: expected \"inhibit\" or \"remove\", got \"drop\"",
            ),
            ("type = \"tcp\"\ndelay = 1", "unknown field `delay`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let long = format!("type = \"udp\"\nsend = \"{}\"", "x".repeat(MAX_CHECK_TEXT + 1));
        assert!(parse(&long).unwrap_err().contains("check.send: longer than 1024 bytes"));
        let both = format!("type = \"http\"\npath = \"/{}\"\nbody = \"{}\"", "p".repeat(600), "b".repeat(600));
        assert!(parse(&both).unwrap_err().contains("check: its texts together are longer than 1024 bytes"));
        // A request's check is held to the same rules.
        let bad = HealthCheck {
            probe: Probe::Tcp,
            port: 0,
            interval_ms: 100,
            timeout_ms: 200,
            rise: 1,
            fall: 1,
            on_failure: OnFailure::Inhibit,
        };
        let refused = bad.normalised().unwrap_err();
        assert!(refused.starts_with("check.timeout_ms: a check must end"), "{refused}");
        let empty = HealthCheck {
            probe: Probe::Http { path: String::new(), status: 200, body: String::new() },
            timeout_ms: 100,
            ..bad
        };
        assert_eq!(
            empty.normalised().unwrap().probe,
            Probe::Http { path: "/".into(), status: 200, body: String::new() }
        );
    }
}
