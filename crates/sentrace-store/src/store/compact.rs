//! Compaction: a node merges its own small blocks of a tenant into one block.
//!
//! Every span keeps its seal (log index and position) in the output, so the spans stay the
//! inclusion evidence of their batches and `sentrace verify` still passes. Each input is
//! checked whole against its integrity tag first; a block that fails is left alone (the
//! verifier reports it). The output's tag and then the output are stored before any input
//! is deleted: a crash in between leaves the same spans in two blocks, which readers and
//! the verifier count once (same bytes at the same log position).

use std::sync::Arc;

use object_store::{ObjectStoreExt, PutPayload};
use sentrace_core::TenantId;

use super::{Store, poisoned};
use crate::block::{BlockInfo, Sparse, read_rows};
use crate::{SpanEntry, StoreError};

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Blocks merged (and deleted).
    pub inputs: usize,
    /// Blocks written.
    pub outputs: usize,
    /// Spans moved.
    pub spans: usize,
}

impl Store {
    /// Merges this node's small blocks (fewer than a quarter of `flush_max_spans` spans)
    /// of each tenant that has at least `compact_min_blocks` of them, oldest first, into
    /// blocks of at most `flush_max_spans` spans. Off when `compact_min_blocks` is 0. Runs
    /// after background flushes.
    pub async fn compact(&self) -> Result<CompactReport, StoreError> {
        let mut report = CompactReport::default();
        let min_blocks = self.inner.cfg.compact_min_blocks;
        if min_blocks < 2 {
            return Ok(report);
        }
        let _guard = self.inner.flush_lock.lock().await;
        let tenants: Vec<(TenantId, Vec<Arc<BlockInfo>>)> = {
            let st = self.inner.state.read().map_err(|_| poisoned())?;
            st.blocks
                .iter()
                .map(|(t, l)| {
                    (
                        t.clone(),
                        l.iter().filter(|b| b.is_own()).cloned().collect(),
                    )
                })
                .collect()
        };
        let max = self.inner.cfg.flush_max_spans;
        for (tenant, blocks) in tenants {
            let mut picked = Vec::new();
            let mut rows = 0usize;
            for b in blocks {
                let Ok(meta) = self.meta(&b).await else {
                    continue; // unreadable: left for the verifier to report
                };
                let n = usize::try_from(meta.arrow.metadata().file_metadata().num_rows())
                    .unwrap_or(usize::MAX);
                if n >= max / 4 {
                    continue;
                }
                if rows.saturating_add(n) > max {
                    break;
                }
                rows += n;
                picked.push(b);
            }
            if picked.len() < min_blocks {
                continue;
            }
            match self.merge(&tenant, &picked).await {
                Ok(spans) => {
                    report.inputs += picked.len();
                    report.outputs += 1;
                    report.spans += spans;
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "compaction skipped");
                }
            }
        }
        if report.outputs > 0 {
            tracing::info!(
                inputs = report.inputs,
                outputs = report.outputs,
                spans = report.spans,
                "compacted small blocks"
            );
        }
        Ok(report)
    }

    /// Reads `inputs` whole (checked against their tags), writes one block of their spans,
    /// publishes it in place of the inputs, then deletes the inputs.
    async fn merge(
        &self,
        tenant: &TenantId,
        inputs: &[Arc<BlockInfo>],
    ) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let mut spans: Vec<SpanEntry> = Vec::new();
        for b in inputs {
            let meta = self.meta(b).await?;
            let bytes = self.fetch_whole(b).await?;
            let mac = crate::block::mac::mac_path(&b.path);
            let sidecar = inner
                .objects
                .get(&mac)
                .await
                .map_err(|e| StoreError::ObjectStore {
                    path: mac.to_string(),
                    source: e,
                })?
                .bytes()
                .await
                .map_err(|e| StoreError::ObjectStore {
                    path: mac.to_string(),
                    source: e,
                })?;
            let (keys, t, name) = (inner.keys.clone(), tenant.clone(), b.name.clone());
            let rows = tokio::task::spawn_blocking(move || {
                crate::block::mac::check(&keys, &t, &name, &bytes, &sidecar)?;
                let groups = (0..meta.row_groups.len()).collect();
                read_rows(Sparse::whole(bytes), &meta, &name, groups, None, &|_| true)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
            spans.extend(rows);
        }
        spans.sort_by(|a, b| {
            a.trace_id
                .cmp(&b.trace_id)
                .then(a.start_unix_nanos.cmp(&b.start_unix_nanos))
                .then(a.span_id.cmp(&b.span_id))
        });
        let count = spans.len();
        // The output's name covers the inputs' time ranges, so retention and pruning by
        // name stay right.
        let min_start = inputs.iter().map(|b| b.min_start_ms).min().unwrap_or(0);
        let max_end = inputs.iter().map(|b| b.max_end_ms).max().unwrap_or(0);
        let name = BlockInfo::new_name(min_start, max_end)?;
        let (bytes, tag) = self
            .encode_block(tenant, &name, super::flush::BlockRows::Owned(spans))
            .await?;
        let path = BlockInfo::object_path(tenant, &name);
        let mac_path = crate::block::mac::mac_path(&path);
        for (p, body) in [
            (&mac_path, PutPayload::from(tag)),
            (&path, PutPayload::from(bytes)),
        ] {
            inner
                .objects
                .put(p, body)
                .await
                .map_err(|e| StoreError::ObjectStore {
                    path: p.to_string(),
                    source: e,
                })?;
        }
        let out = BlockInfo::parse(&path)
            .ok_or_else(|| StoreError::Task(format!("block path {path} does not parse")))?;
        {
            let mut st = inner.state.write().map_err(|_| poisoned())?;
            let list = st.blocks.entry(tenant.clone()).or_default();
            list.retain(|b| !inputs.iter().any(|i| Arc::ptr_eq(i, b)));
            list.push(Arc::new(out));
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        // Only now, with the output and its tag durable, do the inputs go.
        for b in inputs {
            self.delete_object(&b.path).await?;
        }
        Ok(count)
    }
}
