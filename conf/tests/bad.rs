//! Every file in `tests/bad/` is refused with the error its first line announces:
//!
//! ```text
//! # expect: <line>: <key>: <substring of the message>
//! ```
//!
//! and the error displays as `<file>:<line>: <key>: <message>` (for an empty key, written
//! `<line>: : <substring>`, as `<file>:<line>: <message>`).

use std::fs;
use std::path::{Path, PathBuf};

use conf::Config;

/// One corpus file's announced error.
struct Expect {
    line: usize,
    key: String,
    substring: String,
}

fn expectation(path: &Path) -> Expect {
    let text = fs::read_to_string(path).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: first line is not `# expect: ...`", path.display()));
    let mut parts = rest.splitn(3, ": ");
    let (Some(line), Some(key), Some(substring)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("{}: expected `# expect: <line>: <key>: <message>`", path.display());
    };
    Expect { line: line.parse().expect("line number"), key: key.to_owned(), substring: substring.to_owned() }
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/bad exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_file_is_refused_as_announced() {
    let files = corpus();
    assert!(files.len() >= 25, "only {} files in tests/bad", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
        let want = expectation(path);
        let shown = match Config::from_file(path) {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let prefix = if want.key.is_empty() {
            format!("{name}:{}: ", want.line)
        } else {
            format!("{name}:{}: {}: ", want.line, want.key)
        };
        let located = shown.find(&prefix);
        let ok = located.is_some_and(|at| shown[at + prefix.len()..].contains(&want.substring));
        if !ok {
            failures.push(format!("{name}:\n    want {prefix}...{}...\n    got  {shown}", want.substring));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn errors_have_their_fields() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad/rx-unknown-port.toml");
    let e = Config::from_file(&path).expect_err("refused");
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.line, 32);
    assert_eq!(e.key, "groups[0].lcores[0].rx[1]");
    assert_eq!(e.message, "port \"dpdk9\" is not defined (ports: dpdk0, dpdk1)");
}
