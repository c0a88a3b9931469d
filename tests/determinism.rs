//! Determinism: the same seed gives the same trace hash in separate
//! processes, and `--check-determinism` holds it for a sweep.

mod common;

use common::kzsim;

fn hashes(out: &std::process::Output) -> Vec<(u64, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        // The closing `{"summary": ...}` line has no seed.
        .filter(|v| v.get("summary").is_none())
        .map(|v| {
            (
                v["seed"].as_u64().unwrap(),
                v["trace_hash"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_hash_in_two_processes() {
    // The engine's demo protocol and both real systems, with faults, Kafka
    // in both modes.
    for (file, seeds, mode) in [
        ("tests/scenarios/demo-faults.toml", 4, "both"),
        ("scenarios/zk-leader-crash.toml", 2, "both"),
        ("scenarios/kafka-leader-crash.toml", 2, "zookeeper"),
        ("scenarios/kafka-leader-crash.toml", 2, "kraft"),
        ("scenarios/kraft-controller-crash.toml", 2, "kraft"),
    ] {
        let range = format!("0..{seeds}");
        let args = [
            "run", file, "--seeds", &range, "--json", "--jobs", "2", "--mode", mode,
        ];
        let a = kzsim(&args);
        let b = kzsim(&args);
        assert_eq!(
            a.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&a.stderr)
        );
        let mut ha = hashes(&a);
        let mut hb = hashes(&b);
        ha.sort();
        hb.sort();
        assert_eq!(ha.len(), seeds, "{file}");
        assert_eq!(ha, hb, "{file}");
        // Different seeds give different traces.
        assert_ne!(ha[0].1, ha[1].1, "{file}");
    }
}

#[test]
fn replay_ends_with_the_run_hash() {
    let run = kzsim(&[
        "run",
        "tests/scenarios/demo-faults.toml",
        "--seed",
        "7",
        "--json",
    ]);
    let h = hashes(&run);
    let replay = kzsim(&[
        "replay",
        "tests/scenarios/demo-faults.toml",
        "--seed",
        "7",
        "--level",
        "info",
    ]);
    let text = String::from_utf8_lossy(&replay.stdout);
    // A passing seed has no violation lines after its hash.
    let last = text.lines().last().unwrap();
    assert_eq!(last, format!("trace hash {}", h[0].1));
    // The log is tagged with simulated time and node.
    assert!(text
        .lines()
        .any(|l| l.contains("t=") && l.contains("node=")));
}

#[test]
fn check_determinism_flag_passes() {
    let out = kzsim(&[
        "run",
        "tests/scenarios/demo-faults.toml",
        "--seeds",
        "0..3",
        "--check-determinism",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Event-triggered faults and buggify keep a seed's trace the same in two
/// processes, change it from the plain run, and `replay` with the same
/// flags ends with the run's hash.
#[test]
fn events_and_buggify_are_deterministic() {
    for (file, mode) in [
        ("scenarios/zk-leader-crash.toml", "both"),
        ("scenarios/kafka-leader-crash.toml", "kraft"),
        ("scenarios/group-coordinator-crash.toml", "zookeeper"),
    ] {
        let args = [
            "run",
            file,
            "--seeds",
            "0..3",
            "--json",
            "--jobs",
            "2",
            "--mode",
            mode,
            "--events",
            "--buggify",
        ];
        let a = hashes(&kzsim(&args));
        let b = hashes(&kzsim(&args));
        assert_eq!(a.len(), 3, "{file}");
        assert_eq!(a, b, "{file}");
        let plain = hashes(&kzsim(&args[..args.len() - 2]));
        assert_ne!(a, plain, "{file}: --events --buggify changed nothing");
    }
    let run = hashes(&kzsim(&[
        "run",
        "scenarios/zk-leader-crash.toml",
        "--seed",
        "1",
        "--json",
        "--events",
        "--buggify",
    ]));
    let replay = kzsim(&[
        "replay",
        "scenarios/zk-leader-crash.toml",
        "--seed",
        "1",
        "--level",
        "info",
        "--events",
        "--buggify",
    ]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(
        text.lines()
            .any(|l| l == format!("trace hash {}", run[0].1)),
        "replay with the run's flags gives its hash"
    );
}
