//! The response audit log at rest: one encrypted journal per tenant,
//! `responses/audit/<tenant>.journal` ([`sentrace_store::Journal`] named `responses`, under
//! the tenant's data key), so a stolen disk shows neither the rule names nor the trace ids
//! and targets of the actions, and erasing a tenant shreds its response history with it.
//! The server appends through a [`sentrace_store::JournalWriter`] (group commit: putting an
//! action in force never makes an async worker wait on `fsync`); it is the only writer.
//!
//! Versions before this one kept the log in plaintext, `responses/audit.jsonl`. The server
//! moves such a file into the journals on start ([`migrate_legacy`]: records already there
//! are not added twice, so a crash mid-way is harmless) and then deletes it; until then the
//! readers read it too and say so. The JSON-lines helpers of the undo file live here too.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_store::{Journal, KeyRing};
use serde::{Deserialize, Serialize};

use super::response::AuditRecord;

/// The journal's name (bound into its key and AAD).
pub const JOURNAL: &str = "responses";
/// The plaintext audit log of earlier versions, in the responses directory.
pub const LEGACY_FILE: &str = "audit.jsonl";

/// The directory of the audit journals in a responses directory.
pub fn audit_dir(responses_dir: &Path) -> PathBuf {
    responses_dir.join("audit")
}

/// Opens the audit journal of a responses directory.
pub fn open_journal(responses_dir: &Path, keys: Arc<KeyRing>) -> anyhow::Result<Journal> {
    Journal::open(&audit_dir(responses_dir), JOURNAL, keys)
        .context("opening the response audit journal")
}

/// The record's time, for ordering records of several tenants.
fn time_of(r: &AuditRecord) -> u64 {
    match r {
        AuditRecord::Applied {
            time_unix_nanos, ..
        }
        | AuditRecord::Undone {
            time_unix_nanos, ..
        } => *time_unix_nanos,
    }
}

/// Every tenant's decrypted records, oldest first (by time; a tenant's own order kept).
/// Records whose data key was erased are gone with it; damaged ones are logged and skipped.
pub fn read_journal(journal: &Journal) -> anyhow::Result<Vec<(TenantId, AuditRecord)>> {
    let mut out = Vec::new();
    for tenant in journal.tenants()? {
        let loaded = journal
            .load(&tenant)
            .with_context(|| format!("reading the response audit of tenant {tenant}"))?;
        for (offset, why) in &loaded.damaged {
            tracing::error!(tenant = %tenant, offset, reason = %why, "response audit journal: damaged record skipped");
        }
        for rec in &loaded.records {
            match serde_json::from_slice::<AuditRecord>(rec) {
                Ok(r) => out.push((tenant.clone(), r)),
                Err(e) => {
                    tracing::error!(tenant = %tenant, error = %e, "response audit journal: unreadable record skipped")
                }
            }
        }
    }
    out.sort_by_key(|(_, r)| time_of(r));
    Ok(out)
}

/// The records of a plaintext `audit.jsonl` of an earlier version, each with its tenant
/// (an `undone` line takes the tenant of the action it names; one naming no known action is
/// dropped with a warning). Empty when there is no such file.
pub fn read_legacy(responses_dir: &Path) -> anyhow::Result<Vec<(TenantId, AuditRecord)>> {
    let lines: Vec<AuditRecord> = read_lines(&responses_dir.join(LEGACY_FILE))?;
    let mut tenant_of: HashMap<String, TenantId> = HashMap::new();
    for r in &lines {
        if let AuditRecord::Applied {
            tenant, planned, ..
        } = r
        {
            tenant_of.insert(planned.id.clone(), tenant.clone());
        }
    }
    let mut out = Vec::with_capacity(lines.len());
    for r in lines {
        let tenant = match &r {
            AuditRecord::Applied { tenant, .. } => Some(tenant.clone()),
            AuditRecord::Undone { id, .. } => tenant_of.get(id).cloned(),
        };
        match tenant {
            Some(t) => out.push((t, r)),
            None => tracing::warn!(
                file = %responses_dir.join(LEGACY_FILE).display(),
                "an undone line names no action of the file; skipped"
            ),
        }
    }
    Ok(out)
}

/// Moves a plaintext `audit.jsonl` of an earlier version into the encrypted journals, then
/// deletes it (and fsyncs the directory). Records the journal already holds (an earlier
/// run that crashed before the delete) are not appended again. Returns how many records
/// were moved; call it before the journal's writer starts (it appends directly).
pub fn migrate_legacy(responses_dir: &Path, journal: &Journal) -> anyhow::Result<usize> {
    let legacy_path = responses_dir.join(LEGACY_FILE);
    if !legacy_path.exists() {
        return Ok(0);
    }
    let legacy = read_legacy(responses_dir)?;
    let mut by_tenant: HashMap<TenantId, Vec<Vec<u8>>> = HashMap::new();
    let mut order = Vec::new();
    for (tenant, r) in &legacy {
        if !by_tenant.contains_key(tenant) {
            order.push(tenant.clone());
        }
        by_tenant
            .entry(tenant.clone())
            .or_default()
            .push(serde_json::to_vec(r)?);
    }
    let mut moved = 0;
    for tenant in order {
        let have: HashSet<Vec<u8>> = journal.load(&tenant)?.records.into_iter().collect();
        let new: Vec<Vec<u8>> = by_tenant
            .remove(&tenant)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !have.contains(p))
            .collect();
        if !new.is_empty() {
            journal.append(&tenant, &new).with_context(|| {
                format!("moving tenant {tenant}'s response audit into its journal")
            })?;
            moved += new.len();
        }
    }
    std::fs::remove_file(&legacy_path)
        .with_context(|| format!("removing {}", legacy_path.display()))?;
    sentrace_store::fsutil::sync_dir(responses_dir)?;
    tracing::warn!(
        file = %legacy_path.display(),
        records = moved,
        "the plaintext response audit log of an earlier version was moved into the encrypted journals (responses/audit/<tenant>.journal) and deleted"
    );
    Ok(moved)
}

/// What the readers (`sentrace response`) show: the journals' records, plus those of a
/// plaintext file of an earlier version that no server has moved yet.
#[derive(Debug, Default)]
pub struct AuditLog {
    /// Each record with its tenant, oldest first.
    pub records: Vec<(TenantId, AuditRecord)>,
    /// The plaintext `audit.jsonl` of an earlier version whose records are included, if
    /// there is one (the next `sentrace serve` moves it into the journals and deletes it).
    pub legacy_file: Option<PathBuf>,
}

/// Reads the audit log of a responses directory (see [`AuditLog`]).
pub fn read_all(responses_dir: &Path, keys: Arc<KeyRing>) -> anyhow::Result<AuditLog> {
    let mut out = AuditLog::default();
    if audit_dir(responses_dir).is_dir() {
        out.records = read_journal(&open_journal(responses_dir, keys)?)?;
    }
    let legacy = read_legacy(responses_dir)?;
    if !legacy.is_empty() {
        out.legacy_file = Some(responses_dir.join(LEGACY_FILE));
        let have: HashSet<Vec<u8>> = out
            .records
            .iter()
            .filter_map(|(_, r)| serde_json::to_vec(r).ok())
            .collect();
        out.records.extend(
            legacy
                .into_iter()
                .filter(|(_, r)| serde_json::to_vec(r).is_ok_and(|b| !have.contains(&b))),
        );
        out.records.sort_by_key(|(_, r)| time_of(r));
    }
    Ok(out)
}

/// Longest audit or undo line read back.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads a JSON-lines file (missing: empty); a torn or unreadable line is skipped.
pub(crate) fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::anyhow!("opening {}: {e}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() || line.len() > MAX_LINE_BYTES {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            // A torn last line (crash mid-write) is skipped, not fatal.
            Err(e) => {
                tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping unreadable line")
            }
        }
    }
    Ok(out)
}

pub(crate) fn append_line<T: Serialize>(path: &Path, rec: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut line = serde_json::to_vec(rec)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // One write of the whole line: O_APPEND keeps concurrent writers' lines whole; fsync
    // before returning, because the caller acts on the record right after.
    let new = f.metadata().map(|m| m.len() == 0).unwrap_or(true);
    f.write_all(&line)
        .and_then(|_| f.sync_data())
        .with_context(|| format!("appending to {}", path.display()))?;
    if new && let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}
