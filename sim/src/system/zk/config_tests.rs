//! Histories the configuration-store checks must pass and histories they
//! must fail.

use serde_json::json;

use kzsim_model::zk::tree::DataTree;

use super::config::{converge, order};
use super::election::Quiet;
use super::test_history::{kinds, Builder};

const W: u64 = 0x1_0000_0001;
const R: u64 = 0x1_0000_0002;
const R2: u64 = 0x1_0000_0003;

fn setup(b: &mut Builder) {
    b.ok(
        0,
        "setup",
        "/config",
        json!({"data": "0", "ephemeral": false, "sequential": false}),
        json!("/config"),
        5,
        W,
    );
}

fn write(b: &mut Builder, value: u64, version: i64, zxid: u64) {
    b.ok(
        0,
        "setData",
        "/config",
        json!({"data": value.to_string(), "version": -1}),
        json!({ "version": version }),
        zxid,
        W,
    );
}

fn read(b: &mut Builder, p: u64, value: u64, version: i64, zxid: u64, session: u64) {
    b.ok(
        p,
        "getData",
        "/config",
        json!(null),
        json!({"data": value.to_string(), "version": version}),
        zxid,
        session,
    );
}

fn poll(b: &mut Builder, p: u64, version: i64, zxid: u64, session: u64) {
    b.ok(
        p,
        "poll",
        "/config",
        json!(null),
        json!({ "version": version }),
        zxid,
        session,
    );
}

fn check(b: &Builder) -> Vec<String> {
    let (h, ops) = b.done();
    kinds(&order(h, &ops))
}

/// Writes 1 and 2 acknowledged, 3 of unknown outcome (it took effect).
fn history() -> Builder {
    let mut b = Builder::new();
    setup(&mut b);
    read(&mut b, 1, 0, 0, 5, R);
    write(&mut b, 1, 1, 10);
    // A lagging follower: stale in real time, consistent at its zxid.
    read(&mut b, 2, 0, 0, 6, R2);
    read(&mut b, 1, 1, 1, 10, R);
    write(&mut b, 2, 2, 11);
    b.info(
        0,
        "setData",
        "/config",
        json!({"data": "3", "version": -1}),
        W,
    );
    poll(&mut b, 1, 3, 12, R);
    read(&mut b, 1, 3, 3, 12, R);
    read(&mut b, 2, 2, 2, 11, R2);
    b
}

#[test]
fn reads_of_committed_prefixes_pass() {
    let b = history();
    assert!(check(&b).is_empty(), "{:?}", check(&b));
}

#[test]
fn a_session_going_back_fails() {
    let mut b = history();
    // R saw version 3; a read at an older server must not follow.
    read(&mut b, 1, 2, 2, 11, R);
    assert_eq!(check(&b), vec!["config-order".to_string()]);
    // A poll going back counts too.
    let mut b = history();
    poll(&mut b, 1, 1, 10, R);
    assert_eq!(check(&b), vec!["config-order".to_string()]);
}

#[test]
fn a_read_out_of_step_with_its_zxid_fails() {
    // Stale at its zxid: version 1 read at zxid 11, where 2 committed.
    let mut b = Builder::new();
    setup(&mut b);
    write(&mut b, 1, 1, 10);
    write(&mut b, 2, 2, 11);
    read(&mut b, 1, 1, 1, 11, R);
    assert_eq!(check(&b), vec!["config-order".to_string()]);
    // From the future: version 2 at zxid 10.
    let mut b = Builder::new();
    setup(&mut b);
    write(&mut b, 1, 1, 10);
    read(&mut b, 1, 2, 2, 10, R);
    write(&mut b, 2, 2, 11);
    assert_eq!(check(&b), vec!["config-order".to_string()]);
}

#[test]
fn one_version_with_two_values_fails() {
    let mut b = Builder::new();
    setup(&mut b);
    write(&mut b, 1, 1, 10);
    read(&mut b, 1, 7, 1, 10, R);
    assert_eq!(check(&b), vec!["config-order".to_string()]);
}

const QUIET: Quiet = Quiet {
    heal_us: 1,
    writers_stop_us: 10,
    settle_us: 40,
};

fn tree(value: &str, version: i32) -> DataTree {
    let mut t = DataTree::new();
    t.apply_create("/config", b"0", 0, 1, &mut Vec::new());
    t.apply_set_data("/config", value.as_bytes(), version, 20, &mut Vec::new());
    t
}

#[test]
fn watchers_converge_on_the_final_value() {
    let mut b = history();
    // Past the writer's stop: both watchers answered late.
    while b.h.events.len() < 30 {
        poll(&mut b, 2, 2, 11, R2);
    }
    poll(&mut b, 1, 3, 12, R);
    let (_, ops) = b.done();
    // R2 last read version 2; the write of unknown outcome took effect.
    let v = converge(&ops, QUIET, Some(&tree("3", 3)));
    assert_eq!(kinds(&v), vec!["config-converge".to_string()]);
    read(&mut b, 2, 3, 3, 12, R2);
    let (_, ops) = b.done();
    assert!(converge(&ops, QUIET, Some(&tree("3", 3))).is_empty());
    // Had it not taken effect, the final tree holds 2: R is then wrong
    // (and the order check would say so too).
    let v = converge(&ops, QUIET, Some(&tree("2", 2)));
    assert_eq!(v.len(), 2, "{v:?}");
}

#[test]
fn a_watcher_not_answered_late_is_not_judged() {
    let b = history();
    let (_, ops) = b.done();
    assert!(converge(&ops, QUIET, Some(&tree("3", 3))).is_empty());
    assert!(converge(&ops, QUIET, None).is_empty());
}
