//! Detection cost at ingest: spans/s for OTLP decode alone (the ingest floor) and for
//! decode + `Detector::inspect` on a typical batch (200 spans: 40 traces of a server span
//! with request attributes and four children: DB, HTTP client, cache, internal).
//!
//! The detect benches cycle through distinct variants of the batch (a server never
//! receives the same spans twice), so the cross-batch correlation memory works as in
//! production: it remembers and recalls, and forgets after its time-to-live.
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

/// Distinct batches cycled through by the detect benches.
const VARIANTS: u64 = 64;

fn bench(c: &mut Criterion) {
    let variants: Vec<ExportTraceServiceRequest> =
        (0..VARIANTS).map(typical::typical_batch).collect();
    let encoded: Vec<Vec<u8>> = variants.iter().map(Message::encode_to_vec).collect();
    let n = variants[0]
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum::<usize>() as u64;
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
        b.iter(|| ExportTraceServiceRequest::decode(encoded[0].as_slice()).expect("decode"))
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
