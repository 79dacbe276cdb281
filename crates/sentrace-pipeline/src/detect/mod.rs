//! Threat detection and automated response in the server (issue #5, I/O half).
//!
//! One pipeline stage, [`DetectStage`], runs right after `validate` and before `minimize`,
//! on raw values in memory:
//!
//! 1. re-reads the undo file if `sentrace response undo` changed it;
//! 2. enforces the responses in force: spans of a quarantined source are set aside (kept in
//!    a bounded in-memory quarantine, reported to the sender as OTLP partial success), a
//!    throttled source gets `RESOURCE_EXHAUSTED`/429 beyond its rate, spans of a kept source
//!    are flagged `sentrace.sampling.keep = true`;
//! 3. runs the detector ([`sentrace_detect::Detector`]) on the rest;
//! 4. hands every finding to [`Runtime::on_finding`]: the sinks' bounded queues (never
//!    waiting) and the response policy, whose actions are audited (fsynced) before they
//!    take effect; `tag_trace` actions tag the evidence spans of the batch
//!    (`security.finding.rule`, `security.finding.family`);
//! 5. stores the batch's findings in the bounded per-tenant finding ring, persisted in an
//!    encrypted journal (`<data-dir>/findings/`) by a writer thread with group commit.
//!
//! The stage itself never waits on `fsync`: journal and audit writes are queued, and the
//! ingest pipeline awaits [`Runtime::wait_since`] (see [`crate::durable`]) before it stores
//! and acknowledges the batch.
//!
//! Findings (minimized snippets only) and quarantined spans (raw, as received) are kept on
//! disk only in encrypted per-tenant journals under the tenant's data key, so
//! crypto-shredding a tenant removes them too. The audit log holds ids, rule names and
//! targets (client addresses, users, principals), never span values.

pub mod baselines;
pub mod config;
pub mod findings;
pub mod response;
pub mod response_audit;
pub mod shared;
pub mod stage;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_detect::response::PlannedAction;
use sentrace_detect::{Detector, Finding, Ruleset, RulesetOverride, Severity};

pub use config::DetectConfig;
pub use stage::DetectStage;

/// Detection counters.
#[derive(Debug, Default)]
pub struct DetectMetrics {
    batches: AtomicU64,
    findings: [AtomicU64; 5],
    /// Findings below `[detect] send_min_confidence` (kept, not sent).
    held: AtomicU64,
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// Where the detection writers were when a batch started (see [`Runtime::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct DetectMark {
    findings: Option<sentrace_store::Mark>,
    response: Option<(sentrace_store::Mark, Option<sentrace_store::Mark>)>,
}

/// Where findings go besides the journal: the alert sinks (`[detect.sinks]`), which send over
/// the network and so are implemented by the server. Both calls only queue: they never wait.
pub trait FindingSinks: Send + Sync {
    /// Queues `f` to every sink that takes all findings.
    fn send(&self, f: &Finding);
    /// Queues `f` to the named webhook (a `webhook` response action); `false` when no
    /// webhook has that name.
    fn call_webhook(&self, name: &str, f: &Finding) -> bool;
    /// The sinks' families for `/metrics` (see [`crate::metrics::export`]).
    fn encode_metrics(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result;
}

/// Everything detection needs at run time; shared by the stage, the API and the exporter.
pub struct Runtime {
    /// The compiled detector.
    pub detector: Arc<Detector>,
    /// Recent findings per tenant.
    pub findings: findings::FindingStore,
    /// Outbound sinks.
    pub sinks: Box<dyn FindingSinks>,
    /// Response policy, actions in force, audit and quarantine.
    pub response: Option<response::ResponseState>,
    /// Behavioral baselines saved across restarts (`[detect.baselines] persist`).
    pub baselines: Option<baselines::BaselineStore>,
    /// Findings below this confidence are stored but not sent to sinks or response.
    send_min_confidence: u8,
    metrics: DetectMetrics,
    /// Sharing with the other nodes of a bucket ([`shared::run`]).
    sharing: shared::SharingMetrics,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Builds the detector from the configuration: the default ruleset or `rules`, plus one
/// override per `<tenant>.toml` in `tenant_rules_dir`.
pub fn build_detector(cfg: &DetectConfig) -> anyhow::Result<Detector> {
    let ruleset = match &cfg.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading detection rules {}", p.display()))?;
            Ruleset::from_toml(&p.display().to_string(), &text)?
        }
        None => Ruleset::default_ruleset()?,
    };
    let mut d = Detector::new(ruleset)?;
    if let Some(dir) = &cfg.tenant_rules_dir {
        load_tenant_overrides(&mut d, dir)?;
    }
    Ok(d)
}

/// Installs every `<tenant>.toml` of `dir` as that tenant's override.
pub fn load_tenant_overrides(d: &mut Detector, dir: &std::path::Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading rules dir {}", dir.display()))?;
    for e in entries {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        // `ruleset.toml` is a whole ruleset (see `sentrace detect --rules DIR`), not a tenant.
        if stem == "ruleset" {
            continue;
        }
        let tenant = TenantId::new(stem)
            .with_context(|| format!("{}: the file name is not a tenant id", path.display()))?;
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
        let ov = RulesetOverride::from_toml(&file, &text)?;
        d.set_tenant_override(tenant, &file, &ov)?;
    }
    Ok(())
}

impl Runtime {
    /// Builds the detector, takes the started `sinks` (the server's, built from
    /// `cfg.sinks`), loads the findings journal from `data_dir/findings/` and the response
    /// state from `data_dir/responses/`.
    pub fn start(
        cfg: &DetectConfig,
        data_dir: &std::path::Path,
        keys: Arc<sentrace_store::KeyRing>,
        sinks: Box<dyn FindingSinks>,
    ) -> anyhow::Result<Arc<Self>> {
        let detector = Arc::new(build_detector(cfg)?);
        let response = if cfg.response.enabled {
            Some(response::ResponseState::open(
                &cfg.response,
                data_dir,
                keys.clone(),
            )?)
        } else {
            None
        };
        let journal =
            sentrace_store::Journal::open(&data_dir.join("findings"), "findings", keys.clone())
                .and_then(sentrace_store::JournalWriter::start)
                .context("opening the findings journal")?;
        let findings = findings::FindingStore::open(cfg.max_findings_per_tenant, journal)
            .context("loading the findings journal")?;
        let baselines = if cfg.baselines.persist {
            let b = baselines::BaselineStore::open(&cfg.baselines, data_dir, keys)?;
            b.restore_into(&detector);
            Some(b)
        } else {
            None
        };
        Ok(Arc::new(Self {
            detector,
            findings,
            sinks,
            response,
            baselines,
            send_min_confidence: cfg.send_min_confidence,
            metrics: DetectMetrics::default(),
            sharing: shared::SharingMetrics::default(),
        }))
    }

    /// Takes one finding: counts it, queues it to the sinks, and returns the response
    /// actions that were audited and are now in force (for `tag_trace` on the batch). The
    /// caller stores the batch's findings with [`findings::FindingStore::push_all`].
    pub fn on_finding(&self, f: &Finding, now_unix_nanos: u64) -> Vec<PlannedAction> {
        self.metrics.findings[severity_index(f.severity)].fetch_add(1, Relaxed);
        // A finding downgraded by learned field context (or any below the threshold) is
        // kept for the findings API only.
        if f.confidence < self.send_min_confidence {
            self.metrics.held.fetch_add(1, Relaxed);
            return Vec::new();
        }
        self.sinks.send(f);
        match &self.response {
            Some(r) => {
                let actions = r.on_finding(f, now_unix_nanos);
                for a in &actions {
                    if let sentrace_detect::response::Action::Webhook { name, .. } = &a.action {
                        self.sinks.call_webhook(name, f);
                    }
                }
                actions
            }
            None => Vec::new(),
        }
    }

    /// Where the writers of the findings journal, the response audit and the quarantine
    /// journal are now: take it before a batch runs through the stage.
    pub fn mark(&self) -> DetectMark {
        DetectMark {
            findings: self.findings.mark(),
            response: self.response.as_ref().map(response::ResponseState::mark),
        }
    }

    /// Waits until everything the stage queued since `mark` (and before) is durable. Fails
    /// when a response audit line or a quarantined span could not be written; a failed
    /// findings write is logged and counted only (see [`findings::FindingStore`]).
    pub async fn wait_since(&self, mark: DetectMark) -> Result<(), sentrace_store::WaitError> {
        self.findings.wait_since(mark.findings).await;
        if let (Some(r), Some(m)) = (&self.response, mark.response) {
            r.wait_since(m).await?;
        }
        Ok(())
    }

    /// The detection, sink and response families for `/metrics`.
    pub fn encode_metrics(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
        use crate::metrics::export;
        export::counter(
            e,
            "sentrace_detect_batches",
            "Batches inspected by the detect stage.",
            self.metrics.batches.load(Relaxed),
        )?;
        export::counters(
            e,
            "sentrace_detect_findings",
            "Findings by severity.",
            SEVERITIES.iter().enumerate().map(|(i, name)| {
                (
                    [("severity", *name)],
                    self.metrics.findings[i].load(Relaxed),
                )
            }),
        )?;
        export::counter(
            e,
            "sentrace_detect_findings_held",
            "Findings below [detect] send_min_confidence (field-context downgrades): stored, not sent to sinks or response.",
            self.metrics.held.load(Relaxed),
        )?;
        export::gauge_u64(
            e,
            "sentrace_detect_findings_stored",
            "Findings held for /api/findings.",
            self.findings.len() as u64,
        )?;
        export::counter(
            e,
            "sentrace_detect_findings_journal_errors",
            "Failed writes of the findings journal.",
            self.findings.write_errors(),
        )?;
        self.sinks.encode_metrics(e)?;
        self.sharing.encode(e)?;
        if let Some(r) = &self.response {
            r.encode_metrics(e)?;
        }
        Ok(())
    }
}
