//! A Jepsen-style chaos harness for Raft clusters.
//!
//! `harness run` starts real node processes behind a proxy mesh, drives
//! seeded client workloads at them while a nemesis injects faults, records
//! everything in a history, then checks linearizability and Raft safety and
//! exits with the verdict. The modules follow the data flow of
//! `DESIGN.md`: [`store`] (results folder) → cluster → [`generator`] with
//! [`client`] and the nemesis → [`history`] → checkers and [`stats`] →
//! results, orchestrated by [`run`].

pub mod history;
pub mod client;
pub mod generator;
pub mod stats;
pub mod store;
pub mod cli;
pub mod progress;
pub mod cluster;
pub mod nemesis;
pub mod proxy;
pub mod report;
pub mod bench;
pub mod run;
