//! Building one encrypted block.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, FixedSizeBinaryBuilder, Int32Builder, StringBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::bloom_filter::Sbbf;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sentrace_core::TenantId;

use super::index::BlockIndex;
use super::layout;
use super::{BLOOM_KEY, COLUMNS, INDEX_KEY, SUMMARY_KEY, aad_prefix, block_key, key_metadata};
use crate::keys::Dek;
use crate::{SpanEntry, StoreError};

/// Bloom filter false-positive rate per row group.
pub(super) const BLOOM_FPP: f64 = 0.01;

pub(crate) fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(COLUMNS[0], DataType::FixedSizeBinary(16), false),
        Field::new(COLUMNS[1], DataType::FixedSizeBinary(8), false),
        Field::new(COLUMNS[2], DataType::FixedSizeBinary(8), true),
        Field::new(COLUMNS[3], DataType::Utf8, false),
        Field::new(COLUMNS[4], DataType::Utf8, false),
        Field::new(COLUMNS[5], DataType::Int32, false),
        Field::new(COLUMNS[6], DataType::UInt64, false),
        Field::new(COLUMNS[7], DataType::UInt64, false),
        Field::new(COLUMNS[8], DataType::UInt64, false),
        Field::new(COLUMNS[9], DataType::Int32, false),
        Field::new(COLUMNS[10], DataType::Binary, false),
        Field::new(COLUMNS[11], DataType::Binary, false),
        Field::new(COLUMNS[12], DataType::Binary, false),
        Field::new(COLUMNS[13], DataType::UInt64, true),
        Field::new(COLUMNS[14], DataType::UInt32, true),
    ]))
}

/// How blocks are encoded (chosen by measurement: see `BENCHMARKS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockOptions {
    /// Rows per row group (the unit of pruning and of reading).
    pub row_group_rows: usize,
    /// zstd level of every column.
    pub zstd_level: i32,
    /// Target size of a data page before compression.
    pub data_page_bytes: usize,
    /// Split canonical spans into resource, scope and body ([`super::layout`]); when false
    /// every row keeps its canonical bytes whole in `body`.
    pub split: bool,
    /// Write the time and log-position columns with Parquet's delta encoding instead of a
    /// dictionary (measured: 2.4% fewer bytes a span and a quarter less write time on the
    /// load generator's spans; docs/storage.md).
    pub delta_ints: bool,
}

impl BlockOptions {
    /// The default encoding with `row_group_rows` rows per row group.
    pub fn new(row_group_rows: usize) -> Self {
        Self {
            row_group_rows,
            zstd_level: 1,
            data_page_bytes: 1 << 20,
            split: true,
            delta_ints: true,
        }
    }
}

/// Summary kept in the encrypted footer.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Summary {
    pub tenant: String,
    pub dek_id: u32,
    pub rows: usize,
}

fn pq_err(block: &str) -> impl Fn(parquet::errors::ParquetError) -> StoreError + '_ {
    move |e| StoreError::Parquet {
        block: block.to_string(),
        reason: e.to_string(),
    }
}

fn batch<S: Borrow<SpanEntry>>(
    spans: &[S],
    block: &str,
    split: bool,
) -> Result<RecordBatch, StoreError> {
    let n = spans.len();
    let arrow_err = |e: arrow_schema::ArrowError| StoreError::Parquet {
        block: block.to_string(),
        reason: e.to_string(),
    };
    let mut trace = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut span = FixedSizeBinaryBuilder::with_capacity(n, 8);
    let mut parent = FixedSizeBinaryBuilder::with_capacity(n, 8);
    let mut service = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut kind = Int32Builder::with_capacity(n);
    let mut start = UInt64Builder::with_capacity(n);
    let mut end = UInt64Builder::with_capacity(n);
    let mut dur = UInt64Builder::with_capacity(n);
    let mut layout = Int32Builder::with_capacity(n);
    let mut resource = BinaryBuilder::new();
    let mut scope = BinaryBuilder::new();
    let mut body =
        BinaryBuilder::with_capacity(n, spans.iter().map(|s| s.borrow().canonical.len()).sum());
    let mut log_index = UInt64Builder::with_capacity(n);
    let mut log_position = UInt32Builder::with_capacity(n);
    for s in spans {
        let s = s.borrow();
        trace
            .append_value(s.trace_id.as_bytes())
            .map_err(arrow_err)?;
        span.append_value(s.span_id.as_bytes()).map_err(arrow_err)?;
        match &s.parent_span_id {
            Some(p) => parent.append_value(p.as_bytes()).map_err(arrow_err)?,
            None => parent.append_null(),
        }
        service.append_value(&s.service);
        name.append_value(&s.name);
        kind.append_value(s.kind);
        start.append_value(s.start_unix_nanos);
        end.append_value(s.end_unix_nanos);
        dur.append_value(s.duration_nanos());
        let parts = if split {
            layout::split(
                &s.canonical,
                &s.trace_id,
                &s.span_id,
                s.parent_span_id.as_ref(),
            )
        } else {
            layout::Parts {
                layout: layout::Layout::Whole,
                resource: Vec::new(),
                scope: Vec::new(),
                body: &s.canonical,
            }
        };
        layout.append_value(parts.layout as i32);
        resource.append_value(&parts.resource);
        scope.append_value(&parts.scope);
        body.append_value(parts.body);
        log_index.append_option(s.seal.as_ref().map(|x| x.index));
        log_position.append_option(s.seal.as_ref().map(|x| x.position));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(trace.finish()),
        Arc::new(span.finish()),
        Arc::new(parent.finish()),
        Arc::new(service.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(dur.finish()),
        Arc::new(layout.finish()),
        Arc::new(resource.finish()),
        Arc::new(scope.finish()),
        Arc::new(body.finish()),
        Arc::new(log_index.finish()),
        Arc::new(log_position.finish()),
    ];
    RecordBatch::try_new(schema(), cols).map_err(arrow_err)
}

/// Integer columns whose neighbouring values are close (times within a trace, positions
/// within a batch).
pub(super) const DELTA_COLUMNS: [&str; 5] = [
    "start_unix_nanos",
    "end_unix_nanos",
    "duration_nanos",
    "log_index",
    "log_position",
];

/// Encodes `spans` (sorted by trace id, then start; entries or references to them) as an
/// encrypted Parquet file.
pub(crate) fn build_block<S: Borrow<SpanEntry>>(
    tenant: &TenantId,
    dek: &Dek,
    name: &str,
    spans: &[S],
    opts: BlockOptions,
) -> Result<Bytes, StoreError> {
    let row_group_rows = opts.row_group_rows.max(1);
    let err = pq_err(name);
    let footer = block_key(dek, tenant, name, "footer")?;
    let mut enc = FileEncryptionProperties::builder(footer.expose().to_vec())
        .with_footer_key_metadata(key_metadata(dek.id, "footer"))
        .with_aad_prefix(aad_prefix(tenant, name));
    for col in COLUMNS {
        let k = block_key(dek, tenant, name, col)?;
        enc = enc.with_column_key_and_metadata(col, k.expose().to_vec(), key_metadata(dek.id, col));
    }
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(&err)?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_data_page_size_limit(opts.data_page_bytes)
        .set_dictionary_page_size_limit(opts.data_page_bytes)
        .with_file_encryption_properties(enc.build().map_err(&err)?);
    // Random ids and span bodies: a dictionary never pays (building one costs a hash per
    // value before it gives up), nor do statistics nobody prunes on.
    for col in ["span_id", "parent_span_id", "body", "resource", "scope"] {
        let path = ColumnPath::from(col);
        props = props.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        if !matches!(col, "resource" | "scope") {
            props = props.set_column_dictionary_enabled(path, false);
        }
    }
    if opts.delta_ints {
        for col in DELTA_COLUMNS {
            let path = ColumnPath::from(col);
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
    }
    let props = props.build();
    let mut writer =
        ArrowWriter::try_new(Vec::with_capacity(spans.len() * 256), schema(), Some(props))
            .map_err(&err)?;
    let mut blooms = Vec::new();
    let mut index = BlockIndex::builder();
    for chunk in spans.chunks(row_group_rows) {
        index.add(chunk);
        let distinct: HashSet<_> = chunk.iter().map(|s| s.borrow().trace_id).collect();
        let mut sbbf = Sbbf::new_with_ndv_fpp(distinct.len() as u64, BLOOM_FPP).map_err(&err)?;
        for t in &distinct {
            sbbf.insert(t.as_bytes().as_slice());
        }
        let mut bits = Vec::new();
        sbbf.write_bitset(&mut bits).map_err(&err)?;
        blooms.push(base64::engine::general_purpose::STANDARD.encode(bits));
        writer
            .write(&batch(chunk, name, opts.split)?)
            .map_err(&err)?;
        writer.flush().map_err(&err)?;
    }
    let bloom_json = serde_json::to_string(&blooms).map_err(|e| StoreError::Parquet {
        block: name.to_string(),
        reason: e.to_string(),
    })?;
    writer.append_key_value_metadata(KeyValue::new(BLOOM_KEY.to_string(), bloom_json));
    writer.append_key_value_metadata(KeyValue::new(INDEX_KEY.to_string(), index.finish(name)?));
    let summary = Summary {
        tenant: tenant.as_str().to_string(),
        dek_id: dek.id,
        rows: spans.len(),
    };
    let summary_json = serde_json::to_string(&summary).map_err(|e| StoreError::Parquet {
        block: name.to_string(),
        reason: e.to_string(),
    })?;
    writer.append_key_value_metadata(KeyValue::new(SUMMARY_KEY.to_string(), summary_json));
    let bytes = writer.into_inner().map_err(&err)?;
    Ok(Bytes::from(bytes))
}
