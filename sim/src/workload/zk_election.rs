//! The ZooKeeper leader-election recipe as a workload (`workload.kind =
//! "election"`), in the shape of Curator's LeaderLatch.
//!
//! Each process (one per client node, so one session each) is a candidate
//! over ephemeral-sequential children of [`ELECTION_PARENT`]:
//!
//! 1. `candidate-create`: create `/election/<guid>-n-`
//!    EPHEMERAL_SEQUENTIAL, the guid naming the attempt (`p<thread>-<n>`)
//!    so that after a `ConnectionLoss` the candidate finds the node it may
//!    or may not have created.
//! 2. `elect`: list the children. A node of this session's earlier attempts
//!    is deleted first (`resign` with `cleanup`). The candidate leads when
//!    its node has the lowest sequence number; otherwise it waits on its
//!    predecessor.
//! 3. `watch`: `exists` on the predecessor, leaving a watch the first time,
//!    re-checked until the predecessor is gone (or its deletion event rides
//!    on a reply), then back to `elect`.
//! 4. While leading: `lead-write`, a `multi` of `check(own candidate node)`
//!    and `setData(/leader, "<process>.<n>", -1)`, so a deposed leader
//!    (its node gone with its session) cannot write. Now and then the leader
//!    resigns (`resign`: deletes its node) and enters again.
//!
//! Any failure of a `lead-write` or a `ConnectionLoss` sends the candidate
//! back to `elect` (re-verify); `SessionExpired` forgets the session's
//! nodes (they went with it) and the candidate re-enters with a new node,
//! as a new process. Writes answered `ConnectionLoss` or `SessionExpired`
//! are `info`.
//!
//! Each completion's `meta` holds the zxid, session and server and, under
//! `election`, the candidate's node (`node`) and, for `elect`, whether the
//! listing made it the leader (`leader`).

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::zk::{CreateMode, WatchKind, ZkError, ZkOp, ZkReply, ZkResponse};
use kzsim_model::ClientReply;

use crate::history::EventType;
use crate::workload::zk::{meta, ok_value};
use crate::workload::zk_lock::{guid_of, seq_of};
use crate::workload::{OpCall, OpDone, Workload};

/// The parent of the candidate nodes.
pub const ELECTION_PARENT: &str = "/election";
/// The znode leaders write through their fenced writes.
pub const LEADER_DATA: &str = "/leader";

/// The chance that a leader resigns after a successful write.
const RESIGN_CHANCE: f64 = 0.05;

/// What a candidate does next.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    Setup,
    Create,
    Elect,
    Cleanup(String),
    Watch(String),
    Lead,
    Resign,
}

/// One candidate's state (it outlives process ids: a thread keeps its
/// client node and session across `info` outcomes).
#[derive(Clone, Debug)]
struct Candidate {
    next: Next,
    attempt: u64,
    /// Guids of this session's attempts, current and stale.
    guids: BTreeSet<String>,
    /// The current attempt's guid.
    current: Option<String>,
    /// The current candidate node, once known.
    node: Option<String>,
    /// Whether the watch on the predecessor was left.
    watching: bool,
    /// Whether the leader resigns after its current write.
    resign_after: bool,
}

impl Candidate {
    fn new() -> Candidate {
        Candidate {
            next: Next::Setup,
            attempt: 0,
            guids: BTreeSet::new(),
            current: None,
            node: None,
            watching: false,
            resign_after: false,
        }
    }

    /// The session ended: its ephemerals went with it; enter again.
    fn reset(&mut self) {
        self.guids.clear();
        self.current = None;
        self.node = None;
        self.next = Next::Create;
    }
}

/// The leader-election workload.
pub struct ElectionWorkload {
    threads: u64,
    candidates: BTreeMap<u64, Candidate>,
    /// `/election` and `/leader` are known to exist.
    setup_done: [bool; 2],
    next_data: u64,
}

use super::zk_lock::call;

impl ElectionWorkload {
    /// The recipe for `threads` candidates (the scenario's `processes`).
    pub fn new(threads: u32) -> ElectionWorkload {
        ElectionWorkload {
            threads: u64::from(threads.max(1)),
            candidates: BTreeMap::new(),
            setup_done: [false; 2],
            next_data: 0,
        }
    }

    fn setup_op(&self) -> OpCall {
        let path = if self.setup_done[0] {
            LEADER_DATA
        } else {
            ELECTION_PARENT
        };
        call(
            ZkOp::Create {
                path: path.into(),
                data: Vec::new(),
                mode: CreateMode::Persistent,
            },
            "setup",
            path,
            json!({"data": "", "ephemeral": false, "sequential": false}),
        )
    }
}

impl Workload for ElectionWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        let thread = process % self.threads;
        let setup = self.setup_done[0] && self.setup_done[1];
        let c = self.candidates.entry(thread).or_insert_with(Candidate::new);
        if c.next == Next::Setup && setup {
            c.next = Next::Create;
        }
        match c.next.clone() {
            Next::Setup => self.setup_op(),
            Next::Create => {
                c.attempt += 1;
                let guid = format!("p{thread}-{}", c.attempt);
                c.guids.insert(guid.clone());
                c.current = Some(guid.clone());
                c.node = None;
                let prefix = format!("{ELECTION_PARENT}/{guid}-n-");
                call(
                    ZkOp::Create {
                        path: prefix.clone(),
                        data: Vec::new(),
                        mode: CreateMode::EphemeralSequential,
                    },
                    "candidate-create",
                    &prefix,
                    json!({"data": "", "ephemeral": true, "sequential": true, "guid": guid}),
                )
            }
            Next::Elect => call(
                ZkOp::GetChildren {
                    path: ELECTION_PARENT.into(),
                    watch: false,
                },
                "elect",
                ELECTION_PARENT,
                json!({ "node": c.node }),
            ),
            Next::Cleanup(path) => call(
                ZkOp::Delete {
                    path: path.clone(),
                    version: -1,
                },
                "resign",
                &path,
                json!({"node": path, "cleanup": true}),
            ),
            Next::Watch(pred) => {
                let watch = !c.watching;
                c.watching = true;
                call(
                    ZkOp::Exists {
                        path: pred.clone(),
                        watch,
                    },
                    "watch",
                    &pred,
                    json!({ "node": c.node, "watch": watch }),
                )
            }
            Next::Lead => {
                let node = c.node.clone().unwrap_or_default();
                c.resign_after = rng.gen_bool(RESIGN_CHANCE);
                self.next_data += 1;
                let data = format!("{process}.{}", self.next_data);
                call(
                    ZkOp::Multi(vec![
                        ZkOp::Check {
                            path: node.clone(),
                            version: -1,
                        },
                        ZkOp::SetData {
                            path: LEADER_DATA.into(),
                            data: data.clone().into_bytes(),
                            version: -1,
                        },
                    ]),
                    "lead-write",
                    LEADER_DATA,
                    json!({"node": node, "data": data}),
                )
            }
            Next::Resign => {
                let node = c.node.clone().unwrap_or_default();
                call(
                    ZkOp::Delete {
                        path: node.clone(),
                        version: -1,
                    },
                    "resign",
                    &node,
                    json!({ "node": node }),
                )
            }
        }
    }

    fn complete(&mut self, process: u64, c: &OpCall, reply: &ClientReply) -> OpDone {
        let ClientReply::Zk(r) = reply else {
            return OpDone::new(
                EventType::Info,
                c.value.clone(),
                Some(format!("not a ZooKeeper reply: {reply:?}")),
            );
        };
        let is_write = matches!(c.f, "setup" | "candidate-create" | "lead-write" | "resign");
        let mut done = match &r.result {
            Ok(resp) => OpDone::new(EventType::Ok, ok_value(resp), None),
            Err(e @ (ZkError::ConnectionLoss | ZkError::SessionExpired)) if is_write => {
                OpDone::new(EventType::Info, c.value.clone(), Some(e.to_string()))
            }
            Err(e) => OpDone::new(EventType::Fail, c.value.clone(), Some(e.to_string())),
        };
        if matches!(r.result, Err(ZkError::SessionExpired)) {
            done.new_process = true;
        }
        let thread = process % self.threads;
        let leader = self.advance(thread, c, r);
        if r.session != 0 {
            let watch = c.value.get("watch").and_then(Value::as_bool) == Some(true);
            let mut m = meta(r, watch);
            let node = self.candidates.get(&thread).and_then(|p| p.node.clone());
            let mut e = json!({ "node": node });
            if let Some(l) = leader {
                e["leader"] = json!(l);
            }
            m["election"] = e;
            done.meta = Some(m);
        }
        done
    }

    fn client_crashed(&mut self, process: u64) {
        // A new process on the rebooted node has a new session: it enters
        // again (the old session's node stays until the session expires).
        let thread = process % self.threads;
        if let Some(c) = self.candidates.get_mut(&thread) {
            if c.next != Next::Setup {
                c.reset();
            }
        }
    }
}

impl ElectionWorkload {
    /// Moves `thread`'s candidate on after a reply; for `elect`, whether
    /// the listing made it the leader.
    fn advance(&mut self, thread: u64, c: &OpCall, r: &ZkReply) -> Option<bool> {
        if c.f == "setup" && matches!(r.result, Ok(_) | Err(ZkError::NodeExists)) {
            let i = usize::from(c.key.as_ref().and_then(Value::as_str) == Some(LEADER_DATA));
            self.setup_done[i] = true;
        }
        let setup = self.setup_done[0] && self.setup_done[1];
        let cand = self.candidates.entry(thread).or_insert_with(Candidate::new);
        if r.result == Err(ZkError::SessionExpired) {
            cand.reset();
            return None;
        }
        let mut leader = None;
        match (c.f, &r.result) {
            ("setup", _) => cand.next = if setup { Next::Create } else { Next::Setup },
            ("candidate-create", Ok(ZkResponse::Created(path))) => {
                cand.node = Some(path.clone());
                cand.next = Next::Elect;
            }
            ("candidate-create", Err(ZkError::NoNode)) => cand.next = Next::Setup,
            // Unknown: the listing looks for the guid.
            ("candidate-create", _) => cand.next = Next::Elect,
            ("elect", Ok(ZkResponse::Children(names, _))) => {
                leader = Some(on_children(cand, names));
            }
            ("elect", Err(ZkError::NoNode)) => cand.next = Next::Setup,
            ("elect", _) => cand.next = Next::Elect,
            ("watch", res) => {
                let pred = c.key.as_ref().and_then(Value::as_str).unwrap_or("");
                let deleted = r
                    .events
                    .iter()
                    .any(|e| e.kind == WatchKind::NodeDeleted && e.path == pred);
                if deleted || !matches!(res, Ok(ZkResponse::Exists(Some(_)))) {
                    cand.next = Next::Elect;
                }
            }
            ("lead-write", Ok(_)) if cand.resign_after => cand.next = Next::Resign,
            ("lead-write", Ok(_)) => {}
            // Lost, or the node gone: re-verify.
            ("lead-write", _) => cand.next = Next::Elect,
            ("resign", res) => {
                let cleanup = c.value.get("cleanup").and_then(Value::as_bool) == Some(true);
                if cleanup {
                    cand.next = Next::Elect;
                } else {
                    if res.is_err() {
                        // The node may survive: stale from now on (its guid
                        // stays in `guids`, so a listing cleans it up).
                        cand.current = None;
                    }
                    cand.node = None;
                    cand.next = Next::Create;
                }
            }
            _ => {}
        }
        leader
    }
}

/// The recipe's step after listing the candidates: adopt the node of the
/// current attempt, clean up stale nodes of this session, lead or wait on
/// the predecessor. Returns whether the candidate leads.
fn on_children(c: &mut Candidate, names: &[String]) -> bool {
    let mut children: Vec<(u64, &String)> =
        names.iter().filter_map(|n| Some((seq_of(n)?, n))).collect();
    children.sort();
    let path = |n: &str| format!("{ELECTION_PARENT}/{n}");
    if c.node.is_none() {
        if let Some(cur) = &c.current {
            c.node = children
                .iter()
                .find(|(_, n)| guid_of(n) == Some(cur.as_str()))
                .map(|(_, n)| path(n));
        }
    }
    let stale = children.iter().find(|(_, n)| {
        let mine = guid_of(n).is_some_and(|g| c.guids.contains(g));
        mine && Some(path(n)) != c.node
    });
    if let Some((_, n)) = stale {
        c.next = Next::Cleanup(path(n));
        return false;
    }
    let Some(node) = c.node.clone() else {
        c.next = Next::Create;
        return false;
    };
    let Some(pos) = children.iter().position(|(_, n)| path(n) == node) else {
        // Our node is gone: enter again.
        c.node = None;
        c.next = Next::Create;
        return false;
    };
    if pos == 0 {
        c.next = Next::Lead;
        return true;
    }
    c.watching = false;
    c.next = Next::Watch(path(children[pos - 1].1));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_adopts_cleans_leads_and_waits() {
        let mut c = Candidate::new();
        c.guids.insert("p0-1".into());
        c.guids.insert("p0-2".into());
        c.current = Some("p0-2".into());
        let names = vec![
            "p1-1-n-0000000003".to_string(),
            "p0-1-n-0000000001".to_string(),
            "p0-2-n-0000000004".to_string(),
        ];
        assert!(!on_children(&mut c, &names));
        assert_eq!(c.node.as_deref(), Some("/election/p0-2-n-0000000004"));
        assert_eq!(c.next, Next::Cleanup("/election/p0-1-n-0000000001".into()));
        let names = vec![names[0].clone(), names[2].clone()];
        assert!(!on_children(&mut c, &names));
        assert_eq!(c.next, Next::Watch("/election/p1-1-n-0000000003".into()));
        assert!(on_children(&mut c, &names[1..]));
        assert_eq!(c.next, Next::Lead);
        assert!(!on_children(&mut c, &names[..1]));
        assert_eq!(c.next, Next::Create);
    }
}
