//! `run --explore`: the coverage-guided search is deterministic (the same
//! search seed gives the same runs and finds), reports the fault-after-
//! event combinations it reached, and writes every failing run it made
//! with an explicit schedule as a scenario file that `replay` brings back.

mod common;

use common::kzsim;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_search_is_deterministic_and_its_finds_replay() {
    let args = [
        "run",
        "scenarios/zk-leader-crash.toml",
        "--explore",
        "160",
        "--seed",
        "0",
        "--jobs",
        "2",
        "--bug",
        "zk_commit_without_quorum",
    ];
    let a = kzsim(&args);
    let b = kzsim(&args);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(stdout(&a), stdout(&b), "same search seed, same search");
    let one_thread = kzsim(&[&args[..7], &["1"], &args[8..]].concat());
    assert_eq!(
        stdout(&a),
        stdout(&one_thread),
        "threads do not change the search"
    );
    let text = stdout(&a);
    let head = text.lines().next().unwrap();
    assert!(
        head.starts_with("explore zk-leader-crash: 160 runs"),
        "{head}"
    );
    assert!(text.contains("fault crash after zk-proposal-logged on its subject"));
    // A find from a mutated schedule replays from its written file.
    let replay = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("replay: cargo run --release -- "))
        .find(|l| l.contains("target/kzsim-explore/"))
        .expect("a find with an explicit schedule");
    let words: Vec<&str> = replay.split_whitespace().collect();
    let again = kzsim(&[&words[..], &["--level", "info"]].concat());
    let out = stdout(&again);
    assert!(
        out.contains("FOUND (bug zk_commit_without_quorum shows as nonlinearizable)"),
        "{out}"
    );
    // Another search seed searches otherwise.
    let other = kzsim(&[&args[..5], &["1"], &args[6..]].concat());
    assert_ne!(stdout(&other), text);
}

#[test]
fn explore_refuses_a_zero_budget() {
    let o = kzsim(&["run", "scenarios/zk-leader-crash.toml", "--explore", "0"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--explore 0"));
}
