//! [`SpanEntry`]: one span as the pipeline hands it to the store, and its WAL encoding.

use bytes::Bytes;
use sentrace_core::canonical::{self, CanonicalError};
use sentrace_core::otlp::service_name;
use sentrace_core::{SpanId, TraceId};

/// Longest canonical span accepted (bytes).
pub const MAX_CANONICAL_BYTES: usize = 16 << 20;
/// Longest service or span name accepted (bytes).
pub const MAX_NAME_BYTES: usize = u16::MAX as usize;
/// Most spans in one WAL record (one request).
pub const MAX_SPANS_PER_RECORD: usize = 1 << 20;

/// One span as the pipeline hands it over (already minimized). `canonical` is the
/// `sentrace_core::canonical` v1 encoding; the other fields are index columns derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanEntry {
    /// Trace id.
    pub trace_id: TraceId,
    /// Span id.
    pub span_id: SpanId,
    /// Parent span id, if the span has a parent.
    pub parent_span_id: Option<SpanId>,
    /// `service.name` of the resource (or `unknown_service`).
    pub service: String,
    /// Span name (operation).
    pub name: String,
    /// OTLP `SpanKind` as its integer value.
    pub kind: i32,
    /// Start time, Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// End time, Unix nanoseconds.
    pub end_unix_nanos: u64,
    /// Canonical v1 bytes of the span.
    pub canonical: Bytes,
    /// Where the span sits in the transparency log, if its batch was sealed.
    pub seal: Option<SpanSeal>,
}

/// A sealed span's place in the transparency log: the batch's log index and the span's
/// position in the batch (the order of the batch's span root). The span at position 0
/// also carries the batch manifest, so the WAL record holding the spans holds the log
/// entry too (one record, one fsync: crash-consistent by construction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanSeal {
    /// Log index of the batch (the manifest's index).
    pub index: u64,
    /// Position of the span within its batch.
    pub position: u32,
    /// The encoded batch manifest; only on position 0, and only in the WAL (blocks keep
    /// index and position; the log keeps the manifest).
    pub manifest: Option<Bytes>,
}

/// Longest encoded manifest carried in a WAL record.
pub const MAX_MANIFEST_BYTES: usize = u16::MAX as usize;

/// A canonical span could not be turned into a [`SpanEntry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The canonical bytes did not decode.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// An id in the span was invalid.
    #[error("span {field} is invalid: {reason}")]
    Id {
        /// Which id.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A field exceeds the store's limits.
    #[error("{field} is {len} bytes, limit {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl SpanEntry {
    /// Derives the index fields by decoding canonical v1 bytes.
    pub fn from_canonical(bytes: impl Into<Bytes>) -> Result<SpanEntry, EntryError> {
        let bytes: Bytes = bytes.into();
        if bytes.len() > MAX_CANONICAL_BYTES {
            return Err(EntryError::TooLong {
                field: "canonical span",
                len: bytes.len(),
                max: MAX_CANONICAL_BYTES,
            });
        }
        let rs = canonical::decode(&bytes)?;
        let service = service_name(rs.resource.as_ref()).to_string();
        let span = rs
            .scope_spans
            .first()
            .and_then(|ss| ss.spans.first())
            .ok_or(CanonicalError::Shape)?;
        let id = |field: &'static str, e: sentrace_core::IdError| EntryError::Id {
            field,
            reason: e.to_string(),
        };
        let trace_id = TraceId::from_slice(&span.trace_id).map_err(|e| id("trace_id", e))?;
        let span_id = SpanId::from_slice(&span.span_id).map_err(|e| id("span_id", e))?;
        let parent_span_id = if span.parent_span_id.is_empty() {
            None
        } else {
            Some(SpanId::from_slice(&span.parent_span_id).map_err(|e| id("parent_span_id", e))?)
        };
        let entry = SpanEntry {
            trace_id,
            span_id,
            parent_span_id,
            service,
            name: span.name.clone(),
            kind: span.kind,
            start_unix_nanos: span.start_time_unix_nano,
            end_unix_nanos: span.end_time_unix_nano,
            canonical: bytes.clone(),
            seal: None,
        };
        entry.check_limits()?;
        Ok(entry)
    }

    /// Checks the store's size limits on the variable-length fields.
    pub fn check_limits(&self) -> Result<(), EntryError> {
        for (field, len, max) in [
            ("service", self.service.len(), MAX_NAME_BYTES),
            ("span name", self.name.len(), MAX_NAME_BYTES),
            ("canonical span", self.canonical.len(), MAX_CANONICAL_BYTES),
            (
                "manifest",
                self.seal
                    .as_ref()
                    .and_then(|s| s.manifest.as_ref())
                    .map_or(0, Bytes::len),
                MAX_MANIFEST_BYTES,
            ),
        ] {
            if len > max {
                return Err(EntryError::TooLong { field, len, max });
            }
        }
        Ok(())
    }

    /// Duration in nanoseconds (0 if the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// Bytes this entry takes in the WAL encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        FIXED_LEN
            + self.service.len()
            + self.name.len()
            + self.canonical.len()
            + match &self.seal {
                None => 0,
                Some(s) => 12 + s.manifest.as_ref().map_or(0, |m| 2 + m.len()),
            }
    }
}

/// trace 16 + span 8 + parent flag 1 + parent 8 + kind 4 + start 8 + end 8 + 2 + 2 + 4
/// + seal flag 1.
const FIXED_LEN: usize = 16 + 8 + 1 + 8 + 4 + 8 + 8 + 2 + 2 + 4 + 1;

/// Encodes entries as the plaintext of one WAL record:
/// `count u32 ‖ entry*`, each entry fixed fields (big-endian) then
/// `service_len u16 ‖ name_len u16 ‖ canonical_len u32 ‖ service ‖ name ‖ canonical ‖ seal`
/// where `seal` is `0` (unsealed), `1 ‖ index u64 ‖ position u32`, or
/// `2 ‖ index u64 ‖ position u32 ‖ manifest_len u16 ‖ manifest`.
/// Callers must have run [`SpanEntry::check_limits`] on every entry.
pub(crate) fn encode_entries(entries: &[SpanEntry], out: &mut Vec<u8>) {
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(e.trace_id.as_bytes());
        out.extend_from_slice(e.span_id.as_bytes());
        match &e.parent_span_id {
            Some(p) => {
                out.push(1);
                out.extend_from_slice(p.as_bytes());
            }
            None => {
                out.push(0);
                out.extend_from_slice(&[0u8; 8]);
            }
        }
        out.extend_from_slice(&e.kind.to_be_bytes());
        out.extend_from_slice(&e.start_unix_nanos.to_be_bytes());
        out.extend_from_slice(&e.end_unix_nanos.to_be_bytes());
        out.extend_from_slice(&(e.service.len() as u16).to_be_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_be_bytes());
        out.extend_from_slice(&(e.canonical.len() as u32).to_be_bytes());
        out.extend_from_slice(e.service.as_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.canonical);
        match &e.seal {
            None => out.push(0),
            Some(s) => {
                out.push(if s.manifest.is_some() { 2 } else { 1 });
                out.extend_from_slice(&s.index.to_be_bytes());
                out.extend_from_slice(&s.position.to_be_bytes());
                if let Some(m) = &s.manifest {
                    out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                    out.extend_from_slice(m);
                }
            }
        }
    }
}

/// A reader over bytes that fails instead of panicking.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Decodes the plaintext of one WAL record (the inverse of [`encode_entries`]), with limits.
pub(crate) fn decode_entries(plain: Bytes) -> Result<Vec<SpanEntry>, String> {
    let mut c = Cursor {
        buf: &plain,
        pos: 0,
    };
    let count = u32::from_be_bytes(c.array()?) as usize;
    if count > MAX_SPANS_PER_RECORD {
        return Err(format!(
            "record claims {count} spans, limit {MAX_SPANS_PER_RECORD}"
        ));
    }
    let mut out = Vec::with_capacity(count.min(plain.len() / FIXED_LEN));
    for i in 0..count {
        let trace_id = TraceId::from_bytes(c.array()?).map_err(|e| format!("span {i}: {e}"))?;
        let span_id = SpanId::from_bytes(c.array()?).map_err(|e| format!("span {i}: {e}"))?;
        let has_parent = c.array::<1>()?[0];
        let parent: [u8; 8] = c.array()?;
        let parent_span_id = match has_parent {
            0 => None,
            1 => Some(SpanId::from_bytes(parent).map_err(|e| format!("span {i}: {e}"))?),
            other => return Err(format!("span {i}: bad parent flag {other}")),
        };
        let kind = i32::from_be_bytes(c.array()?);
        let start_unix_nanos = u64::from_be_bytes(c.array()?);
        let end_unix_nanos = u64::from_be_bytes(c.array()?);
        let service_len = usize::from(u16::from_be_bytes(c.array()?));
        let name_len = usize::from(u16::from_be_bytes(c.array()?));
        let canonical_len = u32::from_be_bytes(c.array()?) as usize;
        if canonical_len > MAX_CANONICAL_BYTES {
            return Err(format!(
                "span {i}: canonical length {canonical_len} over limit"
            ));
        }
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec()).map_err(|_| format!("span {i}: {what} is not UTF-8"))
        };
        let service = text(c.take(service_len)?, "service")?;
        let name = text(c.take(name_len)?, "name")?;
        let start = c.pos;
        c.take(canonical_len)?;
        let canonical = plain.slice(start..c.pos);
        let flag = c.array::<1>()?[0];
        let seal = match flag {
            0 => None,
            1 | 2 => {
                let index = u64::from_be_bytes(c.array()?);
                let position = u32::from_be_bytes(c.array()?);
                let manifest = if flag == 2 {
                    let len = usize::from(u16::from_be_bytes(c.array()?));
                    let at = c.pos;
                    c.take(len)?;
                    Some(plain.slice(at..c.pos))
                } else {
                    None
                };
                Some(SpanSeal {
                    index,
                    position,
                    manifest,
                })
            }
            other => return Err(format!("span {i}: bad seal flag {other}")),
        };
        out.push(SpanEntry {
            trace_id,
            span_id,
            parent_span_id,
            service,
            name,
            kind,
            start_unix_nanos,
            end_unix_nanos,
            canonical,
            seal,
        });
    }
    if c.pos != plain.len() {
        return Err(format!(
            "{} trailing bytes after {count} spans",
            plain.len() - c.pos
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::span;

    #[test]
    fn from_canonical_and_wal_round_trip() {
        let e = span(
            3,
            1,
            "checkout",
            "GET /cart",
            1_000,
            5_000,
            &[("user.email", "a@b.c")],
        );
        let back = SpanEntry::from_canonical(e.canonical.clone()).unwrap();
        assert_eq!(back, e);
        let mut buf = Vec::new();
        encode_entries(&[e.clone(), back.clone()], &mut buf);
        assert_eq!(buf.len(), 4 + 2 * e.encoded_len());
        let dec = decode_entries(Bytes::from(buf.clone())).unwrap();
        assert_eq!(dec, vec![e.clone(), e.clone()]);
        let mut sealed = e.clone();
        sealed.seal = Some(SpanSeal {
            index: 7,
            position: 0,
            manifest: Some(Bytes::from_static(b"manifest")),
        });
        let mut plain = e.clone();
        plain.seal = Some(SpanSeal {
            index: 7,
            position: 1,
            manifest: None,
        });
        let mut sbuf = Vec::new();
        encode_entries(&[sealed.clone(), plain.clone()], &mut sbuf);
        assert_eq!(sbuf.len(), 4 + sealed.encoded_len() + plain.encoded_len());
        assert_eq!(
            decode_entries(Bytes::from(sbuf)).unwrap(),
            vec![sealed, plain]
        );
        for cut in [0, 3, 10, buf.len() - 1] {
            assert!(decode_entries(Bytes::from(buf[..cut].to_vec())).is_err());
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert!(decode_entries(Bytes::from(extra)).is_err());
        assert!(SpanEntry::from_canonical(Bytes::from_static(&[2, 0])).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_entries(Bytes::from(bytes));
        }

        #[test]
        fn encode_decode_round_trip(
            n in 0usize..8,
            name in "[a-zA-Z0-9 /{}_-]{0,40}",
            start in proptest::prelude::any::<u64>(),
        ) {
            let spans: Vec<_> = (0..n as u64)
                .map(|i| span(i + 1, i + 1, "svc", &name, start / 2, start / 2 + i, &[("k", "v")]))
                .collect();
            let mut buf = Vec::new();
            encode_entries(&spans, &mut buf);
            proptest::prop_assert_eq!(decode_entries(Bytes::from(buf)).unwrap(), spans);
        }
    }
}
