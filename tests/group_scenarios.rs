//! The consumer-group scenarios over seeds (from `KZSIM_SEED` /
//! `KZSIM_SEEDS`, a small default range otherwise), and the planted group
//! bugs, each found by its scenario within 200 seeds as the anomaly its
//! description names.

mod common;

#[test]
fn group_scenarios_pass() {
    let failures = common::failing_seeds("group-", 9, 0..3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

bug_kind_test!(
    finds_group_commit_ignores_generation,
    "group_commit_ignores_generation",
    "zombie-commit"
);
bug_kind_test!(
    finds_group_offsets_not_replicated,
    "group_offsets_not_replicated",
    "offset-regression"
);
bug_kind_test!(
    finds_group_no_revoke_commit,
    "group_no_revoke_commit",
    "duplicate-beyond-window"
);
bug_kind_test!(
    finds_group_poll_timeout_ignored,
    "group_poll_timeout_ignored",
    "group-not-recovered"
);
bug_kind_test!(
    finds_group_cooperative_no_two_phase,
    "group_cooperative_no_two_phase",
    "group-split-brain"
);
bug_kind_test!(
    finds_zk_consumer_owner_race,
    "zk_consumer_owner_race",
    "group-split-brain"
);
