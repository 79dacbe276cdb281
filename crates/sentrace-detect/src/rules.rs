//! Rules as data: the TOML ruleset format, its embedded default and per-tenant overrides.
//!
//! # Format (version 1)
//!
//! ```toml
//! format = 1                      # ruleset format version (only 1 exists)
//! version = "2026.11.0"           # the ruleset's own version, reported in findings
//!
//! [[rule]]
//! id = "sqli-tokenizer"           # stable id, [a-z0-9._-], unique
//! name = "SQL injection (token structure)"
//! family = "sqli"                 # see `Family`
//! severity = "high"               # info | low | medium | high | critical
//! confidence = 85                 # 0..=100, how sure a hit is an attack
//! technique = "T1190"             # MITRE ATT&CK technique id
//! kind = "payload"                # payload | correlated | behavioral
//! matcher = "sqli"                # payload: a builtin matcher name ...
//! # patterns = ["(?i)..."]        # ... or regexes over the normalized input (any matches)
//! ```
//!
//! Payload rules with `patterns` match each regex against every normalized request input
//! (query, path, body and header values; see `payload::extract`). Builtin matchers are
//! `sqli` (tokenizer), `xss_tags` (HTML tag/attribute scan), `java_base64` (base64-wrapped
//! Java gadget names), `ssrf_url` (URL targets: metadata, loopback, private, encoded IPs)
//! `nosql_operator` (query-operator keys) and `crlf_protocol` (an SMTP/POP3/IMAP/FTP
//! command, with its argument grammar, on a later line of the input). Patterns that
//! provably need a byte outside letters, digits, space and `-_.,/` are not run on inputs
//! made only of those (`payload::prefilter`). Correlated and behavioral rules name the
//! builtin detector in `matcher` and carry no patterns.
//!
//! A `[context]` table sets how fields learn the shape of their normal values and holds
//! operator pins (see [`crate::context::ContextConfig`]):
//!
//! ```toml
//! [context]
//! min_sources = 20                # distinct client addresses before a field learns a shape
//! min_secs = 3600                 # ... over this much span time
//! [[context.pin]]
//! service = "ci"                  # or "*"
//! route = "/api/v4/projects/{id}/pipelines"   # or "*" (the default)
//! field = "body.script"           # query.<name>, body.<json path>, header.<name>, cookie.<name>
//! carries = ["shell"]             # downgraded there even before anything is learned
//! # never = ["html"]              # never learned, never downgraded
//! ```
//!
//! A tenant override (same format, section names below) may disable rules, change a rule's
//! severity or confidence, add rules, and replace the `[behavior]` or `[context]` table:
//!
//! ```toml
//! disable = ["xss-event-handler"]
//! [[adjust]]
//! id = "sqli-tokenizer"
//! severity = "critical"
//! [[rule]]                        # extra rules, same fields as above
//! ```

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The default ruleset shipped with the binary.
pub const DEFAULT_RULESET_TOML: &str = include_str!("../rules/default.toml");

/// Largest ruleset or override file accepted, in bytes.
pub const MAX_RULESET_BYTES: usize = 1 << 20;
/// Largest number of rules in one ruleset.
pub const MAX_RULES: usize = 2_000;
/// Largest regex pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4_096;

/// Why a ruleset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file is not valid TOML for this format.
    #[error("{file}:{line}:{column}: {reason}")]
    Parse {
        /// Where the text came from.
        file: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What was wrong.
        reason: String,
    },
    /// A rule is well-formed TOML but breaks a rule of the format.
    #[error("{file}: rule {rule:?}: {reason}")]
    Invalid {
        /// Where the text came from.
        file: String,
        /// The offending rule id (or index when it has no usable id).
        rule: String,
        /// What was wrong.
        reason: String,
    },
    /// The file is larger than [`MAX_RULESET_BYTES`].
    #[error("{file}: {size} bytes is over the {MAX_RULESET_BYTES}-byte limit for a ruleset")]
    TooLarge {
        /// Where the text came from.
        file: String,
        /// Its size.
        size: usize,
    },
}

/// Attack or behavior family of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal and local file inclusion.
    PathTraversal,
    /// OS command injection.
    Cmdi,
    /// Server-side request forgery and remote file inclusion.
    Ssrf,
    /// Log4Shell/JNDI lookups and Java code injection.
    Jndi,
    /// Server-side template injection.
    Ssti,
    /// XML external entities.
    Xxe,
    /// NoSQL operator injection and prototype pollution.
    Nosql,
    /// Script code injection (PHP, Node.js, Perl, Ruby, Python).
    CodeInjection,
    /// LDAP filter injection.
    Ldap,
    /// A new service-to-service edge.
    LateralMovement,
    /// A new endpoint of a service.
    NewEndpoint,
    /// Many authentication failures from one client address.
    BruteForce,
    /// Many authentication failures over many users.
    CredentialStuffing,
    /// Many distinct object ids answered 403/404.
    Enumeration,
    /// A response far larger than the endpoint's baseline.
    Exfiltration,
    /// A burst of 403s on admin routes followed by a success.
    PrivilegeProbing,
    /// Error rate, latency or volume far from the baseline.
    Anomaly,
}

impl Family {
    /// The snake_case name used in rules and findings.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sqli => "sqli",
            Self::Xss => "xss",
            Self::PathTraversal => "path_traversal",
            Self::Cmdi => "cmdi",
            Self::Ssrf => "ssrf",
            Self::Jndi => "jndi",
            Self::Ssti => "ssti",
            Self::Xxe => "xxe",
            Self::Nosql => "nosql",
            Self::CodeInjection => "code_injection",
            Self::Ldap => "ldap",
            Self::LateralMovement => "lateral_movement",
            Self::NewEndpoint => "new_endpoint",
            Self::BruteForce => "brute_force",
            Self::CredentialStuffing => "credential_stuffing",
            Self::Enumeration => "enumeration",
            Self::Exfiltration => "exfiltration",
            Self::PrivilegeProbing => "privilege_probing",
            Self::Anomaly => "anomaly",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity, ordered from least to most severe (OCSF `severity_id` 1..=5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// OCSF `severity_id`.
    pub fn ocsf_id(&self) -> u8 {
        match self {
            Self::Info => 1,
            Self::Low => 2,
            Self::Medium => 3,
            Self::High => 4,
            Self::Critical => 5,
        }
    }

    /// OCSF caption.
    pub fn caption(&self) -> &'static str {
        match self {
            Self::Info => "Informational",
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }

    /// CEF severity 0..=10.
    pub fn cef(&self) -> u8 {
        match self {
            Self::Info => 1,
            Self::Low => 3,
            Self::Medium => 5,
            Self::High => 8,
            Self::Critical => 10,
        }
    }
}

/// Which detector engine a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Matches request inputs of one span.
    Payload,
    /// Follows input from a server span into its child spans.
    Correlated,
    /// Compares traffic with a per-tenant baseline.
    Behavioral,
}

/// The view of an input that payload patterns run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Decoded, lower-cased, whitespace folded (see [`crate::normalize::normalize`]).
    #[default]
    Normalized,
    /// The normalized view with shell quoting and escapes removed
    /// (see [`crate::normalize::shell_view`]).
    Shell,
}

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id: 1..=64 characters from `[a-z0-9._-]`, unique in the ruleset.
    pub id: String,
    /// Human title, used as the finding title.
    pub name: String,
    /// Attack or behavior family.
    pub family: Family,
    /// Severity of a finding from this rule.
    pub severity: Severity,
    /// Confidence 0..=100 that a hit is a real attack.
    pub confidence: u8,
    /// MITRE ATT&CK technique id (`T1190`, `T1110.004`).
    pub technique: String,
    /// Engine the rule runs in.
    pub kind: RuleKind,
    /// Builtin matcher name (payload builtins, or the correlated/behavioral detector).
    #[serde(default)]
    pub matcher: Option<String>,
    /// Regexes over normalized inputs (payload rules only); a hit on any one fires.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Which view of the input the patterns see.
    #[serde(default)]
    pub view: View,
    /// Free-text description for analysts.
    #[serde(default)]
    pub description: String,
}

/// A complete ruleset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    /// Format version; must be 1.
    pub format: u32,
    /// The ruleset's own version string.
    pub version: String,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// Behavioral thresholds (documented on [`crate::behavior::BehaviorConfig`]).
    #[serde(default)]
    pub behavior: crate::behavior::BehaviorConfig,
    /// Learned field context and operator pins (documented on
    /// [`crate::context::ContextConfig`]).
    #[serde(default)]
    pub context: crate::context::ContextConfig,
}

/// A change to one rule in a tenant override.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleAdjust {
    /// Id of the rule to change.
    pub id: String,
    /// New severity, if set.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// New confidence, if set.
    #[serde(default)]
    pub confidence: Option<u8>,
}

/// Per-tenant changes on top of a ruleset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetOverride {
    /// Ids of rules to turn off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Severity/confidence changes.
    #[serde(default)]
    pub adjust: Vec<RuleAdjust>,
    /// Extra rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// Replacement behavioral thresholds, if set.
    #[serde(default)]
    pub behavior: Option<crate::behavior::BehaviorConfig>,
    /// Replacement field-context settings and pins, if set.
    #[serde(default)]
    pub context: Option<crate::context::ContextConfig>,
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, RulesError> {
    if text.len() > MAX_RULESET_BYTES {
        return Err(RulesError::TooLarge {
            file: file.to_string(),
            size: text.len(),
        });
    }
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        RulesError::Parse {
            file: file.to_string(),
            line,
            column,
            reason: e.message().to_string(),
        }
    })
}

pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn valid_technique(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = rest.split_once('.').unwrap_or((rest, ""));
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && (sub.is_empty() || (sub.len() == 3 && sub.bytes().all(|b| b.is_ascii_digit())))
}

impl Rule {
    fn validate(&self, file: &str, index: usize) -> Result<(), RulesError> {
        let invalid = |reason: String| RulesError::Invalid {
            file: file.to_string(),
            rule: if valid_id(&self.id) {
                self.id.clone()
            } else {
                format!("#{index}")
            },
            reason,
        };
        if !valid_id(&self.id) {
            return Err(invalid(
                "id must be 1 to 64 characters from a-z, 0-9, '.', '_' and '-'".into(),
            ));
        }
        if self.confidence > 100 {
            return Err(invalid(format!(
                "confidence {} is over 100",
                self.confidence
            )));
        }
        if !valid_technique(&self.technique) {
            return Err(invalid(format!(
                "technique {:?} is not a MITRE ATT&CK id like T1190 or T1110.004",
                self.technique
            )));
        }
        match self.kind {
            RuleKind::Payload => {
                if self.patterns.is_empty() == self.matcher.is_none() {
                    return Err(invalid(
                        "a payload rule needs exactly one of `matcher` or `patterns`".into(),
                    ));
                }
                if let Some(m) = &self.matcher
                    && !crate::payload::BUILTIN_MATCHERS.contains(&m.as_str())
                {
                    return Err(invalid(format!(
                        "unknown payload matcher {m:?}; known: {:?}",
                        crate::payload::BUILTIN_MATCHERS
                    )));
                }
                for p in &self.patterns {
                    if p.len() > MAX_PATTERN_BYTES {
                        return Err(invalid(format!(
                            "pattern of {} bytes is over the {MAX_PATTERN_BYTES}-byte limit",
                            p.len()
                        )));
                    }
                    if let Err(e) = regex::bytes::RegexBuilder::new(p).unicode(false).build() {
                        return Err(invalid(format!("pattern {p:?} does not compile: {e}")));
                    }
                }
            }
            RuleKind::Correlated | RuleKind::Behavioral => {
                if !self.patterns.is_empty() {
                    return Err(invalid("only payload rules take `patterns`".into()));
                }
                let known: &[&str] = if self.kind == RuleKind::Correlated {
                    crate::correlate::CORRELATED_MATCHERS
                } else {
                    crate::behavior::BEHAVIORAL_MATCHERS
                };
                match &self.matcher {
                    Some(m) if known.contains(&m.as_str()) => {}
                    other => {
                        return Err(invalid(format!(
                            "matcher {other:?} is not one of {known:?}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Ruleset {
    /// The embedded default ruleset.
    pub fn default_ruleset() -> Result<Self, RulesError> {
        Self::from_toml("<default ruleset>", DEFAULT_RULESET_TOML)
    }

    /// Parses and validates a ruleset. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, RulesError> {
        let set: Ruleset = parse_toml(file, text)?;
        set.validate(file)?;
        Ok(set)
    }

    /// Checks the whole ruleset: format, ids, patterns, matchers, thresholds.
    pub fn validate(&self, file: &str) -> Result<(), RulesError> {
        if self.format != 1 {
            return Err(RulesError::Invalid {
                file: file.to_string(),
                rule: "-".into(),
                reason: format!("format {} is not supported (only 1)", self.format),
            });
        }
        if self.rules.len() > MAX_RULES {
            return Err(RulesError::Invalid {
                file: file.to_string(),
                rule: "-".into(),
                reason: format!(
                    "{} rules is over the limit of {MAX_RULES}",
                    self.rules.len()
                ),
            });
        }
        let mut seen = HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            r.validate(file, i)?;
            if !seen.insert(r.id.as_str()) {
                return Err(RulesError::Invalid {
                    file: file.to_string(),
                    rule: r.id.clone(),
                    reason: "duplicate rule id".into(),
                });
            }
        }
        self.behavior
            .validate()
            .map_err(|reason| RulesError::Invalid {
                file: file.to_string(),
                rule: "[behavior]".into(),
                reason,
            })?;
        self.context
            .validate()
            .map_err(|reason| RulesError::Invalid {
                file: file.to_string(),
                rule: "[context]".into(),
                reason,
            })
    }

    /// Applies a tenant override, returning the tenant's effective ruleset.
    pub fn apply(&self, file: &str, ov: &RulesetOverride) -> Result<Ruleset, RulesError> {
        let unknown = |id: &str| RulesError::Invalid {
            file: file.to_string(),
            rule: id.to_string(),
            reason: "override names a rule that does not exist".into(),
        };
        let mut out = self.clone();
        for id in &ov.disable {
            let before = out.rules.len();
            out.rules.retain(|r| &r.id != id);
            if out.rules.len() == before {
                return Err(unknown(id));
            }
        }
        for adj in &ov.adjust {
            let r = out
                .rules
                .iter_mut()
                .find(|r| r.id == adj.id)
                .ok_or_else(|| unknown(&adj.id))?;
            if let Some(s) = adj.severity {
                r.severity = s;
            }
            if let Some(c) = adj.confidence {
                r.confidence = c;
            }
        }
        out.rules.extend(ov.rules.iter().cloned());
        if let Some(b) = &ov.behavior {
            out.behavior = b.clone();
        }
        if let Some(c) = &ov.context {
            out.context = c.clone();
        }
        out.validate(file)?;
        Ok(out)
    }
}

impl RulesetOverride {
    /// Parses a tenant override. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, RulesError> {
        parse_toml(file, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ruleset_loads_and_covers_every_family() {
        let set = Ruleset::default_ruleset().unwrap();
        for fam in [
            Family::Sqli,
            Family::Xss,
            Family::PathTraversal,
            Family::Cmdi,
            Family::Ssrf,
            Family::Jndi,
            Family::Ssti,
            Family::Xxe,
            Family::Nosql,
        ] {
            assert!(
                set.rules.iter().any(|r| r.family == fam),
                "no rule for {fam}"
            );
        }
    }

    #[test]
    fn parse_error_carries_file_and_line() {
        let text = "format = 1\nversion = \"x\"\n\n[[rule]]\nid = \"a\"\nbogus = 3\n";
        match Ruleset::from_toml("t.toml", text) {
            Err(RulesError::Parse { file, line, .. }) => {
                assert_eq!(file, "t.toml");
                assert!(line >= 4, "line {line}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_rule_is_named() {
        let text = r#"format = 1
version = "x"
[[rule]]
id = "bad-regex"
name = "n"
family = "xss"
severity = "low"
confidence = 10
technique = "T1190"
kind = "payload"
patterns = ["(unclosed"]
"#;
        let e = Ruleset::from_toml("t.toml", text).unwrap_err().to_string();
        assert!(
            e.contains("bad-regex") && e.contains("does not compile"),
            "{e}"
        );
        let e = Ruleset::from_toml("t.toml", &text.replace("T1190", "X1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MITRE"), "{e}");
    }

    #[test]
    fn override_disables_adjusts_and_adds() {
        let base = Ruleset::default_ruleset().unwrap();
        let ov = RulesetOverride::from_toml(
            "acme.toml",
            r#"disable = ["xss-event-handler"]
[[adjust]]
id = "sqli-tokenizer"
severity = "critical"
[[rule]]
id = "acme-canary"
name = "canary token"
family = "cmdi"
severity = "high"
confidence = 99
technique = "T1059"
kind = "payload"
patterns = ["acme-canary-[0-9]+"]
"#,
        )
        .unwrap();
        let t = base.apply("acme.toml", &ov).unwrap();
        assert!(!t.rules.iter().any(|r| r.id == "xss-event-handler"));
        let s = t.rules.iter().find(|r| r.id == "sqli-tokenizer").unwrap();
        assert_eq!(s.severity, Severity::Critical);
        assert!(t.rules.iter().any(|r| r.id == "acme-canary"));
        let bad = RulesetOverride {
            disable: vec!["nope".into()],
            ..Default::default()
        };
        assert!(base.apply("x", &bad).is_err());
    }
}
