//! The nemesis: which faults happen when.
//!
//! A schedule is a list of timed [`Action`]s: a fault starts (with its
//! targets chosen when it fires, e.g. "the current leader") and, for faults
//! with a duration, ends. Random schedules are drawn from the seed with a rate
//! per fault kind; explicit schedules come from the scenario. Every schedule
//! ends with a quiet period: all faults healed, every node running, so the
//! end-of-run checks can read everything. A stalled application
//! (`stall-client`) is the one exception: its stall is its own fault, which
//! the quiet period does not heal; it ends at its own end time only.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use toml::Spanned;

/// A kind of fault.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Machine crash: the process dies and the page cache is lost.
    Crash,
    /// Process crash (kill -9): the process dies; the page cache survives.
    Kill,
    /// Graceful stop (SIGTERM): the server shuts down as it does for an
    /// operator, exits, and is started again when the fault ends.
    Shutdown,
    /// Start a crashed node again from its durable disk.
    Restart,
    /// Stop a process (SIGSTOP); it resumes later with stale beliefs.
    Pause,
    /// Stop a client node's process (an application's GC pause); it resumes
    /// later with stale beliefs, its session perhaps expired meanwhile.
    PauseClient,
    /// Crash a client node's process: its volatile state and the operations
    /// in flight on it are gone; it is booted fresh when the fault ends.
    CrashClient,
    /// The application on a client node stops issuing calls (a deadlock)
    /// while the node itself (heartbeats, timers, network) runs on; not
    /// ended by the quiet period.
    StallClient,
    /// Resume a paused process.
    Resume,
    /// Split the servers into two random halves.
    PartitionHalves,
    /// Cut one server off from everyone.
    PartitionIsolate,
    /// Cut the current leader off from everyone.
    PartitionLeader,
    /// Overlapping majorities: two sides that share one bridge server.
    PartitionBridge,
    /// Drop traffic in one direction between two random groups.
    PartitionOneWay,
    /// Heal every partition.
    Heal,
    /// Swizzle-clog: clog links one by one, then unclog in random order.
    Swizzle,
    /// Add latency to the links out of one server.
    SlowLink,
    /// Lose messages with a probability (each loss breaks a connection).
    Loss,
    /// Add latency to every link.
    Delay,
    /// Jump one node's clock forward or back.
    ClockJump,
    /// Flip bits near the end of a durable file of one server.
    DiskCorrupt,
    /// Make a server's next fsyncs fail with EIO.
    DiskEio,
    /// Fill a server's disk (ENOSPC).
    DiskFull,
    /// Slow a server's disk.
    DiskSlow,
    /// Power loss of several servers at once (all by default).
    PowerLoss,
}

impl FaultKind {
    /// Every fault kind with its name and description.
    pub fn all() -> &'static [(FaultKind, &'static str, &'static str)] {
        use FaultKind::*;
        &[
            (Crash, "crash", "machine crash of a server: the process dies and unsynced writes are lost (or torn); restarted later"),
            (Kill, "kill", "process crash of a server: the process dies, the page cache survives; restarted later"),
            (Shutdown, "shutdown", "graceful stop of a server (SIGTERM): it shuts down as for an operator (a Kafka broker moves its leaderships away, then flushes its logs) and exits; killed if still up when the fault ends, then restarted"),
            (Restart, "restart", "start a crashed server again from what its disk durably holds"),
            (Pause, "pause", "stop a server's process; it resumes later with stale beliefs and a backlog of input"),
            (PauseClient, "pause-client", "stop a client node's process (an application's GC pause); `nodes` are client indexes; it resumes later, its session perhaps expired"),
            (CrashClient, "crash-client", "crash a client node's process (`nodes` are client indexes): operations in flight on it end `info` \"client crashed\", its threads go on as new processes; booted fresh when the fault ends or the quiet period begins"),
            (StallClient, "stall-client", "the application on a client node (`nodes` are client indexes) issues no new call while its node runs on; ends at its own end time only, never by the quiet period"),
            (Resume, "resume", "resume paused servers"),
            (PartitionHalves, "partition-halves", "split the servers (and their clients) into two random halves"),
            (PartitionIsolate, "partition-isolate", "cut one server off from every other node"),
            (PartitionLeader, "partition-leader", "cut the current leader off from every other node"),
            (PartitionBridge, "partition-bridge", "two overlapping majorities that share one bridge server"),
            (PartitionOneWay, "partition-one-way", "drop traffic one way between two random groups"),
            (Heal, "heal", "heal every partition"),
            (Swizzle, "swizzle", "FoundationDB-style swizzle-clog: clog links one by one, unclog in random order"),
            (SlowLink, "slow-link", "add `value` ms of latency to the links out of one server (to `cut_from` / `cut_nodes` only, if given)"),
            (Loss, "loss", "lose messages with probability `value`; a loss breaks its connection"),
            (Delay, "delay", "add `value` ms of latency to every link"),
            (ClockJump, "clock-jump", "jump one server's clock by `value` ms (negative: back, never past its boot at zero)"),
            (DiskCorrupt, "disk-corrupt", "flip a bit in the last `value` bytes (default 64) of a durable file of one server (one whose name contains `file`, if given)"),
            (DiskEio, "disk-eio", "the next `value` fsyncs of one server fail with EIO, dropping unsynced pages"),
            (DiskFull, "disk-full", "one server's disk is full (ENOSPC) until healed"),
            (DiskSlow, "disk-slow", "one server's disk becomes `value` times slower"),
            (PowerLoss, "power-loss", "power loss of several servers at once (all by default): unsynced writes lost"),
        ]
    }

    /// The fault's name in scenario files.
    pub fn name(self) -> &'static str {
        FaultKind::all()
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
            .expect("every kind is listed")
    }

    /// Whether a random occurrence of this fault lasts a while and is then
    /// reverted (restart after crash, heal after partition, ...).
    pub fn has_duration(self) -> bool {
        !matches!(
            self,
            FaultKind::Restart
                | FaultKind::Resume
                | FaultKind::Heal
                | FaultKind::ClockJump
                | FaultKind::DiskCorrupt
        )
    }

    /// Whether the fault's explicit `nodes` are client indexes (into the
    /// layout's clients) rather than server ones.
    pub fn targets_clients(self) -> bool {
        matches!(
            self,
            FaultKind::PauseClient | FaultKind::CrashClient | FaultKind::StallClient
        )
    }

    /// Whether the fault is the application's own and so outlives the
    /// quiet period: it ends at its own end time only (it lasts to the end
    /// of the run when that is later, or when it has no duration).
    pub fn outlives_quiet(self) -> bool {
        self == FaultKind::StallClient
    }
}

/// Which servers, by what they are doing when a fault fires.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Any server of the pool.
    #[default]
    Any,
    /// A server that leads (the ZAB leader; a broker leading a partition).
    Leader,
    /// A server that does not lead.
    Follower,
    /// The server that believes it is the controller (Kafka).
    Controller,
    /// A broker that coordinates a consumer group (Kafka).
    Coordinator,
}

impl Role {
    /// The role's name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Any => "any",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Controller => "controller",
            Role::Coordinator => "coordinator",
        }
    }
}

/// Where a fault aims: explicit servers or a pool and a role, and for
/// partitions whom the targets are cut off from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aim {
    /// Explicit targets: indexes into the pool; empty = chosen when it fires.
    pub nodes: Vec<u32>,
    /// The server group to choose from (default: the system's fault pool).
    pub group: Option<String>,
    /// Choose among the pool's servers in this role (all when none is).
    pub role: Role,
    /// Partitions: cut the targets off from this group of servers, or from
    /// the pool's servers in this role (`leader`, `controller`, ...), rather
    /// than from every other node; `slow-link`: slow only the links to them.
    pub cut_from: Option<String>,
    /// Partitions: cut the targets off from these servers (indexes into the
    /// pool), rather than from every other node; `slow-link`: slow only the
    /// links to them.
    pub cut_nodes: Vec<u32>,
    /// `disk-corrupt`: flip bits only in a file whose name contains this
    /// (default: any file).
    pub file: Option<String>,
    /// Explicit targets as node ids (a fault aimed at a protocol event's
    /// subject or emitter); when given, `nodes` and `role` are not read.
    pub ids: Vec<u32>,
}

/// One explicit fault from the scenario.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    /// When it starts (ms of simulated time).
    pub at_ms: u64,
    /// What it is.
    pub kind: FaultKind,
    /// Target servers (indexes into the pool; client indexes for
    /// `pause-client`, `crash-client` and `stall-client`); empty = chosen
    /// when it fires.
    #[serde(default)]
    pub nodes: Vec<u32>,
    /// The server group targets come from (`servers`, or the system's
    /// groups, e.g. `zk` and `brokers`); default: the system's fault pool.
    #[serde(default)]
    pub group: Option<String>,
    /// Pick a server in this role when the fault fires.
    #[serde(default)]
    pub target: Role,
    /// Partitions: cut the targets off only from this group, or from the
    /// pool's servers in this role; `slow-link`: slow only the links to
    /// them.
    #[serde(default)]
    pub cut_from: Option<String>,
    /// Partitions: cut the targets off only from these servers (indexes
    /// into the pool, like `nodes`); `slow-link`: slow only the links to
    /// them.
    #[serde(default)]
    pub cut_nodes: Vec<u32>,
    /// `disk-corrupt`: corrupt only a file whose name contains this (e.g.
    /// `txnlog`, `snap.`); default: any durable file of the target.
    #[serde(default)]
    pub file: Option<String>,
    /// How long until it is reverted (ms); none = until healed or the quiet
    /// period (`stall-client`: until the end of the run).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// A parameter (loss probability, delay ms, jump ms, slow factor, count).
    #[serde(default)]
    pub value: Option<f64>,
}

/// Whom a fault aimed at a protocol event hits.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EventTarget {
    /// The node the event is about (a new leader, the replica that left
    /// the ISR, the follower that logged a proposal, ...).
    #[default]
    Subject,
    /// The node that reported the event.
    Emitter,
    /// Any server of the pool.
    Any,
    /// A server that leads when the fault fires.
    Leader,
    /// A server that does not lead.
    Follower,
    /// The controller (Kafka).
    Controller,
    /// A group coordinator (Kafka).
    Coordinator,
}

impl EventTarget {
    /// The role a fault aimed at this target picks from, for the targets
    /// that are roles.
    pub fn role(self) -> Option<Role> {
        match self {
            EventTarget::Subject | EventTarget::Emitter => None,
            EventTarget::Any => Some(Role::Any),
            EventTarget::Leader => Some(Role::Leader),
            EventTarget::Follower => Some(Role::Follower),
            EventTarget::Controller => Some(Role::Controller),
            EventTarget::Coordinator => Some(Role::Coordinator),
        }
    }
}

/// A fault aimed at a protocol event (`[[faults.on]]`): when a model
/// reports `event`, the fault starts `delay_ms` later (with `probability`,
/// at most `max_times` in a run).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventFault {
    /// The event's name (`kzsim list` shows them), e.g. `isr-expand`.
    pub event: String,
    /// The fault.
    pub kind: FaultKind,
    /// Whom it hits: the event's `subject` (default) or `emitter`, or a
    /// server picked by role when it fires.
    #[serde(default)]
    pub target: EventTarget,
    /// For role targets: the server group to pick from (default: the
    /// system's fault pool).
    #[serde(default)]
    pub group: Option<String>,
    /// Partitions: cut the target off only from this group or role.
    #[serde(default)]
    pub cut_from: Option<String>,
    /// From the event to the fault (ms of simulated time).
    #[serde(default)]
    pub delay_ms: u64,
    /// How long until it is reverted (ms); none = drawn from
    /// `faults.min_duration_ms` to `faults.max_duration_ms`.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// The fault's parameter, as in `[[faults.at]]`.
    #[serde(default)]
    pub value: Option<f64>,
    /// The chance that an occurrence of the event sets the fault off.
    #[serde(default = "one")]
    pub probability: f64,
    /// At most this many faults from this entry in a run.
    #[serde(default = "one_time")]
    pub max_times: u32,
    /// Occurrences before this time (ms) are ignored (e.g. the first
    /// elections while the cluster forms).
    #[serde(default)]
    pub after_ms: u64,
}

fn one() -> f64 {
    1.0
}

fn one_time() -> u32 {
    1
}

/// Faults the random nemesis aims at protocol events
/// (`[faults.on_random]`): each occurrence of an event may set off a fault
/// of one of `kinds`, aimed at the event's subject, its emitter or any
/// server of the pool. The k-th occurrence of an event kind in a run does
/// so with probability `probability / k`, so rare events (an unclean
/// election, a snapshot sync) draw about as many faults as frequent ones
/// (a high-watermark advance).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OnRandom {
    /// The chance for an event kind's first occurrence.
    pub probability: f64,
    /// The fault kinds to draw from (default: the kinds of the scenario's
    /// own random and explicit faults that hit servers).
    pub kinds: Vec<FaultKind>,
    /// The events to aim at (default: every one).
    pub events: Vec<String>,
    /// At most this many such faults in a run.
    pub max_faults: u32,
    /// The delay from the event to the fault is drawn up to this (ms).
    pub max_delay_ms: u64,
}

impl Default for OnRandom {
    fn default() -> Self {
        OnRandom {
            probability: 0.2,
            kinds: Vec::new(),
            events: Vec::new(),
            max_faults: 4,
            max_delay_ms: 20,
        }
    }
}

/// The faults of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Random faults: occurrences per second of simulated time, by kind
    /// (0 = none; finite, and at most `MAX_FAULTS_PER_KIND` expected in a
    /// run: see `scenario::validate`).
    pub random: BTreeMap<FaultKind, f64>,
    /// Explicit faults.
    pub at: Vec<Spanned<TimedFault>>,
    /// Faults aimed at protocol events.
    pub on: Vec<Spanned<EventFault>>,
    /// Random faults aimed at protocol events.
    pub on_random: Option<OnRandom>,
    /// Shortest random fault duration (ms).
    pub min_duration_ms: u64,
    /// Longest random fault duration (ms).
    pub max_duration_ms: u64,
    /// The quiet period at the end of the run (ms).
    pub quiet_ms: u64,
    /// At most this many servers of the fault pool down or paused at once:
    /// a crash, kill or pause that would exceed it does not happen (power
    /// loss, a correlated fault, is not limited). Unset: no limit; set, 1
    /// to the pool's size.
    pub max_down: Option<u32>,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        FaultsConfig {
            random: BTreeMap::new(),
            at: Vec::new(),
            on: Vec::new(),
            on_random: None,
            min_duration_ms: 200,
            max_duration_ms: 2_000,
            quiet_ms: 2_000,
            max_down: None,
        }
    }
}

/// A step of the schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// Fault `id` starts.
    Start {
        /// Identifies the occurrence (its end refers to it).
        id: u32,
        /// The fault.
        kind: FaultKind,
        /// Where it aims.
        aim: Aim,
        /// Its parameter.
        value: Option<f64>,
    },
    /// Fault `id` ends (reverted).
    End {
        /// The occurrence.
        id: u32,
    },
    /// The quiet period begins: heal everything, restart everything (but
    /// leave the faults that [outlive it](FaultKind::outlives_quiet)).
    Quiet,
}

/// A timed step.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// True simulated time (µs).
    pub at_us: u64,
    /// What happens.
    pub kind: ActionKind,
}

/// Builds the whole schedule of a run, sorted by time (stable for ties).
/// A fault's end comes at the quiet period at the latest, unless the fault
/// [outlives it](FaultKind::outlives_quiet): then it may come after the run
/// has ended, and so never.
pub fn schedule(cfg: &FaultsConfig, duration_ms: u64, rng: &mut ChaCha8Rng) -> Vec<Action> {
    let quiet_at_us = (duration_ms - cfg.quiet_ms) * 1000;
    let mut actions = Vec::new();
    let mut next_id = 0u32;
    let mut push = |actions: &mut Vec<Action>,
                    at_us: u64,
                    kind: FaultKind,
                    aim: Aim,
                    value: Option<f64>,
                    dur_us: Option<u64>| {
        let id = next_id;
        next_id += 1;
        actions.push(Action {
            at_us,
            kind: ActionKind::Start {
                id,
                kind,
                aim,
                value,
            },
        });
        if let Some(d) = dur_us {
            let end = if kind.outlives_quiet() {
                at_us + d
            } else {
                (at_us + d).min(quiet_at_us)
            };
            actions.push(Action {
                at_us: end,
                kind: ActionKind::End { id },
            });
        }
    };
    for f in &cfg.at {
        let f = f.get_ref();
        let at = f.at_ms * 1000;
        if at < quiet_at_us {
            push(
                &mut actions,
                at,
                f.kind,
                Aim {
                    nodes: f.nodes.clone(),
                    group: f.group.clone(),
                    role: f.target,
                    cut_from: f.cut_from.clone(),
                    cut_nodes: f.cut_nodes.clone(),
                    file: f.file.clone(),
                    ids: Vec::new(),
                },
                f.value,
                f.duration_ms.map(|d| d * 1000),
            );
        }
    }
    for (&kind, &rate) in &cfg.random {
        if rate <= 0.0 {
            continue;
        }
        // A Poisson process over the active part of the run.
        let mut t = 0.0f64;
        let end_s = quiet_at_us as f64 / 1e6;
        loop {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += -u.ln() / rate;
            if t >= end_s {
                break;
            }
            let dur = kind.has_duration().then(|| {
                rng.gen_range(cfg.min_duration_ms..=cfg.max_duration_ms.max(cfg.min_duration_ms))
                    * 1000
            });
            push(
                &mut actions,
                (t * 1e6) as u64,
                kind,
                Aim::default(),
                None,
                dur,
            );
        }
    }
    actions.push(Action {
        at_us: quiet_at_us,
        kind: ActionKind::Quiet,
    });
    actions.sort_by_key(|a| a.at_us);
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_schedule_is_seeded_and_ends_quiet() {
        let mut cfg = FaultsConfig::default();
        cfg.random.insert(FaultKind::Crash, 1.0);
        cfg.random.insert(FaultKind::PartitionHalves, 0.5);
        let a = schedule(&cfg, 10_000, &mut ChaCha8Rng::seed_from_u64(9));
        let b = schedule(&cfg, 10_000, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a, b);
        assert!(a.len() > 3);
        let last = a.last().unwrap();
        assert_eq!(last.kind, ActionKind::Quiet);
        assert!(a.iter().all(|x| x.at_us <= 8_000_000));
        let starts = a
            .iter()
            .filter(|x| matches!(x.kind, ActionKind::Start { .. }))
            .count();
        let ends = a
            .iter()
            .filter(|x| matches!(x.kind, ActionKind::End { .. }))
            .count();
        assert_eq!(starts, ends, "every random fault is reverted");
    }

    #[test]
    fn only_a_stall_ends_after_the_quiet_period_begins() {
        let mut cfg = FaultsConfig::default();
        cfg.random.insert(FaultKind::CrashClient, 2.0);
        cfg.random.insert(FaultKind::StallClient, 2.0);
        cfg.min_duration_ms = 3_000;
        cfg.max_duration_ms = 3_000;
        let a = schedule(&cfg, 10_000, &mut ChaCha8Rng::seed_from_u64(3));
        let kinds: BTreeMap<u32, FaultKind> = a
            .iter()
            .filter_map(|x| match x.kind {
                ActionKind::Start { id, kind, .. } => Some((id, kind)),
                _ => None,
            })
            .collect();
        let ends = |k: FaultKind| -> Vec<u64> {
            a.iter()
                .filter_map(|x| match x.kind {
                    ActionKind::End { id } if kinds[&id] == k => Some(x.at_us),
                    _ => None,
                })
                .collect()
        };
        assert!(ends(FaultKind::CrashClient).iter().all(|t| *t <= 8_000_000));
        let stalls = ends(FaultKind::StallClient);
        assert!(stalls.iter().any(|t| *t > 8_000_000), "{stalls:?}");
        assert!(a.windows(2).all(|w| w[0].at_us <= w[1].at_us), "sorted");
    }
}
