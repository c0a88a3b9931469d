//! Snapshots of the metadata log (KIP-630): the state machine's image at
//! an offset, written by the host through [`RaftCore::save_snapshot`] to
//! `raft/snapshot-<end>` and fsynced; once it is durable the log start
//! moves to its end and older snapshots go. A follower or observer whose
//! fetch offset is below the leader's log start is told the leader's
//! snapshot id and fetches it with FetchSnapshot; it writes it, and once
//! that is durable starts its log over at the snapshot's end and hands the
//! snapshot to its host ([`RaftCore::take_installed`]).

use std::collections::BTreeMap;

use crate::codec::{decode_records, encode_record};
use crate::disk::DiskRequest;
use crate::msg::Msg;
use crate::node::{Ctx, NodeId};
use crate::raft::core::{RaftCore, RaftRole, T_FETCH};
use crate::raft::types::{Epoch, RaftError, RaftMsg};

/// The prefix of snapshot files.
pub const SNAPSHOT_PREFIX: &str = "raft/snapshot-";

/// A snapshot: the state machine's image of every record below `end`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The offset after the last record it covers.
    pub end: u64,
    /// The epoch of that last record.
    pub epoch: Epoch,
    /// The image.
    pub data: Vec<u8>,
}

impl Snapshot {
    fn file(&self) -> String {
        format!("{SNAPSHOT_PREFIX}{:020}", self.end)
    }

    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.data.len() + 12);
        p.extend_from_slice(&self.end.to_le_bytes());
        p.extend_from_slice(&self.epoch.to_le_bytes());
        p.extend_from_slice(&self.data);
        encode_record(&p)
    }

    fn decode(bytes: &[u8]) -> Option<Snapshot> {
        let d = decode_records(bytes);
        let p = d.records.first()?;
        Some(Snapshot {
            end: u64::from_le_bytes(p.get(0..8)?.try_into().ok()?),
            epoch: u32::from_le_bytes(p.get(8..12)?.try_into().ok()?),
            data: p.get(12..)?.to_vec(),
        })
    }

    /// The newest complete snapshot among the boot files.
    pub fn newest(files: &BTreeMap<String, Vec<u8>>) -> Option<Snapshot> {
        files
            .iter()
            .filter(|(n, _)| n.starts_with(SNAPSHOT_PREFIX))
            .filter_map(|(_, b)| Snapshot::decode(b))
            .max_by_key(|s| s.end)
    }
}

impl RaftCore {
    /// Whether the host should snapshot its image now that it has applied
    /// the log up to `applied` (every `snapshot_every_records` records).
    pub fn snapshot_due(&self, applied: u64) -> bool {
        let every = self.cfg.snapshot_every_records;
        let last = self.snapshot.as_ref().map_or(0, |s| s.end);
        every > 0
            && self.snapshot_writing.is_none()
            && applied >= last + every
            && applied <= self.log.hw()
            && applied > self.log.log_start()
    }

    /// The host's image of every record below `end` (all committed): it is
    /// written and fsynced, then the log start moves to `end`.
    pub fn save_snapshot(&mut self, end: u64, data: Vec<u8>, cx: &mut Ctx<'_>) {
        let Some(epoch) = self.epoch_of(end.saturating_sub(1)) else {
            return;
        };
        let s = Snapshot { end, epoch, data };
        self.write_snapshot(s, false, cx);
    }

    /// The epoch of the record at `offset`.
    fn epoch_of(&self, offset: u64) -> Option<Epoch> {
        self.log
            .read(offset, offset + 1, 1)
            .first()
            .map(|b| b.epoch)
            .or_else(|| {
                self.snapshot
                    .as_ref()
                    .filter(|s| s.end == offset + 1)
                    .map(|s| s.epoch)
            })
    }

    fn write_snapshot(&mut self, s: Snapshot, fetched: bool, cx: &mut Ctx<'_>) {
        tracing::info!(
            "raft: writing a snapshot up to {} (epoch {}){}",
            s.end,
            s.epoch,
            if fetched { ", fetched" } else { "" }
        );
        let file = s.file();
        let op = self.next_op_id();
        // A fresh file: an earlier attempt at the same snapshot may have
        // left a torn prefix (a crash before its fsync).
        self.issue(
            vec![
                DiskRequest::Truncate {
                    file: file.clone(),
                    len: 0,
                },
                DiskRequest::Append {
                    file: file.clone(),
                    data: s.encode(),
                },
                DiskRequest::Fsync { file },
            ],
            cx,
        );
        self.snapshot_writing = Some((op + 2, s, fetched));
    }

    /// A snapshot's fsync completed: it counts; the log moves on.
    pub(crate) fn on_snapshot_synced(&mut self, cx: &mut Ctx<'_>) {
        let Some((_, s, fetched)) = self.snapshot_writing.take() else {
            return;
        };
        let mut out = Vec::new();
        if let Some(old) = self.snapshot.replace(s.clone()) {
            if old.end != s.end {
                out.push(DiskRequest::Delete { file: old.file() });
            }
        }
        if fetched {
            // The follower starts over at the snapshot's end.
            self.log.truncate_fully_and_start_at(s.end, &mut out);
            self.log.set_hw(s.end);
            self.installed = Some(s.clone());
        } else if self.log.increment_log_start(s.end, &mut out) {
            self.log.checkpoint_log_start(&mut out);
        }
        self.issue(out, cx);
        if fetched {
            if let RaftRole::Follower(f) = &mut self.role {
                f.inflight = None;
            }
            self.send_fetch(cx);
        }
    }

    /// The snapshot a fetch installed since the host last looked.
    pub fn take_installed(&mut self) -> Option<Snapshot> {
        self.installed.take()
    }

    /// The newest durable snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The leader told us to fetch its snapshot.
    pub(crate) fn fetch_snapshot(&mut self, from: NodeId, cx: &mut Ctx<'_>) {
        if self.snapshot_writing.is_some() {
            return;
        }
        let corr = self.next_corr;
        self.next_corr += 1;
        let epoch = self.quorum.epoch;
        let me = self.id;
        if let RaftRole::Follower(f) = &mut self.role {
            f.inflight = Some((corr, from, cx.now));
        }
        cx.send(
            from,
            Msg::Raft(RaftMsg::FetchSnapshot {
                corr,
                epoch,
                replica: me,
            }),
        );
    }

    /// A FetchSnapshot from a follower or observer: the newest snapshot.
    pub(crate) fn on_fetch_snapshot(
        &mut self,
        from: NodeId,
        corr: u64,
        epoch: Epoch,
        cx: &mut Ctx<'_>,
    ) {
        let result = if epoch < self.quorum.epoch {
            Err(RaftError::FencedLeaderEpoch)
        } else if epoch > self.quorum.epoch {
            Err(RaftError::UnknownLeaderEpoch)
        } else if !self.is_leader() {
            Err(RaftError::NotLeader)
        } else {
            self.snapshot.clone().ok_or(RaftError::NotLeader)
        };
        cx.send(
            from,
            Msg::Raft(RaftMsg::FetchSnapshotResp {
                corr,
                epoch: self.quorum.epoch,
                leader: self.leader(),
                result,
            }),
        );
    }

    /// The answer to our FetchSnapshot.
    pub(crate) fn on_fetch_snapshot_resp(
        &mut self,
        from: NodeId,
        corr: u64,
        epoch: Epoch,
        leader: Option<NodeId>,
        result: Result<Snapshot, RaftError>,
        cx: &mut Ctx<'_>,
    ) {
        let RaftRole::Follower(f) = &mut self.role else {
            return;
        };
        if f.inflight.is_none_or(|(c, _, _)| c != corr) {
            return;
        }
        f.inflight = None;
        match result {
            Ok(s) if epoch == self.quorum.epoch && f.leader == Some(from) => {
                f.last_contact = Some(cx.now);
                f.deadline = cx.now.plus_ms(self.cfg.fetch_timeout_ms);
                if s.end > self.log.log_start() {
                    self.write_snapshot(s, true, cx);
                } else {
                    self.send_fetch(cx);
                }
            }
            _ => {
                if epoch > self.quorum.epoch {
                    self.observe_epoch(epoch, leader, cx);
                }
                cx.set_timer_ms(self.cfg.timer_base + T_FETCH, self.cfg.retry_backoff_ms);
            }
        }
    }
}
