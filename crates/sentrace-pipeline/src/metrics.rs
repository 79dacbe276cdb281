//! The server's own counters, kept in one place and exported in the Prometheus text format
//! at `/metrics`. Every internal event that is counted goes through a method here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sentrace_core::TenantId;

/// Counters of one tenant: the only series a principal of that tenant sees (unless it is
/// an operator, who also sees the node-wide sums).
#[derive(Default, Clone, Copy)]
struct TenantCounters {
    spans_accepted: u64,
    spans_rejected: u64,
    queries: u64,
}

/// Most tenants with their own series (tenants come from verified credentials only).
const MAX_TENANT_SERIES: usize = 10_000;

/// Counters since start.
#[derive(Default)]
pub struct Metrics {
    exporters: Vec<crate::pipeline::Exporter>,
    ingest_requests_grpc: AtomicU64,
    ingest_requests_http: AtomicU64,
    ingest_spans_accepted: AtomicU64,
    ingest_spans_rejected: AtomicU64,
    ingest_rejected_invalid: AtomicU64,
    ingest_rejected_busy: AtomicU64,
    ingest_failed_internal: AtomicU64,
    auth_failures: AtomicU64,
    query_requests: AtomicU64,
    tenants: Mutex<BTreeMap<TenantId, TenantCounters>>,
}

/// Which protocol a request came in on.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Metrics {
    /// Counters plus the stages' own exporters.
    pub fn new(exporters: Vec<crate::pipeline::Exporter>) -> Self {
        Self {
            exporters,
            ..Default::default()
        }
    }

    /// An ingest request arrived (before authentication).
    pub fn ingest_request(&self, p: Protocol) {
        match p {
            Protocol::Grpc => &self.ingest_requests_grpc,
            Protocol::Http => &self.ingest_requests_http,
        }
        .fetch_add(1, Relaxed);
    }

    /// Spans stored for one request of `tenant`, and spans a stage set aside.
    pub fn ingest_accepted(&self, tenant: &TenantId, accepted: u64, rejected: u64) {
        self.ingest_spans_accepted.fetch_add(accepted, Relaxed);
        self.ingest_spans_rejected.fetch_add(rejected, Relaxed);
        self.tenant(tenant, |c| {
            c.spans_accepted = c.spans_accepted.saturating_add(accepted);
            c.spans_rejected = c.spans_rejected.saturating_add(rejected);
        });
    }

    fn tenant(&self, tenant: &TenantId, f: impl FnOnce(&mut TenantCounters)) {
        let mut t = match self.tenants.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if let Some(c) = t.get_mut(tenant) {
            f(c);
        } else if t.len() < MAX_TENANT_SERIES {
            f(t.entry(tenant.clone()).or_default());
        }
    }

    /// An authenticated query of `tenant`.
    pub fn tenant_query(&self, tenant: &TenantId) {
        self.tenant(tenant, |c| c.queries = c.queries.saturating_add(1));
    }

    /// What a reader of `tenant` may see: that tenant's own series, and the node-wide
    /// series too when `node_wide` (operators).
    pub fn render_for(&self, tenant: &TenantId, node_wide: bool) -> String {
        let mut out = if node_wide {
            self.render()
        } else {
            String::new()
        };
        let c = match self.tenants.lock() {
            Ok(t) => t.get(tenant).copied().unwrap_or_default(),
            Err(p) => p.into_inner().get(tenant).copied().unwrap_or_default(),
        };
        let t = tenant.as_str();
        let _ = writeln!(
            out,
            "# HELP sentrace_tenant_spans_total Spans of this tenant by outcome.\n# TYPE sentrace_tenant_spans_total counter"
        );
        let _ = writeln!(
            out,
            "sentrace_tenant_spans_total{{tenant=\"{t}\",outcome=\"accepted\"}} {}",
            c.spans_accepted
        );
        let _ = writeln!(
            out,
            "sentrace_tenant_spans_total{{tenant=\"{t}\",outcome=\"rejected\"}} {}",
            c.spans_rejected
        );
        let _ = writeln!(
            out,
            "# HELP sentrace_tenant_queries_total Authenticated query requests of this tenant.\n# TYPE sentrace_tenant_queries_total counter"
        );
        let _ = writeln!(
            out,
            "sentrace_tenant_queries_total{{tenant=\"{t}\"}} {}",
            c.queries
        );
        out
    }

    /// A request was refused as invalid.
    pub fn ingest_invalid(&self) {
        self.ingest_rejected_invalid.fetch_add(1, Relaxed);
    }

    /// A request was refused because the store was busy.
    pub fn ingest_busy(&self) {
        self.ingest_rejected_busy.fetch_add(1, Relaxed);
    }

    /// A request failed on the server side.
    pub fn ingest_internal(&self) {
        self.ingest_failed_internal.fetch_add(1, Relaxed);
    }

    /// A credential was refused.
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    /// A query API request was served.
    pub fn query_request(&self) {
        self.query_requests.fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, &AtomicU64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {}", v.load(Relaxed));
            }
        };
        counter(
            "sentrace_ingest_requests_total",
            "OTLP export requests received.",
            &[
                ("{protocol=\"grpc\"}", &self.ingest_requests_grpc),
                ("{protocol=\"http\"}", &self.ingest_requests_http),
            ],
        );
        counter(
            "sentrace_ingest_spans_total",
            "Spans by outcome.",
            &[
                ("{outcome=\"accepted\"}", &self.ingest_spans_accepted),
                ("{outcome=\"rejected\"}", &self.ingest_spans_rejected),
            ],
        );
        counter(
            "sentrace_ingest_refused_total",
            "Export requests refused whole, by reason.",
            &[
                ("{reason=\"invalid\"}", &self.ingest_rejected_invalid),
                ("{reason=\"busy\"}", &self.ingest_rejected_busy),
                ("{reason=\"internal\"}", &self.ingest_failed_internal),
            ],
        );
        counter(
            "sentrace_auth_failures_total",
            "Requests refused for a missing, bad, expired or revoked credential.",
            &[("", &self.auth_failures)],
        );
        counter(
            "sentrace_query_requests_total",
            "Query API requests served.",
            &[("", &self.query_requests)],
        );
        for e in &self.exporters {
            out.push_str(&e());
        }
        out
    }
}
