//! The command line's bug searches, JSON output and output paths: `--bug`
//! reads the same in the summary, the exit code, `--json` and `replay`;
//! JSON lines come in sweep order and end with a summary; output paths are
//! checked before anything runs.

mod common;

use common::kzsim;

const POWER_LOSS: &str = "tests/scenarios/demo-power-loss.toml";
const BUG: &str = "demo_ack_before_fsync";

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The per-seed JSON lines and the closing summary of a `--json` run.
fn json_run(args: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value, Option<i32>) {
    let o = kzsim(args);
    let mut lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    (lines, summary["summary"].clone(), o.status.code())
}

#[test]
fn a_bug_search_counts_finds_and_misses_not_failures() {
    let (seeds, summary, code) = json_run(&[
        "run", POWER_LOSS, "--seeds", "0..20", "--bug", BUG, "--json",
    ]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(seeds.len(), 20);
    let verdicts: Vec<&str> = seeds
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert!(verdicts.contains(&"found"), "{verdicts:?}");
    assert!(verdicts.contains(&"not-found"), "{verdicts:?}");
    assert!(!verdicts.contains(&"fail"), "{verdicts:?}");
    // Neither a find nor a miss is a failure.
    assert!(seeds.iter().all(|s| s["ok"] == true));
    for s in &seeds {
        let lost = s["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["kind"] == "lost-write");
        assert_eq!(s["verdict"] == "found", lost, "{s}");
    }
    assert_eq!(summary["fail"], 0);
    assert_eq!(
        summary["found"].as_u64().unwrap() + summary["not_found"].as_u64().unwrap(),
        20
    );
}

#[test]
fn a_bug_search_that_finds_nothing_exits_one_without_a_failure() {
    // demo-faults loses no power, so the fsync bug cannot show.
    let o = kzsim(&[
        "run",
        "tests/scenarios/demo-faults.toml",
        "--seeds",
        "0..3",
        "--bug",
        BUG,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("bug demo_ack_before_fsync not found by") && out.contains("as lost-write"),
        "{out}"
    );
    assert!(out.contains("0 found, 3 not found, 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn stop_on_fail_with_a_bug_stops_at_the_first_find_of_an_endless_range() {
    // The range is never listed: the sweep streams it and stops at a find.
    let o = kzsim(&[
        "run",
        POWER_LOSS,
        "--seeds",
        "0..18446744073709551615",
        "--bug",
        BUG,
        "--stop-on-fail",
        "--jobs",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("FOUND bug demo_ack_before_fsync"), "{out}");
    assert!(out.contains("1 found,"), "{out}");
}

#[test]
fn a_bug_of_another_system_is_a_usage_error() {
    let o = kzsim(&[
        "run",
        POWER_LOSS,
        "--seed",
        "1",
        "--bug",
        "kafka_unclean_election",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("a kafka bug") && e.contains("Demo"), "{e}");
    let o = kzsim(&[
        "replay",
        POWER_LOSS,
        "--seed",
        "1",
        "--bug",
        "zk_ack_before_fsync",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn replay_ends_with_the_violation_and_agrees_with_the_sweep() {
    let (seeds, _, _) = json_run(&[
        "run", POWER_LOSS, "--seeds", "0..20", "--bug", BUG, "--json",
    ]);
    let find = seeds.iter().find(|s| s["verdict"] == "found").unwrap();
    let miss = seeds.iter().find(|s| s["verdict"] == "not-found").unwrap();
    let seed = find["seed"].to_string();
    let o = kzsim(&[
        "replay", POWER_LOSS, "--seed", &seed, "--bug", BUG, "--level", "info",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("violation "), "{last}");
    assert!(
        out.contains(&format!(
            "seed {seed}: FOUND (bug {BUG} shows as lost-write)"
        )),
        "{out}"
    );
    assert!(!out.contains(": ok"), "{out}");
    let seed = miss["seed"].to_string();
    let o = kzsim(&[
        "replay", POWER_LOSS, "--seed", &seed, "--bug", BUG, "--level", "info",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not found (bug"), "{}", stdout(&o));
}

#[test]
fn json_lines_come_in_sweep_order_whatever_the_workers() {
    let args = |jobs: &'static str| {
        [
            "run",
            "tests/scenarios",
            "--seeds",
            "0..6",
            "--json",
            "--jobs",
            jobs,
        ]
    };
    let (one, s1, _) = json_run(&args("1"));
    let (two, s2, _) = json_run(&args("2"));
    let key = |v: &serde_json::Value| (v["file"].to_string(), v["seed"].as_u64().unwrap());
    let order: Vec<_> = two.iter().map(key).collect();
    assert_eq!(order, one.iter().map(key).collect::<Vec<_>>());
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let hashes = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter().map(|o| o["trace_hash"].to_string()).collect()
    };
    assert_eq!(hashes(&one), hashes(&two));
    assert_eq!(s1["seeds"], one.len());
    assert_eq!(s1["pass"], s2["pass"]);
    assert!(s1["scenarios"].as_array().unwrap().len() >= 2);
}

#[test]
fn output_paths_are_checked_before_the_run() {
    let blocker = std::env::temp_dir().join(format!("kzsim-blocker-{}", std::process::id()));
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let report = blocker.join("report");
    let o = kzsim(&[
        "run",
        POWER_LOSS,
        "--seeds",
        "0..2",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--report"), "{}", stderr(&o));
    // Nothing ran: no summary.
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let history = blocker.join("h.jsonl");
    let o = kzsim(&[
        "replay",
        POWER_LOSS,
        "--seed",
        "1",
        "--history",
        history.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--history"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    std::fs::remove_file(&blocker).unwrap();
}

#[test]
fn replay_commands_name_repo_relative_paths_from_anywhere() {
    // Run from another directory with an absolute scenario path: the
    // replay command still names the file relative to the repository.
    let abs = common::path("tests/scenarios/demo-power-loss.toml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kzsim"))
        .current_dir(std::env::temp_dir())
        .args([
            "run",
            abs.to_str().unwrap(),
            "--seeds",
            "0..5",
            "--bug",
            BUG,
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("replay tests/scenarios/demo-power-loss.toml --seed"),
        "{out}"
    );
    assert!(out.contains("(replay commands run from "), "{out}");
}
