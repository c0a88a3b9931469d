//! Makes the `Debug` form of node inputs and effects readable in logs.
//!
//! Replays log every input and effect with `{:?}`, where a byte payload
//! prints as a list of numbers (a Kafka segment file is a line of 60,000
//! characters) and ZooKeeper's zxids and session ids print in decimal
//! although ZooKeeper and its operators read them in hex. [`readable`]
//! rewrites such a string: a list of at least [`MIN_BYTES`] numbers that
//! all fit a byte becomes `b"text"` when it is printable ASCII and
//! `<N bytes 0a1b…>` (the first [`SHOWN_BYTES`] in hex) otherwise; a
//! number after a field named `*zxid`, `session` or `sessions` becomes
//! `0x…`. It only shapes log text: traces, hashes and checks never see it.

/// The shortest list of small numbers taken for a byte payload (shorter
/// lists, such as an ISR `[1, 2, 3]`, stay as they are).
pub const MIN_BYTES: usize = 8;

/// How many bytes of a binary payload are shown in hex.
pub const SHOWN_BYTES: usize = 16;

/// How many characters of a printable payload are shown.
pub const SHOWN_TEXT: usize = 64;

/// The readable form of a `Debug` string (see the module documentation).
pub fn readable(debug: &str) -> String {
    let b = debug.as_bytes();
    let mut out = String::with_capacity(debug.len().min(4096));
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            if let Some((bytes, end)) = byte_list(b, i) {
                if bytes.len() >= MIN_BYTES {
                    out.push_str(&render_bytes(&bytes));
                    i = end;
                    continue;
                }
            }
        }
        if let Some((hexed, end)) = hex_field(debug, i) {
            out.push_str(&hexed);
            i = end;
            continue;
        }
        let ch = debug[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Parses `[n, n, ...]` starting at `start` (a `[`) when every `n` is a
/// decimal number below 256; returns the numbers and the index after `]`.
fn byte_list(b: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut i = start + 1;
    let mut out = Vec::new();
    if b.get(i) == Some(&b']') {
        return None;
    }
    loop {
        let from = i;
        let mut v: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() && i - from < 3 {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == from || v > 255 || b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        out.push(v as u8);
        match b.get(i) {
            Some(b']') => return Some((out, i + 1)),
            Some(b',') if b.get(i + 1) == Some(&b' ') => i += 2,
            _ => return None,
        }
    }
}

/// A byte payload as text or short hex.
fn render_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|c| (0x20..0x7f).contains(c) && *c != b'"') {
        let text: String = bytes.iter().take(SHOWN_TEXT).map(|&c| c as char).collect();
        if bytes.len() > SHOWN_TEXT {
            format!("b\"{text}\"…({} bytes)", bytes.len())
        } else {
            format!("b\"{text}\"")
        }
    } else {
        let hex: String = bytes
            .iter()
            .take(SHOWN_BYTES)
            .map(|c| format!("{c:02x}"))
            .collect();
        let more = if bytes.len() > SHOWN_BYTES { "…" } else { "" };
        format!("<{} bytes {hex}{more}>", bytes.len())
    }
}

/// At `i`, a field named `*zxid`, `session` or `sessions` followed by a
/// number or a list of numbers: returns the field with its numbers in hex
/// and the index after them.
fn hex_field(s: &str, i: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    // Only at the start of a field name.
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    if !(b[i].is_ascii_lowercase()) {
        return None;
    }
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_lowercase() || b[j] == b'_') {
        j += 1;
    }
    let name = &s[i..j];
    let hexed = name.ends_with("zxid") || name == "session" || name == "sessions";
    if !hexed || !s[j..].starts_with(": ") {
        return None;
    }
    let mut k = j + 2;
    let mut out = format!("{name}: ");
    let list = b.get(k) == Some(&b'[');
    if list {
        out.push('[');
        k += 1;
    }
    loop {
        let from = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k == from {
            // Not a number (e.g. `session: None`): leave it alone.
            return if from == j + 2 || (list && from == j + 3) {
                None
            } else {
                Some((out, from))
            };
        }
        let v: u64 = s[from..k].parse().ok()?;
        out.push_str(&format!("{v:#x}"));
        if list && s[k..].starts_with(", ") {
            out.push_str(", ");
            k += 2;
            continue;
        }
        if list && b.get(k) == Some(&b']') {
            out.push(']');
            k += 1;
        }
        return Some((out, k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_payloads_become_text_or_short_hex() {
        let text = format!("Write {{ data: {:?} }}", b"hello, world".to_vec());
        assert_eq!(readable(&text), "Write { data: b\"hello, world\" }");
        let bin: Vec<u8> = (0..40).collect();
        let s = readable(&format!("data: {bin:?}"));
        assert_eq!(s, "data: <40 bytes 000102030405060708090a0b0c0d0e0f…>");
        let long = vec![b'a'; 100];
        assert!(readable(&format!("{long:?}")).ends_with("…(100 bytes)"));
    }

    #[test]
    fn short_or_large_number_lists_stay() {
        assert_eq!(readable("isr: [1, 2, 3]"), "isr: [1, 2, 3]");
        let big = "[1000, 2, 3, 4, 5, 6, 7, 8, 9]";
        assert_eq!(readable(big), big);
        assert_eq!(readable("[]"), "[]");
        let nested = format!("{:?}", vec![vec![0u8; 9], vec![1, 2]]);
        assert_eq!(readable(&nested), "[<9 bytes 000000000000000000>, [1, 2]]");
    }

    #[test]
    fn zxids_and_sessions_print_in_hex() {
        assert_eq!(
            readable("Proposal { zxid: 4294967297, last_zxid: 16, x: 16 }"),
            "Proposal { zxid: 0x100000001, last_zxid: 0x10, x: 16 }"
        );
        assert_eq!(
            readable("Ping { sessions: [4294967296, 5], session: 17 }"),
            "Ping { sessions: [0x100000000, 0x5], session: 0x11 }"
        );
        assert_eq!(readable("session: None"), "session: None");
        assert_eq!(readable("my_session: 5"), "my_session: 5");
        assert_eq!(readable("sessions: []"), "sessions: []");
    }

    #[test]
    fn multibyte_text_survives() {
        assert_eq!(readable("path: \"/é\" zxid: 1"), "path: \"/é\" zxid: 0x1");
    }
}
