//! Checks of the configuration-store workload (`workload.kind = "config"`,
//! see `workload::zk_config`).
//!
//! `/config` is created once (version 0, data `0`) and changed only by the
//! writer's setData, so each data version of it has one value, and the
//! versions grow with the zxid. ZooKeeper promises that a read shows the
//! committed state as of its zxid (a prefix of the log; a follower may be
//! behind in real time) and that a session never goes back. Then:
//!
//! - `config-order`: within a session, a read (`getData`, or the `poll`'s
//!   `exists`) never shows an older version of `/config` than an earlier
//!   read of that session; a version never shows two values (across all
//!   reads and acknowledged writes); and a read at zxid Z shows a version at
//!   least that of every acknowledged write committed by Z and below that
//!   of every one committed after Z. Writes of unknown outcome are allowed
//!   to have happened or not: they only fill versions between acknowledged
//!   ones.
//! - `config-converge`: after the writer stops, every live watcher (one
//!   whose reads are still answered in the second half of the stretch
//!   before the workload stops) last read the value a serving server's
//!   final tree holds: the last write that took effect, acknowledged or of
//!   unknown outcome. A watcher whose watch never fired would keep an older
//!   value.

use std::collections::BTreeMap;

use serde_json::Value;

use kzsim_model::zk::tree::DataTree;

use super::election::Quiet;
use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::workload::zk_config::CONFIG;

/// A read or acknowledged write of `/config`.
struct Seen<'a> {
    version: i64,
    /// The value (not known for a poll).
    data: Option<&'a str>,
    zxid: u64,
    session: u64,
    event: usize,
}

fn seen<'a>(history: &History, op: &'a Operation) -> Option<Seen<'a>> {
    if op.outcome != Outcome::Ok {
        return None;
    }
    let m = history.events.get(op.complete_index?)?.meta.as_ref()?;
    let (zxid, session) = (m.get("zxid")?.as_u64()?, m.get("session")?.as_u64()?);
    let (version, data) = match op.f.as_str() {
        "setup" => (0, op.input.get("data").and_then(Value::as_str)),
        "setData" => (
            op.output.get("version")?.as_i64()?,
            op.input.get("data").and_then(Value::as_str),
        ),
        "getData" => (
            op.output.get("version")?.as_i64()?,
            op.output.get("data").and_then(Value::as_str),
        ),
        "poll" => (op.output.get("version")?.as_i64()?, None),
        _ => return None,
    };
    Some(Seen {
        version,
        data,
        zxid,
        session,
        event: op.complete_index?,
    })
}

/// `config-order` over the configuration store's history.
pub fn order(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let all: Vec<(&Operation, Seen)> = ops
        .iter()
        .filter(|o| o.key.as_ref().and_then(Value::as_str) == Some(CONFIG))
        .filter_map(|o| Some((o, seen(history, o)?)))
        .collect();
    let mut out = Vec::new();
    // One value per version.
    let mut values: BTreeMap<i64, (&str, usize)> = BTreeMap::new();
    for (_, s) in &all {
        let Some(d) = s.data else { continue };
        match values.get(&s.version) {
            Some(&(other, at)) if other != d => out.push(Violation::new(
                "config-order",
                format!(
                    "version {} of /config showed {other:?} (event {at}) and {d:?} (event {})",
                    s.version, s.event
                ),
                vec![at, s.event],
            )),
            Some(_) => {}
            None => {
                values.insert(s.version, (d, s.event));
            }
        }
    }
    // Sessions never go back.
    let mut last: BTreeMap<u64, (i64, usize)> = BTreeMap::new();
    let mut reads: Vec<&Seen> = all
        .iter()
        .filter(|(o, _)| matches!(o.f.as_str(), "getData" | "poll"))
        .map(|(_, s)| s)
        .collect();
    reads.sort_by_key(|s| s.event);
    for s in &reads {
        if let Some(&(v, at)) = last.get(&s.session) {
            if s.version < v {
                out.push(Violation::new(
                    "config-order",
                    format!(
                        "session {:#x} read version {} of /config (event {}) after version {v} (event {at})",
                        s.session, s.version, s.event
                    ),
                    vec![at, s.event],
                ));
                continue;
            }
        }
        last.insert(s.session, (s.version, s.event));
    }
    // Reads show the committed prefix as of their zxid.
    let mut writes: Vec<&Seen> = all
        .iter()
        .filter(|(o, _)| matches!(o.f.as_str(), "setup" | "setData"))
        .map(|(_, s)| s)
        .collect();
    writes.sort_by_key(|w| w.zxid);
    for s in &reads {
        let split = writes.partition_point(|w| w.zxid <= s.zxid);
        let before = split.checked_sub(1).map(|i| writes[i]);
        let after = writes.get(split).copied();
        let stale = before.filter(|w| s.version < w.version);
        let early = after.filter(|w| s.version >= w.version);
        if let Some(w) = stale.or(early) {
            out.push(Violation::new(
                "config-order",
                format!(
                    "the read of /config at zxid {:#x} (event {}) shows version {}, but the acknowledged write of version {} committed at {:#x}",
                    s.zxid, s.event, s.version, w.version, w.zxid
                ),
                vec![w.event, s.event],
            ));
        }
    }
    out
}

/// A watcher as `converge` sees it: answered late, and its last read (with
/// its completion time).
type Watcher<'a> = (bool, Option<(u64, &'a Operation)>);

/// `config-converge`: every live watcher last read the final value of
/// `/config` in `tree` (a serving server's final tree; without one, or
/// without `/config` in it, nothing is judged).
pub fn converge(ops: &[Operation], quiet: Quiet, tree: Option<&DataTree>) -> Vec<Violation> {
    let Some(node) = tree.and_then(|t| t.get(CONFIG)) else {
        return Vec::new();
    };
    let final_data = String::from_utf8_lossy(&node.data).into_owned();
    let final_version = i64::from(node.stat.version);
    let from = quiet.writers_stop_us + quiet.settle_us.saturating_sub(quiet.writers_stop_us) / 2;
    // Per watcher (its client node; its session in a history without
    // nodes): answered late, and its last read.
    let mut watchers: BTreeMap<(u64, u64), Watcher> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let Some(done) = op.complete_time else {
            continue;
        };
        if !matches!(op.f.as_str(), "getData" | "poll") {
            continue;
        }
        let session = || op.meta.as_ref()?.get("session")?.as_u64();
        let key = match op.node {
            Some(n) => (u64::from(n), 0),
            None => (u64::MAX, session().unwrap_or(0)),
        };
        let w = watchers.entry(key).or_insert((false, None));
        w.0 |= (from..quiet.settle_us).contains(&done);
        if op.f == "getData" && w.1.is_none_or(|(t, _)| done >= t) {
            w.1 = Some((done, op));
        }
    }
    let mut out = Vec::new();
    for ((node, session), (live, last)) in watchers {
        if !live {
            continue;
        }
        let shown = last.and_then(|(_, op)| {
            Some((
                op.output.get("version")?.as_i64()?,
                op.output.get("data")?.as_str()?,
                op.complete_index?,
            ))
        });
        if shown.is_some_and(|(v, d, _)| v == final_version && d == final_data) {
            continue;
        }
        out.push(Violation::new(
            "config-converge",
            format!(
                "the watcher {} is answered after the writer stopped, but last read {} while the final tree holds version {final_version} ({final_data:?})",
                if node == u64::MAX {
                    format!("of session {session:#x}")
                } else {
                    format!("on client node {node}")
                },
                shown
                    .map(|(v, d, at)| format!("version {v} ({d:?}, event {at})"))
                    .unwrap_or_else(|| "nothing".into())
            ),
            shown.map(|(_, _, at)| at).into_iter().collect(),
        ));
    }
    out
}
