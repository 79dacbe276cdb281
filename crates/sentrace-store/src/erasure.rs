//! Erasure records: when retention deletes a block, the store first records which sealed
//! batches (log indices) the block held, so `sentrace verify` reports them as erased and
//! not as deleted. A record is `dek_id u32 ‖ AES-256-GCM(nonce ‖ ct ‖ tag)` under a key
//! derived from the tenant's data key, with AAD binding tenant and block, in
//! `erased/<tenant>/<block>.erased`: nobody without the keys can forge one to hide a
//! deleted block.

use std::path::{Path, PathBuf};

use sentrace_core::TenantId;

use crate::crypto::{AeadKey, put_field};
use crate::fsutil::{create_private_dir, write_atomic_private};
use crate::keys::Dek;
use crate::{KeyRing, StoreError};

/// Largest erasure record read.
const MAX_RECORD: u64 = 64 << 20;

/// What an erasure record says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Erasure {
    /// The tenant.
    pub tenant: String,
    /// The block that was deleted.
    pub block: String,
    /// Log indices of the sealed batches (or parts of them) it held.
    pub indices: Vec<u64>,
    /// Why (`retention`).
    pub reason: String,
}

fn dir(data_dir: &Path, tenant: &TenantId) -> PathBuf {
    data_dir.join("erased").join(tenant.as_str())
}

fn key(dek: &Dek) -> Result<AeadKey, StoreError> {
    AeadKey::new(&dek.derive(&[b"sentrace erasure v1"])?)
}

fn aad(tenant: &TenantId, block: &str) -> Vec<u8> {
    let mut a = Vec::new();
    put_field(&mut a, b"sentrace erasure v1");
    put_field(&mut a, tenant.as_str().as_bytes());
    put_field(&mut a, block.as_bytes());
    a
}

/// Writes (and fsyncs) the erasure record of `block`.
pub(crate) fn write(
    data_dir: &Path,
    keys: &KeyRing,
    tenant: &TenantId,
    block: &str,
    indices: Vec<u64>,
    reason: &str,
) -> Result<(), StoreError> {
    let d = dir(data_dir, tenant);
    create_private_dir(&data_dir.join("erased"))?;
    create_private_dir(&d)?;
    let dek = keys.current_dek(tenant)?;
    let rec = Erasure {
        tenant: tenant.as_str().to_owned(),
        block: block.to_owned(),
        indices,
        reason: reason.to_owned(),
    };
    let plain = serde_json::to_vec(&rec).map_err(|e| StoreError::Task(e.to_string()))?;
    let mut out = dek.id.to_be_bytes().to_vec();
    key(&dek)?.seal_append(&aad(tenant, block), &plain, &mut out)?;
    write_atomic_private(&d.join(format!("{block}.erased")), &out)
}

/// Readable records, and `(path, reason)` of the ones that are not.
pub(crate) type Records = (Vec<Erasure>, Vec<(String, String)>);

/// Reads every erasure record; records that fail authentication are returned as errors
/// `(path, reason)`.
pub(crate) fn read_all(data_dir: &Path, keys: &KeyRing) -> Result<Records, StoreError> {
    let root = data_dir.join("erased");
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    if !root.is_dir() {
        return Ok((ok, bad));
    }
    for t in std::fs::read_dir(&root).map_err(|e| StoreError::io(&root, e))? {
        let t = t.map_err(|e| StoreError::io(&root, e))?;
        let Some(tenant) = t.file_name().to_str().and_then(|s| TenantId::new(s).ok()) else {
            continue;
        };
        let tdir = t.path();
        for f in std::fs::read_dir(&tdir).map_err(|e| StoreError::io(&tdir, e))? {
            let f = f.map_err(|e| StoreError::io(&tdir, e))?;
            let path = f.path();
            let Some(block) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".erased"))
                .map(str::to_owned)
            else {
                continue;
            };
            let label = format!("erased/{}/{block}.erased", tenant.as_str());
            let opened = (|| -> Result<Erasure, String> {
                let len = f.metadata().map_err(|e| e.to_string())?.len();
                if len > MAX_RECORD {
                    return Err(format!("{len} bytes, limit {MAX_RECORD}"));
                }
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                let (id, sealed) = bytes.split_at_checked(4).ok_or("truncated")?;
                let id = u32::from_be_bytes(id.try_into().map_err(|_| "truncated")?);
                let dek = keys.dek(&tenant, id).map_err(|e| e.to_string())?;
                let plain = key(&dek)
                    .map_err(|e| e.to_string())?
                    .open(&aad(&tenant, &block), sealed, "erasure record")
                    .map_err(|_| "fails authentication".to_string())?;
                let rec: Erasure = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
                if rec.tenant != tenant.as_str() || rec.block != block {
                    return Err("names another block".into());
                }
                Ok(rec)
            })();
            match opened {
                Ok(r) => ok.push(r),
                Err(e) => bad.push((label, e)),
            }
        }
    }
    Ok((ok, bad))
}
