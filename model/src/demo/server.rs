//! The demo register server (primary or backup).

use std::collections::BTreeMap;

use crate::bugs::BugSet;
use crate::codec::{decode_records, encode_record, get_u64};
use crate::demo::DemoMsg;
use crate::disk::{DiskReply, DiskRequest};
use crate::msg::Msg;
use crate::node::{Ctx, Input, Node, NodeId};

const LOG_FILE: &str = "register.log";
const HEARTBEAT_TIMER: u64 = 1;
const HEARTBEAT_MS: u64 = 50;
/// Disk op ids: fsync of entry `i` uses `i`; plain writes use 0.
const WRITE_OP: u64 = 0;
/// Most entries resent in one catch-up burst.
const CATCH_UP_BATCH: u64 = 64;

/// A demo server. See the module docs of `demo`.
pub struct DemoServer {
    me: NodeId,
    primary: NodeId,
    servers: Vec<NodeId>,
    ack_before_fsync: bool,
    /// The log as this process sees it (index i+1 at position i).
    log: Vec<u64>,
    /// Entries known durable on this node.
    durable: u64,
    /// Primary only: the highest index each backup acked durable.
    matched: BTreeMap<NodeId, u64>,
    /// Primary only: the committed prefix.
    commit: u64,
    /// Primary only: writes awaiting commit, by index.
    pending: BTreeMap<u64, (NodeId, u64)>,
    started: bool,
}

impl DemoServer {
    /// A server of the ensemble `servers` whose primary is `primary`.
    pub fn new(me: NodeId, primary: NodeId, servers: Vec<NodeId>, bugs: &BugSet) -> DemoServer {
        DemoServer {
            me,
            primary,
            servers,
            ack_before_fsync: bugs.on("demo_ack_before_fsync"),
            log: Vec::new(),
            durable: 0,
            matched: BTreeMap::new(),
            commit: 0,
            pending: BTreeMap::new(),
            started: false,
        }
    }

    /// The log as this process sees it.
    pub fn log(&self) -> &[u64] {
        &self.log
    }

    /// The committed prefix length (primary only; 0 on backups).
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    fn is_primary(&self, me: NodeId) -> bool {
        me == self.primary
    }

    fn append(&mut self, value: u64, cx: &mut Ctx<'_>) -> u64 {
        self.log.push(value);
        let index = self.log.len() as u64;
        let mut payload = index.to_le_bytes().to_vec();
        payload.extend_from_slice(&value.to_le_bytes());
        cx.disk(
            WRITE_OP,
            DiskRequest::Append {
                file: LOG_FILE.into(),
                data: encode_record(&payload),
            },
        );
        cx.disk(
            index,
            DiskRequest::Fsync {
                file: LOG_FILE.into(),
            },
        );
        if self.ack_before_fsync {
            self.durable = index;
        }
        index
    }

    fn truncate_to(&mut self, len: u64, cx: &mut Ctx<'_>) {
        self.log.truncate(len as usize);
        self.durable = self.durable.min(len);
        cx.disk(
            WRITE_OP,
            DiskRequest::Truncate {
                file: LOG_FILE.into(),
                len: len * 24,
            },
        );
    }

    fn recover(&mut self, bytes: &[u8], cx: &mut Ctx<'_>) {
        let decoded = decode_records(bytes);
        for (i, rec) in decoded.records.iter().enumerate() {
            match (get_u64(rec, 0), get_u64(rec, 8)) {
                (Some(idx), Some(v)) if idx == i as u64 + 1 => self.log.push(v),
                _ => break,
            }
        }
        let valid = self.log.len() as u64;
        if valid * 24 < bytes.len() as u64 {
            cx.disk(
                WRITE_OP,
                DiskRequest::Truncate {
                    file: LOG_FILE.into(),
                    len: valid * 24,
                },
            );
        }
        self.durable = valid;
        if self.is_primary(cx.me) {
            // Everything durable on the primary is treated as committed; an
            // uncommitted survivor was never acknowledged, so reading it is
            // allowed (its write was indeterminate).
            self.commit = valid;
        }
    }

    fn advance_commit(&mut self, cx: &mut Ctx<'_>) {
        let mut acks: Vec<u64> = self
            .servers
            .iter()
            .map(|s| {
                if *s == cx.me {
                    self.durable
                } else {
                    self.matched.get(s).copied().unwrap_or(0)
                }
            })
            .collect();
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let majority = self.servers.len() / 2 + 1;
        // The primary must hold the entry durably itself: it alone answers
        // reads and it does not recover entries from backups.
        let committed = acks[majority - 1].min(self.durable);
        if committed > self.commit {
            self.commit = committed;
            let done: Vec<u64> = self.pending.range(..=committed).map(|(i, _)| *i).collect();
            for i in done {
                let (client, req) = self.pending.remove(&i).expect("pending entry");
                cx.send(client, Msg::Demo(DemoMsg::WriteOk { req }));
            }
        }
    }

    fn resend_from(&self, peer: NodeId, from: u64, cx: &mut Ctx<'_>) {
        let end = (self.log.len() as u64).min(from + CATCH_UP_BATCH - 1);
        for index in from.max(1)..=end {
            let value = self.log[index as usize - 1];
            cx.send(peer, Msg::Demo(DemoMsg::Replicate { index, value }));
        }
    }

    fn on_message(&mut self, from: NodeId, msg: DemoMsg, cx: &mut Ctx<'_>) {
        let me = cx.me;
        match msg {
            DemoMsg::Write { req, value } if self.is_primary(me) => {
                let index = self.append(value, cx);
                self.pending.insert(index, (from, req));
                for &s in &self.servers {
                    if s != me {
                        cx.send(s, Msg::Demo(DemoMsg::Replicate { index, value }));
                    }
                }
                self.advance_commit(cx);
            }
            DemoMsg::Read { req } if self.is_primary(me) => {
                let value = self.commit.checked_sub(1).map(|i| self.log[i as usize]);
                cx.send(from, Msg::Demo(DemoMsg::ReadOk { req, value }));
            }
            DemoMsg::Replicate { index, value } if !self.is_primary(me) => {
                let len = self.log.len() as u64;
                if index > len + 1 {
                    cx.send(from, Msg::Demo(DemoMsg::Nack { have: len }));
                    return;
                }
                if index <= len {
                    if self.log[index as usize - 1] == value {
                        if index <= self.durable {
                            cx.send(from, Msg::Demo(DemoMsg::Ack { index }));
                        }
                        return;
                    }
                    self.truncate_to(index - 1, cx);
                }
                self.append(value, cx);
                if self.ack_before_fsync {
                    cx.send(from, Msg::Demo(DemoMsg::Ack { index }));
                }
            }
            DemoMsg::Ack { index } if self.is_primary(me) => {
                let m = self.matched.entry(from).or_insert(0);
                *m = (*m).max(index.min(self.log.len() as u64));
                self.advance_commit(cx);
            }
            DemoMsg::Nack { have } if self.is_primary(me) => {
                self.matched.insert(from, have.min(self.log.len() as u64));
                self.resend_from(from, have + 1, cx);
                self.advance_commit(cx);
            }
            _ => {}
        }
    }

    fn on_fsync(&mut self, index: u64, cx: &mut Ctx<'_>) {
        if index > self.durable && index <= self.log.len() as u64 {
            self.durable = index;
            if self.is_primary(cx.me) {
                self.advance_commit(cx);
            } else if !self.ack_before_fsync {
                cx.send(self.primary, Msg::Demo(DemoMsg::Ack { index }));
            }
        }
    }
}

impl Node for DemoServer {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Start { files } => {
                self.started = true;
                if let Some(bytes) = files.get(LOG_FILE) {
                    self.recover(bytes, cx);
                }
                if self.is_primary(cx.me) {
                    cx.set_timer_ms(HEARTBEAT_TIMER, HEARTBEAT_MS);
                }
            }
            Input::Message {
                from,
                msg: Msg::Demo(m),
            } => self.on_message(from, m, cx),
            Input::Timer { .. } => {
                // Heartbeat: probe every backup that is behind.
                let len = self.log.len() as u64;
                for &s in &self.servers {
                    if s != cx.me && self.matched.get(&s).copied().unwrap_or(0) < len {
                        self.resend_from(s, len, cx);
                    }
                }
                cx.set_timer_ms(HEARTBEAT_TIMER, HEARTBEAT_MS);
            }
            Input::ConnLost { peer } => {
                if self.is_primary(cx.me) {
                    // Unknown how far the backup got; it will Nack.
                    self.pending.retain(|_, (client, _)| *client != peer);
                }
            }
            Input::Disk { op, result } => match result {
                Ok(DiskReply::Synced) => self.on_fsync(op, cx),
                Ok(_) => {}
                Err(e) => {
                    // A failed write or fsync: the page cache may be gone, so
                    // nothing unsynced can be trusted. Stop serving, as a
                    // careful server would (fail-stop); a restart recovers.
                    cx.halt(format!("disk error on op {op}: {e}"));
                }
            },
            Input::Message { .. } | Input::ConnUp { .. } | Input::Client { .. } => {}
        }
    }

    fn is_leader(&self) -> bool {
        self.started && self.me == self.primary
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn role(&self) -> String {
        format!("log={} commit={}", self.log.len(), self.commit)
    }
}
