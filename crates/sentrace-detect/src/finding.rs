//! Findings and their wire forms: OCSF 1.3 Detection Finding (class 2004) and CEF.

use sentrace_core::{SpanId, TenantId, TraceId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::rules::{Family, RuleKind, Severity};

/// OCSF schema version the JSON form follows.
pub const OCSF_VERSION: &str = "1.3.0";
/// OCSF Detection Finding class.
pub const OCSF_CLASS_UID: u32 = 2004;
/// OCSF Findings category.
pub const OCSF_CATEGORY_UID: u32 = 2;

/// Who or what the attack came from, as far as the spans say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// `client.address` (or `source.address`) of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// `enduser.id` / `user.name` of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The ingest identity (credential principal) that sent the spans; set by the stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// One piece of evidence: where in which span, and a minimized snippet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Trace of the span, if known.
    pub trace_id: Option<TraceId>,
    /// The span.
    pub span_id: Option<SpanId>,
    /// The attribute (or measure) the evidence is about.
    pub attribute: String,
    /// Minimized snippet (see [`crate::snippet::minimize`]); never a raw value.
    pub snippet: String,
    /// Why the rule matched.
    pub reason: String,
}

/// A detection result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: hex SHA-256 over tenant, rule, time and first evidence, cut to 32 chars.
    pub uid: String,
    /// Tenant whose data triggered it.
    pub tenant: TenantId,
    /// Rule id.
    pub rule_id: String,
    /// Rule name (finding title).
    pub title: String,
    /// Family.
    pub family: Family,
    /// Engine.
    pub kind: RuleKind,
    /// Severity.
    pub severity: Severity,
    /// Confidence 0..=100.
    pub confidence: u8,
    /// MITRE ATT&CK technique id.
    pub technique: String,
    /// Version of the ruleset that produced it.
    pub ruleset_version: String,
    /// Event time (span start, or the detector's `now` for behavioral findings), Unix ns.
    pub time_unix_nanos: u64,
    /// Service the evidence came from.
    pub service: String,
    /// Source of the attack.
    pub subject: Subject,
    /// Evidence, at least one.
    pub evidences: Vec<Evidence>,
    /// One-line human summary (contains no raw values).
    pub message: String,
    /// Downgraded by learned or pinned field context: the hit is the field's normal shape
    /// (a CI `script` field carrying shell), so confidence and severity are lowered and the
    /// server keeps the finding for `GET /api/findings` without sending it to sinks or
    /// response (below `[detect] send_min_confidence`). Evidence reasons name the field and
    /// whether it was learned or pinned. Absent in findings stored before the flag existed.
    #[serde(default)]
    pub downgraded: bool,
}

fn confidence_id(c: u8) -> (u8, &'static str) {
    match c {
        0..=39 => (1, "Low"),
        40..=79 => (2, "Medium"),
        _ => (3, "High"),
    }
}

/// ATT&CK technique name and tactic for the techniques the default rules use.
fn attack_info(technique: &str) -> (&'static str, &'static str, &'static str) {
    let main = technique.split('.').next().unwrap_or(technique);
    match main {
        "T1190" => (
            "Exploit Public-Facing Application",
            "TA0001",
            "Initial Access",
        ),
        "T1189" => ("Drive-by Compromise", "TA0001", "Initial Access"),
        "T1059" => ("Command and Scripting Interpreter", "TA0002", "Execution"),
        "T1083" => ("File and Directory Discovery", "TA0007", "Discovery"),
        "T1005" => ("Data from Local System", "TA0009", "Collection"),
        "T1110" => ("Brute Force", "TA0006", "Credential Access"),
        "T1021" => ("Remote Services", "TA0008", "Lateral Movement"),
        "T1595" => ("Active Scanning", "TA0043", "Reconnaissance"),
        "T1087" => ("Account Discovery", "TA0007", "Discovery"),
        "T1030" | "T1041" | "T1567" => ("Exfiltration Over Web Service", "TA0010", "Exfiltration"),
        "T1069" => ("Permission Groups Discovery", "TA0007", "Discovery"),
        "T1078" => ("Valid Accounts", "TA0004", "Privilege Escalation"),
        "T1498" | "T1499" => ("Endpoint Denial of Service", "TA0040", "Impact"),
        _ => ("", "", ""),
    }
}

impl Finding {
    /// Computes the stable `uid` from the other fields.
    pub fn compute_uid(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.tenant.as_str().as_bytes());
        h.update([0]);
        h.update(self.rule_id.as_bytes());
        h.update([0]);
        h.update(self.time_unix_nanos.to_be_bytes());
        if let Some(e) = self.evidences.first() {
            h.update(e.trace_id.map(|t| *t.as_bytes()).unwrap_or_default());
            h.update(e.span_id.map(|s| *s.as_bytes()).unwrap_or_default());
            h.update(e.attribute.as_bytes());
        }
        h.update(
            self.subject
                .client_address
                .as_deref()
                .unwrap_or("")
                .as_bytes(),
        );
        h.update([0]);
        h.update(self.subject.user.as_deref().unwrap_or("").as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// The OCSF 1.3 Detection Finding (class_uid 2004, activity Create) as JSON.
    pub fn to_ocsf(&self) -> Value {
        let time_ms = self.time_unix_nanos / 1_000_000;
        let (conf_id, conf) = confidence_id(self.confidence);
        let (tech_name, tactic_uid, tactic_name) = attack_info(&self.technique);
        let mut attack = json!({
            "version": "v16",
            "technique": {"uid": self.technique, "name": tech_name},
        });
        if !tactic_uid.is_empty() {
            attack["tactic"] = json!({"uid": tactic_uid, "name": tactic_name});
        }
        let evidences: Vec<Value> = self
            .evidences
            .iter()
            .map(|e| {
                json!({
                    "name": e.attribute,
                    "data": {
                        "trace_id": e.trace_id.map(|t| t.to_hex()),
                        "span_id": e.span_id.map(|s| s.to_hex()),
                        "attribute": e.attribute,
                        "snippet": e.snippet,
                        "reason": e.reason,
                    },
                })
            })
            .collect();
        let mut out = json!({
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "Sentrace", "vendor_name": "Sentrace", "version": env!("CARGO_PKG_VERSION")},
                "tenant_uid": self.tenant.as_str(),
                "uid": self.uid,
                "labels": [self.family.as_str()],
            },
            "category_uid": OCSF_CATEGORY_UID,
            "category_name": "Findings",
            "class_uid": OCSF_CLASS_UID,
            "class_name": "Detection Finding",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": OCSF_CLASS_UID * 100 + 1,
            "type_name": "Detection Finding: Create",
            "time": time_ms,
            "severity_id": self.severity.ocsf_id(),
            "severity": self.severity.caption(),
            "confidence_id": conf_id,
            "confidence": conf,
            "confidence_score": self.confidence,
            "status_id": 1,
            "status": "New",
            "message": self.message,
            "finding_info": {
                "uid": self.uid,
                "title": self.title,
                "desc": self.message,
                "types": [self.family.as_str()],
                "created_time": time_ms,
                "first_seen_time": time_ms,
                "last_seen_time": time_ms,
                "analytic": {
                    "uid": self.rule_id,
                    "name": self.title,
                    "type_id": if self.kind == RuleKind::Behavioral { 2 } else { 1 },
                    "type": if self.kind == RuleKind::Behavioral { "Behavioral" } else { "Rule" },
                    "version": self.ruleset_version,
                },
                "attacks": [attack],
            },
            "resources": [{"type": "service", "name": self.service}],
            "evidences": evidences,
        });
        if let Some(a) = &self.subject.client_address {
            out["src_endpoint"] = json!({"ip": a});
        }
        if let Some(u) = &self.subject.user {
            out["actor"] = json!({"user": {"name": u}});
        }
        // OCSF has no attribute for "lowered by learned context": the flag goes in
        // `unmapped` (the schema's place for product data), and a label says it too.
        out["unmapped"] = json!({"downgraded": self.downgraded});
        if self.downgraded
            && let Some(labels) = out["metadata"]["labels"].as_array_mut()
        {
            labels.push(json!("downgraded"));
        }
        out
    }

    /// The finding as one ArcSight CEF line (`CEF:0|...`), without a syslog header.
    pub fn to_cef(&self) -> String {
        let first = self.evidences.first();
        let mut ext: Vec<(&str, String)> = vec![
            ("rt", (self.time_unix_nanos / 1_000_000).to_string()),
            ("cat", self.family.as_str().to_string()),
            ("msg", self.message.clone()),
            ("cs1Label", "tenant".into()),
            ("cs1", self.tenant.as_str().to_string()),
            ("cs2Label", "traceId".into()),
            (
                "cs2",
                first
                    .and_then(|e| e.trace_id)
                    .map(|t| t.to_hex())
                    .unwrap_or_default(),
            ),
            ("cs3Label", "spanId".into()),
            (
                "cs3",
                first
                    .and_then(|e| e.span_id)
                    .map(|s| s.to_hex())
                    .unwrap_or_default(),
            ),
            ("cs4Label", "technique".into()),
            ("cs4", self.technique.clone()),
            ("cs5Label", "snippet".into()),
            ("cs5", first.map(|e| e.snippet.clone()).unwrap_or_default()),
            ("cs6Label", "findingUid".into()),
            ("cs6", self.uid.clone()),
            ("cn1Label", "confidence".into()),
            ("cn1", self.confidence.to_string()),
            ("cn2Label", "downgraded".into()),
            ("cn2", u8::from(self.downgraded).to_string()),
            ("dvchost", self.service.clone()),
        ];
        if let Some(a) = &self.subject.client_address {
            ext.push(("src", a.clone()));
        }
        if let Some(u) = &self.subject.user {
            ext.push(("suser", u.clone()));
        }
        let ext: Vec<String> = ext
            .into_iter()
            .map(|(k, v)| format!("{k}={}", cef_ext_escape(&v)))
            .collect();
        format!(
            "CEF:0|Sentrace|sentrace|{}|{}|{}|{}|{}",
            env!("CARGO_PKG_VERSION"),
            cef_header_escape(&self.rule_id),
            cef_header_escape(&self.title),
            self.severity.cef(),
            ext.join(" ")
        )
    }
}

/// CEF header fields escape `\` and `|`; line breaks become spaces.
pub fn cef_header_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// CEF extension values escape `\`, `=` and line breaks.
pub fn cef_ext_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Finding {
        let mut f = Finding {
            uid: String::new(),
            tenant: TenantId::new("acme").unwrap(),
            rule_id: "sqli-tokenizer".into(),
            title: "SQL injection | test".into(),
            family: Family::Sqli,
            kind: RuleKind::Payload,
            severity: Severity::High,
            confidence: 90,
            technique: "T1190".into(),
            ruleset_version: "v1".into(),
            time_unix_nanos: 1_700_000_000_123_000_000,
            service: "shop".into(),
            subject: Subject {
                client_address: Some("203.0.113.7".into()),
                ..Default::default()
            },
            evidences: vec![Evidence {
                trace_id: Some(TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()),
                span_id: Some(SpanId::from_hex("00f067aa0ba902b7").unwrap()),
                attribute: "url.query".into(),
                snippet: "0' or '0'='0".into(),
                reason: "boolean".into(),
            }],
            message: "a=b".into(),
            downgraded: false,
        };
        f.uid = f.compute_uid();
        f
    }

    #[test]
    fn ocsf_shape() {
        let f = sample();
        let v = f.to_ocsf();
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200401);
        assert_eq!(v["category_uid"], 2);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["confidence_id"], 3);
        assert_eq!(v["time"], 1_700_000_000_123u64);
        assert_eq!(v["finding_info"]["uid"], f.uid.as_str());
        assert_eq!(v["finding_info"]["attacks"][0]["technique"]["uid"], "T1190");
        assert_eq!(v["finding_info"]["attacks"][0]["tactic"]["uid"], "TA0001");
        assert_eq!(
            v["evidences"][0]["data"]["trace_id"],
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(v["evidences"][0]["data"]["span_id"], "00f067aa0ba902b7");
        assert_eq!(v["src_endpoint"]["ip"], "203.0.113.7");
        assert_eq!(v["unmapped"]["downgraded"], false);
        assert_eq!(v["metadata"]["labels"], json!(["sqli"]));
        assert_eq!(f.uid.len(), 32);
    }

    #[test]
    fn downgraded_flag_in_json_and_ocsf() {
        let mut f = sample();
        f.downgraded = true;
        let v = f.to_ocsf();
        assert_eq!(v["unmapped"]["downgraded"], true);
        assert_eq!(v["metadata"]["labels"], json!(["sqli", "downgraded"]));
        let plain = serde_json::to_value(&f).unwrap();
        assert_eq!(plain["downgraded"], true);
        // A finding stored before the flag existed reads as not downgraded.
        let mut old = serde_json::to_value(sample()).unwrap();
        old.as_object_mut().unwrap().remove("downgraded");
        let back: Finding = serde_json::from_value(old).unwrap();
        assert!(!back.downgraded);
        assert!(
            f.to_cef().contains("cn2Label=downgraded cn2=1"),
            "{}",
            f.to_cef()
        );
        assert!(sample().to_cef().contains("cn2=0"));
    }

    #[test]
    fn cef_escaping() {
        let line = sample().to_cef();
        assert!(line.starts_with("CEF:0|Sentrace|sentrace|"), "{line}");
        assert!(line.contains("|SQL injection \\| test|8|"), "{line}");
        assert!(line.contains("msg=a\\=b"), "{line}");
        assert!(
            line.contains("cs2=0af7651916cd43dd8448eb211c80319c"),
            "{line}"
        );
        assert!(line.contains("src=203.0.113.7"), "{line}");
    }
}
