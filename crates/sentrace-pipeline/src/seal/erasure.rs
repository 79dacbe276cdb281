//! Tenant and subject erasure with signed receipts (`sentrace tenant erase`, `sentrace
//! subject erase`).
//!
//! An erasure is a statement (what, when, which key ids or tokens) that is
//! 1. recorded in the tenant's transparency log as an entry from the reserved source
//!    [`TENANT_SOURCE`] / [`SUBJECT_SOURCE`] whose one "span" is the statement's JSON bytes
//!    (so the signed log root commits to it, see [`super::Seal::append_statement`]);
//! 2. kept in `erased/<tenant>/receipts/<log index>.json` as a receipt: the statement, its
//!    log position and checkpoint, and signatures by the node's log key (Ed25519 and
//!    ML-DSA-44 over the context [`RECEIPT_CONTEXT`] and the JSON of statement and position).
//!
//! `sentrace verify` reads the receipts: the statement is the evidence of its log entry, and
//! every earlier entry of an erased tenant is reported `erased`, not tampered.
//!
//! Erasure needs the data directory to itself (the server stopped): it opens the store,
//! which takes the directory's lock, and refuses clearly when the lock is held.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::{LogSigner, LogVerifier, Origin};
use serde::{Deserialize, Serialize};

use sentrace_store::{KeyRing, MasterKey, Store, StoreConfig, Vault};

use super::config::SealConfig;

/// The log source of a tenant erasure statement.
pub const TENANT_SOURCE: &str = "sentrace:tenant-erasure";
/// The log source of a subject erasure statement.
pub const SUBJECT_SOURCE: &str = "sentrace:subject-erasure";
/// Domain separation of receipt signatures.
pub const RECEIPT_CONTEXT: &[u8] = b"sentrace/erasure-receipt/v1";
/// Largest receipt file read.
const MAX_RECEIPT: u64 = 1 << 20;

/// What was erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureStatement {
    /// `sentrace.tenant-erasure.v1` or `sentrace.subject-erasure.v1`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The node (first part of the log origin).
    pub node: String,
    /// The tenant.
    pub tenant: String,
    /// When, RFC 3339.
    pub erased_at: String,
    /// When, Unix seconds.
    pub erased_unix_secs: u64,
    /// Tenant erasure: the data key ids destroyed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<u32>,
    /// Tenant erasure: the master key that had wrapped them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kek: Option<String>,
    /// Subject erasure: the vault tokens whose values were deleted (pseudonymous ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
}

impl ErasureStatement {
    /// The bytes logged (the entry's one leaf).
    pub fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }
}

/// Where the statement sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPosition {
    /// The log's origin.
    pub origin: String,
    /// The entry's index.
    pub index: u64,
    /// The signed checkpoint (C2SP signed note) that covers it.
    pub checkpoint: String,
}

/// The log key's signatures over statement and position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSignatures {
    /// Ed25519, base64.
    pub ed25519: String,
    /// ML-DSA-44 (FIPS 204), base64.
    pub ml_dsa_44: String,
}

/// A signed erasure receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// What was erased.
    pub statement: ErasureStatement,
    /// Its log entry.
    pub log: LogPosition,
    /// The signing key's vkeys (informational: check against keys you trust).
    pub vkeys: String,
    /// The signatures.
    pub signatures: ReceiptSignatures,
}

fn signed_message(statement: &ErasureStatement, log: &LogPosition) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&(statement, log))?)
}

impl Receipt {
    /// Signs `statement` at `log` with the node's log key.
    pub fn sign(
        statement: ErasureStatement,
        log: LogPosition,
        signer: &LogSigner,
    ) -> anyhow::Result<Self> {
        let msg = signed_message(&statement, &log)?;
        let ed = signer
            .ed25519
            .sign_raw(RECEIPT_CONTEXT, &msg)
            .map_err(|e| anyhow::anyhow!("signing the receipt: {e}"))?;
        let ml = signer
            .mldsa
            .sign_raw(RECEIPT_CONTEXT, &msg)
            .map_err(|e| anyhow::anyhow!("signing the receipt: {e}"))?;
        Ok(Self {
            statement,
            log,
            vkeys: signer.verifier().to_vkeys(),
            signatures: ReceiptSignatures {
                ed25519: B64.encode(ed),
                ml_dsa_44: B64.encode(ml),
            },
        })
    }

    /// Checks both signatures with `key` (the log's public keys) and that the checkpoint
    /// is signed by it for the statement's origin and covers the entry.
    pub fn verify(&self, key: &LogVerifier) -> anyhow::Result<()> {
        let msg = signed_message(&self.statement, &self.log)?;
        let ed = B64
            .decode(&self.signatures.ed25519)
            .context("signatures.ed25519 is not base64")?;
        let ml = B64
            .decode(&self.signatures.ml_dsa_44)
            .context("signatures.ml_dsa_44 is not base64")?;
        key.ed25519
            .verify_raw(RECEIPT_CONTEXT, &msg, &ed)
            .map_err(|e| anyhow::anyhow!("the Ed25519 signature does not verify: {e}"))?;
        key.mldsa
            .verify_raw(RECEIPT_CONTEXT, &msg, &ml)
            .map_err(|e| anyhow::anyhow!("the ML-DSA-44 signature does not verify: {e}"))?;
        let tenant = TenantId::new(&self.statement.tenant)
            .map_err(|e| anyhow::anyhow!("statement tenant: {e}"))?;
        let origin = Origin::for_tenant(&self.statement.node, &tenant)
            .map_err(|e| anyhow::anyhow!("origin: {e}"))?;
        if origin.as_str() != self.log.origin {
            bail!(
                "the receipt names log {} but its statement belongs to {origin}",
                self.log.origin
            );
        }
        let mut policy = sentrace_ledger::checkpoint::CheckpointPolicy::new(key.clone());
        policy.origin = Some(origin);
        let cp =
            sentrace_ledger::checkpoint::open_checkpoint(self.log.checkpoint.as_bytes(), &policy)
                .map_err(|e| anyhow::anyhow!("the receipt's checkpoint does not verify: {e}"))?;
        if cp.checkpoint.size <= self.log.index {
            bail!(
                "the checkpoint (size {}) does not cover entry {}",
                cp.checkpoint.size,
                self.log.index
            );
        }
        Ok(())
    }
}

/// The receipts directory of a tenant.
pub fn receipts_dir(data_dir: &Path, tenant: &TenantId) -> PathBuf {
    data_dir
        .join("erased")
        .join(tenant.as_str())
        .join("receipts")
}

/// Every receipt of a tenant (unreadable files are errors naming the file).
pub fn read_receipts(data_dir: &Path, tenant: &TenantId) -> anyhow::Result<Vec<Receipt>> {
    let dir = receipts_dir(data_dir, tenant);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in rd {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = sentrace_store::fsutil::read_bounded(&path, MAX_RECEIPT, "erasure receipt")?;
        out.push(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not an erasure receipt", path.display()))?,
        );
    }
    out.sort_by_key(|r: &Receipt| r.log.index);
    Ok(out)
}

/// Deletes the tenant's encrypted journals (findings, behavioural baselines, quarantines and
/// the response audit). Their key is destroyed already, so this frees bytes rather than
/// making anything unreadable; it also takes away their sizes and times.
fn remove_journals(data_dir: &Path, keys: &Arc<KeyRing>, tenant: &TenantId) -> anyhow::Result<()> {
    use crate::detect::{baselines, response, response_audit};
    let responses = response::responses_dir(data_dir);
    let journals = [
        (data_dir.join("findings"), "findings"),
        (baselines::dir(data_dir), baselines::JOURNAL_NAME),
        (responses.join("quarantine"), "quarantine"),
        (
            response_audit::audit_dir(&responses),
            response_audit::JOURNAL,
        ),
    ];
    for (dir, name) in journals {
        if !dir.is_dir() {
            continue;
        }
        sentrace_store::Journal::open(&dir, name, keys.clone())?
            .remove_tenant(tenant)
            .with_context(|| format!("removing tenant {tenant}'s {name} journal"))?;
    }
    Ok(())
}

/// What to erase.
#[derive(Debug, Clone)]
pub enum Target {
    /// The whole tenant: its data keys (and with them the vault key) are destroyed.
    Tenant,
    /// One subject: vault entries by original value, or by token.
    Subject {
        /// Original values.
        values: Vec<String>,
        /// Token ids (32 hex, or `tok:<kind>:<id>`).
        tokens: Vec<String>,
    },
}

/// Runs an erasure on a stopped server's data directory and returns the signed receipt
/// (also written to `erased/<tenant>/receipts/<index>.json`). `store` is the server's
/// `[store]`: with a `url`, the node's transparency log is the one in the bucket (under
/// `nodes/<node>/`), so the statement is appended there, where `verify --store` reads it.
pub async fn erase(
    data_dir: &Path,
    master: &MasterKey,
    node: &str,
    tenant: &TenantId,
    target: Target,
    store: StoreConfig,
) -> anyhow::Result<Receipt> {
    let keys = Arc::new(KeyRing::open(&data_dir.join("keys"), master)?);
    // The store takes the data directory's lock: a running server makes this fail here.
    let (store, recovery) = Store::open_as(data_dir, store, keys.clone(), Some(node))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "opening the store of {}: {e}; stop the server first (erasure runs offline)",
                data_dir.display()
            )
        })?;
    let signer = super::keys::load(data_dir, master)?;
    let cfg = SealConfig {
        node: node.to_string(),
        ..SealConfig::default()
    };
    let seal = super::Seal::open(
        &cfg,
        super::keys::load(data_dir, master)?,
        store.objects().clone(),
        &recovery.manifests,
    )
    .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (statement, source) = match target {
        Target::Tenant => {
            let vault = Vault::open(&data_dir.join("vault"), keys.clone())?;
            let tomb = keys.erase(tenant)?;
            vault.remove_tenant(tenant)?;
            drop(vault);
            remove_journals(data_dir, &keys, tenant)?;
            (
                ErasureStatement {
                    kind: "sentrace.tenant-erasure.v1".into(),
                    node: node.to_string(),
                    tenant: tenant.to_string(),
                    erased_at: tomb.erased_at.clone(),
                    erased_unix_secs: tomb.erased_unix_secs,
                    key_ids: tomb.key_ids.clone(),
                    kek: Some(master.id().to_string()),
                    tokens: Vec::new(),
                },
                TENANT_SOURCE,
            )
        }
        Target::Subject { values, tokens } => {
            if keys.erased(tenant)?.is_some() {
                bail!("tenant {tenant} was erased already; nothing of it remains to erase");
            }
            let vault = Vault::open(&data_dir.join("vault"), keys.clone())?;
            let mut found: Vec<String> = Vec::new();
            for v in &values {
                found.extend(vault.tokens_of_value(tenant, v)?);
            }
            for t in &tokens {
                let id = t.rsplit(':').next().unwrap_or(t).to_ascii_lowercase();
                if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!(
                        "--token {t:?}: expected tok:<kind>:<32 hex digits> or the 32 hex digits"
                    );
                }
                found.push(id);
            }
            found.sort();
            found.dedup();
            let mut erased = Vec::new();
            for t in found {
                if vault.erase(tenant, &t)? {
                    erased.push(t);
                }
            }
            vault.flush()?;
            drop(vault);
            if erased.is_empty() {
                bail!(
                    "the vault of tenant {tenant} holds no value for this subject; nothing was erased"
                );
            }
            (
                ErasureStatement {
                    kind: "sentrace.subject-erasure.v1".into(),
                    node: node.to_string(),
                    tenant: tenant.to_string(),
                    erased_at: sentrace_store::keys::rfc3339(now),
                    erased_unix_secs: now,
                    key_ids: Vec::new(),
                    kek: None,
                    tokens: erased,
                },
                SUBJECT_SOURCE,
            )
        }
    };
    let (index, checkpoint) = seal
        .append_statement(tenant, source, &statement.bytes()?)
        .await?;
    let origin = Origin::for_tenant(node, tenant).map_err(|e| anyhow::anyhow!("origin: {e}"))?;
    let receipt = Receipt::sign(
        statement,
        LogPosition {
            origin: origin.as_str().to_string(),
            index,
            checkpoint,
        },
        &signer,
    )?;
    let path = receipts_dir(data_dir, tenant).join(format!("{index}.json"));
    sentrace_store::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&receipt)?, 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    drop(seal);
    store.close().await?;
    Ok(receipt)
}
