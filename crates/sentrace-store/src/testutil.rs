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

/// The WAL plaintext of `spans` (what a record encrypts), for benchmarks.
pub fn encode_plain(spans: &[SpanEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::entry::encode_entries(spans, &mut out);
    out
}

/// A typical server span: 20 attributes, about 700 bytes of canonical protobuf, with
/// per-span variation (ids, timings, user and path values) so compression is realistic.
pub fn typical_span(i: u64) -> SpanEntry {
    let user = format!("user-{:06}", i.wrapping_mul(7919) % 100_000);
    let path = format!("/api/v1/orders/{}/items", i.wrapping_mul(31) % 5000);
    let status = if i.is_multiple_of(17) { "500" } else { "200" };
    let peer = format!("10.0.{}.{}", (i / 256) % 256, i % 256);
    let req = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let attrs: Vec<(&str, &str)> = vec![
        ("http.request.method", "GET"),
        ("url.path", &path),
        ("url.scheme", "https"),
        ("http.response.status_code", status),
        ("http.route", "/api/v1/orders/{id}/items"),
        ("server.address", "orders.internal.example"),
        ("server.port", "8443"),
        ("client.address", &peer),
        (
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
        ),
        ("network.protocol.version", "2"),
        ("enduser.id", &user),
        ("request.id", &req),
        ("deployment.environment", "production"),
        ("k8s.pod.name", "orders-7d9c5b8f6-x2lqp"),
        ("k8s.namespace.name", "shop"),
        ("db.system", "postgresql"),
        ("db.operation.name", "SELECT"),
        ("messaging.system", "kafka"),
        ("feature.flag", "checkout-v2"),
        ("thread.name", "tokio-runtime-worker"),
    ];
    let start = 1_700_000_000_000_000_000 + i * 1_000_000;
    span(
        i / 8 + 1,
        i + 1,
        "orders",
        "GET /api/v1/orders/{id}/items",
        start,
        start + 2_500_000 + (i % 97) * 10_000,
        &attrs,
    )
}
