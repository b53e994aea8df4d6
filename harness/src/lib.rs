//! A Jepsen-style chaos harness for Raft clusters.
//!
//! `harness run` starts real node processes behind a proxy mesh, drives
//! seeded client workloads at them while a nemesis injects faults, records
//! everything in a history, then checks linearizability and Raft safety and
//! exits with the verdict. The modules follow the data flow of one run
//! (the files it leaves: docs/formats.md): [`store`] (results folder) →
//! [`systems`] (the seam every system under test implements: our node,
//! etcd; its status poller) on [`cluster`] (processes) and [`proxy`] →
//! [`generator`] with the system's [`client`], and [`nemesis`] →
//! [`history`] → checkers (the `checker` crate) and [`stats`] →
//! [`report`], orchestrated by [`run`]; [`cli`] holds the flags and
//! [`bench`] the benchmark.

pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod generator;
pub mod history;
pub mod minimal;
pub mod nemesis;
pub mod progress;
pub mod proxy;
pub mod replay;
pub mod report;
pub mod resources;
pub mod run;
pub mod selftest;
pub mod stats;
pub mod store;
pub mod suite;
pub mod systems;
