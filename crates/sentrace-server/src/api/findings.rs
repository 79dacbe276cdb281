//! `GET /api/findings` and `GET /api/responses`: detection findings (OCSF 1.3 Detection
//! Finding JSON) and response actions of the caller's tenant. Read role; tenant from token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_detect::Severity;
use serde::Deserialize;

use crate::app::{AppState, Reader};
use crate::detect::findings::FindingFilter;

/// Most findings one request returns.
pub const MAX_LIMIT: usize = 1000;

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// Query parameters of `GET /api/findings`. Times are Unix nanoseconds or RFC 3339-free
/// integers only, to keep parsing strict.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// Findings at or after this time (Unix ns).
    since: Option<u64>,
    /// Findings before this time (Unix ns).
    until: Option<u64>,
    /// Lowest severity: info, low, medium, high, critical.
    severity: Option<String>,
    /// Family (`sqli`, `xss`, ...).
    family: Option<String>,
    /// Rule id.
    rule: Option<String>,
    /// Trace id, hex.
    trace_id: Option<String>,
    /// Most findings (default 100, at most 1000).
    limit: Option<usize>,
}

fn severity(s: &str) -> Option<Severity> {
    Some(match s {
        "info" => Severity::Info,
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => return None,
    })
}

/// `GET /api/findings`: `{"data": [OCSF findings, newest first], "total": n}`.
pub async fn findings(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    q: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    st.metrics.query_request();
    let Some(rt) = &st.detect else {
        return err(
            StatusCode::NOT_FOUND,
            "detection is disabled ([detect] enabled = false)",
        );
    };
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let min_severity = match q.severity.as_deref() {
        None => None,
        Some(s) => match severity(s) {
            Some(v) => Some(v),
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("severity {s:?} is not one of info, low, medium, high, critical"),
                );
            }
        },
    };
    let trace_id = match q.trace_id.as_deref() {
        None => None,
        Some(t) => match super::parse_trace_id(t) {
            Ok(t) => Some(t.to_hex()),
            Err(e) => return err(StatusCode::BAD_REQUEST, e),
        },
    };
    let filter = FindingFilter {
        since_unix_nanos: q.since,
        until_unix_nanos: q.until,
        min_severity,
        family: q.family,
        rule: q.rule,
        trace_id,
        limit: q.limit.unwrap_or(100).min(MAX_LIMIT),
    };
    let list = rt.findings.query(&id.tenant, &filter);
    let data: Vec<serde_json::Value> = list.iter().map(|f| f.to_ocsf()).collect();
    Json(serde_json::json!({ "total": data.len(), "data": data })).into_response()
}

/// `GET /api/responses`: the tenant's response actions with status, and the quarantine.
pub async fn responses(State(st): State<Arc<AppState>>, Reader(id): Reader) -> Response {
    st.metrics.query_request();
    let Some(r) = st.detect.as_ref().and_then(|rt| rt.response.as_ref()) else {
        return err(StatusCode::NOT_FOUND, "automated response is disabled");
    };
    let now = crate::auth::now_unix().saturating_mul(1_000_000_000);
    let (_, quarantined) = r.quarantined(&id.tenant);
    Json(serde_json::json!({
        "actions": r.list(&id.tenant, now),
        "quarantined_spans": quarantined,
    }))
    .into_response()
}

/// `GET /api/responses/quarantine`: the tenant's quarantined spans as OTLP/JSON.
pub async fn quarantine(State(st): State<Arc<AppState>>, Reader(id): Reader) -> Response {
    st.metrics.query_request();
    let Some(r) = st.detect.as_ref().and_then(|rt| rt.response.as_ref()) else {
        return err(StatusCode::NOT_FOUND, "automated response is disabled");
    };
    let (resource_spans, _) = r.quarantined(&id.tenant);
    Json(ExportTraceServiceRequest { resource_spans }).into_response()
}
