//! Offline verification of every node sharing a bucket (`sentrace verify --store URL`):
//! each node's transparency logs (`nodes/<node>/log/<tenant>/`) against its blocks
//! (`nodes/<node>/<tenant>/`), decrypted with its wrapped data keys
//! (`nodes/<node>/keys/`) and checked with its log key (`nodes/<node>/log-key.wrapped`),
//! all unwrapped with the one master key the nodes share. A log key or data key swapped in
//! the bucket does not unwrap, so the bucket alone cannot vouch for itself.
//!
//! The node whose data directory is given is read as [`super::audit::audit_store`] reads it
//! (its WAL too). The other nodes' WALs are on their own disks: their spans count once
//! flushed, so run this after the nodes flushed (or stopped after a flush).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::prefix::PrefixStore;
use sentrace_ledger::verify::PinState;
use sentrace_store::MasterKey;
use sentrace_store::nodes::{KEYS_DIR, LOG_KEY_FILE, get_small, list_nodes, node_prefix};

use super::audit::{AuditOptions, TenantAudit, audit_store};

/// Verifies every node's logs in `shared` (the bucket at the `[store] url` prefix).
/// `own` is this node's name and data directory, read with its WAL; `opts.node` is
/// ignored (each node's logs have its own origins) and `opts.key` applies to `own` only.
/// Each audit's `tenant` is the log's origin `<node>/<tenant>`; block locations in
/// findings are the bucket keys `nodes/<node>/<tenant>/<block>.parquet`.
pub async fn audit_bucket(
    shared: Arc<dyn ObjectStore>,
    own: Option<(&str, &Path)>,
    master: &MasterKey,
    pins: &mut PinState,
    opts: AuditOptions<'_>,
) -> anyhow::Result<Vec<TenantAudit>> {
    let nodes = list_nodes(shared.as_ref())
        .await
        .context("listing the nodes in the bucket")?;
    let mut out = Vec::new();
    let progress = opts.progress;
    for node in nodes {
        let objects = PrefixStore::new(shared.clone(), node_prefix(&node));
        let scratch;
        let (dir, key) = match own {
            Some((name, dir)) if name == node => (dir.to_path_buf(), opts.key.clone()),
            _ => {
                scratch = tempfile::tempdir().context("making a scratch directory")?;
                fetch_node(shared.as_ref(), &node, scratch.path()).await?;
                (scratch.path().to_path_buf(), None)
            }
        };
        let audits = audit_store(
            &dir,
            &objects,
            master,
            pins,
            AuditOptions {
                node: node.clone(),
                key,
                tenant: opts.tenant.clone(),
                witnesses: opts.witnesses.clone(),
                quorum: opts.quorum,
                progress: &mut *progress,
            },
        )
        .await
        .with_context(|| format!("verifying node {node}"))?;
        for mut a in audits {
            a.tenant = format!("{node}/{}", a.tenant);
            for f in &mut a.report.findings {
                for b in [&mut f.block, &mut f.other_block].into_iter().flatten() {
                    if let Some(rest) = b.strip_prefix("blocks/") {
                        *b = format!("nodes/{node}/{rest}");
                    }
                }
            }
            out.push(a);
        }
    }
    Ok(out)
}

/// Copies what verifying `node` needs from the bucket into a scratch data directory:
/// its wrapped data keys (`keys/`) and its wrapped log key.
async fn fetch_node(shared: &dyn ObjectStore, node: &str, dir: &Path) -> anyhow::Result<()> {
    let base = node_prefix(node);
    let wrapped = get_small(
        shared,
        &object_store::path::Path::from(format!("{base}/{LOG_KEY_FILE}")),
    )
    .await?
    .with_context(|| {
        format!(
            "node {node} has no {LOG_KEY_FILE} in the bucket (it never started with this version)"
        )
    })?;
    sentrace_store::fsutil::write_atomic_private(&super::keys::wrapped_key_path(dir), &wrapped)?;
    let keys_dir = dir.join(KEYS_DIR);
    sentrace_store::fsutil::create_private_dir(&keys_dir)?;
    let prefix = object_store::path::Path::from(format!("{base}/{KEYS_DIR}"));
    let mut listing = shared.list(Some(&prefix));
    let mut paths = Vec::new();
    while let Some(meta) = listing.next().await {
        paths.push(meta.with_context(|| format!("listing {prefix}/"))?.location);
    }
    drop(listing);
    for p in paths {
        let Some(file) = p.filename().map(str::to_string) else {
            continue;
        };
        if !file.ends_with(".json") || file.contains('/') {
            continue;
        }
        if let Some(bytes) = get_small(shared, &p).await? {
            sentrace_store::fsutil::write_atomic_private(&keys_dir.join(&file), &bytes)?;
        }
    }
    Ok(())
}
