//! The log of one partition replica on the simulated disk.
//!
//! Files live under `kafka/<topic>-<partition>/`:
//! - `<base offset, 20 digits>.log`: segments, each a sequence of
//!   checksummed records (see [`crate::codec`]), one per record batch; a new
//!   segment is rolled when the active one passes `segment_bytes`, and the
//!   finished one is flushed (as Kafka does on roll);
//! - `leader-epoch-checkpoint`: the [`EpochCache`] snapshots (fsynced);
//! - `hw-checkpoint`: high-watermark snapshots (fsynced), written
//!   periodically as Kafka's `replication-offset-checkpoint`;
//! - `recovery-point`: recovery-point snapshots (fsynced), written
//!   periodically as Kafka's `recovery-point-offset-checkpoint`: the offset
//!   below which every record is known to have been flushed.
//!
//! Writes go to the page cache and the in-memory view at once; fsync
//! follows the flush policy (`flush.messages`, `flush.ms`; by default never,
//! relying on replication, as Kafka does). Recovery is Kafka's
//! (`LogLoader`): it loads the leader-epoch checkpoint, scans the segments,
//! truncates a torn or corrupt tail (and drops every later segment), adds
//! to the epoch cache the epochs newer than its latest found in the batches
//! from the segment holding the recovery point on (the only ones Kafka
//! re-reads after an unclean shutdown), cuts the cache at the recovered log
//! end, and rebuilds the
//! idempotent-producer state. A checkpoint that fails its checksum fails
//! the log directory (the broker halts), as a malformed one does in Kafka.
//! Unlike Kafka, recovery also checks the batches below the recovery point
//! (Kafka would find corruption there only when reading it).

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{decode_records, encode_record, get_u64};
use crate::disk::DiskRequest;
use crate::kafka::epoch::{CorruptCheckpoint, EpochCache};
use crate::kafka::types::{Batch, Tp};
use crate::time::SimTime;

/// How many recent batches per producer are remembered for duplicate
/// detection (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`): the
/// idempotent producer keeps at most this many batches in flight per
/// partition, so a retry always finds its original here.
pub const PRODUCER_BATCHES: usize = 5;

/// The log settings of a broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll a new segment once the active one holds this many bytes.
    pub segment_bytes: u64,
    /// fsync after this many appended records (`flush.messages`); `None`
    /// never (the default).
    pub flush_messages: Option<u64>,
    /// fsync when the oldest unflushed record is this old (`flush.ms`);
    /// `None` never (the default).
    pub flush_ms: Option<u64>,
    /// Delete the oldest segments while the log without them still holds
    /// this many bytes (`retention.bytes`, per partition); `None` keeps
    /// everything (Kafka's default of -1). Only whole, inactive segments
    /// below the high watermark go, and the log start offset moves to the
    /// next segment's base.
    pub retention_bytes: Option<u64>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 * 1024,
            flush_messages: None,
            flush_ms: None,
            retention_bytes: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Segment {
    base: u64,
    file: String,
    size: u64,
}

/// Planted bugs that live in the log itself (all off: Kafka as it is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogBugs {
    /// `kafka_epoch_cache_not_truncated` (KAFKA-10706): a truncation at or
    /// past the log end leaves the epoch cache alone, so an epoch entry at
    /// the log end (a leader that appended nothing) stays.
    pub epoch_cache_not_truncated: bool,
}

/// What an idempotent batch is, relative to its producer's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// Next in sequence (or not idempotent): append it.
    Append,
    /// Already in the log at this base offset: acknowledge, do not append.
    Duplicate(u64),
    /// A gap, a batch older than the window, or a new epoch not starting
    /// at 0: reject with OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder,
    /// An older producer epoch than the log's: INVALID_PRODUCER_EPOCH.
    InvalidEpoch,
}

/// One producer's state in one partition (Kafka's `ProducerStateEntry`):
/// its latest epoch and the metadata of its last batches in that epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer epoch of the latest batch.
    pub epoch: u16,
    /// `(base_seq, last_seq, base_offset)` of the last
    /// [`PRODUCER_BATCHES`] batches of `epoch`, oldest first.
    pub batches: VecDeque<(i64, i64, u64)>,
}

/// Why a log could not be opened: Kafka takes its log directory offline.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {source}")]
pub struct LogDirFailure {
    /// The checkpoint file that could not be read.
    pub file: String,
    /// What was wrong with it.
    pub source: CorruptCheckpoint,
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from torn or corrupt tails (including dropped segments).
    pub truncated_bytes: u64,
    /// Whether any tail was torn or corrupt.
    pub dropped_tail: bool,
}

/// One partition replica's log.
#[derive(Clone, Debug)]
pub struct PartitionLog {
    dir: String,
    cfg: LogConfig,
    batches: Vec<Batch>,
    segments: Vec<Segment>,
    epochs: EpochCache,
    hw: u64,
    unflushed: u64,
    first_unflushed: Option<SimTime>,
    /// The segment file and the log end offset of each `flush` whose
    /// fsync the host has not claimed yet (see
    /// [`PartitionLog::take_flush_mark`]).
    flush_marks: VecDeque<(String, u64)>,
    /// Records below this must be on disk before they count: the end of
    /// the last append whose `flush.messages` flush runs in the append path
    /// (as Kafka's does, synchronously, before the append returns).
    sync_wanted: u64,
    /// Records below this are known to be on disk.
    synced: u64,
    /// Kafka's recovery point: records below it were flushed, so recovery
    /// after an unclean shutdown starts at the segment holding it.
    recovery_point: u64,
    /// The log start offset: no offset below it may be read (moved by
    /// retention, DeleteRecords, a leader's own start, or a follower that
    /// starts over at its leader's start).
    log_start: u64,
    /// producer id -> its epoch and recent batches, rebuilt from the log.
    producers: BTreeMap<u64, ProducerEntry>,
    /// The planted bugs of the log.
    bugs: LogBugs,
}

fn seg_name(dir: &str, base: u64) -> String {
    format!("{dir}/{base:020}.log")
}

/// Appends one offset snapshot to an offset checkpoint file, fsynced.
fn write_offset_checkpoint(file: String, offset: u64, out: &mut Vec<DiskRequest>) {
    out.push(DiskRequest::Append {
        file: file.clone(),
        data: encode_record(&offset.to_le_bytes()),
    });
    out.push(DiskRequest::Fsync { file });
}

/// The last offset in an offset checkpoint file (0 when there is none; a
/// torn last snapshot leaves the one before it), or the failure of a
/// malformed one.
fn read_offset_checkpoint(
    files: &BTreeMap<String, Vec<u8>>,
    file: &str,
) -> Result<u64, LogDirFailure> {
    let Some(bytes) = files.get(file) else {
        return Ok(0);
    };
    let d = decode_records(bytes);
    let fail = || LogDirFailure {
        file: file.to_string(),
        source: CorruptCheckpoint { at: d.valid_len },
    };
    if d.corrupt {
        return Err(fail());
    }
    match d.records.last() {
        None => Ok(0),
        Some(p) => get_u64(p, 0).ok_or_else(fail),
    }
}

impl PartitionLog {
    /// The directory (file-name prefix) of a partition's files.
    pub fn dir_of(tp: &Tp) -> String {
        format!("kafka/{}-{}", tp.topic, tp.partition)
    }

    /// Opens (recovers) the log of `tp` from the durable `files`, pushing
    /// the disk requests that repair it into `out`. Recovery keeps every
    /// valid batch, past the checkpointed high watermark too. After a
    /// `clean` shutdown Kafka recovers no segment: the epochs come from the
    /// checkpoint alone and the recovery point is the log end.
    pub fn open(
        tp: &Tp,
        files: &BTreeMap<String, Vec<u8>>,
        cfg: LogConfig,
        bugs: LogBugs,
        clean: bool,
        out: &mut Vec<DiskRequest>,
    ) -> Result<(PartitionLog, Recovery), LogDirFailure> {
        let dir = PartitionLog::dir_of(tp);
        let mut log = PartitionLog {
            dir: dir.clone(),
            cfg,
            batches: Vec::new(),
            segments: Vec::new(),
            epochs: EpochCache::new(),
            hw: 0,
            unflushed: 0,
            first_unflushed: None,
            flush_marks: VecDeque::new(),
            sync_wanted: 0,
            synced: 0,
            recovery_point: 0,
            log_start: 0,
            producers: BTreeMap::new(),
            bugs,
        };
        // Kafka writes its checkpoints to a temporary file and renames it,
        // so a crash never leaves half of one; kzsim appends snapshots, so
        // a torn last snapshot is cut off before the next one is written
        // after it (else the next start would read garbage there).
        for file in [
            log.epoch_file(),
            log.recovery_point_file(),
            log.log_start_file(),
            log.hw_file(),
        ] {
            if let Some(bytes) = files.get(&file) {
                let d = decode_records(bytes);
                if d.dropped_tail && !d.corrupt {
                    out.push(DiskRequest::Truncate {
                        file,
                        len: d.valid_len,
                    });
                }
            }
        }
        // Kafka builds the epoch cache from its checkpoint first.
        let epoch_file = log.epoch_file();
        if let Some(bytes) = files.get(&epoch_file) {
            log.epochs = EpochCache::decode(bytes).map_err(|source| LogDirFailure {
                file: epoch_file.clone(),
                source,
            })?;
        }
        let rp_file = log.recovery_point_file();
        let checkpointed_rp = read_offset_checkpoint(files, &rp_file)?;
        let mut rec = Recovery::default();
        let prefix = format!("{dir}/");
        let mut segs: Vec<(u64, &String, &Vec<u8>)> = files
            .iter()
            .filter_map(|(name, data)| {
                let rest = name.strip_prefix(&prefix)?.strip_suffix(".log")?;
                Some((rest.parse::<u64>().ok()?, name, data))
            })
            .collect();
        segs.sort();
        // Kafka's log start is the checkpointed one, or the first
        // segment's base if retention deleted past it before the
        // checkpoint was written.
        let checkpointed_start = read_offset_checkpoint(files, &log.log_start_file())?;
        log.log_start = segs
            .first()
            .map_or(checkpointed_start, |s| s.0.max(checkpointed_start));
        let first_base = segs.first().map_or(0, |s| s.0);
        // Kafka recovers the segments from the one holding the recovery
        // point on; the batches of those give the cache their epochs.
        let recover_from = if clean {
            u64::MAX
        } else {
            segs.iter()
                .map(|s| s.0)
                .filter(|&base| base <= checkpointed_rp)
                .max()
                .unwrap_or(0)
        };
        let mut broken = false;
        for (base, name, data) in segs {
            let expected = if log.segments.is_empty() {
                first_base
            } else {
                log.leo()
            };
            if broken || base != expected {
                // Unreachable after an earlier cut (or a gap): drop it.
                rec.truncated_bytes += data.len() as u64;
                rec.dropped_tail = true;
                broken = true;
                out.push(DiskRequest::Delete { file: name.clone() });
                continue;
            }
            let d = decode_records(data);
            let mut pos = 0u64;
            for r in &d.records {
                let next = if log.batches.is_empty() {
                    base
                } else {
                    log.leo()
                };
                match Batch::decode(r) {
                    Some(b) if b.base_offset == next && !b.values.is_empty() => {
                        pos += r.len() as u64 + 8;
                        // `LogSegment.recover`: only an epoch newer than
                        // the cache's latest is added.
                        if base >= recover_from && log.epochs.latest().is_none_or(|e| b.epoch > e) {
                            log.epochs.assign(b.epoch, b.base_offset);
                        }
                        log.batches.push(b);
                    }
                    _ => break,
                }
            }
            log.segments.push(Segment {
                base,
                file: name.clone(),
                size: pos,
            });
            if pos < data.len() as u64 {
                rec.truncated_bytes += data.len() as u64 - pos;
                rec.dropped_tail = true;
                broken = true;
                out.push(DiskRequest::Truncate {
                    file: name.clone(),
                    len: pos,
                });
                out.push(DiskRequest::Fsync { file: name.clone() });
            }
        }
        // A log start past everything recovered (segments lost or cut
        // below a checkpointed start): Kafka starts the log over there.
        if log.log_start
            > log
                .batches
                .last()
                .map_or(log.log_start, |b| b.next_offset())
        {
            let start = log.log_start;
            log.truncate_fully_and_start_at(start, out);
        } else {
            // (The cache is written back below.)
            log.epochs.truncate_from_start(log.log_start);
        }
        // The cache may name epochs past what recovery kept (a tail cut
        // for corruption, or records lost with the page cache).
        let leo = log.leo();
        log.epochs.truncate_from_end(leo);
        log.hw = read_offset_checkpoint(files, &log.hw_file())?.min(leo);
        log.recovery_point = if clean { leo } else { checkpointed_rp.min(leo) };
        log.rebuild_producers();
        log.write_epochs(out);
        // What recovery read back is what the disk holds.
        log.synced = log.leo();
        log.sync_wanted = log.leo();
        Ok((log, rec))
    }

    fn epoch_file(&self) -> String {
        format!("{}/leader-epoch-checkpoint", self.dir)
    }

    fn hw_file(&self) -> String {
        format!("{}/hw-checkpoint", self.dir)
    }

    fn recovery_point_file(&self) -> String {
        format!("{}/recovery-point", self.dir)
    }

    fn log_start_file(&self) -> String {
        format!("{}/log-start-offset", self.dir)
    }

    /// The log start offset (see the field).
    pub fn log_start(&self) -> u64 {
        self.log_start
    }

    /// The base offset of the oldest segment (the log start when there is
    /// none).
    pub fn first_segment_base(&self) -> u64 {
        self.segments.first().map_or(self.log_start, |s| s.base)
    }

    /// Writes a log-start-offset checkpoint (fsynced), as Kafka's log
    /// manager does every `log.flush.start.offset.checkpoint.interval.ms`.
    pub fn checkpoint_log_start(&mut self, out: &mut Vec<DiskRequest>) {
        write_offset_checkpoint(self.log_start_file(), self.log_start, out);
    }

    /// Moves the log start offset up to `offset` if that is further and
    /// not past the high watermark (Kafka's `maybeIncrementLogStartOffset`,
    /// for DeleteRecords and for a follower following its leader's start),
    /// then deletes the segments wholly below it. Whether it moved.
    pub fn increment_log_start(&mut self, offset: u64, out: &mut Vec<DiskRequest>) -> bool {
        if offset <= self.log_start || offset > self.hw {
            return false;
        }
        self.log_start = offset;
        self.delete_segments_below_start(out);
        true
    }

    /// Kafka's `deleteLogStartOffsetBreachedSegments`: a segment goes when
    /// the next one starts at or below the log start (never the active
    /// one), and its batches with it; the epoch cache forgets what lies
    /// below the start (`truncateFromStart`).
    fn delete_segments_below_start(&mut self, out: &mut Vec<DiskRequest>) {
        while self.segments.len() > 1 && self.segments[1].base <= self.log_start {
            let s = self.segments.remove(0);
            out.push(DiskRequest::Delete { file: s.file });
        }
        let first = self.segments.first().map_or(self.log_start, |s| s.base);
        let keep_from = self.batches.partition_point(|b| b.base_offset < first);
        if keep_from > 0 {
            self.batches.drain(..keep_from);
            self.rebuild_producers();
        }
        if self.epochs.truncate_from_start(self.log_start) {
            self.write_epochs(out);
        }
    }

    /// Size-based retention (`retention.bytes`): deletes the oldest
    /// inactive segments below the high watermark while the rest still
    /// holds the retained size, moving the log start to the first kept
    /// segment's base (Kafka's `deleteRetentionSizeBreachedSegments`).
    /// Whether anything went.
    pub fn apply_retention(&mut self, out: &mut Vec<DiskRequest>) -> bool {
        let Some(keep) = self.cfg.retention_bytes else {
            return false;
        };
        let mut total: u64 = self.segments.iter().map(|s| s.size).sum();
        let mut next_start = self.log_start;
        for w in self.segments.windows(2) {
            let (seg, next) = (&w[0], &w[1]);
            if total - seg.size < keep || next.base > self.hw {
                break;
            }
            total -= seg.size;
            next_start = next.base;
        }
        if next_start <= self.log_start {
            return false;
        }
        tracing::info!(
            "kafka: {}: retention moves the log start from {} to {next_start}",
            self.dir,
            self.log_start
        );
        self.log_start = next_start;
        self.delete_segments_below_start(out);
        true
    }

    /// Kafka's `truncateFullyAndStartAt`: a follower whose log ends below
    /// its leader's log start drops every segment, its epoch cache and its
    /// producer state, and starts an empty log at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: u64, out: &mut Vec<DiskRequest>) {
        tracing::info!(
            "kafka: {}: truncating fully (log {}..{}) and starting at {offset}",
            self.dir,
            self.log_start,
            self.leo()
        );
        for s in self.segments.drain(..) {
            out.push(DiskRequest::Delete { file: s.file });
        }
        self.batches.clear();
        self.log_start = offset;
        self.epochs = EpochCache::new();
        self.write_epochs(out);
        self.hw = offset;
        self.synced = offset;
        self.sync_wanted = offset;
        self.recovery_point = offset;
        self.unflushed = 0;
        self.first_unflushed = None;
        self.producers.clear();
        self.checkpoint_log_start(out);
    }

    /// Kafka's recovery point (see the module documentation).
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }

    /// Writes a recovery-point checkpoint (fsynced), as Kafka's log
    /// manager does every `log.flush.offset.checkpoint.interval.ms`.
    pub fn checkpoint_recovery_point(&mut self, out: &mut Vec<DiskRequest>) {
        write_offset_checkpoint(self.recovery_point_file(), self.recovery_point, out);
    }

    /// The log end offset (next offset to be written).
    pub fn leo(&self) -> u64 {
        self.batches
            .last()
            .map(|b| b.next_offset())
            .unwrap_or(self.log_start)
    }

    /// The high watermark this replica knows.
    pub fn hw(&self) -> u64 {
        self.hw
    }

    /// Sets the high watermark (clamped to the log end).
    pub fn set_hw(&mut self, hw: u64) {
        self.hw = hw.min(self.leo());
    }

    /// The epoch cache.
    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }

    /// Every batch in the log.
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// The latest epoch of the log (from the cache).
    pub fn latest_epoch(&self) -> Option<u32> {
        self.epochs.latest()
    }

    fn write_epochs(&mut self, out: &mut Vec<DiskRequest>) {
        let file = self.epoch_file();
        out.push(DiskRequest::Append {
            file: file.clone(),
            data: self.epochs.encode(),
        });
        out.push(DiskRequest::Fsync { file });
    }

    /// A new leader epoch starts at the log end (the replica becomes its
    /// leader); checkpointed.
    pub fn start_epoch(&mut self, epoch: u32, out: &mut Vec<DiskRequest>) {
        let leo = self.leo();
        if self.epochs.assign(epoch, leo) {
            self.write_epochs(out);
        }
    }

    /// Writes a high-watermark checkpoint (fsynced).
    pub fn checkpoint_hw(&mut self, out: &mut Vec<DiskRequest>) {
        write_offset_checkpoint(self.hw_file(), self.hw, out);
    }

    /// Classifies an idempotent batch from a client against the producer
    /// state, as Kafka's leader does before appending
    /// (`Log.analyzeAndValidateProducerState`: a duplicate of one of the
    /// cached batches of the same epoch first, then
    /// `ProducerAppendInfo.checkProducerEpoch` and `checkSequence`).
    /// `window` is how many of the cached batches count (Kafka: all
    /// [`PRODUCER_BATCHES`]; fewer only for a planted bug). Unknown
    /// producers are accepted at any sequence, as in Kafka 2.5+.
    pub fn check_sequence(
        &self,
        pid: u64,
        epoch: u16,
        base_seq: i64,
        count: usize,
        window: usize,
    ) -> SeqCheck {
        if pid == 0 || base_seq < 0 {
            return SeqCheck::Append;
        }
        let last_seq = base_seq + count as i64 - 1;
        let Some(entry) = self.producers.get(&pid) else {
            // No state for the producer (never seen, or its batches were
            // truncated away): Kafka 2.5+ (KIP-360) accepts any sequence
            // (`ProducerAppendInfo.checkSequence`: no producer epoch yet);
            // brokers before 2.5 answered UNKNOWN_PRODUCER_ID unless it was 0.
            return SeqCheck::Append;
        };
        if epoch == entry.epoch {
            let skip = entry.batches.len().saturating_sub(window);
            if let Some(&(_, _, off)) = entry
                .batches
                .iter()
                .skip(skip)
                .find(|&&(b, l, _)| b == base_seq && l == last_seq)
            {
                return SeqCheck::Duplicate(off);
            }
        }
        if epoch < entry.epoch {
            return SeqCheck::InvalidEpoch;
        }
        if epoch > entry.epoch {
            // A new epoch restarts the sequence.
            return if base_seq == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder
            };
        }
        let last = entry.batches.back().map(|r| r.1).unwrap_or(-1);
        if base_seq == last + 1 {
            SeqCheck::Append
        } else {
            SeqCheck::OutOfOrder
        }
    }

    /// The state of producer `pid`, if the log holds any.
    pub fn producer(&self, pid: u64) -> Option<&ProducerEntry> {
        self.producers.get(&pid)
    }

    /// Records batch `i` in its producer's state (Kafka's
    /// `ProducerStateEntry.addBatch`, also for replicated and recovered
    /// batches, which are not validated): a new epoch clears the batches.
    fn note_producer(&mut self, i: usize) {
        let b = &self.batches[i];
        if b.producer_id == 0 || b.base_seq < 0 {
            return;
        }
        let entry = self.producers.entry(b.producer_id).or_default();
        if entry.epoch != b.producer_epoch {
            entry.epoch = b.producer_epoch;
            entry.batches.clear();
        }
        entry
            .batches
            .push_back((b.base_seq, b.last_seq(), b.base_offset));
        if entry.batches.len() > PRODUCER_BATCHES {
            entry.batches.pop_front();
        }
    }

    fn rebuild_producers(&mut self) {
        self.producers.clear();
        for i in 0..self.batches.len() {
            self.note_producer(i);
        }
    }

    /// Appends `batch` at the log end (its `base_offset` is overwritten with
    /// the log end); returns the base offset. `now` drives `flush.ms`.
    pub fn append(&mut self, mut batch: Batch, now: SimTime, out: &mut Vec<DiskRequest>) -> u64 {
        assert!(!batch.values.is_empty(), "empty batch");
        let base = self.leo();
        batch.base_offset = base;
        // As Kafka's append: every batch offers its epoch to the cache
        // (`maybeAssignEpochStartOffset`), which keeps only what changes it.
        if self.epochs.assign(batch.epoch, base) {
            self.write_epochs(out);
        }
        let bytes = encode_record(&batch.encode());
        let roll = match self.segments.last() {
            None => true,
            Some(s) => s.size > 0 && s.size + bytes.len() as u64 > self.cfg.segment_bytes,
        };
        if roll {
            if let Some(s) = self.segments.last() {
                // Kafka flushes a segment when it rolls past it, and its
                // recovery point moves to the new segment once that is done.
                out.push(DiskRequest::Fsync {
                    file: s.file.clone(),
                });
                self.flush_marks.push_back((s.file.clone(), base));
            }
            let file = seg_name(&self.dir, base);
            self.segments.push(Segment {
                base,
                file,
                size: 0,
            });
        }
        let seg = self.segments.last_mut().expect("segment");
        seg.size += bytes.len() as u64;
        out.push(DiskRequest::Append {
            file: seg.file.clone(),
            data: bytes,
        });
        self.unflushed += batch.values.len() as u64;
        self.first_unflushed.get_or_insert(now);
        self.batches.push(batch);
        self.note_producer(self.batches.len() - 1);
        if self.cfg.flush_messages.is_some_and(|n| self.unflushed >= n) {
            self.flush(out);
            self.sync_wanted = self.leo();
        }
        base
    }

    /// fsyncs the active segment if `flush.ms` has passed since the oldest
    /// unflushed append.
    pub fn maybe_flush(&mut self, now: SimTime, out: &mut Vec<DiskRequest>) {
        if let (Some(ms), Some(t)) = (self.cfg.flush_ms, self.first_unflushed) {
            if now.ms_since(t) >= ms {
                self.flush(out);
            }
        }
    }

    /// fsyncs the active segment.
    pub fn flush(&mut self, out: &mut Vec<DiskRequest>) {
        if let Some(s) = self.segments.last() {
            out.push(DiskRequest::Fsync {
                file: s.file.clone(),
            });
            self.flush_marks.push_back((s.file.clone(), self.leo()));
        }
        self.unflushed = 0;
        self.first_unflushed = None;
    }

    /// Cuts the log to end at or below `offset` (a batch containing
    /// `offset` goes entirely, as in Kafka), and the epoch cache with it.
    /// A truncation at or past the log end changes no record but still
    /// drops epoch entries that start at the log end (KAFKA-10706: a
    /// replica that became leader and appended nothing holds such an
    /// entry, which would otherwise name an epoch its log never had).
    pub fn truncate_to(&mut self, offset: u64, out: &mut Vec<DiskRequest>) {
        if offset >= self.leo() {
            let leo = self.leo();
            if !self.bugs.epoch_cache_not_truncated && self.epochs.truncate_from_end(leo) {
                self.write_epochs(out);
            }
            return;
        }
        tracing::info!(
            "kafka: {}: truncating the log from {} to {offset}",
            self.dir,
            self.leo()
        );
        let keep = self
            .batches
            .iter()
            .position(|b| b.next_offset() > offset)
            .unwrap_or(self.batches.len());
        self.batches.truncate(keep);
        let new_leo = self.leo();
        // Drop whole segments at or past the new end, then cut the last.
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.base >= new_leo) {
            let s = self.segments.pop().expect("segment");
            out.push(DiskRequest::Delete { file: s.file });
        }
        if let Some(seg) = self.segments.last_mut() {
            let size: u64 = self
                .batches
                .iter()
                .filter(|b| b.base_offset >= seg.base)
                .map(|b| b.encode().len() as u64 + 8)
                .sum();
            if size != seg.size {
                seg.size = size;
                out.push(DiskRequest::Truncate {
                    file: seg.file.clone(),
                    len: size,
                });
            }
        }
        if self.epochs.truncate_from_end(new_leo) {
            self.write_epochs(out);
        }
        self.hw = self.hw.min(new_leo);
        self.synced = self.synced.min(new_leo);
        self.recovery_point = self.recovery_point.min(new_leo);
        self.sync_wanted = self.sync_wanted.min(new_leo);
        self.rebuild_producers();
    }

    /// The active segment's file, if there is one.
    pub fn active_file(&self) -> Option<&str> {
        self.segments.last().map(|s| s.file.as_str())
    }

    /// The log end offset covered by the fsync of `file` the host is
    /// handing to the disk, if that fsync is the oldest unclaimed `flush`
    /// (and not, say, the fsync of a segment being rolled past); the host
    /// reports it back with [`PartitionLog::note_synced`] when that fsync
    /// completes. Matched by the file the flush was for, not the active
    /// segment at the time the host looks: one step may flush a segment
    /// and then roll to a new one (a follower appending several fetched
    /// batches), and that flush's mark must not be left behind for the
    /// next segment's fsync to take.
    pub fn take_flush_mark(&mut self, file: &str) -> Option<u64> {
        match self.flush_marks.front() {
            Some((f, _)) if f == file => self.flush_marks.pop_front().map(|m| m.1),
            _ => None,
        }
    }

    /// An fsync covering records below `end` completed.
    pub fn note_synced(&mut self, end: u64) {
        self.synced = self.synced.max(end.min(self.leo()));
        self.recovery_point = self.recovery_point.max(end.min(self.leo()));
    }

    /// The end of the records known to be on disk.
    pub fn synced(&self) -> u64 {
        self.synced.min(self.leo())
    }

    /// Whether an append-path flush is still waiting for its fsync.
    pub fn sync_pending(&self) -> bool {
        self.synced < self.sync_wanted
    }

    /// The end of the records that count for acknowledgement and
    /// replication: the log end, or while an append-path flush is waiting
    /// for the disk, what is known durable.
    pub fn ack_leo(&self) -> u64 {
        if self.sync_pending() {
            self.synced
        } else {
            self.leo()
        }
    }

    /// Up to `max` batches holding offsets `>= from` and `< until`.
    pub fn read(&self, from: u64, until: u64, max: usize) -> Vec<Batch> {
        let from = from.max(self.log_start);
        let start = self.batches.partition_point(|b| b.next_offset() <= from);
        self.batches[start..]
            .iter()
            .take_while(|b| b.base_offset < until)
            .take(max)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recovers partition t-0 from `files` with the faithful defaults.
    fn reopen(
        files: &BTreeMap<String, Vec<u8>>,
        out: &mut Vec<DiskRequest>,
    ) -> (PartitionLog, Recovery) {
        PartitionLog::open(
            &Tp::new("t", 0),
            files,
            small(),
            LogBugs::default(),
            false,
            out,
        )
        .expect("opens")
    }

    fn apply(files: &mut BTreeMap<String, Vec<u8>>, out: Vec<DiskRequest>) {
        for r in out {
            match r {
                DiskRequest::Append { file, data } => files.entry(file).or_default().extend(data),
                DiskRequest::Truncate { file, len } => {
                    files.entry(file).or_default().truncate(len as usize)
                }
                DiskRequest::Delete { file } => {
                    files.remove(&file);
                }
                _ => {}
            }
        }
    }

    fn batch(epoch: u32, vals: &[&str]) -> Batch {
        Batch {
            base_offset: 0,
            epoch,
            producer_id: 0,
            producer_epoch: 0,
            base_seq: -1,
            values: vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
        }
    }

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 120,
            ..LogConfig::default()
        }
    }

    fn build(n: usize) -> (BTreeMap<String, Vec<u8>>, PartitionLog) {
        let tp = Tp::new("t", 0);
        let mut files = BTreeMap::new();
        let mut out = Vec::new();
        let (mut log, _) =
            PartitionLog::open(&tp, &files, small(), LogBugs::default(), false, &mut out)
                .expect("opens");
        for i in 0..n {
            log.append(
                batch(1 + i as u32 / 4, &["a", "bb"]),
                SimTime::ZERO,
                &mut out,
            );
        }
        apply(&mut files, out);
        (files, log)
    }

    #[test]
    fn segments_roll_and_recover() {
        let (files, log) = build(10);
        assert_eq!(log.leo(), 20);
        let segs = files.keys().filter(|f| f.ends_with(".log")).count();
        assert!(segs > 2, "{files:?}");
        let mut out = Vec::new();
        let (back, rec) = reopen(&files, &mut out);
        assert_eq!(rec, Recovery::default());
        assert_eq!(back.batches(), log.batches());
        assert_eq!(back.epochs(), log.epochs());
        assert_eq!(back.read(5, 20, 100)[0].base_offset, 4);
    }

    #[test]
    fn retention_deletes_old_segments_below_the_high_watermark_only() {
        let (mut files, mut log) = build(10);
        log.cfg.retention_bytes = Some(150);
        let sizes: Vec<(u64, u64)> = log.segments.iter().map(|s| (s.base, s.size)).collect();
        let mut out = Vec::new();
        // Nothing committed yet: nothing may go.
        assert!(!log.apply_retention(&mut out));
        log.set_hw(20);
        assert!(log.apply_retention(&mut out));
        let kept: u64 = log.segments.iter().map(|s| s.size).sum();
        assert!(kept >= 150, "{sizes:?}");
        // One more segment would have left less than the retained size.
        assert!(kept - log.segments[0].size < 150, "{sizes:?}");
        let start = log.segments[0].base;
        assert!(start > 0);
        assert_eq!(log.log_start(), start);
        assert_eq!(log.batches()[0].base_offset, start);
        assert_eq!(log.epochs().entries()[0].1, start);
        log.checkpoint_log_start(&mut out);
        apply(&mut files, out);
        // Recovery starts at the first kept segment.
        let mut out = Vec::new();
        let (back, rec) = reopen(&files, &mut out);
        assert_eq!(rec, Recovery::default());
        assert_eq!(back.log_start(), start);
        assert_eq!(back.leo(), 20);
        assert_eq!(back.batches(), log.batches());
    }

    #[test]
    fn the_log_start_moves_only_up_and_not_past_the_high_watermark() {
        let (mut files, mut log) = build(10);
        log.set_hw(9);
        let mut out = Vec::new();
        assert!(!log.increment_log_start(12, &mut out));
        assert!(log.increment_log_start(9, &mut out));
        assert!(!log.increment_log_start(5, &mut out));
        assert_eq!(log.log_start(), 9);
        // Segments wholly below the start are gone, the one holding it
        // stays whole.
        assert!(log.segments[0].base <= 9 && log.segments.get(1).is_none_or(|s| s.base > 9));
        apply(&mut files, out);
        // Without its checkpoint the start is the first segment's base
        // (Kafka's recovery takes the larger of the two).
        let mut out = Vec::new();
        let (back, _) = reopen(&files, &mut out);
        assert_eq!(back.log_start(), log.segments[0].base);
    }

    #[test]
    fn a_follower_starts_over_at_its_leaders_log_start() {
        let (mut files, mut log) = build(3);
        let mut out = Vec::new();
        log.truncate_fully_and_start_at(40, &mut out);
        assert_eq!((log.log_start(), log.leo(), log.hw()), (40, 40, 40));
        assert!(log.epochs().entries().is_empty());
        let base = log.append(batch(7, &["x"]), SimTime::ZERO, &mut out);
        assert_eq!(base, 40);
        apply(&mut files, out);
        let mut out = Vec::new();
        let (back, rec) = reopen(&files, &mut out);
        assert_eq!(rec, Recovery::default());
        assert_eq!((back.log_start(), back.leo()), (40, 41));
        assert_eq!(back.epochs().entries(), &[(7, 40)]);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let (mut files, _) = build(10);
        let last = files.keys().rfind(|f| f.ends_with(".log")).unwrap().clone();
        let f = files.get_mut(&last).unwrap();
        let n = f.len();
        f.truncate(n - 3);
        let mut out = Vec::new();
        let (back, rec) = reopen(&files, &mut out);
        assert!(rec.dropped_tail);
        assert_eq!(back.leo(), 18);
        apply(&mut files, out);
        let mut out = Vec::new();
        let (again, rec) = reopen(&files, &mut out);
        assert_eq!(rec, Recovery::default());
        assert_eq!(again.leo(), 18);
    }

    #[test]
    fn corrupt_middle_segment_drops_the_rest() {
        let (mut files, _) = build(10);
        let segs: Vec<String> = files
            .keys()
            .filter(|f| f.ends_with(".log"))
            .cloned()
            .collect();
        let f = files.get_mut(&segs[1]).unwrap();
        let n = f.len();
        f[n - 1] ^= 0x10;
        let mut out = Vec::new();
        let (back, rec) = reopen(&files, &mut out);
        assert!(rec.dropped_tail);
        assert!(back.leo() < 20);
        // The epoch cache never points past the log end.
        assert!(back.epochs().entries().iter().all(|&(_, s)| s < back.leo()));
        apply(&mut files, out);
        assert!(!files.contains_key(segs.last().unwrap()));
    }

    #[test]
    fn truncate_cuts_log_and_epochs() {
        let (mut files, mut log) = build(10);
        let mut out = Vec::new();
        log.truncate_to(9, &mut out);
        assert_eq!(log.leo(), 8);
        assert_eq!(log.epochs().latest(), Some(1));
        apply(&mut files, out);
        let mut out = Vec::new();
        let (back, _) = reopen(&files, &mut out);
        assert_eq!(back.batches(), log.batches());
        assert_eq!(back.epochs(), log.epochs());
    }

    #[test]
    fn truncation_at_the_log_end_drops_an_epoch_without_records() {
        // KAFKA-10706: the replica became leader at epoch 9 (an entry at
        // its log end) and appended nothing before following another.
        for bug in [false, true] {
            let (_, mut log) = build(3);
            log.bugs.epoch_cache_not_truncated = bug;
            let mut out = Vec::new();
            log.start_epoch(9, &mut out);
            assert_eq!(log.latest_epoch(), Some(9));
            let mut out = Vec::new();
            log.truncate_to(log.leo(), &mut out);
            if bug {
                assert_eq!(log.latest_epoch(), Some(9));
                assert!(out.is_empty());
            } else {
                assert_eq!(log.latest_epoch(), Some(1));
                assert!(!out.is_empty(), "the checkpoint is rewritten");
            }
            assert_eq!(log.leo(), 6);
        }
    }

    #[test]
    fn recovery_keeps_records_past_the_checkpointed_hw() {
        let (mut files, mut log) = build(4);
        log.set_hw(4);
        let mut out = Vec::new();
        log.checkpoint_hw(&mut out);
        apply(&mut files, out);
        let mut out = Vec::new();
        let (ok, _) = reopen(&files, &mut out);
        assert_eq!((ok.leo(), ok.hw()), (8, 4));
    }

    fn idem(pid: u64, epoch: u16, seq: i64, vals: &[&str]) -> Batch {
        let mut b = batch(1, vals);
        b.producer_id = pid;
        b.producer_epoch = epoch;
        b.base_seq = seq;
        b
    }

    #[test]
    fn idempotent_sequences() {
        let (_, mut log) = build(0);
        let mut out = Vec::new();
        let w = PRODUCER_BATCHES;
        assert_eq!(log.check_sequence(7, 0, 0, 2, w), SeqCheck::Append);
        let off = log.append(idem(7, 0, 0, &["x", "y"]), SimTime::ZERO, &mut out);
        assert_eq!(log.check_sequence(7, 0, 0, 2, w), SeqCheck::Duplicate(off));
        assert_eq!(log.check_sequence(7, 0, 3, 1, w), SeqCheck::OutOfOrder);
        assert_eq!(log.check_sequence(7, 0, 2, 1, w), SeqCheck::Append);
        // An unknown producer may start anywhere (Kafka 2.5+).
        assert_eq!(log.check_sequence(8, 0, 1, 1, w), SeqCheck::Append);
        assert_eq!(log.check_sequence(8, 0, 0, 1, w), SeqCheck::Append);
        // Producer state survives recovery (rebuilt from the log).
        let mut files = BTreeMap::new();
        apply(&mut files, out);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.check_sequence(7, 0, 0, 2, w), SeqCheck::Duplicate(off));
    }

    #[test]
    fn the_dedup_window_is_the_last_five_batches() {
        let (_, mut log) = build(0);
        let mut out = Vec::new();
        let w = PRODUCER_BATCHES;
        let offs: Vec<u64> = (0..6)
            .map(|i| log.append(idem(7, 0, i, &["v"]), SimTime::ZERO, &mut out))
            .collect();
        // Batches 1..=5 are remembered, answered with their own offsets.
        for i in 1..6 {
            assert_eq!(
                log.check_sequence(7, 0, i, 1, w),
                SeqCheck::Duplicate(offs[i as usize])
            );
        }
        // The sixth-last is out of the window: OUT_OF_ORDER_SEQUENCE.
        assert_eq!(log.check_sequence(7, 0, 0, 1, w), SeqCheck::OutOfOrder);
        // A window of one (kafka_dedup_window_one) knows the last only.
        assert_eq!(
            log.check_sequence(7, 0, 5, 1, 1),
            SeqCheck::Duplicate(offs[5])
        );
        assert_eq!(log.check_sequence(7, 0, 4, 1, 1), SeqCheck::OutOfOrder);
        assert_eq!(log.producer(7).unwrap().batches.len(), PRODUCER_BATCHES);
        // A duplicate's range must match a cached batch exactly.
        assert_eq!(log.check_sequence(7, 0, 4, 2, w), SeqCheck::OutOfOrder);
    }

    #[test]
    fn producer_epochs_fence_and_restart_sequences() {
        let (_, mut log) = build(0);
        let mut out = Vec::new();
        let w = PRODUCER_BATCHES;
        log.append(idem(7, 0, 0, &["a"]), SimTime::ZERO, &mut out);
        log.append(idem(7, 0, 1, &["b"]), SimTime::ZERO, &mut out);
        // A newer epoch must start at 0.
        assert_eq!(log.check_sequence(7, 1, 2, 1, w), SeqCheck::OutOfOrder);
        assert_eq!(log.check_sequence(7, 1, 0, 1, w), SeqCheck::Append);
        let off = log.append(idem(7, 1, 0, &["c"]), SimTime::ZERO, &mut out);
        assert_eq!(log.producer(7).unwrap().epoch, 1);
        // The older epoch is fenced, even for a batch it had written.
        assert_eq!(log.check_sequence(7, 0, 2, 1, w), SeqCheck::InvalidEpoch);
        assert_eq!(log.check_sequence(7, 0, 1, 1, w), SeqCheck::InvalidEpoch);
        // Duplicates count only within the epoch.
        assert_eq!(log.check_sequence(7, 1, 0, 1, w), SeqCheck::Duplicate(off));
        // Truncating the new epoch's batch away brings the old epoch back
        // (the state is rebuilt from what the log holds).
        log.truncate_to(2, &mut out);
        assert_eq!(log.producer(7).unwrap().epoch, 0);
        assert_eq!(log.check_sequence(7, 0, 2, 1, w), SeqCheck::Append);
        log.truncate_to(0, &mut out);
        assert_eq!(log.producer(7), None);
        assert_eq!(log.check_sequence(7, 1, 1, 1, w), SeqCheck::Append);
    }

    /// The checkpoint `file` holding only `entries`.
    fn with_epochs(files: &mut BTreeMap<String, Vec<u8>>, file: String, entries: &[(u32, u64)]) {
        let mut c = EpochCache::new();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        files.insert(file, c.encode());
    }

    /// The base offsets of t-0's segments.
    fn segment_bases(files: &BTreeMap<String, Vec<u8>>) -> Vec<u64> {
        files
            .keys()
            .filter_map(|f| {
                f.strip_prefix("kafka/t-0/")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect()
    }

    #[test]
    fn recovery_loads_the_checkpoint_then_adds_only_newer_epochs() {
        // Epoch 1 holds 0..8, epoch 2 8..16, epoch 3 16..20.
        let (mut files, log) = build(10);
        assert_eq!(log.epochs().entries(), &[(1, 0), (2, 8), (3, 16)]);
        // A checkpoint that lacks epoch 3 (its batches came after it was
        // written): recovery finds epoch 3 in the batches.
        with_epochs(&mut files, log.epoch_file(), &[(1, 0), (2, 8)]);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.epochs().entries(), &[(1, 0), (2, 8), (3, 16)]);
        // An entry the batches contradict but that is not older than them
        // stays: Kafka adds only epochs newer than the checkpoint's latest.
        with_epochs(&mut files, log.epoch_file(), &[(1, 0), (2, 6)]);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.epochs().entries(), &[(1, 0), (2, 6), (3, 16)]);
    }

    #[test]
    fn only_segments_from_the_recovery_point_on_are_read_for_epochs() {
        let (mut files, log) = build(10);
        let bases = segment_bases(&files);
        // A recovery point inside epoch 2 (each segment holds one batch
        // here): the epochs of the segments below it come from the
        // checkpoint alone.
        assert_eq!(bases, vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
        let mut rp = log.clone();
        rp.recovery_point = 13;
        let mut out = Vec::new();
        rp.checkpoint_recovery_point(&mut out);
        apply(&mut files, out);
        with_epochs(&mut files, log.epoch_file(), &[(1, 0)]);
        let (back, _) = reopen(&files, &mut Vec::new());
        // Epoch 2 starts at 8, below the segment holding the recovery
        // point: recovery first sees it at 12.
        assert_eq!(back.epochs().entries(), &[(1, 0), (2, 12), (3, 16)]);
        assert_eq!(back.recovery_point(), 13);
        // With no recovery point every segment is read and epoch 2's
        // start is right.
        files.remove(&log.recovery_point_file());
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.epochs().entries(), &[(1, 0), (2, 8), (3, 16)]);
    }

    #[test]
    fn after_a_clean_shutdown_no_segment_is_recovered() {
        let (mut files, log) = build(10);
        with_epochs(&mut files, log.epoch_file(), &[(1, 0), (2, 8)]);
        let (back, _) = PartitionLog::open(
            &Tp::new("t", 0),
            &files,
            small(),
            LogBugs::default(),
            true,
            &mut Vec::new(),
        )
        .expect("opens");
        // Epoch 3's batches are not read for epochs: the checkpoint is
        // trusted, and the whole log counts as flushed.
        assert_eq!(back.epochs().entries(), &[(1, 0), (2, 8)]);
        assert_eq!(back.recovery_point(), 20);
        assert_eq!(back.leo(), 20);
    }

    #[test]
    fn the_cache_is_cut_at_the_recovered_log_end() {
        let (mut files, log) = build(4);
        with_epochs(&mut files, log.epoch_file(), &[(1, 0), (5, 8), (6, 30)]);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.leo(), 8);
        assert_eq!(back.epochs().entries(), &[(1, 0)]);
    }

    /// The hazard of a checkpoint written after a truncation whose own
    /// bytes never reached the disk: Kafka's recovery trusts the
    /// checkpoint for every epoch not newer than its latest, so the stale
    /// entry stays. On ext4 and XFS this state cannot arise (the
    /// checkpoint's fsync commits the earlier truncate; see the simulated
    /// disk's `journaled_metadata`); on a disk without a metadata journal
    /// it can, for Kafka as for the model.
    #[test]
    fn a_checkpoint_newer_than_the_log_is_trusted_as_kafka_trusts_it() {
        let (mut files, log) = build(4);
        with_epochs(&mut files, log.epoch_file(), &[(1, 0), (9, 2)]);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.epochs().entries(), &[(1, 0), (9, 2)]);
    }

    #[test]
    fn a_malformed_checkpoint_fails_the_log_dir() {
        let (mut files, log) = build(4);
        let ck = files.get_mut(&log.epoch_file()).unwrap();
        let at = ck.len() - 2;
        ck[at] ^= 1;
        let err = PartitionLog::open(
            &Tp::new("t", 0),
            &files,
            small(),
            LogBugs::default(),
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.file, log.epoch_file());
        // A torn last snapshot (a replacement that never landed) is not
        // a failure: the snapshot before it stands.
        let (mut files, log) = build(4);
        let ck = files.get_mut(&log.epoch_file()).unwrap();
        ck.truncate(ck.len() - 3);
        let (back, _) = reopen(&files, &mut Vec::new());
        assert_eq!(back.epochs().entries(), &[(1, 0)]);
    }

    #[test]
    fn records_of_an_append_path_flush_count_once_on_disk() {
        let tp = Tp::new("t", 0);
        let cfg = LogConfig {
            flush_messages: Some(1),
            ..LogConfig::default()
        };
        let mut out = Vec::new();
        let (mut log, _) = PartitionLog::open(
            &tp,
            &BTreeMap::new(),
            cfg,
            LogBugs::default(),
            false,
            &mut out,
        )
        .expect("opens");
        log.append(batch(0, &["a", "b"]), SimTime::ZERO, &mut out);
        // Appended, not yet on disk: it does not count for acks.
        assert_eq!((log.leo(), log.ack_leo()), (2, 0));
        assert!(log.sync_pending());
        log.append(batch(0, &["c"]), SimTime::ZERO, &mut out);
        let seg = log.active_file().unwrap().to_string();
        let first = log.take_flush_mark(&seg).unwrap();
        let second = log.take_flush_mark(&seg).unwrap();
        assert_eq!((first, second), (2, 3));
        log.note_synced(first);
        assert_eq!(log.ack_leo(), 2);
        log.note_synced(second);
        assert_eq!(log.ack_leo(), 3);
        assert!(!log.sync_pending());
        // Without an append-path flush everything counts at once.
        let (mut plain, _) = PartitionLog::open(
            &tp,
            &BTreeMap::new(),
            LogConfig::default(),
            LogBugs::default(),
            false,
            &mut out,
        )
        .expect("opens");
        plain.append(batch(0, &["a"]), SimTime::ZERO, &mut out);
        assert_eq!(plain.ack_leo(), 1);
    }

    #[test]
    fn flush_policy() {
        let tp = Tp::new("t", 0);
        let cfg = LogConfig {
            flush_messages: Some(3),
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open(
            &tp,
            &BTreeMap::new(),
            cfg,
            LogBugs::default(),
            false,
            &mut Vec::new(),
        )
        .expect("opens");
        let mut out = Vec::new();
        log.append(batch(1, &["a", "b"]), SimTime::ZERO, &mut out);
        let syncs = |o: &Vec<DiskRequest>| {
            o.iter()
                .filter(|r| matches!(r, DiskRequest::Fsync { file } if file.ends_with(".log")))
                .count()
        };
        assert_eq!(syncs(&out), 0);
        log.append(batch(1, &["c"]), SimTime::ZERO, &mut out);
        assert_eq!(syncs(&out), 1);
        let cfg = LogConfig {
            flush_ms: Some(10),
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open(
            &tp,
            &BTreeMap::new(),
            cfg,
            LogBugs::default(),
            false,
            &mut Vec::new(),
        )
        .expect("opens");
        let mut out = Vec::new();
        log.append(batch(1, &["a"]), SimTime::from_ms(5), &mut out);
        log.maybe_flush(SimTime::from_ms(9), &mut out);
        assert_eq!(syncs(&out), 0);
        log.maybe_flush(SimTime::from_ms(15), &mut out);
        assert_eq!(syncs(&out), 1);
    }
}
