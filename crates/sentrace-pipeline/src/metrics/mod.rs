//! The server's own metrics: one typed registry (`prometheus-client`), exported in the
//! OpenMetrics text format at `/metrics`. Every internal event that is counted goes through
//! a method here; components that keep their own counters (often in pure crates, as plain
//! atomics) are registered as [`export`] collectors and encoded at scrape time.
//!
//! Who sees what ([`Metrics::render_for`]): the node-wide families (no tenant label) only
//! an operator; every reader its own tenant's `sentrace_tenant_*` series, never another
//! tenant's.

pub mod export;
pub mod minimize;
mod node;
pub mod process;
mod tenants;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sentrace_core::TenantId;

use self::tenants::Tenants;

/// One label, with a fixed set of values.
type Label = [(&'static str, &'static str); 1];
/// A histogram family keyed by one label.
type Histograms = Family<Label, Histogram, fn() -> Histogram>;

/// Buckets of request and stage latencies: 100 µs to about 26 s, each ×2.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 19))
}

/// The `Content-Type` of `/metrics` answers for clients that do not ask for OpenMetrics:
/// the classic text parsers read the text as is (`# EOF` is a comment to them).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` for clients whose `Accept` names OpenMetrics (Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` to answer `/metrics` with, from the request's `Accept` header: the
/// text is OpenMetrics either way, labelled so when the client asks for it.
pub fn content_type(accept: Option<&str>) -> &'static str {
    match accept {
        Some(a) if a.contains("application/openmetrics-text") => OPENMETRICS_CONTENT_TYPE,
        _ => CONTENT_TYPE,
    }
}

/// The listeners, as named in the `listener` label.
pub const LISTENERS: [&str; 3] = ["otlp_grpc", "otlp_http", "query"];

/// Which protocol a request came in on.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }

    /// The listener this protocol is served on, as named in the `listener` label.
    pub fn listener(self) -> &'static str {
        match self {
            Protocol::Grpc => "otlp_grpc",
            Protocol::Http => "otlp_http",
        }
    }
}

/// The typed families and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    ingest_requests: Family<Label, Counter>,
    ingest_spans: Family<Label, Counter>,
    ingest_refused: Family<Label, Counter>,
    auth_failures: Family<Label, Counter>,
    query_requests: Counter,
    request_seconds: Histograms,
    stage_seconds: Histograms,
    tenants: Arc<Tenants>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Metrics {
    /// The families of this module, the process and build families, plus `collectors`
    /// (the stages' and components' own, see [`export`]).
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        // Help texts end without a period: the registry adds one.
        let mut registry = Registry::default();
        let ingest_requests = Family::<Label, Counter>::default();
        registry.register(
            "sentrace_ingest_requests",
            "OTLP export requests received, by protocol",
            ingest_requests.clone(),
        );
        let ingest_spans = Family::<Label, Counter>::default();
        registry.register(
            "sentrace_ingest_spans",
            "Spans by outcome (accepted: stored; rejected: set aside by a stage)",
            ingest_spans.clone(),
        );
        let ingest_refused = Family::<Label, Counter>::default();
        registry.register(
            "sentrace_ingest_refused",
            "Export requests refused whole, by reason",
            ingest_refused.clone(),
        );
        // The usual reasons are present from the start, at 0.
        for r in ["invalid", "busy", "internal"] {
            let _ = ingest_refused.get_or_create(&[("reason", r)]);
        }
        for p in [Protocol::Grpc, Protocol::Http] {
            let _ = ingest_requests.get_or_create(&[("protocol", p.label())]);
        }
        for o in ["accepted", "rejected"] {
            let _ = ingest_spans.get_or_create(&[("outcome", o)]);
        }
        let auth_failures = Family::<Label, Counter>::default();
        registry.register(
            "sentrace_auth_failures",
            "Requests refused for a missing, bad, expired or revoked credential, by listener",
            auth_failures.clone(),
        );
        for l in LISTENERS.into_iter().chain(["console"]) {
            let _ = auth_failures.get_or_create(&[("listener", l)]);
        }
        let query_requests = Counter::default();
        registry.register(
            "sentrace_query_requests",
            "Query API requests served",
            query_requests.clone(),
        );
        let request_seconds = Histograms::new_with_constructor(latency_histogram);
        registry.register(
            "sentrace_request_duration_seconds",
            "Time to answer a request, by listener (otlp_grpc, otlp_http, query), in seconds",
            request_seconds.clone(),
        );
        let stage_seconds = Histograms::new_with_constructor(latency_histogram);
        registry.register(
            "sentrace_ingest_stage_duration_seconds",
            "Time an export request spent in each ingest stage (decode, validate, \
             verify-source, detect, minimize, durable, encode, commit), in seconds",
            stage_seconds.clone(),
        );
        registry.register_collector(export::collector(process::encode));
        for c in collectors {
            registry.register_collector(c);
        }
        Self {
            registry,
            ingest_requests,
            ingest_spans,
            ingest_refused,
            auth_failures,
            query_requests,
            request_seconds,
            stage_seconds,
            tenants: Arc::new(Tenants::default()),
        }
    }

    /// Adds a component's families (before the metrics are shared).
    pub fn register(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// An ingest request arrived (before authentication).
    pub fn ingest_request(&self, p: Protocol) {
        self.ingest_requests
            .get_or_create(&[("protocol", p.label())])
            .inc();
    }

    /// Spans stored for one request of `tenant`, and spans a stage set aside.
    pub fn ingest_accepted(&self, tenant: &TenantId, accepted: u64, rejected: u64) {
        self.ingest_spans
            .get_or_create(&[("outcome", "accepted")])
            .inc_by(accepted);
        self.ingest_spans
            .get_or_create(&[("outcome", "rejected")])
            .inc_by(rejected);
        self.tenants.spans(tenant, accepted, rejected);
    }

    /// An authenticated query of `tenant`.
    pub fn tenant_query(&self, tenant: &TenantId) {
        self.tenants.query(tenant);
    }

    /// An export request was refused whole for `reason` (a short snake_case word:
    /// `invalid`, `busy`, `internal`, `too_large`, `unsupported_media_type`, …).
    pub fn ingest_refused(&self, reason: &'static str) {
        self.ingest_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// A request was refused as invalid.
    pub fn ingest_invalid(&self) {
        self.ingest_refused("invalid");
    }

    /// A request was refused because the store was busy.
    pub fn ingest_busy(&self) {
        self.ingest_refused("busy");
    }

    /// A request failed on the server side.
    pub fn ingest_internal(&self) {
        self.ingest_refused("internal");
    }

    /// A credential was refused on `listener` (one of [`LISTENERS`], or `console`).
    pub fn auth_failure(&self, listener: &'static str) {
        self.auth_failures
            .get_or_create(&[("listener", listener)])
            .inc();
    }

    /// A query API request was served.
    pub fn query_request(&self) {
        self.query_requests.inc();
    }

    /// A request on `listener` was answered after `took`.
    pub fn request_duration(&self, listener: &'static str, took: Duration) {
        self.request_seconds
            .get_or_create(&[("listener", listener)])
            .observe(took.as_secs_f64());
    }

    /// An ingest stage (`decode`, a [`sentrace_core::Stage`]'s name, `durable`, `encode`,
    /// `commit`) took `took` for one request.
    pub fn stage_duration(&self, stage: &'static str, took: Duration) {
        self.stage_seconds
            .get_or_create(&[("stage", stage)])
            .observe(took.as_secs_f64());
    }

    /// What a reader of `tenant` may see: that tenant's own series, and the node-wide
    /// series too when `node_wide` (operators). OpenMetrics text, ending in `# EOF`.
    pub fn render_for(&self, tenant: &TenantId, node_wide: bool) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a collector's error ends its part early.
        if node_wide {
            let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        }
        let mut own = Registry::default();
        own.register_collector(Box::new(self.tenants.view(tenant)));
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &own);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }

    /// Every node-wide family (what an operator sees, without tenant series).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
