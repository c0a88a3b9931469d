//! Finding and loading scenario files named on the command line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use kzsim_sim::scenario::{scenario_files, Scenario};

/// The default scenario directory, relative to the working directory.
pub const DEFAULT_DIR: &str = "scenarios";

/// Expands directories into their `*.toml` files and loads every scenario.
/// Any error names the file (and line and column for bad contents).
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(
                scenario_files(p).with_context(|| format!("{}: cannot list", p.display()))?,
            );
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no scenario files given");
    }
    files
        .iter()
        .map(|f| Scenario::load(f).map_err(anyhow::Error::from))
        .collect()
}

/// Checks that every planted-bug name is known.
pub fn validate_bugs(bugs: &[String]) -> Result<()> {
    for b in bugs {
        if kzsim_model::bugs::find_bug(b).is_none() {
            let known: Vec<&str> = kzsim_model::bugs::all_bugs()
                .iter()
                .map(|b| b.name)
                .collect();
            bail!("unknown planted bug `{b}` (known: {})", known.join(", "));
        }
    }
    Ok(())
}

/// The command that replays one seed.
pub fn replay_command(file: &Path, seed: u64, bugs: &[String]) -> String {
    let mut cmd = format!(
        "cargo run --release -- replay {} --seed {seed}",
        file.display()
    );
    for b in bugs {
        cmd.push_str(&format!(" --bug {b}"));
    }
    cmd
}
