//! Identifiers that carry security meaning, each behind a validating constructor.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier had the wrong length.
    #[error("{what} must be {expected} bytes ({hex} hex characters), got {got} bytes")]
    Length {
        what: &'static str,
        expected: usize,
        hex: usize,
        got: usize,
    },
    /// The identifier was all zero bytes, which OTLP defines as invalid.
    #[error("{what} must not be all zeros")]
    AllZero { what: &'static str },
    /// The text form was not hexadecimal.
    #[error("{what} is not valid hex: {text:?}")]
    NotHex { what: &'static str, text: String },
    /// A tenant id broke the naming rule.
    #[error(
        "tenant id {text:?} is invalid: use 1 to 64 characters from a-z, 0-9, '-' and '_', starting with a letter or digit"
    )]
    Tenant { text: String },
}

macro_rules! byte_id {
    ($name:ident, $len:expr, $what:expr) => {
        #[doc = concat!("A non-zero ", $what, " of ", stringify!($len), " bytes.")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Validates raw bytes: right length, not all zero.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    what: $what,
                    expected: $len,
                    hex: $len * 2,
                    got: bytes.len(),
                })?;
                Self::from_bytes(arr)
            }

            /// Validates a fixed-size array: not all zero.
            pub fn from_bytes(bytes: [u8; $len]) -> Result<Self, IdError> {
                if bytes.iter().all(|b| *b == 0) {
                    return Err(IdError::AllZero { what: $what });
                }
                Ok(Self(bytes))
            }

            /// Parses lower- or upper-case hex of exactly the right length.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                if text.len() != $len * 2 {
                    return Err(IdError::Length {
                        what: $what,
                        expected: $len,
                        hex: $len * 2,
                        got: text.len() / 2,
                    });
                }
                let mut out = [0u8; $len];
                hex::decode_to_slice(text, &mut out).map_err(|_| IdError::NotHex {
                    what: $what,
                    text: text.chars().take(64).collect(),
                })?;
                Self::from_bytes(out)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_id!(TraceId, 16, "trace id");
byte_id!(SpanId, 8, "span id");

/// A tenant: the unit of isolation for keys, logs, policies and queries.
///
/// Tenant ids always come from an authenticated credential, never from a request header.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates a tenant id: 1..=64 of `[a-z0-9_-]`, starting with `[a-z0-9]`.
    pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
        let text = text.into();
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && text
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(text))
        } else {
            Err(IdError::Tenant {
                text: text.chars().take(80).collect(),
            })
        }
    }

    /// The id as text. Safe to use in paths: it has no separators or dots.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_rules() {
        assert!(TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").is_ok());
        assert_eq!(
            TraceId::from_hex("00000000000000000000000000000000"),
            Err(IdError::AllZero { what: "trace id" })
        );
        assert!(matches!(
            TraceId::from_slice(&[1u8; 8]),
            Err(IdError::Length { got: 8, .. })
        ));
        assert!(matches!(
            SpanId::from_hex("zz00000000000001"),
            Err(IdError::NotHex { .. })
        ));
        let id = SpanId::from_hex("00F067AA0BA902B7").unwrap();
        assert_eq!(id.to_hex(), "00f067aa0ba902b7");
    }

    #[test]
    fn tenant_rules() {
        assert!(TenantId::new("acme-prod_1").is_ok());
        for bad in ["", "-x", "Acme", "a/b", "a..b", &"x".repeat(65)] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
