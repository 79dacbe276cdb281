//! Behavioral baselines that survive a restart (issue #16, part 3).
//!
//! The detector's behavioral state (service edges, endpoints, response sizes, rate series,
//! the warm-up evidence; see `sentrace_detect::behavior`) is saved per tenant as one record
//! of the encrypted journal `baselines` (`<data-dir>/baselines/<tenant>.journal`, sealed
//! under the tenant's data key: crypto-shredding a tenant removes its baselines too):
//!
//! - every `[detect.baselines] persist_interval_secs`, the tenants whose state changed are
//!   snapshotted and each file is replaced atomically (temporary file, fsync, rename) on a
//!   blocking thread, never on the ingest path;
//! - once more at shutdown, after ingest stopped;
//! - at start, before the first batch, each tenant's latest record is restored.
//!
//! A snapshot that cannot be used (damaged or undecryptable file, shredded key, unknown
//! format, another tenant's, values out of range) is a logged warning and a fresh baseline
//! for that tenant, never a failed start.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_detect::Detector;
use sentrace_detect::behavior::BaselineSnapshot;
use sentrace_store::{Journal, KeyRing};

use super::Runtime;
use super::config::BaselinesConfig;

/// The journal's name (bound into its record key and AAD).
pub const JOURNAL_NAME: &str = "baselines";

/// The directory of the baseline files under a data directory.
pub fn dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("baselines")
}

/// The encrypted per-tenant baseline files.
pub struct BaselineStore {
    journal: Journal,
    cfg: BaselinesConfig,
    /// One save at a time: an older snapshot never replaces a newer one.
    saving: Mutex<()>,
    saved: AtomicU64,
    errors: AtomicU64,
}

impl std::fmt::Debug for BaselineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaselineStore")
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

/// What a start found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Tenants whose baselines were restored.
    pub tenants: usize,
    /// Tenants whose snapshot was unusable (logged; they start afresh).
    pub discarded: usize,
}

impl BaselineStore {
    /// The files under `<data_dir>/baselines/` (the directory is created, mode 0700).
    pub fn open(
        cfg: &BaselinesConfig,
        data_dir: &Path,
        keys: Arc<KeyRing>,
    ) -> anyhow::Result<Self> {
        let journal = Journal::open(&dir(data_dir), JOURNAL_NAME, keys)
            .context("opening the baselines journal")?;
        Ok(Self {
            journal,
            cfg: cfg.clone(),
            saving: Mutex::new(()),
            saved: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Tenants with a baselines file.
    pub fn tenants(&self) -> anyhow::Result<Vec<TenantId>> {
        Ok(self.journal.tenants()?)
    }

    /// Replaces one tenant's saved snapshot (offline tools: `sentrace detect profile
    /// reset`; the caller holds the data directory's lock, so no server overwrites it).
    pub fn write(&self, snap: &BaselineSnapshot) -> anyhow::Result<()> {
        let tenant = TenantId::new(&snap.tenant)
            .map_err(|e| anyhow::anyhow!("snapshot names tenant {:?}: {e}", snap.tenant))?;
        let bytes = serde_json::to_vec(snap)?;
        self.journal
            .rewrite(&tenant, &[bytes])
            .with_context(|| format!("saving the baselines of tenant {tenant}"))
    }

    /// One tenant's latest snapshot, or why there is none to use.
    pub fn load(&self, tenant: &TenantId) -> Result<Option<BaselineSnapshot>, String> {
        let loaded = self.journal.load(tenant).map_err(|e| e.to_string())?;
        if loaded.shredded > 0 && loaded.records.is_empty() {
            return Err("its data key was shredded".into());
        }
        let Some(last) = loaded.records.last() else {
            return match loaded.damaged.last() {
                Some((offset, why)) => Err(format!("damaged record at offset {offset}: {why}")),
                None => Ok(None),
            };
        };
        if let Some((offset, why)) = loaded.damaged.last() {
            tracing::warn!(tenant = %tenant, offset, reason = %why, "baselines journal: damaged record skipped");
        }
        if last.len() as u64 > self.cfg.max_snapshot_bytes.max(1024) {
            return Err(format!(
                "snapshot of {} bytes is over [detect.baselines] max_snapshot_bytes",
                last.len()
            ));
        }
        serde_json::from_slice(last)
            .map(Some)
            .map_err(|e| format!("unreadable snapshot: {e}"))
    }

    /// Restores every tenant's saved baselines into `detector` (call before the first
    /// batch). Unusable snapshots are logged and skipped.
    pub fn restore_into(&self, detector: &Detector) -> Restored {
        let mut out = Restored::default();
        let tenants = match self.journal.tenants() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "baselines journal unreadable; every tenant learns its baselines afresh");
                return out;
            }
        };
        for tenant in tenants {
            let r = self.load(&tenant).and_then(|snap| match snap {
                Some(s) => detector
                    .restore_baseline(&tenant, s)
                    .map(|()| true)
                    .map_err(|e| e.to_string()),
                None => Ok(false),
            });
            match r {
                Ok(true) => out.tenants += 1,
                Ok(false) => {}
                Err(why) => {
                    out.discarded += 1;
                    tracing::warn!(tenant = %tenant, reason = %why, "saved baselines not restored; this tenant learns its baselines afresh");
                }
            }
        }
        if out.tenants > 0 || out.discarded > 0 {
            tracing::info!(
                restored = out.tenants,
                discarded = out.discarded,
                "behavioral baselines restored"
            );
        }
        out
    }

    /// Saves the baselines of every tenant that changed since the last save (blocking
    /// I/O: call it from a blocking thread). Returns how many were written; the first
    /// failure is returned after every tenant was tried, and a failed tenant is taken
    /// again next time.
    pub fn save(&self, detector: &Detector) -> anyhow::Result<usize> {
        let _one = self
            .saving
            .lock()
            .map_err(|_| anyhow::anyhow!("baselines save lock poisoned"))?;
        let mut written = 0;
        let mut first_err = None;
        for snap in detector.baseline_snapshots() {
            let Ok(tenant) = TenantId::new(&snap.tenant) else {
                continue;
            };
            let bytes = match serde_json::to_vec(&snap) {
                Ok(b) => b,
                Err(e) => {
                    self.errors.fetch_add(1, Relaxed);
                    first_err.get_or_insert(anyhow::anyhow!(
                        "baselines of tenant {tenant} not serializable: {e}"
                    ));
                    continue;
                }
            };
            if bytes.len() as u64 > self.cfg.max_snapshot_bytes {
                // Not retried: it would be as large next time. Logged every time it changes.
                self.errors.fetch_add(1, Relaxed);
                tracing::warn!(tenant = %tenant, bytes = bytes.len(), limit = self.cfg.max_snapshot_bytes, "baselines snapshot over [detect.baselines] max_snapshot_bytes; not saved (raise the limit or lower [behavior] max_keys)");
                continue;
            }
            match self.journal.rewrite(&tenant, &[bytes]) {
                Ok(()) => {
                    written += 1;
                    self.saved.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    self.errors.fetch_add(1, Relaxed);
                    detector.mark_baseline_unsaved(&tenant);
                    first_err.get_or_insert(
                        anyhow::Error::from(e)
                            .context(format!("saving the baselines of tenant {tenant}")),
                    );
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Snapshots written since start.
    pub fn saved(&self) -> u64 {
        self.saved.load(Relaxed)
    }

    /// Snapshots that failed or were too large, since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

impl Runtime {
    /// Saves the changed baselines on a blocking thread; logs a failure.
    pub async fn save_baselines(self: &Arc<Self>) {
        if self.baselines.is_none() {
            return;
        }
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || match &me.baselines {
            Some(b) => b.save(&me.detector),
            None => Ok(0),
        })
        .await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "saving the behavioral baselines failed; will retry")
            }
            Err(e) => tracing::warn!(error = %e, "baselines save task failed"),
        }
    }

    /// Saves the changed baselines every `[detect.baselines] persist_interval_secs` until
    /// `shutdown`. The last save is the caller's, after ingest stopped
    /// ([`Runtime::save_baselines`]).
    pub async fn run_baseline_saver(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let Some(b) = &self.baselines else { return };
        let every = Duration::from_secs(b.cfg.persist_interval_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        while crate::periodic::tick_or_shutdown(&mut tick, &mut shutdown).await {
            self.save_baselines().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value};
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use sentrace_detect::{Family, Ruleset};

    const SEC: u64 = 1_000_000_000;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn rs(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// `frontend` calls `callee` in trace `n` at `at`.
    fn call(n: u64, at: u64, callee: &str) -> Vec<ResourceSpans> {
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&(n + 1).to_be_bytes());
        let root = Span {
            trace_id: trace.to_vec(),
            span_id: vec![1; 8],
            kind: 2,
            start_time_unix_nano: at,
            end_time_unix_nano: at + 1000,
            attributes: vec![kv("http.route", "/checkout")],
            ..Default::default()
        };
        let child = Span {
            span_id: vec![2; 8],
            parent_span_id: vec![1; 8],
            attributes: vec![],
            ..root.clone()
        };
        vec![rs("frontend", vec![root]), rs(callee, vec![child])]
    }

    fn detector() -> Detector {
        let mut r = Ruleset::default_ruleset().unwrap();
        r.behavior.warmup_secs = 60;
        r.behavior.warmup_min_spans = 50;
        r.behavior.warmup_min_sources = 50;
        Detector::new(r).unwrap()
    }

    fn keys(dir: &Path) -> Arc<KeyRing> {
        Arc::new(
            KeyRing::open(
                &dir.join("keys"),
                &sentrace_store::MasterKey::from_bytes([5; 32]),
            )
            .unwrap(),
        )
    }

    #[test]
    fn saved_encrypted_restored_and_damage_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new("acme").unwrap();
        let t0 = 1_700_000_000 * SEC;
        let cfg = BaselinesConfig::default();
        let d = detector();
        let store = BaselineStore::open(&cfg, dir.path(), keys(dir.path())).unwrap();
        for i in 0..100 {
            assert!(d.inspect(&t, &call(i, t0 + i * SEC, "cart"), 0).is_empty());
        }
        assert_eq!(store.save(&d).unwrap(), 1);
        assert_eq!(store.save(&d).unwrap(), 0, "nothing changed since");
        let file = dir.path().join("baselines/acme.journal");
        let raw = std::fs::read(&file).unwrap();
        assert!(
            !raw.windows(8).any(|w| w == b"frontend"),
            "encrypted at rest"
        );

        // A restart: restored, warm, and a new edge is reported at once.
        let after = detector();
        let store = BaselineStore::open(&cfg, dir.path(), keys(dir.path())).unwrap();
        assert_eq!(
            store.restore_into(&after),
            Restored {
                tenants: 1,
                discarded: 0
            }
        );
        let f = after.inspect(&t, &call(200, t0 + 101 * SEC, "payments"), 0);
        assert!(
            f.iter().any(|f| f.family == Family::LateralMovement),
            "{f:?}"
        );

        // A damaged file is a warning and a fresh baseline, never a failed start.
        let mut bad = raw.clone();
        let n = bad.len();
        bad[n - 5] ^= 0xff;
        std::fs::write(&file, &bad).unwrap();
        let fresh = detector();
        let store = BaselineStore::open(&cfg, dir.path(), keys(dir.path())).unwrap();
        assert_eq!(
            store.restore_into(&fresh),
            Restored {
                tenants: 0,
                discarded: 1
            }
        );
        assert!(
            fresh
                .inspect(&t, &call(201, t0 + 102 * SEC, "payments"), 0)
                .iter()
                .all(|f| f.family != Family::LateralMovement),
            "fresh baselines warm up again"
        );
        // So is a file under another master key (undecryptable).
        std::fs::write(&file, &raw).unwrap();
        let other_keys = Arc::new(
            KeyRing::open(
                &dir.path().join("other-keys"),
                &sentrace_store::MasterKey::from_bytes([6; 32]),
            )
            .unwrap(),
        );
        let store = BaselineStore::open(&cfg, dir.path(), other_keys).unwrap();
        assert_eq!(store.restore_into(&detector()).discarded, 1);
    }
}
