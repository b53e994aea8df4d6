//! The suite file (`SUITE.toml`) and what it expands to: cells, each a set
//! of `harness run` flags, run once per seed.
//!
//! ```toml
//! name = "smoke"
//! time-limit = 5            # seconds of traffic per run
//! budget = 600              # optional: no run starts that would end past it
//! seeds = 2                 # 2 random seeds per cell; or a list: [7, 11]
//!
//! [matrix]                  # every combination of these
//! systems = ["raft-node"]
//! workloads = ["register", "kv"]
//! nemesis = ["partition", "kill,pause"]
//! read-consistency = ["linearizable"]
//! nodes = [3, 5]
//!
//! [options]                 # `harness run` flags of every run
//! nemesis-interval = 1.0
//!
//! [[run]]                   # one more cell outside the matrix
//! workload = "register"
//! nemesis = "partition"
//! read-consistency = "stale"
//! ```
//!
//! Every key of `[options]` and `[[run]]` is a `harness run` flag (`true`
//! for a flag without value, a list for a repeatable one), so a cell is
//! checked by the very parser of `harness run`, and its command line is
//! what a person types to run it alone.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Value;

/// The dimensions of a matrix, in the order cells are listed, with the
/// `harness run` flag each one sets.
pub const AXES: [(&str, &str); 5] = [
    ("systems", "system"),
    ("workloads", "workload"),
    ("nemesis", "nemesis"),
    ("read-consistency", "read-consistency"),
    ("nodes", "nodes"),
];

/// Flags the suite sets itself.
const RESERVED: [&str; 4] = ["seed", "test-count", "results-dir", "no-check"];

/// A suite file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuiteFile {
    pub name: Option<String>,
    /// Seconds of traffic per run.
    pub time_limit: Option<f64>,
    /// Total seconds the suite may take.
    pub budget: Option<f64>,
    pub seeds: Option<Seeds>,
    /// Runs at once (only runs that cannot interfere).
    pub parallel: Option<usize>,
    #[serde(default)]
    pub matrix: BTreeMap<String, Value>,
    #[serde(default)]
    pub options: BTreeMap<String, Value>,
    #[serde(default)]
    pub run: Vec<BTreeMap<String, Value>>,
}

/// `seeds = 3` (random seeds) or `seeds = [7, 11]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// Why a suite file cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: {message}")]
    Toml { file: String, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// Command-line changes to the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub systems: Option<Vec<String>>,
    pub workloads: Option<Vec<String>>,
    pub nemesis: Option<Vec<String>>,
    pub seeds: Option<u64>,
    pub time_limit: Option<f64>,
    pub budget: Option<f64>,
    pub parallel: Option<usize>,
}

/// One cell: a name and its `harness run` flags (without the seed, the
/// results folder and the time limit, which the suite adds).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// 1-based, in file order.
    pub id: usize,
    /// `register partition stale n3` (the axes' values it sets).
    pub label: String,
    pub flags: Vec<String>,
    /// Seconds of traffic.
    pub time_limit: f64,
}

/// A suite ready to run.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    /// The file it came from, or `built-in nightly`.
    pub source: String,
    pub cells: Vec<Cell>,
    pub seeds: Seeds,
    pub budget: Option<f64>,
    pub parallel: usize,
}

/// One group of cells: the matrix, or one `[[run]]`.
struct Group {
    axes: Vec<(&'static str, Vec<String>)>,
    options: Vec<(String, Value)>,
}

impl Suite {
    /// Reads a suite from its TOML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str, ov: &Overrides) -> Result<Suite, SpecError> {
        let file: SuiteFile = toml::from_str(text).map_err(|e| SpecError::Toml {
            file: source.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Suite::from_file(file, source, ov)
    }

    fn from_file(f: SuiteFile, source: &str, ov: &Overrides) -> Result<Suite, SpecError> {
        let bad = |message: String| SpecError::Invalid {
            file: source.to_string(),
            message,
        };
        let default_name = std::path::Path::new(source)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "suite".into());
        let name = f.name.clone().unwrap_or(default_name);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || name.starts_with('.')
        {
            return Err(bad(format!(
                "name {name:?} must be letters, digits, '-', '_' or '.' (it names a folder)"
            )));
        }
        let time_limit = ov.time_limit.or(f.time_limit).unwrap_or(20.0);
        positive("time-limit", time_limit).map_err(&bad)?;
        let budget = ov.budget.or(f.budget);
        if let Some(b) = budget {
            positive("budget", b).map_err(&bad)?;
        }
        let seeds = match (ov.seeds, f.seeds.clone()) {
            (Some(n), _) => Seeds::Count(n),
            (None, Some(s)) => s,
            (None, None) => Seeds::Count(1),
        };
        if matches!(seeds, Seeds::Count(0)) || matches!(&seeds, Seeds::List(l) if l.is_empty()) {
            return Err(bad("seeds: at least one seed per cell".into()));
        }
        let parallel = ov.parallel.or(f.parallel).unwrap_or(1);
        if parallel == 0 {
            return Err(bad("parallel must be at least 1".into()));
        }

        let shared = options(&f.options, "[options]").map_err(&bad)?;
        let mut groups = Vec::new();
        let has_matrix = !f.matrix.is_empty() || f.run.is_empty();
        if has_matrix {
            let mut axes = Vec::new();
            for (k, v) in &f.matrix {
                let Some(&(axis, _)) = AXES.iter().find(|(a, _)| a == k) else {
                    return Err(bad(format!(
                        "[matrix] has no axis {k:?} (axes: {})",
                        AXES.map(|a| a.0).join(", ")
                    )));
                };
                axes.push((
                    axis,
                    strings(v).map_err(|e| bad(format!("[matrix] {k}: {e}")))?,
                ));
            }
            groups.push(Group {
                axes,
                options: shared.clone(),
            });
        }
        for (i, entry) in f.run.iter().enumerate() {
            let mut axes = Vec::new();
            let mut rest = BTreeMap::new();
            for (k, v) in entry {
                match AXES.iter().find(|(_, flag)| flag == k) {
                    Some(&(axis, _)) => axes.push((
                        axis,
                        vec![scalar(v).map_err(|e| bad(format!("[[run]] #{}: {k}: {e}", i + 1)))?],
                    )),
                    None => {
                        rest.insert(k.clone(), v.clone());
                    }
                }
            }
            let mut opts = shared.clone();
            for (k, v) in options(&rest, &format!("[[run]] #{}", i + 1)).map_err(&bad)? {
                opts.retain(|(o, _)| *o != k);
                opts.push((k, v));
            }
            groups.push(Group {
                axes,
                options: opts,
            });
        }
        let overrides = [
            ("systems", &ov.systems),
            ("workloads", &ov.workloads),
            ("nemesis", &ov.nemesis),
        ];
        let mut cells = Vec::new();
        for mut g in groups {
            for (axis, values) in overrides {
                if let Some(values) = values {
                    g.axes.retain(|(a, _)| *a != axis);
                    g.axes.push((axis, values.clone()));
                }
            }
            for Expanded {
                label,
                mut flags,
                time_limit: own_limit,
            } in expand(&g).map_err(&bad)?
            {
                let limit = ov.time_limit.or(own_limit).unwrap_or(time_limit);
                positive("time-limit", limit).map_err(&bad)?;
                flags.extend(["--time-limit".to_string(), limit.to_string()]);
                cells.push(Cell {
                    id: cells.len() + 1,
                    label,
                    flags,
                    time_limit: limit,
                });
            }
        }
        if cells.is_empty() {
            return Err(bad("the suite has no runs (an axis with no values?)".into()));
        }
        Ok(Suite {
            name,
            source: source.to_string(),
            cells,
            seeds,
            budget,
            parallel,
        })
    }
}

fn positive(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{what} must be a positive number of seconds, not {v}"
        ))
    }
}

/// One combination of a group's axes.
struct Expanded {
    label: String,
    flags: Vec<String>,
    /// The time limit the group's options set.
    time_limit: Option<f64>,
}

/// Every combination of the group's axes (in [`AXES`] order).
fn expand(g: &Group) -> Result<Vec<Expanded>, String> {
    let mut axes: Vec<(&str, &[String])> = Vec::new();
    for (axis, flag) in AXES {
        if let Some((_, values)) = g.axes.iter().find(|(a, _)| *a == axis) {
            axes.push((flag, values));
        }
    }
    let mut own_limit = None;
    let mut option_flags = Vec::new();
    for (k, v) in &g.options {
        if k == "time-limit" {
            own_limit = Some(
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .ok_or("time-limit must be a number of seconds")?,
            );
            continue;
        }
        option_flags.extend(flag_args(k, v)?);
    }
    let mut combos: Vec<Vec<(&str, &String)>> = vec![Vec::new()];
    for (flag, values) in &axes {
        let mut next = Vec::new();
        for c in &combos {
            for v in values.iter() {
                let mut c = c.clone();
                c.push((flag, v));
                next.push(c);
            }
        }
        combos = next;
    }
    Ok(combos
        .into_iter()
        .map(|c| {
            let mut flags = Vec::new();
            let mut label = Vec::new();
            for (flag, v) in &c {
                flags.extend([format!("--{flag}"), v.to_string()]);
                label.push(if *flag == "nodes" {
                    format!("n{v}")
                } else {
                    v.to_string()
                });
            }
            flags.extend(option_flags.iter().cloned());
            let label = if label.is_empty() {
                "defaults".to_string()
            } else {
                label.join(" ")
            };
            Expanded {
                label,
                flags,
                time_limit: own_limit,
            }
        })
        .collect())
}

/// `[options]`-style tables as (flag, value), refusing what the suite sets.
fn options(t: &BTreeMap<String, Value>, table: &str) -> Result<Vec<(String, Value)>, String> {
    let mut v = Vec::new();
    for (k, val) in t {
        if RESERVED.contains(&k.as_str()) {
            return Err(format!(
                "{table}: {k} is set by the suite itself (seeds: `seeds`; results: --results-dir of `harness suite`)"
            ));
        }
        if AXES
            .iter()
            .any(|(axis, flag)| k == axis || (k == flag && table == "[options]"))
        {
            return Err(format!(
                "{table}: {k} is a matrix axis: put it under [matrix]"
            ));
        }
        flag_args(k, val).map_err(|e| format!("{table}: {e}"))?;
        v.push((k.clone(), val.clone()));
    }
    Ok(v)
}

/// A TOML value as `harness run` arguments.
fn flag_args(k: &str, v: &Value) -> Result<Vec<String>, String> {
    let flag = format!("--{k}");
    Ok(match v {
        Value::Boolean(true) => vec![flag],
        Value::Boolean(false) => vec![],
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend([flag.clone(), scalar(i).map_err(|e| format!("{k}: {e}"))?]);
            }
            out
        }
        other => vec![flag, scalar(other).map_err(|e| format!("{k}: {e}"))?],
    })
}

fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string or a number, found a {}",
            other.type_str()
        )),
    }
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(text: &str) -> Result<Suite, String> {
        Suite::parse(text, "t.toml", &Overrides::default()).map_err(|e| e.to_string())
    }

    /// Every `toml` example a user may copy from the README and
    /// docs/suite.md must parse.
    #[test]
    fn the_documented_examples_parse() {
        for (doc, text) in [
            ("README.md", include_str!("../../../README.md")),
            ("docs/suite.md", include_str!("../../../docs/suite.md")),
        ] {
            let blocks: Vec<&str> = text
                .split("```toml\n")
                .skip(1)
                .map(|b| b.split("```").next().unwrap())
                .collect();
            assert!(!blocks.is_empty(), "{doc} has no toml example");
            for b in blocks {
                let s = suite(b).unwrap_or_else(|e| panic!("{doc}: {e}\n{b}"));
                assert!(!s.cells.is_empty(), "{doc}: {b}");
            }
        }
    }

    #[test]
    fn a_matrix_expands_to_every_combination_then_the_extra_runs() {
        let s = suite(
            r#"
            name = "smoke"
            time-limit = 3
            seeds = [7, 8]
            [matrix]
            workloads = ["register", "kv"]
            nemesis = ["partition", "kill,pause"]
            nodes = [3]
            [options]
            nemesis-interval = 0.5
            no-pre-vote = true
            [[run]]
            workload = "register"
            read-consistency = "stale"
            time-limit = 1.5
            system-opt = ["a=1", "b=2"]
            "#,
        )
        .unwrap();
        assert_eq!(s.name, "smoke");
        assert_eq!(s.seeds, Seeds::List(vec![7, 8]));
        let labels: Vec<&str> = s.cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "register partition n3",
                "register kill,pause n3",
                "kv partition n3",
                "kv kill,pause n3",
                "register stale",
            ]
        );
        assert_eq!(
            s.cells[1].flags,
            [
                "--workload",
                "register",
                "--nemesis",
                "kill,pause",
                "--nodes",
                "3",
                "--nemesis-interval",
                "0.5",
                "--no-pre-vote",
                "--time-limit",
                "3"
            ]
        );
        let last = &s.cells[4];
        assert_eq!(last.time_limit, 1.5);
        assert!(last
            .flags
            .windows(4)
            .any(|w| w == ["--system-opt", "a=1", "--system-opt", "b=2"]));
    }

    #[test]
    fn the_command_line_replaces_axes_seeds_and_time() {
        let ov = Overrides {
            systems: Some(vec!["etcd".into()]),
            nemesis: Some(vec!["kill".into(), "pause".into()]),
            seeds: Some(3),
            time_limit: Some(2.0),
            ..Overrides::default()
        };
        let s = Suite::parse(
            "[matrix]\nworkloads = [\"kv\"]\nnemesis = [\"all\"]\n[[run]]\nworkload = \"register\"\ntime-limit = 9",
            "x.toml",
            &ov,
        )
        .unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.seeds, Seeds::Count(3));
        let labels: Vec<&str> = s.cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "etcd kv kill",
                "etcd kv pause",
                "etcd register kill",
                "etcd register pause"
            ]
        );
        assert!(s.cells.iter().all(|c| c.time_limit == 2.0));
    }

    #[test]
    fn mistakes_are_named() {
        let e = suite("[matrix]\nworkload = [\"kv\"]").unwrap_err();
        assert!(e.contains("no axis \"workload\""), "{e}");
        let e = suite("time-limit = -1").unwrap_err();
        assert!(e.contains("time-limit must be a positive"), "{e}");
        let e = suite("[options]\nseed = 3").unwrap_err();
        assert!(e.contains("seed is set by the suite"), "{e}");
        let e = suite("[options]\nworkload = \"kv\"").unwrap_err();
        assert!(e.contains("matrix axis"), "{e}");
        let e = suite("bogus = 1").unwrap_err();
        assert!(e.starts_with("t.toml: ") && e.contains("bogus"), "{e}");
        let e = suite("seeds = []").unwrap_err();
        assert!(e.contains("at least one seed"), "{e}");
        let e = suite("name = \"../x\"").unwrap_err();
        assert!(e.contains("names a folder"), "{e}");
    }
}
