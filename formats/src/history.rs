//! `history.jsonl`: every client operation and every fault of a run, one
//! event per line, in the order the harness observed them. The contract is
//! in `docs/formats.md` ("History"); this module is its only reader and
//! writer.
//!
//! The event is Jepsen's (index, time, process, type, f, value) plus the
//! key, the node a client talked to and an error. The checker also reads
//! Jepsen EDN and porcupine logs into this same [`Event`], so every input
//! format meets the checker in one shape.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::jsonl::{self, Mismatch, Record};

/// The conventional file name inside a run folder.
pub const FILE_NAME: &str = "history.jsonl";

/// Streams the events of a history file.
pub type Reader<R> = jsonl::Reader<R, Event>;
/// Writes a history file.
pub type Writer<W> = jsonl::Writer<W, Event>;

/// Who performed an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client process (a Jepsen "process": a worker whose op ended `info`
    /// continues under a new number).
    Client(u64),
    /// The fault injector, `"nemesis"` on disk.
    Nemesis,
    /// Any other named process (foreign histories have them); never a client.
    Named(String),
}

impl Process {
    /// The client number, if this is a client.
    pub fn client(&self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(*p),
            _ => None,
        }
    }

    /// Reads the on-disk form: an integer, or a name.
    pub fn from_json(v: &Value) -> Option<Process> {
        match v {
            Value::Number(n) => n.as_u64().map(Process::Client),
            Value::String(s) if s == "nemesis" => Some(Process::Nemesis),
            Value::String(s) => Some(Process::Named(s.clone())),
            _ => None,
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
            Process::Named(name) => s.serialize_str(name),
        }
    }
}

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// An operation began.
    Invoke,
    /// It happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may take effect at any later time, or never (also every
    /// fault the nemesis injected).
    Info,
}

impl EventType {
    /// The on-disk name.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// Parses an on-disk name.
    pub fn from_name(s: &str) -> Option<EventType> {
        match s {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

/// One line of `history.jsonl`. Fields are written in this order; `key`,
/// `node` and `error` only when present, `time` always by our harness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the history, from 0. A foreign history without indexes
    /// gets the event's position among the events read.
    pub index: u64,
    /// Nanoseconds since the run started. Absent in foreign histories that
    /// do not record time (Knossos' test files); never used for ordering,
    /// the order of the lines is the real-time order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// Who.
    pub process: Process,
    /// invoke / ok / fail / info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation (`read`, `write`, `cas`, `append`, …) or the fault.
    pub f: String,
    /// The key, absent for single-register workloads and faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The operation's argument or result, or the fault's description.
    pub value: Value,
    /// The node the client talked to last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// Why an operation failed or is unknown (`"precondition"` for a cas
    /// that found another value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The fields of an event as they may appear, before validation. Kept as
/// JSON values so that a wrong field gets a sentence of our own, and so
/// that what Jepsen allows (a key or an error of any JSON type, a fault
/// `f` that is not a string) is still read.
#[derive(Deserialize)]
struct Fields {
    index: Option<Value>,
    time: Option<Value>,
    process: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    f: Option<Value>,
    key: Option<Value>,
    #[serde(default)]
    value: Value,
    node: Option<Value>,
    error: Option<Value>,
}

fn shown(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "nothing".into(), Value::to_string)
}

/// Any JSON value as text: strings as they are, the rest as JSON.
fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn natural(v: Option<Value>, expected: &str) -> Result<Option<u64>, Mismatch> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(Mismatch {
            expected: expected.into(),
            found: other.to_string(),
        }),
    }
}

impl Fields {
    fn into_event(self, seq: u64) -> Result<Event, Mismatch> {
        let kind = self
            .kind
            .as_ref()
            .and_then(Value::as_str)
            .and_then(EventType::from_name)
            .ok_or_else(|| Mismatch {
                expected: "a \"type\" of invoke, ok, fail or info".into(),
                found: shown(&self.kind),
            })?;
        let process = self
            .process
            .as_ref()
            .and_then(Process::from_json)
            .ok_or_else(|| Mismatch {
                expected: "a \"process\" (an integer, or a name such as nemesis)".into(),
                found: shown(&self.process),
            })?;
        let client = matches!(process, Process::Client(_));
        let f = match self.f {
            Some(Value::String(s)) => s,
            // Jepsen's faults may carry any value as `f`.
            Some(other) if !client => other.to_string(),
            None if !client => String::new(),
            Some(other) => {
                return Err(Mismatch {
                    expected: "an \"f\" name".into(),
                    found: other.to_string(),
                })
            }
            None => {
                return Err(Mismatch {
                    expected: "an \"f\" field".into(),
                    found: "none".into(),
                })
            }
        };
        Ok(Event {
            index: natural(self.index, "a non-negative integer \"index\"")?.unwrap_or(seq),
            time: natural(self.time, "a non-negative integer \"time\" (nanoseconds)")?,
            process,
            kind,
            f,
            key: self.key.map(text),
            value: self.value,
            node: natural(self.node, "an integer \"node\" id")?,
            error: self.error.map(text),
        })
    }
}

impl Event {
    /// Reads an event from a JSON (or EDN, converted) map. `seq` is its
    /// position among the events read, the index of an event without one.
    pub fn from_json(v: Value, seq: u64) -> Result<Event, Mismatch> {
        if !v.is_object() {
            return Err(Mismatch {
                expected: "an event object".into(),
                found: jsonl::snippet(&v.to_string()),
            });
        }
        let fields: Fields = serde_json::from_value(v).map_err(|e| Mismatch {
            expected: format!("an event object ({e})"),
            found: "another object".into(),
        })?;
        fields.into_event(seq)
    }
}

impl Record for Event {
    fn parse_line(line: &[u8], seq: u64) -> Result<Self, Mismatch> {
        let fields: Fields = serde_json::from_slice(line)
            .map_err(|e| Mismatch::new(format!("a JSON object ({e})"), line))?;
        fields.into_event(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(line: &str) -> Result<Event, Mismatch> {
        Event::parse_line(line.as_bytes(), 7)
    }

    #[test]
    fn our_lines_round_trip_byte_for_byte() {
        let lines = [
            r#"{"index":0,"time":1200,"process":3,"type":"invoke","f":"cas","key":"k2","value":["5","9"],"node":2}"#,
            r#"{"index":1,"time":5800,"process":3,"type":"fail","f":"cas","key":"k2","value":["5","9"],"node":2,"error":"precondition"}"#,
            r#"{"index":2,"time":7000,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[[1,2],[3]]}}"#,
            r#"{"index":3,"time":7100,"process":4,"type":"invoke","f":"read","key":"k1","value":null,"node":1}"#,
        ];
        let mut w = Writer::new(Vec::new());
        for l in lines {
            w.write(&parse(l).expect(l)).unwrap();
        }
        let written = String::from_utf8(w.get_ref().clone()).unwrap();
        assert_eq!(written, lines.map(|l| format!("{l}\n")).concat());
    }

    #[test]
    fn what_jepsen_allows_is_read() {
        let e = parse(r#"{"process": "nemesis", "type": "info", "f": 5}"#).unwrap();
        assert_eq!((e.index, e.time, e.f.as_str()), (7, None, "5"));
        let e = parse(r#"{"process": "n1", "type": "info", "extra": [1]}"#).unwrap();
        assert_eq!(e.process, Process::Named("n1".into()));
        let e = parse(r#"{"process": 0, "type": "ok", "f": "w", "key": 3, "error": ["x", 1]}"#)
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("3"));
        assert_eq!(e.error.as_deref(), Some(r#"["x",1]"#));
    }

    #[test]
    fn wrong_fields_say_what_was_expected() {
        let m = parse(r#"{"process": 1, "type": "begin", "f": "read"}"#).unwrap_err();
        assert_eq!(m.expected, "a \"type\" of invoke, ok, fail or info");
        assert_eq!(m.found, "\"begin\"");
        let m = parse(r#"{"process": -1, "type": "ok", "f": "read"}"#).unwrap_err();
        assert!(m.expected.contains("\"process\""), "{m:?}");
        let m = parse(r#"{"process": 1, "type": "ok"}"#).unwrap_err();
        assert_eq!(m.expected, "an \"f\" field");
        let m = parse(r#"{"process": 1, "type": "ok", "f": "read", "time": -5}"#).unwrap_err();
        assert!(m.expected.contains("\"time\""), "{m:?}");
        let m = parse("{not json").unwrap_err();
        assert!(m.expected.starts_with("a JSON object ("), "{m:?}");
        assert_eq!(m.found, "\"{not json\"");
        assert!(Event::from_json(json!([1]), 0).is_err());
    }
}
