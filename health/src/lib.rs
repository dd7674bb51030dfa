//! `dpvs-health`: runs each checked service's health check on each of its real servers, and
//! tells the primary (through the control mailbox, as any change) when one goes down or comes
//! back. It writes what it found, and why, to the instance's health table in shared memory
//! (`shm_layout::health`), which `dpvsctl service list` and `ipvsadm -ln` show.
//!
//! What the workers act on is the configuration's `down` flag of a real server, so a checker
//! that dies leaves forwarding as it was; its successor reads the flags back (a real server down
//! stays down until `rise` successes) and goes on.
//!
//! Modules: this file holds the pure part (the [`Tracker`] of each real server's results, and
//! [`Checks`], the set of trackers kept in step with the configuration, with the changes that
//! bring the configuration to what they found); `probe` the probes (async, on one thread);
//! `run` the loop that ties them to the instance.
#![forbid(unsafe_code)]

pub mod probe;
pub mod run;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use conf::HealthCheck;
use mailbox::proto::{Change, ServiceKey};
use shm_layout::health::{Health, HealthState};

/// A checked real server: its service and its address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub protocol: u8,
    pub vip: IpAddr,
    pub vport: u16,
    pub addr: IpAddr,
    pub port: u16,
}

impl Target {
    /// The service's key.
    pub fn service(&self) -> ServiceKey {
        let protocol = if self.protocol == 17 { conf::Protocol::Udp } else { conf::Protocol::Tcp };
        ServiceKey { protocol, vip: self.vip, port: self.vport }
    }
}

/// One real server's results and state.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Its service's check (as the configuration last said).
    pub check: HealthCheck,
    pub state: HealthState,
    /// Whether the last result was a success, and how many in a row were alike.
    last_ok: bool,
    streak: u16,
    /// Times it went down, checks made.
    pub flaps: u32,
    pub checks: u32,
    /// Wall clock of the last result and the last change of state, ms.
    pub checked_ms: u64,
    pub since_ms: u64,
    /// How long the last check took.
    pub took: Duration,
    /// The last failure's reason.
    pub error: String,
    /// When its next check is due.
    pub due: Instant,
    /// Whether a check of it is under way.
    pub running: bool,
}

impl Tracker {
    /// A real server first seen (`down`: the configuration says a checker before this one took
    /// it out), its first check due at `due`.
    pub fn new(check: HealthCheck, down: bool, due: Instant, now_ms: u64) -> Tracker {
        Tracker {
            check,
            state: if down { HealthState::Down } else { HealthState::Unknown },
            last_ok: !down,
            streak: 0,
            flaps: 0,
            checks: 0,
            checked_ms: 0,
            since_ms: now_ms,
            took: Duration::ZERO,
            error: String::new(),
            due,
            running: false,
        }
    }

    /// Takes one check's result; returns whether the state changed. Down after `fall` failures
    /// in a row (a real server not checked yet, too); up after `rise` successes in a row, or at
    /// the first success of one not checked yet (it takes connections meanwhile, as keepalived
    /// presumes a new one alive).
    pub fn record(&mut self, result: Result<(), String>, took: Duration, now_ms: u64) -> bool {
        let ok = result.is_ok();
        if let Err(e) = result {
            self.error = e;
        }
        self.streak = if ok == self.last_ok { self.streak.saturating_add(1) } else { 1 };
        self.last_ok = ok;
        self.checks = self.checks.wrapping_add(1);
        self.checked_ms = now_ms;
        self.took = took;
        let next = match self.state {
            HealthState::Unknown if ok => HealthState::Up,
            HealthState::Down if ok && u32::from(self.streak) >= self.check.rise => HealthState::Up,
            HealthState::Up | HealthState::Unknown if !ok && u32::from(self.streak) >= self.check.fall => {
                self.flaps = self.flaps.wrapping_add(1);
                HealthState::Down
            }
            s => s,
        };
        let changed = next != self.state;
        if changed {
            self.state = next;
            self.since_ms = now_ms;
        }
        changed
    }

    /// Whether it should be out of its service's scheduling.
    pub fn down(&self) -> bool {
        self.state == HealthState::Down
    }

    /// Its health table entry.
    pub fn health(&self, t: &Target) -> Health {
        Health {
            protocol: t.protocol,
            vip: t.vip,
            vport: t.vport,
            real: t.addr,
            rport: t.port,
            state: self.state,
            last_ok: self.last_ok,
            in_a_row: self.streak,
            checked_ms: self.checked_ms,
            since_ms: self.since_ms,
            flaps: self.flaps,
            checks: self.checks,
            took_us: self.took.as_micros().try_into().unwrap_or(u64::MAX),
            error: self.error.clone(),
        }
    }
}

/// The trackers of every checked real server, in step with the configuration.
#[derive(Debug, Default)]
pub struct Checks {
    pub trackers: BTreeMap<Target, Tracker>,
}

/// When the first check of `t` is due: spread over the interval by its key, so that a
/// thousand real servers are not all probed in the same millisecond.
fn first_due(t: &Target, interval_ms: u32, now: Instant) -> Instant {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    now + Duration::from_millis(h.finish() % u64::from(interval_ms.max(1)))
}

impl Checks {
    /// Follows the configuration `rt`: trackers for the real servers of services with a check
    /// (new ones start as the configuration's `down` says), none for the others; a tracker
    /// whose service's check changed takes the new one and keeps its state. Returns whether the
    /// set of trackers changed.
    pub fn follow(&mut self, rt: &conf::Runtime, now: Instant, now_ms: u64) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut changed = false;
        for s in &rt.services {
            let Some(check) = &s.check else { continue };
            for r in &s.reals {
                let t = Target { protocol: s.protocol.number(), vip: s.vip, vport: s.port, addr: r.addr, port: r.port };
                seen.insert(t);
                match self.trackers.get_mut(&t) {
                    Some(k) if k.check != *check => {
                        if k.check.interval_ms != check.interval_ms {
                            k.due = k.due.min(first_due(&t, check.interval_ms, now));
                        }
                        k.check = check.clone();
                    }
                    Some(_) => {}
                    None => {
                        let due = first_due(&t, check.interval_ms, now);
                        self.trackers.insert(t, Tracker::new(check.clone(), r.down, due, now_ms));
                        changed = true;
                    }
                }
            }
        }
        let before = self.trackers.len();
        self.trackers.retain(|t, _| seen.contains(t));
        changed || self.trackers.len() != before
    }

    /// The changes that bring `rt` to what the trackers found: a `RealHealth` for each checked
    /// real server whose `down` differs from its tracker's.
    pub fn changes(&self, rt: &conf::Runtime) -> Vec<Change> {
        let mut out = Vec::new();
        for s in &rt.services {
            if s.check.is_none() {
                continue;
            }
            for r in &s.reals {
                let t = Target { protocol: s.protocol.number(), vip: s.vip, vport: s.port, addr: r.addr, port: r.port };
                if let Some(k) = self.trackers.get(&t) {
                    if k.down() != r.down {
                        let service = t.service();
                        out.push(Change::RealHealth { service, addr: r.addr, port: r.port, down: k.down() });
                    }
                }
            }
        }
        out
    }

    /// Each virtual address of `rt` and whether it is worth announcing (the `--vip-hook`): up
    /// while a service on it has a real server its check has not taken out (an unchecked real
    /// server counts as alive), down when none has.
    pub fn vips(&self, rt: &conf::Runtime) -> BTreeMap<IpAddr, bool> {
        let mut out = BTreeMap::new();
        for s in &rt.services {
            let alive = s.reals.iter().any(|r| {
                let t = Target { protocol: s.protocol.number(), vip: s.vip, vport: s.port, addr: r.addr, port: r.port };
                s.check.is_none() || self.trackers.get(&t).is_none_or(|k| !k.down())
            });
            *out.entry(s.vip).or_insert(false) |= alive;
        }
        out
    }

    /// The real servers whose check is due at `now` and not running, marked running.
    pub fn due(&mut self, now: Instant) -> Vec<(Target, HealthCheck)> {
        let mut out = Vec::new();
        for (t, k) in &mut self.trackers {
            if !k.running && k.due <= now {
                k.running = true;
                out.push((*t, k.check.clone()));
            }
        }
        out
    }

    /// Takes the result of the check of `t` that started at `started`; the next is due one
    /// interval after that start. Returns whether its state changed (false for a real server
    /// no longer checked).
    pub fn finish(&mut self, t: &Target, started: Instant, result: Result<(), String>, now_ms: u64) -> bool {
        let Some(k) = self.trackers.get_mut(t) else { return false };
        k.running = false;
        k.due = started + Duration::from_millis(u64::from(k.check.interval_ms));
        k.record(result, started.elapsed(), now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rise: u32, fall: u32) -> HealthCheck {
        HealthCheck {
            probe: conf::Probe::Tcp,
            port: 0,
            interval_ms: 1000,
            timeout_ms: 500,
            rise,
            fall,
            on_failure: conf::OnFailure::Inhibit,
        }
    }

    fn fail() -> Result<(), String> {
        Err("connect: refused".into())
    }

    #[test]
    fn fall_failures_take_it_down_and_rise_successes_bring_it_back() {
        let now = Instant::now();
        let mut k = Tracker::new(check(2, 3), false, now, 0);
        assert_eq!(k.state, HealthState::Unknown);
        assert!(k.record(Ok(()), Duration::ZERO, 1), "a first success: up at once");
        assert_eq!(k.state, HealthState::Up);
        assert!(!k.record(fail(), Duration::ZERO, 2));
        assert!(!k.record(fail(), Duration::ZERO, 3));
        // A success in between starts the count again.
        assert!(!k.record(Ok(()), Duration::ZERO, 4));
        assert!(!k.record(fail(), Duration::ZERO, 5));
        assert!(!k.record(fail(), Duration::ZERO, 6));
        assert!(k.record(fail(), Duration::ZERO, 7), "three failures in a row");
        assert_eq!((k.state, k.flaps, k.since_ms, k.error.as_str()), (HealthState::Down, 1, 7, "connect: refused"));
        assert!(!k.record(Ok(()), Duration::ZERO, 8));
        assert!(k.record(Ok(()), Duration::ZERO, 9), "two successes in a row");
        assert_eq!((k.state, k.checks, k.error.as_str()), (HealthState::Up, 9, "connect: refused"));
        // Not checked yet and failing: down after `fall` failures.
        let mut k = Tracker::new(check(2, 2), false, now, 0);
        assert!(!k.record(fail(), Duration::ZERO, 1));
        assert!(k.record(fail(), Duration::ZERO, 2));
        // Down by the configuration (a checker before this one): `rise` successes to come back.
        let mut k = Tracker::new(check(3, 1), true, now, 0);
        assert_eq!(k.state, HealthState::Down);
        assert!(!k.record(Ok(()), Duration::ZERO, 1) && !k.record(Ok(()), Duration::ZERO, 2));
        assert!(k.record(Ok(()), Duration::ZERO, 3));
    }

    #[test]
    fn the_trackers_follow_the_configuration_and_say_what_to_change() {
        let cfg = conf::Config::embedded_default();
        let mut rt = cfg.runtime();
        let (now, mut checks) = (Instant::now(), Checks::default());
        assert!(!checks.follow(&rt, now, 0), "no service checks");
        rt.services[0].check = Some(check(1, 1));
        assert!(checks.follow(&rt, now, 0));
        assert_eq!(checks.trackers.len(), 1);
        let t = *checks.trackers.keys().next().unwrap();
        assert_eq!((t.addr, t.port, t.vport), ("198.18.1.2".parse().unwrap(), 8080, 80));
        assert!(checks.changes(&rt).is_empty());
        // Due within an interval; one check at a time.
        let later = now + Duration::from_millis(1000);
        assert_eq!(checks.due(later).len(), 1);
        assert!(checks.due(later).is_empty());
        assert!(checks.finish(&t, later, fail(), 5));
        assert_eq!(
            checks.changes(&rt),
            vec![Change::RealHealth { service: t.service(), addr: t.addr, port: 8080, down: true }]
        );
        rt.services[0].reals[0].down = true;
        assert!(checks.changes(&rt).is_empty(), "the configuration says so now");
        assert_eq!(checks.trackers[&t].due, later + Duration::from_millis(1000));
        // A changed check keeps the state; no check, no tracker.
        rt.services[0].check = Some(check(5, 5));
        assert!(!checks.follow(&rt, later, 6));
        assert_eq!((checks.trackers[&t].state, checks.trackers[&t].check.rise), (HealthState::Down, 5));
        rt.services[0].check = None;
        assert!(checks.follow(&rt, later, 7));
        assert!(checks.trackers.is_empty());
        // A new checker finds the real server down in the configuration: it starts down.
        rt.services[0].check = Some(check(1, 1));
        checks.follow(&rt, later, 8);
        assert_eq!(checks.trackers[&t].state, HealthState::Down);
        assert!(checks.changes(&rt).is_empty());
        // Its VIP is down: its one service's one real server is.
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        assert_eq!(checks.vips(&rt), BTreeMap::from([(vip, false)]));
        // Another service on the VIP with an unchecked real server keeps it up.
        let mut other = (*rt.services[0]).clone();
        other.port = 81;
        other.check = None;
        rt.services.push(other.into());
        assert_eq!(checks.vips(&rt), BTreeMap::from([(vip, true)]));
    }
}
