//! Systems under test: how a scenario's cluster becomes nodes, a workload and
//! end-of-run checks.
//!
//! Node ids are laid out as servers `0..servers`, then clients. Each client
//! has a home server: in a partition it stays on its home server's side.

pub mod demo;
pub mod zk;

use kzsim_model::{BugSet, Node, NodeId};

use crate::history::History;
use crate::outcome::Violation;
use crate::scenario::{Scenario, SystemKind};
use crate::workload::Workload;

/// The node ids of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Server ids.
    pub servers: Vec<NodeId>,
    /// Client node ids.
    pub clients: Vec<NodeId>,
}

impl Layout {
    /// Servers `0..servers`, clients after them.
    pub fn new(servers: u32, clients: u32) -> Layout {
        Layout {
            servers: (0..servers).collect(),
            clients: (servers..servers + clients).collect(),
        }
    }

    /// The home server of a client (itself for a server).
    pub fn home(&self, node: NodeId) -> NodeId {
        let n = self.servers.len() as u32;
        if node < n {
            node
        } else {
            (node - n) % n
        }
    }

    /// Whether `node` is a server.
    pub fn is_server(&self, node: NodeId) -> bool {
        (node as usize) < self.servers.len()
    }

    /// Every node id.
    pub fn all(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.servers.iter().chain(self.clients.iter()).copied()
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
    /// End-of-run checks over the history and the final nodes (`None` for a
    /// node that is down).
    fn check(&self, history: &History, nodes: &[Option<&dyn Node>]) -> Vec<Violation>;
    /// The anomaly names its checks can report.
    fn anomalies(&self) -> &'static [&'static str];
}

/// Builds the system a scenario names, with `bugs` switched on.
pub fn build(scenario: &Scenario, bugs: &BugSet) -> Result<Box<dyn System>, String> {
    match scenario.spec.cluster.system {
        SystemKind::Demo => Ok(Box::new(demo::DemoSystem::new(scenario, bugs)?)),
        SystemKind::Zk => Ok(Box::new(zk::ZkSystem::new(scenario, bugs)?)),
    }
}
