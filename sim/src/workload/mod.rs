//! Client workloads: what operations the logical processes issue, and how a
//! client's reply becomes a history completion.
//!
//! The engine owns the processes (one operation in flight each, think time
//! between operations, a fresh process id after an indeterminate outcome, as
//! in Jepsen); a [`Workload`] only decides the operations and reads replies.

pub mod group;
pub mod kafka;
pub mod register;
pub mod zk;
pub mod zk_config;
pub mod zk_election;
pub mod zk_lock;
pub mod zk_naming;

use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use kzsim_model::{ClientReply, ClientRequest};

use crate::history::EventType;

/// An operation to issue: the request for the client node and its history
/// invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpCall {
    /// What the client node is asked.
    pub req: ClientRequest,
    /// History function name.
    pub f: &'static str,
    /// History key.
    pub key: Option<Value>,
    /// History invocation value.
    pub value: Value,
}

/// A history completion.
#[derive(Clone, Debug, PartialEq)]
pub struct OpDone {
    /// Ok, fail or info.
    pub kind: EventType,
    /// The completion value.
    pub value: Value,
    /// Why it failed or is unknown.
    pub error: Option<String>,
    /// System-specific facts for the history event's `meta`.
    pub meta: Option<Value>,
    /// The client's session changed: continue as a new logical process
    /// (histories treat a process as one session).
    pub new_process: bool,
}

impl OpDone {
    /// A completion without meta that keeps the process.
    pub fn new(kind: EventType, value: Value, error: Option<String>) -> OpDone {
        OpDone {
            kind,
            value,
            error,
            meta: None,
            new_process: false,
        }
    }
}

/// A workload generator.
pub trait Workload {
    /// The next operation of `process`.
    fn invoke(&mut self, process: u64, rng: &mut ChaCha8Rng) -> OpCall;
    /// Turns the client's reply to `process`'s `call` into a completion.
    fn complete(&mut self, process: u64, call: &OpCall, reply: &ClientReply) -> OpDone;
    /// Whether `process` is a writer that stops a quarter into the quiet
    /// period (the others stop at three quarters), so that readers can
    /// drain everything written before the run ends, as in Jepsen's
    /// final reads.
    fn stops_early(&self, process: u64) -> bool {
        let _ = process;
        false
    }

    /// The client node running `process` crashed (`crash-client`): its
    /// session is gone, and so is the operation in flight, which the
    /// engine records as `info` without asking [`Workload::complete`]. The
    /// thread goes on as a new process on the rebooted node.
    fn client_crashed(&mut self, process: u64) {
        let _ = process;
    }
}
