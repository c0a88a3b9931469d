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

/// Checks that every planted bug lives in a node the scenario's system
/// runs: a Kafka bug on a ZooKeeper scenario would switch nothing on and
/// could never be found.
pub fn validate_bugs_for(bugs: &[String], scenario: &Scenario) -> Result<()> {
    let system = scenario.spec.cluster.system;
    for b in bugs {
        let info =
            kzsim_model::bugs::find_bug(b).with_context(|| format!("unknown planted bug `{b}`"))?;
        if !kzsim_sim::system::runs_component(system, info.component) {
            bail!(
                "--bug {b}: a {} bug, but {} runs a {:?} system, which has no {} node (the bug's own scenario is scenarios/{}.toml)",
                info.component,
                scenario.file.display(),
                system,
                info.component,
                info.scenario
            );
        }
    }
    Ok(())
}

/// The repository root, where replay commands run: the directory this
/// binary was built from when it is still there, the working directory
/// otherwise.
pub fn repo_root() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("Cargo.toml").is_file() {
        built
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }
}

/// A scenario path as a replay command names it: relative to the
/// repository root when the file is inside it, absolute otherwise.
pub fn replay_path(file: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let root = std::fs::canonicalize(repo_root()).unwrap_or_else(|_| repo_root());
    abs.strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or(abs)
}

/// The command that replays one seed, to run from the repository root
/// (see [`repo_root`]); its scenario path is root-relative or absolute.
pub fn replay_command(file: &Path, seed: u64, bugs: &[String]) -> String {
    let mut cmd = format!(
        "cargo run --release -- replay {} --seed {seed}",
        replay_path(file).display()
    );
    for b in bugs {
        cmd.push_str(&format!(" --bug {b}"));
    }
    cmd
}
