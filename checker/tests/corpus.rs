//! Every file of the porcupine and knossos corpora gets its expected verdict.
//!
//! The corpora are part of the crate (`tests/corpus/`, with their provenance
//! and licenses in `tests/corpus/README.md`); `MANIFEST.tsv` names each
//! file's format, model, initial value (knossos) and expected verdict.

use std::path::{Path, PathBuf};

use checker::{check_path, CheckOptions, Format, ModelKind, Validity};

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    assert!(
        dir.join("porcupine/MANIFEST.tsv").is_file() && dir.join("knossos/MANIFEST.tsv").is_file(),
        "corpus not found at {} (expected tests/corpus/porcupine and tests/corpus/knossos, each with a MANIFEST.tsv)",
        dir.display()
    );
    dir
}

struct Row {
    file: String,
    format: String,
    model: String,
    init: Option<String>,
    expected: Validity,
}

fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read manifest");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (f, fmt, m, init, exp) = (
        col("file").expect("file column"),
        col("format").expect("format column"),
        col("model").expect("model column"),
        col("init"),
        col("expected_verdict").expect("expected_verdict column"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[f].to_string(),
                format: c[fmt].to_string(),
                model: c[m].to_string(),
                init: init.map(|i| c[i].to_string()),
                expected: match c[exp] {
                    "linearizable" => Validity::Valid,
                    "not-linearizable" => Validity::Invalid,
                    other => panic!("unknown verdict {other}"),
                },
            }
        })
        .collect()
}

fn options(row: &Row) -> CheckOptions {
    let format = match row.format.as_str() {
        "jepsen-etcd-log" => Format::EtcdLog,
        "porcupine-kv-edn" => Format::PorcupineKv,
        "knossos-edn" => Format::Edn,
        other => panic!("unknown format {other}"),
    };
    let model = match row.model.as_str() {
        "kv" if format == Format::PorcupineKv => ModelKind::AppendKv,
        other => other.parse().expect("model"),
    };
    // Knossos' manifest: "0", "0 (test-examples) and nil (…)", "{:x 0 :y 0}", "unlocked".
    let init = row.init.as_ref().map(|i| {
        let first = i.split(" (").next().unwrap_or(i).trim();
        if first == "unlocked" {
            serde_json::Value::Null
        } else {
            checker::cli::parse_init(first).expect("init")
        }
    });
    CheckOptions {
        format: Some(format),
        model: Some(model),
        init,
        time_limit: std::time::Duration::from_secs(30),
        ..CheckOptions::default()
    }
}

fn walk(name: &str) {
    let dir = corpus_dir().join(name);
    let rows = manifest(&dir);
    assert!(!rows.is_empty());
    let mut wrong = Vec::new();
    for row in &rows {
        let opts = options(row);
        let path = dir.join(&row.file);
        match check_path(&path, &opts) {
            Ok(r) if r.valid == row.expected => {
                if r.valid == Validity::Invalid {
                    let c = r
                        .counterexample
                        .as_ref()
                        .expect("invalid verdicts carry a counterexample");
                    assert!(
                        !c.explanation.is_empty() && !c.ops.is_empty(),
                        "{}: empty counterexample",
                        row.file
                    );
                }
            }
            Ok(r) => wrong.push(format!(
                "{}: expected {:?}, got {:?} ({})",
                row.file,
                row.expected,
                r.valid,
                r.checkers
                    .linearizability
                    .as_ref()
                    .map(|l| l.reason.clone())
                    .unwrap_or_default()
            )),
            Err(e) => wrong.push(format!("{}: error {e}", row.file)),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files disagree:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn porcupine_corpus_verdicts_match_manifest() {
    walk("porcupine");
}

#[test]
fn knossos_corpus_verdicts_match_manifest() {
    walk("knossos");
}

#[test]
fn porcupine_kv_files_agree_when_unsplit() {
    // Upstream checks the 1- and 10-client files with the whole map as state
    // (and gives no verdict on the 50-client ones); we check all of them, the
    // 50-client files through the search's per-key backjumping.
    let dir = corpus_dir().join("porcupine");
    for row in manifest(&dir).iter().filter(|r| r.file.starts_with("kv/")) {
        let opts = CheckOptions {
            split_keys: false,
            ..options(row)
        };
        let r = check_path(&dir.join(&row.file), &opts).expect("check");
        assert_eq!(r.valid, row.expected, "{} unsplit", row.file);
    }
}
