//! Leader-side bookkeeping for linearizable reads (Raft paper §8).
//!
//! Every message a leader sends carries its current heartbeat *round*; a
//! follower echoes it back. A round is confirmed once a majority of voters
//! echoed it (or a later one): at the moment they answered, the leader was
//! still their leader.
//!
//! * ReadIndex: a read records the commit index and the first round started
//!   after the request; it is answered once that round is confirmed.
//! * Lease: a confirmed round that started at leader tick `t` proves no other
//!   leader can be elected before `t + election_ticks_min` (followers refuse
//!   votes for that long after hearing from a leader), so the leader may serve
//!   reads locally until `t + lease_ticks` with `lease_ticks < election_ticks_min`.
//!   This assumes only that all nodes' tick clocks run at about the same rate
//!   (bounded drift, absorbed by the gap between the two timeouts), never that
//!   the clocks agree on the time.

use std::collections::VecDeque;

use super::types::{Index, ReadState};

#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// Pending ReadIndex requests: (ctx, read index, round that must be confirmed).
    pending: VecDeque<(u64, Index, u64)>,
    /// Start tick of each round not yet confirmed by a majority (ascending).
    round_starts: VecDeque<(u64, u64)>,
    /// Start tick of the latest confirmed round.
    pub lease_start: Option<u64>,
    /// Highest round confirmed by a majority.
    pub confirmed_round: u64,
}

impl ReadOnly {
    pub fn start_round(&mut self, round: u64, tick: u64) {
        self.round_starts.push_back((round, tick));
    }

    pub fn add_request(&mut self, ctx: u64, index: Index, round: u64) {
        self.pending.push_back((ctx, index, round));
    }

    /// A majority has echoed `round` or later: release the reads waiting for
    /// it and extend the lease.
    pub fn confirm(&mut self, round: u64) -> Vec<ReadState> {
        if round <= self.confirmed_round {
            return Vec::new();
        }
        self.confirmed_round = round;
        while let Some(&(r, t)) = self.round_starts.front() {
            if r > round {
                break;
            }
            self.lease_start = Some(self.lease_start.map_or(t, |s| s.max(t)));
            self.round_starts.pop_front();
        }
        let mut out = Vec::new();
        while let Some(&(ctx, index, r)) = self.pending.front() {
            if r > round {
                break;
            }
            out.push(ReadState { ctx, index });
            self.pending.pop_front();
        }
        out
    }

    /// Leadership lost: every pending read is dropped, the lease is gone.
    pub fn reset(&mut self) -> Vec<u64> {
        self.round_starts.clear();
        self.lease_start = None;
        self.confirmed_round = 0;
        self.pending.drain(..).map(|(ctx, _, _)| ctx).collect()
    }
}
