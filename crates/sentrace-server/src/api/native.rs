//! The native API: OTLP/JSON out, and metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_access::authz::Action;
use sentrace_query::service::Returned;

use super::query_error;
use crate::app::{AppState, Reader};

/// `GET /v1/traces/{traceID}`: the trace as an OTLP/JSON `ExportTraceServiceRequest`.
pub async fn trace(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(trace_id): Path<String>,
) -> Response {
    match st
        .query
        .trace(&caller, &trace_id, "GET /v1/traces/{traceID}")
        .await
    {
        Ok(answer) => Json(ExportTraceServiceRequest {
            resource_spans: sentrace_query::regroup(answer.spans),
        })
        .into_response(),
        Err(e) => query_error(e),
    }
}

/// `GET /metrics`: OpenMetrics text. Node-wide series are shown only to principals
/// of the operator tenant (`[access] operator_tenant`); every other reader sees its own
/// tenant's series alone.
pub async fn metrics(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let content_type = sentrace_pipeline::metrics::content_type(accept);
    let gate = match st
        .query
        .authorize(
            &caller,
            Action::ReadMetrics,
            "GET /metrics",
            BTreeMap::new(),
        )
        .await
    {
        Ok(g) => g,
        Err(e) => return query_error(e),
    };
    let tenant = caller.identity.tenant.clone();
    let node_wide = st.operator_tenant.as_ref() == Some(&tenant);
    let text = st.metrics.render_for(&tenant, node_wide);
    let items = text.lines().filter(|l| !l.starts_with('#')).count() as u64;
    match gate
        .finish(
            &st.query,
            Ok((
                text,
                Returned {
                    trace_ids: Vec::new(),
                    items,
                },
            )),
        )
        .await
    {
        Ok(text) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(e) => query_error(e),
    }
}
