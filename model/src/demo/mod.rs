//! A small primary-backup replicated register used to exercise the simulated
//! world (engine tests and benchmarks). It is not one of the shipped systems.
//!
//! Node `primary` orders writes into a checksummed log, fsyncs it, replicates
//! each entry to the backups (which append, fsync and ack), and acknowledges a
//! write once a majority of servers hold it durably. Reads are answered by the
//! primary from its committed prefix. Backups that fall behind are caught up
//! by `Nack`/resend. A client node forwards workload requests to the primary
//! and turns timeouts and broken connections into indeterminate replies.

mod client;
mod server;

pub use client::DemoClient;
pub use server::DemoServer;

use crate::bugs::BugInfo;

/// The demo protocol's planted bugs.
pub const BUGS: &[BugInfo] = &[BugInfo {
    name: "demo_ack_before_fsync",
    component: "demo",
    breaks: "servers count an entry as durable before its fsync completes; power loss loses acknowledged writes",
    scenario: "demo-power-loss",
    anomaly: "lost-write",
}];

/// Messages of the demo protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DemoMsg {
    /// Primary -> backup: log entry `index` holds `value`.
    Replicate {
        /// 1-based log index.
        index: u64,
        /// The value written.
        value: u64,
    },
    /// Backup -> primary: entries up to `index` are durable here.
    Ack {
        /// Highest durable index.
        index: u64,
    },
    /// Backup -> primary: I only have `have` entries; resend from `have + 1`.
    Nack {
        /// Entries the backup holds.
        have: u64,
    },
    /// Client -> primary: write `value`.
    Write {
        /// Client's request id.
        req: u64,
        /// The value.
        value: u64,
    },
    /// Client -> primary: read the register.
    Read {
        /// Client's request id.
        req: u64,
    },
    /// Primary -> client: the write is committed.
    WriteOk {
        /// Client's request id.
        req: u64,
    },
    /// Primary -> client: the committed value.
    ReadOk {
        /// Client's request id.
        req: u64,
        /// The value, `None` if never written.
        value: Option<u64>,
    },
}

/// A workload request to a demo client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DemoRequest {
    /// Write a value.
    Write(u64),
    /// Read the register.
    Read,
}

/// A demo client's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DemoReply {
    /// The write is committed.
    WriteOk,
    /// The read returned this value.
    ReadOk(Option<u64>),
    /// The operation certainly did not take effect.
    Fail(String),
    /// The outcome is unknown (timeout or connection loss).
    Unknown(String),
}
