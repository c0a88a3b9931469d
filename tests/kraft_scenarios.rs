//! KRaft mode over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a small
//! default range otherwise): the `kraft-*` scenarios, and every Kafka and
//! consumer-group scenario run in KRaft mode; and the planted Raft and
//! KRaft bugs found by their scenarios within 200 seeds as the anomaly each
//! claims, at the first seed README gives, while the faithful default shows
//! none of it.

mod common;

use kzsim_sim::runner::{run_seed, RunOptions};
use kzsim_sim::scenario::{scenario_files, Scenario};

#[test]
fn kraft_scenarios_pass() {
    let failures = common::failing_seeds("kraft-", 6, 0..4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every Kafka and consumer-group scenario that does not pin a mode runs
/// in KRaft mode too, and passes there.
#[test]
fn kafka_and_group_scenarios_pass_in_kraft_mode() {
    let files = scenario_files(&common::path("scenarios")).unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("kafka-") || name.starts_with("group-")) {
            continue;
        }
        let variants = Scenario::load(&f).unwrap().variants().unwrap();
        for s in variants.iter().filter(|s| s.name.ends_with("@kraft")) {
            ran += 1;
            for seed in common::seeds(0..2) {
                let o = run_seed(s, seed, &RunOptions::default());
                if !o.ok {
                    failures.push(format!(
                        "{} seed {seed}: {:?}\n  replay: cargo run --release -- replay {} --seed {seed} --mode kraft",
                        s.name,
                        o.violations,
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(ran >= 30, "{ran} scenarios ran in KRaft mode");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! kraft_bug {
    ($name:ident, $bug:literal, $kind:literal, $first:literal) => {
        #[test]
        fn $name() {
            common::found_and_faithful_clean($bug, $kind, $first);
        }
    };
}

kraft_bug!(
    finds_raft_vote_ignores_log,
    "raft_vote_ignores_log",
    "raft-committed-lost",
    4
);
kraft_bug!(
    finds_raft_votedfor_not_persisted,
    "raft_votedfor_not_persisted",
    "raft-two-leaders",
    5
);
kraft_bug!(
    finds_raft_hw_counts_unflushed,
    "raft_hw_counts_unflushed",
    "raft-hw-without-majority",
    0
);
kraft_bug!(
    finds_raft_no_diverging_epoch,
    "raft_no_diverging_epoch",
    "raft-divergence",
    0
);
kraft_bug!(
    finds_kraft_no_broker_fencing,
    "kraft_no_broker_fencing",
    "lost-write",
    1
);
kraft_bug!(
    finds_kraft_stale_metadata_leader,
    "kraft_stale_metadata_leader",
    "metadata-divergence",
    0
);

/// `run` names the KRaft rows `NAME@kraft` and prints replay commands with
/// `--mode kraft`; `replay --mode kraft` reproduces the row's trace; a
/// replay cannot run both modes, and a pinned mode cannot be overridden.
#[test]
fn mode_matrix_on_the_command_line() {
    let v = |out: &std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| v.get("summary").is_none())
            .collect()
    };
    let file = "scenarios/kafka-leader-crash.toml";
    let both = common::kzsim(&["run", file, "--seed", "1", "--json"]);
    let rows = v(&both);
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kafka-leader-crash", "kafka-leader-crash@kraft"]);
    let kraft_hash = rows[1]["trace_hash"].as_str().unwrap().to_string();
    let only = common::kzsim(&["run", file, "--seed", "1", "--json", "--mode", "kraft"]);
    assert_eq!(v(&only).len(), 1);
    let replay = common::kzsim(&[
        "replay", file, "--seed", "1", "--mode", "kraft", "--level", "info",
    ]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(
        text.contains(&kraft_hash),
        "replay ends with the row's hash"
    );
    assert!(
        text.contains("raft: leader of epoch"),
        "it ran in KRaft mode"
    );
    let bad = common::kzsim(&["replay", file, "--seed", "1", "--mode", "both"]);
    assert_ne!(bad.status.code(), Some(0));
    let pinned = common::kzsim(&[
        "replay",
        "scenarios/kraft-broker-fenced.toml",
        "--seed",
        "1",
        "--mode",
        "zookeeper",
    ]);
    assert_ne!(pinned.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&pinned.stderr).contains("pins cluster.config.mode"));
}
