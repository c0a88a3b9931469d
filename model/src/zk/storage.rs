//! Durable state of a ZooKeeper server on the simulated disk, and recovery.
//!
//! Files:
//! - `acceptedEpoch`, `currentEpoch`: append-only checksummed records of a
//!   u64; the last record is the value (a torn append leaves the previous
//!   one, which is the last value acted upon); a corrupt record, or a
//!   currentEpoch above acceptedEpoch, is refused.
//! - `txnlog`: checksummed records; the first is `Base(z)` (the log holds
//!   the history after zxid `z`, which a snapshot of generation `z`
//!   describes), then one record per transaction in zxid order. Recovery
//!   truncates a torn tail (a short last record) and refuses a record that
//!   fails its checksum ([`RecoveryError`]), as ZooKeeper does.
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

/// Why a server refuses to start on what its disk holds. ZooKeeper exits
/// on each of these rather than truncate, repair or skip; so does the model,
/// and the server stays down until an operator steps in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// A complete log record fails its checksum: corruption, not a torn
    /// tail (which recovery truncates).
    #[error("txn log record at byte {offset} fails its checksum (corruption, not a torn tail)")]
    CorruptLog {
        /// Where the bad record starts.
        offset: u64,
    },
    /// A log record passes its checksum but is not what the log holds
    /// there (no base record first, an undecodable txn, zxids not
    /// increasing).
    #[error("txn log record at byte {offset} is malformed: {what}")]
    MalformedLog {
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// An epoch file holds a record that fails its checksum or is not an
    /// epoch (ZOOKEEPER-2307 / ZOOKEEPER-2354: inconsistent epoch files).
    #[error("epoch file {file} is corrupt at byte {offset}")]
    CorruptEpochFile {
        /// The file.
        file: &'static str,
        /// Where the bad record starts.
        offset: u64,
    },
    /// currentEpoch is above acceptedEpoch: a server never acts in an epoch
    /// it has not accepted (ZOOKEEPER-2307 / ZOOKEEPER-2354).
    #[error("currentEpoch {current} is greater than acceptedEpoch {accepted}")]
    EpochsInconsistent {
        /// The current epoch read.
        current: u64,
        /// The accepted epoch read.
        accepted: u64,
    },
}

/// An epoch file as recovery read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochFile {
    /// The last record's epoch, `None` if it holds none.
    pub epoch: Option<u64>,
    /// Where its valid records end (a torn tail after it is cut off before
    /// the next append).
    pub valid_len: u64,
    /// Whether a torn tail follows the valid records.
    pub torn: bool,
}

/// Reads an epoch file. A torn last record (short, of an epoch's length)
/// is dropped and the one before it counts; a record that fails its
/// checksum or is not an epoch is refused.
pub fn read_epoch_file(file: &'static str, bytes: &[u8]) -> Result<EpochFile, RecoveryError> {
    let d = decode_records(bytes);
    let bad = || RecoveryError::CorruptEpochFile {
        file,
        offset: d.valid_len,
    };
    if d.corrupt {
        return Err(bad());
    }
    if d.dropped_tail {
        let rest = &bytes[d.valid_len as usize..];
        if rest.len() >= 4 && rest[..4] != 8u32.to_le_bytes() {
            return Err(bad());
        }
    }
    let mut last = None;
    let mut at = 0u64;
    for r in &d.records {
        let Ok(b) = <[u8; 8]>::try_from(r.as_slice()) else {
            return Err(RecoveryError::CorruptEpochFile { file, offset: at });
        };
        last = Some(u64::from_le_bytes(b));
        at += r.len() as u64 + 8;
    }
    Ok(EpochFile {
        epoch: last,
        valid_len: d.valid_len,
        torn: d.dropped_tail,
    })
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
    /// The zxid of the snapshot the tree was loaded from (0: none).
    pub loaded_zxid: Zxid,
}

/// Recovers a server's state from its durable files, or says why it must
/// not start (a corrupt log record or epoch file, inconsistent epochs).
pub fn recover(files: &BTreeMap<FileName, Vec<u8>>) -> Result<Recovered, RecoveryError> {
    let mut fixups = Vec::new();
    let mut epoch = |name: &'static str| -> Result<Option<u64>, RecoveryError> {
        let Some(b) = files.get(name) else {
            return Ok(None);
        };
        let f = read_epoch_file(name, b)?;
        if f.torn {
            // Cut the torn record off, or the next append would follow it.
            fixups.push(DiskRequest::Truncate {
                file: name.into(),
                len: f.valid_len,
            });
        }
        Ok(f.epoch)
    };
    let accepted_epoch = epoch(ACCEPTED_EPOCH_FILE)?;
    let current_epoch = epoch(CURRENT_EPOCH_FILE)?;
    if let (Some(current), Some(accepted)) = (current_epoch, accepted_epoch) {
        if current > accepted {
            return Err(RecoveryError::EpochsInconsistent { current, accepted });
        }
    }

    // The log up to its torn tail, if any; a corrupt record is refused.
    let log_bytes = files.get(LOG_FILE).map(|v| v.as_slice()).unwrap_or(&[]);
    let decoded = decode_records(log_bytes);
    if decoded.corrupt {
        return Err(RecoveryError::CorruptLog {
            offset: decoded.valid_len,
        });
    }
    let mut log = TxnLog::default();
    let mut has_base = false;
    let mut valid_len = 0u64;
    let mut pos = 0u64;
    for (i, rec) in decoded.records.iter().enumerate() {
        let rec_len = rec.len() as u64 + 8;
        let malformed = |what| RecoveryError::MalformedLog { offset: pos, what };
        if i == 0 {
            match (rec.first(), rec.get(1..9)) {
                (Some(0), Some(z)) if rec.len() == 9 => {
                    log.base = u64::from_le_bytes(z.try_into().unwrap());
                    log.base_len = rec_len;
                    has_base = true;
                }
                _ => return Err(malformed("the first record is not the log's base")),
            }
        } else {
            let Some(t) = (rec.first() == Some(&1))
                .then(|| decode_txn(&rec[1..]))
                .flatten()
            else {
                return Err(malformed("not a transaction"));
            };
            if t.zxid() <= log.last_zxid() {
                return Err(malformed("zxids do not increase"));
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
        return Ok(Recovered {
            accepted_epoch,
            current_epoch,
            log,
            tree: newest_any(),
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
            loaded_zxid: 0,
        });
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
        return Ok(Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree: newest_any(),
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
            loaded_zxid: 0,
        });
    };
    if base_tree.is_none() {
        // The base snapshot is corrupt but a newer one of this log is fine:
        // make that the base and keep the log entries after it.
        let replay = log.after(tree.last_zxid()).to_vec();
        return Ok(Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree,
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay,
            loaded_zxid: 0,
        });
    }
    if tree.last_zxid() > log.last_zxid() {
        // The log ends before the snapshot (its tail was torn or corrupt):
        // the history between is only in the snapshot.
        return Ok(Recovered {
            accepted_epoch,
            current_epoch,
            log: TxnLog::default(),
            tree,
            base_tree: None,
            snaps,
            fixups,
            rebase: true,
            replay: Vec::new(),
            loaded_zxid: 0,
        });
    }
    let loaded_zxid = tree.last_zxid();
    for t in log.after(tree.last_zxid()).to_vec() {
        let _ = apply(&mut tree, &t, &mut Vec::new());
    }
    Ok(Recovered {
        accepted_epoch,
        current_epoch,
        log,
        tree,
        base_tree,
        snaps,
        fixups,
        rebase: false,
        replay: Vec::new(),
        loaded_zxid,
    })
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
        let r = recover(&files).unwrap();
        assert_eq!(r.log.entries.len(), 5);
        assert_eq!(r.tree.last_zxid(), 5);
        assert!(r.fixups.is_empty() && !r.rebase);

        files.insert(LOG_FILE.to_string(), bytes[..bytes.len() - 3].to_vec());
        let r = recover(&files).unwrap();
        assert_eq!(r.log.entries.len(), 4);
        assert!(r.tree.get("/n5").is_none());
        assert!(matches!(r.fixups[0], DiskRequest::Truncate { .. }));
        assert_eq!(
            r.log.byte_len() as usize,
            bytes.len() - (bytes.len() - r.log.byte_len() as usize)
        );

        // A corrupt byte in the third entry (a complete record that fails
        // its checksum, with more after it) is refused, not truncated.
        let mut bad = bytes.clone();
        let (log, _) = log_bytes(5);
        let at = log.ends[1] as usize + 12;
        bad[at] ^= 0xff;
        files.insert(LOG_FILE.to_string(), bad);
        let e = recover(&files).unwrap_err();
        assert_eq!(
            e,
            RecoveryError::CorruptLog {
                offset: log.ends[1]
            }
        );
        assert!(e.to_string().contains("not a torn tail"));
        // So is a corrupt last record: complete, so not torn.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        files.insert(LOG_FILE.to_string(), bad);
        assert_eq!(
            recover(&files).unwrap_err(),
            RecoveryError::CorruptLog {
                offset: log.ends[3]
            }
        );
    }

    #[test]
    fn corrupt_or_inconsistent_epoch_files_are_refused() {
        let (_, bytes) = log_bytes(2);
        let mut files = BTreeMap::new();
        files.insert(LOG_FILE.to_string(), bytes);
        let mut acc = encode_epoch(1);
        acc.extend(encode_epoch(2));
        files.insert(ACCEPTED_EPOCH_FILE.to_string(), acc.clone());
        files.insert(CURRENT_EPOCH_FILE.to_string(), encode_epoch(1));
        let r = recover(&files).unwrap();
        assert_eq!((r.accepted_epoch, r.current_epoch), (Some(2), Some(1)));
        assert!(r.fixups.is_empty());
        // A torn last record: the previous epoch counts, the tail is cut.
        let mut torn = acc.clone();
        torn.extend(&encode_epoch(3)[..10]);
        files.insert(ACCEPTED_EPOCH_FILE.to_string(), torn);
        let r = recover(&files).unwrap();
        assert_eq!(r.accepted_epoch, Some(2));
        assert_eq!(
            r.fixups,
            vec![DiskRequest::Truncate {
                file: ACCEPTED_EPOCH_FILE.into(),
                len: 32
            }]
        );
        // A flipped bit in a record: refused.
        let mut bad = acc.clone();
        let n = bad.len();
        bad[n - 2] ^= 4;
        files.insert(ACCEPTED_EPOCH_FILE.to_string(), bad);
        assert_eq!(
            recover(&files).unwrap_err(),
            RecoveryError::CorruptEpochFile {
                file: ACCEPTED_EPOCH_FILE,
                offset: 16
            }
        );
        // A record's length flipped so that it seems to run past the end.
        let mut bad = acc.clone();
        bad[16] ^= 0x10;
        files.insert(ACCEPTED_EPOCH_FILE.to_string(), bad);
        assert!(matches!(
            recover(&files),
            Err(RecoveryError::CorruptEpochFile { .. })
        ));
        // currentEpoch above acceptedEpoch.
        files.insert(ACCEPTED_EPOCH_FILE.to_string(), acc);
        files.insert(CURRENT_EPOCH_FILE.to_string(), encode_epoch(3));
        let e = recover(&files).unwrap_err();
        assert_eq!(
            e,
            RecoveryError::EpochsInconsistent {
                current: 3,
                accepted: 2
            }
        );
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
        let r = recover(&files).unwrap();
        assert_eq!(r.snaps.iter().copied().collect::<Vec<_>>(), vec![(0, 4)]);
        assert_eq!(r.tree.last_zxid(), 6);
        assert!(r.tree.get("/n6").is_some() && r.tree.get("/n1").is_some());

        // A snapshot newer than the (torn) log forces a rebase on it.
        let (_, short) = log_bytes(3);
        files.insert(LOG_FILE.to_string(), short);
        let r = recover(&files).unwrap();
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
        let r = recover(&files).unwrap();
        assert!(r.rebase);
        assert_eq!(r.tree.last_zxid(), 4);
        assert_eq!(
            r.replay.iter().map(|e| e.zxid()).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    /// A fuzzy snapshot (the tree after txn `end`, labelled as of an earlier
    /// `start`) plus replay of the log after `start` gives the tree after
    /// the whole log: every txn applies idempotently over a later state
    /// (creates and deletes re-done, sessions closed again, multis, parent
    /// child versions not counted twice).
    #[test]
    fn replay_over_a_fuzzy_snapshot_is_idempotent() {
        use crate::zk::txn::prep;
        use crate::zk::types::{CreateMode, ZkOp};
        use rand::{Rng, SeedableRng};
        let modes = [
            CreateMode::Persistent,
            CreateMode::Ephemeral,
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
        ];
        for seed in 0..200u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut tree = DataTree::new();
            let mut log = TxnLog::default();
            let mut bytes = Vec::new();
            write(log.reset(0), &mut bytes);
            let mut trees = vec![tree.clone()];
            let paths = ["/a", "/b", "/a/x", "/a/y", "/b/z"];
            for z in 1..=60u64 {
                let sessions: Vec<u64> = tree.sessions().keys().copied().collect();
                let session = if sessions.is_empty() || rng.gen_bool(0.1) {
                    0
                } else {
                    sessions[rng.gen_range(0..sessions.len())]
                };
                let op = |rng: &mut rand_chacha::ChaCha8Rng| {
                    let path = paths[rng.gen_range(0..paths.len())].to_string();
                    match rng.gen_range(0..3) {
                        0 => ZkOp::Create {
                            path,
                            data: vec![rng.gen()],
                            mode: modes[rng.gen_range(0..4)],
                        },
                        1 => ZkOp::Delete { path, version: -1 },
                        _ => ZkOp::SetData {
                            path,
                            data: vec![rng.gen()],
                            version: -1,
                        },
                    }
                };
                let (sess, txn) = if session == 0 {
                    (
                        z,
                        Txn::CreateSession {
                            timeout_ms: 100,
                            origin: 1,
                            client: 9,
                        },
                    )
                } else if rng.gen_bool(0.1) {
                    (session, Txn::CloseSession)
                } else if rng.gen_bool(0.2) {
                    let ops = (0..3).map(|_| op(&mut rng)).collect();
                    (session, prep(&tree, session, &ZkOp::Multi(ops)))
                } else {
                    (session, prep(&tree, session, &op(&mut rng)))
                };
                let t = LoggedTxn {
                    hdr: TxnHeader {
                        zxid: z,
                        session: sess,
                        cxid: 0,
                    },
                    txn,
                };
                let _ = apply(&mut tree, &t, &mut Vec::new());
                write(vec![log.append(t)], &mut bytes);
                trees.push(tree.clone());
            }
            let start = rng.gen_range(0..60u64);
            let end = rng.gen_range(start..=60);
            let mut files = BTreeMap::new();
            files.insert(LOG_FILE.to_string(), bytes);
            files.insert(
                snap_file(0, start),
                encode_snapshot(&trees[end as usize].labelled_at(start)),
            );
            let r = recover(&files).unwrap();
            assert!(!r.rebase);
            assert_eq!(r.loaded_zxid, start);
            assert_eq!(
                r.tree, tree,
                "seed {seed}: snapshot of {end} labelled {start}, replayed"
            );
        }
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
