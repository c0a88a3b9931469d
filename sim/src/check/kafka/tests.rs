//! Hand-written histories: each category must pass and must fail.

use serde_json::{json, Value};

use super::*;
use crate::outcome::Violation;

/// Builds a kzsim JSON-lines history one op at a time.
#[derive(Default)]
struct H(String);

impl H {
    fn ev(&mut self, p: u64, kind: &str, f: &str, value: Value) -> &mut H {
        let e = json!({"process": p, "type": kind, "f": f, "value": value});
        self.0.push_str(&format!("{e}\n"));
        self
    }
    /// An acknowledged send of `v` to `k` at offset `o`.
    fn send(&mut self, p: u64, k: &str, v: i64, o: i64) -> &mut H {
        self.ev(p, "invoke", "send", json!([k, v]))
            .ev(p, "ok", "send", json!([k, [o, v]]))
    }
    /// A send that ended `kind` (fail or info) with no offset.
    fn send_unsure(&mut self, p: u64, k: &str, v: i64, kind: &str) -> &mut H {
        self.ev(p, "invoke", "send", json!([k, v]))
            .ev(p, kind, "send", json!([k, v]))
    }
    fn poll(&mut self, p: u64, k: &str, pairs: &[(i64, i64)]) -> &mut H {
        let pairs: Vec<Value> = pairs.iter().map(|&(o, v)| json!([o, v])).collect();
        self.ev(p, "invoke", "poll", Value::Null)
            .ev(p, "ok", "poll", json!({ k: pairs }))
    }
    fn assign(&mut self, p: u64, keys: &[&str]) -> &mut H {
        self.ev(p, "invoke", "assign", json!(keys))
            .ev(p, "ok", "assign", json!(keys))
    }
    fn check(&self) -> KafkaReport {
        check_text(Format::Jsonl, &self.0).unwrap().1
    }
}

fn kinds(r: &KafkaReport) -> Vec<&'static str> {
    let mut k: Vec<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
    k.dedup();
    k
}

/// Three acknowledged sends to `p` at offsets 0, 1, 2.
fn three() -> H {
    let mut h = H::default();
    h.send(0, "p", 1, 0).send(0, "p", 2, 1).send(0, "p", 3, 2);
    h
}

#[test]
fn a_correct_history_passes() {
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2)]).poll(1, "p", &[(2, 3)]);
    let r = h.check();
    assert!(r.is_valid(), "{r:?}");
    assert_eq!(r.ops, 5);
}

#[test]
fn inconsistent_offsets() {
    let mut h = H::default();
    h.send(0, "p", 1, 0).poll(1, "p", &[(0, 1)]);
    assert!(h.check().is_valid());
    h.send(2, "p", 2, 0).poll(3, "p", &[(0, 2)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["inconsistent-offsets"], "{r:?}");
    let a = &r.anomalies[0];
    assert_eq!((a.values.clone(), a.offsets.clone()), (vec![1, 2], vec![0]));
    assert_eq!(a.events, vec![1, 3, 5, 7]);
}

#[test]
fn duplicate() {
    let mut h = H::default();
    h.send(0, "p", 1, 0).poll(1, "p", &[(0, 1), (1, 1)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["duplicate", "nonmonotonic-poll"], "{r:?}");
    assert_eq!(r.anomalies[0].offsets, vec![0, 1]);
}

#[test]
fn lost_write() {
    // Process 1 reads offset 0, process 2 starts at offset 2: all read.
    let mut ok = three();
    ok.poll(1, "p", &[(0, 1), (1, 2)]).poll(2, "p", &[(2, 3)]);
    assert!(ok.check().is_valid());
    // Value 2 is never read though offset 2 is.
    let mut h = three();
    h.poll(1, "p", &[(0, 1)]).poll(2, "p", &[(2, 3)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["lost-write"], "{r:?}");
    let a = &r.anomalies[0];
    assert_eq!((a.values.clone(), a.offsets.clone()), (vec![2], vec![1]));
    // The writer and the reader of the bound.
    assert_eq!(a.events, vec![3, 9]);
}

#[test]
fn unseen_and_info_sends() {
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["unseen"], "{r:?}");
    assert_eq!(r.anomalies[0].values, vec![3]);
    // An info send never read is not acknowledged; a failed one neither.
    let mut h = H::default();
    // (After its `info` a process has crashed: the thread goes on as a new
    // process.)
    h.send_unsure(0, "p", 1, "info")
        .send_unsure(1, "p", 2, "fail")
        .ev(1, "invoke", "send", json!(["p", 3]));
    assert!(h.check().is_valid());
    // An info send that is read counts as committed: the unread value at
    // a lower offset of the same txn is then lost.
    let mut h = H::default();
    h.ev(
        0,
        "invoke",
        "txn",
        json!([["send", "p", 1], ["send", "p", 2]]),
    )
    .ev(0, "info", "txn", Value::Null)
    .poll(1, "p", &[(0, 5)])
    .send(2, "p", 5, 0)
    .poll(3, "p", &[(3, 2)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["unseen"], "{r:?}");
    assert_eq!(r.anomalies[0].values, vec![1]);
}

#[test]
fn info_send_read_later_is_no_anomaly() {
    let mut h = H::default();
    h.send_unsure(0, "p", 1, "info").poll(1, "p", &[(0, 1)]);
    assert!(h.check().is_valid());
}

#[test]
fn poll_skip_and_assign_reset() {
    let mut h = three();
    h.poll(1, "p", &[(0, 1)]).poll(1, "p", &[(2, 3)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["lost-write", "poll-skip"], "{r:?}");
    let skip = r.of(AnomalyKind::PollSkip).next().unwrap();
    assert_eq!(skip.values, vec![1, 3]);
    assert!(skip.detail.contains("skipping [2]"), "{}", skip.detail);
    // Offset gaps without known values are no skip.
    let mut h = H::default();
    h.send(0, "p", 1, 0).send(0, "p", 2, 5);
    h.poll(1, "p", &[(0, 1)]).poll(1, "p", &[(5, 2)]);
    assert!(h.check().is_valid());
    // An assign that drops the key resets tracking: no skip.
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2), (2, 3)])
        .poll(2, "p", &[(1, 2)]);
    h.poll(2, "p", &[(0, 1)]);
    assert_eq!(kinds(&h.check()), ["nonmonotonic-poll"]);
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2)]).poll(2, "p", &[(1, 2)]);
    h.assign(2, &["q"])
        .assign(2, &["p"])
        .poll(2, "p", &[(0, 1)]);
    h.poll(2, "p", &[(1, 2), (2, 3)]);
    assert!(h.check().is_valid(), "{:?}", h.check());
    // An assign that keeps the key keeps tracking.
    let mut h = three();
    h.poll(1, "p", &[(0, 1)])
        .assign(1, &["p", "q"])
        .poll(1, "p", &[(2, 3)]);
    h.poll(2, "p", &[(1, 2)]);
    assert_eq!(kinds(&h.check()), ["poll-skip"]);
}

#[test]
fn nonmonotonic_poll() {
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2), (2, 3)])
        .poll(1, "p", &[(1, 2)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["nonmonotonic-poll"], "{r:?}");
    assert_eq!(r.anomalies[0].values, vec![3, 2]);
    assert_eq!(r.anomalies[0].offsets, vec![2, 1]);
    // Another process may read again from the start.
    let mut h = three();
    h.poll(1, "p", &[(0, 1), (1, 2), (2, 3)])
        .poll(2, "p", &[(0, 1), (1, 2), (2, 3)]);
    assert!(h.check().is_valid());
}

#[test]
fn nonmonotonic_send() {
    let mut h = H::default();
    h.send(0, "p", 1, 5).send(0, "p", 2, 3);
    h.poll(1, "p", &[(3, 2), (5, 1)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["nonmonotonic-send"], "{r:?}");
    assert_eq!(r.anomalies[0].events, vec![1, 3]);
    // Different processes, or a key dropped between: fine.
    let mut h = H::default();
    h.send(0, "p", 1, 5)
        .send(1, "p", 2, 3)
        .poll(2, "p", &[(3, 2), (5, 1)]);
    assert!(h.check().is_valid());
    let mut h = H::default();
    h.send(0, "p", 1, 5).assign(0, &[]).send(0, "p", 2, 3);
    h.poll(2, "p", &[(3, 2), (5, 1)]);
    assert!(h.check().is_valid());
}

#[test]
fn g1a() {
    let mut h = H::default();
    h.send_unsure(0, "p", 9, "fail")
        .send(0, "p", 1, 0)
        .poll(1, "p", &[(0, 1)]);
    assert!(h.check().is_valid());
    h.poll(2, "p", &[(0, 1), (1, 9)]);
    let r = h.check();
    assert_eq!(kinds(&r), ["G1a"], "{r:?}");
    assert_eq!(r.anomalies[0].events, vec![1, 7]);
}

#[test]
fn txns_read_and_write() {
    let mut h = H::default();
    h.ev(
        0,
        "invoke",
        "txn",
        json!([["send", "p", 1], ["poll"], ["send", 7, 2]]),
    )
    .ev(
        0,
        "ok",
        "txn",
        json!([["send", "p", [0, 1]], ["poll", {"7": [[0, 4]]}], ["send", 7, [1, 2]]]),
    )
    .send(1, "7", 4, 0)
    .ev(2, "invoke", "txn", json!([["poll"], ["poll"]]))
    .ev(
        2,
        "ok",
        "txn",
        json!([["poll", {"p": [[0, 1]]}], ["poll", {"7": [[0, 4], [1, 2]]}]]),
    );
    let r = h.check();
    assert!(r.is_valid(), "{r:?}");
    // A txn whose two polls go back.
    h.ev(3, "invoke", "txn", json!([["poll"], ["poll"]])).ev(
        3,
        "ok",
        "txn",
        json!([["poll", {"7": [[1, 2]]}], ["poll", {"7": [[0, 4]]}]]),
    );
    assert_eq!(kinds(&h.check()), ["nonmonotonic-poll"]);
}

const JEPSEN: &str = r#"[{:type :invoke, :f :assign, :value [0 1], :process 0, :time 1}
{:type :ok, :f :assign, :value [0 1], :process 0, :time 2}
{:type :invoke, :f :send, :value [[:send 0 10]], :process 1, :time 3}
{:type :ok, :f :send, :value [[:send 0 [0 10]]], :process 1, :time 4}
{:type :info, :f :start-partition, :value nil, :process :nemesis, :time 5}
{:type :invoke, :f :send, :value [[:send 0 11]], :process 1, :time 6}
{:type :info, :f :send, :value [[:send 0 11]], :process 1, :time 7, :error :timeout}
{:type :invoke, :f :txn, :value [[:send 1 12] [:poll]], :process 2, :time 8}
{:type :ok, :f :txn, :value [[:send 1 [0 12]] [:poll {0 [[0 10] [1 11]]}]], :process 2, :time 9}
{:type :invoke, :f :poll, :value [[:poll]], :process 0, :time 10}
{:type :ok, :f :poll, :value [[:poll {0 [[0 10] [1 11]], 1 [[0 12]]}]], :process 0, :time 11}
{:type :invoke, :f :send, :value [[:send 1 13]], :process 3, :time 12}
{:type :fail, :f :send, :value [[:send 1 13]], :process 3, :time 13}]
"#;

#[test]
fn jepsen_edn_histories() {
    let (_, r) = check_text(Format::Edn, JEPSEN).unwrap();
    assert!(r.is_valid(), "{r:?}");
    assert_eq!(r.ops, 6);
    let bad = JEPSEN.replace(
        "[:poll {0 [[0 10] [1 11]], 1 [[0 12]]}]",
        "[:poll {1 [[0 12] [1 13]]}]",
    );
    let (p, r) = check_text(Format::Edn, &bad).unwrap();
    assert_eq!(kinds(&r), ["G1a"], "{r:?}");
    let lines: Vec<usize> = r.anomalies[0]
        .events
        .iter()
        .map(|&e| p.line_of(e))
        .collect();
    assert_eq!(lines, vec![11, 13]);
}

#[test]
fn malformed_ops_name_their_line() {
    let first = "{\"process\":9,\"type\":\"invoke\",\"f\":\"poll\"}\n";
    let bad = [
        r#"{"process":0,"type":"invoke","f":"send","value":[1.5,2]}"#,
        r#"{"process":0,"type":"invoke","f":"send","value":["p","x"]}"#,
        r#"{"process":0,"type":"invoke","f":"send","value":["p",[-1,2]]}"#,
        r#"{"process":0,"type":"invoke","f":"send","value":["p",[1,2,3]]}"#,
        r#"{"process":0,"type":"invoke","f":"send","value":3}"#,
        r#"{"process":0,"type":"invoke","f":"txn","value":[["read","p"]]}"#,
        r#"{"process":0,"type":"invoke","f":"txn","value":[["poll",[1]]]}"#,
        r#"{"process":0,"type":"invoke","f":"poll","value":{"p":[[0]]}}"#,
        r#"{"process":0,"type":"invoke","f":"poll","value":{"p":3}}"#,
        r#"{"process":0,"type":"invoke","f":"assign","value":"p"}"#,
        r#"{"process":0,"type":"invoke","f":"assign","value":[null]}"#,
    ];
    for b in bad {
        let e = check_text(Format::Jsonl, &format!("{first}{b}\n")).unwrap_err();
        assert_eq!(e.line(), Some(2), "{b}: {e}");
    }
    // A bad completion is named at the op's invocation line.
    let text = format!(
        "{first}{}\n{}\n",
        r#"{"process":0,"type":"invoke","f":"send","value":["p",1]}"#,
        r#"{"process":0,"type":"ok","f":"send","value":["p",["a",1]]}"#
    );
    assert_eq!(
        check_text(Format::Jsonl, &text).unwrap_err().line(),
        Some(2)
    );
    // A value sent twice is ambiguous.
    let mut h = H::default();
    h.send(0, "p", 1, 0).send(1, "p", 1, 1);
    let e = check_text(Format::Jsonl, &h.0).unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
    // Other formats are refused.
    assert!(check_text(Format::PorcupineEtcd, "").is_err());
    // Malformed EDN.
    let e = check_text(
        Format::Edn,
        "[{:process 0 :type :invoke :f :send :value [[:send]]}]",
    )
    .unwrap_err();
    assert_eq!(e.line(), Some(1));
}

#[test]
fn converts_to_violations() {
    let mut h = three();
    h.poll(1, "p", &[(0, 1)]).poll(2, "p", &[(2, 3)]);
    let r = h.check();
    let v: Vec<Violation> = r.violations();
    assert_eq!(v[0].kind, "lost-write");
    assert!(v[0].detail.starts_with("key p: value 2"), "{}", v[0].detail);
    assert_eq!(v[0].events, r.anomalies[0].events);
    assert_eq!(Violation::from(&r.anomalies[0]), v[0]);
    assert_eq!(r.counts(), vec![(AnomalyKind::LostWrite, 1)]);
}

/// A history with times (µs): values 1..=4 sent to `p` at offsets 0..=3
/// by t=40; process 1 reads offset 0 at t=60, then offset 2 at t=100;
/// value 5 is sent at offset 4 and never read.
fn retention_history() -> Vec<crate::history::Operation> {
    let mut text = String::new();
    let mut line = |p: u64, kind: &str, f: &str, value: Value, time: u64| {
        let e = json!({"process": p, "type": kind, "f": f, "value": value, "time": time});
        text.push_str(&format!("{e}\n"));
    };
    for (v, o) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
        line(0, "invoke", "send", json!(["p", v]), o as u64 * 10);
        line(0, "ok", "send", json!(["p", [o, v]]), o as u64 * 10 + 5);
    }
    line(1, "invoke", "poll", Value::Null, 50);
    line(1, "ok", "poll", json!({"p": [[0, 1]]}), 60);
    line(1, "invoke", "poll", Value::Null, 90);
    line(1, "ok", "poll", json!({"p": [[2, 3], [3, 4]]}), 100);
    line(0, "invoke", "send", json!(["p", 5]), 110);
    line(0, "ok", "send", json!(["p", [4, 5]]), 115);
    Format::Jsonl.parse(&text).unwrap().operations().unwrap()
}

fn with_starts(line: &[(u64, i64)]) -> KafkaReport {
    let retention = Retention {
        starts: [("p".to_string(), line.to_vec())].into_iter().collect(),
    };
    check_operations_with_retention(&retention_history(), &retention).unwrap()
}

#[test]
fn retention_excuses_only_what_it_deleted() {
    // Without retention: value 2 lost, the second poll skips it, value 5
    // unseen.
    let r = check_operations(&retention_history()).unwrap();
    assert_eq!(kinds(&r), ["lost-write", "unseen", "poll-skip"], "{r:?}");
    // The log started at 2 from t=70 and at 5 from t=120: the consumer
    // was reset over deleted offset 1, and values 2 and 5 were deleted.
    let r = with_starts(&[(70, 2), (120, 5)]);
    assert!(r.is_valid(), "{r:?}");
    // The start reached 2 only after the second poll: that poll skipped
    // a record still there (the loss itself is excused: it was deleted
    // later, and no read can tell).
    let r = with_starts(&[(150, 2)]);
    assert_eq!(kinds(&r), ["unseen", "poll-skip"], "{r:?}");
    // A start of 1 deleted only offset 0: value 2 at offset 1 is lost, and
    // value 5 (offset 4) unseen.
    let r = with_starts(&[(70, 1)]);
    assert_eq!(kinds(&r), ["lost-write", "unseen", "poll-skip"], "{r:?}");
}
