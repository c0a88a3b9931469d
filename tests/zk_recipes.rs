//! The ZooKeeper recipe scenarios (leader election, configuration store,
//! naming service) over seeds (from `KZSIM_SEED` / `KZSIM_SEEDS`, a small
//! default range otherwise), and each recipe's check finding a planted bug
//! by its own anomaly.

mod common;

use kzsim_sim::runner::{run_seed, RunOptions};
use kzsim_sim::scenario::Scenario;

fn sweep(name: &str) {
    let file = common::path(&format!("scenarios/{name}.toml"));
    let scenario = Scenario::load(&file).unwrap();
    let mut failures = Vec::new();
    for seed in common::seeds(0..30) {
        let o = run_seed(&scenario, seed, &RunOptions::default());
        if !o.ok {
            failures.push(format!(
                "{name} seed {seed}: {:?}\n  replay: cargo run --release -- replay {} --seed {seed}",
                o.violations,
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first of seeds 0..`within` at which `name` with `bug` shows `kind`.
fn finds(name: &str, bug: &str, kind: &str, within: u64) {
    let file = common::path(&format!("scenarios/{name}.toml"));
    let scenario = Scenario::load(&file).unwrap();
    let opts = RunOptions {
        bugs: vec![bug.into()],
        check_determinism: false,
    };
    let found = (0..within).find(|&seed| {
        run_seed(&scenario, seed, &opts)
            .violations
            .iter()
            .any(|v| v.kind == kind)
    });
    let seed =
        found.unwrap_or_else(|| panic!("{name} finds {bug} as {kind} within {within} seeds"));
    eprintln!("{bug} found by {name} as {kind} at seed {seed}");
}

#[test]
fn zk_election_passes() {
    sweep("zk-election");
}

#[test]
fn zk_election_finds_two_leaders() {
    finds(
        "zk-election",
        "zk_expiry_on_follower",
        "election-two-leaders",
        10,
    );
    finds(
        "zk-election",
        "zk_vote_ignores_zxid",
        "election-two-leaders",
        60,
    );
}

/// A follower that expires a session on its own leaves the session's
/// candidate node behind on the others, lowest and owned by no live
/// candidate: nobody leads again.
#[test]
fn zk_election_finds_no_leader() {
    finds(
        "zk-election",
        "zk_expiry_on_follower",
        "election-no-leader",
        60,
    );
}

#[test]
fn zk_config_passes() {
    sweep("zk-config");
}

#[test]
fn zk_config_finds_lost_commits_as_config_order() {
    finds("zk-config", "zk_vote_ignores_zxid", "config-order", 30);
    finds("zk-config", "zk_commit_without_quorum", "config-order", 30);
}

#[test]
fn zk_naming_passes() {
    sweep("zk-naming");
}

#[test]
fn zk_naming_finds_stale_listings() {
    finds("zk-naming", "zk_expiry_on_follower", "naming-stale", 10);
}

/// Each recipe refuses the workload settings it does not read, and more
/// processes than client nodes (a session each).
#[test]
fn recipes_refuse_unread_settings_and_shared_sessions() {
    for name in ["zk-election", "zk-config", "zk-naming"] {
        let file = common::path(&format!("scenarios/{name}.toml"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (setting, needle) in [
            ("keys = 8", "workload.keys is not read"),
            ("read_fraction = 0.5", "workload.read_fraction is not read"),
            ("timeout_ms = 500", "workload.timeout_ms is not read"),
        ] {
            let t = text.replace("think_ms = 20.0", &format!("think_ms = 20.0\n{setting}"));
            let e = Scenario::parse(&t, &file).unwrap_err().to_string();
            assert!(e.contains(needle), "{name} with {setting}: {e}");
        }
        let t = text.replace("processes = ", "processes = 1");
        let e = Scenario::parse(&t, &file).unwrap_err().to_string();
        assert!(e.contains("needs a session per process"), "{name}: {e}");
    }
}
