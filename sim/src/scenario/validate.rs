//! The value checks of a scenario: every number in range, every pair in
//! order, every fault able to happen as written.
//!
//! Serde has already checked the names and the types; these checks refuse
//! values a run would panic on, exhaust memory with, or silently replace
//! or ignore. The limits below are part of the scenario format: each error
//! says the limit it broke.

use kzsim_model::EventKind;

use crate::nemesis::{EventFault, FaultKind, OnRandom, TimedFault};
use crate::scenario::{ScenarioSpec, SystemKind};
use crate::system::Layout;

/// The longest run: one simulated hour.
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// The most nodes of any kind: servers or clients.
pub const MAX_NODES: u32 = 64;
/// The most workload processes.
pub const MAX_PROCESSES: u32 = 1_024;
/// The most keys a workload spreads its operations over.
pub const MAX_KEYS: u32 = 10_000;
/// The most operations a run's workload can issue, estimated as
/// `processes * duration_ms / think_ms`: the history is kept in memory.
pub const MAX_OPERATIONS: f64 = 2_000_000.0;
/// The most occurrences of one random fault kind a run can expect
/// (`rate * seconds before the quiet period`): the schedule is built
/// before the run.
pub const MAX_FAULTS_PER_KIND: f64 = 10_000.0;
/// The longest network or disk latency setting: one minute (µs).
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// The largest clock drift: 10%.
pub const MAX_DRIFT_PPM: u64 = 100_000;

/// A value that is not allowed, with the setting it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Bad {
    /// The setting, as a path (`faults.at[2].at_ms`).
    pub path: String,
    /// Where to point when the setting is not written (a default is
    /// wrong against another setting): that setting's path.
    pub instead: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> Bad {
    Bad {
        path: path.into(),
        instead: None,
        message: message.into(),
    }
}

/// Checks `v` is at most `max`.
fn at_most(path: &str, v: u64, max: u64, what: &str) -> Result<(), Bad> {
    if v > max {
        return Err(bad(
            path,
            format!("{path} = {v} is too large: at most {max}{what}"),
        ));
    }
    Ok(())
}

/// Checks `p` is a probability (a fraction in [0, 1]).
pub fn probability(path: &str, p: f64) -> Result<(), Bad> {
    if !(0.0..=1.0).contains(&p) {
        return Err(bad(
            path,
            format!("{path} = {p} is not a probability: it must be in [0, 1]"),
        ));
    }
    Ok(())
}

/// The checks that need only the scenario's own values (run before the
/// system is built).
pub fn spec(s: &ScenarioSpec) -> Result<(), Bad> {
    if s.duration_ms == 0 || s.duration_ms > MAX_DURATION_MS {
        return Err(bad(
            "duration_ms",
            format!(
                "duration_ms = {} must be 1 to {MAX_DURATION_MS} (one simulated hour)",
                s.duration_ms
            ),
        ));
    }
    if s.faults.quiet_ms >= s.duration_ms {
        return Err(Bad {
            instead: Some("duration_ms".into()),
            ..bad(
                "faults.quiet_ms",
                format!(
                    "faults.quiet_ms ({}) must be shorter than duration_ms ({})",
                    s.faults.quiet_ms, s.duration_ms
                ),
            )
        });
    }
    cluster(s)?;
    workload(s)?;
    world(s)?;
    faults(s)
}

fn cluster(s: &ScenarioSpec) -> Result<(), Bad> {
    let c = &s.cluster;
    if c.servers == 0 || c.servers > MAX_NODES {
        return Err(bad(
            "cluster.servers",
            format!("cluster.servers = {} must be 1 to {MAX_NODES}", c.servers),
        ));
    }
    at_most("cluster.clients", c.clients.into(), MAX_NODES.into(), "")?;
    let w = &s.workload;
    if w.processes == 0 && c.system != SystemKind::Demo {
        return Err(bad(
            "workload.processes",
            "workload.processes = 0 runs no workload, which only the demo system allows (for engine tests): give at least 1",
        ));
    }
    if w.processes > 0 && c.clients == 0 {
        return Err(Bad {
            instead: Some("workload.processes".into()),
            ..bad(
                "cluster.clients",
                format!(
                    "cluster.clients = 0 leaves the {} workload processes no client node to run on: give at least 1 (or workload.processes = 0)",
                    w.processes
                ),
            )
        });
    }
    Ok(())
}

fn workload(s: &ScenarioSpec) -> Result<(), Bad> {
    let w = &s.workload;
    at_most(
        "workload.processes",
        w.processes.into(),
        MAX_PROCESSES.into(),
        "",
    )?;
    if !(w.think_ms.is_finite() && w.think_ms > 0.0) {
        return Err(bad(
            "workload.think_ms",
            format!(
                "workload.think_ms = {} must be a positive number of milliseconds",
                w.think_ms
            ),
        ));
    }
    let ops = w.processes as f64 * s.duration_ms as f64 / w.think_ms;
    if ops > MAX_OPERATIONS {
        return Err(bad(
            "workload.think_ms",
            format!(
                "workload.think_ms = {} with {} processes over duration_ms = {} would issue up to {ops:.0} operations: at most {MAX_OPERATIONS} per run (think_ms at least {:.3})",
                w.think_ms,
                w.processes,
                s.duration_ms,
                w.processes as f64 * s.duration_ms as f64 / MAX_OPERATIONS
            ),
        ));
    }
    if w.timeout_ms == 0 || w.timeout_ms > MAX_DURATION_MS {
        return Err(bad(
            "workload.timeout_ms",
            format!(
                "workload.timeout_ms = {} must be 1 to {MAX_DURATION_MS} ms (one hour)",
                w.timeout_ms
            ),
        ));
    }
    probability("workload.read_fraction", w.read_fraction)?;
    if w.keys == 0 || w.keys > MAX_KEYS {
        return Err(bad(
            "workload.keys",
            format!("workload.keys = {} must be 1 to {MAX_KEYS}", w.keys),
        ));
    }
    Ok(())
}

fn world(s: &ScenarioSpec) -> Result<(), Bad> {
    let n = &s.network;
    let d = &s.disk;
    let latencies = [
        ("network.latency_us", n.latency_us),
        ("network.jitter_us", n.jitter_us),
        ("network.connect_timeout_us", n.connect_timeout_us),
        ("network.detect_us", n.detect_us),
        ("disk.write_latency_us", d.write_latency_us),
        ("disk.fsync_latency_us", d.fsync_latency_us),
        ("disk.fsync_jitter_us", d.fsync_jitter_us),
    ];
    for (path, v) in latencies {
        at_most(path, v, MAX_LATENCY_US, " µs (one minute)")?;
    }
    probability("disk.torn_write_prob", d.torn_write_prob)?;
    at_most(
        "clock.max_offset_ms",
        s.clock.max_offset_ms,
        MAX_DURATION_MS,
        " ms (one hour)",
    )?;
    at_most(
        "clock.max_drift_ppm",
        s.clock.max_drift_ppm,
        MAX_DRIFT_PPM,
        " ppm (10%)",
    )
}

fn faults(s: &ScenarioSpec) -> Result<(), Bad> {
    let f = &s.faults;
    if f.min_duration_ms > f.max_duration_ms {
        return Err(Bad {
            instead: Some("faults.max_duration_ms".into()),
            ..bad(
                "faults.min_duration_ms",
                format!(
                    "faults.min_duration_ms ({}) must not exceed faults.max_duration_ms ({})",
                    f.min_duration_ms, f.max_duration_ms
                ),
            )
        });
    }
    at_most(
        "faults.max_duration_ms",
        f.max_duration_ms,
        MAX_DURATION_MS,
        " ms (one hour)",
    )?;
    let active_s = (s.duration_ms - f.quiet_ms) as f64 / 1000.0;
    for (kind, &rate) in &f.random {
        let path = format!("faults.random.{}", kind.name());
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(bad(
                &path,
                format!("{path} = {rate} must be a rate per second, 0 or more"),
            ));
        }
        if rate * active_s > MAX_FAULTS_PER_KIND {
            return Err(bad(
                &path,
                format!(
                    "{path} = {rate} per second would make about {:.0} faults in the {active_s} s before the quiet period: at most {MAX_FAULTS_PER_KIND} of a kind per run (a rate of at most {:.3} here)",
                    rate * active_s,
                    MAX_FAULTS_PER_KIND / active_s
                ),
            ));
        }
    }
    let quiet_at = s.duration_ms - f.quiet_ms;
    for (i, t) in f.at.iter().enumerate() {
        timed(&format!("faults.at[{i}]"), t.get_ref(), quiet_at)?;
    }
    for (i, e) in f.on.iter().enumerate() {
        on_event(&format!("faults.on[{i}]"), e.get_ref(), quiet_at)?;
    }
    if let Some(r) = &f.on_random {
        on_random(r, f)?;
    }
    Ok(())
}

/// The most faults one event-triggered entry may set off in a run.
pub const MAX_EVENT_FAULTS: u32 = 10_000;

/// Checks an event name.
fn event_name(path: &str, name: &str) -> Result<(), Bad> {
    if EventKind::parse(name).is_none() {
        let known: Vec<&str> = EventKind::all().iter().map(|(_, n, _)| *n).collect();
        return Err(bad(
            path,
            format!(
                "{path}: unknown event `{name}` (known: {})",
                known.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Checks a fault kind can be aimed at an event: it hits servers.
fn event_kind(path: &str, kind: FaultKind) -> Result<(), Bad> {
    if kind.targets_clients() {
        return Err(bad(
            path,
            format!(
                "{path}: a `{}` fault aims at client nodes; faults aimed at protocol events hit servers",
                kind.name()
            ),
        ));
    }
    Ok(())
}

fn on_event(at: &str, e: &EventFault, quiet_at: u64) -> Result<(), Bad> {
    event_name(&format!("{at}.event"), &e.event)?;
    event_kind(&format!("{at}.kind"), e.kind)?;
    probability(&format!("{at}.probability"), e.probability)?;
    if e.max_times == 0 || e.max_times > MAX_EVENT_FAULTS {
        return Err(bad(
            format!("{at}.max_times"),
            format!(
                "{at}.max_times = {} must be 1 to {MAX_EVENT_FAULTS}",
                e.max_times
            ),
        ));
    }
    if e.after_ms >= quiet_at {
        return Err(bad(
            format!("{at}.after_ms"),
            format!(
                "{at}.after_ms = {} is not before the quiet period, which begins at {quiet_at} ms: the fault would never happen",
                e.after_ms
            ),
        ));
    }
    at_most(
        &format!("{at}.delay_ms"),
        e.delay_ms,
        MAX_DURATION_MS,
        " ms (one hour)",
    )?;
    if e.group.is_some() && e.target.role().is_none() {
        return Err(bad(
            format!("{at}.group"),
            format!("{at}.group: a fault aimed at the event's subject or emitter picks no server from a group; give a role target (any, leader, follower, controller, coordinator) or leave group out"),
        ));
    }
    // The rest as for an explicit fault at time zero.
    let as_timed = TimedFault {
        at_ms: 0,
        kind: e.kind,
        nodes: Vec::new(),
        group: e.group.clone(),
        target: e.target.role().unwrap_or_default(),
        cut_from: e.cut_from.clone(),
        cut_nodes: Vec::new(),
        file: None,
        duration_ms: e.duration_ms,
        value: e.value,
    };
    timed(at, &as_timed, quiet_at.max(1))
}

fn on_random(r: &OnRandom, f: &crate::nemesis::FaultsConfig) -> Result<(), Bad> {
    let at = "faults.on_random";
    probability(&format!("{at}.probability"), r.probability)?;
    for (i, e) in r.events.iter().enumerate() {
        event_name(&format!("{at}.events[{i}]"), e)?;
    }
    for (i, k) in r.kinds.iter().enumerate() {
        event_kind(&format!("{at}.kinds[{i}]"), *k)?;
    }
    if r.kinds.is_empty() && crate::triggers::default_random_kinds(f).is_empty() {
        return Err(bad(
            format!("{at}.kinds"),
            format!("{at} names no fault kinds and the scenario has no server faults of its own to draw them from: give {at}.kinds"),
        ));
    }
    if r.max_faults == 0 || r.max_faults > MAX_EVENT_FAULTS {
        return Err(bad(
            format!("{at}.max_faults"),
            format!(
                "{at}.max_faults = {} must be 1 to {MAX_EVENT_FAULTS}",
                r.max_faults
            ),
        ));
    }
    at_most(
        &format!("{at}.max_delay_ms"),
        r.max_delay_ms,
        MAX_DURATION_MS,
        " ms (one hour)",
    )
}

/// What `value` means for a fault kind: (description, least, most,
/// whole numbers only); `None` when the kind takes no value.
fn value_rule(kind: FaultKind) -> Option<(&'static str, f64, f64, bool)> {
    use FaultKind::*;
    Some(match kind {
        Loss => ("a loss probability", 0.0, 1.0, false),
        SlowLink | Delay => ("extra latency in ms", 0.0, 60_000.0, false),
        ClockJump => ("a clock jump in ms", -3_600_000.0, 3_600_000.0, false),
        DiskCorrupt => ("a tail length in bytes", 1.0, 1_048_576.0, true),
        DiskEio => ("a number of failing fsyncs", 1.0, 1_000_000.0, true),
        DiskSlow => ("a slow-down factor", 1.0, 1_000.0, true),
        _ => return None,
    })
}

/// Whether a kind picks its targets from explicit `nodes` (the others
/// choose their own sides).
pub(crate) fn takes_nodes(kind: FaultKind) -> bool {
    use FaultKind::*;
    !matches!(
        kind,
        PartitionHalves | PartitionBridge | PartitionOneWay | Heal | Swizzle | Loss | Delay
    )
}

/// Whether a kind reads `cut_from` / `cut_nodes`.
fn takes_cut(kind: FaultKind) -> bool {
    use FaultKind::*;
    matches!(kind, PartitionIsolate | PartitionLeader | SlowLink)
}

fn timed(at: &str, t: &TimedFault, quiet_at: u64) -> Result<(), Bad> {
    let name = t.kind.name();
    if t.at_ms >= quiet_at {
        return Err(bad(
            format!("{at}.at_ms"),
            format!(
                "{at}.at_ms = {} is not before the quiet period, which begins at {quiet_at} ms (duration_ms - faults.quiet_ms): the fault would never happen",
                t.at_ms
            ),
        ));
    }
    if let Some(d) = t.duration_ms {
        if !t.kind.has_duration() {
            return Err(bad(
                format!("{at}.duration_ms"),
                format!("{at}.duration_ms: a `{name}` fault is instantaneous and has no duration"),
            ));
        }
        if d == 0 || d > MAX_DURATION_MS {
            return Err(bad(
                format!("{at}.duration_ms"),
                format!("{at}.duration_ms = {d} must be 1 to {MAX_DURATION_MS} ms (one hour; longer than the run lasts to its end)"),
            ));
        }
    }
    if let Some(v) = t.value {
        let path = format!("{at}.value");
        let Some((what, lo, hi, whole)) = value_rule(t.kind) else {
            return Err(bad(
                path,
                format!("{at}.value: a `{name}` fault takes no value"),
            ));
        };
        if !(lo..=hi).contains(&v) || (whole && v.fract() != 0.0) {
            let kind = if whole { "a whole number" } else { "a number" };
            return Err(bad(
                &path,
                format!("{path} = {v}: for `{name}` it is {what}, {kind} from {lo} to {hi}"),
            ));
        }
    }
    if !t.nodes.is_empty() && !takes_nodes(t.kind) {
        return Err(bad(
            format!("{at}.nodes"),
            format!("{at}.nodes: a `{name}` fault chooses its own sides and takes no nodes"),
        ));
    }
    if !takes_cut(t.kind) {
        for (field, given) in [
            ("cut_from", t.cut_from.is_some()),
            ("cut_nodes", !t.cut_nodes.is_empty()),
        ] {
            if given {
                return Err(bad(
                    format!("{at}.{field}"),
                    format!("{at}.{field}: only partition-isolate, partition-leader and slow-link take it, not `{name}`"),
                ));
            }
        }
    }
    if t.file.is_some() && t.kind != FaultKind::DiskCorrupt {
        return Err(bad(
            format!("{at}.file"),
            format!("{at}.file: only disk-corrupt takes it, not `{name}`"),
        ));
    }
    if t.file.as_deref() == Some("") {
        return Err(bad(
            format!("{at}.file"),
            format!("{at}.file is empty: leave it out to corrupt any file"),
        ));
    }
    if t.kind.targets_clients() && t.group.is_some() {
        return Err(bad(
            format!("{at}.group"),
            format!("{at}.group: a `{name}` fault aims at client nodes, not a server group"),
        ));
    }
    Ok(())
}

/// The checks against the built system's nodes: `max_down` and every
/// explicit fault's targets.
pub fn aims(s: &ScenarioSpec, layout: &Layout) -> Result<(), Bad> {
    let pool = layout.fault_pool.len() as u32;
    if let Some(m) = s.faults.max_down {
        if m == 0 || m > pool {
            return Err(bad(
                "faults.max_down",
                format!(
                    "faults.max_down = {m} must be 1 to the size of the fault pool ({pool} servers)"
                ),
            ));
        }
    }
    let pool_name = layout
        .groups
        .iter()
        .find(|(_, g)| *g == layout.fault_pool)
        .map_or("the fault pool", |(n, _)| n.as_str());
    let group_names = || {
        layout
            .groups
            .iter()
            .map(|g| g.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, f) in s.faults.on.iter().enumerate() {
        let at = format!("faults.on[{i}]");
        let e = f.get_ref();
        if let Some(g) = e.group.as_ref().filter(|g| layout.group(g).is_none()) {
            return Err(bad(
                format!("{at}.group"),
                format!("unknown server group `{g}` (known: {})", group_names()),
            ));
        }
        cut_from(&at, e.cut_from.as_deref(), layout)?;
    }
    for (i, f) in s.faults.at.iter().enumerate() {
        let at = format!("faults.at[{i}]");
        let t = f.get_ref();
        if t.kind.targets_clients() {
            let n = layout.clients.len() as u32;
            if let Some(bad_node) = t.nodes.iter().find(|c| **c >= n) {
                return Err(bad(
                    format!("{at}.nodes"),
                    format!("fault names client {bad_node}, but the cluster has {n} clients"),
                ));
            }
            continue;
        }
        let (group, size) = match &t.group {
            None => (pool_name, pool),
            Some(g) => match layout.group(g) {
                Some(servers) => (g.as_str(), servers.len() as u32),
                None => {
                    return Err(bad(
                        format!("{at}.group"),
                        format!("unknown server group `{g}` (known: {})", group_names()),
                    ))
                }
            },
        };
        for (field, indexes) in [("nodes", &t.nodes), ("cut_nodes", &t.cut_nodes)] {
            if let Some(n) = indexes.iter().find(|n| **n >= size) {
                return Err(bad(
                    format!("{at}.{field}"),
                    format!("`{field}` names server {n} of `{group}`, but it has {size} servers"),
                ));
            }
        }
        if !t.cut_nodes.is_empty() && t.cut_from.is_some() {
            return Err(bad(
                format!("{at}.cut_from"),
                "a fault takes `cut_from` or `cut_nodes`, not both",
            ));
        }
        cut_from(&at, t.cut_from.as_deref(), layout)?;
    }
    Ok(())
}

/// Checks a `cut_from`: a server group or a role.
fn cut_from(at: &str, c: Option<&str>, layout: &Layout) -> Result<(), Bad> {
    let Some(c) = c else { return Ok(()) };
    let roles = ["leader", "follower", "controller", "coordinator"];
    if layout.group(c).is_none() && !roles.contains(&c) {
        let groups: Vec<&str> = layout.groups.iter().map(|g| g.0.as_str()).collect();
        return Err(bad(
            format!("{at}.cut_from"),
            format!(
                "unknown `cut_from` `{c}` (known: {}, leader, follower, controller, coordinator)",
                groups.join(", ")
            ),
        ));
    }
    Ok(())
}
