//! Simulated storage: one per node, with page cache and durable bytes.
//!
//! Each file keeps the bytes that survived an fsync (`durable`), the bytes the
//! process sees (`current`), and the writes and truncates issued since the
//! last fsync, in order. An fsync covers the operations issued before it and
//! makes them durable when it completes. A crash (power loss of the machine)
//! drops the page cache: the file goes back to its durable bytes, or, with a
//! torn write, keeps a seeded prefix of the unsynced operations (the last one
//! possibly cut short). Faults: corruption of durable bytes, fsync failing
//! with EIO (after which the file's unsynced pages are gone, as on Linux),
//! a full disk (ENOSPC), and slowness.
//!
//! Metadata ordering across files is a property of the file system, not of
//! POSIX: on ext4 and XFS (the file systems Kafka's and ZooKeeper's
//! documentation recommend) a truncate is a journaled metadata change, and
//! an fsync of any file commits the journal up to and including every
//! earlier metadata change, so a truncate issued before another file's
//! completed fsync is durable too. `journaled_metadata = true` (the
//! default) models that; `false` keeps every file's operations
//! independent, as a file system without a metadata journal may.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use kzsim_model::{DiskError, DiskReply, DiskRequest, FileName};

/// Disk parameters from the scenario.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    /// Latency of a write, truncate, read or delete (µs).
    pub write_latency_us: u64,
    /// Base latency of an fsync (µs).
    pub fsync_latency_us: u64,
    /// Uniform extra fsync latency in [0, fsync_jitter_us).
    pub fsync_jitter_us: u64,
    /// Probability that a crash leaves a torn prefix of unsynced writes
    /// instead of dropping them all.
    pub torn_write_prob: f64,
    /// Capacity in bytes (0 = unlimited until a `disk-full` fault).
    pub capacity_bytes: u64,
    /// Truncates are journaled metadata (ext4, XFS): a completed fsync of
    /// any file makes every truncate issued before it durable.
    pub journaled_metadata: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            write_latency_us: 20,
            fsync_latency_us: 1_000,
            fsync_jitter_us: 1_000,
            torn_write_prob: 0.5,
            capacity_bytes: 0,
            journaled_metadata: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

fn apply(bytes: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let off = *offset as usize;
            if bytes.len() < off + data.len() {
                bytes.resize(off + data.len(), 0);
            }
            bytes[off..off + data.len()].copy_from_slice(data);
        }
        Pending::Truncate { len } => bytes.truncate(*len as usize),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct File {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Unsynced operations with their disk-wide sequence numbers.
    unsynced: VecDeque<(u64, Pending)>,
}

/// A token for an fsync in flight: it covers operations up to `through`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FsyncToken {
    /// File name.
    pub file: FileName,
    /// Operations with a sequence number below this are covered.
    pub through: u64,
}

/// What a request did at issue time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issued {
    /// Completed in the page cache; report `result` after `latency_us`.
    Done {
        /// The result to report.
        result: Result<DiskReply, DiskError>,
        /// Completion delay.
        latency_us: u64,
    },
    /// An fsync: call [`Disk::complete_fsync`] with the token after
    /// `latency_us`.
    Fsync {
        /// The fsync's token.
        token: FsyncToken,
        /// Completion delay.
        latency_us: u64,
    },
}

/// One node's disk.
#[derive(Clone, Debug)]
pub struct Disk {
    cfg: DiskConfig,
    files: BTreeMap<FileName, File>,
    /// Remaining fsyncs to fail with EIO.
    fail_fsyncs: u32,
    /// Capacity in bytes, if limited.
    capacity: Option<u64>,
    /// Latency multiplier (1 = normal).
    slow_factor: u64,
    /// The sequence number of the next operation, disk-wide (so that the
    /// issue order of operations on different files is known).
    next_seq: u64,
}

impl Disk {
    /// An empty disk.
    pub fn new(cfg: DiskConfig) -> Disk {
        let capacity = (cfg.capacity_bytes > 0).then_some(cfg.capacity_bytes);
        Disk {
            cfg,
            files: BTreeMap::new(),
            fail_fsyncs: 0,
            capacity,
            slow_factor: 1,
            next_seq: 0,
        }
    }

    fn used(&self) -> u64 {
        self.files.values().map(|f| f.current.len() as u64).sum()
    }

    fn growth(file: Option<&File>, offset: u64, len: u64) -> u64 {
        let cur = file.map(|f| f.current.len() as u64).unwrap_or(0);
        (offset + len).saturating_sub(cur)
    }

    /// Issues a request at true time `now`.
    pub fn issue(&mut self, req: &DiskRequest, rng: &mut ChaCha8Rng) -> Issued {
        let lat = self.cfg.write_latency_us * self.slow_factor;
        let done = |result| Issued::Done {
            result,
            latency_us: lat,
        };
        match req {
            DiskRequest::Append { file, data } => {
                let offset = self.files.get(file).map_or(0, |f| f.current.len() as u64);
                self.write(file, offset, data, lat)
            }
            DiskRequest::WriteAt { file, offset, data } => self.write(file, *offset, data, lat),
            DiskRequest::Truncate { file, len } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let f = self.files.entry(file.clone()).or_default();
                let op = Pending::Truncate { len: *len };
                apply(&mut f.current, &op);
                f.unsynced.push_back((seq, op));
                done(Ok(DiskReply::Done))
            }
            DiskRequest::Read { file } => {
                let data = self
                    .files
                    .get(file)
                    .map(|f| f.current.clone())
                    .unwrap_or_default();
                done(Ok(DiskReply::Data(data)))
            }
            DiskRequest::Delete { file } => {
                self.files.remove(file);
                done(Ok(DiskReply::Done))
            }
            DiskRequest::Fsync { file } => {
                let through = self.next_seq;
                let jitter = if self.cfg.fsync_jitter_us > 0 {
                    rng.gen_range(0..self.cfg.fsync_jitter_us)
                } else {
                    0
                };
                Issued::Fsync {
                    token: FsyncToken {
                        file: file.clone(),
                        through,
                    },
                    latency_us: (self.cfg.fsync_latency_us + jitter) * self.slow_factor,
                }
            }
        }
    }

    fn write(&mut self, file: &str, offset: u64, data: &[u8], lat: u64) -> Issued {
        if let Some(cap) = self.capacity {
            let grow = Self::growth(self.files.get(file), offset, data.len() as u64);
            if self.used() + grow > cap {
                return Issued::Done {
                    result: Err(DiskError::NoSpace),
                    latency_us: lat,
                };
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let f = self.files.entry(file.to_string()).or_default();
        let op = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut f.current, &op);
        f.unsynced.push_back((seq, op));
        Issued::Done {
            result: Ok(DiskReply::Done),
            latency_us: lat,
        }
    }

    /// Completes an fsync: on success the covered operations become durable;
    /// on an injected EIO the file's unsynced pages are dropped.
    pub fn complete_fsync(&mut self, token: &FsyncToken) -> Result<DiskReply, DiskError> {
        let fail = self.fail_fsyncs > 0;
        if fail {
            self.fail_fsyncs -= 1;
        }
        let Some(f) = self.files.get_mut(&token.file) else {
            if fail {
                return Err(DiskError::Io);
            }
            self.commit_journal(token.through);
            return Ok(DiskReply::Synced);
        };
        if fail {
            f.current = f.durable.clone();
            f.unsynced.clear();
            return Err(DiskError::Io);
        }
        while let Some((seq, _)) = f.unsynced.front() {
            if *seq >= token.through {
                break;
            }
            let (_, op) = f.unsynced.pop_front().expect("front exists");
            apply(&mut f.durable, &op);
        }
        self.commit_journal(token.through);
        Ok(DiskReply::Synced)
    }

    /// With `journaled_metadata`, a completed fsync commits the metadata
    /// journal: every truncate issued before sequence number `through`, on
    /// any file, becomes durable. The writes issued before such a truncate
    /// stay pending, cut to the truncated length (the bytes past it are
    /// gone either way), so a later fsync or a torn crash still orders
    /// them before the truncate.
    fn commit_journal(&mut self, through: u64) {
        if !self.cfg.journaled_metadata {
            return;
        }
        for f in self.files.values_mut() {
            while let Some(i) = f
                .unsynced
                .iter()
                .position(|(seq, op)| *seq < through && matches!(op, Pending::Truncate { .. }))
            {
                let (_, op) = f.unsynced.remove(i).expect("position exists");
                let Pending::Truncate { len } = op else {
                    unreachable!("matched a truncate")
                };
                f.durable.truncate(len as usize);
                for (_, earlier) in f.unsynced.iter_mut().take(i) {
                    if let Pending::Write { offset, data } = earlier {
                        let keep = len.saturating_sub(*offset).min(data.len() as u64);
                        data.truncate(keep as usize);
                    }
                }
                f.unsynced.retain(
                    |(_, op)| !matches!(op, Pending::Write { data, .. } if data.is_empty()),
                );
            }
        }
    }

    /// Power loss: every file loses its unsynced operations, or keeps a torn
    /// prefix of them (decided per file by `rng`). With
    /// `journaled_metadata`, a kept operation implies that every truncate
    /// issued before it, on any file, is kept too: the journal commit that
    /// made the later operation's size durable carried the earlier
    /// truncate.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng) {
        let torn_prob = self.cfg.torn_write_prob;
        // The sequence number just past the last operation kept anywhere.
        let mut kept_through = 0u64;
        // Per file: how many unsynced operations were kept.
        let mut kept_counts = Vec::with_capacity(self.files.len());
        for f in self.files.values_mut() {
            let mut kept = 0;
            if !f.unsynced.is_empty() && torn_prob > 0.0 && rng.gen_bool(torn_prob) {
                let keep = rng.gen_range(0..=f.unsynced.len());
                for (i, (seq, op)) in f.unsynced.iter().enumerate() {
                    if i == keep {
                        // The first lost operation may be partly written.
                        if let Pending::Write { offset, data } = op {
                            let cut = rng.gen_range(0..=data.len());
                            apply(
                                &mut f.durable,
                                &Pending::Write {
                                    offset: *offset,
                                    data: data[..cut].to_vec(),
                                },
                            );
                            if cut > 0 {
                                kept_through = kept_through.max(seq + 1);
                            }
                        }
                        break;
                    }
                    apply(&mut f.durable, op);
                    kept_through = kept_through.max(seq + 1);
                    kept = i + 1;
                }
            }
            kept_counts.push(kept);
        }
        let journaled = self.cfg.journaled_metadata;
        for (f, kept) in self.files.values_mut().zip(kept_counts) {
            if journaled {
                for (seq, op) in f.unsynced.iter().skip(kept) {
                    if let Pending::Truncate { len } = op {
                        if *seq < kept_through {
                            f.durable.truncate(*len as usize);
                        }
                    }
                }
            }
            f.unsynced.clear();
            f.current = f.durable.clone();
        }
        // A file never made durable does not survive (its creation was not
        // synced either).
        self.files.retain(|_, f| !f.durable.is_empty());
    }

    /// The durable contents of every file (what a rebooted node reads).
    pub fn durable_files(&self) -> BTreeMap<FileName, Vec<u8>> {
        self.files
            .iter()
            .map(|(k, f)| (k.clone(), f.durable.clone()))
            .collect()
    }

    /// Every file as a (re)starting process sees it: the page cache after a
    /// process crash, the durable bytes after a machine crash.
    pub fn visible_files(&self) -> BTreeMap<FileName, Vec<u8>> {
        self.files
            .iter()
            .map(|(k, f)| (k.clone(), f.current.clone()))
            .collect()
    }

    /// The contents as the running process sees them (tests, reports).
    pub fn current(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(|f| f.current.as_slice())
    }

    /// Flips bits in the last `tail_bytes` durable bytes of one file chosen
    /// by `rng` (among files matching `name_contains`); returns the file and
    /// offset corrupted, if any file qualified.
    pub fn corrupt(
        &mut self,
        name_contains: &str,
        tail_bytes: u64,
        rng: &mut ChaCha8Rng,
    ) -> Option<(FileName, u64)> {
        let names: Vec<FileName> = self
            .files
            .iter()
            .filter(|(n, f)| n.contains(name_contains) && !f.durable.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        if names.is_empty() {
            return None;
        }
        let name = names[rng.gen_range(0..names.len())].clone();
        let f = self.files.get_mut(&name).expect("chosen file exists");
        let len = f.durable.len() as u64;
        let start = len.saturating_sub(tail_bytes.max(1));
        let off = rng.gen_range(start..len);
        let mask = 1u8 << rng.gen_range(0..8);
        f.durable[off as usize] ^= mask;
        if (off as usize) < f.current.len() {
            f.current[off as usize] ^= mask;
        }
        Some((name, off))
    }

    /// Makes the next `n` fsyncs fail with EIO.
    pub fn fail_next_fsyncs(&mut self, n: u32) {
        self.fail_fsyncs = n;
    }

    /// Fills the disk: no write may grow any file from now on.
    pub fn fill(&mut self) {
        self.capacity = Some(self.used());
    }

    /// Slows every operation by `factor` (1 = normal).
    pub fn set_slow(&mut self, factor: u64) {
        self.slow_factor = factor.max(1);
    }

    /// Clears EIO, full-disk and slowness faults.
    pub fn clear_faults(&mut self) {
        self.fail_fsyncs = 0;
        self.capacity = (self.cfg.capacity_bytes > 0).then_some(self.cfg.capacity_bytes);
        self.slow_factor = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn req_append(data: &[u8]) -> DiskRequest {
        DiskRequest::Append {
            file: "log".into(),
            data: data.to_vec(),
        }
    }

    fn fsync(d: &mut Disk, r: &mut ChaCha8Rng) -> Result<DiskReply, DiskError> {
        let Issued::Fsync { token, .. } = d.issue(&DiskRequest::Fsync { file: "log".into() }, r)
        else {
            panic!("fsync token")
        };
        d.complete_fsync(&token)
    }

    #[test]
    fn crash_loses_exactly_the_unsynced_bytes() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let mut d = Disk::new(DiskConfig {
            torn_write_prob: 0.0,
            ..DiskConfig::default()
        });
        d.issue(&req_append(b"hello "), &mut r);
        fsync(&mut d, &mut r).unwrap();
        d.issue(&req_append(b"world"), &mut r);
        assert_eq!(d.current("log").unwrap(), b"hello world");
        d.crash(&mut r);
        assert_eq!(d.durable_files()["log"], b"hello ".to_vec());
        assert_eq!(d.current("log").unwrap(), b"hello ");
    }

    /// The hazard of a checkpoint written after a truncation: with a
    /// metadata journal (ext4, XFS) the checkpoint's fsync commits the
    /// earlier truncate of the other file; without one, the truncate may
    /// be lost while the later checkpoint survives.
    #[test]
    fn another_files_fsync_commits_an_earlier_truncate_only_with_a_journal() {
        for journaled in [true, false] {
            let mut r = ChaCha8Rng::seed_from_u64(1);
            let mut d = Disk::new(DiskConfig {
                torn_write_prob: 0.0,
                journaled_metadata: journaled,
                ..DiskConfig::default()
            });
            d.issue(&req_append(b"hello world"), &mut r);
            fsync(&mut d, &mut r).unwrap();
            d.issue(&req_append(b"!!"), &mut r);
            let cut = DiskRequest::Truncate {
                file: "log".into(),
                len: 5,
            };
            d.issue(&cut, &mut r);
            d.issue(&req_append(b"?"), &mut r);
            let ck = DiskRequest::Append {
                file: "checkpoint".into(),
                data: b"5".to_vec(),
            };
            d.issue(&ck, &mut r);
            let Issued::Fsync { token, .. } = d.issue(
                &DiskRequest::Fsync {
                    file: "checkpoint".into(),
                },
                &mut r,
            ) else {
                panic!()
            };
            d.complete_fsync(&token).unwrap();
            d.crash(&mut r);
            let files = d.durable_files();
            assert_eq!(files["checkpoint"], b"5".to_vec());
            let want: &[u8] = if journaled { b"hello" } else { b"hello world" };
            assert_eq!(files["log"], want.to_vec(), "journaled = {journaled}");
        }
    }

    /// A torn crash that keeps a checkpoint written after another file's
    /// truncate keeps that truncate too, with a metadata journal.
    #[test]
    fn a_kept_later_write_implies_the_earlier_truncate_with_a_journal() {
        let mut checked = 0;
        for seed in 0..200 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Disk::new(DiskConfig {
                torn_write_prob: 1.0,
                ..DiskConfig::default()
            });
            d.issue(&req_append(b"hello world"), &mut r);
            fsync(&mut d, &mut r).unwrap();
            d.issue(
                &DiskRequest::Truncate {
                    file: "log".into(),
                    len: 5,
                },
                &mut r,
            );
            d.issue(
                &DiskRequest::Append {
                    file: "checkpoint".into(),
                    data: b"5".to_vec(),
                },
                &mut r,
            );
            d.crash(&mut r);
            let files = d.durable_files();
            if files.contains_key("checkpoint") {
                checked += 1;
                assert_eq!(files["log"], b"hello".to_vec(), "seed {seed}");
            }
        }
        assert!(checked > 20, "{checked}");
    }

    /// A torn crash after a journaled truncate keeps the earlier writes
    /// cut to the truncated length, in their order.
    #[test]
    fn writes_before_a_journaled_truncate_stay_pending_and_cut() {
        for seed in 0..50 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Disk::new(DiskConfig {
                torn_write_prob: 1.0,
                ..DiskConfig::default()
            });
            d.issue(&req_append(b"abc"), &mut r);
            fsync(&mut d, &mut r).unwrap();
            d.issue(&req_append(b"defgh"), &mut r);
            d.issue(
                &DiskRequest::Truncate {
                    file: "log".into(),
                    len: 5,
                },
                &mut r,
            );
            let Issued::Fsync { token, .. } = d.issue(
                &DiskRequest::Fsync {
                    file: "other".into(),
                },
                &mut r,
            ) else {
                panic!()
            };
            d.complete_fsync(&token).unwrap();
            d.crash(&mut r);
            let log = d.durable_files()["log"].clone();
            assert!(b"abcde".starts_with(&log) && log.len() >= 3, "{log:?}");
        }
    }

    #[test]
    fn fsync_covers_only_earlier_writes() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let mut d = Disk::new(DiskConfig {
            torn_write_prob: 0.0,
            ..DiskConfig::default()
        });
        d.issue(&req_append(b"a"), &mut r);
        let Issued::Fsync { token, .. } =
            d.issue(&DiskRequest::Fsync { file: "log".into() }, &mut r)
        else {
            panic!()
        };
        d.issue(&req_append(b"b"), &mut r);
        d.complete_fsync(&token).unwrap();
        d.crash(&mut r);
        assert_eq!(d.durable_files()["log"], b"a".to_vec());
    }

    #[test]
    fn torn_write_keeps_a_prefix() {
        let mut seen_partial = false;
        for seed in 0..200 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Disk::new(DiskConfig {
                torn_write_prob: 1.0,
                ..DiskConfig::default()
            });
            d.issue(&req_append(b"0123"), &mut r);
            fsync(&mut d, &mut r).unwrap();
            d.issue(&req_append(b"4567"), &mut r);
            d.issue(&req_append(b"89ab"), &mut r);
            d.crash(&mut r);
            let got = d.durable_files()["log"].clone();
            assert!(b"0123456789ab".starts_with(&got), "not a prefix: {got:?}");
            assert!(got.len() >= 4);
            if !got.len().is_multiple_of(4) {
                seen_partial = true;
            }
        }
        assert!(seen_partial, "some crash should tear a write mid-way");
    }

    #[test]
    fn eio_on_fsync_drops_the_page_cache() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let mut d = Disk::new(DiskConfig::default());
        d.issue(&req_append(b"x"), &mut r);
        fsync(&mut d, &mut r).unwrap();
        d.issue(&req_append(b"y"), &mut r);
        d.fail_next_fsyncs(1);
        assert_eq!(fsync(&mut d, &mut r), Err(DiskError::Io));
        assert_eq!(d.current("log").unwrap(), b"x");
        d.issue(&req_append(b"z"), &mut r);
        fsync(&mut d, &mut r).unwrap();
        assert_eq!(d.durable_files()["log"], b"xz".to_vec());
    }

    #[test]
    fn full_disk_refuses_growth() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        let mut d = Disk::new(DiskConfig::default());
        d.issue(&req_append(b"abc"), &mut r);
        d.fill();
        let Issued::Done { result, .. } = d.issue(&req_append(b"d"), &mut r) else {
            panic!()
        };
        assert_eq!(result, Err(DiskError::NoSpace));
        d.clear_faults();
        let Issued::Done { result, .. } = d.issue(&req_append(b"d"), &mut r) else {
            panic!()
        };
        assert!(result.is_ok());
    }

    #[test]
    fn corruption_flips_a_durable_byte() {
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let mut d = Disk::new(DiskConfig::default());
        d.issue(&req_append(b"abcdefgh"), &mut r);
        fsync(&mut d, &mut r).unwrap();
        let (name, off) = d.corrupt("log", 4, &mut r).unwrap();
        assert_eq!(name, "log");
        assert!(off >= 4);
        assert_ne!(d.durable_files()["log"], b"abcdefgh".to_vec());
    }
}
