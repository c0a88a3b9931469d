//! Histories and final trees the counter checks must pass and must fail.

use serde_json::{json, Value};

use kzsim_model::zk::tree::DataTree;

use super::counter::check;
use super::test_history::{kinds, Builder};

const S: u64 = 0x1_0000_0001;

fn input(data: &str) -> Value {
    json!({"data": data, "ephemeral": false, "sequential": true})
}

fn create(b: &mut Builder, p: u64, data: &str, seq: u64, zxid: u64) {
    b.ok(
        p,
        "create",
        "/c/n-",
        input(data),
        json!(format!("/c/n-{seq:010}")),
        zxid,
        S,
    );
}

fn list(b: &mut Builder, p: u64, seqs: &[u64], zxid: u64) {
    let names: Vec<String> = seqs.iter().map(|s| format!("n-{s:010}")).collect();
    b.ok(p, "getChildren", "/c", Value::Null, json!(names), zxid, S);
}

fn tree(children: &[(u64, &str)]) -> DataTree {
    let mut t = DataTree::new();
    t.apply_create("/c", b"", 0, 1, &mut Vec::new());
    for (s, d) in children {
        t.apply_create(
            &format!("/c/n-{s:010}"),
            d.as_bytes(),
            0,
            10 + s,
            &mut Vec::new(),
        );
    }
    t
}

fn run(b: &Builder, t: &DataTree) -> Vec<String> {
    let (h, ops) = b.done();
    kinds(&check(h, &ops, Some(t)))
}

/// Two acknowledged creates, one of unknown outcome that landed (seq 2)
/// and one that did not, and consistent listings.
fn good() -> Builder {
    let mut b = Builder::new();
    create(&mut b, 0, "a", 0, 10);
    list(&mut b, 1, &[0], 10);
    create(&mut b, 0, "b", 1, 11);
    b.info(2, "create", "/c/n-", input("c"), S);
    b.info(3, "create", "/c/n-", input("d"), S);
    list(&mut b, 1, &[0, 1, 2], 12);
    b.fail(4, "create", "/c/n-", input("e"), "NoNode", 12, S);
    b
}

#[test]
fn consistent_history_passes() {
    let t = tree(&[(0, "a"), (1, "b"), (2, "c")]);
    assert!(run(&good(), &t).is_empty(), "{:?}", run(&good(), &t));
    // The landed create of unknown outcome may also be "d".
    let t = tree(&[(0, "a"), (1, "b"), (2, "d")]);
    assert!(run(&good(), &t).is_empty());
}

#[test]
fn acknowledged_create_missing_fails() {
    let t = tree(&[(0, "a"), (2, "c")]);
    let k = run(&good(), &t);
    assert!(k.contains(&"lost-create".to_string()), "{k:?}");
    assert!(k.contains(&"sequence-gap".to_string()), "{k:?}");
}

#[test]
fn definitely_failed_create_present_is_a_phantom() {
    let t = tree(&[(0, "a"), (1, "b"), (2, "e")]);
    assert_eq!(run(&good(), &t), vec!["phantom-create".to_string()]);
}

#[test]
fn one_create_applied_twice_fails() {
    let t = tree(&[(0, "a"), (1, "b"), (2, "c"), (3, "c")]);
    assert_eq!(run(&good(), &t), vec!["duplicate-create".to_string()]);
}

#[test]
fn gap_fails_even_with_creates_of_unknown_outcome() {
    // Nothing deletes children, so no create can leave a hole.
    let t = tree(&[(0, "a"), (1, "b"), (3, "c")]);
    let k = run(&good(), &t);
    assert!(k.contains(&"sequence-gap".to_string()), "{k:?}");
}

#[test]
fn later_create_with_a_lower_number_fails() {
    let mut b = Builder::new();
    create(&mut b, 0, "a", 1, 11);
    create(&mut b, 1, "b", 0, 10);
    let k = run(&b, &tree(&[(0, "b"), (1, "a")]));
    assert_eq!(k, vec!["nonlinearizable".to_string()]);
    // The same numbers for concurrent creates are fine.
    let mut b = Builder::new();
    b.invoke(0, "create", "/c/n-", input("a"));
    create(&mut b, 1, "b", 0, 10);
    b.complete(
        0,
        crate::history::EventType::Ok,
        "create",
        "/c/n-",
        json!("/c/n-0000000001"),
        None,
        11,
        S,
        None,
    );
    assert!(run(&b, &tree(&[(0, "b"), (1, "a")])).is_empty());
}

#[test]
fn listing_out_of_step_with_its_zxid_fails() {
    let mut b = Builder::new();
    create(&mut b, 0, "a", 0, 10);
    create(&mut b, 0, "b", 1, 11);
    list(&mut b, 1, &[0], 11);
    let t = tree(&[(0, "a"), (1, "b")]);
    assert_eq!(run(&b, &t), vec!["nonlinearizable".to_string()]);
    // A stale listing is fine when its zxid says it is stale.
    let mut b = Builder::new();
    create(&mut b, 0, "a", 0, 10);
    create(&mut b, 0, "b", 1, 11);
    list(&mut b, 1, &[0], 10);
    assert!(run(&b, &t).is_empty());
    // A listing with a hole, or of a node the final tree lacks.
    let mut b = Builder::new();
    create(&mut b, 0, "a", 0, 10);
    b.info(2, "create", "/c/n-", input("c"), S);
    list(&mut b, 1, &[0, 2], 12);
    let k = run(&b, &tree(&[(0, "a")]));
    assert!(k.contains(&"sequence-gap".to_string()), "{k:?}");
    assert!(k.contains(&"lost-create".to_string()), "{k:?}");
}
