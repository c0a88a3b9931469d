//! Server-side watch tables: one-shot data/exists and child watches per
//! session, triggered by the changes a transaction makes.

use std::collections::{BTreeMap, BTreeSet};

use crate::zk::tree::{parent_of, Change, DataTree};
use crate::zk::types::{SessionId, WatchEvent, WatchKind, Zxid};
use crate::zk::wire::WatchType;

/// The watches registered on one server.
#[derive(Clone, Debug, Default)]
pub struct WatchManager {
    /// getData and exists watches, by path.
    data: BTreeMap<String, BTreeSet<SessionId>>,
    /// getChildren watches, by path.
    child: BTreeMap<String, BTreeSet<SessionId>>,
}

impl WatchManager {
    /// Registers a watch.
    pub fn add(&mut self, kind: WatchType, path: &str, session: SessionId) {
        let table = match kind {
            WatchType::Data | WatchType::Exist => &mut self.data,
            WatchType::Child => &mut self.child,
        };
        table.entry(path.to_string()).or_default().insert(session);
    }

    /// Drops every watch of `session` (its connection closed).
    pub fn remove_session(&mut self, session: SessionId) {
        for table in [&mut self.data, &mut self.child] {
            table.retain(|_, s| {
                s.remove(&session);
                !s.is_empty()
            });
        }
    }

    fn fire(
        table: &mut BTreeMap<String, BTreeSet<SessionId>>,
        path: &str,
        kind: WatchKind,
        zxid: Zxid,
        out: &mut Vec<(SessionId, WatchEvent)>,
    ) {
        if let Some(sessions) = table.remove(path) {
            for s in sessions {
                out.push((
                    s,
                    WatchEvent {
                        kind,
                        path: path.to_string(),
                        zxid,
                    },
                ));
            }
        }
    }

    /// The events triggered by `changes` made by txn `zxid` (watches are
    /// one-shot: fired ones are removed).
    pub fn trigger(&mut self, changes: &[Change], zxid: Zxid) -> Vec<(SessionId, WatchEvent)> {
        let mut out = Vec::new();
        for c in changes {
            match c {
                Change::Created(p) => {
                    Self::fire(&mut self.data, p, WatchKind::NodeCreated, zxid, &mut out);
                    Self::fire(
                        &mut self.child,
                        parent_of(p),
                        WatchKind::NodeChildrenChanged,
                        zxid,
                        &mut out,
                    );
                }
                Change::Deleted(p) => {
                    Self::fire(&mut self.data, p, WatchKind::NodeDeleted, zxid, &mut out);
                    Self::fire(&mut self.child, p, WatchKind::NodeDeleted, zxid, &mut out);
                    Self::fire(
                        &mut self.child,
                        parent_of(p),
                        WatchKind::NodeChildrenChanged,
                        zxid,
                        &mut out,
                    );
                }
                Change::DataChanged(p) => {
                    Self::fire(
                        &mut self.data,
                        p,
                        WatchKind::NodeDataChanged,
                        zxid,
                        &mut out,
                    );
                }
            }
        }
        out
    }

    /// Restores a client's watch after it reconnects (ZooKeeper's
    /// setWatches): if the znode changed after `rel_zxid` the event fires at
    /// once (returned), otherwise the watch is registered.
    pub fn restore(
        &mut self,
        tree: &DataTree,
        kind: WatchType,
        path: &str,
        session: SessionId,
        rel_zxid: Zxid,
    ) -> Option<WatchEvent> {
        let node = tree.get(path);
        let fired = match (kind, node) {
            (WatchType::Data, None) | (WatchType::Child, None) => Some(WatchKind::NodeDeleted),
            (WatchType::Data, Some(n)) if n.stat.mzxid > rel_zxid => {
                Some(WatchKind::NodeDataChanged)
            }
            (WatchType::Exist, Some(_)) => Some(WatchKind::NodeCreated),
            (WatchType::Child, Some(n)) if n.stat.pzxid > rel_zxid => {
                Some(WatchKind::NodeChildrenChanged)
            }
            _ => None,
        };
        match fired {
            Some(kind) => Some(WatchEvent {
                kind,
                path: path.to_string(),
                zxid: tree.last_zxid(),
            }),
            None => {
                self.add(kind, path, session);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_and_kinds() {
        let mut w = WatchManager::default();
        w.add(WatchType::Data, "/a", 1);
        w.add(WatchType::Child, "/", 2);
        let ev = w.trigger(&[Change::Created("/a".into())], 5);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].1.kind, WatchKind::NodeCreated);
        assert_eq!(ev[1].1.kind, WatchKind::NodeChildrenChanged);
        assert!(w.trigger(&[Change::Deleted("/a".into())], 6).is_empty());
    }
}
