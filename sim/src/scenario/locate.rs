//! Where a setting is written in a scenario's text.
//!
//! Serde tells us what a value is but not where it was written, so after a
//! successful parse the text is parsed once more with `toml_edit`, which
//! keeps the span of every key and table, and an error about a setting is
//! placed at its key. A setting is named by a dotted path with array
//! indexes: `disk.torn_write_prob`, `faults.random.crash`,
//! `faults.at[2].at_ms`, `cluster.config.partitions`.

use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a setting's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A key of a table.
    Key(&'a str),
    /// An element of an array (of tables).
    Index(usize),
}

/// Splits `faults.at[2].at_ms` into its steps; `None` when it is not
/// such a path.
pub fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
        if key.is_empty() {
            return None;
        }
        out.push(Step::Key(key));
        if !indexes.is_empty() {
            for i in format!("[{indexes}").split('[').skip(1) {
                out.push(Step::Index(i.strip_suffix(']')?.parse().ok()?));
            }
        }
    }
    Some(out)
}

/// The parsed text with its spans.
pub struct Locator {
    doc: Option<ImDocument<String>>,
}

impl Locator {
    /// Parses `text` (which serde has already accepted).
    pub fn new(text: &str) -> Locator {
        Locator {
            doc: ImDocument::parse(text.to_string()).ok(),
        }
    }

    /// Where `path` is written: `Ok` with the byte offset of its key (of
    /// the table, for an array element) when the whole path is in the
    /// text, else `Err` with the offset of the deepest part of it that is
    /// (`None` when not even its first key is).
    pub fn find(&self, path: &str) -> Result<usize, Option<usize>> {
        let (Some(doc), Some(steps)) = (&self.doc, steps(path)) else {
            return Err(None);
        };
        let mut best = None;
        let mut at = Place::Table(doc.as_table());
        for step in steps {
            let (next, span) = match (at, step) {
                (Place::Table(t), Step::Key(k)) => match t.get_key_value(k) {
                    // A table's place is its `[header]` (none when it is
                    // implicit); an array of tables' is its elements'.
                    Some((_, Item::Table(t))) => (Place::Table(t), t.span()),
                    Some((_, Item::ArrayOfTables(a))) => (Place::Tables(a), None),
                    Some((key, item)) => (Place::of_item(item), key.span()),
                    None => return Err(best),
                },
                (Place::Inline(t), Step::Key(k)) => match t.get_key_value(k) {
                    Some((key, item)) => (Place::of_item(item), key.span()),
                    None => return Err(best),
                },
                (Place::Tables(a), Step::Index(i)) => match a.get(i) {
                    Some(t) => (Place::Table(t), t.span()),
                    None => return Err(best),
                },
                (Place::Array(a), Step::Index(i)) => match a.get(i) {
                    Some(v) => (Place::of_value(v), v.span()),
                    None => return Err(best),
                },
                _ => return Err(best),
            };
            // Keep the deepest place that has a span.
            best = span.map(|s| s.start).or(best);
            at = next;
        }
        best.ok_or(None)
    }

    /// The offset to report for a problem with `path`: its key, or the
    /// key of the first of `fallbacks` that is written, or the deepest
    /// part of `path` that is; `None` when none of them is.
    pub fn offset(&self, path: &str, fallbacks: &[&str]) -> Option<usize> {
        let partial = match self.find(path) {
            Ok(at) => return Some(at),
            Err(partial) => partial,
        };
        fallbacks.iter().find_map(|f| self.find(f).ok()).or(partial)
    }
}

/// A node of the document while walking a path.
#[derive(Clone, Copy)]
enum Place<'a> {
    Table(&'a Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

impl<'a> Place<'a> {
    fn of_item(item: &'a Item) -> Place<'a> {
        match item {
            Item::Table(t) => Place::Table(t),
            Item::ArrayOfTables(a) => Place::Tables(a),
            Item::Value(v) => Place::of_value(v),
            Item::None => Place::Leaf,
        }
    }

    fn of_value(v: &'a Value) -> Place<'a> {
        match v {
            Value::InlineTable(t) => Place::Inline(t),
            Value::Array(a) => Place::Array(a),
            _ => Place::Leaf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            steps("faults.at[2].at_ms"),
            Some(vec![
                Step::Key("faults"),
                Step::Key("at"),
                Step::Index(2),
                Step::Key("at_ms")
            ])
        );
        assert_eq!(steps("a..b"), None);
        assert_eq!(steps("a[x]"), None);
    }

    #[test]
    fn finds_keys_tables_and_array_elements() {
        let text = "d = 1\n[faults.random]\ncrash = 2.0\n[[faults.at]]\nat_ms = 1\n[[faults.at]]\n  at_ms = 5\n[cluster]\nconfig = { acks = \"all\" }\n";
        // (An implicit table, `faults` here, has no place of its own.)
        let l = Locator::new(text);
        let at = |p: &str| l.find(p).map(|o| crate::scenario::line_col(text, o));
        assert_eq!(at("d"), Ok((1, 1)));
        assert_eq!(at("faults.random.crash"), Ok((3, 1)));
        assert_eq!(at("faults.at[1]"), Ok((6, 1)));
        assert_eq!(at("faults.at[1].at_ms"), Ok((7, 3)));
        assert_eq!(at("cluster.config.acks"), Ok((9, 12)));
        assert_eq!(at("faults.random"), Ok((2, 1)));
        assert_eq!(at("faults"), Err(None));
        // Missing: the deepest part that is written.
        assert_eq!(
            l.find("faults.at[1].value")
                .map_err(|e| e.map(|o| crate::scenario::line_col(text, o))),
            Err(Some((6, 1)))
        );
        assert_eq!(l.find("workload.keys"), Err(None));
        assert_eq!(l.offset("workload.keys", &["d"]), Some(0));
        assert_eq!(l.offset("workload.keys", &[]), None);
    }
}
