//! Histories the `watch-order` check must pass and histories it must fail:
//! a watch event reaches its session before any later reply of that
//! session reflects the change it announces (ZooKeeper's ordering promise
//! for watches).

use serde_json::json;

use super::checks::watch_order;
use super::test_history::{kinds, Builder};
use crate::history::EventType;

const A: u64 = 0x1_0000_0001;
const B: u64 = 0x1_0000_0002;

fn check(b: &Builder) -> Vec<String> {
    let (h, ops) = b.done();
    kinds(&watch_order(h, &ops))
}

/// Session A reads `/a` at zxid 5 and leaves a data watch; session B sets
/// `/a` at zxid 7.
fn watched_then_changed() -> Builder {
    let mut b = Builder::new();
    b.ok(0, "getData", "/a", json!(null), json!(1), 5, A);
    b.annotate("watch", json!(true));
    b.ok(1, "setData", "/a", json!(2), json!(null), 7, B);
    b
}

#[test]
fn the_event_before_a_newer_reply_passes() {
    let mut b = watched_then_changed();
    b.ok(0, "getData", "/b", json!(null), json!(0), 8, A);
    b.annotate("events", json!([["NodeDataChanged", "/a", 7]]));
    assert!(check(&b).is_empty());
}

#[test]
fn a_newer_reply_before_the_event_fails() {
    let mut b = watched_then_changed();
    b.ok(0, "getData", "/b", json!(null), json!(0), 8, A);
    assert_eq!(check(&b), vec!["watch-order"]);
    // The event arriving afterwards does not undo it.
    b.ok(0, "getData", "/b", json!(null), json!(0), 9, A);
    b.annotate("events", json!([["NodeDataChanged", "/a", 7]]));
    assert_eq!(check(&b), vec!["watch-order"]);
}

#[test]
fn replies_older_than_the_change_owe_nothing() {
    let mut b = watched_then_changed();
    // Answered by a server that had not applied zxid 7 yet.
    b.ok(0, "getData", "/b", json!(null), json!(0), 6, A);
    assert!(check(&b).is_empty());
}

#[test]
fn only_watched_reads_and_their_own_paths_count() {
    // The same history without the watch flag.
    let mut b = Builder::new();
    b.ok(0, "getData", "/a", json!(null), json!(1), 5, A);
    b.ok(1, "setData", "/a", json!(2), json!(null), 7, B);
    b.ok(0, "getData", "/b", json!(null), json!(0), 8, A);
    assert!(check(&b).is_empty());
    // A watch on another path.
    let mut b = Builder::new();
    b.ok(0, "getData", "/c", json!(null), json!(1), 5, A);
    b.annotate("watch", json!(true));
    b.ok(1, "setData", "/a", json!(2), json!(null), 7, B);
    b.ok(0, "getData", "/b", json!(null), json!(0), 8, A);
    assert!(check(&b).is_empty());
    // Another session's newer reply owes session A nothing.
    let mut b = watched_then_changed();
    b.ok(1, "getData", "/b", json!(null), json!(0), 8, B);
    assert!(check(&b).is_empty());
}

#[test]
fn child_watches_fire_on_creates_under_the_parent() {
    let mut b = Builder::new();
    b.ok(0, "getChildren", "/p", json!(null), json!([]), 5, A);
    b.annotate("watch", json!(true));
    b.ok(1, "create", "/p/x", json!(1), json!("/p/x"), 7, B);
    b.ok(0, "getData", "/b", json!(null), json!(0), 9, A);
    assert_eq!(check(&b), vec!["watch-order"]);
    let mut b = Builder::new();
    b.ok(0, "getChildren", "/p", json!(null), json!([]), 5, A);
    b.annotate("watch", json!(true));
    b.ok(1, "create", "/p/x", json!(1), json!("/p/x"), 7, B);
    b.ok(0, "getData", "/b", json!(null), json!(0), 9, A);
    b.annotate("events", json!([["NodeChildrenChanged", "/p", 7]]));
    assert!(check(&b).is_empty());
}

#[test]
fn a_write_of_unknown_outcome_obliges_nothing() {
    // B's setData timed out: whether and when it took effect is unknown,
    // so no reply can be shown to reflect it.
    let mut b = Builder::new();
    b.ok(0, "getData", "/a", json!(null), json!(1), 5, A);
    b.annotate("watch", json!(true));
    b.info(1, "setData", "/a", json!(2), B);
    b.ok(0, "getData", "/b", json!(null), json!(0), 8, A);
    assert!(check(&b).is_empty());
    // A failed watched read leaves no watch.
    let mut b = Builder::new();
    b.invoke(0, "getData", "/a", json!(null));
    b.complete(
        0,
        EventType::Info,
        "getData",
        "/a",
        json!(null),
        Some("ConnectionLoss"),
        0,
        A,
        None,
    );
    b.annotate("watch", json!(true));
    b.ok(1, "setData", "/a", json!(2), json!(null), 7, B);
    b.ok(2, "getData", "/b", json!(null), json!(0), 8, A);
    assert!(check(&b).is_empty());
}
