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

/// The variable that lets tests skip what needs `../shared` (the design
/// notes' data beside the repository) when it is absent. CI never sets it.
pub const ALLOW_MISSING_SHARED: &str = "KZSIM_ALLOW_MISSING_SHARED";

/// Called by a test that found the shared data `what` missing: fails the
/// test with the reason, unless [`ALLOW_MISSING_SHARED`] is `1`, when it
/// prints that the test is skipped and returns. A test that skips quietly
/// would pass while checking nothing.
pub fn shared_data_missing(what: &std::path::Path) {
    if std::env::var(ALLOW_MISSING_SHARED).as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: {} absent ({ALLOW_MISSING_SHARED}=1)",
            what.display()
        );
        return;
    }
    panic!(
        "{} is absent: this test needs ../shared beside the repository (set {ALLOW_MISSING_SHARED}=1 to skip it)",
        what.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shared_data_fails_the_test_unless_allowed() {
        let allowed = std::env::var(ALLOW_MISSING_SHARED).as_deref() == Ok("1");
        let r = std::panic::catch_unwind(|| {
            shared_data_missing(std::path::Path::new("/nonexistent/shared/histories"))
        });
        assert_eq!(r.is_err(), !allowed);
    }
}
