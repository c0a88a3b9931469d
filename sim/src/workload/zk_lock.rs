//! The ZooKeeper lock recipe as a workload (`workload.kind = "lock"`).
//!
//! Each process (one per client node, so one session each) runs the recipe
//! over ephemeral-sequential children of [`LOCK_PARENT`]:
//!
//! 1. `lock-create`: create `/lock/<guid>-n-` EPHEMERAL_SEQUENTIAL, where
//!    the guid names the attempt (`p<thread>-<attempt>`), as Curator's
//!    protected names do, so that after a `ConnectionLoss` the recipe can
//!    find the node it may or may not have created.
//! 2. `acquire`: list the children. A node of this session's earlier
//!    attempts (a create whose answer was lost and that landed after all, a
//!    release whose answer was lost) is deleted first (`release` with
//!    `cleanup`). The process holds the lock when its node has the lowest
//!    sequence number; otherwise it waits on its predecessor.
//! 3. `watch`: `exists` on the predecessor, leaving a watch the first time,
//!    re-checked until the predecessor is gone (or its deletion event rides
//!    on a reply), then back to `acquire`.
//! 4. While holding: `read` (`getData /fenced`) and `fenced-write`: a
//!    `multi` of `check(own lock node)` and `setData(/fenced, version
//!    read)`, so a holder whose node (session) is gone cannot write. One to
//!    three writes, then `release` (delete the lock node) and start again.
//!
//! Any `ConnectionLoss` sends the process back to `acquire` (re-verify);
//! `SessionExpired` forgets the session's nodes (they go with it) and the
//! process continues as a new process with a new session; so does a
//! process whose client node crashed (`crash-client`), though the old
//! session's nodes stay until it expires. Writes whose
//! answer is `ConnectionLoss` or `SessionExpired` are `info`: a request
//! outstanding when the session ended may have been applied.
//!
//! Each completion's `meta` holds the zxid, session and server (as for the
//! other ZooKeeper workloads) and, under `lock`, the recipe's own node
//! (`node`) and, for `acquire`, whether the listing made it the holder
//! (`held`).

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::zk::{CreateMode, WatchKind, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse};
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::zk::{meta, ok_value};
use crate::workload::{OpCall, OpDone, Workload};

/// The parent of the lock nodes.
pub const LOCK_PARENT: &str = "/lock";
/// The znode the lock protects.
pub const FENCED: &str = "/fenced";

/// The sequence number of a sequential znode name (its last 10 digits).
pub fn seq_of(name: &str) -> Option<u64> {
    let name = name.rsplit('/').next().unwrap_or(name);
    let digits = name.get(name.len().checked_sub(10)?..)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The attempt guid of a lock node name (`p0-3-n-0000000012` -> `p0-3`).
pub fn guid_of(name: &str) -> Option<&str> {
    let name = name.rsplit('/').next().unwrap_or(name);
    name.rsplit_once("-n-").map(|(g, _)| g)
}

/// What a process does next.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    Setup,
    Create,
    Acquire,
    Cleanup(String),
    Watch(String),
    Read,
    Write(i32),
    Release,
}

/// One process's recipe state (it outlives process ids: a thread keeps its
/// client node and session across `info` outcomes).
#[derive(Clone, Debug)]
struct Proc {
    next: Next,
    attempt: u64,
    /// Guids of this session's attempts, current and stale.
    guids: BTreeSet<String>,
    /// The current attempt's guid.
    current: Option<String>,
    /// The current lock node, once known.
    node: Option<String>,
    /// Whether the watch on the predecessor was left.
    watching: bool,
    writes_left: u32,
}

impl Proc {
    fn new() -> Proc {
        Proc {
            next: Next::Setup,
            attempt: 0,
            guids: BTreeSet::new(),
            current: None,
            node: None,
            watching: false,
            writes_left: 0,
        }
    }

    /// The session ended: its ephemerals went with it.
    fn reset(&mut self) {
        self.guids.clear();
        self.current = None;
        self.node = None;
        self.next = Next::Create;
    }
}

/// The lock-recipe workload.
pub struct LockWorkload {
    threads: u64,
    procs: BTreeMap<u64, Proc>,
    /// `/lock` and `/fenced` are known to exist.
    setup_done: [bool; 2],
    next_data: u64,
}

/// A ZooKeeper operation of a recipe workload, recorded as `f` on `key`
/// with `value` (shared by the lock, election, config and naming recipes).
pub(crate) fn call(op: ZkOp, f: &'static str, key: &str, value: Value) -> OpCall {
    OpCall {
        req: ClientRequest::Zk(ZkRequest::Op(op)),
        f,
        key: Some(json!(key)),
        value,
    }
}

impl LockWorkload {
    /// The recipe for `threads` processes (the scenario's `processes`).
    pub fn new(threads: u32) -> LockWorkload {
        LockWorkload {
            threads: u64::from(threads.max(1)),
            procs: BTreeMap::new(),
            setup_done: [false; 2],
            next_data: 0,
        }
    }

    fn setup_op(&self) -> OpCall {
        let path = if self.setup_done[0] {
            FENCED
        } else {
            LOCK_PARENT
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

impl Workload for LockWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        let thread = process % self.threads;
        let setup = self.setup_done[0] && self.setup_done[1];
        let p = self.procs.entry(thread).or_insert_with(Proc::new);
        if p.next == Next::Setup && setup {
            p.next = Next::Create;
        }
        match p.next.clone() {
            Next::Setup => self.setup_op(),
            Next::Create => {
                p.attempt += 1;
                let guid = format!("p{thread}-{}", p.attempt);
                p.guids.insert(guid.clone());
                p.current = Some(guid.clone());
                p.node = None;
                let prefix = format!("{LOCK_PARENT}/{guid}-n-");
                call(
                    ZkOp::Create {
                        path: prefix.clone(),
                        data: Vec::new(),
                        mode: CreateMode::EphemeralSequential,
                    },
                    "lock-create",
                    &prefix,
                    json!({"data": "", "ephemeral": true, "sequential": true, "guid": guid}),
                )
            }
            Next::Acquire => {
                p.writes_left = rng.gen_range(1..=3);
                call(
                    ZkOp::GetChildren {
                        path: LOCK_PARENT.into(),
                        watch: false,
                    },
                    "acquire",
                    LOCK_PARENT,
                    json!({ "node": p.node }),
                )
            }
            Next::Cleanup(path) => call(
                ZkOp::Delete {
                    path: path.clone(),
                    version: -1,
                },
                "release",
                &path,
                json!({"node": path, "cleanup": true}),
            ),
            Next::Watch(pred) => {
                let watch = !p.watching;
                p.watching = true;
                call(
                    ZkOp::Exists {
                        path: pred.clone(),
                        watch,
                    },
                    "watch",
                    &pred,
                    json!({ "node": p.node, "watch": watch }),
                )
            }
            Next::Read => call(
                ZkOp::GetData {
                    path: FENCED.into(),
                    watch: false,
                },
                "read",
                FENCED,
                json!({ "node": p.node }),
            ),
            Next::Write(version) => {
                let node = p.node.clone().unwrap_or_default();
                self.next_data += 1;
                let data = format!("{process}.{}", self.next_data);
                call(
                    ZkOp::Multi(vec![
                        ZkOp::Check {
                            path: node.clone(),
                            version: -1,
                        },
                        ZkOp::SetData {
                            path: FENCED.into(),
                            data: data.clone().into_bytes(),
                            version,
                        },
                    ]),
                    "fenced-write",
                    FENCED,
                    json!({"node": node, "data": data, "version": version}),
                )
            }
            Next::Release => {
                let node = p.node.clone().unwrap_or_default();
                call(
                    ZkOp::Delete {
                        path: node.clone(),
                        version: -1,
                    },
                    "release",
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
        let is_write = matches!(c.f, "setup" | "lock-create" | "fenced-write" | "release");
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
        let held = self.advance(thread, c, r);
        if r.session != 0 {
            let watch = c.value.get("watch").and_then(Value::as_bool) == Some(true);
            let mut m = meta(r, watch);
            let node = self.procs.get(&thread).and_then(|p| p.node.clone());
            let mut lock = json!({ "node": node });
            if let Some(h) = held {
                lock["held"] = json!(h);
            }
            m["lock"] = lock;
            done.meta = Some(m);
        }
        done
    }

    fn client_crashed(&mut self, process: u64) {
        // A new process on the rebooted node has a new session and knows
        // nothing of the old one's attempts: it starts again with a new
        // attempt (the old session's nodes stay until it expires).
        let thread = process % self.threads;
        if let Some(p) = self.procs.get_mut(&thread) {
            if p.next != Next::Setup {
                p.reset();
            }
        }
    }
}

impl LockWorkload {
    /// Moves `thread`'s recipe on after a reply; for `acquire`, whether the
    /// listing made it the holder.
    fn advance(&mut self, thread: u64, c: &OpCall, r: &ZkReply) -> Option<bool> {
        if c.f == "setup" && matches!(r.result, Ok(_) | Err(ZkError::NodeExists)) {
            let i = usize::from(c.key.as_ref().and_then(Value::as_str) == Some(FENCED));
            self.setup_done[i] = true;
        }
        let setup = self.setup_done[0] && self.setup_done[1];
        let p = self.procs.entry(thread).or_insert_with(Proc::new);
        if r.result == Err(ZkError::SessionExpired) {
            p.reset();
            return None;
        }
        let lost = r.result == Err(ZkError::ConnectionLoss);
        let mut held = None;
        match (c.f, &r.result) {
            ("setup", _) => {
                p.next = if setup { Next::Create } else { Next::Setup };
            }
            ("lock-create", Ok(ZkResponse::Created(path))) => {
                p.node = Some(path.clone());
                p.next = Next::Acquire;
            }
            ("lock-create", Err(ZkError::NoNode)) => p.next = Next::Setup,
            // Unknown: the listing looks for the guid.
            ("lock-create", _) => p.next = Next::Acquire,
            ("acquire", Ok(ZkResponse::Children(names, _))) => {
                held = Some(on_children(p, names));
            }
            ("acquire", Err(ZkError::NoNode)) => p.next = Next::Setup,
            ("acquire", _) => p.next = Next::Acquire,
            ("watch", res) => {
                let pred = c.key.as_ref().and_then(Value::as_str).unwrap_or("");
                let deleted = r
                    .events
                    .iter()
                    .any(|e| e.kind == WatchKind::NodeDeleted && e.path == pred);
                if deleted || !matches!(res, Ok(ZkResponse::Exists(Some(_)))) {
                    p.next = Next::Acquire;
                }
            }
            ("read", Ok(ZkResponse::Data(_, stat))) => p.next = Next::Write(stat.version),
            ("read", _) => p.next = Next::Acquire,
            ("fenced-write", Ok(_)) => {
                p.writes_left = p.writes_left.saturating_sub(1);
                p.next = if p.writes_left == 0 {
                    Next::Release
                } else {
                    Next::Read
                };
            }
            // Lost, the node gone, or the version moved (an earlier write
            // whose answer was lost): re-verify the lock.
            ("fenced-write", _) => p.next = Next::Acquire,
            ("release", res) => {
                let cleanup = c.value.get("cleanup").and_then(Value::as_bool) == Some(true);
                if cleanup {
                    p.next = Next::Acquire;
                } else {
                    if lost || res.is_err() {
                        // The node may survive: it is stale from now on
                        // (its guid stays in `guids`).
                        p.current = None;
                    }
                    p.node = None;
                    p.next = Next::Create;
                }
            }
            _ => {}
        }
        held
    }
}

/// The recipe's step after listing the lock's children: adopt the node of
/// the current attempt, clean up stale nodes of this session, hold the lock
/// or wait on the predecessor. Returns whether the process holds the lock.
fn on_children(p: &mut Proc, names: &[String]) -> bool {
    let mut children: Vec<(u64, &String)> =
        names.iter().filter_map(|n| Some((seq_of(n)?, n))).collect();
    children.sort();
    let path = |n: &str| format!("{LOCK_PARENT}/{n}");
    if p.node.is_none() {
        if let Some(cur) = &p.current {
            p.node = children
                .iter()
                .find(|(_, n)| guid_of(n) == Some(cur.as_str()))
                .map(|(_, n)| path(n));
        }
    }
    let stale = children.iter().find(|(_, n)| {
        let mine = guid_of(n).is_some_and(|g| p.guids.contains(g));
        mine && Some(path(n)) != p.node
    });
    if let Some((_, n)) = stale {
        p.next = Next::Cleanup(path(n));
        return false;
    }
    let Some(node) = p.node.clone() else {
        // The create did not happen (or not yet: then it is stale when it
        // lands): a new attempt.
        p.next = Next::Create;
        return false;
    };
    let Some(pos) = children.iter().position(|(_, n)| path(n) == node) else {
        // Our node is gone (the session ended on the servers, or a release
        // whose answer was lost): start again.
        p.node = None;
        p.next = Next::Create;
        return false;
    };
    if pos == 0 {
        p.next = Next::Read;
        return true;
    }
    p.watching = false;
    p.next = Next::Watch(path(children[pos - 1].1));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(seq_of("/lock/p0-3-n-0000000012"), Some(12));
        assert_eq!(guid_of("/lock/p0-3-n-0000000012"), Some("p0-3"));
        assert_eq!(seq_of("x"), None);
    }

    #[test]
    fn recipe_adopts_cleans_holds_and_waits() {
        let mut p = Proc::new();
        p.guids.insert("p0-1".into());
        p.guids.insert("p0-2".into());
        p.current = Some("p0-2".into());
        // The lost create of p0-2 landed; a stale p0-1 node is there too.
        let names = vec![
            "p1-1-n-0000000003".to_string(),
            "p0-1-n-0000000001".to_string(),
            "p0-2-n-0000000004".to_string(),
        ];
        assert!(!on_children(&mut p, &names));
        assert_eq!(p.node.as_deref(), Some("/lock/p0-2-n-0000000004"));
        assert_eq!(p.next, Next::Cleanup("/lock/p0-1-n-0000000001".into()));
        let names = vec![names[0].clone(), names[2].clone()];
        assert!(!on_children(&mut p, &names));
        assert_eq!(p.next, Next::Watch("/lock/p1-1-n-0000000003".into()));
        assert!(on_children(&mut p, &names[1..]));
        assert_eq!(p.next, Next::Read);
        // Gone: start again.
        assert!(!on_children(&mut p, &names[..1]));
        assert_eq!(p.next, Next::Create);
        assert_eq!(p.node, None);
    }
}
