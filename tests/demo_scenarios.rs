//! The demo protocol's scenarios over many seeds, and its planted bug found.
//! Seeds come from `KZSIM_SEED` / `KZSIM_SEEDS` (default: a small range).

mod common;

use kzsim_sim::runner::{run_seed, RunOptions};
use kzsim_sim::scenario::Scenario;

fn sweep(file: &str, default: std::ops::Range<u64>) {
    let scenario = Scenario::load(&common::path(file)).expect("scenario loads");
    let mut failures = Vec::new();
    for seed in common::seeds(default) {
        let o = run_seed(&scenario, seed, &RunOptions::default());
        if !o.ok {
            failures.push(format!(
                "seed {seed}: {:?}\n  replay: cargo run --release -- replay {file} --seed {seed}",
                o.violations
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn demo_basic_passes() {
    sweep("tests/scenarios/demo-basic.toml", 0..10);
}

#[test]
fn demo_faults_passes() {
    sweep("tests/scenarios/demo-faults.toml", 0..40);
}

#[test]
fn demo_power_loss_passes() {
    sweep("tests/scenarios/demo-power-loss.toml", 0..20);
}

#[test]
fn planted_bug_is_found_with_its_replay_command() {
    let scenario = Scenario::load(&common::path("tests/scenarios/demo-power-loss.toml")).unwrap();
    let opts = RunOptions {
        bugs: vec!["demo_ack_before_fsync".into()],
        check_determinism: false,
    };
    let found =
        (0..50).find(|&seed| run_seed(&scenario, seed, &opts).verdict == kzsim_sim::Verdict::Found);
    let seed = found.expect("demo_ack_before_fsync is found within 50 seeds");
    let o = run_seed(&scenario, seed, &opts);
    assert!(o.violations.iter().any(|v| v.kind == "lost-write"));
}
