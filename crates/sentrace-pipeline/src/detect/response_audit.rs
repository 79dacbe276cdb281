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
//! readers read it too and say so.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_store::{Journal, KeyRing};

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
    let lines: Vec<AuditRecord> = super::response::read_lines(&responses_dir.join(LEGACY_FILE))?;
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

/// What the readers (`sentrace response`) show: the journals, plus a plaintext file of an
/// earlier version that no server has moved yet (with a note on standard error).
pub fn read_all(
    responses_dir: &Path,
    keys: Arc<KeyRing>,
) -> anyhow::Result<Vec<(TenantId, AuditRecord)>> {
    let mut out = if audit_dir(responses_dir).is_dir() {
        read_journal(&open_journal(responses_dir, keys)?)?
    } else {
        Vec::new()
    };
    let legacy = read_legacy(responses_dir)?;
    if !legacy.is_empty() {
        eprintln!(
            "note: {} is the plaintext response audit log of an earlier version; its records are shown too, and the next `sentrace serve` moves them into the encrypted journals and deletes it",
            responses_dir.join(LEGACY_FILE).display()
        );
        let have: HashSet<Vec<u8>> = out
            .iter()
            .filter_map(|(_, r)| serde_json::to_vec(r).ok())
            .collect();
        out.extend(
            legacy
                .into_iter()
                .filter(|(_, r)| serde_json::to_vec(r).is_ok_and(|b| !have.contains(&b))),
        );
        out.sort_by_key(|(_, r)| time_of(r));
    }
    Ok(out)
}
