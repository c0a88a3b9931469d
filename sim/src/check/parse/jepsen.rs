//! Jepsen (Knossos-style) EDN histories: op maps with `:process`, `:type`,
//! `:f`, `:value` and optionally `:key`, `:time`, `:error`. The file holds
//! either one collection (vector or list) of maps, or the maps one after
//! another (as Porcupine's kv files do). Ops whose `:process` is not an
//! integer (e.g. `:nemesis`) are ignored. Unknown map keys are ignored.

use super::edn::{Edn, EdnError, Reader};
use super::Parsed;
use crate::check::error::CheckError;
use crate::history::{Event, EventType};

fn parse_error(e: EdnError) -> CheckError {
    CheckError::Parse {
        line: e.line,
        message: e.message,
    }
}

/// Reads the op maps with the line each starts on.
fn op_maps(text: &str) -> Result<Vec<(usize, Edn)>, CheckError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    match r.skip_ws() {
        Some(c @ (b'[' | b'(')) => {
            let close = if c == b'[' { b']' } else { b')' };
            r.bump();
            let opened = r.line();
            loop {
                match r.skip_discarded(0).map_err(parse_error)? {
                    None => {
                        return Err(CheckError::Parse {
                            line: opened,
                            message: format!("missing `{}` to close the history", close as char),
                        })
                    }
                    Some(c) if c == close => {
                        r.bump();
                        break;
                    }
                    Some(_) => {
                        let line = r.line();
                        let v = r.next_value().map_err(parse_error)?;
                        out.extend(v.map(|v| (line, v)));
                    }
                }
            }
            if r.skip_ws().is_some() {
                return Err(CheckError::Parse {
                    line: r.line(),
                    message: "text after the history collection".into(),
                });
            }
        }
        _ => loop {
            r.skip_discarded(0).map_err(parse_error)?;
            let line = r.line();
            match r.next_value().map_err(parse_error)? {
                Some(v) => out.push((line, v)),
                None => break,
            }
        },
    }
    Ok(out)
}

fn keyword_or_string(v: Option<&Edn>) -> Option<&str> {
    match v? {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => Some(s),
        _ => None,
    }
}

/// Converts one op map to an event; `Ok(None)` for ops to ignore.
fn event(map: &Edn, strict_kv: bool) -> Result<Option<Event>, String> {
    if !matches!(map, Edn::Map(_)) {
        return Err("expected an op map `{:process .. :type .. :f ..}`".into());
    }
    let process = match map.get("process") {
        Some(Edn::Int(p)) if *p >= 0 => *p as u64,
        Some(Edn::Int(p)) => return Err(format!("negative process {p}")),
        Some(Edn::Keyword(_)) if !strict_kv => return Ok(None),
        Some(other) => {
            return Err(format!(
                "bad :process {other} (expected a non-negative integer)"
            ))
        }
        None => return Err("missing :process".into()),
    };
    let kind = match keyword_or_string(map.get("type")) {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        Some(t) => return Err(format!("bad :type {t}")),
        None => return Err("missing or bad :type".into()),
    };
    let f = keyword_or_string(map.get("f")).ok_or("missing or bad :f")?;
    let key = map.get("key").map(Edn::to_json);
    if strict_kv {
        if !matches!(f, "get" | "put" | "append") {
            return Err(format!("bad :f {f} (expected get, put, append)"));
        }
        if !matches!(kind, EventType::Invoke | EventType::Ok) {
            return Err("kv files have only :invoke and :ok events".into());
        }
        if !matches!(map.get("key"), Some(Edn::Str(_))) {
            return Err("missing or bad :key (expected a string)".into());
        }
        if !matches!(map.get("value"), Some(Edn::Str(_) | Edn::Nil)) {
            return Err("missing or bad :value (expected a string or nil)".into());
        }
    }
    // `:time` is optional (the order of the file is what counts), but one
    // that is there must be a time.
    let time = match map.get("time") {
        None => 0,
        Some(Edn::Int(t)) if *t >= 0 => *t as u64,
        Some(other) => {
            return Err(format!(
                "bad :time {other} (expected a non-negative integer of nanoseconds)"
            ))
        }
    };
    let error = map.get("error").map(|e| match e.to_json() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    Ok(Some(Event {
        process,
        kind,
        f: f.to_string(),
        key,
        value: map.get("value").map(Edn::to_json).unwrap_or_default(),
        time,
        node: None,
        error,
        meta: None,
    }))
}

fn parse_with(text: &str, strict_kv: bool) -> Result<Parsed, CheckError> {
    let mut out = Parsed::default();
    for (line, map) in op_maps(text)? {
        match event(&map, strict_kv) {
            Ok(Some(e)) => out.push(e, line),
            Ok(None) => {}
            Err(message) => return Err(CheckError::Parse { line, message }),
        }
    }
    Ok(out)
}

/// Parses a Jepsen EDN history.
pub fn parse(text: &str) -> Result<Parsed, CheckError> {
    parse_with(text, false)
}

/// Parses a Porcupine kv file (EDN maps with `:key`, get/put/append only).
pub fn parse_kv(text: &str) -> Result<Parsed, CheckError> {
    parse_with(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_collection_with_comments_and_nemesis() {
        let text = "; knossos history\n[{:process 0, :type :invoke, :f :write, :value 1}\n\
                    {:process :nemesis :type :info :f :start :value nil}\n\
                    {:process 0\n :type :ok\n :f :write\n :value 1}\n\
                    {:process 1 :type :invoke :f :cas :value [1 2]}]\n";
        let p = parse(text).unwrap();
        assert_eq!(p.lines, vec![2, 4, 8]);
        let ops = p.operations().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].input, json!([1, 2]));
    }

    #[test]
    fn reads_maps_one_per_line() {
        let text = "{:process 9, :type :invoke, :f :append, :key \"0\", :value \"x 9 0 y\"}\n\
                    {:process 9, :type :ok, :f :append, :key \"0\", :value \"x 9 0 y\"}\n";
        let p = parse_kv(text).unwrap();
        let ops = p.operations().unwrap();
        assert_eq!(ops[0].key, Some(json!("0")));
        assert_eq!(ops[0].f, "append");
    }

    #[test]
    fn malformed_histories_name_the_line() {
        let first = "{:process 0 :type :invoke :f :read :value nil}\n";
        let bad = [
            "[1 2]",
            "{:type :ok :f :read}",
            "{:process -1 :type :ok :f :read}",
            "{:process \"a\" :type :ok :f :read}",
            "{:process 0 :type :done :f :read}",
            "{:process 0 :f :read}",
            "{:process 0 :type :ok :f 3}",
            "{:process 0 :type :ok",
            "{:process 0 :type :ok :f :read :time -5}",
            "{:process 0 :type :ok :f :read :time 1.5}",
            "{:process 0 :type :ok :f :read :time :soon}",
        ];
        for b in bad {
            let e = parse(&format!("{first}{b}\n")).unwrap_err();
            assert_eq!(e.line(), Some(2), "{b}: {e}");
        }
        let e = parse("\n[{:process 0 :type :invoke :f :read}\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = parse("[]\n{:a 1}").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let kv_bad = [
            "{:process 0 :type :ok :f :read :key \"0\" :value nil}",
            "{:process 0 :type :fail :f :get :key \"0\" :value nil}",
            "{:process 0 :type :ok :f :get :key 0 :value nil}",
            "{:process 0 :type :ok :f :get :key \"0\" :value 3}",
            "{:process :nemesis :type :ok :f :get :key \"0\" :value nil}",
        ];
        for b in kv_bad {
            let text = format!("{{:process 0 :type :invoke :f :get :key \"0\" :value nil}}\n{b}");
            assert_eq!(parse_kv(&text).unwrap_err().line(), Some(2), "{b}");
        }
    }
}
