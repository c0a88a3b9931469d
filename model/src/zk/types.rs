//! The ZooKeeper vocabulary shared by servers, clients and the workload:
//! zxids, session ids, znode stats, operations, results, errors and watch
//! events, plus the workload-facing request and reply of a client node.

use serde::{Deserialize, Serialize};

/// A ZooKeeper transaction id: the epoch in the high 32 bits, a counter
/// within the epoch in the low 32 bits. Zero means "nothing".
pub type Zxid = u64;

/// A session id. Sessions are named by the zxid of their createSession
/// transaction, which makes them unique across leaders.
pub type SessionId = u64;

/// The epoch part of a zxid.
pub fn zxid_epoch(z: Zxid) -> u64 {
    z >> 32
}

/// The counter part of a zxid.
pub fn zxid_counter(z: Zxid) -> u64 {
    z & 0xFFFF_FFFF
}

/// Builds a zxid from an epoch and a counter.
pub fn make_zxid(epoch: u64, counter: u64) -> Zxid {
    (epoch << 32) | (counter & 0xFFFF_FFFF)
}

/// The metadata of a znode, as ZooKeeper's `Stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stat {
    /// The zxid that created the znode.
    pub czxid: Zxid,
    /// The zxid that last modified the znode's data.
    pub mzxid: Zxid,
    /// The zxid that last added or removed a child.
    pub pzxid: Zxid,
    /// Number of changes to the data.
    pub version: i32,
    /// Number of changes to the children (also the sequence counter).
    pub cversion: i32,
    /// The owning session of an ephemeral znode, 0 if persistent.
    pub ephemeral_owner: SessionId,
    /// Length of the data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
}

/// How a znode is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreateMode {
    /// Lives until deleted.
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a 10-digit sequence suffix from the parent's cversion.
    PersistentSequential,
    /// Ephemeral and sequential.
    EphemeralSequential,
}

impl CreateMode {
    /// Whether the znode is ephemeral.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the name gets a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        )
    }
}

/// A ZooKeeper error code, as the server or client returns it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
pub enum ZkError {
    /// The znode (or, for create, its parent) does not exist.
    #[error("NoNode")]
    NoNode,
    /// The znode already exists.
    #[error("NodeExists")]
    NodeExists,
    /// The znode has children.
    #[error("NotEmpty")]
    NotEmpty,
    /// The expected version did not match.
    #[error("BadVersion")]
    BadVersion,
    /// Ephemeral znodes may not have children.
    #[error("NoChildrenForEphemerals")]
    NoChildrenForEphemerals,
    /// A malformed path or request.
    #[error("BadArguments")]
    BadArguments,
    /// In a failed multi: this op was fine but another failed.
    #[error("RuntimeInconsistency")]
    RuntimeInconsistency,
    /// The connection broke before the answer arrived: the outcome of a
    /// write is unknown (record `info`), a read simply failed.
    #[error("ConnectionLoss")]
    ConnectionLoss,
    /// The session is gone (expired or closed); the operation did not run.
    #[error("SessionExpired")]
    SessionExpired,
    /// The session moved to another server and this request came through
    /// the server it left: it did not run (a definite failure), and that
    /// server closes the connection.
    #[error("SessionMoved")]
    SessionMoved,
}

/// One operation a client may ask for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkOp {
    /// Create a znode. Replies `Created(actual_path)`.
    Create {
        /// The path (for sequential modes, the prefix of the name).
        path: String,
        /// Initial data.
        data: Vec<u8>,
        /// The mode.
        mode: CreateMode,
    },
    /// Delete a znode if its version matches (`-1` = any). Replies `Deleted`.
    Delete {
        /// The path.
        path: String,
        /// Expected data version, `-1` for any.
        version: i32,
    },
    /// Replace a znode's data if its version matches. Replies `Stat`.
    SetData {
        /// The path.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected data version, `-1` for any.
        version: i32,
    },
    /// Check a version inside a multi (fails the multi with BadVersion).
    Check {
        /// The path.
        path: String,
        /// Expected data version, `-1` for any.
        version: i32,
    },
    /// Read data and stat; optionally leave a data watch. Replies `Data`.
    GetData {
        /// The path.
        path: String,
        /// Leave a one-shot data watch.
        watch: bool,
    },
    /// Stat if present; optionally leave a watch (fires on create, change or
    /// delete). Replies `Exists`.
    Exists {
        /// The path.
        path: String,
        /// Leave a one-shot watch.
        watch: bool,
    },
    /// List children (sorted); optionally leave a child watch. Replies
    /// `Children`.
    GetChildren {
        /// The path.
        path: String,
        /// Leave a one-shot child watch.
        watch: bool,
    },
    /// Bring the connected server up to the leader's commit point at the
    /// time the leader sees the sync. Replies `Synced`.
    Sync {
        /// The path (informational, as in ZooKeeper).
        path: String,
    },
    /// Run create/delete/setData/check ops atomically. Replies `Multi` with
    /// one result per op, or the first failing op's error.
    Multi(Vec<ZkOp>),
}

impl ZkOp {
    /// Whether the op changes state (goes through the leader as a txn).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ZkOp::Create { .. }
                | ZkOp::Delete { .. }
                | ZkOp::SetData { .. }
                | ZkOp::Check { .. }
                | ZkOp::Multi(_)
        )
    }
}

/// The successful result of one operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZkResponse {
    /// Create: the actual path (with sequence suffix if sequential).
    Created(String),
    /// Delete succeeded.
    Deleted,
    /// SetData succeeded: the new stat.
    Stat(Stat),
    /// Check inside a multi succeeded.
    Checked,
    /// GetData: data and stat.
    Data(Vec<u8>, Stat),
    /// Exists: the stat, or `None` if absent.
    Exists(Option<Stat>),
    /// GetChildren: sorted child names and the parent's stat (ZooKeeper's
    /// `getChildren2`, whose `cversion` names the membership read).
    Children(Vec<String>, Stat),
    /// Sync completed.
    Synced,
    /// Multi succeeded: one response per op.
    Multi(Vec<ZkResponse>),
    /// The session was closed on request.
    Closed,
}

/// What a watch reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WatchKind {
    /// The znode was created (exists watch).
    NodeCreated,
    /// The znode was deleted.
    NodeDeleted,
    /// The znode's data changed.
    NodeDataChanged,
    /// A child was added or removed.
    NodeChildrenChanged,
}

/// A watch notification delivered to a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchKind,
    /// The watched path.
    pub path: String,
    /// The zxid of the transaction that triggered it.
    pub zxid: Zxid,
}

/// A workload request to a [`crate::zk::ZkClient`] node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZkRequest {
    /// Run one operation on the client's session (creating or re-creating
    /// the session first if it has none).
    Op(ZkOp),
    /// Close the session (its ephemerals go with it).
    Close,
}

/// A client node's answer to the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkReply {
    /// The result. `Err(ConnectionLoss)` on a write means the outcome is
    /// unknown (record `info`); `Err(SessionExpired)` means it did not run.
    pub result: Result<ZkResponse, ZkError>,
    /// For a write, the txn's zxid; for a read, the server's last applied
    /// zxid when it answered; 0 when no server answered.
    pub zxid: Zxid,
    /// The session the request ran on (0 if none).
    pub session: SessionId,
    /// The server that answered (or last tried).
    pub server: u32,
    /// Watch events that arrived since the previous reply, in arrival order
    /// (all of them arrived before this reply).
    pub events: Vec<WatchEvent>,
}
