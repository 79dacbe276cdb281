//! The `[detect]` section of the server configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Threat detection, sinks and automated response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Run the detect stage (before minimization, on raw values in memory).
    pub enabled: bool,
    /// A ruleset file (TOML, the format of sentrace-detect's `rules/default.toml`) used
    /// instead of the built-in default ruleset.
    pub rules: Option<PathBuf>,
    /// A directory of per-tenant overrides, one `<tenant>.toml` each.
    pub tenant_rules_dir: Option<PathBuf>,
    /// Findings kept per tenant for `GET /api/findings`, in memory and in the encrypted
    /// journal `<data-dir>/findings/` (oldest dropped first).
    pub max_findings_per_tenant: usize,
    /// Where findings are forwarded.
    pub sinks: SinksConfig,
    /// Automated response.
    pub response: ResponseConfig,
    /// The service map (`GET /api/map`) marks an edge `new` when it was first seen within
    /// this many seconds; first sightings are looked for in this window plus the map's own
    /// lookback.
    pub new_edge_window_secs: u64,
    /// Behavioral baselines kept across restarts.
    pub baselines: BaselinesConfig,
    /// Findings below this confidence (0..=100) are stored and listed by the findings API
    /// but not sent to sinks or to the response policy. Payload hits that a field's
    /// learned or pinned context explains are downgraded to 20 (the ruleset's `[context]
    /// downgraded_confidence`), so the default 40 holds them back; 0 sends everything.
    pub send_min_confidence: u8,
}

/// Behavioral baselines (service edges, endpoints, response sizes, rate series, warm-up
/// evidence) kept in the encrypted per-tenant journal `<data-dir>/baselines/` and restored
/// at start, so a restart or a deploy does not open a new warm-up window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselinesConfig {
    /// Save and restore the baselines (off: every start learns afresh).
    pub persist: bool,
    /// Seconds between two saves of the tenants whose baselines changed; one more save
    /// runs at shutdown, after ingest stopped.
    pub persist_interval_secs: u64,
    /// Largest saved snapshot of one tenant, in bytes; a larger one is not saved (logged
    /// and counted) and that tenant's baselines are learned again after a restart.
    pub max_snapshot_bytes: u64,
}

impl Default for BaselinesConfig {
    fn default() -> Self {
        Self {
            persist: true,
            persist_interval_secs: 60,
            max_snapshot_bytes: 32 << 20,
        }
    }
}

/// Largest `[detect.baselines] max_snapshot_bytes` (one journal record).
pub const MAX_BASELINE_SNAPSHOT_BYTES: u64 = sentrace_store::journal::MAX_RECORD_BYTES as u64;

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: None,
            tenant_rules_dir: None,
            max_findings_per_tenant: 10_000,
            sinks: SinksConfig::default(),
            response: ResponseConfig::default(),
            new_edge_window_secs: 86_400,
            baselines: BaselinesConfig::default(),
            send_min_confidence: 40,
        }
    }
}

/// Finding sinks. Each has its own bounded queue; a full queue drops (and counts) findings
/// instead of slowing ingest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// Findings waiting per sink before new ones are dropped.
    pub queue_capacity: usize,
    /// Delivery attempts per finding (first try included) before it is counted as failed.
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles per attempt up to 30 s.
    pub retry_backoff_ms: u64,
    /// A JSON-lines file of OCSF findings.
    pub file: Option<FileSinkConfig>,
    /// HTTPS webhooks signed with HMAC-SHA-256 (also the targets of `webhook` responses).
    pub webhook: Vec<WebhookSinkConfig>,
    /// Syslog receivers (RFC 5424 over TCP or TLS, CEF payload).
    pub syslog: Vec<SyslogSinkConfig>,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_attempts: 5,
            retry_backoff_ms: 200,
            file: None,
            webhook: Vec::new(),
            syslog: Vec::new(),
        }
    }
}

/// The JSON-lines file sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file; created mode 0600, appended to.
    pub path: PathBuf,
}

/// An HTTPS webhook. Each POST carries the OCSF finding as JSON and the header
/// `Sentrace-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>." + body)>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// Name, used by `webhook` response actions and in metrics.
    pub name: String,
    /// `https://` URL.
    pub url: String,
    /// File holding the shared HMAC secret (its bytes, trailing newline removed).
    pub secret_file: PathBuf,
    /// PEM CA certificates to trust instead of the system roots.
    pub ca: Option<PathBuf>,
    /// Forward every finding (true) or only calls from `webhook` response actions (false).
    #[serde(default = "yes")]
    pub all_findings: bool,
    /// Request timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    5000
}

/// A syslog receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSinkConfig {
    /// Name, used in metrics.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Use TLS (RFC 5425). The server name is the host part of `address`.
    #[serde(default)]
    pub tls: bool,
    /// PEM CA certificates to trust instead of the system roots (TLS only).
    pub ca: Option<PathBuf>,
    /// Connect/write timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Automated response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Turn findings into actions (tag, keep, throttle, quarantine, webhook).
    pub enabled: bool,
    /// A response policy file (TOML, the format of sentrace-detect's `rules/response.toml`)
    /// used instead of the built-in default policy.
    pub policy: Option<PathBuf>,
    /// Quarantined spans kept per tenant, in memory and in the encrypted journal
    /// `<data-dir>/responses/quarantine/` (oldest dropped first, and counted).
    pub max_quarantined_spans_per_tenant: usize,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            policy: None,
            max_quarantined_spans_per_tenant: 100_000,
        }
    }
}

/// Largest `[detect] new_edge_window_secs` (30 days: the map reads this much history).
pub const MAX_NEW_EDGE_WINDOW_SECS: u64 = 30 * 86_400;

impl DetectConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_findings_per_tenant == 0 {
            return Err("[detect] max_findings_per_tenant must be greater than 0".into());
        }
        if self.new_edge_window_secs == 0 || self.new_edge_window_secs > MAX_NEW_EDGE_WINDOW_SECS {
            return Err(format!(
                "[detect] new_edge_window_secs must be between 1 and {MAX_NEW_EDGE_WINDOW_SECS} (30 days)"
            ));
        }
        if self.send_min_confidence > 100 {
            return Err("[detect] send_min_confidence must be at most 100".into());
        }
        let b = &self.baselines;
        if b.persist_interval_secs == 0 || b.persist_interval_secs > 86_400 {
            return Err(
                "[detect.baselines] persist_interval_secs must be between 1 and 86400".into(),
            );
        }
        if b.max_snapshot_bytes < 1024 || b.max_snapshot_bytes > MAX_BASELINE_SNAPSHOT_BYTES {
            return Err(format!(
                "[detect.baselines] max_snapshot_bytes must be between 1024 and {MAX_BASELINE_SNAPSHOT_BYTES}"
            ));
        }
        let s = &self.sinks;
        if s.queue_capacity == 0 || s.max_attempts == 0 {
            return Err(
                "[detect.sinks] queue_capacity and max_attempts must be greater than 0".into(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for w in &s.webhook {
            if !w.url.starts_with("https://") {
                return Err(format!(
                    "[[detect.sinks.webhook]] {}: url must start with https://",
                    w.name
                ));
            }
            if !names.insert(w.name.clone()) {
                return Err(format!(
                    "[[detect.sinks.webhook]] name {} is used twice",
                    w.name
                ));
            }
        }
        for y in &s.syslog {
            if !y.address.contains(':') {
                return Err(format!(
                    "[[detect.sinks.syslog]] {}: address must be host:port",
                    y.name
                ));
            }
        }
        Ok(())
    }
}
