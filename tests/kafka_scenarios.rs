//! The Kafka scenarios over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a
//! small default range otherwise), and the planted Kafka bugs found by
//! their scenarios within 200 seeds.

mod common;

#[test]
fn kafka_scenarios_pass() {
    let failures = common::failing_seeds("kafka-", 10, 0..4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

bug_kind_test!(
    finds_kafka_truncate_to_hw_on_restart,
    "kafka_truncate_to_hw_on_restart",
    "lost-write"
);
bug_kind_test!(
    finds_kafka_no_epoch_truncation,
    "kafka_no_epoch_truncation",
    "replica-divergence"
);
bug_kind_test!(
    finds_kafka_unclean_election,
    "kafka_unclean_election",
    "inconsistent-offsets"
);
bug_kind_test!(
    finds_kafka_ignore_min_isr,
    "kafka_ignore_min_isr",
    "lost-write"
);
bug_kind_test!(
    finds_kafka_no_idempotent_dedup,
    "kafka_no_idempotent_dedup",
    "duplicate"
);
bug_kind_test!(
    finds_kafka_no_fetch_epoch_fencing,
    "kafka_no_fetch_epoch_fencing",
    "replica-divergence"
);
bug_kind_test!(
    finds_kafka_no_controller_epoch_fencing,
    "kafka_no_controller_epoch_fencing",
    "metadata-regression"
);

/// Finds `bug` as `kind` on its scenario, then runs the faithful default
/// on every seed up to the find: none of them shows `kind`.
fn found_and_faithful_clean(bug: &str, kind: &str) {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::Scenario;
    let (seed, kinds) = common::find_bug_kind(bug, kind);
    eprintln!("{bug} found at seed {seed}: {kinds:?}");
    assert!(kinds.iter().any(|k| k == kind));
    let info = kzsim_model::bugs::find_bug(bug).unwrap();
    let file = common::path(&format!("scenarios/{}.toml", info.scenario));
    let scenario = Scenario::load(&file).unwrap();
    for s in 0..=seed {
        let o = run_seed(&scenario, s, &RunOptions::default());
        assert!(
            !o.violations.iter().any(|v| v.kind == kind),
            "the faithful default shows {kind} at seed {s}: {:?}",
            o.violations
        );
    }
}

#[test]
fn finds_kafka_dedup_window_one() {
    found_and_faithful_clean("kafka_dedup_window_one", "duplicate");
}

#[test]
fn finds_kafka_retry_reorders_inflight() {
    found_and_faithful_clean("kafka_retry_reorders_inflight", "duplicate");
}
