//! Per-tenant keys and the token vault the actions need, behind a trait so that the store
//! can back it with encrypted, erasable storage.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use sentrace_core::TenantId;

use crate::kind::Kind;

/// Why a value could not be tokenized. The minimizer then masks the value (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The vault refused or failed to store the value.
    #[error("token vault for tenant {tenant} is unavailable: {reason}")]
    Unavailable {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        reason: String,
    },
}

/// Per-tenant secrets used by the minimizer.
pub trait TenantSecrets: Send + Sync {
    /// The tenant's 256-bit pseudonym key (HMAC-SHA-256 key). Must be stable for a tenant,
    /// so that pseudonyms join across traces, and differ between tenants. Wiped from
    /// memory when the returned value is dropped.
    fn pseudonym_key(&self, tenant: &TenantId) -> zeroize::Zeroizing<[u8; 32]>;

    /// Stores `value` in the tenant's vault and returns an opaque token id (without the
    /// `tok:<kind>:` prefix, which the minimizer adds). Equal values may share a token.
    fn tokenize(&self, tenant: &TenantId, kind: Kind, value: &str) -> Result<String, VaultError>;
}

/// Domain-separation label for deriving pseudonym keys from a master key.
const PSEUDONYM_KEY_LABEL: &[u8] = b"sentrace pseudonym key v1\0";

/// An in-memory implementation for tests and the CLI: pseudonym keys derived from a master
/// key as `HMAC-SHA-256(master, "sentrace pseudonym key v1\0" || tenant)`, tokens random
/// 128-bit ids kept in a map (lost when the process ends).
pub struct InMemorySecrets {
    master: [u8; 32],
    tokens: Mutex<HashMap<(TenantId, Kind, String), String>>,
    values: Mutex<HashMap<(TenantId, String), String>>,
}

impl std::fmt::Debug for InMemorySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemorySecrets").finish_non_exhaustive()
    }
}

impl InMemorySecrets {
    /// Keys derived from `master` (stable across runs with the same master key).
    pub fn from_master_key(master: [u8; 32]) -> Self {
        Self {
            master,
            tokens: Mutex::new(HashMap::new()),
            values: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh random master key (pseudonyms differ between runs).
    pub fn random() -> Self {
        let mut master = [0u8; 32];
        rand::rng().fill_bytes(&mut master);
        Self::from_master_key(master)
    }

    /// The original value of a token id, if this vault issued it for `tenant`.
    pub fn detokenize(&self, tenant: &TenantId, token: &str) -> Option<String> {
        let values = self.values.lock().ok()?;
        values.get(&(tenant.clone(), token.to_string())).cloned()
    }
}

impl TenantSecrets for InMemorySecrets {
    fn pseudonym_key(&self, tenant: &TenantId) -> zeroize::Zeroizing<[u8; 32]> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.master) else {
            // HMAC accepts keys of any length; this branch cannot be taken.
            return zeroize::Zeroizing::new([0u8; 32]);
        };
        mac.update(PSEUDONYM_KEY_LABEL);
        mac.update(tenant.as_str().as_bytes());
        zeroize::Zeroizing::new(mac.finalize().into_bytes().into())
    }

    fn tokenize(&self, tenant: &TenantId, kind: Kind, value: &str) -> Result<String, VaultError> {
        let unavailable = |reason: &str| VaultError::Unavailable {
            tenant: tenant.to_string(),
            reason: reason.to_string(),
        };
        let mut tokens = self
            .tokens
            .lock()
            .map_err(|_| unavailable("lock poisoned"))?;
        let key = (tenant.clone(), kind, value.to_string());
        if let Some(t) = tokens.get(&key) {
            return Ok(t.clone());
        }
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let id = hex::encode(id);
        tokens.insert(key, id.clone());
        self.values
            .lock()
            .map_err(|_| unavailable("lock poisoned"))?
            .insert((tenant.clone(), id.clone()), value.to_string());
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_tenant_and_stable() {
        let s = InMemorySecrets::from_master_key([7; 32]);
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        assert_eq!(s.pseudonym_key(&a), s.pseudonym_key(&a));
        assert_ne!(s.pseudonym_key(&a), s.pseudonym_key(&b));
        let t = s.tokenize(&a, Kind::Email, "x@y.z").unwrap();
        assert_eq!(s.tokenize(&a, Kind::Email, "x@y.z").unwrap(), t);
        assert_eq!(s.detokenize(&a, &t).as_deref(), Some("x@y.z"));
        assert_eq!(s.detokenize(&b, &t), None);
    }
}
