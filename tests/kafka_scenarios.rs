//! The Kafka scenarios over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a
//! small default range otherwise), and the planted Kafka bugs found by
//! their scenarios within 200 seeds as the anomaly each claims, at the
//! first seed README gives, while the faithful default shows none of it.

mod common;

#[test]
fn kafka_scenarios_pass() {
    let failures = common::failing_seeds("kafka-", 10, 0..4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finds `bug` as `kind` on its scenario, first at `first_seed` (the
/// figure README's table gives), then runs the faithful default on every
/// seed up to the find: none of them shows `kind`.
fn found_and_faithful_clean(bug: &str, kind: &str, first_seed: u64) {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::Scenario;
    let (seed, kinds) = common::find_bug_kind(bug, kind);
    eprintln!("{bug} found at seed {seed}: {kinds:?}");
    assert!(kinds.iter().any(|k| k == kind));
    assert_eq!(
        seed, first_seed,
        "README gives {first_seed} as {bug}'s first seed"
    );
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

/// One test per planted Kafka bug: its name, the anomaly it is found as,
/// and the first seed that finds it.
macro_rules! kafka_bug {
    ($name:ident, $bug:literal, $kind:literal, $first:literal) => {
        #[test]
        fn $name() {
            found_and_faithful_clean($bug, $kind, $first);
        }
    };
}

kafka_bug!(
    finds_kafka_truncate_to_hw_on_restart,
    "kafka_truncate_to_hw_on_restart",
    "inconsistent-offsets",
    0
);
kafka_bug!(
    finds_kafka_no_epoch_truncation,
    "kafka_no_epoch_truncation",
    "replica-divergence",
    0
);
kafka_bug!(
    finds_kafka_single_round_truncation,
    "kafka_single_round_truncation",
    "replica-divergence",
    0
);
kafka_bug!(
    finds_kafka_epoch_cache_not_truncated,
    "kafka_epoch_cache_not_truncated",
    "under-replicated",
    0
);
kafka_bug!(
    finds_kafka_no_fetch_epoch_fencing,
    "kafka_no_fetch_epoch_fencing",
    "replica-divergence",
    5
);
kafka_bug!(
    finds_kafka_unclean_election,
    "kafka_unclean_election",
    "inconsistent-offsets",
    0
);
kafka_bug!(
    finds_kafka_ignore_min_isr,
    "kafka_ignore_min_isr",
    "lost-write",
    0
);
kafka_bug!(
    finds_kafka_no_controller_epoch_fencing,
    "kafka_no_controller_epoch_fencing",
    "metadata-regression",
    0
);
kafka_bug!(
    finds_kafka_no_idempotent_dedup,
    "kafka_no_idempotent_dedup",
    "duplicate",
    0
);
kafka_bug!(
    finds_kafka_dedup_window_one,
    "kafka_dedup_window_one",
    "duplicate",
    0
);
kafka_bug!(
    finds_kafka_retry_reorders_inflight,
    "kafka_retry_reorders_inflight",
    "duplicate",
    0
);
