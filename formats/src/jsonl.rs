//! The JSON-lines plumbing the three run files share: one record per line,
//! written with one `write_all` per line, read back one line at a time.
//!
//! Reading streams: a history of a long run holds millions of events, and
//! only one line is in memory at a time. Each line is parsed on its own, so a
//! reader that wants to survive a bad line (the report) can skip it and go
//! on, while a reader that must not guess (the checker) stops at the first
//! error. Blank lines are skipped.
//!
//! A crash in the middle of a write (`kill -9` of a node, a harness dying)
//! leaves the file's last line without its newline and cut short. Such a
//! *torn* line is not an error: the reader stops before it and remembers its
//! number ([`Reader::torn_line`]). Only that shape is forgiven: a line that
//! ends in a newline was written whole, so if it does not parse the file is
//! damaged, and that is an error naming the file and the line.
//! `docs/formats.md` states the rule for every format.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;

/// A record together with the 1-based line it was read from, so that
/// anything built from it can point a person back at the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered<T> {
    /// 1-based line number in the file.
    pub line: usize,
    /// What the line holds.
    pub event: T,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file, as given to the reader.
        file: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line is not what the format allows.
    #[error("{file}:{line}: expected {expected}, found {found}")]
    Malformed {
        /// The file, as given to the reader.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What the format wants there.
        expected: String,
        /// What the line holds instead (shortened).
        found: String,
    },
}

/// What one line failed to be: the format's expectation and what was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What the format wants, e.g. `a "type" of invoke, ok, fail or info`.
    pub expected: String,
    /// What was found instead.
    pub found: String,
}

impl Mismatch {
    /// A mismatch whose `found` is the start of the offending text.
    pub fn new(expected: impl Into<String>, found: &[u8]) -> Self {
        Mismatch {
            expected: expected.into(),
            found: snippet(&String::from_utf8_lossy(found)),
        }
    }
}

/// The start of a text, quoted, for error messages.
pub fn snippet(s: &str) -> String {
    let s: String = s.chars().take(60).collect();
    format!("{s:?}")
}

/// A type that one line of a JSON-lines file holds.
pub trait Record: Sized {
    /// Parses one non-blank line. `seq` is the number of records read
    /// before this one (a history event without an `index` gets it).
    fn parse_line(line: &[u8], seq: u64) -> Result<Self, Mismatch>;
}

/// Streams the records of one JSON-lines file.
pub struct Reader<R, T> {
    file: String,
    input: R,
    buf: Vec<u8>,
    line: usize,
    seq: u64,
    torn: Option<usize>,
    done: bool,
    record: PhantomData<fn() -> T>,
}

impl<T: Record> Reader<BufReader<File>, T> {
    /// Opens `path`; errors name it.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let file = path.display().to_string();
        match File::open(path) {
            Ok(f) => Ok(Reader::new(file, BufReader::with_capacity(1 << 16, f))),
            Err(source) => Err(ReadError::Io { file, source }),
        }
    }
}

impl<R: BufRead, T: Record> Reader<R, T> {
    /// Reads from `input`; `file` is the name errors give.
    pub fn new(file: impl Into<String>, input: R) -> Self {
        Reader {
            file: file.into(),
            input,
            buf: Vec::new(),
            line: 0,
            seq: 0,
            torn: None,
            done: false,
            record: PhantomData,
        }
    }

    /// The name errors give for this file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The number of the torn last line that was skipped, once the reader
    /// has reached it.
    pub fn torn_line(&self) -> Option<usize> {
        self.torn
    }

    /// Reads everything, stopping at the first error.
    pub fn read_all(self) -> Result<Vec<Numbered<T>>, ReadError> {
        self.collect()
    }

    fn next_record(&mut self) -> Option<Result<Numbered<T>, ReadError>> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    self.done = true;
                    return Some(Err(ReadError::Io {
                        file: self.file.clone(),
                        source,
                    }));
                }
            }
            self.line += 1;
            let terminated = self.buf.last() == Some(&b'\n');
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            return match T::parse_line(text, self.seq) {
                Ok(event) => {
                    self.seq += 1;
                    Some(Ok(Numbered {
                        line: self.line,
                        event,
                    }))
                }
                Err(_) if !terminated && !is_json(text) => {
                    self.torn = Some(self.line);
                    self.done = true;
                    None
                }
                Err(m) => Some(Err(ReadError::Malformed {
                    file: self.file.clone(),
                    line: self.line,
                    expected: m.expected,
                    found: m.found,
                })),
            };
        }
    }
}

impl<R: BufRead, T: Record> Iterator for Reader<R, T> {
    type Item = Result<Numbered<T>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_record()
    }
}

fn is_json(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// Writes records one line each.
///
/// Each record goes out in a single `write_all` of the whole line, newline
/// included, so over an unbuffered file the kernel has every line as soon as
/// [`Writer::write`] returns, and a crash can only ever tear the last one.
pub struct Writer<W: Write, T> {
    out: W,
    buf: Vec<u8>,
    record: PhantomData<fn(&T)>,
}

impl<W: Write, T: Serialize> Writer<W, T> {
    /// Writes to `out` (wrap a file in a `BufWriter` when lines need not
    /// reach the kernel one by one).
    pub fn new(out: W) -> Self {
        Writer {
            out,
            buf: Vec::with_capacity(256),
            record: PhantomData,
        }
    }

    /// Appends one record as one line.
    pub fn write(&mut self, record: &T) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, record).map_err(io::Error::other)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (e.g. to fsync the file).
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record that is any JSON number.
    #[derive(Debug, PartialEq, Serialize)]
    struct N(u64);

    impl Record for N {
        fn parse_line(line: &[u8], _seq: u64) -> Result<Self, Mismatch> {
            serde_json::from_slice(line)
                .map(N)
                .map_err(|_| Mismatch::new("a number", line))
        }
    }

    /// Each item as (line, number) or the error's text.
    type Items = Vec<Result<(usize, u64), String>>;

    fn read(text: &str) -> (Items, Option<usize>) {
        let mut r: Reader<&[u8], N> = Reader::new("f.jsonl", text.as_bytes());
        let items = r
            .by_ref()
            .map(|x| x.map(|n| (n.line, n.event.0)).map_err(|e| e.to_string()))
            .collect();
        (items, r.torn_line())
    }

    #[test]
    fn lines_are_numbered_and_blank_lines_skipped() {
        let (items, torn) = read("1\n\n  2  \n3");
        assert_eq!(items, vec![Ok((1, 1)), Ok((3, 2)), Ok((4, 3))]);
        assert_eq!(torn, None, "an unterminated line that parses is whole");
    }

    #[test]
    fn only_an_unterminated_unparsable_last_line_is_torn() {
        let (items, torn) = read("1\n2\n[3, ");
        assert_eq!(items, vec![Ok((1, 1)), Ok((2, 2))]);
        assert_eq!(torn, Some(3));

        let (items, torn) = read("1\n[3, \n2\n");
        assert_eq!(
            items[1],
            Err("f.jsonl:2: expected a number, found \"[3,\"".into())
        );
        assert_eq!(
            items[2],
            Ok((3, 2)),
            "a bad line does not stop the iterator"
        );
        assert_eq!(torn, None);

        let (items, _) = read("1\n[3, \n");
        assert!(items[1].is_err(), "a terminated bad last line is damage");

        let (items, torn) = read("1\n\"x\"");
        assert!(items[1].is_err(), "valid JSON of the wrong shape is damage");
        assert_eq!(torn, None);
    }

    #[test]
    fn reading_streams_without_the_whole_input() {
        /// An endless input: a reader that loaded the file first never returns.
        struct Endless;
        impl io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len() / 2 * 2;
                for pair in buf[..n].chunks_mut(2) {
                    pair.copy_from_slice(b"1\n");
                }
                Ok(n)
            }
        }
        let r: Reader<_, N> = Reader::new("endless", BufReader::new(Endless));
        let lines: Vec<usize> = r.take(3).map(|x| x.unwrap().line).collect();
        assert_eq!(lines, vec![1, 2, 3]);
    }

    #[test]
    fn writer_puts_one_record_per_line() {
        let mut w = Writer::new(Vec::new());
        w.write(&N(7)).unwrap();
        w.write(&N(8)).unwrap();
        assert_eq!(w.get_ref(), b"7\n8\n");
    }

    #[test]
    fn open_names_a_missing_file() {
        let e = Reader::<_, N>::open(Path::new("/nonexistent/x.jsonl"))
            .err()
            .expect("missing file");
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "), "{e}");
    }
}
