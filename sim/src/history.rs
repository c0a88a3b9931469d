//! The recorded history of client operations, Jepsen-shaped.
//!
//! Each [`Event`] is one invocation or one completion. A completion pairs with
//! the last invocation of the same process. `Ok` means the operation took
//! effect with the recorded result, `Fail` that it certainly did not take
//! effect, and `Info` that its outcome is unknown (it may take effect at any
//! point after its invocation, or never). An invocation without completion is
//! treated as `Info`.
//!
//! # JSON lines format
//!
//! One event per line, as written by [`History::to_jsonl`]:
//!
//! ```json
//! {"process":3,"type":"invoke","f":"write","key":"x","value":7,"time":1250,"node":5}
//! {"process":3,"type":"ok","f":"write","key":"x","value":7,"time":3100,"node":5}
//! ```
//!
//! - `process` (integer): the logical client process; one operation at a time.
//! - `type`: `invoke`, `ok`, `fail` or `info`.
//! - `f` (string): the function, e.g. `read`, `write`, `cas`, `send`, `poll`.
//! - `key` (any JSON value, optional): the object operated on; histories are
//!   split per key for checking.
//! - `value` (any JSON value, optional): the argument on invoke, the result on
//!   completion (e.g. the value read; for `cas`, `[expected, new]`).
//! - `time` (integer): simulated time in microseconds.
//! - `node` (integer, optional): the client node that carried the operation.
//! - `error` (string, optional): why a `fail` or `info` ended so.
//! - `meta` (any JSON value, optional): system-specific facts about a
//!   completion (for ZooKeeper: `{"zxid", "session", "server", "events"}`).
//!
//! Kafka queue operations (`send`, `poll`, `txn`, `assign`, `subscribe`)
//! carry their partition inside `value`; their shapes are documented in
//! [`crate::check::kafka`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of a history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation was called.
    Invoke,
    /// It completed and took effect.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Its outcome is unknown.
    Info,
}

impl EventType {
    /// The type as written in histories: `invoke`, `ok`, `fail`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One history event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Logical client process.
    pub process: u64,
    /// Invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function called.
    pub f: String,
    /// The key operated on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// Argument (invoke) or result (completion).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
    /// Simulated time in microseconds.
    #[serde(default)]
    pub time: u64,
    /// The client node that carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
    /// Error or reason for a fail / info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// System-specific facts about a completion that checkers other than
    /// the linearizability checker use (e.g. ZooKeeper's zxid, session and
    /// watch events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A whole history, in real-time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The events in the order they happened.
    pub events: Vec<Event>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Records an invocation.
    #[allow(clippy::too_many_arguments)]
    pub fn invoke(
        &mut self,
        process: u64,
        f: &str,
        key: Option<Value>,
        value: Value,
        time: u64,
        node: Option<u32>,
    ) {
        self.push(Event {
            process,
            kind: EventType::Invoke,
            f: f.to_string(),
            key,
            value,
            time,
            node,
            error: None,
            meta: None,
        });
    }

    /// Records a completion of `process`'s outstanding operation.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &mut self,
        process: u64,
        kind: EventType,
        f: &str,
        key: Option<Value>,
        value: Value,
        time: u64,
        node: Option<u32>,
        error: Option<String>,
    ) {
        self.push(Event {
            process,
            kind,
            f: f.to_string(),
            key,
            value,
            time,
            node,
            error,
            meta: None,
        });
    }

    /// Serialises as JSON lines.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&serde_json::to_string(e).expect("event serialises"));
            out.push('\n');
        }
        out
    }

    /// Parses JSON lines; the error names the 1-based line.
    pub fn from_jsonl(text: &str) -> Result<History, HistoryParseError> {
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let e: Event = serde_json::from_str(trimmed).map_err(|err| HistoryParseError {
                line: i + 1,
                message: err.to_string(),
            })?;
            events.push(e);
        }
        Ok(History { events })
    }

    /// Pairs invocations with completions: one [`Operation`] per invocation,
    /// in invocation order. Errors name the 1-based event index; see
    /// [`History::operations_at`].
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryParseError> {
        self.operations_at(&|i| i + 1)
    }

    /// Pairs invocations with completions, with Jepsen's semantics of a
    /// process: it is single-threaded (one operation at a time), a
    /// completion ends its last invocation, and after an `info` completion
    /// it has crashed and its id is never used again (Jepsen continues the
    /// thread as a new process). A second invocation while one is pending,
    /// an invocation by a crashed process, and a completion without a
    /// pending invocation are errors; `line` maps a 0-based event index to
    /// the line named in the error (the event's source line).
    pub fn operations_at(
        &self,
        line: &dyn Fn(usize) -> usize,
    ) -> Result<Vec<Operation>, HistoryParseError> {
        use std::collections::BTreeMap;
        let mut ops: Vec<Operation> = Vec::new();
        // Process -> index of its pending operation.
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        // Process -> event index of the `info` that ended it.
        let mut crashed: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, e) in self.events.iter().enumerate() {
            let err = |message: String| HistoryParseError {
                line: line(i),
                message,
            };
            match e.kind {
                EventType::Invoke => {
                    if let Some(&prev) = open.get(&e.process) {
                        let p = &ops[prev];
                        return Err(err(format!(
                            "process {} invokes `{}` while its `{}` invoked at line {} has not completed (a process runs one operation at a time)",
                            e.process,
                            e.f,
                            p.f,
                            line(p.invoke_index)
                        )));
                    }
                    if let Some(&at) = crashed.get(&e.process) {
                        return Err(err(format!(
                            "process {} invokes `{}` after its `info` completion at line {}: a process whose outcome is unknown has crashed, and its thread must go on under a new process id",
                            e.process,
                            e.f,
                            line(at)
                        )));
                    }
                    open.insert(e.process, ops.len());
                    ops.push(Operation {
                        process: e.process,
                        f: e.f.clone(),
                        key: e.key.clone(),
                        input: e.value.clone(),
                        output: Value::Null,
                        outcome: Outcome::Info,
                        invoke_time: e.time,
                        complete_time: None,
                        invoke_index: i,
                        complete_index: None,
                        node: e.node,
                        error: None,
                        meta: None,
                    });
                }
                kind => {
                    let Some(idx) = open.remove(&e.process) else {
                        return Err(err(format!(
                            "`{}` completion of `{}` by process {} without a pending invoke",
                            kind.as_str(),
                            e.f,
                            e.process
                        )));
                    };
                    if ops[idx].f != e.f {
                        return Err(err(format!(
                            "process {}'s `{}` completion is of `{}`, but its pending invoke at line {} is `{}`",
                            e.process,
                            kind.as_str(),
                            e.f,
                            line(ops[idx].invoke_index),
                            ops[idx].f
                        )));
                    }
                    let op = &mut ops[idx];
                    op.outcome = match kind {
                        EventType::Ok => Outcome::Ok,
                        EventType::Fail => Outcome::Fail,
                        _ => {
                            crashed.insert(e.process, i);
                            Outcome::Info
                        }
                    };
                    op.output = e.value.clone();
                    op.complete_time = Some(e.time);
                    op.complete_index = Some(i);
                    op.error = e.error.clone();
                    op.meta = e.meta.clone();
                }
            }
        }
        Ok(ops)
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect.
    Ok,
    /// Did not take effect.
    Fail,
    /// Unknown (also: never completed).
    Info,
}

/// An invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Logical client process.
    pub process: u64,
    /// Function.
    pub f: String,
    /// Key, if any.
    pub key: Option<Value>,
    /// The invocation's value.
    pub input: Value,
    /// The completion's value (null if none).
    pub output: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// Simulated time of the invocation (µs).
    pub invoke_time: u64,
    /// Simulated time of the completion (µs), if it completed.
    pub complete_time: Option<u64>,
    /// Index of the invoke event in the history.
    pub invoke_index: usize,
    /// Index of the completion event, if any.
    pub complete_index: Option<usize>,
    /// Client node.
    pub node: Option<u32>,
    /// The completion's error or reason (e.g. a ZooKeeper error code).
    pub error: Option<String>,
    /// The completion's `meta` (system-specific facts), if any.
    pub meta: Option<Value>,
}

/// A malformed history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct HistoryParseError {
    /// 1-based line (or event) number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jsonl_round_trip_and_pairing() {
        let mut h = History::new();
        h.invoke(1, "write", Some(json!("x")), json!(3), 10, Some(4));
        h.invoke(2, "read", Some(json!("x")), Value::Null, 11, Some(5));
        h.complete(
            1,
            EventType::Ok,
            "write",
            Some(json!("x")),
            json!(3),
            20,
            Some(4),
            None,
        );
        let text = h.to_jsonl();
        let back = History::from_jsonl(&text).unwrap();
        assert_eq!(back, h);
        let ops = back.operations().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].outcome, Outcome::Ok);
        assert_eq!(ops[1].outcome, Outcome::Info);
    }

    #[test]
    fn bad_line_is_named() {
        let err =
            History::from_jsonl("{\"process\":1,\"type\":\"invoke\",\"f\":\"r\"}\nnot json\n")
                .unwrap_err();
        assert_eq!(err.line, 2);
        let err = History::from_jsonl("{\"process\":1,\"type\":\"ok\",\"f\":\"r\"}\n")
            .unwrap()
            .operations()
            .unwrap_err();
        assert_eq!(err.line, 1);
    }
}
