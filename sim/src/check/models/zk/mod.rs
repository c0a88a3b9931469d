//! ZooKeeper data tree model (`zk`). The history is split per top-level
//! znode when no operation ties two of them together ([`subtrees`]).
//!
//! It models ZooKeeper's promise, not plain linearizability: writes are
//! linearizable; reads are sequentially consistent per session, i.e. a read
//! takes effect after its session's previous operation and before it
//! returns, but may see a state older than its invocation (a lagging
//! follower) unless a `sync` of the same session precedes it, in which case
//! it sees at least the state as of that `sync`. A stale read without
//! `sync` is thus no violation, and a stale read after `sync` is one.
//! [`Zk::strict`] instead treats reads as linearizable too (`zk-strict`).
//!
//! # Operations (kzsim JSON lines; `key` is the path)
//!
//! | `f` | invoke `value` | `ok` `value` (each part optional) |
//! |---|---|---|
//! | `create` | `{"data":D,"ephemeral":b,"sequential":b}` or just `D` | created path |
//! | `delete` | `{"version":v}` or `v` or null (any version) | — |
//! | `setData` | `{"data":D,"version":v}` | `{"version":n}` or `n` (new version) |
//! | `getData` | — | `{"data":D,"version":v}` or `D` |
//! | `exists` | — | `null`/`false` absent, `true` or `{"version":v}` present |
//! | `getChildren` | — | array of child names (any order) |
//! | `multi` | array of `{"f":"create"/"delete"/"setData"/"check","path":P,...}` | array of per-op results |
//! | `sync` | — | — |
//! | `close` | — (closes the process's session: its ephemerals go) | — |
//!
//! A `fail` whose `error` (or `value`) names a ZooKeeper code (`NoNode`,
//! `NodeExists`, `NotEmpty`, `BadVersion`, `NoChildrenForEphemerals`) is
//! an observation: the operation ran and returned that error, changing
//! nothing. Any other `fail` (`SessionExpired`, `SessionMoved`, ...) did
//! not take effect and is dropped; `info`
//! may have taken effect. The session of an operation is its process.

pub mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::{fname, show, unknown, Interner, Model};
use crate::history::{Operation, Outcome};
use tree::{valid_path, Code, Tree, Write, Written};

/// What a write observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteSeen {
    /// Succeeded; per write, the created path or new version when recorded.
    Ok(Vec<Option<Written>>),
    /// Returned this error and changed nothing.
    Err(Code),
    /// Unknown outcome.
    Unknown,
}

/// A read and what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// `getData`: data and, when recorded, version; or `NoNode`.
    GetData(String, Result<(u32, Option<u32>), Code>),
    /// `exists`: `None` absent, else the version when recorded.
    Exists(String, Option<Option<u32>>),
    /// `getChildren`: sorted names, or `NoNode`.
    GetChildren(String, Result<Vec<String>, Code>),
}

/// An encoded ZooKeeper operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkOp {
    /// Writes applied atomically by `session`.
    Write {
        /// The writes (one, or a `multi`'s).
        writes: Vec<Write>,
        /// The session (process).
        session: u64,
        /// What was observed.
        seen: WriteSeen,
    },
    /// A read.
    Read(Read),
    /// The session closes.
    Close(u64),
    /// A `sync`: no effect, but later reads of the session see at least
    /// the state as of this point.
    Sync,
}

/// The ZooKeeper data-tree model.
#[derive(Debug)]
pub struct Zk {
    data: Interner,
    sessions: bool,
    /// Syncs (by the history index of their invocation) whose promise is
    /// waived: encoded as if they had not been asked.
    waived_syncs: BTreeSet<usize>,
    /// The parents of the sequential creates encoded so far: the only
    /// nodes whose child version an operation can observe.
    seq_parents: BTreeSet<String>,
}

impl Default for Zk {
    fn default() -> Zk {
        Zk::new()
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.get(name))
}

fn version_arg(v: Option<&Value>) -> Result<i64, String> {
    match v {
        None | Some(Value::Null) => Ok(-1),
        Some(x) => x
            .as_i64()
            .filter(|v| *v >= -1)
            .ok_or_else(|| format!("bad version {}", show(x))),
    }
}

fn path_arg(v: Option<&Value>) -> Result<String, String> {
    match v.and_then(Value::as_str) {
        Some(p) if valid_path(p) => Ok(p.to_string()),
        Some(p) => Err(format!("bad path `{p}`")),
        None => Err("missing path".into()),
    }
}

fn flag(v: &Value, name: &str) -> bool {
    field(v, name).and_then(Value::as_bool).unwrap_or(false)
}

impl Zk {
    /// ZooKeeper's promise (see the module docs); the tree starts with
    /// only `/`.
    pub fn new() -> Zk {
        Zk {
            data: Interner::new(),
            sessions: true,
            waived_syncs: BTreeSet::new(),
            seq_parents: BTreeSet::new(),
        }
    }

    /// ZooKeeper's promise without the `sync`s invoked at these history
    /// indexes: the reads after them need only be sequentially consistent.
    /// For a sync answered by a server that had already been deposed
    /// ([`crate::system::zk`]'s `stale-sync-read`).
    pub fn waiving_syncs(waived: BTreeSet<usize>) -> Zk {
        Zk {
            waived_syncs: waived,
            ..Zk::new()
        }
    }

    /// Every operation linearizable, reads included.
    pub fn strict() -> Zk {
        Zk {
            data: Interner::new(),
            sessions: false,
            waived_syncs: BTreeSet::new(),
            seq_parents: BTreeSet::new(),
        }
    }

    fn write(&mut self, f: &str, path: String, arg: &Value) -> Result<Write, String> {
        let data = |me: &mut Zk| {
            let d = if arg.is_object() {
                field(arg, "data").unwrap_or(&Value::Null)
            } else {
                arg
            };
            me.data.id(d)
        };
        Ok(match f {
            "create" => {
                if path == "/" {
                    return Err("cannot create /".into());
                }
                let sequential = flag(arg, "sequential");
                if sequential {
                    self.seq_parents.insert(tree::parent(&path).to_string());
                }
                Write::Create {
                    data: data(self),
                    ephemeral: flag(arg, "ephemeral"),
                    sequential,
                    path,
                }
            }
            "delete" => {
                if path == "/" {
                    return Err("cannot delete /".into());
                }
                let v = if arg.is_object() {
                    field(arg, "version")
                } else {
                    Some(arg)
                };
                Write::Delete {
                    path,
                    version: version_arg(v)?,
                }
            }
            "setData" | "set_data" | "set" => Write::SetData {
                data: data(self),
                version: version_arg(field(arg, "version"))?,
                path,
            },
            "check" => Write::Check {
                version: version_arg(field(arg, "version"))?,
                path,
            },
            other => return Err(format!("zk has no write `{other}`")),
        })
    }

    fn written(w: &Write, v: &Value) -> Option<Written> {
        match (w, v) {
            (_, Value::Null) => None,
            (Write::Create { .. }, Value::String(p)) => Some(Written::Created(p.clone())),
            (Write::SetData { .. }, v) => {
                let n = field(v, "version").unwrap_or(v).as_u64()?;
                Some(Written::Version(n as u32))
            }
            _ => None,
        }
    }

    fn read(
        &mut self,
        f: &str,
        path: String,
        op: &Operation,
        code: Option<Code>,
    ) -> Result<Read, String> {
        let out = &op.output;
        let bad_code = |c: Code| format!("{f} cannot fail with {c}");
        Ok(match f {
            "getData" | "get_data" | "get" => {
                let r = match code {
                    Some(Code::NoNode) => Err(Code::NoNode),
                    Some(c) => return Err(bad_code(c)),
                    None => {
                        let d = if out.is_object() {
                            field(out, "data").unwrap_or(&Value::Null)
                        } else {
                            out
                        };
                        let version = field(out, "version")
                            .and_then(Value::as_u64)
                            .map(|v| v as u32);
                        Ok((self.data.id(d), version))
                    }
                };
                Read::GetData(path, r)
            }
            "exists" => {
                let r = match (code, out) {
                    (Some(Code::NoNode), _) | (None, Value::Null | Value::Bool(false)) => None,
                    (Some(c), _) => return Err(bad_code(c)),
                    (None, v) => Some(
                        field(v, "version")
                            .and_then(Value::as_u64)
                            .map(|v| v as u32),
                    ),
                };
                Read::Exists(path, r)
            }
            "getChildren" | "get_children" | "children" => {
                let r = match code {
                    Some(Code::NoNode) => Err(Code::NoNode),
                    Some(c) => return Err(bad_code(c)),
                    None => {
                        let arr = out
                            .as_array()
                            .ok_or("getChildren needs an array of names")?;
                        let mut names = Vec::with_capacity(arr.len());
                        for n in arr {
                            names
                                .push(n.as_str().ok_or("child names must be strings")?.to_string());
                        }
                        names.sort();
                        Ok(names)
                    }
                };
                Read::GetChildren(path, r)
            }
            other => return Err(format!("zk has no operation `{other}`")),
        })
    }
}

/// The top-level znode a path lies under (`/r1/x` -> `/r1`; `/` -> `/`).
pub fn top_level(path: &str) -> String {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    format!("/{first}")
}

/// The top-level znodes an operation touches: its key's (or path's), and
/// for a `multi` each sub-operation's.
fn touched(op: &Operation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if fname(op) == "multi" {
        for s in op.input.as_array().into_iter().flatten() {
            if let Some(p) = field(s, "path").and_then(Value::as_str) {
                out.push(top_level(p));
            }
        }
    }
    let own = op
        .key
        .as_ref()
        .or(field(&op.input, "path"))
        .and_then(Value::as_str);
    if let Some(p) = own {
        out.push(top_level(p));
    }
    if out.is_empty() {
        out.push("/".to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// Session expiry as the model reads it: an operation answered
/// `SessionExpired` tells that its session (its process) was closed by
/// the ensemble at some point after the process's previous operation
/// completed and before this answer, and ZooKeeper removed the session's
/// ephemerals then. Such an operation becomes a `close` spanning that
/// window (its invocation moved to the previous completion, so an
/// explanation cites it from that line). Only for processes that created (or may have created) an
/// ephemeral: for the others a close changes nothing, and leaving them
/// alone keeps their history split per subtree. `None` when nothing
/// changes.
pub fn session_expiries(ops: &[Operation]) -> Option<Vec<Operation>> {
    let expired = |op: &Operation| {
        op.outcome == Outcome::Fail
            && op
                .error
                .as_deref()
                .or(op.output.as_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("SessionExpired"))
    };
    if !ops.iter().any(expired) {
        return None;
    }
    let with_ephemerals: std::collections::BTreeSet<u64> = ops
        .iter()
        .filter(|op| op.outcome != Outcome::Fail && creates_ephemeral(op))
        .map(|op| op.process)
        .collect();
    let mut out = ops.to_vec();
    let mut changed = false;
    for i in 0..out.len() {
        if !expired(&out[i]) || !with_ephemerals.contains(&out[i].process) {
            continue;
        }
        let p = out[i].process;
        // The checker orders operations by their events' positions: the
        // close may take effect from the completion of the process's
        // previous operation on.
        let before = |o: &&Operation| o.process == p && o.invoke_index < ops[i].invoke_index;
        let since = ops
            .iter()
            .filter(before)
            .filter_map(|o| o.complete_index)
            .max();
        let since_time = ops
            .iter()
            .filter(before)
            .filter_map(|o| o.complete_time)
            .max();
        let op = &mut out[i];
        op.f = "close".into();
        op.outcome = Outcome::Ok;
        op.invoke_index = since.unwrap_or(0);
        op.invoke_time = since_time.unwrap_or(0);
        changed = true;
    }
    changed.then_some(out)
}

/// Whether `op` creates an ephemeral node (itself or inside a `multi`).
fn creates_ephemeral(op: &Operation) -> bool {
    let eph = |v: &Value| v.get("ephemeral").and_then(Value::as_bool) == Some(true);
    match fname(op) {
        "create" => eph(&op.input),
        "multi" => op.input.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.get("f").and_then(Value::as_str) == Some("create") && eph(x))
        }),
        _ => false,
    }
}

/// Splits a ZooKeeper history per top-level znode, the parts the kzsim
/// sweep and `kzsim check --model zk` both judge.
///
/// Operations under different top-level znodes constrain each other
/// through the tree only by a session `close` (it removes ephemerals
/// anywhere), a `multi` spanning several of them, or a listing of `/`; and
/// a `sync` that names no subtree is a barrier for all of its session's
/// later reads. A history with none of these is split; splitting then only
/// drops per-session order across subtrees, which can hide an anomaly but
/// never invent one. Any other history is one part (named `""`).
pub fn subtrees(ops: &[Operation]) -> BTreeMap<String, Vec<usize>> {
    let mut parts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let f = fname(op);
        let tops = touched(op);
        let on_root = tops[0] == "/";
        let lists_root = matches!(f, "getChildren" | "get_children" | "children") && on_root;
        let barrier = f == "sync" && on_root;
        if tops.len() > 1
            || lists_root
            || barrier
            || matches!(f, "close" | "closeSession" | "close_session")
        {
            return BTreeMap::from([(String::new(), (0..ops.len()).collect())]);
        }
        parts.entry(tops[0].clone()).or_default().push(i);
    }
    parts
}

impl Model for Zk {
    type Op = ZkOp;
    type State = Arc<Tree>;

    fn name(&self) -> &'static str {
        if self.sessions {
            "zk"
        } else {
            "zk-strict"
        }
    }

    fn split_by_key(&self) -> bool {
        false
    }

    fn partitions(&self, ops: &[Operation]) -> BTreeMap<String, Vec<usize>> {
        subtrees(ops)
    }

    fn normalise(&self, ops: &[Operation]) -> Option<Vec<Operation>> {
        session_expiries(ops)
    }

    fn session_ordered(&self) -> bool {
        self.sessions
    }

    fn stale_read(&self, op: &ZkOp) -> bool {
        matches!(op, ZkOp::Read(_))
    }

    fn encode(&mut self, op: &Operation) -> Result<Option<ZkOp>, String> {
        let f = fname(op);
        let code = match op.outcome {
            Outcome::Fail => {
                let named = op
                    .error
                    .as_deref()
                    .or(op.output.as_str())
                    .and_then(Code::parse);
                match named {
                    Some(c) => Some(c),
                    None => return Ok(None),
                }
            }
            _ => None,
        };
        match f {
            "sync" => {
                let keep = self.sessions
                    && op.outcome == Outcome::Ok
                    && !self.waived_syncs.contains(&op.invoke_index);
                return Ok(keep.then_some(ZkOp::Sync));
            }
            "close" | "closeSession" | "close_session" => {
                return Ok((op.outcome != Outcome::Fail).then_some(ZkOp::Close(op.process)))
            }
            _ => {}
        }
        let seen = |writes: &[Write]| -> WriteSeen {
            if let Some(c) = code {
                WriteSeen::Err(c)
            } else if unknown(op) {
                WriteSeen::Unknown
            } else {
                let outs: Vec<Value> = match &op.output {
                    Value::Array(a) if writes.len() > 1 || f == "multi" => a.clone(),
                    v => vec![v.clone()],
                };
                WriteSeen::Ok(
                    writes
                        .iter()
                        .enumerate()
                        .map(|(i, w)| outs.get(i).and_then(|v| Zk::written(w, v)))
                        .collect(),
                )
            }
        };
        let path = || path_arg(op.key.as_ref().or(field(&op.input, "path")));
        match f {
            "multi" => {
                let subs = op
                    .input
                    .as_array()
                    .ok_or("multi needs an array of operations")?;
                let mut writes = Vec::with_capacity(subs.len());
                for s in subs {
                    let sf = field(s, "f")
                        .and_then(Value::as_str)
                        .ok_or("multi op needs \"f\"")?;
                    writes.push(self.write(sf, path_arg(field(s, "path"))?, s)?);
                }
                let seen = seen(&writes);
                Ok(Some(ZkOp::Write {
                    writes,
                    session: op.process,
                    seen,
                }))
            }
            "create" | "delete" | "setData" | "set_data" | "set" => {
                let w = self.write(f, path()?, &op.input)?;
                let writes = vec![w];
                let seen = seen(&writes);
                Ok(Some(ZkOp::Write {
                    writes,
                    session: op.process,
                    seen,
                }))
            }
            _ => {
                if unknown(op) {
                    // A read with an unknown result cannot constrain anything.
                    let _ = self.read(f, path()?, op, None);
                    return Ok(None);
                }
                Ok(Some(ZkOp::Read(self.read(f, path()?, op, code)?)))
            }
        }
    }

    fn init(&self) -> Arc<Tree> {
        Arc::new(Tree::counting(Arc::new(self.seq_parents.clone())))
    }

    fn step(&self, state: &Arc<Tree>, op: &ZkOp) -> Option<Arc<Tree>> {
        match op {
            ZkOp::Sync => Some(state.clone()),
            ZkOp::Close(session) => Some(Arc::new(state.close(*session))),
            ZkOp::Write {
                writes,
                session,
                seen,
            } => match (state.apply(writes, *session), seen) {
                (Ok((t, _)), WriteSeen::Unknown) => Some(Arc::new(t)),
                (Err(_), WriteSeen::Unknown) => Some(state.clone()),
                (Err(c), WriteSeen::Err(e)) => (c == *e).then(|| state.clone()),
                (Ok((t, got)), WriteSeen::Ok(want)) => {
                    let agree = want
                        .iter()
                        .zip(&got)
                        .all(|(w, g)| w.as_ref().is_none_or(|w| w == g));
                    agree.then(|| Arc::new(t))
                }
                _ => None,
            },
            ZkOp::Read(r) => {
                let legal = match r {
                    Read::GetData(p, want) => match (state.get(p), want) {
                        (None, Err(Code::NoNode)) => true,
                        (Some(n), Ok((d, v))) => n.data == *d && v.is_none_or(|v| v == n.version),
                        _ => false,
                    },
                    Read::Exists(p, want) => match (state.get(p), want) {
                        (None, None) => true,
                        (Some(n), Some(v)) => v.is_none_or(|v| v == n.version),
                        _ => false,
                    },
                    Read::GetChildren(p, want) => match (state.get(p), want) {
                        (None, Err(Code::NoNode)) => true,
                        (Some(_), Ok(names)) => state.children(p) == *names,
                        _ => false,
                    },
                };
                legal.then(|| state.clone())
            }
        }
    }

    fn state_bytes(&self, state: &Arc<Tree>) -> usize {
        64 + state.node_count() * 96
    }
}

#[cfg(test)]
mod tests;
