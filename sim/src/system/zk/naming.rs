//! The check of the naming-service workload (`workload.kind = "naming"`,
//! see `workload::zk_naming`): `naming-stale`.
//!
//! ZooKeeper lets a follower answer reads behind the leader in real time,
//! but every read shows the committed tree as of its zxid (a prefix of the
//! log), and a session's reads never go back. So the check judges each
//! listing of `/services` (and each service's `exists` on its own
//! registration) at its zxid Z, never by wall-clock time. Registrations
//! are ephemeral, created once under a name of their own and removed once
//! (by a delete, or by their session's closeSession when it expires):
//!
//! - a listing at Z holds a registration whose removal had committed by Z:
//!   an acknowledged delete at a zxid <= Z, or an earlier observation (at a
//!   zxid <= Z, after its creation) that lacked it; or one whose
//!   acknowledged create committed after Z;
//! - a listing at Z misses a registration known to exist at or before Z
//!   (its acknowledged create, or another observation), whose session was
//!   still live at Z (answered at a zxid >= Z: a server that had applied the
//!   session's closeSession would have refused it), and that no delete
//!   explains (none acknowledged at or before Z, none of unknown outcome
//!   invoked before the listing returned).
//!
//! `info` operations are never evidence of a state: a create of unknown
//! outcome is known from the listings that show it (its owner is the
//! session it ran on, recorded in `meta`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::checks::answered;
use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;
use crate::workload::zk_naming::SERVICES;

/// What the history shows about one registration.
#[derive(Clone, Debug, Default)]
struct Registration {
    owner: Option<u64>,
    /// Its acknowledged create: zxid and event.
    created: Option<(u64, usize)>,
    /// Zxids it was seen at, with the event.
    present: Vec<(u64, usize)>,
    /// Observations that lacked it: zxid, event, completion time.
    absent: Vec<(u64, usize, u64)>,
    /// Its acknowledged delete: zxid and event.
    deleted: Option<(u64, usize)>,
    /// Invoke times of deletes of unknown outcome.
    maybe_deleted: Vec<u64>,
}

impl Registration {
    /// The lowest zxid it is known to exist at.
    fn first_known(&self) -> Option<u64> {
        self.present
            .iter()
            .map(|&(z, _)| z)
            .chain(self.created.map(|(z, _)| z))
            .min()
    }
}

fn zxid_session(op: &Operation) -> Option<(u64, u64)> {
    let m = op.meta.as_ref()?;
    Some((m.get("zxid")?.as_u64()?, m.get("session")?.as_u64()?))
}

fn is_registration(path: &str) -> bool {
    path.strip_prefix(SERVICES)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|n| !n.is_empty() && !n.contains('/'))
}

/// The registrations the history shows, by path.
fn gather(ops: &[Operation]) -> BTreeMap<String, Registration> {
    let mut regs: BTreeMap<String, Registration> = BTreeMap::new();
    // Listings: zxid, names, event, completion time.
    let mut listings: Vec<(u64, Vec<String>, usize, u64)> = Vec::new();
    for op in ops {
        let key = op.key.as_ref().and_then(Value::as_str).unwrap_or("");
        let zs = zxid_session(op);
        let ev = op.complete_index.unwrap_or(op.invoke_index);
        let done_at = op.complete_time.unwrap_or(u64::MAX);
        match (op.f.as_str(), op.outcome) {
            ("create", outcome) if is_registration(key) => {
                let r = regs.entry(key.to_string()).or_default();
                r.owner = r.owner.or(zs.map(|(_, s)| s));
                if let (Outcome::Ok, Some((z, _))) = (outcome, zs) {
                    r.created = Some((z, ev));
                }
            }
            ("delete", outcome) if is_registration(key) => {
                let r = regs.entry(key.to_string()).or_default();
                match (outcome, zs) {
                    (Outcome::Ok, Some((z, _))) => r.deleted = Some((z, ev)),
                    (Outcome::Info, _) => r.maybe_deleted.push(op.invoke_time),
                    _ => {}
                }
            }
            ("exists", Outcome::Ok) if is_registration(key) => {
                let Some((z, _)) = zs else { continue };
                let r = regs.entry(key.to_string()).or_default();
                if op.output.is_null() {
                    r.absent.push((z, ev, done_at));
                } else {
                    r.present.push((z, ev));
                }
            }
            ("getChildren", Outcome::Ok) if key == SERVICES => {
                let Some((z, _)) = zs else { continue };
                let names: Vec<String> = op
                    .output
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|n| format!("{SERVICES}/{n}"))
                    .collect();
                for n in &names {
                    regs.entry(n.clone()).or_default().present.push((z, ev));
                }
                listings.push((z, names, ev, done_at));
            }
            _ => {}
        }
    }
    for (z, names, ev, done_at) in &listings {
        for (path, r) in regs.iter_mut() {
            if !names.contains(path) {
                r.absent.push((*z, *ev, *done_at));
            }
        }
    }
    regs
}

/// `naming-stale` over the naming service's history.
pub fn stale(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let regs = gather(ops);
    // Per session, the highest zxid of a definite answer, and its event.
    let mut alive: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for (i, e) in history.events.iter().enumerate() {
        if let Some((s, z)) = answered(e) {
            let a = alive.entry(s).or_insert((z, i));
            if z > a.0 {
                *a = (z, i);
            }
        }
    }
    let mut out = Vec::new();
    let v = |text: String, events: Vec<usize>| Violation::new("naming-stale", text, events);
    for (path, r) in &regs {
        let first = r.first_known();
        // Absences after the creation: the registration was removed by then.
        let removed = r
            .absent
            .iter()
            .filter(|&&(z, _, _)| first.is_some_and(|f| f <= z));
        // Held after its removal, or before its creation.
        if let Some(&(z, at)) = r.present.iter().find(|&&(z, _)| {
            r.deleted.is_some_and(|(d, _)| d <= z) || removed.clone().any(|&(a, _, _)| a <= z)
        }) {
            let (rz, rat) = r
                .deleted
                .filter(|&(d, _)| d <= z)
                .or_else(|| {
                    removed
                        .clone()
                        .filter(|&&(a, _, _)| a <= z)
                        .map(|&(a, e, _)| (a, e))
                        .min()
                })
                .unwrap_or((0, at));
            out.push(v(
                format!(
                    "`{path}` is held at zxid {z:#x} (event {at}), but it was gone at {rz:#x} (event {rat})"
                ),
                vec![rat, at],
            ));
        }
        if let Some((c, cat)) = r.created {
            if let Some(&(z, at)) = r.present.iter().find(|&&(z, _)| z < c) {
                out.push(v(
                    format!(
                        "`{path}` is held at zxid {z:#x} (event {at}), before its create committed at {c:#x} (event {cat})"
                    ),
                    vec![at, cat],
                ));
            }
        }
        // Missed while its session lived.
        let Some(owner) = r.owner else { continue };
        let Some(&(live_z, live_at)) = alive.get(&owner) else {
            continue;
        };
        let missed = removed.clone().find(|&&(z, _, done_at)| {
            let deleted = r.deleted.is_some_and(|(d, _)| d <= z)
                || r.maybe_deleted.iter().any(|&t| t < done_at);
            !deleted && live_z >= z
        });
        if let Some(&(z, at, _)) = missed {
            out.push(v(
                format!(
                    "`{path}` of session {owner:#x} is missing at zxid {z:#x} (event {at}) with no delete, but the session was answered at {live_z:#x} (event {live_at})"
                ),
                vec![at, live_at],
            ));
        }
    }
    out
}
