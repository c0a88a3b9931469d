//! History checks for ZooKeeper, true to the promise it makes:
//!
//! - `nonlinearizable`: writes, and reads preceded by `sync` on the same
//!   session, are linearizable; plain reads are sequentially consistent per
//!   session (the `zk` model of the linearizability checker). A stale
//!   follower read without `sync` is allowed.
//! - `session-order`: within one session, the zxids of answered requests
//!   never go back (monotonic reads, read-your-writes, FIFO order).
//! - `sequential-order`: sequential names are unique per parent and grow
//!   with the zxid of their creation.
//! - `watch-order`: a watch event arrives before any later reply of the same
//!   session that reflects the change it announces.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::check::{check_with, CheckOptions, ModelKind, Verdict};
use crate::history::{EventType, History, Operation, Outcome};
use crate::outcome::Violation;

/// ZooKeeper error codes that report a definite outcome.
pub(crate) const DEFINITE_ERRORS: &[&str] = &[
    "NoNode",
    "NodeExists",
    "NotEmpty",
    "BadVersion",
    "NoChildrenForEphemerals",
    "BadArguments",
];

/// The checker's memory budget per seed.
const CACHE_BYTES: usize = 1 << 30;

/// Linearizability under ZooKeeper's promise: the `zk` model of the
/// checker, which splits the history per top-level znode
/// ([`crate::check::models::zk::subtrees`]), exactly as `kzsim check
/// --model zk` does, so both blame the same operation.
pub fn linearizable(ops: &[Operation], timeout_s: u64) -> Vec<Violation> {
    let opts = CheckOptions {
        timeout: Some(Duration::from_secs(timeout_s)),
        cache_bytes: CACHE_BYTES,
    };
    match check_with(ModelKind::Zk, &Value::Null, ops, &[], &opts) {
        Ok(report) => match report.verdict {
            Verdict::Linearizable => Vec::new(),
            Verdict::NotLinearizable => {
                let (text, events) = match &report.explanation {
                    Some(e) => (
                        e.text(ops, None),
                        std::iter::once(e.blocked)
                            .chain(e.concurrent.iter().copied())
                            .map(|i| ops[i].invoke_index)
                            .collect(),
                    ),
                    None => ("no linearization exists".to_string(), Vec::new()),
                };
                vec![Violation::new("nonlinearizable", text, events)]
            }
            Verdict::Unknown => vec![Violation::new(
                "check-unknown",
                format!("the linearizability check gave up after {timeout_s} s"),
                Vec::new(),
            )],
        },
        Err(e) => vec![Violation::new(
            "malformed-history",
            e.to_string(),
            Vec::new(),
        )],
    }
}

/// A definite answer from a server: its session and zxid.
pub(crate) fn answered(e: &crate::history::Event) -> Option<(u64, u64)> {
    let definite = match e.kind {
        EventType::Ok => true,
        EventType::Fail => e
            .error
            .as_deref()
            .is_some_and(|c| DEFINITE_ERRORS.contains(&c)),
        _ => false,
    };
    let meta = e.meta.as_ref()?;
    let session = meta.get("session")?.as_u64()?;
    let zxid = meta.get("zxid")?.as_u64()?;
    (definite && session != 0 && zxid != 0).then_some((session, zxid))
}

/// Zxids never go back within a session.
pub fn session_order(history: &History) -> Vec<Violation> {
    let mut last: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        let Some((session, zxid)) = answered(e) else {
            continue;
        };
        if let Some(&(prev, at)) = last.get(&session) {
            if zxid < prev {
                out.push(Violation::new(
                    "session-order",
                    format!(
                        "session {session:#x}: event {i} ({} {}) answered at zxid {zxid:#x} after event {at} at {prev:#x}",
                        e.f,
                        e.key.as_ref().map(Value::to_string).unwrap_or_default()
                    ),
                    vec![at, i],
                ));
                continue;
            }
        }
        last.insert(session, (zxid, i));
    }
    out
}

/// The zxid the completion of `op` carries in its meta, if any.
pub(super) fn meta_zxid(history: &History, op: &Operation) -> Option<u64> {
    let e = history.events.get(op.complete_index?)?;
    e.meta.as_ref()?.get("zxid")?.as_u64()
}

/// Sequential names are unique and increase with their zxid.
pub fn sequential_names(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let mut by_parent: BTreeMap<String, Vec<(u64, u64, usize)>> = BTreeMap::new();
    let mut out = Vec::new();
    for op in ops {
        let sequential = op.input.get("sequential").and_then(Value::as_bool) == Some(true);
        let create = matches!(op.f.as_str(), "create" | "lock-create" | "candidate-create");
        if !create || op.outcome != Outcome::Ok || !sequential {
            continue;
        }
        let (Some(path), Some(zxid)) = (op.output.as_str(), meta_zxid(history, op)) else {
            continue;
        };
        let Some((parent, name)) = path.rsplit_once('/') else {
            continue;
        };
        let digits = &name[name.len().saturating_sub(10)..];
        let Ok(seq) = digits.parse::<u64>() else {
            out.push(Violation::new(
                "sequential-order",
                format!("created `{path}` has no 10-digit sequence suffix"),
                vec![op.invoke_index],
            ));
            continue;
        };
        by_parent
            .entry(parent.to_string())
            .or_default()
            .push((zxid, seq, op.invoke_index));
    }
    for (parent, mut created) in by_parent {
        created.sort_unstable();
        for w in created.windows(2) {
            let ((z1, s1, i1), (z2, s2, i2)) = (w[0], w[1]);
            if s2 <= s1 {
                out.push(Violation::new(
                    "sequential-order",
                    format!(
                        "under `{parent}`: sequence {s2} created at zxid {z2:#x} does not exceed {s1} created at {z1:#x}"
                    ),
                    vec![i1, i2],
                ));
            }
        }
    }
    out
}

/// A watch left by a read, and what it waits for.
struct Watch {
    session: u64,
    path: String,
    child: bool,
    read_zxid: u64,
    at: usize,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Watch events arrive before the replies that reflect their change.
pub fn watch_order(history: &History, ops: &[Operation]) -> Vec<Violation> {
    // Zxids of acknowledged writes, per path they change (data) and per
    // parent whose children they change.
    let mut data_changes: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut child_changes: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for op in ops {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let Some(z) = meta_zxid(history, op) else {
            continue;
        };
        let key = op.key.as_ref().and_then(Value::as_str).unwrap_or("");
        match op.f.as_str() {
            "setData" => data_changes.entry(key).or_default().push(z),
            "delete" => {
                data_changes.entry(key).or_default().push(z);
                child_changes.entry(parent(key)).or_default().push(z);
            }
            "create" => {
                let created = op.output.as_str().unwrap_or(key);
                data_changes.entry(key).or_default().push(z);
                child_changes.entry(parent(created)).or_default().push(z);
            }
            _ => {}
        }
    }
    let mut watches = Vec::new();
    for op in ops {
        let Some(ci) = op.complete_index else {
            continue;
        };
        let e = &history.events[ci];
        let wants = e
            .meta
            .as_ref()
            .and_then(|m| m.get("watch"))
            .and_then(Value::as_bool)
            == Some(true);
        if !wants || op.outcome != Outcome::Ok {
            continue;
        }
        let Some((session, read_zxid)) = answered(e) else {
            continue;
        };
        let child = op.f == "getChildren";
        if !child && op.f != "getData" {
            continue;
        }
        watches.push(Watch {
            session,
            path: op
                .key
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            child,
            read_zxid,
            at: ci,
        });
    }
    let mut out = Vec::new();
    for w in watches {
        let changes = if w.child {
            child_changes.get(w.path.as_str())
        } else {
            data_changes.get(w.path.as_str())
        };
        let Some(z) = changes
            .into_iter()
            .flatten()
            .copied()
            .filter(|z| *z > w.read_zxid)
            .min()
        else {
            continue;
        };
        let mut fired = false;
        for (j, e) in history.events.iter().enumerate().skip(w.at + 1) {
            let Some((session, zxid)) = answered(e).or_else(|| Some((meta_session(e)?, 0))) else {
                continue;
            };
            if session != w.session {
                continue;
            }
            fired |= events_of(e)
                .iter()
                .any(|(path, ez)| *path == w.path && *ez > w.read_zxid);
            if fired {
                break;
            }
            if zxid >= z {
                out.push(Violation::new(
                    "watch-order",
                    format!(
                        "session {:#x}: reply at event {j} reflects zxid {zxid:#x} but the watch on `{}` (set at event {}, zxid {:#x}) for the change at {z:#x} had not fired",
                        w.session, w.path, w.at, w.read_zxid
                    ),
                    vec![w.at, j],
                ));
                break;
            }
        }
    }
    out
}

fn meta_session(e: &crate::history::Event) -> Option<u64> {
    e.meta.as_ref()?.get("session")?.as_u64()
}

/// The watch events a completion carried: (path, zxid).
fn events_of(e: &crate::history::Event) -> Vec<(String, u64)> {
    e.meta
        .as_ref()
        .and_then(|m| m.get("events"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|ev| Some((ev.get(1)?.as_str()?.to_string(), ev.get(2)?.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}
