//! The token vault: the original values behind reversible tokens, encrypted per tenant.
//!
//! A token id is `HMAC-SHA-256(index key, kind ‖ 0x00 ‖ value)` truncated to 128 bits, so
//! equal values share a token within a tenant and tokens are unlinkable across tenants. The
//! value is kept in `vault/<tenant>.vault`, one record per token, in the format of
//! [`crate::sealed_file`] (the one encrypted append-file type, shared with the journals):
//!
//! ```text
//! record = len:u32be ‖ dek_id:u32be ‖ token:16 ‖ AES-256-GCM(vault key of dek_id,
//!          aad = "sentrace vault v1" ‖ tenant ‖ token ‖ dek_id, kind ‖ 0x00 ‖ value)
//! ```
//!
//! The vault key is HKDF(DEK, "sentrace vault v1"), so crypto-shredding the tenant's keys
//! makes every value irreversible, and [`Vault::erase`] removes one subject's value.
//!
//! Writes go through a writer thread with group commit ([`crate::group_commit`]):
//! [`Vault::tokenize`] computes the token, seals the new value and queues it without
//! waiting, so the minimize stage never waits on `fsync` on an async worker. A token is not
//! durable until the writer processed it: the ingest pipeline awaits
//! [`Vault::wait_since`] before it stores a batch, so no stored span carries a token whose
//! value could be lost to a crash. A write that fails forgets the token again (the next use
//! queues it anew) and fails every wait marked before it. The tokens known per tenant are
//! loaded when the vault opens, so `tokenize` reads no file either.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use sentrace_core::TenantId;

use crate::crypto::hkdf32;
use crate::group_commit::{GroupOutcome, GroupStats, GroupWriter, Mark, WaitError};
use crate::sealed_file::{Kind, SealedFiles};
use crate::{KeyRing, StoreError};

const TOKEN_LEN: usize = 16;
/// Longest value kept (bytes).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest vault file read.
const MAX_FILE_BYTES: u64 = 1 << 30;

type Token = [u8; TOKEN_LEN];
type Known = Arc<Mutex<HashMap<TenantId, HashSet<Token>>>>;

/// A queued vault write.
enum VaultJob {
    /// Append one sealed record.
    Append { tenant: TenantId, record: Vec<u8> },
    /// Remove a token's records (rewrite the file without them).
    Erase { tenant: TenantId, token: Token },
    /// Nothing: done once everything queued before it was processed.
    Flush,
}

/// Encrypted token → value storage for every tenant of a data directory.
pub struct Vault {
    files: Arc<SealedFiles>,
    keys: Arc<KeyRing>,
    /// Tokens written or queued, per tenant.
    known: Known,
    writer: GroupWriter<VaultJob>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn token_of(id: &[u8]) -> Token {
    let mut t = [0u8; TOKEN_LEN];
    if id.len() == TOKEN_LEN {
        t.copy_from_slice(id);
    }
    t
}

/// The writer thread's side: open append handles, one group commit.
struct Commit {
    files: Arc<SealedFiles>,
    open: HashMap<TenantId, File>,
}

impl Commit {
    fn append(&mut self, tenant: &TenantId, buf: &[u8]) -> Result<(), StoreError> {
        if !self.open.contains_key(tenant) {
            let (file, _) = self.files.open_append(tenant)?;
            self.open.insert(tenant.clone(), file);
        }
        let file = self
            .open
            .get_mut(tenant)
            .ok_or_else(|| StoreError::Task("vault handle missing".into()))?;
        let r = self.files.append(tenant, file, buf);
        if r.is_err() {
            self.open.remove(tenant);
        }
        r
    }

    fn erase(&mut self, tenant: &TenantId, token: &Token) -> Result<(), StoreError> {
        let bytes = self.files.read(tenant)?;
        let (frames, _) = self.files.parse(&bytes);
        let mut kept = Vec::with_capacity(bytes.len());
        for f in frames.iter().filter(|f| f.id != token) {
            kept.extend_from_slice(&bytes[f.start..f.end]);
        }
        // Reopen on next use, so the append handle points at the new file.
        self.open.remove(tenant);
        self.files.rewrite(tenant, &kept)
    }

    /// Appends each tenant's records of the group with one write and one `fdatasync`.
    fn group(&mut self, jobs: &[VaultJob]) -> GroupOutcome {
        let mut results: Vec<Option<Result<(), StoreError>>> = jobs.iter().map(|_| None).collect();
        let mut fsyncs = 0u64;
        let mut at = 0;
        while at < jobs.len() {
            // A run of appends up to the next erase (erases keep their place in the order).
            let end = jobs[at..]
                .iter()
                .position(|j| !matches!(j, VaultJob::Append { .. }))
                .map_or(jobs.len(), |p| at + p);
            let mut order: Vec<&TenantId> = Vec::new();
            let mut bufs: HashMap<&TenantId, Vec<u8>> = HashMap::new();
            for j in &jobs[at..end] {
                if let VaultJob::Append { tenant, record } = j {
                    bufs.entry(tenant)
                        .or_insert_with(|| {
                            order.push(tenant);
                            Vec::new()
                        })
                        .extend_from_slice(record);
                }
            }
            let mut outcome: HashMap<&TenantId, Result<(), String>> = HashMap::new();
            for t in order {
                let buf = bufs.remove(t).unwrap_or_default();
                fsyncs += 1;
                outcome.insert(t, self.append(t, &buf).map_err(|e| e.to_string()));
            }
            for (i, j) in jobs.iter().enumerate().take(end).skip(at) {
                if let VaultJob::Append { tenant, .. } = j {
                    results[i] = Some(match outcome.get(tenant) {
                        Some(Ok(())) => Ok(()),
                        Some(Err(reason)) => Err(StoreError::Task(format!(
                            "vault of tenant {tenant}: {reason}"
                        ))),
                        None => Err(StoreError::Task("vault group entry lost".into())),
                    });
                }
            }
            match jobs.get(end) {
                Some(VaultJob::Erase { tenant, token }) => {
                    fsyncs += 2;
                    results[end] = Some(self.erase(tenant, token));
                }
                Some(VaultJob::Flush) => results[end] = Some(Ok(())),
                _ => {}
            }
            at = end + 1;
        }
        GroupOutcome {
            results: results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(StoreError::Task("vault job skipped".into()))))
                .collect(),
            fsyncs,
        }
    }
}

impl Vault {
    /// A vault under `dir` (created with mode 0700): loads the tokens of every tenant's file
    /// and starts the writer thread.
    pub fn open(dir: &Path, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        let files = Arc::new(SealedFiles::open(
            dir,
            ".vault",
            MAX_FILE_BYTES,
            Kind::Vault,
            keys.clone(),
        )?);
        let mut known = HashMap::new();
        for tenant in files.tenants()? {
            let bytes = files.read(&tenant)?;
            let set: HashSet<Token> = files
                .parse(&bytes)
                .0
                .iter()
                .map(|f| token_of(f.id))
                .collect();
            known.insert(tenant, set);
        }
        let mut commit = Commit {
            files: files.clone(),
            open: HashMap::new(),
        };
        let writer =
            GroupWriter::start("vault", move |jobs: &mut Vec<VaultJob>| commit.group(jobs))?;
        Ok(Self {
            files,
            keys,
            known: Arc::new(Mutex::new(known)),
            writer,
        })
    }

    fn token_id(&self, tenant: &TenantId, kind: &str, value: &str) -> Result<Token, StoreError> {
        let pk = self.keys.pseudonym_key(tenant)?;
        let index_key = hkdf32(pk.expose(), &[b"sentrace vault index v1"])?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, index_key.expose());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut id = [0u8; TOKEN_LEN];
        id.copy_from_slice(&tag.as_ref()[..TOKEN_LEN]);
        Ok(id)
    }

    fn known(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<TenantId, HashSet<Token>>>, StoreError> {
        self.known
            .lock()
            .map_err(|_| StoreError::Task("vault lock poisoned".into()))
    }

    /// Keeps `value` encrypted and returns its token id (32 hex characters). Equal values
    /// of one kind share a token. A new value is queued, not yet durable: see
    /// [`Vault::mark`] and [`Vault::wait_since`].
    pub fn tokenize(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::InvalidSpan {
                index: 0,
                reason: format!("value of {} bytes is too long to tokenize", value.len()),
            });
        }
        let token = self.token_id(tenant, kind, value)?;
        let hex_id = hex::encode(token);
        let mut known = self.known()?;
        let set = known.entry(tenant.clone()).or_default();
        if set.contains(&token) {
            return Ok(hex_id);
        }
        let mut plain = Vec::with_capacity(kind.len() + 1 + value.len());
        plain.extend_from_slice(kind.as_bytes());
        plain.push(0);
        plain.extend_from_slice(value.as_bytes());
        let record = self.files.seal(tenant, &token, &plain)?;
        // Known from now on (a concurrent batch with the same value queues nothing, and its
        // wait covers this write); forgotten again if the write fails.
        set.insert(token);
        let forget = self.known.clone();
        let t = tenant.clone();
        let queued = self.writer.submit(
            VaultJob::Append {
                tenant: tenant.clone(),
                record,
            },
            Some(Box::new(move |r| {
                if let Err(e) = r {
                    tracing::error!(tenant = %t, error = %e, "vault write failed; the token is forgotten");
                    if let Ok(mut k) = forget.lock()
                        && let Some(s) = k.get_mut(&t)
                    {
                        s.remove(&token);
                    }
                }
            })),
        );
        if let Err(e) = queued {
            set.remove(&token);
            return Err(e);
        }
        Ok(hex_id)
    }

    /// Where the writer is now: take it before a batch's [`Vault::tokenize`] calls.
    pub fn mark(&self) -> Mark {
        self.writer.mark()
    }

    /// Waits until every value queued so far is durable; fails when a vault write failed
    /// since `mark` (then a token handed out may be irreversible: do not store the batch).
    pub async fn wait_since(&self, mark: Mark) -> Result<(), WaitError> {
        self.writer.wait_since(mark).await
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<GroupStats> {
        self.writer.stats()
    }

    /// Blocks until every value queued before was processed (sync callers off the async
    /// runtime: tools, tests).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.writer.submit_wait(VaultJob::Flush)
    }

    /// The kind and original value behind a token, if the vault still holds it durably.
    /// De-tokenizing is a privileged act: callers authorize and audit it. Reads the file:
    /// call it off the async runtime's workers.
    pub fn detokenize(
        &self,
        tenant: &TenantId,
        token_hex: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut token = [0u8; TOKEN_LEN];
        if hex::decode_to_slice(token_hex, &mut token).is_err() {
            return Ok(None);
        }
        // Appends are whole records or a torn tail (which parsing stops at), and erasures
        // replace the file by a rename: no lock is needed to read it.
        let bytes = self.files.read(tenant)?;
        let (records, _) = self.files.parse(&bytes);
        let Some(r) = records.iter().rev().find(|r| r.id == token) else {
            return Ok(None);
        };
        let plain = self.files.open_frame(tenant, r)?;
        let split = plain
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.files.path(tenant),
                offset: r.start as u64,
                reason: "vault record without kind separator".into(),
            })?;
        let kind = String::from_utf8_lossy(&plain[..split]).into_owned();
        let value = String::from_utf8_lossy(&plain[split + 1..]).into_owned();
        Ok(Some((kind, value)))
    }

    /// The tokens (hex) whose original value is `value`, of any kind: a subject's erasure by
    /// value. Decrypts every record of the tenant's vault (an offline, rare act). Reads the
    /// file: call it off the async runtime's workers.
    pub fn tokens_of_value(
        &self,
        tenant: &TenantId,
        value: &str,
    ) -> Result<Vec<String>, StoreError> {
        let bytes = self.files.read(tenant)?;
        let (records, _) = self.files.parse(&bytes);
        let mut out = Vec::new();
        for r in &records {
            let plain = zeroize::Zeroizing::new(self.files.open_frame(tenant, r)?);
            let Some(split) = plain.iter().position(|b| *b == 0) else {
                continue;
            };
            if &plain[split + 1..] == value.as_bytes() {
                let t = hex::encode(r.id);
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// Deletes the tenant's whole vault file (tenant erasure; its key is already destroyed).
    pub fn remove_tenant(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let removed = self.files.remove(tenant)?;
        if removed && let Ok(mut k) = self.known() {
            k.remove(tenant);
        }
        Ok(removed)
    }

    /// Removes a token's value (a subject's erasure): the token stays in traces but can no
    /// longer be reversed. Returns whether the vault held it. Blocks until the file is
    /// rewritten: call it off the async runtime's workers.
    pub fn erase(&self, tenant: &TenantId, token_hex: &str) -> Result<bool, StoreError> {
        let mut token = [0u8; TOKEN_LEN];
        if hex::decode_to_slice(token_hex, &mut token).is_err() {
            return Ok(false);
        }
        let held = self
            .known()?
            .get(tenant)
            .is_some_and(|s| s.contains(&token));
        if !held {
            return Ok(false);
        }
        self.writer.submit_wait(VaultJob::Erase {
            tenant: tenant.clone(),
            token,
        })?;
        if let Some(s) = self.known()?.get_mut(tenant) {
            s.remove(&token);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn setup() -> (tempfile::TempDir, Arc<KeyRing>, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(
            KeyRing::open(&dir.path().join("keys"), &MasterKey::from_bytes([7; 32])).unwrap(),
        );
        let vault = Vault::open(&dir.path().join("vault"), keys.clone()).unwrap();
        (dir, keys, vault)
    }

    #[test]
    fn tokenize_detokenize_erase_shred() {
        let (dir, keys, vault) = setup();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let t1 = vault.tokenize(&a, "email", "jane@example.com").unwrap();
        assert_eq!(t1.len(), 32);
        assert_eq!(vault.tokenize(&a, "email", "jane@example.com").unwrap(), t1);
        let t2 = vault.tokenize(&a, "email", "john@example.com").unwrap();
        assert_ne!(t1, t2);
        // Unlinkable across tenants.
        assert_ne!(vault.tokenize(&b, "email", "jane@example.com").unwrap(), t1);
        vault.flush().unwrap();
        assert_eq!(
            vault.detokenize(&a, &t1).unwrap(),
            Some(("email".into(), "jane@example.com".into()))
        );
        // Another tenant cannot reverse it.
        assert_eq!(vault.detokenize(&b, &t1).unwrap(), None);
        // Nothing in plaintext on disk.
        let raw = std::fs::read(dir.path().join("vault").join("a.vault")).unwrap();
        assert!(!raw.windows(4).any(|w| w == b"jane"));
        // A fresh vault over the same files reads the same.
        let again = Vault::open(&dir.path().join("vault"), keys.clone()).unwrap();
        assert_eq!(
            again.detokenize(&a, &t2).unwrap().unwrap().1,
            "john@example.com"
        );
        // Erasure.
        assert!(vault.erase(&a, &t1).unwrap());
        assert_eq!(vault.detokenize(&a, &t1).unwrap(), None);
        assert_eq!(
            vault.detokenize(&a, &t2).unwrap().unwrap().1,
            "john@example.com"
        );
        // Crypto-shredding makes the rest irreversible: an error, never garbage.
        keys.shred(&a).unwrap();
        assert!(vault.detokenize(&a, &t2).is_err());
    }

    #[test]
    fn torn_tail_is_cut() {
        let (dir, keys, vault) = setup();
        let a = TenantId::new("a").unwrap();
        let t = vault.tokenize(&a, "card", "4111111111111111").unwrap();
        drop(vault);
        let path = dir.path().join("vault").join("a.vault");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 1, 0, 1, 2]).unwrap();
        drop(f);
        let vault = Vault::open(&dir.path().join("vault"), keys).unwrap();
        let t2 = vault.tokenize(&a, "card", "5500000000000004").unwrap();
        vault.flush().unwrap();
        assert_eq!(
            vault.detokenize(&a, &t).unwrap().unwrap().1,
            "4111111111111111"
        );
        assert_eq!(
            vault.detokenize(&a, &t2).unwrap().unwrap().1,
            "5500000000000004"
        );
    }
}
