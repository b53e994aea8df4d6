//! `--system-opt KEY=VALUE`: settings that belong to one system (our
//! node's pre-vote, etcd's heartbeat interval), declared by the system as
//! [`OptSpec`]s and checked against them before anything starts.

use std::collections::BTreeMap;

use super::{Descriptor, SystemError};

/// One option a system takes.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub key: &'static str,
    /// What the value looks like, for `--help` (`BOOL`, `MS`, `MIN-MAX`).
    pub value: &'static str,
    /// The value used when the option is not given, as `--help` shows it.
    pub default: &'static str,
    pub help: &'static str,
}

/// The `--system-opt`s of a run, one value per key (a later one replaces
/// an earlier one), keys checked against the system's [`OptSpec`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemOpts {
    system: &'static str,
    values: BTreeMap<String, String>,
}

/// Parses one `KEY=VALUE` (clap's value parser of `--system-opt`).
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// A boolean `--system-opt` value as every system reads it.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

impl SystemOpts {
    /// Checks every key against `system`'s options.
    pub fn new(system: &Descriptor, pairs: &[(String, String)]) -> Result<Self, SystemError> {
        let mut values = BTreeMap::new();
        for (k, v) in pairs {
            if !system.options.iter().any(|o| o.key == k) {
                let known: Vec<&str> = system.options.iter().map(|o| o.key).collect();
                return Err(SystemError::Option(format!(
                    "{} has no option {k:?} (--system-opt takes {} for {}; see harness run --help)",
                    system.name,
                    if known.is_empty() {
                        "nothing".to_string()
                    } else {
                        known.join(", ")
                    },
                    system.name
                )));
            }
            values.insert(k.clone(), v.clone());
        }
        Ok(SystemOpts {
            system: system.name,
            values,
        })
    }

    /// The value given for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn bad(&self, key: &str, value: &str, expected: &str) -> SystemError {
        SystemError::Option(format!(
            "--system-opt {key}={value} for {}: expected {expected}",
            self.system
        ))
    }

    /// A boolean (`true`/`false`, `on`/`off`, `yes`/`no`), or `default`.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, SystemError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| self.bad(key, v, "true or false")),
        }
    }

    /// A positive integer (milliseconds, counts), or `default`.
    pub fn positive(&self, key: &str, default: u64) -> Result<u64, SystemError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.bad(key, v, "a positive integer")),
            },
        }
    }

    /// `MIN-MAX` with `0 < MIN <= MAX`, or `default`.
    pub fn range(&self, key: &str, default: (u64, u64)) -> Result<(u64, u64), SystemError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let parsed = v
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        match parsed {
            Some((a, b)) if a > 0 && a <= b => Ok((a, b)),
            _ => Err(self.bad(key, v, "MIN-MAX in milliseconds, e.g. 150-300")),
        }
    }

    /// A comma list (empty when not given).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A value checked by `parse`, whose error says what was expected.
    pub fn parsed<T>(
        &self,
        key: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, SystemError> {
        parse(value).map_err(|e| self.bad(key, value, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::SystemKind;
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<SystemOpts, SystemError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SystemOpts::new(SystemKind::RaftNode.descriptor(), &pairs)
    }

    #[test]
    fn keys_are_checked_and_values_parsed() {
        let o = opts(&[("pre-vote", "off"), ("election-timeout", "200-400")]).unwrap();
        assert!(!o.bool("pre-vote", true).unwrap());
        assert!(o.bool("check-quorum", true).unwrap());
        assert_eq!(o.range("election-timeout", (1, 2)).unwrap(), (200, 400));
        let e = opts(&[("frobnicate", "1")]).unwrap_err().to_string();
        assert!(e.contains("raft-node has no option \"frobnicate\""), "{e}");
        assert!(e.contains("pre-vote"), "{e}");
        let o = opts(&[("heartbeat", "0")]).unwrap();
        let e = o.positive("heartbeat", 50).unwrap_err().to_string();
        assert!(e.contains("heartbeat=0") && e.contains("positive"), "{e}");
    }

    #[test]
    fn pairs_need_an_equals_sign() {
        assert_eq!(
            parse_pair("bug=a,b").unwrap(),
            ("bug".to_string(), "a,b".to_string())
        );
        assert!(parse_pair("pre-vote").is_err());
        assert!(parse_pair("=1").is_err());
    }
}
