//! Histories the election checks must pass and histories they must fail.

use serde_json::json;

use kzsim_model::zk::tree::DataTree;

use super::election::{no_leader, two_leaders, Quiet};
use super::test_history::{kinds, Builder};
use crate::history::EventType;

const A: u64 = 0x1_0000_0001;
const B: u64 = 0x1_0000_0002;

fn create(b: &mut Builder, p: u64, guid: &str, seq: u64, zxid: u64, session: u64) -> String {
    let prefix = format!("/election/{guid}-n-");
    let path = format!("{prefix}{seq:010}");
    b.ok(
        p,
        "candidate-create",
        &prefix,
        json!({"ephemeral": true, "sequential": true, "guid": guid}),
        json!(path),
        zxid,
        session,
    );
    path
}

/// An `elect` listing `children` by the candidate of `node`.
fn elect(b: &mut Builder, p: u64, node: &str, children: &[&str], zxid: u64, session: u64) {
    b.invoke(p, "elect", "/election", json!({ "node": node }));
    let names: Vec<&str> = children
        .iter()
        .map(|c| c.rsplit('/').next().unwrap())
        .collect();
    let leader = children
        .iter()
        .min_by_key(|c| c[c.len() - 10..].to_string())
        == Some(&node);
    b.complete(
        p,
        EventType::Ok,
        "elect",
        "/election",
        json!(names),
        None,
        zxid,
        session,
        None,
    );
    b.annotate("election", json!({"node": node, "leader": leader}));
}

fn write(b: &mut Builder, p: u64, node: &str, zxid: u64, session: u64) {
    b.ok(
        p,
        "lead-write",
        "/leader",
        json!({"node": node, "data": "d"}),
        json!(null),
        zxid,
        session,
    );
}

fn resign(b: &mut Builder, p: u64, node: &str, zxid: u64, session: u64) {
    b.ok(
        p,
        "resign",
        node,
        json!({ "node": node }),
        json!(null),
        zxid,
        session,
    );
}

fn check(b: &Builder) -> Vec<String> {
    let (h, ops) = b.done();
    kinds(&two_leaders(h, &ops))
}

/// A leads, writes and resigns; B, waiting behind it, then leads.
fn handover() -> (Builder, String, String) {
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    elect(&mut b, 0, &na, &[&na, &nb], 11, A);
    elect(&mut b, 1, &nb, &[&na, &nb], 11, B);
    write(&mut b, 0, &na, 12, A);
    resign(&mut b, 0, &na, 13, A);
    elect(&mut b, 1, &nb, &[&nb], 13, B);
    write(&mut b, 1, &nb, 14, B);
    (b, na, nb)
}

#[test]
fn handover_passes() {
    let (b, _, _) = handover();
    assert!(check(&b).is_empty(), "{:?}", check(&b));
}

#[test]
fn a_stale_listing_of_a_deposed_leader_passes() {
    // A's session expired (its node gone at 13, which the history does not
    // record); A's listing on a lagging follower at 12 still shows it lowest:
    // its tenure ended before B's began.
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    elect(&mut b, 0, &na, &[&na, &nb], 12, A);
    elect(&mut b, 1, &nb, &[&nb], 14, B);
    write(&mut b, 1, &nb, 15, B);
    // A's fenced write of unknown outcome is no evidence.
    b.info(
        0,
        "lead-write",
        "/leader",
        json!({"node": na, "data": "x"}),
        A,
    );
    assert!(check(&b).is_empty(), "{:?}", check(&b));
}

#[test]
fn a_deposed_leader_writing_after_the_next_leader_learned_fails() {
    // A follower lost A's node on its own: B's listing there makes B leader
    // while A, still alive on the leader, goes on writing.
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    elect(&mut b, 0, &na, &[&na, &nb], 11, A);
    elect(&mut b, 1, &nb, &[&nb], 12, B);
    write(&mut b, 0, &na, 13, A);
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);
}

#[test]
fn a_leader_whose_node_is_listed_after_the_next_learned_fails() {
    // No writes: A's node is listed (by B's own later listing) after B was
    // told it led.
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    elect(&mut b, 0, &na, &[&na, &nb], 11, A);
    elect(&mut b, 1, &nb, &[&nb], 12, B);
    elect(&mut b, 1, &nb, &[&na, &nb], 13, B);
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);
}

#[test]
fn writes_through_a_foreign_or_deleted_node_fail() {
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    elect(&mut b, 0, &na, &[&na], 11, A);
    write(&mut b, 1, &na, 12, B);
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);

    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    elect(&mut b, 0, &na, &[&na], 11, A);
    resign(&mut b, 0, &na, 12, A);
    write(&mut b, 0, &na, 13, A);
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);
}

#[test]
fn a_lost_create_found_by_its_guid_is_judged_too() {
    let mut b = Builder::new();
    b.info(
        0,
        "candidate-create",
        "/election/p0-1-n-",
        json!({"ephemeral": true, "sequential": true, "guid": "p0-1"}),
        A,
    );
    let na = "/election/p0-1-n-0000000000".to_string();
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    // The thread goes on as a new process (3) after its `info`.
    elect(&mut b, 3, &na, &[&na, &nb], 11, A);
    write(&mut b, 3, &na, 12, A);
    assert!(check(&b).is_empty(), "{:?}", check(&b));
    // B is told it leads at 13, yet A's node is listed at 14.
    elect(&mut b, 1, &nb, &[&nb], 13, B);
    elect(&mut b, 3, &na, &[&na, &nb], 14, A);
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);
}

const QUIET: Quiet = Quiet {
    heal_us: 10,
    writers_stop_us: 15,
    settle_us: 30,
};

#[test]
fn a_leader_after_the_faults_heal_passes_and_none_fails() {
    let (mut b, _, nb) = handover();
    // The clock of the builder ticks by one per event: pad to the window.
    while b.h.events.len() < 22 {
        b.ok(2, "watch", &nb, json!({}), json!(null), 14, A);
    }
    let (h, ops) = b.done();
    assert_eq!(
        kinds(&no_leader(h, &ops, QUIET, None)),
        vec!["election-no-leader".to_string()]
    );
    write(&mut b, 1, &nb, 15, B);
    let (h, ops) = b.done();
    assert!(no_leader(h, &ops, QUIET, None).is_empty());
    // A final tree without B's node: B's leadership was not live.
    let tree = DataTree::new();
    assert_eq!(
        kinds(&no_leader(h, &ops, QUIET, Some(&tree))),
        vec!["election-no-leader".to_string()]
    );
    let mut t = DataTree::new();
    t.apply_create_session(B, 1000);
    t.apply_create("/election", b"", 0, 1, &mut Vec::new());
    t.apply_create(&nb, b"", B, 11, &mut Vec::new());
    assert!(no_leader(h, &ops, QUIET, Some(&t)).is_empty());
}

#[test]
fn leading_on_a_listing_that_shows_a_lower_node_fails() {
    let mut b = Builder::new();
    let na = create(&mut b, 0, "p0-1", 0, 10, A);
    let nb = create(&mut b, 1, "p1-1", 1, 11, B);
    b.invoke(1, "elect", "/election", json!({ "node": nb }));
    let names = json!([na.rsplit('/').next(), nb.rsplit('/').next()]);
    b.complete(
        1,
        EventType::Ok,
        "elect",
        "/election",
        names,
        None,
        11,
        B,
        None,
    );
    b.annotate("election", json!({"node": nb, "leader": true}));
    assert_eq!(check(&b), vec!["election-two-leaders".to_string()]);
}
