//! What a system can take, declared once, checked before a run starts.

use workloads::WorkloadKind;

use super::SystemError;
use crate::client::ReadConsistency;
use crate::nemesis::fault::{self, FaultKind, FaultKinds};

/// A system's capabilities (see [`super::Descriptor`]).
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// The fault kinds its [`super::Cluster`] can inject and undo.
    pub faults: &'static [FaultKind],
    /// The read levels its client serves, each with the system's own name
    /// for it (etcd serves `stale` as a serializable range).
    pub reads: &'static [(ReadConsistency, &'static str)],
    /// The workloads its client speaks.
    pub workloads: &'static [WorkloadKind],
    /// Whether its nodes write Raft traces (`nodes/nN/trace.jsonl`), which
    /// the Raft-safety checker reads next to the polled observations.
    pub traces: bool,
    /// Whether the harness can change a node's clock (its rate, jumps):
    /// [`super::Cluster::set_clock`], for the `clock` nemesis package.
    pub clock: bool,
    /// Whether its [`super::Cluster`] takes membership changes asked for at
    /// once, the second before the first is answered (the `member-overlap`
    /// and `member-learners` packages). Our node answers each on its own
    /// (a second change while one is pending is refused and retried);
    /// etcd's addition replaces the member's process and data, which the
    /// harness does one member at a time.
    pub concurrent_members: bool,
    /// Fault kinds of `faults` the system takes only when a boolean
    /// `--system-opt` is true (a Maelstrom node is killed only if it keeps
    /// its state: `(Kill, "persistent")`).
    pub gated: &'static [(FaultKind, &'static str)],
    /// The most log entries its leader sends a follower in one message,
    /// where known and fixed: the `figure-8` package makes a follower lag
    /// by about that much, so that the first message it gets from a
    /// returning leader ends inside that leader's old-term suffix.
    pub append_batch: Option<u64>,
}

/// What a run asks of a system.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub faults: &'a FaultKinds,
    pub reads: ReadConsistency,
    pub workload: WorkloadKind,
}

impl Capabilities {
    /// The fault kinds it takes with these `--system-opt`s (what a plain
    /// `--nemesis` default narrows to).
    pub fn faults_with(&self, opts: &[(String, String)]) -> Vec<FaultKind> {
        let on = |key: &str| {
            opts.iter()
                .rev()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| super::opts::parse_bool(v))
                .unwrap_or(false)
        };
        self.faults
            .iter()
            .copied()
            .filter(|k| self.gated.iter().all(|(g, key)| g != k || on(key)))
            .collect()
    }

    /// Refuses a request the system cannot take, with a sentence that says
    /// what it supports.
    pub fn check(&self, system: &str, want: &Request<'_>) -> Result<(), SystemError> {
        let missing: Vec<FaultKind> = want
            .faults
            .0
            .iter()
            .copied()
            .filter(|k| !self.faults.contains(k))
            .collect();
        if !missing.is_empty() {
            return Err(SystemError::Unsupported(format!(
                "{system} cannot take the {} fault{}: --nemesis takes {} for {system}",
                fault::names(&missing),
                if missing.len() == 1 { "" } else { "s" },
                self.fault_list()
            )));
        }
        if !self.reads.iter().any(|(r, _)| *r == want.reads) {
            return Err(SystemError::Unsupported(format!(
                "{system} has no {} reads: --read-consistency takes {} for {system}",
                want.reads,
                self.read_list()
            )));
        }
        if !self.workloads.contains(&want.workload) {
            return Err(SystemError::Unsupported(format!(
                "{system} does not speak the {} workload: -w takes {} for {system}",
                want.workload.name(),
                self.workload_list()
            )));
        }
        Ok(())
    }

    /// The system's own name for a read level it serves.
    pub fn read_name(&self, level: ReadConsistency) -> Option<&'static str> {
        self.reads
            .iter()
            .find(|(r, _)| *r == level)
            .map(|(_, name)| *name)
    }

    fn fault_list(&self) -> String {
        if self.faults.is_empty() {
            "only none".into()
        } else {
            format!("{}, all or none", fault::names(self.faults))
        }
    }

    fn read_list(&self) -> String {
        self.reads
            .iter()
            .map(|(r, name)| {
                if r.name() == *name {
                    r.name().to_string()
                } else {
                    format!("{} ({name})", r.name())
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn workload_list(&self) -> String {
        self.workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line for `--help`.
    pub fn summary(&self) -> String {
        format!(
            "--nemesis {}; --read-consistency {}; -w {}; {}",
            fault::names(self.faults),
            self.read_list(),
            self.workload_list(),
            if self.traces {
                "writes Raft traces"
            } else {
                "no traces (election safety from polled status)"
            }
        )
    }

    /// `--nemesis all` for this system: every kind it supports.
    pub fn all_faults(&self) -> FaultKinds {
        FaultKinds(self.faults.iter().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOME: Capabilities = Capabilities {
        faults: &[FaultKind::Kill, FaultKind::Partition],
        reads: &[
            (ReadConsistency::Linearizable, "linearizable"),
            (ReadConsistency::Stale, "serializable"),
        ],
        workloads: &[WorkloadKind::Register],
        traces: false,
        clock: false,
        concurrent_members: false,
        gated: &[],
        append_batch: None,
    };

    #[test]
    fn refusals_say_what_is_supported() {
        let faults = FaultKind::parse_list("kill,member").unwrap();
        let mut want = Request {
            faults: &faults,
            reads: ReadConsistency::Linearizable,
            workload: WorkloadKind::Register,
        };
        let e = SOME.check("x", &want).unwrap_err().to_string();
        assert_eq!(
            e,
            "x cannot take the member fault: --nemesis takes kill, partition, all or none for x"
        );
        let ok = FaultKind::parse_list("partition").unwrap();
        want.faults = &ok;
        want.reads = ReadConsistency::Lease;
        let e = SOME.check("x", &want).unwrap_err().to_string();
        assert_eq!(
            e,
            "x has no lease reads: --read-consistency takes linearizable, stale (serializable) for x"
        );
        want.reads = ReadConsistency::Stale;
        assert!(SOME.check("x", &want).is_ok());
        want.workload = WorkloadKind::Kv;
        let e = SOME.check("x", &want).unwrap_err().to_string();
        assert!(e.contains("-w takes register for x"), "{e}");
    }
}
