//! Signed sources: verifying a source's signature over the batch it sent, refusing
//! replays, recording sequence gaps, and the per-tenant "require signatures" rule.
//!
//! # Contract
//!
//! A source (an edge agent, or any client holding a registered key) sends the four
//! headers of [`wire`] with its export request. It signs
//! `source_statement(source, seq, sent_at, span_count, span_root)`
//! ([`sentrace_ledger::manifest`]), where `span_root` is the RFC 9162 root over the
//! canonical encoding of the spans exactly as sent, in request order
//! ([`sentrace_ledger::manifest::batch_span_root`]).
//!
//! # On receipt
//!
//! The [`SourceStage`] runs right after `validate` and before detection and minimization
//! change anything. For a signed batch, in this order (cheap checks first, and the replay
//! state is touched only once the signature verified, so a forger cannot burn sequence
//! numbers):
//!
//! 1. the source must be registered for the token's tenant ([`registry`]);
//! 2. the key IDs in the signature must be the source's registered ones;
//! 3. both signatures (Ed25519 and ML-DSA-44) must verify over the statement rebuilt from
//!    the headers and the signed count and root;
//! 4. the server re-encodes the received spans canonically and computes their root (one
//!    encode and one SHA-256 per span; only for signed batches); count and root must equal
//!    the signed ones;
//! 5. [`ReplayGuard::admit`]: a repeated `(source, seq)`, a sequence below the window, or a
//!    `sent-at` outside the time window is refused; a skipped range is accepted and
//!    recorded as a gap (warning log, `/metrics`, `GET /api/sources`).
//!
//! Every refusal is `INVALID_ARGUMENT` (gRPC) / `400` (HTTP), and its message names the
//! header at fault; the token itself was fine, so it is not an authentication failure.
//! Two exceptions: an unusable registry file is a server-side `UNAVAILABLE` / `503`, and a
//! tenant whose replay table is full of active sources gets `RESOURCE_EXHAUSTED` / `429`.
//!
//! # Restarts
//!
//! The replay state of each tenant is written to `<data-dir>/sources/<tenant>.replay.json`
//! (temporary file, fsync, rename) off the ack path: every `persist_interval_secs`, on
//! shutdown, and before the store deletes any WAL segment ([`persist::Barrier`]). An
//! accepted signed batch is acknowledged only once its manifest, which carries source and
//! sequence, is durable in the WAL. So every batch accepted before a crash is either in the
//! last snapshot or in a WAL segment that was still there at start; the manifests the WAL
//! replay recovers are fed back into the guard ([`ReplayGuard::restore`]) before the first
//! request. No safety margin is needed and no sequence is lost. (With `[seal] enabled =
//! false` there are no manifests; a crash can then forget up to one persist interval.)

pub mod config;
pub mod persist;
pub mod registry;
pub mod view;
pub mod wire;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentrace_core::{Batch, SourceInfo, Stage, StageError, TenantId};
use sentrace_ledger::manifest::{SourceSignature, batch_span_root};
use sentrace_ledger::replay::{ReplayDecision, ReplayGuard};

pub use config::SourcesConfig;

/// Why a batch's source claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The tenant requires signatures and the batch carried none.
    #[error(
        "tenant {tenant} requires signed batches: send sentrace-source, sentrace-seq, sentrace-sent-at and sentrace-signature"
    )]
    Unsigned {
        /// The tenant.
        tenant: TenantId,
    },
    /// The headers were malformed.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// The source is not registered for this tenant.
    #[error("sentrace-source: source {source_id:?} is not registered for tenant {tenant}")]
    UnknownSource {
        /// The claimed source.
        source_id: String,
        /// The token's tenant.
        tenant: TenantId,
    },
    /// A key ID in the signature is not the source's registered one.
    #[error(
        "sentrace-signature: {algorithm} key ID {claimed:08x} is not source {source_id:?}'s registered key {registered:08x}"
    )]
    WrongKeyId {
        /// The source.
        source_id: String,
        /// `Ed25519` or `ML-DSA-44`.
        algorithm: &'static str,
        /// The ID in the signature.
        claimed: u32,
        /// The registered ID.
        registered: u32,
    },
    /// The signature does not verify.
    #[error(
        "sentrace-signature: does not verify with source {source_id:?}'s keys for sentrace-seq {sequence} and sentrace-sent-at {sent_at}"
    )]
    BadSignature {
        /// The source.
        source_id: String,
        /// The claimed sequence.
        sequence: u64,
        /// The claimed send time.
        sent_at: u64,
    },
    /// The spans received are not the spans signed.
    #[error(
        "sentrace-signature: the source signed {signed_count} spans with span root {signed_root}, but the request holds {received_count} spans with root {received_root}"
    )]
    SpansChanged {
        /// Spans signed.
        signed_count: u32,
        /// Root signed, hex.
        signed_root: String,
        /// Spans received.
        received_count: u64,
        /// Root received, hex.
        received_root: String,
    },
    /// The (source, sequence) was accepted before.
    #[error("sentrace-seq {sequence}: replay: source {source_id:?} already sent this sequence")]
    Replay {
        /// The source.
        source_id: String,
        /// The sequence.
        sequence: u64,
    },
    /// The sequence is below the replay window.
    #[error(
        "sentrace-seq {sequence}: stale: below source {source_id:?}'s replay window (lowest accepted {lowest})"
    )]
    Stale {
        /// The source.
        source_id: String,
        /// The sequence.
        sequence: u64,
        /// The lowest sequence still accepted.
        lowest: u64,
    },
    /// The send time is too far from the server's clock.
    #[error(
        "sentrace-sent-at: {skew_secs} s from the server clock (negative: in the past); the window is ±{window_secs} s"
    )]
    OutsideTimeWindow {
        /// Source time minus server time, seconds.
        skew_secs: i64,
        /// The configured window.
        window_secs: u64,
    },
    /// The tenant's replay table is full of active sources.
    #[error("too many active sources for tenant {tenant}; retry later")]
    TooManySources {
        /// The tenant.
        tenant: TenantId,
    },
    /// The tenant's registry file is unusable (a server-side problem).
    #[error("source registry: {0}")]
    Registry(#[from] registry::RegistryError),
}

impl SourceError {
    /// The label of this refusal in `sentrace_source_batches_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::Unsigned { .. } => "unsigned",
            SourceError::Wire(_) => "malformed",
            SourceError::UnknownSource { .. } => "unknown_source",
            SourceError::WrongKeyId { .. } => "wrong_key_id",
            SourceError::BadSignature { .. } => "bad_signature",
            SourceError::SpansChanged { .. } => "spans_changed",
            SourceError::Replay { .. } => "replay",
            SourceError::Stale { .. } => "stale",
            SourceError::OutsideTimeWindow { .. } => "time_window",
            SourceError::TooManySources { .. } => "too_many_sources",
            SourceError::Registry(_) => "registry",
        }
    }
}

impl From<SourceError> for StageError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Registry(r) => StageError::Internal(r.to_string()),
            SourceError::TooManySources { .. } => StageError::Exhausted {
                message: e.to_string(),
                retry_after: Duration::from_secs(60),
            },
            other => StageError::Invalid(other.to_string()),
        }
    }
}

const REASONS: [&str; 11] = [
    "unsigned",
    "malformed",
    "unknown_source",
    "wrong_key_id",
    "bad_signature",
    "spans_changed",
    "replay",
    "stale",
    "time_window",
    "too_many_sources",
    "registry",
];

#[derive(Default)]
struct Counters {
    verified: AtomicU64,
    unsigned: AtomicU64,
    refused: [AtomicU64; REASONS.len()],
    gaps: AtomicU64,
    missing: AtomicU64,
}

struct TenantReplay {
    guard: ReplayGuard,
    dirty: bool,
}

/// The signed-source runtime: registry, replay guards, counters.
pub struct Sources {
    cfg: SourcesConfig,
    data_dir: std::path::PathBuf,
    registry: registry::Registry,
    tenants: Mutex<HashMap<TenantId, TenantReplay>>,
    persist_lock: Mutex<()>,
    counters: Counters,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Sources {
    /// The runtime over `data_dir`, with the replay state of the last snapshot plus the
    /// signed batches recovered from the WAL (see the module docs).
    pub fn open(
        cfg: &SourcesConfig,
        data_dir: &Path,
        recovered: &[sentrace_store::RecoveredManifest],
    ) -> anyhow::Result<Arc<Self>> {
        let mut tenants = HashMap::new();
        for (tenant, guard) in persist::load_all(data_dir)? {
            tenants.insert(
                tenant,
                TenantReplay {
                    guard: guard.with_config(cfg.replay()),
                    dirty: false,
                },
            );
        }
        let s = Self {
            cfg: cfg.clone(),
            data_dir: data_dir.to_path_buf(),
            registry: registry::Registry::new(data_dir),
            tenants: Mutex::new(tenants),
            persist_lock: Mutex::new(()),
            counters: Counters::default(),
        };
        let restored = s.restore(recovered)?;
        if restored > 0 {
            tracing::info!(
                batches = restored,
                "replay state: signed batches recovered from the WAL"
            );
        }
        Ok(Arc::new(s))
    }

    fn restore(&self, recovered: &[sentrace_store::RecoveredManifest]) -> anyhow::Result<u64> {
        let mut tenants = self.lock()?;
        let mut n = 0;
        let mut sorted: Vec<_> = recovered.iter().collect();
        sorted.sort_by(|a, b| (&a.tenant, a.index).cmp(&(&b.tenant, b.index)));
        for m in sorted {
            let Ok(manifest) = sentrace_ledger::manifest::BatchManifest::decode(&m.manifest) else {
                continue;
            };
            if manifest.source_signature.is_none() {
                continue;
            }
            let t = tenants
                .entry(m.tenant.clone())
                .or_insert_with(|| TenantReplay {
                    guard: ReplayGuard::new(self.cfg.replay()),
                    dirty: false,
                });
            let seen = manifest.receive_time_unix_nanos.max(1);
            if t.guard
                .restore(&manifest.source, manifest.sequence, seen)
                .accepted()
            {
                t.dirty = true;
                n += 1;
            }
        }
        Ok(n)
    }

    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, HashMap<TenantId, TenantReplay>>> {
        self.tenants
            .lock()
            .map_err(|_| anyhow::anyhow!("replay state lock poisoned"))
    }

    /// The settings.
    pub fn config(&self) -> &SourcesConfig {
        &self.cfg
    }

    /// Counts a refusal (also for header errors found at the transport).
    pub fn refused(&self, e: &SourceError) {
        if let Some(i) = REASONS.iter().position(|r| *r == e.reason()) {
            self.counters.refused[i].fetch_add(1, Relaxed);
        }
        tracing::debug!(reason = e.reason(), error = %e, "batch refused");
    }

    /// Checks a batch's source claims (the body of [`SourceStage`]).
    pub fn check(&self, batch: &Batch) -> Result<(), SourceError> {
        let r = self.check_inner(batch);
        if let Err(e) = &r {
            self.refused(e);
        }
        r
    }

    fn check_inner(&self, batch: &Batch) -> Result<(), SourceError> {
        let tenant = &batch.context.identity.tenant;
        let Some(info) = &batch.context.source else {
            if self.cfg.requires(tenant) {
                return Err(SourceError::Unsigned {
                    tenant: tenant.clone(),
                });
            }
            self.counters.unsigned.fetch_add(1, Relaxed);
            return Ok(());
        };
        self.verify(tenant, info, batch)?;
        let decision = {
            let mut tenants = self.tenants.lock().map_err(|_| {
                SourceError::Registry(registry::RegistryError::Io {
                    path: "replay state".into(),
                    reason: "lock poisoned".into(),
                })
            })?;
            let t = tenants
                .entry(tenant.clone())
                .or_insert_with(|| TenantReplay {
                    guard: ReplayGuard::new(self.cfg.replay()),
                    dirty: false,
                });
            let d = t.guard.admit(
                &info.source_id,
                info.sequence,
                info.sent_at_unix_nanos,
                now_nanos(),
            );
            if d.accepted() {
                t.dirty = true;
            }
            d
        };
        let source_id = info.source_id.clone();
        match decision {
            ReplayDecision::Accept | ReplayDecision::AcceptLate => {}
            ReplayDecision::AcceptWithGap {
                missing_from,
                missing_to,
            } => {
                let missing = missing_to.saturating_sub(missing_from).saturating_add(1);
                self.counters.gaps.fetch_add(1, Relaxed);
                self.counters.missing.fetch_add(missing, Relaxed);
                tracing::warn!(tenant = %tenant, source = %source_id, missing_from, missing_to,
                    "sequence gap: batches of a signed source are missing (lost, dropped or withheld)");
            }
            ReplayDecision::Replay => {
                return Err(SourceError::Replay {
                    source_id,
                    sequence: info.sequence,
                });
            }
            ReplayDecision::Stale { lowest_accepted } => {
                return Err(SourceError::Stale {
                    source_id,
                    sequence: info.sequence,
                    lowest: lowest_accepted,
                });
            }
            ReplayDecision::OutsideTimeWindow { skew_secs } => {
                return Err(SourceError::OutsideTimeWindow {
                    skew_secs,
                    window_secs: self.cfg.time_window_secs,
                });
            }
            ReplayDecision::TooManySources => {
                return Err(SourceError::TooManySources {
                    tenant: tenant.clone(),
                });
            }
        }
        self.counters.verified.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Steps 1 to 4 of the module docs.
    fn verify(
        &self,
        tenant: &TenantId,
        info: &SourceInfo,
        batch: &Batch,
    ) -> Result<(), SourceError> {
        let sig = SourceSignature::decode(&info.signature).map_err(|e| {
            SourceError::Wire(wire::WireError::Malformed {
                header: wire::SIGNATURE,
                why: e.to_string(),
            })
        })?;
        // 1. Registered for this tenant.
        let keys = self.registry.keys(tenant)?;
        let Some(key) = keys.get(&info.source_id) else {
            return Err(SourceError::UnknownSource {
                source_id: info.source_id.clone(),
                tenant: tenant.clone(),
            });
        };
        // 2. Key IDs.
        for (algorithm, claimed, registered) in [
            ("Ed25519", sig.ed25519_key_id, key.ed25519.key_id()),
            ("ML-DSA-44", sig.mldsa_key_id, key.mldsa.key_id()),
        ] {
            if claimed != registered {
                return Err(SourceError::WrongKeyId {
                    source_id: info.source_id.clone(),
                    algorithm,
                    claimed,
                    registered,
                });
            }
        }
        // 3. Both signatures over the statement.
        sig.verify(key, &info.source_id, info.sequence, info.sent_at_unix_nanos)
            .map_err(|_| SourceError::BadSignature {
                source_id: info.source_id.clone(),
                sequence: info.sequence,
                sent_at: info.sent_at_unix_nanos,
            })?;
        // 4. The spans received are the spans signed.
        let (count, root) = batch_span_root(&batch.resource_spans);
        if u64::from(sig.span_count) != count || sig.span_root != root {
            return Err(SourceError::SpansChanged {
                signed_count: sig.span_count,
                signed_root: hex::encode(sig.span_root),
                received_count: count,
                received_root: hex::encode(root),
            });
        }
        Ok(())
    }

    /// The signed-source families for `/metrics`.
    pub fn encode_metrics(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
        use crate::metrics::export;
        let c = &self.counters;
        export::counters(
            e,
            "sentrace_source_batches",
            "Batches by source-signature outcome.",
            [
                ([("outcome", "verified")], c.verified.load(Relaxed)),
                ([("outcome", "unsigned")], c.unsigned.load(Relaxed)),
            ],
        )?;
        export::counters(
            e,
            "sentrace_source_batches_refused",
            "Signed or required-signature batches refused, by reason.",
            REASONS
                .iter()
                .enumerate()
                .map(|(i, r)| ([("reason", *r)], c.refused[i].load(Relaxed))),
        )?;
        export::counter(
            e,
            "sentrace_source_sequence_gaps",
            "Sequence gaps seen in signed sources.",
            c.gaps.load(Relaxed),
        )?;
        export::counter(
            e,
            "sentrace_source_missing_sequences",
            "Sequence numbers skipped by signed sources.",
            c.missing.load(Relaxed),
        )
    }
}

/// The pipeline stage: verifies source claims before anything changes the spans.
pub struct SourceStage {
    sources: Arc<Sources>,
}

impl SourceStage {
    /// The stage over the runtime.
    pub fn new(sources: Arc<Sources>) -> Self {
        Self { sources }
    }
}

impl Stage for SourceStage {
    fn name(&self) -> &'static str {
        "verify-source"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        self.sources.check(batch).map_err(StageError::from)
    }
}

#[cfg(test)]
mod tests;
