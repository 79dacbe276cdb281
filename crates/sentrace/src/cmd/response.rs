//! `sentrace response list|undo`: the automated-response audit log of a data directory.
//! Works while the server runs: `undo` appends to `responses/undo.jsonl`, which the server
//! re-reads on its next batch. The audit log is encrypted under the tenants' data keys
//! (`responses/audit/<tenant>.journal`), so both read it with the master key, found as
//! `verify` finds it (`SENTRACE_KEK`, `SENTRACE_MASTER_KEY`, `<data dir>/master.key`).

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use sentrace_server::detect::response::{self, AuditRecord};

use crate::DataDir;

/// Response subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List response actions (newest last) with their status.
    List {
        #[command(flatten)]
        data: DataDir,
        /// JSON lines output.
        #[arg(long)]
        json: bool,
        /// Include finished ones (tags, webhooks, expired, undone).
        #[arg(long)]
        all: bool,
    },
    /// Lift an action by id (from `response list`).
    Undo {
        #[command(flatten)]
        data: DataDir,
        /// The action id.
        id: String,
    },
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The audit records of a data directory, each with its tenant, oldest first.
fn audit_records(data_dir: &Path) -> anyhow::Result<Vec<(sentrace_core::TenantId, AuditRecord)>> {
    let dir = response::responses_dir(data_dir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let master = super::verify::master_key(data_dir)?;
    let keys = Arc::new(sentrace_store::KeyRing::open(
        &data_dir.join("keys"),
        &master,
    )?);
    let log = response::read_audit(&dir, keys)?;
    if let Some(f) = &log.legacy_file {
        eprintln!(
            "note: {} is the plaintext response audit log of an earlier version; its records are shown too, and the next `sentrace serve` moves them into the encrypted journals and deletes it",
            f.display()
        );
    }
    Ok(log.records)
}

/// Runs a response subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::List { data, json, all } => {
            let data_dir = data.existing()?;
            let dir = response::responses_dir(data_dir);
            let records = audit_records(data_dir)?;
            // Undone by the CLI (undo.jsonl, until the server records it) or through the
            // API and console (an `undone` record in the tenant's journal, with who).
            let mut undone_by: std::collections::HashMap<String, String> =
                response::read_undo(&dir)?
                    .into_iter()
                    .map(|u| (u.id, "cli".to_owned()))
                    .collect();
            for (_, r) in &records {
                if let AuditRecord::Undone { id, by, .. } = r {
                    undone_by.insert(id.clone(), by.clone());
                }
            }
            let undone: HashSet<String> = undone_by.keys().cloned().collect();
            let now = now_nanos();
            for (_, r) in records {
                let AuditRecord::Applied {
                    time_unix_nanos,
                    tenant,
                    planned,
                } = r
                else {
                    continue;
                };
                let status = response::status(&planned, &undone, now);
                if !all && status != "active" {
                    continue;
                }
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": planned.id,
                            "status": status,
                            "time_unix_nanos": time_unix_nanos,
                            "tenant": tenant,
                            "response_rule": planned.response_rule,
                            "finding_uid": planned.finding_uid,
                            "action": planned.action,
                            "undone_by": undone_by.get(&planned.id),
                        })
                    );
                } else {
                    println!(
                        "{}  {status:<8} {}  {}  {}",
                        planned.id,
                        tenant.as_str(),
                        planned.response_rule,
                        serde_json::to_string(&planned.action)?
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Undo { data, id } => {
            let data_dir = data.existing()?;
            let dir = response::responses_dir(data_dir);
            let undone: HashSet<String> = response::read_undo(&dir)?
                .into_iter()
                .map(|u| u.id)
                .collect();
            let known = audit_records(data_dir)?.into_iter().any(
                |(_, r)| matches!(r, AuditRecord::Applied { ref planned, .. } if planned.id == id),
            );
            if !known {
                bail!("no response action with id {id:?} in {}", dir.display());
            }
            if undone.contains(&id) {
                eprintln!("action {id} was already undone");
                return Ok(ExitCode::SUCCESS);
            }
            response::undo(&dir, &id, now_nanos())?;
            eprintln!("action {id} undone; the server lifts it on its next batch");
            Ok(ExitCode::SUCCESS)
        }
    }
}
