//! Reading who led when: the role changes in every `nodes/*/trace.jsonl`
//! (our node writes one), or, for systems without traces, the polled
//! status lines of `observations.jsonl`. Both stream: a trace of a long run
//! has millions of commit and apply lines, of which only the few role
//! changes are passed on.

use std::fs;
use std::path::{Path, PathBuf};

use formats::observations::ObservationKind;
use formats::trace::{Role, TraceKind};
use formats::ReadError;

use super::io_error;
use crate::report::ReportError;

/// A node's role in a term at a moment (Unix ns), as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    pub node: String,
    pub time_unix_ns: i64,
    pub term: u64,
    pub role: Role,
}

/// The trace files of a run folder, with the name of their folder.
pub fn trace_files(run_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(run_dir.join("nodes")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(formats::trace::FILE_NAME))
        .filter(|p| p.is_file())
        .map(|p| {
            let dir = p
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            (dir, p)
        })
        .collect();
    out.sort();
    out
}

fn unix(t: u64) -> i64 {
    t.min(i64::MAX as u64) as i64
}

/// Streams the role changes of one trace; returns the node's name (`nN`
/// from its events, else the folder's name) and the lines skipped.
pub fn stream_trace(
    dir_name: &str,
    path: &Path,
    mut each: impl FnMut(RoleReport),
) -> Result<(String, u64), ReportError> {
    let mut reader = formats::trace::Reader::open(path).map_err(|e| io_error(path, e))?;
    let mut node = dir_name.to_string();
    let mut bad = 0u64;
    for item in reader.by_ref() {
        let e = match item {
            Ok(e) => e.event,
            Err(ReadError::Malformed { .. }) => {
                bad += 1;
                continue;
            }
            Err(e) => return Err(io_error(path, e)),
        };
        node = format!("n{}", e.node);
        if let TraceKind::Role { term, role, .. } = e.kind {
            each(RoleReport {
                node: node.clone(),
                time_unix_ns: unix(e.time),
                term,
                role,
            });
        }
    }
    bad += u64::from(reader.torn_line().is_some());
    Ok((node, bad))
}

/// Streams the status observations of `observations.jsonl`; returns the
/// lines skipped.
pub fn stream_observations(
    path: &Path,
    mut each: impl FnMut(RoleReport),
) -> Result<u64, ReportError> {
    let mut reader = formats::observations::Reader::open(path).map_err(|e| io_error(path, e))?;
    let mut bad = 0u64;
    for item in reader.by_ref() {
        let o = match item {
            Ok(o) => o.event,
            Err(ReadError::Malformed { .. }) => {
                bad += 1;
                continue;
            }
            Err(e) => return Err(io_error(path, e)),
        };
        // Wire observations are facts about messages, not a role lane.
        let ObservationKind::Status { term, role, .. } = o.kind else {
            continue;
        };
        each(RoleReport {
            node: format!("n{}", o.node),
            time_unix_ns: unix(o.time),
            term,
            role,
        });
    }
    bad += u64::from(reader.torn_line().is_some());
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_role_changes_are_passed_on_and_bad_lines_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nodes/n2");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("trace.jsonl"),
            "{\"time\":5,\"node\":2,\"event\":\"commit\",\"index\":1,\"term\":1}\n\
             {\"time\":6,\"node\":2,\"event\":\"role\",\"term\":2,\"role\":\"leader\",\"leader\":2}\n\
             {\"time\":7,\"node\":2,\"event\":\"vote\"}\n\
             {\"time\":8,\"node\":2,\"ev",
        )
        .unwrap();
        let files = trace_files(tmp.path());
        assert_eq!(files.len(), 1);
        let mut got = Vec::new();
        let (node, bad) = stream_trace(&files[0].0, &files[0].1, |r| got.push(r)).unwrap();
        assert_eq!((node.as_str(), bad), ("n2", 2));
        assert_eq!(
            got,
            vec![RoleReport {
                node: "n2".into(),
                time_unix_ns: 6,
                term: 2,
                role: Role::Leader
            }]
        );
    }

    #[test]
    fn observations_are_status_polls() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("observations.jsonl");
        fs::write(
            &p,
            "{\"time\":9,\"node\":3,\"event\":\"status\",\"term\":4,\"role\":\"follower\",\"leader\":1}\n\
             {\"time\":10,\"node\":1,\"term\":4,\"role\":\"leader\"}\n",
        )
        .unwrap();
        let mut got = Vec::new();
        assert_eq!(stream_observations(&p, |r| got.push(r)).unwrap(), 0);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].node.as_str(), got[1].role), ("n1", Role::Leader));
    }
}
