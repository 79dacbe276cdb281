//! `[[auth.oidc]]`: one trusted OIDC / JWT issuer per entry.
//!
//! ```toml
//! [[auth.oidc]]
//! issuer = "https://idp.example.com/realms/acme"
//! audience = "sentrace"
//! discovery = true
//! tenant = "acme"
//! roles = [
//!   { group = "sentrace-admins", role = "admin" },
//!   { group = "sentrace-viewers", role = "viewer" },
//! ]
//! ```

use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use sentrace_access::jwt::{
    Algorithm, DEFAULT_LEEWAY_SECONDS, IssuerPolicy, RoleMapping, TenantSource,
};
use sentrace_core::{Role, TenantId};

/// One group → role entry of an issuer's mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapConfig {
    /// A value of the roles claim (group name, app role).
    pub group: String,
    /// The role it grants: ingest, admin, security-analyst, developer, viewer or auditor.
    pub role: String,
}

/// One trusted issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The issuer identifier, exactly as tokens carry it in `iss` (and as the discovery
    /// document states it). `https://` unless `allow_http` is set for a loopback issuer.
    pub issuer: String,
    /// A value the token's `aud` must contain (the API identifier or resource indicator the
    /// identity provider puts into access tokens for Sentrace).
    pub audience: String,
    /// Read the issuer's keys (a JWKS document) from this file. Re-read when a token names an
    /// unknown `kid`. One of `jwks_file`, `jwks_url` and `discovery` must be set.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Fetch the issuer's JWKS from this URL.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Find the JWKS through `<issuer>/.well-known/openid-configuration` (its `jwks_uri`).
    #[serde(default)]
    pub discovery: bool,
    /// PEM file of CA certificates trusted for the issuer's HTTPS endpoints (default: the
    /// system's roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Allow plain `http://` for the issuer, discovery and JWKS URLs. Only for loopback
    /// addresses (127.0.0.0/8, ::1, localhost), for tests and local development.
    #[serde(default)]
    pub allow_http: bool,
    /// Signature algorithms accepted from this issuer: any of RS256, ES256, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Every token of this issuer acts for this tenant. Set this or `tenant_claim`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The claim naming the tenant (a string that must be a valid tenant id).
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// The claim holding group or role names: a string (one name) or an array of strings.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Group → role, tried in order: the first entry whose group the token holds gives the
    /// role. A token matching none is refused.
    pub roles: Vec<RoleMapConfig>,
    /// The claim holding the principal's team (scope of the developer role), if any.
    #[serde(default)]
    pub team_claim: Option<String>,
    /// Least time between two key refreshes caused by tokens with an unknown `kid` (and
    /// between retries of a failed fetch), in seconds (1 to 3600).
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval_seconds: u64,
    /// Keys older than this are fetched again on the next token, in seconds (60 to 86400).
    /// When the fetch fails the old keys stay in use.
    #[serde(default = "default_max_age")]
    pub jwks_max_age_seconds: u64,
    /// Timeout of each discovery or JWKS request, in milliseconds (100 to 60000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_algorithms() -> Vec<String> {
    Algorithm::ALL
        .iter()
        .map(|a| a.as_str().to_string())
        .collect()
}
fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}
fn default_roles_claim() -> String {
    "groups".into()
}
fn default_refresh_interval() -> u64 {
    60
}
fn default_max_age() -> u64 {
    3600
}
fn default_timeout_ms() -> u64 {
    5000
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Checks the scheme of an issuer, discovery or JWKS URL: https, or http when allowed and
/// the host is loopback.
pub fn check_url(text: &str, allow_http: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http && is_loopback(&url) => {}
        "http" if allow_http => {
            return Err(format!(
                "{text:?}: allow_http permits http:// only for loopback hosts"
            ));
        }
        _ => return Err(format!("{text:?} must start with https://")),
    }
    if url.host_str().is_none() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{text:?} must have a host and no fragment or user"));
    }
    Ok(url)
}

impl OidcIssuerConfig {
    /// Checks the entry; the message names the issuer and the field.
    pub fn validate(&self) -> Result<(), String> {
        self.policy().map(|_| ())
    }

    /// The verification policy of this issuer (validates the entry).
    pub fn policy(&self) -> Result<IssuerPolicy, String> {
        let err = |m: String| format!("[[auth.oidc]] {}: {m}", self.issuer);
        check_url(&self.issuer, self.allow_http).map_err(|e| err(format!("issuer {e}")))?;
        let sources = usize::from(self.jwks_file.is_some())
            + usize::from(self.jwks_url.is_some())
            + usize::from(self.discovery);
        if sources != 1 {
            return Err(err(
                "set exactly one of jwks_file, jwks_url and discovery = true".into(),
            ));
        }
        if let Some(u) = &self.jwks_url {
            check_url(u, self.allow_http).map_err(|e| err(format!("jwks_url {e}")))?;
        }
        if !(1..=3600).contains(&self.refresh_interval_seconds) {
            return Err(err("refresh_interval_seconds must be 1 to 3600".into()));
        }
        if !(60..=86_400).contains(&self.jwks_max_age_seconds) {
            return Err(err("jwks_max_age_seconds must be 60 to 86400".into()));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(err("timeout_ms must be 100 to 60000".into()));
        }
        let algorithms = self
            .algorithms
            .iter()
            .map(|a| {
                Algorithm::parse(a).ok_or_else(|| {
                    err(format!(
                        "algorithms: {a:?} is not one of RS256, ES256, EdDSA"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = match (&self.tenant, &self.tenant_claim) {
            (Some(t), None) => TenantSource::Fixed(
                TenantId::new(t.as_str()).map_err(|e| err(format!("tenant: {e}")))?,
            ),
            (None, Some(c)) => TenantSource::Claim(c.clone()),
            _ => return Err(err("set exactly one of tenant and tenant_claim".into())),
        };
        let roles = self
            .roles
            .iter()
            .map(|m| {
                Role::parse(&m.role)
                    .map(|role| RoleMapping {
                        group: m.group.clone(),
                        role,
                    })
                    .ok_or_else(|| {
                        err(format!(
                            "roles: {:?} is not a role (ingest, admin, security-analyst, developer, viewer, auditor)",
                            m.role
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = IssuerPolicy {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            algorithms,
            leeway_seconds: self.leeway_seconds,
            tenant,
            roles_claim: self.roles_claim.clone(),
            roles,
            team_claim: self.team_claim.clone(),
        };
        policy.validate().map_err(err)?;
        Ok(policy)
    }
}

/// Checks every entry and that no issuer is configured twice.
pub fn validate_issuers(issuers: &[OidcIssuerConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for i in issuers {
        i.validate()?;
        if !seen.insert(i.issuer.as_str()) {
            return Err(format!(
                "[[auth.oidc]] {}: the issuer is configured twice",
                i.issuer
            ));
        }
    }
    Ok(())
}
