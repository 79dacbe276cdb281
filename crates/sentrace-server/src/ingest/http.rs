//! OTLP/HTTP `POST /v1/traces`: protobuf or JSON, gzip or identity, answered in the request's
//! own content type; errors carry a `google.rpc.Status` as the OTLP/HTTP spec asks.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use sentrace_access::AuthError;
use sentrace_core::StageError;

use super::decode::DecodeError;
use super::{Framing, Refusal};
use crate::app::AppState;
use crate::metrics::Protocol;

/// The body encodings OTLP/HTTP allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn respond(status: StatusCode, fmt: Format, code: i32, message: String) -> Response {
    let body = RpcStatus { code, message };
    let (ct, bytes) = match fmt {
        Format::Protobuf => (PROTOBUF, body.encode_to_vec()),
        Format::Json => (JSON, serde_json::to_vec(&body).unwrap_or_default()),
    };
    (status, [(header::CONTENT_TYPE, ct)], bytes).into_response()
}

/// A 401 or 403 that says nothing about why.
pub fn auth_response(e: &AuthError) -> Response {
    match e {
        AuthError::Forbidden { .. } => {
            (StatusCode::FORBIDDEN, "permission denied\n").into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthenticated\n",
        )
            .into_response(),
    }
}

fn decode_error(fmt: Format, e: DecodeError) -> Response {
    let status = match e {
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DecodeError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    respond(status, fmt, 3, e.to_string())
}

fn stage_error(fmt: Format, e: StageError) -> Response {
    match e {
        StageError::Invalid(m) => respond(StatusCode::BAD_REQUEST, fmt, 3, m),
        StageError::Forbidden(m) => respond(StatusCode::FORBIDDEN, fmt, 7, m),
        StageError::Exhausted {
            message,
            retry_after,
        } => {
            let mut r = respond(StatusCode::TOO_MANY_REQUESTS, fmt, 8, message);
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        StageError::Internal(_) => {
            let mut r = respond(
                StatusCode::SERVICE_UNAVAILABLE,
                fmt,
                14,
                "internal error; retry later".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

fn content_format(headers: &HeaderMap) -> Option<Format> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let base = ct.split(';').next()?.trim();
    if base.eq_ignore_ascii_case(PROTOBUF) {
        Some(Format::Protobuf)
    } else if base.eq_ignore_ascii_case(JSON) {
        Some(Format::Json)
    } else {
        None
    }
}

/// `POST /v1/traces`.
pub async fn export(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let http1 = req.version() < axum::http::Version::HTTP_2;
    let mut r = export_inner(&st, req).await;
    if http1 && !r.status().is_success() {
        // A refused body may be partly unread: the connection ends after this answer, and
        // saying so keeps an HTTP/1.1 client from sending its next request on it.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

async fn export_inner(st: &Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(fmt) = content_format(&parts.headers) else {
        st.metrics.ingest_request(Protocol::Http);
        st.metrics.ingest_invalid();
        // Read (and drop) the body first, so an HTTP/2 client gets the 415, not a reset.
        super::drain(body, st.limits.max_request_bytes).await;
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Format::Json,
            3,
            "content-type must be application/x-protobuf or application/json".into(),
        );
    };
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let outcome = super::receive(
        st,
        Protocol::Http,
        "POST /v1/traces",
        &parts.headers,
        &parts.extensions,
        Framing::Http {
            encoding,
            json: fmt == Format::Json,
        },
        body,
    )
    .await;
    match outcome {
        Ok(outcome) => {
            let partial_success = super::partial_success(&outcome);
            let resp = ExportTraceServiceResponse { partial_success };
            let (ct, bytes) = match fmt {
                Format::Protobuf => (PROTOBUF, resp.encode_to_vec()),
                Format::Json => (JSON, serde_json::to_vec(&resp).unwrap_or_default()),
            };
            let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, ct)], bytes).into_response();
            if let Some(receipt) = outcome.receipt {
                for (key, value) in crate::seal::receipt_headers(&receipt) {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        r.headers_mut().insert(key, v);
                    }
                }
            }
            r
        }
        Err(Refusal::Auth(e)) => auth_response(&e),
        Err(Refusal::Source(e)) => respond(StatusCode::BAD_REQUEST, fmt, 3, e.to_string()),
        Err(Refusal::Decode(e)) => decode_error(fmt, e),
        Err(Refusal::Stage(e)) => stage_error(fmt, e),
    }
}
