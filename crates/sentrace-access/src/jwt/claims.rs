//! The claims of a verified JWT: registered-claim checks (RFC 7519 §4.1) and the mapping to
//! an identity described on [`IssuerPolicy`].

use serde_json::{Map, Value};

use sentrace_core::{AuthMethod, Identity, PrincipalKind, TenantId};

use super::{IssuerPolicy, JwtError, MAX_CLAIM_BYTES, MAX_CLAIM_VALUES, TenantSource, cut};

fn invalid(claim: &str, reason: &'static str) -> JwtError {
    JwtError::InvalidClaim {
        claim: cut(claim),
        reason,
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; fractions are dropped.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    // Truncation toward zero is what a fractional NumericDate means here.
                    Some(f) if f.is_finite() && (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
                    _ => Err(invalid(name, "not a non-negative NumericDate")),
                }
            }
        }
        Some(_) => Err(invalid(name, "not a number")),
    }
}

/// A string claim of bounded length; `None` when absent.
fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(invalid(name, "empty")),
        Some(Value::String(s)) if s.len() > MAX_CLAIM_BYTES => Err(invalid(name, "too long")),
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(invalid(name, "has control characters"))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, "not a string")),
    }
}

/// The strings of a claim that is a string or an array of strings (other array members are
/// ignored); at most [`MAX_CLAIM_VALUES`].
fn string_list<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Vec<&'a str>, JwtError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) if a.len() > MAX_CLAIM_VALUES => {
            Err(invalid(name, "has too many values"))
        }
        Some(Value::Array(a)) => Ok(a.iter().filter_map(Value::as_str).collect()),
        Some(_) => Err(invalid(name, "not a string or an array of strings")),
    }
}

/// Issuer, audience and times.
pub(super) fn check(
    claims: &Map<String, Value>,
    policy: &IssuerPolicy,
    now: u64,
) -> Result<(), JwtError> {
    // iss: one string, equal byte for byte (OIDC Core §3.1.3.7 step 2).
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => {}
        Some(Value::String(iss)) => return Err(JwtError::WrongIssuer { iss: cut(iss) }),
        Some(_) => return Err(invalid("iss", "not a string")),
        None => {
            return Err(JwtError::MissingClaim {
                claim: "iss".into(),
            });
        }
    }
    // aud: a string or an array holding the configured audience (RFC 7519 §4.1.3).
    if claims.get("aud").is_none() {
        return Err(JwtError::MissingClaim {
            claim: "aud".into(),
        });
    }
    if !string_list(claims, "aud")?.contains(&policy.audience.as_str()) {
        return Err(JwtError::WrongAudience);
    }
    // exp is required; exp, nbf and iat are compared with the leeway (RFC 7519 §4.1.4-6).
    let leeway = policy.leeway_seconds;
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| JwtError::MissingClaim {
        claim: "exp".into(),
    })?;
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired { exp, now });
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(JwtError::NotYetValid { nbf, now });
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(JwtError::IssuedInFuture { iat, now });
    }
    Ok(())
}

/// The identity of a token whose signature and registered claims were checked.
pub(super) fn identity(
    claims: &Map<String, Value>,
    policy: &IssuerPolicy,
) -> Result<Identity, JwtError> {
    let sub = string_claim(claims, "sub")?;
    let client_id = string_claim(claims, "client_id")?;
    let azp = string_claim(claims, "azp")?;
    let subject = sub
        .or(client_id)
        .or(azp)
        .ok_or_else(|| JwtError::MissingClaim {
            claim: "sub".into(),
        })?;
    let principal = format!("jwt:{}#{subject}", policy.issuer);
    let client_credentials = sub.is_none()
        || sub == client_id
        || sub == azp
        || claims.get("gty").and_then(Value::as_str) == Some("client-credentials")
        || claims.get("idtyp").and_then(Value::as_str) == Some("app");
    let kind = if client_credentials {
        PrincipalKind::ServiceAccount
    } else {
        PrincipalKind::User
    };
    let tenant = match &policy.tenant {
        TenantSource::Fixed(t) => t.clone(),
        TenantSource::Claim(name) => {
            let value = string_claim(claims, name)?
                .ok_or_else(|| JwtError::MissingClaim { claim: cut(name) })?;
            TenantId::new(value).map_err(|_| JwtError::InvalidTenant { value: cut(value) })?
        }
    };
    let groups = string_list(claims, &policy.roles_claim)?;
    let role = policy
        .roles
        .iter()
        .find(|m| groups.contains(&m.group.as_str()))
        .map(|m| m.role)
        .ok_or_else(|| JwtError::NoRoleMapping {
            principal: cut(&principal),
            claim: cut(&policy.roles_claim),
        })?;
    let team = match &policy.team_claim {
        Some(name) => string_claim(claims, name)?.map(str::to_string),
        None => None,
    };
    Ok(Identity {
        tenant,
        principal,
        role,
        kind,
        team,
        method: AuthMethod::Jwt,
    })
}
