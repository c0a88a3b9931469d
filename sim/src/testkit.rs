//! Building blocks for tests and benchmarks that run protocols of their own
//! in the engine: a system made from a closure, and an empty workload.

use rand_chacha::ChaCha8Rng;

use kzsim_model::{ClientReply, Node, NodeId};

use crate::history::History;
use crate::outcome::Violation;
use crate::system::{Layout, System};
use crate::workload::{OpCall, OpDone, Workload};

/// A workload for systems without clients (the scenario must set
/// `workload.processes = 0`).
pub struct NoWorkload;

impl Workload for NoWorkload {
    fn invoke(&mut self, _process: u64, _rng: &mut ChaCha8Rng) -> OpCall {
        panic!("NoWorkload has no operations: set workload.processes = 0")
    }

    fn complete(&mut self, _process: u64, _call: &OpCall, _reply: &ClientReply) -> OpDone {
        panic!("NoWorkload has no operations")
    }
}

/// A system whose nodes come from a closure, with no workload and no checks.
pub struct ClosureSystem<F> {
    layout: Layout,
    build: F,
}

impl<F: Fn(NodeId) -> Box<dyn Node> + Send> ClosureSystem<F> {
    /// `servers` nodes built by `build`, and no clients.
    pub fn new(servers: u32, build: F) -> ClosureSystem<F> {
        ClosureSystem {
            layout: Layout::new(servers, 0),
            build,
        }
    }
}

impl<F: Fn(NodeId) -> Box<dyn Node> + Send> System for ClosureSystem<F> {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn build(&self, id: NodeId) -> Box<dyn Node> {
        (self.build)(id)
    }

    fn workload(&self) -> Box<dyn Workload> {
        Box::new(NoWorkload)
    }

    fn check(&self, _history: &History, _nodes: &[Option<&dyn Node>]) -> Vec<Violation> {
        Vec::new()
    }

    fn anomalies(&self) -> &'static [&'static str] {
        &[]
    }
}
