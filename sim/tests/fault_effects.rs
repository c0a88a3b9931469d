//! Each fault kind, shown by its effect on a probe protocol whose nodes record
//! everything they see: partitions break connections and heals let them
//! reconnect, crashes lose exactly the unsynced bytes, clock jumps move
//! timers, pauses hold input back, clogs hold messages and release them in
//! order, loss breaks connections, disk faults reach the node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kzsim_model::demo::DemoMsg;
use kzsim_model::{Ctx, DiskReply, DiskRequest, Input, Msg, Node, NodeId};
use kzsim_sim::engine::Engine;
use kzsim_sim::scenario::Scenario;
use kzsim_sim::system::System;
use kzsim_sim::testkit::ClosureSystem;

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
