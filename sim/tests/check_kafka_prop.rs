//! The Kafka checker on random single-partition histories generated from a
//! correct log: never an anomaly; and a planted mutation (an acknowledged
//! value dropped from every poll, a value duplicated, a poll reordered) is
//! always detected.

use kzsim_sim::check::kafka::{self, AnomalyKind, KafkaReport};
use kzsim_sim::check::Format;
use proptest::prelude::*;
use serde_json::{json, Value};

/// One consumer step: a poll's `(offset, value)` pairs, or (`None`) an
/// assign that drops the key then takes it back.
type Poll = (u64, Option<Vec<(i64, i64)>>);

/// A generated history: the log, the sends, and the polls of consumers.
#[derive(Clone, Debug)]
struct Script {
    /// `(offset, value)` in log order.
    log: Vec<(i64, i64)>,
    /// Per log entry: the sending process, and whether the send was ok
    /// (else info, without an offset).
    sends: Vec<(u64, bool)>,
    /// `(process, pairs read)` in history order; a `None` entry is an
    /// assign that drops the key then takes it back (tracking reset).
    polls: Vec<Poll>,
}

fn script() -> impl Strategy<Value = Script> {
    (
        prop::collection::vec((1i64..4, 0u64..3, prop::bool::weighted(0.8)), 2..25),
        prop::collection::vec((0u64..3, 0usize..6, prop::bool::weighted(0.1)), 0..25),
        0usize..1000,
    )
        .prop_map(|(entries, steps, restart_seed)| {
            let mut log = Vec::new();
            let mut sends = Vec::new();
            let mut offset = -1;
            for (i, &(gap, p, ok)) in entries.iter().enumerate() {
                offset += gap;
                log.push((offset, 100 + i as i64));
                // The first send is acknowledged, so a mutation has a target.
                sends.push((p, ok || i == 0));
            }
            // Consumers 10.. read successive chunks of the log.
            let mut pos = [0usize; 3];
            let mut polls = Vec::new();
            for (n, &(c, len, restart)) in steps.iter().enumerate() {
                let c = c as usize;
                if restart {
                    polls.push((10 + c as u64, None));
                    pos[c] = (restart_seed + n) % log.len();
                    continue;
                }
                let end = (pos[c] + len).min(log.len());
                polls.push((10 + c as u64, Some(log[pos[c]..end].to_vec())));
                pos[c] = end;
            }
            // A last consumer reads everything, so nothing is unseen.
            polls.push((20, Some(log.clone())));
            Script { log, sends, polls }
        })
}

fn jsonl(s: &Script) -> String {
    let mut out = String::new();
    let mut ev = |v: Value| out.push_str(&format!("{v}\n"));
    // After an `info` a process has crashed: its thread goes on under a
    // new id, as in Jepsen.
    let mut ids: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut next_id = 1_000_000u64;
    for (&(o, v), &(thread, ok)) in s.log.iter().zip(&s.sends) {
        let p = *ids.entry(thread).or_insert(thread);
        ev(json!({"process": p, "type": "invoke", "f": "send", "value": ["k", v]}));
        if ok {
            ev(json!({"process": p, "type": "ok", "f": "send", "value": ["k", [o, v]]}));
        } else {
            ev(json!({"process": p, "type": "info", "f": "send", "value": ["k", v]}));
            ids.insert(thread, next_id);
            next_id += 1;
        }
    }
    for (thread, poll) in &s.polls {
        let p = ids.get(thread).unwrap_or(thread);
        match poll {
            None => {
                for keys in [json!([]), json!(["k"])] {
                    ev(json!({"process": p, "type": "invoke", "f": "assign", "value": keys}));
                    ev(json!({"process": p, "type": "ok", "f": "assign", "value": keys}));
                }
            }
            Some(pairs) => {
                let pairs: Vec<Value> = pairs.iter().map(|&(o, v)| json!([o, v])).collect();
                ev(json!({"process": p, "type": "invoke", "f": "poll"}));
                ev(json!({"process": p, "type": "ok", "f": "poll", "value": {"k": pairs}}));
            }
        }
    }
    out
}

fn check(s: &Script) -> KafkaReport {
    kafka::check_text(Format::Jsonl, &jsonl(s)).unwrap().1
}

fn has(r: &KafkaReport, kind: AnomalyKind) -> bool {
    r.of(kind).next().is_some()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn correct_histories_have_no_anomaly(s in script()) {
        let r = check(&s);
        prop_assert!(r.is_valid(), "{:?}\n{}", r.anomalies, jsonl(&s));
    }

    #[test]
    fn a_dropped_acked_value_is_lost(s in script(), pick in 0usize..1000) {
        // An acknowledged value below the last offset.
        let acked: Vec<usize> = (0..s.log.len() - 1).filter(|&i| s.sends[i].1).collect();
        let victim = s.log[acked[pick % acked.len()]].1;
        let mut m = s.clone();
        for (_, poll) in &mut m.polls {
            if let Some(pairs) = poll {
                pairs.retain(|&(_, v)| v != victim);
            }
        }
        let r = check(&m);
        prop_assert!(
            r.of(AnomalyKind::LostWrite).any(|a| a.values == vec![victim]),
            "{:?}", r.anomalies
        );
    }

    #[test]
    fn a_duplicated_value_is_found(s in script(), pick in 0usize..1000) {
        let mut m = s.clone();
        let (last, _) = *s.log.last().unwrap();
        let (_, v) = s.log[pick % s.log.len()];
        if let Some((_, Some(pairs))) = m.polls.last_mut() {
            pairs.push((last + 1, v));
        }
        let r = check(&m);
        prop_assert!(has(&r, AnomalyKind::Duplicate), "{:?}", r.anomalies);
    }

    #[test]
    fn a_reordered_poll_is_found(s in script(), pick in 0usize..1000, at in 0usize..1000) {
        let mut m = s.clone();
        let candidates: Vec<usize> = (0..m.polls.len())
            .filter(|&i| matches!(&m.polls[i].1, Some(p) if p.len() >= 2))
            .collect();
        let i = candidates[pick % candidates.len()];
        if let Some(pairs) = &mut m.polls[i].1 {
            let j = at % (pairs.len() - 1);
            pairs.swap(j, j + 1);
        }
        let r = check(&m);
        prop_assert!(has(&r, AnomalyKind::NonmonotonicPoll), "{:?}", r.anomalies);
    }
}
