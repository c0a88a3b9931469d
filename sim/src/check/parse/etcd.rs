//! Porcupine's etcd logs: `INFO jepsen.util - <proc> <:type> <:f> <arg>`,
//! one event per line, whitespace separated; `<arg>` is `nil`, an integer,
//! a keyword such as `:timed-out`, or a pair `[A B]` split over two tokens.
//! Lines whose process is a keyword (`:nemesis`) are skipped.

use serde_json::Value;

use super::Parsed;
use crate::check::error::CheckError;
use crate::history::{Event, EventType};

/// Parses an etcd log.
pub fn parse(text: &str) -> Result<Parsed, CheckError> {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        let bad = |message: String| CheckError::Parse {
            line: i + 1,
            message,
        };
        if tokens.len() < 7 || tokens[0] != "INFO" || tokens[1] != "jepsen.util" || tokens[2] != "-"
        {
            return Err(bad(format!(
                "expected `INFO jepsen.util - PROCESS :TYPE :F ARG`, got `{}`",
                line.trim()
            )));
        }
        if tokens[3].starts_with(':') {
            continue;
        }
        let process: u64 = tokens[3]
            .parse()
            .map_err(|_| bad(format!("bad process `{}`", tokens[3])))?;
        let kind = match tokens[4] {
            ":invoke" => EventType::Invoke,
            ":ok" => EventType::Ok,
            ":fail" => EventType::Fail,
            ":info" => EventType::Info,
            t => return Err(bad(format!("bad event type `{t}`"))),
        };
        let f = tokens[5]
            .strip_prefix(':')
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(format!("bad function `{}`", tokens[5])))?;
        let (value, error) = arg(&tokens[6..]).map_err(bad)?;
        out.push(
            Event {
                process,
                kind,
                f: f.to_string(),
                key: None,
                value,
                time: 0,
                node: None,
                error,
                meta: None,
            },
            i + 1,
        );
    }
    Ok(out)
}

/// Reads the argument tokens: a value, or an error keyword.
fn arg(tokens: &[&str]) -> Result<(Value, Option<String>), String> {
    let int = |t: &str| -> Result<Value, String> {
        if t == "nil" {
            return Ok(Value::Null);
        }
        t.parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("bad value `{t}`"))
    };
    match tokens {
        [t] if t.starts_with(':') && t.len() > 1 => Ok((Value::Null, Some(t[1..].to_string()))),
        [t] if !t.starts_with('[') => Ok((int(t)?, None)),
        [a, b] if a.starts_with('[') && b.ends_with(']') => {
            let a = int(&a[1..])?;
            let b = int(&b[..b.len() - 1])?;
            Ok((Value::Array(vec![a, b]), None))
        }
        _ => Err(format!("bad argument `{}`", tokens.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use serde_json::json;

    #[test]
    fn reads_all_shapes() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\n\
                    INFO jepsen.util - 1  :invoke  :read  nil\n\
                    INFO jepsen.util - :nemesis :info :start nil\n\
                    INFO jepsen.util - 0\t:fail\t:cas\t[1 2]\n\
                    INFO jepsen.util - 1\t:ok\t:read\t3\n\
                    INFO jepsen.util - 2\t:invoke\t:write\t4\n\
                    INFO jepsen.util - 2\t:info\t:write\t:timed-out\n";
        let p = parse(text).unwrap();
        assert_eq!(p.lines, vec![1, 2, 4, 5, 6, 7]);
        let ops = p.operations().unwrap();
        assert_eq!(ops[0].input, json!([1, 2]));
        assert_eq!(ops[0].outcome, Outcome::Fail);
        assert_eq!(ops[1].output, json!(3));
        assert_eq!(ops[2].outcome, Outcome::Info);
    }

    #[test]
    fn malformed_lines_are_named() {
        let good = "INFO jepsen.util - 0 :invoke :read nil\n";
        let bad = [
            "hello",
            "INFO jepsen.util - x :invoke :read nil",
            "INFO jepsen.util - 0 :begin :read nil",
            "INFO jepsen.util - 0 :ok read nil",
            "INFO jepsen.util - 0 :ok :read seven",
            "INFO jepsen.util - 0 :ok :cas [1 2",
            "INFO jepsen.util - 0 :ok :cas [1 2] 3",
            "INFO jepsen.util - 0 :ok :cas [x 2]",
            "INFO jepsen.util - 0 :ok :cas []",
            "INFO jepsen.util - 0 :ok",
            "INFO jepsen.util - 0 :ok :read :",
            "INFO jepsen.util - 99999999999999999999999 :ok :read 1",
        ];
        for b in bad {
            let text = format!("{good}{b}\n");
            assert_eq!(parse(&text).unwrap_err().line(), Some(2), "{b}");
        }
    }
}
