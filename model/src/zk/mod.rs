//! A ZooKeeper ensemble as sans-IO state machines: ZAB servers
//! ([`ZkServer`]) and the client ([`ZkClient`]).
//!
//! - `tree`: the data tree (znodes, stats, sessions) and its digest.
//! - `txn`: transactions, how the leader builds them and how they apply.
//! - `storage`: the txn log, snapshots, epoch files and recovery.
//! - `election`: fast leader election.
//! - `server`: the peer (roles, durable state, commits), with `leader` and
//!   `learner` for the two ZAB roles and `serving` for client sessions,
//!   request pipelines, sync and watches (`watches`).
//! - `client`: the client node the workload drives.
//!
//! Every planted bug is a switch read from the [`BugSet`] at
//! construction; all are off by default.
//!
//! Time: as ZooKeeper measures its timeouts with `System.nanoTime`, servers
//! and clients read only the monotonic clock (`Ctx::mono`) and arm only
//! monotonic timers (`Ctx::set_mono_timer_ms`): session expiry, pings,
//! learner liveness (initLimit, syncLimit) and election timers; a jump of
//! the wall clock moves none of them.
//!
//! # Using it from a host
//!
//! - Servers: `ZkServer::new(id, ensemble, ZkConfig::default(), &bugs)` for
//!   every id of `ensemble` (3 or 5 node ids); deliver `Input::Start { files }`
//!   on every (re)boot. Servers talk to each other and to clients with
//!   [`Msg::Zk`](crate::Msg::Zk); any id not in `ensemble` is a client.
//!   A server halts (fail-stop) on any disk error.
//! - Clients: `ZkClient::new(servers, session_timeout_ms, first)`; the
//!   workload sends `Input::Client { id, req: ClientRequest::Zk(ZkRequest::Op(op)) }`
//!   (or `ZkRequest::Close`) and gets `Effect::Reply { id, reply:
//!   ClientReply::Zk(ZkReply { result, zxid, session, server, events }) }`.
//!   Requests of one client are answered in FIFO order.
//! - Outcomes for a history: `Ok(_)` and `Err(NoNode | NodeExists |
//!   NotEmpty | BadVersion | NoChildrenForEphemerals | BadArguments)` are
//!   definite (the op ran, possibly failing, at `zxid`); `Err(SessionExpired)`
//!   and `Err(SessionMoved)` mean it did not run; `Err(ConnectionLoss)` means unknown for a write
//!   (`info`) and a plain failure for a read.
//! - Watch events ride on the next reply of the same client (`events`), in
//!   the order they arrived, all before that reply.
//! - Checks after a run: `ZkServer::tree()` (and `DataTree::digest()`),
//!   `is_leader()`, `is_serving()`, `last_logged_zxid()`, `epochs()`.

mod client;
pub mod election;
mod leader;
mod learner;
mod server;
mod serving;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod types;
pub mod watches;
pub mod wire;

#[cfg(test)]
mod bug_tests;
#[cfg(test)]
mod ensemble_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod role_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod testkit;

pub use client::ZkClient;
pub use server::ZkServer;
pub use types::*;
pub use wire::ZkMsg;

use crate::bugs::{BugInfo, BugSet};

/// The ZooKeeper planted bugs.
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: "zk_ack_before_fsync",
        component: "zk",
        breaks: "a follower acks a proposal before its log is durable; a power loss loses committed writes",
        scenario: "zk-follower-power-loss",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_commit_without_quorum",
        component: "zk",
        breaks: "the leader commits on its own ack; a leader crash loses committed writes",
        scenario: "zk-leader-crash",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_epoch_not_persisted",
        component: "zk",
        breaks: "acceptedEpoch/currentEpoch live in memory only (ZOOKEEPER-335); restarts lead to divergent histories",
        scenario: "zk-epoch-restarts",
        anomaly: "divergent-trees",
    },
    BugInfo {
        name: "zk_newleader_ack_before_persist",
        component: "zk",
        breaks: "a follower acks NEWLEADER with the synced history in memory only (ZOOKEEPER-3911); after a quorum-wide power loss its log has a hole and committed txns are lost",
        scenario: "zk-power-loss",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_epoch_before_txns",
        component: "zk",
        breaks: "a syncing follower writes currentEpoch while the synced txns' fsync is still in flight (ZOOKEEPER-4643); a power loss leaves a new epoch over a short log, whose vote beats servers holding committed txns",
        scenario: "zk-sync-power-loss",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_vote_ignores_zxid",
        component: "zk",
        breaks: "elections ignore the zxid (and the leader skips the follower-is-ahead check); a server missing committed txns becomes leader and truncates them",
        scenario: "zk-leader-crash",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_sync_not_through_leader",
        component: "zk",
        breaks: "a follower answers sync at once from its own state, without going through the leader; a sync-then-read misses writes committed before the sync began (what sync exists to prevent, on a server still in the quorum)",
        scenario: "zk-lagging-followers",
        anomaly: "nonlinearizable",
    },
    BugInfo {
        name: "zk_snap_zxid_at_end",
        component: "zk",
        breaks: "a fuzzy snapshot is labelled with the last zxid applied when its serialisation ends, not when it starts (the reverse of what ZooKeeper's FileTxnSnapLog relies on); a server restarted on it skips the txns the snapshot missed and loses them",
        scenario: "zk-fuzzy-snapshot",
        anomaly: "divergent-trees",
    },
    BugInfo {
        name: "zk_trunc_keeps_snapshot",
        component: "zk",
        breaks: "a server snapshots its replayed log at start, uncommitted tail included (ZOOKEEPER-1549: as ZooKeeperServer.loadData does, which Leader.lead still calls before the epoch is established); a TRUNC, as in ZooKeeper, truncates only the txn log and leaves that snapshot past the truncation point, and the next restart loads it and resurrects txns that never committed",
        scenario: "zk-trunc-restart",
        anomaly: "divergent-trees",
    },
    BugInfo {
        name: "zk_expiry_on_follower",
        component: "zk",
        breaks: "followers expire sessions locally; ephemerals vanish on one server only",
        scenario: "zk-session-pause",
        anomaly: "divergent-trees",
    },
    BugInfo {
        name: "zk_watch_after_reply",
        component: "zk",
        breaks: "a server answers a write before it sends the watch events the write fires; a client sees a reply reflecting a change before the event announcing it",
        scenario: "zk-leader-crash",
        anomaly: "watch-order",
    },
];

/// The planted bugs switched on for one server, read once at construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZkBugs {
    /// `zk_ack_before_fsync`.
    pub ack_before_fsync: bool,
    /// `zk_commit_without_quorum`.
    pub commit_without_quorum: bool,
    /// `zk_epoch_not_persisted`.
    pub epoch_not_persisted: bool,
    /// `zk_newleader_ack_before_persist`.
    pub newleader_ack_before_persist: bool,
    /// `zk_epoch_before_txns`.
    pub epoch_before_txns: bool,
    /// `zk_vote_ignores_zxid`.
    pub vote_ignores_zxid: bool,
    /// `zk_sync_not_through_leader`.
    pub sync_not_through_leader: bool,
    /// `zk_snap_zxid_at_end`.
    pub snap_zxid_at_end: bool,
    /// `zk_trunc_keeps_snapshot`.
    pub trunc_keeps_snapshot: bool,
    /// `zk_expiry_on_follower`.
    pub expiry_on_follower: bool,
    /// `zk_watch_after_reply`.
    pub watch_after_reply: bool,
}

impl ZkBugs {
    /// Reads the switches from a bug set.
    pub fn from_set(b: &BugSet) -> ZkBugs {
        ZkBugs {
            ack_before_fsync: b.on("zk_ack_before_fsync"),
            commit_without_quorum: b.on("zk_commit_without_quorum"),
            epoch_not_persisted: b.on("zk_epoch_not_persisted"),
            newleader_ack_before_persist: b.on("zk_newleader_ack_before_persist"),
            epoch_before_txns: b.on("zk_epoch_before_txns"),
            vote_ignores_zxid: b.on("zk_vote_ignores_zxid"),
            sync_not_through_leader: b.on("zk_sync_not_through_leader"),
            snap_zxid_at_end: b.on("zk_snap_zxid_at_end"),
            trunc_keeps_snapshot: b.on("zk_trunc_keeps_snapshot"),
            expiry_on_follower: b.on("zk_expiry_on_follower"),
            watch_after_reply: b.on("zk_watch_after_reply"),
        }
    }
}

/// Server configuration (ZooKeeper's zoo.cfg knobs that matter here). All
/// times are on the server's own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkConfig {
    /// The basic time unit (ZooKeeper `tickTime`).
    pub tick_ms: u64,
    /// Ticks a learner has to connect and sync (`initLimit`).
    pub init_limit: u64,
    /// Ticks a learner may be silent during broadcast (`syncLimit`).
    pub sync_limit: u64,
    /// Take a (fuzzy) snapshot every this many applied txns (`snapCount`).
    pub snap_count: u64,
    /// First election re-notification delay; doubles up to `max_notify_ms`.
    pub notify_ms: u64,
    /// Cap of the election re-notification delay.
    pub max_notify_ms: u64,
    /// How long to wait for a better vote after a quorum agrees.
    pub finalize_wait_ms: u64,
    /// Smallest session timeout granted (default 2 ticks).
    pub min_session_timeout_ms: u64,
    /// Largest session timeout granted (default 20 ticks).
    pub max_session_timeout_ms: u64,
    /// Whether the leader answers a `sync` only after a quorum has answered
    /// a ping sent after the sync arrived. Real ZooKeeper does not
    /// (`Leader.processSync` answers once the outstanding proposals commit,
    /// with no quorum round), so a leader that is deposed but does not know
    /// it yet answers syncs from its stale state (ZOOKEEPER-1675, open).
    /// Default false, as in ZooKeeper.
    pub sync_quorum_confirmed: bool,
    /// How many recent committed proposals the leader keeps in memory to
    /// sync learners with a DIFF (`zookeeper.commitLogCount`, default 500).
    /// After a restart it holds only what was replayed from the log after
    /// the snapshot it loaded, as `ZKDatabase.loadDataBase` does.
    pub commit_log_count: u64,
    /// How many periodic snapshots a server keeps, with the txn log needed
    /// after the oldest one (`autopurge.snapRetainCount`, default 3, as
    /// ZooKeeper's minimum). The log before the oldest kept snapshot counts
    /// as purged: the leader never sends a DIFF from it.
    pub snap_retain_count: u64,
    /// A learner behind the in-memory committed log is synced with a DIFF
    /// read from the txn log when the log still covers its last zxid and
    /// the txns to send weigh at most this percentage of a snapshot
    /// (`zookeeper.snapshotSizeFactor` = 0.33, ZooKeeper 3.6+); 0 disables
    /// it (a SNAP whenever the committed log does not reach).
    pub snapshot_size_factor_pct: u64,
}

impl Default for ZkConfig {
    fn default() -> Self {
        ZkConfig {
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            snap_count: 100,
            notify_ms: 100,
            max_notify_ms: 1600,
            finalize_wait_ms: 50,
            min_session_timeout_ms: 200,
            max_session_timeout_ms: 2000,
            sync_quorum_confirmed: false,
            commit_log_count: 500,
            snap_retain_count: 3,
            snapshot_size_factor_pct: 33,
        }
    }
}
