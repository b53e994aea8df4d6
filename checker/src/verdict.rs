//! What the decision procedures report back: the verdict of one part, the
//! violation it found, and the verdict of the whole history with how the
//! work was split. These types sit below the procedures
//! ([`graph`](crate::graph), [`search`](crate::search)), the orchestration
//! ([`linear`](crate::linear)) and the report ([`report`](crate::report)),
//! so that each of those depends only downward.

/// A violation found in one part, with what a person needs to follow it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub key: Option<u32>,
    /// History op indices of the smallest window that cannot be linearized.
    pub window: Vec<u32>,
    /// History op indices linearized before getting stuck (the longest linearizable prefix).
    pub prefix: Vec<u32>,
    /// The op that could not be placed.
    pub stuck: Option<u32>,
    /// The states it could have seen (rendered).
    pub states: Vec<serde_json::Value>,
    pub explanation: String,
    /// History op indices outside the window that the explanation relies on.
    pub witnesses: Vec<u32>,
    /// Which procedure found it: "graph" or "search".
    pub found_by: &'static str,
}

/// Result of one part.
#[derive(Debug, Clone)]
pub enum PartOutcome {
    Valid,
    Invalid(Box<Failure>),
    /// No verdict; `retry` when only a time slice (not the budget) ran out.
    Unknown {
        reason: String,
        retry: bool,
    },
}

/// The linearizability verdict of a whole history (the first violation, or
/// else the first part without a verdict), with how the check was split.
#[derive(Debug, Clone)]
pub struct HistoryVerdict {
    pub verdict: PartOutcome,
    pub parts: usize,
    pub windows: usize,
    pub graph_parts: usize,
    pub search_parts: usize,
    /// For a valid history: the `info` ops (indices) its linearization
    /// placed, as far as the search tells (a part the graph decided
    /// places no `info` op nobody read).
    pub placed: Vec<u32>,
}
