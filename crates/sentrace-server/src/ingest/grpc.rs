//! OTLP/gRPC `TraceService/Export`, framed by hand over HTTP/2.
//!
//! gRPC's unary call is one length-prefixed protobuf message each way, with the status in
//! trailers. Framing it here (instead of through a generated service) lets the credential be
//! checked from the headers before a byte of the body is read or inflated, and lets every
//! refusal carry the status an OTLP exporter acts on correctly:
//!
//! | refusal | status | exporter |
//! |---|---|---|
//! | no or bad credential | `UNAUTHENTICATED` (16) | gives up |
//! | policy refuses ingest | `PERMISSION_DENIED` (7) | gives up |
//! | malformed or invalid request | `INVALID_ARGUMENT` (3) | gives up |
//! | request over the size limit | `RESOURCE_EXHAUSTED` (8), no `RetryInfo`, "not retryable as is" | gives up |
//! | unsupported `grpc-encoding` | `UNIMPLEMENTED` (12) | gives up |
//! | busy | `RESOURCE_EXHAUSTED` (8) with `google.rpc.RetryInfo` | retries after the delay |
//! | internal failure | `UNAVAILABLE` (14) | retries |
//!
//! Errors are trailers-only responses (status in the response headers, no body), as the gRPC
//! HTTP/2 protocol allows.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use sentrace_access::AuthError;
use sentrace_core::StageError;

use super::decode::DecodeError;
use super::{Framing, Refusal};
use crate::app::AppState;
use crate::metrics::Protocol;

/// The method path of OTLP trace export.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Bytes before each message: compressed flag (1) and big-endian length (4).
pub const PREFIX_LEN: usize = 5;

/// gRPC status codes used here.
pub mod code {
    /// Success.
    pub const OK: u16 = 0;
    /// The request is wrong and retrying will not help.
    pub const INVALID_ARGUMENT: u16 = 3;
    /// The caller may not do this.
    pub const PERMISSION_DENIED: u16 = 7;
    /// Busy; retry after the `RetryInfo` delay.
    pub const RESOURCE_EXHAUSTED: u16 = 8;
    /// No such method, or an unsupported encoding.
    pub const UNIMPLEMENTED: u16 = 12;
    /// Transient failure; retry.
    pub const UNAVAILABLE: u16 = 14;
    /// No valid credential.
    pub const UNAUTHENTICATED: u16 = 16;
}

/// Splits the one message out of a unary request body: `(compressed, message)`.
pub fn unframe(body: &[u8], limit: usize) -> Result<(bool, &[u8]), DecodeError> {
    let Some((prefix, rest)) = body.split_first_chunk::<PREFIX_LEN>() else {
        return Err(DecodeError::Grpc(format!(
            "body of {} bytes is shorter than the 5-byte message prefix",
            body.len()
        )));
    };
    let compressed = match prefix[0] {
        0 => false,
        1 => true,
        f => {
            return Err(DecodeError::Grpc(format!(
                "message flag {f} is neither 0 (plain) nor 1 (compressed)"
            )));
        }
    };
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len > limit {
        return Err(DecodeError::TooLarge {
            limit,
            after_decompression: false,
        });
    }
    match rest.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(DecodeError::Grpc(format!(
            "message prefix says {len} bytes, the body holds {}",
            rest.len()
        ))),
        std::cmp::Ordering::Greater => Err(DecodeError::Grpc(
            "more than one message in a unary request".into(),
        )),
        std::cmp::Ordering::Equal => Ok((compressed, rest)),
    }
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Percent-encodes a `grpc-message` (everything outside printable ASCII, and `%`).
fn grpc_message(msg: &str) -> HeaderValue {
    let mut out = String::with_capacity(msg.len());
    for b in msg.bytes().take(1024) {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("error"))
}

fn grpc_headers(status: u16, message: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("grpc-status", HeaderValue::from(status));
    if !message.is_empty() {
        h.insert("grpc-message", grpc_message(message));
    }
    h
}

/// A trailers-only error response.
fn error(status: u16, message: &str) -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/grpc")],
        Body::empty(),
    )
        .into_response();
    r.headers_mut().extend(grpc_headers(status, message));
    r
}

/// `RESOURCE_EXHAUSTED` with `RetryInfo`, which OTLP exporters honour, and the plain
/// pushback metadata for clients that read that instead.
fn busy(message: &str, retry_after: Duration) -> Response {
    let mut r = error(code::RESOURCE_EXHAUSTED, message);
    let delay = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(retry_after.subsec_nanos()).unwrap_or(0),
        }),
    };
    let details = RpcStatus {
        code: i32::from(code::RESOURCE_EXHAUSTED),
        message: message.to_string(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: delay.encode_to_vec(),
        }],
    };
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(details.encode_to_vec());
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert("grpc-status-details-bin", v);
    }
    h.insert(
        "grpc-retry-pushback-ms",
        HeaderValue::from(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
    );
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs().max(1)),
    );
    r
}

/// The gRPC answer to a refusal.
pub fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Auth(AuthError::Forbidden { .. }) => {
            error(code::PERMISSION_DENIED, "permission denied")
        }
        Refusal::Auth(_) => error(code::UNAUTHENTICATED, "unauthenticated"),
        Refusal::Source(e) => error(code::INVALID_ARGUMENT, &e.to_string()),
        Refusal::Decode(e @ DecodeError::Encoding(_)) => {
            let mut r = error(code::UNIMPLEMENTED, &e.to_string());
            r.headers_mut().insert(
                "grpc-accept-encoding",
                HeaderValue::from_static("gzip,identity"),
            );
            r
        }
        // gRPC's own code for a message over the size limit; without RetryInfo, OTLP
        // exporters do not retry it, and the message says why.
        Refusal::Decode(e @ DecodeError::TooLarge { .. }) => error(
            code::RESOURCE_EXHAUSTED,
            &format!("{e}; not retryable as is: send smaller batches"),
        ),
        Refusal::Decode(e) => error(code::INVALID_ARGUMENT, &e.to_string()),
        Refusal::Stage(StageError::Invalid(m)) => error(code::INVALID_ARGUMENT, &m),
        Refusal::Stage(StageError::Forbidden(m)) => error(code::PERMISSION_DENIED, &m),
        Refusal::Stage(StageError::Exhausted {
            message,
            retry_after,
        }) => busy(&message, retry_after),
        Refusal::Stage(StageError::Internal(_)) => {
            error(code::UNAVAILABLE, "internal error; retry later")
        }
    }
}

/// A successful unary response: headers, one message, then `grpc-status: 0` in trailers.
fn ok(message: &impl Message, metadata: Vec<(HeaderName, HeaderValue)>) -> Response {
    let body = message.encode_to_vec();
    let mut framed = Vec::with_capacity(PREFIX_LEN + body.len());
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&body);
    let frames: [Result<Frame<Bytes>, Infallible>; 2] = [
        Ok(Frame::data(Bytes::from(framed))),
        Ok(Frame::trailers(grpc_headers(code::OK, ""))),
    ];
    let mut r = Response::new(Body::new(StreamBody::new(futures::stream::iter(frames))));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-encoding", HeaderValue::from_static("identity"));
    for (k, v) in metadata {
        h.insert(k, v);
    }
    r
}

/// `POST /opentelemetry.proto.collector.trace.v1.TraceService/Export`.
pub async fn export(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = ct.split(';').next().unwrap_or("").trim();
    if !(base.eq_ignore_ascii_case("application/grpc")
        || base.eq_ignore_ascii_case("application/grpc+proto"))
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/grpc\n",
        )
            .into_response();
    }
    let encoding = parts
        .headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok());
    let outcome = super::receive(
        &st,
        Protocol::Grpc,
        "gRPC TraceService/Export",
        &parts.headers,
        &parts.extensions,
        Framing::Grpc { encoding },
        body,
    )
    .await;
    match outcome {
        Ok(outcome) => {
            let partial_success = super::partial_success(&outcome);
            let metadata = outcome
                .receipt
                .iter()
                .flat_map(crate::seal::receipt_headers)
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::try_from(k).ok()?,
                        HeaderValue::try_from(v).ok()?,
                    ))
                })
                .collect();
            ok(&ExportTraceServiceResponse { partial_success }, metadata)
        }
        Err(r) => refusal(r),
    }
}

/// Any other gRPC method.
async fn unimplemented(req: Request) -> Response {
    error(
        code::UNIMPLEMENTED,
        &format!(
            "unknown method {}; this port serves {EXPORT_PATH}",
            req.uri().path()
        ),
    )
}

/// The gRPC port's router.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route(EXPORT_PATH, axum::routing::post(export))
        .fallback(unimplemented)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframe_checks_every_field() {
        assert!(matches!(unframe(&[0, 0, 0], 10), Err(DecodeError::Grpc(_))));
        assert!(matches!(
            unframe(&[2, 0, 0, 0, 0], 10),
            Err(DecodeError::Grpc(m)) if m.contains("flag 2")
        ));
        assert!(matches!(
            unframe(&[0, 0, 0, 0, 11], 10),
            Err(DecodeError::TooLarge { limit: 10, .. })
        ));
        assert!(matches!(
            unframe(&[0, 0, 0, 0, 2, 9], 10),
            Err(DecodeError::Grpc(m)) if m.contains("says 2 bytes")
        ));
        assert!(matches!(
            unframe(&[0, 0, 0, 0, 1, 9, 9], 10),
            Err(DecodeError::Grpc(m)) if m.contains("more than one")
        ));
        assert_eq!(
            unframe(&[1, 0, 0, 0, 1, 9], 10).unwrap(),
            (true, &[9u8][..])
        );
        assert_eq!(unframe(&[0, 0, 0, 0, 0], 10).unwrap(), (false, &[][..]));
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(grpc_message("a b%\nü"), "a b%25%0A%C3%BC");
    }

    #[test]
    fn busy_carries_retry_info() {
        let r = busy("slow down", Duration::from_millis(1500));
        let h = r.headers();
        assert_eq!(h["grpc-status"], "8");
        assert_eq!(h["grpc-retry-pushback-ms"], "1500");
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(h["grpc-status-details-bin"].as_bytes())
            .unwrap();
        let st = RpcStatus::decode(raw.as_slice()).unwrap();
        assert_eq!(st.code, 8);
        let info = RetryInfo::decode(st.details[0].value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
    }
}
