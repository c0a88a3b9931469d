//! kzsim's own JSON-lines format (documented in [`crate::history`]): one
//! [`Event`] per line; blank lines are skipped.

use super::Parsed;
use crate::check::error::CheckError;
use crate::history::Event;

/// Parses JSON lines, keeping each event's line number.
pub fn parse(text: &str) -> Result<Parsed, CheckError> {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(trimmed).map_err(|e| CheckError::Parse {
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(event, i + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_and_lines() {
        let text = "\n{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":3}\n";
        let p = parse(text).unwrap();
        assert_eq!(p.lines, vec![2, 4]);
        let ops = p.operations().unwrap();
        assert_eq!(ops[0].output, serde_json::json!(3));
    }

    #[test]
    fn malformed_lines_are_named() {
        let bad = [
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1,\"type\":\"done\",\"f\":\"read\"}",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":-1,\"type\":\"ok\",\"f\":\"read\"}",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n[1,2]",
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"bogus\":1}",
        ];
        for text in bad {
            assert_eq!(parse(text).unwrap_err().line(), Some(2), "{text}");
        }
        // A completion with no pending invoke is named by its line too.
        let orphan = "\n\n{\"process\":1,\"type\":\"ok\",\"f\":\"read\"}";
        let p = parse(orphan).unwrap();
        assert_eq!(p.operations().unwrap_err().line(), Some(3));
    }
}
