//! The command line: exit codes, clear errors for bad input, `list`.

mod common;

use std::io::Write;

use common::kzsim;

fn scenario_file(body: &str) -> tempfile_lite::TempFile {
    tempfile_lite::TempFile::new(body)
}

/// A tiny temporary-file helper (no extra dependency).
mod tempfile_lite {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    pub struct TempFile {
        pub path: PathBuf,
    }

    impl TempFile {
        pub fn new(body: &str) -> TempFile {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("kzsim-cli-test-{}-{n}.toml", std::process::id()));
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(body.as_bytes()).unwrap();
            TempFile { path }
        }
        pub fn arg(&self) -> &str {
            self.path.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

const GOOD: &str = "description = \"x\"\nduration_ms = 1000\n[cluster]\nsystem = \"demo\"\nservers = 3\n[faults]\nquiet_ms = 100\n";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn good_scenario_runs() {
    let f = scenario_file(GOOD);
    let o = kzsim(&["run", f.arg(), "--seeds", "0..2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("2 seeds, 2 passed, 0 failed"), "{out}");
}

#[test]
fn unknown_field_names_file_line_and_column() {
    let f = scenario_file(&GOOD.replace("servers = 3", "servers = 3\nreplicas = 2"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(&format!("{}:6:1", f.arg())), "{e}");
    assert!(e.contains("replicas"), "{e}");
}

#[test]
fn unknown_fault_kind_is_an_error() {
    let f = scenario_file(&format!(
        "{GOOD}[[faults.at]]\nat_ms = 10\nkind = \"meteor\"\n"
    ));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(":10:8:"), "{e}");
    assert!(e.contains("meteor"), "{e}");
    let f = scenario_file(&format!("{GOOD}[faults.random]\nmeteor = 1.0\n"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("meteor"), "{}", stderr(&o));
}

#[test]
fn unknown_system_and_bug_are_errors() {
    let f = scenario_file(&GOOD.replace("\"demo\"", "\"cassandra\""));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":4:"), "{}", stderr(&o));
    let f = scenario_file(&format!("{GOOD}[checks]\nbugs = [\"no_such_bug\"]\n"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(":9:") && e.contains("no_such_bug"), "{e}");
    let f = scenario_file(GOOD);
    let o = kzsim(&["run", f.arg(), "--seed", "1", "--bug", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown planted bug `nope`"));
}

#[test]
fn broken_toml_and_missing_file_are_errors() {
    let f = scenario_file("description = \"x\"\nduration_ms = = 3\n");
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":2:"), "{}", stderr(&o));
    let o = kzsim(&["run", "/no/such/scenario.toml", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/no/such/scenario.toml"));
}

#[test]
fn bad_seed_range_and_shard_are_errors() {
    let f = scenario_file(GOOD);
    for args in [
        vec!["run", f.arg(), "--seeds", "5..5"],
        vec!["run", f.arg(), "--seeds", "x"],
        vec!["run", f.arg(), "--shard", "3/3"],
    ] {
        let o = kzsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

/// `list` of a folder that does not exist is an error, not an empty list.
#[test]
fn list_of_a_missing_folder_is_an_error() {
    let o = kzsim(&["list", "--dir", "no/such/folder"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/folder"), "{}", stderr(&o));
}

/// Runs that would check nothing are errors, not passes: a shard that
/// selects no seed, the one seed whose range cannot be written, no worker.
#[test]
fn runs_that_check_nothing_are_errors() {
    let f = scenario_file(GOOD);
    for (args, says) in [
        (
            vec!["run", f.arg(), "--seeds", "0..3", "--shard", "5/8"],
            "selects none of the 3",
        ),
        (
            vec!["run", f.arg(), "--seed", "18446744073709551615"],
            "seeds run from 0 to",
        ),
        (
            vec!["run", f.arg(), "--seed", "1", "--jobs", "0"],
            "--jobs 0",
        ),
    ] {
        let o = kzsim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn shards_cover_the_sweep() {
    let f = scenario_file(GOOD);
    let mut seeds = Vec::new();
    for shard in ["0/2", "1/2"] {
        let o = kzsim(&[
            "run",
            f.arg(),
            "--seeds",
            "0..6",
            "--shard",
            shard,
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(0));
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v.get("summary").is_some() {
                continue;
            }
            for k in [
                "scenario",
                "seed",
                "ok",
                "verdict",
                "trace_hash",
                "violations",
                "sim_ms",
                "wall_ms",
                "events",
                "messages",
            ] {
                assert!(v.get(k).is_some(), "missing {k}");
            }
            seeds.push(v["seed"].as_u64().unwrap());
        }
    }
    seeds.sort();
    assert_eq!(seeds, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn expected_anomaly_not_shown_fails_the_seed() {
    let f = scenario_file(&format!("{GOOD}[checks]\nexpect = \"lost-write\"\n"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("replay: cargo run --release -- replay"));
}

#[test]
fn bug_sweep_reports_the_first_seed() {
    let o = kzsim(&[
        "run",
        "tests/scenarios/demo-power-loss.toml",
        "--seeds",
        "0..20",
        "--bug",
        "demo_ack_before_fsync",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FOUND bug demo_ack_before_fsync by demo-power-loss at seed"),
        "{out}"
    );
}

#[test]
fn list_json_has_the_documented_shape() {
    let o = kzsim(&["list", "--json", "--dir", "tests/scenarios"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let scenarios = v["scenarios"].as_array().unwrap();
    assert!(scenarios.iter().any(|s| s["name"] == "demo-faults"));
    for s in scenarios {
        assert!(s["file"].is_string() && s["description"].is_string());
    }
    let bugs = v["bugs"].as_array().unwrap();
    assert!(bugs.iter().any(|b| b["name"] == "demo_ack_before_fsync"
        && b["component"].is_string()
        && b["breaks"].is_string()
        && b["scenario"].is_string()));
    let faults = v["faults"].as_array().unwrap();
    for name in [
        "crash",
        "pause",
        "partition-bridge",
        "swizzle",
        "clock-jump",
        "disk-eio",
        "power-loss",
    ] {
        assert!(faults.iter().any(|f| f["name"] == name), "{name}");
    }
}

const KAFKA: &str = "description = \"k\"\nduration_ms = 2000\n[cluster]\nsystem = \"kafka\"\nservers = 3\nclients = 2\n[cluster.config]\nacks = \"all\"\n[workload]\nprocesses = 2\n[faults]\nquiet_ms = 1000\n";

#[test]
fn system_settings_are_checked_when_the_scenario_loads() {
    let f = scenario_file(KAFKA);
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // An unknown setting names its line.
    let f = scenario_file(&KAFKA.replace("acks = \"all\"", "acks = \"all\"\nlinger_ms = 5"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(":9:1:") && e.contains("linger_ms"), "{e}");
    // A bad value, and a workload that does not fit the system.
    let f = scenario_file(&KAFKA.replace("\"all\"", "\"most\""));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":8:1:"), "{}", stderr(&o));
    // Fewer processes than client nodes, or more than 16 per producer
    // (processes past the clients run on the producers).
    for n in [1, 19] {
        let f = scenario_file(&KAFKA.replace("processes = 2", &format!("processes = {n}")));
        let o = kzsim(&["run", f.arg(), "--seed", "1"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(":10:1:"), "{}", stderr(&o));
    }
    let f = scenario_file(&KAFKA.replace("processes = 2", "processes = 5"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn unknown_groups_roles_and_anomalies_are_errors() {
    let fault = "[[faults.at]]\nat_ms = 10\nkind = \"partition-leader\"\n";
    for (extra, needle) in [
        ("group = \"racks\"\n", "racks"),
        ("cut_from = \"moon\"\n", "moon"),
        ("target = \"boss\"\n", "boss"),
        ("nodes = [7]\n", "server 7"),
        ("cut_nodes = [5]\n", "`cut_nodes` names server 5"),
        ("cut_nodes = [1]\ncut_from = \"zk\"\n", "not both"),
    ] {
        let f = scenario_file(&format!("{KAFKA}{fault}{extra}"));
        let o = kzsim(&["run", f.arg(), "--seed", "1"]);
        assert_eq!(o.status.code(), Some(2), "{extra}");
        assert!(stderr(&o).contains(needle), "{extra}: {}", stderr(&o));
    }
    let f = scenario_file(&format!("{KAFKA}[checks]\nexpect = \"lost-wrte\"\n"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown anomaly `lost-wrte`"),
        "{}",
        stderr(&o)
    );
    let f = scenario_file(&format!("{KAFKA}[checks]\nallow = [\"unseen\"]\n"));
    let o = kzsim(&["run", f.arg(), "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs checks.expect"), "{}", stderr(&o));
}

#[test]
fn test_seed_variables_that_select_nothing_fail() {
    use common::parse_seed_env as p;
    assert_eq!(p(None, None, 0..4), Ok(0..4));
    assert_eq!(p(Some("7"), None, 0..4), Ok(7..8));
    assert_eq!(p(None, Some("3..9"), 0..4), Ok(3..9));
    for (one, range, needle) in [
        (None, Some("5..5"), "empty range"),
        (None, Some("9..3"), "empty range"),
        (None, Some("3"), "must be A..B"),
        (None, Some("a..3"), "not a seed"),
        (Some("18446744073709551615"), None, "seeds run from 0"),
        (Some("x"), None, "not a seed"),
    ] {
        let e = p(one, range, 0..4).unwrap_err();
        assert!(e.contains(needle), "{one:?} {range:?}: {e}");
    }
}

#[test]
fn readme_names_every_scenario_and_every_planted_bug() {
    let readme = std::fs::read_to_string(common::path("README.md")).unwrap();
    for dir in ["scenarios", "tests/scenarios"] {
        for f in kzsim_sim::scenario::scenario_files(&common::path(dir)).unwrap() {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                readme.contains(&stem),
                "README.md does not name {dir}/{stem}"
            );
        }
    }
    for b in kzsim_model::bugs::all_bugs() {
        assert!(
            readme.contains(b.name),
            "README.md does not name {}",
            b.name
        );
    }
}
