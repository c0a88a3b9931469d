//! The checker agrees with a brute-force checker that tries every order, on
//! random small histories (at most 8 operations over 3 processes, with
//! failed, indeterminate and never-completed operations).

use kzsim_sim::check::brute::brute_check;
use kzsim_sim::check::models::kv::Kv;
use kzsim_sim::check::models::register::Register;
use kzsim_sim::check::models::zk::Zk;
use kzsim_sim::check::{check_operations, CheckOptions, Model, Verdict};
use kzsim_sim::history::{EventType, History};
use proptest::prelude::*;
use serde_json::{json, Value};

/// One scripted step: process, selector, two small arguments.
type Step = (u8, u8, u8, u8);

/// Which operations a script produces.
#[derive(Clone, Copy)]
enum Flavor {
    Register,
    Kv,
    Zk,
}

fn small(v: u8) -> Value {
    if v == 0 {
        Value::Null
    } else {
        json!(v)
    }
}

fn invoke(flavor: Flavor, sel: u8, a: u8, b: u8) -> (String, Option<Value>, Value) {
    match flavor {
        Flavor::Register => match sel % 3 {
            0 => ("read".into(), None, Value::Null),
            1 => ("write".into(), None, json!(a % 3)),
            _ => ("cas".into(), None, json!([a % 3, b % 3])),
        },
        Flavor::Kv => {
            let key = Some(json!(["x", "y"][(b % 2) as usize]));
            match sel % 3 {
                0 => ("get".into(), key, Value::Null),
                1 => ("put".into(), key, json!(["a", "b"][(a % 2) as usize])),
                _ => ("append".into(), key, json!(["a", "b"][(a % 2) as usize])),
            }
        }
        Flavor::Zk => {
            let path = Some(json!(["/a", "/a/b"][(b % 2) as usize]));
            match sel % 5 {
                4 => ("sync".into(), None, Value::Null),
                0 => ("exists".into(), path, Value::Null),
                1 => ("create".into(), path, json!({"data": a % 2})),
                2 => ("delete".into(), path, json!({"version": -1})),
                _ => (
                    "setData".into(),
                    path,
                    json!({"data": a % 2, "version": (a % 2) as i64 - 1}),
                ),
            }
        }
    }
}

/// The value an ok completion reports.
fn output(flavor: Flavor, f: &str, input: &Value, a: u8) -> (Value, Option<String>) {
    match (flavor, f) {
        (Flavor::Register, "read") => (small(a % 3), None),
        (Flavor::Kv, "get") => (
            json!(["", "a", "b", "ab", "ba", "aa"][(a % 6) as usize]),
            None,
        ),
        (Flavor::Zk, "exists") => (json!(a.is_multiple_of(2)), None),
        _ => (input.clone(), None),
    }
}

fn history(flavor: Flavor, script: &[Step]) -> History {
    let mut h = History::new();
    let mut busy: [Option<(String, Option<Value>, Value)>; 3] = [None, None, None];
    // The process id of each of the three threads: after an `info` the
    // thread goes on under a new id, as in Jepsen.
    let mut ids: [u64; 3] = [0, 1, 2];
    let mut next_id = 3;
    let mut started = 0;
    for (t, &(p, sel, a, b)) in script.iter().enumerate() {
        let p = (p % 3) as usize;
        match busy[p].take() {
            None if started < 8 => {
                let (f, key, value) = invoke(flavor, sel, a, b);
                h.invoke(ids[p], &f, key.clone(), value.clone(), t as u64, None);
                busy[p] = Some((f, key, value));
                started += 1;
            }
            None => {}
            Some((f, key, input)) => {
                let (kind, value, error) = match sel % 16 {
                    0..=9 => {
                        let (v, e) = output(flavor, &f, &input, a);
                        (EventType::Ok, v, e)
                    }
                    10..=12 if matches!(flavor, Flavor::Zk) => {
                        let code = if f == "exists" || f == "sync" {
                            "NoNode"
                        } else {
                            ["NoNode", "NodeExists", "BadVersion", "NotEmpty"][(a % 4) as usize]
                        };
                        (EventType::Fail, Value::Null, Some(code.to_string()))
                    }
                    10..=12 => (EventType::Fail, input.clone(), None),
                    _ => (EventType::Info, Value::Null, None),
                };
                h.complete(ids[p], kind, &f, key, value, t as u64, None, error);
                if kind == EventType::Info {
                    ids[p] = next_id;
                    next_id += 1;
                }
            }
        }
    }
    h
}

fn agree<M: Model>(mut make: impl FnMut() -> M, h: &History) -> Result<(), TestCaseError> {
    let ops = h.operations().expect("well-formed");
    let report = check_operations(&mut make(), &ops, &CheckOptions::default()).expect("encodes");
    let brute = brute_check(&mut make(), &ops).expect("encodes");
    let expected = if brute {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    };
    prop_assert_eq!(report.verdict, expected, "history:\n{}", h.to_jsonl());
    if let Some(ex) = report.explanation {
        prop_assert!(!ex.prefix.contains(&ex.blocked));
    }
    Ok(())
}

fn script() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0..3u8, 0..16u8, 0..6u8, 0..6u8), 0..20)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn cas_register_agrees_with_brute_force(s in script()) {
        agree(|| Register::cas(&Value::Null), &history(Flavor::Register, &s))?;
    }

    #[test]
    fn kv_agrees_with_brute_force(s in script()) {
        agree(Kv::new, &history(Flavor::Kv, &s))?;
    }

    #[test]
    fn zk_agrees_with_brute_force(s in script()) {
        agree(Zk::new, &history(Flavor::Zk, &s))?;
        agree(Zk::strict, &history(Flavor::Zk, &s))?;
    }
}

/// The generated histories are not all of one verdict (the property above
/// would be vacuous otherwise).
#[test]
fn generated_histories_cover_both_verdicts() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for flavor in [Flavor::Register, Flavor::Kv, Flavor::Zk] {
        let (mut yes, mut no) = (0, 0);
        for _ in 0..300 {
            let len = (next() % 20) as usize;
            let script: Vec<Step> = (0..len)
                .map(|_| {
                    let r = next();
                    (
                        (r % 3) as u8,
                        (r >> 8) as u8 % 16,
                        (r >> 16) as u8 % 6,
                        (r >> 24) as u8 % 6,
                    )
                })
                .collect();
            let ops = history(flavor, &script).operations().unwrap();
            let lin = match flavor {
                Flavor::Register => brute_check(&mut Register::cas(&Value::Null), &ops),
                Flavor::Kv => brute_check(&mut Kv::new(), &ops),
                Flavor::Zk => brute_check(&mut Zk::new(), &ops),
            }
            .unwrap();
            if lin {
                yes += 1
            } else {
                no += 1
            }
        }
        assert!(yes > 30 && no > 30, "linearizable {yes}, not {no}");
    }
}
