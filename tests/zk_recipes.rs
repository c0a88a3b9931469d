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

/// Client 0 (node 3) stops for 1.5 s, well past its 600 ms session, while
/// it leads: another candidate takes over during the pause, the paused one
/// learns on resuming that its session expired (its next request is
/// refused), and the run stays clean.
#[test]
fn a_leader_paused_past_its_session_is_deposed() {
    use kzsim_model::BugSet;
    use kzsim_sim::engine::Engine;
    use kzsim_sim::history::EventType;
    let text = "description = \"election, a leader paused\"\nduration_ms = 8000\n\
        [cluster]\nsystem = \"zk\"\nservers = 3\nclients = 3\n\
        [cluster.config]\nsession_timeout_ms = 600\nmin_session_timeout_ms = 200\n\
        [workload]\nkind = \"election\"\nprocesses = 3\nthink_ms = 20.0\n\
        [faults]\nquiet_ms = 3000\n\
        [[faults.at]]\nat_ms = 2000\nkind = \"pause-client\"\nnodes = [0]\nduration_ms = 1500\n";
    let scenario = Scenario::parse(text, std::path::Path::new("pause-leader.toml")).unwrap();
    let mut deposed = Vec::new();
    for seed in 0..10 {
        let mut engine = Engine::new(&scenario, seed, &BugSet::none()).unwrap();
        engine.run();
        let h = engine.history();
        let writes = |node: u32, from: u64, to: u64| {
            h.events.iter().any(|e| {
                e.node == Some(node)
                    && e.f == "lead-write"
                    && e.kind == EventType::Ok
                    && (from..to).contains(&e.time)
            })
        };
        // Node 3 led just before the pause; another led during it.
        if !writes(3, 1_800_000, 2_000_000) {
            continue;
        }
        assert!(
            writes(4, 2_000_000, 3_500_000) || writes(5, 2_000_000, 3_500_000),
            "seed {seed}: nobody took over from the paused leader"
        );
        let expired = h.events.iter().any(|e| {
            e.node == Some(3)
                && e.kind != EventType::Invoke
                && e.error.as_deref() == Some("SessionExpired")
                && (3_500_000..4_500_000).contains(&e.time)
        });
        assert!(
            expired,
            "seed {seed}: the paused leader hears of its expiry"
        );
        let o = run_seed(&scenario, seed, &RunOptions::default());
        assert!(o.ok, "seed {seed}: {:?}", o.violations);
        deposed.push(seed);
    }
    assert!(
        !deposed.is_empty(),
        "node 3 led at the pause in no seed of 0..10"
    );
    eprintln!("paused leader deposed in seeds {deposed:?}");
}
