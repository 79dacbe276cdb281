//! Helpers shared by unit tests, integration tests and benches (hidden from docs).

use bytes::Bytes;
use sentrace_core::canonical;
use sentrace_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::SpanEntry;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A span of trace `trace` (1-based, becomes the trace id bytes), span number `span`,
/// with the given service, name, times and string attributes, in canonical v1 form.
pub fn span(
    trace: u64,
    span: u64,
    service: &str,
    name: &str,
    start: u64,
    end: u64,
    attrs: &[(&str, &str)],
) -> SpanEntry {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&trace.to_be_bytes());
    trace_id[15] = 1;
    let mut span_id = [0u8; 8];
    span_id.copy_from_slice(&span.to_be_bytes());
    span_id[0] |= 0x80;
    let s = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    };
    let ss = ScopeSpans {
        scope: Some(InstrumentationScope {
            name: "test".into(),
            ..Default::default()
        }),
        spans: vec![],
        schema_url: String::new(),
    };
    let rs = ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![],
        schema_url: String::new(),
    };
    let bytes = canonical::encode(&rs, &ss, &s);
    match SpanEntry::from_canonical(Bytes::from(bytes)) {
        Ok(e) => e,
        Err(e) => panic!("test span does not decode: {e}"),
    }
}
