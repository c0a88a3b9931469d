//! The ZooKeeper scenarios over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a
//! small default range otherwise), and the planted ZooKeeper bugs found by
//! their scenarios within 200 seeds.

mod common;

#[test]
fn zk_scenarios_pass() {
    let failures = common::failing_seeds("zk-", 13, 0..4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Fresh seeds that left a server out after the quiet period, as real
/// ZooKeeper leaves it out: it had accepted an epoch from a leader that
/// never established it, and a later leader established a lower epoch
/// without it, which its Learner refuses until the next election. The
/// servers' log says so; the seeds pass, and every other server serves.
#[test]
fn a_server_with_a_higher_accepted_epoch_waits_for_the_next_election() {
    for (scenario, seed) in [("zk-power-loss", "7003547"), ("zk-partitions", "7001083")] {
        let file = format!("scenarios/{scenario}.toml");
        let out = common::kzsim(&["replay", &file, "--seed", seed, "--level", "info"]);
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{scenario} {seed}:\n{log}");
        assert!(
            log.contains("is less than accepted epoch"),
            "{scenario} {seed} no longer reaches the state it tests"
        );
    }
}

bug_kind_test!(
    finds_zk_ack_before_fsync,
    "zk_ack_before_fsync",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_commit_without_quorum,
    "zk_commit_without_quorum",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_epoch_not_persisted,
    "zk_epoch_not_persisted",
    "divergent-trees"
);
bug_kind_test!(
    finds_zk_newleader_ack_before_persist,
    "zk_newleader_ack_before_persist",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_epoch_before_txns,
    "zk_epoch_before_txns",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_vote_ignores_zxid,
    "zk_vote_ignores_zxid",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_sync_not_through_leader,
    "zk_sync_not_through_leader",
    "nonlinearizable"
);
bug_kind_test!(
    finds_zk_expiry_on_follower,
    "zk_expiry_on_follower",
    "divergent-trees"
);
bug_kind_test!(
    finds_zk_snap_zxid_at_end,
    "zk_snap_zxid_at_end",
    "divergent-trees"
);
bug_kind_test!(
    finds_zk_trunc_keeps_snapshot,
    "zk_trunc_keeps_snapshot",
    "divergent-trees"
);
bug_kind_test!(
    finds_zk_watch_after_reply,
    "zk_watch_after_reply",
    "watch-order"
);
