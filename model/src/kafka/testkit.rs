//! A small deterministic world for testing Kafka inside the crate: a
//! ZooKeeper ensemble, brokers, an admin ZooKeeper client and Kafka
//! clients, over FIFO connections with a fixed latency, instantly ordered
//! disks with a page cache (a crash keeps only fsynced bytes), timers,
//! crashes, restarts and partitions. It only drives the nodes; it is not
//! the simulator.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::disk::{DiskReply, DiskRequest};
use crate::kafka::{
    zkdata, ConsumerConfig, KafkaBroker, KafkaConfig, KafkaConsumer, KafkaProducer, ProducerConfig,
    Tp,
};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Effect, Input, Node, NodeId, ReqId, TimerId};
use crate::time::SimTime;
use crate::zk::{CreateMode, ZkClient, ZkConfig, ZkOp, ZkRequest, ZkServer};

const LATENCY_US: u64 = 1_000;
const DISK_US: u64 = 500;

/// The ids used by the test cluster.
pub(crate) const ZK: [NodeId; 3] = [1, 2, 3];
pub(crate) const BROKERS: [NodeId; 3] = [11, 12, 13];
pub(crate) const ADMIN: NodeId = 100;
pub(crate) const PRODUCER: NodeId = 101;
pub(crate) const CONSUMER: NodeId = 102;

#[derive(Debug)]
enum Ev {
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
    DiskDone {
        to: NodeId,
        boot: u64,
        op: u64,
        reply: DiskReply,
        durable: Option<(String, Vec<u8>)>,
    },
}

#[derive(Default, Clone)]
pub(crate) struct Disk {
    cache: BTreeMap<String, Vec<u8>>,
    pub(crate) durable: BTreeMap<String, Vec<u8>>,
}

/// The test world.
pub(crate) struct Cluster {
    pub(crate) now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    nodes: BTreeMap<NodeId, Box<dyn Node>>,
    bugs: BugSet,
    pub(crate) kcfg: KafkaConfig,
    pub(crate) disks: BTreeMap<NodeId, Disk>,
    conns: BTreeMap<(NodeId, NodeId), u64>,
    conn_gen: u64,
    timers: BTreeMap<(NodeId, TimerId), u64>,
    timer_gen: u64,
    down: BTreeSet<NodeId>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    rngs: BTreeMap<NodeId, ChaCha8Rng>,
    boots: BTreeMap<NodeId, u64>,
    pub(crate) replies: BTreeMap<ReqId, ClientReply>,
    next_req: ReqId,
    /// Paused nodes and when they resume (their events wait until then).
    paused: BTreeMap<NodeId, u64>,
    /// Messages delivered to ids without a node (test probes), in order.
    pub(crate) probes: Vec<(NodeId, NodeId, Msg)>,
    /// Nodes that exited cleanly after a graceful shutdown, in order.
    pub(crate) exited: Vec<NodeId>,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Cluster {
    /// 3 ZooKeeper servers, 3 brokers, an admin ZooKeeper client, a
    /// producer and a consumer.
    pub(crate) fn new(bugs: BugSet, pcfg: ProducerConfig) -> Cluster {
        Cluster::with(bugs, pcfg, |_| {})
    }

    /// As [`Cluster::new`], with the broker config adjusted by `tune`.
    pub(crate) fn with(
        bugs: BugSet,
        pcfg: ProducerConfig,
        tune: impl FnOnce(&mut KafkaConfig),
    ) -> Cluster {
        let mut kcfg = KafkaConfig {
            zk_servers: ZK.to_vec(),
            min_insync_replicas: 2,
            ..KafkaConfig::default()
        };
        tune(&mut kcfg);
        let mut c = Cluster {
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: BTreeMap::new(),
            bugs,
            kcfg,
            disks: BTreeMap::new(),
            conns: BTreeMap::new(),
            conn_gen: 0,
            timers: BTreeMap::new(),
            timer_gen: 0,
            down: BTreeSet::new(),
            blocked: BTreeSet::new(),
            rngs: BTreeMap::new(),
            boots: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_req: 1,
            probes: Vec::new(),
            exited: Vec::new(),
            paused: BTreeMap::new(),
        };
        for id in ZK.into_iter().chain(BROKERS) {
            c.start(id);
        }
        c.add(ADMIN, Box::new(ZkClient::new(ZK.to_vec(), 2_000, 0)));
        c.add(
            PRODUCER,
            Box::new(KafkaProducer::new(BROKERS.to_vec(), pcfg)),
        );
        let cons = KafkaConsumer::new(BROKERS.to_vec(), ConsumerConfig::default(), &c.bugs);
        c.add(CONSUMER, Box::new(cons));
        c
    }

    fn add(&mut self, id: NodeId, n: Box<dyn Node>) {
        self.rngs.insert(id, ChaCha8Rng::seed_from_u64(id as u64));
        self.nodes.insert(id, n);
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn start(&mut self, id: NodeId) {
        let n: Box<dyn Node> = if ZK.contains(&id) {
            Box::new(ZkServer::new(
                id,
                ZK.to_vec(),
                ZkConfig::default(),
                &self.bugs,
            ))
        } else {
            Box::new(KafkaBroker::new(id, self.kcfg.clone(), &self.bugs))
        };
        self.rngs
            .entry(id)
            .or_insert_with(|| ChaCha8Rng::seed_from_u64(id as u64));
        self.nodes.insert(id, n);
        let disk = self.disks.entry(id).or_default();
        disk.cache = disk.durable.clone();
        let files = disk.durable.clone();
        self.down.remove(&id);
        self.push(
            self.now,
            Ev::Input {
                to: id,
                input: Input::Start { files },
                conn: None,
            },
        );
    }

    /// A broker's state.
    pub(crate) fn broker(&self, id: NodeId) -> Option<&KafkaBroker> {
        self.node::<KafkaBroker>(id)
    }

    /// Crashes a node: volatile state and unsynced bytes are lost.
    pub(crate) fn crash(&mut self, id: NodeId) {
        self.down.insert(id);
        *self.boots.entry(id).or_default() += 1;
        self.nodes.remove(&id);
        if let Some(d) = self.disks.get_mut(&id) {
            d.cache = d.durable.clone();
        }
        self.timers.retain(|(n, _), _| *n != id);
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

    /// Pauses a node for `ms` (a GC pause or SIGSTOP): it keeps its state
    /// and connections but handles nothing until then.
    pub(crate) fn pause(&mut self, id: NodeId, ms: u64) {
        self.paused.insert(id, self.now + ms * 1000);
    }

    /// Restarts a crashed server or broker from its durable files.
    pub(crate) fn restart(&mut self, id: NodeId) {
        self.start(id);
    }

    /// Boots another node (a client of a kind the cluster does not build
    /// itself, e.g. a group member) under `id`, or a fresh incarnation of
    /// a crashed one; it gets `Input::Start` with its durable files.
    pub(crate) fn boot_node(&mut self, id: NodeId, node: Box<dyn Node>) {
        self.add(id, node);
        let disk = self.disks.entry(id).or_default();
        disk.cache = disk.durable.clone();
        let files = disk.durable.clone();
        self.down.remove(&id);
        self.push(
            self.now,
            Ev::Input {
                to: id,
                input: Input::Start { files },
                conn: None,
            },
        );
    }

    /// Node `id` as its concrete type, if it is up and of that type.
    pub(crate) fn node<T: 'static>(&self, id: NodeId) -> Option<&T> {
        self.nodes
            .get(&id)
            .and_then(|n| n.as_any())
            .and_then(|a| a.downcast_ref::<T>())
    }

    /// Cuts (or heals) the link between two nodes.
    pub(crate) fn block(&mut self, a: NodeId, b: NodeId, blocked: bool) {
        if blocked {
            self.blocked.insert(pair(a, b));
            if self.conns.contains_key(&pair(a, b)) {
                self.break_conn(pair(a, b));
            }
        } else {
            self.blocked.remove(&pair(a, b));
        }
    }

    fn break_conn(&mut self, p: (NodeId, NodeId)) {
        if self.conns.remove(&p).is_some() {
            for (x, y) in [(p.0, p.1), (p.1, p.0)] {
                if !self.down.contains(&x) {
                    self.push(
                        self.now,
                        Ev::Input {
                            to: x,
                            input: Input::ConnLost { peer: y },
                            conn: None,
                        },
                    );
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let p = pair(from, to);
        let gen = match self.conns.get(&p) {
            Some(g) => *g,
            None => {
                if self.down.contains(&to) || self.blocked.contains(&p) {
                    self.push(
                        self.now + LATENCY_US,
                        Ev::Input {
                            to: from,
                            input: Input::ConnLost { peer: to },
                            conn: None,
                        },
                    );
                    return;
                }
                self.conn_gen += 1;
                let g = self.conn_gen;
                self.conns.insert(p, g);
                self.push(
                    self.now,
                    Ev::Input {
                        to: from,
                        input: Input::ConnUp { peer: to },
                        conn: Some((to, g)),
                    },
                );
                self.push(
                    self.now + LATENCY_US,
                    Ev::Input {
                        to,
                        input: Input::ConnUp { peer: from },
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

    fn do_disk(&mut self, id: NodeId, req: DiskRequest) -> DiskReply {
        let d = self.disks.entry(id).or_default();
        match req {
            DiskRequest::Append { file, data } => {
                d.cache.entry(file).or_default().extend(data);
                DiskReply::Done
            }
            DiskRequest::WriteAt { file, offset, data } => {
                let f = d.cache.entry(file).or_default();
                let end = offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[offset as usize..end].copy_from_slice(&data);
                DiskReply::Done
            }
            DiskRequest::Truncate { file, len } => {
                d.cache.entry(file).or_default().truncate(len as usize);
                DiskReply::Done
            }
            DiskRequest::Fsync { .. } => DiskReply::Synced,
            DiskRequest::Read { file } => {
                DiskReply::Data(d.cache.get(&file).cloned().unwrap_or_default())
            }
            DiskRequest::Delete { file } => {
                d.cache.remove(&file);
                d.durable.remove(&file);
                DiskReply::Done
            }
        }
    }

    /// Asks node `id` to shut down gracefully (SIGTERM); it exits by itself
    /// when done, keeping its page cache.
    pub(crate) fn shutdown(&mut self, id: NodeId) {
        self.run_node(id, None);
    }

    fn deliver(&mut self, to: NodeId, input: Input) {
        self.run_node(to, Some(input));
    }

    /// One step of `to`: an input, or (`None`) a shutdown request.
    fn run_node(&mut self, to: NodeId, input: Option<Input>) {
        if self.down.contains(&to) {
            return;
        }
        let Some(n) = self.nodes.get_mut(&to) else {
            if let Some(Input::Message { from, msg }) = input {
                self.probes.push((from, to, msg));
            }
            return;
        };
        let mut effects = Vec::new();
        let rng = self.rngs.get_mut(&to).expect("rng");
        let mut cx = Ctx::new(SimTime(self.now), to, rng, &mut effects);
        match input {
            Some(input) => n.step(input, &mut cx),
            None => n.shutdown(&mut cx),
        }
        for e in effects {
            if self.down.contains(&to) {
                break;
            }
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
                    let durable = match &req {
                        DiskRequest::Fsync { file } => {
                            let d = self.disks.entry(to).or_default();
                            Some((file.clone(), d.cache.get(file).cloned().unwrap_or_default()))
                        }
                        _ => None,
                    };
                    let reply = self.do_disk(to, req);
                    let boot = self.boots.get(&to).copied().unwrap_or(0);
                    self.push(
                        self.now + DISK_US,
                        Ev::DiskDone {
                            to,
                            boot,
                            op,
                            reply,
                            durable,
                        },
                    );
                }
                Effect::Halt { reason } => panic!("node {to} halted: {reason}"),
                Effect::Exit { .. } => {
                    // A clean exit: the process goes, the page cache stays.
                    let cache = self.disks.get(&to).map(|d| d.cache.clone());
                    self.crash(to);
                    if let (Some(d), Some(cache)) = (self.disks.get_mut(&to), cache) {
                        d.cache = cache;
                    }
                    self.exited.push(to);
                }
                Effect::Reply { id, reply } => {
                    self.replies.insert(id, reply);
                }
            }
        }
    }

    fn step_once(&mut self) -> bool {
        let Some(((at, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        self.now = self.now.max(at);
        let target = match &ev {
            Ev::Input { to, .. } | Ev::Timer { to, .. } | Ev::DiskDone { to, .. } => *to,
        };
        if let Some(&until) = self.paused.get(&target) {
            if until > self.now {
                // A paused process sees nothing until it resumes, then
                // everything in the original order.
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
            Ev::DiskDone {
                to,
                boot,
                op,
                reply,
                durable,
            } => {
                if self.boots.get(&to).copied().unwrap_or(0) != boot || self.down.contains(&to) {
                    return true;
                }
                if let Some((file, data)) = durable {
                    self.disks.entry(to).or_default().durable.insert(file, data);
                }
                self.deliver(
                    to,
                    Input::Disk {
                        op,
                        result: Ok(reply),
                    },
                );
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

    /// Delivers `msg` to `to` as if sent by `from` (a probe id without a
    /// node: its answers land in `probes`).
    pub(crate) fn inject(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        self.push(
            self.now + LATENCY_US,
            Ev::Input {
                to,
                input: Input::Message { from, msg },
                conn: None,
            },
        );
    }

    /// Runs for `ms` milliseconds of simulated time.
    pub(crate) fn run_ms(&mut self, ms: u64) {
        let end = self.now + ms * 1000;
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end {
                break;
            }
            self.step_once();
        }
        self.now = end;
    }

    /// Sends a request to a client node; returns its id.
    pub(crate) fn submit(&mut self, client: NodeId, req: ClientRequest) -> ReqId {
        let id = self.next_req;
        self.next_req += 1;
        self.push(
            self.now,
            Ev::Input {
                to: client,
                input: Input::Client { id, req },
                conn: None,
            },
        );
        id
    }

    /// Sends a request and runs until its reply (at most 10 s).
    pub(crate) fn call(&mut self, client: NodeId, req: ClientRequest) -> ClientReply {
        let id = self.submit(client, req);
        let end = self.now + 10_000 * 1000;
        while !self.replies.contains_key(&id) && self.now < end {
            if !self.step_once() {
                break;
            }
        }
        self.replies.remove(&id).expect("reply in time")
    }

    /// Runs until `f` holds (checking every 10 ms), at most `max_ms`.
    pub(crate) fn run_until(&mut self, max_ms: u64, mut f: impl FnMut(&Cluster) -> bool) -> bool {
        for _ in 0..max_ms / 10 {
            if f(self) {
                return true;
            }
            self.run_ms(10);
        }
        f(self)
    }

    /// The brokers that believe they are controller.
    pub(crate) fn controllers(&self) -> Vec<NodeId> {
        BROKERS
            .into_iter()
            .filter(|&b| self.broker(b).is_some_and(|x| x.is_controller()))
            .collect()
    }

    /// The brokers that lead `tp`.
    pub(crate) fn leaders(&self, tp: &Tp) -> Vec<NodeId> {
        BROKERS
            .into_iter()
            .filter(|&b| {
                self.broker(b)
                    .and_then(|x| x.replica_view(tp))
                    .is_some_and(|v| v.leader)
            })
            .collect()
    }

    /// Creates a topic the way `kafka-topics.sh --zookeeper` did.
    pub(crate) fn create_topic(&mut self, topic: &str, assignment: BTreeMap<u32, Vec<NodeId>>) {
        let op = ZkOp::Create {
            path: zkdata::topic_path(topic),
            data: zkdata::encode_assignment(&assignment),
            mode: CreateMode::Persistent,
        };
        for _ in 0..50 {
            let r = self.call(ADMIN, ClientRequest::Zk(ZkRequest::Op(op.clone())));
            if let ClientReply::Zk(r) = r {
                if r.result.is_ok() {
                    return;
                }
            }
            self.run_ms(50);
        }
        panic!("could not create topic {topic}");
    }
}
