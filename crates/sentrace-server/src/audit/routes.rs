//! The auditors' API, `GET /api/audit?since=&until=&principal=&trace=&limit=&format=`:
//! the handler body, for a reader the query service has already authenticated and
//! authorized (`read_audit` on the tenant). The route itself is wired where the query
//! service wires its routes, so that the search is authorized and itself audited there.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentrace_core::TenantId;

use super::search::AuditQuery;
use super::{AuditLog, now_nanos, ocsf};

/// Searches `tenant`'s audit log (the node's own with `None`) and renders the answer:
/// 400 with a message naming the bad parameter, 503 if the log cannot be read, else 200
/// with `{"data": [{origin, index, record}...], "truncated": n, "unreadable": n}`, or
/// with `format=ocsf` OCSF API Activity events as JSON lines (`application/x-ndjson`).
pub async fn search_response(
    log: &AuditLog,
    tenant: Option<&TenantId>,
    query: AuditQuery,
) -> Response {
    let filter = match query.to_filter(now_nanos()) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "errors": [{ "code": 400, "msg": e }] })),
            )
                .into_response();
        }
    };
    let found = match log.search(tenant, filter).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "audit search failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "errors": [{ "code": 503, "msg": "audit log unavailable" }] })),
            )
                .into_response();
        }
    };
    if query.format.as_deref() == Some("ocsf") {
        let mut body = String::new();
        for e in &found.entries {
            body.push_str(&ocsf::to_ocsf(e).to_string());
            body.push('\n');
        }
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }
    axum::Json(serde_json::json!({
        "data": found.entries,
        "truncated": found.truncated,
        "unreadable": found.unreadable,
    }))
    .into_response()
}
