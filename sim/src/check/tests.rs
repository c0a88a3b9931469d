//! Tests of the search and driver on hand-made histories.

use std::time::Duration;

use serde_json::{json, Value};

use super::models::register::Register;
use super::{check_operations, html, CheckOptions, Report, Verdict};
use crate::history::{EventType, History};

/// A tiny history builder: `i(p, f, v)` invokes, `c(p, kind, f, v)` completes.
struct B(History, u64);

impl B {
    fn new() -> B {
        B(History::new(), 0)
    }
    fn i(mut self, p: u64, f: &str, key: &str, v: Value) -> B {
        self.1 += 1;
        self.0.invoke(p, f, Some(json!(key)), v, self.1, None);
        self
    }
    fn c(mut self, p: u64, kind: EventType, f: &str, key: &str, v: Value) -> B {
        self.1 += 1;
        self.0
            .complete(p, kind, f, Some(json!(key)), v, self.1, None, None);
        self
    }
    fn ok(self, p: u64, f: &str, key: &str, v: Value) -> B {
        self.c(p, EventType::Ok, f, key, v)
    }
    fn check_with(&self, opts: &CheckOptions) -> Report {
        let ops = self.0.operations().unwrap();
        check_operations(&mut Register::cas(&Value::Null), &ops, opts).unwrap()
    }
    fn check(&self) -> Verdict {
        let v = self.check_with(&CheckOptions::default()).verdict;
        // Without any cache memory the search is slower but must agree.
        let tight = CheckOptions {
            cache_bytes: 0,
            ..CheckOptions::default()
        };
        assert_eq!(self.check_with(&tight).verdict, v);
        v
    }
}

use EventType::{Fail, Info};

#[test]
fn concurrent_writes_may_be_seen_in_either_order() {
    let h = B::new()
        .i(0, "write", "x", json!(0))
        .i(1, "write", "x", json!(1))
        .i(2, "read", "x", Value::Null)
        .ok(2, "read", "x", json!(1))
        .i(3, "read", "x", Value::Null)
        .ok(3, "read", "x", json!(0))
        .ok(0, "write", "x", json!(0))
        .ok(1, "write", "x", json!(1));
    assert_eq!(h.check(), Verdict::Linearizable);
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let h = B::new()
        .i(0, "write", "x", json!(1))
        .ok(0, "write", "x", json!(1))
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", Value::Null);
    assert_eq!(h.check(), Verdict::NotLinearizable);
    let r = h.check_with(&CheckOptions::default());
    let ex = r.explanation.unwrap();
    assert_eq!(ex.prefix, vec![0]);
    assert_eq!(ex.blocked, 1);
    assert_eq!(ex.partition.as_deref(), Some("\"x\""));
    let ops = h.0.operations().unwrap();
    assert!(ex.text(&ops, None).contains("cannot be placed"));
    let page = html::render("a <b> & c", &ops, &ex, None);
    assert!(page.contains("<svg") && page.contains("a &lt;b&gt; &amp; c"));
}

#[test]
fn indeterminate_ops_may_happen_late_or_never_but_once() {
    let base = || {
        B::new()
            .i(0, "write", "x", json!(1))
            .c(0, Info, "write", "x", Value::Null)
    };
    let late = base()
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", Value::Null)
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", json!(1));
    assert_eq!(late.check(), Verdict::Linearizable);
    let never = base()
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", Value::Null);
    assert_eq!(never.check(), Verdict::Linearizable);
    let undone = base()
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", json!(1))
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", Value::Null);
    assert_eq!(undone.check(), Verdict::NotLinearizable);
    // Never completed is the same as info.
    let open = B::new()
        .i(0, "write", "x", json!(1))
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", json!(1));
    assert_eq!(open.check(), Verdict::Linearizable);
}

#[test]
fn failed_ops_did_not_happen() {
    let h = B::new()
        .i(0, "write", "x", json!(1))
        .c(0, Fail, "write", "x", Value::Null)
        .i(1, "read", "x", Value::Null)
        .ok(1, "read", "x", json!(1));
    assert_eq!(h.check(), Verdict::NotLinearizable);
}

#[test]
fn keys_are_independent_and_reported_in_key_order() {
    let h = B::new()
        .i(0, "write", "b", json!(1))
        .ok(0, "write", "b", json!(1))
        .i(0, "read", "b", Value::Null)
        .ok(0, "read", "b", json!(2))
        .i(1, "write", "a", json!(1))
        .ok(1, "write", "a", json!(1))
        .i(1, "read", "a", Value::Null)
        .ok(1, "read", "a", json!(3))
        .i(2, "read", "c", Value::Null)
        .ok(2, "read", "c", Value::Null);
    let r = h.check_with(&CheckOptions::default());
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.partitions, 3);
    assert_eq!(r.explanation.unwrap().partition.as_deref(), Some("\"a\""));
    // The same write/read on different keys is fine.
    let ok = B::new()
        .i(0, "write", "a", json!(1))
        .ok(0, "write", "a", json!(1))
        .i(1, "read", "b", Value::Null)
        .ok(1, "read", "b", Value::Null);
    assert_eq!(ok.check(), Verdict::Linearizable);
}

#[test]
fn deadline_gives_unknown() {
    let h = B::new()
        .i(0, "write", "x", json!(1))
        .ok(0, "write", "x", json!(1));
    let opts = CheckOptions {
        timeout: Some(Duration::ZERO),
        ..CheckOptions::default()
    };
    let r = h.check_with(&opts);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.timed_out, 1);
    // A huge timeout does not overflow.
    let opts = CheckOptions {
        timeout: Some(Duration::MAX),
        ..CheckOptions::default()
    };
    assert_eq!(h.check_with(&opts).verdict, Verdict::Linearizable);
}

/// A step budget gives up as the deadline does, but at the same point on
/// any machine: a budget below what the search needs is `Unknown` every
/// time, and one above it decides.
#[test]
fn step_budget_gives_unknown_deterministically() {
    let mut b = B::new();
    for p in 0..12 {
        b = b
            .i(p, "write", "x", json!(p))
            .c(p, Info, "write", "x", Value::Null);
    }
    let h = b
        .i(100, "read", "x", Value::Null)
        .ok(100, "read", "x", json!(99));
    let tight = CheckOptions {
        max_steps: Some(50),
        ..CheckOptions::default()
    };
    for _ in 0..3 {
        let r = h.check_with(&tight);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.timed_out, 1);
    }
    let ample = CheckOptions {
        max_steps: Some(1 << 40),
        ..CheckOptions::default()
    };
    assert_eq!(h.check_with(&ample).verdict, Verdict::NotLinearizable);
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(B::new().check(), Verdict::Linearizable);
}

/// Forty crashed writes (unknown outcome, open to the end), then a write
/// and a read of known outcome: linearizable, found at once because the
/// search tries the known operations before the subsets of crashed ones.
/// Proving a violation still means trying those subsets (sped up by
/// counting a configuration with more crashed writes and the same state as
/// visited), so the violating variant has twelve.
#[test]
fn many_crashed_writes_are_decided_quickly() {
    let crashed = |n: u64| {
        let mut b = B::new();
        for p in 0..n {
            b = b
                .i(p, "write", "x", json!(p))
                .c(p, Info, "write", "x", Value::Null);
        }
        b.i(100, "write", "x", json!(100))
            .ok(100, "write", "x", json!(100))
    };
    let opts = CheckOptions {
        timeout: Some(Duration::from_secs(20)),
        ..CheckOptions::default()
    };
    let seen = crashed(40)
        .i(100, "read", "x", Value::Null)
        .ok(100, "read", "x", json!(7));
    assert_eq!(seen.check_with(&opts).verdict, Verdict::Linearizable);
    let unwritten = crashed(12)
        .i(100, "read", "x", Value::Null)
        .ok(100, "read", "x", json!(1000));
    assert_eq!(
        unwritten.check_with(&opts).verdict,
        Verdict::NotLinearizable
    );
}
