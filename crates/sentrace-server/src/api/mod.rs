//! Query APIs.

pub mod findings;
pub mod jaeger;
pub mod native;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{TraceId, canonical};
use sentrace_query::SpanView;
use sentrace_store::SpanEntry;

/// Unknown paths.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Parses a trace id as Jaeger clients send it: up to 32 hex digits, left-padded with zeros.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "trace id {:?} is not 1 to 32 hex digits",
            text.chars().take(40).collect::<String>()
        ));
    }
    let padded = format!("{text:0>32}");
    TraceId::from_hex(&padded).map_err(|e| e.to_string())
}

/// Decodes stored entries into views, skipping (and logging) any that fail to decode.
pub fn views(entries: &[SpanEntry]) -> Vec<SpanView> {
    entries
        .iter()
        .filter_map(|e| match canonical::decode(&e.canonical) {
            Ok(rs) => SpanView::new(rs),
            Err(err) => {
                tracing::error!(trace_id = %e.trace_id, span_id = %e.span_id, error = %err, "stored span does not decode");
                None
            }
        })
        .collect()
}

/// Keeps one copy of each (trace id, span id), preferring the first.
pub fn dedup(views: Vec<SpanView>) -> Vec<SpanView> {
    let mut seen = std::collections::HashSet::new();
    views
        .into_iter()
        .filter(|v| seen.insert((v.span().trace_id.clone(), v.span().span_id.clone())))
        .collect()
}

/// OTLP `ResourceSpans` regrouped from views.
pub fn regroup(views: Vec<SpanView>) -> Vec<ResourceSpans> {
    sentrace_query::regroup(views)
}
