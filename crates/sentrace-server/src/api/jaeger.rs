//! The Jaeger HTTP query API, as Jaeger UI and Grafana's Jaeger data source call it.
//! Parse, call the query service, render Jaeger's envelope.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_query::SearchParams;
use sentrace_query::jaeger::{self, ApiError, Envelope, Operation};
use sentrace_query::service::QueryError;

use super::status_of;
use crate::app::{AppState, Reader};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A Jaeger-shaped error answer.
pub fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = Envelope {
        data: serde_json::Value::Null,
        total: 0,
        limit: 0,
        offset: 0,
        errors: Some(vec![ApiError {
            code: status.as_u16(),
            msg: msg.into(),
            trace_id: None,
        }]),
    };
    (status, Json(body)).into_response()
}

/// A query error in Jaeger's envelope.
fn failed(e: QueryError) -> Response {
    error(status_of(&e), e.to_string())
}

fn pairs(q: Option<String>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A Jaeger list answer.
fn list<T: serde::Serialize>(items: Vec<T>) -> Response {
    let n = items.len();
    Json(Envelope::new(items, n)).into_response()
}

/// `GET /api/services`.
pub async fn services(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    match st.query.services(&caller, "GET /api/services").await {
        Ok(s) => list(s),
        Err(e) => failed(e),
    }
}

/// `GET /api/services/{service}/operations`: span names.
pub async fn service_operations(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(service): Path<String>,
) -> Response {
    let ops = st
        .query
        .operations(&caller, &service, "GET /api/services/{service}/operations")
        .await;
    match ops {
        Ok(ops) => {
            let mut names: Vec<String> = ops.into_iter().map(|(n, _)| n).collect();
            names.dedup();
            list(names)
        }
        Err(e) => failed(e),
    }
}

/// `GET /api/operations?service=&spanKind=`.
pub async fn operations(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let p = pairs(q);
    let get = |k: &str| p.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let Some(service) = get("service").filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "parameter \"service\" is required");
    };
    let kind = get("spanKind").filter(|s| !s.is_empty());
    if let Some(k) = kind
        && !jaeger::SPAN_KINDS.contains(&k)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "parameter \"spanKind\": {:?} is not one of {}",
                k.chars().take(40).collect::<String>(),
                jaeger::SPAN_KINDS.join(", ")
            ),
        );
    }
    match st
        .query
        .operations(&caller, service, "GET /api/operations")
        .await
    {
        Ok(ops) => list(
            ops.into_iter()
                .map(|(name, k)| Operation {
                    name,
                    span_kind: jaeger::kind_name(k),
                })
                .filter(|o| kind.is_none_or(|k| k == o.span_kind))
                .collect::<Vec<_>>(),
        ),
        Err(e) => failed(e),
    }
}

/// `GET /api/traces/{traceID}`.
pub async fn trace(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(trace_id): Path<String>,
) -> Response {
    match st
        .query
        .trace(&caller, &trace_id, "GET /api/traces/{traceID}")
        .await
    {
        Ok(answer) => list(jaeger::to_traces(&answer.spans)),
        Err(e) => failed(e),
    }
}

/// `GET /api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=`,
/// or `GET /api/traces?traceID=A&traceID=B`: exactly those traces, with a `trace not found`
/// error per id the caller cannot see, as Jaeger answers.
pub async fn search(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let params = match SearchParams::from_pairs(&pairs(q), now_nanos()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if !params.trace_ids.is_empty() {
        return by_ids(&st, &caller, &params.trace_ids).await;
    }
    match st.query.search(&caller, &params, "GET /api/traces").await {
        Ok(found) => {
            let traces = jaeger::to_traces(&found.spans);
            let n = traces.len();
            let mut env = Envelope::new(traces, n);
            env.limit = params.limit;
            Json(env).into_response()
        }
        Err(e) => failed(e),
    }
}

async fn by_ids(
    st: &AppState,
    caller: &sentrace_query::service::Caller,
    ids: &[String],
) -> Response {
    match st
        .query
        .traces_by_ids(caller, ids, "GET /api/traces?traceID")
        .await
    {
        Ok(set) => {
            let traces = jaeger::to_traces(&set.found.spans);
            let n = traces.len();
            let mut env = Envelope::new(traces, n);
            if !set.missing.is_empty() {
                env.errors = Some(
                    set.missing
                        .iter()
                        .map(|t| ApiError {
                            code: 0,
                            msg: "trace not found".into(),
                            trace_id: Some(t.to_string()),
                        })
                        .collect(),
                );
            }
            Json(env).into_response()
        }
        Err(e) => failed(e),
    }
}

/// `GET /api/dependencies?endTs=&lookback=` (milliseconds).
pub async fn dependencies(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let p = pairs(q);
    let get_ms = |k: &str| -> Result<Option<u64>, String> {
        match p.iter().find(|(a, _)| a == k) {
            None => Ok(None),
            Some((_, v)) if v.is_empty() => Ok(None),
            Some((_, v)) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("parameter {k:?}: expected milliseconds")),
        }
    };
    let (end_ms, lookback_ms) = match (get_ms("endTs"), get_ms("lookback")) {
        (Ok(e), Ok(l)) => (e.unwrap_or(now_nanos() / 1_000_000), l.unwrap_or(3_600_000)),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    let deps = st
        .query
        .dependencies(
            &caller,
            end_ms.saturating_mul(1_000_000),
            lookback_ms.saturating_mul(1_000_000),
            "GET /api/dependencies",
        )
        .await;
    match deps {
        Ok(d) => list(d),
        Err(e) => failed(e),
    }
}
