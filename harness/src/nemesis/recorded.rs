//! A fault schedule as an earlier run realised it, read back from its
//! history: what `harness replay` feeds the nemesis instead of a fresh draw.
//!
//! The drawn schedule ([`super::Schedule`]) says what to do next and how
//! long to wait before it; a replay must instead hit the same nodes at the
//! same moments as the recorded run, whatever the new run's leaders are.
//! So a recorded step carries the node it really hit (after any aiming at
//! the leader) and its time since the traffic started (the first client
//! invocation), and the nemesis waits for that moment, not for a delay
//! after the previous step: a slow membership change then does not shift
//! every later fault.
//!
//! Left out: steps that failed (`"error"` in their value: the fault did not
//! happen), restarts of nodes that had exited on their own (`"note"`: the
//! nemesis only reacted to a crash), and the heal at the end (the run heals
//! everything itself once its time is up).

use std::time::Duration;

use formats::history::{Event, EventType, Process};
use serde_json::Value;

use super::fault::{Edge, FaultKind};
use super::partition::{Partition, Shape};
use super::schedule::Action;
use crate::cluster::NodeId;
use crate::proxy::LinkMode;

/// One recorded step: at `at` after the traffic started, do `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStep {
    pub at: Duration,
    pub action: Action,
}

/// The steps of a run, in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedSchedule {
    pub steps: Vec<RecordedStep>,
}

/// A nemesis event of a history that cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[error("history event {index} ({f}): {reason}")]
pub struct RecordedError {
    pub index: u64,
    pub f: String,
    pub reason: String,
}

impl RecordedSchedule {
    /// Reads the schedule out of a history's events (in file order). The
    /// clock starts at the first client invocation; nemesis events before
    /// it (there are none in our runs: the nemesis starts with the
    /// traffic) happen at once.
    pub fn from_events<I: IntoIterator<Item = Event>>(events: I) -> Result<Self, RecordedError> {
        let mut origin: Option<u64> = None;
        let mut pending: Vec<(u64, Action)> = Vec::new();
        let mut steps = Vec::new();
        for e in events {
            match e.process {
                Process::Client(_) if e.kind == EventType::Invoke && origin.is_none() => {
                    origin = e.time;
                }
                Process::Nemesis => {
                    if let Some(action) = action_of(&e)? {
                        pending.push((e.time.unwrap_or(0), action));
                    }
                }
                _ => {}
            }
        }
        let origin = origin.unwrap_or(0);
        for (t, action) in pending {
            steps.push(RecordedStep {
                at: Duration::from_nanos(t.saturating_sub(origin)),
                action,
            });
        }
        steps.sort_by_key(|s| s.at);
        Ok(RecordedSchedule { steps })
    }

    /// The fault kinds the schedule uses (a replay needs a network for
    /// partitions, three nodes for membership changes).
    pub fn kinds(&self) -> std::collections::BTreeSet<FaultKind> {
        self.steps.iter().map(|s| s.action.kind().0).collect()
    }
}

/// The action a recorded event stands for; `None` for what is not replayed.
fn action_of(e: &Event) -> Result<Option<Action>, RecordedError> {
    let Some((kind, edge)) = FaultKind::of_event(&e.f) else {
        return Ok(None);
    };
    let v = &e.value;
    if v.get("error").is_some() || v.get("note").is_some() {
        return Ok(None);
    }
    let err = |reason: &str| RecordedError {
        index: e.index,
        f: e.f.clone(),
        reason: reason.to_string(),
    };
    let node = || -> Result<NodeId, RecordedError> {
        v.get("node")
            .and_then(Value::as_u64)
            .ok_or_else(|| err("no \"node\" in its value"))
    };
    Ok(Some(match (kind, edge) {
        (FaultKind::Kill, Edge::Starts) => Action::Kill(node()?),
        (FaultKind::Kill, Edge::Ends) => Action::Start(node()?),
        (FaultKind::Pause, Edge::Starts) => Action::Pause(node()?),
        (FaultKind::Pause, Edge::Ends) => Action::Resume(node()?),
        (FaultKind::Member, Edge::Starts) => Action::RemoveMember(node()?),
        (FaultKind::Member, Edge::Ends) => Action::AddMember(node()?),
        (FaultKind::Partition, Edge::Ends) => Action::StopPartition,
        (FaultKind::Partition, Edge::Starts) => {
            Action::StartPartition(partition_of(v).map_err(|r| err(&r))?)
        }
    }))
}

/// A partition from its event value (`shape`, `groups`, `links`, and
/// `delay` when links delay), the inverse of [`Partition::to_value`].
fn partition_of(v: &Value) -> Result<Partition, String> {
    let shape = v
        .get("shape")
        .and_then(Value::as_str)
        .and_then(Shape::parse)
        .ok_or("no known \"shape\"")?;
    let groups: Vec<Vec<NodeId>> = serde_json::from_value(v["groups"].clone())
        .map_err(|e| format!("\"groups\" is not a list of node lists: {e}"))?;
    let delay = match v.get("delay") {
        Some(d) => LinkMode::Delay {
            latency_ms: d["latency_ms"].as_u64().ok_or("no delay.latency_ms")?,
            jitter_ms: d["jitter_ms"].as_u64().ok_or("no delay.jitter_ms")?,
        },
        None => LinkMode::Pass,
    };
    let raw = v["links"].as_array().ok_or("no \"links\" list")?;
    let mut links = Vec::with_capacity(raw.len());
    for l in raw {
        let (Some(from), Some(to), Some(mode)) = (l[0].as_u64(), l[1].as_u64(), l[2].as_str())
        else {
            return Err(format!("link {l} is not [from, to, mode]"));
        };
        let mode = match mode {
            "pass" => LinkMode::Pass,
            "stall" => LinkMode::Stall,
            "reset" => LinkMode::Reset,
            "delay" if delay != LinkMode::Pass => delay,
            other => return Err(format!("unknown link mode {other:?}")),
        };
        links.push((from, to, mode));
    }
    links.sort_by_key(|l| (l.0, l.1));
    Ok(Partition {
        shape,
        groups,
        links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(
        index: u64,
        time: u64,
        process: Process,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> Event {
        Event {
            index,
            time: Some(time),
            process,
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn the_realised_steps_come_back_timed_from_the_first_invocation() {
        let p = crate::nemesis::partition::generate(
            Shape::Majority,
            &[1, 2, 3],
            LinkMode::Stall,
            &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1),
        );
        let n = Process::Nemesis;
        let info = EventType::Info;
        let events = vec![
            ev(
                0,
                1_000,
                Process::Client(0),
                EventType::Invoke,
                "read",
                Value::Null,
            ),
            ev(
                1,
                2_000,
                Process::Client(0),
                EventType::Ok,
                "read",
                Value::Null,
            ),
            ev(
                2,
                501_000,
                n.clone(),
                info,
                "kill",
                json!({"node": 2, "primary": true}),
            ),
            ev(3, 800_000, n.clone(), info, "start-partition", p.to_value()),
            ev(
                4,
                900_000,
                n.clone(),
                info,
                "pause",
                json!({"node": 3, "error": "gone"}),
            ),
            ev(
                5,
                950_000,
                n.clone(),
                info,
                "start",
                json!({"node": 1, "note": "crashed"}),
            ),
            ev(
                6,
                1_001_000,
                n.clone(),
                info,
                "stop-partition",
                json!({"links": []}),
            ),
            ev(7, 1_201_000, n, info, "start", json!({"node": 2})),
        ];
        let s = RecordedSchedule::from_events(events).unwrap();
        let got: Vec<(u128, Action)> = s
            .steps
            .iter()
            .map(|s| (s.at.as_micros(), s.action.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (500, Action::Kill(2)),
                (799, Action::StartPartition(p)),
                (1000, Action::StopPartition),
                (1200, Action::Start(2)),
            ]
        );
    }

    #[test]
    fn a_malformed_fault_is_named() {
        let e = ev(9, 5, Process::Nemesis, EventType::Info, "kill", json!({}));
        let err = RecordedSchedule::from_events([e]).unwrap_err().to_string();
        assert_eq!(err, "history event 9 (kill): no \"node\" in its value");
    }
}
