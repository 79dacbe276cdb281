//! The [`Store`]: open/replay, append (group commit), reads, flush, retention, shutdown.

mod cache;
mod catalog;
mod compact;
mod flush;
mod read;
mod sealed;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use object_store::ObjectStore;
use sentrace_core::TenantId;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

pub use compact::CompactReport;
pub use flush::FlushReport;
pub use read::{ReadStats, TRACE_READS_IN_FLIGHT};
pub use sealed::{SealedRead, WAL_LOCATION};

use crate::block::BlockInfo;
use crate::fsutil::create_private_dir;
use crate::memtable::State;
use crate::wal::replay::{RecoveryReport, replay};
use crate::wal::writer::{AppendReceipt, AppendReq, WalCounters, WalMsg, WalStats, Writer};
use crate::{KeyRing, SpanEntry, StoreConfig, StoreError};

/// Fixed per-request overhead charged against the queue bound.
const REQUEST_OVERHEAD: usize = 256;

/// The embedded trace store. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    data_dir: PathBuf,
    wal_dir: PathBuf,
    catalog_dir: PathBuf,
    cfg: StoreConfig,
    keys: Arc<KeyRing>,
    objects: Arc<dyn ObjectStore>,
    state: Arc<RwLock<State>>,
    tx: mpsc::UnboundedSender<WalMsg>,
    queue: Arc<Semaphore>,
    stats: Arc<WalStats>,
    flush_lock: tokio::sync::Mutex<()>,
    flush_notify: Arc<Notify>,
    closed: AtomicBool,
    blocks_fetched: AtomicU64,
    row_groups_read: AtomicU64,
    footers_read: AtomicU64,
    /// Decrypted block footers, bounded by `block_footer_cache`.
    meta_cache: cache::MetaCache,
    shutdown: watch::Sender<bool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Exclusive lock on `data_dir/LOCK`, held until the store is closed or dropped.
    lock: Mutex<Option<std::fs::File>>,
    /// Runs before WAL segments are deleted.
    barrier: Mutex<Option<Arc<dyn WalBarrier>>>,
    /// This node's place among the nodes sharing the bucket (`[store] url` and a node
    /// name); `None` for a store of its own.
    cluster: Option<Arc<crate::nodes::Cluster>>,
}

/// Queues one request's record for the WAL writer (see [`Store::admit`]).
pub struct Submit {
    tx: mpsc::UnboundedSender<WalMsg>,
    tenant: TenantId,
    permit: tokio::sync::OwnedSemaphorePermit,
    reply: oneshot::Sender<Result<AppendReceipt, StoreError>>,
}

impl Submit {
    /// Queues the spans (re-checking the limits of what the seal step added).
    pub fn send(self, spans: Vec<SpanEntry>) -> Result<(), StoreError> {
        for (index, s) in spans.iter().enumerate() {
            s.check_limits().map_err(|e| StoreError::InvalidSpan {
                index,
                reason: e.to_string(),
            })?;
        }
        self.tx
            .send(WalMsg::Append(AppendReq {
                tenant: self.tenant,
                spans,
                permit: self.permit,
                reply: self.reply,
            }))
            .map_err(|_| StoreError::Closed)
    }
}

/// The durability of one admitted request (see [`Store::admit`]).
pub struct Durable(oneshot::Receiver<Result<AppendReceipt, StoreError>>);

impl Durable {
    /// Resolves once the request's record is fsynced (group commit), or with the error
    /// that kept it out of the WAL.
    pub async fn wait(self) -> Result<AppendReceipt, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// A future returned by [`WalBarrier::before_wal_drop`].
pub type BarrierFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// Something that must be made durable elsewhere before WAL records are deleted: the seal
/// stage publishes its logs' tiles, so every manifest carried by a record that a flush is
/// about to delete is already in the log's object store. If the barrier fails, the flush
/// keeps the segments (and retries later).
pub trait WalBarrier: Send + Sync {
    /// Called after blocks are written and before covered WAL segments are deleted.
    fn before_wal_drop(&self) -> BarrierFuture;
}

fn poisoned() -> StoreError {
    StoreError::Task("store state lock poisoned".into())
}

impl Store {
    /// Opens `data_dir` (creating `wal/` and `catalog/`, mode 0700), with blocks in the
    /// object store `cfg.url` names, or in a local-filesystem object store rooted at
    /// `data_dir/blocks` (fsync on write) when it is absent (see [`crate::open_objects`]).
    /// A bucket that does not answer is an error naming its URL. Replays the WAL and
    /// reports what was recovered and what tail was cut.
    pub async fn open(
        data_dir: &Path,
        cfg: StoreConfig,
        keys: Arc<KeyRing>,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        cfg.validate()?;
        let objects = crate::objects::open_objects(data_dir, &cfg)?;
        crate::objects::probe(objects.as_ref(), &cfg).await?;
        Self::open_with_object_store(data_dir, cfg, keys, objects).await
    }

    /// Like [`Store::open`], as node `node` of the nodes sharing the bucket of `cfg.url`
    /// (see [`crate::nodes`]): the node writes blocks, logs and key files under
    /// `nodes/<node>/`, refuses to start when the bucket holds keys of another master key,
    /// and reads every other node's blocks (listed every `peer_refresh_interval`). Without
    /// `cfg.url`, or with `node` `None`, this is [`Store::open`].
    pub async fn open_as(
        data_dir: &Path,
        cfg: StoreConfig,
        keys: Arc<KeyRing>,
        node: Option<&str>,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        let (Some(node), Some(url)) = (node, cfg.url.clone()) else {
            return Self::open(data_dir, cfg, keys).await;
        };
        cfg.validate()?;
        crate::nodes::check_node_name(node)?;
        let shared = crate::objects::open_objects(data_dir, &cfg)?;
        crate::objects::probe(shared.as_ref(), &cfg).await?;
        let url = crate::objects::StoreUrl::parse(&url)?.to_string();
        let own: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(
            shared.clone(),
            crate::nodes::node_prefix(node),
        ));
        Self::open_inner(data_dir, cfg, keys, own, Some((node, url, shared))).await
    }

    /// Like [`Store::open`], with blocks in any object store (S3 and others later). The store
    /// must make a successful `put` durable.
    pub async fn open_with_object_store(
        data_dir: &Path,
        cfg: StoreConfig,
        keys: Arc<KeyRing>,
        objects: Arc<dyn ObjectStore>,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        Self::open_inner(data_dir, cfg, keys, objects, None).await
    }

    async fn open_inner(
        data_dir: &Path,
        cfg: StoreConfig,
        keys: Arc<KeyRing>,
        objects: Arc<dyn ObjectStore>,
        join: Option<(&str, String, Arc<dyn ObjectStore>)>,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        cfg.validate()?;
        let wal_dir = data_dir.join("wal");
        let catalog_dir = data_dir.join("catalog");
        create_private_dir(data_dir)?;
        let lock = lock_data_dir(data_dir)?;
        create_private_dir(&wal_dir)?;
        create_private_dir(&catalog_dir)?;
        // Joined under the lock: it may restore this node's key files from the bucket.
        let cluster = match join {
            Some((node, url, shared)) => Some(Arc::new(
                crate::nodes::Cluster::join(shared, url, node, &keys, data_dir, &cfg).await?,
            )),
            None => None,
        };

        let ((recovered, mut report, next_segment), wal_bytes) = {
            let (dir, keys, q) = (wal_dir.clone(), keys.clone(), cfg.quarantine_corrupt_wal);
            tokio::task::spawn_blocking(move || {
                replay(&dir, &keys, q).map(|r| (r, crate::wal::segments_bytes(&dir)))
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??
        };
        let mut state = State::default();
        for (tenant, spans) in recovered {
            state.insert(&tenant, spans);
        }
        for (tenant, cat) in catalog::load_all(&catalog_dir, &keys)? {
            state.catalogs.entry(tenant).or_default().merge(&cat);
        }
        let mut listing = objects.list(None);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| StoreError::ObjectStore {
                path: "<list>".into(),
                source: e,
            })?;
            match BlockInfo::parse(&meta.location) {
                Some(b) => {
                    report.blocks += 1;
                    state
                        .blocks
                        .entry(b.tenant.clone())
                        .or_default()
                        .push(Arc::new(b));
                }
                None if meta.location.as_ref().starts_with("log/") => {}
                // Published quarantines and findings (see `crate::shared_state`).
                None if meta
                    .location
                    .as_ref()
                    .starts_with(crate::shared_state::SHARED_DIR) => {}
                // A node's key files and descriptions in a shared bucket.
                None if meta.location.as_ref().starts_with("keys/")
                    || meta.location.as_ref() == crate::nodes::NODE_FILE
                    || meta.location.as_ref() == crate::nodes::LOG_KEY_FILE => {}
                // A block's integrity tag (`<block>.parquet.mac`), read with its block.
                None if meta.location.as_ref().ends_with(".parquet.mac") => {}
                None => {
                    tracing::warn!(object = %meta.location, "ignoring unknown object in block store")
                }
            }
        }
        drop(listing);
        if let Some(c) = &cluster {
            // Every other node's blocks; a key file of another master key stops the start.
            let listed = c.refresh(&keys, true).await?;
            report.peer_blocks = listed.len();
            merge_peer_blocks(&mut state, listed);
        }
        for list in state.blocks.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }

        let state = Arc::new(RwLock::new(state));
        let flush_notify = Arc::new(Notify::new());
        let stats = Arc::new(WalStats::default());
        stats.disk_bytes.store(wal_bytes, Ordering::Relaxed);
        let writer = Writer::new(
            wal_dir.clone(),
            next_segment,
            keys.clone(),
            state.clone(),
            cfg.wal_segment_bytes,
            cfg.flush_max_spans,
            flush_notify.clone(),
            stats.clone(),
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("sentrace-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Task(format!("cannot start WAL writer: {e}")))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let queue = Arc::new(Semaphore::new(cfg.max_queue_bytes));
        let inner = Arc::new(Inner {
            data_dir: data_dir.to_path_buf(),
            wal_dir,
            catalog_dir,
            cfg: cfg.clone(),
            keys,
            objects,
            state,
            tx,
            queue,
            stats,
            flush_lock: tokio::sync::Mutex::new(()),
            flush_notify: flush_notify.clone(),
            closed: AtomicBool::new(false),
            blocks_fetched: AtomicU64::new(0),
            row_groups_read: AtomicU64::new(0),
            footers_read: AtomicU64::new(0),
            meta_cache: cache::MetaCache::new(cfg.block_footer_cache),
            shutdown,
            writer: Mutex::new(Some(handle)),
            lock: Mutex::new(Some(lock)),
            barrier: Mutex::new(None),
            cluster: cluster.clone(),
        });
        if cluster.is_some() {
            tokio::spawn(refresh_peers(
                Arc::downgrade(&inner),
                inner.shutdown.subscribe(),
            ));
        }
        tokio::spawn(background(
            Arc::downgrade(&inner),
            flush_notify,
            shutdown_rx,
        ));
        Ok((Store { inner }, report))
    }

    /// The key ring this store encrypts with.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.inner.keys
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Appends all spans of one request for one tenant as one WAL record. Returns after the
    /// record is fsynced (group commit: one fsync covers every request queued meanwhile);
    /// the spans are then visible to reads. Fails fast with [`StoreError::Busy`] when the
    /// bytes already queued for the writer plus this request exceed `max_queue_bytes`.
    pub async fn append(
        &self,
        tenant: &TenantId,
        spans: Vec<SpanEntry>,
    ) -> Result<AppendReceipt, StoreError> {
        let (submit, durable) = self.admit(tenant, &spans, 0)?;
        submit.send(spans)?;
        durable.wait().await
    }

    /// Admits one request of `spans` for `tenant`: runs every check that can refuse it
    /// (busy or invalid) and takes its room in the WAL queue. The caller then queues the
    /// record with [`Submit::send`] and awaits [`Durable::wait`]. The pipeline's sealing
    /// commit step seals in between: under its log's lock it assigns the batch its log
    /// index, tags the spans ([`crate::SpanSeal`], the manifest on position 0) and sends
    /// the record *before* releasing the lock, so records of one log reach the WAL in
    /// log-index order and a torn tail can only lose a suffix of the log's entries, never
    /// one in the middle. `reserve` is the bytes the tags and manifest add (charged
    /// against the queue bound).
    pub fn admit(
        &self,
        tenant: &TenantId,
        spans: &[SpanEntry],
        reserve: usize,
    ) -> Result<(Submit, Durable), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let mut bytes = REQUEST_OVERHEAD.saturating_add(reserve);
        for (index, s) in spans.iter().enumerate() {
            s.check_limits().map_err(|e| StoreError::InvalidSpan {
                index,
                reason: e.to_string(),
            })?;
            bytes = bytes.saturating_add(s.encoded_len());
        }
        if spans.len() > crate::entry::MAX_SPANS_PER_RECORD {
            return Err(StoreError::InvalidSpan {
                index: crate::entry::MAX_SPANS_PER_RECORD,
                reason: "too many spans in one request".into(),
            });
        }
        // Flushing is behind (e.g. the object store is down): refuse rather than let the
        // in-memory buffer grow without bound.
        let buffered = self
            .inner
            .state
            .read()
            .map_err(|_| poisoned())?
            .buffered_spans();
        if buffered >= self.inner.cfg.flush_max_spans.saturating_mul(2) {
            self.inner.flush_notify.notify_one();
            return Err(StoreError::Busy {
                retry_after: self
                    .inner
                    .cfg
                    .flush_interval
                    .min(Duration::from_secs(30))
                    .max(Duration::from_secs(1)),
            });
        }
        let max = self.inner.cfg.max_queue_bytes;
        let permits = u32::try_from(bytes)
            .ok()
            .filter(|_| bytes <= max)
            .ok_or(StoreError::RequestTooLarge { bytes, max })?;
        let permit = self
            .inner
            .queue
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| StoreError::Busy {
                retry_after: self.retry_after(),
            })?;
        let (reply, rx) = oneshot::channel();
        Ok((
            Submit {
                tx: self.inner.tx.clone(),
                tenant: tenant.clone(),
                permit,
                reply,
            },
            Durable(rx),
        ))
    }

    /// The object store that holds the blocks (and, under `log/`, the transparency logs).
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.objects
    }

    /// Installs the hook that runs before a flush deletes WAL segments (see
    /// [`WalBarrier`]).
    pub fn set_wal_barrier(&self, barrier: Arc<dyn WalBarrier>) {
        if let Ok(mut b) = self.inner.barrier.lock() {
            *b = Some(barrier);
        }
    }

    pub(crate) fn wal_barrier(&self) -> Option<Arc<dyn WalBarrier>> {
        self.inner.barrier.lock().ok().and_then(|b| b.clone())
    }

    /// A hint for `Retry-After`: at least one second, more when commits are slow.
    fn retry_after(&self) -> Duration {
        let last = self.inner.stats.last_commit_micros.load(Ordering::Relaxed);
        Duration::from_secs(1).max(Duration::from_micros(last.saturating_mul(4)))
    }

    /// WAL writer counters (group commits, records, bytes) since open.
    pub fn wal_counters(&self) -> WalCounters {
        self.inner.stats.counters()
    }

    /// Seconds each WAL group commit's `fdatasync` took (a shared handle: observations
    /// made later show in it).
    pub fn wal_fsync_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.inner.stats.fsync_seconds.clone()
    }

    /// Blocks in the store, over every tenant.
    pub fn block_count(&self) -> usize {
        self.inner
            .state
            .read()
            .map(|s| s.blocks.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// Bytes currently queued for the WAL writer.
    pub fn queued_bytes(&self) -> usize {
        self.inner
            .cfg
            .max_queue_bytes
            .saturating_sub(self.inner.queue.available_permits())
    }

    /// Spans buffered in memory (durable in the WAL, not yet in blocks).
    pub fn buffered_spans(&self) -> usize {
        self.inner
            .state
            .read()
            .map(|s| s.buffered_spans())
            .unwrap_or(0)
    }

    /// Whether the store takes appends: not closed, and its WAL writer is running.
    pub fn is_open(&self) -> bool {
        !self.inner.closed.load(Ordering::Acquire) && !self.inner.tx.is_closed()
    }

    /// Graceful shutdown: stop accepting appends, commit and fsync what is queued, stop the
    /// background tasks. Buffered spans stay in the WAL and are replayed on the next open.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = self.inner.shutdown.send(true);
        let (reply, rx) = oneshot::channel();
        let res = match self.inner.tx.send(WalMsg::Close(reply)) {
            Ok(()) => rx.await.map_err(|_| StoreError::Closed)?,
            Err(_) => Err(StoreError::Closed),
        };
        let handle = self.inner.writer.lock().map_err(|_| poisoned())?.take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
                .map_err(|_| StoreError::Task("WAL writer panicked".into()))?;
        }
        // Wait for a flush in progress to finish, then release the directory.
        drop(self.inner.flush_lock.lock().await);
        drop(self.inner.lock.lock().map_err(|_| poisoned())?.take());
        res
    }

    /// Crypto-shreds a tenant: destroys its data keys, forgets its buffered spans and
    /// catalog, and deletes its blocks. WAL records of the tenant become unreadable at once
    /// and disappear with their segments at the next flush.
    pub async fn shred(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let _flush = self.inner.flush_lock.lock().await;
        self.inner.keys.shred(tenant)?;
        let blocks = {
            let mut st = self.inner.state.write().map_err(|_| poisoned())?;
            let blocks = st.blocks.get(tenant).cloned().unwrap_or_default();
            st.forget(tenant);
            blocks
        };
        for b in blocks.iter().filter(|b| b.is_own()) {
            self.delete_object(&b.path).await?;
        }
        if let Some(c) = &self.inner.cluster {
            c.remove_keys(tenant).await?;
        }
        catalog::remove(&self.inner.catalog_dir, tenant)
    }

    async fn delete_object(&self, path: &object_store::path::Path) -> Result<(), StoreError> {
        use object_store::ObjectStoreExt;
        self.inner.meta_cache.remove(path.as_ref());
        if path.as_ref().ends_with(".parquet") {
            let mac = crate::block::mac::mac_path(path);
            match self.inner.objects.delete(&mac).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(StoreError::ObjectStore {
                        path: mac.to_string(),
                        source: e,
                    });
                }
            }
        }
        match self.inner.objects.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore {
                path: path.to_string(),
                source: e,
            }),
        }
    }
}

/// Replaces the other nodes' blocks in `state` by `listed`, keeping the entries (and the
/// indexes loaded into them) of blocks still listed. Returns the paths no longer listed.
fn merge_peer_blocks(state: &mut State, listed: Vec<BlockInfo>) -> Vec<String> {
    let mut old: std::collections::HashMap<String, Arc<BlockInfo>> = state
        .blocks
        .values()
        .flatten()
        .filter(|b| !b.is_own())
        .map(|b| (b.path.to_string(), b.clone()))
        .collect();
    for list in state.blocks.values_mut() {
        list.retain(|b| b.is_own());
    }
    for b in listed {
        let b = old.remove(b.path.as_ref()).unwrap_or_else(|| Arc::new(b));
        state.blocks.entry(b.tenant.clone()).or_default().push(b);
    }
    for list in state.blocks.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    old.into_keys().collect()
}

impl Store {
    /// Lists the other nodes' blocks and keys now (also runs every
    /// `peer_refresh_interval`); returns how many blocks of other nodes are known. A store
    /// of its own has none.
    pub async fn refresh_peers(&self) -> Result<usize, StoreError> {
        let Some(c) = &self.inner.cluster else {
            return Ok(0);
        };
        let listed = c.refresh(&self.inner.keys, false).await?;
        let n = listed.len();
        let gone = {
            let mut st = self.inner.state.write().map_err(|_| poisoned())?;
            merge_peer_blocks(&mut st, listed)
        };
        for p in gone {
            self.inner.meta_cache.remove(&p);
        }
        Ok(n)
    }

    /// How fresh this node's view of the other nodes sharing its bucket is (`None` for a
    /// store of its own).
    pub fn cluster_status(&self) -> Option<crate::nodes::ClusterStatus> {
        self.inner.cluster.as_ref().map(|c| c.status())
    }

    /// The handle that publishes this node's shared state (quarantines, findings) to the
    /// bucket and reads the other nodes' (`None` for a store of its own).
    pub fn shared_state(&self) -> Option<crate::shared_state::SharedState> {
        self.inner
            .cluster
            .as_ref()
            .map(|c| crate::shared_state::SharedState::new(c.clone(), self.inner.keys.clone()))
    }

    /// The object store that holds block `b` (the bucket prefix for another node's).
    pub(crate) fn objects_for(&self, b: &BlockInfo) -> &Arc<dyn ObjectStore> {
        match (&b.node, &self.inner.cluster) {
            (Some(_), Some(c)) => &c.shared,
            _ => &self.inner.objects,
        }
    }

    /// The key ring that decrypts block `b` (the writing node's).
    pub(crate) fn keys_for(&self, b: &BlockInfo) -> Result<Arc<KeyRing>, StoreError> {
        match (&b.node, &self.inner.cluster) {
            (Some(n), Some(c)) => c.keys_for(n).ok_or_else(|| {
                StoreError::Task(format!("the data keys of node {n} are not listed yet"))
            }),
            _ => Ok(self.inner.keys.clone()),
        }
    }

    /// The node-wide cluster handle, for flushes.
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::nodes::Cluster>> {
        self.inner.cluster.as_ref()
    }
}

/// Lists the other nodes' blocks every `peer_refresh_interval` until shutdown.
async fn refresh_peers(inner: Weak<Inner>, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = inner
        .upgrade()
        .and_then(|i| i.cluster.as_ref().map(|c| c.refresh))
    else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        let store = Store { inner };
        if let Err(e) = store.refresh_peers().await {
            tracing::warn!(error = %e, "listing the other nodes' blocks failed; will retry");
        }
    }
}

/// Takes an exclusive advisory lock on `data_dir/LOCK` so two processes never share a WAL.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "data directory is in use by another store (another process or an unclosed store)",
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

/// The wait before the next try after `failures` consecutive failed ones (flushes, and
/// other periodic work against the object store): the interval, doubled per failure, at
/// most the longer of the interval and 60 s.
pub fn retry_backoff(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let cap = interval.max(Duration::from_secs(60));
    interval
        .saturating_mul(1u32 << (failures - 1).min(16))
        .min(cap)
}

/// Periodic flush and retention, plus early flushes when the writer signals.
async fn background(inner: Weak<Inner>, notify: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = inner.upgrade().map(|i| i.cfg.flush_interval) else {
        return;
    };
    // Consecutive failed flushes (the object store down): retries back off, and early
    // flush requests wait for the backoff too, so a full buffer does not hammer the store.
    let mut failures = 0u32;
    loop {
        let wait = retry_backoff(interval, failures);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notify.notified(), if failures == 0 => {}
            _ = shutdown.changed() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        let store = Store { inner };
        match store.flush().await {
            Ok(_) => {
                failures = 0;
                if let Err(e) = store.compact().await {
                    tracing::warn!(error = %e, "compaction failed; will retry");
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(
                    error = %e,
                    failures,
                    retry_in_ms = u64::try_from(retry_backoff(interval, failures).as_millis()).unwrap_or(u64::MAX),
                    "background flush failed; the WAL keeps the spans, retrying with backoff"
                );
            }
        }
        if let Err(e) = store.enforce_retention(std::time::SystemTime::now()).await {
            tracing::warn!(error = %e, "retention failed; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_flushes_back_off_to_a_bound() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (0..9).map(|f| retry_backoff(s(1), f)).collect();
        assert_eq!(
            waits,
            [s(1), s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]
        );
        assert_eq!(retry_backoff(s(30), 1), s(30));
        assert_eq!(retry_backoff(s(30), 3), s(60));
        assert_eq!(retry_backoff(s(120), 5), s(120));
        assert_eq!(retry_backoff(s(1), u32::MAX), s(60));
    }
}
