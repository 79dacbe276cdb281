//! `GET /api/audit`: the caller's tenant's audit log, for principals allowed `read_audit`
//! (auditors, admins). The search itself is audited like any other read.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use sentrace_access::authz::Action;
use sentrace_query::service::{QueryError, Returned};

use super::{problem, query_error};
use crate::app::{AppState, Reader};
use crate::audit::AuditQuery;

/// `GET /api/audit?since=&until=&principal=&trace=&limit=&format=json|ocsf`.
pub async fn search(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let mut filter = BTreeMap::new();
    for (k, v) in [
        ("since", &q.since),
        ("until", &q.until),
        ("principal", &q.principal),
        ("trace", &q.trace),
    ] {
        if let Some(v) = v {
            filter.insert(k.to_string(), v.chars().take(256).collect());
        }
    }
    let gate = match st
        .query
        .authorize(&caller, Action::ReadAudit, "GET /api/audit", filter)
        .await
    {
        Ok(g) => g,
        Err(e) => return query_error(e),
    };
    let tenant = caller.identity.tenant.clone();
    let response = crate::audit::routes::search_response(&st.audit_log, Some(&tenant), q).await;
    let outcome = if response.status().is_success() {
        Ok(((), Returned::default()))
    } else {
        Err(QueryError::BadRequest(format!(
            "audit search answered {}",
            response.status()
        )))
    };
    // The search's own answer goes back as it is, once its audit record is written.
    match gate.finish(&st.query, outcome).await {
        Err(QueryError::AuditUnavailable) => query_error(QueryError::AuditUnavailable),
        _ => response,
    }
}
