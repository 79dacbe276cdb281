//! The task that shares quarantines and findings with the other nodes of a bucket: every
//! `[store] peer_refresh_interval` it publishes what changed here
//! ([`super::response::shared`], [`super::findings::shared`]) and reads the other nodes'
//! snapshots through [`sentrace_store::SharedState`]. Ingest and response never wait on
//! it: a bucket outage only delays sharing, retried with backoff as flushes are.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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

/// The shared-state kinds, in label order.
const KINDS: [&str; 2] = [QUARANTINE, FINDINGS];
/// Outcomes of an upload or a read, in label order.
const OUTCOMES: [&str; 2] = ["ok", "error"];

/// Counters of the sharing task for `/metrics` (absent until [`run`] starts: a node with
/// a store of its own shares nothing).
#[derive(Debug, Default)]
pub struct SharingMetrics {
    running: AtomicBool,
    /// [kind][outcome]: snapshots uploaded or deleted.
    publish: [[AtomicU64; 2]; 2],
    /// [kind][outcome]: reads of the other nodes' snapshots (one listing each).
    fetch: [[AtomicU64; 2]; 2],
    /// The other nodes' quarantines enforced here, at the last read.
    peer_quarantines: AtomicU64,
    /// The other nodes' findings held here, at the last read.
    peer_findings: AtomicU64,
    /// This node's quarantines lifted by another node and adopted here.
    adopted: AtomicU64,
    /// Other nodes' quarantine snapshots refused (unreadable, or naming no quarantine).
    refused: AtomicU64,
}

impl SharingMetrics {
    fn count(table: &[[AtomicU64; 2]; 2], kind: &str, ok: bool) {
        let k = usize::from(kind == FINDINGS);
        table[k][usize::from(!ok)].fetch_add(1, Relaxed);
    }

    fn series(table: &[[AtomicU64; 2]; 2]) -> Vec<([(&'static str, &'static str); 2], u64)> {
        let mut out = Vec::with_capacity(4);
        for (k, kind) in KINDS.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                out.push((
                    [("kind", *kind), ("outcome", *outcome)],
                    table[k][o].load(Relaxed),
                ));
            }
        }
        out
    }

    /// The sharing families (node-wide; no tenant label).
    pub fn encode(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
        use crate::metrics::export;
        if !self.running.load(Relaxed) {
            return Ok(());
        }
        export::counters(
            e,
            "sentrace_shared_publish",
            "This node's quarantine and findings snapshots uploaded to (or deleted from) the \
             bucket, by kind and outcome.",
            Self::series(&self.publish),
        )?;
        export::counters(
            e,
            "sentrace_shared_fetch",
            "Reads of the other nodes' snapshots from the bucket (a listing and the changed \
             objects), by kind and outcome.",
            Self::series(&self.fetch),
        )?;
        export::gauge_u64(
            e,
            "sentrace_shared_peer_quarantines",
            "Other nodes' running quarantines at the last read (enforced here unless a node lifted them).",
            self.peer_quarantines.load(Relaxed),
        )?;
        export::gauge_u64(
            e,
            "sentrace_shared_peer_findings",
            "Other nodes' findings held by this node for /api/findings, at the last read.",
            self.peer_findings.load(Relaxed),
        )?;
        export::counter(
            e,
            "sentrace_shared_adopted_undos",
            "This node's quarantines lifted through another node and adopted here.",
            self.adopted.load(Relaxed),
        )?;
        export::counter(
            e,
            "sentrace_shared_refused_snapshots",
            "Other nodes' quarantine snapshots refused (unreadable or out of bounds).",
            self.refused.load(Relaxed),
        )
    }
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
            SharingMetrics::count(&rt.sharing.publish, QUARANTINE, r.is_ok());
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
        let r = shared.publish(FINDINGS, &tenant, &bytes).await;
        SharingMetrics::count(&rt.sharing.publish, FINDINGS, r.is_ok());
        match r {
            Ok(()) => report.published += 1,
            Err(e) => {
                rt.findings.unpublished(&tenant);
                first_err.get_or_insert(e);
            }
        }
    }
    if rt.response.is_some() {
        let read = shared.read_peers(QUARANTINE).await;
        SharingMetrics::count(&rt.sharing.fetch, QUARANTINE, read.is_ok());
        match read {
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
                let m = &rt.sharing;
                m.peer_quarantines
                    .store(report.quarantine.actions as u64, Relaxed);
                m.adopted
                    .fetch_add(report.quarantine.adopted as u64, Relaxed);
                m.refused
                    .fetch_add(report.quarantine.refused as u64, Relaxed);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let read = shared.read_peers(FINDINGS).await;
    SharingMetrics::count(&rt.sharing.fetch, FINDINGS, read.is_ok());
    match read {
        Ok(peers) => {
            report.peer_findings = rt.findings.set_peers(&peers);
            rt.sharing
                .peer_findings
                .store(report.peer_findings as u64, Relaxed);
        }
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
    rt.sharing.running.store(true, Relaxed);
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
    fn sharing_metrics_appear_once_sharing_runs_with_kind_and_outcome() {
        let m = Arc::new(SharingMetrics::default());
        let text = |m: &Arc<SharingMetrics>| {
            let m = m.clone();
            crate::metrics::export::render(move |e| m.encode(e))
        };
        assert!(
            !text(&m).contains("sentrace_shared"),
            "no bucket, no families"
        );
        m.running.store(true, Relaxed);
        SharingMetrics::count(&m.publish, FINDINGS, false);
        SharingMetrics::count(&m.publish, QUARANTINE, true);
        SharingMetrics::count(&m.fetch, QUARANTINE, true);
        m.peer_quarantines.store(3, Relaxed);
        let t = text(&m);
        for line in [
            r#"sentrace_shared_publish_total{kind="findings",outcome="error"} 1"#,
            r#"sentrace_shared_publish_total{kind="quarantine",outcome="ok"} 1"#,
            r#"sentrace_shared_publish_total{kind="findings",outcome="ok"} 0"#,
            r#"sentrace_shared_fetch_total{kind="quarantine",outcome="ok"} 1"#,
            "sentrace_shared_peer_quarantines 3",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} in:\n{t}");
        }
    }

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
