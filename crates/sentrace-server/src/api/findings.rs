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

use sentrace_access::authz::Action;
use sentrace_query::service::{Gate, QueryError, Returned};

use super::query_error;
use crate::app::{AppState, Reader};
use crate::detect::findings::FindingFilter;

/// Most findings one request returns.
pub const MAX_LIMIT: usize = 1000;
/// Findings returned when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Longest `family` or `rule` parameter, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The bounds docs/openapi.yaml gives: `limit` 1 to [`MAX_LIMIT`], `since` before `until`,
/// names of at most [`MAX_NAME_LEN`] bytes. The message names the parameter.
fn check_bounds(q: &FindingsQuery) -> Result<(), String> {
    if let Some(n) = q.limit
        && !(1..=MAX_LIMIT).contains(&n)
    {
        return Err(format!(
            "parameter \"limit\": must be 1 to {MAX_LIMIT}, got {n}"
        ));
    }
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s >= u
    {
        return Err(format!(
            "parameter \"since\": must be before until ({s} is not before {u})"
        ));
    }
    for (name, v) in [("family", &q.family), ("rule", &q.rule)] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_NAME_LEN) {
            return Err(format!(
                "parameter {name:?}: longer than {MAX_NAME_LEN} bytes"
            ));
        }
    }
    Ok(())
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    super::problem(status, msg)
}

/// Opens the read_findings gate for `endpoint`, or the refusal to answer with.
async fn gate(
    st: &AppState,
    caller: &sentrace_query::service::Caller,
    endpoint: &str,
    filter: std::collections::BTreeMap<String, String>,
) -> Result<Gate, Response> {
    st.query
        .authorize(caller, Action::ReadFindings, endpoint, filter)
        .await
        .map_err(query_error)
}

/// Finishes `gate` (audit) and renders `value` as JSON.
async fn answer<T: serde::Serialize>(
    st: &AppState,
    gate: Gate,
    result: Result<(T, Returned), QueryError>,
) -> Response {
    match gate.finish(&st.query, result).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => query_error(e),
    }
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
    /// Most findings (default 100, 1 to 1000).
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
    Reader(caller): Reader,
    q: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
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
    if let Err(msg) = check_bounds(&q) {
        return err(StatusCode::BAD_REQUEST, msg);
    }
    let filter = FindingFilter {
        since_unix_nanos: q.since,
        until_unix_nanos: q.until,
        min_severity,
        family: q.family,
        rule: q.rule,
        trace_id,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let mut details = std::collections::BTreeMap::new();
    details.insert("limit".to_string(), filter.limit.to_string());
    if let Some(t) = &filter.trace_id {
        details.insert("trace_id".into(), t.clone());
    }
    if let Some(f) = &filter.family {
        details.insert("family".into(), f.clone());
    }
    let gate = match gate(&st, &caller, "GET /api/findings", details).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    // This node's findings and, sharing a bucket, the other nodes' (each with its node in
    // the OCSF `unmapped` object).
    let list = rt.findings.query_origin(&caller.identity.tenant, &filter);
    let data: Vec<serde_json::Value> = list
        .iter()
        .map(|(node, f)| {
            let mut v = f.to_ocsf();
            if let Some(n) = node {
                v["unmapped"]["sentrace_node"] = serde_json::Value::from(&**n);
            }
            v
        })
        .collect();
    let mut trace_ids: Vec<String> = list
        .iter()
        .flat_map(|(_, f)| {
            f.evidences
                .iter()
                .filter_map(|e| e.trace_id.map(|t| t.to_hex()))
        })
        .collect();
    trace_ids.sort();
    trace_ids.dedup();
    let returned = Returned {
        trace_ids,
        items: data.len() as u64,
    };
    let body = serde_json::json!({ "total": data.len(), "data": data });
    answer(&st, gate, Ok((body, returned))).await
}

/// `GET /api/responses`: the tenant's response actions with status, and the quarantine.
pub async fn responses(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let Some(r) = st.detect.as_ref().and_then(|rt| rt.response.as_ref()) else {
        return err(StatusCode::NOT_FOUND, "automated response is disabled");
    };
    let gate = match gate(&st, &caller, "GET /api/responses", Default::default()).await {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let tenant = &caller.identity.tenant;
    let now = crate::auth::now_unix().saturating_mul(1_000_000_000);
    let (_, quarantined) = r.quarantined(tenant);
    let actions = r.list(tenant, now);
    let returned = Returned {
        trace_ids: Vec::new(),
        items: actions.len() as u64,
    };
    let body = serde_json::json!({
        "actions": actions,
        "quarantined_spans": quarantined,
    });
    answer(&st, gate, Ok((body, returned))).await
}

/// `GET /api/responses/quarantine`: the tenant's quarantined spans as OTLP/JSON.
pub async fn quarantine(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let Some(r) = st.detect.as_ref().and_then(|rt| rt.response.as_ref()) else {
        return err(StatusCode::NOT_FOUND, "automated response is disabled");
    };
    let mut gate = match gate(
        &st,
        &caller,
        "GET /api/responses/quarantine",
        Default::default(),
    )
    .await
    {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let (resource_spans, _) = r.quarantined(&caller.identity.tenant);
    // Quarantined spans are trace contents: scoped and masked like any other read.
    let mut spans: Vec<sentrace_query::SpanView> = sentrace_query::split(resource_spans);
    let (_, shaped) = gate.scope().shape(Action::ReadTrace, &mut spans);
    let mut trace_ids: Vec<String> = spans
        .iter()
        .map(|v| hex::encode(&v.span().trace_id))
        .collect();
    trace_ids.sort();
    trace_ids.dedup();
    let returned = Returned {
        trace_ids,
        items: spans.len() as u64,
    };
    tracing::debug!(
        hidden = shaped.hidden,
        masked = shaped.masked,
        "quarantine read"
    );
    let body = ExportTraceServiceRequest {
        resource_spans: sentrace_query::regroup(spans),
    };
    answer(&st, gate, Ok((body, returned))).await
}
