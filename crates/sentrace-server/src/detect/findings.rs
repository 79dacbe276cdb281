//! Recent findings per tenant, in memory, bounded; and the `GET /api/findings` filter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sentrace_core::TenantId;
use sentrace_detect::{Finding, Severity};

/// A bounded ring of findings per tenant.
#[derive(Debug)]
pub struct FindingStore {
    cap: usize,
    inner: Mutex<HashMap<TenantId, VecDeque<Finding>>>,
}

/// What `GET /api/findings` asks for. Every set field must match.
#[derive(Debug, Default, Clone)]
pub struct FindingFilter {
    /// Findings at or after this time, Unix ns.
    pub since_unix_nanos: Option<u64>,
    /// Findings before this time, Unix ns.
    pub until_unix_nanos: Option<u64>,
    /// Lowest severity.
    pub min_severity: Option<Severity>,
    /// Family name (`sqli`, ...).
    pub family: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// Trace id (32 hex digits) one of the evidences must carry.
    pub trace_id: Option<String>,
    /// Most findings returned (newest first).
    pub limit: usize,
}

impl FindingFilter {
    fn matches(&self, f: &Finding) -> bool {
        self.since_unix_nanos.is_none_or(|t| f.time_unix_nanos >= t)
            && self.until_unix_nanos.is_none_or(|t| f.time_unix_nanos < t)
            && self.min_severity.is_none_or(|s| f.severity >= s)
            && self
                .family
                .as_deref()
                .is_none_or(|x| f.family.as_str() == x)
            && self.rule.as_deref().is_none_or(|x| f.rule_id == x)
            && self.trace_id.as_deref().is_none_or(|x| {
                f.evidences
                    .iter()
                    .any(|e| e.trace_id.is_some_and(|t| t.to_hex() == x))
            })
    }
}

impl FindingStore {
    /// At most `cap` findings per tenant.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a finding, dropping the tenant's oldest beyond the bound.
    pub fn push(&self, f: Finding) {
        if let Ok(mut g) = self.inner.lock() {
            let q = g.entry(f.tenant.clone()).or_default();
            if q.len() >= self.cap {
                q.pop_front();
            }
            q.push_back(f);
        }
    }

    /// Findings held, all tenants.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.values().map(VecDeque::len).sum())
            .unwrap_or(0)
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tenant's findings that match, newest first.
    pub fn query(&self, tenant: &TenantId, filter: &FindingFilter) -> Vec<Finding> {
        let Ok(g) = self.inner.lock() else {
            return Vec::new();
        };
        let Some(q) = g.get(tenant) else {
            return Vec::new();
        };
        q.iter()
            .rev()
            .filter(|f| filter.matches(f))
            .take(filter.limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::TraceId;
    use sentrace_detect::{Evidence, Family, RuleKind, Subject};

    fn finding(tenant: &str, n: u64, sev: Severity, family: Family) -> Finding {
        let mut f = Finding {
            uid: String::new(),
            tenant: TenantId::new(tenant).unwrap(),
            rule_id: format!("r{}", n % 2),
            title: "t".into(),
            family,
            kind: RuleKind::Payload,
            severity: sev,
            confidence: 80,
            technique: "T1190".into(),
            ruleset_version: "1".into(),
            time_unix_nanos: n * 1000,
            service: "svc".into(),
            subject: Subject::default(),
            evidences: vec![Evidence {
                trace_id: Some(TraceId::from_bytes([n as u8; 16]).unwrap()),
                span_id: None,
                attribute: "url.query".into(),
                snippet: "x".into(),
                reason: "r".into(),
            }],
            message: "m".into(),
        };
        f.uid = f.compute_uid();
        f
    }

    #[test]
    fn bounded_per_tenant_and_filtered() {
        let s = FindingStore::new(3);
        for n in 1..=5 {
            s.push(finding("a", n, Severity::High, Family::Sqli));
        }
        s.push(finding("b", 9, Severity::Low, Family::Xss));
        assert_eq!(s.len(), 4);
        let a = TenantId::new("a").unwrap();
        let all = s.query(
            &a,
            &FindingFilter {
                limit: 10,
                ..Default::default()
            },
        );
        let times: Vec<u64> = all.iter().map(|f| f.time_unix_nanos).collect();
        assert_eq!(
            times,
            vec![5000, 4000, 3000],
            "newest first, oldest dropped"
        );
        let f = FindingFilter {
            limit: 10,
            since_unix_nanos: Some(4000),
            ..Default::default()
        };
        assert_eq!(s.query(&a, &f).len(), 2);
        let f = FindingFilter {
            limit: 10,
            rule: Some("r1".into()),
            ..Default::default()
        };
        assert_eq!(s.query(&a, &f).len(), 2);
        let f = FindingFilter {
            limit: 10,
            trace_id: Some(TraceId::from_bytes([4; 16]).unwrap().to_hex()),
            ..Default::default()
        };
        assert_eq!(s.query(&a, &f).len(), 1);
        let f = FindingFilter {
            limit: 10,
            family: Some("xss".into()),
            ..Default::default()
        };
        assert!(s.query(&a, &f).is_empty(), "tenants never mix");
        let b = TenantId::new("b").unwrap();
        let f = FindingFilter {
            limit: 10,
            min_severity: Some(Severity::Medium),
            ..Default::default()
        };
        assert!(s.query(&b, &f).is_empty());
        let f = FindingFilter {
            limit: 1,
            ..Default::default()
        };
        assert_eq!(s.query(&a, &f).len(), 1);
    }
}
