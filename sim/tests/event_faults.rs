//! Faults aimed at protocol events, shown on a probe protocol: node 0
//! reports an ISR shrink about node 2 at fixed times, and every node
//! records when it starts. A `[[faults.on]]` entry crashes the event's
//! subject (or emitter) after its delay, as often as `max_times` allows;
//! `[faults.on_random]` draws faults at events; a scenario without either
//! runs exactly as before.

use std::path::Path;
use std::sync::{Arc, Mutex};

use kzsim_model::{Ctx, EventKind, Input, Node, NodeId};
use kzsim_sim::engine::Engine;
use kzsim_sim::scenario::Scenario;
use kzsim_sim::testkit::ClosureSystem;

/// (node, true time in ms, what).
type Log = Arc<Mutex<Vec<(NodeId, u64, &'static str)>>>;

const REPORT: u64 = 1;

/// Node 0 reports `IsrShrink` about node 2 at 300 ms and every 400 ms
/// after; every node logs its starts.
struct Reporter {
    log: Log,
}

impl Node for Reporter {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => {
                self.log
                    .lock()
                    .unwrap()
                    .push((cx.me, cx.now.as_ms(), "start"));
                if cx.me == 0 {
                    cx.set_timer_ms(REPORT, 300);
                }
            }
            Input::Timer { timer: REPORT } => {
                cx.event(EventKind::IsrShrink, 2);
                cx.set_timer_ms(REPORT, 400);
            }
            _ => {}
        }
    }
}

fn run(faults: &str, seed: u64) -> (Vec<(NodeId, u64, &'static str)>, String) {
    let text = format!(
        "description = \"events\"\nduration_ms = 3000\n[cluster]\nsystem = \"demo\"\nservers = 3\nclients = 0\n[workload]\nprocesses = 0\n[faults]\nquiet_ms = 200\n{faults}"
    );
    let scenario = Scenario::parse(&text, Path::new("events.toml")).expect("scenario");
    let log: Log = Arc::default();
    let l = log.clone();
    let system = ClosureSystem::new(3, move |_| -> Box<dyn Node> {
        Box::new(Reporter { log: l.clone() })
    });
    let mut engine = Engine::with_system(&scenario, seed, Box::new(system));
    engine.run();
    let hash = engine.trace().hex();
    let log = log.lock().unwrap().clone();
    (log, hash)
}

fn starts(log: &[(NodeId, u64, &str)], node: NodeId) -> Vec<u64> {
    log.iter()
        .filter(|(n, _, w)| *n == node && *w == "start")
        .map(|(_, t, _)| *t)
        .collect()
}

#[test]
fn a_fault_hits_the_events_subject_after_its_delay_up_to_max_times() {
    let (log, _) = run(
        "[[faults.on]]\nevent = \"isr-shrink\"\nkind = \"crash\"\ndelay_ms = 50\nduration_ms = 100\nmax_times = 2\n",
        1,
    );
    // Events at 300, 700, 1100, ...: node 2 crashes at 350 and 750 and
    // restarts 100 ms later each time; then max_times is spent.
    assert_eq!(starts(&log, 2), vec![0, 450, 850]);
    assert_eq!(starts(&log, 0), vec![0]);
    assert_eq!(starts(&log, 1), vec![0]);
}

#[test]
fn a_fault_can_hit_the_emitter_and_wait_for_after_ms() {
    let (log, _) = run(
        "[[faults.on]]\nevent = \"isr-shrink\"\nkind = \"kill\"\ntarget = \"emitter\"\nduration_ms = 100\nafter_ms = 1000\n",
        1,
    );
    // The first event at or after 1000 ms is the one at 1100.
    assert_eq!(starts(&log, 0), vec![0, 1200]);
    assert_eq!(starts(&log, 2), vec![0]);
}

#[test]
fn other_events_set_nothing_off_and_probability_zero_never_fires() {
    for faults in [
        "[[faults.on]]\nevent = \"leader-change\"\nkind = \"crash\"\n",
        "[[faults.on]]\nevent = \"isr-shrink\"\nkind = \"crash\"\nprobability = 0.0\nmax_times = 100\n",
    ] {
        let (log, _) = run(faults, 1);
        for n in 0..3 {
            assert_eq!(starts(&log, n), vec![0], "{faults}");
        }
    }
}

#[test]
fn random_event_faults_are_seeded_and_draw_from_the_scenarios_kinds() {
    let faults = "[faults.random]\nkill = 0.0001\n[faults.on_random]\nprobability = 1.0\nmax_faults = 3\nmax_delay_ms = 0\n";
    let (a, ha) = run(faults, 5);
    let (b, hb) = run(faults, 5);
    assert_eq!(a, b);
    assert_eq!(ha, hb);
    // Harmonic odds: the 1st, then with 1/2, 1/3, ... of the events fire
    // (3 at most); each is a kill of node 0, node 2, or a pool pick.
    let restarts: usize = (0..3).map(|n| starts(&a, n).len() - 1).sum();
    assert!((1..=3).contains(&restarts), "{a:?}");
    // Without the event faults, the trace is the one without them.
    let (_, plain) = run("[faults.random]\nkill = 0.0001\n", 5);
    let (_, plain2) = run("[faults.random]\nkill = 0.0001\n[[faults.on]]\nevent = \"leader-change\"\nkind = \"crash\"\n", 5);
    assert_eq!(plain, plain2, "a trigger that never fires changes nothing");
    assert_ne!(plain, ha);
}
