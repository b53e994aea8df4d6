//! Small deterministic helpers shared by the command-level and paper tests:
//! cores with a fixed election timeout, and a synchronous network that pumps
//! messages until the cluster is quiet (tikv/raft-rs `Network` style), with
//! isolated nodes and cut links.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use node::raft::{
    Config, Entry, EntryPayload, HardState, Index, Membership, Message, NodeId, Persisted, Raft,
    Role,
};

/// Election timeout is exactly 10 ticks (the range `[10, 11)`), heartbeat 2,
/// lease 8: tests can count ticks.
pub fn config(id: NodeId, pre_vote: bool, check_quorum: bool) -> Config {
    let mut c = Config::new(id);
    c.election_ticks_min = 10;
    c.election_ticks_max = 11;
    c.heartbeat_ticks = 2;
    c.lease_ticks = 8;
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    c.max_entries_per_msg = 100;
    c.max_inflight_msgs = 8;
    c.snapshot_chunk_bytes = 4;
    c
}

pub fn node(id: NodeId, voters: &[NodeId], pre_vote: bool, check_quorum: bool) -> Raft {
    let persisted = Persisted {
        initial_membership: Membership::new(voters.iter().copied()),
        ..Persisted::default()
    };
    Raft::new(config(id, pre_vote, check_quorum), persisted, id)
}

/// A node restored with the given term and log (entries from index 1).
pub fn node_with_log(id: NodeId, voters: &[NodeId], term: u64, terms: &[u64], cq: bool) -> Raft {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry {
            term: t,
            index: i as u64 + 1,
            payload: EntryPayload::Command(vec![i as u8]),
        })
        .collect();
    let persisted = Persisted {
        hard_state: HardState { term, vote: None },
        snapshot: None,
        entries,
        initial_membership: Membership::new(voters.iter().copied()),
    };
    Raft::new(config(id, false, cq), persisted, id)
}

pub fn noop(term: u64, index: Index) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Noop,
    }
}

/// An in-memory cluster pumped synchronously. Every `Ready` is handled in
/// the runtime's order; applied entries are recorded per node.
pub struct Net {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<(u64, Index)>>,
    /// Every message delivered, for tests that count round trips.
    pub delivered: Vec<Message>,
    queue: Vec<Message>,
}

impl Net {
    pub fn new(ids: &[NodeId], pre_vote: bool, check_quorum: bool) -> Net {
        let nodes = ids
            .iter()
            .map(|&i| (i, node(i, ids, pre_vote, check_quorum)))
            .collect();
        Net::from_nodes(nodes)
    }

    pub fn from_nodes(nodes: BTreeMap<NodeId, Raft>) -> Net {
        Net {
            nodes,
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            delivered: Vec::new(),
            queue: Vec::new(),
        }
    }

    pub fn isolate(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for o in ids {
            if o != id {
                self.cut.insert((id, o));
                self.cut.insert((o, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn raft(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Collects output of every node into the queue (persist is implicit).
    fn collect(&mut self) {
        for (id, r) in self.nodes.iter_mut() {
            if !r.has_ready() {
                continue;
            }
            let rd = r.ready();
            self.queue.extend(rd.messages);
            self.applied.entry(*id).or_default().extend(rd.committed);
            self.read_states
                .entry(*id)
                .or_default()
                .extend(rd.read_states.iter().map(|s| (s.ctx, s.index)));
            r.advance();
        }
    }

    /// Delivers messages until none is left.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            self.collect();
            if self.queue.is_empty() {
                return;
            }
            let msgs = std::mem::take(&mut self.queue);
            for m in msgs {
                if self.cut.contains(&(m.from, m.to)) {
                    continue;
                }
                if let Some(r) = self.nodes.get_mut(&m.to) {
                    self.delivered.push(m.clone());
                    r.step(m);
                }
            }
        }
        panic!("network did not quiesce");
    }

    /// Ticks every node `n` times, pumping after each tick.
    pub fn tick(&mut self, n: usize) {
        for _ in 0..n {
            for r in self.nodes.values_mut() {
                r.tick();
            }
            self.pump();
        }
    }

    /// Ticks only `id`, pumping after each tick.
    pub fn tick_node(&mut self, id: NodeId, n: usize) {
        for _ in 0..n {
            self.raft(id).tick();
            self.pump();
        }
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, r)| r.status().role == Role::Leader)
            .map(|(i, _)| *i)
            .collect()
    }

    /// Makes `id` leader by letting only it time out. Under CheckQuorum the
    /// others still honour a (boot-time) lease and ignore it, so it is then
    /// nudged with a TimeoutNow, the message a leadership transfer uses.
    pub fn elect(&mut self, id: NodeId) {
        self.tick_node(id, 10);
        if self.raft(id).status().role != Role::Leader {
            let st = self.raft(id).status();
            let from = *self.nodes.keys().find(|&&o| o != id).expect("a peer");
            let body = node::raft::MessageBody::TimeoutNow;
            self.raft(id).step(Message {
                from,
                to: id,
                term: st.term,
                body,
            });
            self.pump();
        }
        assert_eq!(
            self.raft(id).status().role,
            Role::Leader,
            "node {id} should have won"
        );
    }

    pub fn applied_commands(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied
            .get(&id)
            .map(|v| {
                v.iter()
                    .filter_map(|e| match &e.payload {
                        EntryPayload::Command(d) => Some(d.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
