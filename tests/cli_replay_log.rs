//! `replay`'s log is for people: payloads short, zxids in hex, and the
//! protocol's milestones at `--level info`.

mod common;

use common::kzsim;

#[test]
fn info_level_shows_the_protocol_milestones() {
    let o = kzsim(&[
        "replay",
        "scenarios/kafka-leader-crash.toml",
        "--seed",
        "1",
        "--level",
        "info",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "zk: LOOKING",
        "zk: LEADING",
        "zk: FOLLOWING",
        "zk: established epoch",
        "kafka: became controller with controller epoch",
        "at leader epoch 1, ISR",
        "proposing ISR",
        "expired; proposing closeSession",
        "fault crash on nodes",
        "{t=",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    assert!(!out.contains("DEBUG"));
}

#[test]
fn debug_lines_stay_short_and_zxids_are_hex() {
    let o = kzsim(&["replay", "scenarios/kafka-leader-crash.toml", "--seed", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let longest = out.lines().map(str::len).max().unwrap();
    // A segment file used to print as one 60,000-character line.
    assert!(longest < 4000, "a line of {longest} characters");
    assert!(out.contains("zxid: 0x"), "zxids in hex");
    assert!(!out.contains("zxid: 1"), "no decimal zxid");
}
