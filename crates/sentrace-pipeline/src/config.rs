//! The configuration sections the write path owns and that are not a stage's own folder
//! (`[minimize]`); the server's `Config` embeds them, so the TOML is unchanged.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use sentrace_redact::Policy;

/// The minimize stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinimizeConfig {
    /// Minimize every span before it is sealed and stored. Turn off only to measure.
    pub enabled: bool,
    /// A redaction policy file (TOML; see `sentrace-redact`'s `default_policy.toml`).
    /// Without it the built-in default policy applies.
    pub policy: Option<PathBuf>,
    /// The parsed policy (filled by `Config::load_policies`).
    #[serde(skip)]
    pub loaded: Option<Policy>,
    /// Exposure rows (service, kind, attribute key, action) kept per tenant for
    /// `GET /api/exposure`; past it, new combinations count in one overflow row per kind
    /// and action (service and key `<other>`). Persisted under `<data-dir>/exposure/`.
    pub exposure_max_rows_per_tenant: usize,
    /// Encrypt every attribute value this section lists in `sentrace.minimized` (pii,
    /// secret, financial) under the tenant's sensitive-value key before the span is sealed
    /// and stored, so only readers allowed to view a value's class ever unwrap that key
    /// (docs/keys.md). Off: such values are stored under the tenant's data key only, like
    /// every other value, and are readable by any tool holding the block keys.
    pub sensitive_key: bool,
}

impl Default for MinimizeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            policy: None,
            loaded: None,
            exposure_max_rows_per_tenant: 4096,
            sensitive_key: true,
        }
    }
}

impl PartialEq for MinimizeConfig {
    fn eq(&self, other: &Self) -> bool {
        self.enabled == other.enabled
            && self.policy == other.policy
            && self.exposure_max_rows_per_tenant == other.exposure_max_rows_per_tenant
            && self.sensitive_key == other.sensitive_key
    }
}

/// Most tenants whose exposure is counted (a bound on memory, far above real deployments).
pub const EXPOSURE_MAX_TENANTS: usize = 100_000;
/// Largest `exposure_max_rows_per_tenant`.
pub const EXPOSURE_MAX_ROWS_LIMIT: usize = 1_000_000;

impl MinimizeConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.exposure_max_rows_per_tenant == 0
            || self.exposure_max_rows_per_tenant > EXPOSURE_MAX_ROWS_LIMIT
        {
            return Err(format!(
                "[minimize] exposure_max_rows_per_tenant must be between 1 and {EXPOSURE_MAX_ROWS_LIMIT}"
            ));
        }
        Ok(())
    }

    /// The policy to apply: the loaded file, or the built-in default.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        match &self.loaded {
            Some(p) => Ok(p.clone()),
            None => match &self.policy {
                Some(path) => load_policy(path),
                None => Ok(Policy::default()),
            },
        }
    }
}

/// Reads and parses a redaction policy file; errors name the file, line and reason.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading redaction policy {}: {e}", path.display()))?;
    Ok(Policy::from_toml(&text, &path.display().to_string())?)
}
