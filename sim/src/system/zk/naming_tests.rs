//! Histories the naming check must pass and histories it must fail.

use serde_json::json;

use super::naming::stale;
use super::test_history::{kinds, Builder};

const A: u64 = 0x1_0000_0001;
const B: u64 = 0x1_0000_0002;
/// A client's session.
const C: u64 = 0x1_0000_0003;

fn register(b: &mut Builder, p: u64, name: &str, zxid: u64, session: u64) {
    let path = format!("/services/{name}");
    b.ok(
        p,
        "create",
        &path,
        json!({"data": name, "ephemeral": true, "sequential": false}),
        json!(path),
        zxid,
        session,
    );
}

fn unregister(b: &mut Builder, p: u64, name: &str, zxid: u64, session: u64) {
    let path = format!("/services/{name}");
    b.ok(
        p,
        "delete",
        &path,
        json!({ "version": -1 }),
        json!(null),
        zxid,
        session,
    );
}

fn list(b: &mut Builder, p: u64, names: &[&str], zxid: u64, session: u64) {
    b.ok(
        p,
        "getChildren",
        "/services",
        json!(null),
        json!(names),
        zxid,
        session,
    );
}

/// A heartbeat of `session` (its `exists` on its own registration).
fn heartbeat(b: &mut Builder, p: u64, name: &str, present: bool, zxid: u64, session: u64) {
    let path = format!("/services/{name}");
    let out = if present {
        json!({"version": 0})
    } else {
        json!(null)
    };
    b.ok(p, "exists", &path, json!({}), out, zxid, session);
}

fn check(b: &Builder) -> Vec<String> {
    let (h, ops) = b.done();
    kinds(&stale(h, &ops))
}

/// A and B register; a follower behind answers a stale listing (at its own
/// zxid); A unregisters; B's session expires (its closeSession is not in
/// the history) and B registers again on a new session.
fn history() -> Builder {
    let mut b = Builder::new();
    register(&mut b, 0, "s0-1", 10, A);
    list(&mut b, 2, &["s0-1"], 10, C);
    register(&mut b, 1, "s1-1", 11, B);
    list(&mut b, 3, &["s0-1", "s1-1"], 11, C);
    // Stale in real time: zxid 10, before B registered. A new session of
    // the client (after its own expiry) may read there.
    list(&mut b, 4, &["s0-1"], 10, C + 10);
    unregister(&mut b, 0, "s0-1", 12, A);
    heartbeat(&mut b, 1, "s1-1", true, 12, B);
    list(&mut b, 3, &["s1-1"], 12, C);
    // B's session expired at 13: the listing lacks it, and B is never
    // answered after 12.
    list(&mut b, 3, &[], 13, C);
    register(&mut b, 5, "s1-2", 14, B + 1);
    list(&mut b, 3, &["s1-2"], 14, C);
    b
}

#[test]
fn listings_consistent_at_their_zxids_pass() {
    let b = history();
    assert!(check(&b).is_empty(), "{:?}", check(&b));
}

#[test]
fn a_registration_held_after_its_delete_fails() {
    let mut b = history();
    list(&mut b, 3, &["s0-1", "s1-2"], 14, C);
    assert_eq!(check(&b), vec!["naming-stale".to_string()]);
}

#[test]
fn a_registration_held_after_a_listing_lacked_it_fails() {
    // B's registration reappears at 14 after the listing at 13 lacked it.
    let mut b = history();
    list(&mut b, 4, &["s1-1", "s1-2"], 14, C + 10);
    assert_eq!(check(&b), vec!["naming-stale".to_string()]);
}

#[test]
fn a_registration_held_before_its_create_fails() {
    let mut b = Builder::new();
    list(&mut b, 2, &["s0-1"], 9, C);
    register(&mut b, 0, "s0-1", 10, A);
    assert_eq!(check(&b), vec!["naming-stale".to_string()]);
}

#[test]
fn a_live_session_s_registration_missing_fails() {
    // B is answered at 14, so its session lived at 13 when the listing
    // lacked its registration.
    let mut b = history();
    heartbeat(&mut b, 1, "s1-1", true, 14, B);
    let k = check(&b);
    // Both: missing at 13, and held again at 14 after that absence.
    assert_eq!(k, vec!["naming-stale".to_string(); 2]);
    // A heartbeat told absent while its session is answered, too.
    let mut b = Builder::new();
    register(&mut b, 0, "s0-1", 10, A);
    heartbeat(&mut b, 0, "s0-1", false, 11, A);
    assert_eq!(check(&b), vec!["naming-stale".to_string()]);
}

#[test]
fn a_delete_of_unknown_outcome_explains_a_missing_registration() {
    let mut b = Builder::new();
    register(&mut b, 0, "s0-1", 10, A);
    b.info(0, "delete", "/services/s0-1", json!({"version": -1}), A);
    list(&mut b, 2, &[], 12, C);
    // A goes on (a new process, same session).
    heartbeat(&mut b, 3, "s0-2", false, 13, A);
    assert!(check(&b).is_empty(), "{:?}", check(&b));
    // But one invoked after the listing returned explains nothing.
    let mut b = Builder::new();
    register(&mut b, 0, "s0-1", 10, A);
    list(&mut b, 2, &[], 12, C);
    b.info(0, "delete", "/services/s0-1", json!({"version": -1}), A);
    heartbeat(&mut b, 3, "s0-2", false, 13, A);
    assert_eq!(check(&b), vec!["naming-stale".to_string()]);
}

#[test]
fn a_create_of_unknown_outcome_is_known_from_listings() {
    let mut b = Builder::new();
    b.info(
        0,
        "create",
        "/services/s0-1",
        json!({"data": "s0-1", "ephemeral": true, "sequential": false}),
        A,
    );
    // Not yet there: no judgement (it had not landed, or never will).
    list(&mut b, 2, &[], 10, C);
    list(&mut b, 2, &["s0-1"], 11, C);
    heartbeat(&mut b, 3, "s0-1", true, 12, A);
    assert!(check(&b).is_empty(), "{:?}", check(&b));
    // Then lost while A lives.
    list(&mut b, 2, &[], 13, C);
    heartbeat(&mut b, 3, "s0-1", true, 14, A);
    let k = check(&b);
    assert!(
        !k.is_empty() && k.iter().all(|k| k == "naming-stale"),
        "{k:?}"
    );
}
