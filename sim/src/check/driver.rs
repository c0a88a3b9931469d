//! Runs a model over a history: splits it per key when the model allows
//! (P-compositionality), encodes each partition, searches it, and combines
//! the verdicts. Partitions are visited in the order of their keys' JSON
//! text, so results never depend on hash order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cache::Budget;
use super::explain::Explanation;
use super::models::Model;
use super::search::{Limits, OptionalTries, Search, SearchOp, SearchResult};
use crate::history::{Operation, Outcome};

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Give up with verdict [`Verdict::Unknown`] after this long.
    pub timeout: Option<Duration>,
    /// Memory budget of each partition's visited cache, in bytes.
    pub cache_bytes: usize,
    /// Give up with verdict [`Verdict::Unknown`] after this many search
    /// steps in one partition. Unlike `timeout`, the verdict then does not
    /// depend on the machine or its load, so a scenario sweep uses this.
    pub max_steps: Option<u64>,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            timeout: None,
            cache_bytes: 1 << 30,
            max_steps: None,
        }
    }
}

/// The verdict on a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Some order of the operations explains every observed output.
    Linearizable,
    /// No order does.
    NotLinearizable,
    /// The check gave up (deadline or step budget) before deciding.
    Unknown,
}

impl Verdict {
    /// The verdict as printed: `linearizable`, `not_linearizable`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not_linearizable",
            Verdict::Unknown => "unknown",
        }
    }
}

/// The result of checking one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Why not, when the verdict is [`Verdict::NotLinearizable`].
    pub explanation: Option<Explanation>,
    /// Operations in the history (including dropped ones).
    pub ops: usize,
    /// Partitions (keys) checked.
    pub partitions: usize,
    /// Partitions whose check timed out.
    pub timed_out: usize,
}

/// An operation the model could not interpret: its index and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOp {
    /// Index into the operations.
    pub op: usize,
    /// What is wrong.
    pub message: String,
}

/// Groups operation indices per partition key (JSON text of the key; no key
/// is the empty string), in key order.
pub fn partitions(ops: &[Operation], split: bool) -> BTreeMap<String, Vec<usize>> {
    let mut parts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let key = match (&op.key, split) {
            (Some(k), true) => k.to_string(),
            _ => String::new(),
        };
        parts.entry(key).or_default().push(i);
    }
    parts
}

/// Encodes the operations `ids` of one partition for the search. With a
/// session-ordered model, each operation must follow its process's previous
/// operation of known outcome, and stale reads may take effect as early as
/// that operation.
pub fn encode<M: Model>(
    model: &mut M,
    ops: &[Operation],
    ids: &[usize],
) -> Result<Vec<SearchOp<M::Op>>, BadOp> {
    let sessions = model.session_ordered();
    let mut last: BTreeMap<u64, usize> = BTreeMap::new();
    let mut out: Vec<SearchOp<M::Op>> = Vec::with_capacity(ids.len());
    for &i in ids {
        let op = &ops[i];
        let encoded = model
            .encode(op)
            .map_err(|message| BadOp { op: i, message })?;
        let Some(e) = encoded else { continue };
        let ret = match op.outcome {
            Outcome::Info => None,
            _ => op.complete_index.map(|c| c as u64),
        };
        let after = if sessions {
            last.get(&op.process).copied()
        } else {
            None
        };
        let call = if sessions && model.stale_read(&e) {
            after.map_or(0, |a| out[a].call)
        } else {
            op.invoke_index as u64
        };
        if sessions && ret.is_some() {
            last.insert(op.process, out.len());
        }
        out.push(SearchOp {
            id: i,
            call,
            ret,
            after,
            op: e,
        });
    }
    Ok(out)
}

/// Steps given to each live partition in the first round; doubled every
/// round, so a violation in any partition is found after at most a few
/// times the work it needs on its own.
const FIRST_QUANTUM: u64 = 1 << 14;

/// The most steps each cheap search of a partition may take (see
/// [`OptionalTries`]).
const QUICK_MAX_STEPS: u64 = 1 << 24;

/// Checks a history of paired operations against `model`.
///
/// Partitions are searched round-robin with growing step quanta (counted
/// in steps, not time, so the outcome is deterministic), and the check
/// stops at the first partition found not linearizable; among partitions
/// failing in the same round, the first in key order is reported.
pub fn check_operations<M: Model>(
    model: &mut M,
    ops: &[Operation],
    opts: &CheckOptions,
) -> Result<Report, BadOp> {
    let start = Instant::now();
    let limits = Limits {
        deadline: opts.timeout.and_then(|t| start.checked_add(t)),
        max_steps: opts.max_steps,
        budget: Budget::new(opts.cache_bytes),
    };
    let normalised = model.normalise(ops);
    let ops: &[Operation] = normalised.as_deref().unwrap_or(ops);
    let parts = model.partitions(ops);
    let mut report = Report {
        verdict: Verdict::Linearizable,
        explanation: None,
        ops: ops.len(),
        partitions: parts.len(),
        timed_out: 0,
    };
    let mut encoded = Vec::with_capacity(parts.len());
    for (key, ids) in &parts {
        encoded.push((key, encode(model, ops, ids)?));
    }
    let model = &*model;
    // A partition with operations of unknown outcome is searched three
    // ways side by side, round-robin: as if none of them took effect,
    // trying only those that enable a waiting return (each of these two on
    // at most an eighth of the step budget), and in full. Whichever finds a
    // linearization first decides; only the full search can show there is
    // none. Each of the cheap searches can be far faster than the full one
    // (which at every dead end tries every subset of the crashed writes)
    // or far slower (it cannot backtrack its way out as the full one can),
    // so none of them is waited for.
    let quick_limits = Limits {
        max_steps: Some(
            opts.max_steps
                .map_or(QUICK_MAX_STEPS, |m| (m / 8).min(QUICK_MAX_STEPS)),
        ),
        ..limits.clone()
    };
    let mut live: Vec<(usize, OptionalTries, Search<'_, M>)> = Vec::new();
    for (i, (_, e)) in encoded.iter().enumerate() {
        if e.iter().any(|o| o.ret.is_none()) {
            for tries in [OptionalTries::None, OptionalTries::Enabling] {
                live.push((i, tries, Search::new(model, e, &quick_limits).trying(tries)));
            }
        }
        live.push((i, OptionalTries::All, Search::new(model, e, &limits)));
    }
    let mut decided = vec![false; encoded.len()];
    let mut quantum = FIRST_QUANTUM;
    while !live.is_empty() {
        let mut failed = None;
        live.retain_mut(|(i, tries, search)| {
            if decided[*i] {
                return false;
            }
            match search.run(quantum) {
                None => true,
                Some(SearchResult::Linearizable) => {
                    decided[*i] = true;
                    false
                }
                // A cheap search that found nothing tells nothing.
                Some(_) if *tries != OptionalTries::All => false,
                Some(SearchResult::Timeout) => {
                    report.timed_out += 1;
                    false
                }
                Some(SearchResult::NotLinearizable { prefix, blocked }) => {
                    failed = failed.take().or(Some((*i, prefix, blocked)));
                    false
                }
            }
        });
        if let Some((i, prefix, blocked)) = failed {
            let (key, e) = &encoded[i];
            let partition = (!key.is_empty()).then(|| key.to_string());
            let searched: Vec<usize> = e.iter().map(|o| o.id).collect();
            report.explanation = Some(Explanation::new(ops, &searched, partition, prefix, blocked));
            report.verdict = Verdict::NotLinearizable;
            return Ok(report);
        }
        quantum = quantum.saturating_mul(2);
    }
    if report.timed_out > 0 {
        report.verdict = Verdict::Unknown;
    }
    Ok(report)
}
