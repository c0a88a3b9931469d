//! A hard ZooKeeper history from a real run: 172 operations on one znode,
//! 26 of them of unknown outcome (creates, deletes and writes that ended
//! `ConnectionLoss` while no quorum served), pending to the end of the
//! history. Before the quick search and the child-version normalisation
//! the checker spent minutes on it; it is now found linearizable in a few
//! thousand steps.

use kzsim_sim::check::{check_text, CheckOptions, Format, ModelKind, Verdict};
use serde_json::Value;

const HISTORY: &str = include_str!("data/zk-crashed-writes.jsonl");

fn verdict(text: &str, max_steps: u64) -> Verdict {
    let opts = CheckOptions {
        max_steps: Some(max_steps),
        ..CheckOptions::default()
    };
    let (_, _, report) = check_text(ModelKind::Zk, &Value::Null, Format::Jsonl, text, &opts)
        .expect("the history parses");
    report.verdict
}

/// The history with the `getData` that completed at `time_ms` reading
/// `value` instead.
fn with_read(time_ms: u64, value: &str) -> String {
    let mut changed = 0;
    let out: Vec<String> = HISTORY
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).unwrap();
            let hit = e["type"] == "ok"
                && e["f"] == "getData"
                && e["time"].as_u64().unwrap() / 1000 == time_ms;
            if hit {
                changed += 1;
                e["value"] = serde_json::from_str(value).unwrap();
            }
            e.to_string()
        })
        .collect();
    assert_eq!(changed, 1, "one read completes at {time_ms} ms");
    out.join("\n")
}

#[test]
fn crashed_writes_history_is_linearizable_in_few_steps() {
    assert_eq!(verdict(HISTORY, 200_000), Verdict::Linearizable);
}

/// A violation before the crashed writes is found at once.
#[test]
fn a_read_of_a_version_never_written_is_caught_in_few_steps() {
    // Process 8 reads, at 1.84 s, the right data at a version one too high.
    let bad = with_read(1838, r#"{"data":"25.131","version":3}"#);
    assert_eq!(verdict(&bad, 200_000), Verdict::NotLinearizable);
}

/// A violation right after 26 crashed writes: proving that no subset of
/// them, placed anywhere, explains the read takes the full search tens of
/// seconds (the incomparable subsets that reach the same state are not
/// covered by one another). Run with `--ignored`.
#[test]
#[ignore]
fn a_read_of_data_never_written_after_the_crashed_writes_is_caught() {
    // Process 199 reads, at 6.46 s, a value nobody wrote.
    let bad = with_read(6460, r#"{"data":"173.999","version":0}"#);
    assert_eq!(verdict(&bad, 2_000_000_000), Verdict::NotLinearizable);
}
