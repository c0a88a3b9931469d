//! Seeded fault runs: acks=all writes under random broker crashes,
//! restarts and partitions between brokers (one broker down at most, logs
//! flushed on every append so a crash is not a power loss of acknowledged
//! data); after healing, every acknowledged write is read back at its
//! offset, no offset holds two values, and the replicas agree.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::kafka::testkit::{Cluster, BROKERS, CONSUMER, PRODUCER};
use crate::kafka::{KafkaReply, KafkaRequest, ProducerConfig, Tp};
use crate::msg::{ClientReply, ClientRequest};
use crate::node::NodeId;

fn run_seed(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut c = Cluster::with(BugSet::none(), ProducerConfig::default(), |k| {
        k.log.flush_messages = Some(1);
    });
    assert!(c.run_until(5_000, |c| c.controllers().len() == 1));
    c.create_topic("t", BTreeMap::from([(0, BROKERS.to_vec())]));
    let tp = Tp::new("t", 0);
    assert!(c.run_until(3_000, |c| c.leaders(&tp).len() == 1));
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut down: Option<NodeId> = None;
    let mut cuts: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
    for step in 0..60 {
        match rng.gen_range(0..10) {
            0 if down.is_none() => {
                let b = BROKERS[rng.gen_range(0..3)];
                if std::env::var("KAFKA_DEBUG").is_ok() {
                    eprintln!("step {step}: crash {b}");
                }
                c.crash(b);
                down = Some(b);
            }
            1 => {
                if let Some(b) = down.take() {
                    if std::env::var("KAFKA_DEBUG").is_ok() {
                        eprintln!("step {step}: restart {b}");
                    }
                    c.restart(b);
                }
            }
            2 => {
                let a = BROKERS[rng.gen_range(0..3)];
                let b = BROKERS[rng.gen_range(0..3)];
                if a != b {
                    if std::env::var("KAFKA_DEBUG").is_ok() {
                        eprintln!("step {step}: cut {a}-{b}");
                    }
                    c.block(a, b, true);
                    cuts.insert((a, b));
                }
            }
            3 => {
                for (a, b) in std::mem::take(&mut cuts) {
                    c.block(a, b, false);
                }
            }
            _ => {}
        }
        let v = format!("s{seed}-{step}");
        let r = c.call(
            PRODUCER,
            ClientRequest::Kafka(KafkaRequest::Send {
                tp: tp.clone(),
                value: v.clone().into_bytes(),
            }),
        );
        if let ClientReply::Kafka(KafkaReply::Sent { offset: Some(o) }) = r {
            if let Some(old) = acked.insert(o, v.clone()) {
                panic!("seed {seed}: offset {o} acked for {old} and {v}");
            }
        }
    }
    for (a, b) in cuts {
        c.block(a, b, false);
    }
    if let Some(b) = down {
        c.restart(b);
    }
    c.run_ms(3_000);
    c.call(
        CONSUMER,
        ClientRequest::Kafka(KafkaRequest::Assign(vec![tp.clone()])),
    );
    let mut got: BTreeMap<u64, String> = BTreeMap::new();
    let want = acked.keys().next_back().map(|o| o + 1).unwrap_or(0);
    for _ in 0..300 {
        if let ClientReply::Kafka(KafkaReply::Polled { records, truncated }) =
            c.call(CONSUMER, ClientRequest::Kafka(KafkaRequest::Poll))
        {
            assert!(truncated.is_empty(), "seed {seed}: truncated {truncated:?}");
            for (_, o, v) in records {
                let v = String::from_utf8(v).unwrap();
                if let Some(old) = got.insert(o, v.clone()) {
                    panic!("seed {seed}: offset {o} read twice: {old} / {v}");
                }
            }
        }
        if got.len() as u64 >= want {
            break;
        }
        c.run_ms(10);
    }
    if std::env::var("KAFKA_DEBUG").is_ok() {
        eprintln!(
            "seed {seed}: acked {} got {} want {want}",
            acked.len(),
            got.len()
        );
        for b in BROKERS {
            eprintln!(
                "  {b}: {:?} {:?}",
                c.broker(b).map(|x| crate::node::Node::role(x)),
                c.broker(b).and_then(|x| x.replica_view(&tp)).map(|v| (
                    v.leader,
                    v.leader_epoch,
                    v.isr,
                    v.high_watermark,
                    v.log_end
                ))
            );
        }
    }
    for (o, v) in &acked {
        assert_eq!(got.get(o), Some(v), "seed {seed}: acked {v} at {o} lost");
    }
    assert!(acked.len() > 10, "seed {seed}: only {} acked", acked.len());
    let views: Vec<_> = BROKERS
        .iter()
        .filter_map(|&b| c.broker(b).and_then(|x| x.replica_view(&tp)))
        .collect();
    let leader = views.iter().find(|v| v.leader).expect("a leader");
    for v in &views {
        let n = leader.high_watermark.min(v.log_end) as usize;
        let flat = |vv: &crate::kafka::ReplicaView| -> Vec<Vec<u8>> {
            vv.batches.iter().flat_map(|b| b.values.clone()).collect()
        };
        if leader.isr.len() == 3 {
            assert_eq!(
                flat(v)[..n],
                flat(leader)[..n],
                "seed {seed}: replicas diverge"
            );
        }
    }
}

#[test]
fn acked_writes_survive_random_broker_faults() {
    for seed in 0..40 {
        run_seed(seed);
    }
}
