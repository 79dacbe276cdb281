//! The canonical span encoding, version 1.
//!
//! Every span is encoded exactly once, after minimization. These bytes are what the
//! transparency log hashes, what the WAL encrypts and what a block keeps, so a verifier
//! re-derives them from storage without re-encoding anything.
//!
//! Version 1 layout:
//!
//! ```text
//! canonical_span_v1 = 0x01 || protobuf(ResourceSpans {
//!     resource,                       // the span's resource, as received
//!     scope_spans: [ScopeSpans {
//!         scope, spans: [span], schema_url,
//!     }],
//!     schema_url,
//! })
//! ```
//!
//! The protobuf bytes are the ones `prost` produces for that message (fields in tag order,
//! default values omitted), so `decode` followed by `prost::Message::encode` of the result
//! reproduces them exactly.

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, message, string};

use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// The version byte of the current encoding.
pub const VERSION_1: u8 = 1;

/// A canonical span could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// Empty input.
    #[error("canonical span is empty")]
    Empty,
    /// An unknown version byte.
    #[error("canonical span version {0} is not supported (expected 1)")]
    Version(u8),
    /// The protobuf body did not decode.
    #[error("canonical span body is not valid protobuf: {0}")]
    Protobuf(String),
    /// The body did not hold exactly one span.
    #[error("canonical span must hold exactly one resource, scope and span")]
    Shape,
}

/// Encodes the spans of one `ResourceSpans` canonically, encoding the resource (and each
/// scope) once instead of once per span.
pub struct ResourceEncoder<'a> {
    rs: &'a ResourceSpans,
    resource: Vec<u8>,
}

impl<'a> ResourceEncoder<'a> {
    /// Pre-encodes the resource of `rs`.
    pub fn new(rs: &'a ResourceSpans) -> Self {
        let mut resource = Vec::new();
        if let Some(r) = &rs.resource {
            message::encode(1, r, &mut resource);
        }
        Self { rs, resource }
    }

    /// Pre-encodes a scope of this resource, for [`ResourceEncoder::encode_into`].
    pub fn scope(ss: &ScopeSpans) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(scope) = &ss.scope {
            message::encode(1, scope, &mut out);
        }
        out
    }

    /// Appends the canonical v1 encoding of `span` of scope `ss`, whose pre-encoded scope
    /// field is `scope` (from [`ResourceEncoder::scope`]). Sizes the span once, reserves
    /// exactly what it appends, and returns the number of bytes appended.
    pub fn encode_into(
        &self,
        out: &mut Vec<u8>,
        ss: &ScopeSpans,
        scope: &[u8],
        span: &Span,
    ) -> usize {
        let span_len = span.encoded_len();
        out.reserve(self.encoded_len(ss, scope, span_len));
        self.encode_sized(out, ss, scope, span, span_len)
    }

    /// The number of bytes [`ResourceEncoder::encode_sized`] appends for a span of scope
    /// `ss` whose own encoding is `span_len` bytes (`Span::encoded_len`). A caller that
    /// sizes a whole batch first can then fill one buffer of exactly that size.
    pub fn encoded_len(&self, ss: &ScopeSpans, scope: &[u8], span_len: usize) -> usize {
        let scope_len = Self::scope_len(ss, scope, span_len);
        let rs_schema = if self.rs.schema_url.is_empty() {
            0
        } else {
            string::encoded_len(3, &self.rs.schema_url)
        };
        1 + self.resource.len() + 1 + encoded_len_varint(scope_len as u64) + scope_len + rs_schema
    }

    fn scope_len(ss: &ScopeSpans, scope: &[u8], span_len: usize) -> usize {
        let schema = if ss.schema_url.is_empty() {
            0
        } else {
            string::encoded_len(3, &ss.schema_url)
        };
        scope.len() + 1 + encoded_len_varint(span_len as u64) + span_len + schema
    }

    /// [`ResourceEncoder::encode_into`] for a span whose encoded length the caller already
    /// has (`span_len`, from `Span::encoded_len`): appends without reserving, so a buffer
    /// sized with [`ResourceEncoder::encoded_len`] never grows. Returns the bytes appended.
    ///
    /// # Panics
    /// If `span_len` is not `span.encoded_len()`.
    pub fn encode_sized(
        &self,
        out: &mut Vec<u8>,
        ss: &ScopeSpans,
        scope: &[u8],
        span: &Span,
        span_len: usize,
    ) -> usize {
        let start = out.len();
        out.push(VERSION_1);
        out.extend_from_slice(&self.resource);
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(Self::scope_len(ss, scope, span_len) as u64, out);
        out.extend_from_slice(scope);
        // `message::encode(2, span, out)`, without sizing the span a second time.
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(span_len as u64, out);
        let span_at = out.len();
        span.encode_raw(out);
        // A wrong length would write a length prefix that does not match the span's bytes,
        // into bytes the log hashes: a caller's bug, never the data's.
        assert_eq!(
            out.len() - span_at,
            span_len,
            "encode_sized: span_len must be the span's Span::encoded_len()"
        );
        if !ss.schema_url.is_empty() {
            string::encode(3, &ss.schema_url, out);
        }
        if !self.rs.schema_url.is_empty() {
            string::encode(3, &self.rs.schema_url, out);
        }
        debug_assert_eq!(out.len() - start, self.encoded_len(ss, scope, span_len));
        out.len() - start
    }
}

/// Appends the canonical v1 encoding of `span` (with its resource and scope) to `out`.
pub fn encode_into(out: &mut Vec<u8>, rs: &ResourceSpans, ss: &ScopeSpans, span: &Span) {
    ResourceEncoder::new(rs).encode_into(out, ss, &ResourceEncoder::scope(ss), span);
}

/// The canonical v1 encoding of one span.
pub fn encode(rs: &ResourceSpans, ss: &ScopeSpans, span: &Span) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_into(&mut out, rs, ss, span);
    out
}

/// Decodes canonical bytes back into a `ResourceSpans` holding exactly one span.
pub fn decode(bytes: &[u8]) -> Result<ResourceSpans, CanonicalError> {
    let (&version, body) = bytes.split_first().ok_or(CanonicalError::Empty)?;
    if version != VERSION_1 {
        return Err(CanonicalError::Version(version));
    }
    let rs = ResourceSpans::decode(body).map_err(|e| CanonicalError::Protobuf(e.to_string()))?;
    if rs.scope_spans.len() != 1 || rs.scope_spans[0].spans.len() != 1 {
        return Err(CanonicalError::Shape);
    }
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
    use crate::proto::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_matches_prost() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "op".into(),
            attributes: vec![kv("a", "b")],
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        };
        let ss = ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "lib".into(),
                ..Default::default()
            }),
            spans: vec![span.clone()],
            schema_url: "s1".into(),
        };
        let rs = ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "svc")],
                ..Default::default()
            }),
            scope_spans: vec![],
            schema_url: "s2".into(),
        };
        let bytes = encode(&rs, &ss, &span);
        let back = decode(&bytes).unwrap();
        let mut expect = rs.clone();
        expect.scope_spans = vec![ss.clone()];
        assert_eq!(back, expect);
        assert_eq!(&bytes[1..], expect.encode_to_vec().as_slice());
        assert_eq!(decode(&[2, 0]), Err(CanonicalError::Version(2)));
        assert_eq!(decode(&[]), Err(CanonicalError::Empty));
        // Sized first, then encoded into a buffer of exactly that size: the same bytes.
        let enc = ResourceEncoder::new(&rs);
        let scope = ResourceEncoder::scope(&ss);
        let len = enc.encoded_len(&ss, &scope, span.encoded_len());
        assert_eq!(len, bytes.len());
        let mut sized = Vec::with_capacity(len);
        assert_eq!(
            enc.encode_sized(&mut sized, &ss, &scope, &span, span.encoded_len()),
            len
        );
        assert_eq!(sized, bytes);
        assert_eq!(sized.capacity(), len);
    }
}
