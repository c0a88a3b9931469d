//! Every refused value names its key's line and column.

use std::path::Path;

use super::{Scenario, ScenarioError};

/// A ZooKeeper scenario with a line for most settings (line numbers in
/// the comments of the tests below refer to it).
const ZK: &str = r#"description = "t"
duration_ms = 10000
[cluster]
system = "zk"
servers = 3
clients = 3
[cluster.config]
check_max_steps = 100000
[workload]
processes = 3
think_ms = 10.0
read_fraction = 0.5
keys = 2
# timeout_ms: ZooKeeper clients time out with their session
[network]
latency_us = 500
[disk]
torn_write_prob = 0.5
[clock]
max_drift_ppm = 100
[faults]
quiet_ms = 2000
min_duration_ms = 100
max_duration_ms = 1000
max_down = 1
[faults.random]
crash = 0.5
[[faults.at]]
at_ms = 1000
kind = "loss"
value = 0.1
duration_ms = 500
[[faults.at]]
at_ms = 2000
kind = "crash"
"#;

/// A Kafka scenario.
const KAFKA: &str = r#"description = "k"
duration_ms = 4000
[cluster]
system = "kafka"
servers = 3
clients = 2
[cluster.config]
partitions = 2
replication_factor = 3
min_insync_replicas = 2
flush_messages = 1
[workload]
processes = 2
[faults]
quiet_ms = 1000
"#;

/// `text` with line `line` (1-based) replaced by `with` (which may hold
/// several lines, or none).
fn edit(text: &str, line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = with;
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The error of a text that must be refused: (line, column, message).
fn refused(text: &str) -> (usize, usize, String) {
    match Scenario::parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(ScenarioError::Invalid {
            file,
            line,
            column,
            message,
        }) => {
            assert_eq!(file, Path::new("t.toml"));
            (line, column, message)
        }
        Err(e) => panic!("{e}"),
    }
}

/// Asserts that replacing line `line` of `base` by `with` is refused at
/// `at` with a message containing every one of `needles`.
#[track_caller]
fn check(base: &str, line: usize, with: &str, at: (usize, usize), needles: &[&str]) {
    let (l, c, message) = refused(&edit(base, line, with));
    assert_eq!((l, c), at, "{with}: {message}");
    for n in needles {
        assert!(message.contains(n), "{with}: `{message}` lacks `{n}`");
    }
}

#[test]
fn the_bases_load() {
    for base in [ZK, KAFKA] {
        Scenario::parse(base, Path::new("t.toml")).expect("base scenario");
    }
}

#[test]
fn probabilities_are_in_0_1() {
    for v in ["3.0", "-0.1", "nan", "inf"] {
        check(
            ZK,
            18,
            &format!("torn_write_prob = {v}"),
            (18, 1),
            &["disk.torn_write_prob", "not a probability", "[0, 1]"],
        );
        check(
            ZK,
            12,
            &format!("read_fraction = {v}"),
            (12, 1),
            &["workload.read_fraction", "[0, 1]"],
        );
    }
    check(
        ZK,
        31,
        "value = 1.5",
        (31, 1),
        &[
            "faults.at[0].value = 1.5",
            "loss probability",
            "from 0 to 1",
        ],
    );
}

#[test]
fn fault_rates_are_finite_and_bounded() {
    check(
        ZK,
        27,
        "crash = 1e12",
        (27, 1),
        &[
            "faults.random.crash = 1000000000000",
            "at most 10000",
            "1250.000",
        ],
    );
    for v in ["-1.0", "nan", "inf"] {
        check(
            ZK,
            27,
            &format!("crash = {v}"),
            (27, 1),
            &["faults.random.crash", "rate per second"],
        );
    }
}

#[test]
fn think_time_is_positive_and_operations_bounded() {
    for v in ["0.0", "-5.0", "nan", "inf"] {
        check(
            ZK,
            11,
            &format!("think_ms = {v}"),
            (11, 1),
            &["workload.think_ms", "positive"],
        );
    }
    check(
        ZK,
        11,
        "think_ms = 0.001",
        (11, 1),
        &["30000000 operations", "at most 2000000"],
    );
}

#[test]
fn workload_sizes_are_checked() {
    check(
        ZK,
        10,
        "processes = 0",
        (10, 1),
        &["workload.processes = 0"],
    );
    check(ZK, 10, "processes = 5000", (10, 1), &["at most 1024"]);
    check(
        ZK,
        13,
        "keys = 0",
        (13, 1),
        &["workload.keys = 0", "1 to 10000"],
    );
    check(
        ZK,
        14,
        "timeout_ms = 0",
        (14, 1),
        &["workload.timeout_ms = 0"],
    );
    // A setting the system's workload does not read is refused, not
    // silently ignored.
    check(
        ZK,
        14,
        "timeout_ms = 500",
        (14, 1),
        &["workload.timeout_ms is not read", "Zk"],
    );
}

#[test]
fn fault_durations_are_ordered_and_fit_the_run() {
    check(
        ZK,
        23,
        "min_duration_ms = 2000",
        (23, 1),
        &["faults.min_duration_ms (2000) must not exceed faults.max_duration_ms (1000)"],
    );
    check(
        ZK,
        24,
        "max_duration_ms = 20000000",
        (24, 1),
        &["faults.max_duration_ms = 20000000 is too large: at most 3600000 ms"],
    );
    check(
        ZK,
        32,
        "duration_ms = 0",
        (32, 1),
        &["faults.at[0].duration_ms = 0"],
    );
    // A default that the other setting contradicts points at that one.
    check(
        &edit(ZK, 24, "max_duration_ms = 50"),
        23,
        "",
        (24, 1),
        &["faults.min_duration_ms (200) must not exceed faults.max_duration_ms (50)"],
    );
}

#[test]
fn scheduled_faults_happen_before_the_quiet_period() {
    check(
        ZK,
        29,
        "at_ms = 9000",
        (29, 1),
        &["faults.at[0].at_ms = 9000", "quiet period", "8000 ms"],
    );
    check(
        ZK,
        34,
        "at_ms = 20000",
        (34, 1),
        &["faults.at[1].at_ms = 20000"],
    );
}

#[test]
fn a_fault_takes_only_the_settings_it_uses() {
    check(
        ZK,
        35,
        "kind = \"crash\"\nvalue = 3.0",
        (36, 1),
        &["faults.at[1].value: a `crash` fault takes no value"],
    );
    check(
        ZK,
        35,
        "kind = \"heal\"\nduration_ms = 10",
        (36, 1),
        &["instantaneous"],
    );
    check(
        ZK,
        35,
        "kind = \"partition-halves\"\nnodes = [1]",
        (36, 1),
        &["takes no nodes"],
    );
    check(
        ZK,
        35,
        "kind = \"disk-eio\"\nvalue = 2.5",
        (36, 1),
        &["a whole number from 1 to 1000000"],
    );
    check(
        ZK,
        35,
        "kind = \"crash\"\nfile = \"txnlog\"",
        (36, 1),
        &["faults.at[1].file: only disk-corrupt takes it, not `crash`"],
    );
    check(
        ZK,
        35,
        "kind = \"disk-corrupt\"\nfile = \"\"",
        (36, 1),
        &["file is empty"],
    );
}

#[test]
fn max_down_fits_the_pool() {
    check(
        ZK,
        25,
        "max_down = 4",
        (25, 1),
        &["faults.max_down = 4", "fault pool (3 servers)"],
    );
    check(ZK, 25, "max_down = 0", (25, 1), &["faults.max_down = 0"]);
}

#[test]
fn cluster_sizes_are_ones_the_system_runs() {
    check(ZK, 5, "servers = 0", (5, 1), &["cluster.servers = 0"]);
    check(
        ZK,
        5,
        "servers = 1",
        (5, 1),
        &["cluster.servers = 1", "2 to 9", "never elects itself"],
    );
    check(ZK, 5, "servers = 10", (5, 1), &["2 to 9"]);
    check(ZK, 6, "clients = 0", (6, 1), &["cluster.clients = 0"]);
    check(KAFKA, 5, "servers = 10", (5, 1), &["1 to 9 brokers"]);
    check(
        KAFKA,
        7,
        "[cluster.config]\nzk_servers = 1",
        (8, 1),
        &["cluster.config.zk_servers = 1", "2 to 9"],
    );
    check(
        KAFKA,
        7,
        "[cluster.config]\nzk_servers = 100",
        (8, 1),
        &["2 to 9"],
    );
}

#[test]
fn kafka_replication_settings_agree() {
    check(
        &edit(KAFKA, 9, "replication_factor = 2"),
        10,
        "min_insync_replicas = 3",
        (10, 1),
        &["cluster.config.min_insync_replicas (3) must be at most cluster.config.replication_factor (2)"],
    );
    check(
        KAFKA,
        9,
        "replication_factor = 4",
        (9, 1),
        &["cluster.config.replication_factor = 4", "1 to 3"],
    );
    // One broker: the default min.insync.replicas (2) cannot be met; the
    // size that makes it so is named.
    let one = edit(&edit(KAFKA, 10, ""), 9, "");
    check(
        &one,
        5,
        "servers = 1",
        (5, 1),
        &["(2, the default)", "(1, the default"],
    );
    check(
        KAFKA,
        9,
        "replication_factor = \"three\"",
        (9, 1),
        &[
            "cluster.config.replication_factor must be an integer",
            "\"three\"",
        ],
    );
}

#[test]
fn kafka_settings_are_not_clamped() {
    check(
        KAFKA,
        8,
        "partitions = 0",
        (8, 1),
        &["cluster.config.partitions = 0", "1 to 64"],
    );
    check(KAFKA, 8, "partitions = 65", (8, 1), &["1 to 64"]);
    check(
        KAFKA,
        11,
        "flush_messages = 0",
        (11, 1),
        &["cluster.config.flush_messages = 0"],
    );
    check(
        KAFKA,
        11,
        "tick_ms = 0",
        (11, 1),
        &["cluster.config.tick_ms = 0"],
    );
    check(
        KAFKA,
        11,
        "producers = 2",
        (11, 1),
        &["cluster.config.producers = 2", "1 to 1"],
    );
    check(
        KAFKA,
        11,
        "producers = 0",
        (11, 1),
        &["cluster.config.producers = 0"],
    );
    check(
        KAFKA,
        11,
        "linger_ms = 5",
        (11, 1),
        &["unknown Kafka setting `cluster.config.linger_ms`"],
    );
    check(KAFKA, 11, "idempotent = 1", (11, 1), &["true or false"]);
}

#[test]
fn zookeeper_settings_are_checked() {
    check(
        ZK,
        8,
        "check_max_steps = 999",
        (8, 1),
        &["cluster.config.check_max_steps = 999"],
    );
    check(
        ZK,
        8,
        "tick_ms = 0",
        (8, 1),
        &["cluster.config.tick_ms = 0"],
    );
    check(
        ZK,
        8,
        "min_session_timeout_ms = 500\nmax_session_timeout_ms = 400",
        (8, 1),
        &["min_session_timeout_ms (500) must not exceed"],
    );
    check(ZK, 8, "tick_ms = \"fast\"", (8, 1), &["must be an integer"]);
}

#[test]
fn world_settings_are_bounded() {
    check(
        ZK,
        16,
        "latency_us = 100000000000",
        (16, 1),
        &["network.latency_us", "at most 60000000"],
    );
    check(
        ZK,
        20,
        "max_drift_ppm = 2000000",
        (20, 1),
        &["clock.max_drift_ppm", "at most 100000"],
    );
    check(ZK, 2, "duration_ms = 0", (2, 1), &["duration_ms = 0"]);
    check(
        ZK,
        2,
        "duration_ms = 100000000",
        (2, 1),
        &["one simulated hour"],
    );
    check(
        ZK,
        22,
        "quiet_ms = 10000",
        (22, 1),
        &["faults.quiet_ms (10000) must be shorter"],
    );
}

#[test]
fn faults_aimed_at_events_are_checked() {
    let on = |body: &str| format!("kind = \"crash\"\n[[faults.on]]\n{body}");
    check(
        ZK,
        35,
        &on("event = \"isr-grow\"\nkind = \"crash\""),
        (37, 1),
        &["faults.on[0].event: unknown event `isr-grow`", "isr-shrink"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"pause-client\""),
        (38, 1),
        &["faults.on[0].kind", "client nodes"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\ngroup = \"zk\""),
        (39, 1),
        &["faults.on[0].group", "role target"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\nprobability = 1.5"),
        (39, 1),
        &["faults.on[0].probability = 1.5 is not a probability"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\nmax_times = 0"),
        (39, 1),
        &["faults.on[0].max_times = 0 must be 1 to"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\nafter_ms = 8000"),
        (39, 1),
        &["faults.on[0].after_ms = 8000", "quiet period"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\nvalue = 2.0"),
        (39, 1),
        &["faults.on[0].value: a `crash` fault takes no value"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\ntarget = \"leader\"\ngroup = \"nowhere\""),
        (40, 1),
        &["unknown server group `nowhere`"],
    );
    check(
        ZK,
        35,
        &on("event = \"isr-shrink\"\nkind = \"crash\"\ntarget = \"boss\""),
        (39, 10),
        &["unknown variant `boss`"],
    );
    let random = |body: &str| format!("kind = \"crash\"\n[faults.on_random]\n{body}");
    check(
        ZK,
        35,
        &random("events = [\"zk-leader-elected\", \"zk-nap\"]"),
        (37, 32),
        &["faults.on_random.events[1]: unknown event `zk-nap`"],
    );
    check(
        ZK,
        35,
        &random("kinds = [\"crash-client\"]"),
        (37, 10),
        &["faults.on_random.kinds[0]", "client nodes"],
    );
    check(
        ZK,
        35,
        &random("max_faults = 0"),
        (37, 1),
        &["faults.on_random.max_faults = 0"],
    );
    // Nothing to draw from: no kinds given, and no server faults of its
    // own.
    let mut text: Vec<&str> = ZK.lines().take(25).collect();
    text.push("[faults.on_random]");
    text.push("probability = 0.5");
    let (l, _, message) = refused(&(text.join("\n") + "\n"));
    assert_eq!(l, 26, "{message}");
    assert!(message.contains("names no fault kinds"), "{message}");
}

#[test]
fn faults_aimed_at_events_load() {
    let text = edit(
        ZK,
        35,
        "kind = \"crash\"\n[[faults.on]]\nevent = \"zk-proposal-logged\"\nkind = \"power-loss\"\ntarget = \"subject\"\ndelay_ms = 3\nprobability = 0.5\nmax_times = 4\n[faults.on_random]\nprobability = 0.3\nevents = [\"zk-leader-elected\"]\n",
    );
    let s = Scenario::parse(&text, Path::new("t.toml")).expect("loads");
    assert_eq!(s.spec.faults.on.len(), 1);
    assert_eq!(s.spec.faults.on[0].get_ref().max_times, 4);
    assert!(s.spec.faults.on_random.is_some());
}
