//! The consensus trace (DESIGN.md, "Trace"): one JSON object per line, appended
//! to `--trace`, read afterwards by the Raft safety checker. Lines are handed
//! to the OS after every batch ([`Trace::flush`]), so a `kill -9` loses at most
//! what the current batch had not yet written; it is not fsynced, because the
//! trace is evidence for the checker, not state the node depends on.

use crate::raft::{Entry, EntryPayload, Index, NodeId, Term};
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Trace {
    node: NodeId,
    /// `None` for a node that keeps no trace (a Maelstrom node in memory).
    out: Option<BufWriter<File>>,
}

impl Trace {
    pub fn open(path: &Path, node: NodeId) -> io::Result<Trace> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Trace {
            node,
            out: Some(BufWriter::new(file)),
        })
    }

    /// A trace that records nothing.
    pub fn disabled(node: NodeId) -> Trace {
        Trace { node, out: None }
    }

    fn line(&mut self, mut v: serde_json::Value) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        v["time"] = json!(now);
        v["node"] = json!(self.node);
        let mut s = v.to_string();
        s.push('\n');
        if let Err(e) = out.write_all(s.as_bytes()) {
            tracing::error!(error = %e, "cannot write trace");
        }
    }

    /// A new process lifetime begins: the commit index is relearned from
    /// scratch and the log after the snapshot will be applied again.
    pub fn start(&mut self, term: Term, snapshot_index: Index) {
        self.line(json!({"event": "start", "term": term, "snapshot_index": snapshot_index}));
    }

    pub fn role(&mut self, term: Term, role: &str, leader: Option<NodeId>) {
        self.line(json!({"event": "role", "term": term, "role": role, "leader": leader}));
    }

    pub fn commit(&mut self, index: Index, term: Term) {
        self.line(json!({"event": "commit", "index": index, "term": term}));
    }

    pub fn apply(&mut self, entry: &Entry) {
        let kind = match entry.payload {
            EntryPayload::Noop => "noop",
            EntryPayload::Command(_) => "command",
            EntryPayload::Config(_) => "config",
        };
        self.line(
            json!({"event": "apply", "index": entry.index, "term": entry.term,
                         "digest": digest(entry), "kind": kind}),
        );
    }

    pub fn config(&mut self, index: Index, voters: &[NodeId], learners: &[NodeId]) {
        self.line(
            json!({"event": "config", "index": index, "members": voters, "learners": learners}),
        );
    }

    /// The state machine was replaced by a snapshot covering `index`.
    pub fn snapshot(&mut self, index: Index, term: Term) {
        self.line(json!({"event": "snapshot", "index": index, "term": term}));
    }

    pub fn flush(&mut self) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot flush trace");
        }
    }
}

/// A stable digest of an entry (its term, index and payload), equal on every
/// node that applies the same entry: 64-bit FNV-1a over the bincode encoding, hex.
pub fn digest(entry: &Entry) -> String {
    let bytes = bincode::serialize(entry).expect("serializing an entry cannot fail");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_time_and_node() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut t = Trace::open(&p, 7).unwrap();
        let e = Entry {
            term: 2,
            index: 5,
            payload: EntryPayload::Noop,
        };
        t.role(2, "leader", Some(7));
        t.apply(&e);
        t.flush();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "role");
        assert_eq!(lines[1]["node"], 7);
        assert_eq!(lines[1]["digest"], digest(&e));
        assert!(lines[1]["time"].as_u64().unwrap() > 0);
        let other = Entry { term: 3, ..e };
        assert_ne!(digest(&other), lines[1]["digest"].as_str().unwrap());
    }
}
