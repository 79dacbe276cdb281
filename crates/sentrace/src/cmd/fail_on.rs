//! `--fail-on SEVERITY` for the commands that report findings (`scan`, `detect`): exit
//! status 1 when any finding is at or above the severity, so a CI step can gate on it.

use std::process::ExitCode;

/// A finding severity, in OCSF's order.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// OCSF severity_id 1.
    Informational = 1,
    /// OCSF severity_id 2.
    Low = 2,
    /// OCSF severity_id 3.
    Medium = 3,
    /// OCSF severity_id 4.
    High = 4,
    /// OCSF severity_id 5.
    Critical = 5,
}

/// Counts the findings at or above a threshold.
#[derive(Debug, Default)]
pub struct Threshold {
    at: Option<Severity>,
    hits: u64,
}

impl Threshold {
    /// No threshold when `at` is None: the exit status is 0 whatever is found.
    pub fn new(at: Option<Severity>) -> Self {
        Self { at, hits: 0 }
    }

    /// Takes one OCSF finding into account (its `severity_id`).
    pub fn see(&mut self, ocsf: &serde_json::Value) {
        let Some(at) = self.at else { return };
        if ocsf["severity_id"].as_u64().unwrap_or(0) >= at as u64 {
            self.hits += 1;
        }
    }

    /// 1 when a finding reached the threshold, else 0; says so on standard error.
    pub fn exit_code(&self, command: &str) -> ExitCode {
        match self.at {
            Some(at) if self.hits > 0 => {
                let name = clap::ValueEnum::to_possible_value(&at)
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default();
                eprintln!(
                    "sentrace {command}: {} finding(s) at or above {name} severity (--fail-on)",
                    self.hits
                );
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_or_above() {
        let mut t = Threshold::new(Some(Severity::High));
        t.see(&serde_json::json!({"severity_id": 3}));
        assert_eq!(t.hits, 0);
        t.see(&serde_json::json!({"severity_id": 4}));
        t.see(&serde_json::json!({"severity_id": 5}));
        assert_eq!(t.hits, 2);
        let mut none = Threshold::new(None);
        none.see(&serde_json::json!({"severity_id": 5}));
        assert_eq!(none.hits, 0);
    }
}
