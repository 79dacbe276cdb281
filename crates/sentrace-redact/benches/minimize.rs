//! Spans per second for a typical 20-attribute HTTP server span (the hot path's
//! reference span, as the load generator sends), clean and with a few sensitive values, on one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentrace_core::TenantId;
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

// The same span the measure example times by CPU time.
#[path = "../examples/measure/typical.rs"]
mod typical;
use typical::batch;

fn bench(c: &mut Criterion) {
    let r = Redactor::new(Policy::default()).expect("detectors");
    let keys = InMemorySecrets::from_master_key([1; 32]);
    let tenant = TenantId::new("bench").expect("tenant");
    const N: usize = 100;
    let mut g = c.benchmark_group("minimize");
    g.throughput(Throughput::Elements(N as u64));
    for (name, sensitive) in [
        ("typical_20_attr_clean", false),
        ("typical_20_attr_sensitive", true),
    ] {
        let input = batch(sensitive, N);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |rs| black_box(r.minimize(&tenant, rs, &keys)),
                criterion::BatchSize::LargeInput,
            )
        });
        // The same with exposure counting (what the server's minimize stage does): one
        // batch's rows, merged into the tenant's log once per batch.
        let log = sentrace_redact::ExposureLog::new(4096, 16);
        g.bench_function(format!("{name}_exposure"), |b| {
            b.iter_batched_ref(
                || input.clone(),
                |rs| {
                    let mut ex = sentrace_redact::BatchExposure::default();
                    let rep = r.minimize_recording(&tenant, rs, &keys, &mut ex);
                    log.record(&tenant, 1, &ex);
                    black_box(rep)
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
