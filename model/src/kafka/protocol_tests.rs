//! Request-level tests against a running cluster: hand-made requests from
//! a probe node to a broker, checking the faithful answer and the answer
//! with the matching planted bug.

use std::collections::BTreeMap;

use crate::bugs::BugSet;
use crate::kafka::testkit::{Cluster, BROKERS};
use crate::kafka::{
    Acks, Batch, KafkaError, KafkaMsg, PartitionInfo, PartitionState, ProducerConfig, Tp,
};
use crate::msg::Msg;
use crate::node::NodeId;

const PROBE: NodeId = 150;

fn cluster(bug: Option<&str>) -> (Cluster, Tp, NodeId) {
    let mut bugs = BugSet::none();
    if let Some(b) = bug {
        bugs.enable(b);
    }
    let mut c = Cluster::new(bugs, ProducerConfig::default());
    assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1
        && BROKERS.iter().all(|&b| c
            .broker(b)
            .and_then(|x| x.replica_view(&tp))
            .is_some_and(|v| v.leader_epoch.is_some()))));
    let l = c.leaders(&tp)[0];
    (c, tp, l)
}

/// The answers the probe got, in order.
fn answers(c: &mut Cluster) -> Vec<KafkaMsg> {
    c.probes
        .drain(..)
        .filter(|(_, to, _)| *to == PROBE)
        .filter_map(|(_, _, m)| match m {
            Msg::Kafka(k) => Some(k),
            _ => None,
        })
        .collect()
}

fn produce(corr: u64, tp: &Tp, pid: u64, seq: i64, vals: &[&str]) -> Msg {
    produce_e(corr, tp, pid, 0, seq, vals)
}

fn produce_e(corr: u64, tp: &Tp, pid: u64, epoch: u16, seq: i64, vals: &[&str]) -> Msg {
    Msg::Kafka(KafkaMsg::Produce {
        corr,
        tp: tp.clone(),
        acks: Acks::All,
        timeout_ms: 1_000,
        batch: Batch {
            base_offset: 0,
            epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_seq: seq,
            values: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
        },
    })
}

fn produce_results(c: &mut Cluster) -> Vec<Result<u64, KafkaError>> {
    answers(c)
        .into_iter()
        .filter_map(|m| match m {
            KafkaMsg::ProduceResp { result, .. } => Some(result),
            _ => None,
        })
        .collect()
}

#[test]
fn idempotent_duplicates_get_the_original_offset() {
    for bug in [false, true] {
        let (mut c, tp, l) = cluster(bug.then_some("kafka_no_idempotent_dedup"));
        c.inject(PROBE, l, produce(1, &tp, 77, 0, &["a", "b"]));
        c.run_ms(100);
        // The retry of the same batch (same producer id and sequence).
        c.inject(PROBE, l, produce(2, &tp, 77, 0, &["a", "b"]));
        c.run_ms(100);
        // A gap in the sequence.
        c.inject(PROBE, l, produce(3, &tp, 77, 5, &["c"]));
        c.run_ms(100);
        let r = produce_results(&mut c);
        let log_end = c.broker(l).unwrap().replica_view(&tp).unwrap().log_end;
        if bug {
            assert_eq!(r[..2], [Ok(0), Ok(2)]);
            assert_eq!(log_end, 4);
        } else {
            assert_eq!(r, vec![Ok(0), Ok(0), Err(KafkaError::OutOfOrderSequence)]);
            assert_eq!(log_end, 2);
        }
    }
}

/// The produce answers the probe got, by correlation id.
fn produce_results_by_corr(c: &mut Cluster) -> Vec<Result<u64, KafkaError>> {
    let mut r: Vec<(u64, Result<u64, KafkaError>)> = answers(c)
        .into_iter()
        .filter_map(|m| match m {
            KafkaMsg::ProduceResp { corr, result } => Some((corr, result)),
            _ => None,
        })
        .collect();
    r.sort_by_key(|x| x.0);
    r.into_iter().map(|x| x.1).collect()
}

#[test]
fn five_pipelined_batches_and_their_retries_get_their_own_offsets() {
    for bug in [false, true] {
        let (mut c, tp, l) = cluster(bug.then_some("kafka_dedup_window_one"));
        // Five batches sent back to back, none waiting for an answer.
        for i in 0..5 {
            c.inject(PROBE, l, produce(1 + i, &tp, 77, 2 * i as i64, &["a", "b"]));
        }
        c.run_ms(100);
        let r = produce_results_by_corr(&mut c);
        assert_eq!(r, vec![Ok(0), Ok(2), Ok(4), Ok(6), Ok(8)]);
        // Their retries, oldest first: each is a duplicate of one of the
        // last five batches (only of the last with the bug).
        for i in 0..5 {
            c.inject(
                PROBE,
                l,
                produce(10 + i, &tp, 77, 2 * i as i64, &["a", "b"]),
            );
        }
        c.run_ms(100);
        let r = produce_results_by_corr(&mut c);
        if bug {
            let oos = Err(KafkaError::OutOfOrderSequence);
            assert_eq!(r, vec![oos, oos, oos, oos, Ok(8)]);
        } else {
            assert_eq!(r, vec![Ok(0), Ok(2), Ok(4), Ok(6), Ok(8)]);
        }
        // A sixth batch pushes the first out of the window.
        c.inject(PROBE, l, produce(20, &tp, 77, 10, &["c"]));
        c.inject(PROBE, l, produce(21, &tp, 77, 0, &["a", "b"]));
        c.run_ms(100);
        let r = produce_results_by_corr(&mut c);
        assert_eq!(r, vec![Ok(10), Err(KafkaError::OutOfOrderSequence)]);
        let log_end = c.broker(l).unwrap().replica_view(&tp).unwrap().log_end;
        assert_eq!(log_end, 11);
    }
}

#[test]
fn producer_epochs_are_fenced_and_unknown_producers_start_at_zero() {
    let (mut c, tp, l) = cluster(None);
    c.inject(PROBE, l, produce_e(1, &tp, 77, 0, 0, &["a"]));
    c.run_ms(100);
    // The bumped epoch restarts at 0; a non-zero start is refused.
    c.inject(PROBE, l, produce_e(2, &tp, 77, 1, 1, &["b"]));
    c.inject(PROBE, l, produce_e(3, &tp, 77, 1, 0, &["b"]));
    // The old epoch is fenced from then on.
    c.inject(PROBE, l, produce_e(4, &tp, 77, 0, 1, &["c"]));
    // A producer the broker never saw, not at sequence 0: accepted, as
    // Kafka 2.5+ brokers do (KIP-360).
    c.inject(PROBE, l, produce_e(5, &tp, 78, 0, 3, &["d"]));
    c.run_ms(100);
    let r = produce_results_by_corr(&mut c);
    assert_eq!(
        r,
        vec![
            Ok(0),
            Err(KafkaError::OutOfOrderSequence),
            Ok(1),
            Err(KafkaError::InvalidProducerEpoch),
            Ok(2),
        ]
    );
}

fn fetch(corr: u64, tp: &Tp, epoch: Option<u32>) -> Msg {
    Msg::Kafka(KafkaMsg::Fetch {
        corr,
        replica: None,
        tp: tp.clone(),
        current_leader_epoch: epoch,
        offset: 0,
        last_fetched_epoch: None,
        log_start: 0,
    })
}

#[test]
fn fetches_with_another_leader_epoch_are_fenced() {
    for bug in [false, true] {
        let (mut c, tp, l) = cluster(bug.then_some("kafka_no_fetch_epoch_fencing"));
        let e = c
            .broker(l)
            .unwrap()
            .replica_view(&tp)
            .unwrap()
            .leader_epoch
            .unwrap();
        c.inject(PROBE, l, produce(1, &tp, 0, -1, &["a"]));
        c.run_ms(100);
        produce_results_by_corr(&mut c);
        c.inject(PROBE, l, fetch(2, &tp, Some(e)));
        c.inject(PROBE, l, fetch(3, &tp, Some(e + 1)));
        c.run_ms(50);
        let r: Vec<_> = answers(&mut c)
            .into_iter()
            .filter_map(|m| match m {
                KafkaMsg::FetchResp { result, .. } => Some(result.map(|d| d.batches.len())),
                _ => None,
            })
            .collect();
        if bug {
            assert_eq!(r, vec![Ok(1), Ok(1)]);
        } else {
            assert_eq!(r, vec![Ok(1), Err(KafkaError::UnknownLeaderEpoch)]);
        }
        // After a fail-over the old epoch is fenced by the new leader.
        c.crash(l);
        assert!(c.run_until(5_000, |c| c.leaders(&tp).iter().any(|&x| x != l)));
        let nl = c.leaders(&tp)[0];
        c.inject(PROBE, nl, fetch(4, &tp, Some(e)));
        c.run_ms(50);
        let r: Vec<_> = answers(&mut c)
            .into_iter()
            .filter_map(|m| match m {
                KafkaMsg::FetchResp { result, .. } => Some(result.map(|d| d.batches.len())),
                _ => None,
            })
            .collect();
        if bug {
            assert_eq!(r, vec![Ok(1)]);
        } else {
            assert_eq!(r, vec![Err(KafkaError::FencedLeaderEpoch)]);
        }
    }
}

#[test]
fn leader_and_isr_from_a_stale_controller_is_ignored() {
    for bug in [false, true] {
        let (mut c, tp, l) = cluster(bug.then_some("kafka_no_controller_epoch_fencing"));
        let f = *BROKERS.iter().find(|&&b| b != l).unwrap();
        let ce = c.broker(f).unwrap().controller_epoch();
        assert!(ce >= 1);
        // A zombie controller (epoch ce - 1) makes f leader.
        let v = c.broker(f).unwrap().replica_view(&tp).unwrap();
        let zombie = KafkaMsg::LeaderAndIsr {
            corr: 0,
            controller_epoch: ce - 1,
            broker_epoch: c.broker(f).unwrap().broker_epoch(),
            partitions: vec![PartitionInfo {
                tp: tp.clone(),
                state: PartitionState {
                    leader: Some(f),
                    leader_epoch: v.leader_epoch.unwrap() + 10,
                    isr: vec![f],
                    controller_epoch: ce - 1,
                },
                replicas: BROKERS.to_vec(),
                zk_version: 0,
            }],
        };
        c.inject(PROBE, f, Msg::Kafka(zombie));
        c.run_ms(20);
        let now_leader = c.broker(f).unwrap().replica_view(&tp).unwrap().leader;
        assert_eq!(now_leader, bug, "bug={bug}");
    }
}

#[test]
fn update_metadata_from_a_stale_controller_is_refused() {
    for bug in [false, true] {
        let (mut c, tp, l) = cluster(bug.then_some("kafka_no_controller_epoch_fencing"));
        let f = *BROKERS.iter().find(|&&b| b != l).unwrap();
        assert!(c.run_until(1_000, |c| c
            .broker(f)
            .is_some_and(|b| b.metadata_versions().count() == 1)));
        let b = c.broker(f).unwrap();
        let ce = b.controller_epoch();
        let before: Vec<_> = b.metadata_versions().map(|(_, v)| v).collect();
        assert_eq!(before.len(), 1);
        // A zombie controller (epoch ce - 1) announces an older state.
        let zombie = KafkaMsg::UpdateMetadata {
            corr: 7,
            controller_epoch: ce - 1,
            broker_epoch: b.broker_epoch(),
            live: BROKERS.to_vec(),
            partitions: vec![PartitionInfo {
                tp: tp.clone(),
                state: PartitionState {
                    leader: Some(f),
                    leader_epoch: 0,
                    isr: vec![f],
                    controller_epoch: ce - 1,
                },
                replicas: BROKERS.to_vec(),
                zk_version: -1,
            }],
        };
        c.inject(PROBE, f, Msg::Kafka(zombie));
        c.run_ms(20);
        let after: Vec<_> = c
            .broker(f)
            .unwrap()
            .metadata_versions()
            .map(|(_, v)| v)
            .collect();
        let resp: Vec<_> = answers(&mut c)
            .into_iter()
            .filter_map(|m| match m {
                KafkaMsg::ControllerResp { corr: 7, result } => Some(result),
                _ => None,
            })
            .collect();
        if bug {
            assert_eq!(after, vec![(0, -1)]);
            assert_eq!(resp, vec![Ok(())]);
        } else {
            assert_eq!(after, before);
            assert_eq!(resp, vec![Err(KafkaError::StaleControllerEpoch)]);
        }
    }
}

#[test]
fn an_epoch_bump_that_keeps_the_leader_keeps_its_waiting_produces() {
    let (mut c, tp, l) = cluster(None);
    let followers: Vec<NodeId> = BROKERS.iter().copied().filter(|&b| b != l).collect();
    for &f in &followers {
        c.block(l, f, true);
    }
    // An acks=all produce waits for the followers it cannot reach.
    c.inject(PROBE, l, produce(1, &tp, 0, -1, &["a"]));
    c.run_ms(20);
    assert!(answers(&mut c).is_empty());
    // The controller bumps the leader epoch and keeps the leader (as a
    // reassignment or an ISR change made by the controller does).
    let v = c.broker(l).unwrap().replica_view(&tp).unwrap();
    let ce = c.broker(l).unwrap().controller_epoch();
    for &b in &BROKERS {
        let bump = KafkaMsg::LeaderAndIsr {
            corr: 0,
            controller_epoch: ce,
            broker_epoch: c.broker(b).unwrap().broker_epoch(),
            partitions: vec![PartitionInfo {
                tp: tp.clone(),
                state: PartitionState {
                    leader: Some(l),
                    leader_epoch: v.leader_epoch.unwrap() + 1,
                    isr: v.isr.clone(),
                    controller_epoch: ce,
                },
                replicas: BROKERS.to_vec(),
                zk_version: 0,
            }],
        };
        c.inject(PROBE, b, Msg::Kafka(bump));
    }
    c.run_ms(20);
    for &f in &followers {
        c.block(l, f, false);
    }
    c.run_ms(300);
    let r: Vec<_> = answers(&mut c)
        .into_iter()
        .filter_map(|m| match m {
            KafkaMsg::ProduceResp { corr: 1, result } => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(
        r,
        vec![Ok(v.log_end - 1)],
        "the produce is acknowledged, not failed"
    );
}

fn delete_records(corr: u64, tp: &Tp, offset: Option<u64>) -> Msg {
    Msg::Kafka(KafkaMsg::DeleteRecords {
        corr,
        tp: tp.clone(),
        offset,
    })
}

/// DeleteRecords: the leader moves its log start and answers with the low
/// watermark once every live follower's start has followed; past the high
/// watermark it refuses, and a follower is not the one to ask.
#[test]
fn delete_records_moves_every_replicas_log_start() {
    let (mut c, tp, l) = cluster(None);
    c.inject(PROBE, l, produce(1, &tp, 9, 0, &["a", "b", "c", "d"]));
    c.run_ms(200);
    let hw = c
        .broker(l)
        .unwrap()
        .replica_view(&tp)
        .unwrap()
        .high_watermark;
    assert_eq!(hw, 4);
    answers(&mut c);
    c.inject(PROBE, l, delete_records(2, &tp, Some(5)));
    c.inject(PROBE, l, delete_records(3, &tp, Some(3)));
    let f = *BROKERS.iter().find(|&&b| b != l).unwrap();
    c.inject(PROBE, f, delete_records(4, &tp, Some(3)));
    c.run_ms(300);
    let got = answers(&mut c);
    assert!(got.contains(&KafkaMsg::DeleteRecordsResp {
        corr: 2,
        result: Err(KafkaError::OffsetOutOfRange)
    }));
    assert!(got.contains(&KafkaMsg::DeleteRecordsResp {
        corr: 4,
        result: Err(KafkaError::NotLeader)
    }));
    assert!(
        got.iter().any(|m| matches!(m,
            KafkaMsg::DeleteRecordsResp { corr: 3, result: Ok(low) } if *low >= 3)),
        "{got:?}"
    );
    for b in BROKERS {
        let v = c.broker(b).unwrap().replica_view(&tp).unwrap();
        assert_eq!(v.log_start, 3, "broker {b}");
    }
    // A consumer fetching below the start gets no records and the start.
    c.inject(PROBE, l, fetch(5, &tp, None));
    c.run_ms(50);
    let got = answers(&mut c);
    assert!(
        got.iter().any(|m| matches!(m,
            KafkaMsg::FetchResp { corr: 5, result: Ok(d) } if d.batches.is_empty() && d.log_start == 3)),
        "{got:?}"
    );
}
