//! `sentrace redact` and `sentrace scan`: minimization and leak scanning offline, on OTLP/JSON
//! from stdin (one `ExportTraceServiceRequest`, or JSON lines as the OpenTelemetry
//! Collector's file exporter writes them). Both stream: one resource in memory at a time.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use sentrace_core::TenantId;
use sentrace_redact::{InMemorySecrets, Policy, Redactor, Summary};

use super::fail_on::{Severity, Threshold};
use super::otlp_stream;

/// Arguments of `redact`.
#[derive(clap::Args, Debug)]
pub struct RedactArgs {
    /// A redaction policy file (default: the built-in policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The tenant whose policy overrides apply.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// 64 hex characters: the pseudonym key, so pseudonyms are stable across runs
    /// (default: a random key for this run).
    #[arg(long, env = "SENTRACE_PSEUDONYM_KEY", hide_env_values = true)]
    pseudonym_key: Option<String>,
}

/// Arguments of `scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// A redaction policy file whose detectors and key rules to use.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print a per-service table of what leaks where instead of OCSF findings.
    #[arg(long)]
    summary: bool,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum)]
    fail_on: Option<Severity>,
}

fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<Policy> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading policy {}", p.display()))?;
            Ok(Policy::from_toml(&text, &p.display().to_string())?)
        }
        None => Ok(Policy::default()),
    }
}

fn secrets(key: Option<&str>) -> anyhow::Result<InMemorySecrets> {
    match key {
        Some(hex_key) => {
            let mut k = [0u8; 32];
            hex::decode_to_slice(hex_key.trim(), &mut k)
                .context("--pseudonym-key must be 64 hex characters")?;
            Ok(InMemorySecrets::from_master_key(k))
        }
        None => Ok(InMemorySecrets::random()),
    }
}

/// Writes each input document back out as one JSON line, its resources minimized one at
/// a time.
struct RedactSink<'a, W: Write> {
    out: W,
    redactor: &'a Redactor,
    tenant: &'a TenantId,
    secrets: &'a InMemorySecrets,
    first: bool,
}

impl<W: Write> otlp_stream::Sink for RedactSink<'_, W> {
    fn start(&mut self, _doc: usize) -> anyhow::Result<()> {
        self.first = true;
        self.out.write_all(b"{\"resourceSpans\":[")?;
        Ok(())
    }

    fn item(&mut self, rs: ResourceSpans) -> anyhow::Result<()> {
        let mut one = vec![rs];
        self.redactor.minimize(self.tenant, &mut one, self.secrets);
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.out, &one[0])?;
        Ok(())
    }

    fn end(&mut self, _doc: usize) -> anyhow::Result<()> {
        self.out.write_all(b"]}\n")?;
        Ok(())
    }
}

/// Runs `redact`.
pub fn run_redact(a: RedactArgs) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(a.tenant).context("--tenant")?;
    let redactor = Redactor::new(load_policy(a.policy.as_ref())?)
        .map_err(|e| anyhow::anyhow!("building the policy: {e}"))?;
    let secrets = secrets(a.pseudonym_key.as_deref())?;
    let stdout = std::io::stdout();
    let mut sink = RedactSink {
        out: std::io::BufWriter::new(stdout.lock()),
        redactor: &redactor,
        tenant: &tenant,
        secrets: &secrets,
        first: true,
    };
    otlp_stream::stream_stdin("redact", &mut sink)?;
    sink.out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Scans resources one at a time: OCSF findings out as they are found, or (for the
/// summary) only the findings kept.
struct ScanSink<'a, W: Write> {
    out: W,
    redactor: &'a Redactor,
    summary: Option<Summary>,
    threshold: Threshold,
}

impl<W: Write> otlp_stream::Sink for ScanSink<'_, W> {
    fn start(&mut self, _doc: usize) -> anyhow::Result<()> {
        Ok(())
    }

    fn item(&mut self, rs: ResourceSpans) -> anyhow::Result<()> {
        for f in self.redactor.scan(std::slice::from_ref(&rs)) {
            let ocsf = f.to_ocsf();
            self.threshold.see(&ocsf);
            match &mut self.summary {
                Some(table) => table.add(&f),
                None => {
                    serde_json::to_writer(&mut self.out, &ocsf)?;
                    self.out.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    }

    fn end(&mut self, _doc: usize) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Runs `scan`.
pub fn run_scan(a: ScanArgs) -> anyhow::Result<ExitCode> {
    let redactor = Redactor::new(load_policy(a.policy.as_ref())?)
        .map_err(|e| anyhow::anyhow!("building the policy: {e}"))?;
    let stdout = std::io::stdout();
    let mut sink = ScanSink {
        out: std::io::BufWriter::new(stdout.lock()),
        redactor: &redactor,
        summary: a.summary.then(Summary::default),
        threshold: Threshold::new(a.fail_on),
    };
    otlp_stream::stream_stdin("scan", &mut sink)?;
    if let Some(table) = &sink.summary {
        sink.out.write_all(table.render().as_bytes())?;
    }
    sink.out.flush()?;
    Ok(sink.threshold.exit_code("scan"))
}
