//! Histories the lock checks must pass and histories they must fail.

use serde_json::json;

use kzsim_model::zk::tree::DataTree;

use super::lock::{ephemerals_lost, exclusion, lost_in_final_tree};
use super::test_history::{kinds, Builder};

const A: u64 = 0x1_0000_0001;
const B: u64 = 0x1_0000_0002;

fn all(b: &Builder) -> Vec<String> {
    let (h, ops) = b.done();
    let mut v = exclusion(h, &ops);
    v.extend(ephemerals_lost(h, &ops));
    kinds(&v)
}

/// A holds, writes and releases; then B, queued behind it, holds.
fn handover() -> (Builder, String, String) {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    b.acquire(0, &na, &[&na, &nb], 11, A);
    b.acquire(1, &nb, &[&na, &nb], 11, B);
    b.fenced(0, &na, 12, A);
    b.release(0, &na, 13, A);
    b.acquire(1, &nb, &[&nb], 13, B);
    b.fenced(1, &nb, 14, B);
    (b, na, nb)
}

#[test]
fn handover_passes() {
    let (b, _, _) = handover();
    assert!(all(&b).is_empty(), "{:?}", all(&b));
}

#[test]
fn holder_released_after_the_next_holder_wrote_fails() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    b.fenced(1, &nb, 12, B);
    b.release(0, &na, 13, A);
    let k = all(&b);
    assert!(k.contains(&"lock-exclusion".to_string()), "{k:?}");
}

/// A follower lost A's node (expired A's session on its own): B's listing
/// there makes B the holder while A goes on writing.
#[test]
fn stale_listing_without_a_live_holder_fails_both_checks() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    b.acquire(0, &na, &[&na, &nb], 11, A);
    b.acquire(1, &nb, &[&nb], 11, B);
    b.fenced(1, &nb, 12, B);
    b.fenced(0, &na, 13, A);
    let k = all(&b);
    assert!(k.contains(&"lock-exclusion".to_string()), "{k:?}");
    assert!(k.contains(&"ephemeral-lost".to_string()), "{k:?}");
}

#[test]
fn release_of_unknown_outcome_explains_the_handover() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    // After its `info` the thread goes on as a new process (3), in the
    // same session.
    b.acquire(3, &na, &[&na, &nb], 11, A);
    b.fenced(3, &na, 12, A);
    b.info(0, "release", &na, json!({ "node": na }), A);
    b.acquire(1, &nb, &[&nb], 14, B);
    b.fenced(1, &nb, 15, B);
    // A's session lives on.
    b.ok(
        2,
        "read",
        "/fenced",
        json!({}),
        json!({"version": 2}),
        15,
        A,
    );
    assert!(all(&b).is_empty(), "{:?}", all(&b));
}

#[test]
fn release_invoked_after_the_listing_explains_nothing() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    b.acquire(1, &nb, &[&nb], 12, B);
    b.info(0, "release", &na, json!({ "node": na }), A);
    b.ok(
        2,
        "read",
        "/fenced",
        json!({}),
        json!({"version": 0}),
        13,
        A,
    );
    let k = all(&b);
    assert_eq!(k, vec!["ephemeral-lost".to_string()]);
}

#[test]
fn expired_session_explains_the_handover() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let nb = b.create(1, "p1-1", 1, 11, B);
    // After its `info` the thread goes on as a new process (3), in the
    // same session.
    b.acquire(3, &na, &[&na, &nb], 11, A);
    b.fenced(3, &na, 12, A);
    // A's session expires (closeSession at 13, not in the history); A's
    // next write is refused.
    b.invoke(0, "fenced-write", "/fenced", json!({"node": na}));
    b.complete(
        0,
        crate::history::EventType::Info,
        "fenced-write",
        "/fenced",
        json!({"node": na}),
        Some("SessionExpired"),
        0,
        A,
        Some(&na),
    );
    b.acquire(1, &nb, &[&nb], 13, B);
    b.fenced(1, &nb, 14, B);
    assert!(all(&b).is_empty(), "{:?}", all(&b));
}

/// A create whose answer was lost landed; the listing finds it by guid.
#[test]
fn lost_create_adopted_by_guid_is_judged_too() {
    let mut b = Builder::new();
    b.info(
        0,
        "lock-create",
        "/lock/p0-1-n-",
        json!({"ephemeral": true, "sequential": true, "guid": "p0-1"}),
        A,
    );
    let na = "/lock/p0-1-n-0000000000".to_string();
    let nb = b.create(1, "p1-1", 1, 11, B);
    // After its `info` the thread goes on as a new process (3), in the
    // same session.
    b.acquire(3, &na, &[&na, &nb], 11, A);
    b.fenced(3, &na, 12, A);
    // Fine so far.
    assert!(all(&b).is_empty(), "{:?}", all(&b));
    // B's listing lacks A's node while A's session is answered later.
    b.acquire(1, &nb, &[&nb], 12, B);
    b.ok(
        2,
        "read",
        "/fenced",
        json!({}),
        json!({"version": 1}),
        13,
        A,
    );
    let k = all(&b);
    assert!(k.contains(&"lock-exclusion".to_string()), "{k:?}");
    assert!(k.contains(&"ephemeral-lost".to_string()), "{k:?}");
}

#[test]
fn fenced_write_through_a_node_of_another_session_fails() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    b.fenced(1, &na, 12, B);
    assert_eq!(all(&b), vec!["lock-exclusion".to_string()]);
}

#[test]
fn fenced_writes_at_one_zxid_fail() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    b.fenced(0, &na, 12, A);
    b.fenced(0, &na, 12, A);
    assert_eq!(all(&b), vec!["lock-exclusion".to_string()]);
}

#[test]
fn owner_told_nonode_while_alive_fails_but_not_after_its_own_unknown_release() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    b.fail(
        0,
        "fenced-write",
        "/fenced",
        json!({ "node": na }),
        "NoNode",
        12,
        A,
    );
    assert_eq!(all(&b), vec!["ephemeral-lost".to_string()]);

    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    b.info(0, "release", &na, json!({ "node": na }), A);
    // The thread goes on as a new process after the `info`.
    b.fail(3, "release", &na, json!({ "node": na }), "NoNode", 12, A);
    assert!(all(&b).is_empty(), "{:?}", all(&b));
}

#[test]
fn final_tree_keeps_the_ephemerals_of_live_sessions() {
    let mut b = Builder::new();
    let na = b.create(0, "p0-1", 0, 10, A);
    let (h, ops) = b.done();
    let mut tree = DataTree::new();
    tree.apply_create_session(A, 1000);
    let lost = lost_in_final_tree(h, &ops, 0, &tree);
    assert_eq!(kinds(&lost), vec!["ephemeral-lost".to_string()]);
    let mut t = tree.clone();
    t.apply_create("/lock", b"", 0, 1, &mut Vec::new());
    t.apply_create(&na, b"", A, 10, &mut Vec::new());
    assert!(lost_in_final_tree(h, &ops, 0, &t).is_empty());
    // The session ended: its node went with it.
    assert!(lost_in_final_tree(h, &ops, 0, &DataTree::new()).is_empty());
    // A delete was issued (outcome unknown): no judgement.
    b.info(0, "release", &na, json!({ "node": na }), A);
    let (h, ops) = b.done();
    assert!(lost_in_final_tree(h, &ops, 0, &tree).is_empty());
}
