//! OTLP/HTTP `POST /v1/traces`: protobuf or JSON, gzip or identity, answered in the request's
//! own content type; errors carry a `google.rpc.Status` as the OTLP/HTTP spec asks.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use sentrace_access::AuthError;
use sentrace_core::StageError;

use super::decode::{self, DecodeError};
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
    st.metrics.ingest_request(Protocol::Http);
    let (parts, body) = req.into_parts();
    let Some(fmt) = content_format(&parts.headers) else {
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Format::Json,
            3,
            "content-type must be application/x-protobuf or application/json".into(),
        );
    };
    let creds = crate::auth::Credentials::from_http(&parts.headers, &parts.extensions);
    let identity = match super::authorize(&st, creds).await {
        Ok(id) => id,
        Err(e) => {
            st.metrics.auth_failure();
            tracing::debug!(reason = %e, "HTTP export refused");
            let source = creds.remote().map(|a| a.ip().to_string());
            st.query
                .audit_unauthenticated(
                    &crate::api::credential_hint(&creds),
                    source,
                    "POST /v1/traces",
                    &e.to_string(),
                )
                .await;
            return auth_response(&e);
        }
    };
    let source =
        match crate::sources::wire::parse(|h| parts.headers.get(h).map(|v| v.to_str().ok())) {
            Ok(s) => s,
            Err(e) => {
                let e = crate::sources::SourceError::from(e);
                st.sources.refused(&e);
                st.metrics.ingest_invalid();
                return respond(StatusCode::BAD_REQUEST, fmt, 3, e.to_string());
            }
        };
    let limit = st.limits.max_request_bytes;
    let raw = match axum::body::to_bytes(Body::new(body), limit).await {
        Ok(b) => b,
        Err(_) => {
            return decode_error(
                fmt,
                DecodeError::TooLarge {
                    limit,
                    after_decompression: false,
                },
            );
        }
    };
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let plain = match decode::decompress(&raw, encoding, limit) {
        Ok(p) => p,
        Err(e) => {
            st.metrics.ingest_invalid();
            return decode_error(fmt, e);
        }
    };
    let request = match fmt {
        Format::Protobuf => decode::protobuf(&plain),
        Format::Json => decode::json(&plain),
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            st.metrics.ingest_invalid();
            return decode_error(fmt, e);
        }
    };
    match st
        .pipeline
        .ingest(identity, source, request.resource_spans)
        .await
    {
        Ok(outcome) => {
            let partial_success =
                (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| {
                    ExportTracePartialSuccess {
                        rejected_spans: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
                        error_message: outcome.message,
                    }
                });
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
        Err(e) => stage_error(fmt, e),
    }
}
