//! One node's host: the process (or its absence), its clock, disk, RNG,
//! timers, and the input it has not yet seen while paused.
//!
//! The host is what an executor keeps per node; it knows nothing of the event
//! queue, so a second executor can reuse it.

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha8Rng;

use kzsim_model::{Input, Node, SimTime, TimerId};

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
    /// Inputs that arrived while paused, in order.
    pub deferred: VecDeque<Deferred>,
    /// Armed timers: local deadline and generation.
    pub timers: BTreeMap<TimerId, (SimTime, u64)>,
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
            deferred: VecDeque::new(),
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
        self.deferred.clear();
        self.timers.clear();
    }

    /// Arms `timer` at local deadline `deadline`; returns its generation.
    pub fn arm_timer(&mut self, timer: TimerId, deadline: SimTime) -> u64 {
        self.timer_gen += 1;
        self.timers.insert(timer, (deadline, self.timer_gen));
        self.timer_gen
    }

    /// Whether `timer` is armed with generation `gen`.
    pub fn timer_current(&self, timer: TimerId, gen: u64) -> bool {
        self.timers.get(&timer).is_some_and(|(_, g)| *g == gen)
    }
}
