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

use serde::Deserialize;

use crate::rng::FastRng;

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
        /// Whether each end (low, high) has sent on it: an end that sent
        /// must learn of a break even before it was told `ConnUp`.
        used: [bool; 2],
    },
    /// Broken; sends are dropped until `until`, when the ends in `owed`
    /// (low, high) learn of it. An end that sends into the window is owed
    /// a notice too: it has lost a message and must not think it sent it.
    Broken { until: u64, owed: [bool; 2] },
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
    /// Number of nodes; connections are indexed by `low * nodes + high`.
    nodes: usize,
    conns: Vec<Option<ConnState>>,
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
    /// Draws for jitter and loss.
    rng: FastRng,
}

fn key(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Network {
    #[inline]
    fn slot(&self, a: NodeId, b: NodeId) -> usize {
        let (lo, hi) = key(a, b);
        lo as usize * self.nodes + hi as usize
    }

    #[inline]
    fn conn(&self, a: NodeId, b: NodeId) -> Option<&ConnState> {
        self.conns[self.slot(a, b)].as_ref()
    }

    #[inline]
    fn conn_mut(&mut self, a: NodeId, b: NodeId) -> Option<&mut ConnState> {
        let i = self.slot(a, b);
        self.conns[i].as_mut()
    }

    #[inline]
    fn set_conn(&mut self, a: NodeId, b: NodeId, state: ConnState) {
        let i = self.slot(a, b);
        self.conns[i] = Some(state);
    }
}

/// The index of `from`'s end of its connection with `to` (low 0, high 1),
/// which is also the index of the direction it sends in.
fn dir(from: NodeId, to: NodeId) -> usize {
    usize::from(from > to)
}

impl Network {
    /// A fully connected network of `nodes` nodes (ids `0..nodes`).
    pub fn new(cfg: NetConfig, nodes: usize, seed: u64) -> Network {
        Network {
            cfg,
            nodes,
            conns: vec![None; nodes * nodes],
            next_conn: 1,
            cut: BTreeSet::new(),
            clogged: BTreeSet::new(),
            slow: BTreeMap::new(),
            extra_delay_us: 0,
            loss: 0.0,
            rng: FastRng::new(seed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Whether `from` can reach `to` (the directed link is not cut).
    #[inline]
    pub fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.is_empty() || !self.cut.contains(&(from, to))
    }

    /// Whether a connection can be established (both directions needed).
    pub fn connectable(&self, a: NodeId, b: NodeId) -> bool {
        self.reachable(a, b) && self.reachable(b, a)
    }

    /// Whether `conn` is the live connection between `a` and `b`.
    pub fn is_current(&self, a: NodeId, b: NodeId, conn: ConnId) -> bool {
        matches!(self.conn(a, b), Some(ConnState::Up { id, .. }) if *id == conn)
    }

    /// Marks that `node` was told connection `conn` with `peer` is up;
    /// returns false (do not tell) if the connection is no longer current.
    pub fn mark_told_up(&mut self, node: NodeId, peer: NodeId, conn: ConnId) -> bool {
        match self.conn_mut(node, peer) {
            Some(ConnState::Up { id, told_up, .. }) if *id == conn => {
                told_up[usize::from(node > peer)] = true;
                true
            }
            _ => false,
        }
    }

    fn latency(&mut self, from: NodeId, to: NodeId) -> u64 {
        let jitter = if self.cfg.jitter_us > 0 {
            self.rng.below(self.cfg.jitter_us)
        } else {
            0
        };
        let slow = if self.slow.is_empty() {
            0
        } else {
            self.slow.get(&(from, to)).copied().unwrap_or(0)
        };
        self.cfg.latency_us + jitter + self.extra_delay_us + slow
    }

    /// Decides what happens to a message sent now from `from` to `to`.
    /// `to_alive` says whether the receiver's process is running.
    pub fn send(&mut self, now: u64, from: NodeId, to: NodeId, to_alive: bool) -> SendOutcome {
        let mut opened = false;
        match self.conn_mut(from, to) {
            Some(ConnState::Up { .. }) => {}
            Some(ConnState::Broken { until, owed }) if now < *until => {
                let end = dir(from, to);
                if owed[end] {
                    return SendOutcome::Dropped;
                }
                owed[end] = true;
                let at = *until;
                return SendOutcome::Broke {
                    notify: vec![from],
                    at,
                };
            }
            _ => {
                if !to_alive || !self.connectable(from, to) {
                    let until = now + self.cfg.connect_timeout_us;
                    let mut owed = [false; 2];
                    owed[dir(from, to)] = true;
                    self.set_conn(from, to, ConnState::Broken { until, owed });
                    return SendOutcome::Broke {
                        notify: vec![from],
                        at: until,
                    };
                }
                let id = self.next_conn;
                self.next_conn += 1;
                self.set_conn(
                    from,
                    to,
                    ConnState::Up {
                        id,
                        last_delivery: [0, 0],
                        told_up: [false, false],
                        used: [false, false],
                    },
                );
                opened = true;
            }
        }
        if !self.reachable(from, to) || (self.loss > 0.0 && self.rng.chance(self.loss)) {
            // This end sent on it: it must hear of the break.
            if let Some(ConnState::Up { used, .. }) = self.conn_mut(from, to) {
                used[dir(from, to)] = true;
            }
            let at = now + self.cfg.detect_us;
            let notify = self.break_conn(from, to, at);
            return SendOutcome::Broke { notify, at };
        }
        let lat = self.latency(from, to);
        let clogged = !self.clogged.is_empty() && self.clogged.contains(&(from, to));
        let Some(ConnState::Up {
            id,
            last_delivery,
            used,
            ..
        }) = self.conn_mut(from, to)
        else {
            unreachable!("connection is up")
        };
        used[dir(from, to)] = true;
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
    pub fn release(&mut self, now: u64, from: NodeId, to: NodeId, conn: ConnId) -> Option<u64> {
        let lat = self.latency(from, to);
        match self.conn_mut(from, to) {
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
        let Some(ConnState::Up { told_up, used, .. }) = self.conn(a, b) else {
            return Vec::new();
        };
        let owed = [told_up[0] || used[0], told_up[1] || used[1]];
        let k = key(a, b);
        let notify = [k.0, k.1]
            .into_iter()
            .zip(owed)
            .filter_map(|(end, told)| told.then_some(end))
            .collect();
        self.set_conn(a, b, ConnState::Broken { until, owed });
        notify
    }

    /// Every pair with a live connection that involves `node`.
    pub fn peers_of(&self, node: NodeId) -> Vec<NodeId> {
        (0..self.nodes as NodeId)
            .filter(|&p| p != node && matches!(self.conn(node, p), Some(ConnState::Up { .. })))
            .collect()
    }

    /// Every pair (low, high) with a live connection, in order.
    pub fn live_pairs(&self) -> Vec<(NodeId, NodeId)> {
        let n = self.nodes as NodeId;
        (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .filter(|&(a, b)| matches!(self.conn(a, b), Some(ConnState::Up { .. })))
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

    #[test]
    fn fifo_per_connection() {
        let mut net = Network::new(NetConfig::default(), 4, 7);
        let mut last = 0;
        for i in 0..100 {
            match net.send(i, 1, 2, true) {
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
        let mut net = Network::new(NetConfig::default(), 4, 7);
        let SendOutcome::Deliver { conn, .. } = net.send(0, 1, 2, true) else {
            panic!()
        };
        assert!(net.mark_told_up(1, 2, conn));
        assert!(net.mark_told_up(2, 1, conn));
        net.cut(1, 2);
        let notify = net.break_conn(1, 2, 100);
        assert_eq!(notify, vec![1, 2]);
        assert!(!net.is_current(1, 2, conn));
        assert_eq!(net.send(50, 1, 2, true), SendOutcome::Dropped);
        // After the detection delay a connect is attempted and fails.
        assert!(matches!(
            net.send(200, 1, 2, true),
            SendOutcome::Broke { .. }
        ));
        net.heal();
        let later = 200 + net.config().connect_timeout_us;
        match net.send(later, 1, 2, true) {
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
        let mut net = Network::new(NetConfig::default(), 4, 7);
        net.cut(1, 2);
        assert!(matches!(net.send(0, 2, 1, true), SendOutcome::Broke { .. }));
    }

    #[test]
    fn loss_breaks_connection() {
        let mut net = Network::new(NetConfig::default(), 4, 7);
        net.send(0, 1, 2, true);
        net.set_loss(1.0);
        assert!(matches!(net.send(1, 1, 2, true), SendOutcome::Broke { .. }));
    }

    #[test]
    fn a_send_into_the_other_ends_failed_connect_is_reported_to_its_sender() {
        let mut net = Network::new(NetConfig::default(), 4, 7);
        net.cut(1, 2);
        // 2's connect fails; 2 learns at `until`.
        let SendOutcome::Broke { notify, at } = net.send(0, 2, 1, true) else {
            panic!()
        };
        assert_eq!(notify, vec![2]);
        // 1 sends in that window: its message is lost, and it must learn
        // so, at the same time, once.
        assert_eq!(
            net.send(5, 1, 2, true),
            SendOutcome::Broke {
                notify: vec![1],
                at
            }
        );
        assert_eq!(net.send(6, 1, 2, true), SendOutcome::Dropped);
        assert_eq!(net.send(7, 2, 1, true), SendOutcome::Dropped);
    }

    #[test]
    fn a_break_before_conn_up_is_reported_to_the_end_that_sent() {
        let mut net = Network::new(NetConfig::default(), 4, 7);
        let SendOutcome::Deliver { opened: true, .. } = net.send(0, 1, 2, true) else {
            panic!()
        };
        // Neither end has been told ConnUp yet, but 1 has sent on it.
        net.cut(1, 2);
        assert_eq!(net.break_conn(1, 2, 100), vec![1]);
    }
}
