//! OIDC / JWT bearer tokens (RFC 7519, RFC 7515 compact serialization, RFC 9068 access
//! tokens): verification against an issuer's keys and the mapping of claims to an
//! [`Identity`].
//!
//! Pure: the caller hands in the parsed key set ([`Jwks`]), the issuer's [`IssuerPolicy`]
//! and the time. Fetching and caching keys is the server's job.
//!
//! [`verify`] checks, in this order, and refuses at the first failure:
//! 1. the token's size (at most [`MAX_TOKEN_BYTES`]) and shape (three base64url parts);
//! 2. the header's `alg` against the issuer's allowed algorithms, before any key is looked
//!    at, so `none`, `HS256` keyed with a public key, or any other algorithm never reaches
//!    a verifier; a header with `crit` is refused (RFC 7515 §4.1.11: no extension is
//!    understood here);
//! 3. the key: the `kid` of the header selects it, and its type must fit the algorithm;
//! 4. the signature (aws-lc-rs through `jsonwebtoken`);
//! 5. the claims: `iss` equal to the configured issuer, `aud` (string or array) holding the
//!    configured audience, `exp` present and not passed, `nbf` and `iat` not in the
//!    future, each time compared with the configured leeway (at most
//!    [`MAX_LEEWAY_SECONDS`]);
//! 6. the mapping to an identity (see [`IssuerPolicy`]).

mod claims;
mod jwks;
#[cfg(test)]
mod tests;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use sentrace_core::{Identity, Role, TenantId};

pub use jwks::{Algorithm, Jwks, JwksError, MAX_JWKS_BYTES, MAX_JWKS_KEYS, MAX_KID_BYTES};

/// Longest token accepted, in bytes; longer ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
/// Largest clock-skew allowance that may be configured, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// Most values read from the roles claim or `aud`.
pub const MAX_CLAIM_VALUES: usize = 256;
/// Longest string claim used (`sub`, a group, a team, `client_id`), in bytes.
pub const MAX_CLAIM_BYTES: usize = 256;

/// Where the tenant of a token's identity comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantSource {
    /// Every token of the issuer acts for this tenant.
    Fixed(TenantId),
    /// The named claim (a string, validated as a tenant id) holds the tenant.
    Claim(String),
}

/// One entry of a role mapping: a token holding `group` gets `role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMapping {
    /// A value of the roles claim (a group name, an app role).
    pub group: String,
    /// The role it grants.
    pub role: Role,
}

/// What is accepted from one issuer and how its claims become an identity.
///
/// - Tenant: [`TenantSource`].
/// - Role: the entries of `roles` are tried **in order**; the first whose `group` is among
///   the values of `roles_claim` gives the role. A token matching no entry is refused. (List
///   the more privileged mapping first if a person in two groups should get it; list the
///   less privileged first to make membership in a narrow group win.)
/// - Team: the string claim `team_claim`, when configured and present.
/// - Principal: `jwt:<iss>#<sub>`; without `sub`, `client_id`, then `azp`.
/// - Kind: [`PrincipalKind::ServiceAccount`](sentrace_core::PrincipalKind) for a
///   client-credentials token, recognised by any of: no `sub`; `sub` equal to `client_id` or
///   `azp` (RFC 9068 §2.2 for grants without a resource owner); `gty` =
///   `client-credentials` (Auth0); `idtyp` = `app` (Microsoft Entra). Otherwise
///   `User`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// The exact `iss` value.
    pub issuer: String,
    /// A value `aud` must hold.
    pub audience: String,
    /// Algorithms accepted from this issuer (a subset of [`Algorithm::ALL`]).
    pub algorithms: Vec<Algorithm>,
    /// Clock-skew allowance in seconds (at most [`MAX_LEEWAY_SECONDS`]).
    pub leeway_seconds: u64,
    /// Where the tenant comes from.
    pub tenant: TenantSource,
    /// The claim holding group or role names (a string or an array of strings).
    pub roles_claim: String,
    /// Group → role, tried in order.
    pub roles: Vec<RoleMapping>,
    /// The claim holding the team, if any.
    pub team_claim: Option<String>,
}

impl IssuerPolicy {
    /// Checks values that make no sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuer.is_empty() {
            return Err("issuer must not be empty".into());
        }
        if self.audience.is_empty() {
            return Err("audience must not be empty".into());
        }
        if self.algorithms.is_empty() {
            return Err("algorithms must name at least one of RS256, ES256, EdDSA".into());
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(format!(
                "leeway_seconds must be at most {MAX_LEEWAY_SECONDS}, not {}",
                self.leeway_seconds
            ));
        }
        if let TenantSource::Claim(c) = &self.tenant
            && c.is_empty()
        {
            return Err("tenant_claim must not be empty".into());
        }
        if self.roles_claim.is_empty() {
            return Err("roles_claim must not be empty".into());
        }
        if self.roles.is_empty() {
            return Err("roles must map at least one group to a role".into());
        }
        if let Some(m) = self.roles.iter().find(|m| m.group.is_empty()) {
            return Err(format!(
                "roles: an entry for role {} has an empty group",
                m.role
            ));
        }
        if self.team_claim.as_deref() == Some("") {
            return Err("team_claim must not be empty".into());
        }
        Ok(())
    }
}

/// Why a JWT was refused. Every variant is answered with the same bare 401; the fields are
/// for logs and audit, and values copied from the token are cut to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three base64url parts with JSON objects in the first two.
    #[error("malformed JWT: {what}")]
    Malformed {
        /// What was wrong.
        what: &'static str,
    },
    /// `alg` is not one the issuer is configured to accept (`none` and `HS*` never are).
    #[error("algorithm {alg:?} is not accepted")]
    AlgorithmRefused {
        /// The header's `alg`.
        alg: String,
    },
    /// The header has `crit`.
    #[error("header has critical extensions (crit), which are not supported")]
    CriticalHeader,
    /// No configured issuer has this `iss`.
    #[error("issuer {iss:?} is not configured")]
    UnknownIssuer {
        /// The token's `iss`.
        iss: String,
    },
    /// The issuer's keys could not be loaded.
    #[error("the keys of issuer {issuer} are unavailable")]
    KeysUnavailable {
        /// The configured issuer.
        issuer: String,
    },
    /// No key of the issuer fits the header's `kid` and `alg`.
    #[error("no key with kid {kid:?} for {alg}")]
    UnknownKey {
        /// The header's `kid`.
        kid: Option<String>,
        /// The header's `alg`.
        alg: Algorithm,
    },
    /// The signature did not verify.
    #[error("bad signature")]
    BadSignature,
    /// A required claim is missing.
    #[error("claim {claim} is missing")]
    MissingClaim {
        /// The claim.
        claim: String,
    },
    /// A claim has the wrong type or an unacceptable value.
    #[error("claim {claim} is invalid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// `iss` is not the configured issuer.
    #[error("issuer {iss:?} does not match the configured issuer")]
    WrongIssuer {
        /// The token's `iss`.
        iss: String,
    },
    /// `aud` does not hold the configured audience.
    #[error("audience does not include the configured audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's time.
        now: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// The verifier's time.
        now: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's time.
        now: u64,
    },
    /// The tenant claim is not a valid tenant id.
    #[error("tenant claim {value:?} is not a valid tenant id")]
    InvalidTenant {
        /// The claim's value.
        value: String,
    },
    /// No value of the roles claim is mapped to a role.
    #[error("{principal}: no value of claim {claim} is mapped to a role")]
    NoRoleMapping {
        /// The principal.
        principal: String,
        /// The roles claim.
        claim: String,
    },
}

/// Cuts a value copied from a token for an error message.
pub(crate) fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The three parts of a compact JWS, decoded enough to dispatch.
struct Parts<'a> {
    /// `header.payload`, the signed bytes.
    signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
    header: Map<String, Value>,
}

fn decode_object(b64: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| JwtError::Malformed { what })?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed { what }),
    }
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Malformed {
            what: "not three dot-separated parts",
        });
    };
    let header = decode_object(h, "header is not base64url JSON object")?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(JwtError::Malformed { what: "shape" })?;
    Ok(Parts {
        signing_input,
        payload_b64: p,
        signature_b64: s,
        header,
    })
}

/// The `iss` of a token, read WITHOUT verifying anything: only to pick which configured
/// issuer's [`verify`] to run. Never use the result otherwise.
pub fn unverified_issuer(token: &str) -> Result<String, JwtError> {
    let parts = split(token)?;
    let claims = decode_object(parts.payload_b64, "payload is not base64url JSON object")?;
    match claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        Some(_) => Err(JwtError::InvalidClaim {
            claim: "iss".into(),
            reason: "not a string",
        }),
        None => Err(JwtError::MissingClaim {
            claim: "iss".into(),
        }),
    }
}

/// The `kid` of a token's header, unverified (for logs and for deciding whether a key-set
/// refresh could help).
pub fn unverified_kid(token: &str) -> Option<String> {
    let parts = split(token).ok()?;
    parts.header.get("kid").and_then(Value::as_str).map(cut)
}

/// Verifies `token` against the issuer's keys and policy at `now_unix` and maps its claims
/// to an identity (see the module documentation for the order of checks).
pub fn verify(
    token: &str,
    jwks: &Jwks,
    policy: &IssuerPolicy,
    now_unix: u64,
) -> Result<Identity, JwtError> {
    // 1. Size and shape.
    let parts = split(token)?;
    // 2. Algorithm, before any key lookup.
    let alg_name = match parts.header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => {
            return Err(JwtError::Malformed {
                what: "header has no alg string",
            });
        }
    };
    let alg = Algorithm::parse(alg_name)
        .filter(|a| policy.algorithms.contains(a))
        .ok_or_else(|| JwtError::AlgorithmRefused { alg: cut(alg_name) })?;
    if parts.header.contains_key("crit") {
        return Err(JwtError::CriticalHeader);
    }
    // 3. Key by kid.
    let kid = match parts.header.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= MAX_KID_BYTES => Some(k.as_str()),
        Some(_) => {
            return Err(JwtError::Malformed {
                what: "header kid is not a string of at most 256 bytes",
            });
        }
    };
    let key = jwks.select(alg, kid).ok_or_else(|| JwtError::UnknownKey {
        kid: kid.map(cut),
        alg,
    })?;
    // 4. Signature.
    let signature =
        URL_SAFE_NO_PAD
            .decode(parts.signature_b64)
            .map_err(|_| JwtError::Malformed {
                what: "signature is not base64url",
            })?;
    let verifier =
        (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(&alg.jose(), &key.key)
            .map_err(|_| JwtError::BadSignature)?;
    jsonwebtoken::signature::Verifier::verify(
        verifier.as_ref(),
        parts.signing_input.as_bytes(),
        &signature,
    )
    .map_err(|_| JwtError::BadSignature)?;
    // 5. and 6. Claims, then the identity.
    let claims = decode_object(parts.payload_b64, "payload is not base64url JSON object")?;
    claims::check(&claims, policy, now_unix)?;
    claims::identity(&claims, policy)
}
