//! `[auth]`: how credentials other than API tokens are verified (OIDC issuers, client
//! certificates). API tokens need no configuration: they live in the data directory.

use serde::{Deserialize, Serialize};

use super::oidc::config::{OidcIssuerConfig, validate_issuers};

/// The `[auth]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Client-certificate trust: one entry per tenant CA (`[[auth.mtls]]`), with the rules
    /// that map a certificate's names to an identity. See `docs/mtls.md`.
    pub mtls: Vec<super::mtls::config::MtlsTrust>,
    /// Trusted OIDC / JWT issuers (`[[auth.oidc]]`), one entry each. Bearer tokens that are
    /// not API tokens are verified against the entry whose `issuer` equals their `iss`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub oidc: Vec<OidcIssuerConfig>,
}

impl AuthConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        super::mtls::config::validate(&self.mtls)?;
        validate_issuers(&self.oidc)?;
        Ok(())
    }
}
