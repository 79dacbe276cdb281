//! What a node does about tenants erased or shredded: on its own objects in the bucket
//! (deleted at start when `sentrace tenant erase` ran without the bucket, before a key file
//! could be restored) and on the other nodes' key files it downloaded (deleted once that
//! node deleted them, so an erasure there also ends this node's reads of that data).

use std::path::Path;

use futures::StreamExt;
use sentrace_core::TenantId;

use super::{Cluster, KEYS_DIR};
use crate::{KeyRing, StoreError};

impl Cluster {
    /// Deletes this node's bucket objects of the tenants erased on this node (`sentrace
    /// tenant erase` ran offline, perhaps without the bucket): their key files and
    /// `_shared` snapshots, before [`Self::restore_own_keys`] could bring a destroyed key
    /// file back.
    pub(super) async fn purge_erased(&self, keys: &KeyRing) -> Result<(), StoreError> {
        let mut tenants = std::collections::BTreeSet::new();
        for dir in [KEYS_DIR, crate::shared_state::SHARED_DIR] {
            let prefix = self.own_path(dir);
            let mut listing = self.shared.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| StoreError::ObjectStore {
                    path: format!("{prefix}/"),
                    source: e,
                })?;
                if let Some(t) = meta
                    .location
                    .filename()
                    .and_then(|f| {
                        f.strip_suffix(".json")
                            .or_else(|| f.strip_suffix(".sealed"))
                    })
                    .and_then(|t| TenantId::new(t).ok())
                {
                    tenants.insert(t);
                }
            }
        }
        for tenant in tenants {
            if keys.erased(&tenant)?.is_some() {
                crate::shared_state::remove_erased_tenant(
                    self.shared.as_ref(),
                    &self.node,
                    &tenant,
                )
                .await?;
                tracing::info!(tenant = %tenant, "deleted an erased tenant's key file and shared snapshots from the bucket");
            }
        }
        Ok(())
    }
}

/// Deletes the `<tenant>.json` key files of `dir` (another node's downloaded keys) that are
/// not in `listed`; returns their names. A missing directory holds nothing.
pub(super) fn remove_unlisted_keys(
    dir: &Path,
    listed: &std::collections::HashSet<String>,
) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.ends_with(".json") || listed.contains(&name) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    if !removed.is_empty() {
        crate::fsutil::sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_no_longer_listed_are_deleted_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let peer = dir.path().join("a");
        assert!(
            remove_unlisted_keys(&peer, &Default::default())
                .unwrap()
                .is_empty(),
            "no directory yet"
        );
        std::fs::create_dir(&peer).unwrap();
        for f in ["acme.json", "beta.json", "notes.txt"] {
            std::fs::write(peer.join(f), b"{}").unwrap();
        }
        let listed = ["beta.json".to_string()].into_iter().collect();
        assert_eq!(remove_unlisted_keys(&peer, &listed).unwrap(), ["acme.json"]);
        assert!(!peer.join("acme.json").exists());
        assert!(peer.join("beta.json").exists());
        assert!(
            peer.join("notes.txt").exists(),
            "only key files are touched"
        );
    }
}
