//! The quorum-state file (Kafka's `quorum-state`): the epoch, the vote cast
//! in it and the leader known in it. A voter writes and fsyncs it before it
//! grants a vote or takes an epoch, so a restart never forgets a promise.
//!
//! Each write appends one checksummed record; the last valid record wins (a
//! torn last write leaves the one before it, as Kafka's write-then-rename
//! does).

use std::collections::BTreeMap;

use crate::codec::{decode_records, encode_record};
use crate::node::NodeId;
use crate::raft::types::Epoch;

/// The file's name.
pub const QUORUM_STATE_FILE: &str = "raft/quorum-state";

/// What the quorum-state file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuorumState {
    /// The current epoch (0: none yet).
    pub epoch: Epoch,
    /// The candidate this voter voted for in `epoch`.
    pub voted_for: Option<NodeId>,
    /// The leader of `epoch`, when known.
    pub leader: Option<NodeId>,
}

const NONE: u32 = u32::MAX;

impl QuorumState {
    /// One record of the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(12);
        p.extend_from_slice(&self.epoch.to_le_bytes());
        p.extend_from_slice(&self.voted_for.unwrap_or(NONE).to_le_bytes());
        p.extend_from_slice(&self.leader.unwrap_or(NONE).to_le_bytes());
        encode_record(&p)
    }

    /// The state in the boot files: the last valid record, or the empty
    /// state when there is none. A corrupt file is an error.
    pub fn read(files: &BTreeMap<String, Vec<u8>>) -> Result<QuorumState, String> {
        QuorumState::recover(files).map(|(q, _)| q)
    }

    /// As [`QuorumState::read`], with the length to cut the file to when
    /// a torn write left a partial record at its end (the next write must
    /// not land after it).
    pub fn recover(
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(QuorumState, Option<u64>), String> {
        let Some(bytes) = files.get(QUORUM_STATE_FILE) else {
            return Ok((QuorumState::default(), None));
        };
        let d = decode_records(bytes);
        let cut = d.dropped_tail.then_some(d.valid_len);
        QuorumState::decode_last(&d).map(|q| (q, cut))
    }

    fn decode_last(d: &crate::codec::DecodedRecords) -> Result<QuorumState, String> {
        if d.corrupt {
            return Err(format!(
                "{QUORUM_STATE_FILE}: checksum mismatch at byte {}",
                d.valid_len
            ));
        }
        let Some(p) = d.records.last() else {
            return Ok(QuorumState::default());
        };
        let word = |i: usize| -> Result<u32, String> {
            p.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| format!("{QUORUM_STATE_FILE}: short record"))
        };
        let opt = |w: u32| (w != NONE).then_some(w);
        Ok(QuorumState {
            epoch: word(0)?,
            voted_for: opt(word(1)?),
            leader: opt(word(2)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_record_wins_and_a_torn_one_is_dropped() {
        let a = QuorumState {
            epoch: 3,
            voted_for: Some(2),
            leader: None,
        };
        let b = QuorumState {
            epoch: 4,
            voted_for: None,
            leader: Some(1),
        };
        let mut bytes = a.encode();
        bytes.extend(b.encode());
        let files = BTreeMap::from([(QUORUM_STATE_FILE.to_string(), bytes.clone())]);
        assert_eq!(QuorumState::read(&files).unwrap(), b);
        bytes.truncate(bytes.len() - 3);
        let files = BTreeMap::from([(QUORUM_STATE_FILE.to_string(), bytes)]);
        assert_eq!(QuorumState::read(&files).unwrap(), a);
        assert_eq!(
            QuorumState::read(&BTreeMap::new()).unwrap(),
            QuorumState::default()
        );
    }
}
