//! Reading encrypted blocks: footer, pruning statistics, bloom filters, rows.

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use base64::Engine;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::bloom_filter::Sbbf;
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::errors::ParquetError;
use parquet::file::metadata::RowGroupMetaData;
use sentrace_core::{SpanId, TenantId, TraceId};

use super::{BLOOM_KEY, COLUMNS, aad_prefix, block_key, parse_key_metadata};
use crate::{KeyRing, SpanEntry, StoreError};

/// Longest bloom-filter metadata accepted from a footer.
const MAX_BLOOM_JSON: usize = 64 << 20;

/// Finds block keys from their key metadata through the key ring.
struct Retriever {
    keys: Arc<KeyRing>,
    tenant: TenantId,
    name: String,
    missing: Mutex<Option<u32>>,
}

impl KeyRetriever for Retriever {
    fn retrieve_key(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let (dek_id, purpose) = parse_key_metadata(key_metadata)
            .ok_or_else(|| ParquetError::General("block key metadata is not sentrace:v1".into()))?;
        let dek = match self.keys.dek(&self.tenant, dek_id) {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, StoreError::KeyUnavailable { .. })
                    && let Ok(mut m) = self.missing.lock()
                {
                    *m = Some(dek_id);
                }
                return Err(ParquetError::General(e.to_string()));
            }
        };
        block_key(&dek, &self.tenant, &self.name, &purpose)
            .map(|k| k.expose().to_vec())
            .map_err(|e| ParquetError::General(e.to_string()))
    }
}

/// Min/max of one row group, from Parquet column statistics.
#[derive(Debug, Default)]
pub(crate) struct RgStats {
    pub trace: Option<(Vec<u8>, Vec<u8>)>,
    pub start: Option<(u64, u64)>,
    pub duration: Option<(u64, u64)>,
    pub service: Option<(Vec<u8>, Vec<u8>)>,
    pub name: Option<(Vec<u8>, Vec<u8>)>,
    /// Log indices of the sealed rows.
    pub log_index: Option<(u64, u64)>,
}

/// A block's decrypted footer, ready for pruning.
pub(crate) struct BlockMeta {
    pub arrow: ArrowReaderMetadata,
    pub row_groups: Vec<RgStats>,
    pub blooms: Vec<Option<Sbbf>>,
}

impl std::fmt::Debug for BlockMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockMeta")
            .field("row_groups", &self.row_groups)
            .finish_non_exhaustive()
    }
}

fn bytes_range(rg: &RowGroupMetaData, col: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let s = rg.column(col).statistics()?;
    Some((s.min_bytes_opt()?.to_vec(), s.max_bytes_opt()?.to_vec()))
}

fn u64_range(rg: &RowGroupMetaData, col: usize) -> Option<(u64, u64)> {
    let (a, b) = bytes_range(rg, col)?;
    let a: [u8; 8] = a.try_into().ok()?;
    let b: [u8; 8] = b.try_into().ok()?;
    let (a, b) = (i64::from_le_bytes(a), i64::from_le_bytes(b));
    // Values are stored as INT64; negative means above 2^63, where we do not prune.
    Some((u64::try_from(a).ok()?, u64::try_from(b).ok()?))
}

fn options(
    keys: &Arc<KeyRing>,
    tenant: &TenantId,
    name: &str,
) -> Result<(ArrowReaderOptions, Arc<Retriever>), StoreError> {
    let retriever = Arc::new(Retriever {
        keys: keys.clone(),
        tenant: tenant.clone(),
        name: name.to_string(),
        missing: Mutex::new(None),
    });
    let props = FileDecryptionProperties::with_key_retriever(retriever.clone())
        .with_aad_prefix(aad_prefix(tenant, name))
        .build()
        .map_err(|e| StoreError::Parquet {
            block: name.to_string(),
            reason: e.to_string(),
        })?;
    Ok((
        ArrowReaderOptions::new().with_file_decryption_properties(props),
        retriever,
    ))
}

fn map_err(retriever: &Retriever, name: &str, e: ParquetError) -> StoreError {
    if let Some(key_id) = retriever.missing.lock().ok().and_then(|m| *m) {
        return StoreError::KeyUnavailable {
            tenant: retriever.tenant.clone(),
            key_id,
        };
    }
    StoreError::Parquet {
        block: name.to_string(),
        reason: e.to_string(),
    }
}

/// Decrypts and parses a block's footer.
pub(crate) fn load_meta(
    bytes: &Bytes,
    keys: &Arc<KeyRing>,
    tenant: &TenantId,
    name: &str,
) -> Result<BlockMeta, StoreError> {
    let (opts, retriever) = options(keys, tenant, name)?;
    let arrow = ArrowReaderMetadata::load(bytes, opts).map_err(|e| map_err(&retriever, name, e))?;
    let md = arrow.metadata();
    let bad = |reason: String| StoreError::Corrupt {
        path: name.into(),
        offset: 0,
        reason,
    };
    if arrow.schema().fields().len() != COLUMNS.len() {
        return Err(bad("unexpected block schema".into()));
    }
    let row_groups: Vec<RgStats> = md
        .row_groups()
        .iter()
        .map(|rg| RgStats {
            trace: bytes_range(rg, 0),
            start: u64_range(rg, 6),
            duration: u64_range(rg, 8),
            service: bytes_range(rg, 3),
            name: bytes_range(rg, 4),
            log_index: u64_range(rg, 10),
        })
        .collect();
    let kv = md.file_metadata().key_value_metadata();
    let bloom_json = kv
        .and_then(|kv| kv.iter().find(|k| k.key == BLOOM_KEY))
        .and_then(|k| k.value.as_deref());
    let blooms = match bloom_json {
        Some(j) if j.len() <= MAX_BLOOM_JSON => {
            let list: Vec<String> =
                serde_json::from_str(j).map_err(|e| bad(format!("bloom metadata: {e}")))?;
            if list.len() != row_groups.len() {
                return Err(bad("bloom filter count differs from row groups".into()));
            }
            list.iter()
                .map(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .ok()
                        .filter(|bits| !bits.is_empty() && bits.len() % 32 == 0)
                        .map(|bits| Sbbf::new(&bits))
                })
                .collect()
        }
        _ => vec![None; row_groups.len()],
    };
    Ok(BlockMeta {
        arrow,
        row_groups,
        blooms,
    })
}

impl BlockMeta {
    /// Row groups that may hold `trace_id`: min/max statistics, then the bloom filter.
    pub fn row_groups_for_trace(&self, trace_id: &TraceId) -> Vec<usize> {
        let t = trace_id.as_bytes().as_slice();
        (0..self.row_groups.len())
            .filter(|&i| {
                self.row_groups[i]
                    .trace
                    .as_ref()
                    .is_none_or(|(lo, hi)| lo.as_slice() <= t && t <= hi.as_slice())
            })
            .filter(|&i| self.blooms[i].as_ref().is_none_or(|b| b.check(t)))
            .collect()
    }

    /// Row groups whose statistics do not rule out the filter.
    pub fn row_groups_for_filter(&self, f: &crate::SpanFilter) -> Vec<usize> {
        let within = |r: &Option<(Vec<u8>, Vec<u8>)>, v: &Option<String>| match (r, v) {
            (Some((lo, hi)), Some(v)) => {
                lo.as_slice() <= v.as_bytes() && v.as_bytes() <= hi.as_slice()
            }
            _ => true,
        };
        (0..self.row_groups.len())
            .filter(|&i| {
                let rg = &self.row_groups[i];
                rg.start
                    .is_none_or(|(lo, hi)| f.start_range_overlaps(lo, hi))
                    && rg.duration.is_none_or(|(lo, hi)| {
                        f.min_duration_nanos.is_none_or(|m| hi >= m)
                            && f.max_duration_nanos.is_none_or(|m| lo <= m)
                    })
                    && within(&rg.service, &f.service)
                    && within(&rg.name, &f.name)
            })
            .collect()
    }
}

/// Reads the given row groups and keeps the rows `keep` accepts.
pub(crate) fn read_rows(
    bytes: Bytes,
    meta: &BlockMeta,
    name: &str,
    row_groups: Vec<usize>,
    keep: &dyn Fn(&SpanEntry) -> bool,
) -> Result<Vec<SpanEntry>, StoreError> {
    let err = |e: ParquetError| StoreError::Parquet {
        block: name.to_string(),
        reason: e.to_string(),
    };
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, meta.arrow.clone())
        .with_row_groups(row_groups)
        .build()
        .map_err(err)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::Parquet {
            block: name.to_string(),
            reason: e.to_string(),
        })?;
        rows(&batch, name, keep, &mut out)?;
    }
    Ok(out)
}

fn rows(
    b: &RecordBatch,
    name: &str,
    keep: &dyn Fn(&SpanEntry) -> bool,
    out: &mut Vec<SpanEntry>,
) -> Result<(), StoreError> {
    let bad = |reason: String| StoreError::Corrupt {
        path: name.into(),
        offset: 0,
        reason,
    };
    let col = |i: usize| b.column(i);
    let fsb = |i: usize| {
        col(i)
            .as_fixed_size_binary_opt()
            .ok_or_else(|| bad(format!("column {} has the wrong type", COLUMNS[i])))
    };
    let trace = fsb(0)?;
    let span = fsb(1)?;
    let parent = fsb(2)?;
    let service = col(3)
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("service type".into()))?;
    let sname = col(4)
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("name type".into()))?;
    let kind = col(5)
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| bad("kind type".into()))?;
    let start = col(6)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad("start type".into()))?;
    let end = col(7)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad("end type".into()))?;
    let canonical = col(9)
        .as_binary_opt::<i32>()
        .ok_or_else(|| bad("canonical type".into()))?;
    let log_index = col(10)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad("log_index type".into()))?;
    let log_position = col(11)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| bad("log_position type".into()))?;
    for i in 0..b.num_rows() {
        let id_err = |e: sentrace_core::IdError| bad(format!("row {i}: {e}"));
        let entry = SpanEntry {
            trace_id: TraceId::from_slice(trace.value(i)).map_err(id_err)?,
            span_id: SpanId::from_slice(span.value(i)).map_err(id_err)?,
            parent_span_id: if parent.is_null(i) {
                None
            } else {
                Some(SpanId::from_slice(parent.value(i)).map_err(id_err)?)
            },
            service: service.value(i).to_string(),
            name: sname.value(i).to_string(),
            kind: kind.value(i),
            start_unix_nanos: start.value(i),
            end_unix_nanos: end.value(i),
            canonical: Bytes::copy_from_slice(canonical.value(i)),
            seal: match (log_index.is_null(i), log_position.is_null(i)) {
                (true, true) => None,
                (false, false) => Some(crate::entry::SpanSeal {
                    index: log_index.value(i),
                    position: log_position.value(i),
                    manifest: None,
                }),
                _ => return Err(bad(format!("row {i}: log index and position disagree"))),
            },
        };
        if keep(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}
