//! Raft safety from node traces (`nodes/*/trace.jsonl`, docs/formats.md
//! "Trace"), in one streaming pass.
//!
//! Checked, each violation reported with the events that show it:
//! - **Election safety**: at most one leader per term. Two leaders in
//!   different terms at the same moment are legal and not reported. From
//!   wire observations also: at most one vote per node and term (a node
//!   that voted for two candidates of a term let both win).
//! - **State-machine safety**: every node applies the same entry (term and
//!   digest) at each index. The first apply of each index (in time order)
//!   is the canonical entry and every apply is compared against it, the
//!   approach of tigerbeetle's `state_checker.zig`. A commit event whose term
//!   disagrees with the canonical entry is a divergence too.
//! - **Commit monotonicity**: a node's commit index never goes backwards
//!   within one process lifetime. A lifetime ends at a `start` event, a
//!   `snapshot` event, or an apply that replays an index the node already
//!   applied (what a restarted node does), since a restarted node
//!   legitimately relearns its commit index from zero.
//!
//! Systems without traces can supply **external observations**
//! (`observations.jsonl` in a run folder, docs/formats.md "Observations"),
//! e.g. from polling `GET /status` or from a message router; status and
//! leader-message observations join the election-safety check, and vote
//! observations make the double-vote check.
//!
//! The files are read by `formats`, which skips a last line torn by
//! `kill -9`; any other malformed line is an error.
//!
//! # Streaming
//!
//! A long run leaves tens of millions of trace events, so nothing is loaded
//! whole. Each input (a trace file, the observations) is read on its own
//! thread and the inputs are merged by time, ties going to the earlier file
//! and line (`raft/merge.rs`). One pass over the merged events keeps only:
//!
//! - per term, the first leader claim (about 56 bytes a term);
//! - per node, its commit index in the current lifetime, its highest
//!   applied index and its event count;
//! - the first apply of each of the last [`RaftOptions::window`] indexes,
//!   40 bytes each (a window, `raft/log.rs`, that ends at the highest index applied
//!   and slides forward with it);
//! - commits whose index nobody has applied yet, at most
//!   [`RaftOptions::pending`] (about 40 bytes each);
//! - the violations to report, at most 100 per property.
//!
//! Peak memory is therefore bounded by the window and the caps (about 40 MiB
//! for the default window of 2^20 indexes, 2.5 MiB of pending commits at
//! most, a few MiB of read buffers), plus about 56 bytes per term, whatever
//! the run's length: `cargo bench -p checker --bench raft` measured a peak
//! of 46 MiB over 5 M events and 59 MiB over 50 M.
//!
//! **Why a window, not "settled on every node".** An index that every node
//! has applied is not done with: a node that restarts replays its log from
//! its last snapshot, which no trace line announces before the `start`, and
//! a node that is down, partitioned or removed applies old indexes when it
//! comes back. Today's nodes snapshot every 1000 entries, so a replay
//! reaches back about as far as the node was behind when it stopped; the
//! default window (2^20 indexes, several minutes of a busy run) covers that.
//! But no trace line proves that no node will ever apply an index again, so
//! an index leaves the window only because the window is full, and an event
//! that arrives for a forgotten index is not dropped: its index is marked
//! unchecked. If any were, audit passes re-read the inputs ([`Inputs`] can
//! be opened more than once): for each batch of unchecked indexes (at most
//! [`RaftOptions::audit_batch`]), one pass finds their first applies, and a second replays
//! the main pass and judges exactly the events it could not. So the answer
//! is always the one an unbounded check would give; a window too small for
//! a run costs two extra reads per batch, never a missed or false violation.
//!
//! **Clock steps.** Traces are in the wall-clock time of each node; if a
//! node's clock steps back, its trace is no longer sorted. The merge still
//! takes each input in file order (so commit monotonicity, a per-node
//! property, is judged exactly as written), and only the order *across*
//! nodes changes. That cannot create or hide a violation: two leaders of a
//! term are reported whichever claimed first; an index has a divergent apply
//! whenever its applies are not all the same entry, whichever came first;
//! and when they are all the same, the canonical entry and every commit
//! comparison are the same too. Only which event a message calls the first
//! may differ from a fully sorted order. A warning names the input.

mod log;
mod merge;
mod pass;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use formats::observations::Observation;
use formats::trace::TraceEvent;
use serde_json::Value;

use crate::report::{RaftSafetyResult, Validity};
use crate::CheckError;
use log::Oracle;
use pass::{Mode, Pass};

/// Violations kept per property, and in the report.
const MAX_VIOLATIONS: usize = 100;

/// The check's memory bounds. `Default` is what `harness check` uses; a
/// smaller window only makes audit passes (re-reads) more likely.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    /// Indexes whose first apply is held (40 bytes each).
    pub window: u64,
    /// Commits held while waiting for the first apply of their index.
    pub pending: usize,
    /// Disjoint intervals of unchecked indexes remembered before the
    /// closest ones are joined.
    pub unchecked_spans: usize,
    /// Unchecked indexes one audit judges (its oracle holds 40 bytes per
    /// index); each audit reads the inputs twice.
    pub audit_batch: u64,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            window: 1 << 20,
            pending: 1 << 16,
            unchecked_spans: 4096,
            audit_batch: 1 << 19,
        }
    }
}

/// One line of an input: a trace event or an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line of a node's `trace.jsonl`.
    Trace(TraceEvent),
    /// A line of `observations.jsonl`.
    Observation(Observation),
}

impl Event {
    /// Unix nanoseconds, the merge's order.
    pub fn time(&self) -> u64 {
        match self {
            Event::Trace(e) => e.time,
            Event::Observation(o) => o.time,
        }
    }
}

/// An event with its place among events of the same time: the lower
/// `tiebreak` goes first (for files: the file's rank, then the line).
#[derive(Debug, Clone)]
pub struct Stamped {
    pub tiebreak: u64,
    pub event: Event,
}

/// One input, in the order its writer wrote it (normally by time).
pub struct Stream<'a> {
    /// Names the input in warnings.
    pub name: String,
    pub events: Box<dyn Iterator<Item = Result<Stamped, CheckError>> + Send + 'a>,
}

/// Inputs that can be read from the start again, giving the same events
/// each time (an audit pass re-reads them; see the module docs).
pub trait Inputs {
    fn open(&self) -> Result<Vec<Stream<'_>>, CheckError>;
}

/// A function that opens the inputs afresh, e.g. a generator's.
impl<F> Inputs for F
where
    F: Fn() -> Result<Vec<Stream<'static>>, CheckError>,
{
    fn open(&self) -> Result<Vec<Stream<'_>>, CheckError> {
        self()
    }
}

/// Checks a run folder's traces; `None` when it has neither traces nor observations.
pub fn check_run_dir(dir: &Path) -> Result<Option<RaftSafetyResult>, CheckError> {
    let nodes = dir.join("nodes");
    let mut traces = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&nodes) {
        for e in rd.flatten() {
            let t = e.path().join(formats::trace::FILE_NAME);
            if t.is_file() {
                traces.push(t);
            }
        }
    }
    traces.sort();
    let obs = dir.join(formats::observations::FILE_NAME);
    let observations: Vec<PathBuf> = if obs.is_file() { vec![obs] } else { vec![] };
    if traces.is_empty() && observations.is_empty() {
        return Ok(None);
    }
    check_trace_files(&traces, &observations).map(Some)
}

/// Checks trace files plus observation files.
pub fn check_trace_files(
    traces: &[PathBuf],
    observations: &[PathBuf],
) -> Result<RaftSafetyResult, CheckError> {
    check_trace_files_with(traces, observations, &RaftOptions::default())
}

/// [`check_trace_files`] within the given bounds.
pub fn check_trace_files_with(
    traces: &[PathBuf],
    observations: &[PathBuf],
    opts: &RaftOptions,
) -> Result<RaftSafetyResult, CheckError> {
    check_inputs(
        &Files {
            traces,
            observations,
        },
        opts,
    )
}

/// The check over in-memory events: trace events (each node's in the order
/// it wrote them) and observations. Ties in time go to the earlier in the
/// slices, traces before observations.
pub fn check_events(trace: &[TraceEvent], observations: &[Observation]) -> RaftSafetyResult {
    check_events_with(trace, observations, &RaftOptions::default())
}

/// [`check_events`] within the given bounds.
pub fn check_events_with(
    trace: &[TraceEvent],
    observations: &[Observation],
    opts: &RaftOptions,
) -> RaftSafetyResult {
    check_inputs(
        &Slices {
            trace,
            observations,
        },
        opts,
    )
    .expect("events in memory cannot fail to read")
}

/// The check over any inputs: one main pass, then audit passes if the
/// window could not judge some events (see the module docs).
pub fn check_inputs(
    inputs: &dyn Inputs,
    opts: &RaftOptions,
) -> Result<RaftSafetyResult, CheckError> {
    let mut main = Pass::new(Mode::Main, opts);
    let counts = merge::run(inputs.open()?, None, |e| main.step(e))?;
    if !main.unchecked.is_empty() {
        let batches = main.unchecked.batches(opts.audit_batch);
        tracing::info!(
            batches = batches.len(),
            "some trace events came after the window had moved past their index: re-reading \
             the traces to judge them"
        );
        for batch in batches {
            let mut oracle = Oracle::new(&batch);
            merge::run(inputs.open()?, Some(&counts), |e| {
                if let Event::Trace(t) = e {
                    oracle.observe(t);
                }
            })?;
            let mut audit = Pass::new(Mode::Audit(&oracle), opts);
            merge::run(inputs.open()?, Some(&counts), |e| audit.step(e))?;
            main.found.absorb(audit.found);
        }
    }
    let (events, nodes) = main.counts();
    let violations = main.found.into_list();
    Ok(RaftSafetyResult {
        valid: if violations.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        nodes,
        events,
        violations,
    })
}

fn json_of(e: &impl serde::Serialize) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// Trace and observation files, each read by `formats`.
struct Files<'a> {
    traces: &'a [PathBuf],
    observations: &'a [PathBuf],
}

/// Files rank by their place in the argument lists; lines within them.
fn file_tiebreak(rank: usize, line: usize) -> u64 {
    ((rank as u64) << 40) | line as u64
}

impl Inputs for Files<'_> {
    fn open(&self) -> Result<Vec<Stream<'_>>, CheckError> {
        let mut out = Vec::new();
        for (rank, p) in self.traces.iter().enumerate() {
            let reader = formats::trace::Reader::open(p)?;
            out.push(Stream {
                name: p.display().to_string(),
                events: Box::new(reader.map(move |r| {
                    r.map(|n| Stamped {
                        tiebreak: file_tiebreak(rank, n.line),
                        event: Event::Trace(n.event),
                    })
                    .map_err(CheckError::from)
                })),
            });
        }
        for (k, p) in self.observations.iter().enumerate() {
            let rank = self.traces.len() + k;
            let reader = formats::observations::Reader::open(p)?;
            out.push(Stream {
                name: p.display().to_string(),
                events: Box::new(reader.map(move |r| {
                    r.map(|n| Stamped {
                        tiebreak: file_tiebreak(rank, n.line),
                        event: Event::Observation(n.event),
                    })
                    .map_err(CheckError::from)
                })),
            });
        }
        Ok(out)
    }
}

/// Events in memory: one stream per node (a node's events are in its
/// order), one for the observations; ties go by position in the slices.
struct Slices<'a> {
    trace: &'a [TraceEvent],
    observations: &'a [Observation],
}

impl Inputs for Slices<'_> {
    fn open(&self) -> Result<Vec<Stream<'_>>, CheckError> {
        let mut by_node: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (k, e) in self.trace.iter().enumerate() {
            by_node.entry(e.node).or_default().push(k);
        }
        let trace = self.trace;
        let mut out: Vec<Stream<'_>> = by_node
            .into_iter()
            .map(|(node, positions)| Stream {
                name: format!("events of node {node}"),
                events: Box::new(positions.into_iter().map(move |k| {
                    Ok(Stamped {
                        tiebreak: k as u64,
                        event: Event::Trace(trace[k].clone()),
                    })
                })),
            })
            .collect();
        let first = trace.len() as u64;
        out.push(Stream {
            name: "observations".into(),
            events: Box::new(self.observations.iter().enumerate().map(move |(k, o)| {
                Ok(Stamped {
                    tiebreak: first + k as u64,
                    event: Event::Observation(o.clone()),
                })
            })),
        });
        Ok(out)
    }
}
