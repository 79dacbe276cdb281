//! `[auth]`: how credentials other than API tokens are verified (OIDC issuers, client
//! certificates). API tokens need no configuration: they live in the data directory.

use serde::{Deserialize, Serialize};

/// The `[auth]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Client-certificate trust: one entry per tenant CA (`[[auth.mtls]]`), with the rules
    /// that map a certificate's names to an identity. See `docs/mtls.md`.
    pub mtls: Vec<super::mtls::config::MtlsTrust>,
}

impl AuthConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        super::mtls::config::validate(&self.mtls)?;
        Ok(())
    }
}
