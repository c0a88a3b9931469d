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

/// One test per planted Kafka bug: its name, the anomaly it is found as,
/// and the first seed that finds it.
macro_rules! kafka_bug {
    ($name:ident, $bug:literal, $kind:literal, $first:literal) => {
        #[test]
        fn $name() {
            common::found_and_faithful_clean($bug, $kind, $first);
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
    4
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
    finds_kafka_min_isr_checked_after_append,
    "kafka_min_isr_checked_after_append",
    "G1a",
    1
);
kafka_bug!(
    finds_kafka_retry_reorders_inflight,
    "kafka_retry_reorders_inflight",
    "duplicate",
    0
);

/// Recovery starts from the leader-epoch checkpoint: with it corrupted,
/// broker 0 fails its log directory and halts (in the seeds where the flip
/// lands in a snapshot; one in the length header reads as a torn snapshot,
/// an atomic replace that never landed, and recovery starts from the one
/// before it), and without the corruption it never does.
#[test]
fn a_corrupt_epoch_checkpoint_keeps_the_broker_from_starting() {
    let file = "scenarios/kafka-corrupt-checkpoint.toml";
    let text = std::fs::read_to_string(common::path(file)).unwrap();
    let clean_text = text.replace(
        "file = \"leader-epoch-checkpoint\"",
        "file = \"no-such-file\"",
    );
    assert_ne!(clean_text, text);
    let clean =
        std::env::temp_dir().join(format!("kzsim-no-corruption-{}.toml", std::process::id()));
    std::fs::write(&clean, clean_text).unwrap();
    let mut halted = 0;
    for seed in 0..10 {
        let s = seed.to_string();
        let out = common::kzsim(&["replay", file, "--seed", &s, "--level", "info"]);
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "seed {seed}:\n{log}");
        if log.contains("log dir failed: kafka/jepsen-0/leader-epoch-checkpoint: malformed")
            || log.contains("log dir failed: kafka/jepsen-1/leader-epoch-checkpoint: malformed")
        {
            halted += 1;
        }
        let out = common::kzsim(&[
            "replay",
            clean.to_str().unwrap(),
            "--seed",
            &s,
            "--level",
            "info",
        ]);
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "seed {seed} without corruption:\n{log}"
        );
        assert!(!log.contains("log dir failed"), "seed {seed}:\n{log}");
    }
    std::fs::remove_file(&clean).ok();
    assert!(halted >= 5, "broker 0 halted in only {halted} of 10 seeds");
}

/// A broker that has no state for an idempotent producer accepts its batch
/// at any sequence, as Kafka 2.5+ does (KIP-360). With the 2.4 broker's
/// UNKNOWN_PRODUCER_ID, a zombie leader's refusal made the producer bump
/// its epoch and send again a batch that the previous leader had already
/// replicated: a duplicate (kafka-controlled-shutdown, seed 8001972).
#[test]
fn an_unknown_producer_is_accepted_at_any_sequence() {
    let out = common::kzsim(&[
        "replay",
        "scenarios/kafka-controlled-shutdown.toml",
        "--seed",
        "8001972",
        "--level",
        "info",
    ]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("controlled shutdown moves jepsen-1's leadership to 5"));
}
