//! Durable state of a ZooKeeper server on the simulated disk, and recovery.
//!
//! Files:
//! - `acceptedEpoch`, `currentEpoch`: append-only checksummed records of a
//!   u64; the last valid record is the value (a torn append leaves the
//!   previous one, which is the last value acted upon).
//! - `txnlog`: checksummed records; the first is `Base(z)` (the log holds
//!   the history after zxid `z`, which a snapshot of generation `z`
//!   describes), then one record per transaction in zxid order. Recovery
//!   stops at the first torn or corrupt record and truncates there.
//! - `snap.<gen>.<zxid>` (hex): one checksummed record holding the tree and
//!   sessions at `zxid`, taken against the log whose base is `gen`. Periodic
//!   ("fuzzy") snapshots are taken every `snap_count` txns; a snapshot sent by
//!   the leader (SNAP sync) is installed as `snap.<z>.<z>` and the log reset to
//!   `Base(z)`, so a log is never replayed over a snapshot of another history.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::codec::{decode_records, encode_record};
use crate::disk::{DiskOpId, DiskRequest, FileName};
use crate::zk::tree::DataTree;
use crate::zk::txn::{apply, decode_txn, encode_txn, LoggedTxn};
use crate::zk::types::Zxid;

/// The accepted-epoch file.
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
/// The current-epoch file.
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";
/// The transaction log file.
pub const LOG_FILE: &str = "txnlog";

/// The file name of a snapshot.
pub fn snap_file(gen: Zxid, zxid: Zxid) -> FileName {
    format!("snap.{gen:016x}.{zxid:016x}")
}

fn parse_snap_name(name: &str) -> Option<(Zxid, Zxid)> {
    let rest = name.strip_prefix("snap.")?;
    let (g, z) = rest.split_once('.')?;
    Some((
        u64::from_str_radix(g, 16).ok()?,
        u64::from_str_radix(z, 16).ok()?,
    ))
}

/// Encodes an epoch-file record.
pub fn encode_epoch(epoch: u64) -> Vec<u8> {
    encode_record(&epoch.to_le_bytes())
}

/// The last valid epoch in an epoch file, if any.
pub fn decode_epoch(bytes: &[u8]) -> Option<u64> {
    decode_records(bytes)
        .records
        .iter()
        .rev()
        .find_map(|r| r.as_slice().try_into().ok().map(u64::from_le_bytes))
}

/// Encodes a snapshot of `tree` (taken at `tree.last_zxid()`).
pub fn encode_snapshot(tree: &DataTree) -> Vec<u8> {
    encode_record(&serde_json::to_vec(tree).expect("tree serialises"))
}

/// Decodes a snapshot file; `None` if torn, corrupt or malformed.
pub fn decode_snapshot(bytes: &[u8]) -> Option<DataTree> {
    let d = decode_records(bytes);
    if d.records.len() != 1 || d.dropped_tail {
        return None;
    }
    serde_json::from_slice(&d.records[0]).ok()
}

fn encode_base(z: Zxid) -> Vec<u8> {
    let mut p = vec![0u8];
    p.extend_from_slice(&z.to_le_bytes());
    encode_record(&p)
}

fn encode_entry(t: &LoggedTxn) -> Vec<u8> {
    let mut p = vec![1u8];
    p.extend_from_slice(&encode_txn(t));
    encode_record(&p)
}

/// The transaction log as this process sees it: base, entries and their end
/// offsets in the file.
#[derive(Clone, Debug, Default)]
pub struct TxnLog {
    /// The zxid the log starts after.
    pub base: Zxid,
    /// The entries, in zxid order.
    pub entries: Vec<LoggedTxn>,
    /// End offset of each entry.
    ends: Vec<u64>,
    /// Byte length of the base record.
    base_len: u64,
}

impl TxnLog {
    /// The last zxid in the log (the base if empty).
    pub fn last_zxid(&self) -> Zxid {
        self.entries.last().map_or(self.base, |e| e.zxid())
    }

    /// Index of the entry with exactly this zxid.
    pub fn position(&self, zxid: Zxid) -> Option<usize> {
        self.entries.binary_search_by_key(&zxid, |e| e.zxid()).ok()
    }

    /// Entries with zxid greater than `after`.
    pub fn after(&self, after: Zxid) -> &[LoggedTxn] {
        let i = self.entries.partition_point(|e| e.zxid() <= after);
        &self.entries[i..]
    }

    /// Appends an entry; returns the disk request writing it.
    pub fn append(&mut self, t: LoggedTxn) -> DiskRequest {
        assert!(t.zxid() > self.last_zxid(), "log zxids must increase");
        let data = encode_entry(&t);
        let end = self.byte_len() + data.len() as u64;
        self.entries.push(t);
        self.ends.push(end);
        DiskRequest::Append {
            file: LOG_FILE.into(),
            data,
        }
    }

    /// Length of the log file as written.
    pub fn byte_len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(self.base_len)
    }

    /// Drops entries after `zxid`; returns the truncate request.
    pub fn truncate_after(&mut self, zxid: Zxid) -> DiskRequest {
        let keep = self.entries.partition_point(|e| e.zxid() <= zxid);
        self.entries.truncate(keep);
        self.ends.truncate(keep);
        DiskRequest::Truncate {
            file: LOG_FILE.into(),
            len: self.byte_len(),
        }
    }

    /// Resets the log to start after `base`; returns the requests.
    pub fn reset(&mut self, base: Zxid) -> Vec<DiskRequest> {
        let rec = encode_base(base);
        self.base = base;
        self.base_len = rec.len() as u64;
        self.entries.clear();
        self.ends.clear();
        vec![
            DiskRequest::Truncate {
                file: LOG_FILE.into(),
                len: 0,
            },
            DiskRequest::Append {
                file: LOG_FILE.into(),
                data: rec,
            },
        ]
    }
}

/// What recovery found on disk.
#[derive(Debug)]
pub struct Recovered {
    /// The accepted epoch, if its file holds a valid record.
    pub accepted_epoch: Option<u64>,
    /// The current epoch, if its file holds a valid record.
    pub current_epoch: Option<u64>,
    /// The log (valid prefix).
    pub log: TxnLog,
    /// The tree after the newest valid snapshot plus log replay.
    pub tree: DataTree,
    /// The tree at the log's base, for rebuilding after a truncation.
    pub base_tree: Option<DataTree>,
    /// Snapshot files present and valid: (gen, zxid).
    pub snaps: BTreeSet<(Zxid, Zxid)>,
    /// Disk requests recovery needs (truncate a torn tail, reset the log).
    pub fixups: Vec<DiskRequest>,
    /// Set when the log could not be used with any snapshot: the tree comes
    /// from a snapshot alone and the log must be rebased on it (the caller
    /// installs `tree` as the new base, then re-logs and applies `replay`).
    pub rebase: bool,
    /// With `rebase`: logged entries after the snapshot to keep.
    pub replay: Vec<LoggedTxn>,
}

/// Recovers a server's state from its durable files.
pub fn recover(files: &BTreeMap<FileName, Vec<u8>>) -> Recovered {
    let accepted_epoch = files.get(ACCEPTED_EPOCH_FILE).and_then(|b| decode_epoch(b));
    let current_epoch = files.get(CURRENT_EPOCH_FILE).and_then(|b| decode_epoch(b));
    let mut fixups = Vec::new();

    // The log's valid prefix.
    let log_bytes = files.get(LOG_FILE).map(|v| v.as_slice()).unwrap_or(&[]);
    let decoded = decode_records(log_bytes);
    let mut log = TxnLog::default();
    let mut has_base = false;
    let mut valid_len = 0u64;
    let mut pos = 0u64;
    for (i, rec) in decoded.records.iter().enumerate() {
        let rec_len = rec.len() as u64 + 8;
        if i == 0 {
            match (rec.first(), rec.get(1..9)) {
                (Some(0), Some(z)) if rec.len() == 9 => {
                    log.base = u64::from_le_bytes(z.try_into().unwrap());
                    log.base_len = rec_len;
                    has_base = true;
                }
                _ => break,
            }
        } else {
            let Some(t) = (rec.first() == Some(&1))
                .then(|| decode_txn(&rec[1..]))
                .flatten()
            else {
                break;
            };
            if t.zxid() <= log.last_zxid() {
                break;
            }
            log.entries.push(t);
            log.ends.push(pos + rec_len);
        }
        pos += rec_len;
        valid_len = pos;
    }
    if (valid_len as usize) < log_bytes.len() {
        fixups.push(DiskRequest::Truncate {
            file: LOG_FILE.into(),
            len: valid_len,
        });
    }

    // Valid snapshots.
    let mut snaps = BTreeSet::new();
    let mut trees: BTreeMap<(Zxid, Zxid), DataTree> = BTreeMap::new();
    for (name, bytes) in files {
        if let Some(key) = parse_snap_name(name) {
            if let Some(t) = decode_snapshot(bytes) {
                snaps.insert(key);
                trees.insert(key, t);
            }
        }
    }

    let newest_any = || {
        trees
            .iter()
            .max_by_key(|((_, z), _)| *z)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    if !has_base {
        // No usable log: any snapshot alone is a consistent state.
        log = TxnLog::default();
        return Recovered {
            accepted_epoch,
            current_epoch,
            log,
            tree: newest_any(),
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
        };
    }
    let base_tree = if log.base == 0 {
        Some(DataTree::new())
    } else {
        trees.get(&(log.base, log.base)).cloned()
    };
    let newest = trees
        .range((log.base, 0)..=(log.base, u64::MAX))
        .next_back()
        .map(|(_, t)| t.clone())
        .or_else(|| base_tree.clone());
    let Some(mut tree) = newest else {
        // The log's base snapshot is gone: the log alone is unusable.
        return Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree: newest_any(),
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
        };
    };
    if base_tree.is_none() {
        // The base snapshot is corrupt but a newer one of this log is fine:
        // make that the base and keep the log entries after it.
        let replay = log.after(tree.last_zxid()).to_vec();
        return Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree,
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay,
        };
    }
    if tree.last_zxid() > log.last_zxid() {
        // The log ends before the snapshot (its tail was torn or corrupt):
        // the history between is only in the snapshot.
        return Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree,
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
        };
    }
    for t in log.after(tree.last_zxid()).to_vec() {
        let _ = apply(&mut tree, &t, &mut Vec::new());
    }
    Recovered {
        accepted_epoch,
        current_epoch,
        log,
        tree,
        base_tree,
        snaps,
        fixups,
        rebase: false,
        replay: Vec::new(),
    }
}

/// Issues disk operations with increasing ids and releases actions once all
/// operations issued before them have completed (a durability barrier: an
/// ack queued after an fsync is sent only when that fsync, and everything
/// before it, is done).
#[derive(Debug)]
pub struct DiskQueue<A> {
    next_op: DiskOpId,
    in_flight: BTreeSet<DiskOpId>,
    waiting: VecDeque<(DiskOpId, A)>,
}

impl<A> Default for DiskQueue<A> {
    fn default() -> Self {
        DiskQueue {
            next_op: 1,
            in_flight: BTreeSet::new(),
            waiting: VecDeque::new(),
        }
    }
}

impl<A> DiskQueue<A> {
    /// Registers a new operation; returns its id for `cx.disk`.
    pub fn issue(&mut self) -> DiskOpId {
        let id = self.next_op;
        self.next_op += 1;
        self.in_flight.insert(id);
        id
    }

    /// Queues `action` until every operation issued so far has completed.
    pub fn after_all(&mut self, action: A) {
        self.waiting.push_back((self.next_op, action));
    }

    /// Marks `op` complete; returns the actions now released, in order.
    pub fn complete(&mut self, op: DiskOpId) -> Vec<A> {
        self.in_flight.remove(&op);
        self.ready()
    }

    /// The next action whose barrier has passed, if any.
    pub fn pop_ready(&mut self) -> Option<A> {
        let low = self.in_flight.first().copied().unwrap_or(self.next_op);
        if self.waiting.front().is_some_and(|(b, _)| *b <= low) {
            self.waiting.pop_front().map(|(_, a)| a)
        } else {
            None
        }
    }

    /// Moves the barrier of every queued action past all operations issued
    /// so far (used when held operations are issued late).
    pub fn rebarrier(&mut self) {
        let next = self.next_op;
        for (b, _) in self.waiting.iter_mut() {
            *b = next;
        }
    }

    /// Marks `op` complete without releasing anything (see `pop_ready`).
    pub fn done(&mut self, op: DiskOpId) {
        self.in_flight.remove(&op);
    }

    /// Actions whose barrier has passed.
    pub fn ready(&mut self) -> Vec<A> {
        let low = self.in_flight.first().copied().unwrap_or(self.next_op);
        let mut out = Vec::new();
        while self.waiting.front().is_some_and(|(b, _)| *b <= low) {
            out.push(self.waiting.pop_front().unwrap().1);
        }
        out
    }

    /// Drops every queued action (e.g. when leaving a role).
    pub fn clear_actions(&mut self) {
        self.waiting.clear();
    }

    /// Whether an operation is still pending.
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::txn::{Txn, TxnHeader};

    fn entry(z: Zxid, path: &str) -> LoggedTxn {
        LoggedTxn {
            hdr: TxnHeader {
                zxid: z,
                session: 0,
                cxid: 0,
            },
            txn: Txn::Create {
                path: path.into(),
                data: vec![z as u8],
                ephemeral_owner: 0,
            },
        }
    }

    fn write(reqs: Vec<DiskRequest>, file: &mut Vec<u8>) {
        for r in reqs {
            match r {
                DiskRequest::Append { data, .. } => file.extend(data),
                DiskRequest::Truncate { len, .. } => file.truncate(len as usize),
                _ => {}
            }
        }
    }

    fn log_bytes(n: u64) -> (TxnLog, Vec<u8>) {
        let mut log = TxnLog::default();
        let mut bytes = Vec::new();
        write(log.reset(0), &mut bytes);
        for z in 1..=n {
            let r = log.append(entry(z, &format!("/n{z}")));
            write(vec![r], &mut bytes);
        }
        (log, bytes)
    }

    #[test]
    fn recovery_replays_log_and_stops_at_torn_or_corrupt_tail() {
        let (_, bytes) = log_bytes(5);
        let mut files = BTreeMap::new();
        files.insert(LOG_FILE.to_string(), bytes.clone());
        let r = recover(&files);
        assert_eq!(r.log.entries.len(), 5);
        assert_eq!(r.tree.last_zxid(), 5);
        assert!(r.fixups.is_empty() && !r.rebase);

        files.insert(LOG_FILE.to_string(), bytes[..bytes.len() - 3].to_vec());
        let r = recover(&files);
        assert_eq!(r.log.entries.len(), 4);
        assert!(r.tree.get("/n5").is_none());
        assert!(matches!(r.fixups[0], DiskRequest::Truncate { .. }));
        assert_eq!(
            r.log.byte_len() as usize,
            bytes.len() - (bytes.len() - r.log.byte_len() as usize)
        );

        // Corrupt a byte in the third entry: entries 3.. are dropped.
        let mut bad = bytes.clone();
        let (log, _) = log_bytes(5);
        let at = log.ends[1] as usize + 12;
        bad[at] ^= 0xff;
        files.insert(LOG_FILE.to_string(), bad);
        let r = recover(&files);
        assert_eq!(r.log.entries.len(), 2);
        assert_eq!(r.tree.last_zxid(), 2);
    }

    #[test]
    fn recovery_uses_newest_valid_snapshot() {
        let (log, bytes) = log_bytes(6);
        let mut tree = DataTree::new();
        for t in &log.entries[..4] {
            let _ = apply(&mut tree, t, &mut Vec::new());
        }
        let mut files = BTreeMap::new();
        files.insert(LOG_FILE.to_string(), bytes);
        files.insert(snap_file(0, 4), encode_snapshot(&tree));
        let mut torn = encode_snapshot(&tree);
        torn.pop();
        files.insert(snap_file(0, 5), torn);
        let r = recover(&files);
        assert_eq!(r.snaps.iter().copied().collect::<Vec<_>>(), vec![(0, 4)]);
        assert_eq!(r.tree.last_zxid(), 6);
        assert!(r.tree.get("/n6").is_some() && r.tree.get("/n1").is_some());

        // A snapshot newer than the (torn) log forces a rebase on it.
        let (_, short) = log_bytes(3);
        files.insert(LOG_FILE.to_string(), short);
        let r = recover(&files);
        assert!(r.rebase);
        assert_eq!(r.tree.last_zxid(), 4);
    }

    #[test]
    fn corrupt_base_snapshot_rebases_on_a_newer_one_and_keeps_the_log() {
        // A log based at 2 (after a SNAP), entries 3..=6.
        let mut log = TxnLog::default();
        let mut bytes = Vec::new();
        write(log.reset(2), &mut bytes);
        for z in 3..=6 {
            let r = log.append(entry(z, &format!("/n{z}")));
            write(vec![r], &mut bytes);
        }
        let mut base = DataTree::new();
        for z in 1..=2 {
            let _ = apply(&mut base, &entry(z, &format!("/n{z}")), &mut Vec::new());
        }
        let mut at4 = base.clone();
        for t in &log.entries[..2] {
            let _ = apply(&mut at4, t, &mut Vec::new());
        }
        let mut files = BTreeMap::new();
        files.insert(LOG_FILE.to_string(), bytes);
        let mut bad = encode_snapshot(&base);
        bad[10] ^= 1;
        files.insert(snap_file(2, 2), bad);
        files.insert(snap_file(2, 4), encode_snapshot(&at4));
        let r = recover(&files);
        assert!(r.rebase);
        assert_eq!(r.tree.last_zxid(), 4);
        assert_eq!(
            r.replay.iter().map(|e| e.zxid()).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn epoch_files_keep_last_valid_record() {
        let mut b = encode_epoch(3);
        b.extend(encode_epoch(4));
        assert_eq!(decode_epoch(&b), Some(4));
        b.extend(&encode_epoch(5)[..6]);
        assert_eq!(decode_epoch(&b), Some(4));
        assert_eq!(decode_epoch(&[]), None);
    }

    #[test]
    fn disk_queue_barrier() {
        let mut q: DiskQueue<&str> = DiskQueue::default();
        let a = q.issue();
        q.after_all("x");
        let b = q.issue();
        q.after_all("y");
        assert!(q.complete(b).is_empty());
        assert_eq!(q.complete(a), vec!["x", "y"]);
        q.after_all("z");
        assert_eq!(q.ready(), vec!["z"]);
    }
}
