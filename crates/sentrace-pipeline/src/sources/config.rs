//! The `[sources]` configuration section.

use serde::{Deserialize, Serialize};

use sentrace_core::TenantId;
use sentrace_ledger::replay::ReplayConfig;

/// Signed sources: which tenants must sign, and the replay window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Tenants whose every batch must be signed by a source registered for the tenant
    /// (`<data-dir>/sources/<tenant>.toml`); their unsigned batches are refused. Other
    /// tenants' unsigned batches are accepted as before.
    pub require_signatures: Vec<String>,
    /// How many sequence numbers below a source's highest are still accepted once (late,
    /// out-of-order delivery); older ones are refused as stale. 1 to 65536.
    pub sequence_window: u64,
    /// The largest distance, in seconds, between a batch's `sentrace-sent-at` and the
    /// server's clock, either way. 1 to 86400.
    pub time_window_secs: u64,
    /// The most sources whose replay state is kept per tenant.
    pub max_sources_per_tenant: usize,
    /// Seconds between snapshots of the replay state to `<data-dir>/sources/`. Snapshots
    /// are also written on shutdown and before WAL segments are deleted. 1 to 3600.
    pub persist_interval_secs: u64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        let r = ReplayConfig::default();
        Self {
            require_signatures: Vec::new(),
            sequence_window: r.sequence_window,
            time_window_secs: r.time_window_secs,
            max_sources_per_tenant: 10_000,
            persist_interval_secs: 5,
        }
    }
}

impl SourcesConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        for t in &self.require_signatures {
            TenantId::new(t)
                .map_err(|e| format!("[sources] require_signatures: tenant {t:?}: {e}"))?;
        }
        if !(1..=65_536).contains(&self.sequence_window) {
            return Err("[sources] sequence_window must be 1 to 65536".into());
        }
        if !(1..=86_400).contains(&self.time_window_secs) {
            return Err("[sources] time_window_secs must be 1 to 86400".into());
        }
        if self.max_sources_per_tenant == 0 {
            return Err("[sources] max_sources_per_tenant must be at least 1".into());
        }
        if !(1..=3600).contains(&self.persist_interval_secs) {
            return Err("[sources] persist_interval_secs must be 1 to 3600".into());
        }
        Ok(())
    }

    /// The replay-guard settings.
    pub fn replay(&self) -> ReplayConfig {
        ReplayConfig {
            sequence_window: self.sequence_window,
            time_window_secs: self.time_window_secs,
            max_sources: self.max_sources_per_tenant,
            ..ReplayConfig::default()
        }
    }

    /// True if `tenant` must sign every batch.
    pub fn requires(&self, tenant: &TenantId) -> bool {
        self.require_signatures.iter().any(|t| t == tenant.as_str())
    }
}
