//! Small per-tenant state that the nodes sharing a bucket publish to each other: the
//! response actions in force (quarantines and their undos) and recent detection findings.
//!
//! Each node keeps the durable copy of its own state in its local journals; what it puts in
//! the bucket is a published snapshot, one object per kind and tenant, replaced whole:
//!
//! ```text
//! nodes/<node>/_shared/<kind>/<tenant>.sealed
//! object = "STSS1\n" ‖ dek_id:u32be ‖ AES-256-GCM(key, aad, payload)
//! key    = HKDF-SHA-256(DEK of the tenant, "sentrace shared v1" ‖ kind)   (RFC 5869)
//! aad    = "sentrace shared v1" ‖ len-prefixed(kind) ‖ len-prefixed(node) ‖
//!          len-prefixed(tenant) ‖ dek_id
//! ```
//!
//! The data key is the publishing node's (its key file is uploaded first, as for a block),
//! so crypto-shredding a tenant on that node makes its snapshots unreadable too, and an
//! object copied to another node's, tenant's or kind's name fails authentication. `_shared`
//! cannot be a tenant directory (tenant ids start with a letter or digit).
//!
//! Each node writes only its own objects, so there are no write races and no conditional
//! puts; a reader downloads only objects whose version (e-tag) changed since its last read
//! and keeps the decrypted payloads in a cache bounded by the number of nodes and tenants
//! ([`MAX_SHARED_OBJECT`] bytes each, [`MAX_SHARED_OBJECTS`] objects per kind).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sentrace_core::TenantId;

use crate::crypto::{AeadKey, put_field};
use crate::keys::DekId;
use crate::nodes::{Cluster, KEYS_DIR, NODES_PREFIX, check_node_name, get_small, list_nodes};
use crate::{KeyRing, StoreError};

/// The folder of a node's published state, `nodes/<node>/_shared/`.
pub const SHARED_DIR: &str = "_shared";
/// Largest published object (sealed), 4 MiB: a publisher trims its payload below it.
pub const MAX_SHARED_OBJECT: usize = 4 << 20;
/// Most objects of one kind read from the bucket (all nodes and tenants together).
pub const MAX_SHARED_OBJECTS: usize = 4096;
/// Longest kind name.
const MAX_KIND: usize = 32;
const MAGIC: &[u8] = b"STSS1\n";
const LABEL: &[u8] = b"sentrace shared v1";
const SUFFIX: &str = ".sealed";
/// AES-GCM nonce and tag around the payload.
const SEAL_OVERHEAD: usize = 12 + 16;

/// Room for a payload in one object: [`MAX_SHARED_OBJECT`] minus the header and the seal.
pub const MAX_SHARED_PAYLOAD: usize = MAX_SHARED_OBJECT - MAGIC.len() - 4 - SEAL_OVERHEAD;

/// One published object of another node, decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// The node that published it.
    pub node: Arc<str>,
    /// Its tenant.
    pub tenant: TenantId,
    /// The payload as published.
    pub payload: Arc<Vec<u8>>,
}

/// A cached peer object: its version in the bucket and its payload.
struct Cached {
    version: String,
    state: PeerState,
}

/// Publishes this node's snapshots and reads the other nodes' ones (see the module docs).
/// Cheap to clone.
#[derive(Clone)]
pub struct SharedState {
    cluster: Arc<Cluster>,
    keys: Arc<KeyRing>,
    /// (kind, object path) → last read.
    cache: Arc<Mutex<HashMap<(String, String), Cached>>>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("node", &self.cluster.node)
            .finish_non_exhaustive()
    }
}

fn check_kind(kind: &str) -> Result<(), StoreError> {
    if kind.is_empty()
        || kind.len() > MAX_KIND
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return Err(StoreError::Config {
            field: "kind",
            reason: format!("shared state kind {kind:?} must be 1 to {MAX_KIND} of a-z and '-'"),
        });
    }
    Ok(())
}

fn aad(kind: &str, node: &str, tenant: &TenantId, dek: DekId) -> Vec<u8> {
    let mut out = LABEL.to_vec();
    put_field(&mut out, kind.as_bytes());
    put_field(&mut out, node.as_bytes());
    put_field(&mut out, tenant.as_str().as_bytes());
    out.extend_from_slice(&dek.to_be_bytes());
    out
}

fn object_key(
    keys: &KeyRing,
    tenant: &TenantId,
    dek: DekId,
    kind: &str,
) -> Result<AeadKey, StoreError> {
    let dek = keys.dek(tenant, dek)?;
    AeadKey::new(&dek.derive(&[LABEL, kind.as_bytes()])?)
}

fn poisoned() -> StoreError {
    StoreError::Task("shared state cache lock poisoned".into())
}

impl SharedState {
    pub(crate) fn new(cluster: Arc<Cluster>, keys: Arc<KeyRing>) -> Self {
        Self {
            cluster,
            keys,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.cluster.node
    }

    /// How often the other nodes list the bucket (`[store] peer_refresh_interval`): the
    /// interval to publish and read at.
    pub fn refresh_interval(&self) -> std::time::Duration {
        self.cluster.refresh
    }

    fn rel(kind: &str, tenant: &TenantId) -> String {
        format!("{SHARED_DIR}/{kind}/{}{SUFFIX}", tenant.as_str())
    }

    /// Seals `payload` under the tenant's current data key and replaces this node's object
    /// of `kind` for `tenant` (the tenant's key file goes up first, so every reader can
    /// fetch the key). A payload over [`MAX_SHARED_PAYLOAD`] is refused: trim it first. A
    /// tenant erased on this node (`sentrace tenant erase`) is never published: its object
    /// is deleted instead.
    pub async fn publish(
        &self,
        kind: &str,
        tenant: &TenantId,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        check_kind(kind)?;
        if self.keys.erased(tenant)?.is_some() {
            return self.remove(kind, tenant).await;
        }
        if payload.len() > MAX_SHARED_PAYLOAD {
            return Err(StoreError::Config {
                field: "payload",
                reason: format!(
                    "shared {kind} state of tenant {tenant} is {} bytes, more than the {MAX_SHARED_PAYLOAD} one object holds",
                    payload.len()
                ),
            });
        }
        let dek = self.keys.current_dek(tenant)?;
        self.cluster.publish_keys(&self.keys, tenant).await?;
        let key = AeadKey::new(&dek.derive(&[LABEL, kind.as_bytes()])?)?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + payload.len() + SEAL_OVERHEAD);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&dek.id.to_be_bytes());
        key.seal_append(&aad(kind, self.node(), tenant, dek.id), payload, &mut out)?;
        self.cluster.put_own(&Self::rel(kind, tenant), out).await
    }

    /// Deletes this node's object of `kind` for `tenant` (nothing left to publish).
    pub async fn remove(&self, kind: &str, tenant: &TenantId) -> Result<(), StoreError> {
        check_kind(kind)?;
        let path = ObjectPath::from(format!(
            "{NODES_PREFIX}/{}/{}",
            self.node(),
            Self::rel(kind, tenant)
        ));
        match self.cluster.shared.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore {
                path: path.to_string(),
                source: e,
            }),
        }
    }

    /// Every other node's objects of `kind`, decrypted with that node's data keys (listed
    /// by the peer refresh). Downloads only changed objects; forgets deleted ones. An
    /// object that cannot be read yet (its key file not listed yet) or is damaged is logged
    /// and skipped, and tried again next time; a listing failure is an error.
    pub async fn read_peers(&self, kind: &str) -> Result<Vec<PeerState>, StoreError> {
        check_kind(kind)?;
        let shared = self.cluster.shared.as_ref();
        let mut listed = Vec::new();
        'nodes: for node in list_nodes(shared).await? {
            if node == self.cluster.node {
                continue;
            }
            let prefix = ObjectPath::from(format!("{NODES_PREFIX}/{node}/{SHARED_DIR}/{kind}"));
            let mut listing = shared.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| StoreError::ObjectStore {
                    path: format!("{prefix}/"),
                    source: e,
                })?;
                if listed.len() >= MAX_SHARED_OBJECTS {
                    tracing::warn!(
                        kind,
                        limit = MAX_SHARED_OBJECTS,
                        "too many shared objects; the rest are not read"
                    );
                    break 'nodes;
                }
                listed.push((node.clone(), meta));
            }
        }
        let mut out = Vec::with_capacity(listed.len());
        let mut keep = std::collections::HashSet::new();
        for (node, meta) in listed {
            let Some(tenant) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(SUFFIX))
                .and_then(|t| TenantId::new(t).ok())
            else {
                continue;
            };
            let path = meta.location.to_string();
            let version = meta.e_tag.clone().unwrap_or_else(|| {
                format!("{}@{}", meta.size, meta.last_modified.timestamp_millis())
            });
            let cache_key = (kind.to_string(), path.clone());
            keep.insert(cache_key.clone());
            if let Some(c) = self.cache.lock().map_err(|_| poisoned())?.get(&cache_key)
                && c.version == version
            {
                out.push(c.state.clone());
                continue;
            }
            let Some(bytes) = get_small(shared, &meta.location).await? else {
                continue;
            };
            match self.open(kind, &node, &tenant, &bytes) {
                Ok(payload) => {
                    let state = PeerState {
                        node: Arc::from(node.as_str()),
                        tenant,
                        payload: Arc::new(payload),
                    };
                    self.cache.lock().map_err(|_| poisoned())?.insert(
                        cache_key,
                        Cached {
                            version,
                            state: state.clone(),
                        },
                    );
                    out.push(state);
                }
                Err(e) => {
                    tracing::warn!(object = %path, error = %e, "another node's shared state is not readable (yet); will retry");
                    // The last readable copy stays in use until a newer one opens.
                    if let Some(c) = self.cache.lock().map_err(|_| poisoned())?.get(&cache_key) {
                        out.push(c.state.clone());
                    }
                }
            }
        }
        self.cache
            .lock()
            .map_err(|_| poisoned())?
            .retain(|k, _| k.0 != kind || keep.contains(k));
        Ok(out)
    }

    /// Opens another node's object of `kind` for `tenant`.
    fn open(
        &self,
        kind: &str,
        node: &str,
        tenant: &TenantId,
        bytes: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: format!("{NODES_PREFIX}/{node}/{}", Self::rel(kind, tenant)).into(),
            offset: 0,
            reason: reason.to_string(),
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("not a sealed shared-state object (bad magic)"))?;
        if rest.len() < 4 + SEAL_OVERHEAD {
            return Err(corrupt("shorter than its header"));
        }
        let (id, sealed) = rest.split_at(4);
        let mut b = [0u8; 4];
        b.copy_from_slice(id);
        let dek = DekId::from_be_bytes(b);
        let keys = self.cluster.keys_for(node).ok_or_else(|| {
            StoreError::Task(format!("the data keys of node {node} are not listed yet"))
        })?;
        let key = object_key(&keys, tenant, dek, kind)?;
        key.open(
            &aad(kind, node, tenant, dek),
            sealed,
            &format!("shared {kind} state of node {node}, tenant {tenant}"),
        )
    }
}

/// Deletes from the bucket (`shared`, at its prefix) what `node` published of a tenant
/// that `sentrace tenant erase` erased there: its key file `nodes/<node>/keys/<tenant>.json`
/// (the bucket copy of the destroyed data keys, which every node sharing the master key
/// could otherwise still unwrap) and its snapshots `nodes/<node>/_shared/<kind>/<tenant>.sealed`
/// of every kind. Deleting an absent object is no error. Returns the objects deleted or
/// found absent. The other nodes' objects of the tenant are sealed under their own data
/// keys, which only an erasure on each of them destroys: they are left alone.
pub async fn remove_erased_tenant(
    shared: &dyn ObjectStore,
    node: &str,
    tenant: &TenantId,
) -> Result<Vec<String>, StoreError> {
    check_node_name(node)?;
    let base = format!("{NODES_PREFIX}/{node}");
    let mut paths = vec![ObjectPath::from(format!(
        "{base}/{KEYS_DIR}/{}.json",
        tenant.as_str()
    ))];
    let dir = ObjectPath::from(format!("{base}/{SHARED_DIR}"));
    let kinds =
        shared
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| StoreError::ObjectStore {
                path: format!("{dir}/"),
                source: e,
            })?;
    for kind in kinds.common_prefixes.iter().take(MAX_SHARED_OBJECTS) {
        paths.push(kind.clone().join(format!("{}{SUFFIX}", tenant.as_str())));
    }
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        match shared.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => out.push(path.to_string()),
            Err(e) => {
                return Err(StoreError::ObjectStore {
                    path: path.to_string(),
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_one_plain_name() {
        check_kind("quarantine").unwrap();
        check_kind("findings").unwrap();
        for bad in ["", "a/b", "Q", "..", &"k".repeat(MAX_KIND + 1)] {
            assert!(check_kind(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aad_binds_kind_node_and_tenant() {
        let t = TenantId::new("acme").unwrap();
        let u = TenantId::new("other").unwrap();
        let base = aad("findings", "a", &t, 1);
        assert_ne!(base, aad("quarantine", "a", &t, 1));
        assert_ne!(base, aad("findings", "b", &t, 1));
        assert_ne!(base, aad("findings", "a", &u, 1));
        assert_ne!(base, aad("findings", "a", &t, 2));
    }
}
