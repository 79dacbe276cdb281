//! `sentrace detect`: threat detection offline. OTLP/JSON on stdin (one
//! `ExportTraceServiceRequest`, or JSON lines as the OpenTelemetry Collector's file exporter
//! writes them); OCSF 1.3 Detection Findings (class 2004) as JSON lines on stdout.
//!
//! The input streams through in constant memory. Spans are grouped by trace (so the
//! trace-correlated detectors see parent and children together) within a bounded window
//! (`--window` spans), and traces leave the window in order of their first span's start
//! time (so the behavioral detectors see time move forward).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_detect::{Detector, Ruleset};

use super::fail_on::{Severity, Threshold};
use super::otlp_stream;

/// Arguments of `detect`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Without a subcommand: detect attacks in OTLP/JSON from stdin.
    #[command(subcommand)]
    command: Option<Sub>,
    /// A ruleset file, or a directory holding `ruleset.toml` (replaces the default ruleset)
    /// and per-tenant overrides `<tenant>.toml`.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The tenant whose overrides apply.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Most spans held while regrouping them by trace; beyond it the traces that started
    /// first are inspected, so memory stays bounded whatever the input size. A trace whose
    /// spans lie further apart in the input than this is inspected in parts.
    #[arg(long, default_value_t = 100_000)]
    window: usize,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum)]
    fail_on: Option<Severity>,
}

/// `detect` subcommands.
#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// The learned field context of a data directory: what each field of each route
    /// normally carries (list, show; reset refuses while a server runs).
    #[command(subcommand)]
    Profile(super::detect_profile::Command),
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

/// One trace being gathered: its time range and its spans under their resource and scope
/// (shared with the other traces of the same input element).
struct Gathered {
    start: u64,
    end: u64,
    spans: usize,
    parts: Vec<(Arc<ResourceSpans>, Arc<ScopeSpans>, Vec<Span>)>,
}

/// Regroups the input's spans by trace as they stream in. At most `window` spans wait;
/// beyond that the traces that started first go to the detector, so memory stays bounded
/// whatever the input size, and traces are handed over in order of their first start
/// within the window (the behavioral detectors see time move forward).
struct Regroup<F: FnMut(u64, Vec<ResourceSpans>) -> anyhow::Result<()>> {
    window: usize,
    waiting: usize,
    traces: HashMap<Vec<u8>, Gathered>,
    emit: F,
}

impl<F: FnMut(u64, Vec<ResourceSpans>) -> anyhow::Result<()>> Regroup<F> {
    /// Hands over every waiting trace if `all`, else the earliest until half the window
    /// is free.
    fn release(&mut self, all: bool) -> anyhow::Result<()> {
        let mut order: Vec<(u64, Vec<u8>)> = self
            .traces
            .iter()
            .map(|(id, g)| (g.start, id.clone()))
            .collect();
        order.sort_unstable();
        for (_, id) in order {
            if !all && self.waiting <= self.window / 2 {
                break;
            }
            let Some(g) = self.traces.remove(&id) else {
                continue;
            };
            self.waiting -= g.spans;
            (self.emit)(g.end.max(g.start), assemble(g.parts))?;
        }
        Ok(())
    }
}

/// Rebuilds OTLP resources from a trace's parts, one `ResourceSpans` per resource.
fn assemble(parts: Vec<(Arc<ResourceSpans>, Arc<ScopeSpans>, Vec<Span>)>) -> Vec<ResourceSpans> {
    let mut out: Vec<(Arc<ResourceSpans>, ResourceSpans)> = Vec::new();
    for (resource, scope, spans) in parts {
        let scope = ScopeSpans {
            spans,
            ..ScopeSpans::clone(&scope)
        };
        match out.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &resource)) {
            Some((_, rs)) => rs.scope_spans.push(scope),
            None => {
                let rs = ResourceSpans {
                    scope_spans: vec![scope],
                    ..ResourceSpans::clone(&resource)
                };
                out.push((resource, rs));
            }
        }
    }
    out.into_iter().map(|(_, rs)| rs).collect()
}

impl<F: FnMut(u64, Vec<ResourceSpans>) -> anyhow::Result<()>> otlp_stream::Sink for Regroup<F> {
    fn start(&mut self, _doc: usize) -> anyhow::Result<()> {
        Ok(())
    }

    fn item(&mut self, mut rs: ResourceSpans) -> anyhow::Result<()> {
        let scopes = std::mem::take(&mut rs.scope_spans);
        let resource = Arc::new(rs);
        for mut ss in scopes {
            let spans = std::mem::take(&mut ss.spans);
            let scope = Arc::new(ss);
            for span in spans {
                let g = self
                    .traces
                    .entry(span.trace_id.clone())
                    .or_insert_with(|| Gathered {
                        start: u64::MAX,
                        end: 0,
                        spans: 0,
                        parts: Vec::new(),
                    });
                g.start = g.start.min(span.start_time_unix_nano);
                g.end = g.end.max(span.end_time_unix_nano);
                g.spans += 1;
                match g.parts.last_mut() {
                    Some((r, s, v)) if Arc::ptr_eq(r, &resource) && Arc::ptr_eq(s, &scope) => {
                        v.push(span)
                    }
                    _ => g
                        .parts
                        .push((Arc::clone(&resource), Arc::clone(&scope), vec![span])),
                }
                self.waiting += 1;
            }
        }
        if self.waiting > self.window {
            self.release(false)?;
        }
        Ok(())
    }

    fn end(&mut self, _doc: usize) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Runs `detect`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if let Some(Sub::Profile(c)) = a.command {
        return super::detect_profile::run(c);
    }
    let tenant = TenantId::new(a.tenant).context("--tenant")?;
    let detector = detector(a.rules.as_ref())?;
    if a.window == 0 {
        anyhow::bail!("--window: must be at least 1 span");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n = 0usize;
    let mut threshold = Threshold::new(a.fail_on);
    let mut regroup = Regroup {
        window: a.window,
        waiting: 0,
        traces: HashMap::new(),
        emit: |now: u64, batch: Vec<ResourceSpans>| -> anyhow::Result<()> {
            for f in detector.inspect(&tenant, &batch, now) {
                let ocsf = f.to_ocsf();
                threshold.see(&ocsf);
                serde_json::to_writer(&mut out, &ocsf)?;
                out.write_all(b"\n")?;
                n += 1;
            }
            Ok(())
        },
    };
    otlp_stream::stream_stdin("detect", &mut regroup)?;
    regroup.release(true)?;
    drop(regroup);
    out.flush()?;
    eprintln!("sentrace detect: {n} finding(s)");
    Ok(threshold.exit_code("detect"))
}
