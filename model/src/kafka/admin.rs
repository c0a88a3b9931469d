//! The admin client: creates topics the way `kafka-topics.sh --zookeeper`
//! did, by writing `/brokers/topics/<topic>` (the replica assignment) on
//! its own ZooKeeper session. The controller sees the new znode and elects
//! the partitions' first leaders.
//!
//! It retries every [`RETRY_MS`] until each topic's znode exists: a create
//! that fails (no quorum yet, ConnectionLoss) is sent again, and
//! `NodeExists` counts as done (an earlier attempt whose answer was lost).
//!
//! Optionally it is also an operator's cleanup job
//! (`kafka-delete-records.sh` on a schedule): every so often it asks a
//! broker for metadata and sends each partition's leader DeleteRecords up
//! to the high watermark.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::types::{KafkaMsg, Tp};
use crate::kafka::zkdata;
use crate::kraft::{KraftError, KraftMsg};
use crate::msg::{ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};
use crate::time::SimTime;
use crate::zk::{CreateMode, ZkClient, ZkError, ZkOp, ZkRequest};

/// Pause between attempts (ms of the admin's clock).
pub const RETRY_MS: u64 = 100;
/// A create unanswered for this long is sent again (ms).
const GIVE_UP_MS: u64 = 3_000;

const TIMER_RETRY: u64 = 1;
const TIMER_DELETE: u64 = 2;
/// The embedded ZooKeeper client's timers are shifted by this much.
const TIMER_ZK_BASE: u64 = 100;

/// A topic to create: its name and partition -> replica list.
pub type TopicAssignment = (String, BTreeMap<u32, Vec<NodeId>>);

/// The admin client node.
pub struct KafkaAdmin {
    /// The ZooKeeper session (ZooKeeper mode).
    zk: Option<ZkClient>,
    /// KRaft mode: the controllers asked (CreateTopics), and the topics.
    kraft: Option<(Vec<NodeId>, Vec<TopicAssignment>)>,
    /// Znodes still to create, in order: the parents, then the topics.
    todo: Vec<(String, Vec<u8>)>,
    /// Paths known to exist.
    done: BTreeSet<String>,
    /// Outstanding creates by request id, with when they were sent.
    pending: BTreeMap<ReqId, (String, SimTime)>,
    next_req: ReqId,
    /// The DeleteRecords job: the brokers to ask, and how often.
    delete_records: Option<(Vec<NodeId>, u64)>,
    /// Rounds of the job so far (picks the broker asked for metadata).
    rounds: usize,
    next_corr: u64,
}

impl KafkaAdmin {
    /// An admin client of the ensemble `zk_servers` that creates `topics`.
    pub fn new(zk_servers: Vec<NodeId>, first: usize, topics: Vec<TopicAssignment>) -> KafkaAdmin {
        let mut todo: Vec<(String, Vec<u8>)> = zkdata::PARENTS
            .iter()
            .map(|p| (p.to_string(), Vec::new()))
            .collect();
        for (topic, assignment) in &topics {
            todo.push((
                zkdata::topic_path(topic),
                zkdata::encode_assignment(assignment),
            ));
        }
        KafkaAdmin::with_todo(Some(ZkClient::new(zk_servers, 2_000, first)), None, todo)
    }

    fn with_todo(
        zk: Option<ZkClient>,
        kraft: Option<(Vec<NodeId>, Vec<TopicAssignment>)>,
        todo: Vec<(String, Vec<u8>)>,
    ) -> KafkaAdmin {
        KafkaAdmin {
            zk,
            kraft,
            todo,
            done: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_req: 1,
            delete_records: None,
            rounds: 0,
            next_corr: 1,
        }
    }

    /// An admin of a KRaft cluster: it creates `topics` with CreateTopics
    /// sent to the controllers in turn (a non-active one refuses).
    pub fn kraft(controllers: Vec<NodeId>, topics: Vec<TopicAssignment>) -> KafkaAdmin {
        let todo = topics
            .iter()
            .map(|(t, _)| (zkdata::topic_path(t), Vec::new()))
            .collect();
        KafkaAdmin::with_todo(None, Some((controllers, topics)), todo)
    }

    /// Also runs the DeleteRecords job against `brokers` every `every_ms`.
    pub fn with_delete_records(mut self, brokers: Vec<NodeId>, every_ms: u64) -> KafkaAdmin {
        self.delete_records = Some((brokers, every_ms));
        self
    }

    fn corr(&mut self) -> u64 {
        self.next_corr += 1;
        self.next_corr
    }

    /// One round of the job: ask a broker which partitions it knows.
    fn delete_round(&mut self, cx: &mut Ctx<'_>) {
        let Some((brokers, every)) = self.delete_records.clone() else {
            return;
        };
        self.rounds += 1;
        let corr = self.corr();
        cx.send(
            brokers[self.rounds % brokers.len()],
            Msg::Kafka(KafkaMsg::Metadata { corr }),
        );
        cx.set_timer_ms(TIMER_DELETE, every);
    }

    fn on_kafka(&mut self, m: KafkaMsg, cx: &mut Ctx<'_>) {
        match m {
            KafkaMsg::MetadataResp { partitions, .. } => {
                let led: Vec<(Tp, NodeId)> = partitions
                    .into_iter()
                    .filter(|p| !p.tp.topic.starts_with("__"))
                    .filter_map(|p| p.state.leader.map(|l| (p.tp, l)))
                    .collect();
                for (tp, leader) in led {
                    let corr = self.corr();
                    cx.send(
                        leader,
                        Msg::Kafka(KafkaMsg::DeleteRecords {
                            corr,
                            tp,
                            offset: None,
                        }),
                    );
                }
            }
            KafkaMsg::DeleteRecordsResp { corr, result } => {
                tracing::debug!("kafka: admin: DeleteRecords {corr}: {result:?}");
            }
            _ => {}
        }
    }

    /// Whether every topic's znode is known to exist.
    pub fn finished(&self) -> bool {
        self.todo.iter().all(|(p, _)| self.done.contains(p))
    }

    fn drive_zk(&mut self, input: Input, cx: &mut Ctx<'_>) {
        let Some(zk) = self.zk.as_mut() else {
            return;
        };
        for (id, r) in zk.step_embedded(input, TIMER_ZK_BASE, cx) {
            if let Some((path, _)) = self.pending.remove(&id) {
                if matches!(r.result, Ok(_) | Err(ZkError::NodeExists)) {
                    self.done.insert(path);
                }
            }
        }
    }

    /// Sends the creates still owed (each once at a time).
    fn attempt(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        self.pending
            .retain(|_, (_, at)| now.0 < at.0 + GIVE_UP_MS * 1_000);
        let owed: Vec<(String, Vec<u8>)> = self
            .todo
            .iter()
            .filter(|(p, _)| !self.done.contains(p) && !self.pending.values().any(|(q, _)| q == p))
            .cloned()
            .collect();
        if let Some((controllers, topics)) = self.kraft.clone() {
            for (path, _) in owed {
                let Some((topic, assignment)) =
                    topics.iter().find(|(t, _)| zkdata::topic_path(t) == path)
                else {
                    continue;
                };
                let corr = self.corr();
                self.rounds += 1;
                self.pending.insert(corr, (path.clone(), now));
                cx.send(
                    controllers[self.rounds % controllers.len()],
                    Msg::Kraft(KraftMsg::CreateTopics {
                        corr,
                        topic: topic.clone(),
                        assignment: assignment.clone(),
                    }),
                );
            }
            if !self.finished() {
                cx.set_timer_ms(TIMER_RETRY, RETRY_MS);
            }
            return;
        }
        for (path, data) in owed {
            let id = self.next_req;
            self.next_req += 1;
            self.pending.insert(id, (path.clone(), now));
            let op = ZkOp::Create {
                path,
                data,
                mode: CreateMode::Persistent,
            };
            self.drive_zk(
                Input::Client {
                    id,
                    req: ClientRequest::Zk(ZkRequest::Op(op)),
                },
                cx,
            );
        }
        if !self.finished() {
            cx.set_timer_ms(TIMER_RETRY, RETRY_MS);
        }
    }
}

impl Node for KafkaAdmin {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { .. } => {
                self.pending.clear();
                self.drive_zk(input, cx);
                self.attempt(cx);
                if let Some((_, every)) = self.delete_records {
                    cx.set_timer_ms(TIMER_DELETE, every);
                }
            }
            Input::Timer { timer: TIMER_RETRY } => self.attempt(cx),
            Input::Timer {
                timer: TIMER_DELETE,
            } => self.delete_round(cx),
            Input::Message {
                msg: Msg::Kafka(m), ..
            } => self.on_kafka(m, cx),
            Input::Message {
                msg: Msg::Kraft(KraftMsg::CreateTopicsResp { corr, result }),
                ..
            } => {
                if let Some((path, _)) = self.pending.remove(&corr) {
                    match result {
                        Ok(()) | Err(KraftError::TopicExists) => {
                            self.done.insert(path);
                        }
                        // The next attempt (on the retry timer) asks the
                        // next controller.
                        Err(_) => {}
                    }
                }
            }
            Input::Timer { timer } if timer >= TIMER_ZK_BASE => self.drive_zk(
                Input::Timer {
                    timer: timer - TIMER_ZK_BASE,
                },
                cx,
            ),
            Input::Timer { .. } | Input::Client { .. } | Input::Disk { .. } => {}
            other => self.drive_zk(other, cx),
        }
    }

    fn role(&self) -> String {
        format!(
            "admin created={}/{}",
            self.todo
                .iter()
                .filter(|(p, _)| self.done.contains(p))
                .count(),
            self.todo.len()
        )
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
