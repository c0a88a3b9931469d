//! Decoding paired history operations into Kafka queue operations.
//!
//! One internal representation serves kzsim JSON lines and Jepsen EDN
//! histories (see [`super`] for the shapes). The decoder accepts, for
//! `send` and `poll`, both kzsim's flat values and Jepsen's micro-op
//! vectors, which are told apart by their JSON shape: a flat send is
//! `[key, value]` with a scalar key, a micro-op vector holds arrays; a flat
//! poll result is an object, a micro-op vector is an array.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{Operation, Outcome};

/// A partition name: JSON strings as they are, integers in decimal.
pub type Key = String;

/// What a queue operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Sends only.
    Send,
    /// Polls only.
    Poll,
    /// A mix of sends and polls.
    Txn,
    /// Manual partition assignment (replaces the consumer's keys).
    Assign,
    /// Topic subscription (replaces the consumer's keys).
    Subscribe,
}

/// One micro-operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mop {
    /// `value` sent to `key`, at `offset` when known.
    Send {
        /// The partition.
        key: Key,
        /// The message.
        value: i64,
        /// The acknowledged offset, if known.
        offset: Option<i64>,
    },
    /// One poll: per partition, the `(offset, value)` pairs read, in order.
    Poll(BTreeMap<Key, Vec<(Option<i64>, i64)>>),
}

/// A decoded queue operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KOp {
    /// The client process.
    pub process: u64,
    /// What it does.
    pub kind: OpKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Micro-operations, from the completion when it carries them, else
    /// from the invocation.
    pub mops: Vec<Mop>,
    /// The keys of an assign or subscribe.
    pub keys: Vec<Key>,
    /// The history event that shows the op: its completion, else its
    /// invocation.
    pub event: usize,
    /// The invocation's event index.
    pub invoke_event: usize,
    /// Simulated time (µs) of its completion, else of its invocation.
    pub time: u64,
}

impl KOp {
    /// The values this op sent, per key, in order.
    pub fn writes(&self) -> BTreeMap<&str, Vec<i64>> {
        let mut out: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for m in &self.mops {
            if let Mop::Send { key, value, .. } = m {
                out.entry(key.as_str()).or_default().push(*value);
            }
        }
        out
    }

    /// The `(offset, value)` pairs this op read, per key, in order.
    pub fn reads(&self) -> BTreeMap<&str, Vec<(Option<i64>, i64)>> {
        let mut out: BTreeMap<&str, Vec<(Option<i64>, i64)>> = BTreeMap::new();
        for m in &self.mops {
            if let Mop::Poll(p) = m {
                for (k, pairs) in p {
                    out.entry(k.as_str()).or_default().extend(pairs);
                }
            }
        }
        out
    }
}

fn key(v: &Value) -> Result<Key, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(format!("bad key {other} (expected a string or an integer)")),
    }
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("bad {what} {v} (expected an integer)"))
}

fn offset(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        v => match v.as_i64() {
            Some(o) if o >= 0 => Ok(Some(o)),
            _ => Err(format!(
                "bad offset {v} (expected a non-negative integer or null)"
            )),
        },
    }
}

/// A sent value: `v` or `[offset, v]`.
fn sent(v: &Value) -> Result<(Option<i64>, i64), String> {
    match v {
        Value::Array(pair) if pair.len() == 2 => Ok((offset(&pair[0])?, int(&pair[1], "value")?)),
        Value::Array(_) => Err(format!("bad sent value {v} (expected [offset, value])")),
        v => Ok((None, int(v, "value")?)),
    }
}

fn send(k: &Value, v: &Value) -> Result<Mop, String> {
    let (offset, value) = sent(v)?;
    Ok(Mop::Send {
        key: key(k)?,
        value,
        offset,
    })
}

/// A poll result `{key: [[offset, value], ...]}`.
fn poll_result(v: &Value) -> Result<Mop, String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "bad poll result {v} (expected {{key: [[offset, value], ...]}})"
        ));
    };
    let mut out = BTreeMap::new();
    for (k, pairs) in m {
        let Value::Array(pairs) = pairs else {
            return Err(format!(
                "bad poll result for key {k}: expected a list of pairs"
            ));
        };
        let mut read = Vec::with_capacity(pairs.len());
        for p in pairs {
            match p {
                Value::Array(p) if p.len() == 2 => {
                    read.push((offset(&p[0])?, int(&p[1], "value")?))
                }
                other => {
                    return Err(format!(
                        "bad polled pair {other} (expected [offset, value])"
                    ))
                }
            }
        }
        out.insert(k.clone(), read);
    }
    Ok(Mop::Poll(out))
}

/// One micro-op `["send", k, v]`, `["poll"]` or `["poll", {..}]`.
fn mop(v: &Value) -> Result<Option<Mop>, String> {
    let Value::Array(items) = v else {
        return Err(format!("bad micro-op {v} (expected [f ...])"));
    };
    match (items.first().and_then(Value::as_str), items.len()) {
        (Some("send"), 3) => send(&items[1], &items[2]).map(Some),
        (Some("poll"), 1) => Ok(None),
        (Some("poll"), 2) if items[1].is_null() => Ok(None),
        (Some("poll"), 2) => poll_result(&items[1]).map(Some),
        _ => Err(format!(
            "bad micro-op {v} (expected [send k v], [send k [offset v]] or [poll {{..}}])"
        )),
    }
}

fn mops(v: &Value) -> Result<Vec<Mop>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.extend(mop(i)?);
            }
            Ok(out)
        }
        other => Err(format!("bad value {other} (expected a list of micro-ops)")),
    }
}

/// A `send` value: flat `[k, v]` / `[k, [o, v]]`, or micro-ops.
fn send_value(v: &Value) -> Result<Vec<Mop>, String> {
    match v {
        Value::Array(items) if items.len() == 2 && !items[0].is_array() => {
            Ok(vec![send(&items[0], &items[1])?])
        }
        v => mops(v),
    }
}

/// A `poll` value: a flat result object, or micro-ops.
fn poll_value(v: &Value) -> Result<Vec<Mop>, String> {
    match v {
        Value::Object(_) => Ok(vec![poll_result(v)?]),
        v => mops(v),
    }
}

fn keys(v: &Value) -> Result<Vec<Key>, String> {
    match v {
        Value::Array(items) => items.iter().map(key).collect(),
        other => Err(format!("bad key list {other} (expected a list of keys)")),
    }
}

/// Decodes one operation; `Ok(None)` for functions the checker ignores
/// (nemesis and bookkeeping ops).
pub fn decode(op: &Operation) -> Result<Option<KOp>, String> {
    let kind = match op.f.as_str() {
        "send" => OpKind::Send,
        "poll" => OpKind::Poll,
        "txn" => OpKind::Txn,
        "assign" => OpKind::Assign,
        "subscribe" => OpKind::Subscribe,
        _ => return Ok(None),
    };
    // The completion's value if it has one, else the invocation's.
    let value = match (&op.output, op.outcome) {
        (Value::Null, _) => &op.input,
        (v, _) => v,
    };
    let decode_mops = match kind {
        OpKind::Send => send_value,
        OpKind::Poll => poll_value,
        _ => mops,
    };
    let (mops, keys) = match kind {
        OpKind::Assign | OpKind::Subscribe => (Vec::new(), keys(value)?),
        _ => {
            // Check the invocation too, so that malformed input is named
            // even when the completion replaces it.
            decode_mops(&op.input)?;
            (decode_mops(value)?, Vec::new())
        }
    };
    Ok(Some(KOp {
        process: op.process,
        kind,
        outcome: op.outcome,
        mops,
        keys,
        event: op.complete_index.unwrap_or(op.invoke_index),
        invoke_event: op.invoke_index,
        time: op.complete_time.unwrap_or(op.invoke_time),
    }))
}
