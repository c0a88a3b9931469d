//! The ZooKeeper scenarios over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a
//! small default range otherwise), and the planted ZooKeeper bugs found by
//! their scenarios within 200 seeds.

mod common;

use kzsim_sim::runner::{run_seed, RunOptions};
use kzsim_sim::scenario::{scenario_files, Scenario};

#[test]
fn zk_scenarios_pass() {
    let files = scenario_files(&common::path("scenarios")).unwrap();
    let zk: Vec<_> = files
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("zk-"))
        .collect();
    assert!(zk.len() >= 9, "the ZooKeeper scenarios are in scenarios/");
    let mut failures = Vec::new();
    for file in zk {
        let scenario = Scenario::load(file).unwrap();
        for seed in common::seeds(0..4) {
            let o = run_seed(&scenario, seed, &RunOptions::default());
            if !o.ok {
                failures.push(format!(
                    "{} seed {seed}: {:?}\n  replay: cargo run --release -- replay {} --seed {seed}",
                    o.scenario,
                    o.violations,
                    file.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `bug` on its scenario from seed 0 until a seed shows a violation.
fn find(bug: &str) -> (u64, Vec<String>) {
    let info = kzsim_model::bugs::find_bug(bug).expect("registered bug");
    let file = common::path(&format!("scenarios/{}.toml", info.scenario));
    let scenario = Scenario::load(&file).unwrap();
    let opts = RunOptions {
        bugs: vec![bug.to_string()],
        check_determinism: false,
    };
    for seed in 0..200 {
        let o = run_seed(&scenario, seed, &opts);
        if o.ok {
            return (seed, o.violations.into_iter().map(|v| v.kind).collect());
        }
    }
    panic!("{bug} not found by {} in 200 seeds", info.scenario);
}

macro_rules! bug_test {
    ($name:ident, $bug:literal) => {
        #[test]
        fn $name() {
            let (seed, kinds) = find($bug);
            eprintln!("{} found at seed {seed}: {kinds:?}", $bug);
            assert!(!kinds.is_empty());
        }
    };
}

bug_test!(finds_zk_ack_before_fsync, "zk_ack_before_fsync");
bug_test!(finds_zk_commit_without_quorum, "zk_commit_without_quorum");
bug_test!(finds_zk_epoch_not_persisted, "zk_epoch_not_persisted");
bug_test!(
    finds_zk_newleader_ack_before_persist,
    "zk_newleader_ack_before_persist"
);
bug_test!(finds_zk_vote_ignores_zxid, "zk_vote_ignores_zxid");
bug_test!(
    finds_zk_sync_not_through_leader,
    "zk_sync_not_through_leader"
);
bug_test!(finds_zk_expiry_on_follower, "zk_expiry_on_follower");
