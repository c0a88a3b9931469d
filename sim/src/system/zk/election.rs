//! Checks of the leader-election recipe's history (`workload.kind =
//! "election"`, see `workload::zk_election`), judged on zxids:
//!
//! - `election-two-leaders`: a candidate node N *acts as leader* at zxid Z
//!   when its own session's listing of `/election` at Z made it the leader
//!   (`elect` with `leader: true`) and when its fenced write (a check of N
//!   and a setData of `/leader`) commits at Z. Its tenure, as far as the
//!   history shows it, runs from the first zxid it acted at to the last
//!   zxid N is known to exist at (a listing, an `exists`, a fenced write,
//!   or its acknowledged delete at Zd, showing it at Zd - 1). Two distinct
//!   nodes' tenures must not overlap: within a tenure N existed throughout
//!   (an ephemeral is created once and deleted once), so a second node that
//!   learned it was lowest inside it, or whose own tenure started before
//!   and reaches into it, contradicts one of the two listings. A fenced
//!   write must also run on the session that owns its node, and never
//!   commit at or after the acknowledged delete of that node; and a listing
//!   that made a candidate leader shows its node lowest.
//! - `election-no-leader`: after the faults heal, in the second half of
//!   the stretch before the workload stops, some candidate acts as leader,
//!   through a node still live at the end (in a serving server's final tree,
//!   when one is given) or that its own candidate resigned.
//!
//! `info` operations are never evidence of a state; an `info` create whose
//! node shows up in a listing is known from that listing (its owner is the
//! session the create ran on, recorded in `meta`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use kzsim_model::zk::tree::DataTree;

use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::workload::zk_election::ELECTION_PARENT;
use crate::workload::zk_lock::{guid_of, seq_of};

/// When the faults of a run heal and when the workload stops issuing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    /// The quiet period begins: every fault healed (µs).
    pub heal_us: u64,
    /// Writers that stop early stop here (µs).
    pub writers_stop_us: u64,
    /// No operation starts from here on (µs).
    pub settle_us: u64,
}

/// A moment a node acted as leader.
#[derive(Clone, Copy, Debug)]
struct Act {
    zxid: u64,
    session: u64,
    event: usize,
    time: u64,
    write: bool,
}

/// What the history shows about one candidate node.
#[derive(Clone, Debug, Default)]
struct NodeFacts {
    owner: Option<u64>,
    /// Zxids the node is known to exist at, with the event showing it.
    exists: Vec<(u64, usize)>,
    acts: Vec<Act>,
    /// Its acknowledged delete: zxid and event.
    deleted: Option<(u64, usize)>,
    /// A delete of it was issued by its candidate (whatever the outcome).
    resigned: bool,
}

fn meta<'a>(history: &'a History, op: &Operation) -> Option<&'a Value> {
    history.events.get(op.complete_index?)?.meta.as_ref()
}

fn zxid_session(history: &History, op: &Operation) -> Option<(u64, u64)> {
    let m = meta(history, op)?;
    Some((m.get("zxid")?.as_u64()?, m.get("session")?.as_u64()?))
}

fn full(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{ELECTION_PARENT}/{name}")
    }
}

fn input_node(op: &Operation) -> Option<String> {
    op.input
        .get("node")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

fn entry<'a>(nodes: &'a mut BTreeMap<String, NodeFacts>, path: &str) -> Option<&'a mut NodeFacts> {
    seq_of(path)?;
    Some(nodes.entry(path.to_string()).or_default())
}

/// Everything the election history shows, by candidate node.
fn gather(history: &History, ops: &[Operation]) -> BTreeMap<String, NodeFacts> {
    let mut nodes: BTreeMap<String, NodeFacts> = BTreeMap::new();
    let mut guid_owner: BTreeMap<String, u64> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == "candidate-create") {
        let guid = op.input.get("guid").and_then(Value::as_str);
        let session = meta(history, op).and_then(|m| m.get("session")?.as_u64());
        if let (Some(g), Some(s)) = (guid, session) {
            guid_owner.insert(g.to_string(), s);
        }
    }
    for op in ops {
        let Some((z, s)) = zxid_session(history, op) else {
            continue;
        };
        let ev = op.complete_index.unwrap_or(op.invoke_index);
        let time = op.complete_time.unwrap_or(op.invoke_time);
        match (op.f.as_str(), op.outcome) {
            ("candidate-create", Outcome::Ok) => {
                if let Some(n) = op.output.as_str().and_then(|p| entry(&mut nodes, p)) {
                    n.owner = Some(s);
                    n.exists.push((z, ev));
                }
            }
            ("elect", Outcome::Ok) => {
                for name in op.output.as_array().into_iter().flatten() {
                    if let Some(n) = name.as_str().map(full).and_then(|p| entry(&mut nodes, &p)) {
                        n.exists.push((z, ev));
                    }
                }
                let e = meta(history, op).and_then(|m| m.get("election"));
                let leads = e.and_then(|e| e.get("leader")?.as_bool()) == Some(true);
                let mine = e.and_then(|e| e.get("node")?.as_str());
                if let (true, Some(n)) = (leads, mine.and_then(|p| entry(&mut nodes, p))) {
                    n.acts.push(Act {
                        zxid: z,
                        session: s,
                        event: ev,
                        time,
                        write: false,
                    });
                }
            }
            ("watch", Outcome::Ok) if !op.output.is_null() => {
                let key = op.key.as_ref().and_then(Value::as_str);
                if let Some(n) = key.and_then(|p| entry(&mut nodes, p)) {
                    n.exists.push((z, ev));
                }
            }
            ("lead-write", Outcome::Ok) => {
                if let Some(n) = input_node(op).and_then(|p| entry(&mut nodes, &p)) {
                    n.exists.push((z, ev));
                    n.acts.push(Act {
                        zxid: z,
                        session: s,
                        event: ev,
                        time,
                        write: true,
                    });
                }
            }
            ("resign", outcome) => {
                if let Some(n) = input_node(op).and_then(|p| entry(&mut nodes, &p)) {
                    n.resigned = true;
                    if outcome == Outcome::Ok {
                        n.deleted = Some((z, ev));
                        n.exists.push((z.saturating_sub(1), ev));
                    }
                }
            }
            _ => {}
        }
    }
    for (path, n) in nodes.iter_mut() {
        if n.owner.is_none() {
            n.owner = guid_of(path).and_then(|g| guid_owner.get(g).copied());
        }
    }
    // Resigns of unknown outcome are evidence of nothing but the intent.
    for op in ops.iter().filter(|o| o.f == "resign") {
        if let Some(n) = input_node(op).and_then(|p| nodes.get_mut(&p)) {
            n.resigned = true;
        }
    }
    nodes
}

/// A node's tenure as the history shows it: first act to last existence.
struct Tenure<'a> {
    path: &'a str,
    start: Act,
    end: (u64, usize),
}

/// Listings that made a candidate leader although they do not show its
/// node lowest (a lower node listed, or its own node missing).
fn false_claims(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let mut out = Vec::new();
    for op in ops
        .iter()
        .filter(|o| o.f == "elect" && o.outcome == Outcome::Ok)
    {
        let e = meta(history, op).and_then(|m| m.get("election"));
        if e.and_then(|e| e.get("leader")?.as_bool()) != Some(true) {
            continue;
        }
        let Some(mine) = e.and_then(|e| e.get("node")?.as_str()) else {
            continue;
        };
        let listed: Vec<String> = op
            .output
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(full)
            .collect();
        let lowest = listed.iter().filter_map(|n| Some((seq_of(n)?, n))).min();
        if lowest.map(|(_, n)| n.as_str()) != Some(mine) {
            out.push(Violation::new(
                "election-two-leaders",
                format!(
                    "`{mine}` acted as leader on a listing whose lowest node is {}",
                    lowest.map_or("none".to_string(), |(_, n)| format!("`{n}`"))
                ),
                op.complete_index.into_iter().collect(),
            ));
        }
    }
    out
}

/// `election-two-leaders` over the election recipe's history.
pub fn two_leaders(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let nodes = gather(history, ops);
    let mut out = false_claims(history, ops);
    let mut tenures: Vec<Tenure> = Vec::new();
    for (path, n) in &nodes {
        for a in n.acts.iter().filter(|a| a.write) {
            if let Some(o) = n.owner.filter(|&o| o != a.session) {
                out.push(Violation::new(
                    "election-two-leaders",
                    format!(
                        "session {:#x} wrote /leader at zxid {:#x} through `{path}`, a node of session {o:#x}",
                        a.session, a.zxid
                    ),
                    vec![a.event],
                ));
            }
            if let Some((dz, dev)) = n.deleted.filter(|&(dz, _)| a.zxid >= dz) {
                out.push(Violation::new(
                    "election-two-leaders",
                    format!(
                        "the fenced write through `{path}` committed at zxid {:#x}, after the node's delete at {dz:#x}",
                        a.zxid
                    ),
                    vec![dev, a.event],
                ));
            }
        }
        let (Some(start), Some(&end)) =
            (n.acts.iter().min_by_key(|a| a.zxid), n.exists.iter().max())
        else {
            continue;
        };
        tenures.push(Tenure {
            path,
            start: *start,
            end,
        });
    }
    tenures.sort_by_key(|t| t.start.zxid);
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (i, a) in tenures.iter().enumerate() {
        for (j, b) in tenures.iter().enumerate().skip(i + 1) {
            if b.start.zxid > a.end.0 {
                break;
            }
            if !reported.insert((i, j)) {
                continue;
            }
            out.push(Violation::new(
                "election-two-leaders",
                format!(
                    "`{}` led from zxid {:#x} (event {}) and still existed at {:#x} (event {}), but `{}` acted as leader at {:#x} ({} at event {})",
                    a.path,
                    a.start.zxid,
                    a.start.event,
                    a.end.0,
                    a.end.1,
                    b.path,
                    b.start.zxid,
                    if b.start.write { "fenced write" } else { "listing" },
                    b.start.event
                ),
                vec![a.start.event, a.end.1, b.start.event],
            ));
        }
    }
    out
}

/// `election-no-leader`: after the faults heal some candidate leads, through
/// a node that is live at the end (in `tree`, a serving server's final tree,
/// when given) or that its candidate resigned.
pub fn no_leader(
    history: &History,
    ops: &[Operation],
    quiet: Quiet,
    tree: Option<&DataTree>,
) -> Vec<Violation> {
    let nodes = gather(history, ops);
    let from = quiet.heal_us + quiet.settle_us.saturating_sub(quiet.heal_us) / 2;
    let live = |path: &str, n: &NodeFacts| n.resigned || tree.is_none_or(|t| t.get(path).is_some());
    let led = nodes.iter().any(|(path, n)| {
        live(path, n)
            && n.acts
                .iter()
                .any(|a| (from..quiet.settle_us).contains(&a.time))
    });
    if led {
        return Vec::new();
    }
    let last = nodes
        .values()
        .flat_map(|n| n.acts.iter())
        .max_by_key(|a| a.time)
        .map(|a| (a.time, a.event));
    vec![Violation::new(
        "election-no-leader",
        format!(
            "no live candidate acted as leader between {} ms and {} ms, after the faults healed at {} ms (last act: {})",
            from / 1000,
            quiet.settle_us / 1000,
            quiet.heal_us / 1000,
            last.map(|(t, e)| format!("{} ms, event {e}", t / 1000))
                .unwrap_or_else(|| "none".into())
        ),
        last.map(|(_, e)| e).into_iter().collect(),
    )]
}
