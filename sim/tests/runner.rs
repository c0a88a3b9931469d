//! The runner: a panic inside a node is that seed's failure, not a crashed
//! sweep; outcomes carry what CI needs.

use std::path::Path;

use kzsim_model::{Ctx, Input, Node};
use kzsim_sim::runner::{run_with_system, RunOptions};
use kzsim_sim::scenario::Scenario;
use kzsim_sim::testkit::ClosureSystem;

/// Panics when its timer fires, if the RNG says so.
struct Fragile;

impl Node for Fragile {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => cx.set_timer_ms(1, 10),
            Input::Timer { .. } if rand::Rng::gen_bool(cx.rng, 0.5) => {
                panic!("fragile node {} gave up", cx.me);
            }
            _ => {}
        }
    }
}

fn scenario() -> Scenario {
    let text = "description = \"fragile\"\nduration_ms = 100\n[cluster]\nsystem = \"demo\"\nservers = 3\nclients = 0\n[workload]\nprocesses = 0\n[faults]\nquiet_ms = 10\n";
    Scenario::parse(text, Path::new("fragile.toml")).unwrap()
}

#[test]
fn a_node_panic_fails_only_its_seed() {
    let s = scenario();
    let build = || -> Result<Box<dyn kzsim_sim::system::System>, String> {
        Ok(Box::new(ClosureSystem::new(3, |_| -> Box<dyn Node> {
            Box::new(Fragile)
        })))
    };
    let outcomes: Vec<_> = (0..16)
        .map(|seed| run_with_system(&s, seed, &RunOptions::default(), &build).outcome)
        .collect();
    let panicked: Vec<_> = outcomes.iter().filter(|o| !o.ok).collect();
    assert!(!panicked.is_empty() && panicked.len() < outcomes.len());
    for o in &panicked {
        assert_eq!(o.violations[0].kind, "panic");
        assert!(
            o.violations[0].detail.contains("gave up"),
            "{:?}",
            o.violations
        );
    }
    // The same seed panics the same way every time.
    let again = run_with_system(&s, panicked[0].seed, &RunOptions::default(), &build).outcome;
    assert_eq!(again.violations, panicked[0].violations);
}
