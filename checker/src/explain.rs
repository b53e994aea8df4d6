//! The sentences of a counterexample: when an op happened, and why the op
//! that could not be placed fails in every state it could have seen. Both
//! decision procedures and the orchestration build explanations from these,
//! and the report only carries them.

use crate::history::{History, Op, OpF, INF, UNKNOWN};
use crate::model::{Space, State};
use crate::ModelKind;

/// "t=1.234ms" from the recorded time if any, else the line.
fn at(time: Option<u64>, line: Option<usize>) -> String {
    match (time, line) {
        (Some(t), _) => {
            if t >= 1_000_000_000 {
                format!("t={:.3}s", t as f64 / 1e9)
            } else {
                format!("t={:.3}ms", t as f64 / 1e6)
            }
        }
        (None, Some(l)) => format!("line {l}"),
        (None, None) => "an unknown time".into(),
    }
}

/// When an op was invoked, for explanations.
pub fn at_call(op: &Op) -> String {
    at(op.call_time, Some(op.line))
}

/// When an op completed, for explanations.
pub fn at_ret(op: &Op) -> String {
    if op.ret == INF {
        return "never (outcome unknown)".into();
    }
    match op.ret_time {
        Some(t) => at(Some(t), None),
        None if op.ret_line > 0 => format!("line {}", op.ret_line),
        None => format!("event #{}", op.ret),
    }
}

/// Explains why the stuck op could not be placed from the given states,
/// and names the ops outside the window that the explanation relies on (the
/// write that overwrote a value before a read began, …), so that a person
/// sees every op the story needs.
pub fn explain_stuck(
    history: &History,
    part: &[u32],
    window: &[u32],
    stuck: Option<u32>,
    states: &[State],
    space: &mut Space<'_>,
) -> (String, Vec<u32>) {
    let Some(s) = stuck else {
        return (
            "no order of the window's operations is consistent with the model".into(),
            Vec::new(),
        );
    };
    let op = &history.ops[s as usize];
    let shown: Vec<String> = states.iter().map(|&x| space.show(x)).collect();
    let what = if history.model == ModelKind::Mutex {
        "the lock"
    } else {
        "the value"
    };
    let could = if shown.len() == 1 {
        format!("{what} could only have been {}", shown[0])
    } else {
        format!("{what} could only have been one of {}", shown.join(", "))
    };
    if states
        .iter()
        .any(|&st| space.step(st, s, &op.f, op.key).is_some())
    {
        // The op itself fits; what follows it does not. A read of the window
        // that shows a classic anomaly tells the story better.
        for &r in window {
            if let Some(story) = read_story(history, part, &history.ops[r as usize]) {
                return story;
            }
        }
        let text = format!(
            "{} at {} fits the state there ({}), but no order of the operations that must follow it works: the window cannot be linearized from the states its predecessors leave",
            history.describe_op(op),
            at_call(op),
            shown.join(", ")
        );
        return (text, Vec::new());
    }
    let v = |x| history.values.show(x);
    if let Some((story, witnesses)) = read_story(history, part, op) {
        return (format!("{story}; {could}"), witnesses);
    }
    let text = match op.f {
        OpF::Read(x) if history.model == ModelKind::AppendKv => {
            let read = history.values.as_str(x).unwrap_or("");
            // One possible state: show where the two strings part.
            let diff = match states {
                [s] => {
                    let want = space.describe(*s);
                    let want = want.as_str().unwrap_or("");
                    let at = read
                        .bytes()
                        .zip(want.bytes())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let cut =
                        |x: &str| -> String { x.get(at..).unwrap_or("").chars().take(24).collect() };
                    format!(
                        ": after the first {at} characters they agree on, the read has {:?} where the state had {:?}",
                        cut(read),
                        cut(want)
                    )
                }
                _ => String::new(),
            };
            format!(
                "{} at {}, but {could} at that point{diff}",
                history.describe_op(op),
                at_call(op)
            )
        }
        OpF::Read(_) => format!(
            "{} at {}, but {could} at that point",
            history.describe_op(op),
            at_call(op)
        ),
        OpF::Cas(a, _) => format!(
            "{} succeeded at {}, but the value was not {} then: {could}",
            history.describe_op(op),
            at_call(op),
            v(a)
        ),
        OpF::CasFailed(a) => format!(
            "{} at {}, but the value had to be {} then: {could}",
            history.describe_op(op),
            at_call(op),
            v(a)
        ),
        OpF::Write(_) => format!(
            "{} at {} could not be placed: every order that places it leaves a later operation unexplained (states before it: {})",
            history.describe_op(op),
            at_call(op),
            shown.join(", ")
        ),
        _ => format!(
            "{} at {} is not legal in any state the history allows at that point ({could})",
            history.describe_op(op),
            at_call(op)
        ),
    };
    (text, Vec::new())
}

/// A definitive story for a read, if it shows a classic anomaly on its own:
/// a value never written, read before its write began, overwritten before
/// the read began, or (append-kv) missing an append that completed first.
fn read_story(history: &History, part: &[u32], op: &Op) -> Option<(String, Vec<u32>)> {
    let OpF::Read(x) = op.f else { return None };
    if x == UNKNOWN {
        return None;
    }
    let v = |x| history.values.show(x);
    let ops = || part.iter().map(|&i| &history.ops[i as usize]);
    // Witnesses are few (one or two per story): a scan is cheap enough.
    let index_of = |o: &Op| -> u32 {
        part.iter()
            .copied()
            .find(|&i| std::ptr::eq(&history.ops[i as usize], o))
            .expect("a witness comes from the part")
    };
    if history.model == ModelKind::AppendKv {
        let read = history.values.as_str(x).unwrap_or("");
        // An append that finished before the read began, missing from what it
        // read, with no put that could have wiped it in between.
        let a = ops().find(|a| match a.f {
            OpF::Append(t) => {
                a.ret != INF
                    && a.ret < op.call
                    && !read.contains(history.values.as_str(t).unwrap_or(""))
                    && !ops()
                        .any(|p| matches!(p.f, OpF::Write(_)) && p.call < op.ret && p.ret > a.call)
            }
            _ => false,
        })?;
        return Some((
            format!(
                "{} at {}, but {} completed at {} before the read began and the value read does not contain it",
                history.describe_op(op),
                at_call(op),
                history.describe_op(a),
                at_ret(a)
            ),
            vec![index_of(a)],
        ));
    }
    if !matches!(
        history.model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
    ) {
        return None;
    }
    let writes_x: Vec<&Op> = ops()
        .filter(|o| matches!(o.f, OpF::Write(y) | OpF::Cas(_, y) if y == x))
        .collect();
    if writes_x.is_empty() && x != history.init {
        return Some((
            format!(
                "{} at {}, but no operation ever wrote {}",
                history.describe_op(op),
                at_call(op),
                v(x)
            ),
            Vec::new(),
        ));
    }
    if x != history.init && writes_x.iter().all(|w| w.call > op.ret) {
        return Some((
            format!(
                "{} completed at {}, before any write of {} began (first at {})",
                history.describe_op(op),
                at_ret(op),
                v(x),
                at_call(writes_x[0])
            ),
            vec![index_of(writes_x[0])],
        ));
    }
    // The latest write of x that may precede the read, then a write of
    // another value certainly after it and certainly before the read.
    let latest_x_ret = writes_x
        .iter()
        .filter(|w| w.call < op.ret)
        .map(|w| w.ret)
        .max();
    let w = ops().find(|o| {
        matches!(o.f, OpF::Write(y) | OpF::Cas(_, y) if y != x)
            && o.ret != INF
            && o.ret < op.call
            && match latest_x_ret {
                Some(r) => r != INF && o.call > r,
                None => x == history.init,
            }
            && !writes_x.iter().any(|w| w.call > o.ret && w.call < op.ret)
    })?;
    let what = if writes_x.is_empty() {
        format!("the initial value {}", v(x))
    } else {
        v(x)
    };
    // The write of x the read could have seen last, then the one over it.
    let mut witnesses: Vec<u32> = writes_x
        .iter()
        .filter(|o| o.call < op.ret && Some(o.ret) == latest_x_ret)
        .take(1)
        .map(|&o| index_of(o))
        .collect();
    witnesses.push(index_of(w));
    Some((
        format!(
            "{} at {}, but {} was overwritten by {} which completed at {} before the read began",
            history.describe_op(op),
            at_call(op),
            what,
            history.describe_op(w),
            at_ret(w)
        ),
        witnesses,
    ))
}
