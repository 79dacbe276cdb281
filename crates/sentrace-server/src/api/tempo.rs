//! Tempo's HTTP API under `/tempo` on the query port, so that Grafana's Tempo data source
//! works unchanged with the URL `https://HOST:16686/tempo`. Parse, call the query service,
//! render Tempo's shapes ([`sentrace_query::tempo`]). Errors are plain text, as Tempo's
//! are; a bad parameter or TraceQL query is a 400 that names it.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use sentrace_query::SearchError;
use sentrace_query::service::QueryError;
use sentrace_query::tempo::{self, TagScope, TagWindow, TempoSearch, proto};
use sentrace_query::traceql::{self, AttrScope, Field, Intrinsic};

use super::status_of;
use crate::app::{AppState, Reader};

/// The path prefix of the Tempo API (Tempo's `http_api_prefix`).
pub const PREFIX: &str = "/tempo";

const PROTOBUF: &str = "application/protobuf";

fn pairs(q: Option<String>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn failed(e: QueryError) -> Response {
    text(status_of(&e), e.to_string())
}

fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with(PROTOBUF)))
}

/// `GET /tempo/api/echo`: `echo`, for Grafana's "Save & test". Authenticated, so a wrong
/// token shows up in that test; it reads nothing.
pub async fn echo(Reader(_caller): Reader) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "echo",
    )
        .into_response()
}

async fn trace_by_id(
    st: &AppState,
    caller: &sentrace_query::service::Caller,
    id: &str,
    q: Option<String>,
    headers: &HeaderMap,
    v2: bool,
) -> Response {
    let p = pairs(q);
    if p.iter().any(|(k, v)| k == "q" && !v.trim().is_empty()) {
        return text(
            StatusCode::BAD_REQUEST,
            "parameter \"q\": filtering a trace by TraceQL is not supported; fetch the whole trace",
        );
    }
    if let Err(e) = tempo::params::time_range(&p) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    let endpoint = if v2 {
        "GET /tempo/api/v2/traces/{traceID}"
    } else {
        "GET /tempo/api/traces/{traceID}"
    };
    let answer = match st.query.trace(caller, id, endpoint).await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let batches = sentrace_query::regroup(answer.spans);
    if wants_protobuf(headers) {
        let t = proto::Trace {
            resource_spans: batches,
        };
        let body = if v2 {
            proto::TraceByIdResponse {
                trace: Some(t),
                metrics: Some(proto::TraceByIdMetrics::default()),
                status: 0,
                message: String::new(),
            }
            .encode_to_vec()
        } else {
            t.encode_to_vec()
        };
        return ([(header::CONTENT_TYPE, PROTOBUF)], body).into_response();
    }
    json(if v2 {
        tempo::trace_v2_json(&batches)
    } else {
        tempo::trace_v1_json(&batches)
    })
}

/// `GET /tempo/api/traces/{traceID}`: `tempopb.Trace` (`{"batches": [...]}` in JSON).
pub async fn trace(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    trace_by_id(&st, &caller, &id, q, &headers, false).await
}

/// `GET /tempo/api/v2/traces/{traceID}`: `tempopb.TraceByIDResponse`.
pub async fn trace_v2(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    trace_by_id(&st, &caller, &id, q, &headers, true).await
}

/// `GET /tempo/api/search?q=&tags=&minDuration=&maxDuration=&limit=&start=&end=&spss=`.
pub async fn search(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let s = match TempoSearch::from_pairs(&pairs(q)) {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match st
        .query
        .tempo_search(&caller, &s, "GET /tempo/api/search")
        .await
    {
        Ok(found) => json(tempo::search_response(&found, s.query.as_ref(), s.spss)),
        Err(e) => failed(e),
    }
}

fn window(p: &[(String, String)]) -> Result<(TagScope, TagWindow), SearchError> {
    let scope = p
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str());
    Ok((TagScope::parse(scope)?, TagWindow::from_pairs(p)?))
}

/// `GET /tempo/api/search/tags?scope=`: `{"tagNames": [...]}` (resource and span keys, or
/// one scope's).
pub async fn tags(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let (scope, w) = match window(&pairs(q)) {
        Ok(x) => x,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match st
        .query
        .tempo_tag_names(&caller, scope, &w, "GET /tempo/api/search/tags")
        .await
    {
        Ok(n) => {
            // Without a scope, v1 lists resource and span keys (no intrinsics).
            let mut all: Vec<String> = n.resource.into_iter().chain(n.span).collect();
            if scope == TagScope::Intrinsic {
                all.extend(n.intrinsic);
            }
            all.sort();
            all.dedup();
            json(tempo::tag_names_v1(&all))
        }
        Err(e) => failed(e),
    }
}

/// `GET /tempo/api/v2/search/tags?scope=`: `{"scopes": [{"name", "tags"}]}`.
pub async fn tags_v2(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    RawQuery(q): RawQuery,
) -> Response {
    let (scope, w) = match window(&pairs(q)) {
        Ok(x) => x,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match st
        .query
        .tempo_tag_names(&caller, scope, &w, "GET /tempo/api/v2/search/tags")
        .await
    {
        Ok(n) => json(tempo::tag_names_v2(&[
            ("resource", n.resource),
            ("span", n.span),
            ("intrinsic", n.intrinsic),
        ])),
        Err(e) => failed(e),
    }
}

/// `GET /tempo/api/search/tag/{tag}/values`: `{"tagValues": [...]}` for a bare key (span
/// or resource attribute), `name`, or Tempo's virtual `status.code` and `error` tags.
pub async fn tag_values(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (_, w) = match window(&pairs(q)) {
        Ok(x) => x,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if tag.is_empty() || tag.len() > 256 {
        return text(StatusCode::BAD_REQUEST, "tag name must be 1 to 256 bytes");
    }
    let field = match tag.as_str() {
        "name" => Field::Intrinsic(Intrinsic::Name),
        "status.code" | "error" => Field::Intrinsic(Intrinsic::Status),
        key => Field::Attr(AttrScope::Any, key.to_string()),
    };
    match st
        .query
        .tempo_tag_values(
            &caller,
            &field,
            &w,
            "GET /tempo/api/search/tag/{tag}/values",
        )
        .await
    {
        Ok(values) => {
            let list: Vec<String> = if tag == "error" {
                vec!["true".into()]
            } else {
                let mut l: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
                l.dedup();
                l
            };
            json(tempo::tag_values_v1(&list))
        }
        Err(e) => failed(e),
    }
}

/// `GET /tempo/api/v2/search/tag/{tag}/values?q=`: typed values of a TraceQL field
/// (`resource.service.name`, `.http.method`, `span.x`, `name`, `status`, `kind`,
/// `duration`).
pub async fn tag_values_v2(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (_, w) = match window(&pairs(q)) {
        Ok(x) => x,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let field = match traceql::parse_field(&tag) {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("tag {:?}: {e}", tag.chars().take(60).collect::<String>()),
            );
        }
    };
    match st
        .query
        .tempo_tag_values(
            &caller,
            &field,
            &w,
            "GET /tempo/api/v2/search/tag/{tag}/values",
        )
        .await
    {
        Ok(values) => json(tempo::tag_values_v2(&values)),
        Err(e) => failed(e),
    }
}
