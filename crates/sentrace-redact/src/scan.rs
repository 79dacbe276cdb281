//! Leak scan: where sensitive values sit in telemetry, per service, without the values.
//!
//! [`Redactor::scan`] runs the same walk as minimization, on a copy, with every kind
//! masked and allowlist mode off, and records each value it would have minimized. A
//! [`LeakFinding`] carries the kind, the rule, the service, the (masked) span name and the
//! attribute key, never the value. [`LeakFinding::to_ocsf`] renders it as an OCSF 1.x Data
//! Security Finding (class 2006); [`summary`] prints a per-service table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use sentrace_core::TenantId;
use sentrace_core::otlp::service_name;
use sentrace_core::proto::trace::v1::ResourceSpans;

use crate::kind::Kind;
use crate::redactor::{Location, Observation, Redactor};
use crate::vault::{TenantSecrets, VaultError};

/// OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// One place where a sensitive value was found. Holds no part of the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakFinding {
    /// What was found.
    pub kind: Kind,
    /// The rule that found it (`email`, `github-token`, `key-name`, ...).
    pub rule: String,
    /// `service.name` of the resource.
    pub service: String,
    /// The span name, itself minimized (masked).
    pub span_name: String,
    /// Where in the span.
    pub location: Location,
    /// The attribute key (empty for span names, event names and status messages).
    pub attribute_key: String,
    /// Trace id (hex), if valid.
    pub trace_id: String,
    /// Span id (hex), if valid.
    pub span_id: String,
    /// How many values of this kind this rule found at this place of this span.
    pub count: u64,
}

/// What makes two observations the same finding: resource, scope and span indexes,
/// location, key, kind and rule.
type PlaceKey = (usize, usize, usize, Location, String, Kind, String);

/// Pseudonym keys for the scan: never used for output (the scan only masks).
struct NoSecrets;

impl TenantSecrets for NoSecrets {
    fn pseudonym_key(&self, _tenant: &TenantId) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new([0; 32])
    }

    fn tokenize(&self, tenant: &TenantId, _kind: Kind, _value: &str) -> Result<String, VaultError> {
        Err(VaultError::Unavailable {
            tenant: tenant.to_string(),
            reason: "the scan never tokenizes".into(),
        })
    }
}

impl Redactor {
    /// Finds every sensitive value in `resource_spans` (left untouched), under the default
    /// tenant's rules for key names. See the [module documentation](crate::scan).
    pub fn scan(&self, resource_spans: &[ResourceSpans]) -> Vec<LeakFinding> {
        let Ok(tenant) = TenantId::new("scan") else {
            return Vec::new();
        };
        self.scan_tenant(&tenant, resource_spans)
    }

    /// [`Redactor::scan`] under a tenant's key-name rules (its overrides' extra sensitive
    /// keys apply).
    pub fn scan_tenant(
        &self,
        tenant: &TenantId,
        resource_spans: &[ResourceSpans],
    ) -> Vec<LeakFinding> {
        let mut findings: Vec<LeakFinding> = Vec::new();
        let mut index: BTreeMap<PlaceKey, usize> = BTreeMap::new();
        for (ri, original) in resource_spans.iter().enumerate() {
            let mut rs = original.clone();
            let mut obs: Vec<Observation> = Vec::new();
            self.observe(&mut rs, tenant, &NoSecrets, &mut obs);
            let service = service_name(original.resource.as_ref()).to_string();
            for o in obs {
                if o.kind == Kind::SqlLiteral {
                    continue;
                }
                let (_, si, pi) = o.span_index;
                let span = rs
                    .scope_spans
                    .get(si)
                    .and_then(|ss| ss.spans.get(pi))
                    .filter(|_| {
                        !matches!(
                            o.location,
                            Location::ResourceAttribute | Location::ScopeAttribute
                        )
                    });
                let k = (
                    ri,
                    si,
                    pi,
                    o.location,
                    o.key.clone(),
                    o.kind,
                    o.rule.to_string(),
                );
                if let Some(&i) = index.get(&k) {
                    if let Some(f) = findings.get_mut(i) {
                        f.count += 1;
                    }
                    continue;
                }
                index.insert(k, findings.len());
                findings.push(LeakFinding {
                    kind: o.kind,
                    rule: o.rule.to_string(),
                    service: service.clone(),
                    span_name: span.map(|s| s.name.clone()).unwrap_or_default(),
                    location: o.location,
                    attribute_key: o.key,
                    trace_id: span.map(|s| hex::encode(&s.trace_id)).unwrap_or_default(),
                    span_id: span.map(|s| hex::encode(&s.span_id)).unwrap_or_default(),
                    count: 1,
                });
            }
        }
        findings
    }
}

impl LeakFinding {
    /// OCSF data classification category: 1 Personal, 2 Governmental, 3 Financial,
    /// 6 Security (credentials).
    fn ocsf_category(&self) -> (u8, &'static str) {
        match self.kind {
            Kind::Card | Kind::Iban => (3, "Financial"),
            Kind::Ssn => (2, "Governmental"),
            k if k.is_credential() => (6, "Security"),
            _ => (1, "Personal"),
        }
    }

    /// Severity: credentials and government or financial identifiers are High (4),
    /// other personal data Medium (3).
    fn ocsf_severity(&self) -> (u8, &'static str) {
        match self.kind {
            Kind::PrivateKey | Kind::Secret | Kind::Password | Kind::Card | Kind::Ssn => {
                (4, "High")
            }
            k if k.is_credential() => (4, "High"),
            _ => (3, "Medium"),
        }
    }

    /// A stable id: SHA-256 over the fields that place the finding.
    pub fn uid(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.kind.as_str(),
            &self.rule,
            &self.service,
            self.location.as_str(),
            &self.attribute_key,
            &self.trace_id,
            &self.span_id,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The finding as an OCSF Data Security Finding (class_uid 2006, activity Create),
    /// timestamped `time_ms` (Unix milliseconds).
    pub fn to_ocsf_at(&self, time_ms: u64) -> Value {
        let (category_id, category) = self.ocsf_category();
        let (severity_id, severity) = self.ocsf_severity();
        let where_ = if self.attribute_key.is_empty() {
            self.location.as_str().to_string()
        } else {
            format!("{} `{}`", self.location.as_str(), self.attribute_key)
        };
        let title = format!(
            "{} found in telemetry of service {}",
            self.kind, self.service
        );
        json!({
            "class_uid": 2006,
            "class_name": "Data Security Finding",
            "category_uid": 2,
            "category_name": "Findings",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": 200601,
            "type_name": "Data Security Finding: Create",
            "severity_id": severity_id,
            "severity": severity,
            "status_id": 1,
            "status": "New",
            "time": time_ms,
            "count": self.count,
            "message": format!("{title}, in {where_} of span {:?}", self.span_name),
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "Sentrace", "vendor_name": "Sentrace", "feature": {"name": "scan"}},
            },
            "finding_info": {
                "uid": self.uid(),
                "title": title,
                "desc": format!("A {} value ({} rule) sits in {where_}.", self.kind, self.rule),
                "types": [self.kind.as_str()],
            },
            "data_security": {
                "category_id": category_id,
                "category": category,
                "data_lifecycle_state_id": 2,
                "data_lifecycle_state": "Data in-Transit",
                "detection_system_id": if self.kind.is_credential() { 5 } else { 4 },
                "detection_system": if self.kind.is_credential() {
                    "Secrets Scanning"
                } else {
                    "Data Discovery & Classification"
                },
                "detection_pattern": self.rule,
            },
            "resources": [{
                "type": "service",
                "name": self.service,
                "data": {
                    "trace_id": self.trace_id,
                    "span_id": self.span_id,
                    "span_name": self.span_name,
                    "location": self.location.as_str(),
                    "attribute_key": self.attribute_key,
                },
            }],
        })
    }

    /// [`LeakFinding::to_ocsf_at`] with the current time.
    pub fn to_ocsf(&self) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.to_ocsf_at(now)
    }
}

/// A per-service table of what leaks where: one row per (service, kind, location, key),
/// with the number of values and of distinct spans.
pub fn summary(findings: &[LeakFinding]) -> String {
    let mut s = Summary::default();
    for f in findings {
        s.add(f);
    }
    s.render()
}

/// The [`summary`] table built one finding at a time, in memory bounded by the number of
/// rows, not of findings (for a scan that streams its input).
#[derive(Debug, Default)]
pub struct Summary {
    rows: BTreeMap<SummaryKey, SummaryRow>,
}

/// A summary row's place: service, kind, location, attribute key.
type SummaryKey = (String, Kind, Location, String);
/// A summary row's counts: values, spans, and the last span counted.
type SummaryRow = (u64, u64, String);

impl Summary {
    /// Counts one finding. A span's findings arrive together, so a span is counted once
    /// per row by comparing with the last span counted there.
    pub fn add(&mut self, f: &LeakFinding) {
        let e = self
            .rows
            .entry((
                f.service.clone(),
                f.kind,
                f.location,
                f.attribute_key.clone(),
            ))
            .or_default();
        e.0 += f.count;
        if e.2 != f.span_id || e.1 == 0 {
            e.1 += 1;
            e.2.clone_from(&f.span_id);
        }
    }

    /// The table.
    pub fn render(&self) -> String {
        let rows = &self.rows;
        let headers = ["SERVICE", "KIND", "LOCATION", "KEY", "VALUES", "SPANS"];
        let body: Vec<[String; 6]> = rows
            .iter()
            .map(|((svc, kind, loc, key), (n, spans, _))| {
                [
                    svc.to_string(),
                    kind.to_string(),
                    loc.as_str().to_string(),
                    if key.is_empty() {
                        "-".into()
                    } else {
                        key.to_string()
                    },
                    n.to_string(),
                    spans.to_string(),
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for r in &body {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: [&str; 6]| {
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                if i >= 4 {
                    let _ = write!(out, "{c:>w$}");
                } else {
                    let _ = write!(out, "{c:<w$}");
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&mut out, headers);
        for r in &body {
            line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
        }
        if body.is_empty() {
            out.push_str("(no sensitive values found)\n");
        }
        out
    }
}
