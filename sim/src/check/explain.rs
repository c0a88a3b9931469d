//! Explanations of non-linearizable histories, in plain text.
//!
//! An [`Explanation`] names the longest linearizable prefix the search found,
//! the operation that could not be placed after it (its return was reached
//! while it was still unplaced), and the operations concurrent with that
//! one: the window in which some order had to exist and none did.

use std::fmt::Write;

use crate::history::{Operation, Outcome};

/// Why a history is not linearizable. Operation numbers are indices into the
/// history's paired operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The partition (JSON text of the key), when the history was split.
    pub partition: Option<String>,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// The operation that cannot be placed after the prefix.
    pub blocked: usize,
    /// Operations of the partition whose intervals overlap `blocked`'s, in
    /// invocation order.
    pub concurrent: Vec<usize>,
    /// The operations of the partition that took part in the search.
    pub searched: Vec<usize>,
}

/// Whether two operations overlap in real time (unknown outcomes extend to
/// the end of the history).
pub fn overlaps(a: &Operation, b: &Operation) -> bool {
    let end = |o: &Operation| match o.outcome {
        Outcome::Info => usize::MAX,
        _ => o.complete_index.unwrap_or(usize::MAX),
    };
    a.invoke_index < end(b) && b.invoke_index < end(a)
}

impl Explanation {
    /// Builds an explanation; `searched` are the operations of the
    /// partition that took part in the search.
    pub fn new(
        ops: &[Operation],
        searched: &[usize],
        partition: Option<String>,
        prefix: Vec<usize>,
        blocked: usize,
    ) -> Explanation {
        let b = &ops[blocked];
        let mut concurrent: Vec<usize> = searched
            .iter()
            .copied()
            .filter(|&i| i != blocked && overlaps(&ops[i], b))
            .collect();
        concurrent.sort_by_key(|&i| ops[i].invoke_index);
        Explanation {
            partition,
            prefix,
            blocked,
            concurrent,
            searched: searched.to_vec(),
        }
    }

    /// The real-time window of the conflict: from the earliest invocation
    /// among the blocked and concurrent operations to the blocked
    /// operation's completion (event indices).
    pub fn window(&self, ops: &[Operation]) -> (usize, usize) {
        let b = &ops[self.blocked];
        let start = self
            .concurrent
            .iter()
            .map(|&i| ops[i].invoke_index)
            .chain([b.invoke_index])
            .min()
            .unwrap_or(b.invoke_index);
        let end = b.complete_index.unwrap_or(b.invoke_index);
        (start, end)
    }

    /// Renders the explanation as text. `lines` maps event indices to source
    /// lines, when known.
    pub fn text(&self, ops: &[Operation], lines: Option<&[usize]>) -> String {
        const SHOWN: usize = 12;
        let mut s = String::new();
        if let Some(p) = &self.partition {
            let _ = writeln!(s, "key {p}: not linearizable");
        } else {
            let _ = writeln!(s, "not linearizable");
        }
        let _ = writeln!(
            s,
            "  longest linearizable prefix: {} operations",
            self.prefix.len()
        );
        let skip = self.prefix.len().saturating_sub(SHOWN);
        if skip > 0 {
            let _ = writeln!(s, "    ... {skip} earlier operations");
        }
        for &i in &self.prefix[skip..] {
            let _ = writeln!(s, "    {}", describe(ops, i, lines));
        }
        let _ = writeln!(
            s,
            "  cannot be placed after it: {}",
            describe(ops, self.blocked, lines)
        );
        let _ = writeln!(s, "  concurrent with it ({}):", self.concurrent.len());
        for &i in &self.concurrent {
            let mark = if self.prefix.contains(&i) {
                " [in prefix]"
            } else {
                ""
            };
            let _ = writeln!(s, "    {}{mark}", describe(ops, i, lines));
        }
        s
    }
}

/// One line describing an operation: number, process, call, outcome, and
/// where it is in the source.
pub fn describe(ops: &[Operation], i: usize, lines: Option<&[usize]>) -> String {
    let o = &ops[i];
    let outcome = outcome(o);
    let key = o
        .key
        .as_ref()
        .map(|k| format!(" key={}", short(k)))
        .unwrap_or_default();
    let at = |e: usize| lines.and_then(|l| l.get(e)).copied().unwrap_or(e + 1);
    let place = match o.complete_index {
        Some(c) => format!("lines {}-{}", at(o.invoke_index), at(c)),
        None => format!("line {}-", at(o.invoke_index)),
    };
    let input = if o.input.is_null() {
        String::new()
    } else {
        format!(" {}", short(&o.input))
    };
    format!(
        "op {i}: process {} {}{key}{input} -> {outcome} ({place})",
        o.process,
        o.f.trim_start_matches(':'),
    )
}

/// How an operation ended, for display: `ok 3`, `fail NoNode` (the error
/// code or reason when recorded), `info ConnectionLoss (unknown)`, `never
/// completed`.
pub fn outcome(o: &Operation) -> String {
    let why = o
        .error
        .as_deref()
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    match o.outcome {
        Outcome::Ok if o.output.is_null() => "ok".to_string(),
        Outcome::Ok => format!("ok {}", short(&o.output)),
        Outcome::Fail => format!("fail{why}"),
        Outcome::Info if o.complete_index.is_some() => format!("info{why} (unknown)"),
        Outcome::Info => "never completed".to_string(),
    }
}

/// A value shortened to at most 40 characters for display.
pub fn short(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        let head: String = s.chars().take(37).collect();
        format!("{head}...")
    } else {
        s
    }
}
