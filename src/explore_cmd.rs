//! `kzsim run --explore N`: the coverage-guided search over fault
//! schedules (see `kzsim_sim::explore`), and the scenario files it writes
//! for the runs that failed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use kzsim_sim::explore::{Explorer, Tried};
use kzsim_sim::nemesis::TimedFault;
use kzsim_sim::runner::{RunOptions, Verdict};
use kzsim_sim::scenario::Scenario;

use crate::fault_modes::FaultModes;

/// Where the search writes the scenario files of its failing runs.
pub const EXPLORE_DIR: &str = "target/kzsim-explore";

/// The search's settings.
pub struct ExploreArgs<'a> {
    /// Runs per scenario.
    pub budget: u64,
    /// The search's own seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Stop a scenario's search at its first hit.
    pub stop_on_hit: bool,
    /// Planted bugs and checks.
    pub opts: &'a RunOptions,
    /// `--events` / `--buggify`, for the replay commands.
    pub modes: FaultModes,
}

/// Searches every scenario; returns the exit code (1 when a run failed,
/// or with `--bug` when no run found it).
pub fn run(scenarios: &[Scenario], a: &ExploreArgs<'_>) -> Result<u8> {
    let bug_mode = !a.opts.bugs.is_empty();
    let mut any_fail = false;
    let mut any_found = false;
    for s in scenarios {
        let explorer = Explorer::new(s, a.opts, a.seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", s.file.display()))?;
        let report = explorer.run(a.budget, a.threads, a.stop_on_hit, &mut |_: &Tried| {});
        let combos: Vec<&String> = report
            .features
            .keys()
            .filter(|k| k.starts_with("fault "))
            .collect();
        println!(
            "explore {}: {} runs (search seed {}), {} kept, {} features, {} fault-after-event combinations, {} {}",
            s.name,
            report.runs,
            a.seed,
            report.kept,
            report.features.len(),
            combos.len(),
            report.hits.len(),
            if bug_mode { "finds" } else { "failures" }
        );
        for c in &combos {
            println!("  {c} (in {} runs)", report.features[*c]);
        }
        for (i, t) in report.hits.iter().enumerate() {
            match t.outcome.verdict {
                Verdict::Found => any_found = true,
                _ => any_fail = true,
            }
            let what = t
                .outcome
                .violations
                .iter()
                .take(2)
                .map(|v| format!("{}: {}", v.kind, v.detail))
                .collect::<Vec<_>>()
                .join("; ");
            let file = match &t.schedule {
                Some(schedule) => {
                    let path = PathBuf::from(EXPLORE_DIR).join(format!(
                        "{}-{}-{i}.toml",
                        file_stem(&s.name),
                        a.seed
                    ));
                    write_scenario(s, schedule, &path)?;
                    path
                }
                None => s.file.clone(),
            };
            let mut replay = format!(
                "cargo run --release -- replay {} --seed {}",
                file.display(),
                t.seed
            );
            if t.schedule.is_none() && s.name.ends_with("@kraft") {
                replay.push_str(" --mode kraft");
            }
            for b in &a.opts.bugs {
                replay.push_str(&format!(" --bug {b}"));
            }
            if t.schedule.is_none() {
                replay.push_str(&a.modes.flags());
            }
            let verdict = if t.outcome.verdict == Verdict::Found {
                "FOUND"
            } else {
                "FAIL"
            };
            println!(
                "{verdict} {} seed {}: {what}\n  replay: {replay}",
                s.name, t.seed
            );
        }
    }
    Ok(u8::from(any_fail || (bug_mode && !any_found)))
}

/// A name usable in a file name.
fn file_stem(name: &str) -> String {
    name.replace('@', "-")
}

/// Writes `s` with the explicit `schedule` as a scenario file: the
/// original file's settings, its faults replaced by the `[[faults.at]]`
/// list, its Kafka mode and buggify written out.
fn write_scenario(s: &Scenario, schedule: &[TimedFault], path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(&s.file)
        .with_context(|| format!("{}: cannot read the scenario", s.file.display()))?;
    let mut doc: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{}: cannot parse the scenario", s.file.display()))?;
    doc.insert(
        "name".into(),
        toml::Value::String(format!("{}-explored", file_stem(&s.name))),
    );
    if let Some(mode) = &s.mode {
        let cluster = doc
            .entry("cluster")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(c) = cluster.as_table_mut() {
            let config = c
                .entry("config")
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let Some(cfg) = config.as_table_mut() {
                cfg.insert("mode".into(), toml::Value::String(mode.clone()));
            }
        }
    }
    if s.spec.buggify {
        doc.insert("buggify".into(), toml::Value::Boolean(true));
    }
    let faults = doc
        .entry("faults")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    let faults = faults.as_table_mut().context("faults is not a table")?;
    for k in ["random", "on", "on_random", "at"] {
        faults.remove(k);
    }
    let at: Vec<toml::Value> = schedule.iter().map(fault_table).collect();
    faults.insert("at".into(), toml::Value::Array(at));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    }
    let body = toml::to_string(&doc).context("the scenario serialises")?;
    let header = format!(
        "# Written by `kzsim run --explore` from {}: its settings, with the\n# fault schedule the search ran, explicit.\n",
        s.file.display()
    );
    std::fs::write(path, header + &body)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// One explicit fault as a TOML table.
fn fault_table(f: &TimedFault) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("at_ms".into(), toml::Value::Integer(f.at_ms as i64));
    t.insert("kind".into(), toml::Value::String(f.kind.name().into()));
    if !f.nodes.is_empty() {
        t.insert(
            "nodes".into(),
            toml::Value::Array(
                f.nodes
                    .iter()
                    .map(|n| toml::Value::Integer(*n as i64))
                    .collect(),
            ),
        );
    }
    if let Some(g) = &f.group {
        t.insert("group".into(), toml::Value::String(g.clone()));
    }
    if let Some(d) = f.duration_ms {
        t.insert("duration_ms".into(), toml::Value::Integer(d as i64));
    }
    if let Some(v) = f.value {
        t.insert("value".into(), toml::Value::Float(v));
    }
    toml::Value::Table(t)
}
