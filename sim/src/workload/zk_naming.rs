//! ZooKeeper as a naming service (`workload.kind = "naming"`).
//!
//! The first half of the threads (rounded up) are services, the rest
//! clients, each on a client node (a session) of its own.
//!
//! - `setup`: create [`SERVICES`] (persistent), by whichever thread comes
//!   first.
//! - A service registers with `create` of an EPHEMERAL
//!   `/services/<guid>`, the guid naming the attempt (`s<thread>-<n>`),
//!   then checks on its registration with `exists` (a heartbeat) and now
//!   and then unregisters (`delete`) and registers again under a new guid.
//!   When its session expires its registration goes with it, and it
//!   registers again on the new session. A registration of unknown outcome
//!   is followed by an `exists` that says whether it took effect; if not,
//!   the service registers anew.
//! - A client lists the services (`getChildren`, now and then leaving a
//!   watch).
//!
//! `create` and `delete` answered `ConnectionLoss` or `SessionExpired` are
//! `info`.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use kzsim_model::zk::{CreateMode, ZkError, ZkOp, ZkRequest, ZkResponse};
use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;
use crate::workload::zk::{meta, ok_value};
use crate::workload::{OpCall, OpDone, Workload};

/// The parent of the registrations.
pub const SERVICES: &str = "/services";

/// The chance that a service unregisters after a heartbeat.
const UNREGISTER_CHANCE: f64 = 0.05;
/// The chance that a client's listing leaves a watch.
const WATCH_CHANCE: f64 = 0.3;

/// One service's state.
#[derive(Clone, Debug, Default)]
struct Service {
    attempt: u64,
    /// The registration's path once created (or perhaps created).
    node: Option<String>,
    /// Whether the registration is known to exist.
    registered: bool,
}

/// The naming-service workload.
pub struct NamingWorkload {
    threads: u64,
    services: u64,
    setup_done: bool,
    state: BTreeMap<u64, Service>,
}

use super::zk_lock::call;

impl NamingWorkload {
    /// `threads` processes (the scenario's `processes`): the first half,
    /// rounded up, services, the rest clients.
    pub fn new(threads: u32) -> NamingWorkload {
        let threads = u64::from(threads.max(1));
        NamingWorkload {
            threads,
            services: threads.div_ceil(2),
            setup_done: false,
            state: BTreeMap::new(),
        }
    }

    fn service_op(&mut self, thread: u64, rng: &mut ChaCha8Rng) -> OpCall {
        let s = self.state.entry(thread).or_default();
        match (&s.node, s.registered) {
            (Some(node), true) if rng.gen_bool(UNREGISTER_CHANCE) => call(
                ZkOp::Delete {
                    path: node.clone(),
                    version: -1,
                },
                "delete",
                node,
                json!({ "version": -1, "service": true }),
            ),
            (Some(node), _) => call(
                ZkOp::Exists {
                    path: node.clone(),
                    watch: false,
                },
                "exists",
                node,
                json!({ "service": true }),
            ),
            (None, _) => {
                s.attempt += 1;
                let guid = format!("s{thread}-{}", s.attempt);
                let path = format!("{SERVICES}/{guid}");
                s.node = Some(path.clone());
                s.registered = false;
                call(
                    ZkOp::Create {
                        path: path.clone(),
                        data: guid.clone().into_bytes(),
                        mode: CreateMode::Ephemeral,
                    },
                    "create",
                    &path,
                    json!({"data": guid, "ephemeral": true, "sequential": false, "service": true}),
                )
            }
        }
    }
}

impl Workload for NamingWorkload {
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall {
        let thread = process % self.threads;
        if !self.setup_done {
            return call(
                ZkOp::Create {
                    path: SERVICES.into(),
                    data: Vec::new(),
                    mode: CreateMode::Persistent,
                },
                "setup",
                SERVICES,
                json!({"data": "", "ephemeral": false, "sequential": false}),
            );
        }
        if thread < self.services {
            return self.service_op(thread, rng);
        }
        let watch = rng.gen_bool(WATCH_CHANCE);
        call(
            ZkOp::GetChildren {
                path: SERVICES.into(),
                watch,
            },
            "getChildren",
            SERVICES,
            Value::Null,
        )
    }

    fn complete(&mut self, process: u64, c: &OpCall, reply: &ClientReply) -> OpDone {
        let ClientReply::Zk(r) = reply else {
            return OpDone::new(
                EventType::Info,
                c.value.clone(),
                Some(format!("not a ZooKeeper reply: {reply:?}")),
            );
        };
        let is_write = matches!(c.f, "setup" | "create" | "delete");
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
        if thread < self.services && c.f != "setup" {
            let s = self.state.entry(thread).or_default();
            match (c.f, &r.result) {
                // The session and its registration are gone.
                (_, Err(ZkError::SessionExpired)) => s.node = None,
                ("create", Ok(_)) => s.registered = true,
                ("create", Err(ZkError::NoNode)) => {
                    s.node = None;
                    self.setup_done = false;
                }
                // Unknown: the heartbeat says.
                ("create", _) => {}
                ("exists", Ok(ZkResponse::Exists(Some(_)))) => s.registered = true,
                ("exists", Ok(_)) => s.node = None,
                ("exists", _) => {}
                // Unregistered, or perhaps: a new registration either way.
                ("delete", _) => s.node = None,
                _ => {}
            }
        }
        if r.session != 0 {
            let watch = matches!(
                &c.req,
                ClientRequest::Zk(ZkRequest::Op(ZkOp::GetChildren { watch: true, .. }))
            );
            done.meta = Some(meta(r, watch));
        }
        done
    }

    fn client_crashed(&mut self, process: u64) {
        // A new session: the old registration stays until the old session
        // expires; register anew.
        if let Some(s) = self.state.get_mut(&(process % self.threads)) {
            s.node = None;
        }
    }
}
