//! The ZooKeeper data tree: znodes with data, stats and children, the
//! session table, and a deterministic digest for comparing servers.
//!
//! The tree offers checks (what would this operation do, or which error
//! would it return) and unconditional mutations (apply an already-validated
//! change at a zxid). The leader validates client operations against its
//! speculative tree to build transactions (see `txn`); every server then
//! applies those transactions with the mutations here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::zk::types::{CreateMode, SessionId, Stat, ZkError, Zxid};

/// One znode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Znode {
    /// The data.
    pub data: Vec<u8>,
    /// The metadata (`num_children` and `data_length` are kept current).
    pub stat: Stat,
    /// Child names (last path component), sorted.
    pub children: BTreeSet<String>,
}

/// A change to the tree, reported by mutations so watches can fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A znode was created at this path.
    Created(String),
    /// A znode was deleted at this path.
    Deleted(String),
    /// A znode's data changed.
    DataChanged(String),
}

/// The data tree plus the session table (both are part of a snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataTree {
    nodes: BTreeMap<String, Znode>,
    /// Live sessions and their negotiated timeouts in milliseconds.
    sessions: BTreeMap<SessionId, u64>,
    /// Ephemeral paths by owning session.
    ephemerals: BTreeMap<SessionId, BTreeSet<String>>,
    /// The zxid of the last transaction applied.
    last_zxid: Zxid,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// The parent path of `path` (`/` for top-level nodes). `path` must be valid.
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of `path`.
pub fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Whether `path` is a valid absolute znode path (not the root unless
/// `allow_root`): starts with `/`, no empty, `.` or `..` components, no
/// trailing `/`.
pub fn valid_path(path: &str, allow_root: bool) -> bool {
    if path == "/" {
        return allow_root;
    }
    if !path.starts_with('/') || path.ends_with('/') {
        return false;
    }
    path[1..]
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

impl DataTree {
    /// A tree holding only the root znode.
    pub fn new() -> DataTree {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Znode::default());
        DataTree {
            nodes,
            sessions: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            last_zxid: 0,
        }
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Records that the transaction `zxid` has been applied.
    pub fn set_last_zxid(&mut self, zxid: Zxid) {
        self.last_zxid = self.last_zxid.max(zxid);
    }

    /// This tree labelled as of `zxid`: a fuzzy snapshot started at `zxid`
    /// whose contents may already reflect later txns (replay from `zxid`
    /// applies those again, idempotently).
    pub fn labelled_at(&self, zxid: Zxid) -> DataTree {
        let mut t = self.clone();
        t.last_zxid = zxid;
        t
    }

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// Number of znodes including the root.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// Every znode path in sorted order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(|s| s.as_str())
    }

    /// Live sessions and their timeouts (ms).
    pub fn sessions(&self) -> &BTreeMap<SessionId, u64> {
        &self.sessions
    }

    /// Whether `session` is live in the tree.
    pub fn has_session(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    /// The ephemeral paths owned by `session`.
    pub fn ephemerals_of(&self, session: SessionId) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Sorted child names of `path`.
    pub fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        self.nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
            .ok_or(ZkError::NoNode)
    }

    /// The children of `path` (sorted) and its stat.
    pub fn children_and_stat(&self, path: &str) -> Result<(Vec<String>, Stat), ZkError> {
        self.nodes
            .get(path)
            .map(|n| (n.children.iter().cloned().collect(), n.stat))
            .ok_or(ZkError::NoNode)
    }

    /// Decides the actual path a create would produce, or its error.
    pub fn check_create(&self, path: &str, mode: CreateMode) -> Result<String, ZkError> {
        if !valid_path(path, false) {
            // A sequential create may end with '/' (name is only the suffix).
            let seq_dir = mode.is_sequential() && path.ends_with('/') && path.len() > 1;
            if !seq_dir || !valid_path(&path[..path.len() - 1], true) {
                return Err(ZkError::BadArguments);
            }
        }
        let parent = self.nodes.get(parent_of(path)).ok_or(ZkError::NoNode)?;
        let actual = if mode.is_sequential() {
            format!("{}{:010}", path, parent.stat.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&actual) {
            return Err(ZkError::NodeExists);
        }
        if parent.stat.ephemeral_owner != 0 {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        Ok(actual)
    }

    /// Checks a delete with an expected version (`-1` = any).
    pub fn check_delete(&self, path: &str, version: i32) -> Result<(), ZkError> {
        if !valid_path(path, false) {
            return Err(ZkError::BadArguments);
        }
        let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && n.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        if !n.children.is_empty() {
            return Err(ZkError::NotEmpty);
        }
        Ok(())
    }

    /// Checks a setData (or check) with an expected version; returns the new
    /// version the write would give.
    pub fn check_version(&self, path: &str, version: i32) -> Result<i32, ZkError> {
        if !valid_path(path, true) {
            return Err(ZkError::BadArguments);
        }
        let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && n.stat.version != version {
            return Err(ZkError::BadVersion);
        }
        Ok(n.stat.version.wrapping_add(1))
    }

    /// The parents among `parents` whose children already reflect a change
    /// at `zxid` or later (their pzxid is at least `zxid`). Applying a txn
    /// whose changes are already in the tree (replay over a fuzzy snapshot)
    /// must not count its child changes again: ZooKeeper's replay relies on
    /// every txn being idempotent over a later state.
    pub fn reflected_parents<'a>(
        &self,
        parents: impl IntoIterator<Item = &'a str>,
        zxid: Zxid,
    ) -> BTreeSet<String> {
        parents
            .into_iter()
            .filter(|p| self.nodes.get(*p).is_some_and(|n| n.stat.pzxid >= zxid))
            .map(|p| p.to_string())
            .collect()
    }

    /// Every znode whose pzxid is at least `zxid` (see `reflected_parents`).
    pub fn all_reflected_parents(&self, zxid: Zxid) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.stat.pzxid >= zxid)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Creates a znode at `path` (parent must exist). Idempotent on replay:
    /// an existing path is left alone (and linked to its parent), and a
    /// parent whose pzxid shows the change already counted is not counted
    /// again.
    pub fn apply_create(
        &mut self,
        path: &str,
        data: &[u8],
        owner: SessionId,
        zxid: Zxid,
        out: &mut Vec<Change>,
    ) {
        let reflected = self.reflected_parents([parent_of(path)], zxid);
        self.apply_create_in(path, data, owner, zxid, &reflected, out);
    }

    /// `apply_create`, with the parents already reflecting `zxid` given.
    pub fn apply_create_in(
        &mut self,
        path: &str,
        data: &[u8],
        owner: SessionId,
        zxid: Zxid,
        reflected: &BTreeSet<String>,
        out: &mut Vec<Change>,
    ) {
        if !valid_path(path, false) {
            return;
        }
        let exists = self.nodes.contains_key(path);
        let parent_path = parent_of(path).to_string();
        let Some(parent) = self.nodes.get_mut(&parent_path) else {
            return;
        };
        parent.children.insert(name_of(path).to_string());
        parent.stat.num_children = parent.children.len() as i32;
        // Counted unless the parent already reflects it, even when the node
        // is there (replay: a parent deleted and created again by replayed
        // txns holds its children from the snapshot but not their counts).
        if !reflected.contains(&parent_path) {
            parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
            parent.stat.pzxid = zxid;
        }
        if exists {
            return;
        }
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            version: 0,
            cversion: 0,
            ephemeral_owner: owner,
            data_length: data.len() as i32,
            num_children: 0,
        };
        self.nodes.insert(
            path.to_string(),
            Znode {
                data: data.to_vec(),
                stat,
                children: BTreeSet::new(),
            },
        );
        if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(path.to_string());
        }
        out.push(Change::Created(path.to_string()));
    }

    /// Deletes the znode at `path` if present (idempotent on replay as
    /// `apply_create`).
    pub fn apply_delete(&mut self, path: &str, zxid: Zxid, out: &mut Vec<Change>) {
        let reflected = self.reflected_parents([parent_of(path)], zxid);
        self.apply_delete_in(path, zxid, &reflected, out);
    }

    /// `apply_delete`, with the parents already reflecting `zxid` given.
    pub fn apply_delete_in(
        &mut self,
        path: &str,
        zxid: Zxid,
        reflected: &BTreeSet<String>,
        out: &mut Vec<Change>,
    ) {
        if path == "/" {
            return;
        }
        if self.nodes.get(path).is_some_and(|n| n.stat.czxid > zxid) {
            // Replay: this znode was created again after the delete.
            return;
        }
        let Some(node) = self.nodes.remove(path) else {
            // Only on replay (a delete txn's node exists when it is made).
            if !reflected.contains(parent_of(path)) {
                if let Some(parent) = self.nodes.get_mut(parent_of(path)) {
                    parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
                    parent.stat.pzxid = zxid;
                }
            }
            return;
        };
        if node.stat.ephemeral_owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&node.stat.ephemeral_owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&node.stat.ephemeral_owner);
                }
            }
        }
        let parent_path = parent_of(path);
        let counted = reflected.contains(parent_path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(name_of(path));
            if !counted {
                parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
                parent.stat.pzxid = zxid;
            }
            parent.stat.num_children = parent.children.len() as i32;
        }
        out.push(Change::Deleted(path.to_string()));
    }

    /// Sets the data of `path` to `data` with the given new version.
    pub fn apply_set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        zxid: Zxid,
        out: &mut Vec<Change>,
    ) -> Option<Stat> {
        let n = self.nodes.get_mut(path)?;
        if n.stat.czxid > zxid {
            // Replay: the txn changed an earlier znode of this path.
            return Some(n.stat);
        }
        n.data = data.to_vec();
        n.stat.version = version;
        n.stat.mzxid = zxid;
        n.stat.data_length = data.len() as i32;
        out.push(Change::DataChanged(path.to_string()));
        Some(n.stat)
    }

    /// Registers a session.
    pub fn apply_create_session(&mut self, session: SessionId, timeout_ms: u64) {
        self.sessions.insert(session, timeout_ms);
    }

    /// Ends a session, deleting its ephemerals (in path order, children
    /// before parents cannot arise: ephemerals have no children).
    pub fn apply_close_session(&mut self, session: SessionId, zxid: Zxid, out: &mut Vec<Change>) {
        self.sessions.remove(&session);
        let paths = self.ephemerals_of(session);
        let reflected = self.reflected_parents(paths.iter().map(|p| parent_of(p)), zxid);
        for path in paths {
            self.apply_delete_in(&path, zxid, &reflected, out);
        }
        self.ephemerals.remove(&session);
    }

    /// A deterministic 64-bit digest of the whole tree and session table
    /// (FNV-1a over a canonical encoding), for cross-server comparison.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        for (path, n) in &self.nodes {
            h.bytes(path.as_bytes());
            h.bytes(&n.data);
            let s = &n.stat;
            for v in [
                s.czxid,
                s.mzxid,
                s.pzxid,
                s.version as u64,
                s.cversion as u64,
                s.ephemeral_owner,
                s.num_children as u64,
            ] {
                h.u64(v);
            }
        }
        for (s, t) in &self.sessions {
            h.u64(*s);
            h.u64(*t);
        }
        h.0
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn byte(&mut self, b: u8) {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn u64(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.byte(b);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        for &x in b {
            self.byte(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(t: &mut DataTree, path: &str, owner: SessionId, zxid: Zxid) {
        let mode = if owner != 0 {
            CreateMode::Ephemeral
        } else {
            CreateMode::Persistent
        };
        let p = t.check_create(path, mode).unwrap();
        t.apply_create(&p, b"x", owner, zxid, &mut Vec::new());
    }

    #[test]
    fn paths() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(name_of("/a/b"), "b");
        assert!(valid_path("/a/b", false));
        assert!(!valid_path("/", false));
        assert!(!valid_path("a", false));
        assert!(!valid_path("/a/", false));
        assert!(!valid_path("/a//b", false));
    }

    #[test]
    fn create_errors_and_stats() {
        let mut t = DataTree::new();
        assert_eq!(
            t.check_create("/a/b", CreateMode::Persistent),
            Err(ZkError::NoNode)
        );
        create(&mut t, "/a", 0, 1);
        assert_eq!(
            t.check_create("/a", CreateMode::Persistent),
            Err(ZkError::NodeExists)
        );
        create(&mut t, "/e", 7, 2);
        assert_eq!(
            t.check_create("/e/c", CreateMode::Persistent),
            Err(ZkError::NoChildrenForEphemerals)
        );
        let root = t.get("/").unwrap();
        assert_eq!(root.stat.cversion, 2);
        assert_eq!(root.stat.pzxid, 2);
        assert_eq!(root.stat.num_children, 2);
        let a = t.get("/a").unwrap();
        assert_eq!((a.stat.czxid, a.stat.mzxid, a.stat.version), (1, 1, 0));
        assert_eq!(t.get("/e").unwrap().stat.ephemeral_owner, 7);
    }

    #[test]
    fn sequential_names_use_parent_cversion() {
        let mut t = DataTree::new();
        create(&mut t, "/q", 0, 1);
        let p1 = t
            .check_create("/q/n-", CreateMode::PersistentSequential)
            .unwrap();
        assert_eq!(p1, "/q/n-0000000000");
        t.apply_create(&p1, b"", 0, 2, &mut Vec::new());
        let mut ch = Vec::new();
        t.apply_delete(&p1, 3, &mut ch);
        let p2 = t
            .check_create("/q/n-", CreateMode::EphemeralSequential)
            .unwrap();
        assert_eq!(p2, "/q/n-0000000002");
        assert_eq!(
            t.check_create("/q/", CreateMode::PersistentSequential)
                .unwrap(),
            "/q/0000000002"
        );
    }

    #[test]
    fn delete_and_set_data_versions() {
        let mut t = DataTree::new();
        create(&mut t, "/a", 0, 1);
        create(&mut t, "/a/b", 0, 2);
        assert_eq!(t.check_delete("/a", -1), Err(ZkError::NotEmpty));
        assert_eq!(t.check_delete("/a", 3), Err(ZkError::BadVersion));
        assert_eq!(t.check_delete("/zz", -1), Err(ZkError::NoNode));
        assert_eq!(t.check_version("/a/b", 1), Err(ZkError::BadVersion));
        let v = t.check_version("/a/b", 0).unwrap();
        let st = t
            .apply_set_data("/a/b", b"y", v, 3, &mut Vec::new())
            .unwrap();
        assert_eq!((st.version, st.mzxid, st.czxid), (1, 3, 2));
        assert_eq!(t.check_version("/a/b", -1), Ok(2));
        t.apply_delete("/a/b", 4, &mut Vec::new());
        assert_eq!(t.get("/a").unwrap().stat.pzxid, 4);
        assert_eq!(t.check_delete("/a", 0), Ok(()));
    }

    #[test]
    fn close_session_deletes_ephemerals_and_digest_tracks_state() {
        let mut t = DataTree::new();
        t.apply_create_session(9, 1000);
        create(&mut t, "/x", 9, 1);
        create(&mut t, "/y", 0, 2);
        let d1 = t.digest();
        let mut ch = Vec::new();
        t.apply_close_session(9, 3, &mut ch);
        assert_eq!(ch, vec![Change::Deleted("/x".into())]);
        assert!(t.get("/x").is_none());
        assert!(!t.has_session(9));
        assert_ne!(t.digest(), d1);
        let mut u = DataTree::new();
        create(&mut u, "/y", 0, 2);
        assert_ne!(u.digest(), t.digest(), "pzxid/cversion differ");
    }
}
