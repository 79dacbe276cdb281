//! The task that shares quarantines and findings with the other nodes of a bucket: every
//! `[store] peer_refresh_interval` it publishes what changed here
//! ([`super::response::shared`], [`super::findings::shared`]) and reads the other nodes'
//! snapshots through [`sentrace_store::SharedState`]. Ingest and response never wait on
//! it: a bucket outage only delays sharing, retried with backoff as flushes are.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_store::{SharedState, StoreError, retry_backoff};
use tokio::sync::watch;

use super::Runtime;
use super::findings::shared::KIND as FINDINGS;
use super::response::shared::{KIND as QUARANTINE, PeerReport};

/// What one [`sync_once`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Snapshots uploaded (or deleted) for this node.
    pub published: usize,
    /// The other nodes' quarantines, as applied.
    pub quarantine: PeerReport,
    /// The other nodes' findings held here.
    pub peer_findings: usize,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Publishes this node's changed snapshots, then reads and applies the other nodes'. A
/// failed upload is retried on the next call (nothing is marked published); the first
/// error is returned after the other steps ran.
pub async fn sync_once(rt: &Arc<Runtime>, shared: &SharedState) -> Result<SyncReport, StoreError> {
    let mut report = SyncReport::default();
    let mut first_err: Option<StoreError> = None;
    let now = now_nanos();
    if let Some(resp) = &rt.response {
        for (tenant, bytes) in resp.snapshots(now) {
            let r = match &bytes {
                Some(b) => shared.publish(QUARANTINE, &tenant, b).await,
                None => shared.remove(QUARANTINE, &tenant).await,
            };
            match r {
                Ok(()) => {
                    resp.published(&tenant, bytes);
                    report.published += 1;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
    }
    for (tenant, bytes) in rt.findings.take_snapshots() {
        match shared.publish(FINDINGS, &tenant, &bytes).await {
            Ok(()) => report.published += 1,
            Err(e) => {
                rt.findings.unpublished(&tenant);
                first_err.get_or_insert(e);
            }
        }
    }
    if rt.response.is_some() {
        match shared.read_peers(QUARANTINE).await {
            Ok(peers) => {
                let rt2 = rt.clone();
                let applied = tokio::task::spawn_blocking(move || {
                    rt2.response
                        .as_ref()
                        .map(|r| r.apply_peers(&peers, now))
                        .transpose()
                })
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
                .map_err(|e| {
                    StoreError::Task(format!("applying other nodes' quarantines: {e:#}"))
                })?;
                report.quarantine = applied.unwrap_or_default();
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match shared.read_peers(FINDINGS).await {
        Ok(peers) => report.peer_findings = rt.findings.set_peers(&peers),
        Err(e) => {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Shares until `shutdown` turns true: names this node in the findings and responses, then
/// runs [`sync_once`] every `peer_refresh_interval` (backing off while the bucket fails).
pub async fn run(rt: Arc<Runtime>, shared: SharedState, mut shutdown: watch::Receiver<bool>) {
    rt.findings.set_node(shared.node());
    if let Some(r) = &rt.response {
        r.set_node(shared.node());
    }
    let interval = shared.refresh_interval();
    let mut failures = 0u32;
    loop {
        match sync_once(&rt, &shared).await {
            Ok(r) => {
                if failures > 0 {
                    tracing::info!(
                        failures,
                        "sharing quarantines and findings with the other nodes works again"
                    );
                }
                failures = 0;
                tracing::debug!(?r, "shared state synchronized with the other nodes");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(
                    error = %e,
                    failures,
                    retry_in_ms = u64::try_from(retry_backoff(interval, failures).as_millis()).unwrap_or(u64::MAX),
                    "sharing quarantines and findings with the other nodes failed; local journals keep them, retrying with backoff"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry_backoff(interval, failures)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failed_rounds_back_off_to_a_bound() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (0..9).map(|f| retry_backoff(s(1), f)).collect();
        assert_eq!(
            waits,
            [s(1), s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]
        );
    }
}
