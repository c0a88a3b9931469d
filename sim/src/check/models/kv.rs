//! Key-value map: `get`, `put`, `append` and `cas` on string values, one
//! independent entry per key (checked per key).
//!
//! A missing key reads as the empty string, and `null` counts as the empty
//! string (Porcupine's `kvModel`). Non-string JSON values are compared by
//! their JSON text, so `5` and `"5"` are the same value. States are string
//! fingerprints ([`Fingerprint`]), so `append` costs O(1) whatever the length
//! of the string, and states hash in a few instructions.

use serde_json::Value;

use super::{fname, pair, show, unknown, Model};
use crate::check::hash::{Fingerprint, Suffix};
use crate::history::{Operation, Outcome};

/// An encoded key-value operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// A get that returned this string.
    Get(Fingerprint),
    /// Put this string (outcome known or not).
    Put(Fingerprint),
    /// Append this string (outcome known or not).
    Append(Suffix),
    /// A successful compare-and-set `[expected, new]`.
    Cas(Fingerprint, Fingerprint),
    /// A compare-and-set with unknown outcome.
    CasUnknown(Fingerprint, Fingerprint),
}

/// The key-value model.
#[derive(Debug, Default)]
pub struct Kv;

impl Kv {
    /// A new key-value model.
    pub fn new() -> Kv {
        Kv
    }
}

/// The bytes a value stands for: strings as they are, `null` as empty,
/// anything else as its JSON text.
fn text(v: &Value) -> Suffix {
    match v {
        Value::Null => Fingerprint::of(b""),
        Value::String(s) => Fingerprint::of(s.as_bytes()),
        other => Fingerprint::of(other.to_string().as_bytes()),
    }
}

impl Model for Kv {
    type Op = KvOp;
    type State = Fingerprint;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn encode(&mut self, op: &Operation) -> Result<Option<KvOp>, String> {
        if op.outcome == Outcome::Fail {
            return Ok(None);
        }
        Ok(Some(match fname(op) {
            "get" | "read" => {
                if unknown(op) {
                    return Ok(None);
                }
                KvOp::Get(text(&op.output).print)
            }
            "put" | "write" => KvOp::Put(text(&op.input).print),
            "append" => KvOp::Append(text(&op.input)),
            "cas" => {
                let (a, b) = pair(&op.input)
                    .ok_or_else(|| format!("cas needs [expected, new], got {}", show(&op.input)))?;
                let (a, b) = (text(a).print, text(b).print);
                if unknown(op) {
                    KvOp::CasUnknown(a, b)
                } else {
                    KvOp::Cas(a, b)
                }
            }
            f => {
                return Err(format!(
                    "kv has no operation `{f}` (expected get, put, append, cas)"
                ))
            }
        }))
    }

    fn init(&self) -> Fingerprint {
        Fingerprint::EMPTY
    }

    #[inline]
    fn step(&self, s: &Fingerprint, op: &KvOp) -> Option<Fingerprint> {
        match op {
            KvOp::Get(v) => (v == s).then_some(*s),
            KvOp::Put(v) => Some(*v),
            KvOp::Append(suffix) => Some(s.append(suffix)),
            KvOp::Cas(a, b) => (a == s).then_some(*b),
            KvOp::CasUnknown(a, b) => Some(if a == s { *b } else { *s }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testing::op;
    use serde_json::json;

    fn run(m: &mut Kv, ops: &[(&str, Value, Value)]) -> Option<Fingerprint> {
        let mut s = m.init();
        for (f, i, o) in ops {
            let e = m.encode(&op(f, i.clone(), o.clone())).unwrap().unwrap();
            s = m.step(&s, &e)?;
        }
        Some(s)
    }

    #[test]
    fn missing_key_reads_empty_and_appends_concatenate() {
        let mut m = Kv::new();
        assert!(run(&mut m, &[("get", json!(null), json!(""))]).is_some());
        assert!(run(&mut m, &[("get", json!(null), json!(null))]).is_some());
        let ok = [
            ("append", json!("ab"), json!(null)),
            ("append", json!("c"), json!(null)),
            ("get", json!(null), json!("abc")),
        ];
        assert!(run(&mut m, &ok).is_some());
        let bad = [
            ("append", json!("ab"), json!(null)),
            ("get", json!(null), json!("ba")),
        ];
        assert!(run(&mut m, &bad).is_none());
    }

    #[test]
    fn put_and_cas() {
        let mut m = Kv::new();
        let ok = [
            ("put", json!("x"), json!(null)),
            ("cas", json!(["x", "y"]), json!(null)),
            ("get", json!(null), json!("y")),
        ];
        assert!(run(&mut m, &ok).is_some());
        let bad = [("cas", json!(["x", "y"]), json!(null))];
        assert!(run(&mut m, &bad).is_none());
        assert!(m.encode(&op("cas", json!(1), json!(null))).is_err());
        assert!(m.encode(&op("incr", json!(1), json!(null))).is_err());
    }
}
