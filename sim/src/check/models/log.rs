//! Append-only log model (`log`), one log per key (e.g. a topic
//! partition).
//!
//! - `append`: invoke `value` is the record; the `ok` value is the offset
//!   it got (an integer, or `{"offset": n}`; `null` if not recorded).
//!   Offsets start at 0.
//! - `read`: invoke `value` is `[from, to]` (or `{"from":a,"to":b}`): the
//!   `ok` value must be exactly the records at offsets `from..min(to, end)`;
//!   or just `from` (a poll): the `ok` value must be the next records from
//!   `from`, as many as were returned (possibly none).
//!
//! Failed operations are dropped; an `append` with unknown outcome may have
//! taken effect; a `read` with unknown outcome constrains nothing.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;

use super::{fname, show, unknown, Interner, Model};
use crate::check::hash::mix64;
use crate::history::{Operation, Outcome};

/// An encoded log operation; records are interned ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// Append a record; the offset it got, if known.
    Append(u32, Option<u64>),
    /// A read of `[from, to)` (`to = None`: a poll of any length) that
    /// returned these records.
    Read(u64, Option<u64>, Vec<u32>),
}

/// A log: its records, with a cached hash so that hashing is O(1).
#[derive(Clone, Debug)]
pub struct LogState {
    records: Arc<Vec<u32>>,
    hash: u64,
}

impl PartialEq for LogState {
    fn eq(&self, other: &LogState) -> bool {
        self.hash == other.hash && self.records == other.records
    }
}
impl Eq for LogState {}
impl Hash for LogState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl LogState {
    /// The records, in offset order.
    pub fn records(&self) -> &[u32] {
        &self.records
    }
}

/// The append-only log model.
#[derive(Debug)]
pub struct Log {
    values: Interner,
}

impl Default for Log {
    fn default() -> Log {
        Log::new()
    }
}

impl Log {
    /// A new log model; every log starts empty.
    pub fn new() -> Log {
        Log {
            values: Interner::new(),
        }
    }
}

fn offset(v: &Value) -> Option<u64> {
    v.as_object()
        .and_then(|o| o.get("offset"))
        .unwrap_or(v)
        .as_u64()
}

impl Model for Log {
    type Op = LogOp;
    type State = LogState;

    fn name(&self) -> &'static str {
        "log"
    }

    fn encode(&mut self, op: &Operation) -> Result<Option<LogOp>, String> {
        if op.outcome == Outcome::Fail {
            return Ok(None);
        }
        match fname(op) {
            "append" | "send" => {
                let id = self.values.id(&op.input);
                let at = if unknown(op) || op.output.is_null() {
                    None
                } else {
                    Some(offset(&op.output).ok_or_else(|| {
                        format!("append returns an offset, got {}", show(&op.output))
                    })?)
                };
                Ok(Some(LogOp::Append(id, at)))
            }
            "read" | "poll" => {
                let (from, to) = match &op.input {
                    Value::Array(a) if a.len() == 2 => (a[0].as_u64(), a[1].as_u64().map(Some)),
                    Value::Object(o) => (
                        o.get("from").and_then(Value::as_u64),
                        match o.get("to") {
                            None | Some(Value::Null) => Some(None),
                            Some(t) => t.as_u64().map(Some),
                        },
                    ),
                    v => (v.as_u64(), Some(None)),
                };
                let (Some(from), Some(to)) = (from, to) else {
                    return Err(format!(
                        "read needs `from`, `[from, to]` or {{\"from\":..,\"to\":..}}, got {}",
                        show(&op.input)
                    ));
                };
                if unknown(op) {
                    return Ok(None);
                }
                let records = match &op.output {
                    Value::Array(a) => a.iter().map(|v| self.values.id(v)).collect(),
                    Value::Null => Vec::new(),
                    v => return Err(format!("read returns an array, got {}", show(v))),
                };
                Ok(Some(LogOp::Read(from, to, records)))
            }
            f => Err(format!(
                "log has no operation `{f}` (expected append, read)"
            )),
        }
    }

    fn init(&self) -> LogState {
        LogState {
            records: Arc::new(Vec::new()),
            hash: 0,
        }
    }

    fn step(&self, s: &LogState, op: &LogOp) -> Option<LogState> {
        match op {
            LogOp::Append(v, at) => {
                let end = s.records.len() as u64;
                if at.is_some_and(|a| a != end) {
                    return None;
                }
                let mut records = Vec::with_capacity(s.records.len() + 1);
                records.extend_from_slice(&s.records);
                records.push(*v);
                Some(LogState {
                    records: Arc::new(records),
                    hash: mix64(s.hash ^ (*v as u64)).wrapping_add(end),
                })
            }
            LogOp::Read(from, to, got) => {
                let len = s.records.len();
                let from = (*from).min(len as u64) as usize;
                let end = match to {
                    Some(t) => (*t).min(len as u64) as usize,
                    None => from.saturating_add(got.len()).min(len),
                };
                let want = s.records.get(from..end.max(from)).unwrap_or(&[]);
                (want == got.as_slice()).then(|| s.clone())
            }
        }
    }

    fn state_bytes(&self, s: &LogState) -> usize {
        32 + s.records.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testing::op;
    use serde_json::json;

    fn apply(m: &mut Log, s: &LogState, f: &str, i: Value, o: Value) -> Option<LogState> {
        let e = m.encode(&op(f, i, o)).unwrap().unwrap();
        m.step(s, &e)
    }

    #[test]
    fn append_returns_the_next_offset() {
        let mut m = Log::new();
        let init = m.init();
        let s = apply(&mut m, &init, "append", json!("a"), json!(0)).unwrap();
        assert!(apply(&mut m, &s, "append", json!("b"), json!(0)).is_none());
        let s = apply(&mut m, &s, "append", json!("b"), json!({"offset": 1})).unwrap();
        assert!(apply(&mut m, &s, "read", json!([0, 5]), json!(["a", "b"])).is_some());
        assert!(apply(&mut m, &s, "read", json!([0, 5]), json!(["a"])).is_none());
        assert!(apply(&mut m, &s, "read", json!([1, 2]), json!(["b"])).is_some());
        assert!(apply(&mut m, &s, "read", json!(1), json!(["b"])).is_some());
        assert!(apply(&mut m, &s, "read", json!(0), json!(["a"])).is_some());
        assert!(apply(&mut m, &s, "read", json!(0), json!(["b"])).is_none());
        assert!(apply(&mut m, &s, "read", json!(7), json!([])).is_some());
        assert!(apply(
            &mut m,
            &s,
            "read",
            json!({"from": 0}),
            json!(["a", "b", "c"])
        )
        .is_none());
    }

    #[test]
    fn states_compare_by_content() {
        let mut m = Log::new();
        let init = m.init();
        let a = apply(&mut m, &init, "append", json!("a"), json!(null)).unwrap();
        let b = apply(&mut m, &init, "append", json!("a"), json!(null)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, m.init());
    }

    #[test]
    fn bad_operations_are_refused() {
        let mut m = Log::new();
        assert!(m.encode(&op("append", json!(1), json!("x"))).is_err());
        assert!(m.encode(&op("read", json!("x"), json!([]))).is_err());
        assert!(m.encode(&op("read", json!(0), json!(3))).is_err());
        assert!(m.encode(&op("trim", json!(0), json!(3))).is_err());
    }
}
