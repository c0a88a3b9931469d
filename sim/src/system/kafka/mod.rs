//! The Kafka system: brokers in ZooKeeper mode beside a ZooKeeper ensemble,
//! or in KRaft mode (`mode = "kraft"`) beside a Raft quorum of controllers,
//! an admin client that creates the topic, producer and consumer client
//! nodes running the queue workload, and the checks that hold the cluster
//! to Kafka's promise (see `checks` and `monitor`; in KRaft mode also
//! `system::kraft`'s quorum monitor and end-of-run checks).
//!
//! Node ids: ZooKeeper servers (KRaft: controllers) `0..zk_servers`
//! (`0..controllers`), brokers after them
//! (`cluster.servers` of them), then the client nodes (producers first),
//! then the admin. Faults hit the brokers unless a fault names another
//! group (`zk`, or `servers` for all of them) or `fault_pool` says so.
//! Every client node runs one workload process; with the queue workload
//! `workload.processes` may exceed `cluster.clients` (up to 16 processes
//! per producer): the processes past the clients run on the producers,
//! round robin, so that one producer has several sends outstanding and
//! pipelines them. With `workload.kind = "group"` the two are equal.
//!
//! `[cluster.config]` keys (all optional): `mode` (`"zookeeper"`, the
//! default, or `"kraft"`); in KRaft mode `controllers` (3; 1 to 9),
//! `eligible_leader_replicas` (false), `broker_session_timeout_ms` (600),
//! `broker_heartbeat_interval_ms` (130), `quorum_election_timeout_ms`
//! (150), `quorum_fetch_timeout_ms` (300), `metadata_snapshot_records`
//! (64; every host snapshots its metadata image this often, 1 to 1000000);
//! in ZooKeeper mode `zk_servers` (3; 2 to 9: a lone
//! ZooKeeper server never elects itself), `partitions` (2; 1 to 64),
//! `replication_factor` (3 or the brokers if fewer; 1 to the brokers),
//! `acks` (`"all"`, `"1"`, `"0"`), `min_insync_replicas` (2; 1 to the
//! replication factor), `idempotent` (true), `unclean_leader_election`
//! (false), `flush_messages` (1 to 1000000), `flush_ms` (0 to an hour;
//! both unset: never fsync, Kafka's default), `replica_lag_time_max_ms`,
//! `zk_session_timeout_ms`, `request_timeout_ms`, `delivery_timeout_ms`
//! (1 ms to an hour), `truncation_on_fetch` (true: followers truncate on
//! the fetch response's diverging epoch, as Kafka 2.7+; false: they ask
//! OffsetsForLeaderEpoch first, as Kafka 0.11 to 2.6), `max_in_flight` (5;
//! batches in flight per partition, 1 to 5 with idempotence, else to 64),
//! `controlled_shutdown` (true, Kafka's default: a broker asked to stop
//! has the controller move its leaderships away first),
//! `auto_leader_rebalance` (true, Kafka's default: the controller moves
//! leadership back to preferred replicas), `leader_imbalance_check_interval_ms`
//! (10000: Kafka's 300 s scaled as the session timeout is; 1 ms to an
//! hour), `segment_bytes` (65536; 64 to 2^30), `retention_bytes` (unset:
//! keep everything, Kafka's default; 1 to 2^40: size-based retention per
//! partition, which moves the log start), `log_retention_check_interval_ms`
//! (10000: Kafka's 300 s scaled; 1 ms to an hour),
//! `delete_records_interval_ms` (unset; 1 ms to an hour: the admin sends
//! every partition's leader DeleteRecords up to its high watermark this
//! often), `tick_ms` (1 to 60000), `producers` (clients / 2, at
//! least 1; 1 to clients - 1), `fault_pool` (`brokers`, `zk`, `servers`).
//! Values out of range and of the wrong type are errors.

mod checks;
mod monitor;

use std::collections::BTreeMap;

use kzsim_model::kafka::{
    Acks, ConsumerConfig, KafkaAdmin, KafkaBroker, KafkaBugs, KafkaConfig, KafkaConsumer,
    KafkaProducer, ProducerConfig,
};
use kzsim_model::kraft::{KraftBugs, KraftController, KraftSettings};
use kzsim_model::zk::{ZkConfig, ZkServer};
use kzsim_model::{BugSet, Node, NodeId};

use crate::check::kafka::Retention;
use crate::history::History;
use crate::outcome::Violation;
use crate::scenario::Scenario;
use crate::system::group::{self, GroupSettings, GROUP_KEYS};
use crate::system::kraft;
use crate::system::{config_bool as boolean, config_int as int, Layout, Monitor, System, MS};
use crate::workload::group::GroupWorkload;
use crate::workload::kafka::KafkaWorkload;
use crate::workload::Workload;

/// The topic the workload uses.
pub const TOPIC: &str = "jepsen";

/// Anomalies the Kafka checks report.
pub const ANOMALIES: &[&str] = &[
    "inconsistent-offsets",
    "duplicate",
    "lost-write",
    "unseen",
    "poll-skip",
    "nonmonotonic-poll",
    "nonmonotonic-send",
    "G1a",
    "replica-divergence",
    "hw-regression",
    "duplicate-leader",
    "metadata-regression",
    "not-recovered",
    "under-replicated",
    "malformed-history",
    "group-lost",
    "group-split-brain",
    "offset-regression",
    "zombie-commit",
    "duplicate-beyond-window",
    "group-not-recovered",
    "raft-hw-regression",
    "raft-epoch-regression",
    "raft-two-leaders",
    "raft-hw-without-majority",
    "raft-committed-lost",
    "raft-divergence",
    "metadata-divergence",
];

const KNOWN_KEYS: &str = "mode, controllers, eligible_leader_replicas, broker_session_timeout_ms, broker_heartbeat_interval_ms, quorum_election_timeout_ms, quorum_fetch_timeout_ms, metadata_snapshot_records, zk_servers, partitions, replication_factor, acks, min_insync_replicas, idempotent, unclean_leader_election, truncation_on_fetch, controlled_shutdown, auto_leader_rebalance, leader_imbalance_check_interval_ms, flush_messages, flush_ms, segment_bytes, retention_bytes, log_retention_check_interval_ms, delete_records_interval_ms, replica_lag_time_max_ms, zk_session_timeout_ms, tick_ms, request_timeout_ms, delivery_timeout_ms, max_in_flight, producers, fault_pool";

/// The Kafka system of one scenario.
pub struct KafkaSystem {
    layout: Layout,
    /// The ZooKeeper servers, or in KRaft mode the controllers.
    zk: Vec<NodeId>,
    /// KRaft mode.
    kraft: bool,
    brokers: Vec<NodeId>,
    producers: Vec<NodeId>,
    admin: NodeId,
    partitions: u32,
    replication_factor: usize,
    broker_config: KafkaConfig,
    producer_config: ProducerConfig,
    bugs: BugSet,
    /// Consumer-group settings, with `workload.kind = "group"`.
    group: Option<GroupSettings>,
    /// When the quiet period starts (µs).
    quiet_from_us: u64,
    /// Workload threads (`workload.processes`).
    threads: usize,
    /// Where the partitions' log starts moved, filled by the monitor.
    log_starts: monitor::LogStarts,
    /// The admin's DeleteRecords job, if it runs: how often.
    delete_records_interval_ms: Option<u64>,
}

impl KafkaSystem {
    /// Builds the system from a scenario.
    pub fn new(scenario: &Scenario, bugs: &BugSet) -> Result<KafkaSystem, String> {
        let c = &scenario.spec.cluster;
        let kraft = match c.config.get("mode") {
            None => false,
            Some(v) => match v.as_str() {
                Some("zookeeper") => false,
                Some("kraft") => true,
                _ => {
                    return Err(format!(
                        "cluster.config.mode must be \"zookeeper\" or \"kraft\", not {v}"
                    ))
                }
            },
        };
        let mode_keys: &[&str] = if kraft {
            &["zk_servers", "zk_session_timeout_ms"]
        } else {
            &[
                "controllers",
                "eligible_leader_replicas",
                "broker_session_timeout_ms",
                "broker_heartbeat_interval_ms",
                "quorum_election_timeout_ms",
                "quorum_fetch_timeout_ms",
                "metadata_snapshot_records",
            ]
        };
        if let Some(k) = mode_keys.iter().find(|k| c.config.contains_key(**k)) {
            return Err(format!(
                "cluster.config.{k} is a {} setting: it needs mode = \"{}\"",
                if kraft { "ZooKeeper-mode" } else { "KRaft" },
                if kraft { "zookeeper" } else { "kraft" }
            ));
        }
        let z = match (
            kraft,
            c.config.get("zk_servers"),
            c.config.get("controllers"),
        ) {
            (false, None, _) | (true, _, None) => 3,
            (false, Some(v), _) => int(v, "zk_servers", 2..=9).map_err(|e| {
                format!("{e} (a lone ZooKeeper server never elects itself in this model)")
            })? as u32,
            (true, _, Some(v)) => int(v, "controllers", 1..=9)? as u32,
        };
        let mut ks = KraftSettings::new((0..z).collect());
        let b = c.servers;
        if !(1..=9).contains(&b) {
            return Err(format!(
                "cluster.servers = {b}: a Kafka cluster has 1 to 9 brokers"
            ));
        }
        if c.clients < 2 {
            return Err(format!(
                "cluster.clients = {}: a Kafka scenario needs at least 2 clients (a producer and a consumer)",
                c.clients
            ));
        }
        let kind = scenario.spec.workload.kind.as_str();
        let procs = scenario.spec.workload.processes;
        if kind == "group" && procs != c.clients {
            return Err(format!(
                "workload.processes ({procs}) must equal cluster.clients ({}): each group member runs one process",
                c.clients
            ));
        }
        if procs < c.clients {
            return Err(format!(
                "workload.processes ({procs}) must be at least cluster.clients ({}): each Kafka client node runs a process",
                c.clients
            ));
        }
        let mut partitions = 2;
        let mut rf = None;
        let mut producers = (c.clients / 2).max(1) as u64;
        let mut pool = "brokers".to_string();
        let mut bc = KafkaConfig {
            min_insync_replicas: 2,
            ..KafkaConfig::default()
        };
        let mut min_isr_set = false;
        let mut pc = ProducerConfig {
            bugs: KafkaBugs::from_set(bugs),
            ..ProducerConfig::default()
        };
        let mut delete_records_interval_ms = None;
        let mut max_in_flight = None;
        if !kind.is_empty() && kind != "queue" && kind != "group" {
            return Err(format!(
                "unknown Kafka workload `{kind}` (known: queue, group)"
            ));
        }
        let mut group = GroupSettings::new(TOPIC, 2);
        for (key, v) in &c.config {
            if let Some(r) = group.parse(key, v) {
                if kind != "group" {
                    return Err(format!(
                        "cluster.config.{key} is a consumer-group setting: it needs workload.kind = \"group\""
                    ));
                }
                r?;
                continue;
            }
            match key.as_str() {
                "zk_servers" | "controllers" | "mode" => {}
                "eligible_leader_replicas" => ks.eligible_leader_replicas = boolean(v, key)?,
                "broker_session_timeout_ms" => ks.broker_session_timeout_ms = int(v, key, MS)?,
                "broker_heartbeat_interval_ms" => {
                    ks.broker_heartbeat_interval_ms = int(v, key, MS)?
                }
                "quorum_election_timeout_ms" => ks.raft.election_timeout_ms = int(v, key, MS)?,
                "quorum_fetch_timeout_ms" => ks.raft.fetch_timeout_ms = int(v, key, MS)?,
                "metadata_snapshot_records" => {
                    ks.raft.snapshot_every_records = int(v, key, 1..=1_000_000)?
                }
                "partitions" => partitions = int(v, key, 1..=64)? as u32,
                "replication_factor" => {
                    rf = Some(
                        int(v, key, 1..=b as u64)
                            .map_err(|e| format!("{e} (at most the cluster.servers brokers)"))?,
                    )
                }
                "acks" => {
                    pc.acks = match v
                        .as_str()
                        .map(String::from)
                        .or_else(|| v.as_integer().map(|i| i.to_string()))
                        .as_deref()
                    {
                        Some("all") | Some("-1") => Acks::All,
                        Some("1") => Acks::Leader,
                        Some("0") => Acks::None,
                        _ => {
                            return Err(format!("cluster.config.acks must be \"all\", \"1\" or \"0\", not {v}"))
                        }
                    }
                }
                "min_insync_replicas" => {
                    bc.min_insync_replicas = int(v, key, 1..=9)? as usize;
                    min_isr_set = true;
                }
                "idempotent" => pc.idempotent = boolean(v, key)?,
                "unclean_leader_election" => bc.unclean_leader_election = boolean(v, key)?,
                "truncation_on_fetch" => bc.truncation_on_fetch = boolean(v, key)?,
                "controlled_shutdown" => bc.controlled_shutdown = boolean(v, key)?,
                "auto_leader_rebalance" => bc.auto_leader_rebalance = boolean(v, key)?,
                "leader_imbalance_check_interval_ms" => {
                    bc.leader_imbalance_check_interval_ms = int(v, key, MS)?
                }
                "flush_messages" => {
                    bc.log.flush_messages = Some(int(v, key, 1..=1_000_000)?)
                }
                "flush_ms" => bc.log.flush_ms = Some(int(v, key, 0..=*MS.end())?),
                "segment_bytes" => bc.log.segment_bytes = int(v, key, 64..=1 << 30)?,
                "retention_bytes" => bc.log.retention_bytes = Some(int(v, key, 1..=1 << 40)?),
                "delete_records_interval_ms" => {
                    delete_records_interval_ms = Some(int(v, key, MS)?)
                }
                "log_retention_check_interval_ms" => {
                    bc.log_retention_check_interval_ms = int(v, key, MS)?
                }
                "replica_lag_time_max_ms" => bc.replica_lag_time_max_ms = int(v, key, MS)?,
                "zk_session_timeout_ms" => bc.zk_session_timeout_ms = int(v, key, MS)?,
                "tick_ms" => bc.tick_ms = int(v, key, 1..=60_000)?,
                "request_timeout_ms" => pc.request_timeout_ms = int(v, key, MS)?,
                "delivery_timeout_ms" => pc.delivery_timeout_ms = int(v, key, MS)?,
                "max_in_flight" => max_in_flight = Some(int(v, key, 1..=64)? as usize),
                "producers" => producers = int(v, key, 1..=c.clients as u64 - 1)?,
                "fault_pool" => {
                    pool = v
                        .as_str()
                        .filter(|p| ["brokers", "zk", "controllers", "servers"].contains(p))
                        .ok_or_else(|| format!(
                            "cluster.config.fault_pool must be \"brokers\", \"zk\", \"controllers\" or \"servers\", not {v}"
                        ))?
                        .to_string()
                }
                other => {
                    return Err(format!(
                        "unknown Kafka setting `cluster.config.{other}` (known: {KNOWN_KEYS}; with workload.kind = \"group\": {GROUP_KEYS})"
                    ))
                }
            }
        }
        if let Some(n) = max_in_flight {
            if pc.idempotent && n > 5 {
                return Err(format!(
                    "cluster.config.max_in_flight = {n}: at most 5 with an idempotent producer (the broker remembers 5 batches per producer)"
                ));
            }
            pc.max_in_flight = n;
        }
        let producers_n = producers.min(c.clients as u64 - 1).max(1);
        if procs - c.clients > 15 * producers_n as u32 {
            return Err(format!(
                "workload.processes ({procs}): at most 16 processes per producer ({producers_n} producers, {} clients)",
                c.clients
            ));
        }
        let rf_set = rf.is_some();
        let rf = rf.unwrap_or(3.min(b as u64));
        if bc.min_insync_replicas as u64 > rf {
            return Err(format!(
                "cluster.config.min_insync_replicas ({}{}) must be at most cluster.config.replication_factor ({rf}{})",
                bc.min_insync_replicas,
                if min_isr_set { "" } else { ", the default" },
                if rf_set { "" } else { ", the default for cluster.servers brokers" }
            ));
        }
        if kraft && kind == "group" && group.protocol == group::GroupProtocol::Zookeeper {
            return Err(
                "cluster.config.group_protocol = \"zookeeper\" needs ZooKeeper: it cannot run with mode = \"kraft\"".into(),
            );
        }
        let group = if kind == "group" {
            group.member.partitions = partitions;
            group.validate(b, scenario.spec.faults.quiet_ms)?;
            bc.group = group.coordinator.clone();
            Some(group)
        } else {
            None
        };
        let zk: Vec<NodeId> = (0..z).collect();
        let brokers: Vec<NodeId> = (z..z + b).collect();
        let clients: Vec<NodeId> = (z + b..z + b + c.clients).collect();
        let admin = z + b + c.clients;
        if kraft {
            bc.kraft = Some(ks);
        } else {
            bc.zk_servers = zk.clone();
        }
        let mut homes: Vec<NodeId> = (0..c.clients).map(|i| brokers[(i % b) as usize]).collect();
        homes.push(zk[0]);
        let servers: Vec<NodeId> = (0..z + b).collect();
        let groups = vec![
            ("brokers".to_string(), brokers.clone()),
            ("zk".to_string(), zk.clone()),
            ("controllers".to_string(), zk.clone()),
            ("servers".to_string(), servers.clone()),
            (
                "consumers".to_string(),
                clients[producers as usize..].to_vec(),
            ),
            (
                "producers".to_string(),
                clients[..producers as usize].to_vec(),
            ),
            (
                "zk-and-producers".to_string(),
                zk.iter()
                    .chain(&clients[..producers as usize])
                    .copied()
                    .collect(),
            ),
        ];
        let fault_pool = groups
            .iter()
            .find(|(n, _)| *n == pool)
            .map(|(_, g)| g.clone())
            .unwrap_or_else(|| brokers.clone());
        Ok(KafkaSystem {
            layout: Layout {
                servers,
                clients: clients.clone(),
                support: vec![admin],
                homes,
                fault_pool,
                groups,
            },
            zk,
            kraft,
            producers: clients[..producers as usize].to_vec(),
            brokers,
            admin,
            partitions,
            replication_factor: rf as usize,
            broker_config: bc,
            producer_config: pc,
            bugs: bugs.clone(),
            group,
            threads: procs as usize,
            log_starts: monitor::LogStarts::default(),
            delete_records_interval_ms,
            quiet_from_us: scenario
                .spec
                .duration_ms
                .saturating_sub(scenario.spec.faults.quiet_ms)
                * 1000,
        })
    }

    /// The replica assignment: partition `p` on `rf` brokers starting at
    /// broker `p mod brokers`, the first one preferred.
    fn assignment(&self) -> BTreeMap<u32, Vec<NodeId>> {
        (0..self.partitions)
            .map(|p| {
                let n = self.brokers.len();
                let replicas = (0..self.replication_factor)
                    .map(|i| self.brokers[(p as usize + i) % n])
                    .collect();
                (p, replicas)
            })
            .collect()
    }

    fn brokers_of<'a>(
        &self,
        nodes: &'a [Option<&'a dyn Node>],
    ) -> Vec<(NodeId, Option<&'a KafkaBroker>)> {
        self.brokers
            .iter()
            .map(|&b| {
                let broker = nodes
                    .get(b as usize)
                    .copied()
                    .flatten()
                    .and_then(|n| n.as_any())
                    .and_then(|a| a.downcast_ref::<KafkaBroker>());
                (b, broker)
            })
            .collect()
    }
}

impl System for KafkaSystem {
    fn unread_workload_settings(&self) -> &'static [&'static str] {
        // Producers and consumers time out by the Kafka settings
        // (`request_timeout_ms`, `delivery_timeout_ms`, ...).
        &["timeout_ms", "read_fraction", "keys"]
    }

    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn build(&self, id: NodeId) -> Box<dyn Node> {
        if self.kraft && self.zk.contains(&id) {
            Box::new(KraftController::new(
                id,
                self.broker_config.clone(),
                KraftBugs::from_set(&self.bugs),
            ))
        } else if self.zk.contains(&id) {
            Box::new(ZkServer::new(
                id,
                self.zk.clone(),
                ZkConfig::default(),
                &self.bugs,
            ))
        } else if self.brokers.contains(&id) {
            Box::new(KafkaBroker::new(id, self.broker_config.clone(), &self.bugs))
        } else if id == self.admin {
            let topics = vec![(TOPIC.to_string(), self.assignment())];
            let admin = if self.kraft {
                KafkaAdmin::kraft(self.zk.clone(), topics)
            } else {
                KafkaAdmin::new(self.zk.clone(), 0, topics)
            };
            Box::new(match self.delete_records_interval_ms {
                Some(every) => admin.with_delete_records(self.brokers.clone(), every),
                None => admin,
            })
        } else if self.producers.contains(&id) {
            Box::new(KafkaProducer::new(
                self.brokers.clone(),
                self.producer_config.clone(),
            ))
        } else if let Some(g) = &self.group {
            g.build_member(id, &self.zk, &self.brokers, &self.bugs)
        } else {
            Box::new(KafkaConsumer::new(
                self.brokers.clone(),
                ConsumerConfig::default(),
                &self.bugs,
            ))
        }
    }

    fn workload(&self) -> Box<dyn Workload> {
        if let Some(g) = &self.group {
            return Box::new(GroupWorkload::new(
                TOPIC,
                self.partitions,
                self.layout.clients.len() as u64,
                self.producers.len() as u64,
                !g.member.auto_commit,
            ));
        }
        Box::new(KafkaWorkload::new(
            TOPIC,
            self.partitions,
            self.threads as u64,
            self.layout.clients.len() as u64,
            self.producers.len() as u64,
        ))
    }

    fn thread_client(&self, thread: usize) -> NodeId {
        let clients = &self.layout.clients;
        let t = thread % self.threads.max(1);
        if t < clients.len() {
            clients[t]
        } else {
            self.producers[(t - clients.len()) % self.producers.len()]
        }
    }

    fn check(&self, history: &History, nodes: &[Option<&dyn Node>]) -> Vec<Violation> {
        let ops = match history.operations() {
            Ok(ops) => ops,
            Err(e) => return vec![Violation::new("malformed-history", e.to_string(), vec![])],
        };
        let retention = Retention {
            starts: self
                .log_starts
                .lock()
                .expect("log starts")
                .iter()
                .map(|(p, line)| {
                    let line = line.iter().map(|&(t, s)| (t, s as i64)).collect();
                    (p.to_string(), line)
                })
                .collect(),
        };
        let mut out = if self.group.is_some() {
            let mut out = checks::queue(&group::queue_view(history, &ops), &retention);
            let report = group::checks::check(&ops, self.partitions, self.quiet_from_us);
            out.extend(report.violations);
            if self
                .group
                .as_ref()
                .is_some_and(|g| g.protocol == group::GroupProtocol::Coordinator)
            {
                out.extend(group::final_group_state(&self.brokers_of(nodes)));
            }
            out
        } else {
            checks::queue(&ops, &retention)
        };
        let brokers = self.brokers_of(nodes);
        out.extend(checks::final_replicas(&checks::views(
            TOPIC,
            self.partitions,
            &brokers,
        )));
        if self.kraft {
            let controllers: Vec<(NodeId, Option<&dyn Node>)> = self
                .zk
                .iter()
                .map(|&c| (c, nodes.get(c as usize).copied().flatten()))
                .collect();
            out.extend(kraft::checks::voters_agree(&controllers));
            out.extend(kraft::checks::images_agree(&controllers, &brokers));
        }
        out
    }

    fn counters(&self, history: &History) -> Vec<(&'static str, u64)> {
        if self.group.is_none() {
            return Vec::new();
        }
        let Ok(ops) = history.operations() else {
            return Vec::new();
        };
        let (processed, duplicates) = group::checks::counts(&ops);
        vec![("processed", processed), ("duplicates", duplicates)]
    }

    fn anomalies(&self) -> &'static [&'static str] {
        ANOMALIES
    }

    fn monitor(&self) -> Option<Box<dyn Monitor>> {
        self.log_starts.lock().expect("log starts").clear();
        let replicas = Box::new(monitor::ReplicaMonitor::with_log_starts(
            self.brokers.clone(),
            self.log_starts.clone(),
        ));
        if self.kraft {
            let quorum = Box::new(kraft::monitor::RaftMonitor::new(self.zk.clone()));
            return Some(Box::new(kraft::monitor::Both(replicas, quorum)));
        }
        Some(replicas)
    }
}
