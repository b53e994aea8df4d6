//! Format detection and the four readers (our JSONL, Jepsen EDN, porcupine's
//! etcd log and kv files), all producing the history [`Event`]s of
//! `formats` for [`history::build`](crate::history::build()).
//!
//! Our JSONL is read by `formats`' streaming reader, so a run folder's
//! history is never held in memory as text. Every error names the file, the
//! line and what was expected, so a user can fix or report a broken history
//! without reading our code.

use std::io::{BufRead, Read};
use std::path::Path;

use formats::history::{self as jsonl_history, Event, EventType, Process};
use formats::jsonl::snippet;
use formats::Numbered;
use serde_json::Value;

use crate::edn;
use crate::history::{self, Dialect, FailedCas, History};
use crate::{CheckError, CheckOptions, Format};

fn perr(file: &str, line: usize, expected: &str, found: impl Into<String>) -> CheckError {
    CheckError::Parse {
        file: file.to_string(),
        line,
        expected: expected.to_string(),
        found: found.into(),
    }
}

/// How many leading bytes [`detect`] looks at.
const DETECT_BYTES: usize = 4096;

/// Guesses the format from the content (and, for an empty file, the name).
pub fn detect(file: &str, bytes: &[u8]) -> Format {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(DETECT_BYTES)]);
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
    let events = match format {
        Format::Jsonl => parse_jsonl(file, bytes)?,
        Format::Edn | Format::PorcupineKv => parse_edn(file, bytes)?,
        Format::EtcdLog => parse_etcd_log(file, bytes)?,
    };
    build(file, format, events, opts)
}

/// The format of a history file: forced by the options, or detected from
/// its first bytes.
pub fn detect_file(path: &Path, opts: &CheckOptions) -> Result<Format, CheckError> {
    if let Some(f) = opts.format {
        return Ok(f);
    }
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(DETECT_BYTES);
    std::fs::File::open(path)
        .map_err(io)?
        .take(DETECT_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(detect(&path.display().to_string(), &head))
}

/// Parses a history file, streaming it when it is our JSONL (a long run's
/// history is large; the other formats come from small test files).
pub fn parse_file(path: &Path, opts: &CheckOptions) -> Result<History, CheckError> {
    let (format, events) = read_events(path, opts)?;
    build(&path.display().to_string(), format, events, opts)
}

/// The events of a history file, in any format, before pairing: what
/// [`crate::minimize`] takes subsets of.
pub fn read_events(
    path: &Path,
    opts: &CheckOptions,
) -> Result<(Format, Vec<Numbered<Event>>), CheckError> {
    let file = path.display().to_string();
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    let format = detect_file(path, opts)?;
    let mut input = std::fs::File::open(path).map_err(io)?;
    let events = if format == Format::Jsonl {
        read_jsonl(&file, std::io::BufReader::with_capacity(1 << 16, input))?
    } else {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(io)?;
        match format {
            Format::EtcdLog => parse_etcd_log(&file, &bytes)?,
            _ => parse_edn(&file, &bytes)?,
        }
    };
    Ok((format, events))
}

/// Applies the reading rules of the format, then pairs and interns.
pub fn build(
    file: &str,
    format: Format,
    events: Vec<Numbered<Event>>,
    opts: &CheckOptions,
) -> Result<History, CheckError> {
    let dialect = Dialect {
        format,
        // Knossos' EDN leaves a read's result nil when it was not recorded.
        nil_read_unknown: format == Format::Edn,
        // Porcupine's etcd logs fail a cas only on its precondition.
        failed_cas: if format == Format::EtcdLog {
            FailedCas::Observation
        } else {
            FailedCas::OnPrecondition
        },
    };
    history::build(file, dialect, events, opts.model, opts.init.clone())
}

/// Our JSONL history: one JSON object per line; blank lines are skipped, and
/// so is a torn last line (a crash mid-write).
pub fn parse_jsonl(file: &str, bytes: &[u8]) -> Result<Vec<Numbered<Event>>, CheckError> {
    read_jsonl(file, bytes)
}

fn read_jsonl(file: &str, input: impl BufRead) -> Result<Vec<Numbered<Event>>, CheckError> {
    let mut reader = jsonl_history::Reader::new(file, input);
    let events = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    if let Some(line) = reader.torn_line() {
        tracing::warn!(file, line, "skipped a torn last line (a crash mid-write)");
    }
    Ok(events)
}

/// Jepsen EDN (and porcupine's kv files): a collection of maps or a bare sequence.
pub fn parse_edn(file: &str, bytes: &[u8]) -> Result<Vec<Numbered<Event>>, CheckError> {
    let items = edn::read_history(bytes).map_err(|e| perr(file, e.line, &e.expected, e.found))?;
    let mut out = Vec::with_capacity(items.len());
    for (pos, (line, v)) in items.into_iter().enumerate() {
        if !v.is_object() {
            return Err(perr(
                file,
                line,
                "an EDN map {:process …, :type …, :f …}",
                snippet(&v.to_string()),
            ));
        }
        let event =
            Event::from_json(v, pos as u64).map_err(|m| perr(file, line, &m.expected, m.found))?;
        out.push(Numbered { line, event });
    }
    Ok(out)
}

/// Porcupine's `jepsen/etcd_NNN.log`: `INFO  jepsen.util - <process> <type> <f> <value>`.
pub fn parse_etcd_log(file: &str, bytes: &[u8]) -> Result<Vec<Numbered<Event>>, CheckError> {
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
            .and_then(EventType::from_name)
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
        let event = Event {
            index: out.len() as u64,
            time: None,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
        };
        out.push(Numbered { line, event });
    }
    Ok(out)
}
