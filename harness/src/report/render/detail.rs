//! The detail view's op files. A long run has millions of ops; the page
//! cannot hold them, and a browser will not `fetch` a file next to a page
//! opened from disk, but it does run a `<script src>` from there. So the
//! ops go, as they stream out of the history pass, into script files of
//! [`DEFAULT_CHUNK_OPS`] ops each (`report/ops-0000.js`, …) that call the
//! page's `__reportOps(n, ops)`; the page knows of each file the range of
//! its ops' invokes and ends ([`ChunkMeta`]) and loads just the files a
//! window needs.
//!
//! Ops are written in the order they end (completion, or invoke for ops
//! that never completed), so a file covers a stretch of time; an op is
//! `[index, process, f, key, invoke µs, completion µs or -1, outcome,
//! value]`, with `f` a position in the page's op-type table.

use std::collections::HashMap;
use std::fmt::Write;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use formats::history::Process;

use crate::report::derive::ops::{short_json, Op};
use crate::report::derive::ChunkMeta;

/// Ops per file: about 300 kB, loaded in a blink, and 300 files for a
/// million ops.
pub const DEFAULT_CHUNK_OPS: usize = 5000;

/// The folder next to `report.html` that holds the files.
pub const CHUNK_DIR: &str = "report";

/// The file name of chunk `n`.
pub fn chunk_file_name(n: usize) -> String {
    format!("ops-{n:04}.js")
}

/// Appends `op` in the page's compact form; `f` is its op type's position.
pub fn encode_op(out: &mut String, op: &Op, f: usize) {
    let process = match &op.process {
        Process::Client(p) => p.to_string(),
        Process::Nemesis => "\"nemesis\"".into(),
        Process::Named(s) => json_str(s),
    };
    let key = op.key.as_deref().map_or_else(|| "null".into(), json_str);
    let _ = write!(
        out,
        "[{},{process},{f},{key},{},{},{},{}]",
        op.index,
        op.invoke_ns / 1000,
        op.complete_ns.map_or(-1, |c| c / 1000),
        op.outcome.code(),
        json_str(&short_json(op.shown_value(), 24)),
    );
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Numbers op types in the order they appear.
#[derive(Debug, Default)]
pub struct FTable {
    pub names: Vec<String>,
    index: HashMap<String, usize>,
}

impl FTable {
    pub fn index(&mut self, f: &str) -> usize {
        if let Some(&i) = self.index.get(f) {
            return i;
        }
        self.names.push(f.to_string());
        self.index.insert(f.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// Writes the op files while the history streams by.
pub struct ChunkWriter {
    dir: PathBuf,
    per_chunk: usize,
    buf: String,
    current: Option<ChunkMeta>,
    chunks: Vec<ChunkMeta>,
    pub fs: FTable,
    error: Option<io::Error>,
}

impl ChunkWriter {
    /// Writes into `dir`, created empty.
    pub fn create(dir: &Path, per_chunk: usize) -> io::Result<ChunkWriter> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            per_chunk: per_chunk.max(1),
            buf: String::new(),
            current: None,
            chunks: Vec::new(),
            fs: FTable::default(),
            error: None,
        })
    }

    pub fn add(&mut self, op: &Op) {
        let f = self.fs.index(&op.f);
        let end = op.solid_end_ns();
        let meta = self.current.get_or_insert(ChunkMeta {
            end_min: end,
            end_max: end,
            invoke_min: op.invoke_ns,
            ops: 0,
        });
        meta.end_min = meta.end_min.min(end);
        meta.end_max = meta.end_max.max(end);
        meta.invoke_min = meta.invoke_min.min(op.invoke_ns);
        meta.ops += 1;
        if meta.ops > 1 {
            self.buf.push(',');
        }
        encode_op(&mut self.buf, op, f);
        if meta.ops as usize >= self.per_chunk {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(meta) = self.current.take() else {
            return;
        };
        let n = self.chunks.len();
        let text = format!("__reportOps({n},[{}]);\n", self.buf);
        self.buf.clear();
        if self.error.is_none() {
            if let Err(e) = fs::write(self.dir.join(chunk_file_name(n)), text) {
                self.error = Some(e);
            }
        }
        self.chunks.push(meta);
    }

    /// Writes the last file; returns what the page needs to know of them.
    pub fn finish(mut self) -> io::Result<(Vec<ChunkMeta>, FTable)> {
        self.flush();
        match self.error {
            Some(e) => Err(e),
            None => Ok((self.chunks, self.fs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::derive::ops::OpOutcome;
    use serde_json::{json, Value};

    fn op(index: u64, invoke_ns: i64, complete_ns: Option<i64>, f: &str) -> Op {
        Op {
            index,
            process: Process::Client(3),
            f: f.into(),
            key: Some("k\"1".into()),
            invoke_ns,
            complete_ns,
            outcome: if complete_ns.is_some() {
                OpOutcome::Ok
            } else {
                OpOutcome::Pending
            },
            invoke_value: json!("v"),
            complete_value: json!("r"),
            error: None,
            node: None,
        }
    }

    /// The ops of a chunk file, parsed back.
    fn chunk_ops(path: &Path) -> Vec<Value> {
        let text = fs::read_to_string(path).unwrap();
        let json = text
            .trim_end()
            .strip_prefix("__reportOps(")
            .and_then(|t| t.strip_suffix(");"))
            .unwrap();
        let (_, ops) = json.split_once(',').unwrap();
        serde_json::from_str::<Value>(ops)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn ops_go_into_files_of_a_fixed_size_with_their_time_ranges() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("report");
        let mut w = ChunkWriter::create(&dir, 2).unwrap();
        w.add(&op(4, 5_000, Some(9_000), "read"));
        w.add(&op(0, 1_000, Some(12_000), "write"));
        w.add(&op(7, 20_000, None, "read"));
        let (chunks, fs_table) = w.finish().unwrap();
        assert_eq!(
            chunks,
            vec![
                ChunkMeta {
                    end_min: 9_000,
                    end_max: 12_000,
                    invoke_min: 1_000,
                    ops: 2
                },
                ChunkMeta {
                    end_min: 20_000,
                    end_max: 20_000,
                    invoke_min: 20_000,
                    ops: 1
                },
            ]
        );
        assert_eq!(fs_table.names, vec!["read", "write"]);
        let first = chunk_ops(&dir.join("ops-0000.js"));
        assert_eq!(first[0], json!([4, 3, 0, "k\"1", 5, 9, 0, "\"r\""]));
        assert_eq!(first[1], json!([0, 3, 1, "k\"1", 1, 12, 0, "\"v\""]));
        let second = chunk_ops(&dir.join("ops-0001.js"));
        assert_eq!(second, vec![json!([7, 3, 0, "k\"1", 20, -1, 3, "\"r\""])]);
        assert!(!dir.join("ops-0002.js").exists());
    }

    #[test]
    fn a_new_writer_empties_the_folder_of_an_earlier_report() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("report");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ops-0099.js"), "stale").unwrap();
        let w = ChunkWriter::create(&dir, 10).unwrap();
        let (chunks, _) = w.finish().unwrap();
        assert!(chunks.is_empty());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }
}
