//! The Jaeger HTTP query API, as Jaeger UI and Grafana's Jaeger data source call it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_query::jaeger::{self, ApiError, Envelope, Operation};
use sentrace_query::{SearchParams, SpanView};
use sentrace_store::{SpanFilter, StoreError};

use super::{dedup, parse_trace_id, views};
use crate::app::{AppState, Reader};

/// Most candidate spans' traces examined when a search has conditions the index cannot check.
const MAX_CANDIDATE_TRACES: usize = 10_000;

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
        }]),
    };
    (status, Json(body)).into_response()
}

/// Maps a store failure to a 503 (details go to the log, not the client).
pub fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "store read failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage error; retry later",
    )
}

fn pairs(q: Option<String>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A Jaeger list answer, sorted and without duplicates, or the store's error.
fn list<T: serde::Serialize + Ord>(items: Result<Vec<T>, StoreError>) -> Response {
    match items {
        Ok(mut items) => {
            items.sort();
            items.dedup();
            let n = items.len();
            Json(Envelope::new(items, n)).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// `GET /api/services`.
pub async fn services(State(st): State<Arc<AppState>>, Reader(id): Reader) -> Response {
    st.metrics.query_request();
    list(st.store.services(&id.tenant).await)
}

/// `GET /api/services/{service}/operations`: span names.
pub async fn service_operations(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    Path(service): Path<String>,
) -> Response {
    st.metrics.query_request();
    let ops = st.store.operations(&id.tenant, &service).await;
    list(ops.map(|ops| ops.into_iter().map(|(n, _)| n).collect()))
}

/// `GET /api/operations?service=&spanKind=`.
pub async fn operations(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    st.metrics.query_request();
    let p = pairs(q);
    let get = |k: &str| p.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let Some(service) = get("service").filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "parameter \"service\" is required");
    };
    let kind = get("spanKind").filter(|s| !s.is_empty());
    let ops = st.store.operations(&id.tenant, service).await;
    list(ops.map(|ops| {
        ops.into_iter()
            .map(|(name, k)| Operation {
                name,
                span_kind: jaeger::kind_name(k),
            })
            .filter(|o| kind.is_none_or(|k| k == o.span_kind))
            .collect::<Vec<_>>()
    }))
}

/// `GET /api/traces/{traceID}`.
pub async fn trace(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    Path(trace_id): Path<String>,
) -> Response {
    match load_trace(&st, &id.tenant, &trace_id).await {
        Ok(spans) => {
            let traces = jaeger::to_traces(&spans);
            let n = traces.len();
            Json(Envelope::new(traces, n)).into_response()
        }
        Err((status, msg)) => error(status, msg),
    }
}

/// Reads one trace of `tenant` by its id as clients send it: decoded, deduplicated views, or
/// the status and message to answer with (400 bad id, 404 unknown or another tenant's, 503).
pub async fn load_trace(
    st: &AppState,
    tenant: &sentrace_core::TenantId,
    raw_id: &str,
) -> Result<Vec<SpanView>, (StatusCode, String)> {
    st.metrics.query_request();
    let tid = parse_trace_id(raw_id).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    match st.store.trace(tenant, tid).await {
        Ok(entries) if entries.is_empty() => {
            Err((StatusCode::NOT_FOUND, "trace not found".to_string()))
        }
        Ok(entries) => Ok(dedup(views(&entries))),
        Err(e) => {
            tracing::error!(error = %e, "store read failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "storage error; retry later".to_string(),
            ))
        }
    }
}

/// `GET /api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=`.
pub async fn search(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    st.metrics.query_request();
    let params = match SearchParams::from_pairs(&pairs(q), now_nanos()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let index_only = params.tags.is_empty() && params.span_kind.is_none();
    let filter = SpanFilter {
        start_min_unix_nanos: params.start_min_nanos,
        start_max_unix_nanos: params.start_max_nanos,
        service: params.service.clone(),
        name: params.operation.clone(),
        min_duration_nanos: params
            .min_duration
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        max_duration_nanos: params
            .max_duration
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        limit_traces: if index_only {
            params.limit
        } else {
            MAX_CANDIDATE_TRACES
        },
    };
    let candidates = match st.store.search(&id.tenant, &filter).await {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    // Candidates come newest first; keep the first `limit` traces with a matching span.
    let mut chosen = Vec::new();
    for v in views(&candidates) {
        if chosen.len() >= params.limit {
            break;
        }
        let tid = v.span().trace_id.clone();
        if !chosen.contains(&tid) && params.matches(&v) {
            chosen.push(tid);
        }
    }
    let mut all: Vec<SpanView> = Vec::new();
    for tid in &chosen {
        let Ok(tid) = sentrace_core::TraceId::from_slice(tid) else {
            continue;
        };
        match st.store.trace(&id.tenant, tid).await {
            Ok(entries) => all.extend(views(&entries)),
            Err(e) => return store_error(e),
        }
    }
    let traces = jaeger::to_traces(&dedup(all));
    let n = traces.len();
    let mut env = Envelope::new(traces, n);
    env.limit = params.limit;
    Json(env).into_response()
}

/// `GET /api/dependencies?endTs=&lookback=` (milliseconds).
pub async fn dependencies(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    st.metrics.query_request();
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
    let end = end_ms.saturating_mul(1_000_000);
    let filter = SpanFilter {
        start_min_unix_nanos: Some(end.saturating_sub(lookback_ms.saturating_mul(1_000_000))),
        start_max_unix_nanos: Some(end),
        limit_traces: MAX_CANDIDATE_TRACES,
        ..Default::default()
    };
    match st.store.search(&id.tenant, &filter).await {
        Ok(entries) => {
            let deps = jaeger::dependencies(&dedup(views(&entries)));
            let n = deps.len();
            Json(Envelope::new(deps, n)).into_response()
        }
        Err(e) => store_error(e),
    }
}
