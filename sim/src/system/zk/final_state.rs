//! End-of-run checks on the servers themselves, after the quiet period:
//! every server is back and serving, all hold the same tree, no acknowledged
//! transaction is missing, and no ephemeral outlives its session.
//!
//! One server that does not serve is not a failure: a server that accepted
//! an epoch from a leader that never established it (the leader lost its
//! quorum, or the power, right after its LEADERINFO) holds an accepted
//! epoch above the epoch a later leader established without it. ZooKeeper's
//! `Learner.registerWithLeader` refuses a leader epoch below its accepted
//! one ("Leaders epoch, E is less than accepted epoch, A"), so the server
//! goes back to LOOKING and follows, and is refused, again until the next
//! election, when its accepted epoch raises the new one. The ensemble
//! serves with the rest; real ZooKeeper does the same.

use kzsim_model::zk::ZkServer;

use crate::history::{History, Operation, Outcome};
use crate::outcome::Violation;

/// Whether `s` is kept out only by ZooKeeper's own rule (see the module
/// docs): it is up, not halted, not serving, and its accepted epoch is
/// above the epoch of the established leader that serves.
fn waits_for_next_election(s: &ZkServer, servers: &[Option<&ZkServer>]) -> bool {
    let leader_epoch = servers
        .iter()
        .flatten()
        .find(|l| l.is_leader())
        .map(|l| l.epochs().1);
    !s.is_serving() && !s.is_halted() && leader_epoch.is_some_and(|e| s.epochs().0 > e)
}

/// The final-state checks. `servers[i]` is `None` for a server that is down.
pub fn check(
    history: &History,
    ops: &[Operation],
    servers: &[Option<&ZkServer>],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let serving: Vec<(usize, &ZkServer)> = servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| s.is_serving()).map(|s| (i, s)))
        .collect();
    let waiting = servers
        .iter()
        .filter(|s| s.is_some_and(|s| waits_for_next_election(s, servers)))
        .count();
    if serving.len() + waiting < servers.len() {
        let states: Vec<String> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                None => format!("{i}: down"),
                Some(s) => format!("{i}: {}", kzsim_model::Node::role(*s)),
            })
            .collect();
        out.push(Violation::new(
            "not-recovered",
            format!(
                "after the quiet period only {} of {} servers serve ({})",
                serving.len(),
                servers.len(),
                states.join("; ")
            ),
            vec![],
        ));
    }
    let digests: Vec<(usize, u64, u64)> = serving
        .iter()
        .map(|(i, s)| (*i, s.tree().digest(), s.tree().last_zxid()))
        .collect();
    if digests.windows(2).any(|w| w[0].1 != w[1].1) {
        let all: Vec<String> = digests
            .iter()
            .map(|(i, d, z)| format!("server {i}: digest {d:016x} at zxid {z:#x}"))
            .collect();
        out.push(Violation::new(
            "divergent-trees",
            format!("servers hold different trees: {}", all.join("; ")),
            vec![],
        ));
    }
    // The highest acknowledged write must be in every serving tree.
    let acked = ops
        .iter()
        .filter(|o| {
            o.outcome == Outcome::Ok
                && matches!(
                    o.f.as_str(),
                    "create"
                        | "delete"
                        | "setData"
                        | "setup"
                        | "lock-create"
                        | "fenced-write"
                        | "release"
                        | "candidate-create"
                        | "lead-write"
                        | "resign"
                )
        })
        .filter_map(|o| {
            let e = &history.events[o.complete_index?];
            Some((e.meta.as_ref()?.get("zxid")?.as_u64()?, o.invoke_index))
        })
        .max();
    if let Some((zxid, at)) = acked {
        for (i, s) in &serving {
            if s.tree().last_zxid() < zxid {
                out.push(Violation::new(
                    "lost-commit",
                    format!(
                        "server {i} ends at zxid {:#x}, before the acknowledged write at {zxid:#x}",
                        s.tree().last_zxid()
                    ),
                    vec![at],
                ));
            }
        }
    }
    for (i, s) in &serving {
        let tree = s.tree();
        for path in tree.paths() {
            let Some(node) = tree.get(path) else { continue };
            let owner = node.stat.ephemeral_owner;
            if owner != 0 && !tree.has_session(owner) {
                out.push(Violation::new(
                    "ephemeral-leak",
                    format!("server {i}: ephemeral `{path}` outlives its session {owner:#x}"),
                    vec![],
                ));
            }
        }
    }
    out
}
