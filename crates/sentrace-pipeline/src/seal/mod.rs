//! The seal stage: every accepted batch becomes one entry (a batch manifest) of its
//! tenant's RFC 9162 transparency log, stored as C2SP `tlog-tiles` in the store's object
//! store under `log/<tenant>/`, with hybrid Ed25519 + ML-DSA-44 signed checkpoints.
//!
//! # Crash consistency
//!
//! The manifest travels in the *same WAL record* as the batch's spans (it rides on the
//! span at position 0, see [`sentrace_store::SpanSeal`]), so one fsync makes both durable
//! and the ack waits for that fsync (group commit; nothing else on the ack path). The log
//! index is assigned under the tenant log's lock, and the record is queued for the WAL
//! writer before that lock is released ([`crate::commit::SealCommit`], after
//! [`sentrace_store::Store::admit`]), so a
//! log's records are in index order in the WAL: a torn tail loses only a suffix of
//! unacknowledged entries.
//!
//! - Tiles and checkpoints are written off the ack path, by [`Seal::publish`] (every
//!   second when due per `[seal.checkpoint]`, and before any WAL segment is deleted: the
//!   store calls [`Seal`] as its [`sentrace_store::WalBarrier`]). So every manifest is
//!   always either in the published log or in the WAL.
//! - On start, the logs are reopened from their latest checkpoint and the manifests the
//!   WAL replay found past it are appended again, in index order ([`Seal::open`]).
//! - If the store refuses a request after its index was assigned (only when the store is
//!   closing), the log holds an entry with no spans: `sentrace verify` reports that batch
//!   as `deleted` ("in the signed log but the store has neither its spans nor an erasure
//!   record"), never silently.

pub mod audit;
pub mod audit_nodes;
pub mod config;
pub mod cosign;
pub mod erasure;
pub mod keys;
pub mod proof;
pub mod witness_config;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sentrace_core::{BatchContext, TenantId};
use sentrace_ledger::checkpoint::{CheckpointPolicy, LogSigner, Origin, open_checkpoint};
use sentrace_ledger::log::{CheckpointCadence, Log, Write};
use sentrace_ledger::manifest::BatchManifest;
use sentrace_ledger::merkle::span_root;
use sentrace_ledger::seal::Sealer;
use sentrace_ledger::tiles::{CHECKPOINT_PATH, TILE_WIDTH, is_superseded_partial, parse_tile_path};
use sentrace_store::{
    BarrierFuture, RecoveredManifest, SpanEntry, SpanSeal, StoreError, Submit, WalBarrier,
};

pub use config::SealConfig;

/// Prefix of every log object in the object store.
pub const LOG_PREFIX: &str = "log";

/// Object path of a log object: `log/<tenant>/<tlog-tiles path>`.
pub fn object_path(tenant: &TenantId, path: &str) -> ObjectPath {
    ObjectPath::from(format!("{LOG_PREFIX}/{}/{path}", tenant.as_str()))
}

/// What the sender gets back: the batch's log index and the latest published checkpoint
/// size (the index is covered by a checkpoint once that size exceeds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The batch's log index.
    pub index: u64,
    /// The tree size of the latest published checkpoint (0 if none yet).
    pub checkpoint_size: u64,
}

/// The receipt as response headers (HTTP) or metadata (gRPC):
/// `sentrace-log-index` and `sentrace-checkpoint-size`.
pub fn receipt_headers(r: &Receipt) -> [(&'static str, String); 2] {
    [
        ("sentrace-log-index", r.index.to_string()),
        ("sentrace-checkpoint-size", r.checkpoint_size.to_string()),
    ]
}

struct TenantLog {
    sealer: Sealer,
    /// Size of the latest published checkpoint.
    published: u64,
    /// The latest checkpoint with the witness cosignatures gathered so far (see
    /// [`cosign`]); stale once a newer checkpoint is published.
    cosigned: Option<String>,
}

/// The logs of this node, one per tenant.
pub struct Seal {
    node: String,
    signer_secret: zeroize::Zeroizing<String>,
    cadence: CheckpointCadence,
    objects: Arc<dyn ObjectStore>,
    logs: RwLock<HashMap<TenantId, Arc<Mutex<TenantLog>>>>,
    publish_lock: tokio::sync::Mutex<()>,
    /// Bumped after every publication, for the witness clients.
    publications: tokio::sync::watch::Sender<u64>,
    /// When this process last published a signed checkpoint (Unix seconds; 0: not yet).
    last_published: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn poisoned() -> StoreError {
    StoreError::Task("seal log lock poisoned".into())
}

/// Reads a log object, `None` if absent.
pub async fn read_object(
    objects: &dyn ObjectStore,
    tenant: &TenantId,
    path: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let p = object_path(tenant, path);
    match objects.get(&p).await {
        Ok(r) => Ok(Some(
            r.bytes()
                .await
                .with_context(|| format!("reading {p}"))?
                .to_vec(),
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {p}")),
    }
}

/// Tenants that have a log in `objects` (a `log/<tenant>/checkpoint` object).
pub async fn list_logs(objects: &dyn ObjectStore) -> anyhow::Result<Vec<TenantId>> {
    let prefix = ObjectPath::from(LOG_PREFIX);
    let mut listing = objects.list(Some(&prefix));
    let mut out = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.context("listing log objects")?;
        let parts: Vec<_> = meta.location.parts().collect();
        if parts.len() == 3
            && parts[2].as_ref() == CHECKPOINT_PATH
            && let Ok(t) = TenantId::new(parts[1].as_ref())
        {
            out.push(t);
        }
    }
    out.sort();
    Ok(out)
}

impl Seal {
    /// Opens the node's logs: every existing log is reopened from its latest checkpoint
    /// (verified with the node's key) and its right-edge tiles; the manifests recovered
    /// from the WAL past that checkpoint are appended again, then published.
    pub async fn open(
        cfg: &SealConfig,
        signer: LogSigner,
        objects: Arc<dyn ObjectStore>,
        recovered: &[RecoveredManifest],
    ) -> anyhow::Result<Arc<Self>> {
        let seal = Arc::new(Self {
            node: cfg.node.clone(),
            signer_secret: signer.to_secret_string(),
            cadence: cfg.checkpoint.clone(),
            objects,
            logs: RwLock::new(HashMap::new()),
            publish_lock: tokio::sync::Mutex::new(()),
            publications: tokio::sync::watch::Sender::new(0),
            last_published: std::sync::atomic::AtomicU64::new(0),
        });
        for tenant in list_logs(seal.objects.as_ref()).await? {
            let log = seal.reopen(&tenant).await?;
            seal.insert(tenant, log)?;
        }
        let mut by_tenant: BTreeMap<TenantId, BTreeMap<u64, &Bytes>> = BTreeMap::new();
        for m in recovered {
            by_tenant
                .entry(m.tenant.clone())
                .or_default()
                .insert(m.index, &m.manifest);
        }
        for (tenant, manifests) in by_tenant {
            let log = seal.log_for(&tenant).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut guard = log
                .lock()
                .map_err(|_| anyhow::anyhow!("seal log lock poisoned"))?;
            let mut appended = 0u64;
            for (index, bytes) in manifests {
                let size = guard.sealer.log().size();
                if index < size {
                    continue;
                }
                if index > size {
                    tracing::error!(tenant = %tenant, expected = size, found = index,
                        "WAL holds sealed batches past a gap in the log; they stay unsealed and `sentrace verify` reports them");
                    break;
                }
                let m = BatchManifest::decode(bytes)
                    .with_context(|| format!("manifest {index} of tenant {tenant} in the WAL"))?;
                guard
                    .sealer
                    .append(&m)
                    .map_err(|e| anyhow::anyhow!("re-sealing entry {index}: {e}"))?;
                appended += 1;
            }
            if appended > 0 {
                tracing::info!(tenant = %tenant, entries = appended, "re-sealed log entries recovered from the WAL");
            }
        }
        seal.publish(true).await?;
        Ok(seal)
    }

    fn signer(&self) -> anyhow::Result<LogSigner> {
        LogSigner::from_secret_string(&self.signer_secret)
            .map_err(|e| anyhow::anyhow!("log key: {e}"))
    }

    fn origin(&self, tenant: &TenantId) -> Result<Origin, StoreError> {
        Origin::for_tenant(&self.node, tenant)
            .map_err(|e| StoreError::Task(format!("log origin for tenant {tenant}: {e}")))
    }

    async fn reopen(&self, tenant: &TenantId) -> anyhow::Result<TenantLog> {
        let signer = self.signer()?;
        let Some(note) = read_object(self.objects.as_ref(), tenant, CHECKPOINT_PATH).await? else {
            bail!("log of tenant {tenant} has no checkpoint");
        };
        let mut policy = CheckpointPolicy::new(signer.verifier());
        policy.origin = Some(self.origin(tenant)?);
        let verified = open_checkpoint(&note, &policy).map_err(|e| {
            anyhow::anyhow!("the checkpoint of tenant {tenant}'s log does not verify with this node's key: {e}; run `sentrace verify`")
        })?;
        let cp = &verified.checkpoint;
        let mut reader: HashMap<String, Vec<u8>> = HashMap::new();
        for path in Log::reopen_paths(cp.size) {
            if let Some(b) = read_object(self.objects.as_ref(), tenant, &path).await? {
                reader.insert(path, b);
            }
        }
        let log = Log::reopen(cp.origin.clone(), cp.size, &cp.root, &reader).map_err(|e| {
            anyhow::anyhow!(
                "reopening tenant {tenant}'s log at size {}: {e}; run `sentrace verify`",
                cp.size
            )
        })?;
        let text = String::from_utf8(note).context("checkpoint is not UTF-8")?;
        Ok(TenantLog {
            published: cp.size,
            cosigned: None,
            sealer: Sealer::new(log, signer, self.cadence.clone(), Some(text), now_secs()),
        })
    }

    fn insert(&self, tenant: TenantId, log: TenantLog) -> anyhow::Result<()> {
        self.logs
            .write()
            .map_err(|_| anyhow::anyhow!("seal lock poisoned"))?
            .insert(tenant, Arc::new(Mutex::new(log)));
        Ok(())
    }

    /// The tenant's log, created empty if the tenant has none yet.
    fn log_for(&self, tenant: &TenantId) -> Result<Arc<Mutex<TenantLog>>, StoreError> {
        if let Some(l) = self.logs.read().map_err(|_| poisoned())?.get(tenant) {
            return Ok(l.clone());
        }
        let mut logs = self.logs.write().map_err(|_| poisoned())?;
        if let Some(l) = logs.get(tenant) {
            return Ok(l.clone());
        }
        let signer = self.signer().map_err(|e| StoreError::Task(e.to_string()))?;
        let log = Arc::new(Mutex::new(TenantLog {
            sealer: Sealer::new(
                Log::new(self.origin(tenant)?),
                signer,
                self.cadence.clone(),
                None,
                now_secs(),
            ),
            published: 0,
            cosigned: None,
        }));
        logs.insert(tenant.clone(), log.clone());
        Ok(log)
    }

    /// Bytes the seal tags and the manifest add to a WAL record of `spans` spans.
    pub fn reserve(spans: usize) -> usize {
        spans
            .saturating_mul(12)
            .saturating_add(sentrace_ledger::manifest::MAX_MANIFEST_SIZE)
    }

    /// Seals `entries` (the batch's spans, canonical bytes as stored, in batch order):
    /// builds the manifest, appends it to the tenant's log, tags the spans and queues the
    /// WAL record while the log is still locked. Called by the commit step once the store
    /// has admitted the request (so it can no longer be refused); the receipt comes back
    /// through `receipt`.
    pub fn seal(
        &self,
        ctx: &BatchContext,
        mut entries: Vec<SpanEntry>,
        submit: Submit,
        receipt: &mut Option<Receipt>,
    ) -> Result<(), StoreError> {
        let tenant = &ctx.identity.tenant;
        let count = u32::try_from(entries.len())
            .map_err(|_| StoreError::Task("batch has more than 2^32 spans".into()))?;
        let root = span_root(entries.iter().map(|e| e.canonical.as_ref()));
        let manifest = BatchManifest::from_context(self.origin(tenant)?, ctx, count, root)
            .map_err(|e| StoreError::InvalidSpan {
                index: 0,
                reason: format!("batch manifest: {e}"),
            })?;
        let encoded = Bytes::from(manifest.encode());
        let log = self.log_for(tenant)?;
        let mut guard = log.lock().map_err(|_| poisoned())?;
        let index = guard
            .sealer
            .append(&manifest)
            .map_err(|e| StoreError::Task(format!("sealing: {e}")))?;
        for (position, e) in entries.iter_mut().enumerate() {
            e.seal = Some(SpanSeal {
                index,
                position: position as u32,
                manifest: (position == 0).then(|| encoded.clone()),
            });
        }
        *receipt = Some(Receipt {
            index,
            checkpoint_size: guard.published,
        });
        // Queued while the log is locked: WAL order = log order (see the module docs).
        let sent = submit.send(entries);
        drop(guard);
        sent
    }

    /// Publishes every log whose cadence says a checkpoint is due (`force`: every log
    /// that grew): tiles and bundles first, then the signed checkpoint, under
    /// `log/<tenant>/`. Runs off the ack path.
    pub async fn publish(&self, force: bool) -> anyhow::Result<()> {
        let _one = self.publish_lock.lock().await;
        let logs: Vec<_> = self
            .logs
            .read()
            .map_err(|_| anyhow::anyhow!("seal lock poisoned"))?
            .iter()
            .map(|(t, l)| (t.clone(), l.clone()))
            .collect();
        for (tenant, log) in logs {
            let publication = {
                let mut g = log
                    .lock()
                    .map_err(|_| anyhow::anyhow!("seal log lock poisoned"))?;
                let now = now_secs();
                let p = if force {
                    if g.sealer.log().size() > g.published || g.sealer.latest_checkpoint().is_none()
                    {
                        Some(g.sealer.publish(now))
                    } else {
                        None
                    }
                } else {
                    g.sealer.publish_if_due(now).transpose()
                };
                p.transpose()
                    .map_err(|e| anyhow::anyhow!("tenant {tenant}: {e}"))?
            };
            let Some(p) = publication else { continue };
            self.write_all(&tenant, &p.writes()).await?;
            if let Ok(mut g) = log.lock() {
                g.published = g.published.max(p.size);
            }
            tracing::info!(tenant = %tenant, size = p.size, "checkpoint published");
            self.last_published
                .fetch_max(now_secs(), std::sync::atomic::Ordering::Relaxed);
            self.publications.send_modify(|n| *n = n.wrapping_add(1));
            // The full tiles just written and the checkpoint covering them are durable:
            // the partial tiles at their places are garbage now.
            for (path, _) in &p.tiles {
                if parse_tile_path(path).is_some_and(|t| t.width == TILE_WIDTH) {
                    let dir = object_path(&tenant, &format!("{path}.p"));
                    self.delete_superseded(&tenant, Some(&dir), p.size).await;
                }
            }
        }
        Ok(())
    }

    /// Deletes the partial tiles and bundles under `dir` (default: the whole log) that a
    /// log of `size` entries replaced with full ones (C2SP `tlog-tiles` allows it once the
    /// full tile is available; verifiers fall back to the full tile). `size` must be the
    /// size of a published checkpoint, so nothing it needs is deleted. Failures only leave
    /// garbage behind, so they are logged, not returned.
    async fn delete_superseded(&self, tenant: &TenantId, dir: Option<&ObjectPath>, size: u64) {
        let strip = format!("{LOG_PREFIX}/{}/", tenant.as_str());
        let list_at = dir.cloned().unwrap_or_else(|| object_path(tenant, "tile"));
        let mut stale = Vec::new();
        {
            let mut listing = self.objects.list(Some(&list_at));
            while let Some(meta) = listing.next().await {
                match meta {
                    Ok(m) => {
                        let rel = m.location.as_ref().strip_prefix(&strip).unwrap_or("");
                        if is_superseded_partial(rel, size) {
                            stale.push(m.location);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, error = %e, "listing partial tiles failed; they stay for now");
                        return;
                    }
                }
            }
        }
        let mut deleted = 0u64;
        for p in stale {
            match self.objects.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, object = %p, error = %e, "deleting a superseded partial tile failed");
                }
            }
        }
        if deleted > 0 {
            tracing::debug!(tenant = %tenant, size, deleted, "deleted superseded partial tiles");
        }
    }

    /// Deletes the superseded partial tiles of every log, at its published size (at start:
    /// a crash between a publication and its clean-up leaves some behind).
    async fn sweep_superseded(&self) {
        let logs: Vec<(TenantId, u64)> = match self.logs.read() {
            Ok(l) => l
                .iter()
                .filter_map(|(t, log)| log.lock().ok().map(|g| (t.clone(), g.published)))
                .collect(),
            Err(_) => return,
        };
        for (tenant, size) in logs {
            self.delete_superseded(&tenant, None, size).await;
        }
    }

    async fn write_all(&self, tenant: &TenantId, writes: &[Write]) -> anyhow::Result<()> {
        for (path, bytes) in writes {
            let p = object_path(tenant, path);
            self.objects
                .put(&p, PutPayload::from(bytes.clone()))
                .await
                .with_context(|| format!("writing {p}"))?;
        }
        Ok(())
    }

    /// Records a statement that is not a batch of spans (a tenant erasure) in the tenant's
    /// log: a manifest from `source` (a reserved `sentrace:` name no client identity can
    /// have) with one "span", the statement's bytes, so the log's signed root commits to
    /// them and `sentrace verify` checks the stored statement like a batch. Publishes a
    /// checkpoint at once; returns the entry's index and that checkpoint.
    pub async fn append_statement(
        &self,
        tenant: &TenantId,
        source: &str,
        statement: &[u8],
    ) -> anyhow::Result<(u64, String)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let manifest = BatchManifest {
            origin: self.origin(tenant)?,
            source: source.to_string(),
            sequence: 0,
            source_time_unix_nanos: now,
            receive_time_unix_nanos: now,
            span_count: 1,
            span_root: span_root(std::iter::once(statement)),
            policy_digest: None,
            source_signature: None,
        };
        let index = {
            let log = self.log_for(tenant)?;
            let mut guard = log
                .lock()
                .map_err(|_| anyhow::anyhow!("seal log lock poisoned"))?;
            guard
                .sealer
                .append(&manifest)
                .map_err(|e| anyhow::anyhow!("appending to tenant {tenant}'s log: {e}"))?
        };
        self.publish(true).await?;
        let checkpoint = self
            .latest_checkpoint(tenant)
            .ok_or_else(|| anyhow::anyhow!("no checkpoint of tenant {tenant}'s log"))?;
        Ok((index, checkpoint))
    }

    /// When this process last published a signed checkpoint of any log (Unix seconds), if
    /// it has.
    pub fn last_published_unix(&self) -> Option<u64> {
        match self
            .last_published
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            t => Some(t),
        }
    }

    /// The latest published checkpoint of a tenant's log.
    pub fn latest_checkpoint(&self, tenant: &TenantId) -> Option<String> {
        let logs = self.logs.read().ok()?;
        let g = logs.get(tenant)?.lock().ok()?;
        g.sealer.latest_checkpoint().map(str::to_owned)
    }

    /// The public keys (vkeys) of this node's logs.
    pub fn vkeys(&self) -> String {
        self.signer()
            .map(|s| s.verifier().to_vkeys())
            .unwrap_or_default()
    }

    /// This node's name (the first part of every log's origin).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The object store the logs live in.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Publishes due checkpoints every second until `shutdown`, then everything.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        self.sweep_superseded().await;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        while crate::periodic::tick_or_shutdown(&mut tick, &mut shutdown).await {
            if let Err(e) = self.publish(false).await {
                tracing::warn!(error = %e, "publishing checkpoints failed; will retry");
            }
        }
        if let Err(e) = self.publish(true).await {
            tracing::error!(error = %e, "publishing the final checkpoints failed; the WAL still holds the manifests");
        }
    }
}

/// The WAL barrier: publish every log before WAL segments go.
pub struct PublishBarrier(pub Arc<Seal>);

impl WalBarrier for PublishBarrier {
    fn before_wal_drop(&self) -> BarrierFuture {
        let seal = self.0.clone();
        Box::pin(async move { seal.publish(true).await.map_err(|e| format!("{e:#}")) })
    }
}
