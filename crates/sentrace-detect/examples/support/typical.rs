//! The typical ingest batch the detection cost is measured on (shared by the `detect`
//! bench and the `detect_cost` example): 200 spans, 40 traces of a server span with
//! request attributes from the benign generator and four children (DB, HTTP client,
//! cache, internal).

use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};

use super::benign;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn kvi(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// Variant `variant` of the batch: its own benign request values and trace ids (a server
/// never receives the same spans twice, and the detector's cross-batch memory keys on
/// trace ids).
pub fn typical_batch(variant: u64) -> ExportTraceServiceRequest {
    let mut g = benign::Benign::new(42 + variant);
    let mut spans = Vec::new();
    for t in 0..40u64 {
        let trace = {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(t + 1).to_be_bytes());
            b[8..].copy_from_slice(&(variant + 1).to_be_bytes());
            b.to_vec()
        };
        let root = (t + 1) * 16;
        let start = 1_750_000_000_000_000_000 + t * 1_000_000;
        let mut attrs: Vec<KeyValue> = g.request().into_iter().map(|(k, v)| kv(&k, &v)).collect();
        attrs.extend([
            kv("http.route", "/search"),
            kvi("http.response.status_code", 200),
            kvi("http.response.body.size", 18_000),
            kv("client.address", "198.51.100.23"),
            kv("server.address", "shop.example.com"),
            kvi("server.port", 443),
            kv("network.protocol.version", "1.1"),
            kv("url.scheme", "https"),
            kv("enduser.id", "user1234"),
        ]);
        let mk = |id: u64, parent: u64, kind: SpanKind, name: &str, attrs: Vec<KeyValue>| Span {
            trace_id: trace.clone(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: if parent == 0 {
                Vec::new()
            } else {
                parent.to_be_bytes().to_vec()
            },
            kind: kind as i32,
            name: name.into(),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 20_000_000,
            attributes: attrs,
            ..Default::default()
        };
        spans.push(mk(root, 0, SpanKind::Server, "GET /search", attrs));
        spans.push(mk(
            root + 1,
            root,
            SpanKind::Client,
            "SELECT products",
            vec![
                kv("db.system", "postgresql"),
                kv(
                    "db.query.text",
                    "SELECT id, name, price FROM products WHERE name ILIKE $1 LIMIT 20",
                ),
                kv("db.namespace", "shop"),
            ],
        ));
        spans.push(mk(
            root + 2,
            root,
            SpanKind::Client,
            "GET",
            vec![
                kv("http.request.method", "GET"),
                kv(
                    "url.full",
                    "https://recs.internal.example/v1/recommend?user=1234",
                ),
                kvi("http.response.status_code", 200),
            ],
        ));
        spans.push(mk(
            root + 3,
            root,
            SpanKind::Client,
            "GET cache",
            vec![kv("db.system", "redis"), kv("db.operation.name", "GET")],
        ));
        spans.push(mk(
            root + 4,
            root,
            SpanKind::Internal,
            "render",
            vec![kv("code.function.name", "render_results")],
        ));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "frontend"),
                    kv("service.version", "1.4.2"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
