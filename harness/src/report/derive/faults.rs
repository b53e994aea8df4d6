//! Fault bands: the nemesis events of a history paired into intervals
//! (a fault and its undo), with labels a person can read at a glance
//! (`kill n2`, `partition [n1 n2] [n3 n4 n5]`), and one-off markers for
//! steps without an undo or that failed. Nemesis events are few (one per
//! fault step), so they are collected during the history pass and paired
//! at its end.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ops::short_json;
use crate::nemesis::fault::Edge;
pub use crate::nemesis::fault::FaultKind;

/// A nemesis interval: from the fault to its undo (or to the end of the run
/// when it was never undone).
#[derive(Debug, Clone)]
pub struct Band {
    /// Which kind of fault (it decides the band's color).
    pub kind: FaultKind,
    pub label: String,
    /// More than the label holds (a partition's cut links), for tooltips.
    pub detail: String,
    pub start_ns: i64,
    /// `None`: still in force when the history ends.
    pub end_ns: Option<i64>,
    pub nodes: Vec<String>,
}

impl Band {
    pub fn end_or(&self, run_end_ns: i64) -> i64 {
        self.end_ns.unwrap_or(run_end_ns).max(self.start_ns)
    }
}

/// A one-off nemesis event without an undo (membership changes, unknown fs).
#[derive(Debug, Clone)]
pub struct Marker {
    pub time_ns: i64,
    pub label: String,
}

/// Node names are `n1`, `n2`…: numbers get the prefix, strings stay.
pub fn node_name(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("n{n}"),
        Value::String(s) if s.parse::<i64>().is_ok() => format!("n{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sorts `n2` before `n10`.
pub fn node_sort_key(n: &str) -> (u64, String) {
    let digits: String = n.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits.parse().unwrap_or(u64::MAX), n.to_string())
}

/// Nodes named by a nemesis value: `2`, `[1, 3]`, `"n2"`, `{"nodes": […]}` or `{"node": 2}`.
pub fn nodes_of(v: &Value) -> Vec<String> {
    let mut out = match v {
        Value::Number(_) | Value::String(_) => vec![node_name(v)],
        Value::Array(a) => a.iter().flat_map(nodes_of).collect(),
        Value::Object(o) => ["nodes", "node", "targets", "id"]
            .iter()
            .filter_map(|k| o.get(*k))
            .flat_map(nodes_of)
            .collect(),
        _ => Vec::new(),
    };
    out.sort_by_key(|n| node_sort_key(n));
    out.dedup();
    out
}

/// `("partition [n1 n2] [n3 n4 n5]", "stall: n1→n3 n1→n4 …")`: the groups
/// for the label (or the shape when there are none), the links that do not
/// pass for the tooltip.
fn partition_label(v: &Value) -> (String, String) {
    let mut label = String::from("partition");
    let groups = v.get("groups").and_then(Value::as_array).or(v.as_array());
    match groups {
        Some(groups) if !groups.is_empty() => {
            for g in groups {
                label.push_str(&format!(" [{}]", nodes_of(g).join(" ")));
            }
        }
        _ => {
            if let Some(shape) = v.get("shape").and_then(Value::as_str) {
                label.push(' ');
                label.push_str(shape);
            }
        }
    }
    let mut detail = Vec::new();
    if let Some(shape) = v.get("shape").and_then(Value::as_str) {
        detail.push(format!("shape {shape}"));
    }
    if let Some(links) = v.get("links").and_then(Value::as_array) {
        let mut modes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in links {
            let Some(a) = l.as_array() else { continue };
            if a.len() < 3 {
                continue;
            }
            let mode = a[2].as_str().unwrap_or("?").to_string();
            if mode == "pass" {
                continue;
            }
            modes.entry(mode).or_default().push(format!(
                "{}→{}",
                node_name(&a[0]),
                node_name(&a[1])
            ));
        }
        for (mode, ls) in modes {
            detail.push(format!("{mode}: {}", ls.join(" ")));
        }
    }
    (label, detail.join("; "))
}

/// Pairs fault events with their undo into bands; one-off events become markers.
pub fn build_bands(events: &[(i64, String, Value)]) -> (Vec<Band>, Vec<Marker>) {
    let mut bands: Vec<Band> = Vec::new();
    let mut markers = Vec::new();
    // Open bands with the nodes still faulty in each.
    let mut open: Vec<(usize, Vec<String>)> = Vec::new();
    for (time, f, value) in events {
        // A removed member is out of the cluster until it is added back.
        let edge = FaultKind::of_event(f);
        let nodes = nodes_of(value);
        // A step that failed says so in its value: the fault did not happen
        // (or an undo did not undo it), so no band opens or closes.
        if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
            let what = if nodes.is_empty() {
                f.clone()
            } else {
                format!("{f} {}", nodes.join(","))
            };
            markers.push(Marker {
                time_ns: *time,
                label: format!("{what} failed: {}", short_json(err, 60)),
            });
            continue;
        }
        match edge {
            Some((kind, Edge::Starts)) => {
                // A partition replaces the one in effect (a package may
                // change the links in the middle of an episode).
                if kind == FaultKind::Partition {
                    open.retain(|&(i, _)| {
                        let b = &mut bands[i];
                        if b.kind != kind {
                            return true;
                        }
                        b.end_ns = Some(*time);
                        false
                    });
                }
                let (label, detail) = match kind {
                    FaultKind::Partition => partition_label(value),
                    _ if nodes.is_empty() => (f.clone(), String::new()),
                    _ => (kind.label(&nodes.join(",")), String::new()),
                };
                // `--nemesis-targets primaries` aimed it at the leader.
                let label = if value.get("primary") == Some(&Value::Bool(true)) {
                    format!("{label} (leader)")
                } else {
                    label
                };
                open.push((bands.len(), nodes.clone()));
                bands.push(Band {
                    kind,
                    label,
                    detail,
                    start_ns: *time,
                    end_ns: None,
                    nodes,
                });
            }
            Some((kind, Edge::Ends)) => {
                // Close the open bands of this kind once every node they
                // faulted is restored (all of them when the undo names no
                // nodes, and always for a heal).
                open.retain_mut(|(i, remaining)| {
                    let b = &mut bands[*i];
                    if b.kind != kind {
                        return true;
                    }
                    if kind == FaultKind::Partition || nodes.is_empty() {
                        remaining.clear();
                    } else {
                        remaining.retain(|n| !nodes.contains(n));
                    }
                    if remaining.is_empty() {
                        b.end_ns = Some(*time);
                        return false;
                    }
                    true
                });
            }
            None => {
                let label = if nodes.is_empty() {
                    f.clone()
                } else {
                    format!("{f} {}", nodes.join(","))
                };
                markers.push(Marker {
                    time_ns: *time,
                    label,
                });
            }
        }
    }
    for b in &mut bands {
        if b.end_ns.is_none() {
            b.label.push_str(" (not undone)");
        }
    }
    (bands, markers)
}

/// Greedy interval coloring: the row of each `(start, end)` extent such
/// that extents in one row do not overlap (used to stack fault labels).
pub fn assign_rows(extents: &[(f64, f64)]) -> Vec<usize> {
    let mut row_end: Vec<f64> = Vec::new();
    let mut order: Vec<usize> = (0..extents.len()).collect();
    order.sort_by(|&a, &b| extents[a].0.total_cmp(&extents[b].0));
    let mut rows = vec![0; extents.len()];
    for i in order {
        let (start, end) = extents[i];
        let row = match row_end.iter().position(|&e| e <= start) {
            Some(r) => r,
            None => {
                row_end.push(f64::NEG_INFINITY);
                row_end.len() - 1
            }
        };
        row_end[row] = end;
        rows[i] = row;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nem(time: i64, f: &str, value: Value) -> (i64, String, Value) {
        (time, f.to_string(), value)
    }

    #[test]
    fn kill_and_start_make_one_band_per_fault_with_node_labels() {
        let (bands, markers) = build_bands(&[
            nem(100, "kill", json!([2])),
            nem(150, "pause", json!({"nodes": [1, 3]})),
            nem(200, "start", json!([2])),
            nem(220, "resume", json!([1])),
            nem(260, "resume", json!([3])),
            nem(300, "rebalance", json!(4)),
            nem(400, "kill", json!(5)),
        ]);
        assert_eq!(bands.len(), 3);
        assert_eq!(bands[0].label, "kill n2");
        assert_eq!((bands[0].start_ns, bands[0].end_ns), (100, Some(200)));
        assert_eq!(bands[1].label, "pause n1,n3");
        assert_eq!(
            bands[1].end_ns,
            Some(260),
            "band lasts until every paused node resumed"
        );
        assert_eq!(bands[2].end_ns, None);
        assert!(bands[2].label.ends_with("(not undone)"));
        assert_eq!(markers.len(), 1);
        assert_eq!(markers[0].label, "rebalance n4");
    }

    #[test]
    fn overlapping_extents_get_different_rows() {
        let rows = assign_rows(&[
            (0.0, 10.0),
            (5.0, 20.0),
            (12.0, 30.0),
            (25.0, 26.0),
            (31.0, 40.0),
        ]);
        assert_eq!(rows, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn partition_band_names_groups_and_link_modes() {
        let (bands, _) = build_bands(&[
            nem(
                10,
                "start-partition",
                json!({"groups": [[1, 2], [3, 4, 5]], "links": [[1, 3, "stall"], [1, 2, "pass"]]}),
            ),
            nem(90, "stop-partition", Value::Null),
        ]);
        assert_eq!(bands.len(), 1);
        assert_eq!(bands[0].label, "partition [n1 n2] [n3 n4 n5]");
        assert_eq!(bands[0].detail, "stall: n1→n3");
        assert_eq!(bands[0].end_ns, Some(90));
        assert_eq!(bands[0].kind, FaultKind::Partition);
    }

    /// Each band's label, start and end.
    fn spans(bands: &[Band]) -> Vec<(&str, i64, Option<i64>)> {
        bands
            .iter()
            .map(|b| (b.label.as_str(), b.start_ns, b.end_ns))
            .collect()
    }

    #[test]
    fn a_partition_ends_where_the_next_one_replaces_it() {
        let (bands, _) = build_bands(&[
            nem(10, "start-partition", json!({"groups": [[1], [2, 3]]})),
            nem(30, "kill", json!({"node": 2})),
            nem(40, "start-partition", json!({"groups": [[3], [1, 2]]})),
            nem(90, "stop-partition", Value::Null),
        ]);
        assert_eq!(
            spans(&bands),
            vec![
                ("partition [n1] [n2 n3]", 10, Some(40)),
                ("kill n2 (not undone)", 30, None),
                ("partition [n3] [n1 n2]", 40, Some(90)),
            ]
        );
    }

    #[test]
    fn harness_nemesis_values_make_bands_and_failed_steps_make_markers() {
        // The shapes `harness run` writes (see harness::nemesis).
        let (bands, markers) = build_bands(&[
            nem(10, "kill", json!({"node": 3, "primary": true})),
            nem(20, "start", json!({"node": 3})),
            nem(
                30,
                "remove-member",
                json!({"node": 2, "members": [1, 3, 4, 5]}),
            ),
            nem(40, "pause", json!({"node": 1, "error": "no such process"})),
            nem(
                50,
                "resume",
                json!({"node": 1, "error": "nothing to resume"}),
            ),
            nem(
                60,
                "add-member",
                json!({"node": 2, "members": [1, 2, 3, 4, 5]}),
            ),
            nem(
                70,
                "start-partition",
                json!({"shape": "bridge", "groups": [], "links": [[1, 2, "stall"]]}),
            ),
        ]);
        assert_eq!(
            spans(&bands),
            vec![
                ("kill n3 (leader)", 10, Some(20)),
                ("removed n2", 30, Some(60)),
                ("partition bridge (not undone)", 70, None),
            ]
        );
        assert_eq!(bands[2].detail, "shape bridge; stall: n1→n2");
        let labels: Vec<&str> = markers.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "pause n1 failed: \"no such process\"",
                "resume n1 failed: \"nothing to resume\""
            ]
        );
    }
}
