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
/// for a range, `default` otherwise.
pub fn seeds(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    if let Ok(s) = std::env::var("KZSIM_SEED") {
        let n: u64 = s.trim().parse().expect("KZSIM_SEED must be an integer");
        return n..n + 1;
    }
    if let Ok(s) = std::env::var("KZSIM_SEEDS") {
        let (a, b) = s.split_once("..").expect("KZSIM_SEEDS must be A..B");
        return a.trim().parse().expect("KZSIM_SEEDS start")
            ..b.trim().parse().expect("KZSIM_SEEDS end");
    }
    default
}
