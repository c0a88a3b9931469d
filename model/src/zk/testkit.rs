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
use crate::zk::{ZkClient, ZkConfig, ZkReply, ZkRequest, ZkServer};

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

/// Disk operations complete after this long (fsyncs become durable then).
const DISK_US: u64 = 2_000;

#[derive(Default, Clone)]
struct Disk {
    cache: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
}

/// The test world.
pub(super) struct World {
    pub(super) now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    pub(super) servers: BTreeMap<NodeId, ZkServer>,
    pub(super) clients: BTreeMap<NodeId, ZkClient>,
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
    pub(super) replies: BTreeMap<ReqId, ZkReply>,
    next_req: ReqId,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl World {
    /// `n` servers (ids 1..=n) and `clients` clients (ids 101..).
    pub(super) fn new(n: u32, clients: u32, session_timeout_ms: u64, bugs: BugSet) -> World {
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
            replies: BTreeMap::new(),
            next_req: 1,
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
    pub(super) fn crash(&mut self, id: NodeId) {
        self.down.insert(id);
        *self.boots.entry(id).or_default() += 1;
        self.servers.remove(&id);
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

    /// Restarts a crashed server from its durable files.
    pub(super) fn restart(&mut self, id: NodeId) {
        self.start_server(id);
    }

    /// Cuts (or heals) the link between two nodes.
    pub(super) fn block(&mut self, a: NodeId, b: NodeId, blocked: bool) {
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
    pub(super) fn isolate(&mut self, id: NodeId, blocked: bool) {
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

    /// Cuts a server off from the other servers only (clients still reach
    /// it), or heals that.
    pub(super) fn isolate_from_servers(&mut self, id: NodeId, blocked: bool) {
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
                Effect::SetTimer { timer, after_us } => {
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
                Effect::Halt { reason } => {
                    panic!("node {to} halted: {reason}");
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
    pub(super) fn run_ms(&mut self, ms: u64) {
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
    pub(super) fn submit(&mut self, client: NodeId, req: ZkRequest) -> ReqId {
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
    pub(super) fn call(&mut self, client: NodeId, req: ZkRequest) -> ZkReply {
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
    pub(super) fn leader(&self) -> Option<NodeId> {
        let ls: Vec<NodeId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.is_leader())
            .map(|(id, _)| *id)
            .collect();
        (ls.len() == 1).then(|| ls[0])
    }

    /// Runs until a leader is established and a quorum serves.
    pub(super) fn await_leader(&mut self, max_ms: u64) -> NodeId {
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
    pub(super) fn roles(&self) -> Vec<(NodeId, String)> {
        self.servers.iter().map(|(i, s)| (*i, s.role())).collect()
    }

    /// Digests of the live servers' trees.
    pub(super) fn digests(&self) -> BTreeMap<NodeId, u64> {
        self.servers
            .iter()
            .map(|(i, s)| (*i, s.tree().digest()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::{CreateMode, WatchKind, ZkError, ZkOp, ZkResponse};

    fn create(path: &str, data: &[u8], mode: CreateMode) -> ZkRequest {
        ZkRequest::Op(ZkOp::Create {
            path: path.into(),
            data: data.to_vec(),
            mode,
        })
    }

    fn set(path: &str, data: &[u8], version: i32) -> ZkRequest {
        ZkRequest::Op(ZkOp::SetData {
            path: path.into(),
            data: data.to_vec(),
            version,
        })
    }

    fn get(path: &str, watch: bool) -> ZkRequest {
        ZkRequest::Op(ZkOp::GetData {
            path: path.into(),
            watch,
        })
    }

    fn data_of(r: &ZkReply) -> Vec<u8> {
        match &r.result {
            Ok(ZkResponse::Data(d, _)) => d.clone(),
            other => panic!("not data: {other:?}"),
        }
    }

    /// Calls until the request succeeds (retrying connection losses).
    fn call_ok(w: &mut World, c: NodeId, req: ZkRequest) -> ZkReply {
        for _ in 0..50 {
            let r = w.call(c, req.clone());
            if r.result != Err(ZkError::ConnectionLoss) {
                return r;
            }
            w.run_ms(50);
        }
        panic!("request never went through: {req:?}");
    }

    fn assert_converged(w: &World) {
        let d = w.digests();
        let first = *d.values().next().unwrap();
        assert!(
            d.values().all(|x| *x == first),
            "trees differ: {d:?} {:?}",
            w.roles()
        );
    }

    #[test]
    fn three_servers_elect_a_leader_and_commit_everywhere() {
        let mut w = World::new(3, 2, 1000, BugSet::none());
        let l = w.await_leader(5000);
        assert!(
            w.servers.values().filter(|s| s.is_leader()).count() == 1,
            "{l}"
        );
        let r = call_ok(&mut w, 101, create("/a", b"0", CreateMode::Persistent));
        assert_eq!(r.result, Ok(ZkResponse::Created("/a".into())));
        for i in 1..=20u8 {
            let r = call_ok(&mut w, 102, set("/a", &[i], i as i32 - 1));
            assert!(matches!(r.result, Ok(ZkResponse::Stat(s)) if s.version == i as i32));
        }
        assert_eq!(
            call_ok(&mut w, 101, set("/a", b"x", 3)).result,
            Err(ZkError::BadVersion)
        );
        w.run_ms(500);
        assert_converged(&w);
        for s in w.servers.values() {
            assert_eq!(s.tree().get("/a").unwrap().data, vec![20]);
        }
    }

    #[test]
    fn leader_crash_reelects_without_losing_committed_txns() {
        let mut w = World::new(3, 1, 1000, BugSet::none());
        let l1 = w.await_leader(5000);
        let mut acked = Vec::new();
        for i in 0..30 {
            let p = format!("/n{i}");
            call_ok(&mut w, 101, create(&p, b"", CreateMode::Persistent));
            acked.push(p);
        }
        w.crash(l1);
        let l2 = w.await_leader(10_000);
        assert_ne!(l1, l2);
        for i in 30..40 {
            let p = format!("/n{i}");
            let r = call_ok(&mut w, 101, create(&p, b"", CreateMode::Persistent));
            if r.result.is_ok() {
                acked.push(p);
            }
        }
        w.restart(l1);
        w.run_ms(3000);
        assert_converged(&w);
        assert_eq!(w.servers.len(), 3);
        for s in w.servers.values() {
            for p in &acked {
                assert!(s.tree().get(p).is_some(), "{p} missing on {}", s.role());
            }
        }
    }

    #[test]
    fn five_servers_tolerate_two_crashes_and_a_whole_power_loss() {
        let mut w = World::new(5, 1, 1000, BugSet::none());
        let l = w.await_leader(5000);
        for i in 0..10 {
            call_ok(
                &mut w,
                101,
                create(&format!("/p{i}"), b"", CreateMode::Persistent),
            );
        }
        let others: Vec<NodeId> = (1..=5).filter(|&x| x != l).take(2).collect();
        for &o in &others {
            w.crash(o);
        }
        w.run_ms(200);
        for i in 10..20 {
            call_ok(
                &mut w,
                101,
                create(&format!("/p{i}"), b"", CreateMode::Persistent),
            );
        }
        // Whole-ensemble power loss: everything unsynced is gone.
        for id in 1..=5 {
            if !others.contains(&id) {
                w.crash(id);
            }
        }
        for id in 1..=5 {
            w.restart(id);
        }
        w.await_leader(10_000);
        w.run_ms(2000);
        assert_converged(&w);
        for s in w.servers.values() {
            for i in 0..20 {
                assert!(s.tree().get(&format!("/p{i}")).is_some());
            }
        }
    }

    #[test]
    fn session_expiry_deletes_ephemerals_on_every_server() {
        let mut w = World::new(3, 2, 600, BugSet::none());
        w.await_leader(5000);
        let r = call_ok(&mut w, 101, create("/eph", b"", CreateMode::Ephemeral));
        assert!(r.result.is_ok());
        let s = r.session;
        call_ok(&mut w, 101, create("/q", b"", CreateMode::Persistent));
        let r = call_ok(
            &mut w,
            101,
            create("/q/lock-", b"", CreateMode::EphemeralSequential),
        );
        assert_eq!(
            r.result,
            Ok(ZkResponse::Created("/q/lock-0000000000".into()))
        );
        w.run_ms(2000);
        // Still alive: the client pings.
        for sv in w.servers.values() {
            assert!(sv.tree().get("/eph").is_some());
        }
        // The client process stops; its session expires.
        w.crash(101);
        w.run_ms(3000);
        for sv in w.servers.values() {
            assert!(sv.tree().get("/eph").is_none(), "{}", sv.role());
            assert!(sv.tree().get("/q/lock-0000000000").is_none());
            assert!(!sv.tree().has_session(s));
        }
        assert_converged(&w);
        let r = call_ok(
            &mut w,
            102,
            create("/q/lock-", b"", CreateMode::EphemeralSequential),
        );
        assert_eq!(
            r.result,
            Ok(ZkResponse::Created("/q/lock-0000000002".into()))
        );
    }

    #[test]
    fn watches_fire_before_the_reply_that_shows_the_change() {
        let mut w = World::new(3, 2, 1000, BugSet::none());
        w.await_leader(5000);
        call_ok(&mut w, 101, create("/w", b"old", CreateMode::Persistent));
        let r = call_ok(&mut w, 102, get("/w", true));
        assert_eq!(data_of(&r), b"old");
        let r = call_ok(
            &mut w,
            102,
            ZkRequest::Op(ZkOp::GetChildren {
                path: "/".into(),
                watch: true,
            }),
        );
        assert!(r.result.is_ok());
        call_ok(&mut w, 101, set("/w", b"new", -1));
        call_ok(&mut w, 101, create("/w2", b"", CreateMode::Persistent));
        // A sync makes sure 102's server has applied both writes.
        let synced = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/w".into() }));
        // Both events arrived before the sync's reply (they ride on it).
        let kinds: Vec<(WatchKind, String)> = synced
            .events
            .iter()
            .map(|e| (e.kind, e.path.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (WatchKind::NodeDataChanged, "/w".to_string()),
                (WatchKind::NodeChildrenChanged, "/".to_string()),
            ]
        );
        assert!(synced.events[0].zxid < synced.events[1].zxid);
        let r = call_ok(&mut w, 102, get("/w", false));
        assert_eq!(data_of(&r), b"new");
        // One-shot: a second change fires nothing.
        call_ok(&mut w, 101, set("/w", b"newer", -1));
        let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/w".into() }));
        assert!(r.events.is_empty());
    }

    #[test]
    fn client_moves_to_another_server_and_keeps_its_session() {
        let mut w = World::new(3, 1, 1500, BugSet::none());
        let l = w.await_leader(5000);
        let r = call_ok(&mut w, 101, create("/mine", b"", CreateMode::Ephemeral));
        let session = r.session;
        let server = r.server;
        assert!(server != 0);
        w.crash(server);
        if server == l {
            w.await_leader(10_000);
        }
        let r = call_ok(&mut w, 101, get("/mine", false));
        assert_eq!(r.session, session);
        assert_ne!(r.server, server);
        assert!(r.result.is_ok());
        w.restart(server);
        w.run_ms(2000);
        assert_converged(&w);
        assert!(w.servers.values().all(|s| s.tree().get("/mine").is_some()));
    }

    /// One run of random crashes, restarts, isolations and power losses
    /// while two clients write unique znodes; after healing, every server
    /// must hold the same tree and every acknowledged create.
    fn fault_run(seed: u64, bugs: BugSet) -> Result<usize, String> {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: u32 = if seed.is_multiple_of(2) { 3 } else { 5 };
        let mut w = World::new(n, 2, 800, bugs);
        w.await_leader(5000);
        let mut pending: BTreeMap<ReqId, String> = BTreeMap::new();
        let mut acked: Vec<String> = Vec::new();
        let mut down: BTreeSet<NodeId> = BTreeSet::new();
        let mut isolated: Option<NodeId> = None;
        let mut k = 0;
        for _round in 0..20 {
            for c in [101, 102] {
                for _ in 0..3 {
                    k += 1;
                    let p = format!("/k{k}");
                    let id = w.submit(c, create(&p, b"", CreateMode::Persistent));
                    pending.insert(id, p);
                }
            }
            w.run_ms(rng.gen_range(0..6));
            if let Some(i) = isolated.take() {
                w.isolate(i, false);
                w.isolate_from_servers(i, false);
            }
            match rng.gen_range(0..6) {
                0 | 1 if (down.len() as u32) < (n - 1) / 2 => {
                    let v = w
                        .leader()
                        .filter(|_| rng.gen_bool(0.5))
                        .unwrap_or(rng.gen_range(1..=n));
                    if down.insert(v) {
                        w.crash(v);
                    }
                }
                2 => {
                    if let Some(&v) = down.iter().next() {
                        down.remove(&v);
                        w.restart(v);
                    }
                }
                3 if down.is_empty() => {
                    let v = w.leader().unwrap_or(1);
                    if rng.gen_bool(0.5) {
                        w.isolate(v, true);
                    } else {
                        w.isolate_from_servers(v, true);
                    }
                    isolated = Some(v);
                }
                4 if rng.gen_bool(0.3) => {
                    // Power loss of the whole ensemble.
                    for id in 1..=n {
                        if !down.contains(&id) {
                            w.crash(id);
                        }
                    }
                    for id in 1..=n {
                        w.restart(id);
                    }
                    down.clear();
                }
                _ => {}
            }
            w.run_ms(rng.gen_range(100..900));
            let done: Vec<ReqId> = pending
                .keys()
                .copied()
                .filter(|id| w.replies.contains_key(id))
                .collect();
            for id in done {
                let p = pending.remove(&id).unwrap();
                if w.replies.remove(&id).unwrap().result.is_ok() {
                    acked.push(p);
                }
            }
        }
        if let Some(i) = isolated.take() {
            w.isolate(i, false);
            w.isolate_from_servers(i, false);
        }
        for v in std::mem::take(&mut down) {
            w.restart(v);
        }
        w.run_ms(8000);
        if w.leader().is_none() {
            return Err(format!("seed {seed}: no leader: {:?}", w.roles()));
        }
        let d = w.digests();
        let first = *d.values().next().unwrap();
        if !d.values().all(|x| *x == first) {
            return Err(format!("seed {seed}: trees differ: {:?}", w.roles()));
        }
        for s in w.servers.values() {
            for p in &acked {
                if s.tree().get(p).is_none() {
                    return Err(format!("seed {seed}: acked {p} missing on {}", s.role()));
                }
            }
        }
        Ok(acked.len())
    }

    #[test]
    fn random_faults_keep_acked_writes_and_converge() {
        for seed in 0..40u64 {
            let acked = fault_run(seed, BugSet::none()).unwrap();
            assert!(acked > 10, "seed {seed}: only {acked} acked");
        }
    }

    /// The durability bugs are caught by the same runs.
    #[test]
    fn planted_durability_bugs_are_caught() {
        let bug = "zk_commit_without_quorum";
        let mut b = BugSet::none();
        b.enable(bug);
        let found = (0..60u64).find(|&s| fault_run(s, b.clone()).is_err());
        assert!(found.is_some(), "{bug} not found in 60 seeds");
    }

    /// 2 leads epoch 1 with followers 1 and 3; 3 crashes, `/x` commits on
    /// {1, 2}; then 2 crashes and 3 returns. The faithful election picks 1
    /// (same epoch, higher zxid); with `zk_vote_ignores_zxid` 3 wins on its
    /// id and truncates `/x` away.
    fn stale_server_returns(bugs: BugSet) -> bool {
        let mut w = World::new(3, 1, 1000, bugs);
        w.crash(3);
        assert_eq!(w.await_leader(5000), 2);
        w.restart(3);
        w.run_ms(1000);
        call_ok(&mut w, 101, create("/a", b"", CreateMode::Persistent));
        w.run_ms(100);
        w.crash(3);
        let r = call_ok(&mut w, 101, create("/x", b"", CreateMode::Persistent));
        assert!(r.result.is_ok());
        w.crash(2);
        w.restart(3);
        w.run_ms(3000);
        w.restart(2);
        w.run_ms(3000);
        assert_converged(&w);
        w.servers.values().all(|s| s.tree().get("/x").is_some())
    }

    #[test]
    fn vote_ordering_keeps_committed_txns_and_the_bug_loses_them() {
        assert!(stale_server_returns(BugSet::none()));
        let mut b = BugSet::none();
        b.enable("zk_vote_ignores_zxid");
        assert!(!stale_server_returns(b));
    }

    #[test]
    fn multi_and_sync_through_the_leader() {
        let mut w = World::new(3, 2, 1000, BugSet::none());
        w.await_leader(5000);
        let r = call_ok(
            &mut w,
            101,
            ZkRequest::Op(ZkOp::Multi(vec![
                ZkOp::Create {
                    path: "/m".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
                ZkOp::Create {
                    path: "/m/x".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
            ])),
        );
        assert!(matches!(r.result, Ok(ZkResponse::Multi(_))));
        let r = call_ok(
            &mut w,
            101,
            ZkRequest::Op(ZkOp::Multi(vec![
                ZkOp::Delete {
                    path: "/m/x".into(),
                    version: -1,
                },
                ZkOp::Delete {
                    path: "/nope".into(),
                    version: -1,
                },
            ])),
        );
        assert_eq!(r.result, Err(ZkError::NoNode));
        let r = call_ok(&mut w, 102, ZkRequest::Op(ZkOp::Sync { path: "/".into() }));
        assert_eq!(r.result, Ok(ZkResponse::Synced));
        let r = call_ok(
            &mut w,
            102,
            ZkRequest::Op(ZkOp::GetChildren {
                path: "/m".into(),
                watch: false,
            }),
        );
        assert_eq!(r.result, Ok(ZkResponse::Children(vec!["x".into()])));
    }
}
