//! The default executor: a single-threaded discrete-event engine.
//!
//! A priority queue of events ordered by (true time, sequence number) drives
//! the nodes, the world models, the nemesis and the workload. Every event is
//! fed into the trace hash. Nothing here depends on pointer values, hash-map
//! order or the wall clock, so a seed replays bit for bit.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use kzsim_model::{
    BugSet, DiskError, DiskOpId, DiskReply, Effect, Input, Msg, Node, NodeId, ReqId, TimerId,
};

use crate::clock::Clock;
use crate::disk::{Disk, FsyncToken, Issued};
use crate::history::{EventType, History};
use crate::host::{Deferred, DownReason, Host};
use crate::nemesis::{self, Action, FaultKind};
use crate::net::{ConnId, Network, SendOutcome};
use crate::queue::SlabHeapQueue;
use crate::rng::{stream_rng, Stream};
use crate::scenario::Scenario;
use crate::system::{self, Monitor, System};
use crate::trace::Trace;
use crate::workload::{OpCall, Workload};

/// How long a halted (fail-stop) process stays down before its supervisor
/// restarts it.
const HALT_RESTART_US: u64 = 1_000_000;

/// The error of an operation in flight on a client node that crashed.
pub const CLIENT_CRASHED: &str = "client crashed";

/// Trace tags: what kind of event a trace entry is.
mod tag {
    pub const DELIVER: u8 = 1;
    pub const CONN_UP: u8 = 2;
    pub const CONN_LOST: u8 = 3;
    pub const TIMER: u8 = 4;
    pub const DISK: u8 = 5;
    pub const CLIENT: u8 = 6;
    pub const REPLY: u8 = 7;
    pub const FAULT: u8 = 8;
    pub const START: u8 = 9;
    pub const HALT: u8 = 10;
}

/// A scheduled event.
#[derive(Debug)]
pub(crate) enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        conn: ConnId,
        msg: Msg,
    },
    ConnUp {
        node: NodeId,
        peer: NodeId,
        conn: ConnId,
    },
    ConnLost {
        node: NodeId,
        peer: NodeId,
        inc: u32,
    },
    Timer {
        node: NodeId,
        inc: u32,
        timer: TimerId,
        gen: u64,
    },
    DiskDone {
        node: NodeId,
        inc: u32,
        op: DiskOpId,
        result: Result<DiskReply, DiskError>,
    },
    Fsync {
        node: NodeId,
        inc: u32,
        op: DiskOpId,
        token: FsyncToken,
    },
    Invoke {
        thread: usize,
    },
    Nemesis {
        index: usize,
    },
    Clog {
        from: NodeId,
        to: NodeId,
    },
    Unclog {
        from: NodeId,
        to: NodeId,
    },
    SupervisorRestart {
        node: NodeId,
        inc: u32,
    },
}

/// Messages held on a clogged link, in order; `None` stands for the
/// receiver's `ConnUp` of a connection opened while clogged.
pub(crate) type HeldQueue = VecDeque<(ConnId, Option<Msg>)>;

/// One logical client thread of the workload.
struct Thread {
    client: NodeId,
    process: u64,
    in_flight: Option<(ReqId, OpCall)>,
    /// Waiting for its client to be up and not stalled: no invoke is
    /// queued; [`Engine::wake_threads`] queues one.
    parked: bool,
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages delivered to a node.
    pub messages: u64,
    /// Node steps taken.
    pub steps: u64,
    /// Faults started.
    pub faults: u64,
}

/// The engine for one run of one seed.
pub struct Engine {
    pub(crate) now: u64,
    seq: u64,
    queue: SlabHeapQueue<Ev>,
    pub(crate) seed: u64,
    pub(crate) end_us: u64,
    pub(crate) net: Network,
    pub(crate) hosts: Vec<Host>,
    pub(crate) system: Box<dyn System>,
    workload: Box<dyn Workload>,
    wl_rng: ChaCha8Rng,
    threads: Vec<Thread>,
    req_thread: BTreeMap<ReqId, usize>,
    next_req: ReqId,
    think_us: f64,
    /// No new operation starts from this time on.
    settle_from_us: u64,
    /// Writers that stop early (see [`Workload::stops_early`]) issue
    /// nothing new from this time on, so readers can drain.
    writers_stop_us: u64,
    pub(crate) history: History,
    pub(crate) trace: Trace,
    pub(crate) schedule: Vec<Action>,
    pub(crate) nem_rng: ChaCha8Rng,
    pub(crate) active: BTreeMap<u32, (FaultKind, Vec<NodeId>)>,
    pub(crate) quiet_started: bool,
    pub(crate) held: BTreeMap<(NodeId, NodeId), HeldQueue>,
    pub(crate) stats: Stats,
    effects: Vec<Effect>,
    pub(crate) log: bool,
    monitor: Option<Box<dyn Monitor>>,
    /// `faults.max_down`.
    pub(crate) max_down: Option<u32>,
    /// The models' events and buggify sites.
    pub(crate) probe: kzsim_model::Probe,
    /// The faults aimed at protocol events, if any.
    triggers: Option<crate::triggers::Triggers>,
    /// The id the next fault set off by an event gets.
    next_fault_id: u32,
    /// When the quiet period begins (µs).
    quiet_at_us: u64,
    /// The faults that started, in order (with their targets and ends).
    pub(crate) applied: Vec<AppliedFault>,
    /// The protocol events of the last [`COMBO_WINDOW_US`], for the
    /// coverage of faults that follow events.
    recent_events: std::collections::VecDeque<(u64, kzsim_model::ProtoEvent)>,
    /// How often each fault kind started within [`COMBO_WINDOW_US`] after
    /// each event kind, and whether it hit the event's subject.
    combos: BTreeMap<(kzsim_model::EventKind, FaultKind, bool), u64>,
}

/// A fault "follows" an event when it starts at most this long after it.
pub const COMBO_WINDOW_US: u64 = 100_000;

/// A fault as it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedFault {
    /// The schedule's id of the occurrence.
    pub id: u32,
    /// When it started (µs).
    pub at_us: u64,
    /// What it was.
    pub kind: FaultKind,
    /// The nodes it hit.
    pub nodes: Vec<NodeId>,
    /// Its parameter.
    pub value: Option<f64>,
    /// When it was reverted, if it was before the run ended (µs).
    pub end_us: Option<u64>,
}

impl Engine {
    /// Builds the world of `scenario` for `seed` with `bugs` switched on.
    pub fn new(scenario: &Scenario, seed: u64, bugs: &BugSet) -> Result<Engine, String> {
        let system = system::build(scenario, bugs)?;
        Ok(Engine::with_system(scenario, seed, system))
    }

    /// Builds the world of `scenario` for `seed` around a given system (its
    /// `cluster.system` is ignored): for tests with protocols of their own.
    pub fn with_system(scenario: &Scenario, seed: u64, system: Box<dyn System>) -> Engine {
        let spec = &scenario.spec;
        let layout = system.layout().clone();
        let mut clock_rng = stream_rng(seed, Stream::Clocks);
        let n_nodes = layout.len();
        let mut hosts = Vec::with_capacity(n_nodes);
        for id in 0..n_nodes as NodeId {
            let off = spec.clock.max_offset_ms as i64 * 1000;
            let drift = spec.clock.max_drift_ppm as i64;
            let clock = if layout.is_server(id) {
                Clock::new(
                    if off > 0 {
                        clock_rng.gen_range(-off..=off)
                    } else {
                        0
                    },
                    if drift > 0 {
                        clock_rng.gen_range(-drift..=drift)
                    } else {
                        0
                    },
                )
            } else {
                Clock::default()
            };
            hosts.push(Host::new(
                clock,
                Disk::new(spec.disk.clone()),
                stream_rng(seed, Stream::Disk(id)),
                stream_rng(seed, Stream::Node(id, 0)),
            ));
        }
        let mut nem_rng = stream_rng(seed, Stream::Nemesis);
        let schedule = nemesis::schedule(&spec.faults, spec.duration_ms, &mut nem_rng);
        let threads = (0..spec.workload.processes as usize)
            .map(|t| Thread {
                client: system.thread_client(t),
                process: t as u64,
                in_flight: None,
                parked: false,
            })
            .collect();
        let workload = system.workload();
        let monitor = system.monitor();
        let triggers = crate::triggers::Triggers::new(
            &spec.faults,
            layout.fault_pool.clone(),
            stream_rng(seed, Stream::Triggers),
        );
        let probe =
            kzsim_model::Probe::new(spec.buggify.then(|| stream_rng(seed, Stream::Buggify)));
        let next_fault_id = schedule
            .iter()
            .filter_map(|a| match a.kind {
                nemesis::ActionKind::Start { id, .. } => Some(id + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut engine = Engine {
            now: 0,
            seq: 0,
            queue: SlabHeapQueue::new(),
            seed,
            end_us: spec.duration_ms * 1000,
            net: Network::new(
                spec.network.clone(),
                n_nodes,
                stream_rng(seed, Stream::Network).gen(),
            ),
            hosts,
            system,
            workload,
            wl_rng: stream_rng(seed, Stream::Workload),
            threads,
            req_thread: BTreeMap::new(),
            next_req: 1,
            think_us: spec.workload.think_ms * 1000.0,
            settle_from_us: (spec.duration_ms - spec.faults.quiet_ms / 4) * 1000,
            writers_stop_us: (spec.duration_ms - spec.faults.quiet_ms * 3 / 4) * 1000,
            history: History::new(),
            trace: Trace::new(),
            schedule,
            nem_rng,
            active: BTreeMap::new(),
            quiet_started: false,
            held: BTreeMap::new(),
            stats: Stats::default(),
            effects: Vec::new(),
            log: tracing::enabled!(tracing::Level::INFO),
            monitor,
            max_down: spec.faults.max_down,
            probe,
            triggers,
            next_fault_id,
            quiet_at_us: (spec.duration_ms - spec.faults.quiet_ms) * 1000,
            applied: Vec::new(),
            recent_events: std::collections::VecDeque::new(),
            combos: BTreeMap::new(),
        };
        for index in 0..engine.schedule.len() {
            let at = engine.schedule[index].at_us;
            engine.push(at, Ev::Nemesis { index });
        }
        engine
    }

    pub(crate) fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(at, self.seq, ev);
    }

    /// Runs to the end of the scenario's duration.
    pub fn run(&mut self) {
        // Every process exists before any handles its start, as when a
        // cluster boots together: early sends find their peers alive.
        let ids: Vec<NodeId> = self.system.layout().all().collect();
        let started: Vec<(NodeId, _)> = ids
            .iter()
            .filter_map(|&id| self.spawn(id).map(|f| (id, f)))
            .collect();
        for (id, files) in started {
            self.step(id, Input::Start { files });
        }
        for t in 0..self.threads.len() {
            let delay = self.think();
            self.push(delay, Ev::Invoke { thread: t });
        }
        while let Some((at, ev)) = self.queue.pop() {
            if at > self.end_us {
                break;
            }
            self.now = at;
            self.dispatch(ev);
        }
        self.now = self.end_us;
    }

    fn think(&mut self) -> u64 {
        if self.think_us <= 0.0 {
            return 0;
        }
        let u: f64 = self.wl_rng.gen_range(f64::EPSILON..1.0);
        (-u.ln() * self.think_us) as u64
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver {
                from,
                to,
                conn,
                msg,
            } => {
                if self.net.is_current(from, to, conn) && self.hosts[to as usize].alive() {
                    self.stats.messages += 1;
                    self.trace.record(self.now, tag::DELIVER, to, &(from, &msg));
                    self.input(to, Input::Message { from, msg });
                }
            }
            Ev::ConnUp { node, peer, conn } => {
                if self.hosts[node as usize].alive() && self.net.mark_told_up(node, peer, conn) {
                    self.trace.record(self.now, tag::CONN_UP, node, &peer);
                    self.input(node, Input::ConnUp { peer });
                }
            }
            Ev::ConnLost { node, peer, inc } => {
                if self.hosts[node as usize].incarnation == inc && self.hosts[node as usize].alive()
                {
                    self.trace.record(self.now, tag::CONN_LOST, node, &peer);
                    self.input(node, Input::ConnLost { peer });
                }
            }
            Ev::Timer {
                node,
                inc,
                timer,
                gen,
            } => self.fire_timer(node, inc, timer, gen),
            Ev::DiskDone {
                node,
                inc,
                op,
                result,
            } => {
                if self.hosts[node as usize].incarnation == inc {
                    self.trace.record(self.now, tag::DISK, node, &(op, &result));
                    self.input(node, Input::Disk { op, result });
                }
            }
            Ev::Fsync {
                node,
                inc,
                op,
                token,
            } => {
                let host = &mut self.hosts[node as usize];
                if host.incarnation == inc {
                    let result = host.disk.complete_fsync(&token);
                    self.trace.record(self.now, tag::DISK, node, &(op, &result));
                    self.input(node, Input::Disk { op, result });
                }
            }
            Ev::Invoke { thread } => self.invoke(thread),
            Ev::Nemesis { index } => self.apply_action(index),
            Ev::Clog { from, to } => {
                if self.quiet_started {
                    return;
                }
                self.trace.record(self.now, tag::FAULT, from, &("clog", to));
                self.net.clog(from, to);
            }
            Ev::Unclog { from, to } => self.unclog(from, to),
            Ev::SupervisorRestart { node, inc } => {
                let h = &self.hosts[node as usize];
                if h.incarnation == inc && h.down == Some(DownReason::Halted) {
                    self.boot(node);
                }
            }
        }
    }

    fn fire_timer(&mut self, node: NodeId, inc: u32, timer: TimerId, gen: u64) {
        let host = &self.hosts[node as usize];
        if host.incarnation != inc || !host.timer_current(timer, gen) {
            return;
        }
        // After a backward clock jump the deadline may not be reached yet.
        let (deadline, _, mono) = host.timers[&timer];
        if host.clock.read(mono, self.now) < deadline {
            self.schedule_timer(node, timer, deadline, gen, mono);
            return;
        }
        let host = &mut self.hosts[node as usize];
        if host.paused {
            host.deferred.push_back(Deferred::Timer(timer, gen));
            return;
        }
        host.timers.remove(&timer);
        self.trace.record(self.now, tag::TIMER, node, &timer);
        self.step(node, Input::Timer { timer });
    }

    /// Hands an input to a node, or holds it while the node is paused.
    #[inline]
    pub(crate) fn input(&mut self, node: NodeId, input: Input) {
        let host = &mut self.hosts[node as usize];
        if !host.alive() {
            return;
        }
        if host.paused {
            host.defer(input);
            return;
        }
        self.step(node, input);
    }

    /// Runs one step of a node and carries out its effects.
    pub(crate) fn step(&mut self, id: NodeId, input: Input) {
        self.run_step(id, Some(input));
    }

    /// Asks a running node to shut down gracefully ([`Node::shutdown`]).
    ///
    /// [`Node::shutdown`]: kzsim_model::Node::shutdown
    pub(crate) fn request_shutdown(&mut self, id: NodeId) {
        let host = &self.hosts[id as usize];
        if !host.alive() || host.paused {
            // A stopped process cannot act on it; the fault's end kills it.
            return;
        }
        if self.log {
            log_info(self.now, Some(id), "shutdown requested");
        }
        self.hosts[id as usize].stopping = true;
        self.run_step(id, None);
    }

    /// One step of a node: an input, or (`None`) a shutdown request.
    fn run_step(&mut self, id: NodeId, input: Option<Input>) {
        let host = &mut self.hosts[id as usize];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        let local = host.clock.local(self.now);
        if self.log {
            if let Some(input) = &input {
                log_input(self.now, id, input);
            }
        }
        let mut effects = std::mem::take(&mut self.effects);
        {
            // What the node logs itself (elections, leader changes, ...)
            // carries the simulated time and the node's id.
            let _span = self.log.then(|| {
                tracing::info_span!("", t = %kzsim_model::SimTime(self.now), node = id).entered()
            });
            let mut cx = kzsim_model::Ctx::new(local, id, &mut host.rng, &mut effects)
                .with_probe(&mut self.probe);
            cx.mono = host.clock.mono(self.now);
            match input {
                Some(input) => node.step(input, &mut cx),
                None => node.shutdown(&mut cx),
            }
        }
        if let Some(m) = self.monitor.as_mut() {
            m.after_step(self.now, id, host.incarnation, &**node);
        }
        self.stats.steps += 1;
        if !self.probe.events.is_empty() {
            self.events_reported();
        }
        for e in effects.drain(..) {
            // Halted mid-step: the rest of its effects never happen.
            if !self.hosts[id as usize].alive() {
                continue;
            }
            if self.log {
                log_effect(self.now, id, &e);
            }
            match e {
                Effect::Send { to, msg } => self.send(id, to, msg),
                other => self.apply_effect(id, other),
            }
        }
        self.effects = effects;
    }

    /// Plans the faults the events of the last step set off (before the
    /// quiet period), and clears them.
    #[inline(never)]
    fn events_reported(&mut self) {
        let mut events = std::mem::take(&mut self.probe.events);
        for e in &events {
            self.recent_events.push_back((self.now, *e));
        }
        while self
            .recent_events
            .front()
            .is_some_and(|(t, _)| t + COMBO_WINDOW_US < self.now)
        {
            self.recent_events.pop_front();
        }
        if let Some(t) = self.triggers.as_mut().filter(|_| !self.quiet_started) {
            let quiet_at = self.quiet_at_us;
            for p in t.plan(&events, self.now) {
                if p.at_us >= quiet_at {
                    continue;
                }
                let id = self.next_fault_id;
                self.next_fault_id += 1;
                self.add_action(nemesis::Action {
                    at_us: p.at_us,
                    kind: nemesis::ActionKind::Start {
                        id,
                        kind: p.kind,
                        aim: p.aim,
                        value: p.value,
                    },
                });
                if let Some(d) = p.duration_us {
                    self.add_action(nemesis::Action {
                        at_us: (p.at_us + d).min(quiet_at),
                        kind: nemesis::ActionKind::End { id },
                    });
                }
            }
        }
        events.clear();
        self.probe.events = events;
    }

    /// Adds a step to the nemesis schedule.
    fn add_action(&mut self, a: nemesis::Action) {
        let at = a.at_us;
        self.schedule.push(a);
        let index = self.schedule.len() - 1;
        self.push(at, Ev::Nemesis { index });
    }

    /// Carries out an effect other than a send (those take the hot path in
    /// [`Engine::step`]).
    #[inline(never)]
    fn apply_effect(&mut self, id: NodeId, effect: Effect) {
        match effect {
            Effect::Send { to, msg } => self.send(id, to, msg),
            // Closing the dead socket leaves a newer connection alone.
            Effect::Disconnect { peer } if self.hosts[id as usize].on_dead_conn(peer) => {}
            Effect::Disconnect { peer } => {
                let until = self.now + self.net.config().detect_us;
                let notify = self.net.break_conn(id, peer, until);
                self.notify_lost(&notify, id, peer, until);
            }
            Effect::SetTimer { timer, after_us } => self.set_timer(id, timer, after_us, false),
            Effect::SetMonoTimer { timer, after_us } => self.set_timer(id, timer, after_us, true),
            Effect::CancelTimer { timer } => {
                self.hosts[id as usize].timers.remove(&timer);
            }
            Effect::Disk { op, req } => {
                let host = &mut self.hosts[id as usize];
                let inc = host.incarnation;
                match host.disk.issue(&req, &mut host.disk_rng) {
                    Issued::Done { result, latency_us } => self.push(
                        self.now + latency_us,
                        Ev::DiskDone {
                            node: id,
                            inc,
                            op,
                            result,
                        },
                    ),
                    Issued::Fsync { token, latency_us } => {
                        // BUGGIFY: an fsync that takes ten times as long
                        // (a busy device; completions reorder as jitter
                        // already lets them).
                        let slow = if self.probe.buggify("disk.fsync.slow") {
                            10
                        } else {
                            1
                        };
                        self.push(
                            self.now + latency_us * slow,
                            Ev::Fsync {
                                node: id,
                                inc,
                                op,
                                token,
                            },
                        )
                    }
                }
            }
            Effect::Reply { id: req, reply } => self.complete(req, id, reply),
            Effect::Exit { reason } => {
                self.trace
                    .record(self.now, tag::HALT, id, &("exit", &reason));
                if self.log {
                    log_info(self.now, Some(id), &format!("exit: {reason}"));
                }
                if self.quiet_started {
                    // The quiet period has booted every node already: a
                    // late exit is restarted by the supervisor.
                    self.take_down(id, DownReason::Halted, false);
                    let inc = self.hosts[id as usize].incarnation;
                    self.push(
                        self.now + HALT_RESTART_US,
                        Ev::SupervisorRestart { node: id, inc },
                    );
                } else {
                    // Down until the shutdown fault ends and boots it.
                    self.take_down(id, DownReason::Fault, false);
                }
            }
            Effect::Halt { reason } => {
                self.trace.record(self.now, tag::HALT, id, &reason);
                if self.log {
                    log_info(self.now, Some(id), &format!("halt: {reason}"));
                }
                self.take_down(id, DownReason::Halted, false);
                let inc = self.hosts[id as usize].incarnation;
                self.push(
                    self.now + HALT_RESTART_US,
                    Ev::SupervisorRestart { node: id, inc },
                );
            }
        }
    }

    #[inline]
    fn send(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        if to as usize >= self.hosts.len() || to == from {
            return;
        }
        // A resumed process answering its backlog writes to the connection
        // it knew, which broke while it was paused: the bytes go nowhere
        // (never onto a newer connection to the same peer).
        if self.hosts[from as usize].on_dead_conn(to) {
            return;
        }
        let to_alive = self.hosts[to as usize].alive();
        match self.net.send(self.now, from, to, to_alive) {
            SendOutcome::Deliver { conn, at, opened } => {
                if opened {
                    self.push(
                        self.now,
                        Ev::ConnUp {
                            node: from,
                            peer: to,
                            conn,
                        },
                    );
                    self.push(
                        at,
                        Ev::ConnUp {
                            node: to,
                            peer: from,
                            conn,
                        },
                    );
                }
                self.push(
                    at,
                    Ev::Deliver {
                        from,
                        to,
                        conn,
                        msg,
                    },
                );
            }
            SendOutcome::Held { conn, opened } => {
                if opened {
                    self.push(
                        self.now,
                        Ev::ConnUp {
                            node: from,
                            peer: to,
                            conn,
                        },
                    );
                }
                let q = self.held.entry((from, to)).or_default();
                if opened {
                    q.push_back((conn, None));
                }
                q.push_back((conn, Some(msg)));
            }
            SendOutcome::Broke { notify, at } => {
                self.notify_lost(&notify, from, to, at);
            }
            SendOutcome::Dropped => {}
        }
    }

    /// Tells each node in `notify` (one of `a`, `b`) at `at` that its
    /// connection with the other is lost.
    pub(crate) fn notify_lost(&mut self, notify: &[NodeId], a: NodeId, b: NodeId, at: u64) {
        for &node in notify {
            let peer = if node == a { b } else { a };
            let inc = self.hosts[node as usize].incarnation;
            self.push(at, Ev::ConnLost { node, peer, inc });
        }
    }

    fn unclog(&mut self, from: NodeId, to: NodeId) {
        self.trace
            .record(self.now, tag::FAULT, from, &("unclog", to));
        self.net.unclog(from, to);
        let Some(q) = self.held.remove(&(from, to)) else {
            return;
        };
        for (conn, msg) in q {
            let Some(at) = self.net.release(self.now, from, to, conn) else {
                continue;
            };
            match msg {
                None => self.push(
                    at,
                    Ev::ConnUp {
                        node: to,
                        peer: from,
                        conn,
                    },
                ),
                Some(msg) => self.push(
                    at,
                    Ev::Deliver {
                        from,
                        to,
                        conn,
                        msg,
                    },
                ),
            }
        }
    }

    /// Unclogs every clogged link.
    pub(crate) fn unclog_all(&mut self) {
        for (from, to) in self.net.clogged_links() {
            self.unclog(from, to);
        }
    }

    /// Starts (or restarts) node `id` from what its disk holds; the
    /// threads waiting for it (a client) go on.
    pub(crate) fn boot(&mut self, id: NodeId) {
        if let Some(files) = self.spawn(id) {
            self.step(id, Input::Start { files });
            self.wake_threads(id);
        }
    }

    /// Creates node `id`'s process (if it is down) and returns what its disk
    /// shows it; the caller hands that over as `Input::Start`.
    fn spawn(&mut self, id: NodeId) -> Option<BTreeMap<kzsim_model::FileName, Vec<u8>>> {
        let host = &mut self.hosts[id as usize];
        if host.alive() {
            return None;
        }
        host.node = Some(self.system.build(id));
        host.down = None;
        host.rng = stream_rng(self.seed, Stream::Node(id, host.incarnation));
        let files = host.disk.visible_files();
        self.trace.record(self.now, tag::START, id, &files);
        if self.log {
            log_info(
                self.now,
                Some(id),
                &format!("start ({} files)", files.len()),
            );
        }
        Some(files)
    }

    /// Stops node `id`'s process; `lose_cache` drops its unsynced writes
    /// (machine crash) instead of keeping them (process crash).
    pub(crate) fn take_down(&mut self, id: NodeId, reason: DownReason, lose_cache: bool) {
        let host = &mut self.hosts[id as usize];
        if !host.alive() {
            return;
        }
        host.kill(reason);
        if lose_cache {
            host.disk.crash(&mut host.disk_rng);
        }
        if !self.system.layout().is_server(id) {
            self.client_crashed(id);
        }
        let until = self.now + self.net.config().detect_us;
        for peer in self.net.peers_of(id) {
            let notify: Vec<NodeId> = self
                .net
                .break_conn(id, peer, until)
                .into_iter()
                .filter(|n| *n != id)
                .collect();
            self.notify_lost(&notify, id, peer, until);
        }
    }

    fn invoke(&mut self, t: usize) {
        // The last stretch of the run issues nothing new, so the system is
        // quiescent when the end-of-run checks read its final state.
        if self.threads[t].in_flight.is_some() || self.now >= self.settle_from_us {
            return;
        }
        let process = self.threads[t].process;
        if self.now >= self.writers_stop_us && self.workload.stops_early(process) {
            return;
        }
        let client = self.threads[t].client;
        // A request into a crashed client would never be answered, and a
        // stalled application calls nothing: wait until it is back.
        if !self.hosts[client as usize].alive() || self.stalled(client) {
            self.threads[t].parked = true;
            return;
        }
        let call = self.workload.invoke(process, &mut self.wl_rng);
        let req = self.next_req;
        self.next_req += 1;
        self.history.invoke(
            process,
            call.f,
            call.key.clone(),
            call.value.clone(),
            self.now,
            Some(client),
        );
        self.trace
            .record(self.now, tag::CLIENT, client, &(process, &call.req));
        let input = Input::Client {
            id: req,
            req: call.req.clone(),
        };
        self.threads[t].in_flight = Some((req, call));
        self.req_thread.insert(req, t);
        self.input(client, input);
    }

    fn complete(&mut self, req: ReqId, client: NodeId, reply: kzsim_model::ClientReply) {
        let Some(t) = self.req_thread.remove(&req) else {
            return;
        };
        let Some((_, call)) = self.threads[t].in_flight.take() else {
            return;
        };
        self.trace
            .record(self.now, tag::REPLY, client, &(req, &reply));
        let process = self.threads[t].process;
        let done = self.workload.complete(process, &call, &reply);
        self.history.push(crate::history::Event {
            process,
            kind: done.kind,
            f: call.f.to_string(),
            key: call.key.clone(),
            value: done.value,
            time: self.now,
            node: Some(client),
            error: done.error,
            meta: done.meta,
        });
        if done.kind == EventType::Info || done.new_process {
            // As in Jepsen: the process may still be running the operation,
            // so the thread continues as a new process.
            self.threads[t].process += self.threads.len() as u64;
        }
        let delay = self.think();
        self.push(self.now + delay.max(1), Ev::Invoke { thread: t });
    }

    /// Whether a `stall-client` fault holds the application on `client`.
    pub(crate) fn stalled(&self, client: NodeId) -> bool {
        self.active
            .values()
            .any(|(kind, hit)| *kind == FaultKind::StallClient && hit.contains(&client))
    }

    /// Queues, after think time, the next invoke of each thread parked on
    /// `client`, if it is up and not stalled now.
    pub(crate) fn wake_threads(&mut self, client: NodeId) {
        if !self.hosts[client as usize].alive() || self.stalled(client) {
            return;
        }
        for t in 0..self.threads.len() {
            if self.threads[t].client == client && self.threads[t].parked {
                self.threads[t].parked = false;
                let delay = self.think();
                self.push(self.now + delay.max(1), Ev::Invoke { thread: t });
            }
        }
    }

    /// Client node `client` went down: what was in flight on it ends
    /// `info` ("client crashed"), with its invocation value, and those
    /// threads wait for it to be booted; every thread on it goes on as a
    /// new process, as its session is gone with the process.
    fn client_crashed(&mut self, client: NodeId) {
        let n_threads = self.threads.len() as u64;
        for t in 0..self.threads.len() {
            if self.threads[t].client != client {
                continue;
            }
            let process = self.threads[t].process;
            self.workload.client_crashed(process);
            if let Some((req, call)) = self.threads[t].in_flight.take() {
                self.req_thread.remove(&req);
                self.trace
                    .record(self.now, tag::REPLY, client, &(req, CLIENT_CRASHED));
                self.history.push(crate::history::Event {
                    process,
                    kind: EventType::Info,
                    f: call.f.to_string(),
                    key: call.key,
                    value: call.value,
                    time: self.now,
                    node: Some(client),
                    error: Some(CLIENT_CRASHED.to_string()),
                    meta: None,
                });
                self.threads[t].parked = true;
            }
            self.threads[t].process += n_threads;
        }
    }

    /// The nodes as the end-of-run checks see them.
    pub fn nodes(&self) -> Vec<Option<&dyn Node>> {
        self.hosts.iter().map(|h| h.node.as_deref()).collect()
    }

    /// What the system's monitor saw during the run (empty without one).
    pub fn monitor_violations(&self) -> Vec<crate::outcome::Violation> {
        self.monitor
            .as_ref()
            .map(|m| m.violations())
            .unwrap_or_default()
    }

    /// The recorded history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Current true simulated time (µs).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The system under test.
    pub fn system(&self) -> &dyn System {
        self.system.as_ref()
    }

    /// Host of node `id` (tests and reports).
    pub fn host(&self, id: NodeId) -> &Host {
        &self.hosts[id as usize]
    }

    /// Resumes a paused node, handing over everything it missed in order.
    pub(crate) fn resume(&mut self, id: NodeId) {
        let host = &mut self.hosts[id as usize];
        if !host.paused {
            return;
        }
        host.paused = false;
        loop {
            let host = &mut self.hosts[id as usize];
            if !host.alive() || host.paused {
                break;
            }
            let Some(d) = host.undefer() else { break };
            match d {
                Deferred::Input(input) => self.step(id, input),
                Deferred::Timer(timer, gen) => {
                    if self.hosts[id as usize].timer_current(timer, gen) {
                        self.hosts[id as usize].timers.remove(&timer);
                        self.trace.record(self.now, tag::TIMER, id, &timer);
                        self.step(id, Input::Timer { timer });
                    }
                }
            }
        }
    }

    /// Records a fault that started, and the events it follows.
    pub(crate) fn note_applied(
        &mut self,
        id: u32,
        kind: FaultKind,
        nodes: &[NodeId],
        value: Option<f64>,
    ) {
        self.applied.push(AppliedFault {
            id,
            at_us: self.now,
            kind,
            nodes: nodes.to_vec(),
            value,
            end_us: None,
        });
        let mut seen = std::collections::BTreeSet::new();
        for (t, e) in &self.recent_events {
            if t + COMBO_WINDOW_US >= self.now {
                let on_subject = nodes.contains(&e.subject);
                if seen.insert((e.kind, on_subject)) {
                    *self.combos.entry((e.kind, kind, on_subject)).or_insert(0) += 1;
                }
            }
        }
    }

    /// The faults that started, in order.
    pub fn applied_faults(&self) -> &[AppliedFault] {
        &self.applied
    }

    /// Coverage of the run: how often each protocol event was reported
    /// (`event NAME`), each buggify site fired (`buggify SITE`; sites
    /// reached but switched off for the run are not listed), and each kind
    /// of fault started within [`COMBO_WINDOW_US`] after each kind of event
    /// (`fault KIND after EVENT`, and `... on its subject` when it hit the
    /// node the event was about).
    pub fn coverage(&self) -> BTreeMap<String, u64> {
        let events = self
            .probe
            .event_counts
            .iter()
            .map(|(k, v)| (format!("event {}", k.name()), *v));
        let sites = self
            .probe
            .sites
            .iter()
            .filter(|(_, c)| c.fired > 0)
            .map(|(k, c)| (format!("buggify {k}"), c.fired));
        let combos = self.combos.iter().map(|((e, f, on_subject), v)| {
            let whom = if *on_subject { " on its subject" } else { "" };
            (format!("fault {} after {}{whom}", f.name(), e.name()), *v)
        });
        events.chain(sites).chain(combos).collect()
    }

    /// Re-schedules every armed timer of `id` after its clock changed.
    pub(crate) fn reschedule_timers(&mut self, id: NodeId) {
        // Monotonic timers do not move.
        let armed: Vec<(TimerId, kzsim_model::SimTime, u64)> = self.hosts[id as usize]
            .timers
            .iter()
            .filter(|(_, (_, _, mono))| !mono)
            .map(|(t, (deadline, gen, _))| (*t, *deadline, *gen))
            .collect();
        for (timer, deadline, gen) in armed {
            self.schedule_timer(id, timer, deadline, gen, false);
        }
    }

    /// Arms `timer` of node `id` to fire `after_us` from now on its
    /// monotonic (`mono`) or wall clock.
    fn set_timer(&mut self, id: NodeId, timer: TimerId, after_us: u64, mono: bool) {
        let host = &mut self.hosts[id as usize];
        let deadline = kzsim_model::SimTime(host.clock.read(mono, self.now).0 + after_us);
        let gen = host.arm_timer(timer, deadline, mono);
        self.schedule_timer(id, timer, deadline, gen, mono);
    }

    /// Queues the firing of `timer` (generation `gen`) of node `id`'s
    /// current process for when its clock (monotonic if `mono`) reads
    /// `deadline`.
    fn schedule_timer(
        &mut self,
        id: NodeId,
        timer: TimerId,
        deadline: kzsim_model::SimTime,
        gen: u64,
        mono: bool,
    ) {
        let host = &self.hosts[id as usize];
        let at = host.clock.true_time_on(mono, deadline, self.now);
        let inc = host.incarnation;
        self.push(
            at,
            Ev::Timer {
                node: id,
                inc,
                timer,
                gen,
            },
        );
    }

    /// Records a fault in the trace (and the log).
    pub(crate) fn record_fault(&mut self, what: &str, nodes: &[NodeId], value: Option<f64>) {
        let node = nodes.first().copied().unwrap_or(u32::MAX);
        self.trace.record(
            self.now,
            tag::FAULT,
            node,
            &(what, nodes, value.map(f64::to_bits)),
        );
        self.stats.faults += 1;
        if self.log {
            let value = value.map_or(String::new(), |v| format!(" {v}"));
            log_info(
                self.now,
                None,
                &format!("fault {what}{value} on nodes {nodes:?}"),
            );
        }
    }

    /// A JSON summary of a value for logs.
    pub fn describe(v: &Value) -> String {
        v.to_string()
    }
}

/// Logs an event of the world at info level, in the same span shape as
/// what the nodes log themselves (`{t=… node=…}: message`).
#[cold]
#[inline(never)]
pub(crate) fn log_info(now: u64, node: Option<NodeId>, msg: &str) {
    let t = kzsim_model::SimTime(now);
    let _span = match node {
        Some(id) => tracing::info_span!("", t = %t, node = id).entered(),
        None => tracing::info_span!("", t = %t).entered(),
    };
    tracing::info!("{msg}");
}

/// Logs an input handed to a node (only with logging on: kept out of the hot
/// path).
#[cold]
#[inline(never)]
fn log_input(now: u64, id: NodeId, input: &Input) {
    let _span = tracing::info_span!("", t = %kzsim_model::SimTime(now), node = id).entered();
    tracing::debug!("input {}", crate::logfmt::readable(&format!("{input:?}")));
}

/// Logs an effect a node asked for (only with logging on).
#[cold]
#[inline(never)]
fn log_effect(now: u64, id: NodeId, effect: &Effect) {
    let _span = tracing::info_span!("", t = %kzsim_model::SimTime(now), node = id).entered();
    tracing::debug!("effect {}", crate::logfmt::readable(&format!("{effect:?}")));
}
