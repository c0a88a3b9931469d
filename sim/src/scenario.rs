//! Scenario files: TOML, one scenario per file, documented at its top.
//!
//! A scenario names the system and its size and configuration, the workload,
//! the network, disk and clock parameters, the faults (random rates or an
//! explicit timed list), the planted bugs to switch on, and optionally the
//! anomaly it is expected to show. Unknown fields and unknown names are
//! errors naming the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::disk::DiskConfig;
use crate::nemesis::FaultsConfig;
use crate::net::NetConfig;

/// A parsed and validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (the file stem unless given).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The body.
    pub spec: ScenarioSpec,
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

impl ClusterSpec {
    /// The server groups a fault can name, with their sizes, the default
    /// fault pool first: `servers` for ZooKeeper and the demo; `brokers`,
    /// `zk`, `servers` (all of them) and `consumers` (the client nodes
    /// after the producers, for partitions aimed at consumers) for Kafka.
    pub fn groups(&self) -> Vec<(&'static str, u32)> {
        match self.system {
            SystemKind::Demo | SystemKind::Zk => vec![("servers", self.servers)],
            SystemKind::Kafka => {
                let zk = self.zk_servers();
                vec![
                    ("brokers", self.servers),
                    ("zk", zk),
                    ("servers", zk + self.servers),
                    ("consumers", self.consumers()),
                ]
            }
        }
    }

    /// Kafka: the client nodes that are not producers
    /// (`cluster.config.producers`, default half the clients, at least 1).
    pub fn consumers(&self) -> u32 {
        let producers = self
            .config
            .get("producers")
            .and_then(|v| v.as_integer())
            .map(|n| n.clamp(0, self.clients as i64) as u32)
            .unwrap_or((self.clients / 2).max(1));
        self.clients.saturating_sub(producers)
    }

    /// Kafka: the ZooKeeper ensemble's size (`cluster.config.zk_servers`,
    /// default 3; 0 for other systems).
    pub fn zk_servers(&self) -> u32 {
        match self.system {
            SystemKind::Kafka => self
                .config
                .get("zk_servers")
                .and_then(|v| v.as_integer())
                .map_or(3, |n| n.clamp(0, 9) as u32),
            _ => 0,
        }
    }
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
        if spec.cluster.servers == 0 {
            return Err(invalid(0, "cluster.servers must be at least 1".into()));
        }
        if spec.duration_ms == 0 {
            return Err(invalid(0, "duration_ms must be positive".into()));
        }
        if spec.faults.quiet_ms >= spec.duration_ms {
            return Err(invalid(
                0,
                format!(
                    "faults.quiet_ms ({}) must be shorter than duration_ms ({})",
                    spec.faults.quiet_ms, spec.duration_ms
                ),
            ));
        }
        let groups = spec.cluster.groups();
        for f in &spec.faults.at {
            let t = f.get_ref();
            if t.kind.targets_clients() {
                if let Some(bad) = t.nodes.iter().find(|n| **n >= spec.cluster.clients) {
                    return Err(invalid(
                        f.span().start,
                        format!(
                            "fault names client {bad}, but the cluster has {} clients",
                            spec.cluster.clients
                        ),
                    ));
                }
                continue;
            }
            let (group, size) = match &t.group {
                None => groups[0],
                Some(g) => match groups.iter().find(|(n, _)| n == g) {
                    Some(found) => *found,
                    None => {
                        return Err(invalid(
                            f.span().start,
                            format!(
                                "unknown server group `{g}` (known: {})",
                                groups.iter().map(|g| g.0).collect::<Vec<_>>().join(", ")
                            ),
                        ))
                    }
                },
            };
            for (field, indexes) in [("nodes", &t.nodes), ("cut_nodes", &t.cut_nodes)] {
                if let Some(bad) = indexes.iter().find(|n| **n >= size) {
                    return Err(invalid(
                        f.span().start,
                        format!(
                            "`{field}` names server {bad} of `{group}`, but it has {size} servers"
                        ),
                    ));
                }
            }
            if !t.cut_nodes.is_empty() && t.cut_from.is_some() {
                return Err(invalid(
                    f.span().start,
                    "a fault takes `cut_from` or `cut_nodes`, not both".to_string(),
                ));
            }
            if let Some(c) = &t.cut_from {
                let known = groups.iter().any(|(n, _)| n == c)
                    || ["leader", "follower", "controller", "coordinator"].contains(&c.as_str());
                if !known {
                    return Err(invalid(
                        f.span().start,
                        format!(
                            "unknown `cut_from` `{c}` (known: {}, leader, follower, controller, coordinator)",
                            groups.iter().map(|g| g.0).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        let name = spec.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        let scenario = Scenario {
            name,
            file: path.to_path_buf(),
            spec,
        };
        // The system's own settings (`cluster.config`, the workload kind,
        // sizes) are checked by building it once.
        if let Err(message) = crate::system::build(&scenario, &kzsim_model::BugSet::none()) {
            return Err(invalid(system_error_offset(text, &message), message));
        }
        Ok(scenario)
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

/// Where in the scenario text a system's complaint points: the setting it
/// names (`cluster.config.KEY`, `workload.KEY`) if it can be found, else the
/// `[cluster]` table.
fn system_error_offset(text: &str, message: &str) -> usize {
    let named = ["cluster.config.", "workload."].iter().find_map(|prefix| {
        let at = message.find(prefix)? + prefix.len();
        let key: String = message[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!key.is_empty()).then_some(key)
    });
    if let Some(key) = named {
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with(&key) && t[key.len()..].trim_start().starts_with('=') {
                return offset + (line.len() - t.len());
            }
            offset += line.len();
        }
    }
    text.find("[cluster").unwrap_or(0)
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
