//! One node's host: the process (or its absence), its clock, disk, RNG,
//! timers, and the input it has not yet seen while paused.
//!
//! The host is what an executor keeps per node; it knows nothing of the event
//! queue, so a second executor can reuse it.

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha8Rng;

use kzsim_model::{Input, Node, NodeId, SimTime, TimerId};

use crate::clock::Clock;
use crate::disk::Disk;

/// Why a node is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// Crashed or killed by the nemesis.
    Fault,
    /// Halted itself (fail-stop); a supervisor restarts it.
    Halted,
}

/// An input held back while the process is paused.
#[derive(Clone, Debug)]
pub enum Deferred {
    /// An input to hand over on resume.
    Input(Input),
    /// A timer that fired while paused, with the generation it fired for.
    Timer(TimerId, u64),
}

/// Per-node state kept by the executor.
pub struct Host {
    /// The running process, if any.
    pub node: Option<Box<dyn Node>>,
    /// Why it is down, when it is.
    pub down: Option<DownReason>,
    /// Incarnation number; bumped when the process dies, so stale events
    /// (timers, disk completions) of the old process are ignored.
    pub incarnation: u32,
    /// The process's RNG (reseeded per incarnation).
    pub rng: ChaCha8Rng,
    /// Whether the process is paused.
    pub paused: bool,
    /// Asked to shut down gracefully and not yet gone: counts as down for
    /// the nemesis's `max_down` and is no target for a new fault.
    pub stopping: bool,
    /// Inputs that arrived while paused, in order (on resume they are
    /// handed over from the front, the rest staying here meanwhile).
    pub deferred: VecDeque<Deferred>,
    /// Per peer, how many `ConnLost` inputs wait in `deferred`: while one
    /// does, the process still believes in a connection the network has
    /// broken, so what it sends to that peer goes on a dead socket.
    pub lost_pending: BTreeMap<NodeId, u32>,
    /// Armed timers: local deadline and generation.
    /// (The flag: the deadline is on the monotonic clock.)
    pub timers: BTreeMap<TimerId, (SimTime, u64, bool)>,
    /// Source of timer generations.
    pub timer_gen: u64,
    /// The node's clock.
    pub clock: Clock,
    /// The node's disk.
    pub disk: Disk,
    /// The disk's RNG (latency, torn writes, corruption).
    pub disk_rng: ChaCha8Rng,
}

impl Host {
    /// A host with no process yet.
    pub fn new(clock: Clock, disk: Disk, disk_rng: ChaCha8Rng, rng: ChaCha8Rng) -> Host {
        Host {
            node: None,
            down: Some(DownReason::Fault),
            incarnation: 0,
            rng,
            paused: false,
            stopping: false,
            deferred: VecDeque::new(),
            lost_pending: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_gen: 0,
            clock,
            disk,
            disk_rng,
        }
    }

    /// Whether the process is running (possibly paused).
    pub fn alive(&self) -> bool {
        self.node.is_some()
    }

    /// Drops the process: volatile state, timers and held input are gone.
    pub fn kill(&mut self, reason: DownReason) {
        self.node = None;
        self.down = Some(reason);
        self.incarnation += 1;
        self.paused = false;
        self.stopping = false;
        self.deferred.clear();
        self.lost_pending.clear();
        self.timers.clear();
    }

    /// Holds `input` until resume.
    pub fn defer(&mut self, input: Input) {
        if let Input::ConnLost { peer } = input {
            *self.lost_pending.entry(peer).or_default() += 1;
        }
        self.deferred.push_back(Deferred::Input(input));
    }

    /// Takes the oldest held item.
    pub fn undefer(&mut self) -> Option<Deferred> {
        let d = self.deferred.pop_front()?;
        if let Deferred::Input(Input::ConnLost { peer }) = &d {
            if let Some(n) = self.lost_pending.get_mut(peer) {
                *n -= 1;
                if *n == 0 {
                    self.lost_pending.remove(peer);
                }
            }
        }
        Some(d)
    }

    /// Whether the process still believes in a broken connection to
    /// `peer` (its `ConnLost` is held, see `lost_pending`).
    pub fn on_dead_conn(&self, peer: NodeId) -> bool {
        self.lost_pending.contains_key(&peer)
    }

    /// Arms `timer` at local deadline `deadline`, of the monotonic clock if
    /// `mono` else of the wall clock; returns its generation.
    pub fn arm_timer(&mut self, timer: TimerId, deadline: SimTime, mono: bool) -> u64 {
        self.timer_gen += 1;
        self.timers.insert(timer, (deadline, self.timer_gen, mono));
        self.timer_gen
    }

    /// Whether `timer` is armed with generation `gen`.
    pub fn timer_current(&self, timer: TimerId, gen: u64) -> bool {
        self.timers.get(&timer).is_some_and(|(_, g, _)| *g == gen)
    }
}
