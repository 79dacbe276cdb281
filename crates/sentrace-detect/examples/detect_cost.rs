//! Detection cost against OTLP decode on the typical batch, robust to a shared, loaded
//! machine: decode and detect are timed in alternating rounds and the fastest round of
//! each is reported (contention only ever adds time), with the median beside it.
//!
//! `cargo run --release -p sentrace-detect --example detect_cost -- [--rounds N] [--iters N]
//!  [--without ID,ID,...] [--no-context]`
//!
//! `--without` also times, in the same alternating rounds, a detector whose ruleset lacks
//! the named rules, and prints both: the cost of those rules measured in one run.
//! `--no-context` does the same with a detector whose field context is off (`[context]
//! learn = false`, no pins): the cost of learning field profiles.

#[path = "support/benign.rs"]
mod benign;
#[path = "support/typical.rs"]
mod typical;

use std::time::Instant;

use prost::Message;
use sentrace_core::TenantId;
use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_detect::{Detector, Ruleset};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = arg("--rounds", 40);
    let iters = arg("--iters", 20).max(1);
    // Distinct variants in turn (a server never sees the same spans twice), the receive
    // clock advancing so that the cross-batch memory forgets a variant before it returns.
    const VARIANTS: u64 = 64;
    let variants: Vec<_> = (0..VARIANTS).map(typical::typical_batch).collect();
    let step = 2 * sentrace_detect::memory::TTL_NANOS / VARIANTS;
    let mut clock = 0u64;
    let req = &variants[0];
    let bytes = req.encode_to_vec();
    let detector = Detector::with_default_rules().expect("default rules");
    let without: Vec<String> = args
        .iter()
        .position(|a| a == "--without")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let no_context = args.iter().any(|a| a == "--no-context");
    let reduced = (!without.is_empty() || no_context).then(|| {
        let mut rs = Ruleset::default_ruleset().expect("default rules");
        rs.rules.retain(|r| !without.contains(&r.id));
        if no_context {
            rs.context.learn = false;
        }
        Detector::new(rs).expect("reduced rules")
    });
    let tenant = TenantId::new("bench").expect("tenant");
    let (mut decode, mut detect, mut detect_reduced) = (Vec::new(), Vec::new(), Vec::new());
    let mut findings = 0usize;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            let r = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode");
            std::hint::black_box(&r);
        }
        decode.push(t.elapsed().as_secs_f64() / iters as f64);
        let t = Instant::now();
        for _ in 0..iters {
            clock += 1;
            let v = &variants[(clock % VARIANTS) as usize];
            findings += detector
                .inspect(&tenant, &v.resource_spans, clock * step)
                .len();
        }
        detect.push(t.elapsed().as_secs_f64() / iters as f64);
        if let Some(d) = &reduced {
            let t = Instant::now();
            for _ in 0..iters {
                clock += 1;
                let v = &variants[(clock % VARIANTS) as usize];
                std::hint::black_box(d.inspect(&tenant, &v.resource_spans, clock * step));
            }
            detect_reduced.push(t.elapsed().as_secs_f64() / iters as f64);
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0] * 1e6, v[v.len() / 2] * 1e6)
    };
    let (dec_min, dec_med) = stats(&mut decode);
    let (det_min, det_med) = stats(&mut detect);
    println!("batch: 200 spans, {} bytes of OTLP protobuf", bytes.len());
    println!("decode: min {dec_min:.0} us, median {dec_med:.0} us per batch");
    println!("detect: min {det_min:.0} us, median {det_med:.0} us per batch");
    println!(
        "detect / decode: {:.2} (min), {:.2} (median); findings per batch {}",
        det_min / dec_min,
        det_med / dec_med,
        findings / (rounds * iters)
    );
    if !detect_reduced.is_empty() {
        let (red_min, red_med) = stats(&mut detect_reduced);
        println!(
            "detect without {}{}: min {red_min:.0} us, median {red_med:.0} us per batch; \
             with / without: {:.3} (min), {:.3} (median)",
            without.join(","),
            if no_context { " field context" } else { "" },
            det_min / red_min,
            det_med / red_med
        );
    }
}
