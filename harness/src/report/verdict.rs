//! A verdict as the report and the index show it: a checker's or the
//! run's, read from `results.json`.

use checker::Validity;
use serde_json::Value;

use crate::store::RunResults;

/// The verdict of a checker or of the run, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    Error,
    Missing,
}

impl Verdict {
    pub fn from_value(v: Option<&Value>) -> Verdict {
        match v {
            Some(Value::Bool(true)) => Verdict::Valid,
            Some(Value::Bool(false)) => Verdict::Invalid,
            Some(Value::String(s)) if s == "unknown" => Verdict::Unknown,
            Some(Value::String(s)) if s == "true" || s == "valid" => Verdict::Valid,
            Some(Value::String(s)) if s == "false" || s == "invalid" => Verdict::Invalid,
            Some(Value::Null) | None => Verdict::Missing,
            Some(_) => Verdict::Unknown,
        }
    }

    /// The run's verdict from `results.json` (a harness error wins).
    pub fn of_results(results: Option<&RunResults>) -> Verdict {
        let Some(r) = results else {
            return Verdict::Missing;
        };
        if r.error.is_some() {
            return Verdict::Error;
        }
        match r.valid {
            Some(Validity::Valid) => Verdict::Valid,
            Some(Validity::Invalid) => Verdict::Invalid,
            Some(Validity::Unknown) => Verdict::Unknown,
            None => Verdict::Missing,
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Verdict::Valid => "v-valid",
            Verdict::Invalid => "v-invalid",
            Verdict::Unknown => "v-unknown",
            Verdict::Error => "v-error",
            Verdict::Missing => "v-missing",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "INVALID",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
            Verdict::Missing => "no verdict",
        }
    }

    pub fn badge(self) -> String {
        format!(
            "<span class=\"badge {}\">{}</span>",
            self.class(),
            self.text()
        )
    }
}
