//! The leader-epoch cache (KIP-101): for each leader epoch, the first offset
//! its leader appended. It answers OffsetsForLeaderEpoch ("where does epoch
//! e end in your log?") so a follower can truncate exactly where it diverged
//! instead of at the high watermark. Persisted as the leader-epoch
//! checkpoint file: an append-only sequence of checksummed snapshots, the
//! last valid one wins.

use crate::codec::{decode_records, encode_record, get_u64};
use crate::kafka::types::LeaderEpoch;

/// The epoch cache of one partition replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    /// `(epoch, start offset)`: epochs strictly increasing, start offsets
    /// non-decreasing.
    entries: Vec<(LeaderEpoch, u64)>,
}

impl EpochCache {
    /// An empty cache.
    pub fn new() -> EpochCache {
        EpochCache::default()
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[(LeaderEpoch, u64)] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `start`, as Kafka's
    /// `LeaderEpochFileCache.assign` does: nothing changes when `epoch` is
    /// the latest epoch and `start` is not below its start (a later batch of
    /// the same epoch); otherwise every entry of an epoch at or above
    /// `epoch`, or starting at or after `start`, is dropped first (they
    /// would break the cache's monotonicity), so epochs and start offsets
    /// stay strictly increasing. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: LeaderEpoch, start: u64) -> bool {
        if let Some(&(e, s)) = self.entries.last() {
            if epoch == e && start >= s {
                return false;
            }
        }
        while matches!(self.entries.last(), Some(&(e, s)) if e >= epoch || s >= start) {
            self.entries.pop();
        }
        self.entries.push((epoch, start));
        true
    }

    /// Drops the entries whose epoch starts at or after `offset` (the log
    /// was truncated to `offset`). Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, offset: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, s)| s < offset);
        before != self.entries.len()
    }

    /// The log now starts at `offset` (retention or DeleteRecords), as
    /// Kafka's `LeaderEpochFileCache.truncateFromStart`: the entries that
    /// start at or below it go, but for the latest of them, whose epoch
    /// holds the new first record and now starts at `offset`. Returns
    /// whether the cache changed.
    pub fn truncate_from_start(&mut self, offset: u64) -> bool {
        let below = self.entries.partition_point(|&(_, s)| s <= offset);
        if below == 0 {
            return false;
        }
        let (epoch, start) = self.entries[below - 1];
        self.entries.drain(..below - 1);
        self.entries[0] = (epoch, offset);
        start != offset || below > 1
    }

    /// OffsetsForLeaderEpoch, as Kafka's `LeaderEpochFileCache.endOffsetFor`
    /// answers it: for the latest epoch, `log_end`; for an epoch between
    /// known ones, the largest known epoch at or below it and the start of
    /// the next one; for an epoch below every known one, the epoch itself
    /// and the first entry's start (the records before it are gone). `None`
    /// (Kafka's UNDEFINED_EPOCH_OFFSET) for an empty cache or an epoch above
    /// every known one that is not the latest.
    pub fn end_offset_for(&self, epoch: LeaderEpoch, log_end: u64) -> Option<(LeaderEpoch, u64)> {
        if self.latest() == Some(epoch) {
            return Some((epoch, log_end));
        }
        let higher = self.entries.iter().position(|&(e, _)| e > epoch)?;
        let next_start = self.entries[higher].1;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, next_start)),
            None => Some((epoch, next_start)),
        }
    }

    /// One checksummed snapshot for the checkpoint file.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for &(e, s) in &self.entries {
            p.extend_from_slice(&(e as u64).to_le_bytes());
            p.extend_from_slice(&s.to_le_bytes());
        }
        encode_record(&p)
    }

    /// The last complete snapshot in checkpoint-file bytes (empty if none),
    /// loaded as Kafka's `LeaderEpochFileCache` loads its checkpoint: every
    /// entry through [`EpochCache::assign`]. A torn last snapshot is a
    /// checkpoint whose replacement never landed (Kafka writes a temporary
    /// file and renames it), so the one before it stands; a snapshot that
    /// fails its checksum is a malformed checkpoint, which Kafka refuses
    /// (`Malformed line in checkpoint file`: the log directory goes
    /// offline).
    pub fn decode(bytes: &[u8]) -> Result<EpochCache, CorruptCheckpoint> {
        let d = decode_records(bytes);
        if d.corrupt {
            return Err(CorruptCheckpoint { at: d.valid_len });
        }
        let mut cache = EpochCache::new();
        let Some(p) = d.records.last() else {
            return Ok(cache);
        };
        let n = get_u64(p, 0).unwrap_or(0) as usize;
        for i in 0..n {
            match (get_u64(p, 8 + 16 * i), get_u64(p, 16 + 16 * i)) {
                (Some(e), Some(s)) => {
                    cache.assign(e as LeaderEpoch, s);
                }
                _ => return Err(CorruptCheckpoint { at: d.valid_len }),
            }
        }
        Ok(cache)
    }
}

/// A checkpoint file that fails its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint: bad checksum after byte {at}")]
pub struct CorruptCheckpoint {
    /// The length of the valid prefix.
    pub at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kip_279() {
        let mut c = EpochCache::new();
        assert!(c.assign(1, 0));
        assert!(c.assign(3, 10));
        assert!(c.assign(4, 15));
        assert!(!c.assign(4, 18));
        assert_eq!(c.end_offset_for(4, 20), Some((4, 20)));
        assert_eq!(c.end_offset_for(3, 20), Some((3, 15)));
        // Epoch 2 was never seen here: answer with epoch 1, ending at 10.
        assert_eq!(c.end_offset_for(2, 20), Some((1, 10)));
        // Below every known epoch: the epoch itself, ending where the
        // first known one starts.
        assert_eq!(c.end_offset_for(0, 20), Some((0, 0)));
        // Above the latest (no leader asks that of itself): undefined.
        assert_eq!(c.end_offset_for(9, 20), None);
        assert_eq!(EpochCache::new().end_offset_for(1, 0), None);
        assert_eq!(c.latest(), Some(4));
    }

    #[test]
    fn truncation_and_checkpoint_round_trip() {
        let mut c = EpochCache::new();
        c.assign(1, 0);
        c.assign(2, 5);
        c.assign(3, 9);
        assert!(c.truncate_from_end(6));
        assert_eq!(c.entries(), &[(1, 0), (2, 5)]);
        let mut file = EpochCache::new().encode();
        file.extend(c.encode());
        assert_eq!(EpochCache::decode(&file), Ok(c.clone()));
        // A torn last snapshot falls back to the previous one.
        let mut torn = c.encode();
        let mut c2 = c.clone();
        c2.assign(7, 9);
        let full = c2.encode();
        torn.extend_from_slice(&full[..full.len() - 3]);
        assert_eq!(EpochCache::decode(&torn), Ok(c.clone()));
    }

    #[test]
    fn a_snapshot_failing_its_checksum_is_refused_not_skipped() {
        let mut c = EpochCache::new();
        c.assign(1, 0);
        c.assign(2, 5);
        let mut file = c.encode();
        let last = file.len() - 1;
        file[last] ^= 0x10;
        assert_eq!(EpochCache::decode(&file), Err(CorruptCheckpoint { at: 0 }));
    }

    #[test]
    fn assign_drops_overwritten_entries() {
        let mut c = EpochCache::new();
        c.assign(1, 0);
        c.assign(2, 10);
        // A new leader at epoch 5 starting at 7: epoch 2's entry was
        // truncated away by the log but not the cache.
        c.assign(5, 7);
        assert_eq!(c.entries(), &[(1, 0), (5, 7)]);
        // An epoch that started where an epoch without records starts
        // replaces it (Kafka drops entries at or past the new start).
        c.assign(6, 9);
        c.assign(7, 9);
        assert_eq!(c.entries(), &[(1, 0), (5, 7), (7, 9)]);
    }

    #[test]
    fn an_older_epoch_assigned_drops_every_newer_entry_as_kafka_does() {
        // A stale entry (epoch 5 at the log end, no records) followed by a
        // batch of epoch 4 at that offset: Kafka removes every entry whose
        // epoch is at or above 4 and adds (4, 100), so epoch 4's earlier
        // start is lost (what KAFKA-10706's stale entry leads to).
        let mut c = EpochCache::new();
        c.assign(2, 0);
        c.assign(4, 50);
        c.assign(5, 100);
        assert!(c.assign(4, 100));
        assert_eq!(c.entries(), &[(2, 0), (4, 100)]);
        // The same epoch again, starting earlier than recorded, moves it.
        assert!(c.assign(4, 80));
        assert_eq!(c.entries(), &[(2, 0), (4, 80)]);
    }

    #[test]
    fn truncation_from_the_start_keeps_the_epoch_of_the_new_first_record() {
        let mut c = EpochCache::new();
        c.assign(1, 0);
        c.assign(3, 10);
        c.assign(6, 20);
        assert!(!c.truncate_from_start(0));
        // Offset 15 is in epoch 3: it now starts there.
        assert!(c.truncate_from_start(15));
        assert_eq!(c.entries(), &[(3, 15), (6, 20)]);
        // Exactly at an epoch's start: the ones before go.
        assert!(c.truncate_from_start(20));
        assert_eq!(c.entries(), &[(6, 20)]);
        assert!(!c.truncate_from_start(20));
    }
}
