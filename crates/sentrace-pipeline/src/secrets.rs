//! Per-tenant secrets for the minimize stage, backed by the store's key ring and token vault:
//! pseudonym keys derived from the tenant's keys, so pseudonyms join across traces within a
//! tenant and never across tenants; reversible tokens whose values the vault keeps encrypted.

use std::sync::Arc;

use sentrace_core::TenantId;
use sentrace_redact::{Kind, TenantSecrets, VaultError};
use sentrace_store::{KeyRing, Vault};

/// Tenant secrets from the key ring and the vault.
pub struct KeyRingSecrets {
    keys: Arc<KeyRing>,
    vault: Arc<Vault>,
}

impl KeyRingSecrets {
    /// Secrets over `keys`, tokens kept in `vault`.
    pub fn new(keys: Arc<KeyRing>, vault: Arc<Vault>) -> Self {
        Self { keys, vault }
    }
}

impl TenantSecrets for KeyRingSecrets {
    fn pseudonym_key(&self, tenant: &TenantId) -> zeroize::Zeroizing<[u8; 32]> {
        match self.keys.pseudonym_key(tenant) {
            Ok(k) => zeroize::Zeroizing::new(*k.expose()),
            Err(e) => {
                // Fail closed: a random key still hides the value; pseudonyms just stop
                // joining until the key ring works again.
                tracing::error!(tenant = %tenant, error = %e, "pseudonym key unavailable; using a one-off key");
                let mut k = zeroize::Zeroizing::new([0u8; 32]);
                rand_fill(&mut k[..]);
                k
            }
        }
    }

    fn tokenize(&self, tenant: &TenantId, kind: Kind, value: &str) -> Result<String, VaultError> {
        // On failure the minimizer masks the value instead (fail closed).
        self.vault
            .tokenize(tenant, &kind.to_string(), value)
            .map_err(|e| VaultError::Unavailable {
                tenant: tenant.to_string(),
                reason: e.to_string(),
            })
    }
}

fn rand_fill(buf: &mut [u8]) {
    use aws_lc_rs::rand::SecureRandom;
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(buf);
}
