//! Coverage-guided search over fault schedules (`kzsim run --explore N`).
//!
//! A sweep draws every seed's faults at random, without regard to what the
//! protocol is doing. The search keeps the runs that reached something
//! rare (an event count in a new range, a buggify site, and above all a
//! fault kind right after an event kind that no run had put together) and
//! spends its budget mutating their fault schedules: the schedule a run
//! actually applied becomes an explicit list, and a child shifts, drops,
//! adds, retargets or stretches one to three of its faults. Parents are
//! picked by how rare their features are. Each child is an ordinary
//! deterministic run of the scenario with an explicit schedule, so any
//! failure can be written out as a scenario file and replayed.
//!
//! The search is deterministic: its choices come from its own seed, and
//! runs are done in fixed-size generations whose results are taken in
//! order, whatever the number of threads.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use toml::Spanned;

use crate::engine::AppliedFault;
use crate::nemesis::{FaultKind, Role, TimedFault};
use crate::runner::{run_seed_full, RunOptions, RunOutcome, Verdict};
use crate::scenario::validate::takes_nodes;
use crate::scenario::Scenario;

/// Runs per generation (fixed, so the search does not depend on threads).
const GENERATION: usize = 16;

/// The fault kinds a child may add when the scenario has none of its own.
const DEFAULT_KINDS: &[FaultKind] = &[
    FaultKind::Crash,
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::PartitionIsolate,
];

/// One run the search made.
#[derive(Clone, Debug)]
pub struct Tried {
    /// The scenario it ran: the original for the first generation, with an
    /// explicit schedule after that.
    pub scenario: Scenario,
    /// Its explicit schedule (`None`: the scenario's own random one).
    pub schedule: Option<Vec<TimedFault>>,
    /// The seed.
    pub seed: u64,
    /// The outcome.
    pub outcome: RunOutcome,
}

/// What the search reached.
#[derive(Debug, Default)]
pub struct Report {
    /// Runs made.
    pub runs: u64,
    /// Runs kept in the corpus (they reached a new feature).
    pub kept: u64,
    /// Every feature reached, with the number of runs that reached it.
    pub features: BTreeMap<String, u64>,
    /// The runs that failed (or, hunting a planted bug, found it).
    pub hits: Vec<Tried>,
}

/// A corpus entry.
struct Entry {
    seed: u64,
    schedule: Vec<TimedFault>,
    features: BTreeSet<String>,
}

/// The features of a run: events by order of magnitude of their count,
/// buggify sites, and fault-after-event combinations.
pub fn features(o: &RunOutcome) -> BTreeSet<String> {
    o.coverage
        .iter()
        .map(|(k, v)| {
            if k.starts_with("event ") {
                // AFL-style buckets: 1, 2-3, 4-7, ...
                format!("{k} ~{}", 64 - v.leading_zeros())
            } else {
                k.clone()
            }
        })
        .collect()
}

/// The schedule `applied` as explicit faults, aimed at the nodes they hit
/// (as indexes into the `servers` group, or client indexes).
pub fn explicit_schedule(
    scenario: &Scenario,
    applied: &[AppliedFault],
    servers: &[u32],
    clients: &[u32],
) -> Vec<TimedFault> {
    let quiet_at = scenario.spec.duration_ms - scenario.spec.faults.quiet_ms;
    applied
        .iter()
        .filter(|a| a.at_us / 1000 < quiet_at)
        .map(|a| {
            let (group, nodes) = if a.kind.targets_clients() {
                let idx = a
                    .nodes
                    .iter()
                    .filter_map(|n| clients.iter().position(|c| c == n).map(|i| i as u32))
                    .collect();
                (None, idx)
            } else if takes_nodes(a.kind) {
                let idx = a
                    .nodes
                    .iter()
                    .filter_map(|n| servers.iter().position(|s| s == n).map(|i| i as u32))
                    .collect();
                (Some("servers".to_string()), idx)
            } else {
                (None, Vec::new())
            };
            TimedFault {
                at_ms: a.at_us / 1000,
                kind: a.kind,
                nodes,
                group,
                target: Role::Any,
                cut_from: None,
                cut_nodes: Vec::new(),
                file: None,
                duration_ms: a
                    .end_us
                    .filter(|_| a.kind.has_duration())
                    .map(|e| ((e - a.at_us) / 1000).max(1)),
                value: a.value,
            }
        })
        .collect()
}

/// `base` with its faults replaced by the explicit `schedule`.
pub fn with_schedule(base: &Scenario, schedule: &[TimedFault]) -> Scenario {
    let mut s = base.clone();
    let f = &mut s.spec.faults;
    f.random.clear();
    f.on.clear();
    f.on_random = None;
    f.at = schedule
        .iter()
        .map(|t| Spanned::new(0..0, t.clone()))
        .collect();
    s
}

/// The search over one scenario.
pub struct Explorer<'a> {
    base: &'a Scenario,
    opts: &'a RunOptions,
    rng: ChaCha8Rng,
    corpus: Vec<Entry>,
    report: Report,
    kinds: Vec<FaultKind>,
    servers: Vec<u32>,
    clients: Vec<u32>,
    next_seed: u64,
}

impl<'a> Explorer<'a> {
    /// A search over `base` with its own `seed`.
    pub fn new(base: &'a Scenario, opts: &'a RunOptions, seed: u64) -> Result<Self, String> {
        let system = crate::system::build(base, &crate::runner::bug_set(base, &opts.bugs))?;
        let layout = system.layout();
        let mut kinds: Vec<FaultKind> = base
            .spec
            .faults
            .random
            .iter()
            .filter(|(_, r)| **r > 0.0)
            .map(|(k, _)| *k)
            .chain(base.spec.faults.at.iter().map(|f| f.get_ref().kind))
            .filter(|k| !k.targets_clients() && k.has_duration())
            .collect();
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            kinds = DEFAULT_KINDS.to_vec();
        }
        Ok(Explorer {
            base,
            opts,
            rng: ChaCha8Rng::seed_from_u64(seed),
            corpus: Vec::new(),
            report: Report::default(),
            kinds,
            servers: layout.servers.clone(),
            clients: layout.clients.clone(),
            next_seed: seed.wrapping_mul(1_000_003),
        })
    }

    /// Runs `budget` runs on `threads` threads; `each` sees every run in
    /// order. Stops early after a hit when `stop_on_hit`.
    pub fn run(
        mut self,
        budget: u64,
        threads: usize,
        stop_on_hit: bool,
        each: &mut dyn FnMut(&Tried),
    ) -> Report {
        while self.report.runs < budget {
            let n = GENERATION.min((budget - self.report.runs) as usize);
            let plans: Vec<(Option<Vec<TimedFault>>, u64)> = (0..n).map(|_| self.plan()).collect();
            let results = self.run_generation(&plans, threads);
            for ((schedule, seed), (outcome, applied)) in plans.into_iter().zip(results) {
                self.report.runs += 1;
                let scenario = match &schedule {
                    Some(s) => with_schedule(self.base, s),
                    None => self.base.clone(),
                };
                let feats = features(&outcome);
                let new = feats.iter().any(|f| !self.report.features.contains_key(f));
                for f in &feats {
                    *self.report.features.entry(f.clone()).or_insert(0) += 1;
                }
                if new {
                    self.report.kept += 1;
                    self.corpus.push(Entry {
                        seed,
                        schedule: explicit_schedule(
                            self.base,
                            &applied,
                            &self.servers,
                            &self.clients,
                        ),
                        features: feats,
                    });
                }
                let hit = match outcome.verdict {
                    Verdict::Fail | Verdict::Found => true,
                    Verdict::Pass | Verdict::NotFound => false,
                };
                let tried = Tried {
                    scenario,
                    schedule,
                    seed,
                    outcome,
                };
                each(&tried);
                if hit {
                    self.report.hits.push(tried);
                }
            }
            if stop_on_hit && !self.report.hits.is_empty() {
                break;
            }
        }
        self.report
    }

    /// Runs one generation, in order.
    fn run_generation(
        &self,
        plans: &[(Option<Vec<TimedFault>>, u64)],
        threads: usize,
    ) -> Vec<(RunOutcome, Vec<AppliedFault>)> {
        let run = |(schedule, seed): &(Option<Vec<TimedFault>>, u64)| {
            let scenario = match schedule {
                Some(s) => with_schedule(self.base, s),
                None => self.base.clone(),
            };
            let a = run_seed_full(&scenario, *seed, self.opts);
            (a.outcome, a.applied)
        };
        if threads <= 1 {
            return plans.iter().map(run).collect();
        }
        let chunk = plans.len().div_ceil(threads);
        std::thread::scope(|sc| {
            let handles: Vec<_> = plans
                .chunks(chunk.max(1))
                .map(|c| sc.spawn(move || c.iter().map(run).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("explore worker"))
                .collect()
        })
    }

    /// The next run: a fresh seed with the scenario's own faults while the
    /// corpus is small, then mostly a mutation of a rare-featured entry.
    fn plan(&mut self) -> (Option<Vec<TimedFault>>, u64) {
        if self.corpus.len() < 4 || self.rng.gen_bool(0.1) {
            let seed = self.next_seed;
            self.next_seed = self.next_seed.wrapping_add(1);
            return (None, seed);
        }
        let i = self.pick_parent();
        let mut schedule = self.corpus[i].schedule.clone();
        let mut seed = self.corpus[i].seed;
        if self.rng.gen_bool(0.25) {
            seed = self.next_seed;
            self.next_seed = self.next_seed.wrapping_add(1);
        }
        for _ in 0..self.rng.gen_range(1..=3) {
            self.mutate(&mut schedule);
        }
        schedule.sort_by_key(|f| f.at_ms);
        (Some(schedule), seed)
    }

    /// A parent, weighted by the rarity of its features (the sum of one
    /// over how many runs reached each).
    fn pick_parent(&mut self) -> usize {
        let weights: Vec<f64> = self
            .corpus
            .iter()
            .map(|e| {
                e.features
                    .iter()
                    .map(|f| 1.0 / *self.report.features.get(f).unwrap_or(&1) as f64)
                    .sum::<f64>()
                    .max(1e-6)
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut x = self.rng.gen_range(0.0..total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// One mutation: shift, drop, add, retarget or stretch a fault.
    fn mutate(&mut self, schedule: &mut Vec<TimedFault>) {
        let spec = &self.base.spec;
        let quiet_at = spec.duration_ms - spec.faults.quiet_ms;
        let (lo, hi) = (
            spec.faults.min_duration_ms.max(1),
            spec.faults
                .max_duration_ms
                .max(spec.faults.min_duration_ms)
                .max(1),
        );
        let choice = if schedule.is_empty() {
            2
        } else {
            self.rng.gen_range(0..5)
        };
        match choice {
            0 => {
                let f = schedule.choose_mut(&mut self.rng).expect("not empty");
                let shift = self.rng.gen_range(-300i64..=300);
                f.at_ms = (f.at_ms as i64 + shift).clamp(0, quiet_at as i64 - 1) as u64;
            }
            1 => {
                let i = self.rng.gen_range(0..schedule.len());
                schedule.remove(i);
            }
            2 => {
                let kind = *self.kinds.choose(&mut self.rng).expect("kinds");
                let n = self.servers.len() as u32;
                schedule.push(TimedFault {
                    at_ms: self.rng.gen_range(0..quiet_at),
                    kind,
                    nodes: if takes_nodes(kind) {
                        vec![self.rng.gen_range(0..n)]
                    } else {
                        Vec::new()
                    },
                    group: takes_nodes(kind).then(|| "servers".to_string()),
                    target: Role::Any,
                    cut_from: None,
                    cut_nodes: Vec::new(),
                    file: None,
                    duration_ms: Some(self.rng.gen_range(lo..=hi)),
                    value: None,
                });
            }
            3 => {
                let n = self.servers.len() as u32;
                let f = schedule.choose_mut(&mut self.rng).expect("not empty");
                if f.group.as_deref() == Some("servers") && !f.nodes.is_empty() {
                    f.nodes = vec![self.rng.gen_range(0..n)];
                }
            }
            _ => {
                let f = schedule.choose_mut(&mut self.rng).expect("not empty");
                if let Some(d) = f.duration_ms {
                    let k = self.rng.gen_range(0.5..2.0);
                    f.duration_ms = Some(((d as f64 * k) as u64).clamp(1, 3_600_000));
                }
            }
        }
    }
}
