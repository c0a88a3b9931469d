//! The ZooKeeper system: an ensemble of ZAB servers and client nodes, the
//! ZooKeeper workloads, and the checks that hold the ensemble to the promise
//! ZooKeeper makes (see `checks`).
//!
//! An ensemble has 2 to 9 servers: a lone server never elects itself (its
//! election waits for a quorum of votes from peers it does not have).
//!
//! `[cluster.config]` keys (all optional, integers): `tick_ms` (1 to
//! 60000), `init_limit`, `sync_limit` (ticks, 1 to 1000), `snap_count` (1
//! to 1000000), `session_timeout_ms` (what clients ask for),
//! `min_session_timeout_ms` <= `max_session_timeout_ms` (1 ms to an hour),
//! `sync_quorum_confirmed` (boolean, default false: the leader answers a
//! `sync` once its outstanding proposals commit, with no quorum round, as
//! real ZooKeeper does; true adds the round, see
//! [`kzsim_model::zk::ZkConfig::sync_quorum_confirmed`]),
//! `commit_log_count` (1 to 10^6, default 500: the committed proposals the
//! leader keeps in memory for DIFF syncs, `zookeeper.commitLogCount`),
//! `snap_retain_count` (1 to 1000, default 3: snapshots kept, the txn log
//! before the oldest counting as purged, `autopurge.snapRetainCount`),
//! `snapshot_size_factor_pct` (0 to 10000, default 33: a DIFF from the txn
//! log is sent when it weighs at most this share of a snapshot,
//! `zookeeper.snapshotSizeFactor`; 0: never); a learner the leader cannot
//! DIFF gets a SNAP,
//! `check_max_steps` (how many steps the linearizability search may take
//! in one partition before the seed is `check-unknown`, 1000 to 10^11,
//! default 2 * 10^8: a budget in steps, not seconds, so that the verdict
//! does not depend on the machine or its load). `workload.kind` is
//! `cas-register` (default), `counter` (checked by `counter`, not by the
//! linearizability search), `lock` (the lock recipe, checked by `lock`
//! and `fenced`), `election` (leader election, checked by `election`),
//! `config` (a configuration store with watchers, checked by `config`) or
//! `naming` (a naming service of ephemeral registrations, checked by
//! `naming`); the recipes run one process per client node, so one session
//! each.

mod checks;
pub use checks::CheckBudget;
#[cfg(test)]
mod clock_tests;
mod config;
#[cfg(test)]
mod config_tests;
mod counter;
#[cfg(test)]
mod counter_tests;
mod election;
#[cfg(test)]
mod election_tests;
mod fenced;
mod final_state;
mod lock;
#[cfg(test)]
mod lock_tests;
mod naming;
#[cfg(test)]
mod naming_tests;
mod quorum;
#[cfg(test)]
mod test_history;
#[cfg(test)]
mod watch_tests;

use kzsim_model::zk::{ZkClient, ZkConfig, ZkServer};
use kzsim_model::{BugSet, Node, NodeId};

use crate::history::{History, Operation};
use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::system::{config_bool, config_int as int, Layout, Monitor, System, MS};
use crate::workload::zk::{ZkWorkload, ZkWorkloadKind};
use crate::workload::zk_config::ConfigWorkload;
use crate::workload::zk_election::ElectionWorkload;
use crate::workload::zk_lock::LockWorkload;
use crate::workload::zk_naming::NamingWorkload;
use crate::workload::Workload;
use election::Quiet;
use quorum::{DeposedTimeline, QuorumMonitor, SharedTimeline};

/// Anomalies the ZooKeeper checks report.
pub const ANOMALIES: &[&str] = &[
    "nonlinearizable",
    "stale-sync-read",
    "check-unknown",
    "session-order",
    "sequential-order",
    "watch-order",
    "divergent-trees",
    "lost-commit",
    "ephemeral-leak",
    "ephemeral-lost",
    "lock-exclusion",
    "fenced-register",
    "election-two-leaders",
    "election-no-leader",
    "config-order",
    "config-converge",
    "naming-stale",
    "lost-create",
    "phantom-create",
    "duplicate-create",
    "sequence-gap",
    "not-recovered",
    "malformed-history",
];

/// The checks of `kind`'s workload that read only the history.
fn workload_checks(
    kind: ZkWorkloadKind,
    history: &History,
    ops: &[Operation],
    budget: CheckBudget,
    deposed: Option<&DeposedTimeline>,
) -> Vec<Violation> {
    match kind {
        ZkWorkloadKind::CasRegister => checks::linearizable(ops, budget, deposed),
        ZkWorkloadKind::Counter => counter::check(history, ops, None),
        ZkWorkloadKind::Lock => {
            let mut out = lock::exclusion(history, ops);
            out.extend(lock::ephemerals_lost(history, ops));
            out.extend(fenced::check(history, ops));
            out
        }
        ZkWorkloadKind::Election => election::two_leaders(history, ops),
        ZkWorkloadKind::Config => config::order(history, ops),
        ZkWorkloadKind::Naming => naming::stale(history, ops),
    }
}

/// The checks every ZooKeeper workload gets that read only the history.
fn common_checks(history: &History, ops: &[Operation]) -> Vec<Violation> {
    let mut out = checks::session_order(history);
    out.extend(checks::sequential_names(history, ops));
    out.extend(checks::watch_order(history, ops));
    out
}

/// Every check the sweep makes of a `kind` workload's history that needs
/// only the history, not the servers' final trees: what `kzsim check
/// --model zk-<workload>` runs on a history `kzsim replay --history` wrote.
/// `ops` are the history's paired operations; `budget` bounds the
/// linearizability search.
pub fn history_checks(
    kind: ZkWorkloadKind,
    history: &History,
    ops: &[Operation],
    budget: CheckBudget,
) -> Vec<Violation> {
    let mut out = workload_checks(kind, history, ops, budget, None);
    out.extend(common_checks(history, ops));
    out
}

/// The linearizability search's default step budget per partition (a step
/// costs 0.3 to 10 µs with the history). Of 5,000 fresh seeds of
/// zk-lagging-followers, three needed more than 5 * 10^7 steps and less
/// than this (8, 14 and 66 s); all were linearizable.
const DEFAULT_CHECK_MAX_STEPS: u64 = 200_000_000;

/// The ZooKeeper system of one scenario.
pub struct ZkSystem {
    layout: Layout,
    config: ZkConfig,
    bugs: BugSet,
    session_timeout_ms: u64,
    check_max_steps: u64,
    /// Which servers served while deposed, as the monitor saw it.
    deposed: SharedTimeline,
    workload: ZkWorkloadKind,
    keys: u32,
    read_fraction: f64,
    processes: u32,
    quiet: Quiet,
}

impl ZkSystem {
    /// Builds the system from a scenario.
    pub fn new(scenario: &Scenario, bugs: &BugSet) -> Result<ZkSystem, String> {
        let c = &scenario.spec.cluster;
        if !(2..=9).contains(&c.servers) {
            return Err(format!(
                "cluster.servers = {}: a ZooKeeper ensemble here has 2 to 9 servers (a lone server never elects itself leader in this model's election; it stays LOOKING)",
                c.servers
            ));
        }
        let mut config = ZkConfig::default();
        let mut session_timeout_ms = 1_000;
        let mut check_max_steps = DEFAULT_CHECK_MAX_STEPS;
        for (key, v) in &c.config {
            match key.as_str() {
                "tick_ms" => config.tick_ms = int(v, key, 1..=60_000)?,
                "init_limit" => config.init_limit = int(v, key, 1..=1_000)?,
                "sync_limit" => config.sync_limit = int(v, key, 1..=1_000)?,
                "snap_count" => config.snap_count = int(v, key, 1..=1_000_000)?,
                "min_session_timeout_ms" => config.min_session_timeout_ms = int(v, key, MS)?,
                "max_session_timeout_ms" => config.max_session_timeout_ms = int(v, key, MS)?,
                "session_timeout_ms" => session_timeout_ms = int(v, key, MS)?,
                "sync_quorum_confirmed" => config.sync_quorum_confirmed = config_bool(v, key)?,
                "commit_log_count" => config.commit_log_count = int(v, key, 1..=1_000_000)?,
                "snap_retain_count" => config.snap_retain_count = int(v, key, 1..=1_000)?,
                "snapshot_size_factor_pct" => {
                    config.snapshot_size_factor_pct = int(v, key, 0..=10_000)?
                }
                "check_max_steps" => check_max_steps = int(v, key, 1_000..=100_000_000_000)?,
                other => {
                    return Err(format!(
                        "unknown ZooKeeper setting `cluster.config.{other}` (known: tick_ms, init_limit, sync_limit, snap_count, session_timeout_ms, min_session_timeout_ms, max_session_timeout_ms, sync_quorum_confirmed, commit_log_count, snap_retain_count, snapshot_size_factor_pct, check_max_steps)"
                    ))
                }
            }
        }
        if config.min_session_timeout_ms > config.max_session_timeout_ms {
            return Err(format!(
                "cluster.config.min_session_timeout_ms ({}) must not exceed cluster.config.max_session_timeout_ms ({})",
                config.min_session_timeout_ms, config.max_session_timeout_ms
            ));
        }
        let w = &scenario.spec.workload;
        let workload = match w.kind.as_str() {
            "" | "cas-register" => ZkWorkloadKind::CasRegister,
            "counter" => ZkWorkloadKind::Counter,
            "lock" => ZkWorkloadKind::Lock,
            "election" => ZkWorkloadKind::Election,
            "config" => ZkWorkloadKind::Config,
            "naming" => ZkWorkloadKind::Naming,
            other => {
                return Err(format!(
                    "unknown ZooKeeper workload `{other}` (known: cas-register, counter, lock, election, config, naming)"
                ))
            }
        };
        if workload.session_per_process() && w.processes > c.clients {
            return Err(format!(
                "the {} workload needs a session per process: {} processes but {} clients",
                w.kind, w.processes, c.clients
            ));
        }
        let (d, q) = (scenario.spec.duration_ms, scenario.spec.faults.quiet_ms);
        let quiet = Quiet {
            heal_us: d.saturating_sub(q) * 1000,
            writers_stop_us: d.saturating_sub(q * 3 / 4) * 1000,
            settle_us: d.saturating_sub(q / 4) * 1000,
        };
        Ok(ZkSystem {
            layout: Layout::new(c.servers, c.clients),
            config,
            bugs: bugs.clone(),
            session_timeout_ms,
            check_max_steps,
            deposed: SharedTimeline::default(),
            workload,
            keys: w.keys,
            read_fraction: w.read_fraction,
            processes: w.processes,
            quiet,
        })
    }

    fn servers<'a>(&self, nodes: &'a [Option<&'a dyn Node>]) -> Vec<Option<&'a ZkServer>> {
        self.layout
            .servers
            .iter()
            .map(|&s| {
                nodes
                    .get(s as usize)
                    .copied()
                    .flatten()
                    .and_then(|n| n.as_any())
                    .and_then(|a| a.downcast_ref::<ZkServer>())
            })
            .collect()
    }
}

impl System for ZkSystem {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn unread_workload_settings(&self) -> &'static [&'static str] {
        // Client requests time out with the session (ConnectionLoss), not
        // after `timeout_ms`.
        match self.workload {
            ZkWorkloadKind::CasRegister => &["timeout_ms"],
            ZkWorkloadKind::Counter => &["timeout_ms", "keys"],
            ZkWorkloadKind::Lock
            | ZkWorkloadKind::Election
            | ZkWorkloadKind::Config
            | ZkWorkloadKind::Naming => &["timeout_ms", "keys", "read_fraction"],
        }
    }

    fn build(&self, id: NodeId) -> Box<dyn Node> {
        if self.layout.is_server(id) {
            Box::new(ZkServer::new(
                id,
                self.layout.servers.clone(),
                self.config.clone(),
                &self.bugs,
            ))
        } else {
            let first = self.layout.home(id) as usize;
            Box::new(ZkClient::new(
                self.layout.servers.clone(),
                self.session_timeout_ms,
                first,
            ))
        }
    }

    fn workload(&self) -> Box<dyn Workload> {
        match self.workload {
            ZkWorkloadKind::Lock => return Box::new(LockWorkload::new(self.processes)),
            ZkWorkloadKind::Election => return Box::new(ElectionWorkload::new(self.processes)),
            ZkWorkloadKind::Config => return Box::new(ConfigWorkload::new(self.processes)),
            ZkWorkloadKind::Naming => return Box::new(NamingWorkload::new(self.processes)),
            _ => {}
        }
        Box::new(ZkWorkload::new(
            self.workload,
            self.keys,
            self.read_fraction,
        ))
    }

    fn check(&self, history: &History, nodes: &[Option<&dyn Node>]) -> Vec<Violation> {
        let ops = match history.operations() {
            Ok(ops) => ops,
            Err(e) => return vec![Violation::new("malformed-history", e.to_string(), vec![])],
        };
        let servers = self.servers(nodes);
        let serving = servers
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.filter(|s| s.is_serving()).map(|s| (i, s)));
        let mut out = match self.workload {
            // The counter checks judge the final tree too.
            ZkWorkloadKind::Counter => {
                counter::check(history, &ops, serving.map(|(_, s)| s.tree()))
            }
            kind => {
                let deposed = self.deposed.lock().expect("timeline lock");
                workload_checks(
                    kind,
                    history,
                    &ops,
                    CheckBudget::Steps(self.check_max_steps),
                    Some(&deposed),
                )
            }
        };
        if self.workload == ZkWorkloadKind::Lock {
            for (i, s) in servers.iter().enumerate() {
                if let Some(s) = s.filter(|s| s.is_serving()) {
                    out.extend(lock::lost_in_final_tree(history, &ops, i, s.tree()));
                }
            }
        }
        let final_tree = serving.map(|(_, s)| s.tree());
        if self.workload == ZkWorkloadKind::Election {
            out.extend(election::no_leader(history, &ops, self.quiet, final_tree));
        }
        if self.workload == ZkWorkloadKind::Config {
            out.extend(config::converge(&ops, self.quiet, final_tree));
        }
        out.extend(common_checks(history, &ops));
        out.extend(final_state::check(history, &ops, &servers));
        out
    }

    fn anomalies(&self) -> &'static [&'static str] {
        ANOMALIES
    }

    fn monitor(&self) -> Option<Box<dyn Monitor>> {
        Some(Box::new(QuorumMonitor::new(
            self.layout.servers.clone(),
            self.deposed.clone(),
        )))
    }
}
