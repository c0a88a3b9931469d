//! Registers: `register` (read / write) and `cas-register` (read / write /
//! compare-and-set), one register per key.
//!
//! Values are any JSON values; `null` (EDN `nil`) is the register being
//! absent, which is also the default initial value. A `read` that returns
//! `null` therefore means "absent". `cas` takes `[expected, new]` and
//! succeeds iff the register holds `expected`; a `:fail` cas did not take
//! effect (Jepsen semantics) and is dropped, as is every failed operation.

use serde_json::Value;

use super::{fname, pair, show, unknown, Interner, Model};
use crate::history::{Operation, Outcome};

/// An encoded register operation; values are interned ids (0 = null).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned the value.
    Read(u32),
    /// A write (known or unknown outcome: either way it may take effect).
    Write(u32),
    /// A successful compare-and-set.
    Cas(u32, u32),
    /// A compare-and-set whose outcome is unknown.
    CasUnknown(u32, u32),
}

/// A register model, with or without compare-and-set.
#[derive(Debug)]
pub struct Register {
    cas: bool,
    init: u32,
    values: Interner,
}

impl Register {
    /// A plain read/write register starting at `init` (`null` = absent).
    pub fn plain(init: &Value) -> Register {
        Register::new(false, init)
    }

    /// A compare-and-set register starting at `init` (`null` = absent).
    pub fn cas(init: &Value) -> Register {
        Register::new(true, init)
    }

    fn new(cas: bool, init: &Value) -> Register {
        let mut values = Interner::new();
        let init = values.id(init);
        Register { cas, init, values }
    }

    /// The interned values, to render ids.
    pub fn values(&self) -> &Interner {
        &self.values
    }
}

impl Model for Register {
    type Op = RegisterOp;
    type State = u32;

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }

    fn encode(&mut self, op: &Operation) -> Result<Option<RegisterOp>, String> {
        if op.outcome == Outcome::Fail {
            return Ok(None);
        }
        match fname(op) {
            "read" | "get" => {
                if unknown(op) {
                    return Ok(None);
                }
                Ok(Some(RegisterOp::Read(self.values.id(&op.output))))
            }
            "write" | "put" => Ok(Some(RegisterOp::Write(self.values.id(&op.input)))),
            "cas" if self.cas => {
                let arg = if op.input.is_null() {
                    &op.output
                } else {
                    &op.input
                };
                let (a, b) = pair(arg)
                    .ok_or_else(|| format!("cas needs [expected, new], got {}", show(arg)))?;
                let (a, b) = (self.values.id(a), self.values.id(b));
                Ok(Some(if unknown(op) {
                    RegisterOp::CasUnknown(a, b)
                } else {
                    RegisterOp::Cas(a, b)
                }))
            }
            "cas" => Err("cas needs the cas-register model".to_string()),
            f => Err(format!(
                "{} has no operation `{f}` (expected read, write{})",
                self.name(),
                if self.cas { ", cas" } else { "" }
            )),
        }
    }

    fn init(&self) -> u32 {
        self.init
    }

    #[inline]
    fn step(&self, state: &u32, op: &RegisterOp) -> Option<u32> {
        match *op {
            RegisterOp::Read(v) => (v == *state).then_some(*state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas(a, b) => (a == *state).then_some(b),
            RegisterOp::CasUnknown(a, b) => Some(if a == *state { b } else { *state }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testing::op;
    use serde_json::json;

    #[test]
    fn nil_is_absent_and_the_default() {
        let mut m = Register::cas(&Value::Null);
        let r = m
            .encode(&op("read", json!(null), json!(null)))
            .unwrap()
            .unwrap();
        assert_eq!(m.step(&m.init(), &r), Some(0));
        let r1 = m
            .encode(&op("read", json!(null), json!(1)))
            .unwrap()
            .unwrap();
        assert_eq!(m.step(&m.init(), &r1), None);
    }

    #[test]
    fn configurable_initial_value() {
        let mut m = Register::cas(&json!(0));
        let r = m
            .encode(&op("read", json!(null), json!(0)))
            .unwrap()
            .unwrap();
        assert!(m.step(&m.init(), &r).is_some());
        let c = m
            .encode(&op("cas", json!([0, 5]), json!(null)))
            .unwrap()
            .unwrap();
        let s = m.step(&m.init(), &c).unwrap();
        let r5 = m
            .encode(&op("read", json!(null), json!(5)))
            .unwrap()
            .unwrap();
        assert!(m.step(&s, &r5).is_some());
        // A cas on the wrong value is illegal when it claims success.
        assert_eq!(m.step(&s, &c), None);
    }

    #[test]
    fn failed_and_unknown_ops() {
        let mut m = Register::cas(&Value::Null);
        let mut f = op("cas", json!([1, 2]), json!(null));
        f.outcome = Outcome::Fail;
        assert_eq!(m.encode(&f).unwrap(), None);
        let mut i = op("cas", json!([1, 2]), json!(null));
        i.outcome = Outcome::Info;
        let c = m.encode(&i).unwrap().unwrap();
        assert_eq!(m.step(&0, &c), Some(0));
        let mut r = op("read", json!(null), json!(null));
        r.outcome = Outcome::Info;
        assert_eq!(m.encode(&r).unwrap(), None);
    }

    #[test]
    fn plain_register_rejects_cas_and_unknown_functions() {
        let mut m = Register::plain(&Value::Null);
        assert!(m.encode(&op("cas", json!([1, 2]), json!(null))).is_err());
        assert!(m.encode(&op("frob", json!(1), json!(null))).is_err());
        let mut c = Register::cas(&Value::Null);
        assert!(c.encode(&op("cas", json!(3), json!(null))).is_err());
    }

    #[test]
    fn numbers_and_strings_differ() {
        let mut m = Register::plain(&Value::Null);
        let w = m
            .encode(&op("write", json!(1), json!(null)))
            .unwrap()
            .unwrap();
        let r = m
            .encode(&op("read", json!(null), json!("1")))
            .unwrap()
            .unwrap();
        let s = m.step(&0, &w).unwrap();
        assert_eq!(m.step(&s, &r), None);
    }
}
