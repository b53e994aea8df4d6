//! The history recorder: every client op and every fault, one JSON line each,
//! in the order the harness observed them (`history.jsonl`, docs/formats.md
//! "History"; the event type, its writer and its reader are `formats`').
//!
//! The index and the time of an event are taken under one lock together
//! with the write, so indexes and times both increase down the file. Each
//! line is handed to the kernel before `record` returns, so a harness that
//! is interrupted (Ctrl-C) or crashes still leaves a readable, partial
//! history behind; the checker treats the ops left open as `info`.
//!
//! The recorder also keeps live counters of client outcomes for the
//! progress line.

use serde_json::Value;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use formats::history::{Event, EventType, Process};

/// Errors writing the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history file could not be created.
    #[error("cannot create history file {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line could not be written.
    #[error("cannot write history: {0}")]
    Write(#[from] std::io::Error),
}

/// An event before the recorder gives it an index and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Who.
    pub process: Process,
    /// invoke / ok / fail / info.
    pub kind: EventType,
    /// The operation.
    pub f: String,
    /// The key, if any.
    pub key: Option<String>,
    /// The value.
    pub value: Value,
    /// The node, if any.
    pub node: Option<u64>,
    /// The error, if any.
    pub error: Option<String>,
}

impl NewEvent {
    /// A nemesis event: `process: "nemesis"`, `type: "info"`.
    pub fn nemesis(f: &str, value: Value) -> Self {
        NewEvent {
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }
}

/// Live counts for the progress line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client ops invoked.
    pub invoked: u64,
    /// Completed ok.
    pub ok: u64,
    /// Completed fail.
    pub fail: u64,
    /// Completed info.
    pub info: u64,
}

struct Inner {
    /// Unbuffered: each line is one `write` to the kernel.
    out: formats::history::Writer<File>,
    next_index: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    start: Instant,
    start_unix_ns: u64,
    invoked: AtomicU64,
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

/// The shared, cheaply cloned handle every worker and the nemesis write to.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("start_unix_ns", &self.shared.start_unix_ns)
            .finish()
    }
}

impl Recorder {
    /// Creates (truncates) `path` and starts the run clock now.
    pub fn create(path: &Path) -> Result<Self, HistoryError> {
        let out = File::create(path).map_err(|source| HistoryError::Create {
            path: path.display().to_string(),
            source,
        })?;
        let start_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Recorder {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    out: formats::history::Writer::new(out),
                    next_index: 0,
                }),
                start: Instant::now(),
                start_unix_ns,
                invoked: AtomicU64::new(0),
                ok: AtomicU64::new(0),
                fail: AtomicU64::new(0),
                info: AtomicU64::new(0),
            }),
        })
    }

    /// The run start in Unix nanoseconds (written to `test.json`).
    pub fn start_unix_ns(&self) -> u64 {
        self.shared.start_unix_ns
    }

    /// Nanoseconds since the run started, on the history's clock.
    pub fn elapsed_ns(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    /// Appends one event and returns it with its index and time.
    pub fn record(&self, ev: NewEvent) -> Result<Event, HistoryError> {
        let mut inner = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event = Event {
            index: inner.next_index,
            time: Some(self.elapsed_ns()),
            process: ev.process,
            kind: ev.kind,
            f: ev.f,
            key: ev.key,
            value: ev.value,
            node: ev.node,
            error: ev.error,
        };
        // One write per line straight to the file: the kernel has it once
        // this returns, whatever happens to the harness afterwards.
        inner.out.write(&event)?;
        inner.next_index += 1;
        if event.process != Process::Nemesis {
            let counter = match event.kind {
                EventType::Invoke => &self.shared.invoked,
                EventType::Ok => &self.shared.ok,
                EventType::Fail => &self.shared.fail,
                EventType::Info => &self.shared.info,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(event)
    }

    /// Records a nemesis event (`process: "nemesis"`, `type: "info"`).
    pub fn nemesis(&self, f: &str, value: Value) -> Result<Event, HistoryError> {
        self.record(NewEvent::nemesis(f, value))
    }

    /// Live op counts.
    pub fn counts(&self) -> Counts {
        Counts {
            invoked: self.shared.invoked.load(Ordering::Relaxed),
            ok: self.shared.ok.load(Ordering::Relaxed),
            fail: self.shared.fail.load(Ordering::Relaxed),
            info: self.shared.info.load(Ordering::Relaxed),
        }
    }

    /// Forces the history to stable storage (end of run).
    pub fn sync(&self) -> Result<(), HistoryError> {
        let inner = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.out.get_ref().sync_data()?;
        Ok(())
    }
}

/// Reads a whole history file (`formats`' reader: a torn last line, the
/// harness dying mid-write, is skipped; any other bad line is an error).
pub fn read_history(path: &Path) -> Result<Vec<Event>, formats::ReadError> {
    let events = formats::history::Reader::open(path)?.read_all()?;
    Ok(events.into_iter().map(|n| n.event).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(process: u64, kind: EventType, f: &str, value: Value) -> NewEvent {
        NewEvent {
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: Some("k1".into()),
            value,
            node: Some(2),
            error: None,
        }
    }

    #[test]
    fn events_are_written_in_the_documented_format_with_increasing_index_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        rec.record(op(3, EventType::Invoke, "cas", json!(["5", "9"])))
            .unwrap();
        rec.record(op(3, EventType::Ok, "cas", json!(["5", "9"])))
            .unwrap();
        rec.nemesis("start-partition", json!({"groups": [[1, 2], [3]]}))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["index"], 0);
        assert_eq!(lines[0]["process"], 3);
        assert_eq!(lines[0]["type"], "invoke");
        assert_eq!(lines[0]["key"], "k1");
        assert_eq!(lines[0]["node"], 2);
        assert!(lines[0].get("error").is_none());
        assert_eq!(lines[2]["process"], "nemesis");
        assert_eq!(lines[2]["type"], "info");
        assert!(lines[2].get("key").is_none());
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with(r#"{"index":0,"time":"#),
            "field order: {first}"
        );
        let events = read_history(&path).unwrap();
        assert!(events.iter().all(|e| e.time.is_some()));
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(rec.counts().ok, 1);
        assert_eq!(rec.counts().invoked, 1, "nemesis events are no client ops");
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let rec = Recorder::create(&path).unwrap();
        rec.record(op(1, EventType::Invoke, "read", Value::Null))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(r#"{"index":1,"ti"#);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_history(&path).unwrap().len(), 1);
        text.push_str("\n{}\n");
        std::fs::write(&path, &text).unwrap();
        assert!(read_history(&path).is_err());
    }

    #[test]
    fn concurrent_writers_produce_one_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let rec = Recorder::create(&path).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        rec.record(op(p, EventType::Invoke, "read", Value::Null))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let events = read_history(&path).unwrap();
        assert_eq!(events.len(), 1000);
        assert!(events.iter().enumerate().all(|(i, e)| e.index == i as u64));
    }
}
