//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under the repository root.
pub fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

/// Runs the `kzsim` binary from the repository root.
pub fn kzsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kzsim"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("kzsim runs")
}

/// The seeds a scenario test runs: `KZSIM_SEED=N` for one, `KZSIM_SEEDS=A..B`
/// for a range, `default` otherwise. A malformed or empty value fails the
/// test: a test over no seed would pass while checking nothing.
pub fn seeds(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    let one = std::env::var("KZSIM_SEED").ok();
    let range = std::env::var("KZSIM_SEEDS").ok();
    parse_seed_env(one.as_deref(), range.as_deref(), default).unwrap_or_else(|e| panic!("{e}"))
}

/// The seed range that `KZSIM_SEED` (`one`) or `KZSIM_SEEDS` (`range`)
/// asks for, `default` when neither is set.
pub fn parse_seed_env(
    one: Option<&str>,
    range: Option<&str>,
    default: std::ops::Range<u64>,
) -> Result<std::ops::Range<u64>, String> {
    if let Some(s) = one {
        let n: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("KZSIM_SEED `{s}` is not a seed (an integer)"))?;
        let end = n.checked_add(1).ok_or(format!(
            "KZSIM_SEED `{s}`: seeds run from 0 to {}",
            u64::MAX - 1
        ))?;
        return Ok(n..end);
    }
    if let Some(s) = range {
        let (a, b) = s
            .split_once("..")
            .ok_or(format!("KZSIM_SEEDS `{s}` must be A..B"))?;
        let bound = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("KZSIM_SEEDS `{s}`: `{x}` is not a seed"))
        };
        let r = bound(a)?..bound(b)?;
        if r.is_empty() {
            return Err(format!(
                "KZSIM_SEEDS `{s}` is an empty range: the test would check nothing"
            ));
        }
        return Ok(r);
    }
    Ok(default)
}

/// Runs every scenario file in `scenarios/` whose name starts with
/// `prefix` (at least `min` of them) over `seeds(default)`; returns each
/// failing seed with its replay command.
pub fn failing_seeds(prefix: &str, min: usize, default: std::ops::Range<u64>) -> Vec<String> {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::{scenario_files, Scenario};
    let files = scenario_files(&path("scenarios")).unwrap();
    let chosen: Vec<_> = files
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert!(
        chosen.len() >= min,
        "the {prefix}* scenarios are in scenarios/"
    );
    let mut failures = Vec::new();
    for file in chosen {
        let scenario = Scenario::load(file).unwrap();
        for seed in seeds(default.clone()) {
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
    failures
}

/// Runs planted bug `bug` on the scenario it names, from seed 0, until a
/// seed's outcome satisfies `found`; returns that seed and the anomalies
/// shown. Panics, naming `what`, when 200 seeds do not.
fn search_bug(
    bug: &str,
    what: &str,
    found: impl Fn(&kzsim_sim::runner::RunOutcome) -> bool,
) -> (u64, Vec<String>) {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::Scenario;
    let info = kzsim_model::bugs::find_bug(bug).expect("registered bug");
    let file = path(&format!("scenarios/{}.toml", info.scenario));
    let scenario = Scenario::load(&file).unwrap();
    let opts = RunOptions {
        bugs: vec![bug.to_string()],
        check_determinism: false,
    };
    for seed in 0..200 {
        let o = run_seed(&scenario, seed, &opts);
        if found(&o) {
            return (seed, o.violations.into_iter().map(|v| v.kind).collect());
        }
    }
    panic!("{bug} not found by {} in 200 seeds{what}", info.scenario);
}

/// Runs planted bug `bug` on the scenario it names until a seed is a find:
/// it shows the anomaly the bug is registered as breaking (see
/// `search_bug`).
pub fn find_bug(bug: &str) -> (u64, Vec<String>) {
    let info = kzsim_model::bugs::find_bug(bug).expect("registered bug");
    search_bug(bug, &format!(" as {}", info.anomaly), |o| {
        o.verdict == kzsim_sim::Verdict::Found
    })
}

/// Runs planted bug `bug` on the scenario it names until a seed shows an
/// anomaly of `kind`, the one the bug's description says it breaks (see
/// `search_bug`).
pub fn find_bug_kind(bug: &str, kind: &str) -> (u64, Vec<String>) {
    let info = kzsim_model::bugs::find_bug(bug).expect("registered bug");
    assert_eq!(
        info.anomaly, kind,
        "{bug} is registered as breaking {}",
        info.anomaly
    );
    search_bug(bug, &format!(" as {kind}"), |o| {
        o.violations.iter().any(|v| v.kind == kind)
    })
}

/// A test that planted bug `$bug` is found by its scenario as an anomaly
/// of kind `$kind`.
#[macro_export]
macro_rules! bug_kind_test {
    ($name:ident, $bug:literal, $kind:literal) => {
        #[test]
        fn $name() {
            let (seed, kinds) = common::find_bug_kind($bug, $kind);
            eprintln!("{} found at seed {seed}: {kinds:?}", $bug);
            assert!(kinds.iter().any(|k| k == $kind));
        }
    };
}

/// A test that planted bug `$bug` is found by its scenario.
#[macro_export]
macro_rules! bug_test {
    ($name:ident, $bug:literal) => {
        #[test]
        fn $name() {
            let (seed, kinds) = common::find_bug($bug);
            eprintln!("{} found at seed {seed}: {kinds:?}", $bug);
            let info = kzsim_model::bugs::find_bug($bug).unwrap();
            assert!(kinds.iter().any(|k| k == info.anomaly));
        }
    };
}

/// Finds `bug` as `kind` on its scenario, first at `first_seed` (the
/// figure README's table gives), then runs the faithful default on every
/// seed up to the find: none of them shows `kind`.
pub fn found_and_faithful_clean(bug: &str, kind: &str, first_seed: u64) {
    use kzsim_sim::runner::{run_seed, RunOptions};
    use kzsim_sim::scenario::Scenario;
    let (seed, kinds) = find_bug_kind(bug, kind);
    eprintln!("{bug} found at seed {seed}: {kinds:?}");
    assert!(kinds.iter().any(|k| k == kind));
    assert_eq!(
        seed, first_seed,
        "README gives {first_seed} as {bug}'s first seed"
    );
    let info = kzsim_model::bugs::find_bug(bug).unwrap();
    let file = path(&format!("scenarios/{}.toml", info.scenario));
    let scenario = Scenario::load(&file).unwrap();
    for s in 0..=seed {
        let o = run_seed(&scenario, s, &RunOptions::default());
        assert!(
            !o.violations.iter().any(|v| v.kind == kind),
            "the faithful default shows {kind} at seed {s}: {:?}",
            o.violations
        );
    }
}
