//! Recent findings per tenant, bounded, kept in memory for queries and on disk in an
//! encrypted per-tenant journal so that a restart loses none; and the `GET /api/findings`
//! filter.
//!
//! The journal is written by its writer thread with group commit
//! ([`sentrace_store::JournalWriter`]): [`FindingStore::push_all`] queues and returns, and the
//! ingest pipeline awaits [`FindingStore::wait_since`] before it answers the request, so a
//! batch's findings are durable when its export is acknowledged.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use sentrace_core::TenantId;
use sentrace_detect::{Finding, Severity};
use sentrace_store::{JournalWriter, Mark};

/// A bounded ring of findings per tenant, persisted when a journal is given.
#[derive(Debug)]
pub struct FindingStore {
    cap: usize,
    inner: Mutex<HashMap<TenantId, VecDeque<Finding>>>,
    journal: Option<JournalWriter>,
    /// Journal records per tenant (compacted to the ring's content past twice the bound).
    journaled: Mutex<HashMap<TenantId, usize>>,
    write_errors: Arc<AtomicU64>,
    /// Sharing a bucket: what to publish, and the other nodes' findings (see [`shared`]).
    shared: Mutex<shared::SharedFindings>,
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
    /// At most `cap` findings per tenant, in memory only.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            inner: Mutex::new(HashMap::new()),
            journal: None,
            journaled: Mutex::new(HashMap::new()),
            write_errors: Arc::new(AtomicU64::new(0)),
            shared: Mutex::new(shared::SharedFindings::default()),
        }
    }

    /// At most `cap` findings per tenant, persisted in `journal`; loads what it holds.
    /// Damaged records are reported and skipped; a shredded tenant's findings are gone.
    pub fn open(cap: usize, journal: JournalWriter) -> anyhow::Result<Self> {
        let mut s = Self::new(cap);
        let mut inner = HashMap::new();
        let mut journaled = HashMap::new();
        for tenant in journal.journal().tenants()? {
            let loaded = journal.journal().load(&tenant)?;
            for (offset, why) in &loaded.damaged {
                tracing::error!(tenant = %tenant, offset, reason = %why, "findings journal: damaged record skipped");
            }
            let mut q = VecDeque::new();
            for rec in &loaded.records {
                match serde_json::from_slice::<Finding>(rec) {
                    Ok(f) if f.tenant == tenant => q.push_back(f),
                    Ok(f) => {
                        tracing::error!(tenant = %tenant, other = %f.tenant, "findings journal: record of another tenant skipped")
                    }
                    Err(e) => {
                        tracing::error!(tenant = %tenant, error = %e, "findings journal: unreadable finding skipped")
                    }
                }
            }
            while q.len() > s.cap {
                q.pop_front();
            }
            journaled.insert(tenant.clone(), loaded.records.len());
            inner.insert(tenant, q);
        }
        s.inner = Mutex::new(inner);
        s.journaled = Mutex::new(journaled);
        s.journal = Some(journal);
        Ok(s)
    }

    /// Adds a finding, dropping the tenant's oldest beyond the bound.
    pub fn push(&self, f: Finding) {
        let tenant = f.tenant.clone();
        self.push_all(&tenant, vec![f]);
    }

    /// Adds one tenant's findings, dropping the oldest beyond the bound, and queues them
    /// for the journal (never waits on I/O). A failed journal write is logged and counted;
    /// the findings stay queryable in memory and were already handed to the sinks.
    pub fn push_all(&self, tenant: &TenantId, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        if let Some(j) = &self.journal {
            let recs: Vec<Vec<u8>> = findings
                .iter()
                .filter_map(|f| serde_json::to_vec(f).ok())
                .collect();
            let n = recs.len();
            match j.append(
                tenant,
                recs,
                Some(self.on_error(
                    "findings journal write failed; findings kept in memory only",
                    tenant,
                )),
            ) {
                Ok(()) => {
                    if let Ok(mut g) = self.journaled.lock() {
                        *g.entry(tenant.clone()).or_default() += n;
                    }
                }
                Err(e) => {
                    self.write_errors.fetch_add(1, Relaxed);
                    tracing::error!(tenant = %tenant, error = %e, "findings journal write not queued; findings kept in memory only");
                }
            }
        }
        if let Ok(mut s) = self.shared.lock() {
            s.dirty.insert(tenant.clone());
        }
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let q = g.entry(tenant.clone()).or_default();
        for f in findings {
            if q.len() >= self.cap {
                q.pop_front();
            }
            q.push_back(f);
        }
        self.compact(tenant, q);
    }

    /// A callback for the writer thread that logs and counts a failed write.
    fn on_error(
        &self,
        what: &'static str,
        tenant: &TenantId,
    ) -> sentrace_store::group_commit::Done {
        let errors = self.write_errors.clone();
        let tenant = tenant.clone();
        Box::new(move |r| {
            if let Err(e) = r {
                errors.fetch_add(1, Relaxed);
                tracing::error!(tenant = %tenant, error = %e, "{what}");
            }
        })
    }

    /// Queues a rewrite of the tenant's journal to the ring's content once it holds more
    /// than twice the bound, so the file stays bounded too.
    fn compact(&self, tenant: &TenantId, q: &VecDeque<Finding>) {
        let Some(j) = &self.journal else { return };
        let Ok(mut journaled) = self.journaled.lock() else {
            return;
        };
        let n = journaled.get(tenant).copied().unwrap_or(0);
        if n <= self.cap.saturating_mul(2) {
            return;
        }
        let recs: Vec<Vec<u8>> = q
            .iter()
            .filter_map(|f| serde_json::to_vec(f).ok())
            .collect();
        let n = recs.len();
        match j.rewrite(
            tenant,
            recs,
            Some(self.on_error("findings journal compaction failed", tenant)),
        ) {
            Ok(()) => {
                journaled.insert(tenant.clone(), n);
            }
            Err(e) => {
                self.write_errors.fetch_add(1, Relaxed);
                tracing::error!(tenant = %tenant, error = %e, "findings journal compaction not queued");
            }
        }
    }

    /// Where the journal's writer is now: take it before a batch's findings are pushed.
    pub fn mark(&self) -> Option<Mark> {
        self.journal.as_ref().map(JournalWriter::mark)
    }

    /// Waits until every finding queued so far is durable. A failed write does not fail
    /// the wait (it was logged and counted; the findings are in memory and the sinks have
    /// them), as before the writer thread.
    pub async fn wait_since(&self, mark: Option<Mark>) {
        if let (Some(j), Some(m)) = (&self.journal, mark) {
            let _ = j.wait_since(m).await;
        }
    }

    /// Journal writes that failed since start.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Relaxed)
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

    /// The tenant's finding with this uid, if it is still kept.
    pub fn get(&self, tenant: &TenantId, uid: &str) -> Option<Finding> {
        let own = self
            .inner
            .lock()
            .ok()
            .and_then(|g| g.get(tenant)?.iter().rev().find(|f| f.uid == uid).cloned());
        own.or_else(|| self.get_peer(tenant, uid))
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

#[path = "findings_shared.rs"]
pub mod shared;

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
            downgraded: false,
        };
        f.uid = f.compute_uid();
        f
    }

    #[test]
    fn persisted_across_restart_and_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = std::sync::Arc::new(
            sentrace_store::KeyRing::open(
                &dir.path().join("keys"),
                &sentrace_store::MasterKey::from_bytes([9; 32]),
            )
            .unwrap(),
        );
        let open = || {
            let j = sentrace_store::Journal::open(
                &dir.path().join("findings"),
                "findings",
                keys.clone(),
            )
            .unwrap();
            FindingStore::open(3, JournalWriter::start(j).unwrap()).unwrap()
        };
        let s = open();
        for n in 1..=10 {
            s.push(finding("a", n, Severity::High, Family::Sqli));
        }
        s.push(finding("b", 20, Severity::Low, Family::Xss));
        let all = FindingFilter {
            limit: 100,
            ..Default::default()
        };
        let a = TenantId::new("a").unwrap();
        let times = |s: &FindingStore| -> Vec<u64> {
            s.query(&a, &all)
                .iter()
                .map(|f| f.time_unix_nanos)
                .collect()
        };
        assert_eq!(times(&s), vec![10000, 9000, 8000]);
        drop(s);
        // A restart finds the same findings, and the journal stayed bounded (compacted).
        let s = open();
        assert_eq!(times(&s), vec![10000, 9000, 8000]);
        assert_eq!(s.len(), 4);
        assert!(s.journaled.lock().unwrap()[&a] <= 6);
        let raw = std::fs::read(dir.path().join("findings/a.journal")).unwrap();
        assert!(
            !raw.windows(9).any(|w| w == b"url.query"),
            "encrypted at rest"
        );
        assert_eq!(s.write_errors(), 0);
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
