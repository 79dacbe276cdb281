//! Reads: one trace, typed search, services and operations.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use sentrace_core::{TenantId, TraceId};

use super::{Store, poisoned};
use crate::block::{BlockInfo, BlockMeta, load_meta, read_rows};
use crate::search::limit_newest;
use crate::{SpanEntry, SpanFilter, StoreError};

/// Counters of block reads, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Block files fetched from the object store.
    pub blocks_fetched: u64,
    /// Row groups decoded.
    pub row_groups_read: u64,
}

impl Store {
    /// Counters of block reads since open.
    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            blocks_fetched: self.inner.blocks_fetched.load(Ordering::Relaxed),
            row_groups_read: self.inner.row_groups_read.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn fetch(&self, b: &BlockInfo) -> Result<Bytes, StoreError> {
        let oerr = |e| StoreError::ObjectStore {
            path: b.path.to_string(),
            source: e,
        };
        let res = self.inner.objects.get(&b.path).await.map_err(oerr)?;
        let bytes = res.bytes().await.map_err(oerr)?;
        self.inner.blocks_fetched.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }

    /// The block's decrypted footer (cached), and the file bytes if they had to be fetched.
    pub(crate) async fn meta(
        &self,
        b: &Arc<BlockInfo>,
    ) -> Result<(Arc<BlockMeta>, Option<Bytes>), StoreError> {
        if let Some(m) = b.meta.get() {
            return Ok((m.clone(), None));
        }
        let bytes = self.fetch(b).await?;
        let (keys, tenant, name, bb) = (
            self.inner.keys.clone(),
            b.tenant.clone(),
            b.name.clone(),
            bytes.clone(),
        );
        let meta = tokio::task::spawn_blocking(move || load_meta(&bb, &keys, &tenant, &name))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let meta = Arc::new(meta);
        let _ = b.meta.set(meta.clone());
        Ok((meta, Some(bytes)))
    }

    pub(crate) async fn read_block(
        &self,
        b: &Arc<BlockInfo>,
        pick: impl Fn(&BlockMeta) -> Vec<usize>,
        keep: impl Fn(&SpanEntry) -> bool + Send + 'static,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        let (meta, bytes) = self.meta(b).await?;
        let groups = pick(&meta);
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = match bytes {
            Some(b) => b,
            None => self.fetch(b).await?,
        };
        self.inner
            .row_groups_read
            .fetch_add(groups.len() as u64, Ordering::Relaxed);
        let name = b.name.clone();
        tokio::task::spawn_blocking(move || read_rows(bytes, &meta, &name, groups, &keep))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn snapshot(
        &self,
        tenant: &TenantId,
        mem: impl Fn(&crate::memtable::MemTable, &mut Vec<SpanEntry>),
    ) -> Result<(Vec<SpanEntry>, Vec<Arc<BlockInfo>>), StoreError> {
        let st = self.inner.state.read().map_err(|_| poisoned())?;
        let mut out = Vec::new();
        for t in st.tables() {
            mem(t, &mut out);
        }
        Ok((out, st.blocks.get(tenant).cloned().unwrap_or_default()))
    }

    /// All spans of one trace, from memory (recent, WAL-only spans) and blocks (pruned by
    /// trace-id statistics and bloom filters), ordered by start time, duplicates removed.
    pub async fn trace(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        let (mut spans, blocks) =
            self.snapshot(tenant, |t, out| t.trace(tenant, &trace_id, out))?;
        for b in &blocks {
            let found = self
                .read_block(
                    b,
                    |m| m.row_groups_for_trace(&trace_id),
                    move |s| s.trace_id == trace_id,
                )
                .await?;
            spans.extend(found);
        }
        spans.sort_by(|a, b| {
            a.start_unix_nanos
                .cmp(&b.start_unix_nanos)
                .then(a.span_id.cmp(&b.span_id))
        });
        let mut seen = HashSet::new();
        spans.retain(|s| seen.insert(s.span_id));
        Ok(spans)
    }

    /// Spans matching `f`, newest first, limited to `f.limit_traces` distinct traces (those
    /// whose newest matching span is newest). Blocks are pruned by the time range in their
    /// names and read newest first; row groups are pruned by column statistics. Reading
    /// stops once no older block can change the set of traces, so for a trace the answer
    /// lists the matching spans found up to that point (all of them for spans still in
    /// memory): use [`Store::trace`] to get complete traces.
    pub async fn search(
        &self,
        tenant: &TenantId,
        f: &SpanFilter,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        if f.limit_traces == 0 {
            return Ok(Vec::new());
        }
        let (mut spans, mut blocks) = self.snapshot(tenant, |t, out| t.search(tenant, f, out))?;
        blocks.retain(|b| {
            f.start_range_overlaps(
                b.min_start_ms.saturating_mul(1_000_000),
                b.max_end_ms.saturating_mul(1_000_000),
            )
        });
        blocks.sort_by_key(|b| std::cmp::Reverse(b.max_end_ms));
        for b in &blocks {
            if let Some(kth) = kth_newest_trace(&spans, f.limit_traces)
                && kth > b.max_end_ms.saturating_mul(1_000_000)
            {
                break;
            }
            let filter = f.clone();
            let found = self
                .read_block(
                    b,
                    |m| m.row_groups_for_filter(f),
                    move |s| filter.matches(s),
                )
                .await?;
            spans.extend(found);
        }
        Ok(limit_newest(spans, f.limit_traces))
    }

    /// Distinct service names of the tenant, sorted.
    pub async fn services(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let st = self.inner.state.read().map_err(|_| poisoned())?;
        Ok(st
            .catalogs
            .get(tenant)
            .map(|c| c.services.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Distinct (span name, kind) of one service, sorted.
    pub async fn operations(
        &self,
        tenant: &TenantId,
        service: &str,
    ) -> Result<Vec<(String, i32)>, StoreError> {
        let st = self.inner.state.read().map_err(|_| poisoned())?;
        Ok(st
            .catalogs
            .get(tenant)
            .and_then(|c| c.services.get(service))
            .map(|ops| ops.iter().cloned().collect())
            .unwrap_or_default())
    }
}

/// The newest start of the `k`-th trace when traces are ordered by their newest span start
/// (descending); `None` if fewer than `k` traces are present.
fn kth_newest_trace(spans: &[SpanEntry], k: usize) -> Option<u64> {
    let mut newest: std::collections::HashMap<TraceId, u64> = std::collections::HashMap::new();
    for s in spans {
        let e = newest.entry(s.trace_id).or_insert(s.start_unix_nanos);
        *e = (*e).max(s.start_unix_nanos);
    }
    if newest.len() < k {
        return None;
    }
    let mut starts: Vec<u64> = newest.into_values().collect();
    let idx = k.checked_sub(1)?;
    let (_, kth, _) = starts.select_nth_unstable_by(idx, |a, b| b.cmp(a));
    Some(*kth)
}
