//! The commit step: the last step of every batch, held by the
//! [`Registry`](crate::pipeline::Registry) next to the stages. It hands the encoded spans to
//! the store and returns once they are durable (one fsync, group commit).
//!
//! - [`StoreCommit`]: a plain WAL append (`[seal] enabled = false`);
//! - [`SealCommit`]: the batch is admitted by the store first ([`Store::admit`]: every check
//!   that can refuse it), then sealed into its tenant's transparency log
//!   ([`Seal::seal`]), which queues the WAL record under the log's lock.
//!
//! So a sealed batch keeps the guarantees of [`crate::seal`]: its manifest shares the
//! spans' WAL record (on the span at position 0), records of one log reach the WAL in
//! log-index order, and the ack waits for that record's fsync and nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sentrace_core::BatchContext;
use sentrace_store::{SpanEntry, Store, StoreError};

use crate::seal::{Receipt, Seal};

/// What [`Commit::commit`] returns: the batch's log receipt when it was sealed.
pub type CommitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Receipt>, StoreError>> + Send + 'a>>;

/// The step that makes a batch durable. One per pipeline, chosen by [`for_store`].
pub trait Commit: Send + Sync {
    /// The step's name, for logs.
    fn name(&self) -> &'static str;

    /// Stores `entries` (the batch's spans, encoded, in batch order; never empty) for the
    /// tenant of `ctx`, and resolves once they are durable.
    fn commit<'a>(&'a self, ctx: &'a BatchContext, entries: Vec<SpanEntry>) -> CommitFuture<'a>;
}

/// The commit of an unsealed pipeline: a WAL append.
pub struct StoreCommit {
    store: Store,
}

impl Commit for StoreCommit {
    fn name(&self) -> &'static str {
        "store"
    }

    fn commit<'a>(&'a self, ctx: &'a BatchContext, entries: Vec<SpanEntry>) -> CommitFuture<'a> {
        Box::pin(async move {
            self.store.append(&ctx.identity.tenant, entries).await?;
            Ok(None)
        })
    }
}

/// The commit of a sealed pipeline: admit, seal (log index, manifest, WAL record queued
/// under the log's lock), then wait for the fsync.
pub struct SealCommit {
    store: Store,
    seal: Arc<Seal>,
}

impl Commit for SealCommit {
    fn name(&self) -> &'static str {
        "seal"
    }

    fn commit<'a>(&'a self, ctx: &'a BatchContext, entries: Vec<SpanEntry>) -> CommitFuture<'a> {
        Box::pin(async move {
            // Admission first: a log index is assigned only to a batch the store has taken
            // (only a store that closes meanwhile can still drop it; see `crate::seal`).
            let reserve = Seal::reserve(entries.len());
            let (submit, durable) = self.store.admit(&ctx.identity.tenant, &entries, reserve)?;
            let mut receipt = None;
            self.seal.seal(ctx, entries, submit, &mut receipt)?;
            durable.wait().await?;
            Ok(receipt)
        })
    }
}

/// The commit step for `store`: sealing into `seal`'s logs when there is one.
pub fn for_store(store: Store, seal: Option<Arc<Seal>>) -> Arc<dyn Commit> {
    match seal {
        Some(seal) => Arc::new(SealCommit { store, seal }),
        None => Arc::new(StoreCommit { store }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sentrace_core::{Identity, Role, SpanId, TenantId, TraceId};
    use sentrace_store::{KeyRing, MasterKey, StoreConfig};

    fn entry(n: u8) -> SpanEntry {
        SpanEntry {
            trace_id: TraceId::from_slice(&[n.wrapping_add(1); 16]).unwrap(),
            span_id: SpanId::from_slice(&[n.wrapping_add(1); 8]).unwrap(),
            parent_span_id: None,
            service: "svc".into(),
            name: format!("span-{n}"),
            kind: 1,
            start_unix_nanos: 1_000,
            end_unix_nanos: 2_000,
            canonical: Bytes::from(vec![n; 8]),
            seal: None,
        }
    }

    /// The sealing commit assigns log indexes in order, and each batch's manifest is
    /// recovered from the WAL (the spans' record) with its index, in log order.
    #[tokio::test]
    async fn sealing_commit_puts_manifests_in_the_wal_in_log_order() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes([7; 32]);
        let keys = Arc::new(KeyRing::open(&dir.path().join("keys"), &master).unwrap());
        let (store, _) = Store::open(dir.path(), StoreConfig::default(), keys.clone())
            .await
            .unwrap();
        let cfg = crate::seal::SealConfig::default();
        let signer = crate::seal::keys::load_or_create(dir.path(), &master, &cfg.node).unwrap();
        let seal = Seal::open(&cfg, signer, store.objects().clone(), &[])
            .await
            .unwrap();
        let commit = for_store(store.clone(), Some(seal));
        assert_eq!(commit.name(), "seal");
        let tenant = TenantId::new("acme").unwrap();
        let ctx = BatchContext::new(Identity::new(tenant.clone(), "svc", Role::Ingest), 1);
        let mut indexes = Vec::new();
        for n in 0..3u8 {
            let receipt = commit
                .commit(&ctx, vec![entry(2 * n), entry(2 * n + 1)])
                .await
                .unwrap()
                .expect("a sealed batch has a receipt");
            indexes.push(receipt.index);
        }
        assert_eq!(indexes, [0, 1, 2]);
        drop(commit);
        store.close().await.unwrap();

        let (_store, recovery) = Store::open(dir.path(), StoreConfig::default(), keys)
            .await
            .unwrap();
        let recovered: Vec<_> = recovery
            .manifests
            .iter()
            .map(|m| (m.tenant.clone(), m.index))
            .collect();
        assert_eq!(
            recovered,
            [(tenant.clone(), 0), (tenant.clone(), 1), (tenant, 2)]
        );
        // One WAL record per batch: the manifest travels with its spans.
        assert_eq!(recovery.records, 3);
        assert_eq!(recovery.spans, 6);
    }

    /// The plain commit stores the spans and gives no receipt.
    #[tokio::test]
    async fn store_commit_appends_without_a_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes([8; 32]);
        let keys = Arc::new(KeyRing::open(&dir.path().join("keys"), &master).unwrap());
        let (store, _) = Store::open(dir.path(), StoreConfig::default(), keys.clone())
            .await
            .unwrap();
        let commit = for_store(store.clone(), None);
        assert_eq!(commit.name(), "store");
        let tenant = TenantId::new("acme").unwrap();
        let ctx = BatchContext::new(Identity::new(tenant, "svc", Role::Ingest), 1);
        let receipt = commit.commit(&ctx, vec![entry(0)]).await.unwrap();
        assert_eq!(receipt, None);
        drop(commit);
        store.close().await.unwrap();
        let (_store, recovery) = Store::open(dir.path(), StoreConfig::default(), keys)
            .await
            .unwrap();
        assert_eq!(recovery.spans, 1);
        assert!(recovery.manifests.is_empty());
    }
}
