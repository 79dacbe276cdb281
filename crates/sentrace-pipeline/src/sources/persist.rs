//! Snapshots of the replay state: `<data-dir>/sources/<tenant>.replay.json`, written
//! atomically (temporary file, fsync, rename) off the ack path.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::replay::ReplayGuard;
use sentrace_store::{BarrierFuture, WalBarrier};

use super::Sources;

/// The largest snapshot read back.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;
const SUFFIX: &str = ".replay.json";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    /// Format version (1).
    version: u32,
    /// The tenant.
    tenant: String,
    /// The guard.
    guard: ReplayGuard,
}

/// The snapshot file of `tenant`.
pub fn path(data_dir: &Path, tenant: &TenantId) -> std::path::PathBuf {
    super::registry::dir(data_dir).join(format!("{}{SUFFIX}", tenant.as_str()))
}

/// Every tenant's snapshot. A damaged snapshot stops the start: replays could otherwise be
/// accepted again (delete the file to start that tenant's sources afresh, knowingly).
pub fn load_all(data_dir: &Path) -> anyhow::Result<Vec<(TenantId, ReplayGuard)>> {
    let dir = super::registry::dir(data_dir);
    let mut out = Vec::new();
    for (tenant, p, bytes) in crate::tenant_files::read_all(&dir, SUFFIX, MAX_SNAPSHOT_BYTES)? {
        let snap: Snapshot = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: the replay state of tenant {tenant} is damaged; delete it only if replays of that tenant's past batches are acceptable",
                p.display()
            )
        })?;
        if snap.version != 1 || snap.tenant != tenant.as_str() {
            anyhow::bail!(
                "{}: snapshot version {} of tenant {:?} (expected version 1 of {tenant})",
                p.display(),
                snap.version,
                snap.tenant
            );
        }
        out.push((tenant, snap.guard));
    }
    Ok(out)
}

impl Sources {
    /// Writes the snapshot of every tenant whose state changed since its last one.
    /// Serialized: a snapshot never overwrites a newer one.
    pub fn persist(&self) -> anyhow::Result<usize> {
        let _one = self
            .persist_lock
            .lock()
            .map_err(|_| anyhow::anyhow!("persist lock poisoned"))?;
        let dirty: Vec<(TenantId, ReplayGuard)> = {
            let mut tenants = self.lock()?;
            tenants
                .iter_mut()
                .filter(|(_, t)| t.dirty)
                .map(|(k, t)| {
                    t.dirty = false;
                    (k.clone(), t.guard.clone())
                })
                .collect()
        };
        let mut written = 0;
        for (tenant, guard) in dirty {
            let snap = Snapshot {
                version: 1,
                tenant: tenant.to_string(),
                guard,
            };
            let r = serde_json::to_vec(&snap)
                .map_err(anyhow::Error::from)
                .and_then(|b| {
                    sentrace_store::fsutil::write_atomic(&path(&self.data_dir, &tenant), &b, 0o600)
                        .map_err(anyhow::Error::from)
                });
            if let Err(e) = r {
                if let Ok(mut t) = self.lock()
                    && let Some(t) = t.get_mut(&tenant)
                {
                    t.dirty = true;
                }
                return Err(e.context(format!("saving the replay state of tenant {tenant}")));
            }
            written += 1;
        }
        Ok(written)
    }

    async fn persist_async(self: &Arc<Self>) -> anyhow::Result<usize> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.persist())
            .await
            .map_err(|e| anyhow::anyhow!("persist task: {e}"))?
    }

    /// Snapshots every `persist_interval_secs` until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let every = Duration::from_secs(self.cfg.persist_interval_secs.max(1));
        let mut tick = tokio::time::interval(every);
        while crate::periodic::tick_or_shutdown(&mut tick, &mut shutdown).await {
            if let Err(e) = self.persist_async().await {
                tracing::warn!(error = %format!("{e:#}"), "saving the replay state failed; will retry");
            }
        }
        if let Err(e) = self.persist_async().await {
            tracing::error!(error = %format!("{e:#}"), "saving the final replay state failed");
        }
    }
}

/// The store's WAL barrier: saves the replay state (so the signed batches in the WAL
/// segments about to go are covered by a snapshot), then runs the next barrier (the seal's
/// publication).
pub struct Barrier {
    /// The replay state.
    pub sources: Arc<Sources>,
    /// The barrier that runs after.
    pub next: Option<Arc<dyn WalBarrier>>,
}

impl WalBarrier for Barrier {
    fn before_wal_drop(&self) -> BarrierFuture {
        let sources = self.sources.clone();
        let next = self.next.clone();
        Box::pin(async move {
            sources
                .persist_async()
                .await
                .map_err(|e| format!("{e:#}"))?;
            match next {
                Some(n) => n.before_wal_drop().await,
                None => Ok(()),
            }
        })
    }
}
