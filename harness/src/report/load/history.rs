//! Reading `history.jsonl` for the report: its last event's time (the end
//! of the time axis, known before the pass so that everything can be
//! binned to pixels as it streams by), one streaming pass over every event,
//! and a second read of just the stretch that holds a given time window,
//! found through byte offsets noted during the pass.
//!
//! The events are parsed by `formats` like everywhere else; a line it
//! rejects is skipped and counted here instead of failing the page (a
//! report is most needed for runs that went wrong).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use formats::history::Event;
use formats::jsonl::Record;
use formats::ReadError;

use super::io_error;
use crate::report::ReportError;

/// How much of the file's end is read to find the last event.
const TAIL_BYTES: u64 = 64 * 1024;
/// Offsets noted at most; past that every other one is dropped and the
/// stride doubles, so the index stays this small for any history.
const MAX_MARKS: usize = 4096;

/// A place in the file: the event starting at `offset` has `time`, and
/// `records` events were read before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    time: i64,
    offset: u64,
    records: u64,
}

/// What the pass learned about the file besides its events.
#[derive(Debug, Clone, Default)]
pub struct HistoryScan {
    pub events: u64,
    /// Lines `formats` rejected, the torn last line included.
    pub bad_lines: u64,
    marks: Vec<Mark>,
    stride: u64,
    /// Every event's `index` equals its position: then an event re-read
    /// from the middle of the file gets its index from its position, as it
    /// did in the pass, whether or not the file spells indexes out.
    index_is_position: bool,
}

/// The time of the history's last event, from the end of the file (the
/// harness writes times that never decrease down the file). `None` if no
/// event is readable there.
pub fn end_time(path: &Path) -> Result<Option<i64>, ReportError> {
    let mut f = File::open(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = f
        .metadata()
        .map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let from = len.saturating_sub(TAIL_BYTES);
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(from))
        .and_then(|_| f.read_to_end(&mut tail))
        .map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut lines: Vec<&[u8]> = tail.split(|b| *b == b'\n').collect();
    if from > 0 {
        // The first piece starts mid-line.
        lines.remove(0);
    }
    Ok(lines
        .iter()
        .rev()
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .find_map(|l| Event::parse_line(l, 0).ok())
        .map(|e| e.time.unwrap_or(0).min(i64::MAX as u64) as i64))
}

/// Counts the bytes a reader consumed, to note where each line starts.
struct Counting<R> {
    inner: R,
    pos: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.pos.set(self.pos.get() + amt as u64);
    }
}

/// Streams every event of the history to `each`, in file order.
pub fn stream(path: &Path, mut each: impl FnMut(&Event)) -> Result<HistoryScan, ReportError> {
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let pos = Rc::new(Cell::new(0u64));
    let input = Counting {
        inner: BufReader::with_capacity(1 << 16, file),
        pos: pos.clone(),
    };
    let mut reader = formats::history::Reader::new(path.display().to_string(), input);
    let mut scan = HistoryScan {
        stride: 1024,
        index_is_position: true,
        ..HistoryScan::default()
    };
    loop {
        let offset = pos.get();
        let Some(item) = reader.next() else { break };
        let ev = match item {
            Ok(n) => n.event,
            Err(ReadError::Malformed { .. }) => {
                scan.bad_lines += 1;
                continue;
            }
            Err(e) => return Err(io_error(path, e)),
        };
        scan.index_is_position &= ev.index == scan.events;
        // The stride is a power of two.
        if scan.events & (scan.stride - 1) == 0 {
            scan.mark(Mark {
                time: ev.time.unwrap_or(0).min(i64::MAX as u64) as i64,
                offset,
                records: scan.events,
            });
        }
        scan.events += 1;
        each(&ev);
    }
    scan.bad_lines += u64::from(reader.torn_line().is_some());
    Ok(scan)
}

impl HistoryScan {
    fn mark(&mut self, m: Mark) {
        self.marks.push(m);
        if self.marks.len() > MAX_MARKS {
            let kept: Vec<Mark> = self.marks.iter().copied().step_by(2).collect();
            self.marks = kept;
            self.stride *= 2;
        }
    }

    /// The last noted place whose event is before `time`.
    fn before(&self, time: i64) -> Mark {
        let i = self.marks.partition_point(|m| m.time < time);
        self.marks
            .get(i.saturating_sub(1))
            .copied()
            .unwrap_or(Mark {
                time: 0,
                offset: 0,
                records: 0,
            })
    }
}

/// Streams the events from before time `from` until the first event after
/// `until` (plus a few, up to where the noted offsets allow) to `each`.
pub fn stream_window(
    path: &Path,
    scan: &HistoryScan,
    from: i64,
    until: i64,
    mut each: impl FnMut(&Event),
) -> Result<(), ReportError> {
    let start = scan.before(from);
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(start.offset)).map_err(io)?;
    let input = BufReader::with_capacity(1 << 16, file);
    let reader = formats::history::Reader::new(path.display().to_string(), input);
    let mut position = start.records;
    for item in reader {
        let mut ev = match item {
            Ok(n) => n.event,
            Err(ReadError::Malformed { .. }) => continue,
            Err(e) => return Err(io_error(path, e)),
        };
        if scan.index_is_position {
            ev.index = position;
        }
        position += 1;
        if ev.time.is_some_and(|t| t as i64 > until) {
            break;
        }
        each(&ev);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(lines: &[String]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        f
    }

    fn line(i: u64, t: u64, with_index: bool) -> String {
        let index = if with_index {
            format!("\"index\":{i},")
        } else {
            String::new()
        };
        format!(
            "{{{index}\"time\":{t},\"process\":{},\"type\":\"invoke\",\"f\":\"read\"}}",
            i
        )
    }

    #[test]
    fn the_end_is_the_last_readable_event_even_after_a_torn_line() {
        let lines: Vec<String> = (0..5000).map(|i| line(i, i * 10, true)).collect();
        let f = write(&lines);
        assert_eq!(end_time(f.path()).unwrap(), Some(49_990));
        let mut torn = std::fs::read(f.path()).unwrap();
        torn.extend_from_slice(b"{\"index\":5000,\"time\":99");
        std::fs::write(f.path(), torn).unwrap();
        assert_eq!(end_time(f.path()).unwrap(), Some(49_990));
        std::fs::write(f.path(), b"").unwrap();
        assert_eq!(end_time(f.path()).unwrap(), None);
    }

    #[test]
    fn a_window_is_read_again_from_a_noted_offset_with_its_indexes() {
        for with_index in [true, false] {
            let n = 300_000u64;
            let lines: Vec<String> = (0..n).map(|i| line(i, i * 10, with_index)).collect();
            let f = write(&lines);
            let mut count = 0;
            let scan = stream(f.path(), |_| count += 1).unwrap();
            assert_eq!((scan.events, count, scan.bad_lines), (n, n, 0));
            let mut got = Vec::new();
            stream_window(f.path(), &scan, 2_000_000, 2_000_100, |e| {
                got.push((e.index, e.time.unwrap()))
            })
            .unwrap();
            let first = got.first().unwrap();
            assert!(first.1 < 2_000_000, "starts before the window: {first:?}");
            assert!(
                got.iter().all(|&(i, t)| t == i * 10),
                "indexes are positions"
            );
            assert_eq!(got.last().unwrap().1, 2_000_100);
            assert!(
                got.len() < 3 * scan.stride as usize,
                "reads only near the window"
            );
        }
    }

    #[test]
    fn the_offset_index_stays_small_and_evenly_spaced() {
        let mut scan = HistoryScan {
            stride: 1,
            ..HistoryScan::default()
        };
        for i in 0..100_000u64 {
            if i % scan.stride == 0 {
                scan.mark(Mark {
                    time: i as i64,
                    offset: i,
                    records: i,
                });
            }
        }
        assert!(scan.marks.len() <= MAX_MARKS, "{}", scan.marks.len());
        assert_eq!(scan.stride, 32);
        assert!(scan
            .marks
            .windows(2)
            .all(|w| w[1].records - w[0].records == 32));
        assert_eq!(scan.before(1000).time, 992);
        assert_eq!(scan.before(0).offset, 0);
    }

    #[test]
    fn unreadable_lines_are_counted_and_skipped() {
        let mut lines: Vec<String> = (0..3).map(|i| line(i, i, true)).collect();
        lines.insert(1, "{\"process\": 1}".into());
        let f = write(&lines);
        let mut n = 0;
        let scan = stream(f.path(), |_| n += 1).unwrap();
        assert_eq!((n, scan.bad_lines), (3, 1));
        assert!(!scan.index_is_position || scan.events == 3);
    }
}
