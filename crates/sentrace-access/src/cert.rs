//! Client-certificate identities: the names a certificate carries and the rules that map
//! them to an [`Identity`].
//!
//! This module only reads names out of a certificate that the TLS layer has already
//! verified against one tenant's CA (the server does that, with rustls and webpki); it never
//! decides trust itself. Parsing uses RustCrypto's `x509-cert` (RFC 5280 structures), with
//! limits on the certificate size and on the number and length of names, and fails closed:
//! a certificate whose subject or SAN extension does not decode yields no names at all.
//!
//! A rule names one field (`cn`, `dns`, `uri`, `email`) and a pattern: the exact name, or a
//! name with one `*` that stands for one or more characters (in `dns` patterns, within one
//! label: `*.agents.example` matches `a1.agents.example`, not `x.a1.agents.example`). DNS
//! names and e-mail addresses compare without regard to ASCII case; common names and URIs
//! (SPIFFE IDs) compare exactly. Rules are tried in order; the first that matches any name of
//! its field decides, and the identity's principal is `cert:<matched name>`.

use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use sentrace_core::{AuthMethod, Identity, PrincipalKind, Role, TenantId};

/// Largest end-entity certificate parsed, in DER bytes.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// Most names (common names and SAN entries together) read from one certificate.
pub const MAX_NAMES: usize = 64;
/// Longest name, and longest rule pattern, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest team name in a rule, in bytes.
pub const MAX_TEAM_BYTES: usize = 128;

/// Why a certificate's names could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// The certificate is larger than [`MAX_CERT_BYTES`].
    #[error("client certificate of {bytes} bytes is larger than the limit of {MAX_CERT_BYTES}")]
    TooLarge { bytes: usize },
    /// Not a DER X.509 certificate, or a malformed name or SAN extension.
    #[error("client certificate is not a well-formed X.509 certificate: {reason}")]
    Malformed { reason: String },
    /// More names than [`MAX_NAMES`].
    #[error("client certificate carries more than {MAX_NAMES} names")]
    TooManyNames,
    /// A name longer than [`MAX_NAME_BYTES`].
    #[error("client certificate carries a {field} name of {bytes} bytes (limit {MAX_NAME_BYTES})")]
    NameTooLong { field: NameField, bytes: usize },
}

/// Which name of a certificate a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameField {
    /// The subject's common name (CN).
    Cn,
    /// A DNS name in the subject alternative names.
    Dns,
    /// A URI in the subject alternative names (SPIFFE IDs are URIs).
    Uri,
    /// An e-mail address (rfc822Name) in the subject alternative names.
    Email,
}

impl NameField {
    /// The name used in configuration and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cn => "cn",
            Self::Dns => "dns",
            Self::Uri => "uri",
            Self::Email => "email",
        }
    }
}

impl std::fmt::Display for NameField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of one certificate that rules can match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertNames {
    /// Subject common names, in order.
    pub cn: Vec<String>,
    /// SAN DNS names.
    pub dns: Vec<String>,
    /// SAN URIs.
    pub uri: Vec<String>,
    /// SAN e-mail addresses.
    pub email: Vec<String>,
}

impl CertNames {
    /// Reads the subject common names and the DNS, URI and e-mail SANs of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        if der.len() > MAX_CERT_BYTES {
            return Err(CertError::TooLarge { bytes: der.len() });
        }
        let malformed = |e: x509_cert::der::Error| CertError::Malformed {
            reason: e.to_string(),
        };
        let cert = Certificate::from_der(der).map_err(malformed)?;
        let tbs = cert.tbs_certificate();
        let mut names = CertNames::default();
        let mut count = 0usize;
        let mut push = |field: NameField, value: &str| -> Result<(), CertError> {
            count += 1;
            if count > MAX_NAMES {
                return Err(CertError::TooManyNames);
            }
            if value.len() > MAX_NAME_BYTES {
                return Err(CertError::NameTooLong {
                    field,
                    bytes: value.len(),
                });
            }
            let list = match field {
                NameField::Cn => &mut names.cn,
                NameField::Dns => &mut names.dns,
                NameField::Uri => &mut names.uri,
                NameField::Email => &mut names.email,
            };
            list.push(value.to_string());
            Ok(())
        };
        for atv in tbs.subject().iter() {
            if atv.oid == x509_cert::der::oid::db::rfc4519::COMMON_NAME {
                let value = x509_cert::ext::pkix::name::DirectoryString::try_from(&atv.value)
                    .map_err(malformed)?;
                push(NameField::Cn, &value.value())?;
            }
        }
        if let Some((_, san)) = tbs.get_extension::<SubjectAltName>().map_err(malformed)? {
            for name in &san.0 {
                match name {
                    GeneralName::DnsName(s) => push(NameField::Dns, s.as_str())?,
                    GeneralName::UniformResourceIdentifier(s) => push(NameField::Uri, s.as_str())?,
                    GeneralName::Rfc822Name(s) => push(NameField::Email, s.as_str())?,
                    _ => {}
                }
            }
        }
        Ok(names)
    }

    /// The names of one field.
    pub fn of(&self, field: NameField) -> &[String] {
        match field {
            NameField::Cn => &self.cn,
            NameField::Dns => &self.dns,
            NameField::Uri => &self.uri,
            NameField::Email => &self.email,
        }
    }

    /// A short description for logs: `cn=a, uri=spiffe://…` (at most a few names per field).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for field in [
            NameField::Cn,
            NameField::Dns,
            NameField::Uri,
            NameField::Email,
        ] {
            for n in self.of(field).iter().take(4) {
                parts.push(format!("{field}={n}"));
            }
        }
        if parts.is_empty() {
            "no names".into()
        } else {
            parts.join(", ")
        }
    }
}

fn default_kind() -> PrincipalKind {
    PrincipalKind::Agent
}

/// One mapping rule (`[[auth.mtls.rules]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRule {
    /// Which name to match: `cn`, `dns`, `uri` or `email`.
    pub field: NameField,
    /// The name, or a name with one `*` standing for one or more characters
    /// (`spiffe://acme.example/agent/*`, `*.agents.acme.example`).
    pub pattern: String,
    /// The role of a matching certificate.
    pub role: Role,
    /// The kind of principal: `agent` (default), `service-account` or `user`.
    #[serde(default = "default_kind")]
    pub kind: PrincipalKind,
    /// The team, for team-scoped roles (`developer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

impl CertRule {
    /// Checks the pattern and team; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.pattern;
        if p.is_empty() {
            return Err("pattern must not be empty".into());
        }
        if p.len() > MAX_NAME_BYTES {
            return Err(format!(
                "pattern is {} bytes long (limit {MAX_NAME_BYTES})",
                p.len()
            ));
        }
        if p.matches('*').count() > 1 {
            return Err(format!(
                "pattern {p:?} has more than one '*' (one wildcard at most)"
            ));
        }
        if p.chars().any(char::is_control) {
            return Err(format!("pattern {p:?} contains a control character"));
        }
        if let Some(team) = &self.team
            && (team.is_empty() || team.len() > MAX_TEAM_BYTES)
        {
            return Err(format!("team must be 1 to {MAX_TEAM_BYTES} bytes long"));
        }
        Ok(())
    }

    /// Whether `name` (a name of this rule's field) matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        let fold = matches!(self.field, NameField::Dns | NameField::Email);
        let eq = |a: &str, b: &str| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match self.pattern.split_once('*') {
            None => eq(&self.pattern, name),
            Some((prefix, suffix)) => {
                let Some(middle_len) = name
                    .len()
                    .checked_sub(prefix.len())
                    .and_then(|n| n.checked_sub(suffix.len()))
                else {
                    return false;
                };
                if middle_len == 0 {
                    return false;
                }
                let (Some(head), Some(tail), Some(middle)) = (
                    name.get(..prefix.len()),
                    name.get(name.len() - suffix.len()..),
                    name.get(prefix.len()..prefix.len() + middle_len),
                ) else {
                    return false;
                };
                if self.field == NameField::Dns && middle.contains('.') {
                    return false;
                }
                eq(head, prefix) && eq(tail, suffix)
            }
        }
    }
}

/// Maps a certificate's names to an identity of `tenant` by the first matching rule, or
/// `None` when no rule matches.
pub fn map_identity(tenant: &TenantId, rules: &[CertRule], names: &CertNames) -> Option<Identity> {
    rules.iter().find_map(|rule| {
        let name = names.of(rule.field).iter().find(|n| rule.matches(n))?;
        Some(Identity {
            tenant: tenant.clone(),
            principal: format!("cert:{name}"),
            role: rule.role,
            kind: rule.kind,
            team: rule.team.clone(),
            method: AuthMethod::Certificate,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn rule(field: NameField, pattern: &str, role: Role) -> CertRule {
        CertRule {
            field,
            pattern: pattern.into(),
            role,
            kind: PrincipalKind::Agent,
            team: None,
        }
    }

    fn cert(cn: &str, sans: Vec<SanType>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_cn_and_sans() {
        let der = cert(
            "agent-7",
            vec![
                SanType::DnsName("a7.agents.acme.example".try_into().unwrap()),
                SanType::URI("spiffe://acme.example/agent/a7".try_into().unwrap()),
                SanType::Rfc822Name("ops@acme.example".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ],
        );
        let n = CertNames::from_der(&der).unwrap();
        assert_eq!(n.cn, ["agent-7"]);
        assert_eq!(n.dns, ["a7.agents.acme.example"]);
        assert_eq!(n.uri, ["spiffe://acme.example/agent/a7"]);
        assert_eq!(n.email, ["ops@acme.example"]);
        assert!(n.describe().contains("uri=spiffe://acme.example/agent/a7"));
    }

    #[test]
    fn garbage_and_oversize_fail_closed() {
        assert!(matches!(
            CertNames::from_der(b"not a certificate"),
            Err(CertError::Malformed { .. })
        ));
        assert_eq!(
            CertNames::from_der(&vec![0u8; MAX_CERT_BYTES + 1]),
            Err(CertError::TooLarge {
                bytes: MAX_CERT_BYTES + 1
            })
        );
        let many = (0..MAX_NAMES)
            .map(|i| SanType::DnsName(format!("n{i}.example").try_into().unwrap()))
            .collect();
        assert_eq!(
            CertNames::from_der(&cert("x", many)),
            Err(CertError::TooManyNames)
        );
    }

    #[test]
    fn patterns() {
        let uri = rule(
            NameField::Uri,
            "spiffe://acme.example/agent/*",
            Role::Ingest,
        );
        assert!(uri.matches("spiffe://acme.example/agent/a7"));
        assert!(!uri.matches("spiffe://acme.example/agent/"));
        assert!(!uri.matches("SPIFFE://acme.example/agent/a7"));
        assert!(!uri.matches("spiffe://acme.example/other/a7"));
        let dns = rule(NameField::Dns, "*.agents.acme.example", Role::Ingest);
        assert!(dns.matches("A7.Agents.ACME.example"));
        assert!(!dns.matches("x.a7.agents.acme.example"));
        assert!(!dns.matches(".agents.acme.example"));
        let exact = rule(NameField::Cn, "reader-1", Role::Viewer);
        assert!(exact.matches("reader-1"));
        assert!(!exact.matches("reader-10"));
        assert!(!exact.matches("Reader-1"));
        // A multi-byte name never panics on a char boundary.
        assert!(!rule(NameField::Cn, "é*", Role::Viewer).matches("\u{e9}"));
        assert!(rule(NameField::Cn, "é*", Role::Viewer).matches("\u{e9}x"));
    }

    #[test]
    fn validate_rules() {
        assert!(rule(NameField::Cn, "", Role::Viewer).validate().is_err());
        assert!(
            rule(NameField::Cn, "a*b*", Role::Viewer)
                .validate()
                .is_err()
        );
        assert!(rule(NameField::Cn, "a*", Role::Viewer).validate().is_ok());
        let mut r = rule(NameField::Cn, "a", Role::Viewer);
        r.team = Some(String::new());
        assert!(r.validate().unwrap_err().contains("team"));
    }

    #[test]
    fn first_matching_rule_decides() {
        let tenant = TenantId::new("acme").unwrap();
        let mut dev = rule(NameField::Cn, "dev-*", Role::Developer);
        dev.kind = PrincipalKind::User;
        dev.team = Some("payments".into());
        let rules = vec![
            rule(
                NameField::Uri,
                "spiffe://acme.example/agent/*",
                Role::Ingest,
            ),
            dev,
            rule(NameField::Cn, "*", Role::Viewer),
        ];
        let names = CertNames {
            cn: vec!["agent".into()],
            uri: vec!["spiffe://acme.example/agent/a7".into()],
            ..Default::default()
        };
        let id = map_identity(&tenant, &rules, &names).unwrap();
        assert_eq!(id.principal, "cert:spiffe://acme.example/agent/a7");
        assert_eq!(id.role, Role::Ingest);
        assert_eq!(id.kind, PrincipalKind::Agent);
        assert_eq!(id.method, AuthMethod::Certificate);
        let names = CertNames {
            cn: vec!["dev-ann".into()],
            ..Default::default()
        };
        let id = map_identity(&tenant, &rules, &names).unwrap();
        assert_eq!(
            (id.role, id.kind, id.team.as_deref()),
            (Role::Developer, PrincipalKind::User, Some("payments"))
        );
        assert_eq!(
            map_identity(&tenant, &rules[..2], &CertNames::default()),
            None
        );
    }

    #[test]
    fn rule_from_toml_defaults_to_agent() {
        let r: CertRule =
            serde_json::from_str(r#"{"field":"uri","pattern":"spiffe://a/*","role":"ingest"}"#)
                .unwrap();
        assert_eq!(r.kind, PrincipalKind::Agent);
        assert!(
            serde_json::from_str::<CertRule>(
                r#"{"field":"uri","pattern":"x","role":"ingest","tem":"a"}"#
            )
            .is_err()
        );
    }
}
