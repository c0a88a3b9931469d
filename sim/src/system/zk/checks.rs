//! History checks for ZooKeeper, true to the promise it makes:
//!
//! - `nonlinearizable`: writes, and reads preceded by `sync` on the same
//!   session, are linearizable; plain reads are sequentially consistent per
//!   session (the `zk` model of the linearizability checker). A stale
//!   follower read without `sync` is allowed.
//! - `stale-sync-read`: the history breaks that promise only through syncs
//!   answered by a deposed server, which real ZooKeeper allows
//!   (ZOOKEEPER-1675); a scenario that provokes it declares it.
//! - `session-order`: within one session, the zxids of answered requests
//!   never go back (monotonic reads, read-your-writes, FIFO order).
//! - `sequential-order`: sequential names are unique per parent and grow
//!   with the zxid of their creation.
//! - `watch-order`: a watch event arrives before any later reply of the same
//!   session that reflects the change it announces.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::quorum::DeposedTimeline;
use crate::check::models::zk::Zk;
use crate::check::{check_operations, check_with, CheckOptions, ModelKind, Verdict};
use crate::history::{EventType, History, Operation, Outcome};
use crate::outcome::Violation;
use kzsim_model::NodeId;

/// ZooKeeper error codes that report a definite outcome with an
/// observation (the operation ran at the reply's zxid). `SessionExpired`
/// and `SessionMoved` are definite too, but as "did not run": they observe
/// nothing and are not listed.
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

/// How far the linearizability search may go before it gives up
/// (`check-unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckBudget {
    /// Search steps per partition. The verdict is then the same on any
    /// machine under any load, so scenario sweeps use this.
    Steps(u64),
    /// Wall-clock seconds, what `kzsim check --timeout` offers.
    Seconds(u64),
}

impl CheckBudget {
    fn options(self) -> CheckOptions {
        let (timeout, max_steps) = match self {
            CheckBudget::Steps(n) => (None, Some(n)),
            CheckBudget::Seconds(s) => (Some(Duration::from_secs(s)), None),
        };
        CheckOptions {
            timeout,
            cache_bytes: CACHE_BYTES,
            max_steps,
        }
    }

    fn describe(self) -> String {
        match self {
            CheckBudget::Steps(n) => format!("{n} search steps in one partition"),
            CheckBudget::Seconds(s) => format!("{s} s"),
        }
    }
}

/// Linearizability under ZooKeeper's promise: the `zk` model of the
/// checker, which splits the history per top-level znode
/// ([`crate::check::models::zk::subtrees`]), exactly as `kzsim check
/// --model zk` does, so both blame the same operation.
///
/// ZooKeeper's `sync` promises a later read at least every write that
/// completed before the sync began only when the server that answers it is
/// still in the quorum: a leader cut off from its followers answers syncs
/// from its own state until it notices (ZOOKEEPER-1675). A history that
/// breaks the promise only through syncs such a server answered is
/// `stale-sync-read`, not `nonlinearizable` (see [`deposed_syncs`]); this
/// needs the simulation's `deposed` timeline, without which (`kzsim
/// check`) every sync is held to the promise.
pub fn linearizable(
    ops: &[Operation],
    budget: CheckBudget,
    deposed: Option<&DeposedTimeline>,
) -> Vec<Violation> {
    let opts = budget.options();
    let waived = deposed.map(|d| deposed_syncs(ops, d)).unwrap_or_default();
    if !waived.is_empty() {
        // ZooKeeper's promise first: the syncs deposed servers answered
        // promise nothing. Only if it holds does the stricter check say
        // whether those syncs were actually followed by stale reads.
        let indexes = waived.iter().map(|&i| ops[i].invoke_index).collect();
        let mut relaxed = Zk::waiving_syncs(indexes);
        match check_operations(&mut relaxed, ops, &opts) {
            Err(e) => return vec![malformed(e.message)],
            Ok(r) => match r.verdict {
                Verdict::Unknown => return vec![gave_up(budget)],
                Verdict::NotLinearizable => return vec![nonlinearizable(ops, &r)],
                Verdict::Linearizable => {}
            },
        }
        return match check_with(ModelKind::Zk, &Value::Null, ops, &[], &opts) {
            Ok(r) if r.verdict == Verdict::NotLinearizable => vec![stale_sync_read(ops, &waived)],
            // Undecided: the promise holds; whether a read was stale is
            // not known, and no anomaly is claimed.
            Ok(_) => Vec::new(),
            Err(e) => vec![malformed(e.to_string())],
        };
    }
    match check_with(ModelKind::Zk, &Value::Null, ops, &[], &opts) {
        Ok(r) => match r.verdict {
            Verdict::Linearizable => Vec::new(),
            Verdict::Unknown => vec![gave_up(budget)],
            Verdict::NotLinearizable => vec![nonlinearizable(ops, &r)],
        },
        Err(e) => vec![malformed(e.to_string())],
    }
}

fn nonlinearizable(ops: &[Operation], report: &crate::check::Report) -> Violation {
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
    Violation::new("nonlinearizable", text, events)
}

fn malformed(text: String) -> Violation {
    Violation::new("malformed-history", text, Vec::new())
}

fn gave_up(budget: CheckBudget) -> Violation {
    Violation::new(
        "check-unknown",
        format!(
            "the linearizability check gave up after {}",
            budget.describe()
        ),
        Vec::new(),
    )
}

fn op_zxid(op: &Operation) -> Option<u64> {
    op.meta.as_ref()?.get("zxid")?.as_u64().filter(|z| *z != 0)
}

/// The syncs (indexes into the operations) answered by a server that had
/// been deposed while the sync was in flight, as the simulation saw it
/// ([`DeposedTimeline`]): a follower waits for the current leader's sync
/// point, so only a server left in an older epoch answers without every
/// write committed before.
pub fn deposed_syncs(ops: &[Operation], deposed: &DeposedTimeline) -> Vec<usize> {
    if deposed.is_empty() {
        return Vec::new();
    }
    ops.iter()
        .enumerate()
        .filter(|(_, op)| op.f == "sync" && op.outcome == Outcome::Ok)
        .filter(|(_, op)| {
            let server = op.meta.as_ref().and_then(|m| m.get("server")?.as_u64());
            match (server, op.complete_time) {
                (Some(s), Some(end)) => deposed.deposed_during(s as NodeId, op.invoke_time, end),
                _ => false,
            }
        })
        .map(|(i, _)| i)
        .collect()
}

fn stale_sync_read(ops: &[Operation], deposed: &[usize]) -> Violation {
    let s = &ops[deposed[0]];
    let server = s
        .meta
        .as_ref()
        .and_then(|m| m.get("server")?.as_u64())
        .unwrap_or_default();
    let zxid = op_zxid(s).map_or("?".into(), |z| format!("{z:#x}"));
    let text = format!(
        "reads after a sync answered by a deposed server are stale (ZOOKEEPER-1675): process {}'s sync was answered at zxid {zxid} by server {server}, which served in an older epoch than one a quorum had established; the history is linearizable once the promise of the {} sync(s) such servers answered is waived",
        s.process,
        deposed.len()
    );
    let events = deposed.iter().map(|&i| ops[i].invoke_index).collect();
    Violation::new("stale-sync-read", text, events)
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
