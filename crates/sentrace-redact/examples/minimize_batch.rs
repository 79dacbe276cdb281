//! CPU time of the minimize stage's call (`minimize_recording`, as the server runs it) on a
//! 200-span batch of the load generator's typical 20-attribute spans, in two shapes: one
//! resource holding every span, and the load generator's shape (one resource per service
//! per request: 5 to 10 services; here 8 resources of 25 spans). Prints the median and the
//! fastest microseconds of this thread's CPU time (`/proc/thread-self/schedstat`, so that
//! a loaded machine does not inflate it) per batch, over five blocks of `--rounds` batches (default 200) after a warm-up block.
//!
//!   cargo run --release -p sentrace-redact --example minimize_batch -- --rounds 300

/// This thread's CPU time in nanoseconds (Linux), or 0.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans};
use sentrace_redact::{BatchExposure, InMemorySecrets, Policy, Redactor};

#[path = "measure/typical.rs"]
#[allow(dead_code)]
mod typical;

const SPANS: usize = 200;

/// One span in ten with sensitive values, as the load generator sends.
fn spans() -> Vec<sentrace_core::proto::trace::v1::Span> {
    let clean = typical::batch(false, SPANS);
    let dirty = typical::batch(true, SPANS / 10);
    let mut out = clean[0].scope_spans[0].spans.clone();
    for (i, s) in dirty[0].scope_spans[0].spans.iter().enumerate() {
        out[i * 10] = s.clone();
    }
    out
}

fn resource(service: &str, spans: Vec<sentrace_core::proto::trace::v1::Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let r = Redactor::new(Policy::default()).expect("built-in detectors compile");
    let keys = InMemorySecrets::from_master_key([1; 32]);
    let tenant = TenantId::new("bench").expect("valid tenant");
    let all = spans();
    let one = vec![resource("checkout", all.clone())];
    let many: Vec<ResourceSpans> = all
        .chunks(SPANS / 8)
        .enumerate()
        .map(|(i, c)| resource(&format!("svc-{i}"), c.to_vec()))
        .collect();
    for (name, input) in [("one resource", &one), ("8 resources", &many)] {
        // Blocks of `rounds` batches, cloned beforehand; the thread's CPU time is read per
        // block (its clock ticks are too coarse for one batch). Median and fastest block.
        let mut times = Vec::new();
        for block in 0..6 {
            let mut inputs: Vec<Vec<ResourceSpans>> = (0..rounds).map(|_| input.clone()).collect();
            let t = cpu_ns();
            for rs in &mut inputs {
                let mut ex = BatchExposure::default();
                let rep = r.minimize_recording(&tenant, rs, &keys, &mut ex);
                std::hint::black_box((rep, ex));
            }
            let dt = cpu_ns().saturating_sub(t);
            drop(inputs);
            if block > 0 {
                times.push(dt as f64 / 1e3 / rounds as f64);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.0} us, fastest {:.0} us per {SPANS}-span batch (5 x {rounds})",
            times[times.len() / 2],
            times[0]
        );
    }
}
