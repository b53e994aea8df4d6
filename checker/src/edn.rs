//! A small EDN reader, enough for Jepsen and Knossos histories.
//!
//! It reads nil, booleans, integers, floats, strings, characters, keywords,
//! symbols, vectors, lists, maps and sets (sets are tolerated and read as
//! lists), `;` comments, `#_` discards and tagged literals (the tag is
//! dropped). Values become `serde_json::Value` so the rest of the checker
//! sees one data model: keywords and symbols become strings without the
//! colon, map keys become strings. Errors carry the line and what was
//! expected; nesting is bounded so hostile input cannot overflow the stack.

use serde_json::{Map, Number, Value};

/// A syntax error at a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected {expected}, found {found}")]
pub struct EdnError {
    pub line: usize,
    pub expected: String,
    pub found: String,
}

const MAX_DEPTH: usize = 200;

struct Reader<'a> {
    s: &'a [u8],
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
    fn err<T>(&self, expected: &str) -> Result<T, EdnError> {
        let found = match self.s.get(self.pos) {
            None => "end of input".to_string(),
            Some(_) => {
                let end = (self.pos + 20).min(self.s.len());
                format!("{:?}", String::from_utf8_lossy(&self.s[self.pos..end]))
            }
        };
        Err(EdnError {
            line: self.line,
            expected: expected.to_string(),
            found,
        })
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b'\n' {
                self.line += 1;
                self.pos += 1;
            } else if c.is_ascii_whitespace() || c == b',' {
                self.pos += 1;
            } else if c == b';' {
                while let Some(&c) = self.s.get(self.pos) {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(&c) = self.s.get(self.pos) {
            if is_delim(c) {
                break;
            }
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }

    /// Reads one value; `None` at a closing delimiter or end of input.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, EdnError> {
        if depth > MAX_DEPTH {
            return self.err("less deeply nested data");
        }
        loop {
            self.skip_ws();
            let Some(&c) = self.s.get(self.pos) else {
                return Ok(None);
            };
            return match c {
                b')' | b']' | b'}' => Ok(None),
                b'[' => {
                    self.pos += 1;
                    self.seq(b']', depth).map(|v| Some(Value::Array(v)))
                }
                b'(' => {
                    self.pos += 1;
                    self.seq(b')', depth).map(|v| Some(Value::Array(v)))
                }
                b'{' => {
                    self.pos += 1;
                    self.map(depth).map(Some)
                }
                b'"' => self.string().map(|s| Some(Value::String(s))),
                b'#' => {
                    self.pos += 1;
                    match self.s.get(self.pos) {
                        Some(b'{') => {
                            self.pos += 1;
                            self.seq(b'}', depth).map(|v| Some(Value::Array(v)))
                        }
                        Some(b'_') => {
                            self.pos += 1;
                            if self.value(depth + 1)?.is_none() {
                                return self.err("a value after #_");
                            }
                            continue;
                        }
                        _ => {
                            let tag = self.token();
                            if tag.is_empty() {
                                return self.err("a tag or set after #");
                            }
                            match self.value(depth + 1)? {
                                Some(v) => Ok(Some(v)),
                                None => self.err("a value after a tag"),
                            }
                        }
                    }
                }
                b'\\' => {
                    self.pos += 1;
                    let start = self.pos;
                    // At least one char, then up to the next delimiter.
                    if self.pos < self.s.len() {
                        self.pos += 1;
                    }
                    while let Some(&c) = self.s.get(self.pos) {
                        if is_delim(c) {
                            break;
                        }
                        self.pos += 1;
                    }
                    let tok = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                    let ch = match tok.as_str() {
                        "newline" => "\n".to_string(),
                        "space" => " ".to_string(),
                        "tab" => "\t".to_string(),
                        _ => tok,
                    };
                    Ok(Some(Value::String(ch)))
                }
                _ => {
                    let tok = self.token();
                    if tok.is_empty() {
                        return self.err("a value");
                    }
                    Ok(Some(atom(tok)))
                }
            };
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, EdnError> {
        let mut out = Vec::new();
        loop {
            match self.value(depth + 1)? {
                Some(v) => out.push(v),
                None => {
                    if self.s.get(self.pos) == Some(&close) {
                        self.pos += 1;
                        return Ok(out);
                    }
                    return self.err(&format!("{:?} to close the collection", close as char));
                }
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Value, EdnError> {
        let items = self.seq(b'}', depth)?;
        if items.len() % 2 != 0 {
            return self.err("an even number of forms in a map");
        }
        let mut m = Map::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }

    fn string(&mut self) -> Result<String, EdnError> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return self.err("'\"' to close the string");
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return self.err("an escape after '\\'");
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        other => out.push(other),
                    }
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn atom(tok: &str) -> Value {
    match tok {
        "nil" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Some(k) = tok.strip_prefix(':') {
        return Value::String(k.to_string());
    }
    let num = tok.strip_suffix('N').unwrap_or(tok);
    if let Ok(i) = num.parse::<i64>() {
        return Value::Number(i.into());
    }
    let num = tok.strip_suffix('M').unwrap_or(tok);
    if num.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        if let Ok(f) = num.parse::<f64>() {
            if let Some(n) = Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(tok.to_string())
}

/// Reads every top-level form of a document, each with the line it starts on.
pub fn read_all(text: &[u8]) -> Result<Vec<(usize, Value)>, EdnError> {
    let mut r = Reader {
        s: text,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        r.skip_ws();
        let line = r.line;
        match r.value(0)? {
            Some(v) => out.push((line, v)),
            None => {
                if r.pos < r.s.len() {
                    return r.err("a value (unbalanced closing delimiter)");
                }
                return Ok(out);
            }
        }
    }
}

/// Reads a history document: a vector or list of maps, or a bare sequence of
/// maps, returning each element with the line it starts on.
pub fn read_history(text: &[u8]) -> Result<Vec<(usize, Value)>, EdnError> {
    let mut r = Reader {
        s: text,
        pos: 0,
        line: 1,
    };
    r.skip_ws();
    match r.s.get(r.pos) {
        Some(b'[') | Some(b'(') => {
            let close = if r.s[r.pos] == b'[' { b']' } else { b')' };
            r.pos += 1;
            let mut out = Vec::new();
            loop {
                r.skip_ws();
                let line = r.line;
                match r.value(1)? {
                    Some(v) => out.push((line, v)),
                    None => {
                        if r.s.get(r.pos) != Some(&close) {
                            return r.err(&format!("{:?} to close the history", close as char));
                        }
                        r.pos += 1;
                        break;
                    }
                }
            }
            r.skip_ws();
            if r.pos < r.s.len() {
                // A bare sequence that happened to start with a collection.
                return read_all(text);
            }
            Ok(out)
        }
        _ => read_all(text),
    }
}

/// Reads exactly one value from a string (e.g. `--init '{:x 0 :y 0}'`).
pub fn read_one(text: &str) -> Result<Value, EdnError> {
    let all = read_all(text.as_bytes())?;
    match all.len() {
        1 => Ok(all
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)),
        n => Err(EdnError {
            line: 1,
            expected: "exactly one value".into(),
            found: format!("{n} values"),
        }),
    }
}
