//! Known-answer tests of the consumer-group checks: histories built in
//! code, as the group workload writes them, each of which must pass or
//! fail a named check.

use serde_json::{json, Value};

use super::checks::{check, GroupReport};
use crate::history::{Event, EventType, History, Operation};

/// A poll's meta, built up field by field.
struct Meta(Value);

/// The meta of an `ok` poll by `member` in generation `generation`, owning
/// nothing, with no assignment, commits or resets.
fn meta(member: &str, generation: i64) -> Meta {
    Meta(json!({
        "member": member, "generation": generation, "owned": [], "assigned": [],
        "revoked": [], "commits": [], "resets": [], "lost": null,
    }))
}

impl Meta {
    fn owned(mut self, ps: &[u32]) -> Meta {
        self.0["owned"] = json!(ps);
        self
    }

    fn assigned(mut self, p: u32, start: u64, committed: Option<u64>) -> Meta {
        push(&mut self.0["assigned"], json!([p, start, committed]));
        self
    }

    fn revoked(mut self, p: u32) -> Meta {
        push(&mut self.0["revoked"], json!(p));
        self
    }

    fn commit(mut self, member: &str, generation: i64, offs: &[(u32, u64)], kind: &str) -> Meta {
        let mut c = json!({"member": member, "generation": generation, "offsets": offsets(offs), "type": kind});
        if kind != "ok" {
            c["error"] = json!("REQUEST_TIMED_OUT");
        }
        push(&mut self.0["commits"], c);
        self
    }

    /// Gives the last commit made inside the call its start time.
    fn started(mut self, t: u64) -> Meta {
        let c = self.0["commits"]
            .as_array_mut()
            .and_then(|a| a.last_mut())
            .expect("a commit");
        c["started"] = json!(t);
        self
    }

    fn reset(mut self, p: u32, offset: u64) -> Meta {
        push(&mut self.0["resets"], json!([p, offset]));
        self
    }

    fn lost(mut self, error: &str) -> Meta {
        self.0["lost"] = json!(error);
        self
    }
}

fn push(list: &mut Value, v: Value) {
    list.as_array_mut().expect("a list").push(v);
}

fn offsets(offs: &[(u32, u64)]) -> Value {
    Value::Object(
        offs.iter()
            .map(|(p, o)| (p.to_string(), json!(o)))
            .collect(),
    )
}

/// Poll records `{"<p>": [[offset, value], ...]}`; values are `100 * p + offset`.
fn recs(parts: &[(u32, &[u64])]) -> Value {
    Value::Object(
        parts
            .iter()
            .map(|(p, os)| {
                let pairs: Vec<Value> = os.iter().map(|&o| json!([o, val(*p, o)])).collect();
                (p.to_string(), Value::Array(pairs))
            })
            .collect(),
    )
}

/// The value the tests write at `(p, offset)`.
fn val(p: u32, offset: u64) -> i64 {
    100 * p as i64 + offset as i64
}

/// A history under construction: each operation gets a process of its
/// own; events are put in time order when built.
#[derive(Default)]
struct H {
    events: Vec<(u64, usize, Event)>,
    next: u64,
}

fn event(process: u64, kind: EventType, f: &str, value: Value, time: u64) -> Event {
    Event {
        process,
        kind,
        f: f.to_string(),
        key: None,
        value,
        time,
        node: None,
        error: None,
        meta: None,
    }
}

impl H {
    /// Records an operation from `t0` to `t1`; returns its process.
    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        f: &str,
        t0: u64,
        t1: u64,
        kind: EventType,
        input: Value,
        output: Value,
        meta: Option<Value>,
    ) -> u64 {
        let p = self.next;
        self.next += 1;
        let n = self.events.len();
        self.events
            .push((t0, n, event(p, EventType::Invoke, f, input, t0)));
        let mut done = event(p, kind, f, output, t1);
        if kind != EventType::Ok {
            done.error = Some("timeout".into());
        }
        done.meta = meta;
        self.events.push((t1, n + 1, done));
        p
    }

    /// A send of `val(p, offset)`; an ok one is acknowledged at `offset`.
    fn send(&mut self, kind: EventType, p: u32, offset: u64, t0: u64, t1: u64) -> u64 {
        let v = val(p, offset);
        let out = match kind {
            EventType::Ok => json!([p, [offset, v]]),
            _ => json!([p, v]),
        };
        self.op("send", t0, t1, kind, json!([p, v]), out, None)
    }

    /// An ok poll returning `records`.
    fn poll(&mut self, t0: u64, t1: u64, records: Value, meta: Meta) -> u64 {
        self.op(
            "poll",
            t0,
            t1,
            EventType::Ok,
            Value::Null,
            records,
            Some(meta.0),
        )
    }

    /// A poll that ended `kind` (fail or info), with or without meta.
    fn poll_end(&mut self, kind: EventType, t0: u64, t1: u64, meta: Option<Meta>) -> u64 {
        self.op(
            "poll",
            t0,
            t1,
            kind,
            Value::Null,
            Value::Null,
            meta.map(|m| m.0),
        )
    }

    /// An explicit commit that ended `kind`.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        kind: EventType,
        t0: u64,
        t1: u64,
        member: &str,
        generation: i64,
        offs: &[(u32, u64)],
    ) -> u64 {
        let out = json!({"member": member, "generation": generation, "offsets": offsets(offs)});
        self.op("commit", t0, t1, kind, Value::Null, out, None)
    }

    /// The history and its operations.
    fn build(mut self) -> (History, Vec<Operation>) {
        self.events.sort_by_key(|(t, n, _)| (*t, *n));
        let h = History {
            events: self.events.into_iter().map(|(_, _, e)| e).collect(),
        };
        let ops = h.operations().expect("a well-formed history");
        (h, ops)
    }
}

/// The invoke and completion events of process `p`'s operation.
fn evs(ops: &[Operation], p: u64) -> Vec<usize> {
    let op = ops.iter().find(|o| o.process == p).expect("the op");
    vec![op.invoke_index, op.complete_index.expect("completed")]
}

/// Runs the checks; every detail must be plain words.
fn run(ops: &[Operation], partitions: u32, quiet_from_us: u64) -> GroupReport {
    let r = check(ops, partitions, quiet_from_us);
    for v in &r.violations {
        assert!(
            !v.detail.contains("Some(") && !v.detail.contains("None") && !v.detail.contains('"'),
            "not plain words: {}",
            v.detail
        );
    }
    r
}

fn kinds(r: &GroupReport) -> Vec<&str> {
    r.violations.iter().map(|v| v.kind.as_str()).collect()
}

fn only<'a>(r: &'a GroupReport, kind: &str) -> Vec<&'a crate::outcome::Violation> {
    r.violations.iter().filter(|v| v.kind == kind).collect()
}

use EventType::{Fail, Info, Ok as Acked};

/// Two partitions produced, consumed and committed by one member, then
/// handed over cleanly to a second member; everything owned at the end.
#[test]
fn clean_run_passes() {
    let mut h = H::default();
    for o in 0..3 {
        h.send(Acked, 0, o, 10 * o, 10 * o + 5);
        h.send(Acked, 1, o, 10 * o, 10 * o + 5);
    }
    h.poll(
        40,
        50,
        recs(&[(0, &[0, 1, 2]), (1, &[0, 1])]),
        meta("a", 1)
            .assigned(0, 0, None)
            .assigned(1, 0, None)
            .owned(&[0, 1]),
    );
    h.commit(Acked, 60, 70, "a", 1, &[(0, 3), (1, 2)]);
    // Cooperative hand-off of partition 1: revoked in generation 2 (with
    // its commit), assigned to b in generation 3.
    h.poll(
        80,
        90,
        recs(&[]),
        meta("a", 2)
            .revoked(1)
            .commit("a", 2, &[(0, 3), (1, 2)], "ok")
            .owned(&[0]),
    );
    h.poll(
        100,
        110,
        recs(&[(1, &[2])]),
        meta("b", 3).assigned(1, 2, Some(2)).owned(&[1]),
    );
    h.poll(1000, 1010, recs(&[]), meta("a", 3).owned(&[0]));
    h.poll(1000, 1010, recs(&[]), meta("b", 3).owned(&[1]));
    let (_, ops) = h.build();
    let r = run(&ops, 2, 1000);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.processed, r.duplicates), (6, 0));
}

/// An acknowledged record skipped by the consumer while a commit passed
/// it is lost, and the detail says at-least-once broke.
#[test]
fn skipped_record_under_a_passing_commit_is_lost() {
    let mut h = H::default();
    h.send(Acked, 0, 0, 0, 5);
    let lost = h.send(Acked, 0, 1, 0, 6);
    h.send(Acked, 0, 2, 0, 7);
    h.poll(
        10,
        20,
        recs(&[(0, &[0, 2])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    let c = h.commit(Acked, 30, 40, "a", 1, &[(0, 3)]);
    h.poll(100, 110, recs(&[]), meta("a", 1).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 100);
    assert_eq!(kinds(&r), ["group-lost"]);
    let v = &r.violations[0];
    assert!(v.detail.contains("offset 1"), "{}", v.detail);
    assert!(v.detail.contains("at-least-once"), "{}", v.detail);
    assert!(v.detail.contains("later records"), "{}", v.detail);
    let mut want = evs(&ops, lost);
    want.extend(evs(&ops, c));
    want.sort_unstable();
    assert_eq!(v.events, want);
}

/// A record nobody read and no acknowledged commit passed (only an
/// unknown one did) is lost, with no at-least-once claim.
#[test]
fn unread_record_without_a_passing_ok_commit_is_lost_without_commit_claim() {
    let mut h = H::default();
    h.send(Acked, 0, 0, 0, 5);
    h.poll(
        10,
        20,
        recs(&[]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.commit(Info, 30, 40, "a", 1, &[(0, 1)]);
    h.commit(Fail, 50, 60, "a", 1, &[(0, 1)]);
    h.poll(100, 110, recs(&[]), meta("a", 1).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 100);
    assert_eq!(kinds(&r), ["group-lost"]);
    let d = &r.violations[0].detail;
    assert!(d.contains("no acknowledged commit passed it"), "{d}");
    assert!(d.contains("no later record"), "{d}");
}

/// Info and fail sends never read are not lost; an info send read counts
/// as processed.
#[test]
fn info_and_fail_sends_never_read_are_not_lost() {
    let mut h = H::default();
    h.send(Acked, 0, 0, 0, 5);
    h.send(Info, 0, 1, 0, 6);
    h.send(Fail, 0, 2, 0, 7);
    h.send(Info, 0, 3, 0, 8);
    h.poll(
        10,
        20,
        recs(&[(0, &[0, 3])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.poll(100, 110, recs(&[]), meta("a", 1).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 100);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.processed, 2);
}

/// Two members returning records of one partition in one generation.
#[test]
fn two_members_reading_a_partition_in_one_generation_is_split_brain() {
    let mut h = H::default();
    let a = h.poll(
        10,
        20,
        recs(&[(0, &[0, 1])]),
        meta("a", 3).assigned(0, 0, None).owned(&[0]),
    );
    let b = h.poll(
        15,
        25,
        recs(&[(0, &[1, 2])]),
        meta("b", 3).assigned(0, 1, None).owned(&[0]),
    );
    h.poll(30, 40, recs(&[(0, &[2])]), meta("b", 3).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    let v = only(&r, "group-split-brain");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    assert!(v[0].detail.contains("generation 3"), "{}", v[0].detail);
    assert!(v[0].detail.contains("a (") && v[0].detail.contains("b ("));
    let mut want = evs(&ops, a);
    want.extend(evs(&ops, b));
    want.sort_unstable();
    assert_eq!(v[0].events, want);
}

/// A member of generation 2 that returns records of partition 0 fetched in
/// generation 1 after b was assigned partition 0 in generation 2: reported
/// once although it happens twice.
#[test]
fn member_of_gb_processing_after_handoff_is_split_brain() {
    let mut h = H::default();
    h.poll(
        0,
        10,
        recs(&[(0, &[0])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.poll(
        50,
        100,
        recs(&[]),
        meta("b", 2).assigned(0, 1, Some(1)).owned(&[0]),
    );
    h.poll(150, 160, recs(&[(0, &[1])]), meta("a", 1).owned(&[0]));
    h.poll(170, 180, recs(&[(0, &[2])]), meta("a", 1).owned(&[0]));
    h.poll(200, 210, recs(&[]), meta("a", 2).owned(&[1]));
    let (_, ops) = h.build();
    let r = run(&ops, 2, 0);
    let v = only(&r, "group-split-brain");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    let d = &v[0].detail;
    assert!(d.contains("member a") && d.contains("member b"), "{d}");
    assert!(
        d.contains("generation 1") && d.contains("generation 2"),
        "{d}"
    );
}

/// A zombie (kicked out, never a member of generation 2) that processes
/// partition 0 after b got it in generation 2 is not split brain; nor is
/// a member that processed it before the hand-off.
#[test]
fn zombie_processing_after_handoff_is_not_split_brain() {
    let mut h = H::default();
    h.poll(
        0,
        10,
        recs(&[(0, &[0, 1])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    // c read partition 1 in generation 1 before b took it over in 2.
    h.poll(
        0,
        10,
        recs(&[(1, &[0])]),
        meta("c", 1).assigned(1, 0, None).owned(&[1]),
    );
    h.poll(20, 30, recs(&[]), meta("c", 2).revoked(1));
    h.poll(
        50,
        100,
        recs(&[]),
        meta("b", 2)
            .assigned(0, 0, None)
            .assigned(1, 1, None)
            .owned(&[0, 1]),
    );
    // a, out of the group, still returns what it fetched in generation 1.
    h.poll(150, 160, recs(&[(0, &[2])]), meta("a", 1).owned(&[0]));
    h.poll(170, 180, recs(&[]), meta("a", 1).lost("UNKNOWN_MEMBER_ID"));
    // Back under a new member id, in generation 3.
    h.poll(200, 210, recs(&[]), meta("a2", 3));
    h.poll(300, 310, recs(&[(0, &[3])]), meta("b", 3).owned(&[0, 1]));
    let (_, ops) = h.build();
    let r = run(&ops, 2, 300);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// A commit acknowledged before a later assignment's fetch that found a
/// lower committed offset, or none.
#[test]
fn fetch_below_an_acknowledged_commit_is_offset_regression() {
    let mut h = H::default();
    let c = h.commit(Acked, 50, 100, "a", 1, &[(0, 5), (1, 4)]);
    let f = h.poll(
        200,
        210,
        recs(&[]),
        meta("b", 2)
            .assigned(0, 3, Some(3))
            .assigned(1, 0, None)
            .owned(&[0, 1]),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 2, 0);
    let v = only(&r, "offset-regression");
    assert_eq!(v.len(), 2, "{:?}", r.violations);
    assert!(
        v[0].detail.contains("committed offset 3"),
        "{}",
        v[0].detail
    );
    assert!(
        v[1].detail.contains("no committed offset"),
        "{}",
        v[1].detail
    );
    let mut want = evs(&ops, c);
    want.extend(evs(&ops, f));
    want.sort_unstable();
    assert_eq!(v[0].events, want);
}

/// Unknown and failed commits of higher offsets, and an acknowledged one
/// still running when the fetch began, do not make a lower fetch a
/// regression.
#[test]
fn unknown_or_failed_higher_commit_then_lower_fetch_is_not_regression() {
    let mut h = H::default();
    h.commit(Acked, 0, 10, "a", 1, &[(0, 3)]);
    h.commit(Info, 20, 30, "a", 1, &[(0, 5)]);
    h.commit(Fail, 40, 50, "a", 1, &[(0, 7)]);
    h.poll_end(
        Info,
        60,
        70,
        Some(meta("a", 1).commit("a", 1, &[(0, 8)], "info")),
    );
    h.commit(Acked, 150, 250, "a", 1, &[(0, 9)]);
    h.poll(
        200,
        300,
        recs(&[]),
        meta("b", 2).assigned(0, 3, Some(3)).owned(&[0]),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// An acknowledged commit of a lower offset invoked after an acknowledged
/// higher one completed; also when the higher one was made inside a poll.
#[test]
fn acknowledged_commit_going_back_is_offset_regression() {
    let mut h = H::default();
    let c1 = h.commit(Acked, 0, 10, "a", 1, &[(0, 7)]);
    let c2 = h.commit(Acked, 20, 30, "a", 1, &[(0, 4)]);
    h.poll(
        40,
        50,
        recs(&[]),
        meta("a", 1).commit("a", 1, &[(1, 9)], "ok").owned(&[0, 1]),
    );
    h.commit(Acked, 60, 70, "a", 1, &[(1, 2)]);
    let (_, ops) = h.build();
    let r = run(&ops, 2, 0);
    let v = only(&r, "offset-regression");
    assert_eq!(v.len(), 2, "{:?}", r.violations);
    assert!(v[0].detail.contains("offset 7") && v[0].detail.contains("offset 4"));
    assert!(v[1].detail.contains("inside a poll"), "{}", v[1].detail);
    let mut want = evs(&ops, c1);
    want.extend(evs(&ops, c2));
    want.sort_unstable();
    assert_eq!(v[0].events, want);
}

/// An offset reset between two commits excuses the lower one and a lower
/// fetch; overlapping commits are not ordered.
#[test]
fn reset_between_or_overlap_is_not_regression() {
    let mut h = H::default();
    h.commit(Acked, 0, 10, "a", 1, &[(0, 7), (1, 9)]);
    h.poll(
        12,
        15,
        recs(&[]),
        meta("a", 1).reset(0, 0).reset(1, 0).owned(&[0, 1]),
    );
    h.commit(Acked, 20, 30, "a", 1, &[(0, 2)]);
    h.poll(
        40,
        50,
        recs(&[]),
        meta("b", 1).assigned(1, 0, Some(0)).owned(&[1]),
    );
    // Partition 2: two acknowledged commits that overlap in time.
    h.commit(Acked, 100, 130, "a", 1, &[(2, 7)]);
    h.commit(Acked, 110, 140, "a", 1, &[(2, 4)]);
    let (_, ops) = h.build();
    let r = run(&ops, 0, 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// Acknowledged commits of generation 1 invoked after b was assigned the
/// partition in generation 2: explicit, and made inside a poll.
#[test]
fn acknowledged_commit_from_a_zombie_is_zombie_commit() {
    let mut h = H::default();
    let b = h.poll(
        50,
        100,
        recs(&[]),
        meta("b", 2).assigned(0, 0, None).owned(&[0]),
    );
    let z = h.commit(Acked, 150, 160, "a", 1, &[(0, 5)]);
    h.poll(
        170,
        180,
        recs(&[]),
        meta("a", 1)
            .commit("a", 1, &[(0, 6)], "ok")
            .started(172)
            .owned(&[0]),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    let v = only(&r, "zombie-commit");
    assert_eq!(v.len(), 2, "{:?}", r.violations);
    assert!(v[0].detail.contains("generation 1") && v[0].detail.contains("member b"));
    assert!(v[1].detail.contains("inside a poll"), "{}", v[1].detail);
    let mut want = evs(&ops, b);
    want.extend(evs(&ops, z));
    want.sort_unstable();
    assert_eq!(v[0].events, want);
}

/// A commit reported inside a poll that began before the new owner's
/// assignment (a revocation's commit, answered after it), or whose start
/// is not given, is not a zombie commit, though the poll came after.
#[test]
fn commit_inside_a_poll_started_before_the_takeover_is_not_zombie_commit() {
    let mut h = H::default();
    h.poll(
        50,
        100,
        recs(&[]),
        meta("b", 2).assigned(0, 0, None).owned(&[0]),
    );
    h.poll(
        170,
        180,
        recs(&[]),
        meta("a", 2)
            .commit("a", 1, &[(0, 6)], "ok")
            .started(60)
            .commit("a", 1, &[(1, 6)], "ok"),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 2, 0);
    assert!(only(&r, "zombie-commit").is_empty(), "{:?}", r.violations);
}

/// A commit that says it began after its call ended is malformed.
#[test]
fn commit_started_after_its_call_is_malformed() {
    let mut h = H::default();
    h.poll(
        170,
        180,
        recs(&[]),
        meta("a", 1).commit("a", 1, &[(0, 6)], "ok").started(190),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    let v = only(&r, "malformed-history");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    assert!(v[0].detail.contains("starts after"), "{}", v[0].detail);
}

/// Failed and unknown commits from a zombie, an acknowledged one invoked
/// before the new assignment completed, and the new owner's own commits
/// are not zombie commits.
#[test]
fn failed_or_unknown_or_earlier_commit_is_not_zombie_commit() {
    let mut h = H::default();
    h.commit(Acked, 90, 110, "a", 1, &[(0, 4)]);
    h.poll(
        50,
        100,
        recs(&[]),
        meta("b", 2).assigned(0, 4, Some(4)).owned(&[0]),
    );
    h.commit(Fail, 150, 160, "a", 1, &[(0, 5)]);
    h.commit(Info, 165, 168, "a", 1, &[(0, 5)]);
    h.op("commit", 169, 169, Info, Value::Null, Value::Null, None);
    h.poll_end(
        Info,
        170,
        180,
        Some(meta("a", 1).commit("a", 1, &[(0, 6)], "info")),
    );
    h.poll(
        190,
        200,
        recs(&[]),
        meta("a", 1).commit("a", 1, &[(0, 6)], "fail"),
    );
    h.commit(Acked, 210, 220, "b", 2, &[(0, 5)]);
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// Partition 0 owned only by a member whose last poll came before the
/// quiet period; partition 2 never owned at all.
#[test]
fn partition_owned_only_before_the_quiet_period_is_not_recovered() {
    let mut h = H::default();
    let a = h.poll(
        400,
        500,
        recs(&[]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.poll(
        400,
        500,
        recs(&[]),
        meta("b", 1).assigned(1, 0, None).owned(&[1]),
    );
    h.poll(1500, 1510, recs(&[]), meta("b", 1).owned(&[1]));
    let (_, ops) = h.build();
    let r = run(&ops, 3, 1000);
    assert_eq!(kinds(&r), ["group-not-recovered", "group-not-recovered"]);
    assert!(r.violations[0].detail.starts_with("partition 0 "));
    assert!(r.violations[0].detail.contains("member a"));
    assert_eq!(r.violations[0].events, evs(&ops, a));
    assert!(r.violations[1].detail.starts_with("partition 2 "));
    assert!(r.violations[1].detail.contains("no poll ever owned it"));
    assert!(r.violations[1].events.is_empty());
}

/// Ownership that moved, with every partition owned by some member's
/// last poll at or after the start of the quiet period.
#[test]
fn every_partition_owned_in_the_quiet_period_passes() {
    let mut h = H::default();
    h.poll(
        0,
        10,
        recs(&[]),
        meta("a", 1)
            .assigned(0, 0, None)
            .assigned(1, 0, None)
            .owned(&[0, 1]),
    );
    h.poll(20, 30, recs(&[]), meta("a", 2).revoked(1).owned(&[0]));
    h.poll(
        40,
        50,
        recs(&[]),
        meta("b", 3).assigned(1, 0, None).owned(&[1]),
    );
    h.poll(1000, 1010, recs(&[]), meta("a", 3).owned(&[0]));
    h.poll(1200, 1210, recs(&[]), meta("b", 3).owned(&[1]));
    // A member that crashed before the quiet period owning nothing.
    h.poll(60, 70, recs(&[]), meta("c", 3));
    let (_, ops) = h.build();
    let r = run(&ops, 2, 1000);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

/// A failed commit, then the member drops out: the next owner re-reads
/// from the start; the re-read records are duplicates, not violations.
#[test]
fn reread_after_a_failed_commit_counts_duplicates() {
    let mut h = H::default();
    for o in 0..5 {
        h.send(Acked, 0, o, o, o + 1);
    }
    h.poll(
        10,
        20,
        recs(&[(0, &[0, 1, 2, 3])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.commit(Fail, 30, 40, "a", 1, &[(0, 4)]);
    h.poll(50, 60, recs(&[]), meta("a", 1).lost("UNKNOWN_MEMBER_ID"));
    h.poll(
        70,
        80,
        recs(&[(0, &[0, 1, 2])]),
        meta("b", 2).assigned(0, 0, None).owned(&[0]),
    );
    h.poll(90, 100, recs(&[(0, &[3, 4])]), meta("b", 2).owned(&[0]));
    h.commit(Acked, 110, 120, "b", 2, &[(0, 5)]);
    h.poll(200, 210, recs(&[]), meta("b", 2).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 200);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.processed, r.duplicates), (9, 4));
}

/// Records of fail and info polls are not processed and not duplicates.
#[test]
fn records_of_unknown_polls_do_not_count() {
    let mut h = H::default();
    h.send(Acked, 0, 0, 0, 1);
    h.poll(
        10,
        20,
        recs(&[(0, &[0])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.op(
        "poll",
        30,
        40,
        Info,
        Value::Null,
        recs(&[(0, &[0])]),
        Some(meta("a", 1).owned(&[0]).0),
    );
    h.poll(50, 60, recs(&[]), meta("a", 1).owned(&[0]));
    let (_, ops) = h.build();
    let r = run(&ops, 1, 50);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.processed, r.duplicates), (1, 0));
}

/// An ok poll without its meta is named, once, with a count.
#[test]
fn ok_poll_without_meta_is_malformed() {
    let mut h = H::default();
    h.op("poll", 0, 10, Acked, Value::Null, recs(&[]), None);
    h.op("poll", 20, 30, Acked, Value::Null, recs(&[]), None);
    h.op("assign", 20, 30, Acked, json!([0]), json!([0]), None);
    let (_, ops) = h.build();
    let r = run(&ops, 0, 0);
    assert_eq!(kinds(&r), ["malformed-history"]);
    assert!(
        r.violations[0].detail.contains("1 more"),
        "{}",
        r.violations[0].detail
    );
}

/// A long faithful run with the eager protocol: every generation each of
/// four members revokes everything (committing inside the poll), is
/// assigned its share from the committed offsets, reads what was produced
/// and commits it. About 50k events and no violation.
#[test]
fn long_faithful_eager_run_passes() {
    const MEMBERS: u32 = 4;
    const PARTS: u32 = 4;
    const GENS: u64 = 650;
    let name = |m: u32| format!("m{m}");
    let owner = |p: u32, g: u64| (p + g as u32) % MEMBERS;
    let owned = |m: u32, g: u64| -> Vec<u32> {
        (0..PARTS).filter(|&p| g > 0 && owner(p, g) == m).collect()
    };
    let mut h = H::default();
    let mut next = [0u64; PARTS as usize];
    for g in 1..=GENS {
        let t0 = g * 1000;
        for m in 0..MEMBERS {
            let prev = owned(m, g - 1);
            let mut rm = meta(&name(m), g as i64 - 1);
            if !prev.is_empty() {
                let offs: Vec<(u32, u64)> = prev.iter().map(|&p| (p, next[p as usize])).collect();
                rm = rm.commit(&name(m), g as i64 - 1, &offs, "ok");
            }
            for &p in &prev {
                rm = rm.revoked(p);
            }
            h.poll(t0, t0 + 10, recs(&[]), rm);
            let mut am = meta(&name(m), g as i64).owned(&owned(m, g));
            for p in owned(m, g) {
                let c = (g > 1).then_some(next[p as usize]);
                am = am.assigned(p, next[p as usize], c);
            }
            h.poll(t0 + 20, t0 + 30, recs(&[]), am);
        }
        for p in 0..PARTS {
            let base = next[p as usize];
            for i in 0..5 {
                h.send(Acked, p, base + i, t0 + 40 + i, t0 + 45 + i);
            }
            let m = owner(p, g);
            let offs: Vec<u64> = (base..base + 5).collect();
            let at = t0 + 100 + p as u64 * 100;
            h.poll(
                at,
                at + 50,
                recs(&[(p, &offs)]),
                meta(&name(m), g as i64).owned(&owned(m, g)),
            );
            next[p as usize] = base + 5;
            h.commit(
                Acked,
                at + 60,
                at + 70,
                &name(m),
                g as i64,
                &[(p, base + 5)],
            );
        }
    }
    let quiet = (GENS + 1) * 1000;
    for m in 0..MEMBERS {
        h.poll(
            quiet,
            quiet + 10,
            recs(&[]),
            meta(&name(m), GENS as i64).owned(&owned(m, GENS)),
        );
    }
    let (hist, ops) = h.build();
    assert!(hist.events.len() > 45_000, "{}", hist.events.len());
    let r = run(&ops, PARTS, quiet);
    let first: Vec<_> = r.violations.iter().take(3).collect();
    assert!(r.violations.is_empty(), "{first:?}");
    assert_eq!(r.processed, GENS * PARTS as u64 * 5);
    assert_eq!(r.duplicates, 0);
}

/// The history of a revocation: a processes offsets 0..=4 of partition 0
/// in generation 1 and commits offset 3 (covering 0..=2), then gives the
/// partition up in the poll `revoke` builds (with whatever commit or
/// fencing it adds); b is then assigned it from offset 3 and processes
/// 3 and 4 again.
fn revocation(revoke: Meta) -> (Vec<Operation>, GroupReport) {
    let mut h = H::default();
    h.poll(
        10,
        20,
        recs(&[(0, &[0, 1, 2])]),
        meta("a", 1).assigned(0, 0, None).owned(&[0]),
    );
    h.commit(Acked, 21, 30, "a", 1, &[(0, 3)]);
    h.poll(40, 50, recs(&[(0, &[3, 4])]), meta("a", 1).owned(&[0]));
    h.poll(60, 70, recs(&[]), revoke);
    h.poll(
        80,
        90,
        recs(&[(0, &[3, 4])]),
        meta("b", 2).assigned(0, 3, Some(3)).owned(&[0]),
    );
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    (ops, r)
}

/// A member that gives a partition up without committing what it
/// processed since its last commit, whose records the next owner then
/// processes again, repeated more than at-least-once allows.
#[test]
fn revocation_without_a_commit_then_repeats_is_duplicate_beyond_window() {
    let (_, r) = revocation(meta("a", 2).revoked(0));
    let v = only(&r, "duplicate-beyond-window");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    assert!(
        v[0].detail.contains("member a processed it up to offset 4")
            && v[0].detail.contains("offset 3")
            && v[0].detail.contains("member b processed offset 3 again"),
        "{}",
        v[0].detail
    );
    assert_eq!(v[0].events.len(), 6);
    assert_eq!(r.duplicates, 2);
}

/// The same hand-off is within the window when the revocation's commit
/// was made (even if it failed or its outcome is unknown), when the
/// member was fenced rather than revoking, or when its commit covered
/// everything it processed.
#[test]
fn revocation_with_a_commit_or_when_fenced_is_within_the_window() {
    for revoke in [
        meta("a", 2).commit("a", 1, &[(0, 5)], "fail").revoked(0),
        meta("a", 2)
            .commit("a", 1, &[(0, 5)], "info")
            .started(55)
            .revoked(0),
        meta("", -1).revoked(0).lost("UNKNOWN_MEMBER_ID"),
    ] {
        let (_, r) = revocation(revoke);
        assert!(
            only(&r, "duplicate-beyond-window").is_empty(),
            "{:?}",
            r.violations
        );
        assert_eq!(r.duplicates, 2);
    }
    // A commit that covers only part of what was processed: offset 4 is
    // processed again beyond it.
    let (_, r) = revocation(meta("a", 2).commit("a", 1, &[(0, 4)], "ok").revoked(0));
    let v = only(&r, "duplicate-beyond-window");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    assert!(
        v[0].detail.contains("processed offset 4 again"),
        "{}",
        v[0].detail
    );
}

/// An assignment reported late (after the member was fenced, by a poll
/// whose member and generation are no longer its own) is checked as the
/// member, generation and time it names: a commit acknowledged after it
/// asked for the committed offset is no regression, nor is the stale
/// generation a split brain.
#[test]
fn late_reported_assignment_is_checked_as_it_happened() {
    let mut h = H::default();
    let mut late = meta("", -1).lost("UNKNOWN_MEMBER_ID");
    push(&mut late.0["assigned"], json!([0, 15, 15, 2, 100, "a"]));
    h.commit(Acked, 150, 160, "b", 3, &[(0, 89)]);
    h.poll(500, 510, recs(&[]), late);
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    assert!(
        only(&r, "offset-regression").is_empty(),
        "{:?}",
        r.violations
    );
    // Asked after the commit was acknowledged: a regression, named as
    // member a in generation 2.
    let mut h = H::default();
    let mut late = meta("", -1).lost("UNKNOWN_MEMBER_ID");
    push(&mut late.0["assigned"], json!([0, 15, 15, 2, 170, "a"]));
    h.commit(Acked, 150, 160, "b", 3, &[(0, 89)]);
    h.poll(500, 510, recs(&[]), late);
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    let v = only(&r, "offset-regression");
    assert_eq!(v.len(), 1, "{:?}", r.violations);
    assert!(
        v[0].detail
            .contains("member a was then assigned the partition in generation 2"),
        "{}",
        v[0].detail
    );
    // An assignment that says it asked after its call ended is malformed.
    let mut h = H::default();
    let mut bad = meta("a", 2);
    push(&mut bad.0["assigned"], json!([0, 15, 15, 2, 900, "a"]));
    h.poll(500, 510, recs(&[]), bad);
    let (_, ops) = h.build();
    let r = run(&ops, 1, 0);
    assert_eq!(only(&r, "malformed-history").len(), 1, "{:?}", r.violations);
}
