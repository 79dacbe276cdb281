//! Bounded decoding of OTLP request bodies: gzip that stops at the size limit, protobuf, and
//! OTLP/JSON with the path of the offending field in every error.

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// Why a body could not be decoded. Each maps to a 4xx answer.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body (compressed or not) is above the limit.
    #[error("request body larger than {limit} bytes{}", if *.after_decompression { " after decompression" } else { "" })]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
        /// Whether the limit was hit while inflating.
        after_decompression: bool,
    },
    /// gzip data was corrupt.
    #[error("gzip body is corrupt: {0}")]
    Gzip(String),
    /// Content-Encoding other than gzip or identity.
    #[error("content-encoding {0:?} is not supported (use gzip or identity)")]
    Encoding(String),
    /// Protobuf did not decode.
    #[error("protobuf body is not a valid ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    /// The connection failed while the body was being read.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The gRPC message framing was wrong.
    #[error("gRPC framing: {0}")]
    Grpc(String),
    /// JSON did not decode.
    #[error("JSON body is not a valid ExportTraceServiceRequest: at {path}: {reason}")]
    Json {
        /// Path of the offending field, such as `resourceSpans[0].scopeSpans[0].spans[2].traceId`.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Inflates `body` per `encoding`, refusing to produce more than `limit` bytes.
pub fn decompress(
    body: &[u8],
    encoding: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge {
                    limit,
                    after_decompression: false,
                });
            }
            Ok(body.to_vec())
        }
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            // Read one byte past the limit: getting it proves the body is too large, and
            // inflation stops there, so a gzip bomb costs at most `limit` bytes.
            let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::Gzip(e.to_string()))?;
            if out.len() > limit {
                return Err(DecodeError::TooLarge {
                    limit,
                    after_decompression: true,
                });
            }
            Ok(out)
        }
        Some(other) => Err(DecodeError::Encoding(other.chars().take(40).collect())),
    }
}

/// Decodes an OTLP protobuf request.
pub fn protobuf(bytes: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    ExportTraceServiceRequest::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes an OTLP/JSON request (hex ids, enum integers, 64-bit integers as strings or numbers).
pub fn json(bytes: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| DecodeError::Json {
        path: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_stops_at_limit() {
        let bomb = gzip(&vec![0u8; 50 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024);
        let err = decompress(&bomb, Some("gzip"), 1024 * 1024).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooLarge {
                after_decompression: true,
                ..
            }
        ));
        assert_eq!(decompress(&gzip(b"abc"), Some("gzip"), 3).unwrap(), b"abc");
        assert!(matches!(
            decompress(b"not gzip", Some("gzip"), 100),
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(
            decompress(b"x", Some("br"), 100),
            Err(DecodeError::Encoding(_))
        ));
    }

    #[test]
    fn json_errors_have_paths() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        match json(body).unwrap_err() {
            DecodeError::Json { path, .. } => {
                assert_eq!(path, "resourceSpans[0].scopeSpans[0].spans[0].traceId")
            }
            e => panic!("{e}"),
        }
        let ok = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,"attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let req = json(ok).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 2);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert_eq!(span.span_id.len(), 8);
    }
}
