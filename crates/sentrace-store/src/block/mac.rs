//! Whole-block integrity tags.
//!
//! Parquet Modular Encryption authenticates each module it decrypts, but a reader skips
//! bytes it does not need (the leading magic, module length prefixes, page indexes), so a
//! change there would go unnoticed. Every block therefore has a sidecar object
//! `<name>.parquet.mac` holding `dek_id:u32be ‖ HMAC-SHA-256(K, "sentrace block mac v1" ‖
//! tenant ‖ 0x00 ‖ name ‖ 0x00 ‖ block bytes)` with `K = HKDF(DEK, "sentrace block mac v1")`
//! (RFC 2104, RFC 5869). The verifier checks it over the whole file; the tag cannot be
//! forged without the tenant's key, and a shredded tenant's tags read as erased.

use std::sync::Arc;

use aws_lc_rs::hmac;
use object_store::path::Path as ObjectPath;
use sentrace_core::TenantId;

use crate::StoreError;
use crate::keys::{Dek, KeyRing};

const LABEL: &[u8] = b"sentrace block mac v1";
/// Length of a sidecar object.
pub const MAC_OBJECT_LEN: usize = 4 + 32;

/// The sidecar path of a block path.
pub fn mac_path(block: &ObjectPath) -> ObjectPath {
    ObjectPath::from(format!("{block}.mac"))
}

fn tag(dek: &Dek, tenant: &TenantId, name: &str, bytes: &[u8]) -> Result<hmac::Tag, StoreError> {
    let key = dek.derive(&[LABEL])?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(LABEL);
    ctx.update(tenant.as_str().as_bytes());
    ctx.update(&[0]);
    ctx.update(name.as_bytes());
    ctx.update(&[0]);
    ctx.update(bytes);
    Ok(ctx.sign())
}

/// The sidecar content for a block written under `dek`.
pub fn seal(dek: &Dek, tenant: &TenantId, name: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let t = tag(dek, tenant, name, bytes)?;
    let mut out = Vec::with_capacity(MAC_OBJECT_LEN);
    out.extend_from_slice(&dek.id.to_be_bytes());
    out.extend_from_slice(t.as_ref());
    Ok(out)
}

/// Checks a block against its sidecar. `KeyUnavailable` means the tenant was shredded.
pub fn check(
    keys: &Arc<KeyRing>,
    tenant: &TenantId,
    name: &str,
    bytes: &[u8],
    sidecar: &[u8],
) -> Result<(), StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        path: format!("{}/{name}.parquet", tenant.as_str()).into(),
        offset: 0,
        reason: reason.to_string(),
    };
    if sidecar.len() != MAC_OBJECT_LEN {
        return Err(corrupt("block integrity tag has the wrong length"));
    }
    let dek_id = u32::from_be_bytes([sidecar[0], sidecar[1], sidecar[2], sidecar[3]]);
    let dek = keys.dek(tenant, dek_id)?;
    let want = tag(&dek, tenant, name, bytes)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(want.as_ref(), &sidecar[4..]).is_err() {
        return Err(corrupt("block modified: its integrity tag does not match"));
    }
    Ok(())
}
