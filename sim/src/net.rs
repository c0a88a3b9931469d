//! The network model: TCP-like connections between pairs of nodes.
//!
//! Messages on one connection arrive in order or not at all. A connection
//! breaks when a partition cuts its link, a message on it is lost, either end
//! crashes, or a node closes it; both ends are then told (after a detection
//! delay), and later sends open a new connection. Latency and jitter are
//! seeded; links can be cut one way or both, slowed, or clogged (messages
//! held, then released in order). The model only answers questions; the
//! executor schedules what it says.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use kzsim_model::NodeId;

/// Network parameters from the scenario.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Base one-way latency in microseconds.
    pub latency_us: u64,
    /// Uniform extra latency in [0, jitter_us).
    pub jitter_us: u64,
    /// How long a connect attempt to an unreachable peer takes to fail.
    pub connect_timeout_us: u64,
    /// How long after a break each end learns of it.
    pub detect_us: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_us: 500,
            jitter_us: 500,
            connect_timeout_us: 20_000,
            detect_us: 1_000,
        }
    }
}

/// The identity of one connection incarnation.
pub type ConnId = u64;

#[derive(Clone, Debug)]
enum ConnState {
    Up {
        id: ConnId,
        /// Last scheduled delivery time per direction: [low->high, high->low].
        last_delivery: [u64; 2],
        /// Whether each end (low, high) has been told the connection is up.
        told_up: [bool; 2],
    },
    /// Broken; sends are dropped until both ends have been told.
    Broken { until: u64 },
}

/// What happens to one sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Deliver at `at` on connection `conn`. `opened` is set when this send
    /// opened the connection (both ends are to be told `ConnUp`).
    Deliver {
        /// Connection incarnation.
        conn: ConnId,
        /// True delivery time (µs).
        at: u64,
        /// This send opened the connection.
        opened: bool,
    },
    /// The link is clogged: hold the message on `conn` until unclogged.
    Held {
        /// Connection incarnation.
        conn: ConnId,
        /// This send opened the connection.
        opened: bool,
    },
    /// The connection broke (loss, or a failed connect): tell the ends in
    /// `notify` at `at` that it is lost.
    Broke {
        /// Ends to tell.
        notify: Vec<NodeId>,
        /// When.
        at: u64,
    },
    /// Dropped silently (the connection is already broken and the ends will
    /// be or have been told).
    Dropped,
}

/// The simulated network.
#[derive(Clone, Debug)]
pub struct Network {
    cfg: NetConfig,
    conns: BTreeMap<(NodeId, NodeId), ConnState>,
    next_conn: ConnId,
    /// Directed links that drop everything (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Directed links whose messages are held until unclogged.
    clogged: BTreeSet<(NodeId, NodeId)>,
    /// Extra latency per directed link (µs).
    slow: BTreeMap<(NodeId, NodeId), u64>,
    /// Extra latency on every link (µs).
    extra_delay_us: u64,
    /// Probability that a message is lost (breaking its connection).
    loss: f64,
}

fn key(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn dir(from: NodeId, to: NodeId) -> usize {
    usize::from(from > to)
}

impl Network {
    /// A fully connected network.
    pub fn new(cfg: NetConfig) -> Network {
        Network {
            cfg,
            conns: BTreeMap::new(),
            next_conn: 1,
            cut: BTreeSet::new(),
            clogged: BTreeSet::new(),
            slow: BTreeMap::new(),
            extra_delay_us: 0,
            loss: 0.0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Whether `from` can reach `to` (the directed link is not cut).
    pub fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Whether a connection can be established (both directions needed).
    pub fn connectable(&self, a: NodeId, b: NodeId) -> bool {
        self.reachable(a, b) && self.reachable(b, a)
    }

    /// Whether `conn` is the live connection between `a` and `b`.
    pub fn is_current(&self, a: NodeId, b: NodeId, conn: ConnId) -> bool {
        matches!(self.conns.get(&key(a, b)), Some(ConnState::Up { id, .. }) if *id == conn)
    }

    /// Marks that `node` was told connection `conn` with `peer` is up;
    /// returns false (do not tell) if the connection is no longer current.
    pub fn mark_told_up(&mut self, node: NodeId, peer: NodeId, conn: ConnId) -> bool {
        match self.conns.get_mut(&key(node, peer)) {
            Some(ConnState::Up { id, told_up, .. }) if *id == conn => {
                told_up[usize::from(node > peer)] = true;
                true
            }
            _ => false,
        }
    }

    fn latency(&self, from: NodeId, to: NodeId, rng: &mut ChaCha8Rng) -> u64 {
        let jitter = if self.cfg.jitter_us > 0 {
            rng.gen_range(0..self.cfg.jitter_us)
        } else {
            0
        };
        self.cfg.latency_us
            + jitter
            + self.extra_delay_us
            + self.slow.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Decides what happens to a message sent now from `from` to `to`.
    /// `to_alive` says whether the receiver's process is running.
    pub fn send(
        &mut self,
        now: u64,
        from: NodeId,
        to: NodeId,
        to_alive: bool,
        rng: &mut ChaCha8Rng,
    ) -> SendOutcome {
        let k = key(from, to);
        let mut opened = false;
        match self.conns.get(&k) {
            Some(ConnState::Up { .. }) => {}
            Some(ConnState::Broken { until }) if now < *until => return SendOutcome::Dropped,
            _ => {
                if !to_alive || !self.connectable(from, to) {
                    let until = now + self.cfg.connect_timeout_us;
                    self.conns.insert(k, ConnState::Broken { until });
                    return SendOutcome::Broke {
                        notify: vec![from],
                        at: until,
                    };
                }
                let id = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(
                    k,
                    ConnState::Up {
                        id,
                        last_delivery: [0, 0],
                        told_up: [false, false],
                    },
                );
                opened = true;
            }
        }
        if !self.reachable(from, to) || (self.loss > 0.0 && rng.gen_bool(self.loss)) {
            let at = now + self.cfg.detect_us;
            let notify = self.break_conn(from, to, at);
            return SendOutcome::Broke { notify, at };
        }
        let lat = self.latency(from, to, rng);
        let clogged = self.clogged.contains(&(from, to));
        let Some(ConnState::Up {
            id, last_delivery, ..
        }) = self.conns.get_mut(&k)
        else {
            unreachable!("connection is up")
        };
        if clogged {
            return SendOutcome::Held { conn: *id, opened };
        }
        let d = dir(from, to);
        let at = (now + lat).max(last_delivery[d]);
        last_delivery[d] = at;
        SendOutcome::Deliver {
            conn: *id,
            at,
            opened,
        }
    }

    /// Schedules a held message released by an unclog at `now`; `None` if its
    /// connection is gone.
    pub fn release(
        &mut self,
        now: u64,
        from: NodeId,
        to: NodeId,
        conn: ConnId,
        rng: &mut ChaCha8Rng,
    ) -> Option<u64> {
        let lat = self.latency(from, to, rng);
        match self.conns.get_mut(&key(from, to)) {
            Some(ConnState::Up {
                id, last_delivery, ..
            }) if *id == conn => {
                let d = dir(from, to);
                let at = (now + lat).max(last_delivery[d]);
                last_delivery[d] = at;
                Some(at)
            }
            _ => None,
        }
    }

    /// Breaks the connection between `a` and `b`, if up; returns the ends
    /// that had been told it was up (they must now be told it is lost, at
    /// `until`). Until then sends on this pair are dropped, so a new
    /// connection's `ConnUp` cannot overtake the old one's `ConnLost`.
    pub fn break_conn(&mut self, a: NodeId, b: NodeId, until: u64) -> Vec<NodeId> {
        let k = key(a, b);
        let mut notify = Vec::new();
        if let Some(ConnState::Up { told_up, .. }) = self.conns.get(&k) {
            if told_up[0] {
                notify.push(k.0);
            }
            if told_up[1] {
                notify.push(k.1);
            }
        } else {
            return notify;
        }
        self.conns.insert(k, ConnState::Broken { until });
        notify
    }

    /// Every pair with a live connection that involves `node`.
    pub fn peers_of(&self, node: NodeId) -> Vec<NodeId> {
        self.conns
            .iter()
            .filter(|(_, s)| matches!(s, ConnState::Up { .. }))
            .filter_map(|(&(a, b), _)| {
                if a == node {
                    Some(b)
                } else if b == node {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Every pair with a live connection.
    pub fn live_pairs(&self) -> Vec<(NodeId, NodeId)> {
        self.conns
            .iter()
            .filter(|(_, s)| matches!(s, ConnState::Up { .. }))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Clogs the directed link `from -> to`.
    pub fn clog(&mut self, from: NodeId, to: NodeId) {
        self.clogged.insert((from, to));
    }

    /// Unclogs `from -> to`; returns whether it was clogged.
    pub fn unclog(&mut self, from: NodeId, to: NodeId) -> bool {
        self.clogged.remove(&(from, to))
    }

    /// The clogged links.
    pub fn clogged_links(&self) -> Vec<(NodeId, NodeId)> {
        self.clogged.iter().copied().collect()
    }

    /// Whether `from -> to` is clogged.
    pub fn is_clogged(&self, from: NodeId, to: NodeId) -> bool {
        self.clogged.contains(&(from, to))
    }

    /// Adds `extra_us` of latency to `from -> to` (0 removes it).
    pub fn set_slow(&mut self, from: NodeId, to: NodeId, extra_us: u64) {
        if extra_us == 0 {
            self.slow.remove(&(from, to));
        } else {
            self.slow.insert((from, to), extra_us);
        }
    }

    /// Sets the probability of losing a message.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p.clamp(0.0, 1.0);
    }

    /// Sets extra latency on every link.
    pub fn set_extra_delay(&mut self, us: u64) {
        self.extra_delay_us = us;
    }

    /// Removes loss, delays and slowness (not cuts or clogs).
    pub fn clear_degradation(&mut self) {
        self.loss = 0.0;
        self.extra_delay_us = 0;
        self.slow.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn fifo_per_connection() {
        let mut net = Network::new(NetConfig::default());
        let mut r = rng();
        let mut last = 0;
        for i in 0..100 {
            match net.send(i, 1, 2, true, &mut r) {
                SendOutcome::Deliver { at, opened, .. } => {
                    assert_eq!(opened, i == 0);
                    assert!(at >= last);
                    last = at;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn cut_breaks_and_heal_reconnects() {
        let mut net = Network::new(NetConfig::default());
        let mut r = rng();
        let SendOutcome::Deliver { conn, .. } = net.send(0, 1, 2, true, &mut r) else {
            panic!()
        };
        assert!(net.mark_told_up(1, 2, conn));
        assert!(net.mark_told_up(2, 1, conn));
        net.cut(1, 2);
        let notify = net.break_conn(1, 2, 100);
        assert_eq!(notify, vec![1, 2]);
        assert!(!net.is_current(1, 2, conn));
        assert_eq!(net.send(50, 1, 2, true, &mut r), SendOutcome::Dropped);
        // After the detection delay a connect is attempted and fails.
        assert!(matches!(
            net.send(200, 1, 2, true, &mut r),
            SendOutcome::Broke { .. }
        ));
        net.heal();
        let later = 200 + net.config().connect_timeout_us;
        match net.send(later, 1, 2, true, &mut r) {
            SendOutcome::Deliver {
                conn: c2, opened, ..
            } => {
                assert!(opened);
                assert_ne!(c2, conn);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn one_way_cut_blocks_connect_both_ways() {
        let mut net = Network::new(NetConfig::default());
        let mut r = rng();
        net.cut(1, 2);
        assert!(matches!(
            net.send(0, 2, 1, true, &mut r),
            SendOutcome::Broke { .. }
        ));
    }

    #[test]
    fn loss_breaks_connection() {
        let mut net = Network::new(NetConfig::default());
        let mut r = rng();
        net.send(0, 1, 2, true, &mut r);
        net.set_loss(1.0);
        assert!(matches!(
            net.send(1, 1, 2, true, &mut r),
            SendOutcome::Broke { .. }
        ));
    }
}
