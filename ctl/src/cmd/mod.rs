//! One module per command group. Each builds a serialisable view of shared memory, then
//! prints it as a table or as JSON.

pub mod config;
pub mod conn;
pub mod control;
pub mod link;
pub mod service;
pub mod stats;
pub mod status;
pub mod top;
pub mod worker;

use std::fmt::Write;

use serde::Serialize;

/// Two samples `interval` apart, and the seconds really between them (from the middle of one
/// sample to the middle of the other: a late wake-up or a slow sample stretches the interval,
/// and rates divide by what it was).
pub fn sampled<T>(interval: std::time::Duration, sample: impl Fn() -> T) -> (T, T, f64) {
    let timed = || {
        let t0 = std::time::Instant::now();
        let v = sample();
        (v, t0 + t0.elapsed() / 2)
    };
    let (before, at0) = timed();
    std::thread::sleep(interval);
    let (after, at1) = timed();
    (before, after, at1.duration_since(at0).as_secs_f64().max(1e-6))
}

/// Renders `view` as pretty JSON, or as text with `text`.
pub fn render<T: Serialize>(view: &T, json: bool, text: impl Fn(&T) -> String) -> String {
    if json {
        // Views are plain structs of strings and numbers: encoding cannot fail.
        let mut s = serde_json::to_string_pretty(view).unwrap_or_default();
        s.push('\n');
        s
    } else {
        text(view)
    }
}

/// Formats nanoseconds for people: `850us`, `12.3ms`, `4.0s`, `3m 20s`, `2h 05m`.
pub fn human_ns(ns: u64) -> String {
    match ns {
        n if n < 1_000_000 => format!("{}us", n / 1000),
        n if n < 1_000_000_000 => format!("{:.1}ms", n as f64 / 1e6),
        n if n < 60_000_000_000 => format!("{:.1}s", n as f64 / 1e9),
        n if n < 3_600_000_000_000 => format!("{}m {:02}s", n / 60_000_000_000, n / 1_000_000_000 % 60),
        n => format!("{}h {:02}m", n / 3_600_000_000_000, n / 60_000_000_000 % 60),
    }
}

/// Renders rows as a left-aligned table with a header line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        let mut s = String::new();
        for (c, w) in cells.zip(&widths) {
            if !first {
                s.push_str("  ");
            }
            first = false;
            let _ = write!(s, "{c:<w$}");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_ns(850_000), "850us");
        assert_eq!(human_ns(12_340_000), "12.3ms");
        assert_eq!(human_ns(4_000_000_000), "4.0s");
        assert_eq!(human_ns(200_000_000_000), "3m 20s");
        assert_eq!(human_ns(7_500_000_000_000), "2h 05m");
    }

    /// Rates divide by the time between the samples, which is at least the interval slept,
    /// and counts the samples' own time (here each sample takes 30 ms: half of each counts).
    #[test]
    fn two_samples_and_the_time_between_them() {
        let n = std::cell::Cell::new(0);
        let (a, b, secs) = sampled(std::time::Duration::from_millis(20), || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            n.set(n.get() + 1);
            n.get()
        });
        assert_eq!((a, b), (1, 2));
        assert!(secs >= 0.05, "{secs}");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()], vec!["q".into(), "22".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\nq    22\n");
    }
}
