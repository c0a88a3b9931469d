//! A small builder of ZooKeeper histories for the checks' unit tests.

use serde_json::{json, Value};

use crate::history::{Event, EventType, History, Operation};

/// Builds a history one event at a time, the clock ticking by one per event.
pub struct Builder {
    pub h: History,
    t: u64,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            h: History::new(),
            t: 0,
        }
    }

    /// Sets `key` in the meta of the last event (e.g. `watch`, `events`).
    pub fn annotate(&mut self, key: &str, v: Value) {
        let e = self.h.events.last_mut().expect("an event");
        let meta = e.meta.get_or_insert_with(|| json!({}));
        meta[key] = v;
    }

    /// An invocation.
    pub fn invoke(&mut self, p: u64, f: &str, key: &str, value: Value) {
        self.t += 1;
        self.h.push(Event {
            process: p,
            kind: EventType::Invoke,
            f: f.into(),
            key: Some(json!(key)),
            value,
            time: self.t,
            node: None,
            error: None,
            meta: None,
        });
    }

    /// A completion with meta `{zxid, session}` plus `lock.node`.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &mut self,
        p: u64,
        kind: EventType,
        f: &str,
        key: &str,
        value: Value,
        error: Option<&str>,
        zxid: u64,
        session: u64,
        node: Option<&str>,
    ) {
        self.t += 1;
        self.h.push(Event {
            process: p,
            kind,
            f: f.into(),
            key: Some(json!(key)),
            value,
            time: self.t,
            node: None,
            error: error.map(str::to_string),
            meta: Some(
                json!({"zxid": zxid, "session": session, "events": [], "lock": {"node": node}}),
            ),
        });
    }

    /// An operation that returned ok.
    #[allow(clippy::too_many_arguments)]
    pub fn ok(
        &mut self,
        p: u64,
        f: &str,
        key: &str,
        input: Value,
        output: Value,
        zxid: u64,
        session: u64,
    ) {
        self.invoke(p, f, key, input);
        self.complete(p, EventType::Ok, f, key, output, None, zxid, session, None);
    }

    /// An operation that failed with `error` at `zxid`.
    #[allow(clippy::too_many_arguments)]
    pub fn fail(
        &mut self,
        p: u64,
        f: &str,
        key: &str,
        input: Value,
        error: &str,
        zxid: u64,
        session: u64,
    ) {
        self.invoke(p, f, key, input.clone());
        self.complete(
            p,
            EventType::Fail,
            f,
            key,
            input,
            Some(error),
            zxid,
            session,
            None,
        );
    }

    /// An operation of unknown outcome (ConnectionLoss).
    pub fn info(&mut self, p: u64, f: &str, key: &str, input: Value, session: u64) {
        self.invoke(p, f, key, input.clone());
        self.complete(
            p,
            EventType::Info,
            f,
            key,
            input,
            Some("ConnectionLoss"),
            0,
            session,
            None,
        );
    }

    /// Lock recipe: an ok `lock-create`.
    pub fn create(&mut self, p: u64, guid: &str, seq: u64, zxid: u64, session: u64) -> String {
        let prefix = format!("/lock/{guid}-n-");
        let path = format!("{prefix}{seq:010}");
        self.ok(
            p,
            "lock-create",
            &prefix,
            json!({"ephemeral": true, "sequential": true, "guid": guid}),
            json!(path),
            zxid,
            session,
        );
        path
    }

    /// Lock recipe: an ok `acquire` listing `children` (full paths), with
    /// the process's node `node`.
    pub fn acquire(&mut self, p: u64, node: &str, children: &[&str], zxid: u64, session: u64) {
        self.invoke(p, "acquire", "/lock", json!({ "node": node }));
        let names: Vec<&str> = children
            .iter()
            .map(|c| c.rsplit('/').next().unwrap())
            .collect();
        self.complete(
            p,
            EventType::Ok,
            "acquire",
            "/lock",
            json!(names),
            None,
            zxid,
            session,
            Some(node),
        );
    }

    /// Lock recipe: an ok fenced write through `node`.
    pub fn fenced(&mut self, p: u64, node: &str, zxid: u64, session: u64) {
        self.ok(
            p,
            "fenced-write",
            "/fenced",
            json!({"node": node, "data": "d", "version": 0}),
            json!({"version": 1}),
            zxid,
            session,
        );
    }

    /// Lock recipe: an ok release of `node`.
    pub fn release(&mut self, p: u64, node: &str, zxid: u64, session: u64) {
        self.ok(
            p,
            "release",
            node,
            json!({ "node": node }),
            Value::Null,
            zxid,
            session,
        );
    }

    /// The history and its operations.
    pub fn done(&self) -> (&History, Vec<Operation>) {
        (&self.h, self.h.operations().unwrap())
    }
}

/// The kinds of a list of violations.
pub fn kinds(v: &[crate::outcome::Violation]) -> Vec<String> {
    v.iter().map(|v| v.kind.clone()).collect()
}
