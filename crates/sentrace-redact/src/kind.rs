//! Sensitivity classes (what a value is) and actions (what to do with it).

use std::fmt;

use serde::{Deserialize, Serialize};

use sentrace_core::AttributeClass;

/// What kind of sensitive value a detector or a key-name rule found.
///
/// The policy maps each kind to one [`Action`]. Names are the snake-case forms used in
/// policy files, metrics labels, pseudonym prefixes and scan findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An e-mail address.
    Email,
    /// A telephone number (E.164 or a national format).
    Phone,
    /// A payment card number (IIN range and Luhn checked).
    Card,
    /// An IBAN (ISO 13616, mod-97 checked).
    Iban,
    /// A US social security number (valid ranges only).
    Ssn,
    /// An IP address in a client-address context.
    Ip,
    /// A date of birth (found by key name).
    Dob,
    /// A JSON Web Token (header decodes to JSON with `alg`).
    Jwt,
    /// The credential of an `Authorization: Bearer` header.
    Bearer,
    /// The credential of an `Authorization: Basic` header.
    BasicAuth,
    /// A cookie value.
    Cookie,
    /// A session identifier.
    SessionId,
    /// A password (in a URL, a connection string, a query, a body, or by key name).
    Password,
    /// A PEM private key block.
    PrivateKey,
    /// A cloud or SaaS credential (AWS, GCP, GitHub, GitLab, Slack, Stripe, ...), or a
    /// value under a key that names a secret, token or API key.
    Secret,
    /// A user identifier or user name (found by key name).
    UserId,
    /// A person's name (found by key name).
    PersonName,
    /// A literal in a SQL statement (replaced by `?` by the SQL sanitizer).
    SqlLiteral,
    /// A timestamp under a key that the policy names in `keys.sensitive` (never detected
    /// in free text). `generalize` keeps its hour.
    Timestamp,
}

impl Kind {
    /// Every kind, in declaration order (the index of a kind is its position here).
    pub const ALL: [Kind; 19] = [
        Kind::Email,
        Kind::Phone,
        Kind::Card,
        Kind::Iban,
        Kind::Ssn,
        Kind::Ip,
        Kind::Dob,
        Kind::Jwt,
        Kind::Bearer,
        Kind::BasicAuth,
        Kind::Cookie,
        Kind::SessionId,
        Kind::Password,
        Kind::PrivateKey,
        Kind::Secret,
        Kind::UserId,
        Kind::PersonName,
        Kind::SqlLiteral,
        Kind::Timestamp,
    ];

    /// Number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Snake-case name (`email`, `basic_auth`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Ssn => "ssn",
            Kind::Ip => "ip",
            Kind::Dob => "dob",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::BasicAuth => "basic_auth",
            Kind::Cookie => "cookie",
            Kind::SessionId => "session_id",
            Kind::Password => "password",
            Kind::PrivateKey => "private_key",
            Kind::Secret => "secret",
            Kind::UserId => "user_id",
            Kind::PersonName => "person_name",
            Kind::SqlLiteral => "sql_literal",
            Kind::Timestamp => "timestamp",
        }
    }

    /// The kind named `s` (its snake-case name, as [`Kind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The sensitivity class of values of this kind: what the query service requires to
    /// show them unmasked. This is the one place that maps kinds to classes.
    ///
    /// | class | kinds |
    /// |---|---|
    /// | `pii` | email, phone, ssn, ip, dob, user_id, person_name, timestamp |
    /// | `financial` | card, iban |
    /// | `secret` | jwt, bearer, basic_auth, cookie, session_id, password, private_key, secret |
    /// | none | sql_literal |
    ///
    /// A SQL literal has no class: it is replaced by `?` for good, whatever it held, so no
    /// part of it is left to mask (values that the detectors find in the statement are
    /// recorded with their own class).
    pub fn class(self) -> Option<AttributeClass> {
        match self {
            Kind::Email
            | Kind::Phone
            | Kind::Ssn
            | Kind::Ip
            | Kind::Dob
            | Kind::UserId
            | Kind::PersonName
            | Kind::Timestamp => Some(AttributeClass::Pii),
            Kind::Card | Kind::Iban => Some(AttributeClass::Financial),
            Kind::Jwt
            | Kind::Bearer
            | Kind::BasicAuth
            | Kind::Cookie
            | Kind::SessionId
            | Kind::Password
            | Kind::PrivateKey
            | Kind::Secret => Some(AttributeClass::Secret),
            Kind::SqlLiteral => None,
        }
    }

    /// Whether this kind is a credential (used for OCSF severity and categories).
    pub fn is_credential(self) -> bool {
        matches!(
            self,
            Kind::Jwt
                | Kind::Bearer
                | Kind::BasicAuth
                | Kind::Cookie
                | Kind::SessionId
                | Kind::Password
                | Kind::PrivateKey
                | Kind::Secret
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a sensitive value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave the value as it is (for kinds a tenant chooses to keep).
    Keep,
    /// Remove the whole attribute (or array element) that holds the value. In a span name
    /// or status message, which cannot be removed, the value is masked instead.
    Drop,
    /// Replace the value with its type tag, e.g. `<email>`.
    Mask,
    /// Replace the value with a keyed pseudonym `pse:<kind>:<hex>`: HMAC-SHA-256 under the
    /// tenant's pseudonym key of the normalized value. Equal values join across traces;
    /// tenants cannot link theirs.
    Pseudonym,
    /// Replace the value with a reversible token `tok:<kind>:<id>` from the tenant's vault.
    Token,
    /// Keep only the last characters (`truncate_keep` in the policy), e.g. `<card:…1111>`.
    Truncate,
    /// Coarsen the value: IPv4 to its /24, IPv6 to its /48, a date of birth to its year, a
    /// timestamp to its hour. Kinds without a coarser form are masked.
    Generalize,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 7] = [
        Action::Keep,
        Action::Drop,
        Action::Mask,
        Action::Pseudonym,
        Action::Token,
        Action::Truncate,
        Action::Generalize,
    ];

    /// Number of actions.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`Action::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::Mask => "mask",
            Action::Pseudonym => "pseudonym",
            Action::Token => "token",
            Action::Truncate => "truncate",
            Action::Generalize => "generalize",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_all() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
        }
    }

    #[test]
    fn credentials_are_secrets_and_names_parse() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(
                k.is_credential(),
                k.class() == Some(AttributeClass::Secret),
                "{k}"
            );
        }
        assert_eq!(Kind::parse("Email"), None);
        assert_eq!(Kind::Card.class(), Some(AttributeClass::Financial));
        assert_eq!(Kind::SqlLiteral.class(), None);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for k in Kind::ALL {
            let s = serde_json::to_string(&k).unwrap();
            assert_eq!(s, format!("\"{}\"", k.as_str()));
        }
    }
}
