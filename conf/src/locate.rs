//! From TOML text to a raw document, and from key paths back to lines of that text.
//!
//! The text is parsed once, into a span-keeping [`ImDocument`]; serde reads the raw structs
//! from a copy of it, and every later error names a [`KeyPath`] that [`Located::error`]
//! looks up in the document to find its line.
//!
//! Invariants: a path that exists in the document is located at its key (for an array
//! element, at the element; for a table, at its header); a path that does not exist (a
//! missing key) is located at the deepest table on the way that does, i.e. the header of the
//! table lacking the key, or line 1 when that is the document root.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

use crate::error::{ConfError, Fault, KeyPath, Seg};
use crate::raw::RawConfig;

/// TOML text with its parse, for turning [`Fault`]s into located [`ConfError`]s.
pub(crate) struct Located<'a> {
    source: &'a str,
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Located<'a> {
    /// Parses `text` and deserialises the raw document from it.
    ///
    /// On error the returned [`Located`] is still usable to report it.
    pub(crate) fn parse(text: &'a str, source: &'a str) -> (Self, Result<RawConfig, Fault>) {
        let doc = match ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let fault = Fault { path: KeyPath::root(), message: tidy(e.message()), span: e.span() };
                let this = Self { source, text, doc: None };
                return (this, Err(fault));
            }
        };
        let de = toml_edit::de::Deserializer::from(doc.clone());
        let raw = serde_path_to_error::deserialize(de).map_err(serde_fault);
        let this = Self { source, text, doc: Some(doc) };
        (this, raw)
    }

    /// Locates `fault` and makes the public error of it.
    pub(crate) fn error(&self, fault: Fault) -> ConfError {
        let located = self.doc.as_ref().map(|doc| locate(doc, &fault.path));
        let span = match (located, fault.span) {
            (Some((span, true)), _) => Some(span),
            (_, Some(span)) => Some(span),
            (Some((span, false)), None) => Some(span),
            (None, None) => None,
        };
        let line = span.map_or(1, |s| line_of(self.text, s.start));
        ConfError { file: self.source.to_owned(), line, key: fault.path.to_string(), message: fault.message }
    }
}

/// A serde error as a [`Fault`]: its key path, with the unknown key appended for an unknown
/// field, and its message in the terms of the file format (keys, not fields).
fn serde_fault(e: serde_path_to_error::Error<toml_edit::de::Error>) -> Fault {
    use serde_path_to_error::Segment;

    let mut path = KeyPath::root();
    for seg in e.path().iter() {
        match seg {
            Segment::Seq { index } => path.push(Seg::Index(*index)),
            Segment::Map { key } => path.push(Seg::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => break,
        }
    }
    let inner = e.into_inner();
    let mut message = tidy(inner.message());
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, tail)) = rest.split_once('`') {
            // serde_path_to_error may or may not have recorded the key itself.
            if path.segs().last() != Some(&Seg::Key(key.to_owned())) {
                path.push(Seg::Key(key.to_owned()));
            }
            let accepted = tail.strip_prefix(", expected one of ").or_else(|| tail.strip_prefix(", expected "));
            message = match accepted {
                Some(list) => format!("unknown key `{key}`; accepted keys: {}", list.replace(" or ", ", ")),
                None => format!("unknown key `{key}`{tail}"),
            };
        }
    }
    Fault { path, message, span: inner.span() }
}

/// A parser message on one line.
fn tidy(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line of byte offset `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The span of `path` in `doc`, and whether the whole path was found (otherwise the span is
/// that of the deepest item found on the way).
fn locate(doc: &ImDocument<&str>, path: &KeyPath) -> (Range<usize>, bool) {
    let mut best = 0..0;
    let mut node = Node::Item(doc.as_item());
    for seg in path.segs() {
        let Some((span, child)) = node.child(seg) else {
            return (best, false);
        };
        if let Some(span) = span {
            best = span;
        }
        node = child;
    }
    (best, true)
}

/// A place in the document that a path can walk through.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    /// An entry of an array of tables.
    Table(&'d Table),
    /// An element of an inline array.
    Value(&'d Value),
}

impl<'d> Node<'d> {
    /// The child at `seg`, with the span that locates it: a table's header, else its key;
    /// an array element itself.
    fn child(self, seg: &Seg) -> Option<(Option<Range<usize>>, Node<'d>)> {
        match seg {
            Seg::Key(key) => {
                let table: &'d dyn TableLike = match self {
                    Node::Item(i) => i.as_table_like()?,
                    Node::Table(t) => t,
                    Node::Value(v) => v.as_inline_table()?,
                };
                let (k, item) = table.get_key_value(key)?;
                let span = match item {
                    Item::Table(t) => t.span(),
                    Item::ArrayOfTables(a) => a.span(),
                    _ => None,
                };
                Some((span.or_else(|| k.span()), Node::Item(item)))
            }
            Seg::Index(index) => match self {
                Node::Item(Item::ArrayOfTables(a)) => {
                    let t = a.get(*index)?;
                    Some((t.span(), Node::Table(t)))
                }
                Node::Item(Item::Value(v)) | Node::Value(v) => {
                    let v = v.as_array()?.get(*index)?;
                    Some((v.span(), Node::Value(v)))
                }
                _ => None,
            },
        }
    }
}
