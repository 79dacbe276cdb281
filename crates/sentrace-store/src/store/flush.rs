//! Flushing buffered spans to blocks, and retention.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use sentrace_core::TenantId;
use tokio::sync::oneshot;

use super::{Store, catalog, poisoned};
use crate::block::{BlockInfo, BlockOptions, build_block};
use crate::memtable::MemTable;
use crate::wal::format::{list_segments, segment_path};
use crate::wal::writer::WalMsg;
use crate::{SpanEntry, StoreError};

/// The spans a block is built from, in block order (trace id, start, span id).
pub(super) enum BlockRows {
    /// Entries read back from blocks (compaction).
    Owned(Vec<SpanEntry>),
    /// Buffered entries, left where they are.
    Buffered(Buffered),
}

/// One tenant's buffered spans, as positions in the frozen generations that hold them,
/// sorted into block order off the runtime's workers: sorting moves 8-byte positions
/// instead of whole entries, and no entry is cloned for the block.
pub(super) struct Buffered {
    tenant: TenantId,
    /// The generations that hold the tenant.
    tables: Vec<Arc<MemTable>>,
    /// (generation, index in the tenant's spans of that generation).
    order: Vec<(u32, u32)>,
}

impl Buffered {
    /// The tenant's spans in `frozen`, in generation order until [`Self::sort`].
    fn new(tenant: &TenantId, frozen: &[(u64, Arc<MemTable>)]) -> Self {
        let tables: Vec<Arc<MemTable>> = frozen
            .iter()
            .filter(|(_, t)| t.tenants.get(tenant).is_some_and(|m| !m.spans.is_empty()))
            .map(|(_, t)| t.clone())
            .collect();
        let mut b = Self {
            tenant: tenant.clone(),
            tables,
            order: Vec::new(),
        };
        let lists = b.lists();
        let mut order = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
        for (t, list) in lists.iter().enumerate() {
            // A generation holds far fewer than 2^32 spans (memory bounds it).
            order.extend((0..list.len()).map(|i| (t as u32, i as u32)));
        }
        b.order = order;
        b
    }

    /// Puts the positions in block order; equal keys keep generation order.
    fn sort(&mut self) {
        let mut order = std::mem::take(&mut self.order);
        let lists = self.lists();
        order.sort_unstable_by(|&(ta, ia), &(tb, ib)| {
            let (a, b) = (
                &lists[ta as usize][ia as usize],
                &lists[tb as usize][ib as usize],
            );
            a.trace_id
                .cmp(&b.trace_id)
                .then(a.start_unix_nanos.cmp(&b.start_unix_nanos))
                .then(a.span_id.cmp(&b.span_id))
                .then((ta, ia).cmp(&(tb, ib)))
        });
        self.order = order;
    }

    /// Each generation's spans of the tenant, in the order of `tables`.
    fn lists(&self) -> Vec<&[SpanEntry]> {
        self.tables
            .iter()
            .map(|t| t.tenants.get(&self.tenant).map_or(&[][..], |m| &m.spans))
            .collect()
    }

    /// The spans in block order.
    fn refs(&self) -> Vec<&SpanEntry> {
        let lists = self.lists();
        self.order
            .iter()
            .map(|&(t, i)| &lists[t as usize][i as usize])
            .collect()
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    /// The earliest start and the latest end (Unix nanoseconds), if any span is buffered.
    fn time_range(&self) -> Option<(u64, u64)> {
        let spans = self.lists().into_iter().flatten();
        spans.fold(None, |r, s| {
            let end = s.end_unix_nanos.max(s.start_unix_nanos);
            Some(r.map_or((s.start_unix_nanos, end), |(lo, hi): (u64, u64)| {
                (lo.min(s.start_unix_nanos), hi.max(end))
            }))
        })
    }
}

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Blocks written.
    pub blocks: usize,
    /// Spans moved from memory to blocks.
    pub spans: usize,
    /// Bytes written to the object store.
    pub bytes: u64,
    /// WAL segments deleted because blocks now cover them.
    pub segments_deleted: usize,
}

impl Store {
    /// Encodes `rows` as block `name` of `tenant` under its current data key, with the
    /// block's integrity tag, off the runtime's workers. Sharing a bucket, the tenant's key
    /// file goes up first: no block is stored under keys the other nodes cannot fetch.
    pub(super) async fn encode_block(
        &self,
        tenant: &TenantId,
        name: &str,
        rows: BlockRows,
    ) -> Result<(Bytes, Vec<u8>), StoreError> {
        let inner = &self.inner;
        let dek = inner.keys.current_dek(tenant)?;
        if let Some(c) = self.cluster() {
            c.publish_keys(&inner.keys, tenant).await?;
        }
        let opts = BlockOptions {
            zstd_level: inner.cfg.block_zstd_level,
            ..BlockOptions::new(inner.cfg.block_row_group_rows)
        };
        let (t, n) = (tenant.clone(), name.to_owned());
        let mut rows = rows;
        tokio::task::spawn_blocking(move || {
            let bytes = match rows {
                BlockRows::Owned(ref spans) => build_block(&t, &dek, &n, spans, opts)?,
                BlockRows::Buffered(ref mut b) => {
                    b.sort();
                    build_block(&t, &dek, &n, &b.refs(), opts)?
                }
            };
            // The buffered generations are released here, off the runtime's workers.
            drop(rows);
            let tag = crate::block::mac::seal(&dek, &t, &n, &bytes)?;
            Ok::<_, StoreError>((bytes, tag))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Flushes buffered spans into Parquet blocks now (one block per tenant), then deletes
    /// the WAL segments the blocks cover. Also runs periodically in the background, off the
    /// acknowledgement path.
    pub async fn flush(&self) -> Result<FlushReport, StoreError> {
        let inner = &self.inner;
        let _guard = inner.flush_lock.lock().await;
        let mut report = FlushReport::default();
        let nothing_buffered = inner.state.read().map_err(|_| poisoned())?.buffered_spans() == 0;
        let segments_before = list_segments(&inner.wal_dir)?;
        if nothing_buffered && segments_before.len() <= 1 {
            return Ok(report);
        }
        let started = std::time::Instant::now();
        // 1. Roll the WAL: every older segment is now covered by frozen generations.
        let (reply, rx) = oneshot::channel();
        inner
            .tx
            .send(WalMsg::Roll(reply))
            .map_err(|_| StoreError::Closed)?;
        let first_uncovered = rx.await.map_err(|_| StoreError::Closed)??;
        let frozen = inner.state.read().map_err(|_| poisoned())?.frozen.clone();

        // 2. Each tenant's spans in block order, by reference into the frozen generations.
        let tenants: BTreeSet<TenantId> = frozen
            .iter()
            .flat_map(|(_, table)| table.tenants.keys().cloned())
            .collect();
        // 3. Build and store the blocks.
        let mut new_blocks = Vec::new();
        for tenant in tenants {
            let rows = Buffered::new(&tenant, &frozen);
            let Some((min_start, max_end)) = rows.time_range() else {
                continue;
            };
            let name = BlockInfo::new_name(min_start / 1_000_000, max_end.div_ceil(1_000_000))?;
            let count = rows.len();
            let (bytes, tag) = self
                .encode_block(&tenant, &name, BlockRows::Buffered(rows))
                .await?;
            let path = BlockInfo::object_path(&tenant, &name);
            let len = bytes.len() as u64;
            // The integrity tag first: a block never exists without one.
            let mac_path = crate::block::mac::mac_path(&path);
            inner
                .objects
                .put(&mac_path, PutPayload::from(tag))
                .await
                .map_err(|e| StoreError::ObjectStore {
                    path: mac_path.to_string(),
                    source: e,
                })?;
            inner
                .objects
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| StoreError::ObjectStore {
                    path: path.to_string(),
                    source: e,
                })?;
            let info = BlockInfo::parse(&path)
                .ok_or_else(|| StoreError::Task(format!("block path {path} does not parse")))?;
            report.blocks += 1;
            report.spans += count;
            report.bytes += len;
            new_blocks.push(Arc::new(info));
        }
        // How long this flush took to make its spans visible to other nodes.
        let stored_in = started.elapsed();
        // 4. Persist changed catalogs (before the WAL that also holds them goes away).
        let dirty: Vec<_> = {
            let st = inner.state.read().map_err(|_| poisoned())?;
            st.dirty_catalogs
                .iter()
                .filter_map(|t| st.catalogs.get(t).map(|c| (t.clone(), c.clone())))
                .collect()
        };
        for (tenant, cat) in &dirty {
            catalog::save(&inner.catalog_dir, &inner.keys, tenant, cat)?;
        }
        // 5. Publish blocks and drop the flushed generations in one step for readers.
        {
            let mut st = inner.state.write().map_err(|_| poisoned())?;
            for b in new_blocks {
                let list = st.blocks.entry(b.tenant.clone()).or_default();
                list.push(b);
                list.sort_by(|a, b| a.name.cmp(&b.name));
            }
            st.frozen
                .retain(|(g, _)| !frozen.iter().any(|(f, _)| f == g));
            for (tenant, _) in &dirty {
                st.dirty_catalogs.remove(tenant);
            }
        }
        // 6. Delete the covered WAL segments, once whatever else they carry (sealed
        //    batches' manifests) is durable in its log.
        if let Some(barrier) = self.wal_barrier() {
            barrier.before_wal_drop().await.map_err(|reason| {
                StoreError::Task(format!("WAL barrier: {reason}; WAL segments kept"))
            })?;
        }
        for id in list_segments(&inner.wal_dir)? {
            if id >= first_uncovered {
                continue;
            }
            let p = segment_path(&inner.wal_dir, id);
            let len = std::fs::metadata(&p).map_or(0, |m| m.len());
            std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
            let _ = inner.stats.disk_bytes.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |b| Some(b.saturating_sub(len)),
            );
            report.segments_deleted += 1;
        }
        crate::fsutil::sync_dir(&inner.wal_dir)?;
        tracing::info!(
            blocks = report.blocks,
            spans = report.spans,
            bytes = report.bytes,
            wal_segments_deleted = report.segments_deleted,
            "flushed buffered spans into blocks"
        );
        if report.blocks > 0
            && let Some(c) = self.cluster()
        {
            c.record_flush(stored_in).await;
        }
        Ok(report)
    }

    /// Deletes blocks whose newest span ended more than `retention` before `now`; returns
    /// how many were deleted. Also runs periodically in the background.
    pub async fn enforce_retention(&self, now: SystemTime) -> Result<usize, StoreError> {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let keep_ms = u64::try_from(self.inner.cfg.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms.saturating_sub(keep_ms);
        let expired: Vec<_> = {
            let st = self.inner.state.read().map_err(|_| poisoned())?;
            st.blocks
                .values()
                .flatten()
                .filter(|b| b.is_own() && b.max_end_ms < cutoff)
                .cloned()
                .collect()
        };
        for b in &expired {
            // Record the sealed batches the block held before it goes, so a verifier
            // reports them as erased, not deleted.
            match self
                .read_block(
                    b,
                    |m| (0..m.row_groups.len()).collect(),
                    None,
                    |s| s.seal.is_some(),
                )
                .await
            {
                Ok(rows) => {
                    let mut indices: Vec<u64> = rows
                        .iter()
                        .filter_map(|s| s.seal.as_ref().map(|x| x.index))
                        .collect();
                    indices.sort_unstable();
                    indices.dedup();
                    if !indices.is_empty() {
                        crate::erasure::write(
                            &self.inner.data_dir,
                            &self.inner.keys,
                            &b.tenant,
                            &b.name,
                            indices,
                            "retention",
                        )?;
                    }
                }
                Err(e) => {
                    tracing::warn!(block = %b.path, error = %e, "expired block unreadable; deleting it without an erasure record")
                }
            }
            self.delete_object(&b.path).await?;
            let mut st = self.inner.state.write().map_err(|_| poisoned())?;
            if let Some(list) = st.blocks.get_mut(&b.tenant) {
                list.retain(|x| !Arc::ptr_eq(x, b));
            }
        }
        if !expired.is_empty() {
            tracing::info!(
                blocks = expired.len(),
                retention_secs = self.inner.cfg.retention.as_secs(),
                "deleted blocks past retention"
            );
        }
        Ok(expired.len())
    }
}
