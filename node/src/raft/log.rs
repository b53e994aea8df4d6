//! The in-memory Raft log: an optional snapshot followed by contiguous entries.
//!
//! The log mirrors what the runtime has (or is about to have) on stable
//! storage. It tracks which suffix has not yet been handed to the runtime for
//! persistence (`unstable_from`), the commit index, and how far committed
//! entries have been handed out for apply, so that [`super::Ready`] can be
//! assembled without ever handing an entry out twice.

use super::types::{Entry, EntryPayload, Index, Membership, Snapshot, Term};

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The latest snapshot; entries at or below its index are gone.
    pub snapshot: Option<Snapshot>,
    /// Index and term of the last entry covered by the snapshot (0, 0 without one).
    pub offset_index: Index,
    pub offset_term: Term,
    /// Entries `offset_index + 1 ..= last_index()`.
    entries: Vec<Entry>,
    /// First index not yet handed out in a `Ready` for persistence.
    pub unstable_from: Index,
    pub committed: Index,
    /// Highest index handed out for apply (in a `Ready`).
    pub applied_handed: Index,
    /// Highest index the runtime confirmed applied (via `advance`).
    pub applied: Index,
}

impl RaftLog {
    pub fn new(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> Self {
        let (offset_index, offset_term) = snapshot
            .as_ref()
            .map(|s| (s.meta.last_index, s.meta.last_term))
            .unwrap_or((0, 0));
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index,
                offset_index + 1 + i as u64,
                "persisted entries must be contiguous and follow the snapshot"
            );
        }
        let last = offset_index + entries.len() as u64;
        RaftLog {
            snapshot,
            offset_index,
            offset_term,
            entries,
            unstable_from: last + 1,
            committed: offset_index,
            applied_handed: offset_index,
            applied: offset_index,
        }
    }

    pub fn first_index(&self) -> Index {
        self.offset_index + 1
    }

    pub fn last_index(&self) -> Index {
        self.offset_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map(|e| e.term)
            .unwrap_or(self.offset_term)
    }

    /// Term of the entry at `index`; `None` when it was compacted away
    /// (below the snapshot) or does not exist yet.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.offset_index {
            return Some(self.offset_term);
        }
        if index < self.offset_index {
            return None;
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.offset_index {
            return None;
        }
        self.entries.get((index - self.offset_index - 1) as usize)
    }

    /// Entries `from ..= to` (both must be in the log).
    pub fn slice(&self, from: Index, to: Index) -> &[Entry] {
        if from > to {
            return &[];
        }
        let lo = (from - self.offset_index - 1) as usize;
        let hi = (to - self.offset_index) as usize;
        &self.entries[lo..hi]
    }

    /// `(last_term, last_index)` is at least as up to date as ours (§5.4.1).
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// The leader appends its own new entry.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        self.entries.push(entry);
    }

    /// The keep-conflicting-suffix bug: replaces the entry at its index and
    /// keeps everything after it (which is handed out for persistence again,
    /// so that storage mirrors the log).
    #[cfg(feature = "bugs")]
    pub fn overwrite(&mut self, entry: Entry) {
        let index = entry.index;
        assert!(index > self.committed && index <= self.last_index());
        let pos = (index - self.offset_index - 1) as usize;
        self.entries[pos] = entry;
        self.unstable_from = self.unstable_from.min(index);
    }

    /// Removes every entry at `from` and above (a conflicting suffix).
    pub fn truncate_from(&mut self, from: Index) {
        assert!(
            from > self.committed,
            "never truncate committed entries (from {from}, committed {})",
            self.committed
        );
        let keep = (from - self.offset_index - 1) as usize;
        self.entries.truncate(keep);
        self.unstable_from = self.unstable_from.min(from);
    }

    /// First index of the run of entries with `term` that contains `index`,
    /// not going below the first retained entry (the conflict hint of §5.3).
    pub fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Index of the last entry with `term`, if the log holds one.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        self.entries
            .iter()
            .rev()
            .skip_while(|e| e.term > term)
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Entries not yet handed out for persistence; marks them handed out.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let last = self.last_index();
        if self.unstable_from > last {
            self.unstable_from = last + 1;
            return Vec::new();
        }
        let from = self.unstable_from.max(self.first_index());
        let out = self.slice(from, last).to_vec();
        self.unstable_from = last + 1;
        out
    }

    /// Committed entries not yet handed out for apply; marks them handed out.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        if self.committed <= self.applied_handed {
            return Vec::new();
        }
        let out = self.slice(self.applied_handed + 1, self.committed).to_vec();
        self.applied_handed = self.committed;
        out
    }

    /// Drops the prefix up to `snapshot`'s index (which must be in the log or
    /// be the current offset) and keeps the snapshot.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let idx = snapshot.meta.last_index;
        assert!(idx > self.offset_index && idx <= self.last_index());
        let drop = (idx - self.offset_index) as usize;
        self.entries.drain(..drop);
        self.offset_index = idx;
        self.offset_term = snapshot.meta.last_term;
        self.snapshot = Some(snapshot);
    }

    /// Replaces the whole log by a snapshot received from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let idx = snapshot.meta.last_index;
        self.entries.clear();
        self.offset_index = idx;
        self.offset_term = snapshot.meta.last_term;
        self.snapshot = Some(snapshot);
        self.unstable_from = idx + 1;
        self.committed = self.committed.max(idx);
        self.applied_handed = idx;
        self.applied = self.applied.max(idx);
    }

    /// Latest configuration entry at or below `upto` still in the log.
    pub fn last_config(&self, upto: Index) -> Option<(Index, &Membership)> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.index <= upto)
            .find_map(|e| match &e.payload {
                EntryPayload::Config(m) => Some((e.index, m)),
                _ => None,
            })
    }
}
