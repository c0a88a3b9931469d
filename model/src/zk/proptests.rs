//! Property tests of the data tree: random operations validated and applied
//! as the leader and followers do (prep + apply) agree with a plain
//! reference model, and the tree's stats stay consistent.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::zk::tree::{parent_of, DataTree};
use crate::zk::txn::{apply, prep, LoggedTxn, TxnHeader};
use crate::zk::types::{CreateMode, ZkError, ZkOp, ZkResponse};

const PATHS: &[&str] = &["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"];
const SESSION: u64 = 77;

fn op_strategy() -> impl Strategy<Value = ZkOp> {
    let path = prop::sample::select(PATHS);
    let data = prop::collection::vec(any::<u8>(), 0..3);
    prop_oneof![
        (path.clone(), data.clone(), any::<bool>()).prop_map(|(p, d, e)| ZkOp::Create {
            path: p.to_string(),
            data: d,
            mode: if e {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            },
        }),
        (path.clone(), -1i32..3).prop_map(|(p, v)| ZkOp::Delete {
            path: p.to_string(),
            version: v,
        }),
        (path, data, -1i32..3).prop_map(|(p, d, v)| ZkOp::SetData {
            path: p.to_string(),
            data: d,
            version: v,
        }),
    ]
}

/// The reference: path -> (data, version, ephemeral).
type Model = BTreeMap<String, (Vec<u8>, i32, bool)>;

fn model_step(m: &mut Model, op: &ZkOp) -> Result<(), ZkError> {
    let has_children = |m: &Model, p: &str| m.keys().any(|k| k != p && parent_of(k) == p);
    match op {
        ZkOp::Create { path, data, mode } => {
            let parent = parent_of(path);
            if parent != "/" && !m.contains_key(parent) {
                return Err(ZkError::NoNode);
            }
            if m.contains_key(path) {
                return Err(ZkError::NodeExists);
            }
            if parent != "/" && m[parent].2 {
                return Err(ZkError::NoChildrenForEphemerals);
            }
            m.insert(path.clone(), (data.clone(), 0, mode.is_ephemeral()));
            Ok(())
        }
        ZkOp::Delete { path, version } => {
            let (_, v, _) = m.get(path).ok_or(ZkError::NoNode)?;
            if *version != -1 && v != version {
                return Err(ZkError::BadVersion);
            }
            if has_children(m, path) {
                return Err(ZkError::NotEmpty);
            }
            m.remove(path);
            Ok(())
        }
        ZkOp::SetData {
            path,
            data,
            version,
        } => {
            let e = m.get_mut(path).ok_or(ZkError::NoNode)?;
            if *version != -1 && e.1 != *version {
                return Err(ZkError::BadVersion);
            }
            *e = (data.clone(), e.1 + 1, e.2);
            Ok(())
        }
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn tree_matches_reference(ops in prop::collection::vec(op_strategy(), 1..40), close in any::<bool>()) {
        let mut tree = DataTree::new();
        tree.apply_create_session(SESSION, 1000);
        let mut model = Model::new();
        let mut log = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let zxid = i as u64 + 1;
            let txn = prep(&tree, SESSION, op);
            let lt = LoggedTxn { hdr: TxnHeader { zxid, session: SESSION, cxid: zxid }, txn };
            let got = apply(&mut tree, &lt, &mut Vec::new()).map(|_| ());
            log.push(lt);
            let want = model_step(&mut model, op);
            prop_assert_eq!(got, want, "op {:?}", op);
        }
        if close {
            let lt = LoggedTxn {
                hdr: TxnHeader { zxid: 1000, session: SESSION, cxid: 0 },
                txn: crate::zk::txn::Txn::CloseSession,
            };
            prop_assert_eq!(apply(&mut tree, &lt, &mut Vec::new()), Ok(ZkResponse::Closed));
            log.push(lt);
            model.retain(|_, v| !v.2);
        }
        let paths: Vec<String> = tree.paths().filter(|p| *p != "/").map(String::from).collect();
        prop_assert_eq!(paths, model.keys().cloned().collect::<Vec<_>>());
        for (p, (d, v, e)) in &model {
            let n = tree.get(p).unwrap();
            prop_assert_eq!(&n.data, d);
            prop_assert_eq!(n.stat.version, *v);
            prop_assert_eq!(n.stat.ephemeral_owner != 0, *e);
        }
        for p in tree.paths() {
            let n = tree.get(p).unwrap();
            prop_assert_eq!(n.stat.num_children as usize, n.children.len());
            prop_assert_eq!(n.stat.data_length as usize, n.data.len());
        }
        // Replaying the same txns on a fresh tree gives the same digest.
        let mut replayed = DataTree::new();
        replayed.apply_create_session(SESSION, 1000);
        for lt in &log {
            let _ = apply(&mut replayed, lt, &mut Vec::new());
        }
        prop_assert_eq!(replayed.digest(), tree.digest());
    }
}
