//! The messages of the ZooKeeper ensemble on the simulated network: fast
//! leader election, the ZAB learner handshake and broadcast between servers,
//! and the client protocol between a client node and a server.

use crate::zk::tree::DataTree;
use crate::zk::txn::LoggedTxn;
use crate::zk::types::{SessionId, WatchEvent, ZkError, ZkOp, ZkResponse, Zxid};

/// A server's role, as announced in election notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Electing.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
}

/// A vote: who should lead, and the history and epoch that back it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The proposed leader.
    pub leader: u32,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's current epoch.
    pub peer_epoch: u64,
}

/// What kind of watch a client asks a server to restore after reconnecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchType {
    /// getData watch.
    Data,
    /// exists watch.
    Exist,
    /// getChildren watch.
    Child,
}

/// A message between ZooKeeper servers, or between a client and a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZkMsg {
    // ----- fast leader election -----
    /// An election notification.
    Notification {
        /// The sender's vote.
        vote: Vote,
        /// The sender's election round (logical clock).
        election_epoch: u64,
        /// The sender's state.
        state: PeerState,
    },
    // ----- ZAB discovery -----
    /// Learner -> leader, first message on a new connection.
    FollowerInfo {
        /// The learner's accepted epoch.
        accepted_epoch: u64,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// Leader -> learner: the proposed new epoch.
    LeaderInfo {
        /// The new epoch.
        new_epoch: u64,
    },
    /// Learner -> leader: the new epoch is accepted (and persisted).
    AckEpoch {
        /// The learner's current epoch; `None` is ZooKeeper's -1: the
        /// learner had already accepted this very epoch (ZAB 1.0 acks an
        /// epoch once), and the leader does not count it toward the epoch
        /// quorum.
        current_epoch: Option<u64>,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    // ----- ZAB synchronisation -----
    /// Leader -> learner: bring the history in line with the leader's
    /// committed history: optional snapshot (SNAP), optional truncation
    /// (TRUNC), then committed transactions (DIFF).
    Sync {
        /// SNAP: replace everything with this tree.
        snap: Option<Box<DataTree>>,
        /// TRUNC: drop logged entries after this zxid.
        trunc: Option<Zxid>,
        /// DIFF: committed transactions to append and apply.
        txns: Vec<LoggedTxn>,
    },
    /// Leader -> learner: the history is complete; persist it and the new
    /// epoch, then ACK this zxid (the new epoch's zero zxid).
    NewLeader {
        /// `(new_epoch << 32)`.
        zxid: Zxid,
    },
    /// Learner -> leader: acknowledges a proposal (or NEWLEADER) as durable.
    Ack {
        /// The acknowledged zxid.
        zxid: Zxid,
    },
    /// Leader -> learner: a quorum is synced; start serving clients.
    UpToDate,
    // ----- ZAB broadcast -----
    /// Leader -> learner: log this transaction and ACK it.
    Proposal(LoggedTxn),
    /// Leader -> learner: everything up to `zxid` is committed.
    Commit {
        /// The committed zxid.
        zxid: Zxid,
    },
    /// Liveness both ways; from a learner it carries the sessions its
    /// clients touched since the previous ping, and echoes the round.
    Ping {
        /// Touched sessions (learner -> leader).
        sessions: Vec<SessionId>,
        /// The leader's ping round; a sync completes only once a quorum has
        /// echoed a round started after the sync arrived.
        round: u64,
    },
    /// Learner -> leader: a client write to turn into a transaction.
    Request {
        /// The client's session.
        session: SessionId,
        /// The client's request number.
        cxid: u64,
        /// The operation (`None` = close the session).
        op: Option<ZkOp>,
    },
    /// Learner -> leader: create a session for `client`.
    CreateSession {
        /// Requested timeout.
        timeout_ms: u64,
        /// The client node.
        client: u32,
    },
    /// Learner -> leader: a client's sync.
    SyncReq {
        /// The session.
        session: SessionId,
        /// The client's request number.
        cxid: u64,
    },
    /// Leader -> learner: the sync point is reached (sent after every
    /// COMMIT the leader had issued when it saw the sync).
    SyncDone {
        /// The session.
        session: SessionId,
        /// The client's request number.
        cxid: u64,
        /// The sync point: the last proposal when the leader got the sync.
        point: Zxid,
    },
    /// Learner -> leader: is this session alive (a client moved here)?
    Revalidate {
        /// The session.
        session: SessionId,
    },
    /// Leader -> learner: the session's fate.
    RevalidateReply {
        /// The session.
        session: SessionId,
        /// Whether it is alive (and was touched).
        valid: bool,
    },
    // ----- client <-> server -----
    /// Client -> server: open (0) or resume a session.
    Connect {
        /// The session to resume, 0 for a new one.
        session: SessionId,
        /// Requested timeout.
        timeout_ms: u64,
        /// The last zxid the client has seen.
        last_zxid: Zxid,
        /// Watches to restore (relative to `last_zxid`).
        watches: Vec<(WatchType, String)>,
    },
    /// Server -> client: the session is open on this server.
    Connected {
        /// The session id.
        session: SessionId,
        /// The negotiated timeout.
        timeout_ms: u64,
    },
    /// Server -> client: refused; `expired` if the session is gone, else the
    /// server is not serving or is behind the client.
    ConnectRefused {
        /// The session has expired.
        expired: bool,
    },
    /// Client -> server: a request (`op: None` = close the session).
    ClientReq {
        /// The client's request number.
        xid: u64,
        /// The operation.
        op: Option<ZkOp>,
    },
    /// Server -> client: the answer to request `xid`.
    ClientResp {
        /// The request number.
        xid: u64,
        /// Write: the txn zxid; read: the server's last applied zxid.
        zxid: Zxid,
        /// The result.
        result: Result<ZkResponse, ZkError>,
    },
    /// Client -> server keep-alive.
    ClientPing,
    /// Server -> client keep-alive answer.
    ClientPong,
    /// Server -> client: a watch fired.
    WatchFired(WatchEvent),
}
