//! Crash-safe storage of one node: log segments, hard state and snapshot.
//!
//! Layout of `DATA_DIR`:
//! - `log/*.seg` — the log (format and recovery rules in [`segment`]);
//! - `hardstate` — `crc32c (u32 LE) | bincode(HardState)`;
//! - `snapshot`  — `"RSNP" | crc32c (u32 LE) | bincode(Snapshot)`.
//!
//! `hardstate` and `snapshot` are replaced atomically: write a temp file,
//! fsync it, rename it over the old one, fsync the directory. Appends are
//! buffered by the OS until [`Storage::sync`], which the runtime calls once
//! per batch (group commit) before sending or acknowledging anything.

mod segment;

#[cfg(feature = "bugs")]
use crate::bugs::{Bug, BugSet};
use crate::raft::{Entry, HardState, Index, Snapshot, SnapshotMeta, Term};
use segment::Segment;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "corrupt data in {path} at offset {offset}: {reason}; refusing to start (no silent repair)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("inconsistent storage at {path}: {reason}")]
    Inconsistent { path: PathBuf, reason: String },
}

impl StorageError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What was found in the data dir at start-up.
#[derive(Debug, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, contiguous and ascending.
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// True for a data dir that has never held any Raft state.
    pub fn is_fresh(&self) -> bool {
        self.hard_state == HardState::default()
            && self.snapshot.is_none()
            && self.entries.is_empty()
    }
}

/// The storage of one node. Not thread-safe by design: only the Raft loop owns it.
pub struct Storage {
    dir: PathBuf,
    log_dir: PathBuf,
    segments: Vec<Segment>,
    active: Option<File>,
    dirty: bool,
    segment_max_bytes: u64,
    snapshot_meta: Option<SnapshotMeta>,
    /// Planted bugs of the catalogue (docs/bugs.md) that live in storage.
    #[cfg(feature = "bugs")]
    bugs: BugSet,
    /// The ack-before-fsync bug: appended records held in process memory,
    /// written and fsynced only once they are [`DEFERRED_FSYNC`] old.
    #[cfg(feature = "bugs")]
    deferred: Deferred,
}

/// How long the ack-before-fsync bug holds appended records in memory.
#[cfg(feature = "bugs")]
pub const DEFERRED_FSYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// Records of the active segment not yet written to its file: they belong at
/// byte `from` of it and after, in order.
#[cfg(feature = "bugs")]
#[derive(Debug, Default)]
struct Deferred {
    from: u64,
    chunks: std::collections::VecDeque<(std::time::Instant, Vec<u8>)>,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"RSNP";

impl Storage {
    /// Opens (creating if needed) the data dir and recovers its state.
    pub fn open(dir: &Path, segment_max_bytes: u64) -> Result<(Storage, Recovered), StorageError> {
        let log_dir = dir.join("log");
        fs::create_dir_all(&log_dir).map_err(|e| StorageError::io("create", &log_dir, e))?;
        for tmp in ["hardstate.tmp", "snapshot.tmp"] {
            let p = dir.join(tmp);
            if p.exists() {
                fs::remove_file(&p).map_err(|e| StorageError::io("remove", &p, e))?;
            }
        }
        let hard_state = read_hard_state(&dir.join("hardstate"))?;
        let snapshot = read_snapshot(&dir.join("snapshot"))?;
        let mut st = Storage {
            dir: dir.to_path_buf(),
            log_dir: log_dir.clone(),
            segments: Vec::new(),
            active: None,
            dirty: false,
            segment_max_bytes: segment_max_bytes.max(1),
            snapshot_meta: snapshot.as_ref().map(|s| s.meta.clone()),
            #[cfg(feature = "bugs")]
            bugs: BugSet::none(),
            #[cfg(feature = "bugs")]
            deferred: Deferred::default(),
        };
        let mut entries = st.recover_segments()?;
        let snap_index = snapshot.as_ref().map_or(0, |s| s.meta.last_index);
        if let Some(snap) = &snapshot {
            let keep = match st.log_term(snap_index) {
                Some(t) => t == snap.meta.last_term,
                // Compacted exactly up to the snapshot, or nothing after it to keep.
                None => st.first_log_index() == Some(snap_index + 1),
            };
            if keep {
                entries.retain(|e| e.index > snap_index);
                st.compact(snap_index)?;
            } else {
                if st.first_log_index().is_some_and(|f| f > snap_index + 1) {
                    return Err(StorageError::Inconsistent {
                        path: log_dir,
                        reason: format!(
                            "log starts at {} but the snapshot ends at {snap_index}: entries are missing",
                            st.first_log_index().unwrap_or(0)
                        ),
                    });
                }
                if !entries.is_empty() {
                    tracing::info!(
                        snapshot_index = snap_index,
                        "discarding log entries that the snapshot supersedes"
                    );
                }
                entries.clear();
                st.remove_all_segments()?;
            }
        } else if let Some(first) = st.first_log_index() {
            if first != 1 {
                return Err(StorageError::Inconsistent {
                    path: log_dir,
                    reason: format!("log starts at index {first} but there is no snapshot"),
                });
            }
        }
        let recovered = Recovered {
            hard_state,
            snapshot,
            entries,
        };
        Ok((st, recovered))
    }

    /// [`Storage::open`] with planted bugs of the catalogue on (docs/bugs.md).
    #[cfg(feature = "bugs")]
    pub fn open_with_bugs(
        dir: &Path,
        segment_max_bytes: u64,
        bugs: BugSet,
    ) -> Result<(Storage, Recovered), StorageError> {
        let (mut st, mut recovered) = Storage::open(dir, segment_max_bytes)?;
        st.bugs = bugs;
        if bugs.has(Bug::LoseLastEntry) {
            if let Some(last) = recovered.entries.pop() {
                tracing::warn!(
                    index = last.index,
                    "planted bug lose-last-entry: recovery drops the last log entry"
                );
                st.truncate_from(last.index)?;
                st.sync()?;
            }
        }
        Ok((st, recovered))
    }

    fn recover_segments(&mut self) -> Result<Vec<Entry>, StorageError> {
        let listed = segment::list_segments(&self.log_dir)?;
        let n = listed.len();
        let mut all = Vec::new();
        for (i, (first, path)) in listed.into_iter().enumerate() {
            let is_last = i + 1 == n;
            let data = fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            let scanned = segment::scan(&path, &data, first, is_last)?;
            if let Some(prev) = self.segments.last() {
                if prev.next_index() != first {
                    return Err(StorageError::Inconsistent {
                        path: path.clone(),
                        reason: format!(
                            "segment starts at {first} but the previous one ends at {}",
                            prev.next_index() - 1
                        ),
                    });
                }
            }
            let mut size = data.len() as u64;
            if let Some(cut) = scanned.torn_at {
                tracing::warn!(
                    file = %path.display(),
                    offset = cut,
                    dropped_bytes = size - cut,
                    "torn final log record (crash in mid-write): truncating it"
                );
                let f = segment::open_for_append(&path)?;
                f.set_len(cut)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| StorageError::io("truncate", &path, e))?;
                size = cut;
            }
            self.segments.push(Segment {
                first_index: first,
                path,
                terms: scanned.entries.iter().map(|e| e.term).collect(),
                offsets: scanned.offsets,
                size,
            });
            all.extend(scanned.entries);
        }
        if let Some(last) = self.segments.last() {
            self.active = Some(segment::open_for_append(&last.path)?);
        }
        Ok(all)
    }

    fn first_log_index(&self) -> Option<Index> {
        self.segments
            .iter()
            .find(|s| !s.offsets.is_empty())
            .map(|s| s.first_index)
    }

    fn last_log_index(&self) -> Option<Index> {
        self.segments.iter().rev().find_map(|s| s.last_index())
    }

    /// Last index covered by the log or, if the log is empty, the snapshot.
    pub fn last_index(&self) -> Index {
        self.last_log_index()
            .unwrap_or_else(|| self.snapshot_meta.as_ref().map_or(0, |m| m.last_index))
    }

    /// Term of the entry at `index`, if the log or the snapshot knows it.
    pub fn term(&self, index: Index) -> Option<Term> {
        if let Some(m) = &self.snapshot_meta {
            if m.last_index == index {
                return Some(m.last_term);
            }
        }
        self.log_term(index)
    }

    /// Term of the entry at `index` as stored in the log segments.
    fn log_term(&self, index: Index) -> Option<Term> {
        let pos = self.segments.partition_point(|s| s.first_index <= index);
        let seg = self.segments.get(pos.checked_sub(1)?)?;
        seg.terms.get((index - seg.first_index) as usize).copied()
    }

    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot_meta.as_ref()
    }

    /// Appends entries (not yet durable: call [`Storage::sync`]). An entry whose
    /// index is already stored truncates the stored log from that index first.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if self.last_log_index().is_some_and(|l| first.index <= l) {
            self.truncate_from(first.index)?;
        }
        let expected = self.last_index() + 1;
        assert!(
            first.index == expected,
            "log gap: appending index {} after {}",
            first.index,
            expected - 1
        );
        let mut buf = Vec::new();
        for e in entries {
            let need_new = match self.segments.last() {
                None => true,
                Some(s) => {
                    s.size + buf.len() as u64 >= self.segment_max_bytes && !s.offsets.is_empty()
                }
            };
            if need_new {
                self.flush_buf(&mut buf)?;
                self.start_segment(e.index)?;
            }
            let seg = self.segments.last_mut().expect("a segment exists");
            assert_eq!(e.index, seg.next_index(), "entries must be contiguous");
            seg.offsets.push(seg.size + buf.len() as u64);
            seg.terms.push(e.term);
            segment::encode_record(e, &mut buf);
        }
        self.flush_buf(&mut buf)
    }

    fn flush_buf(&mut self, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "bugs")]
        if self.bugs.has(Bug::AckBeforeFsync) {
            let seg = self.segments.last_mut().expect("a segment exists");
            if self.deferred.chunks.is_empty() {
                self.deferred.from = seg.size;
            }
            seg.size += buf.len() as u64;
            let chunk = std::mem::take(buf);
            self.deferred
                .chunks
                .push_back((std::time::Instant::now(), chunk));
            return Ok(());
        }
        let seg = self.segments.last_mut().expect("a segment exists");
        let file = self.active.as_mut().expect("the last segment is open");
        segment::write_all(file, &seg.path, buf)?;
        seg.size += buf.len() as u64;
        buf.clear();
        self.dirty = true;
        Ok(())
    }

    fn start_segment(&mut self, first_index: Index) -> Result<(), StorageError> {
        // The finished segment must be durable before a later one exists.
        #[cfg(feature = "bugs")]
        self.write_deferred(true)?;
        self.sync()?;
        let path = segment::segment_path(&self.log_dir, first_index);
        let file = segment::open_for_append(&path)?;
        file.set_len(0)
            .map_err(|e| StorageError::io("create segment", &path, e))?;
        sync_dir(&self.log_dir)?;
        self.segments.push(Segment {
            first_index,
            path,
            offsets: Vec::new(),
            terms: Vec::new(),
            size: 0,
        });
        self.active = Some(file);
        Ok(())
    }

    /// Removes every stored entry with index ≥ `index`.
    fn truncate_from(&mut self, index: Index) -> Result<(), StorageError> {
        let mut removed = false;
        while self.segments.last().is_some_and(|s| s.first_index >= index) {
            let seg = self.segments.pop().expect("checked");
            fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
            removed = true;
        }
        if removed {
            // Records held back belonged to the last segment, now gone.
            #[cfg(feature = "bugs")]
            self.deferred.chunks.clear();
            sync_dir(&self.log_dir)?;
            self.active = match self.segments.last() {
                Some(s) => Some(segment::open_for_append(&s.path)?),
                None => None,
            };
        }
        if let Some(seg) = self.segments.last_mut() {
            let keep = (index - seg.first_index) as usize;
            if keep < seg.offsets.len() {
                let cut = seg.offsets[keep];
                seg.offsets.truncate(keep);
                seg.terms.truncate(keep);
                seg.size = cut;
                #[cfg(feature = "bugs")]
                if self.deferred.cut(cut) {
                    return Ok(());
                }
                let f = self.active.as_ref().expect("the last segment is open");
                f.set_len(cut)
                    .map_err(|e| StorageError::io("truncate", &seg.path, e))?;
                self.dirty = true;
            }
        }
        Ok(())
    }

    /// Makes every append durable (one fdatasync for the whole batch).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        #[cfg(feature = "bugs")]
        self.write_deferred(false)?;
        if self.dirty {
            if let (Some(f), Some(seg)) = (&self.active, self.segments.last()) {
                f.sync_data()
                    .map_err(|e| StorageError::io("fsync", &seg.path, e))?;
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Atomically replaces the hard state (durable on return).
    pub fn save_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        #[cfg(feature = "bugs")]
        let hs = &if self.bugs.has(Bug::VoteNotPersisted) {
            HardState { vote: None, ..*hs }
        } else {
            *hs
        };
        let body = bincode::serialize(hs).expect("serializing hard state cannot fail");
        let mut data = crc32c::crc32c(&body).to_le_bytes().to_vec();
        data.extend_from_slice(&body);
        write_atomically(&self.dir, "hardstate", &data)
    }

    /// Persists a snapshot taken locally at an applied index and removes the
    /// segments that hold only entries it covers.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        self.write_snapshot_file(snap)?;
        self.compact(snap.meta.last_index)
    }

    /// Persists a snapshot received from the leader. Log entries after it are
    /// kept only if the log agrees with it at its last index (Raft §7).
    pub fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        let idx = snap.meta.last_index;
        let matches = self.term(idx) == Some(snap.meta.last_term) && self.last_index() > idx;
        self.write_snapshot_file(snap)?;
        if matches {
            self.compact(idx)
        } else {
            self.remove_all_segments()
        }
    }

    fn write_snapshot_file(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        let body = bincode::serialize(snap).expect("serializing a snapshot cannot fail");
        let mut data = Vec::with_capacity(body.len() + 8);
        data.extend_from_slice(SNAPSHOT_MAGIC);
        data.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        data.extend_from_slice(&body);
        write_atomically(&self.dir, "snapshot", &data)?;
        self.snapshot_meta = Some(snap.meta.clone());
        Ok(())
    }

    /// Removes whole segments whose entries are all ≤ `index` (never the active one).
    fn compact(&mut self, index: Index) -> Result<(), StorageError> {
        let mut n = 0;
        while n + 1 < self.segments.len() && self.segments[n + 1].first_index <= index + 1 {
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        for seg in self.segments.drain(..n) {
            fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
            tracing::debug!(file = %seg.path.display(), "removed compacted log segment");
        }
        sync_dir(&self.log_dir)
    }

    fn remove_all_segments(&mut self) -> Result<(), StorageError> {
        self.active = None;
        self.dirty = false;
        #[cfg(feature = "bugs")]
        self.deferred.chunks.clear();
        for seg in self.segments.drain(..) {
            fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))?;
        }
        sync_dir(&self.log_dir)
    }

    /// Number of segment files (for tests and status).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// The ack-before-fsync bug's lazy flush.
#[cfg(feature = "bugs")]
impl Storage {
    /// Writes the held-back records that are [`DEFERRED_FSYNC`] old (all of
    /// them with `all`) to the active segment; the caller fsyncs.
    fn write_deferred(&mut self, all: bool) -> Result<(), StorageError> {
        let now = std::time::Instant::now();
        while let Some((at, _)) = self.deferred.chunks.front() {
            if !all && now.duration_since(*at) < DEFERRED_FSYNC {
                break;
            }
            let (_, chunk) = self.deferred.chunks.pop_front().expect("checked");
            let seg = self.segments.last().expect("held records have a segment");
            let file = self.active.as_mut().expect("the last segment is open");
            segment::write_all(file, &seg.path, &chunk)?;
            self.deferred.from += chunk.len() as u64;
            self.dirty = true;
        }
        Ok(())
    }
}

#[cfg(feature = "bugs")]
impl Deferred {
    /// Cuts the active segment at byte `cut`; true when the cut falls within
    /// the held-back records, so that the file itself is left alone.
    fn cut(&mut self, cut: u64) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        if cut < self.from {
            self.chunks.clear();
            return false;
        }
        let mut keep = cut - self.from;
        self.chunks.retain_mut(|(_, c)| {
            let n = (c.len() as u64).min(keep);
            c.truncate(n as usize);
            keep -= n;
            n > 0
        });
        true
    }
}

/// A clean stop (SIGTERM) flushes what the ack-before-fsync bug held back;
/// only a crash (`kill -9`) loses it.
#[cfg(feature = "bugs")]
impl Drop for Storage {
    fn drop(&mut self) {
        if !self.deferred.chunks.is_empty() {
            if let Err(e) = self.write_deferred(true).and_then(|_| self.sync()) {
                tracing::error!(error = %e, "flushing held-back log records at shutdown");
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// temp file → fsync → rename → fsync directory.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &dst).map_err(|e| StorageError::io("rename into place", &dst, e))?;
    sync_dir(dir)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("read", path, e)),
    }
}

fn read_hard_state(path: &Path) -> Result<HardState, StorageError> {
    let Some(data) = read_optional(path)? else {
        return Ok(HardState::default());
    };
    if data.len() < 4 || crc32c::crc32c(&data[4..]).to_le_bytes() != data[0..4] {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "hard state checksum mismatch".into(),
        });
    }
    bincode::deserialize(&data[4..]).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 4,
        reason: format!("undecodable hard state: {e}"),
    })
}

fn read_snapshot(path: &Path) -> Result<Option<Snapshot>, StorageError> {
    let Some(data) = read_optional(path)? else {
        return Ok(None);
    };
    let bad = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if data.len() < 8 || &data[0..4] != SNAPSHOT_MAGIC {
        return Err(bad(0, "not a snapshot file (bad magic)".into()));
    }
    if crc32c::crc32c(&data[8..]).to_le_bytes() != data[4..8] {
        return Err(bad(4, "snapshot checksum mismatch".into()));
    }
    bincode::deserialize(&data[8..])
        .map(Some)
        .map_err(|e| bad(8, format!("undecodable snapshot: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{EntryPayload, Membership};
    #[cfg(feature = "bugs")]
    use std::time::Duration;

    fn e(term: Term, index: Index) -> Entry {
        Entry {
            term,
            index,
            payload: EntryPayload::Command(format!("cmd-{index}").into_bytes()),
        }
    }

    fn snap(index: Index, term: Term) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term: term,
                membership: Membership::new([1, 2, 3]),
            },
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn entries_and_hard_state_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, rec) = Storage::open(dir.path(), 1 << 20).unwrap();
        assert!(rec.is_fresh());
        st.append(&(1..=10).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.save_hard_state(&HardState {
            term: 3,
            vote: Some(2),
        })
        .unwrap();
        st.sync().unwrap();
        drop(st);
        let (st, rec) = Storage::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.entries.len(), 10);
        assert_eq!(
            rec.hard_state,
            HardState {
                term: 3,
                vote: Some(2)
            }
        );
        assert_eq!(st.last_index(), 10);
        assert_eq!(st.term(7), Some(1));
    }

    #[test]
    fn conflicting_append_truncates_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        // Tiny segments: a few records each.
        let (mut st, _) = Storage::open(dir.path(), 100).unwrap();
        st.append(&(1..=20).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        assert!(st.segment_count() > 3);
        st.append(&[e(2, 5), e(2, 6)]).unwrap();
        st.sync().unwrap();
        drop(st);
        let (st, rec) = Storage::open(dir.path(), 100).unwrap();
        assert_eq!(rec.entries.len(), 6);
        assert_eq!(rec.entries[4], e(2, 5));
        assert_eq!(st.last_index(), 6);
    }

    #[test]
    fn snapshot_removes_old_segments_and_recovery_skips_covered_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = Storage::open(dir.path(), 100).unwrap();
        st.append(&(1..=30).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.sync().unwrap();
        let before = st.segment_count();
        st.save_snapshot(&snap(25, 1)).unwrap();
        assert!(st.segment_count() < before);
        drop(st);
        let (st, rec) = Storage::open(dir.path(), 100).unwrap();
        assert_eq!(rec.snapshot.unwrap().meta.last_index, 25);
        assert_eq!(
            rec.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            (26..=30).collect::<Vec<_>>()
        );
        assert_eq!(st.term(25), Some(1));
    }

    #[test]
    fn installed_snapshot_that_disagrees_drops_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = Storage::open(dir.path(), 100).unwrap();
        st.append(&(1..=10).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.sync().unwrap();
        st.install_snapshot(&snap(8, 2)).unwrap();
        assert_eq!(st.last_index(), 8);
        st.append(&[e(2, 9)]).unwrap();
        st.sync().unwrap();
        drop(st);
        let (_, rec) = Storage::open(dir.path(), 100).unwrap();
        assert_eq!(rec.entries, vec![e(2, 9)]);
    }

    /// Opens `dir` with `bugs` (the planted ones of the catalogue).
    #[cfg(feature = "bugs")]
    fn open_buggy(dir: &Path, bugs: &[Bug]) -> (Storage, Recovered) {
        Storage::open_with_bugs(dir, 1 << 20, BugSet::of(bugs.iter().copied())).unwrap()
    }

    /// Vote persisted in term 3 for node 2, then the process dies: what a
    /// restart reads back.
    #[cfg(feature = "bugs")]
    fn vote_after_crash(bugs: &[Bug]) -> HardState {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open_buggy(dir.path(), bugs);
        let hs = HardState {
            term: 3,
            vote: Some(2),
        };
        st.save_hard_state(&hs).unwrap();
        std::mem::forget(st); // kill -9: nothing more runs
        open_buggy(dir.path(), &[]).1.hard_state
    }

    #[cfg(feature = "bugs")]
    #[test]
    fn bug_vote_not_persisted_forgets_the_vote_across_a_crash() {
        assert_eq!(vote_after_crash(&[]).vote, Some(2));
        assert_eq!(
            vote_after_crash(&[Bug::VoteNotPersisted]),
            HardState {
                term: 3,
                vote: None
            }
        );
    }

    /// Entries 1..=5 appended and synced (the point at which the runtime
    /// acknowledges them), then the process is killed: what a restart reads.
    #[cfg(feature = "bugs")]
    fn entries_after_crash(bugs: &[Bug], wait: Duration) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open_buggy(dir.path(), bugs);
        st.append(&(1..=5).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.sync().unwrap();
        std::thread::sleep(wait);
        st.sync().unwrap(); // the runtime syncs on every iteration
        std::mem::forget(st); // kill -9
        open_buggy(dir.path(), &[]).1.entries.len()
    }

    #[cfg(feature = "bugs")]
    #[test]
    fn bug_ack_before_fsync_loses_synced_entries_to_a_crash_until_the_late_flush() {
        assert_eq!(entries_after_crash(&[], Duration::ZERO), 5);
        assert_eq!(
            entries_after_crash(&[Bug::AckBeforeFsync], Duration::ZERO),
            0
        );
        // A second later they are written: the loss window is that second.
        let later = DEFERRED_FSYNC + Duration::from_millis(100);
        assert_eq!(entries_after_crash(&[Bug::AckBeforeFsync], later), 5);
    }

    #[cfg(feature = "bugs")]
    #[test]
    fn bug_ack_before_fsync_keeps_storage_consistent_through_truncation_and_clean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open_buggy(dir.path(), &[Bug::AckBeforeFsync]);
        st.append(&(1..=6).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.append(&[e(2, 4), e(2, 5)]).unwrap(); // a conflict inside the held records
        st.sync().unwrap();
        assert_eq!((st.last_index(), st.term(5)), (5, Some(2)));
        drop(st); // a clean stop writes what was held back
        let (_, rec) = open_buggy(dir.path(), &[]);
        let terms: Vec<Term> = rec.entries.iter().map(|e| e.term).collect();
        assert_eq!(terms, vec![1, 1, 1, 2, 2]);
    }

    #[cfg(feature = "bugs")]
    #[test]
    fn bug_lose_last_entry_drops_a_durable_entry_at_every_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open_buggy(dir.path(), &[]);
        st.append(&(1..=5).map(|i| e(1, i)).collect::<Vec<_>>())
            .unwrap();
        st.sync().unwrap();
        drop(st);
        assert_eq!(open_buggy(dir.path(), &[]).1.entries.len(), 5);
        assert_eq!(
            open_buggy(dir.path(), &[Bug::LoseLastEntry])
                .1
                .entries
                .len(),
            4
        );
        assert_eq!(
            open_buggy(dir.path(), &[Bug::LoseLastEntry])
                .1
                .entries
                .len(),
            3
        );
        let (st, rec) = open_buggy(dir.path(), &[]);
        assert_eq!(
            (rec.entries.len(), st.last_index()),
            (3, 3),
            "gone from disk"
        );
    }

    #[test]
    fn damaged_hard_state_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = Storage::open(dir.path(), 1 << 20).unwrap();
        st.save_hard_state(&HardState {
            term: 9,
            vote: None,
        })
        .unwrap();
        drop(st);
        let p = dir.path().join("hardstate");
        let mut d = fs::read(&p).unwrap();
        d[5] ^= 1;
        fs::write(&p, d).unwrap();
        let err = Storage::open(dir.path(), 1 << 20).err().unwrap();
        assert!(err.to_string().contains("hardstate"), "{err}");
    }
}
