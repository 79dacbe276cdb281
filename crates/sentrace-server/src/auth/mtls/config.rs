//! Client-certificate configuration: `[tls.client_auth]` (which listeners ask for a
//! certificate) and `[[auth.mtls]]` (which CA each tenant trusts, and how a certificate's
//! names map to an identity).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use sentrace_access::cert::CertRule;
use sentrace_core::TenantId;

/// Most `[[auth.mtls]]` entries.
pub const MAX_TRUST_ENTRIES: usize = 1000;
/// Most rules in one `[[auth.mtls]]` entry.
pub const MAX_RULES: usize = 1000;

/// Whether a listener asks TLS clients for a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    /// No certificate is asked for; requests need a bearer credential.
    #[default]
    Off,
    /// A certificate is asked for but not required. One that is presented must be valid and
    /// mapped, or the handshake fails; without one, requests need a bearer credential.
    Optional,
    /// A valid, mapped certificate is required to complete the handshake.
    Required,
}

impl ClientAuthMode {
    /// The name used in the configuration.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// `[tls.client_auth]`: client certificates per listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    /// The OTLP/gRPC listener: `off`, `optional` or `required`.
    pub otlp_grpc: ClientAuthMode,
    /// The OTLP/HTTP listener: `off`, `optional` or `required`.
    pub otlp_http: ClientAuthMode,
    /// The query listener: `off`, `optional` or `required`.
    pub query: ClientAuthMode,
}

impl ClientAuthConfig {
    /// Every listener's name and mode.
    pub fn listeners(&self) -> [(&'static str, ClientAuthMode); 3] {
        [
            ("otlp_grpc", self.otlp_grpc),
            ("otlp_http", self.otlp_http),
            ("query", self.query),
        ]
    }

    /// The first listener that takes client certificates, if any.
    pub fn first_enabled(&self) -> Option<&'static str> {
        self.listeners()
            .into_iter()
            .find(|(_, m)| *m != ClientAuthMode::Off)
            .map(|(n, _)| n)
    }
}

/// One `[[auth.mtls]]` entry: a tenant, the CA that issues its client certificates, and the
/// rules that turn a certificate's names into an identity of that tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsTrust {
    /// The tenant every certificate issued under `ca` belongs to.
    pub tenant: TenantId,
    /// A PEM file with the CA certificate(s) trusted for this tenant (roots; intermediates
    /// may be sent by clients). Read at start. A CA may be trusted by one tenant only.
    pub ca: PathBuf,
    /// Mapping rules, tried in order; a certificate no rule matches is refused.
    #[serde(default)]
    pub rules: Vec<CertRule>,
}

/// Checks the `[[auth.mtls]]` entries; messages name the entry and rule.
pub fn validate(entries: &[MtlsTrust]) -> Result<(), String> {
    if entries.len() > MAX_TRUST_ENTRIES {
        return Err(format!(
            "[[auth.mtls]] has {} entries (limit {MAX_TRUST_ENTRIES})",
            entries.len()
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        let at = format!("[[auth.mtls]] entry {} (tenant {})", i + 1, e.tenant);
        if e.ca.as_os_str().is_empty() {
            return Err(format!("{at}: ca must name a PEM file of CA certificates"));
        }
        if e.rules.is_empty() {
            return Err(format!(
                "{at}: no rules; add [[auth.mtls.rules]] with field, pattern and role, or no certificate of {} can be mapped",
                e.ca.display()
            ));
        }
        if e.rules.len() > MAX_RULES {
            return Err(format!("{at}: {} rules (limit {MAX_RULES})", e.rules.len()));
        }
        for (j, r) in e.rules.iter().enumerate() {
            r.validate()
                .map_err(|m| format!("{at}, rule {}: {m}", j + 1))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn parses_and_validates() {
        let cfg = Config::from_toml(
            r#"
[tls.client_auth]
otlp_grpc = "required"
query = "optional"

[[auth.mtls]]
tenant = "acme"
ca = "acme-ca.pem"
[[auth.mtls.rules]]
field = "uri"
pattern = "spiffe://acme.example/agent/*"
role = "ingest"
[[auth.mtls.rules]]
field = "cn"
pattern = "dev-*"
role = "developer"
kind = "user"
team = "payments"
"#,
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            cfg.tls.client_auth.first_enabled(),
            Some("otlp_grpc"),
            "{cfg:?}"
        );
        assert_eq!(cfg.auth.mtls[0].rules.len(), 2);

        for (text, want) in [
            (
                "[tls.client_auth]\nquery = \"yes\"\n",
                "unknown variant `yes`",
            ),
            (
                "[tls.client_auth]\nquery = \"required\"\n",
                "no [[auth.mtls]]",
            ),
            (
                "[[auth.mtls]]\ntenant = \"acme\"\nca = \"a.pem\"\n",
                "entry 1 (tenant acme): no rules",
            ),
            (
                "[[auth.mtls]]\ntenant = \"acme\"\nca = \"a.pem\"\n[[auth.mtls.rules]]\nfield = \"cn\"\npattern = \"*a*\"\nrole = \"viewer\"\n",
                "rule 1: pattern \"*a*\" has more than one '*'",
            ),
            (
                "[[auth.mtls]]\ntenant = \"Acme!\"\nca = \"a.pem\"\n",
                "tenant",
            ),
            (
                "[[auth.mtls]]\ntenant = \"acme\"\nca = \"a.pem\"\n[[auth.mtls.rules]]\nfield = \"subject\"\npattern = \"a\"\nrole = \"viewer\"\n",
                "unknown variant `subject`",
            ),
        ] {
            let e = Config::from_toml(text, "x.toml").unwrap_err();
            assert!(e.message.contains(want), "{text}: {}", e.message);
        }
    }
}
