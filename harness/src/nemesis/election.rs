//! The nemesis moves that act on an election as it happens
//! ([`super::Move::CrashVoters`], [`super::Move::StaleSuffix`],
//! [`super::Move::Figure8`]): the
//! links of the electing nodes are slowed down, so that between a voter's
//! vote and the winner's first message there are tens of milliseconds in
//! which the harness, polling every node's status, can step in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use formats::trace::Role as RaftRole;
use tokio::time::Instant;

use super::{partition, Action, Figure8, Nemesis, Shape};
use crate::cluster::NodeId;
use crate::proxy::LinkMode;
use crate::systems::{probe_leader, LogPosition};

impl Nemesis {
    /// Polls every node but `outside` until enough of them to elect a
    /// candidate (half the cluster, rounded down, besides the candidate)
    /// have moved to one term, newer than the one this started in, without
    /// knowing a leader (they voted, or refused, in that election), each
    /// within the last `fresh`: their answers may still be on their way,
    /// whereas a voter of a failed election stays so until the next one.
    /// `None` if no such election is seen within `within` (voters still
    /// sticking to the old leader ignore a candidate that times out too
    /// early).
    async fn await_voters(
        &self,
        outside: &[NodeId],
        (within, fresh): (Duration, Duration),
    ) -> Option<BTreeSet<NodeId>> {
        let nodes = self.sut.node_ids();
        let base = probe_leader(&*self.sut).await.max_term().unwrap_or(0);
        let watched: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !outside.contains(n))
            .collect();
        let needed = nodes.len() / 2;
        let started = Instant::now();
        let deadline = started + within;
        // When each node was first seen voting in its term (the first
        // poll's voters count as old).
        let mut since: BTreeMap<NodeId, (u64, Instant)> = BTreeMap::new();
        let mut first = true;
        while Instant::now() < deadline {
            let mut seen = probe_leader(&*self.sut).await.statuses;
            let now = Instant::now();
            let mut by_term: BTreeMap<u64, BTreeSet<NodeId>> = BTreeMap::new();
            for &n in &watched {
                let voted = seen.remove(&n).and_then(Result::ok).filter(|s| {
                    s.term > base && s.role == RaftRole::Follower && s.leader.is_none()
                });
                let Some(s) = voted else {
                    since.remove(&n);
                    continue;
                };
                let seen_at = if first { started - fresh } else { now };
                let (term, at) = *since
                    .entry(n)
                    .and_modify(|e| {
                        if e.0 != s.term {
                            *e = (s.term, seen_at)
                        }
                    })
                    .or_insert((s.term, seen_at));
                if now.duration_since(at) < fresh {
                    by_term.entry(term).or_default().insert(n);
                }
            }
            first = false;
            if let Some(v) = by_term.into_values().find(|v| v.len() >= needed) {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tracing::info!(base, "no election seen");
        None
    }

    /// [`Move::CrashVoters`]: once the voters of an election are seen,
    /// mutes every other node but `old` (the candidates) and kills and
    /// restarts those voters. A voter that persisted its vote refuses
    /// `old` in that term; one that forgot it may elect `old` too.
    pub(super) async fn crash_voters(
        &mut self,
        old: NodeId,
        watch: (Duration, Duration),
        mode: LinkMode,
    ) {
        let Some(voters) = self.await_voters(&[old], watch).await else {
            return;
        };
        let nodes = self.sut.node_ids();
        let muted: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| *n != old && !voters.contains(n))
            .collect();
        let p = partition::muted(&muted, &nodes, mode);
        self.execute_noted(Action::StartPartition(p), false).await;
        for &v in &voters {
            self.execute_noted(Action::Kill(v), false).await;
        }
        for &v in &voters {
            self.execute_noted(Action::Start(v), false).await;
        }
    }

    /// [`Move::StaleSuffix`]: once the voters of an election on the far
    /// side are seen, the candidates (the new leader, before its first
    /// entry went out) can reach only `holder`, and it only them, for
    /// `relay`: the new leader's first entries overwrite the start of the
    /// holder's uncommitted suffix from `old`. Then the candidates are cut
    /// off and `old` and `holder` can reach everyone left, who cannot
    /// reach each other: one of the two leads the next term, and a holder
    /// that kept the rest of its stale suffix matches `old` at its last
    /// entry while their logs differ before it.
    pub(super) async fn stale_suffix(
        &mut self,
        old: NodeId,
        holder: NodeId,
        watch: (Duration, Duration),
        relay: Duration,
        mode: LinkMode,
    ) {
        let Some(voters) = self.await_voters(&[old, holder], watch).await else {
            return;
        };
        let nodes = self.sut.node_ids();
        let candidates: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| ![old, holder].contains(n) && !voters.contains(n))
            .collect();
        // The candidates and the holder reach each other; the voters'
        // answers, still on their way, reach the candidates.
        let mut pair = candidates.clone();
        pair.push(holder);
        let rest: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !pair.contains(n))
            .collect();
        let p = partition::of_links(
            Shape::OneWay,
            vec![pair.clone(), rest],
            &nodes,
            mode,
            |a, b| {
                (pair.contains(&a) && pair.contains(&b))
                    || (voters.contains(&a) && candidates.contains(&b))
            },
        );
        self.execute_noted(Action::StartPartition(p), false).await;
        tokio::time::sleep(relay).await;
        // Each node left sees `old` and `holder` only (and they each other).
        let groups: Vec<Vec<NodeId>> = nodes
            .iter()
            .filter(|n| ![old, holder].contains(n) && !candidates.contains(n))
            .map(|&n| vec![old, holder, n])
            .collect();
        let p = partition::of_groups(Shape::MajoritiesRing, groups, &nodes, mode);
        self.execute_noted(Action::StartPartition(p), false).await;
    }
}

impl Nemesis {
    /// Each node's log position now (only nodes that answered and report
    /// one).
    async fn logs(&self) -> BTreeMap<NodeId, (RaftRole, LogPosition)> {
        probe_leader(&*self.sut)
            .await
            .statuses
            .into_iter()
            .filter_map(|(n, s)| {
                let s = s.ok()?;
                Some((n, (s.role, s.log?)))
            })
            .collect()
    }

    /// Polls [`Nemesis::logs`] every 2 ms until `seen` finds what it looks
    /// for, or `within` passes (`None`).
    async fn until_logs<T>(
        &self,
        within: Duration,
        seen: impl Fn(&BTreeMap<NodeId, (RaftRole, LogPosition)>) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = seen(&self.logs().await) {
                return Some(t);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// [`super::Move::Figure8`]. Each wait ends after `within` at the
    /// latest; the episode then stops where it is (its heal follows).
    pub(super) async fn figure_eight(&mut self, f: Figure8<NodeId>) {
        let Some(batch) = self.append_batch else {
            tracing::info!("figure-8: the system does not say its append batch; skipped");
            return;
        };
        let nodes = self.sut.node_ids();
        let mut side = vec![f.old];
        side.extend(&f.holders);
        let stall = LinkMode::Stall;
        let p = partition::of_groups(
            Shape::One,
            partition::side_and_rest(&[f.lagger], &nodes),
            &nodes,
            stall,
        );
        self.execute_noted(Action::StartPartition(p), false).await;
        // 1. The lagger falls behind until the old leader's next entries
        // would end the lagger's first batch.
        let lag = self
            .until_logs(f.within, |logs| {
                let (_, old) = logs.get(&f.old)?;
                let (_, lagger) = logs.get(&f.lagger)?;
                (old.last_index + f.short >= lagger.last_index + batch).then_some(lagger.last_index)
            })
            .await;
        let Some(lag) = lag else {
            tracing::info!("figure-8: the lagger did not fall one batch behind");
            return;
        };
        // 2. The old side cut off with its suffix; the rest elect slowly,
        // and their winner's first entry stays on it.
        let slow = LinkMode::Delay {
            latency_ms: f.latency.as_millis() as u64,
            jitter_ms: 0,
        };
        let p = partition::cut_and_slow(&side, &nodes, stall, slow);
        self.execute_noted(Action::StartPartition(p), false).await;
        let Some(voters) = self.await_voters(&side, (f.within, f.latency)).await else {
            return;
        };
        let candidates: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !side.contains(n) && !voters.contains(n))
            .collect();
        let p = partition::of_links(
            Shape::OneWay,
            partition::side_and_rest(&side, &nodes),
            &nodes,
            stall,
            |a, b| {
                let near = |n: NodeId| !side.contains(&n);
                (side.contains(&a) && side.contains(&b))
                    || (near(a) && near(b) && !candidates.contains(&a))
            },
        );
        self.execute_noted(Action::StartPartition(p), false).await;
        // The votes still on their way (one latency) reach the winner.
        tokio::time::sleep(f.latency + Duration::from_millis(20)).await;
        // 3. The old side comes back to the lagger alone, slowly.
        let late = LinkMode::Delay {
            latency_ms: f.delay.as_millis() as u64,
            jitter_ms: 0,
        };
        let mut back = side.clone();
        back.push(f.lagger);
        let p = partition::of_modes(
            Shape::OneWay,
            partition::side_and_rest(&back, &nodes),
            &nodes,
            |a, b| match (side.contains(&a), side.contains(&b)) {
                (true, true) => LinkMode::Pass,
                (true, false) if b == f.lagger => late,
                (false, true) if a == f.lagger => LinkMode::Pass,
                _ => stall,
            },
        );
        self.execute_noted(Action::StartPartition(p), false).await;
        let committed = |logs: &BTreeMap<NodeId, (RaftRole, LogPosition)>| {
            side.iter()
                .filter_map(|n| logs.get(n))
                .map(|(_, l)| l.commit_index)
                .max()
        };
        let base = committed(&self.logs().await);
        let advanced = self
            .until_logs(f.within, |logs| {
                let leads = side
                    .iter()
                    .any(|n| logs.get(n).is_some_and(|(r, _)| *r == RaftRole::Leader));
                (leads && committed(logs) > base).then(|| logs.clone())
            })
            .await;
        // 4. The lagger and the rest only; what the old side still sends
        // the lagger is dropped.
        let p = partition::of_modes(
            Shape::Majority,
            partition::side_and_rest(&side, &nodes),
            &nodes,
            |a, b| match (side.contains(&a), side.contains(&b)) {
                (true, true) | (false, false) => LinkMode::Pass,
                (true, false) if b == f.lagger => LinkMode::Reset,
                _ => stall,
            },
        );
        self.execute_noted(Action::StartPartition(p), false).await;
        let Some(logs) = advanced else {
            tracing::info!("figure-8: the old side did not advance its commit index");
            return;
        };
        let last = |n: &NodeId| logs.get(n).map(|(_, l)| l.last_index);
        tracing::info!(
            lag,
            batch,
            old_last = ?last(&f.old),
            lagger_last = ?last(&f.lagger),
            candidates_last = ?candidates.iter().map(last).collect::<Vec<_>>(),
            commit = ?committed(&logs),
            base = ?base,
            "figure-8: the old side advanced its commit index"
        );
    }
}
