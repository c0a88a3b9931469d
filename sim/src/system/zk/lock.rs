//! Checks of the lock recipe's history (`workload.kind = "lock"`, see
//! `workload::zk_lock`), judged on zxids, the order ZooKeeper commits in:
//!
//! - `lock-exclusion`: mutual exclusion as the fenced writes show it. A
//!   session claims the lock at zxid Z when a listing of `/lock` at Z shows
//!   its node lowest (`acquire`) and when its fenced write (a check of its
//!   node and a setData) commits at Z. Sequence numbers grow with the
//!   zxid, so a node with a lower sequence number was created earlier; if
//!   such a node is known to exist at a zxid >= Z (a create, a listing, a
//!   fenced write, an `exists`, or its delete at a zxid > Z), two nodes
//!   held the lock at Z.
//!   Successful fenced writes must also have distinct zxids (a total order)
//!   and come from the session that owns the node they check.
//! - `ephemeral-lost`: an ephemeral lock node seen absent at zxid Z (a
//!   listing after its creation, an `exists`, a delete or fenced write that
//!   answered `NoNode`) although no delete of it can explain that (none
//!   committed at or before Z, none of unknown outcome invoked before the
//!   observation returned), while its session is shown alive at a zxid >= Z
//!   (a definite answer on that session). Only the session's closeSession
//!   (expiry) may remove it, and a session answered at or after Z had not
//!   closed by Z. After the quiet period, [`lost_in_final_tree`] also flags
//!   a known ephemeral missing from a server whose tree still holds its
//!   session, with no delete issued for it.
//!
//! `info` operations never count as evidence of a state; an `info` create
//! whose node shows up in a listing is known from that listing (its owner is
//! the session the create ran on, recorded in `meta`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use kzsim_model::zk::tree::DataTree;

use super::checks::answered;
use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::workload::zk_lock::{guid_of, seq_of, LOCK_PARENT};

/// What the history shows about one lock node.
#[derive(Clone, Debug, Default)]
struct NodeFacts {
    seq: u64,
    /// The owning session, when known.
    owner: Option<u64>,
    /// Zxids at which the node existed, with the event that shows it.
    exists: Vec<(u64, usize)>,
    /// Zxids at which it was absent (after its creation, or by a definite
    /// answer), with the event and the observation's completion time.
    absent: Vec<(u64, usize, u64)>,
    /// Acknowledged deletes: zxid and event.
    deleted: Vec<(u64, usize)>,
    /// Invoke times of deletes whose outcome is unknown.
    maybe_deleted: Vec<u64>,
    /// Any delete was issued (whatever its outcome).
    delete_issued: bool,
}

impl NodeFacts {
    /// The highest zxid the node is known to exist at (a delete at Zd shows
    /// it existed at Zd - 1).
    fn last_exists(&self) -> Option<(u64, usize)> {
        self.exists
            .iter()
            .copied()
            .chain(self.deleted.iter().map(|&(z, e)| (z.saturating_sub(1), e)))
            .max()
    }

    fn first_exists(&self) -> Option<u64> {
        self.exists.iter().map(|&(z, _)| z).min()
    }
}

/// A claim that `node` held the lock at `zxid`.
struct Claim {
    node: String,
    zxid: u64,
    session: u64,
    event: usize,
    what: &'static str,
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
        format!("{LOCK_PARENT}/{name}")
    }
}

fn input_node(op: &Operation) -> Option<String> {
    op.input
        .get("node")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Everything the lock history shows, by node.
struct Facts {
    nodes: BTreeMap<String, NodeFacts>,
    /// Listings of `/lock`: zxid, names, event, completion time.
    listings: Vec<(u64, BTreeSet<String>, usize, u64)>,
    claims: Vec<Claim>,
    /// Per session, the highest zxid of a definite answer, and its event.
    alive: BTreeMap<u64, (u64, usize)>,
}

impl Facts {
    fn node(&mut self, path: &str) -> Option<&mut NodeFacts> {
        let seq = seq_of(path)?;
        let n = self.nodes.entry(path.to_string()).or_default();
        n.seq = seq;
        Some(n)
    }

    fn gather(history: &History, ops: &[Operation]) -> Facts {
        let mut f = Facts {
            nodes: BTreeMap::new(),
            listings: Vec::new(),
            claims: Vec::new(),
            alive: BTreeMap::new(),
        };
        for (i, e) in history.events.iter().enumerate() {
            if let Some((s, z)) = answered(e) {
                let a = f.alive.entry(s).or_insert((z, i));
                if z > a.0 {
                    *a = (z, i);
                }
            }
        }
        let mut guid_owner: BTreeMap<String, u64> = BTreeMap::new();
        for op in ops.iter().filter(|o| o.f == "lock-create") {
            let guid = op.input.get("guid").and_then(Value::as_str);
            let session = meta(history, op).and_then(|m| m.get("session")?.as_u64());
            if let (Some(g), Some(s)) = (guid, session) {
                guid_owner.insert(g.to_string(), s);
            }
        }
        for op in ops {
            let zs = zxid_session(history, op);
            let ev = op.complete_index.unwrap_or(op.invoke_index);
            let done_at = op.complete_time.unwrap_or(u64::MAX);
            let nodefail = op.outcome == Outcome::Fail && op.error.as_deref() == Some("NoNode");
            match (op.f.as_str(), op.outcome) {
                ("lock-create", Outcome::Ok) => {
                    let (Some(path), Some((z, s))) = (op.output.as_str(), zs) else {
                        continue;
                    };
                    if let Some(n) = f.node(path) {
                        n.owner = Some(s);
                        n.exists.push((z, ev));
                    }
                }
                ("acquire", Outcome::Ok) => {
                    let Some((z, s)) = zs else { continue };
                    let names: BTreeSet<String> = op
                        .output
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(full)
                        .collect();
                    for name in &names {
                        if let Some(n) = f.node(name) {
                            n.exists.push((z, ev));
                        }
                    }
                    let mine = meta(history, op)
                        .and_then(|m| m.get("lock")?.get("node")?.as_str())
                        .map(str::to_string);
                    let lowest = names
                        .iter()
                        .filter_map(|n| Some((seq_of(n)?, n)))
                        .min()
                        .map(|(_, n)| n.clone());
                    if let Some(node) = mine.filter(|m| Some(m) == lowest.as_ref()) {
                        f.claims.push(Claim {
                            node,
                            zxid: z,
                            session: s,
                            event: ev,
                            what: "acquire",
                        });
                    }
                    f.listings.push((z, names, ev, done_at));
                }
                ("watch", Outcome::Ok) => {
                    let (Some(path), Some((z, _))) = (op.key.as_ref().and_then(Value::as_str), zs)
                    else {
                        continue;
                    };
                    let present = !op.output.is_null();
                    if let Some(n) = f.node(path) {
                        if present {
                            n.exists.push((z, ev));
                        } else {
                            n.absent.push((z, ev, done_at));
                        }
                    }
                }
                ("fenced-write", Outcome::Ok) => {
                    let (Some(node), Some((z, s))) = (input_node(op), zs) else {
                        continue;
                    };
                    if let Some(n) = f.node(&node) {
                        n.exists.push((z, ev));
                    }
                    f.claims.push(Claim {
                        node,
                        zxid: z,
                        session: s,
                        event: ev,
                        what: "fenced write",
                    });
                }
                // `/fenced` is never deleted, so `NoNode` is the check's.
                ("fenced-write", _) if nodefail => {
                    let (Some(node), Some((z, _))) = (input_node(op), zs) else {
                        continue;
                    };
                    if let Some(n) = f.node(&node) {
                        n.absent.push((z, ev, done_at));
                    }
                }
                ("release", outcome) => {
                    let Some(node) = input_node(op) else { continue };
                    let Some(n) = f.node(&node) else { continue };
                    n.delete_issued = true;
                    match (outcome, zs) {
                        (Outcome::Ok, Some((z, _))) => n.deleted.push((z, ev)),
                        (Outcome::Fail, Some((z, _))) if nodefail => {
                            n.absent.push((z, ev, done_at))
                        }
                        (Outcome::Fail, _) => {}
                        _ => n.maybe_deleted.push(op.invoke_time),
                    }
                }
                _ => {}
            }
        }
        for (path, n) in f.nodes.iter_mut() {
            if n.owner.is_none() {
                n.owner = guid_of(path).and_then(|g| guid_owner.get(g).copied());
            }
        }
        // Absences shown by listings: a node created before the listing's
        // zxid (it was seen earlier, or a node with a higher sequence number
        // is listed) that the listing lacks.
        let listings = std::mem::take(&mut f.listings);
        for (z, names, ev, done_at) in &listings {
            let top = names.iter().filter_map(|n| seq_of(n)).max();
            for (path, n) in f.nodes.iter_mut() {
                if names.contains(path) {
                    continue;
                }
                let created =
                    n.first_exists().is_some_and(|c| c <= *z) || top.is_some_and(|t| t > n.seq);
                if created {
                    n.absent.push((*z, *ev, *done_at));
                }
            }
        }
        f.listings = listings;
        f
    }
}

/// Mutual exclusion (`lock-exclusion`) over the lock recipe's history.
pub fn exclusion(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let f = Facts::gather(history, ops);
    let mut out = Vec::new();
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    for c in &f.claims {
        let Some(seq) = seq_of(&c.node) else { continue };
        let owner = f.nodes.get(&c.node).and_then(|n| n.owner);
        if c.what == "fenced write" && owner.is_some_and(|o| o != c.session) {
            out.push(Violation::new(
                "lock-exclusion",
                format!(
                    "session {:#x} wrote /fenced at zxid {:#x} through `{}`, a node of session {:#x}",
                    c.session,
                    c.zxid,
                    c.node,
                    owner.unwrap_or(0)
                ),
                vec![c.event],
            ));
        }
        for (path, n) in f.nodes.iter().filter(|(_, n)| n.seq < seq) {
            let Some((z, at)) = n.last_exists() else {
                continue;
            };
            if z < c.zxid || !reported.insert((path.clone(), c.node.clone())) {
                continue;
            }
            out.push(Violation::new(
                "lock-exclusion",
                format!(
                    "session {:#x} held the lock through `{}` at zxid {:#x} ({} at event {}), but `{path}` (session {}), lower in the queue, still existed at zxid {z:#x} (event {at})",
                    c.session,
                    c.node,
                    c.zxid,
                    c.what,
                    c.event,
                    n.owner.map(|o| format!("{o:#x}")).unwrap_or_else(|| "?".into()),
                ),
                vec![at, c.event],
            ));
        }
    }
    let mut writes: BTreeMap<u64, usize> = BTreeMap::new();
    for c in f.claims.iter().filter(|c| c.what == "fenced write") {
        if let Some(prev) = writes.insert(c.zxid, c.event) {
            out.push(Violation::new(
                "lock-exclusion",
                format!("two fenced writes committed at the same zxid {:#x}", c.zxid),
                vec![prev, c.event],
            ));
        }
    }
    out
}

/// Ephemeral lock nodes that vanished while their session lived
/// (`ephemeral-lost`), as the history shows it.
pub fn ephemerals_lost(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let f = Facts::gather(history, ops);
    let mut out = Vec::new();
    for (path, n) in &f.nodes {
        let Some(owner) = n.owner else { continue };
        let Some(&(alive_z, alive_at)) = f.alive.get(&owner) else {
            continue;
        };
        let gone = n.absent.iter().find(|&&(z, _, done_at)| {
            let deleted = n.deleted.iter().any(|&(d, _)| d <= z)
                || n.maybe_deleted.iter().any(|&t| t < done_at);
            !deleted && alive_z >= z
        });
        if let Some(&(z, at, _)) = gone {
            out.push(Violation::new(
                "ephemeral-lost",
                format!(
                    "`{path}` of session {owner:#x} was absent at zxid {z:#x} (event {at}) with no delete, but the session was answered at zxid {alive_z:#x} (event {alive_at})"
                ),
                vec![at, alive_at],
            ));
        }
    }
    out
}

/// After the quiet period: a lock node the history knows of that is gone
/// from `tree` (server `server`) while the tree still holds its session,
/// and no delete of it was ever issued (`ephemeral-lost`).
pub fn lost_in_final_tree(
    history: &History,
    ops: &[Operation],
    server: usize,
    tree: &DataTree,
) -> Vec<Violation> {
    let f = Facts::gather(history, ops);
    let mut out = Vec::new();
    for (path, n) in &f.nodes {
        let Some(owner) = n.owner else { continue };
        if n.delete_issued || n.exists.is_empty() || !tree.has_session(owner) {
            continue;
        }
        if tree.get(path).is_none() {
            out.push(Violation::new(
                "ephemeral-lost",
                format!(
                    "server {server}: `{path}` is gone though its session {owner:#x} lives and no delete was issued"
                ),
                n.exists.iter().map(|&(_, e)| e).take(1).collect(),
            ));
        }
    }
    out
}
