//! `sentrace export`: one tenant's stored spans, decrypted, as plain Parquet that DuckDB,
//! DataFusion or Spark read (the stored blocks are encrypted; see docs/storage.md, "Block
//! schema" and "Export"). Runs with the server stopped and is recorded in the tenant's
//! audit log before the files get their final names: no audit, no export.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::log::CheckpointCadence;
use sentrace_server::audit::{AuditLog, AuditRecord, AuditSink, Outcome};
use sentrace_store::KeyRing;
use sentrace_store::export::{ExportRange, PlainWriter, export_tenant};

use crate::DataDir;

/// Name prefix of export files until the export is recorded.
const PARTIAL: &str = ".partial-";

/// Arguments of `export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The tenant whose spans to export.
    #[arg(long)]
    tenant: String,
    /// Earliest span start: a duration back from now (`24h`, `7d`) or an RFC 3339 time
    /// (`2026-12-06T00:00:00Z`). Default: the oldest span.
    #[arg(long)]
    since: Option<String>,
    /// Latest span start (exclusive), in the same forms. Default: now.
    #[arg(long)]
    until: Option<String>,
    /// The directory to write `part-NNNNN.parquet` into: created (0700) if missing, and
    /// refused if it holds anything (an export never mixes with or overwrites files).
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    data: DataDir,
    /// The server's configuration file: its `[store] url` bucket holds the blocks, its
    /// `[keys] kek` the master key and its `[seal] node` the node name.
    #[arg(long, env = "SENTRACE_CONFIG")]
    config: Option<PathBuf>,
}

/// Runs `export`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let data_dir = a.data.existing()?.to_path_buf();
    let now = sentrace_server::audit::now_nanos();
    let time = |flag: &str, v: &Option<String>, default: u64| -> anyhow::Result<u64> {
        match v {
            None => Ok(default),
            Some(t) => sentrace_server::audit::search::parse_time(t, now)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}")),
        }
    };
    let since = time("--since", &a.since, 0)?;
    let until = time("--until", &a.until, now.saturating_add(1))?;
    if since >= until {
        anyhow::bail!("--since must be before --until (the range is empty)");
    }
    let config = super::store_objects::config(a.config.as_deref())?;
    let node = config
        .as_ref()
        .map_or_else(|| "sentrace".to_owned(), |c| c.seal.node.clone());
    prepare_dir(&a.to)?;

    let _lock = super::keys::lock_data_dir(&data_dir)?;
    let master = sentrace_server::keys_config::resolve_master(
        &data_dir,
        config.as_ref().map(|c| &c.keys),
        false,
    )?;
    let keys = Arc::new(KeyRing::open(&data_dir.join("keys"), &master)?);
    if keys.erased(&tenant)?.is_some() {
        anyhow::bail!("tenant {tenant} was erased: nothing of it can be exported");
    }
    if !keys.has_tenant(&tenant)? {
        anyhow::bail!("tenant {tenant} has no data in {}", data_dir.display());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let objects = super::store_objects::open(a.config.as_deref(), &data_dir, &rt)?;
    let range = ExportRange {
        tenant: tenant.clone(),
        since_unix_nanos: since,
        until_unix_nanos: until,
    };
    // Values minimization classified are stored under the tenant's sensitive-value key;
    // the export holds them as stored before that (masked, hashed or tokenized), opened.
    let opener = sentrace_query::unseal::TenantOpener::new(keys.clone(), tenant.clone());
    let unreadable = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = unreadable.clone();
    let mut writer = PlainWriter::new(&a.to, PARTIAL).with_transform(Box::new(move |rs| {
        let Some(mut view) = sentrace_query::SpanView::new(std::mem::take(rs)) else {
            return;
        };
        let out = sentrace_query::unseal::unseal_sensitive(&mut view, |_| true, &opener);
        counted.fetch_add(out.unreadable, std::sync::atomic::Ordering::Relaxed);
        *rs = view.rs;
    }));
    let exported = rt.block_on(export_tenant(
        &data_dir,
        keys.clone(),
        objects.as_ref(),
        &range,
        &mut writer,
    ));
    let files = exported.and_then(|report| Ok((report, writer.finish()?)));
    let (report, files) = match files {
        Ok(v) => v,
        Err(e) => {
            remove_partial(&a.to);
            return Err(e).context(format!("exporting tenant {tenant}"));
        }
    };

    let unreadable = unreadable.load(std::sync::atomic::Ordering::Relaxed);
    if unreadable > 0 {
        remove_partial(&a.to);
        anyhow::bail!(
            "{unreadable} sensitive values of tenant {tenant} did not decrypt under its sensitive-value key (damaged or another key): nothing was exported; run `sentrace verify`"
        );
    }

    // The record first, then the final names: an export nobody can see in the audit log
    // is never left behind under a name a reader picks up.
    let mut record = AuditRecord::new(
        now,
        Some(tenant.clone()),
        cli_principal(),
        "export",
        "sentrace export",
        Outcome::Allowed,
    );
    record.filter.insert("since".into(), since.to_string());
    record.filter.insert("until".into(), until.to_string());
    record
        .filter
        .insert("to".into(), a.to.display().to_string());
    record.spans_returned = report.spans;
    let signer = sentrace_server::seal::keys::load(&data_dir, &master)?;
    let audited = rt.block_on(async {
        let log = AuditLog::open(
            &data_dir,
            keys.clone(),
            &master,
            &signer,
            &node,
            CheckpointCadence::default(),
        )?;
        log.record(record)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        log.checkpoint(true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(())
    });
    if let Err(e) = audited {
        remove_partial(&a.to);
        return Err(e).context("recording the export in the audit log (nothing was exported)");
    }
    let files = PlainWriter::publish(&a.to, PARTIAL, &files)?;
    eprintln!(
        "exported {} spans of tenant {tenant} to {} ({} file{}; {} blocks read, {} skipped by time, {} spans from the WAL); recorded in the audit log",
        report.spans,
        a.to.display(),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        report.blocks_read,
        report.blocks_skipped,
        report.wal_spans,
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `dir` (0700) or accepts it empty.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!(
                    "--to {}: the directory is not empty; export into a new or empty directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("--to {}: creating the directory", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("--to {}", dir.display())),
    }
}

fn remove_partial(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(PARTIAL) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Who ran the command, as the audit log records it: `cli:<user>` from the environment
/// (`cli:uid-N` without one). Local, not authenticated: whoever can read the data
/// directory and the master key can export.
fn cli_principal() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.is_empty() && u.len() <= 64 => format!("cli:{u}"),
        _ => {
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            format!("cli:uid-{uid}")
        }
    }
}
