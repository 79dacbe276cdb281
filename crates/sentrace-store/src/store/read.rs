//! Reads: one trace, typed search, services and operations.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use sentrace_core::{TenantId, TraceId};

use super::{Store, poisoned};
use crate::block::{BlockIndex, BlockInfo, BlockMeta, Sparse, coalesce, load_meta, read_rows};
use crate::search::limit_newest;
use crate::{SpanEntry, SpanFilter, StoreError};

/// Bytes read from the end of a block to find its footer in one request (most footers
/// fit; a longer one takes a second request).
const FOOTER_PREFETCH: u64 = 256 << 10;
/// Column chunks closer than this are fetched in one request.
const RANGE_GAP: u64 = 64 << 10;
/// Traces [`Store::traces`] reads at the same time: their fetches overlap (an object
/// store's latency is paid once per wave, not once per trace) and their decoding runs on
/// the blocking pool's threads side by side. Each read holds one trace, so memory stays
/// bounded by this many traces beyond the answer.
pub const TRACE_READS_IN_FLIGHT: usize = 4;
/// Row groups of one block a search reads at the same time, for the same reasons. The
/// stopping rule is checked between waves, so a search may read up to this many minus one
/// row groups beyond the one where reading one by one would stop. Those hold nothing newer
/// than the `limit`-th trace already found, so the answer is the same except at an exact
/// tie of start times, where the trace with the lower id takes the last place.
const SEARCH_GROUPS_IN_FLIGHT: usize = 4;

/// Counters of block reads, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Block reads of row data (ranged fetches of column chunks) from the object store.
    pub blocks_fetched: u64,
    /// Block footers fetched and decrypted (the cache of decrypted footers missed).
    pub footers_read: u64,
    /// Row groups decoded.
    pub row_groups_read: u64,
}

impl Store {
    /// Counters of block reads since open.
    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            blocks_fetched: self.inner.blocks_fetched.load(Ordering::Relaxed),
            row_groups_read: self.inner.row_groups_read.load(Ordering::Relaxed),
            footers_read: self.inner.footers_read.load(Ordering::Relaxed),
        }
    }

    /// Fetches a whole block (to check its integrity tag, which covers every byte).
    pub(crate) async fn fetch_whole(&self, b: &BlockInfo) -> Result<bytes::Bytes, StoreError> {
        let oerr = |e| StoreError::ObjectStore {
            path: b.path.to_string(),
            source: e,
        };
        let res = self.objects_for(b).get(&b.path).await.map_err(oerr)?;
        let bytes = res.bytes().await.map_err(oerr)?;
        self.inner.blocks_fetched.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Fetches the footer of a block: its last [`FOOTER_PREFETCH`] bytes, then the rest of
    /// the footer if it is longer.
    async fn fetch_footer(&self, b: &BlockInfo) -> Result<Sparse, StoreError> {
        let oerr = |e| StoreError::ObjectStore {
            path: b.path.to_string(),
            source: e,
        };
        let opts = GetOptions {
            range: Some(GetRange::Suffix(FOOTER_PREFETCH)),
            ..GetOptions::default()
        };
        let objects = self.objects_for(b);
        let res = match objects.get_opts(&b.path, opts).await {
            Ok(res) => res,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(oerr(e)),
            // Some S3-compatible servers (s3s-fs 0.14) fail a suffix range longer than the
            // object instead of answering with the whole object: ask the size, then read a
            // bounded range.
            Err(e) => {
                let size = match objects.head(&b.path).await {
                    Ok(meta) => meta.size,
                    Err(_) => return Err(oerr(e)),
                };
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(
                        size.saturating_sub(FOOTER_PREFETCH)..size,
                    )),
                    ..GetOptions::default()
                };
                objects.get_opts(&b.path, opts).await.map_err(oerr)?
            }
        };
        let (len, range) = (res.meta.size, res.range.clone());
        let tail = res.bytes().await.map_err(oerr)?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: b.path.to_string().into(),
            offset: 0,
            reason: reason.to_string(),
        };
        if tail.len() < 8 || range.end != len {
            return Err(corrupt("block shorter than a Parquet footer"));
        }
        let n = tail.len();
        let footer = u64::from(u32::from_le_bytes([
            tail[n - 8],
            tail[n - 7],
            tail[n - 6],
            tail[n - 5],
        ]));
        let need = footer
            .checked_add(8)
            .filter(|&need| need <= len)
            .ok_or_else(|| corrupt("block footer longer than the block"))?;
        let mut ranges = vec![(range.start, tail)];
        if need > n as u64 {
            let from = len - need;
            let more = objects
                .get_range(&b.path, from..range.start)
                .await
                .map_err(oerr)?;
            ranges.push((from, more));
        }
        self.inner.footers_read.fetch_add(1, Ordering::Relaxed);
        Ok(Sparse::new(len, ranges))
    }

    /// The block's decrypted footer, from the bounded cache or read and decrypted now.
    pub(crate) async fn meta(&self, b: &Arc<BlockInfo>) -> Result<Arc<BlockMeta>, StoreError> {
        let key = b.path.to_string();
        if let Some(m) = self.inner.meta_cache.get(&key) {
            return Ok(m);
        }
        let file = self.fetch_footer(b).await?;
        let (keys, tenant, name) = (self.keys_for(b)?, b.tenant.clone(), b.name.clone());
        let meta = tokio::task::spawn_blocking(move || load_meta(&file, &keys, &tenant, &name))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let meta = Arc::new(meta);
        let _ = b.index.set(meta.index.clone());
        self.inner.meta_cache.insert(key, meta.clone());
        Ok(meta)
    }

    /// The block's index (kept for every block once read).
    pub(crate) async fn index(&self, b: &Arc<BlockInfo>) -> Result<Arc<BlockIndex>, StoreError> {
        match b.index.get() {
            Some(i) => Ok(i.clone()),
            None => Ok(self.meta(b).await?.index.clone()),
        }
    }

    /// Reads the row groups `pick` chooses, fetching only their column chunks; with
    /// `only_traces`, decodes only those traces' rows (see [`read_rows`]).
    pub(crate) async fn read_block(
        &self,
        b: &Arc<BlockInfo>,
        pick: impl Fn(&BlockMeta) -> Vec<usize>,
        only_traces: Option<Arc<HashSet<TraceId>>>,
        keep: impl Fn(&SpanEntry) -> bool + Send + 'static,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        let meta = self.meta(b).await?;
        let groups = pick(&meta);
        self.read_groups(b, &meta, groups, only_traces, keep).await
    }

    async fn read_groups(
        &self,
        b: &Arc<BlockInfo>,
        meta: &Arc<BlockMeta>,
        groups: Vec<usize>,
        only_traces: Option<Arc<HashSet<TraceId>>>,
        keep: impl Fn(&SpanEntry) -> bool + Send + 'static,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let ranges = coalesce(meta.ranges(&groups), RANGE_GAP);
        let fetched = self
            .objects_for(b)
            .get_ranges(&b.path, &ranges)
            .await
            .map_err(|e| StoreError::ObjectStore {
                path: b.path.to_string(),
                source: e,
            })?;
        let file = Sparse::new(
            meta.file_len,
            ranges.iter().map(|r| r.start).zip(fetched).collect(),
        );
        self.inner.blocks_fetched.fetch_add(1, Ordering::Relaxed);
        self.inner
            .row_groups_read
            .fetch_add(groups.len() as u64, Ordering::Relaxed);
        let (name, meta) = (b.name.clone(), meta.clone());
        tokio::task::spawn_blocking(move || {
            read_rows(file, &meta, &name, groups, only_traces, &keep)
        })
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
    /// Only the trace's rows of a row group are decoded (see [`read_rows`]).
    pub async fn trace(
        &self,
        tenant: &TenantId,
        trace_id: TraceId,
    ) -> Result<Vec<SpanEntry>, StoreError> {
        let (mut spans, blocks) =
            self.snapshot(tenant, |t, out| t.trace(tenant, &trace_id, out))?;
        let only = Arc::new(HashSet::from([trace_id]));
        for b in &blocks {
            let index = match self.index(b).await {
                Ok(i) => i,
                Err(e) if gone_peer_block(b, &e) => continue,
                Err(e) => return Err(e),
            };
            if !index.may_hold_trace(&trace_id) {
                continue;
            }
            let found = self
                .read_block(
                    b,
                    |m| m.row_groups_for_traces(&[trace_id]),
                    Some(only.clone()),
                    move |s| s.trace_id == trace_id,
                )
                .await;
            match found {
                Ok(found) => spans.extend(found),
                Err(e) if gone_peer_block(b, &e) => continue,
                Err(e) => return Err(e),
            }
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

    /// [`Self::trace`] for each of `ids`, up to [`TRACE_READS_IN_FLIGHT`] at a time, the
    /// answers in the order of `ids`. A failed read fails only its own entry.
    pub async fn traces(
        &self,
        tenant: &TenantId,
        ids: &[TraceId],
    ) -> Vec<Result<Vec<SpanEntry>, StoreError>> {
        // The futures are made up front (they do nothing until polled): a stream that
        // mapped ids to futures would carry a closure over borrowed ids, which the callers'
        // `Send` futures cannot name.
        let reads: Vec<_> = ids.iter().map(|t| self.trace(tenant, *t)).collect();
        futures::stream::iter(reads)
            .buffered(TRACE_READS_IN_FLIGHT)
            .collect()
            .await
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
        // Blocks newest first by the times in their names, then by the newest start of a
        // span that may match (from the block index). Reading stops once the `limit`-th
        // newest trace found starts no earlier than anything left could.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.max_end_ms));
        let mut ready: Vec<(u64, Arc<BlockInfo>)> = Vec::new();
        for b in &blocks {
            let bound = b.max_end_ms.saturating_mul(1_000_000);
            if kth_newest_trace(&spans, f.limit_traces).is_some_and(|kth| kth > bound) {
                break;
            }
            let index = match self.index(b).await {
                Ok(i) => i,
                Err(e) if gone_peer_block(b, &e) => continue,
                Err(e) => return Err(e),
            };
            if let Some(newest) = index.newest_match(f) {
                ready.push((newest.min(bound), b.clone()));
            }
        }
        ready.sort_by_key(|(newest, _)| std::cmp::Reverse(*newest));
        for (newest, b) in &ready {
            if kth_newest_trace(&spans, f.limit_traces).is_some_and(|kth| kth >= *newest) {
                break;
            }
            let meta = self.meta(b).await?;
            // Row groups newest first, in waves of up to SEARCH_GROUPS_IN_FLIGHT read at
            // once, with the same stopping rule checked before each wave. Groups are sorted
            // newest first, so the first one the rule stops ends the block.
            let mut groups = meta.row_groups_for_filter(f);
            let newest_of = |g: usize| meta.row_groups[g].start.map_or(u64::MAX, |r| r.1);
            groups.sort_by_key(|&g| std::cmp::Reverse(newest_of(g)));
            let mut left = groups.into_iter().peekable();
            loop {
                let kth = kth_newest_trace(&spans, f.limit_traces);
                let mut wave = Vec::with_capacity(SEARCH_GROUPS_IN_FLIGHT);
                while wave.len() < SEARCH_GROUPS_IN_FLIGHT
                    && let Some(g) = left.next_if(|&g| kth.is_none_or(|kth| kth < newest_of(g)))
                {
                    wave.push(g);
                }
                if wave.is_empty() {
                    break;
                }
                // Made up front: a stream mapping groups to futures would hold a closure
                // over borrows that the callers' `Send` futures cannot name.
                let reads: Vec<_> = wave
                    .into_iter()
                    .map(|g| {
                        let filter = f.clone();
                        self.read_groups(b, &meta, vec![g], None, move |s| filter.matches(s))
                    })
                    .collect();
                let mut found = futures::stream::iter(reads).buffered(SEARCH_GROUPS_IN_FLIGHT);
                while let Some(rows) = found.next().await {
                    spans.extend(rows?);
                }
            }
        }
        Ok(limit_newest(spans, f.limit_traces))
    }

    /// Distinct service names of the tenant, sorted: this node's catalog, plus the
    /// services in the indexes of other nodes' blocks (sharing a bucket).
    pub async fn services(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let (mut names, peers): (std::collections::BTreeSet<String>, Vec<_>) = {
            let st = self.inner.state.read().map_err(|_| poisoned())?;
            (
                st.catalogs
                    .get(tenant)
                    .map(|c| c.services.keys().cloned().collect())
                    .unwrap_or_default(),
                st.blocks
                    .get(tenant)
                    .map(|l| l.iter().filter(|b| !b.is_own()).cloned().collect())
                    .unwrap_or_default(),
            )
        };
        for b in &peers {
            match self.index(b).await {
                Ok(i) => names.extend(i.service_names().map(str::to_owned)),
                Err(e) if gone_peer_block(b, &e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(names.into_iter().collect())
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

/// Another node's block deleted (by its retention or compaction) since it was listed:
/// skipped, the next listing forgets it. Any other failure fails the read.
fn gone_peer_block(b: &BlockInfo, e: &StoreError) -> bool {
    !b.is_own()
        && matches!(
            e,
            StoreError::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
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
