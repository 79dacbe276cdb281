//! The native API: OTLP/JSON out, and metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::regroup;
use crate::app::{AppState, Reader};

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// `GET /v1/traces/{traceID}`: the trace as an OTLP/JSON `ExportTraceServiceRequest`.
pub async fn trace(
    State(st): State<Arc<AppState>>,
    Reader(id): Reader,
    Path(trace_id): Path<String>,
) -> Response {
    match super::jaeger::load_trace(&st, &id.tenant, &trace_id).await {
        Ok(mut v) => {
            v.sort_by_key(|s| s.span().start_time_unix_nano);
            Json(ExportTraceServiceRequest {
                resource_spans: regroup(v),
            })
            .into_response()
        }
        Err((status, msg)) => err(status, msg),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<Arc<AppState>>, Reader(_): Reader) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}
