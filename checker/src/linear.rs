//! Orchestration of the linearizability check: split, choose a decision
//! procedure per part, run parts in parallel under a shared budget.
//!
//! Splitting by key is sound for per-key models (P-compositionality: a
//! history is linearizable iff each key's sub-history is). Within a part,
//! quiescent points (every required op invoked so far has returned) cut the
//! part into windows: every op before the cut precedes every op after it, so
//! the only things that cross a cut are the model state and the `info` ops
//! still able to take effect. Windows are chained depth-first, resuming an
//! earlier window for another end state when a later one fails.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::budget::{Abort, Budget};
use crate::explain::explain_stuck;
use crate::graph;
use crate::history::{History, OpF, Val, INF};
use crate::model::{Space, State};
use crate::pending::Pool;
use crate::reduce::{self, Reduced};
use crate::search::{Config, Progress, Step, WindowSearch};
use crate::verdict::{Failure, HistoryVerdict, PartOutcome};
use crate::{CheckOptions, ModelKind};

/// Time slice of each part in the first pass over several parts.
const FIRST_SLICE: Duration = Duration::from_millis(50);

/// Below this many ops, parts are checked on the calling thread.
const PARALLEL_MIN_OPS: usize = 4096;

/// Checks a history for linearizability under the given options.
pub fn check(history: &History, opts: &CheckOptions) -> HistoryVerdict {
    let reduced: &OnceLock<Option<Reduced>> = &OnceLock::new();
    let used = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let global_deadline = Instant::now() + opts.time_limit;
    let budget = Budget {
        deadline: global_deadline,
        global_deadline,
        memory_limit: opts.memory_limit_bytes,
        used: &used,
        stop: &stop,
    };
    let per_key = matches!(
        history.model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv | ModelKind::AppendKv
    );
    let mut parts: Vec<(Option<u32>, Vec<u32>)> = Vec::new();
    let tuple = if per_key && opts.split_keys {
        let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); history.keys.len() + 1];
        for (i, op) in history.ops.iter().enumerate() {
            let slot = op.key.map_or(history.keys.len(), |k| k as usize);
            by_key[slot].push(i as u32);
        }
        for (k, ops) in by_key.into_iter().enumerate() {
            if !ops.is_empty() {
                let key = (k < history.keys.len()).then_some(k as u32);
                parts.push((key, ops));
            }
        }
        false
    } else {
        parts.push((None, (0..history.ops.len() as u32).collect()));
        history.model == ModelKind::MultiRegister
            || (per_key && {
                let mut keys = history.ops.iter().map(|o| o.key);
                let first = keys.next().flatten();
                keys.any(|k| k != first)
            })
    };
    let n_parts = parts.len();
    // Pass 1 gives every part a short slice, so an easy violation in one key
    // is not hidden behind a hard valid key; pass 2 finishes the rest.
    let slice = (parts.len() > 1).then_some(FIRST_SLICE);
    let run = |ops: &(Option<u32>, Vec<u32>), slice: Option<Duration>| {
        let mut b = budget;
        if let Some(s) = slice {
            b.deadline = b.global_deadline.min(Instant::now() + s);
        }
        let r = check_part(history, reduced, ops.0, &ops.1, tuple, opts, &b);
        if matches!(r.0, PartOutcome::Invalid(_)) {
            stop.store(true, Ordering::Relaxed);
        }
        r
    };
    // Small histories are checked faster than the pool wakes up.
    let parallel = opts.parallel && parts.len() > 1 && history.ops.len() >= PARALLEL_MIN_OPS;
    let run_all = |idx: &[usize], slice: Option<Duration>| -> Vec<(usize, Decided)> {
        if parallel {
            idx.par_iter()
                .map(|&i| (i, run(&parts[i], slice)))
                .collect()
        } else {
            idx.iter().map(|&i| (i, run(&parts[i], slice))).collect()
        }
    };
    // Largest parts first so the pool stays busy.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].1.len()));
    let mut results = run_all(&order, slice);
    if !stop.load(Ordering::Relaxed) {
        let again: Vec<usize> = results
            .iter()
            .filter(|(_, r)| matches!(r.0, PartOutcome::Unknown { retry: true, .. }))
            .map(|(i, _)| *i)
            .collect();
        if !again.is_empty() {
            results.retain(|(i, _)| !again.contains(i));
            results.extend(run_all(&again, None));
        }
    }
    let results = results.into_iter().map(|(_, r)| r);
    let mut windows = 0;
    let mut graph_parts = 0;
    let mut invalid = None;
    let mut unknown = None;
    let mut placed = Vec::new();
    for (r, w, by_graph, p) in results {
        placed.extend(p);
        windows += w;
        graph_parts += usize::from(by_graph);
        match r {
            PartOutcome::Invalid(f) => {
                let better = match &invalid {
                    None => true,
                    Some(PartOutcome::Invalid(g)) => f.window.len() < g.window.len(),
                    Some(_) => false,
                };
                if better {
                    invalid = Some(PartOutcome::Invalid(f));
                }
            }
            PartOutcome::Unknown { reason, .. } => {
                if !reason.is_empty() && unknown.is_none() {
                    unknown = Some(PartOutcome::Unknown {
                        reason,
                        retry: false,
                    });
                }
            }
            PartOutcome::Valid => {}
        }
    }
    let verdict = invalid.or(unknown).unwrap_or(PartOutcome::Valid);
    HistoryVerdict {
        verdict,
        parts: n_parts,
        windows,
        graph_parts,
        search_parts: n_parts - graph_parts,
        placed,
    }
}

fn key_label(history: &History, key: Option<u32>) -> String {
    match key {
        Some(k) => format!("key {}", history.keys[k as usize]),
        None => "the whole history".to_string(),
    }
}

/// Cuts a part's ops (sorted by call) at quiescent points.
pub fn windows(history: &History, ops: &[u32]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut max_ret: Option<u64> = None;
    for (j, &i) in ops.iter().enumerate() {
        let op = &history.ops[i as usize];
        if let Some(m) = max_ret {
            if m < op.call && j > start {
                out.push(start..j);
                start = j;
                max_ret = None;
            }
        }
        if op.ret != INF {
            max_ret = Some(max_ret.map_or(op.ret, |m| m.max(op.ret)));
        }
    }
    if start < ops.len() || out.is_empty() {
        out.push(start..ops.len());
    }
    out
}

/// The reduced copy of a register or append-kv history the search works
/// on (see [`crate::reduce`] and [`crate::reduce::append`]), made once per
/// check by the first part that needs it and charged to the memory budget;
/// without room for it (or with `reduce` off) the search works on the
/// history as it is.
fn reduced<'a>(
    cell: &'a OnceLock<Option<Reduced>>,
    history: &History,
    reduce: bool,
    budget: &Budget<'_>,
) -> Option<&'a Reduced> {
    cell.get_or_init(|| {
        let bytes = reduce::bytes_for(history);
        if !reduce || budget.used.load(Ordering::Relaxed) + bytes > budget.memory_limit {
            return None;
        }
        let r = reduce::reduce(history)?;
        budget.used.fetch_add(r.bytes(), Ordering::Relaxed);
        Some(r)
    })
    .as_ref()
}

/// A part's outcome, its number of windows, whether the graph decided it,
/// and the `info` ops a valid part's linearization placed.
type Decided = (PartOutcome, usize, bool, Vec<u32>);

/// Checks one part; returns the outcome, the number of windows and whether the graph decided it.
fn check_part(
    history: &History,
    cell: &OnceLock<Option<Reduced>>,
    key: Option<u32>,
    ops: &[u32],
    tuple: bool,
    opts: &CheckOptions,
    budget: &Budget<'_>,
) -> Decided {
    // Failed-cas observations make every pending info op a possible
    // explanation, which is costly to refute. Dropping them relaxes the
    // history (fewer constraints): if even the relaxed part cannot be
    // linearized, the part cannot, and the relaxed check is cheap.
    if opts.use_graph && !tuple {
        // Exact without cas; with cas, a cheap refutation (see `graph::refute`).
        if let Some(r) =
            graph::check(history, key, ops).or_else(|| graph::refute(history, key, ops))
        {
            return (r, 1, true, Vec::new());
        }
    }
    let failed = |&i: &u32| matches!(history.ops[i as usize].f, OpF::CasFailed(_));
    if ops.iter().any(failed) {
        let relaxed: Vec<u32> = ops.iter().copied().filter(|i| !failed(i)).collect();
        let mut b = *budget;
        let left = b.deadline.saturating_duration_since(Instant::now());
        b.deadline = Instant::now() + left / 4;
        let r = decide(history, cell, key, &relaxed, true, tuple, opts, &b);
        if matches!(r.0, PartOutcome::Invalid(_)) {
            return r;
        }
    }
    decide(history, cell, key, ops, false, tuple, opts, budget)
}

/// The search over a part (on the reduced history when there is one).
#[allow(clippy::too_many_arguments)]
fn decide(
    history: &History,
    cell: &OnceLock<Option<Reduced>>,
    key: Option<u32>,
    ops: &[u32],
    relaxed: bool,
    tuple: bool,
    opts: &CheckOptions,
    budget: &Budget<'_>,
) -> Decided {
    let (view, sops) = match reduced(cell, history, opts.reduce, budget) {
        Some(r) => (&r.history, r.search_ops(ops, relaxed)),
        None => (history, ops.to_vec()),
    };
    let h = Histories {
        search: view,
        report: history,
    };
    let r = search_part(h, key, &sops, tuple, opts, budget, true);
    if matches!(r.outcome, PartOutcome::Invalid(_)) && history.model == ModelKind::AppendKv {
        // Pruning against reads of later windows stops the search before the
        // window holding the contradicting read; search again without it so
        // the counterexample shows that read.
        let faithful = search_part(h, key, &sops, tuple, opts, budget, false);
        if matches!(faithful.outcome, PartOutcome::Invalid(_)) {
            return (faithful.outcome, r.windows, false, Vec::new());
        }
    }
    (r.outcome, r.windows, false, r.placed)
}

/// The history the search works on (possibly reduced) and the one its
/// counterexamples are told in (the recorded one).
#[derive(Clone, Copy)]
pub struct Histories<'a> {
    pub search: &'a History,
    pub report: &'a History,
}

impl<'a> Histories<'a> {
    /// The same history for both.
    pub fn same(history: &'a History) -> Self {
        Histories {
            search: history,
            report: history,
        }
    }
}

/// The search path over one part, chaining its quiescent windows.
pub fn search_part(
    hs: Histories<'_>,
    key: Option<u32>,
    ops: &[u32],
    tuple: bool,
    opts: &CheckOptions,
    budget: &Budget<'_>,
    use_future: bool,
) -> Searched {
    let history = hs.search;
    let ranges = if opts.split_windows {
        windows(history, ops)
    } else {
        std::iter::once(0..ops.len()).collect()
    };
    let n = ranges.len();
    let registerish = !tuple
        && matches!(
            history.model,
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
        );
    // The whole map as one state, each op on one key: the search may blame
    // dead configurations on keys and backjump (see `crate::search`).
    let key_blame = tuple
        && matches!(
            history.model,
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv | ModelKind::AppendKv
        );
    let mut space = if tuple {
        Space::tuple(history)
    } else {
        Space::scalar(history)
    };
    space.prepare_dead_values(history, ops);
    let pool = Pool::new(history, ops, registerish);
    let futures = if use_future && history.model == ModelKind::AppendKv {
        future_reads(history, ops, &ranges)
    } else {
        vec![FxHashMap::default(); n]
    };
    // A window's search is built for each start configuration, with the
    // pending info ops that start leaves and needs; its progress (for the
    // counterexample) carries over. Searches of finished windows are reused.
    let mut spare: Vec<Box<WindowSearch>> = Vec::new();
    let make = |i: usize, cfg: &Config, progress: Progress, spare: &mut Vec<Box<WindowSearch>>| {
        let window = &ops[ranges[i].clone()];
        let pending = pool.select(history, window, cfg);
        let mut s = match spare.pop() {
            Some(mut s) => {
                s.reset(history, &pending, window);
                s
            }
            None => Box::new(WindowSearch::new(history, &pending, window)),
        };
        if progress.depth > 0 || !progress.states.is_empty() {
            s.progress = progress;
        }
        s.set_future(futures[i].clone());
        if registerish {
            s.enable_register_rules(history);
        }
        if key_blame {
            s.enable_key_blame(history, history.keys.len() + 1);
        }
        s
    };
    let mut searches: Vec<Slot> = Vec::with_capacity(n);
    // Start configurations per window (bounded), to re-check a shrunk window.
    let mut starts: Vec<Vec<Config>> = vec![Vec::new(); n];
    let init = Config {
        state: space.initial(),
        consumed: Vec::new(),
    };
    let mut first = make(0, &init, Progress::default(), &mut spare);
    first.start(history, &mut space, &init);
    searches.push(Slot::Live(first));
    let mut starts_bytes = 0u64;
    let mut i = 0usize;
    let mut deepest_fail: Option<usize> = None;
    // An end reached without a search (a window of one required op).
    let mut direct: Option<Config> = None;
    let mut placed = Vec::new();
    let outcome = loop {
        let step = match (direct.take(), &mut searches[i]) {
            (Some(cfg), _) => Step::End(cfg),
            (None, Slot::Live(s)) => s.next_end(history, &mut space, budget),
            (None, Slot::Done) => Step::Exhausted,
        };
        match step {
            Step::End(cfg) => {
                if i + 1 == n {
                    placed = cfg.consumed;
                    break PartOutcome::Valid;
                }
                // A window that reached an end is never the deepest failing
                // one (the next window was entered): its starts and progress
                // are not needed. Without alternatives left, it has no other
                // end to offer either, and its search is reused.
                if !starts[i].is_empty() {
                    let b: u64 = starts[i].iter().map(config_bytes).sum();
                    budget.used.fetch_sub(b, Ordering::Relaxed);
                    starts_bytes -= b;
                    starts[i] = Vec::new();
                }
                if !key_blame {
                    if let Slot::Live(s) = &mut searches[i] {
                        if s.finished() {
                            s.release(budget);
                            if let Slot::Live(s) = std::mem::replace(&mut searches[i], Slot::Done) {
                                spare.push(s);
                            }
                        }
                    }
                }
                i += 1;
                let old = searches
                    .get_mut(i)
                    .map(|s| std::mem::replace(s, Slot::Done));
                let progress = match old {
                    Some(Slot::Live(mut old)) => {
                        old.release(budget);
                        let p = std::mem::take(&mut old.progress);
                        spare.push(old);
                        p
                    }
                    Some(Slot::Done) | None => Progress::default(),
                };
                if searches.len() <= i {
                    searches.push(Slot::Done);
                }
                // A window of one required op that fits, with no pending
                // info op to consider, has exactly one end: no search.
                if let Some(next) = (!key_blame)
                    .then(|| single_step(history, &mut space, &ops[ranges[i].clone()], &pool, &cfg))
                    .flatten()
                {
                    direct = Some(next);
                    continue;
                }
                let mut s = make(i, &cfg, progress, &mut spare);
                s.start(history, &mut space, &cfg);
                searches[i] = Slot::Live(s);
            }
            Step::Exhausted => {
                // The deepest failing window is re-checked, shrunk, from
                // every start it failed from.
                if let Slot::Live(s) = &searches[i] {
                    if starts[i].len() <= MAX_STARTS {
                        let cfg = s.start_config();
                        let b = config_bytes(&cfg);
                        budget.used.fetch_add(b, Ordering::Relaxed);
                        starts_bytes += b;
                        starts[i].push(cfg);
                    }
                }
                if deepest_fail.is_none_or(|d| i > d) {
                    deepest_fail = Some(i);
                }
                if i == 0 {
                    let w = deepest_fail.unwrap_or(0);
                    let mut f = failure_from_search(
                        hs,
                        key,
                        ops,
                        &ranges[w],
                        &searches[w].progress(),
                        &mut space,
                    );
                    if starts[w].len() <= MAX_STARTS {
                        shrink(
                            hs,
                            &mut f,
                            ops,
                            &pool,
                            &starts[w],
                            registerish,
                            key_blame,
                            &mut space,
                            budget,
                        );
                    }
                    break PartOutcome::Invalid(Box::new(f));
                }
                let blame = match &searches[i] {
                    Slot::Live(s) => s.exhausted_blame(),
                    Slot::Done => crate::search::ALL,
                };
                i -= 1;
                if let Slot::Live(s) = &mut searches[i] {
                    s.resume_blame(blame);
                }
            }
            Step::Abort(a) => {
                let r = &ranges[i];
                let first = &history.ops[ops[r.start] as usize];
                let last = &history.ops[ops[r.end - 1] as usize];
                let why = match a {
                    Abort::Time => format!("time limit of {:?} reached", opts.time_limit),
                    Abort::Memory => format!(
                        "memory limit of {} MiB reached",
                        opts.memory_limit_bytes >> 20
                    ),
                    Abort::Stopped => {
                        break PartOutcome::Unknown {
                            reason: String::new(),
                            retry: false,
                        }
                    }
                };
                break PartOutcome::Unknown {
                    retry: a == Abort::Time && budget.deadline < budget.global_deadline,
                    reason: format!(
                        "{why} while checking {}, window {} of {} ({} ops, lines {}..{})",
                        key_label(history, key),
                        i + 1,
                        n,
                        r.len(),
                        first.line,
                        last.line
                    ),
                };
            }
        }
    };
    for s in &mut searches {
        if let Slot::Live(s) = s {
            s.release(budget);
        }
    }
    space.release(budget);
    budget.used.fetch_sub(starts_bytes, Ordering::Relaxed);
    Searched {
        outcome,
        windows: n,
        placed,
    }
}

/// What the search over a part found.
pub struct Searched {
    pub outcome: PartOutcome,
    /// Windows the part was cut into.
    pub windows: usize,
    /// For a valid part: the `info` ops its linearization placed.
    pub placed: Vec<u32>,
}

/// The end of a window of one required op from `start`, when it fits and no
/// pending info op could go first (then it is the window's only end).
fn single_step(
    history: &History,
    space: &mut Space<'_>,
    window: &[u32],
    pool: &Pool,
    start: &Config,
) -> Option<Config> {
    let &[h] = window else { return None };
    let op = &history.ops[h as usize];
    if op.ret == INF || !pool.select(history, window, start).is_empty() {
        return None;
    }
    let state = space.step(start.state, h, &op.f, op.key)?;
    Some(Config {
        state,
        consumed: start.consumed.clone(),
    })
}

/// A window's search while it may still offer another end configuration.
enum Slot {
    Live(Box<WindowSearch>),
    /// Reached an end and has no other to offer (and so is never the
    /// deepest failing window, whose search the counterexample needs).
    Done,
}

impl Slot {
    fn progress(&self) -> Progress {
        match self {
            Slot::Live(s) => s.progress.clone(),
            Slot::Done => Progress::default(),
        }
    }
}

/// Bytes a remembered start configuration holds.
fn config_bytes(c: &Config) -> u64 {
    (std::mem::size_of::<Config>() + c.consumed.capacity() * 4) as u64
}

/// Joins consecutive windows until each holds at least `min` ops.
/// Most start configurations remembered per window for shrinking.
const MAX_STARTS: usize = 64;

/// Append-kv: for each window, per key, a read in a later window that every
/// state of the key in this window must be a prefix of (appends only grow the
/// string; a put that could come before the read lifts the constraint).
fn future_reads(
    history: &History,
    ops: &[u32],
    ranges: &[std::ops::Range<usize>],
) -> Vec<FxHashMap<Option<u32>, Val>> {
    let mut out = vec![FxHashMap::default(); ranges.len()];
    let mut next: FxHashMap<Option<u32>, Option<Val>> = FxHashMap::default();
    for (w, r) in ranges.iter().enumerate().rev() {
        out[w] = next
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        let window = &ops[r.clone()];
        let mut first_put: FxHashMap<Option<u32>, u64> = FxHashMap::default();
        for &i in window {
            let op = &history.ops[i as usize];
            if matches!(op.f, OpF::Write(_)) {
                let e = first_put.entry(op.key).or_insert(op.call);
                *e = (*e).min(op.call);
            }
        }
        let mut first_read: FxHashMap<Option<u32>, Val> = FxHashMap::default();
        for &i in window {
            let op = &history.ops[i as usize];
            if let OpF::Read(v) = op.f {
                let before_puts = first_put.get(&op.key).is_none_or(|&p| op.ret < p);
                if v != crate::history::UNKNOWN && before_puts {
                    first_read.entry(op.key).or_insert(v);
                }
            }
        }
        for k in first_put.keys() {
            next.insert(*k, first_read.get(k).copied());
        }
        for (k, v) in first_read {
            next.insert(k, Some(v));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
/// Tries to cut the failing window after the stuck op's return: ops invoked
/// later cannot help place it. Keeps the shorter window if it still fails
/// from every start configuration the full window was tried from.
fn shrink(
    hs: Histories<'_>,
    f: &mut Failure,
    part: &[u32],
    pool: &Pool,
    starts: &[Config],
    registerish: bool,
    key_blame: bool,
    space: &mut Space<'_>,
    budget: &Budget<'_>,
) {
    let history = hs.search;
    let Some(stuck) = f.stuck else { return };
    let limit = history.ops[stuck as usize].ret;
    if limit == INF {
        return;
    }
    let sub: Vec<u32> = f
        .window
        .iter()
        .copied()
        .filter(|&i| history.ops[i as usize].call < limit)
        .collect();
    if sub.len() >= f.window.len() || sub.is_empty() {
        return;
    }
    if starts.is_empty() {
        return;
    }
    let mut progress = Progress::default();
    for cfg in starts {
        let pending = pool.select(history, &sub, cfg);
        let mut s = WindowSearch::new(history, &pending, &sub);
        s.progress = std::mem::take(&mut progress);
        if registerish {
            s.enable_register_rules(history);
        }
        if key_blame {
            s.enable_key_blame(history, history.keys.len() + 1);
        }
        if history.model == ModelKind::AppendKv {
            // The cut-off tail no longer constrains: no future reads here.
            s.set_future(FxHashMap::default());
        }
        s.start(history, space, cfg);
        let step = s.next_end(history, space, budget);
        s.release(budget);
        match step {
            Step::Exhausted => {}
            Step::End(_) | Step::Abort(_) => return,
        }
        progress = std::mem::take(&mut s.progress);
    }
    let p = &progress;
    if let Some(s) = p.stuck {
        let states: Vec<State> = p.states.clone();
        (f.explanation, f.witnesses) =
            explain_stuck(hs.report, part, &sub, Some(s), &states, space);
        f.stuck = Some(s);
        f.states = states.iter().map(|&x| space.describe(x)).collect();
        f.prefix = p.prefix.clone();
    }
    f.window = sub;
}

fn failure_from_search(
    hs: Histories<'_>,
    key: Option<u32>,
    ops: &[u32],
    range: &std::ops::Range<usize>,
    p: &Progress,
    space: &mut Space<'_>,
) -> Failure {
    let states: Vec<State> = p.states.clone();
    let (explanation, witnesses) =
        explain_stuck(hs.report, ops, &ops[range.clone()], p.stuck, &states, space);
    Failure {
        key,
        window: ops[range.clone()].to_vec(),
        prefix: p.prefix.clone(),
        stuck: p.stuck,
        states: states.iter().map(|&s| space.describe(s)).collect(),
        explanation,
        witnesses,
        found_by: "search",
    }
}
