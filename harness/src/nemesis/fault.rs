//! The fault kinds, in one place: what `--nemesis` calls each, the history
//! `f` of a fault and of its undo (Jepsen's names), the label reports give
//! it, and how a history event is read back as the start or the end of one.
//! Everything else (the schedule, the nemesis, the recorder's statistics,
//! the report's bands, the capabilities of a system) asks this module.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A fault family of `--nemesis`: each has a fault and an undo.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// `kill -9` of a node's process group; undone by starting it on its data.
    Kill,
    /// SIGSTOP of a node's process group; undone by SIGCONT.
    Pause,
    /// Cut links between groups of nodes; undone by healing every link.
    Partition,
    /// Remove a node from the configuration; undone by adding it back.
    Member,
}

/// Whether a history event starts a fault or ends one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Starts,
    Ends,
}

impl FaultKind {
    /// Every kind, in the order `--nemesis all` lists them.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Member,
    ];

    /// The name in `--nemesis`, `test.json` and the statistics.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Member => "member",
        }
    }

    /// The history `f` of the fault.
    pub fn fault_f(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "start-partition",
            FaultKind::Member => "remove-member",
        }
    }

    /// The history `f` of its undo.
    pub fn undo_f(self) -> &'static str {
        match self {
            FaultKind::Kill => "start",
            FaultKind::Pause => "resume",
            FaultKind::Partition => "stop-partition",
            FaultKind::Member => "add-member",
        }
    }

    /// How a report labels a fault of this kind on `nodes` (`kill n2`,
    /// `removed n3`); partitions are labelled by their groups instead.
    pub fn label(self, nodes: &str) -> String {
        match self {
            FaultKind::Member => format!("removed {nodes}"),
            _ => format!("{} {nodes}", self.name()),
        }
    }

    /// Which kind a history event `f` starts or ends. Our own names first,
    /// then the ones Jepsen's nemeses write (`crash`, `heal`, …), so that
    /// foreign histories read the same way.
    pub fn of_event(f: &str) -> Option<(FaultKind, Edge)> {
        let hit = FaultKind::ALL.into_iter().find_map(|k| {
            if f == k.fault_f() {
                Some((k, Edge::Starts))
            } else if f == k.undo_f() {
                Some((k, Edge::Ends))
            } else {
                None
            }
        });
        hit.or(match f {
            "crash" => Some((FaultKind::Kill, Edge::Starts)),
            "restart" | "recover" => Some((FaultKind::Kill, Edge::Ends)),
            "stop" => Some((FaultKind::Pause, Edge::Starts)),
            "cont" => Some((FaultKind::Pause, Edge::Ends)),
            "partition" => Some((FaultKind::Partition, Edge::Starts)),
            "heal" => Some((FaultKind::Partition, Edge::Ends)),
            _ => None,
        })
    }

    /// Parses `--nemesis`: a comma list of kinds, or `all`, or `none`.
    /// Duplicates are ignored.
    pub fn parse_list(s: &str) -> Result<FaultKinds, String> {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => set.extend(FaultKind::ALL),
                "none" => {}
                _ => {
                    let k = FaultKind::ALL
                        .into_iter()
                        .find(|k| k.name() == part)
                        .ok_or_else(|| {
                            format!(
                                "unknown fault {part:?} (expected a comma list of {}, or all, or none)",
                                names(&FaultKind::ALL)
                            )
                        })?;
                    set.insert(k);
                }
            }
        }
        Ok(FaultKinds(set))
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `kill, pause, partition`.
pub fn names(kinds: &[FaultKind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parsed `--nemesis` value: a set of kinds (empty = none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultKinds(pub BTreeSet<FaultKind>);

impl FaultKinds {
    /// Every kind.
    pub fn all() -> Self {
        FaultKinds(FaultKind::ALL.into_iter().collect())
    }

    /// How test names and printouts say it: `none`, `all`, or `kill+pause`.
    pub fn short_name(&self) -> String {
        match self.0.len() {
            0 => "none".into(),
            n if n == FaultKind::ALL.len() => "all".into(),
            _ => self
                .0
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }

    /// The names, in order (`test.json`'s `nemesis`).
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|k| k.name().to_string()).collect()
    }

    pub fn contains(&self, k: FaultKind) -> bool {
        self.0.contains(&k)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which nodes faults hit (`--nemesis-targets`, Jepsen's target names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Targets {
    /// The nodes the seeded schedule picked.
    #[default]
    One,
    /// The current leader, whenever the schedule's gates allow it.
    Primaries,
}

impl Targets {
    pub fn name(self) -> &'static str {
        match self {
            Targets::One => "one",
            Targets::Primaries => "primaries",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_accept_all_none_and_names() {
        assert_eq!(FaultKind::parse_list("all").unwrap(), FaultKinds::all());
        assert!(FaultKind::parse_list("none").unwrap().is_empty());
        assert_eq!(
            FaultKind::parse_list("kill, partition,kill")
                .unwrap()
                .names(),
            vec!["kill", "partition"]
        );
        let e = FaultKind::parse_list("kill,explode").unwrap_err();
        assert!(e.contains("unknown fault \"explode\""), "{e}");
    }

    #[test]
    fn every_fault_and_undo_reads_back_as_its_kind() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::of_event(k.fault_f()), Some((k, Edge::Starts)));
            assert_eq!(FaultKind::of_event(k.undo_f()), Some((k, Edge::Ends)));
        }
        assert_eq!(
            FaultKind::of_event("heal"),
            Some((FaultKind::Partition, Edge::Ends))
        );
        assert_eq!(FaultKind::of_event("cas"), None);
    }

    #[test]
    fn short_names_say_none_all_or_the_kinds() {
        assert_eq!(FaultKinds::default().short_name(), "none");
        assert_eq!(FaultKinds::all().short_name(), "all");
        assert_eq!(
            FaultKind::parse_list("partition,kill")
                .unwrap()
                .short_name(),
            "kill+partition"
        );
    }
}
