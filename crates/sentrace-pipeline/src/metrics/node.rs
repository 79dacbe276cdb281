//! Node-wide gauges read at scrape time from the store (WAL, queue, blocks) and from the
//! transparency logs (checkpoint age).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_store::Store;

use super::Metrics;
use super::export::{self, Encoder};
use crate::seal::Seal;

impl Metrics {
    /// Adds the store's families: WAL fsync latency, WAL bytes and commits, queue depth,
    /// buffered spans, blocks and spans stored.
    pub fn register_store(&mut self, store: &Store) {
        self.registry.register(
            "sentrace_wal_fsync_duration_seconds",
            "Time each WAL group commit's fdatasync took, in seconds",
            store.wal_fsync_seconds(),
        );
        let store = store.clone();
        self.register(export::collector(move |e| encode_store(e, &store)));
    }

    /// Adds `sentrace_checkpoint_age_seconds` for the transparency logs.
    pub fn register_seal(&mut self, seal: Arc<Seal>) {
        self.register(export::collector(move |e| encode_seal(e, &seal)));
    }
}

fn encode_store(e: &mut Encoder<'_>, store: &Store) -> fmt::Result {
    let w = store.wal_counters();
    export::gauge_u64(
        e,
        "sentrace_wal_bytes",
        "Bytes of the WAL segments on disk (spans not yet in blocks, and the current segment).",
        w.disk_bytes,
    )?;
    export::counter(
        e,
        "sentrace_wal_commits",
        "WAL group commits (one write and one fdatasync each).",
        w.commits,
    )?;
    export::counter(
        e,
        "sentrace_wal_written_bytes",
        "Bytes written to WAL segments by commits.",
        w.bytes,
    )?;
    export::counter(
        e,
        "sentrace_spans_stored",
        "Spans made durable in the WAL (and so acknowledged).",
        w.spans,
    )?;
    export::gauge_u64(
        e,
        "sentrace_ingest_queue_bytes",
        "Bytes of export requests queued for the WAL writer (requests are refused as busy \
         once [store] max_queue_bytes are queued).",
        store.queued_bytes() as u64,
    )?;
    export::gauge_u64(
        e,
        "sentrace_buffered_spans",
        "Spans durable in the WAL and held in memory, not yet flushed to blocks.",
        store.buffered_spans() as u64,
    )?;
    export::gauge_u64(
        e,
        "sentrace_blocks",
        "Blocks in the store, over every tenant.",
        store.block_count() as u64,
    )?;
    encode_cluster(e, store)?;
    encode_key_ages(e, store)?;
    encode_sensitive_keys(e, store)
}

/// Uses of the sensitive-value keys since start, node-wide: an unwrap happens only for a
/// write or for a reader allowed to view a sensitive class (docs/keys.md).
fn encode_sensitive_keys(e: &mut Encoder<'_>, store: &Store) -> fmt::Result {
    let s = store.keys().sensitive_key_stats();
    export::counter(
        e,
        "sentrace_sensitive_key_unwraps",
        "Sensitive-value keys unwrapped through the master key since start (for writing, or \
         for a reader allowed to view a sensitive class).",
        s.unwraps,
    )?;
    export::counter(
        e,
        "sentrace_sensitive_values_decrypted",
        "Sensitive values decrypted for readers allowed to view their class since start.",
        s.values_opened,
    )
}

/// The other nodes sharing the bucket, and how stale this node's view of them may be
/// (absent for a store of its own). Operators only: `/readyz` stays one word.
fn encode_cluster(e: &mut Encoder<'_>, store: &Store) -> fmt::Result {
    let Some(c) = store.cluster_status() else {
        return Ok(());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    export::gauge_u64(
        e,
        "sentrace_peer_nodes",
        "Other nodes sharing this node's bucket, at the last listing.",
        c.peers as u64,
    )?;
    export::gauge_u64(
        e,
        "sentrace_peer_blocks",
        "Blocks of the other nodes, at the last listing.",
        c.peer_blocks as u64,
    )?;
    export::counter(
        e,
        "sentrace_peer_listing_failures",
        "Listings of the other nodes' blocks that failed.",
        c.listing_failures,
    )?;
    if c.last_listing_unix_secs > 0 {
        export::gauge_u64(
            e,
            "sentrace_peer_listing_age_seconds",
            "Seconds since the other nodes' blocks were last listed successfully.",
            now.saturating_sub(c.last_listing_unix_secs),
        )?;
    }
    export::gauge(
        e,
        "sentrace_peer_flush_seconds",
        "Longest duration of the other nodes' last flushes, as they published it (the time \
         from a flush's start until its blocks are stored).",
        c.peer_flush.as_secs_f64(),
    )?;
    export::gauge_u64(
        e,
        "sentrace_peer_visibility_bound_seconds",
        "Longest time a span acknowledged by another node stays invisible to this node's \
         queries while listings succeed: the longest flush interval plus last flush duration \
         of the other nodes, plus [store] peer_refresh_interval, rounded up (add \
         sentrace_peer_listing_age_seconds beyond it).",
        u64::try_from(c.visibility_bound.as_millis().div_ceil(1000)).unwrap_or(u64::MAX),
    )
}

/// Data key ages, node-wide (no tenant label: an operator watches rotation without
/// learning tenant names from the metrics). Read from the key files without unwrapping
/// anything; an unreadable key directory leaves the families out (the store reports it).
fn encode_key_ages(e: &mut Encoder<'_>, store: &Store) -> fmt::Result {
    let Ok(ages) = store.keys().key_ages() else {
        return Ok(());
    };
    export::gauge_u64(
        e,
        "sentrace_data_key_tenants",
        "Tenants holding data keys (erased tenants excluded).",
        ages.len() as u64,
    )?;
    export::gauge_u64(
        e,
        "sentrace_data_key_age_max_seconds",
        "Age of the oldest current data key over every tenant, in seconds ([keys] \
         rotate_after bounds it when set).",
        ages.iter().map(|a| a.age_secs).max().unwrap_or(0),
    )?;
    export::gauge_u64(
        e,
        "sentrace_data_keys",
        "Data keys held over every tenant (current and older ones kept to read old data).",
        ages.iter().map(|a| a.keys as u64).sum(),
    )
}

fn encode_seal(e: &mut Encoder<'_>, seal: &Seal) -> fmt::Result {
    let Some(last) = seal.last_published_unix() else {
        return Ok(());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    export::gauge_u64(
        e,
        "sentrace_checkpoint_age_seconds",
        "Seconds since this node last published a signed checkpoint of a span log (absent \
         until the first one since start).",
        now.saturating_sub(last),
    )?;
    export::gauge_u64(
        e,
        "sentrace_checkpoint_last_published_timestamp_seconds",
        "When this node last published a signed checkpoint of a span log, Unix seconds.",
        last,
    )
}
