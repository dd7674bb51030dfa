//! Errors: [`ConfError`] (public), and the key paths and located faults behind it.
//!
//! Invariant: every [`ConfError`] produced from TOML text carries a 1-based line of that
//! text; line 0 is reserved for errors that have no text (the file could not be read).

use std::fmt;
use std::ops::Range;

/// Why a configuration was refused, and where.
///
/// Displayed as `{file}:{line}: {key}: {message}`, or `{file}:{line}: {message}` when the
/// error is not about one key (a TOML syntax error, an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", KeyPrefix(key))]
pub struct ConfError {
    /// The file name given to [`Config::from_str`](crate::Config::from_str) (or the path read).
    pub file: String,
    /// 1-based line of the offending key (or of the table header lacking a required key);
    /// 0 when there is no text to point into.
    pub line: usize,
    /// Key path of the offending item (`ports[1].queues`), or empty.
    pub key: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// Writes `key: `, or nothing for an empty key.
struct KeyPrefix<'a>(&'a str);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key of a table.
    Key(String),
    /// An index into an array (or array of tables).
    Index(usize),
}

/// A path from the document root to a key or array element: `groups[0].lcores[1].rx[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The document root (displayed as the empty string).
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// The steps, root first.
    pub(crate) fn segs(&self) -> &[Seg] {
        &self.0
    }

    pub(crate) fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// An error before it is located: what is wrong, and the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The offending key (or, for a missing key, the key that should be there).
    pub(crate) path: KeyPath,
    pub(crate) message: String,
    /// Byte range the parser blamed, used when `path` cannot be found in the document.
    pub(crate) span: Option<Range<usize>>,
}

impl Fault {
    /// A fault about the key at `path`.
    pub(crate) fn at(path: &KeyPath, message: impl Into<String>) -> Self {
        Self { path: path.clone(), message: message.into(), span: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_key() {
        let mut e = ConfError { file: "a.toml".into(), line: 3, key: "ports[1].queues".into(), message: "bad".into() };
        assert_eq!(e.to_string(), "a.toml:3: ports[1].queues: bad");
        e.key.clear();
        assert_eq!(e.to_string(), "a.toml:3: bad");
    }

    #[test]
    fn key_path_display() {
        let p = KeyPath::root().key("groups").index(0).key("lcores").index(1).key("rx").index(0);
        assert_eq!(p.to_string(), "groups[0].lcores[1].rx[0]");
        assert_eq!(KeyPath::root().to_string(), "");
    }
}
