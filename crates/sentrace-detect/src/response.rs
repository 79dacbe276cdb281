//! Automated response: a policy (data) that maps findings to actions, and a pure evaluator.
//!
//! The server carries the actions out, audits them and can undo them; this module only
//! decides. Format (TOML):
//!
//! ```toml
//! format = 1
//! [[rule]]
//! id = "contain-confirmed-injection"   # stable id, shown in the audit log
//! families = ["sqli", "cmdi"]          # optional; any of these families
//! rule_ids = []                        # optional; any of these detection rule ids
//! kinds = ["correlated"]               # optional; payload | correlated | behavioral
//! min_severity = "high"                # optional
//! min_confidence = 90                  # optional, 0..=100
//! actions = [
//!   { type = "tag_trace" },                                       # tag with rule and family
//!   { type = "keep_source", subject = "client_address", ttl_secs = 86400 },
//!   { type = "throttle", subject = "client_address", rate_per_sec = 5, ttl_secs = 3600 },
//!   { type = "quarantine", subject = "principal", ttl_secs = 3600 },
//!   { type = "webhook", name = "waf-block" },
//! ]
//! ```
//!
//! A rule matches when every condition it sets holds. Every matching rule contributes its
//! actions; identical actions are merged (the longest expiry wins).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sentrace_core::TraceId;

use crate::finding::Finding;
use crate::rules::{Family, RuleKind, RulesError, Severity};

/// The default response policy shipped with the binary.
pub const DEFAULT_RESPONSE_POLICY_TOML: &str = include_str!("../rules/response.toml");
/// Longest action lifetime: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// Most rules in one policy.
pub const MAX_RESPONSE_RULES: usize = 500;

/// Which identity of a finding an action targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The request's client address.
    ClientAddress,
    /// The request's end user.
    User,
    /// The ingest principal (agent or SDK credential) that sent the spans.
    Principal,
    /// The service the evidence came from.
    Service,
}

/// An action as written in the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Tag the evidence traces (`security.finding.rule`, `security.finding.family`).
    TagTrace,
    /// Keep every trace of the subject (sampling override) for `ttl_secs`.
    KeepSource {
        /// Whose traces.
        subject: SubjectKind,
        /// For how long.
        ttl_secs: u64,
    },
    /// Limit the subject's spans at ingest to `rate_per_sec` for `ttl_secs`.
    Throttle {
        /// Whom.
        subject: SubjectKind,
        /// Spans per second allowed.
        rate_per_sec: u32,
        /// For how long.
        ttl_secs: u64,
    },
    /// Set the subject's spans aside at ingest (kept, not stored with the rest).
    Quarantine {
        /// Whom.
        subject: SubjectKind,
        /// For how long.
        ttl_secs: u64,
    },
    /// Call a configured webhook (for example a WAF block list) with the finding.
    Webhook {
        /// Name of a webhook configured in the server.
        name: String,
    },
}

/// One response rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// Stable id.
    pub id: String,
    /// Families that match (empty: any).
    #[serde(default)]
    pub families: Vec<Family>,
    /// Detection rule ids that match (empty: any).
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Engines that match (empty: any).
    #[serde(default)]
    pub kinds: Vec<RuleKind>,
    /// Lowest severity that matches.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Lowest confidence that matches.
    #[serde(default)]
    pub min_confidence: Option<u8>,
    /// What to do.
    pub actions: Vec<ActionSpec>,
}

/// A response policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsePolicy {
    /// Format version; must be 1.
    pub format: u32,
    /// Rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<ResponseRule>,
}

/// The identity an action targets, resolved from a finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// A client address.
    ClientAddress(String),
    /// An end user.
    User(String),
    /// An ingest principal.
    Principal(String),
    /// A service.
    Service(String),
}

/// A concrete action to carry out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Add attributes to a stored trace.
    TagTrace {
        /// The trace.
        trace_id: TraceId,
        /// Attributes to add.
        tags: Vec<(String, String)>,
    },
    /// Keep every trace of the target until the deadline.
    KeepSource {
        /// Whose.
        target: Target,
        /// Until, Unix ns.
        until_unix_nanos: u64,
    },
    /// Rate-limit the target at ingest until the deadline.
    Throttle {
        /// Whom.
        target: Target,
        /// Spans per second.
        rate_per_sec: u32,
        /// Until, Unix ns.
        until_unix_nanos: u64,
    },
    /// Quarantine the target's spans at ingest until the deadline.
    Quarantine {
        /// Whom.
        target: Target,
        /// Until, Unix ns.
        until_unix_nanos: u64,
    },
    /// Call the named webhook with the finding.
    Webhook {
        /// Webhook name.
        name: String,
        /// The finding to send.
        finding_uid: String,
    },
}

/// An action and why it was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// Stable id of the action (hex SHA-256 of the response rule and the action), for the
    /// audit log and `response undo`.
    pub id: String,
    /// The response rule that asked for it.
    pub response_rule: String,
    /// The finding that triggered it.
    pub finding_uid: String,
    /// What to do.
    pub action: Action,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

impl ResponsePolicy {
    /// The embedded default policy.
    pub fn default_policy() -> Result<Self, RulesError> {
        Self::from_toml("<default response policy>", DEFAULT_RESPONSE_POLICY_TOML)
    }

    /// Parses and validates a policy. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, RulesError> {
        if text.len() > crate::rules::MAX_RULESET_BYTES {
            return Err(RulesError::TooLarge {
                file: file.into(),
                size: text.len(),
            });
        }
        let p: ResponsePolicy = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| crate::rules::line_col(text, s.start))
                .unwrap_or((0, 0));
            RulesError::Parse {
                file: file.into(),
                line,
                column,
                reason: e.message().to_string(),
            }
        })?;
        p.validate(file)?;
        Ok(p)
    }

    /// Checks ids, TTLs, rates and webhook names.
    pub fn validate(&self, file: &str) -> Result<(), RulesError> {
        let invalid = |rule: &str, reason: String| RulesError::Invalid {
            file: file.into(),
            rule: rule.into(),
            reason,
        };
        if self.format != 1 {
            return Err(invalid(
                "-",
                format!("format {} is not supported (only 1)", self.format),
            ));
        }
        if self.rules.len() > MAX_RESPONSE_RULES {
            return Err(invalid(
                "-",
                format!("more than {MAX_RESPONSE_RULES} rules"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            if !valid_id(&r.id) {
                return Err(invalid(
                    &r.id,
                    "id must be 1 to 64 characters from a-z, 0-9, '.', '_' and '-'".into(),
                ));
            }
            if !seen.insert(r.id.as_str()) {
                return Err(invalid(&r.id, "duplicate response rule id".into()));
            }
            if r.min_confidence.is_some_and(|c| c > 100) {
                return Err(invalid(&r.id, "min_confidence is over 100".into()));
            }
            if r.actions.is_empty() {
                return Err(invalid(
                    &r.id,
                    "a response rule needs at least one action".into(),
                ));
            }
            for a in &r.actions {
                let ttl = match a {
                    ActionSpec::KeepSource { ttl_secs, .. }
                    | ActionSpec::Quarantine { ttl_secs, .. } => Some(*ttl_secs),
                    ActionSpec::Throttle {
                        ttl_secs,
                        rate_per_sec,
                        ..
                    } => {
                        if *rate_per_sec == 0 {
                            return Err(invalid(&r.id, "throttle rate_per_sec must be greater than 0 (use quarantine to stop a source)".into()));
                        }
                        Some(*ttl_secs)
                    }
                    ActionSpec::Webhook { name } => {
                        if !valid_id(name) {
                            return Err(invalid(
                                &r.id,
                                format!("webhook name {name:?} is not a valid id"),
                            ));
                        }
                        None
                    }
                    ActionSpec::TagTrace => None,
                };
                if let Some(t) = ttl
                    && (t == 0 || t > MAX_TTL_SECS)
                {
                    return Err(invalid(
                        &r.id,
                        format!("ttl_secs {t} must be between 1 and {MAX_TTL_SECS}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn matches(r: &ResponseRule, f: &Finding) -> bool {
        (r.families.is_empty() || r.families.contains(&f.family))
            && (r.rule_ids.is_empty() || r.rule_ids.contains(&f.rule_id))
            && (r.kinds.is_empty() || r.kinds.contains(&f.kind))
            && r.min_severity.is_none_or(|s| f.severity >= s)
            && r.min_confidence.is_none_or(|c| f.confidence >= c)
    }

    /// The actions a finding calls for, at time `now_unix_nanos`. Pure: no side effects.
    pub fn evaluate(&self, finding: &Finding, now_unix_nanos: u64) -> Vec<PlannedAction> {
        let target = |k: SubjectKind| -> Option<Target> {
            let s = &finding.subject;
            match k {
                SubjectKind::ClientAddress => s.client_address.clone().map(Target::ClientAddress),
                SubjectKind::User => s.user.clone().map(Target::User),
                SubjectKind::Principal => s.principal.clone().map(Target::Principal),
                SubjectKind::Service => Some(Target::Service(finding.service.clone())),
            }
        };
        let until = |ttl: u64| now_unix_nanos.saturating_add(ttl.saturating_mul(1_000_000_000));
        let mut out: Vec<PlannedAction> = Vec::new();
        for r in self.rules.iter().filter(|r| Self::matches(r, finding)) {
            for spec in &r.actions {
                let actions: Vec<Action> = match spec {
                    ActionSpec::TagTrace => {
                        let mut traces: Vec<TraceId> = finding
                            .evidences
                            .iter()
                            .filter_map(|e| e.trace_id)
                            .collect();
                        traces.sort();
                        traces.dedup();
                        traces
                            .into_iter()
                            .map(|trace_id| Action::TagTrace {
                                trace_id,
                                tags: vec![
                                    ("security.finding.rule".into(), finding.rule_id.clone()),
                                    (
                                        "security.finding.family".into(),
                                        finding.family.as_str().into(),
                                    ),
                                    ("security.finding.uid".into(), finding.uid.clone()),
                                ],
                            })
                            .collect()
                    }
                    ActionSpec::KeepSource { subject, ttl_secs } => target(*subject)
                        .map(|target| Action::KeepSource {
                            target,
                            until_unix_nanos: until(*ttl_secs),
                        })
                        .into_iter()
                        .collect(),
                    ActionSpec::Throttle {
                        subject,
                        rate_per_sec,
                        ttl_secs,
                    } => target(*subject)
                        .map(|target| Action::Throttle {
                            target,
                            rate_per_sec: *rate_per_sec,
                            until_unix_nanos: until(*ttl_secs),
                        })
                        .into_iter()
                        .collect(),
                    ActionSpec::Quarantine { subject, ttl_secs } => target(*subject)
                        .map(|target| Action::Quarantine {
                            target,
                            until_unix_nanos: until(*ttl_secs),
                        })
                        .into_iter()
                        .collect(),
                    ActionSpec::Webhook { name } => vec![Action::Webhook {
                        name: name.clone(),
                        finding_uid: finding.uid.clone(),
                    }],
                };
                for action in actions {
                    merge(&mut out, &r.id, &finding.uid, action);
                }
            }
        }
        out
    }

    /// The actions for many findings, merged: one action per (kind, target), longest expiry.
    pub fn evaluate_all(&self, findings: &[Finding], now_unix_nanos: u64) -> Vec<PlannedAction> {
        let mut out = Vec::new();
        for f in findings {
            for p in self.evaluate(f, now_unix_nanos) {
                merge(&mut out, &p.response_rule, &p.finding_uid, p.action);
            }
        }
        out
    }
}

/// The key under which two actions are the same (kind and target, ignoring expiry).
fn same_key(a: &Action, b: &Action) -> bool {
    match (a, b) {
        (Action::KeepSource { target: x, .. }, Action::KeepSource { target: y, .. })
        | (Action::Quarantine { target: x, .. }, Action::Quarantine { target: y, .. }) => x == y,
        (
            Action::Throttle {
                target: x,
                rate_per_sec: r1,
                ..
            },
            Action::Throttle {
                target: y,
                rate_per_sec: r2,
                ..
            },
        ) => x == y && r1 == r2,
        (
            Action::TagTrace {
                trace_id: x,
                tags: t1,
            },
            Action::TagTrace {
                trace_id: y,
                tags: t2,
            },
        ) => x == y && t1 == t2,
        (
            Action::Webhook {
                name: n1,
                finding_uid: f1,
            },
            Action::Webhook {
                name: n2,
                finding_uid: f2,
            },
        ) => n1 == n2 && f1 == f2,
        _ => false,
    }
}

fn until_of(a: &Action) -> u64 {
    match a {
        Action::KeepSource {
            until_unix_nanos, ..
        }
        | Action::Quarantine {
            until_unix_nanos, ..
        }
        | Action::Throttle {
            until_unix_nanos, ..
        } => *until_unix_nanos,
        _ => 0,
    }
}

fn action_id(rule: &str, a: &Action) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(a).unwrap_or_default());
    hex::encode(&h.finalize()[..16])
}

fn merge(out: &mut Vec<PlannedAction>, rule: &str, finding_uid: &str, action: Action) {
    if let Some(existing) = out.iter_mut().find(|p| same_key(&p.action, &action)) {
        if until_of(&action) > until_of(&existing.action) {
            existing.id = action_id(rule, &action);
            existing.response_rule = rule.to_string();
            existing.finding_uid = finding_uid.to_string();
            existing.action = action;
        }
        return;
    }
    out.push(PlannedAction {
        id: action_id(rule, &action),
        response_rule: rule.to_string(),
        finding_uid: finding_uid.to_string(),
        action,
    });
}
