//! A small deterministic world for testing the ensemble inside the crate:
//! FIFO connections with a fixed latency, instantly completing disks with a
//! page cache (a crash keeps only fsynced bytes), timers, crashes and
//! restarts, partitions. It is not the simulator; it only drives the nodes.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::disk::{DiskReply, DiskRequest};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Effect, Input, Node, NodeId, ReqId, TimerId};
use crate::time::SimTime;
use crate::zk::{
    CreateMode, ZkClient, ZkConfig, ZkError, ZkOp, ZkReply, ZkRequest, ZkResponse, ZkServer,
};

const LATENCY_US: u64 = 1_000;

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
    /// A disk operation completes; an fsync makes `durable` durable then.
    DiskDone {
        to: NodeId,
        boot: u64,
        op: u64,
        reply: DiskReply,
        durable: Option<(String, Vec<u8>)>,
    },
}

/// Default time for a disk operation to complete (fsyncs become durable
/// then).
const DISK_US: u64 = 2_000;

#[derive(Default, Clone)]
struct Disk {
    cache: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
}

/// The test world.
pub(crate) struct World {
    pub(crate) now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    pub(crate) servers: BTreeMap<NodeId, ZkServer>,
    pub(crate) clients: BTreeMap<NodeId, ZkClient>,
    ensemble: Vec<NodeId>,
    cfg: ZkConfig,
    bugs: BugSet,
    disks: BTreeMap<NodeId, Disk>,
    /// Live connections: unordered pair -> generation.
    conns: BTreeMap<(NodeId, NodeId), u64>,
    conn_gen: u64,
    timers: BTreeMap<(NodeId, TimerId), u64>,
    timer_gen: u64,
    down: BTreeSet<NodeId>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    rngs: BTreeMap<NodeId, ChaCha8Rng>,
    boots: BTreeMap<NodeId, u64>,
    /// How long disk operations take.
    pub(crate) disk_us: u64,
    /// Random extra message latency up to this (FIFO per connection kept).
    pub(crate) jitter_us: u64,
    /// On a crash, keep a random prefix of each file's unsynced appends.
    pub(crate) torn_writes: bool,
    /// The world's own RNG (jitter, torn writes).
    pub(crate) rng: ChaCha8Rng,
    /// Last delivery time per connection direction (for FIFO with jitter).
    last_at: BTreeMap<(NodeId, NodeId, u64), u64>,
    /// Per-direction link latency overriding the default.
    pub(crate) link_us: BTreeMap<(NodeId, NodeId), u64>,
    /// Per-node disk latency overriding `disk_us`.
    pub(crate) disk_us_of: BTreeMap<NodeId, u64>,
    pub(crate) replies: BTreeMap<ReqId, ZkReply>,
    next_req: ReqId,
    /// Whether a server may halt (else a halt fails the test).
    pub(crate) halts_expected: bool,
    /// The halts seen: server and reason.
    pub(crate) halts: Vec<(NodeId, String)>,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl World {
    /// `n` servers (ids 1..=n) and `clients` clients (ids 101..).
    pub(crate) fn new(n: u32, clients: u32, session_timeout_ms: u64, bugs: BugSet) -> World {
        let ensemble: Vec<NodeId> = (1..=n).collect();
        // Small snapCount so snapshots are taken and recovered from.
        let cfg = ZkConfig {
            snap_count: 7,
            ..ZkConfig::default()
        };
        let mut w = World {
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            servers: BTreeMap::new(),
            clients: BTreeMap::new(),
            ensemble: ensemble.clone(),
            cfg,
            bugs,
            disks: BTreeMap::new(),
            conns: BTreeMap::new(),
            conn_gen: 0,
            timers: BTreeMap::new(),
            timer_gen: 0,
            down: BTreeSet::new(),
            blocked: BTreeSet::new(),
            rngs: BTreeMap::new(),
            boots: BTreeMap::new(),
            disk_us: DISK_US,
            disk_us_of: BTreeMap::new(),
            link_us: BTreeMap::new(),
            jitter_us: 0,
            torn_writes: false,
            rng: ChaCha8Rng::seed_from_u64(0),
            last_at: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_req: 1,
            halts_expected: false,
            halts: Vec::new(),
        };
        for &id in &ensemble {
            w.rngs.insert(id, ChaCha8Rng::seed_from_u64(id as u64));
            w.start_server(id);
        }
        for c in 0..clients {
            let id = 101 + c;
            w.rngs.insert(id, ChaCha8Rng::seed_from_u64(id as u64));
            w.clients.insert(
                id,
                ZkClient::new(ensemble.clone(), session_timeout_ms, c as usize),
            );
        }
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn start_server(&mut self, id: NodeId) {
        let s = ZkServer::new(id, self.ensemble.clone(), self.cfg.clone(), &self.bugs);
        self.servers.insert(id, s);
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

    /// Crashes a node: volatile state and unsynced bytes are lost.
    pub(crate) fn crash(&mut self, id: NodeId) {
        self.down.insert(id);
        *self.boots.entry(id).or_default() += 1;
        self.servers.remove(&id);
        if let Some(d) = self.disks.get_mut(&id) {
            if self.torn_writes {
                use rand::Rng;
                for (name, cached) in &d.cache {
                    let durable = d.durable.get(name).cloned().unwrap_or_default();
                    if cached.len() > durable.len()
                        && cached.starts_with(&durable)
                        && self.rng.gen_bool(0.5)
                    {
                        let keep = self.rng.gen_range(durable.len()..=cached.len());
                        d.durable.insert(name.clone(), cached[..keep].to_vec());
                    }
                }
            }
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

    /// Flips a byte of a crashed node's durable file (silent corruption).
    pub(crate) fn corrupt(&mut self, id: NodeId, file: &str, offset: usize) {
        let d = self.disks.get_mut(&id).expect("disk");
        let f = d.durable.get_mut(file).expect("file");
        f[offset] ^= 0x5a;
        d.cache = d.durable.clone();
    }

    /// The names of a node's durable files.
    pub(crate) fn files(&self, id: NodeId) -> Vec<String> {
        self.disks
            .get(&id)
            .map(|d| d.durable.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Restarts a crashed server from its durable files.
    pub(crate) fn restart(&mut self, id: NodeId) {
        self.start_server(id);
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

    /// Isolates a node from every other node (or heals it).
    pub(crate) fn isolate(&mut self, id: NodeId, blocked: bool) {
        let all: Vec<NodeId> = self
            .ensemble
            .iter()
            .copied()
            .chain(self.clients.keys().copied())
            .collect();
        for o in all {
            if o != id {
                self.block(id, o, blocked);
            }
        }
    }

    /// Breaks one random live connection (as a lost packet would).
    pub(crate) fn drop_random_conn(&mut self) {
        use rand::Rng;
        if self.conns.is_empty() {
            return;
        }
        let i = self.rng.gen_range(0..self.conns.len());
        let p = *self.conns.keys().nth(i).unwrap();
        self.break_conn(p);
    }

    /// Cuts a server off from the other servers only (clients still reach
    /// it), or heals that.
    pub(crate) fn isolate_from_servers(&mut self, id: NodeId, blocked: bool) {
        for o in self.ensemble.clone() {
            if o != id {
                self.block(id, o, blocked);
            }
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
        let lat = self.link_us.get(&(from, to)).copied().unwrap_or(LATENCY_US);
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
                    self.now + lat,
                    Ev::Input {
                        to,
                        input: Input::ConnUp { peer: from },
                        conn: Some((from, g)),
                    },
                );
                g
            }
        };
        let mut at = self.now + lat;
        if self.jitter_us > 0 {
            use rand::Rng;
            at += self.rng.gen_range(0..=self.jitter_us);
        }
        let last = self.last_at.entry((from, to, gen)).or_insert(0);
        at = at.max(*last);
        *last = at;
        self.push(
            at,
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

    fn deliver(&mut self, to: NodeId, input: Input) {
        if self.down.contains(&to) {
            return;
        }
        let mut effects = Vec::new();
        let rng = self.rngs.get_mut(&to).expect("rng");
        let mut cx = Ctx::new(SimTime(self.now), to, rng, &mut effects);
        if let Some(s) = self.servers.get_mut(&to) {
            s.step(input, &mut cx);
        } else if let Some(c) = self.clients.get_mut(&to) {
            c.step(input, &mut cx);
        }
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
                        self.now + self.disk_us_of.get(&to).copied().unwrap_or(self.disk_us),
                        Ev::DiskDone {
                            to,
                            boot,
                            op,
                            reply,
                            durable,
                        },
                    );
                }
                Effect::Halt { reason } | Effect::Exit { reason } => {
                    assert!(self.halts_expected, "node {to} halted: {reason}");
                    self.halts.push((to, reason));
                }
                Effect::Reply { id, reply } => {
                    let ClientReply::Zk(r) = reply else { continue };
                    self.replies.insert(id, r);
                }
            }
        }
    }

    /// Runs one event; false if none is left.
    fn step_once(&mut self) -> bool {
        let Some(((at, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        self.now = self.now.max(at);
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
    pub(crate) fn submit(&mut self, client: NodeId, req: ZkRequest) -> ReqId {
        let id = self.next_req;
        self.next_req += 1;
        self.push(
            self.now,
            Ev::Input {
                to: client,
                input: Input::Client {
                    id,
                    req: ClientRequest::Zk(req),
                },
                conn: None,
            },
        );
        id
    }

    /// Sends a request and runs until its reply (at most `max_ms`).
    pub(crate) fn call(&mut self, client: NodeId, req: ZkRequest) -> ZkReply {
        let id = self.submit(client, req);
        let end = self.now + 10_000 * 1000;
        while !self.replies.contains_key(&id) && self.now < end {
            if !self.step_once() {
                break;
            }
        }
        self.replies.remove(&id).expect("reply in time")
    }

    /// The established leader, if exactly one.
    pub(crate) fn leader(&self) -> Option<NodeId> {
        let ls: Vec<NodeId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.is_leader())
            .map(|(id, _)| *id)
            .collect();
        (ls.len() == 1).then(|| ls[0])
    }

    /// Runs until a leader is established and a quorum serves.
    pub(crate) fn await_leader(&mut self, max_ms: u64) -> NodeId {
        let q = self.ensemble.len() / 2 + 1;
        for _ in 0..max_ms / 10 {
            self.run_ms(10);
            let serving = self.servers.values().filter(|s| s.is_serving()).count();
            if let Some(l) = self.leader() {
                if serving >= q {
                    return l;
                }
            }
        }
        panic!("no leader after {max_ms} ms: {:?}", self.roles());
    }

    /// Each live server's role summary.
    pub(crate) fn roles(&self) -> Vec<(NodeId, String)> {
        self.servers.iter().map(|(i, s)| (*i, s.role())).collect()
    }

    /// Digests of the live servers' trees.
    pub(crate) fn digests(&self) -> BTreeMap<NodeId, u64> {
        self.servers
            .iter()
            .map(|(i, s)| (*i, s.tree().digest()))
            .collect()
    }
}

// ----- helpers for tests -----

pub(crate) fn create(path: &str, data: &[u8], mode: CreateMode) -> ZkRequest {
    ZkRequest::Op(ZkOp::Create {
        path: path.into(),
        data: data.to_vec(),
        mode,
    })
}

pub(crate) fn set(path: &str, data: &[u8], version: i32) -> ZkRequest {
    ZkRequest::Op(ZkOp::SetData {
        path: path.into(),
        data: data.to_vec(),
        version,
    })
}

pub(crate) fn get(path: &str, watch: bool) -> ZkRequest {
    ZkRequest::Op(ZkOp::GetData {
        path: path.into(),
        watch,
    })
}

pub(crate) fn data_of(r: &ZkReply) -> Vec<u8> {
    match &r.result {
        Ok(ZkResponse::Data(d, _)) => d.clone(),
        other => panic!("not data: {other:?}"),
    }
}

/// Calls until the request succeeds (retrying connection losses).
pub(crate) fn call_ok(w: &mut World, c: NodeId, req: ZkRequest) -> ZkReply {
    for _ in 0..50 {
        let r = w.call(c, req.clone());
        if r.result != Err(ZkError::ConnectionLoss) {
            return r;
        }
        w.run_ms(50);
    }
    panic!("request never went through: {req:?}");
}

pub(crate) fn assert_converged(w: &World) {
    let d = w.digests();
    let first = *d.values().next().unwrap();
    assert!(
        d.values().all(|x| *x == first),
        "trees differ: {d:?} {:?}",
        w.roles()
    );
}
