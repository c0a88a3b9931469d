//! Transactions: what the leader proposes and every server logs and applies.
//!
//! The leader turns a client operation into a transaction by validating it
//! against its speculative tree (the committed tree plus every outstanding
//! proposal), as ZooKeeper's PrepRequestProcessor does with its outstanding
//! changes. A failing operation becomes an `Error` transaction, so its reply
//! is ordered with the writes around it. Applying a transaction is
//! deterministic and never fails: it carries the resolved paths and versions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::zk::tree::{Change, DataTree};
use crate::zk::types::{SessionId, ZkError, ZkOp, ZkResponse, Zxid};

/// Who asked for a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnHeader {
    /// The zxid assigned by the leader.
    pub zxid: Zxid,
    /// The session the request ran on (the new session for createSession).
    pub session: SessionId,
    /// The client's request number within the session (0 for internal txns).
    pub cxid: u64,
}

/// A transaction body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Txn {
    /// A new session, asked for by `client` through server `origin`.
    CreateSession {
        /// The negotiated timeout.
        timeout_ms: u64,
        /// The server the client is connected to.
        origin: u32,
        /// The client node.
        client: u32,
    },
    /// End the header's session, deleting its ephemerals.
    CloseSession,
    /// Create `path` (already resolved, sequence suffix included).
    Create {
        /// The path.
        path: String,
        /// The data.
        data: Vec<u8>,
        /// Owning session if ephemeral, else 0.
        ephemeral_owner: SessionId,
    },
    /// Delete `path`.
    Delete {
        /// The path.
        path: String,
    },
    /// Set the data of `path`, giving it `version`.
    SetData {
        /// The path.
        path: String,
        /// The data.
        data: Vec<u8>,
        /// The new version.
        version: i32,
    },
    /// A successful version check inside a multi.
    Check {
        /// The path.
        path: String,
    },
    /// All of these, atomically.
    Multi(Vec<Txn>),
    /// The operation failed with this error (nothing changes).
    Error(ZkError),
}

/// One logged entry: header and body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoggedTxn {
    /// The header.
    pub hdr: TxnHeader,
    /// The body.
    pub txn: Txn,
}

impl LoggedTxn {
    /// The zxid.
    pub fn zxid(&self) -> Zxid {
        self.hdr.zxid
    }
}

/// Validates `op` for `session` against `tree` (which the caller then
/// updates by applying the result), returning the transaction body.
pub fn prep(tree: &DataTree, session: SessionId, op: &ZkOp) -> Txn {
    if !tree.has_session(session) {
        return Txn::Error(ZkError::SessionExpired);
    }
    match op {
        ZkOp::Multi(ops) => {
            let mut scratch = tree.clone();
            let mut out = Vec::with_capacity(ops.len());
            // Fake zxids above any real one, increasing, so that each op's
            // child changes count (see `DataTree::reflected_parents`).
            let fake = u64::MAX / 2;
            for (i, op) in ops.iter().enumerate() {
                let t = match op {
                    ZkOp::Multi(_) | ZkOp::Sync { .. } => Txn::Error(ZkError::BadArguments),
                    op if !op.is_write() => Txn::Error(ZkError::BadArguments),
                    op => prep_one(&scratch, session, op),
                };
                if let Txn::Error(e) = t {
                    return Txn::Error(e);
                }
                let z = fake + i as u64;
                let _ = apply_body(&mut scratch, session, z, &t, None, &mut Vec::new());
                out.push(t);
            }
            Txn::Multi(out)
        }
        op => prep_one(tree, session, op),
    }
}

fn prep_one(tree: &DataTree, session: SessionId, op: &ZkOp) -> Txn {
    let r = match op {
        ZkOp::Create { path, data, mode } => {
            tree.check_create(path, *mode).map(|actual| Txn::Create {
                path: actual,
                data: data.clone(),
                ephemeral_owner: if mode.is_ephemeral() { session } else { 0 },
            })
        }
        ZkOp::Delete { path, version } => tree
            .check_delete(path, *version)
            .map(|()| Txn::Delete { path: path.clone() }),
        ZkOp::SetData {
            path,
            data,
            version,
        } => tree
            .check_version(path, *version)
            .map(|version| Txn::SetData {
                path: path.clone(),
                data: data.clone(),
                version,
            }),
        ZkOp::Check { path, version } => tree
            .check_version(path, *version)
            .map(|_| Txn::Check { path: path.clone() }),
        _ => Err(ZkError::BadArguments),
    };
    r.unwrap_or_else(Txn::Error)
}

/// Applies a transaction to `tree`, returning the client-visible result and
/// pushing the changes (for watches) into `changes`.
pub fn apply(
    tree: &mut DataTree,
    t: &LoggedTxn,
    changes: &mut Vec<Change>,
) -> Result<ZkResponse, ZkError> {
    // A multi's child changes share one zxid: which parents already reflect
    // it is decided once, before any of them.
    let reflected = match &t.txn {
        Txn::Multi(_) => Some(tree.all_reflected_parents(t.hdr.zxid)),
        _ => None,
    };
    let r = apply_body(
        tree,
        t.hdr.session,
        t.hdr.zxid,
        &t.txn,
        reflected.as_ref(),
        changes,
    );
    tree.set_last_zxid(t.hdr.zxid);
    r
}

fn apply_body(
    tree: &mut DataTree,
    session: SessionId,
    zxid: Zxid,
    txn: &Txn,
    reflected: Option<&BTreeSet<String>>,
    changes: &mut Vec<Change>,
) -> Result<ZkResponse, ZkError> {
    match txn {
        Txn::CreateSession { timeout_ms, .. } => {
            tree.apply_create_session(session, *timeout_ms);
            Ok(ZkResponse::Synced)
        }
        Txn::CloseSession => {
            tree.apply_close_session(session, zxid, changes);
            Ok(ZkResponse::Closed)
        }
        Txn::Create {
            path,
            data,
            ephemeral_owner,
        } => {
            if let Some(reflected) = reflected {
                tree.apply_create_in(path, data, *ephemeral_owner, zxid, reflected, changes);
            } else {
                tree.apply_create(path, data, *ephemeral_owner, zxid, changes);
            }
            Ok(ZkResponse::Created(path.clone()))
        }
        Txn::Delete { path } => {
            if let Some(reflected) = reflected {
                tree.apply_delete_in(path, zxid, reflected, changes);
            } else {
                tree.apply_delete(path, zxid, changes);
            }
            Ok(ZkResponse::Deleted)
        }
        Txn::SetData {
            path,
            data,
            version,
        } => Ok(ZkResponse::Stat(
            tree.apply_set_data(path, data, *version, zxid, changes)
                .unwrap_or_default(),
        )),
        Txn::Check { .. } => Ok(ZkResponse::Checked),
        Txn::Multi(txns) => {
            let mut out = Vec::with_capacity(txns.len());
            for t in txns {
                out.push(apply_body(tree, session, zxid, t, reflected, changes)?);
            }
            Ok(ZkResponse::Multi(out))
        }
        Txn::Error(e) => Err(*e),
    }
}

/// Encodes a logged txn for the log or the wire.
pub fn encode_txn(t: &LoggedTxn) -> Vec<u8> {
    serde_json::to_vec(t).expect("txn serialises")
}

/// Decodes a logged txn; `None` if malformed.
pub fn decode_txn(bytes: &[u8]) -> Option<LoggedTxn> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::types::CreateMode;

    fn run(
        tree: &mut DataTree,
        session: SessionId,
        zxid: Zxid,
        op: ZkOp,
    ) -> Result<ZkResponse, ZkError> {
        let txn = prep(tree, session, &op);
        let lt = LoggedTxn {
            hdr: TxnHeader {
                zxid,
                session,
                cxid: 1,
            },
            txn,
        };
        apply(tree, &lt, &mut Vec::new())
    }

    #[test]
    fn multi_is_all_or_nothing() {
        let mut t = DataTree::new();
        t.apply_create_session(5, 1000);
        let ok = run(
            &mut t,
            5,
            1,
            ZkOp::Multi(vec![
                ZkOp::Create {
                    path: "/a".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
                ZkOp::Create {
                    path: "/a/b".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                },
            ]),
        );
        assert!(matches!(ok, Ok(ZkResponse::Multi(ref v)) if v.len() == 2));
        let before = t.digest();
        let bad = run(
            &mut t,
            5,
            2,
            ZkOp::Multi(vec![
                ZkOp::Delete {
                    path: "/a/b".into(),
                    version: -1,
                },
                ZkOp::Check {
                    path: "/a".into(),
                    version: 7,
                },
            ]),
        );
        assert_eq!(bad, Err(ZkError::BadVersion));
        assert!(t.get("/a/b").is_some());
        // Only last_zxid moved.
        let mut t2 = t.clone();
        t2.set_last_zxid(0);
        assert_eq!(t2.digest(), before);
    }

    #[test]
    fn unknown_session_is_expired_and_roundtrip_encoding() {
        let t = DataTree::new();
        assert_eq!(
            prep(
                &t,
                3,
                &ZkOp::Delete {
                    path: "/a".into(),
                    version: -1
                }
            ),
            Txn::Error(ZkError::SessionExpired)
        );
        let lt = LoggedTxn {
            hdr: TxnHeader {
                zxid: 9,
                session: 3,
                cxid: 4,
            },
            txn: Txn::SetData {
                path: "/p".into(),
                data: vec![1, 2],
                version: 3,
            },
        };
        assert_eq!(decode_txn(&encode_txn(&lt)), Some(lt));
    }
}
