//! ZooKeeper as a configuration store (`workload.kind = "config"`).
//!
//! Process 0's thread is the writer; every other thread is a watcher, each
//! on a client node (a session) of its own.
//!
//! - `setup`: create [`CONFIG`] (persistent, data `0`), by whichever thread
//!   comes first.
//! - The writer's `setData` writes `/config` with version -1 and the next
//!   value of its counter (`1`, `2`, ...), so values carry an increasing
//!   version of the configuration. A write answered `ConnectionLoss` or
//!   `SessionExpired` is `info`; the writer goes on with the next value. It
//!   stops early in the quiet period ([`Workload::stops_early`]), so the
//!   watchers can converge.
//! - A watcher's `getData` reads `/config` leaving a watch; then `poll`s
//!   (`exists` without a watch) until a `NodeDataChanged` event for
//!   `/config` rides on a reply, and reads and re-watches again. A
//!   `ConnectionLoss` on a poll keeps polling (the client re-registers its
//!   watches when it reconnects), one on the read reads again, and so does
//!   an expired session or a crashed client node (a new session has no
//!   watches).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::zk::{CreateMode, WatchKind, ZkError, ZkOp};
use kzsim_model::ClientReply;

use crate::history::EventType;
use crate::workload::zk::{meta, ok_value};
use crate::workload::{OpCall, OpDone, Workload};

/// The configuration znode.
pub const CONFIG: &str = "/config";

/// What a watcher does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Read,
    Poll,
}

/// The configuration-store workload.
pub struct ConfigWorkload {
    threads: u64,
    setup_done: bool,
    /// The writer's last value.
    value: u64,
    watchers: BTreeMap<u64, Next>,
}

fn call(op: ZkOp, f: &'static str, value: Value) -> OpCall {
    super::zk_lock::call(op, f, CONFIG, value)
}

impl ConfigWorkload {
    /// One writer and `threads - 1` watchers (the scenario's `processes`).
    pub fn new(threads: u32) -> ConfigWorkload {
        ConfigWorkload {
            threads: u64::from(threads.max(1)),
            setup_done: false,
            value: 0,
            watchers: BTreeMap::new(),
        }
    }
}

impl Workload for ConfigWorkload {
    fn invoke(&mut self, process: u64, _rng: &mut ChaCha8Rng) -> OpCall {
        let thread = process % self.threads;
        if !self.setup_done {
            return call(
                ZkOp::Create {
                    path: CONFIG.into(),
                    data: b"0".to_vec(),
                    mode: CreateMode::Persistent,
                },
                "setup",
                json!({"data": "0", "ephemeral": false, "sequential": false}),
            );
        }
        if thread == 0 {
            self.value += 1;
            let data = self.value.to_string();
            return call(
                ZkOp::SetData {
                    path: CONFIG.into(),
                    data: data.clone().into_bytes(),
                    version: -1,
                },
                "setData",
                json!({"data": data, "version": -1}),
            );
        }
        match self.watchers.entry(thread).or_insert(Next::Read) {
            Next::Read => call(
                ZkOp::GetData {
                    path: CONFIG.into(),
                    watch: true,
                },
                "getData",
                Value::Null,
            ),
            Next::Poll => call(
                ZkOp::Exists {
                    path: CONFIG.into(),
                    watch: false,
                },
                "poll",
                Value::Null,
            ),
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
        let is_write = matches!(c.f, "setup" | "setData");
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
        if c.f == "setup" && matches!(r.result, Ok(_) | Err(ZkError::NodeExists)) {
            self.setup_done = true;
        }
        let thread = process % self.threads;
        if thread != 0 && c.f != "setup" {
            let changed = r
                .events
                .iter()
                .any(|e| e.kind == WatchKind::NodeDataChanged && e.path == CONFIG);
            let next = match (c.f, &r.result) {
                ("getData", Ok(_)) => Next::Poll,
                // The event may ride on any reply, a failed one too.
                ("poll", _) if changed => Next::Read,
                ("poll", Err(ZkError::SessionExpired)) => Next::Read,
                ("poll", _) => Next::Poll,
                _ => Next::Read,
            };
            self.watchers.insert(thread, next);
        }
        if r.session != 0 {
            done.meta = Some(meta(r, c.f == "getData"));
        }
        done
    }

    fn stops_early(&self, process: u64) -> bool {
        process.is_multiple_of(self.threads)
    }

    fn client_crashed(&mut self, process: u64) {
        // The rebooted node has a new session, without the watch.
        let thread = process % self.threads;
        if thread != 0 {
            self.watchers.insert(thread, Next::Read);
        }
    }
}
