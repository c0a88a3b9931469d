//! The runner: one seed gives one outcome; sweeps run seeds on threads.
//!
//! A run builds the world, runs it to the end, checks the history and the
//! final nodes, and reports. A panic inside a node becomes that seed's
//! failure (kind `panic`) with its message; the sweep goes on.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
    /// Whether the seed is not a failure: its verdict is not
    /// [`Verdict::Fail`] (see [`judge`]).
    pub ok: bool,
    /// What the seed showed (see [`Verdict`]).
    pub verdict: Verdict,
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
    pub counters: BTreeMap<String, u64>,
    /// Coverage: how often each protocol event (`event NAME`) was
    /// reported and each buggify site (`buggify SITE`) fired in the run.
    #[serde(default)]
    pub coverage: BTreeMap<String, u64>,
}

/// The verdict on one seed.
///
/// Without planted bugs from the command line a seed passes or fails.
/// With them (`--bug`), the run is a search: a seed that shows the anomaly
/// one of the bugs breaks (its [`kzsim_model::BugInfo::anomaly`]) is a
/// find, and one that does not is "not found", which is neither a failure
/// nor an error. A panic, a nondeterministic trace or a scenario the system
/// refuses fails the seed in both modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No violation beyond the declared ones, and the declared one shown.
    Pass,
    /// A violation the scenario does not declare, an expected anomaly not
    /// shown, or a failure of the run itself.
    Fail,
    /// `--bug`: the seed shows a switched-on bug's anomaly.
    Found,
    /// `--bug`: the seed does not show any switched-on bug's anomaly.
    NotFound,
}

impl Verdict {
    /// The word the summary and replay print for it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Found => "FOUND",
            Verdict::NotFound => "not found",
        }
    }
}

/// The anomaly kinds that count as finds for planted bugs `cli_bugs`
/// (unknown names contribute nothing; the CLI validates them first).
pub fn bug_anomalies(cli_bugs: &[String]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = cli_bugs
        .iter()
        .filter_map(|b| kzsim_model::bugs::find_bug(b))
        .map(|b| b.anomaly)
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
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
    /// The faults that started, in order (empty if the run panicked).
    pub applied: Vec<crate::engine::AppliedFault>,
}

/// The bugs of a run: the scenario's and the command line's.
pub fn bug_set(scenario: &Scenario, extra: &[String]) -> BugSet {
    let mut bugs = BugSet::none();
    for b in scenario.bugs().iter().chain(extra) {
        bugs.enable(b);
    }
    bugs
}

/// Judges a seed. With bugs from the command line the seed is
/// [`Verdict::Found`] when it shows one of their anomalies and
/// [`Verdict::NotFound`] otherwise. Without, it passes when it shows no
/// violation other than the declared one and those `allowed` beside it,
/// and shows the declared one (if any).
pub fn judge(
    violations: &[Violation],
    expected: Option<&str>,
    allowed: &[String],
    cli_bugs: &[String],
) -> Verdict {
    if !cli_bugs.is_empty() {
        let wanted = bug_anomalies(cli_bugs);
        // A kind the scenario declares is its own trade-off, not a find.
        let shows =
            |v: &Violation| wanted.contains(&v.kind.as_str()) && Some(v.kind.as_str()) != expected;
        return if violations.iter().any(shows) {
            Verdict::Found
        } else {
            Verdict::NotFound
        };
    }
    let tolerated = |kind: &str| expected.is_some() && allowed.iter().any(|a| a == kind);
    let unexpected = violations
        .iter()
        .any(|v| Some(v.kind.as_str()) != expected && !tolerated(&v.kind));
    let shown = expected.is_none_or(|e| violations.iter().any(|v| v.kind == e));
    if !unexpected && shown {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
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
        verdict: Verdict::Fail,
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
        coverage: Default::default(),
    };
    let mut history = History::new();
    let mut applied = Vec::new();
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
            outcome.coverage = engine.coverage();
            history = engine.history().clone();
            applied = engine.applied_faults().to_vec();
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
    outcome.verdict = if has_infra_failure {
        Verdict::Fail
    } else {
        judge(
            &outcome.violations,
            outcome.expected.as_deref(),
            &scenario.allowed(),
            &opts.bugs,
        )
    };
    outcome.ok = outcome.verdict != Verdict::Fail;
    outcome.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    RunArtifacts {
        outcome,
        history,
        applied,
    }
}

/// Runs one seed.
pub fn run_seed(scenario: &Scenario, seed: u64, opts: &RunOptions) -> RunOutcome {
    run_seed_full(scenario, seed, opts).outcome
}

/// One unit of work of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// Index of the scenario in the sweep's list.
    pub scenario: usize,
    /// The seed.
    pub seed: u64,
}

/// The jobs of a sweep over `n_scenarios` scenarios x `seeds`, restricted
/// to one shard, computed on demand so that a range of any size costs no
/// memory. Jobs are numbered scenario-major (every seed of the first
/// scenario, then the second's); job `k` of the whole sweep belongs to
/// shard `k mod n`.
#[derive(Clone, Debug)]
pub struct JobSpace {
    n_scenarios: usize,
    seeds: std::ops::Range<u64>,
    shard: (u128, u128),
}

impl JobSpace {
    /// The space of `n_scenarios` x `seeds`, keeping shard `shard = (i, n)`
    /// (`None`: all jobs).
    pub fn new(
        n_scenarios: usize,
        seeds: std::ops::Range<u64>,
        shard: Option<(usize, usize)>,
    ) -> JobSpace {
        let (i, n) = shard.unwrap_or((0, 1));
        JobSpace {
            n_scenarios,
            seeds,
            shard: (i as u128, n.max(1) as u128),
        }
    }

    /// Jobs in the whole sweep, before sharding.
    pub fn total(&self) -> u128 {
        self.n_scenarios as u128 * (self.seeds.end.saturating_sub(self.seeds.start)) as u128
    }

    /// Jobs in this shard.
    pub fn len(&self) -> u128 {
        let (i, n) = self.shard;
        let total = self.total();
        if total <= i {
            0
        } else {
            (total - i).div_ceil(n)
        }
    }

    /// Whether this shard holds no job.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th job of this shard, in sweep order.
    pub fn get(&self, k: u128) -> Option<Job> {
        if k >= self.len() {
            return None;
        }
        let (i, n) = self.shard;
        let global = i + k * n;
        let per = (self.seeds.end - self.seeds.start) as u128;
        Some(Job {
            scenario: (global / per) as usize,
            seed: self.seeds.start + (global % per) as u64,
        })
    }
}

/// Runs the jobs of `space` on `threads` threads, calling `report` with each
/// job's number in the shard and its outcome as it completes (from the
/// worker threads, in completion order). With `stop_on` given, no new job
/// starts once an outcome satisfies it.
pub fn sweep(
    scenarios: &[Scenario],
    space: &JobSpace,
    opts: &RunOptions,
    threads: usize,
    stop_on: Option<&(dyn Fn(&RunOutcome) -> bool + Sync)>,
    report: &(dyn Fn(u128, RunOutcome) + Sync),
) {
    let next = Mutex::new(0u128);
    let stop = AtomicBool::new(false);
    let threads = (threads.max(1) as u128).min(space.len().max(1)) as usize;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let k = {
                    let mut n = next.lock().expect("job counter");
                    let k = *n;
                    *n += 1;
                    k
                };
                let Some(job) = space.get(k) else { break };
                let out = run_seed(&scenarios[job.scenario], job.seed, opts);
                if stop_on.is_some_and(|f| f(&out)) {
                    stop.store(true, Ordering::Relaxed);
                }
                report(k, out);
            });
        }
    });
}

/// Collects the outcomes of a sweep in sweep order.
pub fn sweep_collect(
    scenarios: &[Scenario],
    space: &JobSpace,
    opts: &RunOptions,
    threads: usize,
) -> Vec<RunOutcome> {
    let out = Mutex::new(Vec::new());
    sweep(scenarios, space, opts, threads, None, &|k, o| {
        out.lock().expect("outcome list").push((k, o))
    });
    let mut v = out.into_inner().expect("outcome list");
    v.sort_by_key(|(k, _)| *k);
    v.into_iter().map(|(_, o)| o).collect()
}

/// Hands outcomes on in job order although they complete in any order:
/// outcomes that arrive early wait until every earlier job has come in.
/// With `W` workers at most about `W` outcomes wait at any time.
#[derive(Debug, Default)]
pub struct InOrder {
    next: u128,
    waiting: BTreeMap<u128, RunOutcome>,
}

impl InOrder {
    /// Takes job `k`'s outcome; returns the outcomes now due, in order.
    pub fn push(&mut self, k: u128, o: RunOutcome) -> Vec<RunOutcome> {
        self.waiting.insert(k, o);
        let mut due = Vec::new();
        while let Some(o) = self.waiting.remove(&self.next) {
            due.push(o);
            self.next += 1;
        }
        due
    }

    /// The outcomes still waiting (after a stop, later jobs may have
    /// finished while an earlier one never ran), in order.
    pub fn rest(self) -> Vec<RunOutcome> {
        self.waiting.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        use Verdict::*;
        let lost = vec![Violation::new("lost-write", "x", vec![])];
        assert_eq!(judge(&[], None, &[], &[]), Pass);
        assert_eq!(judge(&lost, None, &[], &[]), Fail);
        assert_eq!(judge(&lost, Some("lost-write"), &[], &[]), Pass);
        assert_eq!(judge(&[], Some("lost-write"), &[], &[]), Fail);
        // Allowed consequences are tolerated beside the expected anomaly,
        // but never stand in for it.
        let both = vec![
            Violation::new("lost-write", "x", vec![]),
            Violation::new("inconsistent-offsets", "y", vec![]),
        ];
        let allow = vec!["inconsistent-offsets".to_string()];
        assert_eq!(judge(&both, Some("lost-write"), &allow, &[]), Pass);
        assert_eq!(judge(&both, Some("lost-write"), &[], &[]), Fail);
        assert_eq!(judge(&both[1..], Some("lost-write"), &allow, &[]), Fail);
    }

    #[test]
    fn a_bug_is_found_only_by_its_own_anomaly() {
        use Verdict::*;
        let bug = vec!["demo_ack_before_fsync".to_string()];
        let lost = vec![Violation::new("lost-write", "x", vec![])];
        let phantom = vec![Violation::new("phantom-read", "y", vec![])];
        assert_eq!(judge(&lost, None, &[], &bug), Found);
        // Another anomaly is not this bug's find, and nothing is not a
        // failure either.
        assert_eq!(judge(&phantom, None, &[], &bug), NotFound);
        assert_eq!(judge(&[], None, &[], &bug), NotFound);
        // A checker that gave up has found nothing.
        let unknown = vec![Violation::new("check-unknown", "z", vec![])];
        assert_eq!(judge(&unknown, None, &[], &bug), NotFound);
    }

    fn all(space: &JobSpace) -> Vec<(usize, u64)> {
        (0..space.len())
            .map(|k| space.get(k).unwrap())
            .map(|j| (j.scenario, j.seed))
            .collect()
    }

    #[test]
    fn shards_partition_the_jobs() {
        let whole = all(&JobSpace::new(2, 5..15, None));
        assert_eq!(whole.len(), 20);
        assert_eq!(whole[0], (0, 5));
        assert_eq!(whole[10], (1, 5));
        let mut union: Vec<(usize, u64)> = (0..3)
            .flat_map(|i| all(&JobSpace::new(2, 5..15, Some((i, 3)))))
            .collect();
        union.sort();
        assert_eq!(union, whole);
        assert!(JobSpace::new(1, 0..3, Some((5, 8))).is_empty());
        assert_eq!(JobSpace::new(1, 0..3, Some((2, 8))).len(), 1);
    }

    #[test]
    fn a_huge_range_costs_nothing_to_describe() {
        let space = JobSpace::new(3, 0..u64::MAX, Some((1, 2)));
        assert_eq!(space.total(), 3 * u64::MAX as u128);
        let last = space.get(space.len() - 1).unwrap();
        assert_eq!(last.scenario, 2);
        assert!(space.get(space.len()).is_none());
    }

    #[test]
    fn outcomes_come_out_in_job_order() {
        let o = |seed| RunOutcome {
            seed,
            ..sample_outcome()
        };
        let mut order = InOrder::default();
        assert!(order.push(2, o(2)).is_empty());
        assert!(order.push(1, o(1)).is_empty());
        let due: Vec<u64> = order.push(0, o(0)).iter().map(|o| o.seed).collect();
        assert_eq!(due, vec![0, 1, 2]);
        assert!(order.push(4, o(4)).is_empty());
        assert_eq!(order.rest().len(), 1);
    }

    fn sample_outcome() -> RunOutcome {
        RunOutcome {
            scenario: "s".into(),
            file: "s.toml".into(),
            seed: 0,
            ok: true,
            verdict: Verdict::Pass,
            trace_hash: String::new(),
            violations: vec![],
            sim_ms: 0,
            wall_ms: 0.0,
            events: 0,
            messages: 0,
            ops: 0,
            faults: 0,
            bugs: vec![],
            expected: None,
            counters: Default::default(),
            coverage: Default::default(),
        }
    }
}
