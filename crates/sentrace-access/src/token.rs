//! API tokens.
//!
//! A token reads `st_<id>_<secret>`: `id` is 16 hex characters that name the token in lists
//! and audit events, `secret` is 32 random bytes in unpadded base64url. Only the SHA-256 of
//! the secret is stored. A 256-bit random secret needs no slow hash: there is nothing to
//! brute-force. Comparison is constant-time.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use sentrace_core::{Identity, Role, TenantId};

/// Every token starts with this, so secret scanners and humans recognise it.
pub const TOKEN_PREFIX: &str = "st_";

const ID_HEX_LEN: usize = 16;
const SECRET_BYTES: usize = 32;
/// Longest token we even look at; anything longer is refused before parsing.
const MAX_TOKEN_LEN: usize = 128;
/// Largest token file accepted.
pub const MAX_TOKEN_FILE_BYTES: usize = 16 * 1024 * 1024;

/// One stored token. Holds no secret: only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Public id (16 hex characters).
    pub id: String,
    /// The tenant every request with this token acts for.
    pub tenant: TenantId,
    /// What the token may do.
    pub role: Role,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
    /// Expiry, Unix seconds; none means it does not expire.
    pub expires_unix: Option<u64>,
    /// Revocation time, Unix seconds.
    pub revoked_unix: Option<u64>,
    /// Free text set at creation.
    #[serde(default)]
    pub description: String,
    /// The team of a `developer` token (its scope of services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

impl TokenRecord {
    /// Whether the token is usable at `now_unix`.
    pub fn is_active(&self, now_unix: u64) -> bool {
        self.revoked_unix.is_none() && self.expires_unix.is_none_or(|e| now_unix < e)
    }
}

/// A newly created token: the record to store and the secret to show once.
#[derive(Debug)]
pub struct IssuedToken {
    /// The stored part.
    pub record: TokenRecord,
    /// The full bearer token. Show it once; it is not stored.
    pub token: String,
}

/// Why the token file or a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file did not parse.
    #[error("token file is invalid: {0}")]
    File(String),
    /// No token with this id.
    #[error("no token with id {0:?}")]
    UnknownId(String),
    /// The token was already revoked.
    #[error("token {0} is already revoked")]
    AlreadyRevoked(String),
}

/// Why a presented credential was refused. The server answers every variant with the same
/// bare 401, so a caller learns nothing; the variant is for logs and audit only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential.
    #[error("no credential")]
    Missing,
    /// Not a well-formed token.
    #[error("malformed credential")]
    Malformed,
    /// No such token, or the secret did not match.
    #[error("unknown token or wrong secret")]
    Unknown,
    /// The token expired.
    #[error("token {id} expired")]
    Expired { id: String },
    /// The token was revoked.
    #[error("token {id} revoked")]
    Revoked { id: String },
    /// A bearer credential and the connection's client certificate name different tenants.
    #[error("credential {credential} and client certificate {certificate} name different tenants")]
    TenantMismatch {
        credential: String,
        certificate: String,
    },
    /// A JWT bearer token was refused.
    #[error("JWT refused: {0}")]
    Jwt(#[from] crate::jwt::JwtError),
    /// Authenticated but lacking the role.
    #[error("token {id} lacks role {wanted}")]
    Forbidden { id: String, wanted: Role },
}

/// The set of tokens of one data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSet {
    /// Format version, 1.
    pub version: u32,
    /// All tokens, revoked ones included (kept for audit).
    pub tokens: Vec<TokenRecord>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Splits `st_<id>_<secret>`; checks shape only.
fn split_token(token: &str) -> Option<(&str, &str)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_HEX_LEN && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

impl TokenSet {
    /// Parses the token file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() > MAX_TOKEN_FILE_BYTES {
            return Err(TokenError::File(format!(
                "larger than {MAX_TOKEN_FILE_BYTES} bytes"
            )));
        }
        let set: TokenSet =
            serde_json::from_slice(bytes).map_err(|e| TokenError::File(e.to_string()))?;
        if set.version != 1 {
            return Err(TokenError::File(format!(
                "version {} is not supported (expected 1)",
                set.version
            )));
        }
        Ok(set)
    }

    /// Serializes the token file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Creates a token and adds its record.
    pub fn issue(
        &mut self,
        tenant: TenantId,
        role: Role,
        now_unix: u64,
        ttl: Option<Duration>,
        description: impl Into<String>,
    ) -> IssuedToken {
        self.version = 1;
        let mut rng = rand::rng();
        let mut id_bytes = [0u8; ID_HEX_LEN / 2];
        let mut secret = [0u8; SECRET_BYTES];
        loop {
            rng.fill_bytes(&mut id_bytes);
            let id = hex::encode(id_bytes);
            if !self.tokens.iter().any(|t| t.id == id) {
                break;
            }
        }
        rng.fill_bytes(&mut secret);
        let id = hex::encode(id_bytes);
        let secret_text = URL_SAFE_NO_PAD.encode(secret);
        let record = TokenRecord {
            id: id.clone(),
            tenant,
            role,
            secret_sha256: sha256_hex(secret_text.as_bytes()),
            created_unix: now_unix,
            expires_unix: ttl.map(|d| now_unix.saturating_add(d.as_secs())),
            revoked_unix: None,
            description: description.into(),
            team: None,
        };
        self.tokens.push(record.clone());
        IssuedToken {
            record,
            token: format!("{TOKEN_PREFIX}{id}_{secret_text}"),
        }
    }

    /// Revokes a token by id.
    pub fn revoke(&mut self, id: &str, now_unix: u64) -> Result<&TokenRecord, TokenError> {
        let rec = self
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| TokenError::UnknownId(id.to_string()))?;
        if rec.revoked_unix.is_some() {
            return Err(TokenError::AlreadyRevoked(id.to_string()));
        }
        rec.revoked_unix = Some(now_unix);
        Ok(rec)
    }

    /// Authenticates a presented bearer token.
    pub fn authenticate(&self, token: &str, now_unix: u64) -> Result<Identity, AuthError> {
        let (id, secret) = split_token(token).ok_or(AuthError::Malformed)?;
        let rec = self
            .tokens
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id))
            .ok_or(AuthError::Unknown)?;
        let want = hex::decode(&rec.secret_sha256).map_err(|_| AuthError::Unknown)?;
        let got = Sha256::digest(secret.as_bytes());
        if !bool::from(got.as_slice().ct_eq(&want)) {
            return Err(AuthError::Unknown);
        }
        if rec.revoked_unix.is_some() {
            return Err(AuthError::Revoked { id: rec.id.clone() });
        }
        if rec.expires_unix.is_some_and(|e| now_unix >= e) {
            return Err(AuthError::Expired { id: rec.id.clone() });
        }
        let mut identity = Identity::new(rec.tenant.clone(), format!("token:{}", rec.id), rec.role);
        identity.team = rec.team.clone();
        Ok(identity)
    }
}

/// Parses a duration with its unit: `2w`, `30d`, `12h`, `15m`, `45s` or `500ms`. A bare
/// number is refused: `5` could mean seconds or days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration with a unit, like 30d, 12h, 15m or 45s");
    let Some(i) = text.find(|c: char| !c.is_ascii_digit()) else {
        return Err(bad());
    };
    let (num, unit) = text.split_at(i);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "w" => n.checked_mul(604_800),
        "ms" => return Ok(Duration::from_millis(n)),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn issue_authenticate_revoke() {
        let mut set = TokenSet::default();
        let t = set.issue(tenant("acme"), Role::Ingest, 1000, None, "ci");
        assert!(t.token.starts_with("st_"));
        let id = set.authenticate(&t.token, 2000).unwrap();
        assert_eq!(id.tenant, tenant("acme"));
        assert_eq!(id.role, Role::Ingest);
        // Stored form holds no secret.
        let json = String::from_utf8(set.to_json()).unwrap();
        let secret = &t.token["st_".len() + 17..];
        assert!(!json.contains(secret));
        // Round trip through the file.
        let set = TokenSet::from_json(json.as_bytes()).unwrap();
        assert!(set.authenticate(&t.token, 2000).is_ok());
        let mut set = set;
        set.revoke(&t.record.id, 3000).unwrap();
        assert!(matches!(
            set.authenticate(&t.token, 3001),
            Err(AuthError::Revoked { .. })
        ));
        assert!(matches!(
            set.revoke(&t.record.id, 3002),
            Err(TokenError::AlreadyRevoked(_))
        ));
    }

    #[test]
    fn refuses_wrong_expired_malformed() {
        let mut set = TokenSet::default();
        let t = set.issue(
            tenant("a"),
            Role::Read,
            1000,
            Some(Duration::from_secs(10)),
            "",
        );
        assert!(matches!(
            set.authenticate(&t.token, 1010),
            Err(AuthError::Expired { .. })
        ));
        let mut wrong = t.token.clone();
        wrong.pop();
        wrong.push(if t.token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(set.authenticate(&wrong, 1001), Err(AuthError::Unknown));
        for bad in ["", "Bearer x", "st_", "st_zz_abc", &"st_".repeat(100)] {
            assert_eq!(
                set.authenticate(bad, 1001),
                Err(AuthError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            set.authenticate("st_0123456789abcdef_abc", 1001),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(2_592_000)
        );
        assert!(parse_duration("90").unwrap_err().contains("unit"));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("3w").unwrap(),
            Duration::from_secs(3 * 604_800)
        );
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn file_errors() {
        assert!(TokenSet::from_json(b"{").is_err());
        assert!(TokenSet::from_json(br#"{"version":2,"tokens":[]}"#).is_err());
        assert!(TokenSet::from_json(br#"{"version":1,"tokens":[],"extra":1}"#).is_err());
    }
}
