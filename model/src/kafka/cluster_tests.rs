//! End-to-end tests: a ZooKeeper ensemble, three brokers, a producer and a
//! consumer in the in-crate test world.

use std::collections::{BTreeMap, BTreeSet};

use crate::bugs::BugSet;
use crate::kafka::testkit::{Cluster, BROKERS, CONSUMER, PRODUCER};
use crate::kafka::{KafkaError, KafkaReply, KafkaRequest, ProducerConfig, Tp};
use crate::msg::{ClientReply, ClientRequest};
use crate::node::NodeId;

fn send(c: &mut Cluster, tp: &Tp, v: &str) -> KafkaReply {
    let r = c.call(
        PRODUCER,
        ClientRequest::Kafka(KafkaRequest::Send {
            tp: tp.clone(),
            value: v.as_bytes().to_vec(),
        }),
    );
    match r {
        ClientReply::Kafka(k) => k,
        other => panic!("{other:?}"),
    }
}

/// Polls until `n` records were read in total (or 5 s pass).
fn read_all(c: &mut Cluster, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    for _ in 0..500 {
        if got.len() >= n {
            break;
        }
        match c.call(CONSUMER, ClientRequest::Kafka(KafkaRequest::Poll)) {
            ClientReply::Kafka(KafkaReply::Polled { records, truncated }) => {
                assert!(truncated.is_empty(), "unexpected truncation {truncated:?}");
                for (_, off, v) in records {
                    got.push((off, String::from_utf8(v).unwrap()));
                }
            }
            other => panic!("{other:?}"),
        }
        c.run_ms(10);
    }
    got
}

fn setup(bugs: BugSet) -> (Cluster, Tp) {
    ready(Cluster::new(bugs, ProducerConfig::default()))
}

/// Waits for a controller and every broker's registration, creates topic
/// `t` with one partition on all brokers, and waits for its leader.
fn ready(mut c: Cluster) -> (Cluster, Tp) {
    assert!(
        c.run_until(5_000, |c| c.controllers().len() == 1
            && BROKERS
                .iter()
                .all(|&b| c.broker(b).is_some_and(|x| x.is_registered()))),
        "no controller"
    );
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(
        c.run_until(3_000, |c| c.leaders(&tp).len() == 1),
        "no leader for {tp}"
    );
    (c, tp)
}

#[test]
fn controller_topic_acks_all_and_read_back() {
    let (mut c, tp) = setup(BugSet::none());
    let ctl = c.controllers()[0];
    let epoch = c.broker(ctl).unwrap().controller_epoch();
    assert!(epoch >= 1);
    for i in 0..20 {
        match send(&mut c, &tp, &format!("v{i}")) {
            KafkaReply::Sent { offset } => assert_eq!(offset, Some(i)),
            other => panic!("send {i}: {other:?}"),
        }
    }
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    let got = read_all(&mut c, 20);
    let want: Vec<(u64, String)> = (0..20).map(|i| (i, format!("v{i}"))).collect();
    assert_eq!(got, want);
    // Every replica holds the committed records and agrees on the HW.
    c.run_ms(200);
    let views: Vec<_> = BROKERS
        .iter()
        .map(|&b| c.broker(b).unwrap().replica_view(&tp).unwrap())
        .collect();
    for v in &views {
        assert_eq!(v.log_end, 20);
        assert_eq!(v.high_watermark, 20);
        assert_eq!(v.batches, views[0].batches);
    }
    assert_eq!(views.iter().filter(|v| v.leader).count(), 1);
}

#[test]
fn leader_crash_moves_leadership_within_isr_without_loss() {
    let (mut c, tp) = setup(BugSet::none());
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..15 {
        let v = format!("a{i}");
        if let KafkaReply::Sent { offset: Some(o) } = send(&mut c, &tp, &v) {
            acked.insert(o, v);
        }
    }
    assert_eq!(acked.len(), 15);
    let old = c.leaders(&tp)[0];
    let before = c.broker(old).unwrap().replica_view(&tp).unwrap();
    let old_epoch = before.leader_epoch.unwrap();
    let isr: BTreeSet<NodeId> = before.isr.iter().copied().collect();
    c.crash(old);
    // The controller notices the expired session and elects within the ISR.
    assert!(
        c.run_until(5_000, |c| {
            let l = c.leaders(&tp);
            l.len() == 1 && l[0] != old
        }),
        "no new leader"
    );
    let new = c.leaders(&tp)[0];
    assert!(isr.contains(&new), "new leader {new} not from ISR {isr:?}");
    let v = c.broker(new).unwrap().replica_view(&tp).unwrap();
    assert!(v.leader_epoch.unwrap() > old_epoch);
    for i in 0..15 {
        let v = format!("b{i}");
        match send(&mut c, &tp, &v) {
            KafkaReply::Sent { offset: Some(o) } => {
                acked.insert(o, v);
            }
            other => panic!("send after fail-over: {other:?}"),
        }
    }
    // The old leader comes back, truncates by epoch and rejoins the ISR.
    c.restart(old);
    assert!(
        c.run_until(5_000, |c| {
            c.broker(new)
                .and_then(|b| b.replica_view(&tp))
                .is_some_and(|v| v.isr.contains(&old))
        }),
        "old leader never rejoined the ISR"
    );
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    let got: BTreeMap<u64, String> = read_all(&mut c, 30).into_iter().collect();
    for (o, v) in &acked {
        assert_eq!(got.get(o), Some(v), "acked write at {o} lost");
    }
    c.run_ms(300);
    let views: Vec<_> = BROKERS
        .iter()
        .map(|&b| c.broker(b).unwrap().replica_view(&tp).unwrap())
        .collect();
    for v in &views {
        assert_eq!(v.batches, views[0].batches, "replicas diverge");
    }
}

fn leader_view(c: &Cluster, tp: &Tp) -> (NodeId, crate::kafka::ReplicaView) {
    let l = c.leaders(tp)[0];
    (l, c.broker(l).unwrap().replica_view(tp).unwrap())
}

#[test]
fn isr_shrinks_for_a_cut_off_follower_and_expands_after() {
    let (mut c, tp) = setup(BugSet::none());
    send(&mut c, &tp, "x");
    let (l, v) = leader_view(&c, &tp);
    assert_eq!(v.isr.len(), 3);
    let f = *BROKERS.iter().find(|&&b| b != l).unwrap();
    c.block(l, f, true);
    // Writes keep flowing (min.insync.replicas = 2) once f is out.
    for i in 0..5 {
        match send(&mut c, &tp, &format!("s{i}")) {
            KafkaReply::Sent { offset: Some(_) } => {}
            other => panic!("{other:?}"),
        }
    }
    let (_, v) = leader_view(&c, &tp);
    assert!(!v.isr.contains(&f), "isr {:?}", v.isr);
    assert_eq!(v.isr.len(), 2);
    c.block(l, f, false);
    assert!(
        c.run_until(3_000, |c| leader_view(c, &tp).1.isr.contains(&f)),
        "follower never rejoined"
    );
    let fv = c.broker(f).unwrap().replica_view(&tp).unwrap();
    assert_eq!(fv.batches, leader_view(&c, &tp).1.batches);
}

#[test]
fn min_insync_replicas_refuses_acks_all() {
    for bug in [false, true] {
        let mut bugs = BugSet::none();
        if bug {
            bugs.enable("kafka_ignore_min_isr");
        }
        let (mut c, tp) = setup(bugs);
        send(&mut c, &tp, "x");
        let (l, _) = leader_view(&c, &tp);
        for b in BROKERS.iter().filter(|&&b| b != l) {
            c.block(l, *b, true);
        }
        match send(&mut c, &tp, "lonely") {
            KafkaReply::Error { error, .. } if !bug => assert!(
                matches!(
                    error,
                    KafkaError::NotEnoughReplicas | KafkaError::NotEnoughReplicasAfterAppend
                ),
                "{error:?}"
            ),
            KafkaReply::Sent { offset: Some(_) } if bug => {}
            other => panic!("bug={bug}: {other:?}"),
        }
        let (_, v) = leader_view(&c, &tp);
        assert_eq!(v.isr, vec![l]);
    }
}

#[test]
fn acks_one_divergent_suffix_is_truncated_by_epoch() {
    let pcfg = ProducerConfig {
        acks: crate::kafka::Acks::Leader,
        ..ProducerConfig::default()
    };
    let mut c = Cluster::with(BugSet::none(), pcfg, |k| {
        // Keep the cut-off leader's followers in the ISR, and make its
        // divergent records durable.
        k.replica_lag_time_max_ms = 60_000;
        k.log.flush_messages = Some(1);
    });
    assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
    for i in 0..3 {
        send(&mut c, &tp, &format!("c{i}"));
    }
    c.run_ms(100);
    let (l, _) = leader_view(&c, &tp);
    for b in BROKERS.iter().filter(|&&b| b != l) {
        c.block(l, *b, true);
    }
    for i in 0..3 {
        // Acked by the leader alone: these will be lost (acks=1).
        send(&mut c, &tp, &format!("lost{i}"));
    }
    c.crash(l);
    assert!(c.run_until(5_000, |c| c.leaders(&tp).iter().any(|&x| x != l)));
    for b in BROKERS.iter().filter(|&&b| b != l) {
        c.block(l, *b, false);
    }
    for i in 0..5 {
        send(&mut c, &tp, &format!("new{i}"));
    }
    c.restart(l);
    c.run_ms(2_000);
    let (nl, v) = leader_view(&c, &tp);
    assert_ne!(nl, l);
    let old = c.broker(l).unwrap().replica_view(&tp).unwrap();
    assert_eq!(old.batches, v.batches, "divergent suffix survived");
    assert!(v
        .batches
        .iter()
        .all(|b| !b.values.iter().any(|x| x.starts_with(b"lost"))));
}

#[test]
fn controller_failover_bumps_epoch_and_keeps_serving() {
    let (mut c, tp) = setup(BugSet::none());
    send(&mut c, &tp, "x");
    let ctl = c.controllers()[0];
    let e = c.broker(ctl).unwrap().controller_epoch();
    c.crash(ctl);
    assert!(
        c.run_until(5_000, |c| c.controllers().len() == 1
            && c.controllers()[0] != ctl),
        "no new controller"
    );
    let n = c.controllers()[0];
    assert!(c.broker(n).unwrap().controller_epoch() > e);
    assert!(c.run_until(5_000, |c| c.leaders(&tp).len() == 1));
    match send(&mut c, &tp, "after") {
        KafkaReply::Sent { offset: Some(1) } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_live_isr_member_leaves_the_partition_offline_unless_unclean() {
    for bug in [false, true] {
        let mut bugs = BugSet::none();
        if bug {
            bugs.enable("kafka_unclean_election");
        }
        let (mut c, tp) = setup(bugs);
        send(&mut c, &tp, "x");
        let (l, _) = leader_view(&c, &tp);
        for b in BROKERS.iter().filter(|&&b| b != l) {
            c.block(l, *b, true);
        }
        assert!(
            c.run_until(3_000, |c| leader_view(c, &tp).1.isr == vec![l]),
            "ISR never shrank"
        );
        c.crash(l);
        let moved = c.run_until(3_000, |c| !c.leaders(&tp).is_empty());
        assert_eq!(moved, bug, "bug={bug}: leaders {:?}", c.leaders(&tp));
    }
}

#[test]
fn consumer_detects_truncation_after_an_unclean_election() {
    let mut bugs = BugSet::none();
    bugs.enable("kafka_unclean_election");
    let mut c = Cluster::with(bugs, ProducerConfig::default(), |k| {
        k.min_insync_replicas = 1;
    });
    assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
    send(&mut c, &tp, "x");
    c.run_ms(100);
    let (l, _) = leader_view(&c, &tp);
    for b in BROKERS.iter().filter(|&&b| b != l) {
        c.block(l, *b, true);
    }
    assert!(c.run_until(3_000, |c| leader_view(c, &tp).1.isr == vec![l]));
    for i in 0..5 {
        assert!(matches!(
            send(&mut c, &tp, &format!("m{i}")),
            KafkaReply::Sent { offset: Some(_) }
        ));
    }
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    assert_eq!(read_all(&mut c, 6).len(), 6);
    c.crash(l);
    assert!(c.run_until(5_000, |c| c.leaders(&tp).iter().any(|&x| x != l)));
    let mut truncated = Vec::new();
    for _ in 0..100 {
        if let ClientReply::Kafka(KafkaReply::Polled { truncated: t, .. }) =
            c.call(CONSUMER, ClientRequest::Kafka(KafkaRequest::Poll))
        {
            truncated.extend(t);
        }
        if !truncated.is_empty() {
            break;
        }
        c.run_ms(20);
    }
    assert_eq!(truncated, vec![(tp, 1)]);
}

#[test]
fn whole_cluster_power_loss_loses_acked_writes_only_without_flush() {
    for flush in [true, false] {
        let mut c = Cluster::with(BugSet::none(), ProducerConfig::default(), |k| {
            if flush {
                k.log.flush_messages = Some(1);
            }
        });
        assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
        c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
        let tp = Tp::new("t", 0);
        assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
        for i in 0..10 {
            assert!(matches!(
                send(&mut c, &tp, &format!("p{i}")),
                KafkaReply::Sent { offset: Some(_) }
            ));
        }
        for b in BROKERS {
            c.crash(b);
        }
        for b in BROKERS {
            c.restart(b);
        }
        assert!(
            c.run_until(5_000, |c| c.leaders(&tp).len() == 1),
            "flush={flush}: no leader after power loss"
        );
        c.run_ms(500);
        let (_, v) = leader_view(&c, &tp);
        if flush {
            assert_eq!(v.log_end, 10, "flushed records lost");
        } else {
            // Kafka's default: acknowledged writes lived in page caches
            // only (the trade-off the power-loss scenarios show).
            assert_eq!(v.log_end, 0);
        }
    }
}

#[test]
fn acks_zero_gets_no_offset_and_still_lands() {
    let pcfg = ProducerConfig {
        acks: crate::kafka::Acks::None,
        ..ProducerConfig::default()
    };
    let mut c = Cluster::new(BugSet::none(), pcfg);
    assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
    c.run_ms(200);
    for i in 0..3 {
        assert_eq!(
            send(&mut c, &tp, &format!("z{i}")),
            KafkaReply::Sent { offset: None }
        );
    }
    c.run_ms(200);
    assert_eq!(leader_view(&c, &tp).1.log_end, 3);
}

#[test]
fn paused_controller_is_replaced_and_resigns_as_a_zombie() {
    let (mut c, tp) = setup(BugSet::none());
    send(&mut c, &tp, "x");
    let old = c.controllers()[0];
    let e = c.broker(old).unwrap().controller_epoch();
    // Longer than the ZooKeeper session timeout: the session expires.
    c.pause(old, 2_000);
    assert!(
        c.run_until(1_900, |c| c.controllers().iter().any(|&x| x != old)),
        "no new controller while the old one is paused"
    );
    let new = *c.controllers().iter().find(|&&x| x != old).unwrap();
    assert!(c.broker(new).unwrap().controller_epoch() > e);
    // The zombie resumes, finds its session gone, and resigns.
    assert!(
        c.run_until(3_000, |c| c.controllers() == vec![new]),
        "zombie controller never resigned: {:?}",
        c.controllers()
    );
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
    match send(&mut c, &tp, "after") {
        KafkaReply::Sent { offset: Some(1) } => {}
        other => panic!("{other:?}"),
    }
    // Every broker obeys the new controller's epoch.
    c.run_ms(500);
    for b in BROKERS {
        assert_eq!(
            c.broker(b).unwrap().controller_epoch(),
            c.broker(new).unwrap().controller_epoch()
        );
    }
}

#[test]
fn controller_requests_to_a_cut_off_broker_wait_and_arrive_after_the_heal() {
    let (mut c, tp) = setup(BugSet::none());
    send(&mut c, &tp, "x");
    let k = c.controllers()[0];
    let l = c.leaders(&tp)[0];
    let f = *BROKERS.iter().find(|&&b| b != k).unwrap();
    let g = *BROKERS.iter().rev().find(|&&b| b != l).unwrap();
    let queued = |c: &Cluster| {
        c.broker(k)
            .and_then(|b| b.controller.as_ref())
            .map_or(0, |ctl| ctl.channels.queued(f))
    };
    let meta = |c: &Cluster, b: NodeId| -> Vec<(u32, i32)> {
        c.broker(b)
            .unwrap()
            .metadata_versions()
            .map(|(_, v)| v)
            .collect()
    };
    let before = meta(&c, f);
    // The controller cannot reach f; the leader loses g, so the ISR
    // shrinks and the controller announces it.
    c.block(k, f, true);
    c.block(l, g, true);
    assert!(
        c.run_until(3_000, |c| queued(c) > 0
            && !leader_view(c, &tp).1.isr.contains(&g)
            && meta(c, k) != before),
        "no request waiting for the cut-off broker"
    );
    // Retried on every tick, never dropped while f counts as alive.
    c.run_ms(300);
    assert!(queued(&c) > 0);
    assert_eq!(meta(&c, f), before);
    c.block(k, f, false);
    c.block(l, g, false);
    assert!(
        c.run_until(2_000, |c| queued(c) == 0 && meta(c, f) == meta(c, k)),
        "queued requests never arrived: {:?} vs {:?}",
        meta(&c, f),
        meta(&c, k)
    );
}

#[test]
fn a_follower_catching_up_across_a_segment_roll_with_flush_messages_rejoins_the_isr() {
    // flush.messages = 1 (a follower fetches on only once its appends are
    // on disk) and segments of a few batches each: the catch-up fetch of a
    // follower that fell behind holds batches on both sides of a roll, so
    // one step flushes the old segment, rolls and flushes the new one. The
    // old segment's flush must be accounted to its own fsync, or the
    // follower waits forever for a sync that already happened and never
    // fetches (nor rejoins the ISR) again.
    let (mut c, tp) = ready(Cluster::with(
        BugSet::none(),
        ProducerConfig::default(),
        |k| {
            k.log.flush_messages = Some(1);
            k.log.segment_bytes = 150;
        },
    ));
    send(&mut c, &tp, "x");
    let (l, v) = leader_view(&c, &tp);
    assert_eq!(v.isr.len(), 3);
    let f = *BROKERS.iter().find(|&&b| b != l).unwrap();
    c.block(l, f, true);
    for i in 0..8 {
        match send(&mut c, &tp, &format!("s{i}")) {
            KafkaReply::Sent { offset: Some(_) } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(!leader_view(&c, &tp).1.isr.contains(&f));
    c.block(l, f, false);
    assert!(
        c.run_until(3_000, |c| leader_view(c, &tp).1.isr.contains(&f)),
        "follower never rejoined: its log ends at {} of the leader's {}",
        c.broker(f).unwrap().replica_view(&tp).unwrap().log_end,
        leader_view(&c, &tp).1.log_end
    );
    // And it keeps replicating afterwards.
    for i in 0..4 {
        send(&mut c, &tp, &format!("t{i}"));
    }
    c.run_ms(500);
    let (_, lv) = leader_view(&c, &tp);
    assert!(lv.isr.contains(&f), "isr {:?}", lv.isr);
    let fv = c.broker(f).unwrap().replica_view(&tp).unwrap();
    assert_eq!(fv.batches, lv.batches);
}

/// KAFKA-15583 (Kafka 3.7): with the ISR shrunk below
/// `min.insync.replicas`, acks=1 writes still land on the leader but the
/// high watermark stays where it was, so no consumer reads them until the
/// ISR is back to the minimum.
#[test]
fn the_high_watermark_waits_while_the_isr_is_below_min_insync() {
    let pcfg = ProducerConfig {
        acks: crate::kafka::Acks::Leader,
        ..ProducerConfig::default()
    };
    let (mut c, tp) = ready(Cluster::new(BugSet::none(), pcfg));
    send(&mut c, &tp, "x");
    assert!(c.run_until(1_000, |c| leader_view(c, &tp).1.high_watermark == 1));
    let (l, _) = leader_view(&c, &tp);
    for b in BROKERS.iter().filter(|&&b| b != l) {
        c.block(l, *b, true);
    }
    assert!(c.run_until(3_000, |c| leader_view(c, &tp).1.isr == vec![l]));
    for i in 0..3 {
        match send(&mut c, &tp, &format!("alone{i}")) {
            KafkaReply::Sent { offset: Some(_) } => {}
            other => panic!("{other:?}"),
        }
    }
    c.run_ms(200);
    let (_, v) = leader_view(&c, &tp);
    assert_eq!((v.log_end, v.high_watermark), (4, 1));
    for b in BROKERS.iter().filter(|&&b| b != l) {
        c.block(l, *b, false);
    }
    assert!(
        c.run_until(3_000, |c| leader_view(c, &tp).1.high_watermark == 4),
        "the high watermark never advanced: {:?}",
        leader_view(&c, &tp).1
    );
}

/// `auto.leader.rebalance.enable`: leadership leaves a crashed preferred
/// replica and comes back to it once it has restarted and rejoined the
/// ISR, with a new leader epoch and no record lost.
#[test]
fn leadership_returns_to_the_preferred_replica() {
    let (mut c, tp) = setup(BugSet::none());
    let preferred = BROKERS[0];
    assert!(c.run_until(3_000, |c| c.leaders(&tp) == vec![preferred]));
    send(&mut c, &tp, "before");
    let epoch0 = leader_view(&c, &tp).1.leader_epoch.unwrap();
    c.crash(preferred);
    assert!(c.run_until(5_000, |c| c.leaders(&tp).len() == 1
        && c.leaders(&tp)[0] != preferred));
    send(&mut c, &tp, "during");
    c.restart(preferred);
    assert!(
        c.run_until(15_000, |c| c.leaders(&tp) == vec![preferred]),
        "leadership never came back to {preferred}"
    );
    let v = c.broker(preferred).unwrap().replica_view(&tp).unwrap();
    assert!(v.leader_epoch.unwrap() >= epoch0 + 2);
    assert_eq!(v.isr.len(), 3);
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    let got: Vec<String> = read_all(&mut c, 2).into_iter().map(|r| r.1).collect();
    assert_eq!(got, vec!["before", "during"]);
}

/// Controlled shutdown: the leader, asked to stop, has the controller move
/// its leadership to another ISR member before it exits; it leaves the ISR,
/// writes its clean-shutdown marker, and after the restart (no recovery)
/// catches up and rejoins; nothing acknowledged is lost, and no send fails
/// while it goes.
#[test]
fn a_leader_shut_down_gracefully_hands_its_leadership_over_first() {
    let (mut c, tp) = setup(BugSet::none());
    for i in 0..5 {
        send(&mut c, &tp, &format!("a{i}"));
    }
    let old = c.leaders(&tp)[0];
    let epoch0 = leader_view(&c, &tp).1.leader_epoch.unwrap();
    c.shutdown(old);
    assert!(
        c.run_until(3_000, |c| c.exited.contains(&old)),
        "the broker never exited"
    );
    // Before it exited, another ISR member led, and it was out of the ISR.
    let (new, v) = leader_view(&c, &tp);
    assert_ne!(new, old);
    assert_eq!(v.leader_epoch, Some(epoch0 + 1), "one election, not two");
    assert!(!v.isr.contains(&old), "isr {:?}", v.isr);
    let disk = &c.disks[&old];
    assert!(disk
        .durable
        .contains_key(super::shutdown::CLEAN_SHUTDOWN_FILE));
    for i in 0..5 {
        match send(&mut c, &tp, &format!("b{i}")) {
            KafkaReply::Sent { offset: Some(_) } => {}
            other => panic!("send while the old leader is gone: {other:?}"),
        }
    }
    c.restart(old);
    assert!(
        c.run_until(5_000, |c| leader_view(c, &tp).1.isr.contains(&old)),
        "the restarted broker never rejoined the ISR"
    );
    assert!(!c.disks[&old]
        .durable
        .contains_key(super::shutdown::CLEAN_SHUTDOWN_FILE));
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    let got: Vec<String> = read_all(&mut c, 10).into_iter().map(|r| r.1).collect();
    assert_eq!(got.len(), 10, "{got:?}");
}
