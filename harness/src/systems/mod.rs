//! Building blocks for foreign systems under test: launching their
//! processes, talking to their client APIs and reading their Raft state.

pub mod etcd;
