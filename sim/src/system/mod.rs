//! Systems under test: how a scenario's cluster becomes nodes, a workload and
//! end-of-run checks.
//!
//! Node ids are laid out as servers `0..servers`, then clients. Each client
//! has a home server: in a partition it stays on its home server's side.

pub mod demo;
pub mod group;
pub mod kafka;
pub mod kraft;
pub mod zk;

use kzsim_model::{BugSet, Node, NodeId};

use crate::history::History;
use crate::outcome::Violation;
use crate::scenario::{Scenario, SystemKind};
use crate::workload::Workload;

/// The node ids of a cluster.
///
/// Servers come first (`0..servers`), then the workload's client nodes, then
/// support nodes (an admin client, say) that run but carry no workload
/// process. Faults pick their targets from the fault pool (every server
/// unless the system says otherwise); server groups name sets of servers
/// that a partition can cut a target off from (`cut_from` in a scenario).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Server ids.
    pub servers: Vec<NodeId>,
    /// Client node ids that the workload's processes run on.
    pub clients: Vec<NodeId>,
    /// Support node ids: booted and faulted like clients, no processes.
    pub support: Vec<NodeId>,
    /// Per client or support node (in id order after the servers), the
    /// server whose side of a partition it stays on.
    pub homes: Vec<NodeId>,
    /// The servers faults hit by default (explicit `nodes` index into it).
    pub fault_pool: Vec<NodeId>,
    /// Named groups of servers, e.g. `zk` and `brokers`.
    pub groups: Vec<(String, Vec<NodeId>)>,
}

impl Layout {
    /// Servers `0..servers`, clients after them, each client homed on
    /// server `(client - servers) mod servers`; faults hit every server.
    pub fn new(servers: u32, clients: u32) -> Layout {
        let homes = (0..clients).map(|c| c % servers.max(1)).collect();
        let servers: Vec<NodeId> = (0..servers).collect();
        Layout {
            clients: (servers.len() as u32..servers.len() as u32 + clients).collect(),
            support: Vec::new(),
            homes,
            fault_pool: servers.clone(),
            groups: vec![("servers".to_string(), servers.clone())],
            servers,
        }
    }

    /// The home server of a node (itself for a server).
    pub fn home(&self, node: NodeId) -> NodeId {
        let n = self.servers.len() as u32;
        if node < n {
            node
        } else {
            self.homes
                .get((node - n) as usize)
                .copied()
                .unwrap_or((node - n) % n.max(1))
        }
    }

    /// Whether `node` is a server.
    pub fn is_server(&self, node: NodeId) -> bool {
        (node as usize) < self.servers.len()
    }

    /// The servers of group `name`.
    pub fn group(&self, name: &str) -> Option<&[NodeId]> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, g)| g.as_slice())
    }

    /// Every node id: servers, clients, support nodes.
    pub fn all(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.servers
            .iter()
            .chain(self.clients.iter())
            .chain(self.support.iter())
            .copied()
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len() + self.support.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Watches the nodes while a run goes on, for invariants that a final
/// state cannot show (a high watermark that went back, two leaders in one
/// epoch). Called after every step of every node; must stay cheap.
pub trait Monitor: Send {
    /// Node `id`, in its `incarnation` (bumped on every boot), has just
    /// taken a step at true time `now_us`.
    fn after_step(&mut self, now_us: u64, id: NodeId, incarnation: u32, node: &dyn Node);
    /// The violations seen so far.
    fn violations(&self) -> Vec<Violation>;
}

/// What a monitor found: up to `keep` violations of each kind, and how
/// many more there were.
#[derive(Clone, Debug)]
pub struct Findings {
    keep: usize,
    found: Vec<Violation>,
    dropped: usize,
}

impl Findings {
    /// Keeps up to `keep` violations of each kind.
    pub fn new(keep: usize) -> Findings {
        Findings {
            keep,
            found: Vec::new(),
            dropped: 0,
        }
    }

    /// Records a violation (or counts it, past the kind's limit).
    pub fn report(&mut self, kind: &str, detail: String) {
        if self.found.iter().filter(|v| v.kind == kind).count() < self.keep {
            self.found.push(Violation::new(kind, detail, vec![]));
        } else {
            self.dropped += 1;
        }
    }

    /// The violations kept, the last saying how many more there were.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = self.found.clone();
        if self.dropped > 0 {
            if let Some(last) = out.last_mut() {
                last.detail
                    .push_str(&format!(" (and {} more like these)", self.dropped));
            }
        }
        out
    }
}

/// A system under test.
pub trait System: Send {
    /// The layout of its nodes.
    fn layout(&self) -> &Layout;
    /// Builds node `id` as it boots (before `Input::Start`).
    fn build(&self, id: NodeId) -> Box<dyn Node>;
    /// Its workload.
    fn workload(&self) -> Box<dyn Workload>;
    /// The client node workload thread `thread` runs on (by default the
    /// layout's clients, round robin).
    fn thread_client(&self, thread: usize) -> NodeId {
        let clients = &self.layout().clients;
        clients[thread % clients.len()]
    }
    /// End-of-run checks over the history and the final nodes (`None` for a
    /// node that is down).
    fn check(&self, history: &History, nodes: &[Option<&dyn Node>]) -> Vec<Violation>;
    /// The `[workload]` settings this system's workload does not read
    /// (of `timeout_ms`, `read_fraction`, `keys`): a scenario that writes
    /// one is refused rather than silently ignored.
    fn unread_workload_settings(&self) -> &'static [&'static str] {
        &[]
    }
    /// Counts the run reports beside its verdict (e.g. records processed
    /// and processed again under at-least-once); none by default.
    fn counters(&self, history: &History) -> Vec<(&'static str, u64)> {
        let _ = history;
        Vec::new()
    }
    /// The anomaly names its checks can report.
    fn anomalies(&self) -> &'static [&'static str];
    /// A monitor to watch the run, if the system has invariants to watch.
    fn monitor(&self) -> Option<Box<dyn Monitor>> {
        None
    }
}

/// A `cluster.config` value that must be an integer in `range`.
pub fn config_int(
    v: &toml::Value,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let (lo, hi) = (*range.start(), *range.end());
    match v.as_integer() {
        Some(i) if i >= 0 && range.contains(&(i as u64)) => Ok(i as u64),
        Some(i) => Err(format!(
            "cluster.config.{key} = {i} is out of range: it must be {lo} to {hi}"
        )),
        None => Err(format!(
            "cluster.config.{key} must be an integer from {lo} to {hi}, not {v}"
        )),
    }
}

/// The range of a `cluster.config` duration in milliseconds: 1 ms to
/// the longest run.
pub const MS: std::ops::RangeInclusive<u64> = 1..=crate::scenario::validate::MAX_DURATION_MS;

/// A `cluster.config` value that must be true or false.
pub fn config_bool(v: &toml::Value, key: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("cluster.config.{key} must be true or false, not {v}"))
}

/// The anomaly names the checks of `kind` can report.
pub fn anomalies(kind: SystemKind) -> &'static [&'static str] {
    match kind {
        SystemKind::Demo => demo::ANOMALIES,
        SystemKind::Zk => zk::ANOMALIES,
        SystemKind::Kafka => kafka::ANOMALIES,
    }
}

/// Whether a planted bug of `component` (see [`kzsim_model::BugInfo`])
/// lives in a node that a system of `kind` runs: Kafka runs its own
/// ZooKeeper ensemble and the consumer groups, so ZooKeeper and group bugs
/// apply to it as well.
pub fn runs_component(kind: SystemKind, component: &str) -> bool {
    match kind {
        SystemKind::Demo => component == "demo",
        SystemKind::Zk => component == "zk",
        SystemKind::Kafka => matches!(component, "kafka" | "zk" | "group" | "raft" | "kraft"),
    }
}

/// Builds the system a scenario names, with `bugs` switched on.
pub fn build(scenario: &Scenario, bugs: &BugSet) -> Result<Box<dyn System>, String> {
    match scenario.spec.cluster.system {
        SystemKind::Demo => Ok(Box::new(demo::DemoSystem::new(scenario, bugs)?)),
        SystemKind::Zk => Ok(Box::new(zk::ZkSystem::new(scenario, bugs)?)),
        SystemKind::Kafka => Ok(Box::new(kafka::KafkaSystem::new(scenario, bugs)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_names_an_anomaly_its_system_reports() {
        for bug in kzsim_model::bugs::all_bugs() {
            let systems: Vec<SystemKind> = [SystemKind::Demo, SystemKind::Zk, SystemKind::Kafka]
                .into_iter()
                .filter(|k| runs_component(*k, bug.component))
                .collect();
            assert!(!systems.is_empty(), "{}: no system runs it", bug.name);
            assert!(
                systems.iter().any(|k| anomalies(*k).contains(&bug.anomaly)),
                "{}: `{}` is not an anomaly of {systems:?}",
                bug.name,
                bug.anomaly
            );
        }
    }
}
