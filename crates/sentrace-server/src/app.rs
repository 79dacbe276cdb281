//! Shared server state and the three routers (OTLP/gRPC, OTLP/HTTP, query).

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use sentrace_core::{Identity, Limits, Role};
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
}

/// An identity holding the `read` role, taken from the request's bearer token.
pub struct Reader(pub Identity);

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let creds = crate::auth::Credentials::from_http(&parts.headers, &parts.extensions);
        st.auth
            .check(creds, Role::Read)
            .await
            .map(Reader)
            .map_err(|e| {
                st.metrics.auth_failure();
                tracing::debug!(reason = %e, path = %parts.uri.path(), "query refused");
                ingest::http::auth_response(&e)
            })
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
        .fallback(api::not_found)
        .with_state(st)
}
