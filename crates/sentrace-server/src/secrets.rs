//! Per-tenant secrets for the minimize stage, backed by the store's key ring: pseudonym
//! keys derived from the tenant's keys, so pseudonyms join across traces within a tenant and
//! never across tenants.

use std::sync::Arc;

use sentrace_core::TenantId;
use sentrace_redact::{Kind, TenantSecrets, VaultError};
use sentrace_store::KeyRing;

/// Tenant secrets from the key ring.
pub struct KeyRingSecrets {
    keys: Arc<KeyRing>,
}

impl KeyRingSecrets {
    /// Secrets over `keys`.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        Self { keys }
    }
}

impl TenantSecrets for KeyRingSecrets {
    fn pseudonym_key(&self, tenant: &TenantId) -> [u8; 32] {
        match self.keys.pseudonym_key(tenant) {
            Ok(k) => k,
            Err(e) => {
                // Fail closed: a random key still hides the value; pseudonyms just stop
                // joining until the key ring works again.
                tracing::error!(tenant = %tenant, error = %e, "pseudonym key unavailable; using a one-off key");
                let mut k = [0u8; 32];
                rand_fill(&mut k);
                k
            }
        }
    }

    fn tokenize(&self, tenant: &TenantId, _kind: Kind, _value: &str) -> Result<String, VaultError> {
        // No token vault is configured on this server yet: the minimizer masks instead.
        Err(VaultError::Unavailable {
            tenant: tenant.to_string(),
            reason: "no token vault is configured; the value was masked".into(),
        })
    }
}

fn rand_fill(buf: &mut [u8]) {
    use aws_lc_rs::rand::SecureRandom;
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(buf);
}
