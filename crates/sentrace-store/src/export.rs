//! Decrypted export of one tenant's stored spans to plain Parquet, for other engines
//! (DuckDB, DataFusion, Spark) to read: `sentrace export`.
//!
//! [`export_tenant`] reads the tenant's blocks (each checked against its integrity tag
//! before a row is used, as `verify` does) and the spans still in the WAL, keeps those that
//! start in the time range, and hands them to a [`PlainWriter`] in batches. A span found
//! both in a block and in the WAL (a crash between a flush and the WAL cut) is exported
//! once. Spans are exported as stored: minimized at ingest (masked, hashed or tokenized),
//! never the originals.
//!
//! The plain schema ([`PLAIN_COLUMNS`], documented in `docs/storage.md`) is flat and
//! self-describing: ids in lowercase hex, times as UTC nanosecond timestamps, attributes as
//! `MAP<VARCHAR, VARCHAR>` (values in their text form, see
//! [`sentrace_core::otlp::value_to_string`]), events and links as JSON text, and the span's
//! place in the transparency log.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Int64Builder, MapBuilder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sentrace_core::otlp::value_to_string;
use sentrace_core::proto::common::v1::KeyValue;
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{SpanId, TenantId, TraceId};
use serde_json::json;

use crate::block::BlockInfo;
use crate::wal::format;
use crate::wal::replay::{Outcome, RecoveryReport, replay_segment};
use crate::{KeyRing, SpanEntry, StoreError};

/// Column names of the plain export, in schema order.
pub const PLAIN_COLUMNS: [&str; 20] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "name",
    "kind",
    "start_time",
    "end_time",
    "duration_ns",
    "status_code",
    "status_message",
    "attributes",
    "resource_attributes",
    "scope_name",
    "scope_version",
    "events",
    "links",
    "trace_state",
    "log_index",
    "log_position",
];

/// Spans per Parquet row group of an export file.
pub const ROWS_PER_GROUP: usize = 65_536;
/// Spans per export file; a larger export is split into `part-NNNNN.parquet` files.
pub const ROWS_PER_FILE: usize = 1_048_576;

/// Which spans to export: those of `tenant` that start in `[since, until)`.
#[derive(Clone, Debug)]
pub struct ExportRange {
    /// The tenant.
    pub tenant: TenantId,
    /// Earliest span start, Unix nanoseconds (inclusive).
    pub since_unix_nanos: u64,
    /// Latest span start, Unix nanoseconds (exclusive).
    pub until_unix_nanos: u64,
}

impl ExportRange {
    fn contains(&self, s: &SpanEntry) -> bool {
        (self.since_unix_nanos..self.until_unix_nanos).contains(&s.start_unix_nanos)
    }

    /// Whether a block covering `[min_start_ms, max_end_ms]` may hold spans of the range.
    fn overlaps_block(&self, b: &BlockInfo) -> bool {
        let lo = b.min_start_ms.saturating_mul(1_000_000);
        let hi = b.max_end_ms.saturating_add(1).saturating_mul(1_000_000);
        lo < self.until_unix_nanos && hi > self.since_unix_nanos
    }
}

/// What an export read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Spans written.
    pub spans: u64,
    /// Blocks read (those whose time range overlaps the export's).
    pub blocks_read: u64,
    /// Blocks skipped by their time range without a read.
    pub blocks_skipped: u64,
    /// Spans taken from the WAL (not yet in a block).
    pub wal_spans: u64,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Exports the spans of `range` from `data_dir`'s WAL and the blocks in `objects` (the
/// local `blocks/` or the bucket of `[store] url`) into `writer`. A block that cannot be
/// read, fails its integrity tag or whose key is gone stops the export with an error
/// naming it: an export is complete or it is not made.
pub async fn export_tenant(
    data_dir: &Path,
    keys: Arc<KeyRing>,
    objects: &dyn ObjectStore,
    range: &ExportRange,
    writer: &mut PlainWriter,
) -> Result<ExportReport, StoreError> {
    let mut report = ExportReport::default();
    // The WAL first: it is bounded (segments are cut after each flush), and a span also
    // found in a block is then written from the block and dropped from here.
    let mut wal: HashMap<(TraceId, SpanId), SpanEntry> = HashMap::new();
    let wal_dir = data_dir.join("wal");
    if wal_dir.is_dir() {
        let ids = format::list_segments(&wal_dir)?;
        for (i, &id) in ids.iter().enumerate() {
            let path = format::segment_path(&wal_dir, id);
            let buf = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
            let mut out = Vec::new();
            let mut rec = RecoveryReport::default();
            let outcome = replay_segment(&buf, id, i + 1 == ids.len(), &keys, &mut out, &mut rec)?;
            if let Outcome::Corrupt { offset, reason } = outcome {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason: format!("{reason}; run `sentrace verify`"),
                });
            }
            for (tenant, spans) in out {
                if tenant == range.tenant {
                    for s in spans.into_iter().filter(|s| range.contains(s)) {
                        wal.insert((s.trace_id, s.span_id), s);
                    }
                }
            }
        }
    }

    let prefix = ObjectPath::from(range.tenant.as_str());
    let mut blocks = Vec::new();
    let mut listing = objects.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| StoreError::ObjectStore {
            path: format!("{}/", range.tenant.as_str()),
            source: e,
        })?;
        if let Some(b) = BlockInfo::parse(&meta.location) {
            blocks.push(b);
        }
    }
    drop(listing);
    blocks.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
    for b in blocks {
        if !range.overlaps_block(&b) {
            report.blocks_skipped += 1;
            continue;
        }
        let fetch = |path: ObjectPath| async move {
            match objects.get(&path).await {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            }
        };
        let bytes: Bytes = fetch(b.path.clone())
            .await
            .map_err(|e| StoreError::ObjectStore {
                path: format!("blocks/{}", b.path),
                source: e,
            })?;
        let sidecar = fetch(crate::block::mac::mac_path(&b.path)).await.ok();
        let rows = crate::scan::read_block_as(&keys, &b.tenant, &b.name, &bytes, sidecar).await??;
        report.blocks_read += 1;
        let rows: Vec<SpanEntry> = rows
            .into_iter()
            .filter(|s| range.contains(s))
            .inspect(|s| {
                wal.remove(&(s.trace_id, s.span_id));
            })
            .collect();
        writer.write(&rows)?;
    }
    let mut rest: Vec<SpanEntry> = wal.into_values().collect();
    rest.sort_by_key(|s| (s.trace_id, s.start_unix_nanos));
    report.wal_spans = rest.len() as u64;
    writer.write(&rest)?;
    report.spans = writer.rows_written();
    Ok(report)
}

/// A change made to each decoded span before it is written (the CLI opens the
/// sensitive-value envelopes with it, which this crate cannot: the classes live in the
/// query crate).
pub type SpanTransform = Box<dyn FnMut(&mut ResourceSpans) + Send>;

/// Writes spans as plain Parquet files `part-NNNNN.parquet` (zstd) into a directory,
/// created 0700 with files 0600: an export is decrypted data.
pub struct PlainWriter {
    dir: PathBuf,
    prefix: String,
    transform: Option<SpanTransform>,
    pending: Vec<SpanEntry>,
    current: Option<(PathBuf, ArrowWriter<File>, usize)>,
    files: Vec<PathBuf>,
    rows: u64,
}

impl std::fmt::Debug for PlainWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainWriter")
            .field("dir", &self.dir)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl PlainWriter {
    /// A writer into `dir`, naming its files `<prefix>part-NNNNN.parquet` (a prefix such as
    /// `.partial-` lets the caller publish them with [`PlainWriter::publish`] only once
    /// the export is recorded).
    pub fn new(dir: &Path, prefix: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_owned(),
            transform: None,
            pending: Vec::new(),
            current: None,
            files: Vec::new(),
            rows: 0,
        }
    }

    /// Applies `t` to every span before it is written.
    pub fn with_transform(mut self, t: SpanTransform) -> Self {
        self.transform = Some(t);
        self
    }

    /// Spans written so far (including those still buffered).
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Adds spans; full row groups are encoded at once.
    pub fn write(&mut self, spans: &[SpanEntry]) -> Result<(), StoreError> {
        self.rows += spans.len() as u64;
        self.pending.extend_from_slice(spans);
        while self.pending.len() >= ROWS_PER_GROUP {
            let rest = self.pending.split_off(ROWS_PER_GROUP);
            let group = std::mem::replace(&mut self.pending, rest);
            self.write_group(&group)?;
        }
        Ok(())
    }

    fn write_group(&mut self, spans: &[SpanEntry]) -> Result<(), StoreError> {
        let batch = to_batch(spans, self.transform.as_mut())?;
        if self.current.is_none() {
            let path = self.dir.join(format!(
                "{}part-{:05}.parquet",
                self.prefix,
                self.files.len()
            ));
            let file = create_private(&path)?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
                .build();
            let w = ArrowWriter::try_new(file, batch.schema(), Some(props))
                .map_err(|e| parquet_err(&path, e))?;
            self.files.push(path.clone());
            self.current = Some((path, w, 0));
        }
        if let Some((path, w, n)) = self.current.as_mut() {
            w.write(&batch).map_err(|e| parquet_err(path, e))?;
            *n += spans.len();
            if *n >= ROWS_PER_FILE {
                self.close_file()?;
            }
        }
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), StoreError> {
        if let Some((path, w, _)) = self.current.take() {
            let file = w.into_inner().map_err(|e| parquet_err(&path, e))?;
            file.sync_all().map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(())
    }

    /// Encodes what is buffered and closes the last file. An export of no span writes
    /// one file with the schema and no rows, so readers still find the columns.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, StoreError> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() || self.files.is_empty() {
            self.write_group(&rest)?;
        }
        self.close_file()?;
        Ok(self.files)
    }

    /// Renames finished files from `prefix` names to their final `part-NNNNN.parquet`
    /// names and syncs the directory.
    pub fn publish(
        dir: &Path,
        prefix: &str,
        files: &[PathBuf],
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(prefix))
                .ok_or_else(|| {
                    StoreError::Task(format!("{} is not an export file", f.display()))
                })?;
            let to = dir.join(name);
            std::fs::rename(f, &to).map_err(|e| StoreError::io(&to, e))?;
            out.push(to);
        }
        crate::fsutil::sync_dir(dir)?;
        Ok(out)
    }
}

fn create_private(path: &Path) -> Result<File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io(path, e))
}

fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> StoreError {
    StoreError::Parquet {
        block: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

fn attrs_json(attrs: &[KeyValue]) -> serde_json::Map<String, serde_json::Value> {
    attrs
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().map(value_to_string).unwrap_or_default();
            (kv.key.clone(), serde_json::Value::String(v))
        })
        .collect()
}

fn append_map(
    b: &mut MapBuilder<StringBuilder, StringBuilder>,
    attrs: &[KeyValue],
) -> Result<(), StoreError> {
    for kv in attrs {
        b.keys().append_value(&kv.key);
        b.values()
            .append_value(kv.value.as_ref().map(value_to_string).unwrap_or_default());
    }
    b.append(true)
        .map_err(|e| StoreError::Task(format!("building the attribute map: {e}")))
}

/// Builds one record batch of the plain schema from stored spans.
fn to_batch(
    spans: &[SpanEntry],
    mut transform: Option<&mut SpanTransform>,
) -> Result<RecordBatch, StoreError> {
    let n = spans.len();
    let mut trace_id = StringBuilder::with_capacity(n, n * 32);
    let mut span_id = StringBuilder::with_capacity(n, n * 16);
    let mut parent = StringBuilder::with_capacity(n, n * 16);
    let mut service = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut duration = Int64Builder::with_capacity(n);
    let mut status_code = StringBuilder::new();
    let mut status_message = StringBuilder::new();
    let mut attributes = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut resource = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut scope_name = StringBuilder::new();
    let mut scope_version = StringBuilder::new();
    let mut events = StringBuilder::new();
    let mut links = StringBuilder::new();
    let mut trace_state = StringBuilder::new();
    let mut log_index = UInt64Builder::with_capacity(n);
    let mut log_position = UInt32Builder::with_capacity(n);
    for s in spans {
        let mut rs =
            sentrace_core::canonical::decode(&s.canonical).map_err(|e| StoreError::Corrupt {
                path: PathBuf::from(format!("span {}/{}", s.trace_id, s.span_id)),
                offset: 0,
                reason: format!("stored span does not decode: {e}"),
            })?;
        if let Some(t) = transform.as_mut() {
            t(&mut rs);
        }
        let ss = &rs.scope_spans[0];
        let span = &ss.spans[0];
        trace_id.append_value(s.trace_id.to_string());
        span_id.append_value(s.span_id.to_string());
        match s.parent_span_id {
            Some(p) => parent.append_value(p.to_string()),
            None => parent.append_null(),
        }
        service.append_value(&s.service);
        name.append_value(&s.name);
        kind.append_value(kind_name(s.kind));
        start.append_value(i64::try_from(s.start_unix_nanos).unwrap_or(i64::MAX));
        end.append_value(i64::try_from(s.end_unix_nanos).unwrap_or(i64::MAX));
        duration.append_value(
            i64::try_from(s.end_unix_nanos.saturating_sub(s.start_unix_nanos)).unwrap_or(i64::MAX),
        );
        let status = span.status.as_ref();
        status_code.append_value(status_name(status.map_or(0, |st| st.code)));
        match status
            .map(|st| st.message.as_str())
            .filter(|m| !m.is_empty())
        {
            Some(m) => status_message.append_value(m),
            None => status_message.append_null(),
        }
        append_map(&mut attributes, &span.attributes)?;
        append_map(
            &mut resource,
            rs.resource.as_ref().map_or(&[][..], |r| &r.attributes),
        )?;
        match &ss.scope {
            Some(sc) => {
                scope_name.append_value(&sc.name);
                scope_version.append_value(&sc.version);
            }
            None => {
                scope_name.append_null();
                scope_version.append_null();
            }
        }
        let ev: Vec<serde_json::Value> = span
            .events
            .iter()
            .map(|e| {
                json!({
                    "time_unix_nano": e.time_unix_nano,
                    "name": e.name,
                    "attributes": attrs_json(&e.attributes),
                })
            })
            .collect();
        events.append_value(serde_json::Value::Array(ev).to_string());
        let ln: Vec<serde_json::Value> = span
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": hex::encode(&l.trace_id),
                    "span_id": hex::encode(&l.span_id),
                    "attributes": attrs_json(&l.attributes),
                })
            })
            .collect();
        links.append_value(serde_json::Value::Array(ln).to_string());
        if span.trace_state.is_empty() {
            trace_state.append_null();
        } else {
            trace_state.append_value(&span.trace_state);
        }
        match &s.seal {
            Some(seal) => {
                log_index.append_value(seal.index);
                log_position.append_value(seal.position);
            }
            None => {
                log_index.append_null();
                log_position.append_null();
            }
        }
    }
    let columns: [ArrayRef; 20] = [
        Arc::new(trace_id.finish()),
        Arc::new(span_id.finish()),
        Arc::new(parent.finish()),
        Arc::new(service.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(duration.finish()),
        Arc::new(status_code.finish()),
        Arc::new(status_message.finish()),
        Arc::new(attributes.finish()),
        Arc::new(resource.finish()),
        Arc::new(scope_name.finish()),
        Arc::new(scope_version.finish()),
        Arc::new(events.finish()),
        Arc::new(links.finish()),
        Arc::new(trace_state.finish()),
        Arc::new(log_index.finish()),
        Arc::new(log_position.finish()),
    ];
    RecordBatch::try_from_iter(PLAIN_COLUMNS.iter().copied().zip(columns))
        .map_err(|e| StoreError::Task(format!("building the export batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use sentrace_core::proto::common::v1::{AnyValue, InstrumentationScope, any_value};
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ScopeSpans, Span, span};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn entry(i: u8, start: u64) -> SpanEntry {
        let span = Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            name: format!("op-{i}"),
            kind: 2,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 1_000,
            attributes: vec![kv("http.route", "/cart"), kv("user.email", "<masked>")],
            events: vec![span::Event {
                time_unix_nano: start + 10,
                name: "retry".into(),
                attributes: vec![kv("attempt", "2")],
                dropped_attributes_count: 0,
            }],
            ..Default::default()
        };
        let rs = ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
                ..Default::default()
            }),
            scope_spans: vec![],
            schema_url: String::new(),
        };
        let ss = ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "lib".into(),
                version: "1.0".into(),
                ..Default::default()
            }),
            spans: vec![],
            schema_url: String::new(),
        };
        SpanEntry {
            trace_id: TraceId::from_bytes([i; 16]).unwrap(),
            span_id: SpanId::from_bytes([i; 8]).unwrap(),
            parent_span_id: None,
            service: "shop".into(),
            name: format!("op-{i}"),
            kind: 2,
            start_unix_nanos: start,
            end_unix_nanos: start + 1_000,
            canonical: Bytes::from(sentrace_core::canonical::encode(&rs, &ss, &span)),
            seal: None,
        }
    }

    #[test]
    fn the_plain_file_has_the_documented_columns_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PlainWriter::new(dir.path(), ".partial-");
        w.write(&[entry(1, 10), entry(2, 20)]).unwrap();
        let files = w.finish().unwrap();
        let files = PlainWriter::publish(dir.path(), ".partial-", &files).unwrap();
        assert_eq!(files, [dir.path().join("part-00000.parquet")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = r.collect::<Result<_, _>>().unwrap();
        let b = &batches[0];
        let names: Vec<&str> = b
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, PLAIN_COLUMNS);
        assert_eq!(b.num_rows(), 2);
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let ids = col("trace_id");
        let ids = ids
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(ids.value(0), "01".repeat(16));
        let kinds = col("kind");
        let kinds = kinds
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(kinds.value(1), "server");
        let events = col("events");
        let events = events
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        let ev: serde_json::Value = serde_json::from_str(events.value(0)).unwrap();
        assert_eq!(ev[0]["name"], "retry");
        assert_eq!(ev[0]["attributes"]["attempt"], "2");
        let attrs = col("attributes");
        let attrs = attrs
            .as_any()
            .downcast_ref::<arrow_array::MapArray>()
            .unwrap();
        let first = attrs.value(0);
        let keys = first
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(keys.value(1), "user.email");
    }

    #[test]
    fn an_empty_export_still_has_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let files = PlainWriter::new(dir.path(), "").finish().unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap()).unwrap();
        assert_eq!(r.schema().fields().len(), PLAIN_COLUMNS.len());
    }

    #[test]
    fn the_range_prunes_blocks_by_their_names() {
        let range = ExportRange {
            tenant: TenantId::new("t").unwrap(),
            since_unix_nanos: 5_000_000,
            until_unix_nanos: 10_000_000,
        };
        let block = |lo: u64, hi: u64| {
            BlockInfo::parse(&ObjectPath::from(format!(
                "t/{lo:013}-{hi:013}-0123456789abcdef.parquet"
            )))
            .unwrap()
        };
        assert!(range.overlaps_block(&block(1, 5)));
        assert!(range.overlaps_block(&block(9, 20)));
        assert!(!range.overlaps_block(&block(1, 3)));
        assert!(!range.overlaps_block(&block(10, 20)));
        assert!(range.contains(&entry(1, 5_000_000)));
        assert!(!range.contains(&entry(1, 10_000_000)));
    }
}
