//! Shared server state and the three routers (OTLP/gRPC, OTLP/HTTP, query).

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use sentrace_core::{Identity, Limits};
use sentrace_query::service::{Caller, QueryService};
use sentrace_store::Store;

use crate::api;
use crate::auth::Authenticator;
use crate::ingest;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// Everything a request handler may need.
pub struct AppState {
    /// Token checks.
    pub auth: Authenticator,
    /// Web console sessions (the cookie [`Reader`] also accepts).
    pub sessions: crate::console::Sessions,
    /// The ingest pipeline.
    pub pipeline: Pipeline,
    /// The store, for reads.
    pub store: Store,
    /// Request limits.
    pub limits: Limits,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The transparency logs (None when `[seal] enabled = false`).
    pub seal: Option<Arc<crate::seal::Seal>>,
    /// Threat detection and response (None when `[detect] enabled = false`).
    pub detect: Option<Arc<crate::detect::Runtime>>,
    /// Signed sources: registry, replay state and counters.
    pub sources: Arc<crate::sources::Sources>,
    /// Where the query service writes one audit record per read, authentication failure
    /// and admin action (durable before the answer; an error means 503). See
    /// [`crate::audit::record_auth_failure`] for authentication failures.
    pub audit: Arc<dyn sentrace_query::audit::AuditSink>,
    /// The same audit logs, for reading them back ([`crate::audit::AuditLog::search`]).
    pub audit_log: Arc<crate::audit::AuditLog>,
    /// The read path: authorization, scoping, masking and audit of every read.
    pub query: QueryService,
    /// Break-glass grants.
    pub break_glass: Arc<crate::breakglass::BreakGlass>,
    /// The reversible-token vault (de-tokenizing is authorized and audited).
    pub vault: Arc<sentrace_store::Vault>,
    /// The tenant whose principals may see node-wide metrics (`[access] operator_tenant`).
    pub operator_tenant: Option<sentrace_core::TenantId>,
    /// Readiness: listeners bound, not shutting down.
    pub health: Arc<api::health::Health>,
    /// The console's security views: exposure, integrity, map overlay, admin inventory.
    pub secviews: Arc<crate::secviews::SecViews>,
}

/// The verified caller of a query request: identity, remote address and break-glass grant.
/// What it may read is decided by the query service's policies, not here.
pub struct Reader(pub Caller);

impl Reader {
    /// The caller's identity.
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        st.metrics.query_request();
        let creds = crate::auth::Credentials::from_http(&parts.headers, &parts.extensions);
        // A console session cookie stands in for a missing bearer header (CSRF-checked).
        let session = crate::console::session_bearer(st, &parts.method, &parts.uri, &parts.headers)
            .map_err(|e| crate::console::refusal(&e))?;
        let creds = crate::auth::Credentials {
            authorization: creds
                .authorization
                .or(session.as_ref().map(|(b, _)| b.as_str())),
            ..creds
        };
        let source = creds.remote().map(|a| a.ip().to_string());
        let authed = st.auth.authenticate(creds).await;
        // A session whose credential no longer authenticates (revoked, expired) ends now.
        if let (Err(_), Some((_, key))) = (&authed, &session) {
            st.sessions.end(key);
        }
        let identity = match authed {
            Ok(id) => id,
            Err(e) => {
                st.metrics.auth_failure("query");
                let endpoint = format!("{} {}", parts.method, parts.uri.path());
                crate::auth::failure_log::log_refused(&e, &endpoint, source.as_deref());
                return Err(api::unauthenticated(st, &e, creds, source, &endpoint).await);
            }
        };
        st.metrics.tenant_query(&identity.tenant);
        let mut caller = Caller {
            identity,
            source,
            break_glass: None,
        };
        if let Some(grant) = parts.headers.get(crate::breakglass::HEADER) {
            let id = grant.to_str().unwrap_or("");
            match st.break_glass.resolve(&caller.identity, id) {
                Ok(used) => caller.break_glass = Some(used),
                Err(e) => return Err(api::problem(StatusCode::FORBIDDEN, e.to_string())),
            }
        }
        Ok(Reader(caller))
    }
}

/// OTLP/gRPC on its own port.
pub fn grpc_router(st: Arc<AppState>) -> Router {
    ingest::grpc::router(st)
}

/// OTLP/HTTP on its own port.
pub fn otlp_http_router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/traces", post(ingest::http::export))
        .with_state(st)
}

/// The query API: Jaeger's HTTP API, the native API and metrics.
pub fn query_router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/api/services", get(api::jaeger::services))
        .route(
            "/api/services/{service}/operations",
            get(api::jaeger::service_operations),
        )
        .route("/api/operations", get(api::jaeger::operations))
        .route("/api/traces", get(api::jaeger::search))
        .route("/api/traces/{trace_id}", get(api::jaeger::trace))
        .route("/api/dependencies", get(api::jaeger::dependencies))
        .route("/v1/traces/{trace_id}", get(api::native::trace))
        .route("/metrics", get(api::native::metrics))
        .merge(crate::console::router(st.sessions.config().enabled))
        .route(
            crate::seal::routes::CHECKPOINT_ROUTE,
            get(crate::seal::routes::checkpoint),
        )
        .route(
            crate::seal::routes::TILE_ROUTE,
            get(crate::seal::routes::tile),
        )
        .route(
            crate::seal::routes::KEYS_ROUTE,
            get(crate::seal::routes::log_keys),
        )
        .route(
            crate::seal::remote::LOG_ROUTE,
            get(crate::seal::remote::log_info),
        )
        .route(
            crate::seal::remote::BATCHES_ROUTE,
            get(crate::seal::remote::batches),
        )
        .route("/api/findings", get(api::findings::findings))
        .route(
            crate::sources::routes::ROUTE,
            get(crate::sources::routes::list),
        )
        .route("/api/responses", get(api::findings::responses))
        .route("/api/responses/quarantine", get(api::findings::quarantine))
        .route(
            "/api/break-glass",
            get(api::breakglass::list).post(api::breakglass::open),
        )
        .route(
            "/api/break-glass/{id}/approve",
            post(api::breakglass::approve),
        )
        .route(
            "/api/break-glass/{id}",
            axum::routing::delete(api::breakglass::close),
        )
        .route("/api/detokenize", get(api::breakglass::detokenize))
        .route("/api/audit", get(api::audit::search))
        .route("/api/exposure", get(crate::secviews::exposure::exposure))
        .route("/api/integrity", get(crate::secviews::integrity::integrity))
        .route(
            "/api/integrity/verify",
            post(crate::secviews::integrity::verify),
        )
        .route("/api/map", get(crate::secviews::map::map))
        .route(
            "/api/findings/{id}",
            get(crate::secviews::findings::finding),
        )
        .route(
            "/api/responses/{id}/undo",
            post(crate::secviews::findings::undo),
        )
        .route("/api/admin/tokens", get(crate::secviews::admin::tokens))
        .route("/api/admin/keys", get(crate::secviews::admin::keys))
        .route("/tempo/api/echo", get(api::tempo::echo))
        .route("/tempo/api/traces/{trace_id}", get(api::tempo::trace))
        .route("/tempo/api/v2/traces/{trace_id}", get(api::tempo::trace_v2))
        .route("/tempo/api/search", get(api::tempo::search))
        .route("/tempo/api/search/tags", get(api::tempo::tags))
        .route("/tempo/api/v2/search/tags", get(api::tempo::tags_v2))
        .route(
            "/tempo/api/search/tag/{tag}/values",
            get(api::tempo::tag_values),
        )
        .route(
            "/tempo/api/v2/search/tag/{tag}/values",
            get(api::tempo::tag_values_v2),
        )
        .fallback(api::not_found)
        .with_state(st)
}
