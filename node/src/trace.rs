//! The consensus trace (`trace.jsonl`, docs/formats.md "Trace"): one line
//! per event, appended to `--trace`, read afterwards by the Raft-safety
//! checker and the report. The event type and its writer are `formats`'.
//! Lines are handed to the OS after every batch ([`Trace::flush`]), so a
//! `kill -9` loses at most what the current batch had not yet written; it is
//! not fsynced, because the trace is evidence for the checker, not state the
//! node depends on.

use crate::raft::{Entry, EntryPayload, Index, NodeId, Role, Term};
use formats::trace::{self, EntryKind, TraceEvent, TraceKind};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Trace {
    node: NodeId,
    /// `None` for a node that keeps no trace (a Maelstrom node in memory).
    out: Option<trace::Writer<BufWriter<File>>>,
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
            out: Some(trace::Writer::new(BufWriter::new(file))),
        })
    }

    /// A trace that records nothing.
    pub fn disabled(node: NodeId) -> Trace {
        Trace { node, out: None }
    }

    fn line(&mut self, kind: TraceKind) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let event = TraceEvent {
            time,
            node: self.node,
            kind,
        };
        if let Err(e) = out.write(&event) {
            tracing::error!(error = %e, "cannot write trace");
        }
    }

    /// A new process lifetime begins: the commit index is relearned from
    /// scratch and the log after the snapshot will be applied again.
    pub fn start(&mut self, term: Term, snapshot_index: Index) {
        self.line(TraceKind::Start {
            term,
            snapshot_index,
        });
    }

    pub fn role(&mut self, term: Term, role: Role, leader: Option<NodeId>) {
        self.line(TraceKind::Role {
            term,
            role: role.reported(),
            leader,
        });
    }

    pub fn commit(&mut self, index: Index, term: Term) {
        self.line(TraceKind::Commit { index, term });
    }

    pub fn apply(&mut self, entry: &Entry) {
        let kind = match entry.payload {
            EntryPayload::Noop => EntryKind::Noop,
            EntryPayload::Command(_) => EntryKind::Command,
            EntryPayload::Config(_) => EntryKind::Config,
        };
        self.line(TraceKind::Apply {
            index: entry.index,
            term: entry.term,
            digest: digest(entry),
            kind,
        });
    }

    pub fn config(&mut self, index: Index, voters: &[NodeId], learners: &[NodeId]) {
        self.line(TraceKind::Config {
            index,
            members: voters.to_vec(),
            learners: learners.to_vec(),
        });
    }

    /// The state machine was replaced by a snapshot covering `index`.
    pub fn snapshot(&mut self, index: Index, term: Term) {
        self.line(TraceKind::Snapshot { index, term });
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
    fn lines_read_back_with_time_node_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut t = Trace::open(&p, 7).unwrap();
        let e = Entry {
            term: 2,
            index: 5,
            payload: EntryPayload::Noop,
        };
        t.role(2, Role::PreCandidate, None);
        t.role(2, Role::Leader, Some(7));
        t.apply(&e);
        t.flush();
        let lines: Vec<TraceEvent> = trace::Reader::open(&p)
            .unwrap()
            .map(|l| l.unwrap().event)
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(matches!(
            lines[0].kind,
            TraceKind::Role {
                role: trace::Role::Candidate,
                ..
            }
        ));
        assert_eq!(lines[2].node, 7);
        assert!(lines[2].time > 0);
        let TraceKind::Apply {
            digest: d, kind, ..
        } = &lines[2].kind
        else {
            panic!("an apply: {:?}", lines[2]);
        };
        assert_eq!((d.as_str(), *kind), (digest(&e).as_str(), EntryKind::Noop));
        let other = Entry { term: 3, ..e };
        assert_ne!(&digest(&other), d);
    }
}
