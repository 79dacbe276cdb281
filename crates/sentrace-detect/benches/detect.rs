//! Detection cost at ingest: spans/s for OTLP decode alone (the ingest floor) and for
//! decode + `Detector::inspect` on a typical batch (200 spans: 40 traces of a server span
//! with request attributes and four children: DB, HTTP client, cache, internal).
//!
//! `cargo bench -p sentrace-detect --bench detect`

#[path = "../examples/support/benign.rs"]
mod benign;
#[path = "../examples/support/typical.rs"]
mod typical;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use sentrace_core::TenantId;
use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_detect::{Detector, RuleKind, Ruleset};

fn bench(c: &mut Criterion) {
    let req = typical::typical_batch();
    let n = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum::<usize>() as u64;
    let bytes = req.encode_to_vec();
    let detector = Detector::with_default_rules().expect("rules");
    let tenant = TenantId::new("bench").expect("tenant");
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode"))
    });
    g.bench_function("decode+detect", |b| {
        b.iter(|| {
            let r = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode");
            detector.inspect(&tenant, &r.resource_spans, 1)
        })
    });
    g.bench_function("detect", |b| {
        b.iter(|| detector.inspect(&tenant, &req.resource_spans, 1))
    });
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
            b.iter(|| d.inspect(&tenant, &req.resource_spans, 1))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
