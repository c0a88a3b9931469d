//! The ZooKeeper data tree as a persistent value: nodes with data, data
//! version, child version (`cversion`, which also numbers sequential
//! children) and ephemeral owner, and the semantics of each write with
//! ZooKeeper's error codes, in the order ZooKeeper checks them.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::check::hash::fx_hash;

/// A ZooKeeper error code that an operation can observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The node (or a create's parent) does not exist.
    NoNode,
    /// The node already exists.
    NodeExists,
    /// The node has children.
    NotEmpty,
    /// The expected version does not match.
    BadVersion,
    /// Ephemeral nodes cannot have children.
    NoChildrenForEphemerals,
}

impl Code {
    /// Reads a code name: `NoNode`, `NONODE`, `no_node`, ... (case and `_`
    /// insensitive); `None` for anything else.
    pub fn parse(s: &str) -> Option<Code> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        match norm.as_str() {
            "nonode" => Some(Code::NoNode),
            "nodeexists" => Some(Code::NodeExists),
            "notempty" => Some(Code::NotEmpty),
            "badversion" => Some(Code::BadVersion),
            "nochildrenforephemerals" => Some(Code::NoChildrenForEphemerals),
            _ => None,
        }
    }

    /// ZooKeeper's name of the code: `NoNode`, `NodeExists`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoNode => "NoNode",
            Code::NodeExists => "NodeExists",
            Code::NotEmpty => "NotEmpty",
            Code::BadVersion => "BadVersion",
            Code::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One znode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Interned data.
    pub data: u32,
    /// Data version (`setData` count).
    pub version: u32,
    /// Child version: number of child creations and deletions.
    pub cversion: u32,
    /// Owning session of an ephemeral node.
    pub owner: Option<u64>,
}

/// A write that may be part of a `multi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create `path` (a prefix, when sequential).
    Create {
        /// Requested path.
        path: String,
        /// Interned data.
        data: u32,
        /// Owned by the session, deleted when it closes.
        ephemeral: bool,
        /// Append the parent's cversion as ten digits.
        sequential: bool,
    },
    /// Delete `path` if its version matches (`-1`: any).
    Delete {
        /// Path.
        path: String,
        /// Expected version, or -1.
        version: i64,
    },
    /// Set the data of `path` if its version matches (`-1`: any).
    SetData {
        /// Path.
        path: String,
        /// Interned data.
        data: u32,
        /// Expected version, or -1.
        version: i64,
    },
    /// Check the version of `path` (only inside `multi`).
    Check {
        /// Path.
        path: String,
        /// Expected version, or -1.
        version: i64,
    },
}

/// What a successful write returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The path actually created.
    Created(String),
    /// The new data version.
    Version(u32),
    /// Deleted or checked.
    Done,
}

/// The data tree. Its hash is cached, so hashing a state is O(1).
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    hash: u64,
    /// The nodes whose `cversion` is kept (`None`: every node's). A child
    /// version is observable only through the names of sequential
    /// children, so a checker keeps it only for the parents of sequential
    /// creates: elsewhere it would tell apart states no operation can tell
    /// apart, and every subset of `k` crashed creates and deletes would
    /// reach its own state (`2^k` configurations where one does). Not part
    /// of the value: equality and hash ignore it.
    counted: Option<Arc<BTreeSet<String>>>,
}

impl PartialEq for Tree {
    fn eq(&self, other: &Tree) -> bool {
        self.hash == other.hash && self.nodes == other.nodes
    }
}
impl Eq for Tree {}

impl Hash for Tree {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Default for Tree {
    fn default() -> Tree {
        Tree::new()
    }
}

/// The parent of a path (`/` for top-level nodes).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Whether `path` is a valid absolute znode path.
pub fn valid_path(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//"))
}

impl Tree {
    /// A tree holding only `/`.
    pub fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_string(),
            Node {
                data: 0,
                version: 0,
                cversion: 0,
                owner: None,
            },
        );
        let mut t = Tree {
            nodes,
            hash: 0,
            counted: None,
        };
        t.rehash();
        t
    }

    /// A tree holding only `/` that keeps the child version of the nodes
    /// in `parents` only (see [`Tree`]).
    pub fn counting(parents: Arc<BTreeSet<String>>) -> Tree {
        Tree {
            counted: Some(parents),
            ..Tree::new()
        }
    }

    fn rehash(&mut self) {
        self.hash = fx_hash(&self.nodes);
    }

    /// How many nodes the tree holds (at least 1: the root).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The sorted names of `path`'s children.
    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| {
                let name = &p[prefix.len()..];
                (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
            })
            .collect()
    }

    fn version_ok(node: &Node, version: i64) -> bool {
        version == -1 || version == node.version as i64
    }

    fn bump_parent(&mut self, path: &str) {
        let par = parent(path);
        if self.counted.as_ref().is_some_and(|c| !c.contains(par)) {
            return;
        }
        if let Some(p) = self.nodes.get_mut(par) {
            p.cversion += 1;
        }
    }

    fn apply_one(&mut self, w: &Write, session: u64) -> Result<Written, Code> {
        match w {
            Write::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => {
                let par = self.nodes.get(parent(path)).ok_or(Code::NoNode)?;
                let actual = if *sequential {
                    format!("{path}{:010}", par.cversion)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&actual) {
                    return Err(Code::NodeExists);
                }
                if par.owner.is_some() {
                    return Err(Code::NoChildrenForEphemerals);
                }
                self.bump_parent(&actual);
                let node = Node {
                    data: *data,
                    version: 0,
                    cversion: 0,
                    owner: ephemeral.then_some(session),
                };
                self.nodes.insert(actual.clone(), node);
                Ok(Written::Created(actual))
            }
            Write::Delete { path, version } => {
                let node = self.nodes.get(path).ok_or(Code::NoNode)?;
                if !Tree::version_ok(node, *version) {
                    return Err(Code::BadVersion);
                }
                if !self.children(path).is_empty() {
                    return Err(Code::NotEmpty);
                }
                self.nodes.remove(path);
                self.bump_parent(path);
                Ok(Written::Done)
            }
            Write::SetData {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get_mut(path).ok_or(Code::NoNode)?;
                if !Tree::version_ok(node, *version) {
                    return Err(Code::BadVersion);
                }
                node.data = *data;
                node.version += 1;
                Ok(Written::Version(node.version))
            }
            Write::Check { path, version } => {
                let node = self.nodes.get(path).ok_or(Code::NoNode)?;
                if !Tree::version_ok(node, *version) {
                    return Err(Code::BadVersion);
                }
                Ok(Written::Done)
            }
        }
    }

    /// Applies the writes atomically (all or nothing, as `multi` does) on
    /// behalf of `session`: the new tree and results, or the first error.
    pub fn apply(&self, writes: &[Write], session: u64) -> Result<(Tree, Vec<Written>), Code> {
        let mut t = self.clone();
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            out.push(t.apply_one(w, session)?);
        }
        t.rehash();
        Ok((t, out))
    }

    /// Closes `session`: its ephemeral nodes are deleted.
    pub fn close(&self, session: u64) -> Tree {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == Some(session))
            .map(|(p, _)| p.clone())
            .collect();
        if gone.is_empty() {
            return self.clone();
        }
        let mut t = self.clone();
        for p in &gone {
            t.nodes.remove(p);
            t.bump_parent(p);
        }
        t.rehash();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, ephemeral: bool, sequential: bool) -> Write {
        Write::Create {
            path: path.into(),
            data: 1,
            ephemeral,
            sequential,
        }
    }

    #[test]
    fn create_rules_and_codes() {
        let t = Tree::new();
        assert_eq!(
            t.apply(&[create("/a/b", false, false)], 1).unwrap_err(),
            Code::NoNode
        );
        let (t, _) = t.apply(&[create("/a", true, false)], 1).unwrap();
        assert_eq!(
            t.apply(&[create("/a", false, false)], 1).unwrap_err(),
            Code::NodeExists
        );
        assert_eq!(
            t.apply(&[create("/a/b", false, false)], 1).unwrap_err(),
            Code::NoChildrenForEphemerals
        );
        assert_eq!(t.children("/"), vec!["a".to_string()]);
        let t = t.close(1);
        assert!(t.get("/a").is_none());
        assert_eq!(
            t,
            Tree::new()
                .apply(&[create("/x", false, false)], 1)
                .unwrap()
                .0
                .apply(
                    &[Write::Delete {
                        path: "/x".into(),
                        version: -1
                    }],
                    1
                )
                .unwrap()
                .0
        );
    }

    /// A tree counting child versions under `/q` only: a create and a
    /// delete elsewhere leave a state equal to the one before, while under
    /// `/q` they still number the next sequential child.
    #[test]
    fn counting_keeps_child_versions_only_where_sequential_creates_read_them() {
        let t = Tree::counting(Arc::new(["/q".to_string()].into_iter().collect()));
        let (t, _) = t.apply(&[create("/q", false, false)], 1).unwrap();
        let before = t.clone();
        let (t, _) = t.apply(&[create("/a", false, false)], 1).unwrap();
        let del = Write::Delete {
            path: "/a".into(),
            version: -1,
        };
        let (t, _) = t.apply(&[del], 1).unwrap();
        assert_eq!(t, before);
        let (t, _) = t.apply(&[create("/q/x", false, false)], 1).unwrap();
        let (_, out) = t.apply(&[create("/q/n-", false, true)], 1).unwrap();
        assert_eq!(out, vec![Written::Created("/q/n-0000000001".into())]);
        // Counting everything (`Tree::new`), the root's child version
        // tells the two apart.
        let (all, _) = Tree::new().apply(&[create("/a", false, false)], 1).unwrap();
        let del = Write::Delete {
            path: "/a".into(),
            version: -1,
        };
        let (all, _) = all.apply(&[del], 1).unwrap();
        assert_ne!(all, Tree::new());
    }

    #[test]
    fn sequential_names_use_the_parent_cversion() {
        let (t, r) = Tree::new()
            .apply(
                &[
                    create("/q", false, false),
                    create("/q/n-", false, true),
                    create("/q/n-", false, true),
                ],
                1,
            )
            .unwrap();
        assert_eq!(r[1], Written::Created("/q/n-0000000000".into()));
        assert_eq!(r[2], Written::Created("/q/n-0000000001".into()));
        let (t, _) = t
            .apply(
                &[Write::Delete {
                    path: "/q/n-0000000000".into(),
                    version: 0,
                }],
                1,
            )
            .unwrap();
        let (_, r) = t.apply(&[create("/q/n-", false, true)], 1).unwrap();
        assert_eq!(r[0], Written::Created("/q/n-0000000003".into()));
    }

    #[test]
    fn versions_and_multi_atomicity() {
        let (t, _) = Tree::new().apply(&[create("/a", false, false)], 1).unwrap();
        let set = |v| Write::SetData {
            path: "/a".into(),
            data: 2,
            version: v,
        };
        assert_eq!(t.apply(&[set(1)], 1).unwrap_err(), Code::BadVersion);
        let (t, r) = t.apply(&[set(0)], 1).unwrap();
        assert_eq!(r[0], Written::Version(1));
        assert_eq!(t.get("/a").unwrap().data, 2);
        let (t2, _) = t.apply(&[create("/a/c", false, false)], 1).unwrap();
        let del = Write::Delete {
            path: "/a".into(),
            version: -1,
        };
        assert_eq!(
            t2.apply(std::slice::from_ref(&del), 1).unwrap_err(),
            Code::NotEmpty
        );
        // A failing multi changes nothing.
        let multi = [
            create("/b", false, false),
            Write::Check {
                path: "/a".into(),
                version: 7,
            },
        ];
        assert_eq!(t.apply(&multi, 1).unwrap_err(), Code::BadVersion);
        assert!(t.get("/b").is_none());
        assert_eq!(
            t.apply(
                &[Write::Delete {
                    path: "/zz".into(),
                    version: -1
                }],
                1
            )
            .unwrap_err(),
            Code::NoNode
        );
    }

    #[test]
    fn codes_parse_loosely() {
        assert_eq!(Code::parse("NONODE"), Some(Code::NoNode));
        assert_eq!(
            Code::parse("no_children_for_ephemerals"),
            Some(Code::NoChildrenForEphemerals)
        );
        assert_eq!(Code::parse("ConnectionLoss"), None);
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert!(valid_path("/a/b") && !valid_path("a") && !valid_path("/a/") && valid_path("/"));
    }
}
