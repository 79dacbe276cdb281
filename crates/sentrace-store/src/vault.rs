//! The token vault: the original values behind reversible tokens, encrypted per tenant.
//!
//! A token id is `HMAC-SHA-256(index key, kind ‖ 0x00 ‖ value)` truncated to 128 bits, so
//! equal values share a token within a tenant and tokens are unlinkable across tenants. The
//! value is kept in `vault/<tenant>.vault`, one record per token:
//!
//! ```text
//! record = len:u32be ‖ dek_id:u32be ‖ token:16 ‖ AES-256-GCM(vault key of dek_id,
//!          aad = "sentrace vault v1" ‖ tenant ‖ token ‖ dek_id, kind ‖ 0x00 ‖ value)
//! ```
//!
//! The vault key is HKDF(DEK, "sentrace vault v1"), so crypto-shredding the tenant's keys
//! makes every value irreversible, and [`Vault::erase`] removes one subject's value. The
//! file is append-only with an fsync per new token; a torn tail is cut on open.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use sentrace_core::TenantId;

use crate::crypto::{AeadKey, hkdf32};
use crate::fsutil::{create_private_dir, read_bounded, write_atomic_private};
use crate::{KeyRing, StoreError};

const TOKEN_LEN: usize = 16;
const HEADER_LEN: usize = 4 + 4 + TOKEN_LEN;
/// Longest value kept (bytes).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest vault file read.
const MAX_FILE_BYTES: u64 = 1 << 30;
const AAD_LABEL: &[u8] = b"sentrace vault v1";

struct TenantVault {
    file: File,
    known: HashSet<[u8; TOKEN_LEN]>,
}

/// Encrypted token → value storage for every tenant of a data directory.
pub struct Vault {
    dir: PathBuf,
    keys: Arc<KeyRing>,
    tenants: Mutex<HashMap<TenantId, TenantVault>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// One parsed record: where it is, and its sealed part.
struct Record<'a> {
    start: usize,
    end: usize,
    dek_id: u32,
    token: [u8; TOKEN_LEN],
    sealed: &'a [u8],
}

/// Parses records until the end or a torn tail; returns them and the intact length.
fn parse(bytes: &[u8]) -> (Vec<Record<'_>>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len().saturating_sub(at) >= HEADER_LEN {
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(end) = at.checked_add(4).and_then(|x| x.checked_add(len)) else {
            break;
        };
        if len < HEADER_LEN - 4 || end > bytes.len() {
            break;
        }
        let dek_id =
            u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&bytes[at + 8..at + HEADER_LEN]);
        out.push(Record {
            start: at,
            end,
            dek_id,
            token,
            sealed: &bytes[at + HEADER_LEN..end],
        });
        at = end;
    }
    (out, at)
}

fn aad(tenant: &TenantId, token: &[u8; TOKEN_LEN], dek_id: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_LABEL.len() + tenant.as_str().len() + 24);
    a.extend_from_slice(AAD_LABEL);
    a.extend_from_slice(&(tenant.as_str().len() as u32).to_be_bytes());
    a.extend_from_slice(tenant.as_str().as_bytes());
    a.extend_from_slice(token);
    a.extend_from_slice(&dek_id.to_be_bytes());
    a
}

impl Vault {
    /// A vault under `dir` (created with mode 0700).
    pub fn open(dir: &Path, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keys,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}.vault", tenant.as_str()))
    }

    fn read_file(&self, tenant: &TenantId) -> Result<Vec<u8>, StoreError> {
        read_bounded(&self.path(tenant), MAX_FILE_BYTES, "vault file")
    }

    fn token_id(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> Result<[u8; TOKEN_LEN], StoreError> {
        let pk = self.keys.pseudonym_key(tenant)?;
        let index_key = hkdf32(&pk, &[b"sentrace vault index v1"])?;
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

    fn vault_key(&self, tenant: &TenantId, dek_id: u32) -> Result<AeadKey, StoreError> {
        let dek = self.keys.dek(tenant, dek_id)?;
        AeadKey::new(&dek.derive(&[AAD_LABEL])?)
    }

    /// Keeps `value` encrypted and returns its token id (32 hex characters). Equal values
    /// of one kind share a token.
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
        let mut tenants = self
            .tenants
            .lock()
            .map_err(|_| StoreError::Task("vault lock poisoned".into()))?;
        if !tenants.contains_key(tenant) {
            let bytes = self.read_file(tenant)?;
            let (records, intact) = parse(&bytes);
            let known = records.iter().map(|r| r.token).collect();
            let path = self.path(tenant);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| StoreError::io(&path, e))?;
            if intact < bytes.len() {
                tracing::warn!(path = %path.display(), offset = intact, "vault tail torn; cut");
                file.set_len(intact as u64)
                    .map_err(|e| StoreError::io(&path, e))?;
            }
            tenants.insert(tenant.clone(), TenantVault { file, known });
        }
        let tv = tenants
            .get_mut(tenant)
            .ok_or_else(|| StoreError::Task("vault state missing".into()))?;
        let hex_id = hex::encode(token);
        if tv.known.contains(&token) {
            return Ok(hex_id);
        }
        let dek = self.keys.current_dek(tenant)?;
        let key = AeadKey::new(&dek.derive(&[AAD_LABEL])?)?;
        let mut plain = Vec::with_capacity(kind.len() + 1 + value.len());
        plain.extend_from_slice(kind.as_bytes());
        plain.push(0);
        plain.extend_from_slice(value.as_bytes());
        let mut sealed = Vec::new();
        key.seal_append(&aad(tenant, &token, dek.id), &plain, &mut sealed)?;
        let mut rec = Vec::with_capacity(HEADER_LEN + sealed.len());
        rec.extend_from_slice(&((HEADER_LEN - 4 + sealed.len()) as u32).to_be_bytes());
        rec.extend_from_slice(&dek.id.to_be_bytes());
        rec.extend_from_slice(&token);
        rec.extend_from_slice(&sealed);
        let path = self.path(tenant);
        tv.file
            .write_all(&rec)
            .and_then(|_| tv.file.sync_data())
            .map_err(|e| StoreError::io(&path, e))?;
        tv.known.insert(token);
        Ok(hex_id)
    }

    /// The kind and original value behind a token, if the vault still holds it.
    /// De-tokenizing is a privileged act: callers authorize and audit it.
    pub fn detokenize(
        &self,
        tenant: &TenantId,
        token_hex: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut token = [0u8; TOKEN_LEN];
        if hex::decode_to_slice(token_hex, &mut token).is_err() {
            return Ok(None);
        }
        let _guard = self
            .tenants
            .lock()
            .map_err(|_| StoreError::Task("vault lock poisoned".into()))?;
        let bytes = self.read_file(tenant)?;
        let (records, _) = parse(&bytes);
        let Some(r) = records.iter().rev().find(|r| r.token == token) else {
            return Ok(None);
        };
        let key = self.vault_key(tenant, r.dek_id)?;
        let plain = key.open(&aad(tenant, &r.token, r.dek_id), r.sealed, "vault record")?;
        let split = plain
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.path(tenant),
                offset: r.start as u64,
                reason: "vault record without kind separator".into(),
            })?;
        let kind = String::from_utf8_lossy(&plain[..split]).into_owned();
        let value = String::from_utf8_lossy(&plain[split + 1..]).into_owned();
        Ok(Some((kind, value)))
    }

    /// Removes a token's value (a subject's erasure): the token stays in traces but can no
    /// longer be reversed. Returns whether the vault held it.
    pub fn erase(&self, tenant: &TenantId, token_hex: &str) -> Result<bool, StoreError> {
        let mut token = [0u8; TOKEN_LEN];
        if hex::decode_to_slice(token_hex, &mut token).is_err() {
            return Ok(false);
        }
        let mut tenants = self
            .tenants
            .lock()
            .map_err(|_| StoreError::Task("vault lock poisoned".into()))?;
        let bytes = self.read_file(tenant)?;
        let (records, _) = parse(&bytes);
        if !records.iter().any(|r| r.token == token) {
            return Ok(false);
        }
        let mut kept = Vec::with_capacity(bytes.len());
        for r in records.iter().filter(|r| r.token != token) {
            kept.extend_from_slice(&bytes[r.start..r.end]);
        }
        write_atomic_private(&self.path(tenant), &kept)?;
        // Reopen on next use, so the append handle points at the new file.
        tenants.remove(tenant);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

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
