//! Edge cases of the ZooKeeper model.

use serde_json::{json, Value};

use super::*;
use crate::check::testing::op;

fn zop(f: &str, path: &str, input: Value, output: Value) -> Operation {
    let mut o = op(f, input, output);
    o.key = Some(json!(path));
    o
}

fn failed(f: &str, path: &str, input: Value, code: &str) -> Operation {
    let mut o = zop(f, path, input, Value::Null);
    o.outcome = Outcome::Fail;
    o.error = Some(code.to_string());
    o
}

fn run(ops: &[Operation]) -> Option<Arc<Tree>> {
    let mut m = Zk::new();
    let encoded: Vec<ZkOp> = ops.iter().filter_map(|o| m.encode(o).unwrap()).collect();
    let mut s = m.init();
    for e in &encoded {
        s = m.step(&s, e)?;
    }
    Some(s)
}

#[test]
fn create_get_set_delete() {
    let ok = [
        zop("create", "/a", json!({"data": "x"}), json!("/a")),
        zop(
            "getData",
            "/a",
            Value::Null,
            json!({"data": "x", "version": 0}),
        ),
        zop(
            "setData",
            "/a",
            json!({"data": "y", "version": 0}),
            json!({"version": 1}),
        ),
        zop("exists", "/a", Value::Null, json!({"version": 1})),
        zop("getChildren", "/", Value::Null, json!(["a"])),
        zop("delete", "/a", json!({"version": 1}), Value::Null),
        zop("exists", "/a", Value::Null, Value::Null),
    ];
    assert!(run(&ok).is_some());
    let stale = [
        zop("create", "/a", json!("x"), Value::Null),
        zop("setData", "/a", json!({"data": "y"}), Value::Null),
        zop("getData", "/a", Value::Null, json!("x")),
    ];
    assert!(run(&stale).is_none());
}

#[test]
fn error_codes_are_observations() {
    assert!(run(&[failed("getData", "/nope", Value::Null, "NoNode")]).is_some());
    assert!(run(&[failed("delete", "/nope", Value::Null, "NoNode")]).is_some());
    assert!(run(&[failed("delete", "/nope", Value::Null, "BadVersion")]).is_none());
    let ops = [
        zop("create", "/a", json!("x"), Value::Null),
        failed("create", "/a", json!("x"), "NodeExists"),
        failed(
            "setData",
            "/a",
            json!({"data": "z", "version": 3}),
            "BadVersion",
        ),
        zop("create", "/a/b", json!("x"), Value::Null),
        failed("delete", "/a", Value::Null, "NotEmpty"),
        zop(
            "getData",
            "/a",
            Value::Null,
            json!({"data": "x", "version": 0}),
        ),
    ];
    assert!(run(&ops).is_some());
    // An error that the state contradicts is illegal.
    assert!(run(&[failed("create", "/a", json!("x"), "NodeExists")]).is_none());
    // Other failures did not take effect and are dropped.
    assert!(run(&[failed("create", "/a/b/c", json!("x"), "ConnectionLoss")]).is_some());
    // SessionMoved: refused by the leader, the write did not happen (it is
    // no observation of the tree either).
    let moved = [
        zop("create", "/m", json!("x"), json!("/m")),
        failed("delete", "/m", Value::Null, "SessionMoved"),
        failed("create", "/m", json!("y"), "SessionMoved"),
        zop("getData", "/m", Value::Null, json!("x")),
    ];
    assert!(run(&moved).is_some());
    let applied = [
        failed("create", "/n", json!("x"), "SessionMoved"),
        zop("exists", "/n", Value::Null, json!(true)),
    ];
    assert!(run(&applied).is_none());
}

#[test]
fn ephemerals_and_sessions() {
    let mut eph = zop(
        "create",
        "/e",
        json!({"data": 1, "ephemeral": true}),
        Value::Null,
    );
    eph.process = 7;
    let mut close = zop("close", "/", Value::Null, Value::Null);
    close.process = 7;
    let ops = [
        eph.clone(),
        failed("create", "/e/c", json!(1), "NoChildrenForEphemerals"),
        close,
        zop("exists", "/e", Value::Null, json!(false)),
    ];
    assert!(run(&ops).is_some());
    // Another session's close does not remove it.
    let ops = [
        eph,
        zop("close", "/", Value::Null, Value::Null),
        zop("exists", "/e", Value::Null, json!(true)),
    ];
    assert!(run(&ops).is_some());
}

#[test]
fn sequential_create_and_multi() {
    let ops = [
        zop("create", "/q", json!(null), Value::Null),
        zop(
            "create",
            "/q/n-",
            json!({"sequential": true}),
            json!("/q/n-0000000000"),
        ),
        zop(
            "create",
            "/q/n-",
            json!({"sequential": true}),
            json!("/q/n-0000000001"),
        ),
        zop(
            "getChildren",
            "/q",
            Value::Null,
            json!(["n-0000000001", "n-0000000000"]),
        ),
    ];
    assert!(run(&ops).is_some());
    let wrong = [
        zop("create", "/q", json!(null), Value::Null),
        zop(
            "create",
            "/q/n-",
            json!({"sequential": true}),
            json!("/q/n-0000000001"),
        ),
    ];
    assert!(run(&wrong).is_none());
    let multi = json!([
        {"f": "create", "path": "/m", "data": "1"},
        {"f": "check", "path": "/m", "version": 0},
        {"f": "setData", "path": "/m", "data": "2", "version": 0}
    ]);
    let mut m = zop("multi", "/", multi.clone(), json!(["/m", null, 1]));
    m.key = None;
    let ops = [
        m.clone(),
        zop(
            "getData",
            "/m",
            Value::Null,
            json!({"data": "2", "version": 1}),
        ),
    ];
    assert!(run(&ops).is_some());
    let mut bad = m.clone();
    bad.outcome = Outcome::Fail;
    bad.error = Some("NodeExists".into());
    assert!(run(&[m, bad]).is_some());
}

#[test]
fn unknown_outcomes_and_bad_ops() {
    let mut i = zop("create", "/a", json!("x"), Value::Null);
    i.outcome = Outcome::Info;
    let mut m = Zk::new();
    let e = m.encode(&i).unwrap().unwrap();
    let s = m.step(&m.init(), &e).unwrap();
    // Unknown create on an existing node: fails silently.
    assert!(m.step(&s, &e).is_some());
    for bad in [
        zop("frob", "/a", Value::Null, Value::Null),
        zop("create", "a", Value::Null, Value::Null),
        zop("delete", "/", Value::Null, Value::Null),
        zop("delete", "/a", json!({"version": "x"}), Value::Null),
        zop("getChildren", "/", Value::Null, json!("a")),
        zop("multi", "/", json!({"f": "create"}), Value::Null),
        zop("multi", "/", json!([{"path": "/x"}]), Value::Null),
    ] {
        assert!(Zk::new().encode(&bad).is_err(), "{bad:?}");
    }
}

mod sessions {
    use crate::check::models::zk::Zk;
    use crate::check::{check_operations, CheckOptions, Verdict};
    use crate::history::{EventType, History};
    use serde_json::{json, Value};

    /// Runs `(process, f, path, input, output)` ops one after the other
    /// (no overlap) and returns the verdicts of `zk` and `zk-strict`.
    fn verdicts(steps: &[(u64, &str, &str, Value, Value)]) -> (Verdict, Verdict) {
        let mut h = History::new();
        for (t, (p, f, path, input, output)) in steps.iter().enumerate() {
            let key = (!path.is_empty()).then(|| json!(path));
            h.invoke(*p, f, key.clone(), input.clone(), 2 * t as u64, None);
            let t = 2 * t as u64 + 1;
            h.complete(*p, EventType::Ok, f, key, output.clone(), t, None, None);
        }
        let ops = h.operations().unwrap();
        let o = CheckOptions::default();
        (
            check_operations(&mut Zk::new(), &ops, &o).unwrap().verdict,
            check_operations(&mut Zk::strict(), &ops, &o)
                .unwrap()
                .verdict,
        )
    }

    fn create(p: u64) -> (u64, &'static str, &'static str, Value, Value) {
        (p, "create", "/a", json!("x"), json!("/a"))
    }

    fn exists(p: u64, present: bool) -> (u64, &'static str, &'static str, Value, Value) {
        (p, "exists", "/a", Value::Null, json!(present))
    }

    #[test]
    fn stale_read_without_sync_is_allowed() {
        let v = verdicts(&[create(0), exists(1, false)]);
        assert_eq!(v, (Verdict::Linearizable, Verdict::NotLinearizable));
    }

    #[test]
    fn stale_read_after_sync_is_a_violation() {
        let sync = (1, "sync", "", Value::Null, Value::Null);
        let v = verdicts(&[create(0), sync, exists(1, false)]);
        assert_eq!(v, (Verdict::NotLinearizable, Verdict::NotLinearizable));
        // A sync before the write does not oblige the read to see it.
        let sync = (1, "sync", "", Value::Null, Value::Null);
        let v = verdicts(&[sync, create(0), exists(1, false)]);
        assert_eq!(v.0, Verdict::Linearizable);
    }

    #[test]
    fn sessions_read_their_writes_and_never_go_back() {
        let v = verdicts(&[create(1), exists(1, false)]);
        assert_eq!(v.0, Verdict::NotLinearizable);
        let v = verdicts(&[create(0), exists(1, true), exists(1, false)]);
        assert_eq!(v.0, Verdict::NotLinearizable);
        let v = verdicts(&[create(0), exists(1, false), exists(1, true)]);
        assert_eq!(v.0, Verdict::Linearizable);
    }
}

/// Operation `f` of process `p` over `[t0, t1]`.
fn timed(p: u64, t0: u64, t1: u64, mut o: Operation) -> Operation {
    o.process = p;
    o.invoke_time = t0;
    o.complete_time = Some(t1);
    o.invoke_index = (t0 * 2) as usize;
    o.complete_index = Some((t1 * 2) as usize);
    o
}

fn zk_verdict(ops: &[Operation]) -> crate::check::Verdict {
    use crate::check::driver::check_operations;
    check_operations(&mut Zk::new(), ops, &crate::check::CheckOptions::default())
        .unwrap()
        .verdict
}

/// Process 0 creates ephemeral `/e` and reads `/x`; process 1 sees `/e`,
/// then finds it gone over `[read_at, read_at + 1]`; process 0's next
/// operation is answered `SessionExpired` over `[70, 80]`.
fn expiry_history(read_at: u64) -> Vec<Operation> {
    vec![
        timed(
            0,
            10,
            20,
            zop(
                "create",
                "/e",
                json!({"data": 1, "ephemeral": true}),
                json!("/e"),
            ),
        ),
        timed(1, 21, 22, zop("exists", "/e", Value::Null, json!(true))),
        timed(0, 30, 50, zop("exists", "/x", Value::Null, Value::Null)),
        timed(
            1,
            read_at,
            read_at + 1,
            zop("exists", "/e", Value::Null, Value::Null),
        ),
        timed(
            0,
            70,
            80,
            failed("setData", "/e", json!({"data": 2}), "SessionExpired"),
        ),
    ]
}

#[test]
fn session_expiry_removes_ephemerals_within_its_window() {
    use crate::check::Verdict::*;
    // The ensemble expired the session after process 0's last answer (at
    // 50) and before the SessionExpired answer (at 80): `/e` may be gone
    // at 60.
    assert_eq!(zk_verdict(&expiry_history(60)), Linearizable);
    // Not while process 0 was still being answered on its session (process
    // 1 saw `/e` before, so it cannot read an older state).
    assert_eq!(zk_verdict(&expiry_history(30)), NotLinearizable);
    // Without the expiry, the ephemeral cannot vanish.
    let mut no_expiry = expiry_history(60);
    no_expiry.pop();
    assert_eq!(zk_verdict(&no_expiry), NotLinearizable);
    // A session without ephemerals keeps its history as recorded.
    let plain = vec![timed(
        0,
        7,
        8,
        failed("getData", "/a", Value::Null, "SessionExpired"),
    )];
    assert!(session_expiries(&plain).is_none());
}
