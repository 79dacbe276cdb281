//! `sentrace detect`: threat detection offline. OTLP/JSON on stdin (one
//! `ExportTraceServiceRequest`, or JSON lines as the OpenTelemetry Collector's file exporter
//! writes them); OCSF 1.3 Detection Findings (class 2004) as JSON lines on stdout.
//!
//! Spans are grouped by trace (so the trace-correlated detectors see parent and children
//! together) and traces are processed in order of their first span's start time (so the
//! behavioral detectors see time move forward), whatever the input order.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans};
use sentrace_detect::{Detector, Ruleset};

/// Arguments of `detect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A ruleset file, or a directory holding `ruleset.toml` (replaces the default ruleset)
    /// and per-tenant overrides `<tenant>.toml`.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The tenant whose overrides apply.
    #[arg(long, default_value = "default")]
    tenant: String,
}

fn detector(rules: Option<&PathBuf>) -> anyhow::Result<Detector> {
    let Some(p) = rules else {
        return Ok(Detector::with_default_rules()?);
    };
    let load = |f: &std::path::Path| -> anyhow::Result<Ruleset> {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading rules {}", f.display()))?;
        Ok(Ruleset::from_toml(&f.display().to_string(), &text)?)
    };
    if p.is_dir() {
        let base = p.join("ruleset.toml");
        let mut d = if base.exists() {
            Detector::new(load(&base)?)?
        } else {
            Detector::with_default_rules()?
        };
        sentrace_server::detect::load_tenant_overrides(&mut d, p)?;
        Ok(d)
    } else {
        Ok(Detector::new(load(p)?)?)
    }
}

/// Regroups every span of the input by trace, in order of each trace's earliest start.
fn traces(
    requests: Vec<sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest>,
) -> Vec<(u64, Vec<ResourceSpans>)> {
    // trace id → (earliest start, latest end, (resource index, scope index) → spans)
    type Group = (
        u64,
        u64,
        BTreeMap<(usize, usize), Vec<sentrace_core::proto::trace::v1::Span>>,
    );
    let mut resources: Vec<ResourceSpans> = Vec::new();
    let mut scopes: Vec<ScopeSpans> = Vec::new();
    let mut groups: BTreeMap<Vec<u8>, Group> = BTreeMap::new();
    for req in requests {
        for mut rs in req.resource_spans {
            let ri = resources.len();
            let scope_spans = std::mem::take(&mut rs.scope_spans);
            resources.push(rs);
            for mut ss in scope_spans {
                let si = scopes.len();
                let spans = std::mem::take(&mut ss.spans);
                scopes.push(ss);
                for span in spans {
                    let g = groups.entry(span.trace_id.clone()).or_insert((
                        u64::MAX,
                        0,
                        BTreeMap::new(),
                    ));
                    g.0 = g.0.min(span.start_time_unix_nano);
                    g.1 = g.1.max(span.end_time_unix_nano);
                    g.2.entry((ri, si)).or_default().push(span);
                }
            }
        }
    }
    let mut out: Vec<(u64, u64, Vec<ResourceSpans>)> = groups
        .into_values()
        .map(|(start, end, parts)| {
            let mut by_resource: BTreeMap<usize, ResourceSpans> = BTreeMap::new();
            for ((ri, si), spans) in parts {
                let rs = by_resource.entry(ri).or_insert_with(|| ResourceSpans {
                    scope_spans: Vec::new(),
                    ..resources.get(ri).cloned().unwrap_or_default()
                });
                rs.scope_spans.push(ScopeSpans {
                    spans,
                    ..scopes.get(si).cloned().unwrap_or_default()
                });
            }
            (start, end.max(start), by_resource.into_values().collect())
        })
        .collect();
    out.sort_by_key(|(start, _, _)| *start);
    out.into_iter().map(|(_, end, rs)| (end, rs)).collect()
}

/// Runs `detect`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(a.tenant).context("--tenant")?;
    let detector = detector(a.rules.as_ref())?;
    let requests = super::redact::read_requests()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n = 0usize;
    for (now, batch) in traces(requests) {
        for f in detector.inspect(&tenant, &batch, now) {
            serde_json::to_writer(&mut out, &f.to_ocsf())?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!("sentrace detect: {n} finding(s)");
    Ok(ExitCode::SUCCESS)
}
