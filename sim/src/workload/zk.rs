//! ZooKeeper workloads, recording histories in the shapes the `zk` checker
//! model reads (see `check::models::zk`), with each completion's zxid,
//! session, server and watch events in the event's `meta`.
//!
//! - `cas-register`: a few znodes `/r0..` read (`getData`, some leaving a
//!   watch), read after a `sync` of the same session, overwritten
//!   (`setData` with version -1), compare-and-set (`setData` with the
//!   version this process last saw), created and deleted (with a version).
//! - `counter`: persistent-sequential children of `/c` created and listed:
//!   sequential names must be unique and increase with the zxid.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::zk::{CreateMode, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse};
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::{OpCall, OpDone, Workload};

/// Which ZooKeeper workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZkWorkloadKind {
    /// CAS registers over a few znodes, with and without `sync`.
    CasRegister,
    /// A sequential-node counter.
    Counter,
    /// The lock recipe (`workload::zk_lock`).
    Lock,
    /// The leader-election recipe (`workload::zk_election`).
    Election,
    /// ZooKeeper as a configuration store (`workload::zk_config`).
    Config,
    /// ZooKeeper as a naming service (`workload::zk_naming`).
    Naming,
}

impl ZkWorkloadKind {
    /// Whether each process needs a session (a client node) of its own.
    pub fn session_per_process(self) -> bool {
        matches!(
            self,
            ZkWorkloadKind::Lock
                | ZkWorkloadKind::Election
                | ZkWorkloadKind::Config
                | ZkWorkloadKind::Naming
        )
    }
}

/// The parent of the counter's sequential nodes.
pub const COUNTER_PARENT: &str = "/c";

/// A ZooKeeper workload generator.
pub struct ZkWorkload {
    kind: ZkWorkloadKind,
    keys: u32,
    read_fraction: f64,
    watch_fraction: f64,
    next_data: u64,
    /// Per process: a `getData` owed after a `sync`.
    read_after_sync: BTreeMap<u64, String>,
    /// Per process and path: the last version seen.
    versions: BTreeMap<(u64, String), i32>,
}

impl ZkWorkload {
    /// A workload of `kind` over `keys` znodes (at least 1) reading with
    /// probability `read_fraction` (in [0, 1]), as a scenario's values are
    /// checked to be.
    pub fn new(kind: ZkWorkloadKind, keys: u32, read_fraction: f64) -> ZkWorkload {
        assert!(keys >= 1, "keys {keys}");
        assert!(
            (0.0..=1.0).contains(&read_fraction),
            "read_fraction {read_fraction}"
        );
        ZkWorkload {
            kind,
            keys,
            read_fraction,
            watch_fraction: 0.3,
            next_data: 0,
            read_after_sync: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }

    fn data(&mut self, process: u64) -> String {
        self.next_data += 1;
        format!("{process}.{}", self.next_data)
    }

    fn call(op: ZkOp, f: &'static str, path: &str, value: Value) -> OpCall {
        OpCall {
            req: ClientRequest::Zk(ZkRequest::Op(op)),
            f,
            key: Some(json!(path)),
            value,
        }
    }

    fn get_data(&mut self, path: String, rng: &mut ChaCha8Rng) -> OpCall {
        let watch = rng.gen_bool(self.watch_fraction);
        Self::call(
            ZkOp::GetData {
                path: path.clone(),
                watch,
            },
            "getData",
            &path,
            Value::Null,
        )
    }

    fn register_op(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        if let Some(path) = self.read_after_sync.remove(&process) {
            return self.get_data(path, rng);
        }
        let path = format!("/r{}", rng.gen_range(0..self.keys));
        if rng.gen_bool(self.read_fraction) {
            if rng.gen_bool(0.4) {
                self.read_after_sync.insert(process, path.clone());
                return Self::call(
                    ZkOp::Sync { path: path.clone() },
                    "sync",
                    &path,
                    Value::Null,
                );
            }
            return self.get_data(path, rng);
        }
        let seen = self.versions.get(&(process, path.clone())).copied();
        let data = self.data(process);
        match rng.gen_range(0..10) {
            0..=3 => Self::call(
                ZkOp::SetData {
                    path: path.clone(),
                    data: data.clone().into_bytes(),
                    version: -1,
                },
                "setData",
                &path,
                json!({"data": data, "version": -1}),
            ),
            4..=6 => {
                let version = seen.unwrap_or(0);
                Self::call(
                    ZkOp::SetData {
                        path: path.clone(),
                        data: data.clone().into_bytes(),
                        version,
                    },
                    "setData",
                    &path,
                    json!({"data": data, "version": version}),
                )
            }
            7..=8 => Self::call(
                ZkOp::Create {
                    path: path.clone(),
                    data: data.clone().into_bytes(),
                    mode: CreateMode::Persistent,
                },
                "create",
                &path,
                json!({"data": data, "ephemeral": false, "sequential": false}),
            ),
            _ => {
                let version = seen.unwrap_or(-1);
                Self::call(
                    ZkOp::Delete {
                        path: path.clone(),
                        version,
                    },
                    "delete",
                    &path,
                    json!({ "version": version }),
                )
            }
        }
    }

    fn counter_op(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        let parent = COUNTER_PARENT;
        if rng.gen_bool(self.read_fraction) {
            return Self::call(
                ZkOp::GetChildren {
                    path: parent.into(),
                    watch: rng.gen_bool(self.watch_fraction),
                },
                "getChildren",
                parent,
                Value::Null,
            );
        }
        if rng.gen_bool(0.05) {
            // (Re)create the parent; NodeExists is the usual answer.
            return Self::call(
                ZkOp::Create {
                    path: parent.into(),
                    data: Vec::new(),
                    mode: CreateMode::Persistent,
                },
                "create",
                parent,
                json!({"data": "", "ephemeral": false, "sequential": false}),
            );
        }
        let data = self.data(process);
        let prefix = format!("{parent}/n-");
        Self::call(
            ZkOp::Create {
                path: prefix.clone(),
                data: data.clone().into_bytes(),
                mode: CreateMode::PersistentSequential,
            },
            "create",
            &prefix,
            json!({"data": data, "ephemeral": false, "sequential": true}),
        )
    }
}

/// Facts about a reply for the history's `meta`.
pub(crate) fn meta(r: &ZkReply, watch: bool) -> Value {
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|e| json!([format!("{:?}", e.kind), e.path, e.zxid]))
        .collect();
    json!({"zxid": r.zxid, "session": r.session, "server": r.server, "events": events, "watch": watch})
}

/// The history value of a successful reply.
pub(crate) fn ok_value(resp: &ZkResponse) -> Value {
    match resp {
        ZkResponse::Created(path) => json!(path),
        ZkResponse::Stat(stat) => json!({ "version": stat.version }),
        ZkResponse::Data(data, stat) => {
            json!({"data": String::from_utf8_lossy(data), "version": stat.version})
        }
        ZkResponse::Exists(Some(s)) => json!({ "version": s.version }),
        ZkResponse::Exists(None) => Value::Null,
        ZkResponse::Children(names, _) => json!(names),
        _ => Value::Null,
    }
}

impl Workload for ZkWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        match self.kind {
            ZkWorkloadKind::CasRegister => self.register_op(process, rng),
            _ => self.counter_op(process, rng),
        }
    }

    fn complete(&mut self, process: u64, call: &OpCall, reply: &ClientReply) -> OpDone {
        let ClientReply::Zk(r) = reply else {
            return OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some(format!("not a ZooKeeper reply: {reply:?}")),
            );
        };
        let is_write = matches!(call.f, "create" | "delete" | "setData");
        let mut done = match &r.result {
            Ok(resp) => OpDone::new(EventType::Ok, ok_value(resp), None),
            Err(ZkError::ConnectionLoss) if is_write => OpDone::new(
                EventType::Info,
                call.value.clone(),
                Some("ConnectionLoss".into()),
            ),
            Err(e) => OpDone::new(EventType::Fail, call.value.clone(), Some(e.to_string())),
        };
        if matches!(r.result, Err(ZkError::SessionExpired)) {
            done.new_process = true;
        }
        if r.session != 0 {
            let watch = matches!(
                &call.req,
                ClientRequest::Zk(ZkRequest::Op(
                    ZkOp::GetData { watch: true, .. } | ZkOp::GetChildren { watch: true, .. }
                ))
            );
            done.meta = Some(meta(r, watch));
        }
        self.observe(process, call, &done);
        done
    }
}

impl ZkWorkload {
    /// Remembers versions this process saw (for its next CAS or delete).
    fn observe(&mut self, process: u64, call: &OpCall, done: &OpDone) {
        let Some(path) = call.key.as_ref().and_then(Value::as_str) else {
            return;
        };
        if let Some(v) = done.value.get("version").and_then(Value::as_i64) {
            self.versions.insert((process, path.to_string()), v as i32);
        }
    }
}
