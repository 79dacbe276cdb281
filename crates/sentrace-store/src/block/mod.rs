//! Immutable blocks: Parquet files under `<tenant>/` in the object store, sorted by trace id
//! then start time, encrypted with Parquet Modular Encryption (encrypted footer, every column
//! under its own key).
//!
//! Keys (all AES-256, derived with HKDF-SHA-256, RFC 5869, from the tenant's DEK):
//! `key(purpose) = HKDF(DEK, "sentrace block v1" ‖ field(tenant) ‖ field(block) ‖ field(purpose))`
//! where purpose is `footer` or the column name. The plaintext key metadata of each key is
//! `sentrace:v1:<dek id>:<purpose>`, so a reader finds the DEK, and the file AAD prefix is
//! `field(tenant) ‖ field(block)` (not stored in the file), so a block renamed or moved to
//! another tenant fails to decrypt.
//!
//! Each row group has a split-block bloom filter (the Parquet SBBF) over trace ids. arrow-rs
//! 60 writes Parquet's own bloom filters unencrypted even in encrypted files, so ours are
//! kept in the encrypted footer's key-value metadata instead.

mod read;
mod write;

use std::sync::{Arc, OnceLock};

use object_store::path::Path as ObjectPath;
use sentrace_core::TenantId;

pub(crate) use read::{BlockMeta, load_meta, load_meta_checked, read_rows};
pub(crate) use write::build_block;

use crate::StoreError;
use crate::crypto::{Secret32, put_field};
use crate::keys::Dek;

/// Key-value metadata key holding the per-row-group bloom filters.
pub(crate) const BLOOM_KEY: &str = "sentrace.bloom.v1";
/// Key-value metadata key holding the block summary.
pub(crate) const SUMMARY_KEY: &str = "sentrace.block.v1";

/// Column names, in schema order.
pub(crate) const COLUMNS: [&str; 12] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "start_unix_nanos",
    "end_unix_nanos",
    "duration_nanos",
    "canonical",
    "log_index",
    "log_position",
];

/// A block known to the store.
#[derive(Debug)]
pub(crate) struct BlockInfo {
    pub tenant: TenantId,
    /// Object path `<tenant>/<name>.parquet`.
    pub path: ObjectPath,
    /// File stem, bound into keys and AAD.
    pub name: String,
    /// Earliest span start in the block, Unix milliseconds (from the name).
    pub min_start_ms: u64,
    /// Latest span end in the block, Unix milliseconds (from the name).
    pub max_end_ms: u64,
    /// Decrypted footer, loaded on first use.
    pub meta: OnceLock<Arc<BlockMeta>>,
}

impl BlockInfo {
    /// Block name: `<min start ms, 13 digits>-<max end ms, 13 digits>-<16 random hex>`; names
    /// sort by time, and the times drive retention and time-range pruning without a read.
    pub fn new_name(min_start_ms: u64, max_end_ms: u64) -> Result<String, StoreError> {
        let mut r = [0u8; 8];
        aws_lc_rs::rand::fill(&mut r).map_err(|_| StoreError::crypto("block id generation"))?;
        Ok(format!(
            "{min_start_ms:013}-{max_end_ms:013}-{}",
            hex::encode(r)
        ))
    }

    /// Parses an object path `<tenant>/<name>.parquet`.
    pub fn parse(path: &ObjectPath) -> Option<Self> {
        let mut parts = path.parts();
        let tenant = TenantId::new(parts.next()?.as_ref()).ok()?;
        let file = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let name = file.as_ref().strip_suffix(".parquet")?.to_string();
        let mut fields = name.split('-');
        let min_start_ms = fields.next()?.parse().ok()?;
        let max_end_ms = fields.next()?.parse().ok()?;
        let rand = fields.next()?;
        if rand.len() != 16 || fields.next().is_some() {
            return None;
        }
        Some(Self {
            tenant,
            path: path.clone(),
            name,
            min_start_ms,
            max_end_ms,
            meta: OnceLock::new(),
        })
    }

    /// The object path of a block.
    pub fn object_path(tenant: &TenantId, name: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{name}.parquet", tenant.as_str()))
    }
}

/// The AAD prefix of a block (not stored in the file).
pub(crate) fn aad_prefix(tenant: &TenantId, name: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(96);
    put_field(&mut p, tenant.as_str().as_bytes());
    put_field(&mut p, name.as_bytes());
    p
}

/// Derives the key for `purpose` (`footer` or a column name) of block `name`.
pub(crate) fn block_key(
    dek: &Dek,
    tenant: &TenantId,
    name: &str,
    purpose: &str,
) -> Result<Secret32, StoreError> {
    let mut t = Vec::new();
    put_field(&mut t, tenant.as_str().as_bytes());
    let mut n = Vec::new();
    put_field(&mut n, name.as_bytes());
    let mut p = Vec::new();
    put_field(&mut p, purpose.as_bytes());
    dek.derive(&[b"sentrace block v1", &t, &n, &p])
}

/// Key metadata stored (in plaintext) next to each encrypted module.
pub(crate) fn key_metadata(dek_id: u32, purpose: &str) -> Vec<u8> {
    format!("sentrace:v1:{dek_id}:{purpose}").into_bytes()
}

/// Parses [`key_metadata`].
pub(crate) fn parse_key_metadata(meta: &[u8]) -> Option<(u32, String)> {
    let text = std::str::from_utf8(meta).ok()?;
    let rest = text.strip_prefix("sentrace:v1:")?;
    let (id, purpose) = rest.split_once(':')?;
    if !COLUMNS.contains(&purpose) && purpose != "footer" {
        return None;
    }
    Some((id.parse().ok()?, purpose.to_string()))
}

/// The integrity tag of a whole block file, kept beside it as `<tenant>/<name>.mac`:
/// `dek_id u32 ‖ HMAC-SHA-256(key, file bytes)` (RFC 2104) with
/// `key = HKDF(DEK, "sentrace block mac v1" ‖ field(tenant) ‖ field(block))`.
///
/// Parquet Modular Encryption authenticates pages and the footer, but not every byte of
/// the file (magic, some framing); the tag makes any change to a block detectable.
pub(crate) fn block_mac(
    dek: &Dek,
    tenant: &TenantId,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let key = mac_key(dek, tenant, name)?;
    let tag = aws_lc_rs::hmac::sign(&key, bytes);
    let mut out = dek.id.to_be_bytes().to_vec();
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn mac_key(dek: &Dek, tenant: &TenantId, name: &str) -> Result<aws_lc_rs::hmac::Key, StoreError> {
    let mut info = Vec::new();
    put_field(&mut info, tenant.as_str().as_bytes());
    put_field(&mut info, name.as_bytes());
    let k = dek.derive(&[b"sentrace block mac v1", &info])?;
    Ok(aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        k.expose(),
    ))
}

/// Checks a block's tag; `Err(reason)` if it does not match.
pub(crate) fn check_block_mac(
    keys: &crate::KeyRing,
    tenant: &TenantId,
    name: &str,
    bytes: &[u8],
    tag: &[u8],
) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::Corrupt {
        path: format!("{name}.mac").into(),
        offset: 0,
        reason: reason.into(),
    };
    if tag.len() != 4 + 32 {
        return Err(bad("the block's integrity tag has the wrong length"));
    }
    let id = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]);
    let dek = keys.dek(tenant, id)?;
    aws_lc_rs::hmac::verify(&mac_key(&dek, tenant, name)?, bytes, &tag[4..])
        .map_err(|_| bad("the block does not match its integrity tag (HMAC-SHA-256)"))
}

/// Object path of a block's integrity tag.
pub(crate) fn mac_path(tenant: &TenantId, name: &str) -> ObjectPath {
    ObjectPath::from(format!("{}/{name}.mac", tenant.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyRing, MasterKey};
    use crate::testutil::span;

    #[test]
    fn encrypted_block_round_trip_and_wrong_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
        let acme = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&acme).unwrap();
        let spans: Vec<_> = (1..=30u64)
            .map(|i| span(i, i, "svc", "op", i * 1000, i * 1000 + 5, &[("k", "v")]))
            .collect();
        let name = BlockInfo::new_name(0, 1).unwrap();
        let bytes = build_block(&acme, &dek, &name, &spans, 8).unwrap();
        // Parquet Modular Encryption with an encrypted footer ends in "PARE".
        assert_eq!(&bytes[bytes.len() - 4..], b"PARE");

        let meta = load_meta(&bytes, &keys, &acme, &name).unwrap();
        assert_eq!(meta.row_groups.len(), 4);
        assert!(meta.blooms.iter().all(Option::is_some));
        let all: Vec<usize> = (0..4).collect();
        let rows = read_rows(bytes.clone(), &meta, &name, all, &|_| true).unwrap();
        assert_eq!(rows, spans);
        let rgs = meta.row_groups_for_trace(&spans[20].trace_id);
        assert_eq!(rgs, vec![2]);

        // Same tenant, another data key: the footer cannot be decrypted.
        let other_ring = Arc::new(
            KeyRing::open(&dir.path().join("o"), &MasterKey::generate().unwrap()).unwrap(),
        );
        other_ring.current_dek(&acme).unwrap();
        let err = load_meta(&bytes, &other_ring, &acme, &name).unwrap_err();
        assert!(matches!(err, StoreError::Parquet { .. }), "{err}");
        // Renamed block or another tenant: the AAD prefix and derived keys differ.
        let renamed = BlockInfo::new_name(0, 1).unwrap();
        assert!(load_meta(&bytes, &keys, &acme, &renamed).is_err());
        keys.current_dek(&TenantId::new("evil").unwrap()).unwrap();
        assert!(load_meta(&bytes, &keys, &TenantId::new("evil").unwrap(), &name).is_err());
        // Without decryption properties Parquet refuses the file.
        assert!(
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).is_err()
        );
        // A shredded tenant gets a clear KeyUnavailable.
        keys.shred(&acme).unwrap();
        let fresh = build_block(&acme, &dek, &name, &spans, 8).unwrap();
        assert!(matches!(
            load_meta(&fresh, &keys, &acme, &name),
            Err(StoreError::KeyUnavailable { key_id: 1, .. })
        ));
    }
}
