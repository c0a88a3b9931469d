//! ZooKeeper's timeouts run on the monotonic clock (`System.nanoTime`): a
//! wall-clock jump on the leader neither expires sessions nor starts an
//! election.

use std::path::Path;

use kzsim_model::zk::{ZkError, ZkServer};
use kzsim_model::BugSet;

use crate::engine::Engine;
use crate::history::EventType;
use crate::scenario::Scenario;

fn scenario(jump_ms: f64) -> Scenario {
    let text = format!(
        r#"
description = "a clock jump on the leader"
duration_ms = 6000

[cluster]
system = "zk"
servers = 3
clients = 3

[workload]
processes = 3
think_ms = 40.0
keys = 4

[faults]
quiet_ms = 1000

[[faults.at]]
at_ms = 2000
kind = "clock-jump"
target = "leader"
value = {jump_ms:.1}
"#
    );
    Scenario::parse(&text, Path::new("clock-jump.toml")).expect("scenario")
}

/// The servers' current epochs and the number of operations that failed
/// with SessionExpired, after a run.
fn run(jump_ms: f64) -> (Vec<u64>, usize) {
    let mut e = Engine::new(&scenario(jump_ms), 1, &BugSet::none()).expect("engine");
    e.run();
    let epochs = e
        .nodes()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_any()?.downcast_ref::<ZkServer>())
        .map(|s| s.epochs().1)
        .collect();
    let expired = e
        .history()
        .events
        .iter()
        .filter(|ev| {
            ev.kind == EventType::Fail
                && ev.error.as_deref() == Some(&ZkError::SessionExpired.to_string())
        })
        .count();
    (epochs, expired)
}

#[test]
fn a_clock_jump_forward_on_the_leader_expires_no_session_and_starts_no_election() {
    let (epochs, expired) = run(0.0);
    assert_eq!(epochs.len(), 3);
    assert!(epochs.iter().all(|&e| e == epochs[0]), "{epochs:?}");
    assert_eq!(expired, 0);
    let (jumped, expired) = run(10_000.0);
    assert_eq!(jumped, epochs, "an election after the jump");
    assert_eq!(expired, 0, "sessions expired after the jump");
    let (back, expired) = run(-10_000.0);
    assert_eq!(back, epochs, "an election after the jump back");
    assert_eq!(expired, 0);
}
