//! Detection cost at ingest: spans/s for OTLP decode alone (the ingest floor) and for
//! decode + `Detector::inspect` on a typical batch (200 spans: 40 traces of a server span
//! with request attributes and four children: DB, HTTP client, cache, internal).
//!
//! Every iteration sees new trace ids (a server never receives the same spans twice), so
//! the cross-batch correlation memory works as in production: it remembers and recalls,
//! and forgets after its time-to-live.
//!
//! `cargo bench -p sentrace-detect --bench detect`

#[path = "../examples/support/benign.rs"]
mod benign;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use sentrace_core::TenantId;
use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use sentrace_detect::{Detector, RuleKind, Ruleset};

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

/// Distinct batches cycled through by the detect benches.
const VARIANTS: u64 = 64;

fn typical_batch(variant: u64) -> ExportTraceServiceRequest {
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

fn bench(c: &mut Criterion) {
    let variants: Vec<ExportTraceServiceRequest> = (0..VARIANTS).map(typical_batch).collect();
    let req = variants[0].clone();
    let encoded: Vec<Vec<u8>> = variants.iter().map(Message::encode_to_vec).collect();
    let n = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum::<usize>() as u64;
    let bytes = req.encode_to_vec();
    let detector = Detector::with_default_rules().expect("rules");
    let tenant = TenantId::new("bench").expect("tenant");
    // Receive time per iteration: the batches repeat after VARIANTS iterations, by when
    // the memory has forgotten them (2 × its time-to-live later).
    let step = 2 * sentrace_detect::memory::TTL_NANOS / VARIANTS;
    let mut i = 0u64;
    let mut next = move || {
        i += 1;
        ((i % VARIANTS) as usize, i * step)
    };
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode"))
    });
    g.bench_function("decode+detect", |b| {
        b.iter(|| {
            let (v, now) = next();
            let r = ExportTraceServiceRequest::decode(encoded[v].as_slice()).expect("decode");
            detector.inspect(&tenant, &r.resource_spans, now)
        })
    });
    g.bench_function("detect", |b| {
        b.iter(|| {
            let (v, now) = next();
            detector.inspect(&tenant, &variants[v].resource_spans, now)
        })
    });
    eprintln!(
        "traces held for cross-batch correlation: {}",
        detector.remembered_traces(&tenant)
    );
    // Each engine alone, to see where the cost is.
    for (name, kind) in [
        ("detect/payload-only", RuleKind::Payload),
        ("detect/correlated-only", RuleKind::Correlated),
        ("detect/behavioral-only", RuleKind::Behavioral),
    ] {
        let mut rs = Ruleset::default_ruleset().expect("rules");
        rs.rules.retain(|r| r.kind == kind);
        let d = Detector::new(rs).expect("rules");
        g.bench_function(name, |b| {
            b.iter(|| {
                let (v, now) = next();
                d.inspect(&tenant, &variants[v].resource_spans, now)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
