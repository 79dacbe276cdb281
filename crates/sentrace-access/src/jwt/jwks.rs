//! JSON Web Key Sets (RFC 7517), reduced to the verifying keys Sentrace accepts.
//!
//! A set is parsed once, when it is loaded or refreshed; verification then only looks keys
//! up. Keys that cannot verify an accepted algorithm are skipped, not refused, because an
//! identity provider's set routinely holds encryption keys and keys for other algorithms:
//! - `use` other than `sig`, or `key_ops` without `verify`;
//! - symmetric keys (`kty` `oct`): an HMAC secret is never a verifying key here;
//! - RSA keys shorter than 2048 bits, EC keys on curves other than P-256, OKP keys other
//!   than Ed25519, and keys whose `alg` names another algorithm.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys in one JWKS (counting skipped ones).
pub const MAX_JWKS_KEYS: usize = 64;
/// Longest `kid` accepted, in bytes.
pub const MAX_KID_BYTES: usize = 256;
/// Shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Longest RSA modulus accepted, in bytes (8192 bits).
const MAX_RSA_MODULUS_BYTES: usize = 1024;

/// The signature algorithms Sentrace verifies (RFC 7518 §3.3 and §3.4, RFC 8037 §3.1).
/// Nothing else is accepted: not `none`, not HMAC (`HS*`), not RSA-PSS or other curves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 8192-bit keys.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// EdDSA with Ed25519.
    EdDsa,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    /// Parses a JOSE `alg` name exactly (`RS256`, `ES256`, `EdDSA`); anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The JOSE `alg` name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn jose(&self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One usable verifying key.
#[derive(Clone, Debug)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("JWKS is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a JSON object with a `keys` array.
    #[error("JWKS is not a JSON object with a \"keys\" array: {reason}")]
    Invalid {
        /// What was wrong.
        reason: String,
    },
    /// More keys than [`MAX_JWKS_KEYS`].
    #[error("JWKS has {count} keys, more than the limit of {max}")]
    TooManyKeys {
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// The verifying keys of one issuer.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<VerifyingKey>,
    skipped: usize,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the keys that can verify an
    /// accepted algorithm.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwksError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge {
                len: bytes.len(),
                max: MAX_JWKS_BYTES,
            });
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| JwksError::Invalid {
            reason: e.to_string(),
        })?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::Invalid {
                reason: "no \"keys\" array".into(),
            });
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys {
                count: entries.len(),
                max: MAX_JWKS_KEYS,
            });
        }
        let mut set = Jwks::default();
        for entry in entries {
            match parse_key(entry) {
                Some(k) => set.keys.push(k),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// Usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys of the document that were skipped (see the module documentation).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether a usable key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key for a token: with a `kid`, the key of that id and algorithm; without one, the
    /// only key of that algorithm (two or more make a missing `kid` ambiguous: no key).
    pub(crate) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.alg == alg && k.kid.as_deref() == Some(kid)),
            None => {
                let mut of_alg = self.keys.iter().filter(|k| k.alg == alg);
                match (of_alg.next(), of_alg.next()) {
                    (Some(k), None) => Some(k),
                    _ => None,
                }
            }
        }
    }
}

fn str_field<'a>(key: &'a Value, name: &str) -> Option<&'a str> {
    key.get(name).and_then(Value::as_str)
}

/// Decoded length of a base64url member, when it decodes.
fn b64_len(text: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(text).ok().map(|b| {
        // An RSA modulus may carry a leading zero byte.
        b.iter().skip_while(|&&x| x == 0).count()
    })
}

fn parse_key(key: &Value) -> Option<VerifyingKey> {
    if key.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    if let Some(ops) = key.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
    {
        return None;
    }
    let kid = match key.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(_) => return None,
    };
    let declared = key.get("alg").map(|a| a.as_str().unwrap_or("?"));
    let (alg, decoding) = match str_field(key, "kty")? {
        "RSA" => {
            let (n, e) = (str_field(key, "n")?, str_field(key, "e")?);
            let bits = b64_len(n)?;
            if !(MIN_RSA_MODULUS_BYTES..=MAX_RSA_MODULUS_BYTES).contains(&bits) {
                return None;
            }
            (
                Algorithm::Rs256,
                DecodingKey::from_rsa_components(n, e).ok()?,
            )
        }
        "EC" if str_field(key, "crv") == Some("P-256") => {
            let (x, y) = (str_field(key, "x")?, str_field(key, "y")?);
            if URL_SAFE_NO_PAD.decode(x).ok()?.len() != 32
                || URL_SAFE_NO_PAD.decode(y).ok()?.len() != 32
            {
                return None;
            }
            (
                Algorithm::Es256,
                DecodingKey::from_ec_components(x, y).ok()?,
            )
        }
        "OKP" if str_field(key, "crv") == Some("Ed25519") => {
            let x = str_field(key, "x")?;
            if URL_SAFE_NO_PAD.decode(x).ok()?.len() != 32 {
                return None;
            }
            (Algorithm::EdDsa, DecodingKey::from_ed_components(x).ok()?)
        }
        _ => return None,
    };
    // RFC 9864 names EdDSA over Ed25519 `Ed25519`; both mean the same key use.
    let alg_ok = match declared {
        None => true,
        Some(name) => name == alg.as_str() || (alg == Algorithm::EdDsa && name == "Ed25519"),
    };
    alg_ok.then_some(VerifyingKey {
        kid,
        alg,
        key: decoding,
    })
}
