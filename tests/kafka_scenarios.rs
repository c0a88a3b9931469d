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
