//! `sentrace redact` and `sentrace scan`: minimization and leak scanning offline, on OTLP/JSON
//! from stdin (one `ExportTraceServiceRequest`, or JSON lines as the OpenTelemetry
//! Collector's file exporter writes them).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_core::TenantId;
use sentrace_redact::{InMemorySecrets, Policy, Redactor, summary};

/// Largest input accepted on stdin.
const MAX_INPUT_BYTES: u64 = 1 << 30;

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

/// Reads stdin as a stream of OTLP/JSON requests (one object, or one per line).
pub fn read_requests() -> anyhow::Result<Vec<ExportTraceServiceRequest>> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut input)
        .context("reading stdin")?;
    if input.len() as u64 > MAX_INPUT_BYTES {
        bail!("input larger than {MAX_INPUT_BYTES} bytes");
    }
    let mut out = Vec::new();
    let stream =
        serde_json::Deserializer::from_slice(&input).into_iter::<ExportTraceServiceRequest>();
    for (i, r) in stream.enumerate() {
        let r = r.map_err(|e| {
            anyhow::anyhow!(
                "input document {} is not an OTLP/JSON ExportTraceServiceRequest: {e}",
                i + 1
            )
        })?;
        out.push(r);
    }
    Ok(out)
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

/// Runs `redact`.
pub fn run_redact(a: RedactArgs) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(a.tenant).context("--tenant")?;
    let redactor = Redactor::new(load_policy(a.policy.as_ref())?)
        .map_err(|e| anyhow::anyhow!("building the policy: {e}"))?;
    let secrets = secrets(a.pseudonym_key.as_deref())?;
    let requests = read_requests()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for mut r in requests {
        redactor.minimize(&tenant, &mut r.resource_spans, &secrets);
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `scan`.
pub fn run_scan(a: ScanArgs) -> anyhow::Result<ExitCode> {
    let redactor = Redactor::new(load_policy(a.policy.as_ref())?)
        .map_err(|e| anyhow::anyhow!("building the policy: {e}"))?;
    let requests = read_requests()?;
    let mut findings = Vec::new();
    for r in &requests {
        findings.extend(redactor.scan(&r.resource_spans));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if a.summary {
        out.write_all(summary(&findings).as_bytes())?;
    } else {
        for f in &findings {
            serde_json::to_writer(&mut out, &f.to_ocsf())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
