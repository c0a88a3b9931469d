//! A small EDN reader: `nil`, booleans, integers (with an optional `N`),
//! floats, strings, characters, keywords, symbols, lists, vectors, maps and
//! sets; `;` comments, commas as whitespace, `#_` discards, and tagged
//! values (`#inst "..."`, read as the tagged value). Nesting is limited so
//! that hostile input cannot overflow the stack.

use serde_json::Value;

/// Maximum nesting depth of collections.
const MAX_DEPTH: usize = 200;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A character such as `\a`.
    Char(char),
    /// A keyword, without its leading `:`.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `( ... )`.
    List(Vec<Edn>),
    /// `[ ... ]`.
    Vector(Vec<Edn>),
    /// `#{ ... }`.
    Set(Vec<Edn>),
    /// `{ k v ... }`, in source order.
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// The value of `key` (a keyword name) in a map.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(kv) => kv
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(n) if n == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to JSON: keywords and symbols become strings (without `:`),
    /// collections become arrays, maps objects with stringified keys.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(kv) => Value::Object(
                kv.iter()
                    .map(|(k, v)| {
                        let key = match k.to_json() {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

/// EDN text of a value (strings quoted, keywords with their `:`), for
/// messages.
impl std::fmt::Display for Edn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn all(f: &mut std::fmt::Formatter<'_>, items: &[Edn]) -> std::fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(v) => {
                f.write_str("(")?;
                all(f, v)?;
                f.write_str(")")
            }
            Edn::Vector(v) => {
                f.write_str("[")?;
                all(f, v)?;
                f.write_str("]")
            }
            Edn::Set(v) => {
                f.write_str("#{")?;
                all(f, v)?;
                f.write_str("}")
            }
            Edn::Map(kv) => {
                f.write_str("{")?;
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A reading error at a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads EDN values one after another from a text.
pub struct Reader<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
}

fn is_delim(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

impl<'a> Reader<'a> {
    /// A reader at the start of `src`.
    pub fn new(src: &'a str) -> Reader<'a> {
        Reader {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// Skips whitespace, commas and comments; returns the next byte.
    pub fn skip_ws(&mut self) -> Option<u8> {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                c if c.is_ascii_whitespace() || c == b',' => self.pos += 1,
                _ => return Some(c),
            }
        }
        None
    }

    /// The current 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Consumes one byte (after [`Reader::skip_ws`] returned it).
    pub fn bump(&mut self) {
        self.pos += 1;
    }

    /// Reads the next value, or `None` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Edn>, EdnError> {
        match self.skip_discarded(0)? {
            None => Ok(None),
            Some(_) => self.value(0).map(Some),
        }
    }

    /// Skips whitespace and `#_` discarded forms; returns the next byte.
    pub fn skip_discarded(&mut self, depth: usize) -> Result<Option<u8>, EdnError> {
        loop {
            let c = self.skip_ws();
            if c == Some(b'#') && self.src.as_bytes().get(self.pos + 1) == Some(&b'_') {
                self.pos += 2;
                self.value(depth + 1)?;
                continue;
            }
            return Ok(c);
        }
    }

    fn value(&mut self, depth: usize) -> Result<Edn, EdnError> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        let Some(c) = self.skip_ws() else {
            return self.err("unexpected end of input");
        };
        match c {
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.seq(b')', depth)?))
            }
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.seq(b']', depth)?))
            }
            b'{' => {
                self.pos += 1;
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return self.err("map with an odd number of forms");
                }
                let mut kv = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    kv.push((k, v));
                }
                Ok(Edn::Map(kv))
            }
            b'#' => self.dispatch(depth),
            b'"' => self.string(),
            b')' | b']' | b'}' => self.err(format!("unexpected `{}`", c as char)),
            b'\\' => self.character(),
            _ => self.atom(),
        }
    }

    fn dispatch(&mut self, depth: usize) -> Result<Edn, EdnError> {
        self.pos += 1;
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(Edn::Set(self.seq(b'}', depth)?))
            }
            Some(b'_') => {
                self.pos += 1;
                self.value(depth + 1)?;
                self.value(depth + 1)
            }
            Some(c) if c.is_ascii_alphabetic() => {
                // A tag: read the symbol, then the tagged value.
                self.atom()?;
                self.value(depth + 1)
            }
            _ => self.err("unsupported `#` form"),
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        let opened = self.line;
        loop {
            match self.skip_discarded(depth)? {
                None => {
                    return Err(EdnError {
                        line: opened,
                        message: format!(
                            "missing `{}` to close the collection opened here",
                            close as char
                        ),
                    })
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<Edn, EdnError> {
        let start_line = self.line;
        self.pos += 1;
        let mut s = String::new();
        let rest = &self.src[self.pos..];
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(Edn::Str(s));
                }
                '\n' => {
                    self.line += 1;
                    s.push(c);
                }
                '\\' => {
                    let esc = match chars.next() {
                        Some((_, 'n')) => '\n',
                        Some((_, 't')) => '\t',
                        Some((_, 'r')) => '\r',
                        Some((_, '"')) => '"',
                        Some((_, '\\')) => '\\',
                        Some((_, other)) => {
                            return self.err(format!("bad escape `\\{other}`"));
                        }
                        None => break,
                    };
                    s.push(esc);
                }
                c => s.push(c),
            }
        }
        Err(EdnError {
            line: start_line,
            message: "unterminated string".into(),
        })
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_delim(c) {
                break;
            }
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        self.pos += 1;
        let start = self.pos;
        // At least one character, even a delimiter such as `\(`.
        match self.src[start..].chars().next() {
            None => return self.err("unterminated character"),
            Some(c) => self.pos += c.len_utf8(),
        }
        while let Some(c) = self.peek() {
            if is_delim(c) {
                break;
            }
            self.pos += 1;
        }
        let name = &self.src[start..self.pos];
        let c = match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            n if n.chars().count() == 1 => n.chars().next().unwrap_or(' '),
            n => return self.err(format!("unknown character `\\{n}`")),
        };
        Ok(Edn::Char(c))
    }

    fn atom(&mut self) -> Result<Edn, EdnError> {
        let tok = self.token();
        if tok.is_empty() {
            // A byte that is neither a delimiter start nor an atom.
            let c = self.src[self.pos..].chars().next().unwrap_or('?');
            return self.err(format!("unexpected `{c}`"));
        }
        if let Some(k) = tok.strip_prefix(':') {
            if k.is_empty() {
                return self.err("empty keyword");
            }
            return Ok(Edn::Keyword(k.to_string()));
        }
        match tok {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let b = tok.as_bytes();
        let numeric = b[0].is_ascii_digit()
            || (b.len() > 1 && (b[0] == b'-' || b[0] == b'+') && b[1].is_ascii_digit());
        if numeric {
            let digits = tok.strip_suffix('N').unwrap_or(tok);
            if let Ok(i) = digits.parse::<i64>() {
                return Ok(Edn::Int(i));
            }
            let float = tok.strip_suffix('M').unwrap_or(tok);
            if let Ok(f) = float.parse::<f64>() {
                return Ok(Edn::Float(f));
            }
            return self.err(format!("bad number `{tok}`"));
        }
        Ok(Edn::Symbol(tok.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(s: &str) -> Result<Vec<Edn>, EdnError> {
        let mut r = Reader::new(s);
        let mut out = Vec::new();
        while let Some(v) = r.next_value()? {
            out.push(v);
        }
        Ok(out)
    }

    #[test]
    fn reads_the_jepsen_subset() {
        let v = read_all(
            "; a comment\n[{:process 0, :type :invoke, :f :read, :value nil}\n \
             {:process :nemesis :type :info :f :start :value #{1 2} :time 12N}\n \
             (1 -2 3.5 \"a\\\"b\" \\x sym true #inst \"2020\" #_ :gone)]",
        )
        .unwrap();
        assert_eq!(v.len(), 1);
        let Edn::Vector(items) = &v[0] else { panic!() };
        assert_eq!(items[0].get("f"), Some(&Edn::Keyword("read".into())));
        assert_eq!(items[1].get("time"), Some(&Edn::Int(12)));
        assert_eq!(
            items[2],
            Edn::List(vec![
                Edn::Int(1),
                Edn::Int(-2),
                Edn::Float(3.5),
                Edn::Str("a\"b".into()),
                Edn::Char('x'),
                Edn::Symbol("sym".into()),
                Edn::Bool(true),
                Edn::Str("2020".into()),
            ])
        );
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            ("[1 2\n", 1),
            ("\n{:a [1 2}", 2),
            ("{:a 1\n :b}", 2),
            ("\n\"abc", 2),
            ("\n)", 2),
            ("\n#?", 2),
            ("\n: x", 2),
            ("\n1x", 2),
            ("\n\"\\q\"", 2),
            ("\n\\", 2),
            ("\n\\foo", 2),
        ];
        for (text, line) in cases {
            let e = read_all(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(read_all(&deep).is_err());
        assert!(read_all("é ü").is_ok());
    }
}
