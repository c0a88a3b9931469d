//! Checks of the `counter` workload (persistent-sequential children of
//! `/c`), in place of the linearizability search, which cannot decide
//! histories with many sequential creates of unknown outcome (each may have
//! taken any of the later sequence numbers).
//!
//! Nothing deletes a child of `/c`, and a parent's sequence counter
//! (cversion) moves only when a child is created or deleted, so a correct
//! ensemble holds children numbered exactly 0..n, each written by one create
//! that ran (acknowledged, or of unknown outcome). After the quiet period,
//! on a serving server's tree:
//!
//! - `lost-create`: an acknowledged create (or a child a read listed) is
//!   missing from the final tree, or holds other data;
//! - `phantom-create`: a child whose data no create that may have run wrote
//!   (a create that failed with a definite error code did not run);
//! - `duplicate-create`: two children hold the data of one create;
//! - `sequence-gap`: the final children, or a listing, are not numbered
//!   0..n without gaps.
//!
//! And over the history (ZooKeeper's promise: writes linearizable, reads
//! the committed state as of their zxid):
//!
//! - `nonlinearizable`: a create that took effect (acknowledged, or found in
//!   the final tree by its data) got a lower sequence number than an
//!   acknowledged create that completed before it was invoked; or a listing
//!   at zxid Z lacks an acknowledged create committed at or before Z, or
//!   shows one committed after Z.
//!
//! Uniqueness and zxid order of the names are `sequential-order`'s.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use kzsim_model::zk::tree::DataTree;

use super::checks::meta_zxid;
use super::checks::DEFINITE_ERRORS;
use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::workload::zk::COUNTER_PARENT;
use crate::workload::zk_lock::seq_of;

fn is_seq_create(op: &Operation) -> bool {
    op.f == "create" && op.input.get("sequential").and_then(Value::as_bool) == Some(true)
}

fn data_of(op: &Operation) -> Option<&str> {
    op.input.get("data").and_then(Value::as_str)
}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Checks whether `seqs` (sorted) run 0..n; the first missing one if not.
fn first_gap(seqs: &[u64]) -> Option<u64> {
    seqs.iter()
        .enumerate()
        .find(|&(i, &s)| s != i as u64)
        .map(|(i, _)| i as u64)
}

/// The counter checks; `tree` is a serving server's final tree (`None` if
/// none serves: `not-recovered` says so).
pub fn check(history: &History, ops: &[Operation], tree: Option<&DataTree>) -> Vec<Violation> {
    let creates: Vec<&Operation> = ops.iter().filter(|o| is_seq_create(o)).collect();
    let mut out = Vec::new();
    // Final children: name -> data.
    let final_children: Option<BTreeMap<String, String>> = tree.map(|t| {
        t.children(COUNTER_PARENT)
            .unwrap_or_default()
            .into_iter()
            .map(|n| {
                let data = t
                    .get(&format!("{COUNTER_PARENT}/{n}"))
                    .map(|z| String::from_utf8_lossy(&z.data).into_owned())
                    .unwrap_or_default();
                (n, data)
            })
            .collect()
    });
    // The sequence number each create got, where known.
    let mut got: BTreeMap<usize, u64> = BTreeMap::new();
    for (i, op) in creates.iter().enumerate() {
        if op.outcome == Outcome::Ok {
            if let Some(s) = op.output.as_str().and_then(seq_of) {
                got.insert(i, s);
            }
        }
    }
    if let Some(children) = &final_children {
        out.extend(final_checks(&creates, children, &mut got));
    }
    out.extend(real_time(&creates, &got));
    out.extend(reads(history, ops, &creates, final_children.as_ref()));
    out
}

fn final_checks(
    creates: &[&Operation],
    children: &BTreeMap<String, String>,
    got: &mut BTreeMap<usize, u64>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_data: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, d) in children {
        by_data.entry(d.as_str()).or_default().push(n.as_str());
    }
    let mut may_have_run: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, op) in creates.iter().enumerate() {
        let definite_fail = op.outcome == Outcome::Fail
            && op
                .error
                .as_deref()
                .is_some_and(|e| DEFINITE_ERRORS.contains(&e));
        if let (Some(d), false) = (data_of(op), definite_fail) {
            may_have_run.insert(d, i);
        }
        if op.outcome == Outcome::Ok {
            let Some(path) = op.output.as_str() else {
                continue;
            };
            let held = children.get(name(path));
            if held.map(String::as_str) != data_of(op) {
                out.push(Violation::new(
                    "lost-create",
                    format!(
                        "acknowledged create of `{path}` (data {}) is not in the final tree (found {})",
                        data_of(op).map_or_else(|| "none".to_string(), |d| format!("\"{d}\"")),
                        held.map_or_else(|| "nothing".to_string(), |d| format!("data \"{d}\""))
                    ),
                    vec![op.invoke_index],
                ));
            }
        }
    }
    for (d, names) in &by_data {
        if names.len() > 1 {
            out.push(Violation::new(
                "duplicate-create",
                format!("the data {d:?} of one create is in {names:?}"),
                may_have_run
                    .get(d)
                    .map(|&i| vec![creates[i].invoke_index])
                    .unwrap_or_default(),
            ));
        }
        match may_have_run.get(d) {
            Some(&i) => {
                if let Some(s) = names.first().and_then(|n| seq_of(n)) {
                    got.entry(i).or_insert(s);
                }
            }
            None => out.push(Violation::new(
                "phantom-create",
                format!(
                    "final children {names:?} hold {d:?}, which no create that may have run wrote"
                ),
                vec![],
            )),
        }
    }
    let mut seqs: Vec<u64> = children.keys().filter_map(|n| seq_of(n)).collect();
    seqs.sort_unstable();
    if let Some(missing) = first_gap(&seqs) {
        out.push(Violation::new(
            "sequence-gap",
            format!(
                "the final children of {COUNTER_PARENT} lack sequence number {missing} (of {} children, highest {})",
                seqs.len(),
                seqs.last().copied().unwrap_or(0)
            ),
            vec![],
        ));
    }
    out
}

/// A create that took effect is numbered above every acknowledged create
/// that completed before it was invoked.
fn real_time(creates: &[&Operation], got: &BTreeMap<usize, u64>) -> Vec<Violation> {
    let mut done: Vec<(u64, u64, usize)> = got
        .iter()
        .filter(|(i, _)| creates[**i].outcome == Outcome::Ok)
        .filter_map(|(i, s)| Some((creates[*i].complete_time?, *s, *i)))
        .collect();
    done.sort_unstable();
    let mut started: Vec<(u64, u64, usize)> = got
        .iter()
        .map(|(i, s)| (creates[*i].invoke_time, *s, *i))
        .collect();
    started.sort_unstable();
    let mut out = Vec::new();
    let mut best: Option<(u64, usize)> = None;
    let mut j = 0;
    for (t, s, i) in started {
        while j < done.len() && done[j].0 < t {
            if best.is_none_or(|(b, _)| done[j].1 > b) {
                best = Some((done[j].1, done[j].2));
            }
            j += 1;
        }
        if let Some((b, k)) = best {
            if s <= b {
                out.push(Violation::new(
                    "nonlinearizable",
                    format!(
                        "a create invoked after `{}` was acknowledged (sequence {b}) got sequence {s}",
                        creates[k].output.as_str().unwrap_or("?")
                    ),
                    vec![creates[k].invoke_index, creates[i].invoke_index],
                ));
            }
        }
    }
    out
}

/// Listings of `/c` show the committed children as of their zxid.
/// Children are named by their sequence numbers (`n-` and 10 digits).
fn reads(
    history: &History,
    ops: &[Operation],
    creates: &[&Operation],
    children: Option<&BTreeMap<String, String>>,
) -> Vec<Violation> {
    // Acknowledged creates: (zxid, sequence, event).
    let mut acked: Vec<(u64, u64, usize)> = creates
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| {
            Some((
                meta_zxid(history, o)?,
                seq_of(o.output.as_str()?)?,
                o.invoke_index,
            ))
        })
        .collect();
    acked.sort_unstable();
    let mut acked_at: BTreeMap<u64, u64> = BTreeMap::new();
    for &(z, s, _) in &acked {
        acked_at.entry(s).or_insert(z);
    }
    let dense = |m: &BTreeMap<u64, u64>| -> Vec<Option<u64>> {
        let top = m
            .keys()
            .next_back()
            .map_or(0, |t| (*t as usize + 1).min(1 << 20));
        let mut v = vec![None; top];
        for (&s, &z) in m {
            if let Some(slot) = v.get_mut(s as usize) {
                *slot = Some(z);
            }
        }
        v
    };
    let by_seq = dense(&acked_at);
    let lookup = |s: u64| by_seq.get(s as usize).copied().flatten();
    let final_seqs: Option<BTreeSet<u64>> =
        children.map(|c| c.keys().filter_map(|n| seq_of(n)).collect());
    let mut out = Vec::new();
    for op in ops {
        let key = op.key.as_ref().and_then(Value::as_str);
        if op.f != "getChildren" || op.outcome != Outcome::Ok || key != Some(COUNTER_PARENT) {
            continue;
        }
        let Some(z) = meta_zxid(history, op) else {
            continue;
        };
        let mut seqs: Vec<u64> = op
            .output
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(seq_of)
            .collect();
        seqs.sort_unstable();
        let at = op.complete_index.unwrap_or(op.invoke_index);
        // The acknowledged creates it shows must be committed by z, and it
        // must show as many as were committed by z.
        let shown_by_z = seqs
            .iter()
            .filter(|s| lookup(**s).is_some_and(|cz| cz <= z))
            .count();
        let due = acked.partition_point(|(cz, _, _)| *cz <= z);
        let future = seqs.iter().any(|s| lookup(*s).is_some_and(|cz| cz > z));
        if shown_by_z != due || future {
            let listed: BTreeSet<u64> = seqs.iter().copied().collect();
            let wrong = acked
                .iter()
                .find(|(cz, s, _)| (*cz <= z) != listed.contains(s));
            if let Some((cz, s, i)) = wrong {
                let how = if *cz <= z { "lacks" } else { "shows" };
                out.push(Violation::new(
                    "nonlinearizable",
                    format!("the listing of {COUNTER_PARENT} at zxid {z:#x} {how} `n-{s:010}`, created at zxid {cz:#x}"),
                    vec![*i, at],
                ));
            }
        }
        if let Some(missing) = first_gap(&seqs) {
            out.push(Violation::new(
                "sequence-gap",
                format!("the listing of {COUNTER_PARENT} at zxid {z:#x} lacks sequence number {missing}"),
                vec![at],
            ));
        }
        if let Some(f) = &final_seqs {
            if let Some(s) = seqs.iter().find(|s| !f.contains(s)) {
                out.push(Violation::new(
                    "lost-create",
                    format!("`n-{s:010}`, listed at zxid {z:#x}, is not in the final tree"),
                    vec![at],
                ));
            }
        }
    }
    out
}
