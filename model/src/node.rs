//! The sans-IO node contract: inputs in, effects out.
//!
//! A node never performs I/O. The host (an executor of the simulated world)
//! calls [`Node::step`] with one [`Input`] and a [`Ctx`] carrying the node's
//! own clock reading and its seeded RNG; the node pushes [`Effect`]s into the
//! context, and the host carries them out (network sends, timers, disk I/O,
//! replies to clients). A restart drops the struct and builds a new one that
//! receives [`Input::Start`] with only what the disk durably holds.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;

use crate::disk::{DiskError, DiskOpId, DiskReply, DiskRequest, FileName};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::probe::{EventKind, Probe, ProtoEvent};
use crate::time::SimTime;

/// Identifies a node (server, broker or client) in one simulated world.
pub type NodeId = u32;

/// A timer name chosen by the node; setting it again re-arms it.
pub type TimerId = u64;

/// Identifies one client request; echoed in the reply.
pub type ReqId = u64;

/// What happens to a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// The node (re)boots. `files` is what its disk durably holds (after any
    /// crash loss, torn write or corruption).
    Start {
        /// Durable file contents by name.
        files: BTreeMap<FileName, Vec<u8>>,
    },
    /// A message arrived from `from` on the current connection with it.
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: Msg,
    },
    /// A new connection with `peer` is established. Messages from `peer`
    /// that follow belong to it.
    ConnUp {
        /// The other end.
        peer: NodeId,
    },
    /// The connection with `peer` broke (partition, loss, peer crash, or a
    /// connect attempt that failed). Messages sent on it may or may not have
    /// arrived; later sends open a new connection.
    ConnLost {
        /// The other end.
        peer: NodeId,
    },
    /// A timer set with [`Effect::SetTimer`] fired.
    Timer {
        /// Which timer.
        timer: TimerId,
    },
    /// A disk operation completed.
    Disk {
        /// The id given in [`Effect::Disk`].
        op: DiskOpId,
        /// The outcome.
        result: Result<DiskReply, DiskError>,
    },
    /// A request from the workload (only client nodes receive these).
    Client {
        /// The request id, to be echoed in [`Effect::Reply`].
        id: ReqId,
        /// The request.
        req: ClientRequest,
    },
}

/// What a node asks the world to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Send `msg` to `to` over the connection with it (opening one if none).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// Close the connection with `peer` (both ends see `ConnLost`).
    Disconnect {
        /// The other end.
        peer: NodeId,
    },
    /// Arm (or re-arm) `timer` to fire after `after_us` on the node's clock.
    SetTimer {
        /// Which timer.
        timer: TimerId,
        /// Delay in microseconds of the node's own clock.
        after_us: u64,
    },
    /// Arm (or re-arm) `timer` to fire after `after_us` on the node's
    /// monotonic clock, which clock jumps do not move.
    SetMonoTimer {
        /// Which timer.
        timer: TimerId,
        /// Delay in microseconds of the node's monotonic clock.
        after_us: u64,
    },
    /// Disarm `timer` (no-op if not armed).
    CancelTimer {
        /// Which timer.
        timer: TimerId,
    },
    /// Start a disk operation; its completion comes back as [`Input::Disk`].
    Disk {
        /// The node's id for this operation.
        op: DiskOpId,
        /// The operation.
        req: DiskRequest,
    },
    /// Stop this process at once (fail-stop, as servers do on a fatal disk
    /// error). The host treats it as a crash of the process; the disk keeps
    /// its page cache.
    Halt {
        /// Why, for the log.
        reason: String,
    },
    /// Answer a client request.
    Reply {
        /// The request id from [`Input::Client`].
        id: ReqId,
        /// The answer.
        reply: ClientReply,
    },
    /// The process exits cleanly after a graceful shutdown (see
    /// [`Node::shutdown`]): it stays down until whoever stopped it starts
    /// it again; the disk keeps its page cache.
    Exit {
        /// Why, for the log.
        reason: String,
    },
}

/// The context of one step: the node's clock, its RNG and the effect buffer.
pub struct Ctx<'a> {
    /// The node's own (wall) clock: possibly skewed from true simulated
    /// time, and moved by clock jumps.
    pub now: SimTime,
    /// The node's monotonic clock (as `System.nanoTime`): it drifts with
    /// the wall clock but no jump moves it. Timeouts that must not follow
    /// a wall-clock change read this one and arm timers with
    /// [`Ctx::set_mono_timer_ms`]. A host without the distinction sets it
    /// to `now` ([`Ctx::new`] does).
    pub mono: SimTime,
    /// The node's id.
    pub me: NodeId,
    /// The node's RNG, seeded by the host.
    pub rng: &'a mut ChaCha8Rng,
    effects: &'a mut Vec<Effect>,
    /// The host's probe (events, buggify), if it wants them.
    probe: Option<&'a mut Probe>,
}

impl<'a> Ctx<'a> {
    /// A context writing effects into `effects`.
    pub fn new(
        now: SimTime,
        me: NodeId,
        rng: &'a mut ChaCha8Rng,
        effects: &'a mut Vec<Effect>,
    ) -> Ctx<'a> {
        Ctx {
            now,
            mono: now,
            me,
            rng,
            effects,
            probe: None,
        }
    }

    /// The same context reporting events to, and asking buggify of,
    /// `probe`.
    pub fn with_probe(mut self, probe: &'a mut Probe) -> Ctx<'a> {
        self.probe = Some(probe);
        self
    }

    /// Reports protocol event `kind` about node `subject` (nothing when
    /// the host has no probe).
    #[inline]
    pub fn event(&mut self, kind: EventKind, subject: NodeId) {
        if let Some(p) = self.probe.as_deref_mut() {
            p.report(ProtoEvent {
                kind,
                emitter: self.me,
                subject,
            });
        }
    }

    /// BUGGIFY: whether the model should take the rare but legal path at
    /// `site` now. Always `false` unless the host turned buggify on; the
    /// answer never comes from (or moves) the node's RNG.
    #[inline]
    pub fn buggify(&mut self, site: &'static str) -> bool {
        match self.probe.as_deref_mut() {
            Some(p) => p.buggify(site),
            None => false,
        }
    }

    /// Sends a message.
    pub fn send(&mut self, to: NodeId, msg: Msg) {
        self.effects.push(Effect::Send { to, msg });
    }

    /// Closes the connection with `peer`.
    pub fn disconnect(&mut self, peer: NodeId) {
        self.effects.push(Effect::Disconnect { peer });
    }

    /// Arms `timer` to fire after `after_ms` milliseconds of the node's clock.
    pub fn set_timer_ms(&mut self, timer: TimerId, after_ms: u64) {
        self.effects.push(Effect::SetTimer {
            timer,
            after_us: after_ms * 1000,
        });
    }

    /// Arms `timer` to fire after `after_us` microseconds of the node's clock.
    pub fn set_timer_us(&mut self, timer: TimerId, after_us: u64) {
        self.effects.push(Effect::SetTimer { timer, after_us });
    }

    /// Arms `timer` to fire after `after_ms` milliseconds of the node's
    /// monotonic clock (a wall-clock jump does not move it).
    pub fn set_mono_timer_ms(&mut self, timer: TimerId, after_ms: u64) {
        self.set_mono_timer_us(timer, after_ms * 1000);
    }

    /// Arms `timer` to fire after `after_us` microseconds of the node's
    /// monotonic clock.
    pub fn set_mono_timer_us(&mut self, timer: TimerId, after_us: u64) {
        self.effects.push(Effect::SetMonoTimer { timer, after_us });
    }

    /// Disarms `timer`.
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.effects.push(Effect::CancelTimer { timer });
    }

    /// Starts a disk operation.
    pub fn disk(&mut self, op: DiskOpId, req: DiskRequest) {
        self.effects.push(Effect::Disk { op, req });
    }

    /// Answers a client request.
    pub fn reply(&mut self, id: ReqId, reply: ClientReply) {
        self.effects.push(Effect::Reply { id, reply });
    }

    /// Stops the process (fail-stop).
    pub fn halt(&mut self, reason: impl Into<String>) {
        self.effects.push(Effect::Halt {
            reason: reason.into(),
        });
    }

    /// Exits the process cleanly (the end of a graceful shutdown).
    pub fn exit(&mut self, reason: impl Into<String>) {
        self.effects.push(Effect::Exit {
            reason: reason.into(),
        });
    }

    /// Pushes any effect.
    pub fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }
}

/// A protocol participant. Implementations must be deterministic functions of
/// their inputs, the context's clock and the context's RNG.
pub trait Node {
    /// Handles one input, pushing effects into `cx`.
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>);

    /// A graceful stop was asked for (an operator's SIGTERM): the node may
    /// finish what it must (a Kafka broker's controlled shutdown, flushing
    /// its logs) and then calls [`Ctx::exit`]. The default exits at once.
    fn shutdown(&mut self, cx: &mut Ctx<'_>) {
        cx.exit("shut down");
    }

    /// A short human-readable summary of the node's role (e.g. `leader e3`),
    /// used in logs and reports.
    fn role(&self) -> String {
        String::new()
    }

    /// Whether this node currently believes it leads (used by faults that
    /// target the leader).
    fn is_leader(&self) -> bool {
        false
    }

    /// Whether this node currently believes it is the cluster's controller
    /// (used by faults that target the controller).
    fn is_controller(&self) -> bool {
        false
    }

    /// Whether this node coordinates a consumer group now (a broker whose
    /// group coordinator has loaded a group; used by faults that target
    /// the coordinator).
    fn is_group_coordinator(&self) -> bool {
        false
    }

    /// The node as `Any`, so end-of-run checks can inspect its final state.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Steps `node` as a part of another node (a ZooKeeper client inside a
/// broker, a fetcher inside a group member): its timers are shifted by
/// `timer_base` into the host node's timer space, its other effects pass
/// through `cx`, and the replies it makes are handed back instead of going
/// to a workload.
pub fn step_embedded(
    node: &mut dyn Node,
    input: Input,
    timer_base: u64,
    cx: &mut Ctx<'_>,
) -> Vec<(ReqId, ClientReply)> {
    let mut effects = Vec::new();
    {
        let mut inner = Ctx::new(cx.now, cx.me, cx.rng, &mut effects);
        inner.mono = cx.mono;
        inner.probe = cx.probe.as_deref_mut();
        node.step(input, &mut inner);
    }
    let mut replies = Vec::new();
    for e in effects {
        match e {
            Effect::SetTimer { timer, after_us } => cx.set_timer_us(timer + timer_base, after_us),
            Effect::SetMonoTimer { timer, after_us } => {
                cx.set_mono_timer_us(timer + timer_base, after_us)
            }
            Effect::CancelTimer { timer } => cx.cancel_timer(timer + timer_base),
            Effect::Reply { id, reply } => replies.push((id, reply)),
            other => cx.push(other),
        }
    }
    replies
}
