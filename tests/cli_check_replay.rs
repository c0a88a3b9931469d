//! Every history `kzsim replay --history` writes is readable by `kzsim
//! check` with the workload's model, and gets the sweep's verdict; for
//! ZooKeeper, `check --model zk` blames the operation the sweep blames.

mod common;

use std::path::{Path, PathBuf};

fn history_path(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kzsim-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Replays `scenario` at `seed` with `bugs`, writing the history; returns
/// the history file, whether the run was ok (with a planted bug: whether
/// it was found), and the replay's output.
fn replay(scenario: &str, seed: u64, bugs: &[&str]) -> (PathBuf, bool, String) {
    let h = history_path(&format!("{scenario}-{seed}.jsonl"));
    let file = format!("scenarios/{scenario}.toml");
    let seed_s = seed.to_string();
    let mut args = vec![
        "replay",
        file.as_str(),
        "--seed",
        seed_s.as_str(),
        "--level",
        "info",
        "--history",
        h.to_str().unwrap(),
    ];
    for b in bugs {
        args.extend(["--bug", b]);
    }
    let out = common::kzsim(&args);
    let t = text(&out);
    let ok = match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("replay {scenario} seed {seed} exited {other:?}: {t}"),
    };
    (h, ok, t)
}

/// `kzsim check --model <model> --json <file>`: exit code and the JSON.
fn check(model: &str, file: &Path) -> (i32, serde_json::Value, String) {
    let out = common::kzsim(&["check", "--model", model, "--json", file.to_str().unwrap()]);
    let t = text(&out);
    let v: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("null"),
    )
    .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, t)
}

/// A passing seed of `scenario` (its workload named in the test) checks
/// clean with `model`.
fn clean(scenario: &str, seed: u64, model: &str) {
    let (h, ok, t) = replay(scenario, seed, &[]);
    assert!(ok, "{scenario} seed {seed} passes the sweep: {t}");
    let (code, v, t) = check(model, &h);
    assert_eq!(
        code, 0,
        "check --model {model} of {scenario} seed {seed}: {t}"
    );
    let ops = v["ops"].as_u64().unwrap_or(0);
    assert!(ops > 100, "{scenario}: only {ops} operations judged: {t}");
}

#[test]
fn cas_register_workload_history_checks_with_zk() {
    clean("zk-leader-crash", 1, "zk");
}

#[test]
fn counter_workload_history_checks_with_zk() {
    clean("zk-counter", 1, "zk");
}

#[test]
fn lock_workload_history_checks_with_zk_lock() {
    clean("zk-lock", 1, "zk-lock");
}

#[test]
fn recipe_workload_histories_check_with_their_models() {
    clean("zk-election", 1, "zk-election");
    clean("zk-config", 1, "zk-config");
    clean("zk-naming", 1, "zk-naming");
}

/// A planted bug a recipe scenario finds by its own anomaly is found by
/// `check --model zk-<recipe>` in the replayed history too.
#[test]
fn recipe_anomalies_found_by_the_sweep_are_found_by_check() {
    for (scenario, bug, seed, model, kind) in [
        (
            "zk-election",
            "zk_expiry_on_follower",
            0,
            "zk-election",
            "election-two-leaders",
        ),
        (
            "zk-config",
            "zk_commit_without_quorum",
            13,
            "zk-config",
            "config-order",
        ),
        (
            "zk-naming",
            "zk_expiry_on_follower",
            0,
            "zk-naming",
            "naming-stale",
        ),
    ] {
        // (Replay's verdict is about the bug's own anomaly, not this one.)
        let (h, _, t) = replay(scenario, seed, &[bug]);
        assert!(
            t.contains(&format!("violation {kind}")),
            "{scenario} seed {seed} with {bug}: {t}"
        );
        let (code, _, t) = check(model, &h);
        assert_eq!(code, 1, "{scenario}: {t}");
        assert!(t.contains(kind), "{scenario}: {t}");
    }
}

#[test]
fn queue_workload_history_checks_with_kafka() {
    clean("kafka-leader-crash", 1, "kafka");
}

#[test]
fn group_workload_history_checks_with_kafka() {
    clean("group-member-crash", 1, "kafka");
}

#[test]
fn zk_bug_found_by_the_sweep_is_found_by_check_with_the_same_blamed_op() {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::Scenario;
    let (scenario, bug, seed) = ("zk-lagging-followers", "zk_sync_not_through_leader", 2);
    let s = Scenario::load(&common::path(&format!("scenarios/{scenario}.toml"))).unwrap();
    let o = run_seed(
        &s,
        seed,
        &RunOptions {
            bugs: vec![bug.to_string()],
            check_determinism: false,
        },
    );
    let v = o
        .violations
        .iter()
        .find(|v| v.kind == "nonlinearizable")
        .unwrap_or_else(|| panic!("{scenario} seed {seed} with {bug}: {:?}", o.violations));
    // The sweep's first event is the blamed operation's invocation.
    let blamed_event = v.events[0];
    let (h, found, t) = replay(scenario, seed, &[bug]);
    // Under a planted bug, replay's `ok` means the bug was found.
    assert!(found, "{t}");
    assert!(t.contains("violation nonlinearizable"), "{t}");
    let (code, j, t) = check("zk", &h);
    assert_eq!(code, 1, "{t}");
    assert_eq!(j["verdict"], "not_linearizable", "{t}");
    // JSON lines: event i is line i + 1.
    assert_eq!(
        j["explanation"]["blocked_line"].as_u64(),
        Some(blamed_event as u64 + 1),
        "{t}\nsweep: {}",
        v.detail
    );
    // And the same words: the sweep's explanation is check's.
    let blocked = j["explanation"]["text"]
        .as_str()
        .and_then(|s| s.lines().find(|l| l.contains("cannot be placed after it")))
        .unwrap()
        .to_string();
    assert!(
        v.detail.contains(&blocked),
        "{blocked}\nsweep: {}",
        v.detail
    );
}
