//! The per-tenant service/operation catalog, persisted encrypted in `catalog/<tenant>.bin`.
//!
//! File = `"SNTRCAT1" ‖ key_id u32 ‖ nonce ‖ AES-256-GCM(JSON catalog) ‖ tag`, key =
//! HKDF(DEK, "sentrace catalog v1"), AAD = field("sentrace catalog v1") ‖ field(tenant) ‖ key_id.

use std::path::{Path, PathBuf};

use sentrace_core::TenantId;

use crate::crypto::{AeadKey, put_field};
use crate::fsutil::{sync_dir, write_atomic_private};
use crate::memtable::Catalog;
use crate::{KeyRing, StoreError};

const MAGIC: &[u8; 8] = b"SNTRCAT1";
const MAX_FILE: u64 = 64 << 20;

fn path(dir: &Path, tenant: &TenantId) -> PathBuf {
    dir.join(format!("{}.bin", tenant.as_str()))
}

fn aad(tenant: &TenantId, key_id: u32) -> Vec<u8> {
    let mut a = Vec::new();
    put_field(&mut a, b"sentrace catalog v1");
    put_field(&mut a, tenant.as_str().as_bytes());
    a.extend_from_slice(&key_id.to_be_bytes());
    a
}

/// Writes a tenant's catalog under its current data key.
pub(crate) fn save(
    dir: &Path,
    keys: &KeyRing,
    tenant: &TenantId,
    cat: &Catalog,
) -> Result<(), StoreError> {
    let dek = keys.current_dek(tenant)?;
    let key = AeadKey::new(&dek.derive(&[b"sentrace catalog v1"])?)?;
    let json =
        serde_json::to_vec(cat).map_err(|e| StoreError::Task(format!("catalog encode: {e}")))?;
    let mut out = Vec::with_capacity(json.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&dek.id.to_be_bytes());
    key.seal_append(&aad(tenant, dek.id), &json, &mut out)?;
    write_atomic_private(&path(dir, tenant), &out)
}

/// Loads every readable catalog; catalogs of shredded tenants are skipped.
pub(crate) fn load_all(dir: &Path, keys: &KeyRing) -> Result<Vec<(TenantId, Catalog)>, StoreError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io(dir, e))?;
        let name = ent.file_name();
        let Some(tenant) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|t| TenantId::new(t).ok())
        else {
            continue;
        };
        let p = ent.path();
        let corrupt = |offset: u64, reason: &str| StoreError::Corrupt {
            path: p.clone(),
            offset,
            reason: reason.to_string(),
        };
        let len = ent.metadata().map_err(|e| StoreError::io(&p, e))?.len();
        if len > MAX_FILE {
            return Err(corrupt(0, "catalog file too large"));
        }
        let bytes = std::fs::read(&p).map_err(|e| StoreError::io(&p, e))?;
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(corrupt(0, "not a catalog file"));
        }
        let key_id = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let dek = match keys.dek(&tenant, key_id) {
            Ok(d) => d,
            Err(StoreError::KeyUnavailable { .. }) => continue,
            Err(e) => return Err(e),
        };
        let key = AeadKey::new(&dek.derive(&[b"sentrace catalog v1"])?)?;
        let json = key.open(&aad(&tenant, key_id), &bytes[12..], "catalog file")?;
        let cat: Catalog = serde_json::from_slice(&json)
            .map_err(|_| corrupt(12, "catalog JSON does not parse"))?;
        out.push((tenant, cat));
    }
    Ok(out)
}

/// Deletes a tenant's catalog file.
pub(crate) fn remove(dir: &Path, tenant: &TenantId) -> Result<(), StoreError> {
    let p = path(dir, tenant);
    match std::fs::remove_file(&p) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(&p, e)),
    }
}
