//! The leader's view of one follower's log (etcd's `Progress`).
//!
//! A follower is probed one message at a time until the leader knows where
//! their logs agree; then entries are pipelined (bounded by
//! `max_inflight_msgs`); a follower behind the leader's snapshot gets the
//! snapshot in chunks, one chunk in flight at a time.

use std::collections::VecDeque;

use super::types::Index;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Looking for the point where the logs agree: one AppendEntries at a
    /// time; `paused` until a response (or the next heartbeat) arrives.
    Probe { paused: bool },
    /// The logs agree up to `match_index`: entries are sent optimistically.
    /// `inflight` holds the last index of each unacknowledged message.
    Replicate { inflight: VecDeque<Index> },
    /// Sending the snapshot ending at `index`; `offset` is the next byte
    /// the follower asked for and `sent` whether that chunk is in flight.
    Snapshot {
        index: Index,
        offset: u64,
        sent: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub match_index: Index,
    pub next_index: Index,
    pub state: ProgressState,
    /// Heard from since the last CheckQuorum sweep.
    pub recent_active: bool,
    /// Highest heartbeat round the follower echoed back this term.
    pub acked_round: u64,
    /// `match_index` at the previous heartbeat, to detect a stalled pipeline
    /// (a lost AppendEntries in `Replicate`).
    pub match_at_heartbeat: Index,
}

impl Progress {
    pub fn new(next_index: Index) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            recent_active: false,
            acked_round: 0,
            match_at_heartbeat: 0,
        }
    }

    pub fn become_probe(&mut self) {
        self.next_index = self.next_index.max(self.match_index + 1);
        self.state = ProgressState::Probe { paused: false };
    }

    pub fn become_replicate(&mut self) {
        self.next_index = self.match_index + 1;
        self.state = ProgressState::Replicate {
            inflight: VecDeque::new(),
        };
    }

    /// Whether another AppendEntries may be sent now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match &self.state {
            ProgressState::Probe { paused } => !paused,
            ProgressState::Replicate { inflight } => inflight.len() < max_inflight,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records an acknowledged match; returns whether it advanced.
    pub fn update_match(&mut self, index: Index) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index + 1);
        if let ProgressState::Replicate { inflight } = &mut self.state {
            while inflight.front().is_some_and(|&i| i <= index) {
                inflight.pop_front();
            }
        }
        if let ProgressState::Probe { paused } = &mut self.state {
            *paused = false;
        }
        advanced
    }
}
