//! `sentrace audit`: reads the read-audit logs of a data directory (who read what, who
//! failed to authenticate, which admin actions ran), as text, JSON lines or OCSF API
//! Activity (class 6003) JSON lines. Works while the server runs.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sentrace_server::audit::files::AUDIT_DIR;
use sentrace_server::audit::search::{AuditQuery, search};
use sentrace_server::audit::{AuditEntry, AuditFiles, LogName, now_nanos, ocsf};
use sentrace_server::detect::sinks::rfc3339;
use sentrace_store::KeyRing;

use crate::DataDir;

/// Arguments of `audit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Only this tenant's log (`_node` for the node's own log of authentication failures
    /// that named no tenant). Default: every log.
    #[arg(long)]
    tenant: Option<String>,
    /// Records at or after this time: a duration back from now (15m, 24h, 7d) or an
    /// RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Records before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Records of this principal (exact, as recorded: token:<id>, jwt:<iss>#<sub>, ...).
    #[arg(long)]
    principal: Option<String>,
    /// Records that returned this trace id (hex).
    #[arg(long = "trace")]
    trace: Option<String>,
    /// The newest N matching records per log (at most 10000).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// One JSON object per record (origin, index, record).
    #[arg(long, conflicts_with = "ocsf")]
    json: bool,
    /// One OCSF 1.3.0 API Activity event (class_uid 6003) per record.
    #[arg(long)]
    ocsf: bool,
}

/// Runs `audit`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let filter = AuditQuery {
        since: a.since.clone(),
        until: a.until.clone(),
        principal: a.principal.clone(),
        trace: a.trace.clone(),
        limit: Some(a.limit),
        format: None,
    }
    .to_filter(now_nanos())
    .map_err(|e| anyhow::anyhow!("--{e}"))?;
    a.data.existing()?;
    if !a.data.data_dir.join(AUDIT_DIR).is_dir() {
        eprintln!(
            "sentrace: {} has no audit logs (no server has run on it yet)",
            a.data.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let master = super::verify::master_key(&a.data.data_dir)?;
    let keys = Arc::new(KeyRing::open(&a.data.data_dir.join("keys"), &master)?);
    let files = AuditFiles::open(&a.data.data_dir, keys, &master)
        .with_context(|| format!("opening the audit logs of {}", a.data.data_dir.display()))?;
    let logs = match &a.tenant {
        Some(t) => vec![LogName::parse(t).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?],
        None => files.logs()?,
    };
    let mut out = std::io::stdout().lock();
    let mut unreadable = 0;
    let mut truncated = 0;
    for log in logs {
        let found = search(&files, &log, &filter)?;
        unreadable += found.unreadable;
        truncated += found.truncated;
        for e in &found.entries {
            if a.ocsf {
                writeln!(out, "{}", serde_json::to_string(&ocsf::to_ocsf(e))?)?;
            } else if a.json {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                writeln!(out, "{}", human(&log, e))?;
            }
        }
    }
    if truncated > 0 {
        eprintln!("sentrace: {truncated} older matching records left out by --limit");
    }
    if unreadable > 0 {
        eprintln!(
            "sentrace: {unreadable} records could not be read (crypto-shredded keys or damage; run `sentrace verify`)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn human(log: &LogName, e: &AuditEntry) -> String {
    let r = &e.record;
    let outcome = serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!(
        "{} {}#{} {} {} {} {} {}",
        rfc3339(r.time_unix_nanos),
        log,
        e.index,
        r.principal,
        r.source.as_deref().unwrap_or("-"),
        r.action,
        r.endpoint,
        outcome,
    );
    if r.spans_returned > 0 || !r.trace_ids.is_empty() {
        line.push_str(&format!(
            " traces={} spans={} masked={} hidden={}",
            r.trace_ids.len(),
            r.spans_returned,
            r.spans_masked,
            r.spans_hidden
        ));
    }
    if let Some(reason) = &r.reason {
        line.push_str(&format!(" reason={reason:?}"));
    }
    if let Some(b) = &r.break_glass {
        line.push_str(&format!(" break_glass={}", b.grant));
    }
    line
}
