//! OTLP receivers: gRPC `TraceService/Export` and HTTP `POST /v1/traces`.
//!
//! Both edges only frame: they hand their headers and their unread body to [`receive`],
//! which authenticates and authorizes from the headers first, then reads at most the size
//! limit, inflates at most the size limit, decodes and runs the pipeline. A request without
//! a valid credential costs a header lookup, never a body read or a decode.

pub mod decode;
pub mod grpc;
pub mod http;

use ::http::{Extensions, HeaderMap};
use axum::body::Body;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use sentrace_access::AuthError;
use sentrace_access::authz::{Action, RequestContext, Resource};
use sentrace_core::{Identity, Role, StageError};

use crate::app::AppState;
use crate::auth::Credentials;
use crate::metrics::Protocol;
use crate::pipeline::IngestOutcome;
use crate::sources::SourceError;
use decode::DecodeError;

/// How an edge's body is framed and encoded.
#[derive(Clone, Copy, Debug)]
pub enum Framing<'a> {
    /// OTLP/HTTP: the whole body is the message, `Content-Encoding` gzip or identity.
    Http {
        /// `Content-Encoding`.
        encoding: Option<&'a str>,
        /// Protobuf or JSON.
        json: bool,
    },
    /// gRPC: one length-prefixed message, compressed per `grpc-encoding` when its flag says.
    Grpc {
        /// `grpc-encoding`.
        encoding: Option<&'a str>,
    },
}

/// Why a request was refused, for the edge to answer in its own protocol.
#[derive(Debug)]
pub enum Refusal {
    /// No valid credential, or the policies refuse `ingest`.
    Auth(AuthError),
    /// Signed-source headers present but wrong.
    Source(SourceError),
    /// The body could not be read, inflated or decoded.
    Decode(DecodeError),
    /// A stage or the store refused the batch.
    Stage(StageError),
}

/// One export request, from headers to durable spans. `endpoint` names it in the audit
/// record of a refused credential.
pub async fn receive(
    st: &AppState,
    protocol: Protocol,
    endpoint: &str,
    headers: &HeaderMap,
    extensions: &Extensions,
    framing: Framing<'_>,
    body: Body,
) -> Result<IngestOutcome, Refusal> {
    st.metrics.ingest_request(protocol);
    let creds = Credentials::from_http(headers, extensions);
    let identity = match authorize(st, creds).await {
        Ok(id) => id,
        Err(e) => {
            st.metrics.auth_failure(protocol.listener());
            let source = creds.remote().map(|a| a.ip().to_string());
            crate::auth::failure_log::log_refused(&e, endpoint, source.as_deref());
            st.query
                .audit_unauthenticated(
                    &crate::api::credential_hint(&creds),
                    source,
                    endpoint,
                    &e.to_string(),
                )
                .await;
            drain(body, st.limits.max_request_bytes).await;
            return Err(Refusal::Auth(e));
        }
    };
    let source = match crate::sources::wire::parse(|h| headers.get(h).map(|v| v.to_str().ok())) {
        Ok(s) => s,
        Err(e) => {
            let e = SourceError::from(e);
            st.sources.refused(&e);
            st.metrics.ingest_invalid();
            drain(body, st.limits.max_request_bytes).await;
            return Err(Refusal::Source(e));
        }
    };
    // Timed whether it succeeds or not: the count is every body read and decoded (none for
    // a refused credential).
    let decode_started = std::time::Instant::now();
    let request = read_request(st.limits.max_request_bytes, framing, body).await;
    st.metrics
        .stage_duration("decode", decode_started.elapsed());
    let request = request
        .inspect_err(|_| st.metrics.ingest_invalid())
        .map_err(Refusal::Decode)?;
    st.pipeline
        .ingest(identity, source, request.resource_spans)
        .await
        .map_err(Refusal::Stage)
}

/// How long a refused request's unread body is drained before the answer goes out.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A refused body is drained up to at least this many bytes, whatever the request limit.
const DRAIN_AT_LEAST: usize = 8 << 20;

/// Reads and discards up to `limit` bytes (at least [`DRAIN_AT_LEAST`]) of a body that will
/// not be used, for at most [`DRAIN_TIMEOUT`]. Answering an HTTP/2 request while the client
/// is still sending makes the server reset the stream before its answer is complete, and
/// clients then report a framing error (curl's 92) instead of the 401 or 413; reading the
/// rest first lets the answer through. Nothing drained is kept.
pub(crate) async fn drain(mut body: Body, limit: usize) {
    use http_body_util::BodyExt;
    let limit = limit.max(DRAIN_AT_LEAST);
    let mut seen = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen = seen.saturating_add(frame.data_ref().map_or(0, |d| d.len()));
            if seen > limit {
                break;
            }
        }
    })
    .await;
}

/// Collects at most `limit` bytes of a body. A larger body is `TooLarge`, after up to
/// `limit` more bytes are drained so that the refusal reaches an HTTP/2 client.
///
/// The frames are kept as received and joined once, into a buffer of the body's final
/// size (a body of one frame is returned as it is): an OTLP request arrives in HTTP/2
/// frames of 16 KiB, and appending each to a growing buffer copied the body again at every
/// doubling. A body of many small frames (as a hostile client may send: 1-byte frames) is
/// copied into one growing buffer once it passes [`KEPT_FRAMES`], so that the frames' own
/// bookkeeping never costs more than a small share of the bytes they carry.
async fn read_bounded(mut body: Body, limit: usize) -> Result<bytes::Bytes, DecodeError> {
    use http_body_util::BodyExt;
    let mut frames: Vec<bytes::Bytes> = Vec::new();
    let mut joined: Option<bytes::BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| DecodeError::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if len.saturating_add(data.len()) > limit {
            drain(body, limit).await;
            return Err(DecodeError::TooLarge {
                limit,
                after_decompression: false,
            });
        }
        len += data.len();
        if data.is_empty() {
            continue;
        }
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&data),
            // Keep frames apart while they are few, or large on average (an 8 MiB body
            // in 16 KiB frames); tiny frames past the first few are copied.
            None if frames.len() < KEPT_FRAMES || len / frames.len() >= LARGE_FRAME => {
                frames.push(data)
            }
            None => {
                let mut buf = bytes::BytesMut::with_capacity(len.saturating_mul(2).min(limit));
                for f in frames.drain(..) {
                    buf.extend_from_slice(&f);
                }
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => join(frames, len),
    })
}

/// Frames of one body kept apart before [`read_bounded`] copies them into one buffer,
/// unless they average [`LARGE_FRAME`] bytes or more.
const KEPT_FRAMES: usize = 64;
/// See [`KEPT_FRAMES`]: at this size a frame's bookkeeping (a 32-byte handle) is under 1%.
const LARGE_FRAME: usize = 4096;

/// The frames' bytes as one buffer of `len` bytes (their sum): the frame itself when
/// there is one, else one allocation and one copy of each.
fn join(mut frames: Vec<bytes::Bytes>, len: usize) -> bytes::Bytes {
    if frames.len() <= 1 {
        return frames.pop().unwrap_or_default();
    }
    let mut buf = bytes::BytesMut::with_capacity(len);
    for f in &frames {
        buf.extend_from_slice(f);
    }
    buf.freeze()
}

/// OTLP's partial success: present when spans were set aside or the stages left a warning.
pub fn partial_success(outcome: &IngestOutcome) -> Option<ExportTracePartialSuccess> {
    (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
        error_message: outcome.message.clone(),
    })
}

/// Reads, inflates and decodes a body, never holding more than `limit` bytes of it.
async fn read_request(
    limit: usize,
    framing: Framing<'_>,
    body: Body,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    match framing {
        Framing::Http { encoding, json } => {
            let raw = read_bounded(body, limit).await?;
            let plain = decode::decompress(&raw, encoding, limit)?;
            if json {
                decode::json(&plain)
            } else {
                decode::protobuf(&plain)
            }
        }
        Framing::Grpc { encoding } => {
            // The 5-byte message prefix plus at most `limit` bytes of message.
            let raw = read_bounded(body, limit.saturating_add(grpc::PREFIX_LEN)).await?;
            let (compressed, message) = grpc::unframe(&raw, limit)?;
            if compressed {
                match encoding.map(str::trim) {
                    Some(e) if e.eq_ignore_ascii_case("gzip") => {
                        decode::protobuf(&decode::decompress(message, Some("gzip"), limit)?)
                    }
                    Some(e) => Err(DecodeError::Encoding(e.chars().take(40).collect())),
                    None => Err(DecodeError::Grpc(
                        "the message is flagged compressed but the request has no grpc-encoding"
                            .into(),
                    )),
                }
            } else {
                decode::protobuf(message)
            }
        }
    }
}

/// Authenticates an export request and lets the policies decide `ingest` on the caller's
/// tenant (the built-in policies grant it to `ingest` and `admin`; an operator's `forbid`
/// can take it away, e.g. from one agent).
pub async fn authorize(st: &AppState, creds: Credentials<'_>) -> Result<Identity, AuthError> {
    let id = st.auth.authenticate(creds).await?;
    let d = st.query.policies().current().decide(
        &id,
        Action::Ingest,
        &Resource::Tenant,
        RequestContext::default(),
    );
    if d.allowed {
        Ok(id)
    } else {
        Err(AuthError::Forbidden {
            id: id.principal,
            wanted: Role::Ingest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(chunks: &[&'static [u8]]) -> Body {
        let items: Vec<Result<bytes::Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect();
        Body::from_stream(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn a_body_of_many_frames_is_joined_whole_and_in_order() {
        let got = read_bounded(streamed(&[b"abc", b"", b"defg", b"h"]), 8)
            .await
            .unwrap();
        assert_eq!(&got[..], b"abcdefgh");
        let one = read_bounded(streamed(&[b"only"]), 4).await.unwrap();
        assert_eq!(&one[..], b"only");
        let none = read_bounded(streamed(&[]), 4).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn a_body_of_tiny_frames_is_copied_into_one_buffer() {
        // More frames than are kept apart: 1-byte frames, as a hostile client may send.
        let chunks: Vec<&'static [u8]> = (0..1000).map(|i| &b"0123456789"[i % 10..][..1]).collect();
        let got = read_bounded(streamed(&chunks), 1000).await.unwrap();
        let want: Vec<u8> = (0..1000).map(|i| b'0' + (i % 10) as u8).collect();
        assert_eq!(&got[..], &want[..]);
        let over = read_bounded(streamed(&chunks), 999).await.unwrap_err();
        assert!(
            matches!(over, DecodeError::TooLarge { limit: 999, .. }),
            "{over:?}"
        );
        // Many large frames are kept apart and joined once; then tiny ones after them.
        static LARGE: [u8; 5000] = [7; 5000];
        let mut mixed: Vec<&'static [u8]> = vec![&LARGE[..]; 100];
        mixed.extend(std::iter::repeat_n(&b"x"[..], 500));
        let got = read_bounded(streamed(&mixed), 1_000_000).await.unwrap();
        assert_eq!(got.len(), 100 * 5000 + 500);
        assert!(
            got[..500_000].iter().all(|b| *b == 7) && got[500_000..].iter().all(|b| *b == b'x')
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large_whatever_its_frames() {
        let err = read_bounded(streamed(&[b"abcd", b"efgh", b"i"]), 8)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooLarge {
                    limit: 8,
                    after_decompression: false
                }
            ),
            "{err:?}"
        );
    }
}
