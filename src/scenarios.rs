//! Finding and loading scenario files named on the command line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use kzsim_sim::scenario::{scenario_files, Scenario};

/// The default scenario directory, relative to the working directory.
pub const DEFAULT_DIR: &str = "scenarios";

/// Which Kafka modes to run (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// ZooKeeper mode only.
    Zookeeper,
    /// KRaft mode only.
    Kraft,
    /// Both (Kafka scenarios that do not pin a mode run twice).
    Both,
}

/// The Kafka mode a scenario runs in (`None`: not a Kafka scenario).
pub fn mode_of(s: &Scenario) -> Option<&str> {
    if s.spec.cluster.system != kzsim_sim::scenario::SystemKind::Kafka {
        return None;
    }
    Some(
        s.spec
            .cluster
            .config
            .get("mode")
            .and_then(|v| v.as_str())
            .unwrap_or("zookeeper"),
    )
}

/// The mode planted bugs need: KRaft for Raft and KRaft bugs, ZooKeeper
/// mode for the others (the ZooKeeper-era bugs and the bug zoo's own
/// scenarios); `None` without bugs.
pub fn mode_for_bugs(bugs: &[String]) -> Option<ModeChoice> {
    if bugs.is_empty() {
        return None;
    }
    let kraft = bugs.iter().any(|b| {
        kzsim_model::bugs::find_bug(b).is_some_and(|i| matches!(i.component, "raft" | "kraft"))
    });
    Some(if kraft {
        ModeChoice::Kraft
    } else {
        ModeChoice::Zookeeper
    })
}

/// Loads every scenario (see [`load_files`]) and expands Kafka scenarios
/// into the modes chosen.
pub fn load_all(paths: &[PathBuf], mode: ModeChoice) -> Result<Vec<Scenario>> {
    let mut out = Vec::new();
    for s in load_files(paths)? {
        for v in s.variants()? {
            let keep = match (mode_of(&v), mode) {
                (None, _) | (_, ModeChoice::Both) => true,
                (Some(m), ModeChoice::Zookeeper) => m == "zookeeper",
                (Some(m), ModeChoice::Kraft) => m == "kraft",
            };
            if keep {
                out.push(v);
            }
        }
    }
    if out.is_empty() {
        bail!("no scenario runs in mode {mode:?}");
    }
    Ok(out)
}

/// Expands directories into their `*.toml` files and loads every scenario.
/// Any error names the file (and line and column for bad contents).
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<Scenario>> {
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
pub fn replay_command(
    file: &Path,
    scenario: &str,
    seed: u64,
    bugs: &[String],
    modes: crate::fault_modes::FaultModes,
) -> String {
    let mut cmd = format!(
        "cargo run --release -- replay {} --seed {seed}",
        replay_path(file).display()
    );
    if scenario.ends_with("@kraft") {
        cmd.push_str(" --mode kraft");
    }
    for b in bugs {
        cmd.push_str(&format!(" --bug {b}"));
    }
    cmd.push_str(&modes.flags());
    cmd
}
