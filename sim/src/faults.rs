//! Carrying out the nemesis schedule on the world: which nodes a fault hits
//! (chosen when it fires, from the nemesis RNG) and how it is reverted.

use rand::seq::SliceRandom;
use rand::Rng;

use kzsim_model::NodeId;

use crate::engine::{log_info, Engine, Ev};
use crate::host::DownReason;
use crate::nemesis::{ActionKind, Aim, FaultKind, Role};

/// Spacing of swizzle-clog steps (µs).
const SWIZZLE_STEP_US: u64 = 50_000;

impl Engine {
    /// The servers a fault aimed at `aim` chooses from: its group (or the
    /// system's fault pool), narrowed to the servers in its role when any
    /// is in it.
    fn pool(&self, aim: &Aim) -> Vec<NodeId> {
        let base = self.base_pool(aim).to_vec();
        let in_role: Vec<NodeId> = base
            .iter()
            .copied()
            .filter(|&s| self.has_role(s, aim.role))
            .collect();
        if in_role.is_empty() {
            base
        } else {
            in_role
        }
    }

    /// The servers of `aim`'s group, or the system's fault pool.
    fn base_pool(&self, aim: &Aim) -> &[NodeId] {
        let layout = self.system.layout();
        aim.group
            .as_deref()
            .and_then(|g| layout.group(g))
            .unwrap_or(&layout.fault_pool)
    }

    /// Whether server `s` is up and in `role` now.
    fn has_role(&self, s: NodeId, role: Role) -> bool {
        let node = self.hosts[s as usize].node.as_ref();
        match role {
            Role::Any => true,
            Role::Leader => node.is_some_and(|n| n.is_leader()),
            Role::Follower => node.is_some_and(|n| !n.is_leader()),
            Role::Controller => node.is_some_and(|n| n.is_controller()),
            Role::Coordinator => node.is_some_and(|n| n.is_group_coordinator()),
        }
    }

    /// The explicit targets of `aim` as node ids (indexes into its group
    /// or the fault pool; out-of-range indexes are dropped).
    fn explicit(&self, aim: &Aim) -> Vec<NodeId> {
        if !aim.ids.is_empty() {
            return aim.ids.clone();
        }
        self.indexed(aim, &aim.nodes)
    }

    /// Servers `indexes` of `aim`'s group or the fault pool (out-of-range
    /// indexes are dropped).
    fn indexed(&self, aim: &Aim, indexes: &[u32]) -> Vec<NodeId> {
        let base = self.base_pool(aim);
        indexes
            .iter()
            .filter_map(|&i| base.get(i as usize).copied())
            .collect()
    }

    /// The servers a partition aimed at `aim` cuts its targets off from:
    /// a named group, or the pool's servers in a named role.
    fn cut_from(&self, aim: &Aim, hit: &[NodeId]) -> Option<Vec<NodeId>> {
        if !aim.cut_nodes.is_empty() {
            let mut from = self.indexed(aim, &aim.cut_nodes);
            from.retain(|n| !hit.contains(n));
            return Some(from);
        }
        let name = aim.cut_from.as_deref()?;
        let layout = self.system.layout();
        let from = match layout.group(name) {
            Some(g) => g.to_vec(),
            None => {
                let role = match name {
                    "leader" => Role::Leader,
                    "follower" => Role::Follower,
                    "controller" => Role::Controller,
                    "coordinator" => Role::Coordinator,
                    _ => Role::Any,
                };
                layout
                    .fault_pool
                    .iter()
                    .copied()
                    .filter(|&s| self.has_role(s, role))
                    .collect()
            }
        };
        Some(from.into_iter().filter(|n| !hit.contains(n)).collect())
    }

    /// Whether `faults.max_down` servers of the fault pool are down or
    /// paused already.
    fn at_max_down(&self) -> bool {
        let Some(max) = self.max_down else {
            return false;
        };
        let down = self
            .system
            .layout()
            .fault_pool
            .iter()
            .filter(|&&s| {
                let h = &self.hosts[s as usize];
                !h.alive() || h.paused || h.stopping
            })
            .count();
        down >= max as usize
    }

    fn up(&self, pool: &[NodeId]) -> Vec<NodeId> {
        pool.iter()
            .copied()
            .filter(|s| self.hosts[*s as usize].alive() && !self.hosts[*s as usize].stopping)
            .collect()
    }

    fn pick(&mut self, from: Vec<NodeId>) -> Vec<NodeId> {
        from.choose(&mut self.nem_rng)
            .copied()
            .into_iter()
            .collect()
    }

    /// The client nodes a client fault aimed at `aim` hits: its explicit
    /// `nodes` (client indexes, out-of-range ones dropped), or one client
    /// picked among those `eligible` now.
    fn client_targets(&mut self, aim: &Aim, eligible: fn(&Engine, NodeId) -> bool) -> Vec<NodeId> {
        let clients = &self.system.layout().clients;
        if !aim.nodes.is_empty() {
            return aim
                .nodes
                .iter()
                .filter_map(|i| clients.get(*i as usize).copied())
                .collect();
        }
        let pool = clients
            .iter()
            .copied()
            .filter(|&c| eligible(self, c))
            .collect();
        self.pick(pool)
    }

    fn targets(&mut self, explicit: &[NodeId], pool: Vec<NodeId>) -> Vec<NodeId> {
        if explicit.is_empty() {
            self.pick(pool)
        } else {
            explicit.to_vec()
        }
    }

    /// Nodes on a server's side of a partition: the server and its clients.
    fn with_clients(&self, servers: &[NodeId]) -> Vec<NodeId> {
        let layout = self.system.layout();
        layout
            .all()
            .filter(|n| servers.contains(&layout.home(*n)))
            .collect()
    }

    /// Cuts every link from `a` to `b` (and back, unless `one_way`), and
    /// breaks the live connections that cross.
    fn cut_groups(&mut self, a: &[NodeId], b: &[NodeId], one_way: bool) {
        for &x in a {
            for &y in b {
                if x == y {
                    continue;
                }
                self.net.cut(x, y);
                if !one_way {
                    self.net.cut(y, x);
                }
            }
        }
        let until = self.now + self.net.config().detect_us;
        for (x, y) in self.net.live_pairs() {
            if !self.net.connectable(x, y) {
                let notify = self.net.break_conn(x, y, until);
                self.notify_lost(&notify, x, y, until);
            }
        }
    }

    /// Applies schedule entry `index`.
    pub(crate) fn apply_action(&mut self, index: usize) {
        match self.schedule[index].kind.clone() {
            ActionKind::Start {
                id,
                kind,
                aim,
                value,
            } => {
                let hit = self.start_fault(kind, &aim, value);
                self.record_fault(kind.name(), &hit, value);
                self.note_applied(id, kind, &hit, value);
                self.active.insert(id, (kind, hit));
            }
            ActionKind::End { id } => {
                if let Some(a) = self.applied.iter_mut().rev().find(|a| a.id == id) {
                    a.end_us = Some(self.now);
                }
                let Some((kind, hit)) = self.active.remove(&id) else {
                    return;
                };
                self.record_fault(&format!("end-{}", kind.name()), &hit, None);
                self.end_fault(kind, &hit);
            }
            ActionKind::Quiet => {
                self.record_fault("quiet", &[], None);
                self.quiet();
            }
        }
    }

    /// Starts a fault; returns the nodes it hit.
    fn start_fault(&mut self, kind: FaultKind, aim: &Aim, value: Option<f64>) -> Vec<NodeId> {
        use FaultKind::*;
        let mut aim = aim.clone();
        if kind == PartitionLeader && aim.role == Role::Any {
            aim.role = Role::Leader;
        }
        let pool = self.pool(&aim);
        let explicit = self.explicit(&aim);
        let nodes = explicit.as_slice();
        if matches!(kind, Crash | Kill | Shutdown | Pause) && self.at_max_down() {
            return Vec::new();
        }
        match kind {
            Shutdown => {
                let hit = self.targets(nodes, self.up(&pool));
                for &n in &hit {
                    self.request_shutdown(n);
                }
                hit
            }
            Crash | Kill => {
                let hit = self.targets(nodes, self.up(&pool));
                for &n in &hit {
                    self.take_down(n, DownReason::Fault, kind == Crash);
                }
                hit
            }
            PowerLoss => {
                let hit = if nodes.is_empty() {
                    pool
                } else {
                    nodes.to_vec()
                };
                for &n in &hit {
                    // The machine loses power even if the process was down.
                    let host = &mut self.hosts[n as usize];
                    if !host.alive() {
                        host.disk.crash(&mut host.disk_rng);
                    }
                    self.take_down(n, DownReason::Fault, true);
                }
                hit
            }
            Restart => {
                let down: Vec<NodeId> = self
                    .system
                    .layout()
                    .servers
                    .iter()
                    .copied()
                    .filter(|s| !self.hosts[*s as usize].alive())
                    .collect();
                let hit = if nodes.is_empty() {
                    down
                } else {
                    nodes.to_vec()
                };
                for &n in &hit {
                    self.boot(n);
                }
                hit
            }
            Pause => {
                let pool = self
                    .up(&pool)
                    .into_iter()
                    .filter(|s| !self.hosts[*s as usize].paused)
                    .collect();
                let hit = self.targets(nodes, pool);
                for &n in &hit {
                    if self.hosts[n as usize].alive() {
                        self.hosts[n as usize].paused = true;
                    }
                }
                hit
            }
            PauseClient => {
                let hit = self.client_targets(&aim, |e, c| {
                    let h = &e.hosts[c as usize];
                    h.alive() && !h.paused
                });
                for &n in &hit {
                    if self.hosts[n as usize].alive() {
                        self.hosts[n as usize].paused = true;
                    }
                }
                hit
            }
            CrashClient => {
                let hit = self.client_targets(&aim, |e, c| e.hosts[c as usize].alive());
                for &n in &hit {
                    // A process crash: what was in flight ends `info` (see
                    // `take_down`); a client has no durable files.
                    self.take_down(n, DownReason::Fault, false);
                }
                hit
            }
            StallClient => {
                // The stall itself is the entry in `active` that this
                // occurrence gets (see `Engine::stalled`).
                self.client_targets(&aim, |e, c| e.hosts[c as usize].alive() && !e.stalled(c))
            }
            Resume => {
                let hit = if nodes.is_empty() {
                    self.system.layout().servers.clone()
                } else {
                    nodes.to_vec()
                };
                for &n in &hit {
                    self.resume(n);
                }
                hit
            }
            PartitionHalves => {
                let mut s = pool;
                s.shuffle(&mut self.nem_rng);
                let half = s.len() / 2;
                let (a, b) = s.split_at(half.max(1));
                let (a, b) = (self.with_clients(a), self.with_clients(b));
                self.cut_groups(&a, &b, false);
                a.into_iter()
                    .filter(|n| self.system.layout().is_server(*n))
                    .collect()
            }
            PartitionIsolate | PartitionLeader => {
                let hit = self.targets(nodes, pool);
                if let Some(from) = self.cut_from(&aim, &hit) {
                    // Only between the targets and those servers: each
                    // keeps its clients and every other link.
                    self.cut_groups(&hit, &from, false);
                    return hit;
                }
                let inside = self.with_clients(&hit);
                let outside: Vec<NodeId> = self
                    .system
                    .layout()
                    .all()
                    .filter(|n| !inside.contains(n))
                    .collect();
                self.cut_groups(&inside, &outside, false);
                hit
            }
            PartitionBridge => {
                let mut s = pool;
                s.shuffle(&mut self.nem_rng);
                if s.len() < 3 {
                    return Vec::new();
                }
                let bridge = s[0];
                let rest = &s[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                let (a, b) = (self.with_clients(a), self.with_clients(b));
                self.cut_groups(&a, &b, false);
                vec![bridge]
            }
            PartitionOneWay => {
                let mut s = pool;
                s.shuffle(&mut self.nem_rng);
                let cut = self.nem_rng.gen_range(1..s.len().max(2));
                let (a, b) = s.split_at(cut.min(s.len()));
                let (a, b) = (self.with_clients(a), self.with_clients(b));
                self.cut_groups(&a, &b, true);
                a.into_iter()
                    .filter(|n| self.system.layout().is_server(*n))
                    .collect()
            }
            Heal => {
                self.net.heal();
                Vec::new()
            }
            Swizzle => {
                let s = pool;
                let mut links: Vec<(NodeId, NodeId)> = s
                    .iter()
                    .flat_map(|&a| s.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
                    .collect();
                links.shuffle(&mut self.nem_rng);
                let take = self.nem_rng.gen_range(1..=links.len().max(1));
                links.truncate(take);
                for (i, (from, to)) in links.iter().enumerate() {
                    self.push(
                        self.now + i as u64 * SWIZZLE_STEP_US,
                        Ev::Clog {
                            from: *from,
                            to: *to,
                        },
                    );
                }
                links.iter().map(|l| l.0).collect()
            }
            SlowLink => {
                let hit = self.targets(nodes, pool.clone());
                let extra = (value.unwrap_or(100.0) * 1000.0) as u64;
                // Every link out of the targets, or only those to the
                // servers named by `cut_from` / `cut_nodes`.
                let to = self
                    .cut_from(&aim, &hit)
                    .unwrap_or_else(|| self.system.layout().all().collect());
                for &n in &hit {
                    for &m in &to {
                        self.net.set_slow(n, m, extra);
                    }
                }
                hit
            }
            Loss => {
                self.net.set_loss(value.unwrap_or(0.05));
                Vec::new()
            }
            Delay => {
                self.net
                    .set_extra_delay((value.unwrap_or(50.0) * 1000.0) as u64);
                Vec::new()
            }
            ClockJump => {
                let hit = self.targets(nodes, pool.clone());
                let delta_us = match value {
                    Some(ms) => (ms * 1000.0) as i64,
                    None => {
                        let ms = self.nem_rng.gen_range(100..5_000i64);
                        if self.nem_rng.gen_bool(0.5) {
                            ms * 1000
                        } else {
                            -ms * 1000
                        }
                    }
                };
                for &n in &hit {
                    let now = self.now;
                    self.hosts[n as usize].clock.jump(delta_us, now);
                    self.reschedule_timers(n);
                }
                hit
            }
            DiskCorrupt => {
                let hit = self.targets(nodes, pool.clone());
                let tail = value.unwrap_or(64.0) as u64;
                for &n in &hit {
                    let host = &mut self.hosts[n as usize];
                    let file = aim.file.as_deref().unwrap_or("");
                    let hit = host.disk.corrupt(file, tail, &mut host.disk_rng);
                    if self.log {
                        let what = match &hit {
                            Some((f, off)) => format!("disk-corrupt: {f} at byte {off}"),
                            None => format!("disk-corrupt: no durable file matches `{file}`"),
                        };
                        log_info(self.now, Some(n), &what);
                    }
                }
                hit
            }
            DiskEio => {
                let hit = self.targets(nodes, pool.clone());
                for &n in &hit {
                    self.hosts[n as usize]
                        .disk
                        .fail_next_fsyncs(value.unwrap_or(1.0) as u32);
                }
                hit
            }
            DiskFull => {
                let hit = self.targets(nodes, pool.clone());
                for &n in &hit {
                    self.hosts[n as usize].disk.fill();
                }
                hit
            }
            DiskSlow => {
                let hit = self.targets(nodes, pool.clone());
                for &n in &hit {
                    self.hosts[n as usize]
                        .disk
                        .set_slow(value.unwrap_or(20.0) as u64);
                }
                hit
            }
        }
    }

    /// Reverts a fault that lasted its duration.
    fn end_fault(&mut self, kind: FaultKind, hit: &[NodeId]) {
        use FaultKind::*;
        match kind {
            Crash | Kill | PowerLoss | CrashClient => {
                for &n in hit {
                    self.boot(n);
                }
            }
            Shutdown => {
                for &n in hit {
                    // Still shutting down when its time is up: killed (as a
                    // service manager's stop timeout does), then started.
                    self.take_down(n, DownReason::Fault, false);
                    self.boot(n);
                }
            }
            StallClient => {
                // Its entry has left `active`: the threads on these
                // clients go on, unless another stall holds them.
                for &n in hit {
                    self.wake_threads(n);
                }
            }
            Pause | PauseClient => {
                for &n in hit {
                    self.resume(n);
                }
            }
            PartitionHalves | PartitionIsolate | PartitionLeader | PartitionBridge
            | PartitionOneWay => self.net.heal(),
            Swizzle => {
                let mut links: Vec<(NodeId, NodeId)> = self.net.clogged_links();
                links.shuffle(&mut self.nem_rng);
                for (i, (from, to)) in links.into_iter().enumerate() {
                    self.push(
                        self.now + i as u64 * SWIZZLE_STEP_US,
                        Ev::Unclog { from, to },
                    );
                }
            }
            SlowLink => {
                let all: Vec<NodeId> = self.system.layout().all().collect();
                for &n in hit {
                    for &m in &all {
                        self.net.set_slow(n, m, 0);
                    }
                }
            }
            Loss => self.net.set_loss(0.0),
            Delay => self.net.set_extra_delay(0),
            DiskEio | DiskFull | DiskSlow => {
                for &n in hit {
                    self.hosts[n as usize].disk.clear_faults();
                }
            }
            Restart | Resume | Heal | ClockJump | DiskCorrupt => {}
        }
    }

    /// The quiet period: every fault healed, every node running, except
    /// the faults that outlive it (a stalled application stays stalled
    /// until its own end).
    fn quiet(&mut self) {
        self.active.retain(|_, (kind, _)| kind.outlives_quiet());
        self.net.heal();
        self.net.clear_degradation();
        self.unclog_all();
        self.quiet_started = true;
        for id in self.system.layout().all().collect::<Vec<_>>() {
            self.hosts[id as usize].disk.clear_faults();
            self.resume(id);
            self.boot(id);
        }
    }
}
