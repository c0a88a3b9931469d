//! A small deterministic world for the ZooKeeper-era consumer's tests:
//! three ZooKeeper servers, three brokers, an admin ZooKeeper client, a
//! producer and the consumers, over FIFO connections with a fixed latency,
//! instant disks, timers, pauses, crashes and cuts. (The Kafka and
//! ZooKeeper test kits are private to their modules.) It only drives the
//! nodes; it is not the simulator.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::disk::{DiskReply, DiskRequest};
use crate::group::types::AssignedPartition;
use crate::kafka::{
    zkdata, KafkaBroker, KafkaConfig, KafkaProducer, KafkaReply, KafkaRequest, ProducerConfig,
};
use crate::msg::ClientReply;
use crate::node::{Effect, TimerId};
use crate::time::SimTime;
use crate::zk::{ZkConfig, ZkServer};

pub(super) const LATENCY_US: u64 = 1_000;
pub(super) const DISK_US: u64 = 500;
pub(super) const ZK: [NodeId; 3] = [1, 2, 3];
pub(super) const BROKERS: [NodeId; 3] = [11, 12, 13];
pub(super) const ADMIN: NodeId = 100;
pub(super) const PRODUCER: NodeId = 101;
pub(super) const A: NodeId = 200;
pub(super) const B: NodeId = 201;
pub(super) const PARTS: u32 = 4;
/// The workload's pause between a poll's answer and the next poll (the
/// Kafka consumer asks for metadata again on each poll until it has some,
/// dropping the answer to the previous ask, so back-to-back polls would
/// starve it).
pub(super) const POLL_GAP_MS: u64 = 5;

pub(super) enum Ev {
    Input {
        to: NodeId,
        input: Input,
        conn: Option<(NodeId, u64)>,
    },
    Timer {
        to: NodeId,
        timer: TimerId,
        gen: u64,
    },
}

pub(super) struct World {
    pub(super) now: u64,
    pub(super) seq: u64,
    pub(super) queue: BTreeMap<(u64, u64), Ev>,
    pub(super) nodes: BTreeMap<NodeId, Box<dyn Node>>,
    pub(super) rngs: BTreeMap<NodeId, ChaCha8Rng>,
    pub(super) disks: BTreeMap<NodeId, BTreeMap<String, Vec<u8>>>,
    pub(super) conns: BTreeMap<(NodeId, NodeId), u64>,
    pub(super) conn_gen: u64,
    pub(super) timers: BTreeMap<(NodeId, TimerId), u64>,
    pub(super) timer_gen: u64,
    pub(super) blocked: BTreeSet<(NodeId, NodeId)>,
    pub(super) paused: BTreeMap<NodeId, u64>,
    pub(super) replies: BTreeMap<ReqId, ClientReply>,
    pub(super) next_req: ReqId,
    pub(super) bugs: BugSet,
    /// Seeds the nodes' RNGs.
    pub(super) seed: u64,
    /// Every workload reply, in order (for the determinism check).
    pub(super) log: Vec<String>,
}

pub(super) fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl World {
    pub(super) fn new(bugs: BugSet, seed: u64) -> World {
        let mut w = World {
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            rngs: BTreeMap::new(),
            disks: BTreeMap::new(),
            conns: BTreeMap::new(),
            conn_gen: 0,
            timers: BTreeMap::new(),
            timer_gen: 0,
            blocked: BTreeSet::new(),
            paused: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_req: 1,
            bugs,
            seed,
            log: Vec::new(),
        };
        for id in ZK {
            let n = ZkServer::new(id, ZK.to_vec(), ZkConfig::default(), &w.bugs);
            w.add(id, Box::new(n));
        }
        let kcfg = KafkaConfig {
            zk_servers: ZK.to_vec(),
            min_insync_replicas: 2,
            ..KafkaConfig::default()
        };
        for id in BROKERS {
            let n = KafkaBroker::new(id, kcfg.clone(), &w.bugs);
            w.add(id, Box::new(n));
        }
        w.add(ADMIN, Box::new(ZkClient::new(ZK.to_vec(), 2_000, 0)));
        let p = KafkaProducer::new(BROKERS.to_vec(), ProducerConfig::default());
        w.add(PRODUCER, Box::new(p));
        w
    }

    pub(super) fn add(&mut self, id: NodeId, n: Box<dyn Node>) {
        // A restarted node's RNG goes on (a new incarnation draws anew).
        let seed = self.seed * 1_000 + id as u64;
        self.rngs
            .entry(id)
            .or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
        self.nodes.insert(id, n);
        self.push(
            self.now,
            Ev::Input {
                to: id,
                input: Input::Start {
                    files: BTreeMap::new(),
                },
                conn: None,
            },
        );
    }

    pub(super) fn add_consumer(&mut self, id: NodeId) {
        self.add_consumer_with(id, ZkConsumerConfig::default());
    }

    pub(super) fn add_consumer_with(&mut self, id: NodeId, cfg: ZkConsumerConfig) {
        let c = ZkConsumer::new(
            ZK.to_vec(),
            BROKERS.to_vec(),
            "g",
            "t",
            PARTS,
            cfg,
            &self.bugs,
        );
        self.add(id, Box::new(c));
    }

    pub(super) fn consumer(&self, id: NodeId) -> Option<&ZkConsumer> {
        self.nodes
            .get(&id)
            .and_then(|n| n.as_any())
            .and_then(|a| a.downcast_ref::<ZkConsumer>())
    }

    pub(super) fn broker(&self, id: NodeId) -> Option<&KafkaBroker> {
        self.nodes
            .get(&id)
            .and_then(|n| n.as_any())
            .and_then(|a| a.downcast_ref::<KafkaBroker>())
    }

    /// Whether `session` is alive on the ZooKeeper leader.
    pub(super) fn zk_session_alive(&self, session: u64) -> bool {
        ZK.iter().any(|id| {
            self.nodes
                .get(id)
                .and_then(|n| n.as_any())
                .and_then(|a| a.downcast_ref::<ZkServer>())
                .is_some_and(|n| n.is_leader() && n.tree().has_session(session))
        })
    }

    /// The data of `path` on the ZooKeeper leader.
    pub(super) fn zk_data(&self, path: &str) -> Option<Vec<u8>> {
        ZK.iter().find_map(|id| {
            let n = self.nodes.get(id)?.as_any()?.downcast_ref::<ZkServer>()?;
            n.is_leader()
                .then(|| n.tree().get(path).map(|z| z.data.clone()))
                .flatten()
        })
    }

    pub(super) fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    /// Crashes a node: everything still queued for it is dropped (a new
    /// incarnation added later starts clean).
    pub(super) fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.timers.retain(|(n, _), _| *n != id);
        self.paused.remove(&id);
        self.queue.retain(|_, ev| match ev {
            Ev::Input { to, .. } | Ev::Timer { to, .. } => *to != id,
        });
        let broken: Vec<(NodeId, NodeId)> = self
            .conns
            .keys()
            .filter(|(a, b)| *a == id || *b == id)
            .copied()
            .collect();
        for p in broken {
            self.break_conn(p);
        }
    }

    pub(super) fn pause(&mut self, id: NodeId, ms: u64) {
        self.paused.insert(id, self.now + ms * 1000);
    }

    pub(super) fn block(&mut self, a: NodeId, b: NodeId, blocked: bool) {
        if blocked {
            self.blocked.insert(pair(a, b));
            self.break_conn(pair(a, b));
        } else {
            self.blocked.remove(&pair(a, b));
        }
    }

    pub(super) fn break_conn(&mut self, p: (NodeId, NodeId)) {
        if self.conns.remove(&p).is_some() {
            for (x, y) in [(p.0, p.1), (p.1, p.0)] {
                if self.nodes.contains_key(&x) {
                    let input = Input::ConnLost { peer: y };
                    self.push(
                        self.now,
                        Ev::Input {
                            to: x,
                            input,
                            conn: None,
                        },
                    );
                }
            }
        }
    }

    pub(super) fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let p = pair(from, to);
        let gen = match self.conns.get(&p) {
            Some(g) => *g,
            None => {
                if !self.nodes.contains_key(&to) || self.blocked.contains(&p) {
                    let input = Input::ConnLost { peer: to };
                    self.push(
                        self.now + LATENCY_US,
                        Ev::Input {
                            to: from,
                            input,
                            conn: None,
                        },
                    );
                    return;
                }
                self.conn_gen += 1;
                let g = self.conn_gen;
                self.conns.insert(p, g);
                let up = |peer| Input::ConnUp { peer };
                self.push(
                    self.now,
                    Ev::Input {
                        to: from,
                        input: up(to),
                        conn: Some((to, g)),
                    },
                );
                self.push(
                    self.now + LATENCY_US,
                    Ev::Input {
                        to,
                        input: up(from),
                        conn: Some((from, g)),
                    },
                );
                g
            }
        };
        self.push(
            self.now + LATENCY_US,
            Ev::Input {
                to,
                input: Input::Message { from, msg },
                conn: Some((from, gen)),
            },
        );
    }

    pub(super) fn do_disk(&mut self, id: NodeId, req: DiskRequest) -> DiskReply {
        let d = self.disks.entry(id).or_default();
        match req {
            DiskRequest::Append { file, data } => {
                d.entry(file).or_default().extend(data);
                DiskReply::Done
            }
            DiskRequest::WriteAt { file, offset, data } => {
                let f = d.entry(file).or_default();
                let end = offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[offset as usize..end].copy_from_slice(&data);
                DiskReply::Done
            }
            DiskRequest::Truncate { file, len } => {
                d.entry(file).or_default().truncate(len as usize);
                DiskReply::Done
            }
            DiskRequest::Fsync { .. } => DiskReply::Synced,
            DiskRequest::Read { file } => {
                DiskReply::Data(d.get(&file).cloned().unwrap_or_default())
            }
            DiskRequest::Delete { file } => {
                d.remove(&file);
                DiskReply::Done
            }
        }
    }

    pub(super) fn deliver(&mut self, to: NodeId, input: Input) {
        let Some(n) = self.nodes.get_mut(&to) else {
            return;
        };
        let mut effects = Vec::new();
        let rng = self.rngs.get_mut(&to).expect("rng");
        let mut cx = Ctx::new(SimTime(self.now), to, rng, &mut effects);
        n.step(input, &mut cx);
        for e in effects {
            match e {
                Effect::Send { to: dst, msg } => self.send(to, dst, msg),
                Effect::Disconnect { peer } => self.break_conn(pair(to, peer)),
                Effect::SetTimer { timer, after_us } | Effect::SetMonoTimer { timer, after_us } => {
                    self.timer_gen += 1;
                    let gen = self.timer_gen;
                    self.timers.insert((to, timer), gen);
                    self.push(self.now + after_us, Ev::Timer { to, timer, gen });
                }
                Effect::CancelTimer { timer } => {
                    self.timers.remove(&(to, timer));
                }
                Effect::Disk { op, req } => {
                    let reply = self.do_disk(to, req);
                    let input = Input::Disk {
                        op,
                        result: Ok(reply),
                    };
                    self.push(
                        self.now + DISK_US,
                        Ev::Input {
                            to,
                            input,
                            conn: None,
                        },
                    );
                }
                Effect::Halt { reason } | Effect::Exit { reason } => {
                    panic!("node {to} stopped: {reason}")
                }
                Effect::Reply { id, reply } => {
                    self.log.push(format!("{} {to} {id} {reply:?}", self.now));
                    self.replies.insert(id, reply);
                }
            }
        }
    }

    pub(super) fn step_once(&mut self) -> bool {
        let Some(((at, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        self.now = self.now.max(at);
        let target = match &ev {
            Ev::Input { to, .. } | Ev::Timer { to, .. } => *to,
        };
        if let Some(&until) = self.paused.get(&target) {
            if until > self.now {
                self.push(until, ev);
                return true;
            }
            self.paused.remove(&target);
        }
        match ev {
            Ev::Input { to, input, conn } => {
                if let Some((peer, g)) = conn {
                    if self.conns.get(&pair(to, peer)) != Some(&g) {
                        return true;
                    }
                }
                self.deliver(to, input);
            }
            Ev::Timer { to, timer, gen } => {
                if self.timers.get(&(to, timer)) == Some(&gen) {
                    self.timers.remove(&(to, timer));
                    self.deliver(to, Input::Timer { timer });
                }
            }
        }
        true
    }

    /// Runs for 1 ms of simulated time.
    pub(super) fn tick(&mut self) {
        let end = self.now + 1_000;
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end {
                break;
            }
            self.step_once();
        }
        self.now = end;
    }

    pub(super) fn submit(&mut self, client: NodeId, req: ClientRequest) -> ReqId {
        let id = self.next_req;
        self.next_req += 1;
        let input = Input::Client { id, req };
        self.push(
            self.now,
            Ev::Input {
                to: client,
                input,
                conn: None,
            },
        );
        id
    }

    pub(super) fn call(&mut self, client: NodeId, req: ClientRequest) -> ClientReply {
        let id = self.submit(client, req);
        for _ in 0..10_000 {
            if let Some(r) = self.replies.remove(&id) {
                return r;
            }
            self.tick();
        }
        panic!("no reply from {client}");
    }

    pub(super) fn run_until(&mut self, max_ms: u64, mut f: impl FnMut(&World) -> bool) -> bool {
        for _ in 0..max_ms {
            if f(self) {
                return true;
            }
            self.tick();
        }
        f(self)
    }

    /// Brings up ZooKeeper and the brokers, creates `t` with 4 partitions
    /// and writes `per` records to each.
    pub(super) fn setup(bugs: BugSet, per: u64) -> World {
        World::setup_seeded(bugs, per, 0)
    }

    /// As [`World::setup`], with the nodes' RNGs drawn from `seed`.
    pub(super) fn setup_seeded(bugs: BugSet, per: u64, seed: u64) -> World {
        let mut w = World::new(bugs, seed);
        assert!(
            w.run_until(5_000, |w| BROKERS
                .iter()
                .all(|&b| w.broker(b).is_some_and(|x| x.is_registered()))
                && BROKERS
                    .iter()
                    .any(|&b| w.broker(b).is_some_and(|x| x.is_controller()))),
            "no controller"
        );
        let assignment: BTreeMap<u32, Vec<NodeId>> =
            (0..PARTS).map(|p| (p, BROKERS.to_vec())).collect();
        let op = ZkOp::Create {
            path: zkdata::topic_path("t"),
            data: zkdata::encode_assignment(&assignment),
            mode: CreateMode::Persistent,
        };
        let r = w.call(ADMIN, ClientRequest::Zk(ZkRequest::Op(op)));
        assert!(
            matches!(r, ClientReply::Zk(ref z) if z.result.is_ok()),
            "{r:?}"
        );
        let led = |w: &World| {
            (0..PARTS).all(|p| {
                let tp = Tp::new("t", p);
                BROKERS.iter().any(|&b| {
                    w.broker(b)
                        .and_then(|x| x.replica_view(&tp))
                        .is_some_and(|v| v.leader)
                })
            })
        };
        assert!(w.run_until(3_000, led), "no leaders");
        for p in 0..PARTS {
            for i in 0..per {
                let req = KafkaRequest::Send {
                    tp: Tp::new("t", p),
                    value: format!("p{p}v{i}").into_bytes(),
                };
                let r = w.call(PRODUCER, ClientRequest::Kafka(req));
                assert!(
                    matches!(r, ClientReply::Kafka(KafkaReply::Sent { offset: Some(o) }) if o == i),
                    "{r:?}"
                );
            }
        }
        w
    }
}

/// What the workload saw of the consumers.
#[derive(Default)]
pub(super) struct Seen {
    /// Outstanding poll per consumer.
    pub(super) inflight: BTreeMap<NodeId, ReqId>,
    /// When each consumer may be polled next (ms).
    pub(super) next_poll: BTreeMap<NodeId, u64>,
    /// Records read: (partition, offset) -> times.
    pub(super) read: BTreeMap<(u32, u64), u32>,
    /// The `lost` reports per consumer.
    pub(super) lost: BTreeMap<NodeId, u32>,
    /// Assignments reported, per consumer.
    pub(super) assigned: BTreeMap<NodeId, Vec<AssignedPartition>>,
    /// Commits reported inside polls.
    pub(super) commits: Vec<CommitRecord>,
}

/// Runs `ms`, polling each live consumer again [`POLL_GAP_MS`] after its
/// previous poll's answer, and calls `check` every millisecond.
pub(super) fn drive(w: &mut World, seen: &mut Seen, ms: u64, mut check: impl FnMut(&World)) {
    for _ in 0..ms {
        for c in [A, B] {
            if w.consumer(c).is_none() {
                seen.inflight.remove(&c);
                continue;
            }
            if let Some(id) = seen.inflight.get(&c).copied() {
                let Some(r) = w.replies.remove(&id) else {
                    continue;
                };
                seen.inflight.remove(&c);
                seen.next_poll.insert(c, w.now / 1000 + POLL_GAP_MS);
                let ClientReply::Group(GroupReply::Polled {
                    records, events, ..
                }) = r
                else {
                    panic!("{r:?}");
                };
                for (tp, off, v) in records {
                    assert_eq!(v, format!("p{}v{off}", tp.partition).into_bytes());
                    *seen.read.entry((tp.partition, off)).or_default() += 1;
                }
                if events.lost.is_some() {
                    *seen.lost.entry(c).or_default() += 1;
                }
                seen.assigned.entry(c).or_default().extend(events.assigned);
                seen.commits.extend(events.commits);
            }
            let due = seen.next_poll.get(&c).is_none_or(|&t| w.now / 1000 >= t);
            if !seen.inflight.contains_key(&c) && due {
                let id = w.submit(c, ClientRequest::Group(GroupRequest::Poll));
                seen.inflight.insert(c, id);
            }
        }
        w.tick();
        check(w);
    }
}

pub(super) fn owned(w: &World, c: NodeId) -> BTreeSet<u32> {
    w.consumer(c)
        .map(|x| x.owned().iter().map(|tp| tp.partition).collect())
        .unwrap_or_default()
}

pub(super) fn split(w: &World) -> bool {
    let (a, b) = (owned(w, A), owned(w, B));
    let stable = [A, B]
        .iter()
        .all(|&c| w.consumer(c).is_some_and(|x| x.stable()));
    stable && a.len() == 2 && b.len() == 2 && a.is_disjoint(&b)
}

/// Every partition a consumer owns has its consumer id in the owner znode.
pub(super) fn owners_agree(w: &World) -> Result<(), String> {
    owners_agree_live(w, false)
}

/// As [`owners_agree`]; with `live_only`, only for consumers whose session
/// is still alive (a consumer whose session expired unbeknown to it is a
/// zombie that fetches what it owned, as in 0.8).
pub(super) fn owners_agree_live(w: &World, live_only: bool) -> Result<(), String> {
    for c in [A, B] {
        let Some(x) = w.consumer(c) else { continue };
        if live_only && !w.zk_session_alive(x.zk_session()) {
            continue;
        }
        for p in owned(w, c) {
            let path = format!("/consumers/g/owners/t/{p}");
            let data = w.zk_data(&path);
            if data.as_deref() != Some(x.consumer_id().as_bytes()) {
                return Err(format!(
                    "t={}ms {} owns {p} but {path} holds {:?}",
                    w.now / 1000,
                    x.consumer_id(),
                    data.map(|d| String::from_utf8_lossy(&d).into_owned())
                ));
            }
        }
    }
    Ok(())
}
