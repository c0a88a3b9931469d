//! Faults aimed at protocol events: `[[faults.on]]` entries and the random
//! nemesis's `[faults.on_random]`.
//!
//! Models report named events through their context (a leader elected, an
//! ISR shrink, a proposal logged but not fsynced, ...). After every step
//! the engine hands the step's events to [`Triggers::plan`], which decides
//! which of them set off a fault, when (the event's time plus a delay) and
//! at whom (the event's subject or emitter, or a server picked by role when
//! the fault fires). Its choices come from their own seeded stream, so a
//! scenario without event-triggered faults runs exactly as before.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use kzsim_model::{EventKind, NodeId, ProtoEvent};

use crate::nemesis::{Aim, EventFault, EventTarget, FaultKind, FaultsConfig, Role};

/// A fault planned for an event: it starts at `at_us` and, when it has a
/// duration, ends `duration_us` later (at the quiet period at the latest).
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// When it starts (µs).
    pub at_us: u64,
    /// What it is.
    pub kind: FaultKind,
    /// Where it aims.
    pub aim: Aim,
    /// Its parameter.
    pub value: Option<f64>,
    /// How long it lasts (µs), if it is reverted.
    pub duration_us: Option<u64>,
}

/// One `[[faults.on]]` entry and how many more times it may fire.
struct OnEntry {
    event: EventKind,
    fault: EventFault,
    left: u32,
}

/// `[faults.on_random]`, resolved.
struct RandomEntry {
    probability: f64,
    /// The kinds, each with its duration range (µs).
    kinds: Vec<(FaultKind, (u64, u64))>,
    /// `None`: every event.
    events: Option<Vec<EventKind>>,
    left: u32,
    max_delay_us: u64,
    /// Per event kind, its occurrences so far.
    seen: BTreeMap<EventKind, u64>,
}

/// The event-triggered faults of one run.
pub struct Triggers {
    on: Vec<OnEntry>,
    random: Option<RandomEntry>,
    rng: ChaCha8Rng,
    min_duration_us: u64,
    max_duration_us: u64,
    /// The fault pool: random event faults hit a subject or emitter only
    /// inside it.
    pool: Vec<NodeId>,
}

/// How long a random event fault of `kind` lasts (ms, least and most):
/// as long as the scenario's own faults of that kind, the explicit ones
/// included, so a fault aimed at an event stays within what the scenario
/// promises to survive (a crash shorter than any of its own may, for one,
/// end inside a session timeout its own crashes never do).
pub fn duration_range(cfg: &FaultsConfig, kind: FaultKind) -> (u64, u64) {
    let (lo, hi) = (
        cfg.min_duration_ms,
        cfg.max_duration_ms.max(cfg.min_duration_ms),
    );
    if cfg.random.get(&kind).is_some_and(|r| *r > 0.0) {
        return (lo, hi);
    }
    let own: Vec<u64> = cfg
        .at
        .iter()
        .map(|f| f.get_ref())
        .filter(|f| f.kind == kind)
        .map(|f| f.duration_ms.unwrap_or(hi))
        .collect();
    match (own.iter().min(), own.iter().max()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (lo, hi),
    }
}

/// The fault kinds `[faults.on_random]` draws from when it names none: the
/// kinds of the scenario's own random and explicit faults that hit
/// servers and last a while (the faults the scenario promises to survive).
pub fn default_random_kinds(cfg: &FaultsConfig) -> Vec<FaultKind> {
    let mut kinds: Vec<FaultKind> = cfg
        .random
        .iter()
        .filter(|(_, r)| **r > 0.0)
        .map(|(k, _)| *k)
        .chain(cfg.at.iter().map(|f| f.get_ref().kind))
        .filter(|k| !k.targets_clients() && k.has_duration())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

impl Triggers {
    /// The triggers of `cfg` (`None` when it aims no fault at an event),
    /// for a run whose fault pool is `pool`. Event names were checked when
    /// the scenario was loaded.
    pub fn new(cfg: &FaultsConfig, pool: Vec<NodeId>, rng: ChaCha8Rng) -> Option<Triggers> {
        if cfg.on.is_empty() && cfg.on_random.is_none() {
            return None;
        }
        let on = cfg
            .on
            .iter()
            .filter_map(|f| {
                let f = f.get_ref();
                Some(OnEntry {
                    event: EventKind::parse(&f.event)?,
                    fault: f.clone(),
                    left: f.max_times,
                })
            })
            .collect();
        let random = cfg.on_random.as_ref().map(|r| RandomEntry {
            probability: r.probability,
            kinds: if r.kinds.is_empty() {
                default_random_kinds(cfg)
            } else {
                r.kinds.clone()
            }
            .into_iter()
            .map(|k| {
                let (a, b) = duration_range(cfg, k);
                (k, (a * 1000, b.max(a) * 1000))
            })
            .collect(),
            events: (!r.events.is_empty()).then(|| {
                r.events
                    .iter()
                    .filter_map(|e| EventKind::parse(e))
                    .collect()
            }),
            left: r.max_faults,
            max_delay_us: r.max_delay_ms * 1000,
            seen: BTreeMap::new(),
        });
        Some(Triggers {
            on,
            random,
            rng,
            min_duration_us: cfg.min_duration_ms * 1000,
            max_duration_us: cfg.max_duration_ms.max(cfg.min_duration_ms) * 1000,
            pool,
        })
    }

    fn duration(&mut self, kind: FaultKind, given_ms: Option<u64>) -> Option<u64> {
        if !kind.has_duration() {
            return None;
        }
        Some(match given_ms {
            Some(ms) => ms * 1000,
            None => self
                .rng
                .gen_range(self.min_duration_us..=self.max_duration_us),
        })
    }

    /// The faults the events `events`, reported at `now_us`, set off.
    pub fn plan(&mut self, events: &[ProtoEvent], now_us: u64) -> Vec<Planned> {
        let mut out = Vec::new();
        for e in events {
            for i in 0..self.on.len() {
                let entry = &self.on[i];
                if entry.event != e.kind || entry.left == 0 || now_us < entry.fault.after_ms * 1000
                {
                    continue;
                }
                let p = entry.fault.probability;
                if p < 1.0 && !self.rng.gen_bool(p) {
                    continue;
                }
                self.on[i].left -= 1;
                let f = self.on[i].fault.clone();
                let ids = match f.target {
                    EventTarget::Subject => vec![e.subject],
                    EventTarget::Emitter => vec![e.emitter],
                    _ => Vec::new(),
                };
                let duration_us = self.duration(f.kind, f.duration_ms);
                out.push(Planned {
                    at_us: now_us + f.delay_ms * 1000,
                    kind: f.kind,
                    aim: Aim {
                        ids,
                        group: f.group.clone(),
                        role: f.target.role().unwrap_or(Role::Any),
                        cut_from: f.cut_from.clone(),
                        ..Aim::default()
                    },
                    value: f.value,
                    duration_us,
                });
            }
            if let Some(p) = self.plan_random(e, now_us) {
                out.push(p);
            }
        }
        out
    }

    /// `[faults.on_random]`'s answer to one event.
    fn plan_random(&mut self, e: &ProtoEvent, now_us: u64) -> Option<Planned> {
        let r = self.random.as_mut()?;
        if r.left == 0 || r.kinds.is_empty() {
            return None;
        }
        if r.events.as_ref().is_some_and(|ev| !ev.contains(&e.kind)) {
            return None;
        }
        let k = r.seen.entry(e.kind).or_insert(0);
        *k += 1;
        let p = r.probability / *k as f64;
        if !self.rng.gen_bool(p.clamp(0.0, 1.0)) {
            return None;
        }
        r.left -= 1;
        let (kind, (lo, hi)) = *r.kinds.choose(&mut self.rng).expect("kinds is not empty");
        let delay = self.rng.gen_range(0..=r.max_delay_us);
        let target = [Some(e.subject), Some(e.emitter), None]
            .choose(&mut self.rng)
            .copied()
            .flatten()
            .filter(|n| self.pool.contains(n));
        // A power loss with no target would hit the whole pool; aimed at
        // an event it hits one machine.
        if kind == FaultKind::PowerLoss && target.is_none() {
            return None;
        }
        let duration_us = kind.has_duration().then(|| self.rng.gen_range(lo..=hi));
        Some(Planned {
            at_us: now_us + delay,
            kind,
            aim: Aim {
                ids: target.into_iter().collect(),
                ..Aim::default()
            },
            value: None,
            duration_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg(text: &str) -> FaultsConfig {
        toml::from_str(text).unwrap()
    }

    fn ev(kind: EventKind, emitter: NodeId, subject: NodeId) -> ProtoEvent {
        ProtoEvent {
            kind,
            emitter,
            subject,
        }
    }

    #[test]
    fn an_entry_fires_at_its_event_on_its_subject_up_to_max_times() {
        let c = cfg(
            "[[on]]\nevent = \"isr-expand\"\nkind = \"crash\"\ndelay_ms = 5\nduration_ms = 300\nmax_times = 2\nafter_ms = 100\n",
        );
        let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(1)).unwrap();
        let e = ev(EventKind::IsrExpand, 0, 2);
        assert!(t.plan(&[e], 50_000).is_empty(), "before after_ms");
        assert!(t
            .plan(&[ev(EventKind::IsrShrink, 0, 2)], 200_000)
            .is_empty());
        let p = t.plan(&[e], 200_000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].at_us, 205_000);
        assert_eq!(p[0].kind, FaultKind::Crash);
        assert_eq!(p[0].aim.ids, vec![2]);
        assert_eq!(p[0].duration_us, Some(300_000));
        assert_eq!(t.plan(&[e, e], 300_000).len(), 1, "max_times = 2");
        assert!(t.plan(&[e], 400_000).is_empty());
    }

    #[test]
    fn a_role_target_is_picked_when_the_fault_fires() {
        let c = cfg(
            "[[on]]\nevent = \"leader-change\"\nkind = \"partition-leader\"\ntarget = \"leader\"\n",
        );
        let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(1)).unwrap();
        let p = t.plan(&[ev(EventKind::LeaderChange, 1, 1)], 0);
        assert!(p[0].aim.ids.is_empty());
        assert_eq!(p[0].aim.role, Role::Leader);
        let d = p[0].duration_us.unwrap();
        assert!((200_000..=2_000_000).contains(&d), "{d}");
    }

    #[test]
    fn random_event_faults_favour_rare_events_and_stop_at_max_faults() {
        let c = cfg("[random]\ncrash = 0.5\n[on_random]\nprobability = 0.5\nmax_faults = 1000\n");
        let mut frequent = 0;
        let mut rare = 0;
        for seed in 0..200 {
            let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let hw: Vec<_> = (0..1000).map(|_| ev(EventKind::HwAdvance, 0, 0)).collect();
            frequent += t.plan(&hw, 0).len();
            rare += t.plan(&[ev(EventKind::UncleanElection, 5, 5)], 0).len();
        }
        // Harmonic odds: about 0.5 * ln(1000) ~ 3.7 per run for 1000
        // occurrences, 0.5 for a single one.
        assert!((500..1100).contains(&frequent), "{frequent}");
        assert!((60..140).contains(&rare), "{rare}");
        let c = cfg("[random]\ncrash = 0.5\n[on_random]\nprobability = 1.0\nmax_faults = 2\n");
        let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(0)).unwrap();
        let many: Vec<_> = (0..50)
            .map(|i| ev(EventKind::LeaderChange, i % 3, i % 3))
            .collect();
        let kinds = [
            EventKind::LeaderChange,
            EventKind::IsrShrink,
            EventKind::Truncation,
        ];
        let mut total = t.plan(&many, 0).len();
        for k in kinds {
            total += t.plan(&[ev(k, 1, 1)], 0).len();
        }
        assert_eq!(total, 2);
    }

    #[test]
    fn random_event_faults_hit_only_the_pool() {
        let c = cfg("[random]\nkill = 1.0\n[on_random]\nprobability = 1.0\nmax_faults = 1000\n");
        let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(4)).unwrap();
        for i in 0..200u64 {
            let e = ev(EventKind::RaftLeaderElected, 7, 8);
            for p in t.plan(&[e], i) {
                assert!(p.aim.ids.is_empty(), "7 and 8 are not in the pool");
                assert_eq!(p.kind, FaultKind::Kill);
            }
        }
    }

    #[test]
    fn random_event_faults_last_as_long_as_the_scenarios_own() {
        let c = cfg(
            "min_duration_ms = 10\nmax_duration_ms = 20\n[[at]]\nat_ms = 5\nkind = \"crash\"\nduration_ms = 1000\n[[at]]\nat_ms = 9\nkind = \"crash\"\nduration_ms = 1500\n[on_random]\nprobability = 1.0\nmax_faults = 100\n",
        );
        assert_eq!(duration_range(&c, FaultKind::Crash), (1000, 1500));
        assert_eq!(duration_range(&c, FaultKind::Kill), (10, 20));
        let mut t = Triggers::new(&c, vec![0, 1, 2], ChaCha8Rng::seed_from_u64(2)).unwrap();
        for i in 0..50 {
            for p in t.plan(&[ev(EventKind::IsrShrink, 0, 1)], i) {
                let d = p.duration_us.unwrap();
                assert!((1_000_000..=1_500_000).contains(&d), "{d}");
            }
        }
    }

    #[test]
    fn no_event_faults_no_triggers() {
        assert!(Triggers::new(
            &cfg("[random]\ncrash = 1.0\n"),
            vec![0],
            ChaCha8Rng::seed_from_u64(0)
        )
        .is_none());
    }

    #[test]
    fn the_default_kinds_are_the_scenarios_own_server_faults() {
        let c = cfg(
            "[random]\ncrash = 0.5\npause-client = 1.0\nheal = 1.0\nkill = 0.0\n[[at]]\nat_ms = 5\nkind = \"partition-isolate\"\n",
        );
        assert_eq!(
            default_random_kinds(&c),
            vec![FaultKind::Crash, FaultKind::PartitionIsolate]
        );
    }
}
