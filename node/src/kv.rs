//! The replicated key-value state machine: string keys and values, `put` and
//! compare-and-set. Commands are encoded here (bincode) and travel through the
//! Raft log as opaque bytes, so the core never needs to know about them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// A state-changing command as stored in a log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put {
        key: String,
        value: String,
    },
    /// Set `key` to `to` only if its current value is `from` (`None` = absent).
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("serializing a command into memory cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, KvError> {
        bincode::deserialize(bytes).map_err(|e| KvError::BadCommand(e.to_string()))
    }
}

/// What applying one command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Done,
    /// A CAS whose `from` did not match; carries the value actually found.
    Precondition {
        current: Option<String>,
    },
}

#[derive(Debug, Error)]
pub enum KvError {
    #[error("undecodable command: {0}")]
    BadCommand(String),
    #[error("undecodable snapshot: {0}")]
    BadSnapshot(String),
}

/// The in-memory map. Deterministic: the same commands in the same order give
/// the same map and the same snapshot bytes on every node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    map: BTreeMap<String, String>,
}

impl Kv {
    pub fn new() -> Kv {
        Kv::default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn apply(&mut self, cmd: Command) -> ApplyOutcome {
        match cmd {
            Command::Put { key, value } => {
                self.map.insert(key, value);
                ApplyOutcome::Done
            }
            Command::Cas { key, from, to } => {
                let current = self.map.get(&key);
                if current == from.as_ref() {
                    self.map.insert(key, to);
                    ApplyOutcome::Done
                } else {
                    ApplyOutcome::Precondition {
                        current: current.cloned(),
                    }
                }
            }
        }
    }

    /// Serializes the whole map (the snapshot's opaque `data`).
    pub fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&self.map).expect("serializing a map into memory cannot fail")
    }

    /// Replaces the map with a snapshot's contents.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), KvError> {
        self.map = if data.is_empty() {
            BTreeMap::new()
        } else {
            bincode::deserialize(data).map_err(|e| KvError::BadSnapshot(e.to_string()))?
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Command {
        Command::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn cas_swaps_only_when_from_matches() {
        let mut kv = Kv::new();
        let cas = |from: Option<&str>, to: &str| Command::Cas {
            key: "k".into(),
            from: from.map(String::from),
            to: to.into(),
        };
        assert_eq!(kv.apply(cas(None, "a")), ApplyOutcome::Done);
        assert_eq!(
            kv.apply(cas(None, "b")),
            ApplyOutcome::Precondition {
                current: Some("a".into())
            }
        );
        assert_eq!(kv.apply(cas(Some("a"), "b")), ApplyOutcome::Done);
        assert_eq!(kv.get("k"), Some("b"));
    }

    #[test]
    fn commands_and_snapshots_round_trip() {
        let mut kv = Kv::new();
        for (i, c) in [put("x", "1"), put("y", "2"), put("x", "3")]
            .into_iter()
            .enumerate()
        {
            let bytes = c.encode();
            assert_eq!(Command::decode(&bytes).unwrap(), c, "command {i}");
            kv.apply(c);
        }
        let mut other = Kv::new();
        other.apply(put("stale", "z"));
        other.restore(&kv.snapshot()).unwrap();
        assert_eq!(other, kv);
        assert_eq!(other.get("x"), Some("3"));
        assert!(other.restore(&[0xff; 3]).is_err());
        assert!(Command::decode(&[0xff]).is_err());
    }
}
