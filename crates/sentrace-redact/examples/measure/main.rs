//! Measurement harness for sentrace-redact (not a test: it reports figures).
//!
//! ```text
//! cargo run --release -p sentrace-redact --example measure -- \
//!     [--spans 20000] [--corpora DIR] [--export /tmp/corpus.json --export-spans 500]
//!     [--throughput-only]
//! ```
//!
//! Reports per-entity P/R/F2 on presidio-synth, secrets recall/precision per format (with
//! gitleaks side by side), leak and over-redaction rates on a generated span corpus, and
//! throughput (spans/s and MB/s of string values on one core). `--export` writes part of
//! the corpus as OTLP/JSON so that `scripts/presidio_compare.sh` can run Presidio on the
//! same input.

mod corpus;
mod presidio_synth;
mod secrets;
mod typical;

use std::time::Instant;

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn collect_value(v: &AnyValue, out: &mut Vec<String>) {
    match &v.value {
        Some(Value::StringValue(s)) => out.push(s.clone()),
        Some(Value::ArrayValue(a)) => a.values.iter().for_each(|x| collect_value(x, out)),
        Some(Value::KvlistValue(l)) => l.values.iter().for_each(|kv| collect_kv(kv, out)),
        Some(other) => out.push(sentrace_core::otlp::value_to_string(&AnyValue {
            value: Some(other.clone()),
        })),
        None => {}
    }
}

fn collect_kv(kv: &KeyValue, out: &mut Vec<String>) {
    if let Some(v) = &kv.value {
        collect_value(v, out);
    }
}

/// Every string a minimizer sees: names, status messages, attribute values.
fn strings(rs: &ResourceSpans) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = &rs.resource {
        r.attributes.iter().for_each(|kv| collect_kv(kv, &mut out));
    }
    for ss in &rs.scope_spans {
        for sp in &ss.spans {
            out.push(sp.name.clone());
            sp.attributes.iter().for_each(|kv| collect_kv(kv, &mut out));
            for e in &sp.events {
                out.push(e.name.clone());
                e.attributes.iter().for_each(|kv| collect_kv(kv, &mut out));
            }
            if let Some(st) = &sp.status {
                out.push(st.message.clone());
            }
        }
    }
    out
}

/// CPU time of this process (user + system), from /proc/self/stat (clock ticks of 10 ms;
/// callers time long enough runs). None when /proc is not there.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Runs `f` repeatedly for about `secs` of wall time; returns (iterations, wall, cpu).
fn timed(secs: f64, mut f: impl FnMut()) -> (u64, f64, f64) {
    let c0 = cpu_seconds().unwrap_or(0.0);
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds().map_or(wall, |c| (c - c0).max(0.01));
    (n, wall, cpu)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn main() {
    // The public corpora are not in the repository: `--corpora DIR` or `SENTRACE_CORPORA`
    // names a folder with presidio-synth/synth_dataset_v2.json and gitleaks/gitleaks.toml;
    // parts whose files are absent are skipped.
    let corpora = arg("--corpora")
        .or_else(|| std::env::var("SENTRACE_CORPORA").ok())
        .unwrap_or_default();
    let n: usize = arg("--spans")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let redactor = Redactor::new(Policy::default()).expect("built-in detectors compile");
    let det = redactor.detectors();

    presidio_synth::run(
        &format!("{corpora}/presidio-synth/synth_dataset_v2.json"),
        det,
    );
    secrets::run(&format!("{corpora}/gitleaks/gitleaks.toml"), det);

    // Generated span corpus: leak and over-redaction rates.
    let planted = corpus::generate(n, 42);
    let tenant = TenantId::new("measure").expect("valid tenant");
    let keys = InMemorySecrets::from_master_key([42; 32]);
    let (mut planted_n, mut leaked, mut neg_n, mut over) = (0u64, 0u64, 0u64, 0u64);
    let mut leaks_by_kind: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    let mut over_by_kind: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    let verbose = std::env::var_os("MEASURE_VERBOSE").is_some();
    for p in &planted {
        let mut rs = vec![p.spans.clone()];
        redactor.minimize(&tenant, &mut rs, &keys);
        let text = strings(&rs[0]).join("\n");
        for (kind, v) in &p.sensitive {
            planted_n += 1;
            let d = digits(v);
            let leak = text.contains(v.as_str()) || (d.len() >= 7 && text.contains(&d));
            let e = leaks_by_kind.entry(kind).or_default();
            e.0 += 1;
            if leak {
                leaked += 1;
                e.1 += 1;
                if verbose {
                    println!("  leak {kind}: {v}");
                }
            }
        }
        for (kind, v) in &p.negatives {
            neg_n += 1;
            let e = over_by_kind.entry(kind).or_default();
            e.0 += 1;
            if !text.contains(v.as_str()) {
                over += 1;
                e.1 += 1;
                if verbose {
                    println!("  over-redacted {kind}: {v}");
                }
            }
        }
    }
    println!("\n## generated span corpus ({n} spans, default policy)");
    println!(
        "leak rate {:.3}% ({leaked}/{planted_n} sensitive values still present verbatim or digits-only)",
        100.0 * leaked as f64 / planted_n.max(1) as f64
    );
    println!(
        "over-redaction rate {:.3}% ({over}/{neg_n} hard negatives altered)",
        100.0 * over as f64 / neg_n.max(1) as f64
    );
    let by = |m: &std::collections::BTreeMap<&str, (u64, u64)>| {
        m.iter()
            .map(|(k, (t, x))| format!("{k} {x}/{t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  leaks by kind: {}", by(&leaks_by_kind));
    println!("  over-redaction by kind: {}", by(&over_by_kind));

    // Throughput on one core: the whole corpus, in batches of 100 spans.
    let batches: Vec<Vec<ResourceSpans>> = planted
        .chunks(100)
        .map(|c| c.iter().map(|p| p.spans.clone()).collect())
        .collect();
    let bytes: usize = planted
        .iter()
        .flat_map(|p| strings(&p.spans))
        .map(|s| s.len())
        .sum();
    let nstrings: usize = planted.iter().map(|p| strings(&p.spans).len()).sum();
    let mut i = 0usize;
    let (iters, wall, cpu) = timed(6.0, || {
        let mut work = batches[i % batches.len()].clone();
        redactor.minimize(&tenant, &mut work, &keys);
        i += 1;
    });
    // Subtract the clone, timed alone.
    let (citers, _, ccpu) = timed(2.0, || {
        let work = batches[i % batches.len()].clone();
        std::hint::black_box(&work);
        i += 1;
    });
    let per_batch = cpu / iters as f64 - ccpu / citers as f64;
    let spans_per_batch = n as f64 / batches.len() as f64;
    println!(
        "\n## throughput (one core, CPU time; load average made wall time {:.1}x CPU time)",
        wall / cpu
    );
    println!(
        "generated corpus (PII-dense spans): {:.0} spans/s, {:.0} strings/s, {:.1} MB/s of string values",
        spans_per_batch / per_batch,
        nstrings as f64 / batches.len() as f64 / per_batch,
        bytes as f64 / batches.len() as f64 / per_batch / 1e6,
    );
    for sensitive in [false, true] {
        let input = typical::batch(sensitive, 100);
        let (iters, _, cpu) = timed(4.0, || {
            let mut work = input.clone();
            redactor.minimize(&tenant, &mut work, &keys);
        });
        let (citers, _, ccpu) = timed(1.5, || {
            std::hint::black_box(input.clone());
        });
        let per = cpu / iters as f64 - ccpu / citers as f64;
        println!(
            "typical 20-attribute span ({}): {:.0} spans/s",
            if sensitive {
                "with a client IP, a JWT and an e-mail"
            } else {
                "clean"
            },
            100.0 / per
        );
    }

    if let Some(path) = arg("--export") {
        let m: usize = arg("--export-spans")
            .and_then(|s| s.parse().ok())
            .unwrap_or(500);
        let subset: Vec<ResourceSpans> = planted.iter().take(m).map(|p| p.spans.clone()).collect();
        let req = sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: subset.clone(),
        };
        match serde_json::to_string(&req) {
            Ok(json) => {
                if let Err(e) = std::fs::write(&path, json) {
                    println!("cannot write {path}: {e}");
                }
            }
            Err(e) => println!("cannot encode OTLP/JSON: {e}"),
        }
        let sub_strings: usize = subset.iter().map(|rs| strings(rs).len()).sum();
        let sub_bytes: usize = subset.iter().flat_map(strings).map(|s| s.len()).sum();
        let (iters, _, cpu) = timed(3.0, || {
            let mut work = subset.clone();
            redactor.minimize(&tenant, &mut work, &keys);
        });
        let (citers, _, ccpu) = timed(1.0, || {
            std::hint::black_box(subset.clone());
        });
        let best = cpu / iters as f64 - ccpu / citers as f64;
        println!(
            "export: {m} spans to {path}; sentrace on it: {:.3} ms CPU per pass, {:.0} strings/s, {:.1} MB/s",
            best * 1e3,
            sub_strings as f64 / best,
            sub_bytes as f64 / best / 1e6
        );
    }
}
