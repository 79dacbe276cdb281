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
//! kept in the encrypted footer's key-value metadata instead, beside a block index (a bloom
//! filter over the whole block and each service's start-time range) that the store keeps in
//! memory to skip blocks without opening them.
//!
//! Layout v2 ([`COLUMNS`]) stores each canonical span in parts ([`layout`]): resource and
//! scope in dictionary-encoded columns, the span body apart. Layout v1 ([`COLUMNS_V1`],
//! the canonical bytes whole) is still read.

mod index;
pub(crate) mod layout;
pub(crate) mod mac;
#[cfg(test)]
mod measure;
mod read;
mod sparse;
mod write;

use std::sync::{Arc, OnceLock};

use object_store::path::Path as ObjectPath;
use sentrace_core::TenantId;

pub(crate) use index::BlockIndex;
pub(crate) use read::{BlockMeta, load_meta, read_rows};
pub(crate) use sparse::{Sparse, coalesce};
pub(crate) use write::{BlockOptions, build_block};

use crate::StoreError;
use crate::crypto::{Secret32, put_field};
use crate::keys::Dek;

/// Key-value metadata key holding the per-row-group bloom filters.
pub(crate) const BLOOM_KEY: &str = "sentrace.bloom.v1";
/// Key-value metadata key holding the block summary.
pub(crate) const SUMMARY_KEY: &str = "sentrace.block.v1";
/// Key-value metadata key holding the [`BlockIndex`].
pub(crate) const INDEX_KEY: &str = "sentrace.index.v1";

/// Column names of layout v2, in schema order.
pub(crate) const COLUMNS: [&str; 15] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "start_unix_nanos",
    "end_unix_nanos",
    "duration_nanos",
    "layout",
    "resource",
    "scope",
    "body",
    "log_index",
    "log_position",
];

/// Column names of layout v1 (canonical bytes whole), in schema order.
pub(crate) const COLUMNS_V1: [&str; 12] = [
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
    /// The block's index, loaded from its footer on first use and kept (it is small).
    pub index: OnceLock<Arc<BlockIndex>>,
    /// The node that wrote it when it is another node's block in a shared bucket (its
    /// `path` is then relative to the bucket prefix, `nodes/<node>/<tenant>/<name>.parquet`,
    /// and its keys are that node's); `None` for this node's own blocks.
    pub node: Option<Arc<str>>,
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
            index: OnceLock::new(),
            node: None,
        })
    }

    /// Another node's block: `rel` is `<tenant>/<name>.parquet` inside that node's prefix,
    /// `full` the same object's path from the bucket prefix.
    pub fn parse_peer(node: &Arc<str>, rel: &ObjectPath, full: ObjectPath) -> Option<Self> {
        let mut b = Self::parse(rel)?;
        b.path = full;
        b.node = Some(node.clone());
        Some(b)
    }

    /// Whether this node wrote the block.
    pub fn is_own(&self) -> bool {
        self.node.is_none()
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
    if !COLUMNS.contains(&purpose) && !COLUMNS_V1.contains(&purpose) && purpose != "footer" {
        return None;
    }
    Some((id.parse().ok()?, purpose.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyRing, MasterKey};
    use crate::testutil::span;

    /// `n` typical spans, sorted as a block holds them.
    fn typical_in_block_order(n: u64) -> Vec<crate::SpanEntry> {
        let mut spans: Vec<_> = (0..n).map(crate::testutil::typical_span).collect();
        spans.sort_by(|a, b| {
            a.trace_id
                .cmp(&b.trace_id)
                .then(a.start_unix_nanos.cmp(&b.start_unix_nanos))
                .then(a.span_id.cmp(&b.span_id))
        });
        spans
    }

    /// Every single-byte change anywhere in a block, and in its integrity tag, is caught
    /// by the whole-block check the verifier runs.
    #[test]
    fn every_byte_of_a_block_is_authenticated() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
        let acme = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&acme).unwrap();
        let spans: Vec<_> = (1..=6u64)
            .map(|i| span(i, i, "svc", "op", i * 1000, i * 1000 + 5, &[("k", "v")]))
            .collect();
        let name = BlockInfo::new_name(0, 1).unwrap();
        let bytes = build_block(&acme, &dek, &name, &spans, BlockOptions::new(4)).unwrap();
        let tag = mac::seal(&dek, &acme, &name, &bytes).unwrap();
        mac::check(&keys, &acme, &name, &bytes, &tag).unwrap();
        for at in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[at] ^= 0x01;
            assert!(
                mac::check(&keys, &acme, &name, &b, &tag).is_err(),
                "byte {at}"
            );
        }
        for at in 0..tag.len() {
            let mut t = tag.clone();
            t[at] ^= 0x01;
            assert!(
                mac::check(&keys, &acme, &name, &bytes, &t).is_err(),
                "tag byte {at}"
            );
        }
        // Another block name or tenant: the tag does not carry over.
        let other = BlockInfo::new_name(0, 1).unwrap();
        assert!(mac::check(&keys, &acme, &other, &bytes, &tag).is_err());
        keys.shred(&acme).unwrap();
        assert!(matches!(
            mac::check(&keys, &acme, &name, &bytes, &tag),
            Err(StoreError::KeyUnavailable { .. })
        ));
    }

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
        let bytes = build_block(&acme, &dek, &name, &spans, BlockOptions::new(8)).unwrap();
        // Parquet Modular Encryption with an encrypted footer ends in "PARE".
        assert_eq!(&bytes[bytes.len() - 4..], b"PARE");

        let meta = load_meta(&Sparse::whole(bytes.clone()), &keys, &acme, &name).unwrap();
        assert_eq!(meta.row_groups.len(), 4);
        assert!(meta.blooms.iter().all(Option::is_some));
        let all: Vec<usize> = (0..4).collect();
        let rows = read_rows(
            Sparse::whole(bytes.clone()),
            &meta,
            &name,
            all,
            None,
            &|_| true,
        )
        .unwrap();
        assert_eq!(rows, spans);
        let rgs = meta.row_groups_for_traces(std::slice::from_ref(&spans[20].trace_id));
        assert_eq!(rgs, vec![2]);
        // Late materialization: only the rows of the wanted traces, from two row groups,
        // equal to a full read filtered afterwards.
        let wanted = [spans[3].trace_id, spans[20].trace_id];
        let rgs = meta.row_groups_for_traces(&wanted);
        assert_eq!(rgs, vec![0, 2]);
        let only = Arc::new(wanted.iter().copied().collect());
        let rows = read_rows(
            Sparse::whole(bytes.clone()),
            &meta,
            &name,
            rgs,
            Some(only),
            &|_| true,
        )
        .unwrap();
        let expect: Vec<_> = spans
            .iter()
            .filter(|s| wanted.contains(&s.trace_id))
            .cloned()
            .collect();
        assert_eq!(rows, expect);
        assert!(!rows.is_empty());

        // Same tenant, another data key: the footer cannot be decrypted.
        let other_ring = Arc::new(
            KeyRing::open(&dir.path().join("o"), &MasterKey::generate().unwrap()).unwrap(),
        );
        other_ring.current_dek(&acme).unwrap();
        let err = load_meta(&Sparse::whole(bytes.clone()), &other_ring, &acme, &name).unwrap_err();
        assert!(matches!(err, StoreError::Parquet { .. }), "{err}");
        // Renamed block or another tenant: the AAD prefix and derived keys differ.
        let renamed = BlockInfo::new_name(0, 1).unwrap();
        assert!(load_meta(&Sparse::whole(bytes.clone()), &keys, &acme, &renamed).is_err());
        keys.current_dek(&TenantId::new("evil").unwrap()).unwrap();
        assert!(
            load_meta(
                &Sparse::whole(bytes.clone()),
                &keys,
                &TenantId::new("evil").unwrap(),
                &name
            )
            .is_err()
        );
        // Without decryption properties Parquet refuses the file.
        assert!(
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).is_err()
        );
        // A shredded tenant gets a clear KeyUnavailable.
        keys.shred(&acme).unwrap();
        let fresh = build_block(&acme, &dek, &name, &spans, BlockOptions::new(8)).unwrap();
        assert!(matches!(
            load_meta(&Sparse::whole(fresh), &keys, &acme, &name),
            Err(StoreError::KeyUnavailable { key_id: 1, .. })
        ));
    }

    /// Spans with a resource, a scope and 20 attributes are stored in parts (resource and
    /// scope dictionary-encoded, body apart) and read back byte for byte; the parts take
    /// less room than whole spans.
    #[test]
    fn split_layout_reads_back_the_exact_canonical_bytes_in_less_room() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
        let acme = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&acme).unwrap();
        let spans = typical_in_block_order(3000);
        let name = BlockInfo::new_name(0, 1).unwrap();
        let split = build_block(&acme, &dek, &name, &spans, BlockOptions::new(1000)).unwrap();
        let whole_opts = BlockOptions {
            split: false,
            ..BlockOptions::new(1000)
        };
        let whole = build_block(&acme, &dek, &name, &spans, whole_opts).unwrap();
        assert!(
            split.len() < whole.len(),
            "split {} vs whole {}",
            split.len(),
            whole.len()
        );
        for bytes in [split, whole] {
            let file = Sparse::whole(bytes);
            let meta = load_meta(&file, &keys, &acme, &name).unwrap();
            let groups: Vec<usize> = (0..meta.row_groups.len()).collect();
            let rows = read_rows(file, &meta, &name, groups, None, &|_| true).unwrap();
            assert_eq!(rows.len(), spans.len());
            for (got, want) in rows.iter().zip(&spans) {
                assert_eq!(got.canonical, want.canonical);
                // The index columns agree with what the canonical bytes say.
                assert_eq!(
                    crate::SpanEntry::from_canonical(got.canonical.clone())
                        .unwrap()
                        .span_id,
                    got.span_id
                );
            }
            assert_eq!(rows, spans);
        }
    }

    /// The time and log-position columns are delta-encoded by default, and a block written
    /// with dictionaries instead (as earlier builds wrote them) reads back the same.
    #[test]
    fn integer_columns_are_delta_encoded_and_both_encodings_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
        let acme = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&acme).unwrap();
        let spans = typical_in_block_order(500);
        let name = BlockInfo::new_name(0, 1).unwrap();
        let dictionary = BlockOptions {
            delta_ints: false,
            ..BlockOptions::new(128)
        };
        for (opts, delta) in [(BlockOptions::new(128), true), (dictionary, false)] {
            let file = Sparse::whole(build_block(&acme, &dek, &name, &spans, opts).unwrap());
            let meta = load_meta(&file, &keys, &acme, &name).unwrap();
            let md = meta.arrow.metadata();
            let schema = md.file_metadata().schema_descr();
            for rg in md.row_groups() {
                for c in 0..schema.num_columns() {
                    let column = schema.column(c).name().to_string();
                    let uses_delta = rg
                        .column(c)
                        .encodings()
                        .any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED);
                    let expected = delta && write::DELTA_COLUMNS.contains(&column.as_str());
                    assert_eq!(uses_delta, expected, "column {column}");
                }
            }
            let groups: Vec<usize> = (0..meta.row_groups.len()).collect();
            let rows = read_rows(file, &meta, &name, groups, None, &|_| true).unwrap();
            assert_eq!(rows, spans);
        }
    }
}
