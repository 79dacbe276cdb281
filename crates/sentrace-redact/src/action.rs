//! Applying an [`Action`] to one sensitive value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use sentrace_core::TenantId;

use crate::kind::{Action, Kind};
use crate::vault::TenantSecrets;

/// Bytes of the HMAC output kept in a pseudonym (128 bits: collisions are negligible at
/// any realistic number of distinct values per tenant).
pub const PSEUDONYM_BYTES: usize = 16;

/// What became of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Left as it was.
    Keep,
    /// The holder (attribute, array element, query parameter) must be removed.
    Drop,
    /// Replaced by this text.
    Replace(String),
}

/// Per-batch state of the actions: the tenant, its keyed HMAC, its vault.
pub struct ActionCtx<'a> {
    tenant: &'a TenantId,
    hmac: Hmac<Sha256>,
    secrets: &'a dyn TenantSecrets,
    truncate_keep: usize,
}

impl<'a> ActionCtx<'a> {
    /// Fetches the tenant's pseudonym key once for the batch.
    pub fn new(tenant: &'a TenantId, secrets: &'a dyn TenantSecrets) -> Self {
        let key = secrets.pseudonym_key(tenant);
        // RFC 2104 section 2: a key shorter than the block size B (64 bytes for SHA-256) is
        // used with zeros appended to B bytes, so keying with the padded block is the same
        // HMAC as keying with the 32-byte key, and is infallible.
        let mut block = zeroize::Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(&key[..]);
        let hmac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&(*block).into());
        Self {
            tenant,
            hmac,
            secrets,
            truncate_keep: 4,
        }
    }

    /// Sets the number of characters `truncate` keeps.
    pub fn set_truncate_keep(&mut self, n: usize) {
        self.truncate_keep = n;
    }

    /// Applies `action` to `value` of `kind`. A span name or status message cannot be
    /// dropped: callers pass `can_drop = false` and get a mask instead.
    pub fn apply(&self, action: Action, kind: Kind, value: &str, can_drop: bool) -> Applied {
        match action {
            Action::Keep => Applied::Keep,
            Action::Drop if can_drop => Applied::Drop,
            Action::Drop | Action::Mask => Applied::Replace(mask(kind)),
            Action::Pseudonym => Applied::Replace(self.pseudonym(kind, value)),
            Action::Token => match self.secrets.tokenize(self.tenant, kind, value) {
                Ok(id) => Applied::Replace(format!("tok:{kind}:{id}")),
                Err(_) => Applied::Replace(mask(kind)),
            },
            Action::Truncate => Applied::Replace(truncate(kind, value, self.truncate_keep)),
            Action::Generalize => Applied::Replace(generalize(kind, value)),
        }
    }

    /// `pse:<kind>:<hex>`: the first [`PSEUDONYM_BYTES`] of
    /// HMAC-SHA-256(tenant key, kind || 0x00 || normalized value).
    pub fn pseudonym(&self, kind: Kind, value: &str) -> String {
        let mut mac = self.hmac.clone();
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(normalize_for_join(kind, value).as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(6 + kind.as_str().len() + 2 * PSEUDONYM_BYTES);
        out.push_str("pse:");
        out.push_str(kind.as_str());
        out.push(':');
        out.push_str(&hex::encode(&tag[..PSEUDONYM_BYTES]));
        out
    }
}

/// The type tag, `<email>`.
pub fn mask(kind: Kind) -> String {
    format!("<{kind}>")
}

/// Equal values must join whatever their spelling: e-mail case, phone and card separators.
fn normalize_for_join(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Email => value.trim().to_lowercase(),
        Kind::Phone | Kind::Card | Kind::Ssn => {
            value.chars().filter(char::is_ascii_digit).collect()
        }
        Kind::Iban => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        _ => value.trim().to_string(),
    }
}

/// `<card:…1111>`: the last `keep` characters, when the value is at least three times as
/// long (otherwise nothing is kept).
fn truncate(kind: Kind, value: &str, keep: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if keep == 0 || chars.len() < keep.saturating_mul(3) {
        return mask(kind);
    }
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("<{kind}:…{tail}>")
}

/// IPv4 to /24, IPv6 to /48, a date to its year; other kinds are masked.
pub fn generalize(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Ip => match value.trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}/24", Ipv4Addr::new(o[0], o[1], o[2], 0))
            }
            Ok(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
            Err(_) => mask(kind),
        },
        Kind::Dob => year_of(value).map_or_else(|| mask(kind), |y| format!("{y}")),
        Kind::Timestamp => timestamp_to_hour(value)
            .or_else(|| epoch_to_hour(value))
            .unwrap_or_else(|| mask(kind)),
        _ => mask(kind),
    }
}

/// Generalizes an RFC 3339 timestamp to its hour (`2024-11-24T09:00:00Z`).
pub fn timestamp_to_hour(value: &str) -> Option<String> {
    let b = value.as_bytes();
    if b.len() < 13 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let date_hour = value.get(..13)?;
    Some(format!("{date_hour}:00:00Z"))
}

/// Floors a Unix timestamp in seconds, milliseconds, microseconds or nanoseconds (told
/// apart by their number of digits: 10, 13, 16, 19) to its hour, in the same unit.
fn epoch_to_hour(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = v.parse().ok()?;
    let per_hour: u64 = match v.len() {
        9..=10 => 3_600,
        12..=13 => 3_600_000,
        15..=16 => 3_600_000_000,
        18..=19 => 3_600_000_000_000,
        _ => return None,
    };
    Some(((n / per_hour) * per_hour).to_string())
}

/// A four-digit year between 1900 and 2100 found in a date (YYYY-MM-DD, DD/MM/YYYY, ...).
fn year_of(value: &str) -> Option<u32> {
    value
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| g.len() == 4)
        .filter_map(|g| g.parse::<u32>().ok())
        .find(|y| (1900..=2100).contains(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::InMemorySecrets;

    #[test]
    fn actions() {
        let s = InMemorySecrets::from_master_key([1; 32]);
        let t = TenantId::new("t1").unwrap();
        let u = TenantId::new("t2").unwrap();
        let a = ActionCtx::new(&t, &s);
        let b = ActionCtx::new(&u, &s);
        let p1 = a.pseudonym(Kind::Email, "Jane@Example.com");
        assert!(p1.starts_with("pse:email:"), "{p1}");
        assert_eq!(p1.len(), "pse:email:".len() + 32);
        assert_eq!(
            p1,
            a.pseudonym(Kind::Email, "jane@example.com"),
            "case joins"
        );
        assert_ne!(
            p1,
            b.pseudonym(Kind::Email, "jane@example.com"),
            "tenants unlinkable"
        );
        assert_eq!(
            a.apply(Action::Mask, Kind::Card, "4111", true),
            Applied::Replace("<card>".into())
        );
        assert_eq!(
            a.apply(Action::Drop, Kind::Card, "4111", true),
            Applied::Drop
        );
        assert_eq!(
            a.apply(Action::Drop, Kind::Card, "4111", false),
            Applied::Replace("<card>".into())
        );
        assert_eq!(
            a.apply(Action::Truncate, Kind::Card, "4111111111111111", true),
            Applied::Replace("<card:…1111>".into())
        );
        assert_eq!(generalize(Kind::Ip, "203.0.113.77"), "203.0.113.0/24");
        assert_eq!(
            generalize(Kind::Ip, "2001:db8:abcd:12::1"),
            "2001:db8:abcd::/48"
        );
        assert_eq!(generalize(Kind::Dob, "1984-03-02"), "1984");
        assert_eq!(generalize(Kind::Dob, "02/03/1984"), "1984");
        assert_eq!(generalize(Kind::Email, "a@b.c"), "<email>");
        assert_eq!(
            timestamp_to_hour("2024-11-24T09:45:40Z").as_deref(),
            Some("2024-11-24T09:00:00Z")
        );
        let Applied::Replace(tok) = a.apply(Action::Token, Kind::Ssn, "123-45-6789", true) else {
            panic!("token not issued");
        };
        let id = tok.strip_prefix("tok:ssn:").unwrap();
        assert_eq!(s.detokenize(&t, id).as_deref(), Some("123-45-6789"));
    }
}
