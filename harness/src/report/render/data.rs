//! The data the page's script draws the detail view from (times in µs):
//! lanes and how processes map to them, op types and their colors, fault
//! bands, the counterexample and its window's ops (embedded, so the page
//! opens on it with nothing to load), and the list of op files with the
//! time range of each.

use serde_json::{json, Value};

use super::detail::{encode_op, CHUNK_DIR};
use super::Ctx;
use crate::report::derive::lanes::LaneMap;
use crate::report::derive::ops::process_label;

pub(super) fn embedded(c: &Ctx) -> String {
    let m = c.m;
    let h = &m.history;
    let run_end = m.run_end_ns();
    let lane_map = match &h.lanes.map {
        LaneMap::PerProcess(ps) => {
            json!({"procs": ps.iter().map(process_label).collect::<Vec<_>>()})
        }
        LaneMap::Workers(n) => json!({"fold": n}),
    };
    let bands: Vec<Value> = h
        .bands
        .iter()
        .map(|b| {
            json!([
                b.start_ns / 1000,
                b.end_or(run_end) / 1000,
                b.kind.name(),
                b.label
            ])
        })
        .collect();
    let view = m.counterexample.as_ref();
    let data = json!({
        "t1": run_end / 1000,
        "lanes": h.lanes.labels,
        "laneMap": lane_map,
        "fs": m.chunk_fs,
        "fc": m.chunk_fs.iter().map(|f| c.f_color.get(f).copied().unwrap_or("#777")).collect::<Vec<_>>(),
        "bands": bands,
        "cex": view.map(|v| v.named.clone()).unwrap_or_default(),
        "cexop": c.cex_op,
        "cexw": view.and_then(|v| v.window).map(|(a, b)| [a / 1000, b / 1000]),
        "cexComplete": view.is_some_and(|v| v.complete),
        "total": h.ops,
        "dir": CHUNK_DIR,
        "chunks": m.chunks.iter().map(|k| [k.end_min / 1000, k.end_max / 1000, k.invoke_min / 1000, i64::from(k.ops)]).collect::<Vec<_>>(),
    });
    // The window's ops, in the op files' own form.
    let mut ops = String::from("{\"ops\":[");
    let window_ops = view.map(|v| v.window_ops.as_slice()).unwrap_or_default();
    let mut first = true;
    for op in window_ops {
        let Some(f) = m.chunk_fs.iter().position(|x| *x == op.f) else {
            continue;
        };
        if !first {
            ops.push(',');
        }
        first = false;
        encode_op(&mut ops, op, f);
    }
    ops.push_str("],");
    let rest = data.to_string();
    ops.push_str(&rest[1..]);
    ops
}
