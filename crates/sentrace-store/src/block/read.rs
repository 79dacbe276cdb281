//! Reading encrypted blocks: footer, pruning statistics, bloom filters, rows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, BooleanArray, RecordBatch};
use base64::Engine;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    RowFilter,
};
use parquet::bloom_filter::Sbbf;
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::errors::ParquetError;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::reader::Length;
use sentrace_core::{SpanId, TenantId, TraceId};

use super::index::BlockIndex;
use super::layout::{Layout, assemble};
use super::sparse::Sparse;
use super::{BLOOM_KEY, COLUMNS, COLUMNS_V1, INDEX_KEY, aad_prefix, block_key, parse_key_metadata};
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
    /// The block index (empty for blocks written before it existed).
    pub index: Arc<BlockIndex>,
    /// Length of the block file.
    pub file_len: u64,
}

/// Index of a column by name in a footer's schema.
fn column(md: &parquet::file::metadata::ParquetMetaData, name: &str) -> Option<usize> {
    md.file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == name)
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

/// Decrypts and parses a block's footer (`file` needs only hold the footer).
pub(crate) fn load_meta(
    file: &Sparse,
    keys: &Arc<KeyRing>,
    tenant: &TenantId,
    name: &str,
) -> Result<BlockMeta, StoreError> {
    let (opts, retriever) = options(keys, tenant, name)?;
    let arrow = ArrowReaderMetadata::load(file, opts).map_err(|e| map_err(&retriever, name, e))?;
    let md = arrow.metadata();
    let bad = |reason: String| StoreError::Corrupt {
        path: name.into(),
        offset: 0,
        reason,
    };
    let names: Vec<&str> = arrow
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    if names != COLUMNS && names != COLUMNS_V1 {
        return Err(bad("unexpected block schema".into()));
    }
    let at = |name: &str| column(md, name).ok_or_else(|| bad(format!("no column {name}")));
    let (trace, start, duration, service, sname, log_index) = (
        at("trace_id")?,
        at("start_unix_nanos")?,
        at("duration_nanos")?,
        at("service")?,
        at("name")?,
        at("log_index")?,
    );
    let row_groups: Vec<RgStats> = md
        .row_groups()
        .iter()
        .map(|rg| RgStats {
            trace: bytes_range(rg, trace),
            start: u64_range(rg, start),
            duration: u64_range(rg, duration),
            service: bytes_range(rg, service),
            name: bytes_range(rg, sname),
            log_index: u64_range(rg, log_index),
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
    let index_json = kv
        .and_then(|kv| kv.iter().find(|k| k.key == INDEX_KEY))
        .and_then(|k| k.value.as_deref());
    let index = BlockIndex::parse(index_json)
        .map_err(bad)?
        .unwrap_or_default();
    Ok(BlockMeta {
        arrow,
        row_groups,
        blooms,
        index: Arc::new(index),
        file_len: file.len(),
    })
}

impl BlockMeta {
    /// The byte ranges of the column chunks of `row_groups`, for a ranged fetch.
    pub fn ranges(&self, row_groups: &[usize]) -> Vec<std::ops::Range<u64>> {
        let md = self.arrow.metadata();
        let mut out = Vec::new();
        for &rg in row_groups {
            if let Some(rg) = md.row_groups().get(rg) {
                for c in rg.columns() {
                    let (start, len) = c.byte_range();
                    out.push(start..start.saturating_add(len));
                }
            }
        }
        out
    }

    /// Row groups that may hold any of `trace_ids`: min/max statistics, then the bloom
    /// filter.
    pub fn row_groups_for_traces(&self, trace_ids: &[TraceId]) -> Vec<usize> {
        (0..self.row_groups.len())
            .filter(|&i| {
                trace_ids.iter().any(|t| {
                    let t = t.as_bytes().as_slice();
                    self.row_groups[i]
                        .trace
                        .as_ref()
                        .is_none_or(|(lo, hi)| lo.as_slice() <= t && t <= hi.as_slice())
                        && self.blooms[i].as_ref().is_none_or(|b| b.check(t))
                })
            })
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

/// Reads the given row groups and keeps the rows `keep` accepts; `keep` is called before
/// the canonical bytes are rebuilt and sees them empty (`file` must hold their
/// column chunks: [`BlockMeta::ranges`]). With `only_traces`, the trace-id column is
/// decoded first and the other columns only for rows of those traces (late
/// materialization): a trace read decodes a few rows of a row group, not all of them.
pub(crate) fn read_rows(
    file: Sparse,
    meta: &BlockMeta,
    name: &str,
    row_groups: Vec<usize>,
    only_traces: Option<Arc<HashSet<TraceId>>>,
    keep: &dyn Fn(&SpanEntry) -> bool,
) -> Result<Vec<SpanEntry>, StoreError> {
    let err = |e: ParquetError| StoreError::Parquet {
        block: name.to_string(),
        reason: e.to_string(),
    };
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.arrow.clone())
        .with_row_groups(row_groups);
    if let Some(ids) = only_traces {
        let md = meta.arrow.metadata();
        let col = column(md, "trace_id").ok_or_else(|| StoreError::Corrupt {
            path: name.into(),
            offset: 0,
            reason: "column trace_id is missing".into(),
        })?;
        let mask = ProjectionMask::leaves(md.file_metadata().schema_descr(), [col]);
        let wanted = ArrowPredicateFn::new(mask, move |b: RecordBatch| {
            let ids_of = b.column(0).as_fixed_size_binary_opt().ok_or_else(|| {
                arrow_schema::ArrowError::SchemaError("column trace_id has the wrong type".into())
            })?;
            Ok((0..ids_of.len())
                .map(|i| {
                    Some(
                        !ids_of.is_null(i)
                            && TraceId::from_slice(ids_of.value(i)).is_ok_and(|t| ids.contains(&t)),
                    )
                })
                .collect::<BooleanArray>())
        });
        builder = builder.with_row_filter(RowFilter::new(vec![Box::new(wanted)]));
    }
    let reader = builder.build().map_err(err)?;
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
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| bad(format!("column {name} is missing")))
    };
    let fsb = |name: &str| {
        col(name)?
            .as_fixed_size_binary_opt()
            .ok_or_else(|| bad(format!("column {name} has the wrong type")))
    };
    let utf8 = |name: &str| {
        col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| bad(format!("column {name} has the wrong type")))
    };
    let binary = |name: &str| {
        col(name)?
            .as_binary_opt::<i32>()
            .ok_or_else(|| bad(format!("column {name} has the wrong type")))
    };
    let wrong = |name: &str| bad(format!("column {name} has the wrong type"));
    let trace = fsb("trace_id")?;
    let span = fsb("span_id")?;
    let parent = fsb("parent_span_id")?;
    let service = utf8("service")?;
    let sname = utf8("name")?;
    let kind = col("kind")?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| wrong("kind"))?;
    let start = col("start_unix_nanos")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| wrong("start_unix_nanos"))?;
    let end = col("end_unix_nanos")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| wrong("end_unix_nanos"))?;
    // Layout v2: the canonical bytes in parts; v1: whole in `canonical`.
    let parts = match b.column_by_name("layout") {
        Some(l) => Some((
            l.as_primitive_opt::<Int32Type>()
                .ok_or_else(|| wrong("layout"))?,
            binary("resource")?,
            binary("scope")?,
            binary("body")?,
        )),
        None => None,
    };
    let whole = match parts {
        Some(_) => None,
        None => Some(binary("canonical")?),
    };
    let log_index = col("log_index")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| wrong("log_index"))?;
    let log_position = col("log_position")?
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| wrong("log_position"))?;
    for i in 0..b.num_rows() {
        let id_err = |e: sentrace_core::IdError| bad(format!("row {i}: {e}"));
        let trace_id = TraceId::from_slice(trace.value(i)).map_err(id_err)?;
        let span_id = SpanId::from_slice(span.value(i)).map_err(id_err)?;
        let parent_span_id = if parent.is_null(i) {
            None
        } else {
            Some(SpanId::from_slice(parent.value(i)).map_err(id_err)?)
        };
        let mut entry = SpanEntry {
            trace_id,
            span_id,
            parent_span_id,
            service: service.value(i).to_string(),
            name: sname.value(i).to_string(),
            kind: kind.value(i),
            start_unix_nanos: start.value(i),
            end_unix_nanos: end.value(i),
            canonical: Bytes::new(),
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
        // `keep` sees every field but the canonical bytes, which are built for kept rows only.
        if !keep(&entry) {
            continue;
        }
        entry.canonical = match (&parts, &whole) {
            (Some((layout, resource, scope, body)), _) => {
                let layout = Layout::from_i32(layout.value(i))
                    .ok_or_else(|| bad(format!("row {i}: unknown span layout")))?;
                let bytes = assemble(
                    resource.value(i),
                    scope.value(i),
                    body.value(i),
                    layout,
                    &entry.trace_id,
                    &entry.span_id,
                    entry.parent_span_id.as_ref(),
                )
                .ok_or_else(|| bad(format!("row {i}: span parts do not assemble")))?;
                Bytes::from(bytes)
            }
            (None, Some(c)) => Bytes::copy_from_slice(c.value(i)),
            (None, None) => return Err(bad("no canonical span column".into())),
        };
        out.push(entry);
    }
    Ok(())
}
