//! `kzsim check --model kafka` exit codes and outputs.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kzsim");

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kzsim-cli-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "--model", "kafka"])
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const GOOD_JSONL: &str = r#"{"process":0,"type":"invoke","f":"send","value":["p",1]}
{"process":0,"type":"ok","f":"send","value":["p",[0,1]]}
{"process":0,"type":"invoke","f":"send","value":["p",2]}
{"process":0,"type":"ok","f":"send","value":["p",[1,2]]}
{"process":1,"type":"invoke","f":"assign","value":["p"]}
{"process":1,"type":"ok","f":"assign","value":["p"]}
{"process":1,"type":"invoke","f":"poll"}
{"process":1,"type":"ok","f":"poll","value":{"p":[[0,1],[1,2]]}}
"#;

/// Value 11 is lost: offsets 0 and 2 are read, offset 1 is not.
const LOST_EDN: &str = r#"[{:type :invoke, :f :send, :value [[:send 0 10]], :process 1}
{:type :ok, :f :send, :value [[:send 0 [0 10]]], :process 1}
{:type :invoke, :f :send, :value [[:send 0 11]], :process 1}
{:type :ok, :f :send, :value [[:send 0 [1 11]]], :process 1}
{:type :info, :f :kill, :value nil, :process :nemesis}
{:type :invoke, :f :send, :value [[:send 0 12]], :process 1}
{:type :info, :f :send, :value [[:send 0 12]], :process 1}
{:type :invoke, :f :poll, :value [[:poll]], :process 0}
{:type :ok, :f :poll, :value [[:poll {0 [[0 10]]}]], :process 0}
{:type :invoke, :f :poll, :value [[:poll]], :process 2}
{:type :ok, :f :poll, :value [[:poll {0 [[2 12]]}]], :process 2}]
"#;

#[test]
fn clean_history_exits_0() {
    let f = tmp("good.jsonl", GOOD_JSONL);
    let (code, out) = run(&[f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: no anomalies (4 queue ops)"), "{out}");
}

#[test]
fn anomalies_exit_1_with_evidence() {
    let f = tmp("lost.edn", LOST_EDN);
    let (code, out) = run(&["--format", "edn", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ANOMALIES: lost-write 1"), "{out}");
    assert!(
        out.contains("lost-write [key 0]: value 11 (offset 1)") && out.contains("(lines 4, 11)"),
        "{out}"
    );
    // Sniffed format, JSON output.
    let (code, out) = run(&["--json", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["verdict"], "anomalies");
    assert_eq!(j["counts"]["lost-write"], 1);
    assert_eq!(j["anomalies"][0]["values"], serde_json::json!([11]));
    assert_eq!(j["anomalies"][0]["lines"], serde_json::json!([4, 11]));
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    let good = tmp("good2.jsonl", GOOD_JSONL);
    let bad = tmp(
        "bad.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"poll\"}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"poll\",\"value\":{\"p\":[[0]]}}\n",
    );
    let lost = tmp("lost2.edn", LOST_EDN);
    let (code, out) = run(&[
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        lost.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad.jsonl: ERROR: line 1"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("ERROR")).count(),
        1,
        "{out}"
    );
    let (code, out) = run(&["--json", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("\"verdict\":\"error\""), "{out}");
    // Unreadable file, wrong format, option of another model.
    let missing = good.with_file_name("missing.jsonl");
    assert_eq!(run(&[missing.to_str().unwrap()]).0, 2);
    assert_eq!(
        run(&["--format", "porcupine-etcd", good.to_str().unwrap()]).0,
        2
    );
    assert_eq!(run(&["--init", "1", good.to_str().unwrap()]).0, 2);
    let truncated = tmp("trunc.edn", "[{:type :invoke, :f :send\n");
    let (code, out) = run(&["--format", "edn", truncated.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("trunc.edn: ERROR: line 1"), "{out}");
}
