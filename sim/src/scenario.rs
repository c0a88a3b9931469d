//! Scenario files: TOML, one scenario per file, documented at its top.
//!
//! A scenario names the system and its size and configuration, the workload,
//! the network, disk and clock parameters, the faults (random rates or an
//! explicit timed list), the planted bugs to switch on, and optionally the
//! anomaly it is expected to show. Unknown fields, unknown names, wrong
//! types and values out of range (see [`validate`] for the limits) are
//! errors naming the file and the line and column of the offending key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

mod locate;
#[cfg(test)]
mod tests;
pub mod validate;

use crate::disk::DiskConfig;
use crate::nemesis::FaultsConfig;
use crate::net::NetConfig;
use locate::Locator;
use validate::Bad;

/// A parsed and validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (the file stem unless given).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The body.
    pub spec: ScenarioSpec,
    /// The Kafka mode the run matrix set (see [`Scenario::variants`]);
    /// `None` when the file's own settings stand.
    pub mode: Option<String>,
}

/// The TOML body of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Optional name; defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario exercises, one or two sentences.
    pub description: String,
    /// Simulated duration in milliseconds, quiet period included.
    pub duration_ms: u64,
    /// The system under test.
    pub cluster: ClusterSpec,
    /// The client workload.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// Network parameters.
    #[serde(default)]
    pub network: NetConfig,
    /// Disk parameters.
    #[serde(default)]
    pub disk: DiskConfig,
    /// Clock parameters.
    #[serde(default)]
    pub clock: ClockSpec,
    /// Faults.
    #[serde(default)]
    pub faults: FaultsConfig,
    /// Checks, planted bugs and expectations.
    #[serde(default)]
    pub checks: ChecksSpec,
    /// BUGGIFY: the models take rare but legal paths more often (each
    /// site switched on for a run with probability 1/4, then firing on a
    /// quarter of its calls). Off unless set here or by `run --buggify`.
    #[serde(default)]
    pub buggify: bool,
}

/// The systems kzsim can run.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    /// The demo primary-backup register (engine tests only).
    Demo,
    /// A ZooKeeper ensemble (ZAB) and its clients.
    Zk,
    /// Kafka brokers (ZooKeeper mode) beside a ZooKeeper ensemble.
    Kafka,
}

/// Which system, how many nodes, and its configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The system.
    pub system: SystemKind,
    /// Number of servers.
    pub servers: u32,
    /// Number of client nodes.
    #[serde(default = "default_clients")]
    pub clients: u32,
    /// System-specific settings (validated by the system).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

fn default_clients() -> u32 {
    3
}

/// The workload.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Workload kind (system-specific; empty = the system's default).
    pub kind: String,
    /// Concurrent logical processes.
    pub processes: u32,
    /// Mean think time between a process's operations (ms).
    pub think_ms: f64,
    /// Request timeout used by the clients (ms).
    pub timeout_ms: u64,
    /// Fraction of operations that are reads.
    pub read_fraction: f64,
    /// Number of keys (where the workload has keys).
    pub keys: u32,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            kind: String::new(),
            processes: 6,
            think_ms: 5.0,
            timeout_ms: 500,
            read_fraction: 0.5,
            keys: 1,
        }
    }
}

/// Clock parameters.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    /// Each node's initial offset is uniform in [-max_offset_ms, max_offset_ms].
    pub max_offset_ms: u64,
    /// Each node's drift is uniform in [-max_drift_ppm, max_drift_ppm].
    pub max_drift_ppm: u64,
}

/// Checks and planted bugs.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksSpec {
    /// Planted bugs switched on by this scenario.
    pub bugs: Vec<Spanned<String>>,
    /// The anomaly this scenario is expected to show (a documented
    /// trade-off or a planted bug), by name.
    pub expect: Option<Spanned<String>>,
    /// Anomalies that may come with the expected one, its consequences
    /// (lost records handed out again show as inconsistent offsets, say).
    /// They are tolerated, not required; only with `expect`.
    pub allow: Vec<Spanned<String>>,
}

/// A scenario that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text (`path` is used in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            ScenarioError::Invalid {
                file: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let spec: ScenarioSpec = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().to_string())
        })?;
        for bug in &spec.checks.bugs {
            if kzsim_model::bugs::find_bug(bug.get_ref()).is_none() {
                return Err(invalid(
                    bug.span().start,
                    format!("unknown planted bug `{}`", bug.get_ref()),
                ));
            }
        }
        let known = crate::system::anomalies(spec.cluster.system);
        let named = spec.checks.expect.iter().chain(spec.checks.allow.iter());
        for a in named {
            if !known.contains(&a.get_ref().as_str()) {
                return Err(invalid(
                    a.span().start,
                    format!(
                        "unknown anomaly `{}` (this system reports: {})",
                        a.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
        }
        if spec.checks.expect.is_none() {
            if let Some(a) = spec.checks.allow.first() {
                return Err(invalid(
                    a.span().start,
                    "checks.allow needs checks.expect: it lists what may come with the expected anomaly".into(),
                ));
            }
        }
        let locator = Locator::new(text);
        let at = |b: Bad| {
            let instead: Vec<&str> = b.instead.iter().map(String::as_str).collect();
            invalid(locator.offset(&b.path, &instead).unwrap_or(0), b.message)
        };
        validate::spec(&spec).map_err(at)?;
        let name = spec.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        let scenario = Scenario {
            name,
            file: path.to_path_buf(),
            spec,
            mode: None,
        };
        // The system's own settings (`cluster.config`, the workload kind,
        // sizes) are checked by building it once; the faults' targets
        // against the nodes it lays out.
        let system = crate::system::build(&scenario, &kzsim_model::BugSet::none())
            .map_err(|message| invalid(system_error_offset(&locator, &message), message))?;
        validate::aims(&scenario.spec, system.layout()).map_err(at)?;
        for key in system.unread_workload_settings() {
            let path = format!("workload.{key}");
            if let Ok(offset) = locator.find(&path) {
                return Err(invalid(
                    offset,
                    format!(
                        "{path} is not read by this system's workload ({:?}, workload.kind = {:?}): remove it rather than have it silently ignored",
                        scenario.spec.cluster.system,
                        if scenario.spec.workload.kind.is_empty() { "default" } else { scenario.spec.workload.kind.as_str() }
                    ),
                ));
            }
        }
        Ok(scenario)
    }

    /// The scenario in the Kafka modes it runs in: a Kafka scenario that
    /// does not pin `cluster.config.mode` runs in ZooKeeper mode under its
    /// own name and in KRaft mode as `NAME@kraft` (its ZooKeeper settings
    /// mapped: `zk_servers` to `controllers`, `zk_session_timeout_ms` to
    /// `broker_session_timeout_ms`), unless it needs ZooKeeper itself
    /// (the ZooKeeper-era group consumer). Other scenarios run as they are.
    pub fn variants(self) -> Result<Vec<Scenario>, ScenarioError> {
        let c = &self.spec.cluster;
        let zk_only = c
            .config
            .get("group_protocol")
            .and_then(|v| v.as_str())
            .is_some_and(|p| p == "zookeeper");
        if c.system != SystemKind::Kafka || c.config.contains_key("mode") || zk_only {
            return Ok(vec![self]);
        }
        let kraft = self.in_mode("kraft")?;
        Ok(vec![self, kraft])
    }

    /// This Kafka scenario with `cluster.config.mode` set to `mode` (see
    /// [`Scenario::variants`]); named `NAME@kraft` for KRaft.
    pub fn in_mode(&self, mode: &str) -> Result<Scenario, ScenarioError> {
        let mut s = self.clone();
        let config = &mut s.spec.cluster.config;
        if mode == "kraft" {
            for (from, to) in [
                ("zk_servers", "controllers"),
                ("zk_session_timeout_ms", "broker_session_timeout_ms"),
            ] {
                if let Some(v) = config.remove(from) {
                    config.insert(to.to_string(), v);
                }
            }
            s.name = format!("{}@kraft", self.name);
        }
        config.insert("mode".into(), toml::Value::String(mode.into()));
        s.mode = Some(mode.to_string());
        crate::system::build(&s, &kzsim_model::BugSet::none()).map_err(|message| {
            ScenarioError::Invalid {
                file: s.file.clone(),
                line: 1,
                column: 1,
                message: format!("in mode {mode}: {message}"),
            }
        })?;
        Ok(s)
    }

    /// The planted bugs this scenario switches on.
    pub fn bugs(&self) -> Vec<String> {
        self.spec
            .checks
            .bugs
            .iter()
            .map(|b| b.get_ref().clone())
            .collect()
    }

    /// The anomalies tolerated beside the expected one.
    pub fn allowed(&self) -> Vec<String> {
        self.spec
            .checks
            .allow
            .iter()
            .map(|a| a.get_ref().clone())
            .collect()
    }

    /// The anomaly this scenario is expected to show, if any.
    pub fn expected(&self) -> Option<&str> {
        self.spec
            .checks
            .expect
            .as_ref()
            .map(|e| e.get_ref().as_str())
    }
}

/// Where in the scenario text a system's complaint points: the first
/// setting it names (`cluster.config.KEY`, `workload.KEY`, ...) if that is
/// written, else the first other one named that is, else the table the
/// first would be in, else the `[cluster]` table.
fn system_error_offset(locator: &Locator, message: &str) -> usize {
    let sections = [
        "cluster.",
        "workload.",
        "faults.",
        "network.",
        "disk.",
        "clock.",
    ];
    let mut named: Vec<&str> = Vec::new();
    for (i, _) in message.char_indices() {
        let rest = &message[i..];
        let starts_word = message[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        if starts_word && sections.iter().any(|s| rest.starts_with(s)) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_.[]".contains(c)))
                .unwrap_or(rest.len());
            named.push(rest[..len].trim_end_matches('.'));
        }
    }
    named
        .split_first()
        .and_then(|(first, rest)| locator.offset(first, rest))
        .or_else(|| locator.offset("cluster", &[]))
        .unwrap_or(0)
}

/// Every `*.toml` file in `dir`, sorted by name.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}
