//! Several nodes sharing one bucket, with no coordinator of their own.
//!
//! Layout under the `[store] url` prefix (`s3://bucket/prefix`):
//!
//! ```text
//! kek-id                                  id of the master key every node must use (the first node writes it)
//! nodes/<node>/node.json                  {node, flush_interval_ms, kek}: what the other nodes need to know
//! nodes/<node>/keys/<tenant>.json         the node's wrapped data keys (a copy of its keys/<tenant>.json)
//! nodes/<node>/log-key.wrapped            its log signing key, wrapped by the master key (for verify)
//! nodes/<node>/<tenant>/<block>.parquet   its blocks (and their .parquet.mac tags)
//! nodes/<node>/log/<tenant>/...           its transparency logs (tiles, checkpoint)
//! nodes/<node>/_shared/<kind>/<tenant>.sealed  its published quarantines and findings
//!                                         (see [`crate::shared_state`])
//! ```
//!
//! Each node writes only under its own `nodes/<node>/` (and, once, `kek-id` when it is
//! absent), so no two nodes ever write the same object and creating or rotating a key needs
//! no conditional put: data key ids are per node, and a block is decrypted with the keys of
//! the node whose prefix holds it. A node publishes a tenant's key file before the first
//! block that uses a new key, and others list blocks before keys, so every block they list
//! has its keys listed too.
//!
//! Every node reads every other node's blocks: [`Cluster::refresh`] lists the bucket at an
//! interval (`[store] peer_refresh_interval`), downloads changed key files into
//! `<data_dir>/peers/<node>/` (still wrapped) and hands the block list to the store, whose
//! bounded footer cache then serves them like its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use crate::block::BlockInfo;
use crate::error::ForeignMasterKey;
use crate::{KeyRing, StoreConfig, StoreError};

/// The folder of every node's objects.
pub const NODES_PREFIX: &str = "nodes";
/// The bucket's master key marker: the id of the KEK every node must use.
pub const KEK_MARKER: &str = "kek-id";
/// A node's description, `nodes/<node>/node.json`.
pub const NODE_FILE: &str = "node.json";
/// A node's wrapped data keys, `nodes/<node>/keys/<tenant>.json`.
pub const KEYS_DIR: &str = "keys";
/// A node's wrapped log signing key, `nodes/<node>/log-key.wrapped`.
pub const LOG_KEY_FILE: &str = "log-key.wrapped";
/// Longest node name.
pub const MAX_NODE_NAME: usize = 64;
/// Most nodes listed in one bucket.
pub const MAX_NODES: usize = 1024;
/// Largest small object read (key files, node descriptions, the marker).
const MAX_SMALL_OBJECT: usize = 4 << 20;

/// Checks that `name` is safe as one object-key and file-name component: 1 to 64 of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
pub fn check_node_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::Config {
        field: "node",
        reason: format!(
            "[seal] node {name:?} {reason}: a node's name is part of every object key it writes in a shared bucket"
        ),
    };
    if name.is_empty() || name.len() > MAX_NODE_NAME {
        return Err(bad(&format!("must be 1 to {MAX_NODE_NAME} characters")));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(bad("must not start with '.' or '-'"));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(bad("may hold only A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
    Ok(())
}

/// The prefix of a node's objects, from the bucket prefix.
pub fn node_prefix(node: &str) -> ObjectPath {
    ObjectPath::from(format!("{NODES_PREFIX}/{node}"))
}

/// `nodes/<node>/node.json`: what other nodes and operators need to know of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node's name.
    pub node: String,
    /// Its flush interval in milliseconds: its acknowledged spans reach the bucket within
    /// about this long.
    pub flush_interval_ms: u64,
    /// The id of its master key.
    pub kek: String,
    /// How long its last flush took to store its blocks, in milliseconds (absent before
    /// its first flush): its spans reach the bucket within the flush interval plus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush_ms: Option<u64>,
}

/// Only the `kek` field of a key file (read without unwrapping anything).
#[derive(Deserialize)]
struct KekOnly {
    #[serde(default)]
    kek: Option<String>,
}

/// Reads a small object; `None` if it does not exist.
pub async fn get_small(
    store: &dyn ObjectStore,
    path: &ObjectPath,
) -> Result<Option<Bytes>, StoreError> {
    let oerr = |e| StoreError::ObjectStore {
        path: path.to_string(),
        source: e,
    };
    let res = match store.get(path).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(oerr(e)),
    };
    if res.meta.size > MAX_SMALL_OBJECT as u64 {
        return Err(StoreError::Corrupt {
            path: path.to_string().into(),
            offset: 0,
            reason: format!(
                "{} bytes, more than the {MAX_SMALL_OBJECT} allowed",
                res.meta.size
            ),
        });
    }
    res.bytes().await.map(Some).map_err(oerr)
}

/// Names of the nodes with objects in the bucket, sorted (at most [`MAX_NODES`]).
pub async fn list_nodes(shared: &dyn ObjectStore) -> Result<Vec<String>, StoreError> {
    let prefix = ObjectPath::from(NODES_PREFIX);
    let listed = shared
        .list_with_delimiter(Some(&prefix))
        .await
        .map_err(|e| StoreError::ObjectStore {
            path: format!("{prefix}/"),
            source: e,
        })?;
    let mut out: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.parts().nth(1).map(|n| n.as_ref().to_string()))
        .filter(|n| check_node_name(n).is_ok())
        .take(MAX_NODES)
        .collect();
    out.sort();
    Ok(out)
}

/// One other node, as last listed.
struct Peer {
    keys: Arc<KeyRing>,
    /// Key file name → the version listed (e-tag, else size and time).
    key_versions: HashMap<String, String>,
    flush_interval: Option<Duration>,
    last_flush: Option<Duration>,
    blocks: usize,
}

/// What operators see of the other nodes (`/metrics`): how fresh this node's view is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    /// This node's name.
    pub node: String,
    /// Other nodes seen in the bucket at the last listing.
    pub peers: usize,
    /// Their blocks.
    pub peer_blocks: usize,
    /// When the bucket was last listed successfully, Unix seconds (0: never).
    pub last_listing_unix_secs: u64,
    /// Listings that failed since start.
    pub listing_failures: u64,
    /// How long a span acknowledged by another node may stay invisible here once listings
    /// succeed: that node's flush interval plus its last flush's duration (the longest of
    /// them over the nodes), plus this node's listing interval.
    pub visibility_bound: Duration,
    /// The longest last flush duration the other nodes published (zero before any).
    pub peer_flush: Duration,
}

/// The freshness bound: the longest `flush interval + last flush duration` over the other
/// nodes (`own` when none published one), plus this node's listing interval.
pub fn visibility_bound(
    peers: impl IntoIterator<Item = (Option<Duration>, Option<Duration>)>,
    own: Duration,
    refresh: Duration,
) -> Duration {
    peers
        .into_iter()
        .filter_map(|(interval, flush)| {
            interval.map(|i| i.saturating_add(flush.unwrap_or(Duration::ZERO)))
        })
        .max()
        .unwrap_or(own)
        .saturating_add(refresh)
}

/// This node's place among the nodes sharing a bucket.
pub(crate) struct Cluster {
    pub node: String,
    pub url: String,
    /// The bucket at the configured prefix (every node's objects).
    pub shared: Arc<dyn ObjectStore>,
    pub refresh: Duration,
    own_flush: Duration,
    own_kek: String,
    /// The last flush duration published in this node's `node.json`, in milliseconds
    /// (`u64::MAX`: none yet).
    published_flush_ms: AtomicU64,
    peers_dir: PathBuf,
    peers: RwLock<HashMap<String, Peer>>,
    /// Tenant → SHA-256 of the key file last uploaded.
    published: Mutex<HashMap<TenantId, [u8; 32]>>,
    last_listing_unix_secs: AtomicU64,
    listing_failures: AtomicU64,
}

fn version_of(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag
        .clone()
        .unwrap_or_else(|| format!("{}@{}", meta.size, meta.last_modified.timestamp_millis()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn poisoned() -> StoreError {
    StoreError::Task("cluster state lock poisoned".into())
}

impl Cluster {
    /// Joins the bucket as `node`: checks (or writes, when absent) the bucket's master key
    /// marker, restores this node's key files from the bucket when the local disk lacks
    /// them (a node rebuilt on a new disk keeps reading its own blocks), and publishes
    /// `node.json`. A marker naming another master key is
    /// [`StoreError::ForeignMasterKey`].
    pub(crate) async fn join(
        shared: Arc<dyn ObjectStore>,
        url: String,
        node: &str,
        keys: &KeyRing,
        data_dir: &Path,
        cfg: &StoreConfig,
    ) -> Result<Cluster, StoreError> {
        check_node_name(node)?;
        let kek = keys.kek_id().to_string();
        let marker = ObjectPath::from(KEK_MARKER);
        let found = match get_small(shared.as_ref(), &marker).await? {
            Some(b) => Some(b),
            None => {
                // Create only if absent; a store without conditional puts gets a plain put
                // (two first nodes racing with different keys then meet at the key check).
                let put = |mode| {
                    let opts = PutOptions {
                        mode,
                        ..PutOptions::default()
                    };
                    shared.put_opts(&marker, PutPayload::from(kek.clone().into_bytes()), opts)
                };
                match put(PutMode::Create).await {
                    Ok(_) => None,
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => {
                        get_small(shared.as_ref(), &marker).await?
                    }
                    Err(object_store::Error::NotImplemented { .. }) => {
                        put(PutMode::Overwrite)
                            .await
                            .map_err(|e| StoreError::ObjectStore {
                                path: marker.to_string(),
                                source: e,
                            })?;
                        None
                    }
                    Err(e) => {
                        return Err(StoreError::ObjectStore {
                            path: marker.to_string(),
                            source: e,
                        });
                    }
                }
            }
        };
        if let Some(b) = found {
            let text = String::from_utf8_lossy(&b).trim().to_string();
            if text != kek {
                return Err(StoreError::ForeignMasterKey(Box::new(ForeignMasterKey {
                    url,
                    what: format!("every data key of the bucket (its `{KEK_MARKER}` marker)"),
                    found: text.chars().take(128).collect(),
                    configured: kek,
                })));
            }
        }
        let cluster = Cluster {
            node: node.to_string(),
            url,
            shared,
            refresh: cfg.peer_refresh_interval,
            own_flush: cfg.flush_interval,
            own_kek: keys.kek_id().to_string(),
            published_flush_ms: AtomicU64::new(u64::MAX),
            peers_dir: data_dir.join("peers"),
            peers: RwLock::new(HashMap::new()),
            published: Mutex::new(HashMap::new()),
            last_listing_unix_secs: AtomicU64::new(0),
            listing_failures: AtomicU64::new(0),
        };
        cluster.purge_erased(keys).await?;
        cluster.restore_own_keys(keys).await?;
        cluster.put_node_info(None).await?;
        Ok(cluster)
    }

    /// Writes this node's `node.json`.
    async fn put_node_info(&self, last_flush_ms: Option<u64>) -> Result<(), StoreError> {
        let info = NodeInfo {
            node: self.node.clone(),
            flush_interval_ms: u64::try_from(self.own_flush.as_millis()).unwrap_or(u64::MAX),
            kek: self.own_kek.clone(),
            last_flush_ms,
        };
        let json = serde_json::to_vec_pretty(&info)
            .map_err(|e| StoreError::Task(format!("node.json: {e}")))?;
        self.put_own(NODE_FILE, json).await
    }

    /// Publishes how long a flush took to store its blocks (in `node.json`, which the
    /// other nodes read at every listing), so that their freshness bound includes it.
    /// Rounded up to 100 ms and written only when that changes. A failed write is logged:
    /// the flush itself succeeded.
    pub(crate) async fn record_flush(&self, took: Duration) {
        let ms = u64::try_from(took.as_millis())
            .unwrap_or(u64::MAX)
            .div_ceil(100)
            .saturating_mul(100);
        if self.published_flush_ms.load(Ordering::Relaxed) == ms {
            return;
        }
        match self.put_node_info(Some(ms)).await {
            Ok(()) => self.published_flush_ms.store(ms, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(error = %e, "publishing the flush duration in node.json failed; the other nodes keep the last one")
            }
        }
    }

    fn own_path(&self, rel: &str) -> ObjectPath {
        ObjectPath::from(format!("{NODES_PREFIX}/{}/{rel}", self.node))
    }

    /// Writes an object under this node's prefix.
    pub(crate) async fn put_own(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.own_path(rel);
        self.shared
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| StoreError::ObjectStore {
                path: path.to_string(),
                source: e,
            })
    }

    /// Downloads this node's key files that the local `keys/` lacks. A local file is never
    /// replaced: it is the newer copy (it is written before any data uses a new key, and
    /// uploaded before any block does).
    async fn restore_own_keys(&self, keys: &KeyRing) -> Result<(), StoreError> {
        let prefix = self.own_path(KEYS_DIR);
        let mut listing = self.shared.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| StoreError::ObjectStore {
                path: format!("{prefix}/"),
                source: e,
            })?;
            found.push(meta.location);
        }
        drop(listing);
        for path in found {
            let Some(file) = path.filename().map(str::to_string) else {
                continue;
            };
            let Some(tenant) = file
                .strip_suffix(".json")
                .and_then(|t| TenantId::new(t).ok())
            else {
                continue;
            };
            let local = keys.dir().join(&file);
            if local.exists() {
                continue;
            }
            if let Some(bytes) = get_small(self.shared.as_ref(), &path).await? {
                self.check_kek(
                    &bytes,
                    &format!("data keys of node {}, tenant {tenant}", self.node),
                    keys,
                )?;
                crate::fsutil::write_atomic_private(&local, &bytes)?;
                tracing::info!(tenant = %tenant, "restored this node's data keys from the bucket");
            }
        }
        Ok(())
    }

    fn check_kek(&self, bytes: &[u8], what: &str, keys: &KeyRing) -> Result<(), StoreError> {
        let found = serde_json::from_slice::<KekOnly>(bytes)
            .ok()
            .and_then(|k| k.kek)
            .unwrap_or_else(|| "(none recorded)".into());
        if found != keys.kek_id() {
            return Err(StoreError::ForeignMasterKey(Box::new(ForeignMasterKey {
                url: self.url.clone(),
                what: what.to_string(),
                found: found.chars().take(128).collect(),
                configured: keys.kek_id().to_string(),
            })));
        }
        Ok(())
    }

    /// Uploads the tenant's key file when it changed since the last upload. Runs before a
    /// block of the tenant is written, so no block in the bucket names a key the bucket
    /// lacks.
    pub(crate) async fn publish_keys(
        &self,
        keys: &KeyRing,
        tenant: &TenantId,
    ) -> Result<(), StoreError> {
        let file = format!("{}.json", tenant.as_str());
        let local = keys.dir().join(&file);
        let bytes = {
            let local = local.clone();
            tokio::task::spawn_blocking(move || {
                crate::fsutil::read_bounded(&local, MAX_SMALL_OBJECT as u64, "key file")
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        if self
            .published
            .lock()
            .map_err(|_| poisoned())?
            .get(tenant)
            .is_some_and(|h| *h == hash)
        {
            return Ok(());
        }
        self.put_own(&format!("{KEYS_DIR}/{file}"), bytes).await?;
        self.published
            .lock()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), hash);
        Ok(())
    }

    /// Deletes the tenant's key file from the bucket (crypto-shredding on this node).
    pub(crate) async fn remove_keys(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let path = self.own_path(&format!("{KEYS_DIR}/{}.json", tenant.as_str()));
        if let Ok(mut p) = self.published.lock() {
            p.remove(tenant);
        }
        match self.shared.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore {
                path: path.to_string(),
                source: e,
            }),
        }
    }

    /// The key ring of another node (its downloaded key files).
    pub(crate) fn keys_for(&self, node: &str) -> Option<Arc<KeyRing>> {
        self.peers
            .read()
            .ok()
            .and_then(|p| p.get(node).map(|p| p.keys.clone()))
    }

    /// Lists every other node's blocks, then downloads their changed key files (blocks
    /// first: a node uploads a key before the blocks under it). `strict` (at start) makes
    /// a key file under another master key an error; later it is logged and that node's
    /// keys are not updated.
    pub(crate) async fn refresh(
        &self,
        own: &KeyRing,
        strict: bool,
    ) -> Result<Vec<BlockInfo>, StoreError> {
        let res = self.refresh_inner(own, strict).await;
        match &res {
            Ok(_) => self
                .last_listing_unix_secs
                .store(now_secs(), Ordering::Relaxed),
            Err(_) => {
                self.listing_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        res
    }

    async fn refresh_inner(
        &self,
        own: &KeyRing,
        strict: bool,
    ) -> Result<Vec<BlockInfo>, StoreError> {
        let shared = self.shared.as_ref();
        let oerr = |path: String| move |e| StoreError::ObjectStore { path, source: e };
        let mut blocks = Vec::new();
        let mut seen = HashMap::new();
        for node in list_nodes(shared).await? {
            if node == self.node {
                continue;
            }
            let name: Arc<str> = Arc::from(node.as_str());
            let base = node_prefix(&node);
            let strip = format!("{base}/");
            // Blocks: `nodes/<node>/<tenant>/<name>.parquet`, tenant by tenant (the log
            // tiles under `log/` are not listed).
            let top = shared
                .list_with_delimiter(Some(&base))
                .await
                .map_err(oerr(format!("{base}/")))?;
            let mut node_blocks = Vec::new();
            for dir in &top.common_prefixes {
                let Some(sub) = dir.parts().nth(2) else {
                    continue;
                };
                if sub.as_ref() == "log"
                    || sub.as_ref() == KEYS_DIR
                    || sub.as_ref() == crate::shared_state::SHARED_DIR
                {
                    continue;
                }
                let mut listing = shared.list(Some(dir));
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(oerr(format!("{dir}/")))?;
                    let Some(rel) = meta.location.as_ref().strip_prefix(&strip) else {
                        continue;
                    };
                    if let Some(b) =
                        BlockInfo::parse_peer(&name, &ObjectPath::from(rel), meta.location.clone())
                    {
                        node_blocks.push(b);
                    }
                }
            }
            // Node description: its flush interval bounds how stale its blocks are.
            let info = get_small(shared, &ObjectPath::from(format!("{base}/{NODE_FILE}")))
                .await?
                .and_then(|b| serde_json::from_slice::<NodeInfo>(&b).ok());
            // Key files: download the changed ones, then reopen the node's ring.
            let keys_prefix = ObjectPath::from(format!("{base}/{KEYS_DIR}"));
            let mut listing = shared.list(Some(&keys_prefix));
            let mut listed = Vec::new();
            while let Some(meta) = listing.next().await {
                listed.push(meta.map_err(oerr(format!("{keys_prefix}/")))?);
            }
            drop(listing);
            let (mut versions, old_keys) = {
                let p = self.peers.read().map_err(|_| poisoned())?;
                match p.get(&node) {
                    Some(peer) => (peer.key_versions.clone(), Some(peer.keys.clone())),
                    None => (HashMap::new(), None),
                }
            };
            let dir = self.peers_dir.join(&node);
            let mut changed = old_keys.is_none();
            let listed_files: std::collections::HashSet<String> = listed
                .iter()
                .filter_map(|m| m.location.filename().map(str::to_string))
                .collect();
            // A key file the node deleted (it erased or shredded the tenant): delete the
            // downloaded copy too, so this node can no longer open that tenant's data.
            let removed = {
                let (dir, keep) = (dir.clone(), listed_files.clone());
                tokio::task::spawn_blocking(move || erased::remove_unlisted_keys(&dir, &keep))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??
            };
            for file in &removed {
                versions.remove(file);
                tracing::info!(node = %node, file = %file, "another node deleted a key file (tenant erased or shredded there); deleted its copy");
            }
            changed |= !removed.is_empty();
            for meta in listed {
                let Some(file) = meta.location.filename().map(str::to_string) else {
                    continue;
                };
                let Some(tenant) = file
                    .strip_suffix(".json")
                    .and_then(|t| TenantId::new(t).ok())
                else {
                    continue;
                };
                let version = version_of(&meta);
                if versions.get(&file) == Some(&version) {
                    continue;
                }
                let Some(bytes) = get_small(shared, &meta.location).await? else {
                    continue;
                };
                let what = format!("data keys of node {node}, tenant {tenant}");
                if let Err(e) = self.check_kek(&bytes, &what, own) {
                    if strict {
                        return Err(e);
                    }
                    tracing::error!(error = %e, "not using another node's data keys");
                    continue;
                }
                let (dir, path) = (dir.clone(), dir.join(&file));
                tokio::task::spawn_blocking(move || {
                    crate::fsutil::create_private_dir(&dir)?;
                    crate::fsutil::write_atomic_private(&path, &bytes)
                })
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??;
                versions.insert(file, version);
                changed = true;
            }
            // A node uploads a tenant's key file before any block under it, and the blocks
            // were listed first: a block whose tenant has no key file listed belongs to a
            // tenant that node erased or shredded, and is not read.
            node_blocks.retain(|b: &BlockInfo| {
                listed_files.contains(&format!("{}.json", b.tenant.as_str()))
            });
            let count = node_blocks.len();
            blocks.extend(node_blocks);
            let keys = match (changed, old_keys) {
                (false, Some(k)) => k,
                _ => Arc::new(own.open_sibling(&dir)?),
            };
            seen.insert(
                node,
                Peer {
                    keys,
                    key_versions: versions,
                    flush_interval: info
                        .as_ref()
                        .map(|i| Duration::from_millis(i.flush_interval_ms)),
                    last_flush: info
                        .as_ref()
                        .and_then(|i| i.last_flush_ms)
                        .map(Duration::from_millis),
                    blocks: count,
                },
            );
        }
        *self.peers.write().map_err(|_| poisoned())? = seen;
        Ok(blocks)
    }

    /// How fresh this node's view of the others is.
    pub(crate) fn status(&self) -> ClusterStatus {
        let (peers, peer_blocks, bound, peer_flush) = self
            .peers
            .read()
            .map(|p| {
                (
                    p.len(),
                    p.values().map(|x| x.blocks).sum(),
                    visibility_bound(
                        p.values().map(|x| (x.flush_interval, x.last_flush)),
                        self.own_flush,
                        self.refresh,
                    ),
                    p.values()
                        .filter_map(|x| x.last_flush)
                        .max()
                        .unwrap_or(Duration::ZERO),
                )
            })
            .unwrap_or((
                0,
                0,
                self.own_flush.saturating_add(self.refresh),
                Duration::ZERO,
            ));
        ClusterStatus {
            node: self.node.clone(),
            peers,
            peer_blocks,
            last_listing_unix_secs: self.last_listing_unix_secs.load(Ordering::Relaxed),
            listing_failures: self.listing_failures.load(Ordering::Relaxed),
            visibility_bound: bound,
            peer_flush,
        }
    }
}

#[path = "nodes_erased.rs"]
mod erased;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_adds_each_nodes_flush_duration_to_its_interval() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Node 1: 10 s + 4.5 s; node 2: 12 s + 0.2 s; node 3 (older, no duration): 9 s.
        let peers = [
            (Some(s(10)), Some(ms(4500))),
            (Some(s(12)), Some(ms(200))),
            (Some(s(9)), None),
            (None, Some(s(60))),
        ];
        assert_eq!(visibility_bound(peers, s(30), s(5)), ms(19_500));
        assert_eq!(visibility_bound([], s(30), s(5)), s(35));
        // An older node's file (no field) still parses; the field is written when known.
        let old: NodeInfo =
            serde_json::from_str(r#"{"node":"a","flush_interval_ms":1000,"kek":"k"}"#).unwrap();
        assert_eq!(old.last_flush_ms, None);
        let json = serde_json::to_string(&NodeInfo {
            last_flush_ms: Some(300),
            ..old
        })
        .unwrap();
        assert!(json.contains(r#""last_flush_ms":300"#), "{json}");
    }

    #[test]
    fn node_names_are_one_safe_path_component() {
        for ok in ["a", "node-1", "eu_west.2", &"n".repeat(MAX_NODE_NAME)] {
            check_node_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "a+b",
            "ü",
            "a\\b",
            &"n".repeat(MAX_NODE_NAME + 1),
        ] {
            let e = check_node_name(bad).unwrap_err().to_string();
            assert!(e.contains("[seal] node"), "{bad:?}: {e}");
        }
    }
}
