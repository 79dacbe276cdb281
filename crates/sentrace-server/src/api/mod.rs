//! Query APIs. Handlers parse, call the query service ([`sentrace_query::service`]) and
//! render; none touches the store, and none decides who may read what.

pub mod audit;
pub mod breakglass;
pub mod findings;
pub mod health;
pub mod jaeger;
pub mod native;
pub mod tempo;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::AuthError;
use sentrace_query::service::QueryError;

use crate::app::AppState;
use crate::auth::Credentials;

pub use sentrace_query::service::{dedup, parse_trace_id, views};

/// Unknown paths.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// A JSON error answer `{"error": msg}`.
pub fn problem(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// The HTTP status of a query error.
pub fn status_of(e: &QueryError) -> StatusCode {
    match e {
        QueryError::BadRequest(_) => StatusCode::BAD_REQUEST,
        QueryError::Forbidden { .. } => StatusCode::FORBIDDEN,
        QueryError::NotFound(_) => StatusCode::NOT_FOUND,
        QueryError::Erased { .. } => StatusCode::GONE,
        QueryError::Unavailable | QueryError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A query error as `{"error": msg}`.
pub fn query_error(e: QueryError) -> Response {
    problem(status_of(&e), e.to_string())
}

/// The non-secret name of a refused credential, for the audit record: an API token's id,
/// a JWT's issuer, or nothing.
pub fn credential_hint(creds: &Credentials<'_>) -> String {
    let Some(h) = creds.authorization else {
        return "none".into();
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .unwrap_or("");
    if let Some(rest) = token.strip_prefix(sentrace_access::TOKEN_PREFIX) {
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .take(16)
            .collect();
        if id.len() == 16 {
            return format!("token:{id}");
        }
    }
    if let Ok(iss) = sentrace_access::jwt::unverified_issuer(token) {
        // The claimed issuer (unverified, so only a hint), printable and bounded.
        let iss: String = iss.chars().filter(|c| !c.is_control()).take(256).collect();
        return format!("jwt-claimed-issuer:{iss}");
    }
    "unrecognized".into()
}

/// Records an authentication failure in the node's audit log and answers the bare 401.
pub async fn unauthenticated(
    st: &AppState,
    e: &AuthError,
    creds: Credentials<'_>,
    source: Option<String>,
    endpoint: &str,
) -> Response {
    st.query
        .audit_unauthenticated(&credential_hint(&creds), source, endpoint, &e.to_string())
        .await;
    crate::ingest::http::auth_response(e)
}

/// Runs a non-trace read behind the query service's gate: authorize `action` on the
/// caller's tenant, `read`, audit what left. The value, or the response to answer with.
pub async fn gated<T>(
    st: &AppState,
    caller: &sentrace_query::service::Caller,
    action: sentrace_access::authz::Action,
    endpoint: &str,
    filter: std::collections::BTreeMap<String, String>,
    read: impl FnOnce(
        &mut sentrace_query::service::Gate,
    ) -> Result<(T, sentrace_query::service::Returned), QueryError>,
) -> Result<T, Response> {
    let mut gate = st
        .query
        .authorize(caller, action, endpoint, filter)
        .await
        .map_err(query_error)?;
    let result = read(&mut gate);
    gate.finish(&st.query, result).await.map_err(query_error)
}
