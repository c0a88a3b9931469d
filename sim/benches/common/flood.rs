//! The flood protocol of the engine benchmark, shared by `benches/engine.rs`
//! and `examples/flood_profile.rs` (the latter runs it once, for callgrind).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use kzsim_model::demo::DemoMsg;
use kzsim_model::{Ctx, Effect, Input, Msg, Node, NodeId, SimTime};
use kzsim_sim::engine::Engine;
use kzsim_sim::scenario::Scenario;
use kzsim_sim::testkit::ClosureSystem;

const NODES: u32 = 3;
const WINDOW: u64 = 64;

/// Keeps `WINDOW` messages in flight to each peer: every message received is
/// answered with one back.
struct Flood {
    peers: Vec<NodeId>,
    received: u64,
}

impl Node for Flood {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => {
                for &p in &self.peers {
                    for i in 0..WINDOW {
                        cx.send(p, Msg::Demo(DemoMsg::Ack { index: i }));
                    }
                }
            }
            Input::Message { from, .. } => {
                self.received += 1;
                cx.send(
                    from,
                    Msg::Demo(DemoMsg::Ack {
                        index: self.received,
                    }),
                );
            }
            _ => {}
        }
    }
}

pub fn flood(id: NodeId) -> Box<dyn Node> {
    Box::new(Flood {
        peers: (0..NODES).filter(|p| *p != id).collect(),
        received: 0,
    })
}

pub fn scenario(duration_ms: u64) -> Scenario {
    let text = format!(
        "description = \"flood\"\nduration_ms = {duration_ms}\n[cluster]\nsystem = \"demo\"\nservers = {NODES}\nclients = 0\n[workload]\nprocesses = 0\n[faults]\nquiet_ms = 0\n"
    );
    Scenario::parse(&text, Path::new("flood.toml")).expect("flood scenario")
}

/// Runs the engine; returns messages delivered.
pub fn engine_run(s: &Scenario) -> u64 {
    let mut e = Engine::with_system(s, 1, Box::new(ClosureSystem::new(NODES, flood)));
    e.run();
    e.stats().messages
}

/// Steps the same nodes in a plain FIFO loop until `target` messages.
pub fn bare_run(target: u64) -> u64 {
    let mut nodes: Vec<Box<dyn Node>> = (0..NODES).map(flood).collect();
    let mut rngs: Vec<ChaCha8Rng> = (0..NODES as u64).map(ChaCha8Rng::seed_from_u64).collect();
    let mut queue: VecDeque<(NodeId, NodeId, Msg)> = VecDeque::new();
    let mut effects = Vec::new();
    let push = |from: NodeId, effects: &mut Vec<Effect>, q: &mut VecDeque<_>| {
        for e in effects.drain(..) {
            if let Effect::Send { to, msg } = e {
                q.push_back((from, to, msg));
            }
        }
    };
    for id in 0..NODES {
        let mut cx = Ctx::new(SimTime(0), id, &mut rngs[id as usize], &mut effects);
        nodes[id as usize].step(
            Input::Start {
                files: Default::default(),
            },
            &mut cx,
        );
        push(id, &mut effects, &mut queue);
    }
    let mut delivered = 0;
    while delivered < target {
        let (from, to, msg) = queue.pop_front().expect("flood never drains");
        let mut cx = Ctx::new(SimTime(delivered), to, &mut rngs[to as usize], &mut effects);
        nodes[to as usize].step(Input::Message { from, msg }, &mut cx);
        delivered += 1;
        push(to, &mut effects, &mut queue);
    }
    delivered
}

/// Runs the engine; returns messages delivered and the trace hash.
pub fn engine_run_hash(s: &Scenario) -> (u64, String) {
    let mut e = Engine::with_system(s, 1, Box::new(ClosureSystem::new(NODES, flood)));
    e.run();
    (e.stats().messages, e.trace().hex())
}
