//! The append-only Raft log, split into segment files.
//!
//! ## On-disk format
//! `DATA_DIR/log/<first-index, 20 digits>.seg`, each file a sequence of records:
//!
//! ```text
//! +---------+-------------+------------+------------------------------+
//! | len u32 | payload crc | header crc | payload: bincode(Entry)      |
//! |  (LE)   | crc32c (LE) | crc32c(LE) | `len` bytes                  |
//! +---------+-------------+------------+------------------------------+
//! ```
//! The header crc covers the first 8 bytes, so a damaged length is detected
//! as damage rather than mistaken for a record that runs past the end of the file.
//!
//! ## Recovery rules
//! Only the *last* record of the *last* segment may be incomplete (a crash in
//! mid-write): a short header, a length running past the end of the file, a
//! payload checksum failure on a record that ends exactly at end of file, or
//! an all-zero tail. It is truncated with a warning. Any other damage refuses
//! to start with an error naming the file and the byte offset: acknowledged
//! entries are never silently dropped.

use super::StorageError;
use crate::raft::{Entry, Index, Term};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const HEADER_BYTES: usize = 12;
/// Sanity cap on one record; a larger length is damage, not data.
const MAX_RECORD_BYTES: u32 = 512 * 1024 * 1024;

/// One segment file and the position of every record in it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub first_index: Index,
    pub path: PathBuf,
    /// Byte offset of each record; entry `first_index + i` starts at `offsets[i]`.
    pub offsets: Vec<u64>,
    pub terms: Vec<Term>,
    pub size: u64,
}

impl Segment {
    pub fn last_index(&self) -> Option<Index> {
        if self.offsets.is_empty() {
            None
        } else {
            Some(self.first_index + self.offsets.len() as u64 - 1)
        }
    }

    /// The index the next appended entry must have.
    pub fn next_index(&self) -> Index {
        self.first_index + self.offsets.len() as u64
    }
}

pub(crate) fn segment_path(log_dir: &Path, first_index: Index) -> PathBuf {
    log_dir.join(format!("{first_index:020}.seg"))
}

/// Encodes one record (header + payload) onto `buf`.
pub(crate) fn encode_record(entry: &Entry, buf: &mut Vec<u8>) {
    let payload = bincode::serialize(entry).expect("serializing an entry into memory cannot fail");
    let len = u32::try_from(payload.len()).expect("entry larger than 4 GiB");
    assert!(
        len <= MAX_RECORD_BYTES,
        "entry of {len} bytes exceeds the record cap"
    );
    let mut header = [0u8; HEADER_BYTES];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    let hcrc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&hcrc.to_le_bytes());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&payload);
}

/// The result of scanning one segment file.
pub(crate) struct Scanned {
    pub entries: Vec<Entry>,
    pub offsets: Vec<u64>,
    /// Set when a torn tail was found: the length the file must be cut to.
    pub torn_at: Option<u64>,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Parses every record of `data` (the contents of `path`). `may_be_torn` is
/// true only for the last segment.
pub(crate) fn scan(
    path: &Path,
    data: &[u8],
    first_index: Index,
    may_be_torn: bool,
) -> Result<Scanned, StorageError> {
    let mut out = Scanned {
        entries: Vec::new(),
        offsets: Vec::new(),
        torn_at: None,
    };
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        let off = pos as u64;
        let torn = |why: &str| -> Result<(), StorageError> {
            if may_be_torn {
                Ok(())
            } else {
                Err(corrupt(path, off, format!("{why} (not the last segment)")))
            }
        };
        if rest.len() < HEADER_BYTES {
            torn("incomplete record header")?;
            out.torn_at = Some(off);
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let pcrc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let hcrc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
        if crc32c::crc32c(&rest[0..8]) != hcrc {
            if rest.iter().all(|&b| b == 0) {
                torn("zero-filled tail")?;
                out.torn_at = Some(off);
                break;
            }
            return Err(corrupt(path, off, "record header checksum mismatch"));
        }
        if len > MAX_RECORD_BYTES {
            return Err(corrupt(
                path,
                off,
                format!("record length {len} is implausible"),
            ));
        }
        let end = HEADER_BYTES + len as usize;
        if rest.len() < end {
            torn("record runs past end of file")?;
            out.torn_at = Some(off);
            break;
        }
        let payload = &rest[HEADER_BYTES..end];
        if crc32c::crc32c(payload) != pcrc {
            if rest.len() == end && may_be_torn {
                out.torn_at = Some(off);
                break;
            }
            return Err(corrupt(path, off, "record payload checksum mismatch"));
        }
        let entry: Entry = bincode::deserialize(payload)
            .map_err(|e| corrupt(path, off, format!("undecodable entry: {e}")))?;
        let expected = first_index + out.entries.len() as u64;
        if entry.index != expected {
            return Err(corrupt(
                path,
                off,
                format!("entry index {} where {expected} was expected", entry.index),
            ));
        }
        out.offsets.push(off);
        out.entries.push(entry);
        pos += end;
    }
    Ok(out)
}

/// Opens a segment for appending (creating it if needed).
pub(crate) fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io("open segment", path, e))
}

/// Writes `buf` at the end of `file`.
pub(crate) fn write_all(file: &mut File, path: &Path, buf: &[u8]) -> Result<(), StorageError> {
    file.write_all(buf)
        .map_err(|e| StorageError::io("append to", path, e))
}

/// Lists `(first_index, path)` of the segments in `log_dir`, ascending.
pub(crate) fn list_segments(log_dir: &Path) -> Result<Vec<(Index, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(log_dir).map_err(|e| StorageError::io("list", log_dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io("list", log_dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        let first: Index = stem.parse().map_err(|_| StorageError::Inconsistent {
            path: ent.path(),
            reason: "segment file name is not an index".into(),
        })?;
        out.push((first, ent.path()));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::EntryPayload;

    fn entry(index: Index) -> Entry {
        Entry {
            term: 1,
            index,
            payload: EntryPayload::Command(vec![index as u8; 10]),
        }
    }

    fn records(n: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        for i in 1..=n {
            encode_record(&entry(i), &mut buf);
        }
        buf
    }

    #[test]
    fn scan_reads_back_every_record() {
        let buf = records(5);
        let s = scan(Path::new("x.seg"), &buf, 1, false).unwrap();
        assert_eq!(s.entries.len(), 5);
        assert_eq!(s.entries[4], entry(5));
        assert!(s.torn_at.is_none());
    }

    #[test]
    fn torn_tail_is_cut_only_in_the_last_segment() {
        let buf = records(3);
        let cut = &buf[..buf.len() - 3];
        let s = scan(Path::new("x.seg"), cut, 1, true).unwrap();
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.torn_at, Some(s.offsets[1] + (buf.len() as u64 / 3)));
        assert!(scan(Path::new("x.seg"), cut, 1, false).is_err());
        let mut zeros = buf.clone();
        zeros.extend_from_slice(&[0u8; 40]);
        let s = scan(Path::new("x.seg"), &zeros, 1, true).unwrap();
        assert_eq!(s.entries.len(), 3);
        assert_eq!(s.torn_at, Some(buf.len() as u64));
    }

    #[test]
    fn flipped_byte_in_the_middle_is_an_error_with_offset() {
        let mut buf = records(3);
        let second = buf.len() / 3;
        buf[second + HEADER_BYTES + 2] ^= 0x40;
        let err = scan(Path::new("x.seg"), &buf, 1, true).err().unwrap();
        match err {
            StorageError::Corrupt { offset, .. } => assert_eq!(offset, second as u64),
            other => panic!("unexpected {other}"),
        }
        let mut buf = records(3);
        buf[second + 1] ^= 0x01; // the length field
        assert!(scan(Path::new("x.seg"), &buf, 1, true).is_err());
    }
}
