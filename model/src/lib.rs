//! kzsim-model: the protocol state machines of kzsim, written sans-IO.
//!
//! Every node (a ZooKeeper server, a Kafka broker, a client, ...) is a plain
//! struct implementing [`node::Node`]: inputs in, effects out. Nothing here
//! performs I/O, reads a clock, spawns a thread or uses an unseeded RNG; the
//! simulated world in `kzsim-sim` drives the nodes and decides what their
//! effects lead to.

pub mod bugs;
pub mod codec;
pub mod demo;
pub mod disk;
pub mod group;
pub mod kafka;
pub mod kraft;
pub mod msg;
pub mod node;
pub mod probe;
pub mod raft;
pub mod time;
pub mod zk;

pub use bugs::{BugInfo, BugSet};
pub use disk::{DiskError, DiskOpId, DiskReply, DiskRequest, FileName};
pub use msg::{ClientReply, ClientRequest, Msg};
pub use node::{Ctx, Effect, Input, Node, NodeId, ReqId, TimerId};
pub use probe::{EventKind, Probe, ProtoEvent};
pub use time::SimTime;
