//! Each fault kind, shown by its effect on a probe protocol whose nodes record
//! everything they see: partitions break connections and heals let them
//! reconnect, crashes lose exactly the unsynced bytes, clock jumps move
//! timers, pauses hold input back, clogs hold messages and release them in
//! order, loss breaks connections, disk faults reach the node. The client
//! faults are shown on slow client nodes and the history: a crashed client's
//! operations in flight end `info` and it boots fresh; a stalled
//! application issues nothing, through the quiet period too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use kzsim_model::demo::{DemoMsg, DemoReply};
use kzsim_model::{ClientReply, Ctx, DiskReply, DiskRequest, Input, Msg, Node, NodeId};
use kzsim_sim::engine::Engine;
use kzsim_sim::history::{Event, EventType};
use kzsim_sim::outcome::Violation;
use kzsim_sim::scenario::Scenario;
use kzsim_sim::system::{Layout, System};
use kzsim_sim::testkit::ClosureSystem;
use kzsim_sim::workload::register::RegisterWorkload;
use kzsim_sim::workload::Workload;

/// What a probe saw: (node, local time in ms, event).
type Log = Arc<Mutex<Vec<(NodeId, u64, String)>>>;

const PING: u64 = 1;
const ONE_SHOT: u64 = 2;

struct Probe {
    log: Log,
    peers: Vec<NodeId>,
    ping_ms: u64,
    one_shot_ms: Option<u64>,
    disk_script: bool,
    seq: u64,
}

impl Probe {
    fn rec(&self, cx: &Ctx<'_>, what: String) {
        self.log.lock().unwrap().push((cx.me, cx.now.as_ms(), what));
    }
}

impl Node for Probe {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { files } => {
                let shown: BTreeMap<&String, String> = files
                    .iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
                    .collect();
                self.rec(cx, format!("start {shown:?}"));
                if self.ping_ms > 0 {
                    cx.set_timer_ms(PING, self.ping_ms);
                }
                if let Some(ms) = self.one_shot_ms {
                    cx.set_timer_ms(ONE_SHOT, ms);
                }
                if self.disk_script && files.is_empty() {
                    cx.disk(
                        0,
                        DiskRequest::Append {
                            file: "f".into(),
                            data: b"a".to_vec(),
                        },
                    );
                    cx.disk(1, DiskRequest::Fsync { file: "f".into() });
                }
            }
            Input::Timer { timer: PING } => {
                self.seq += 1;
                for &p in &self.peers {
                    cx.send(
                        p,
                        Msg::Demo(DemoMsg::Replicate {
                            index: self.seq,
                            value: cx.me as u64,
                        }),
                    );
                }
                cx.set_timer_ms(PING, self.ping_ms);
            }
            Input::Timer { timer } => {
                self.rec(cx, format!("timer {timer}"));
                for &p in &self.peers {
                    cx.send(p, Msg::Demo(DemoMsg::Ack { index: 999 }));
                }
            }
            Input::Message { from, msg } => {
                let what = match msg {
                    Msg::Demo(DemoMsg::Replicate { index, .. }) => format!("msg {from} {index}"),
                    Msg::Demo(DemoMsg::Ack { index }) => format!("ack {from} {index}"),
                    other => format!("{other:?}"),
                };
                self.rec(cx, what);
            }
            Input::ConnUp { peer } => self.rec(cx, format!("up {peer}")),
            Input::ConnLost { peer } => self.rec(cx, format!("lost {peer}")),
            Input::Disk { op, result } => {
                self.rec(cx, format!("disk {op} {result:?}"));
                if op == 1 && result == Ok(DiskReply::Synced) {
                    // Written after the fsync: never made durable.
                    cx.disk(
                        2,
                        DiskRequest::Append {
                            file: "f".into(),
                            data: b"b".to_vec(),
                        },
                    );
                }
                if op == 3 {
                    cx.disk(4, DiskRequest::Fsync { file: "f".into() });
                }
            }
            Input::Client { .. } => {}
        }
    }
}

fn probe_system(
    log: &Log,
    ping_ms: u64,
    one_shot_ms: Option<u64>,
    disk_script: bool,
) -> impl System {
    let log = log.clone();
    ClosureSystem::new(3, move |id| -> Box<dyn Node> {
        Box::new(Probe {
            log: log.clone(),
            peers: (0..3).filter(|p| *p != id).collect(),
            ping_ms: if id == 0 { ping_ms } else { 0 },
            one_shot_ms: if id == 0 { one_shot_ms } else { None },
            disk_script,
            seq: 0,
        })
    })
}

struct Run {
    log: Vec<(NodeId, u64, String)>,
}

impl Run {
    fn of(&self, node: NodeId) -> Vec<(u64, &str)> {
        self.log
            .iter()
            .filter(|(n, _, _)| *n == node)
            .map(|(_, t, w)| (*t, w.as_str()))
            .collect()
    }
    fn times(&self, node: NodeId, prefix: &str) -> Vec<u64> {
        self.of(node)
            .into_iter()
            .filter(|(_, w)| w.starts_with(prefix))
            .map(|(t, _)| t)
            .collect()
    }
}

fn run(faults: &str, ping_ms: u64, one_shot_ms: Option<u64>, disk_script: bool) -> Run {
    let text = format!(
        "description = \"probe\"\nduration_ms = 2000\n[cluster]\nsystem = \"demo\"\nservers = 3\nclients = 0\n[workload]\nprocesses = 0\n[network]\nlatency_us = 1000\njitter_us = 0\n[disk]\ntorn_write_prob = 0.0\n[faults]\nquiet_ms = 100\n{faults}"
    );
    let scenario = Scenario::parse(&text, Path::new("probe.toml")).expect("probe scenario");
    let log: Log = Arc::default();
    let system = probe_system(&log, ping_ms, one_shot_ms, disk_script);
    let mut engine = Engine::with_system(&scenario, 1, Box::new(system));
    engine.run();
    let log = log.lock().unwrap().clone();
    Run { log }
}

#[test]
fn partition_breaks_connections_and_heal_reconnects() {
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"partition-isolate\"\nnodes = [1]\n[[faults.at]]\nat_ms = 800\nkind = \"heal\"\n",
        10,
        None,
        false,
    );
    // Node 0 learns that its connection to 1 broke, right after the cut.
    let lost = r
        .of(0)
        .into_iter()
        .find(|(_, w)| *w == "lost 1")
        .expect("node 0 sees the break");
    assert!((300..=320).contains(&lost.0), "break seen at {}", lost.0);
    assert!(r.times(1, "lost 0").iter().any(|t| (300..=320).contains(t)));
    // Nothing reaches node 1 while it is cut off.
    let msgs = r.times(1, "msg 0");
    assert!(msgs.iter().all(|t| *t <= 301 || *t >= 800), "{msgs:?}");
    // After the heal a new connection comes up and pings flow again.
    let ups = r.times(1, "up 0");
    assert_eq!(ups.len(), 2, "one connection before, one after: {ups:?}");
    assert!(ups[1] >= 800);
    assert!(msgs.iter().any(|t| *t > 800));
    // Node 2 never lost anything.
    assert!(r.times(2, "lost").is_empty());
}

#[test]
fn one_way_partition_breaks_the_connection() {
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"partition-one-way\"\nduration_ms = 400\n",
        10,
        None,
        false,
    );
    let lost: usize = (0..3).map(|n| r.times(n, "lost").len()).sum();
    assert!(
        lost >= 2,
        "a one-way cut breaks the connections that cross it"
    );
}

#[test]
fn crash_loses_exactly_the_unsynced_bytes_and_kill_keeps_them() {
    let crash = run(
        "[[faults.at]]\nat_ms = 500\nkind = \"crash\"\nnodes = [2]\nduration_ms = 100\n",
        0,
        None,
        true,
    );
    let starts: Vec<&str> = crash
        .of(2)
        .into_iter()
        .filter(|(_, w)| w.starts_with("start"))
        .map(|(_, w)| w)
        .collect();
    assert_eq!(starts, vec!["start {}", "start {\"f\": \"a\"}"]);
    let kill = run(
        "[[faults.at]]\nat_ms = 500\nkind = \"kill\"\nnodes = [2]\nduration_ms = 100\n",
        0,
        None,
        true,
    );
    let starts: Vec<&str> = kill
        .of(2)
        .into_iter()
        .filter(|(_, w)| w.starts_with("start"))
        .map(|(_, w)| w)
        .collect();
    assert_eq!(starts, vec!["start {}", "start {\"f\": \"ab\"}"]);
}

#[test]
fn power_loss_restarts_every_server_from_durable_bytes() {
    let r = run(
        "[[faults.at]]\nat_ms = 500\nkind = \"power-loss\"\nduration_ms = 100\n",
        0,
        None,
        true,
    );
    for n in 0..3 {
        let starts = r.times(n, "start {\"f\": \"a\"}");
        assert_eq!(starts, vec![600], "node {n}");
    }
}

#[test]
fn clock_jump_moves_that_nodes_timers() {
    // Node 0's one-shot timer is due at 1000 ms on its own clock; a jump of
    // +500 ms at 100 ms makes it fire at true time ~500 ms, which node 1
    // (unjumped clock) sees as the arrival time of node 0's ack.
    let base = run("", 0, Some(1000), false);
    let arrive_base = base.times(1, "ack 0");
    assert_eq!(arrive_base.len(), 1);
    assert!((1000..=1002).contains(&arrive_base[0]), "{arrive_base:?}");
    let jumped = run(
        "[[faults.at]]\nat_ms = 100\nkind = \"clock-jump\"\nnodes = [0]\nvalue = 500.0\n",
        0,
        Some(1000),
        false,
    );
    let arrive = jumped.times(1, "ack 0");
    assert_eq!(arrive.len(), 1);
    assert!((500..=502).contains(&arrive[0]), "{arrive:?}");
    let back = run(
        "[[faults.at]]\nat_ms = 400\nkind = \"clock-jump\"\nnodes = [0]\nvalue = -300.0\n",
        0,
        Some(1000),
        false,
    );
    let arrive = back.times(1, "ack 0");
    assert!((1300..=1302).contains(&arrive[0]), "{arrive:?}");
    // A jump back past the node's boot stops at zero: at 100 ms, -300 ms
    // takes the clock back by 100 ms only, and it runs on from there.
    let past_boot = run(
        "[[faults.at]]\nat_ms = 100\nkind = \"clock-jump\"\nnodes = [0]\nvalue = -300.0\n",
        0,
        Some(1000),
        false,
    );
    let arrive = past_boot.times(1, "ack 0");
    assert!((1100..=1102).contains(&arrive[0]), "{arrive:?}");
}

#[test]
fn pause_holds_input_and_resume_delivers_it_in_order() {
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"pause\"\nnodes = [1]\nduration_ms = 400\n",
        10,
        None,
        false,
    );
    let msgs: Vec<(u64, u64)> = r
        .of(1)
        .into_iter()
        .filter_map(|(t, w)| w.strip_prefix("msg 0 ").map(|i| (t, i.parse().unwrap())))
        .collect();
    assert!(msgs.iter().all(|(t, _)| *t <= 300 || *t >= 700), "{msgs:?}");
    let burst = msgs.iter().filter(|(t, _)| *t == 700).count();
    assert!(burst >= 35, "the backlog arrives on resume: {burst}");
    assert!(msgs.windows(2).all(|w| w[0].1 < w[1].1), "in order");
}

#[test]
fn swizzle_clog_holds_messages_then_releases_them_in_order() {
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"swizzle\"\nduration_ms = 600\n",
        10,
        None,
        false,
    );
    let arrivals = |n: NodeId| -> Vec<(u64, u64)> {
        r.of(n)
            .into_iter()
            .filter_map(|(t, w)| w.strip_prefix("msg 0 ").map(|i| (t, i.parse().unwrap())))
            .collect()
    };
    let by_node: Vec<Vec<(u64, u64)>> = vec![Vec::new(), arrivals(1), arrivals(2)];
    let msgs: Vec<&(u64, u64)> = by_node.iter().flatten().collect();
    // Some link out of node 0 was clogged: a gap of at least 100 ms.
    let gaps = by_node[1..]
        .iter()
        .any(|v| v.windows(2).any(|w| w[1].0 - w[0].0 >= 100));
    assert!(
        gaps,
        "with this seed the swizzle clogs a link out of node 0"
    );
    for v in &by_node[1..] {
        assert!(v.windows(2).all(|w| w[0].1 < w[1].1), "FIFO kept");
    }
    assert!(!msgs.is_empty());
    assert!(
        r.times(1, "lost").is_empty() && r.times(2, "lost").is_empty(),
        "a clog does not break connections"
    );
}

#[test]
fn loss_breaks_connections() {
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"loss\"\nvalue = 1.0\nduration_ms = 200\n",
        10,
        None,
        false,
    );
    assert!(r.times(0, "lost").iter().any(|t| (300..=320).contains(t)));
    assert!(
        r.times(1, "msg 0").iter().any(|t| *t > 500),
        "traffic resumes"
    );
}

#[test]
fn disk_faults_reach_the_node() {
    let eio = run(
        "[[faults.at]]\nat_ms = 0\nkind = \"disk-eio\"\nnodes = [1]\n",
        0,
        None,
        true,
    );
    assert!(eio.of(1).iter().any(|(_, w)| *w == "disk 1 Err(Io)"));
    let full = run(
        "[[faults.at]]\nat_ms = 0\nkind = \"disk-full\"\nnodes = [1]\n",
        0,
        None,
        true,
    );
    assert!(full.of(1).iter().any(|(_, w)| *w == "disk 2 Err(NoSpace)"));
}

/// Answers every `Replicate` with an `Ack` of its index.
struct Echo;

impl Node for Echo {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        if let Input::Message {
            from,
            msg: Msg::Demo(DemoMsg::Replicate { index, .. }),
        } = input
        {
            cx.send(from, Msg::Demo(DemoMsg::Ack { index }));
        }
    }
}

/// Node 1 is paused while its connection with node 0 breaks and node 0
/// opens a new one. On resume, node 1 answers its backlog in order: the
/// answers to what arrived on the old connection go to that dead socket,
/// never onto the new connection; the answers to what came on the new one
/// arrive.
#[test]
fn a_resumed_process_answers_its_backlog_on_the_connection_it_knew() {
    let text = "description = \"probe\"\nduration_ms = 2000\n[cluster]\nsystem = \"demo\"\nservers = 3\nclients = 0\n[workload]\nprocesses = 0\n[network]\nlatency_us = 1000\njitter_us = 0\n[faults]\nquiet_ms = 100\n\
        [[faults.at]]\nat_ms = 300\nkind = \"pause\"\nnodes = [1]\nduration_ms = 400\n\
        [[faults.at]]\nat_ms = 400\nkind = \"partition-isolate\"\nnodes = [1]\nduration_ms = 100\n";
    let scenario = Scenario::parse(text, Path::new("probe.toml")).expect("probe scenario");
    let log: Log = Arc::default();
    let l = log.clone();
    let system = ClosureSystem::new(3, move |id| -> Box<dyn Node> {
        if id == 1 {
            Box::new(Echo)
        } else {
            Box::new(Probe {
                log: l.clone(),
                peers: vec![1],
                ping_ms: if id == 0 { 10 } else { 0 },
                one_shot_ms: None,
                disk_script: false,
                seq: 0,
            })
        }
    });
    let mut engine = Engine::with_system(&scenario, 1, Box::new(system));
    engine.run();
    let r = Run {
        log: log.lock().unwrap().clone(),
    };
    let acks: Vec<(u64, u64)> = r
        .of(0)
        .into_iter()
        .filter_map(|(t, w)| w.strip_prefix("ack 1 ").map(|i| (t, i.parse().unwrap())))
        .collect();
    // Pings go every 10 ms: index i is sent at about 10 i ms.
    let stale: Vec<&(u64, u64)> = acks
        .iter()
        .filter(|(t, i)| *t >= 700 && *i > 30 && *i < 40)
        .collect();
    assert!(
        stale.is_empty(),
        "answers from the old connection: {stale:?}"
    );
    let fresh = acks
        .iter()
        .filter(|(t, i)| *t >= 700 && *t < 710 && *i > 50)
        .count();
    assert!(
        fresh > 10,
        "the new connection's backlog is answered: {acks:?}"
    );
}

#[test]
fn slow_link_to_named_servers_slows_only_those_links() {
    // Node 0 pings 1 and 2 every 10 ms; from 300 ms its links to server 1
    // only get 100 ms more latency.
    let r = run(
        "[[faults.at]]\nat_ms = 300\nkind = \"slow-link\"\nnodes = [0]\ncut_nodes = [1]\nvalue = 100.0\nduration_ms = 400\n",
        10,
        None,
        false,
    );
    let quiet = |node| {
        r.times(node, "msg 0")
            .into_iter()
            .filter(|t| (305..395).contains(t))
            .count()
    };
    assert_eq!(quiet(1), 0, "server 1's pings are late");
    assert!(quiet(2) >= 8, "server 2's pings are not");
    // Still in order, none lost.
    let to1: Vec<u64> = r
        .of(1)
        .into_iter()
        .filter_map(|(_, w)| w.strip_prefix("msg 0 ").map(|i| i.parse().unwrap()))
        .collect();
    assert!(to1.windows(2).all(|w| w[0] + 1 == w[1]), "{to1:?}");
}

/// A client node's heartbeat timer (request ids, its other timers, start
/// at 1).
const HEARTBEAT: u64 = 0;

/// A client node that answers every request 40 ms later and beats every
/// 10 ms; it logs its start, each request and each beat.
struct SlowClient {
    log: Log,
}

impl Node for SlowClient {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        let log = |cx: &Ctx<'_>, what: String| {
            self.log.lock().unwrap().push((cx.me, cx.now.as_ms(), what));
        };
        match input {
            Input::Start { files } => {
                log(cx, format!("start {}", files.len()));
                cx.set_timer_ms(HEARTBEAT, 10);
            }
            Input::Timer { timer: HEARTBEAT } => {
                log(cx, "hb".into());
                cx.set_timer_ms(HEARTBEAT, 10);
            }
            Input::Client { id, .. } => {
                log(cx, format!("req {id}"));
                cx.set_timer_ms(id, 40);
            }
            Input::Timer { timer } => cx.reply(timer, ClientReply::Demo(DemoReply::WriteOk)),
            _ => {}
        }
    }
}

/// One idle server and two slow client nodes (ids 1 and 2) under a
/// write-only register workload; every build is logged.
struct SlowClients {
    layout: Layout,
    log: Log,
}

impl System for SlowClients {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn build(&self, id: NodeId) -> Box<dyn Node> {
        self.log
            .lock()
            .unwrap()
            .push((id, u64::MAX, "build".into()));
        if self.layout.is_server(id) {
            Box::new(Echo)
        } else {
            Box::new(SlowClient {
                log: self.log.clone(),
            })
        }
    }

    fn workload(&self) -> Box<dyn Workload> {
        Box::new(RegisterWorkload::new(0.0))
    }

    fn check(
        &self,
        _history: &kzsim_sim::history::History,
        _nodes: &[Option<&dyn Node>],
    ) -> Vec<Violation> {
        Vec::new()
    }

    fn anomalies(&self) -> &'static [&'static str] {
        &[]
    }
}

/// What a run of the slow clients left: the nodes' log, the history and
/// the trace hash.
struct ClientRun {
    run: Run,
    history: Vec<Event>,
    trace: String,
}

impl ClientRun {
    /// History events of `kind` on client node `node`.
    fn events(&self, node: NodeId, kind: EventType) -> Vec<&Event> {
        self.history
            .iter()
            .filter(|e| e.node == Some(node) && e.kind == kind)
            .collect()
    }

    /// Times (µs) of the invocations on client node `node`.
    fn invokes(&self, node: NodeId) -> Vec<u64> {
        self.events(node, EventType::Invoke)
            .iter()
            .map(|e| e.time)
            .collect()
    }

    /// How many invocations on `node` fall in `[from_ms, to_ms)`.
    fn invokes_in(&self, node: NodeId, from_ms: u64, to_ms: u64) -> usize {
        self.invokes(node)
            .iter()
            .filter(|t| (from_ms * 1000..to_ms * 1000).contains(*t))
            .count()
    }

    /// The processes that invoked on `node`.
    fn processes(&self, node: NodeId, from_ms: u64, to_ms: u64) -> BTreeSet<u64> {
        self.events(node, EventType::Invoke)
            .iter()
            .filter(|e| (from_ms * 1000..to_ms * 1000).contains(&e.time))
            .map(|e| e.process)
            .collect()
    }
}

/// Runs the slow clients for 2 s with 4 processes (0 and 2 on client node 1,
/// 1 and 3 on node 2) under `faults` (the quiet period: the last
/// `quiet_ms`).
fn client_run(quiet_ms: u64, faults: &str, seed: u64) -> ClientRun {
    let text = format!(
        "description = \"clients\"\nduration_ms = 2000\n[cluster]\nsystem = \"demo\"\nservers = 1\nclients = 2\n[workload]\nprocesses = 4\nthink_ms = 5.0\n[network]\nlatency_us = 1000\njitter_us = 0\n[faults]\nquiet_ms = {quiet_ms}\n{faults}"
    );
    let scenario = Scenario::parse(&text, Path::new("clients.toml")).expect("client scenario");
    let log: Log = Arc::default();
    let system = SlowClients {
        layout: Layout::new(1, 2),
        log: log.clone(),
    };
    let mut engine = Engine::with_system(&scenario, seed, Box::new(system));
    engine.run();
    engine
        .history()
        .operations()
        .expect("a well-formed history");
    let log = log.lock().unwrap().clone();
    ClientRun {
        run: Run { log },
        history: engine.history().events.clone(),
        trace: engine.trace().hex(),
    }
}

#[test]
fn crash_client_ends_its_ops_info_and_boots_it_fresh() {
    let faults =
        "[[faults.at]]\nat_ms = 500\nkind = \"crash-client\"\nnodes = [0]\nduration_ms = 200\n";
    let r = client_run(100, faults, 1);
    // What was in flight on node 1 ended at once, `info`, with its
    // invocation's value.
    let crashed: Vec<&Event> = r
        .events(1, EventType::Info)
        .into_iter()
        .filter(|e| e.error.as_deref() == Some("client crashed"))
        .collect();
    assert!(!crashed.is_empty(), "an op was in flight at 500 ms");
    for e in &crashed {
        assert_eq!(e.time, 500_000);
        let invoke = r
            .history
            .iter()
            .rfind(|i| i.kind == EventType::Invoke && i.process == e.process && i.time <= e.time)
            .expect("its invocation");
        assert_eq!(e.value, invoke.value);
        assert_eq!(e.f, invoke.f);
    }
    assert!(
        r.events(2, EventType::Info).is_empty(),
        "node 2 is untouched"
    );
    // Nothing is issued on the node while it is down; it is built again
    // and started with no files when the fault ends.
    assert_eq!(r.invokes_in(1, 500, 700), 0);
    assert!(r.invokes_in(2, 500, 700) > 5);
    assert_eq!(r.run.times(1, "build").len(), 2);
    assert_eq!(r.run.times(1, "start 0"), vec![0, 700]);
    assert!(r.run.times(1, "hb").iter().all(|t| *t <= 500 || *t >= 710));
    // Its threads go on as new processes, and their calls are answered.
    assert_eq!(r.processes(1, 0, 500), BTreeSet::from([0, 2]));
    assert_eq!(r.processes(1, 700, 2000), BTreeSet::from([4, 6]));
    assert_eq!(r.processes(2, 0, 2000), BTreeSet::from([1, 3]));
    let answered_after = r
        .events(1, EventType::Ok)
        .iter()
        .filter(|e| e.time > 700_000)
        .count();
    assert!(answered_after > 5, "{answered_after}");
    // The old process's requests are never answered.
    assert!(r
        .events(1, EventType::Ok)
        .iter()
        .all(|e| e.time < 500_000 || e.process >= 4));
}

#[test]
fn crash_client_without_duration_is_booted_by_the_quiet_period() {
    let faults = "[[faults.at]]\nat_ms = 500\nkind = \"crash-client\"\nnodes = [1]\n";
    let r = client_run(600, faults, 1);
    assert_eq!(r.run.times(2, "start 0"), vec![0, 1400]);
    assert_eq!(r.invokes_in(2, 500, 1400), 0);
    assert!(r.invokes_in(2, 1400, 2000) > 0, "its threads go on");
    assert_eq!(r.processes(2, 1400, 2000), BTreeSet::from([5, 7]));
}

#[test]
fn stall_client_issues_nothing_on_that_client_while_its_node_runs() {
    let faults =
        "[[faults.at]]\nat_ms = 500\nkind = \"stall-client\"\nnodes = [0]\nduration_ms = 300\n";
    let r = client_run(100, faults, 1);
    assert_eq!(r.invokes_in(1, 500, 800), 0, "{:?}", r.invokes(1));
    assert!(r.invokes_in(2, 500, 800) > 10, "the other client goes on");
    assert!(r.invokes_in(1, 800, 1000) > 0, "it goes on after the stall");
    // An op in flight when the stall began completes normally.
    let completed_in_stall = r
        .events(1, EventType::Ok)
        .iter()
        .filter(|e| (500_000..800_000).contains(&e.time))
        .count();
    assert!(completed_in_stall > 0);
    assert!(r.events(1, EventType::Info).is_empty());
    // The node itself runs on: its heartbeats go on, it is not rebuilt,
    // and its processes stay.
    let beats = r
        .run
        .times(1, "hb")
        .into_iter()
        .filter(|t| (500..800).contains(t))
        .count();
    assert!(beats >= 29, "{beats}");
    assert_eq!(r.run.times(1, "build").len(), 1);
    assert_eq!(r.processes(1, 0, 2000), BTreeSet::from([0, 2]));
}

#[test]
fn stall_client_outlives_the_quiet_period() {
    // The quiet period starts at 1400 ms; new ops stop at 1850 ms. Client 0
    // is stalled from 1200 to 1600 ms, client 1 from 1300 ms with no end.
    let faults =
        "[[faults.at]]\nat_ms = 1200\nkind = \"stall-client\"\nnodes = [0]\nduration_ms = 400\n\
        [[faults.at]]\nat_ms = 1300\nkind = \"stall-client\"\nnodes = [1]\n";
    let r = client_run(600, faults, 1);
    assert_eq!(r.invokes_in(1, 1200, 1600), 0, "{:?}", r.invokes(1));
    assert!(
        r.invokes_in(1, 1600, 1850) > 0,
        "client 0's stall ends at 1600 ms"
    );
    assert!(r.invokes_in(2, 1200, 1300) > 0);
    assert_eq!(r.invokes_in(2, 1300, 2000), 0, "client 1 stays stalled");
    // A stall whose end is past the run's end lasts to the end.
    let r = client_run(
        600,
        "[[faults.at]]\nat_ms = 1300\nkind = \"stall-client\"\nnodes = [1]\nduration_ms = 5000\n",
        1,
    );
    assert_eq!(r.invokes_in(2, 1300, 2000), 0);
    assert!(r.invokes_in(1, 1300, 1850) > 0);
}

#[test]
fn client_faults_are_deterministic_and_drawn_by_random_schedules() {
    let faults = "[[faults.at]]\nat_ms = 300\nkind = \"crash-client\"\nduration_ms = 150\n\
        [[faults.at]]\nat_ms = 600\nkind = \"stall-client\"\nduration_ms = 300\n\
        [faults.random]\ncrash-client = 3.0\nstall-client = 3.0\n";
    let a = client_run(200, faults, 7);
    let b = client_run(200, faults, 7);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.history, b.history);
    assert_eq!(a.run.log, b.run.log);
    let crashes = a
        .history
        .iter()
        .filter(|e| e.error.as_deref() == Some("client crashed"))
        .count();
    assert!(crashes > 0, "the random crashes hit ops in flight");
    let builds: usize = [1, 2].iter().map(|n| a.run.times(*n, "build").len()).sum();
    assert!(builds > 4, "crashed clients are booted again: {builds}");
    let c = client_run(200, faults, 8);
    assert_ne!(a.trace, c.trace, "another seed, another run");
}

#[test]
fn client_faults_name_client_indexes() {
    let text = "description = \"x\"\nduration_ms = 1000\n[cluster]\nsystem = \"demo\"\nservers = 1\nclients = 2\n[faults]\nquiet_ms = 100\n[[faults.at]]\nat_ms = 10\nkind = \"stall-client\"\nnodes = [2]\n";
    let err = Scenario::parse(text, Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("names client 2"), "{err}");
    assert!(Scenario::parse(&text.replace("[2]", "[1]"), Path::new("x.toml")).is_ok());
}

#[test]
fn the_demo_system_passes_its_checks_under_client_faults() {
    let text = "description = \"demo\"\nduration_ms = 3000\n[cluster]\nsystem = \"demo\"\nservers = 3\nclients = 3\n[workload]\nprocesses = 6\n[faults]\nquiet_ms = 500\n[faults.random]\ncrash-client = 2.0\nstall-client = 2.0\n";
    let scenario = Scenario::parse(text, Path::new("demo.toml")).expect("demo scenario");
    for seed in 0..10 {
        let opts = kzsim_sim::RunOptions {
            check_determinism: true,
            ..Default::default()
        };
        let out = kzsim_sim::run_seed(&scenario, seed, &opts);
        assert!(out.ok, "seed {seed}: {:?}", out.violations);
    }
}

/// `shutdown`: a node without a graceful path exits at once (keeping its
/// page cache, as a clean exit does) and is started again when the fault
/// ends.
#[test]
fn shutdown_exits_cleanly_and_restarts_when_the_fault_ends() {
    let r = run(
        "[[faults.at]]\nat_ms = 500\nkind = \"shutdown\"\nnodes = [2]\nduration_ms = 100\n",
        0,
        None,
        true,
    );
    let starts: Vec<(u64, &str)> = r
        .of(2)
        .into_iter()
        .filter(|(_, w)| w.starts_with("start"))
        .collect();
    assert_eq!(
        starts,
        vec![(0, "start {}"), (600, "start {\"f\": \"ab\"}")]
    );
}
