//! The runner: one seed gives one outcome; sweeps run seeds on threads.
//!
//! A run builds the world, runs it to the end, checks the history and the
//! final nodes, and reports. A panic inside a node becomes that seed's
//! failure (kind `panic`) with its message; the sweep goes on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use kzsim_model::BugSet;

use crate::engine::Engine;
use crate::history::History;
use crate::outcome::Violation;
use crate::scenario::Scenario;

/// The outcome of one seed of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// The seed.
    pub seed: u64,
    /// Whether the seed passed (see [`judge`]).
    pub ok: bool,
    /// The trace hash (16 hex digits).
    pub trace_hash: String,
    /// Violations found.
    pub violations: Vec<Violation>,
    /// Simulated milliseconds run.
    pub sim_ms: u64,
    /// Wall-clock milliseconds taken.
    pub wall_ms: f64,
    /// Events recorded in the trace.
    pub events: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Client operations invoked.
    pub ops: u64,
    /// Faults injected.
    pub faults: u64,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// The anomaly the scenario declares, if any.
    pub expected: Option<String>,
    /// What the system counted beside its verdict (e.g. `duplicates`).
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// Options of a run beyond the scenario and seed.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Planted bugs switched on from the command line.
    pub bugs: Vec<String>,
    /// Run twice and compare trace hashes.
    pub check_determinism: bool,
}

/// What a run produced, for replay and reports.
pub struct RunArtifacts {
    /// The outcome.
    pub outcome: RunOutcome,
    /// The history (empty if the run panicked before recording).
    pub history: History,
}

/// The bugs of a run: the scenario's and the command line's.
pub fn bug_set(scenario: &Scenario, extra: &[String]) -> BugSet {
    let mut bugs = BugSet::none();
    for b in scenario.bugs().iter().chain(extra) {
        bugs.enable(b);
    }
    bugs
}

/// Decides whether a seed passed. With bugs from the command line, a found
/// violation is the point: `ok` means the bug was found. Otherwise `ok` means
/// no violation other than the declared one and those `allowed` beside it,
/// and the declared one (if any) was shown.
pub fn judge(
    violations: &[Violation],
    expected: Option<&str>,
    allowed: &[String],
    cli_bugs: &[String],
) -> bool {
    let tolerated = |kind: &str| expected.is_some() && allowed.iter().any(|a| a == kind);
    if !cli_bugs.is_empty() {
        // A checker that gave up has not found anything, and neither has
        // a scenario showing only the trade-off it declares.
        return violations.iter().any(|v| {
            v.kind != "check-unknown" && Some(v.kind.as_str()) != expected && !tolerated(&v.kind)
        });
    }
    let unexpected = violations
        .iter()
        .any(|v| Some(v.kind.as_str()) != expected && !tolerated(&v.kind));
    let shown = expected.is_none_or(|e| violations.iter().any(|v| v.kind == e));
    !unexpected && shown
}

std::thread_local! {
    /// Where the last panic on this thread happened (set by the quiet hook).
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the default panic hook (which prints to stderr) with one that
/// only remembers where the panic happened, so a sweep's output stays clean
/// and each failing seed's outcome carries the message and location.
pub fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
    }));
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    };
    match PANIC_AT.with(|p| p.borrow_mut().take()) {
        Some(at) if !at.is_empty() => format!("{msg} (at {at})"),
        _ => msg,
    }
}

/// Runs one seed and returns its outcome and history.
pub fn run_seed_full(scenario: &Scenario, seed: u64, opts: &RunOptions) -> RunArtifacts {
    let bugs = bug_set(scenario, &opts.bugs);
    run_with_system(scenario, seed, opts, &|| {
        crate::system::build(scenario, &bugs)
    })
}

/// Runs one seed around the system `build` makes (tests use their own
/// protocols this way); everything else as [`run_seed_full`].
pub fn run_with_system(
    scenario: &Scenario,
    seed: u64,
    opts: &RunOptions,
    build: &dyn Fn() -> Result<Box<dyn crate::system::System>, String>,
) -> RunArtifacts {
    let started = std::time::Instant::now();
    let bugs = bug_set(scenario, &opts.bugs);
    let mut outcome = RunOutcome {
        scenario: scenario.name.clone(),
        file: scenario.file.display().to_string(),
        seed,
        ok: false,
        trace_hash: String::new(),
        violations: Vec::new(),
        sim_ms: 0,
        wall_ms: 0.0,
        events: 0,
        messages: 0,
        ops: 0,
        faults: 0,
        bugs: bugs.names().map(String::from).collect(),
        expected: scenario.expected().map(String::from),
        counters: Default::default(),
    };
    let mut history = History::new();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<_, String> {
        let mut engine = Engine::with_system(scenario, seed, build()?);
        engine.run();
        let mut violations = engine.monitor_violations();
        violations.extend(engine.system().check(engine.history(), &engine.nodes()));
        Ok((engine, violations))
    }));
    match result {
        Ok(Ok((engine, violations))) => {
            outcome.trace_hash = engine.trace().hex();
            outcome.events = engine.trace().events();
            outcome.messages = engine.stats().messages;
            outcome.faults = engine.stats().faults;
            outcome.sim_ms = engine.now() / 1000;
            outcome.ops = engine
                .history()
                .events
                .iter()
                .filter(|e| e.kind == crate::history::EventType::Invoke)
                .count() as u64;
            outcome.violations = violations;
            outcome.counters = engine
                .system()
                .counters(engine.history())
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            history = engine.history().clone();
        }
        Ok(Err(e)) => outcome
            .violations
            .push(Violation::new("bad-scenario", e, vec![])),
        Err(p) => outcome
            .violations
            .push(Violation::new("panic", panic_message(p), vec![])),
    }
    if opts.check_determinism && !outcome.trace_hash.is_empty() {
        let again = run_with_system(
            scenario,
            seed,
            &RunOptions {
                check_determinism: false,
                ..opts.clone()
            },
            build,
        );
        if again.outcome.trace_hash != outcome.trace_hash {
            outcome.violations.push(Violation::new(
                "nondeterminism",
                format!(
                    "the same seed gave trace hashes {} and {}",
                    outcome.trace_hash, again.outcome.trace_hash
                ),
                vec![],
            ));
        }
    }
    let has_infra_failure = outcome
        .violations
        .iter()
        .any(|v| matches!(v.kind.as_str(), "panic" | "nondeterminism" | "bad-scenario"));
    outcome.ok = !has_infra_failure
        && judge(
            &outcome.violations,
            outcome.expected.as_deref(),
            &scenario.allowed(),
            &opts.bugs,
        );
    outcome.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    RunArtifacts { outcome, history }
}

/// Runs one seed.
pub fn run_seed(scenario: &Scenario, seed: u64, opts: &RunOptions) -> RunOutcome {
    run_seed_full(scenario, seed, opts).outcome
}

/// One unit of work of a sweep.
#[derive(Clone, Debug)]
pub struct Job {
    /// Index of the scenario in the sweep's list.
    pub scenario: usize,
    /// The seed.
    pub seed: u64,
}

/// The jobs of a sweep over `scenarios` x `seeds`, restricted to shard
/// `shard = (i, n)` (job k belongs to shard k mod n).
pub fn jobs(
    n_scenarios: usize,
    seeds: std::ops::Range<u64>,
    shard: Option<(usize, usize)>,
) -> Vec<Job> {
    let mut out = Vec::new();
    let mut k = 0usize;
    for scenario in 0..n_scenarios {
        for seed in seeds.clone() {
            if shard.is_none_or(|(i, n)| k % n == i) {
                out.push(Job { scenario, seed });
            }
            k += 1;
        }
    }
    out
}

/// Runs `jobs` on `threads` threads, calling `report` with each outcome as
/// it completes (from the worker threads, in completion order). With
/// `stop_on_fail`, no new job starts after a failure.
pub fn sweep(
    scenarios: &[Scenario],
    jobs: &[Job],
    opts: &RunOptions,
    threads: usize,
    stop_on_fail: bool,
    report: &(dyn Fn(RunOutcome) + Sync),
) {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let threads = threads.max(1).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(k) else { break };
                let out = run_seed(&scenarios[job.scenario], job.seed, opts);
                if !out.ok && stop_on_fail {
                    stop.store(true, Ordering::Relaxed);
                }
                report(out);
            });
        }
    });
}

/// Collects the outcomes of a sweep, sorted by (scenario, seed).
pub fn sweep_collect(
    scenarios: &[Scenario],
    jobs: &[Job],
    opts: &RunOptions,
    threads: usize,
) -> Vec<RunOutcome> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    sweep(scenarios, jobs, opts, threads, false, &move |o| {
        sink.lock().expect("outcome list").push(o)
    });
    let mut v = std::mem::take(&mut *out.lock().expect("outcome list"));
    v.sort_by(|a, b| (&a.file, a.seed).cmp(&(&b.file, b.seed)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        let lost = vec![Violation::new("lost-write", "x", vec![])];
        assert!(judge(&[], None, &[], &[]));
        assert!(!judge(&lost, None, &[], &[]));
        assert!(judge(&lost, Some("lost-write"), &[], &[]));
        assert!(!judge(&[], Some("lost-write"), &[], &[]));
        assert!(judge(&lost, None, &[], &["b".into()]));
        assert!(!judge(&[], None, &[], &["b".into()]));
        // Allowed consequences are tolerated beside the expected anomaly,
        // but never stand in for it.
        let both = vec![
            Violation::new("lost-write", "x", vec![]),
            Violation::new("inconsistent-offsets", "y", vec![]),
        ];
        let allow = vec!["inconsistent-offsets".to_string()];
        assert!(judge(&both, Some("lost-write"), &allow, &[]));
        assert!(!judge(&both, Some("lost-write"), &[], &[]));
        assert!(!judge(&both[1..], Some("lost-write"), &allow, &[]));
        // With a planted bug on, the declared trade-off is not a find.
        let bug = vec!["b".to_string()];
        assert!(!judge(&both, Some("lost-write"), &allow, &bug));
        let dup = vec![Violation::new("duplicate", "z", vec![])];
        assert!(judge(&dup, Some("lost-write"), &allow, &bug));
    }

    #[test]
    fn shards_partition_the_jobs() {
        let all = jobs(2, 0..10, None);
        let mut union: Vec<(usize, u64)> = (0..3)
            .flat_map(|i| jobs(2, 0..10, Some((i, 3))))
            .map(|j| (j.scenario, j.seed))
            .collect();
        union.sort();
        let mut want: Vec<(usize, u64)> = all.iter().map(|j| (j.scenario, j.seed)).collect();
        want.sort();
        assert_eq!(union, want);
    }
}
