//! The message log: one JSON line per fate of a message (`nodes/net.jsonl`
//! in a run folder), `{time, from, to, type, action}`, time in Unix
//! nanoseconds.

use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The fate of a message, as written to the message log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Deliver,
    Drop,
    Cut,
    Hold,
    Delay,
    Duplicate,
    Reorder,
    Dead,
    Overflow,
    Client,
    Late,
    Malformed,
    UnknownDest,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Deliver => "deliver",
            Action::Drop => "drop",
            Action::Cut => "cut",
            Action::Hold => "hold",
            Action::Delay => "delay",
            Action::Duplicate => "duplicate",
            Action::Reorder => "reorder",
            Action::Dead => "dead",
            Action::Overflow => "overflow",
            Action::Client => "client",
            Action::Late => "late",
            Action::Malformed => "malformed",
            Action::UnknownDest => "unknown-dest",
        }
    }
}

#[derive(Serialize)]
struct NetLine<'a> {
    time: u64,
    from: &'a str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    action: &'static str,
}

pub(super) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The log file; lines are buffered and flushed every 200 ms by the router
/// and when it stops.
pub(super) struct NetLog {
    out: Mutex<BufWriter<File>>,
}

impl NetLog {
    pub(super) fn create(path: &Path) -> std::io::Result<NetLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(NetLog {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    pub(super) fn write(&self, from: &str, to: &str, kind: &str, action: Action) {
        let line = NetLine {
            time: unix_ns(),
            from,
            to,
            kind,
            action: action.name(),
        };
        let mut out = super::lock(&self.out);
        let _ = serde_json::to_writer(&mut *out, &line);
        let _ = out.write_all(b"\n");
    }

    pub(super) fn flush(&self) {
        if let Err(e) = super::lock(&self.out).flush() {
            tracing::warn!(error = %e, "cannot write the message log");
        }
    }
}
