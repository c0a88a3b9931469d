//! The ZooKeeper scenarios over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a
//! small default range otherwise), and the planted ZooKeeper bugs found by
//! their scenarios within 200 seeds.

mod common;

#[test]
fn zk_scenarios_pass() {
    let failures = common::failing_seeds("zk-", 13, 0..4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
