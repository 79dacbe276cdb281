//! The read-audit log: every read, every authentication failure and every admin action,
//! one [`AuditRecord`] each, in its tenant's own transparency log (the node's own log for
//! records with no tenant), durable before the answer leaves.
//!
//! - [`AuditLog`] is the query service's [`AuditSink`]: [`AuditSink::record`] resolves
//!   once the record is fsynced (group commit through the writer thread, see [`writer`]);
//!   an error means the read must fail with 503 (no audit, no data).
//! - On disk ([`files`]): an encrypted journal per log (records sealed under the
//!   tenant's data key) and its latest signed checkpoint. The log is an RFC 9162 Merkle
//!   tree whose leaves are the records' stored (encrypted) bytes, with C2SP
//!   `tlog-checkpoint`s signed by the node's hybrid log key, origin
//!   `<node>/<tenant>/audit`.
//! - [`search`] reads records back for auditors (the API and `sentrace audit`);
//!   [`ocsf`] maps them to OCSF API Activity (class 6003); [`verify`] is what
//!   `sentrace verify` runs over every audit log.

pub mod files;
pub mod ocsf;
pub mod routes;
pub mod search;
pub mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::LogSigner;
use sentrace_ledger::log::CheckpointCadence;
use sentrace_store::{KeyRing, MasterKey};
use tokio::sync::{mpsc, oneshot};

pub use files::{AuditFiles, LogName};
pub use search::{AuditEntry, AuditFilter, AuditQuery, SearchResult};
pub use sentrace_query::audit::{
    AuditError, AuditFuture, AuditReceipt, AuditRecord, AuditSink, BreakGlassUse, Outcome,
};
pub use writer::AuditStats;

/// Records queued for the writer at most; further callers wait (backpressure).
const QUEUE: usize = 4096;

/// The node's audit logs: the [`AuditSink`] the query service writes to.
pub struct AuditLog {
    files: Arc<AuditFiles>,
    node: String,
    tx: mpsc::Sender<writer::Job>,
    stats: Arc<AuditStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the audit logs under `<data_dir>/audit/` and starts the writer thread.
    /// `keys` is the store's key ring, `master` the master key (for the node log's own
    /// key ring), `signer` the node's log key ([`crate::seal::keys::load_or_create`]),
    /// `node` the node name (`[seal] node`), `cadence` when checkpoints are signed
    /// (`[seal.checkpoint]`). Existing logs are loaded and checked against their
    /// checkpoints now; a damaged one is logged and refuses records (fail closed).
    pub fn open(
        data_dir: &Path,
        keys: Arc<KeyRing>,
        master: &MasterKey,
        signer: &LogSigner,
        node: &str,
        cadence: CheckpointCadence,
    ) -> anyhow::Result<Arc<Self>> {
        let signer = LogSigner::from_secret_string(&signer.to_secret_string())
            .map_err(|e| anyhow::anyhow!("log key: {e}"))?;
        let files = Arc::new(AuditFiles::open(data_dir, keys, master)?);
        let stats = Arc::new(AuditStats::default());
        let mut w = writer::Writer::new(
            files.clone(),
            node.to_owned(),
            signer,
            cadence,
            stats.clone(),
        );
        w.load_all();
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("sentrace-audit".into())
            .spawn(move || w.run(rx))?;
        Ok(Arc::new(Self {
            files,
            node: node.to_owned(),
            tx,
            stats,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The files behind the logs (for [`search::search`] and [`verify`]).
    pub fn files(&self) -> &Arc<AuditFiles> {
        &self.files
    }

    /// The writer's counters (also on `/metrics` as `sentrace_audit_*`).
    pub fn stats(&self) -> &Arc<AuditStats> {
        &self.stats
    }

    /// The node name (first part of every audit log's origin).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Signs a checkpoint for every log that grew (`force`) or whose cadence says one
    /// is due, and waits until they are written.
    pub async fn checkpoint(&self, force: bool) -> Result<(), AuditError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(writer::Job::Checkpoint {
                force,
                reply: Some(reply),
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Signs due checkpoints every second until `shutdown`, then every pending one.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        while sentrace_pipeline::periodic::tick_or_shutdown(&mut tick, &mut shutdown).await {
            let _ = self
                .tx
                .send(writer::Job::Checkpoint {
                    force: false,
                    reply: None,
                })
                .await;
        }
        if let Err(e) = self.checkpoint(true).await {
            tracing::error!(error = %e, "signing the final audit checkpoints failed");
        }
    }

    /// Searches one log (a tenant's, or the node's with `None`), off the runtime's
    /// workers. The caller has already authorized the reader for that tenant
    /// (`read_audit`); this does not record the search itself (the query service does).
    pub async fn search(
        &self,
        tenant: Option<&TenantId>,
        filter: AuditFilter,
    ) -> Result<SearchResult, AuditError> {
        let files = self.files.clone();
        let log = LogName::of(tenant);
        tokio::task::spawn_blocking(move || search::search(&files, &log, &filter))
            .await
            .map_err(|e| AuditError(format!("audit search task: {e}")))?
            .map_err(|e| AuditError(e.to_string()))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The writer ends once every sender is gone; it signs the final checkpoints.
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn stopped() -> AuditError {
    AuditError("the audit writer has stopped".into())
}

impl AuditSink for AuditLog {
    fn record(&self, record: AuditRecord) -> AuditFuture<'_> {
        Box::pin(async move {
            let log = LogName::of(record.tenant.as_ref());
            let payload = serde_json::to_vec(&record)
                .map_err(|e| AuditError(format!("encoding the audit record: {e}")))?;
            if payload.len() > files::MAX_RECORD_BYTES {
                return Err(AuditError(format!(
                    "audit record of {} bytes exceeds {} (too many trace ids in one answer; lower the query limit)",
                    payload.len(),
                    files::MAX_RECORD_BYTES
                )));
            }
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(writer::Job::Append {
                    log,
                    payload,
                    reply,
                })
                .await
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }
}

/// Records an authentication failure: who tried (`presented`: the non-secret part of the
/// credential, such as a token id, a JWT `iss#sub` or a certificate subject, never the
/// secret), from where, on which endpoint, and why. `tenant` is the tenant the
/// credential named *if it can be trusted to have named it* (for instance a known token
/// id whose secret was wrong); otherwise `None`, and the record goes to the node's own
/// audit log. Resolves once durable. Call it before sending the 401; if it fails, send
/// 503 instead (the failure could not be recorded).
pub async fn record_auth_failure(
    sink: &dyn AuditSink,
    tenant: Option<TenantId>,
    presented: &str,
    source: Option<SocketAddr>,
    endpoint: &str,
    reason: &str,
) -> Result<AuditReceipt, AuditError> {
    let mut r = AuditRecord::new(
        now_nanos(),
        tenant,
        presented,
        "authenticate",
        endpoint,
        Outcome::Unauthenticated,
    );
    r.source = source.map(|s| s.to_string());
    r.reason = Some(reason.to_owned());
    sink.record(r).await
}

/// Now, Unix nanoseconds.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
