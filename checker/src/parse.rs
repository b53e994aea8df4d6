//! Format detection and the four readers (our JSONL, Jepsen EDN, porcupine's
//! etcd log and kv files), all producing [`RawEvent`]s for
//! [`history::build`](crate::history::build()).
//!
//! Every error names the file, the line and what was expected, so a user can
//! fix or report a broken history without reading our code.

use serde_json::Value;

use crate::edn;
use crate::history::{self, Dialect, EventType, FailedCas, History, Process, RawEvent};
use crate::{CheckError, CheckOptions, Format};

fn perr(file: &str, line: usize, expected: &str, found: impl Into<String>) -> CheckError {
    CheckError::Parse {
        file: file.to_string(),
        line,
        expected: expected.to_string(),
        found: found.into(),
    }
}

fn snippet(s: &str) -> String {
    let s: String = s.chars().take(60).collect();
    format!("{s:?}")
}

/// Guesses the format from the content (and, for an empty file, the name).
pub fn detect(file: &str, bytes: &[u8]) -> Format {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'));
    match first {
        None => {
            if file.ends_with(".log") {
                Format::EtcdLog
            } else if file.ends_with(".edn") {
                Format::Edn
            } else {
                Format::Jsonl
            }
        }
        Some(l) if l.starts_with("INFO") || l.contains("jepsen.util") => Format::EtcdLog,
        Some(l) if l.starts_with("{\"") || l == "{" || l.starts_with("{ \"") => Format::Jsonl,
        Some(l) if l.starts_with("{:") && l.ends_with('}') && l.contains(":key") => {
            Format::PorcupineKv
        }
        Some(_) => Format::Edn,
    }
}

/// Parses a history file's bytes in the given (or detected) format.
pub fn parse_bytes(file: &str, bytes: &[u8], opts: &CheckOptions) -> Result<History, CheckError> {
    let format = opts.format.unwrap_or_else(|| detect(file, bytes));
    let (events, dialect) = match format {
        Format::Jsonl => (
            parse_jsonl(file, bytes)?,
            Dialect {
                format,
                nil_read_unknown: false,
                failed_cas: FailedCas::OnPrecondition,
            },
        ),
        Format::Edn => (
            parse_edn(file, bytes)?,
            Dialect {
                format,
                nil_read_unknown: true,
                failed_cas: FailedCas::OnPrecondition,
            },
        ),
        Format::PorcupineKv => (
            parse_edn(file, bytes)?,
            Dialect {
                format,
                nil_read_unknown: false,
                failed_cas: FailedCas::OnPrecondition,
            },
        ),
        Format::EtcdLog => (
            parse_etcd_log(file, bytes)?,
            Dialect {
                format,
                nil_read_unknown: false,
                failed_cas: FailedCas::Observation,
            },
        ),
    };
    history::build(file, dialect, events, opts.model, opts.init.clone())
}

fn event_type(s: &str) -> Option<EventType> {
    match s {
        "invoke" => Some(EventType::Invoke),
        "ok" => Some(EventType::Ok),
        "fail" => Some(EventType::Fail),
        "info" => Some(EventType::Info),
        _ => None,
    }
}

fn process_of(v: &Value) -> Option<Process> {
    match v {
        Value::Number(n) => n.as_u64().map(Process::Client),
        Value::String(s) => Some(Process::Other(s.clone())),
        _ => None,
    }
}

fn key_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Turns one map (JSON object or EDN map) into an event.
fn map_event(
    file: &str,
    line: usize,
    pos: usize,
    v: &Value,
    what: &str,
) -> Result<RawEvent, CheckError> {
    let Value::Object(m) = v else {
        return Err(perr(file, line, what, snippet(&v.to_string())));
    };
    let kind = m
        .get("type")
        .and_then(Value::as_str)
        .and_then(event_type)
        .ok_or_else(|| {
            perr(
                file,
                line,
                "a \"type\" of invoke, ok, fail or info",
                m.get("type").map_or("nothing".into(), |t| t.to_string()),
            )
        })?;
    let process = m.get("process").and_then(process_of).ok_or_else(|| {
        perr(
            file,
            line,
            "a \"process\" (an integer, or a name such as nemesis)",
            m.get("process").map_or("nothing".into(), |t| t.to_string()),
        )
    })?;
    let f = match m.get("f") {
        Some(Value::String(s)) => s.clone(),
        Some(other) if matches!(process, Process::Other(_)) => other.to_string(),
        Some(other) => return Err(perr(file, line, "an \"f\" name", other.to_string())),
        None => {
            if matches!(process, Process::Other(_)) {
                String::new()
            } else {
                return Err(perr(file, line, "an \"f\" field", "none"));
            }
        }
    };
    let index = m.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
    let time = m.get("time").and_then(Value::as_i64);
    let error = match m.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok(RawEvent {
        line,
        index,
        time,
        process,
        kind,
        f,
        key: key_of(m.get("key")),
        value: m.get("value").cloned().unwrap_or(Value::Null),
        error,
    })
}

/// Our JSONL history: one JSON object per line; blank lines are skipped.
pub fn parse_jsonl(file: &str, bytes: &[u8]) -> Result<Vec<RawEvent>, CheckError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        perr(file, line, "UTF-8 text", "invalid bytes")
    })?;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(l)
            .map_err(|e| perr(file, line, &format!("a JSON object ({e})"), snippet(l)))?;
        out.push(map_event(file, line, out.len(), &v, "a JSON object")?);
    }
    Ok(out)
}

/// Jepsen EDN (and porcupine's kv files): a collection of maps or a bare sequence.
pub fn parse_edn(file: &str, bytes: &[u8]) -> Result<Vec<RawEvent>, CheckError> {
    let items = edn::read_history(bytes).map_err(|e| perr(file, e.line, &e.expected, e.found))?;
    let mut out = Vec::with_capacity(items.len());
    for (pos, (line, v)) in items.iter().enumerate() {
        out.push(map_event(
            file,
            *line,
            pos,
            v,
            "an EDN map {:process …, :type …, :f …}",
        )?);
    }
    Ok(out)
}

/// Porcupine's `jepsen/etcd_NNN.log`: `INFO  jepsen.util - <process> <type> <f> <value>`.
pub fn parse_etcd_log(file: &str, bytes: &[u8]) -> Result<Vec<RawEvent>, CheckError> {
    const EXPECT: &str = "a line \"INFO  jepsen.util - <process> <type> <f> <value>\"";
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let rest = l
            .find("jepsen.util")
            .map(|p| &l[p + "jepsen.util".len()..])
            .and_then(|r| r.trim_start().strip_prefix('-'))
            .ok_or_else(|| perr(file, line, EXPECT, snippet(l)))?;
        let mut parts = rest.split_whitespace();
        let (Some(p), Some(t), Some(f)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(perr(file, line, EXPECT, snippet(l)));
        };
        let value_text: Vec<&str> = parts.collect();
        let value_text = value_text.join(" ");
        let process = p
            .parse::<u64>()
            .map(Process::Client)
            .map_err(|_| perr(file, line, "a process number", snippet(p)))?;
        let kind = t
            .strip_prefix(':')
            .and_then(event_type)
            .ok_or_else(|| perr(file, line, ":invoke, :ok, :fail or :info", snippet(t)))?;
        let f = f
            .strip_prefix(':')
            .ok_or_else(|| perr(file, line, "an f keyword such as :read", snippet(f)))?;
        let value = if value_text.is_empty() {
            Value::Null
        } else {
            edn::read_one(&value_text).map_err(|e| {
                perr(
                    file,
                    line,
                    &format!("a value ({})", e.expected),
                    snippet(&value_text),
                )
            })?
        };
        out.push(RawEvent {
            line,
            index: out.len() as u64,
            time: None,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
            error: None,
        });
    }
    Ok(out)
}
