//! The server side of the console's security views: JSON endpoints on the query port for
//! exposure, integrity, the service map with its security overlay, finding detail and
//! response undo, and the admin inventory (tokens, public keys).
//!
//! Every handler authenticates with [`crate::app::Reader`], is authorized by the query
//! service's Cedar policies and writes one audit record (refusals included), like every
//! other read. Errors are `{"error": msg}`.
//!
//! | route | action |
//! |---|---|
//! | `GET /api/exposure` | `read_findings` |
//! | `GET /api/integrity` | `verify` |
//! | `POST /api/integrity/verify` | `run_verify` |
//! | `GET /api/map` | `search` (+ `read_findings` for the overlay) |
//! | `GET /api/findings/{id}` | `read_findings` |
//! | `POST /api/responses/{id}/undo` | `undo_response` |
//! | `GET /api/admin/tokens`, `GET /api/admin/keys` | `read_admin` |

pub mod admin;
pub mod exposure;
pub mod findings;
pub mod integrity;
pub mod map;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sentrace_core::TenantId;
use sentrace_pipeline::seal::witness_config::WitnessConfig;
use sentrace_redact::ExposureLog;
use sentrace_store::MasterKey;

/// How often changed exposure counts are saved (and once more at shutdown).
pub const EXPOSURE_PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest per-tenant state file read back (exposure or integrity).
pub const MAX_STATE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What the security views need beyond [`crate::app::AppState`].
pub struct SecViews {
    /// The data directory (for the offline-style verification and the state files).
    pub data_dir: PathBuf,
    /// The master key (the verification unwraps the node's log key and the data keys).
    master: MasterKey,
    /// `[seal] node`.
    pub node: String,
    /// `[[seal.witness]]`.
    pub witnesses: Vec<WitnessConfig>,
    /// `[seal] witness_quorum`.
    pub witness_quorum: usize,
    /// `[detect] new_edge_window_secs`.
    pub new_edge_window_secs: u64,
    /// The minimize stage's exposure counts (None when minimization is off).
    pub exposure: Option<Arc<ExposureLog>>,
    /// Verification results and the one-at-a-time guard per tenant.
    pub integrity: integrity::IntegrityState,
    /// The store's blocks and log objects (the local `blocks/` or the `[store] url` bucket).
    pub objects: Arc<dyn object_store::ObjectStore>,
}

impl std::fmt::Debug for SecViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecViews")
            .field("data_dir", &self.data_dir)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// How [`SecViews::open`] is configured.
pub struct SecViewsOptions<'a> {
    /// The data directory.
    pub data_dir: &'a Path,
    /// The master key.
    pub master: MasterKey,
    /// The server configuration.
    pub config: &'a crate::Config,
    /// The exposure log of the pipeline's registry.
    pub exposure: Option<Arc<ExposureLog>>,
    /// The store's object store ([`sentrace_store::Store::objects`]).
    pub objects: Arc<dyn object_store::ObjectStore>,
}

impl SecViews {
    /// Restores the persisted exposure and verification results. A damaged file stops the
    /// start, naming it (delete it to start that tenant's view afresh).
    pub fn open(opts: SecViewsOptions<'_>) -> anyhow::Result<Arc<Self>> {
        if let Some(log) = &opts.exposure {
            for (tenant, rows) in exposure::load_all(opts.data_dir)? {
                log.restore(&tenant, rows);
            }
        }
        let integrity = integrity::IntegrityState::open(opts.data_dir)?;
        Ok(Arc::new(Self {
            data_dir: opts.data_dir.to_path_buf(),
            master: opts.master,
            node: opts.config.seal.node.clone(),
            witnesses: opts.config.seal.witness.clone(),
            witness_quorum: opts.config.seal.witness_quorum,
            new_edge_window_secs: opts.config.detect.new_edge_window_secs,
            exposure: opts.exposure,
            integrity,
            objects: opts.objects,
        }))
    }

    /// Saves changed exposure every `every` until `shutdown`, then once more.
    pub async fn run(
        self: Arc<Self>,
        every: std::time::Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        while sentrace_pipeline::periodic::tick_or_shutdown(&mut tick, &mut shutdown).await {
            if let Err(e) = self.persist_async().await {
                tracing::warn!(error = %format!("{e:#}"), "saving the exposure counts failed; will retry");
            }
        }
        if let Err(e) = self.persist_async().await {
            tracing::error!(error = %format!("{e:#}"), "saving the final exposure counts failed");
        }
    }

    async fn persist_async(self: &Arc<Self>) -> anyhow::Result<usize> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || match &me.exposure {
            Some(log) => exposure::persist(&me.data_dir, log),
            None => Ok(0),
        })
        .await
        .map_err(|e| anyhow::anyhow!("exposure persist task: {e}"))?
    }
}

/// Reads a per-tenant state file `<dir>/<tenant><suffix>` of every tenant, bounded.
pub(crate) fn read_tenant_files(
    dir: &Path,
    suffix: &str,
) -> anyhow::Result<Vec<(TenantId, Vec<u8>)>> {
    Ok(
        sentrace_pipeline::tenant_files::read_all(dir, suffix, MAX_STATE_FILE_BYTES)?
            .into_iter()
            .map(|(tenant, _, bytes)| (tenant, bytes))
            .collect(),
    )
}

/// Unix nanoseconds now.
pub(crate) fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
