//! Reads by log index, for verifying a live server's log remotely: the spans the store
//! holds for a range of sealed batches, wherever they lie (memory/WAL or blocks), plus
//! what could not be read and what retention erased.

use std::ops::Range;
use std::sync::Arc;

use object_store::ObjectStoreExt;
use sentrace_core::TenantId;

use super::{Store, poisoned};
use crate::block::{BlockInfo, Sparse, read_rows};
use crate::{SpanEntry, StoreError};

/// Where sealed spans of memory lie: durable in the WAL, not yet in a block.
pub const WAL_LOCATION: &str = "wal";

/// The sealed spans of a range of log indices.
#[derive(Debug, Default)]
pub struct SealedRead {
    /// Every stored span whose seal index is in the range, with its location
    /// (`wal` or `blocks/<tenant>/<name>.parquet`), in no particular order.
    pub spans: Vec<(String, SpanEntry)>,
    /// Blocks that could not be read (`blocks/<tenant>/<name>.parquet`, why): they may
    /// hold batches of the range.
    pub damage: Vec<(String, String)>,
    /// Log indices in the range whose spans retention deleted, with the reason.
    pub erased: Vec<(u64, String)>,
    /// True if the tenant has no data keys: destroyed by crypto-shredding, nothing is left
    /// (or the tenant never stored anything; callers ask only for tenants with a log).
    pub shredded: bool,
}

impl Store {
    /// The rows of block `b` sealed in `range`. The block's row groups are pruned by their
    /// log-index statistics; a block that may hold some is checked whole against its
    /// integrity tag first (as offline verification does), then read.
    async fn sealed_in_block(
        &self,
        b: &Arc<BlockInfo>,
        range: &Range<u64>,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        let meta = self.meta(b).await?;
        let (lo, hi) = (range.start, range.end);
        let groups: Vec<usize> = (0..meta.row_groups.len())
            .filter(|&i| {
                meta.row_groups[i]
                    .log_index
                    .is_none_or(|(a, z)| a < hi && z >= lo)
            })
            .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let bytes = self.fetch_whole(b).await?;
        let mac = crate::block::mac::mac_path(&b.path);
        let sidecar = match self.inner.objects.get(&mac).await {
            Ok(r) => r.bytes().await.ok(),
            Err(_) => None,
        };
        let (keys, tenant, name, r) = (
            self.inner.keys.clone(),
            b.tenant.clone(),
            b.name.clone(),
            range.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let sidecar = sidecar.ok_or_else(|| StoreError::Corrupt {
                path: format!("{}/{name}.parquet", tenant.as_str()).into(),
                offset: 0,
                reason: "block integrity tag is missing".into(),
            })?;
            crate::block::mac::check(&keys, &tenant, &name, &bytes, &sidecar)?;
            read_rows(
                Sparse::whole(bytes),
                &meta,
                &name,
                groups,
                None,
                &move |s: &SpanEntry| s.seal.as_ref().is_some_and(|x| r.contains(&x.index)),
            )
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The stored spans of the sealed batches `range` of `tenant`, from one snapshot of
    /// memory and the block list (a flush is atomic for it). Blocks are pruned by the
    /// log-index statistics of their row groups and checked against their integrity tags.
    /// A block that cannot be read or fails its tag is reported in [`SealedRead::damage`]
    /// and the rest is still read.
    pub async fn sealed_spans(
        &self,
        tenant: &TenantId,
        range: Range<u64>,
    ) -> Result<SealedRead, StoreError> {
        let mut out = SealedRead::default();
        if !self.inner.keys.has_tenant(tenant).unwrap_or(true) {
            out.shredded = true;
            return Ok(out);
        }
        let in_range = |s: &SpanEntry| s.seal.as_ref().is_some_and(|x| range.contains(&x.index));
        let (mem, blocks) = {
            let st = self.inner.state.read().map_err(|_| poisoned())?;
            let mut mem = Vec::new();
            for t in st.tables() {
                if let Some(t) = t.tenants.get(tenant) {
                    mem.extend(t.spans.iter().filter(|s| in_range(s)).cloned());
                }
            }
            // This node's log: its own blocks only.
            let mut blocks = st.blocks.get(tenant).cloned().unwrap_or_default();
            blocks.retain(|b| b.is_own());
            (mem, blocks)
        };
        out.spans
            .extend(mem.into_iter().map(|s| (WAL_LOCATION.to_owned(), s)));
        for b in &blocks {
            let location = format!("blocks/{}", b.path);
            match self.sealed_in_block(b, &range).await {
                Ok(rows) => out
                    .spans
                    .extend(rows.into_iter().map(|s| (location.clone(), s))),
                Err(StoreError::ObjectStore {
                    source: object_store::Error::NotFound { .. },
                    ..
                }) => {} // deleted by retention since the snapshot: see the erasures
                Err(e) => out.damage.push((location, e.to_string())),
            }
        }
        let (records, _) = {
            let (dir, keys) = (self.inner.data_dir.clone(), self.inner.keys.clone());
            tokio::task::spawn_blocking(move || crate::erasure::read_all(&dir, &keys))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??
        };
        for rec in records.iter().filter(|r| r.tenant == tenant.as_str()) {
            for &i in rec.indices.iter().filter(|i| range.contains(i)) {
                out.erased
                    .push((i, format!("{} deleted its block {}", rec.reason, rec.block)));
            }
        }
        out.erased.sort();
        out.erased.dedup_by_key(|(i, _)| *i);
        Ok(out)
    }
}
