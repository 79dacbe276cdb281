//! The per-tenant sensitive-value key: a key of its own, apart from the data keys, for the
//! values that minimization classified (pii, secret, financial).
//!
//! ```text
//! KEK ──wrap "sentrace sensitive key v1" ‖ tenant ‖ n──► sensitive/<n> in keys/<tenant>.json
//!   sensitive/<n> ──AES-256-GCM, AAD = value context──► value envelope (an OTLP bytes value)
//! ```
//!
//! Key `sensitive/<n>` is made together with data key `n` (so `keys rotate` rotates both,
//! `tenant erase` destroys both, `keys rewrap` re-wraps both). Unlike the data keys, a
//! tenant's sensitive-value keys are **not** unwrapped when its key file is loaded: only
//! when a value under one is written ([`KeyRing::sensitive_key_for_write`]) or read for a
//! principal allowed to see its class ([`KeyRing::open_sensitive`]). The ring counts those
//! unwraps ([`KeyRing::sensitive_key_stats`], exported in `/metrics`).
//!
//! # Envelope (version 1)
//!
//! ```text
//! envelope = magic "\0STS" (4) ‖ version 0x01 (1) ‖ key id n (u32 BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)
//! plaintext = the protobuf encoding of the original `AnyValue` (so its type survives)
//! AAD = field("sentrace sensitive value v1") ‖ field(tenant) ‖ n (u32 BE)
//!       ‖ field(trace id) ‖ field(span id) ‖ field(place)
//! ```
//!
//! `field` is a u16 big-endian length prefix ([`put_field`]); `place` is the entry's place
//! in `sentrace.minimized` form (`span:enduser.id`, `event[0]:k`, `resource:k`); trace and
//! span ids are empty for resource and scope places, which many spans share. AES-256-GCM
//! per NIST SP 800-38D with 96-bit random nonces (§8.2.2).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sentrace_core::TenantId;

use super::kek::KeyLabel;
use super::ring::{DekId, KeyRing, TenantKeys, poisoned};
use crate::StoreError;
use crate::crypto::{AeadKey, KEY_LEN, SEAL_OVERHEAD, Secret32, put_field};

/// The first bytes of every sensitive-value envelope.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"\0STS";
/// The envelope version this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// Header bytes before the sealed part: magic, version, key id.
const HEADER_LEN: usize = ENVELOPE_MAGIC.len() + 1 + 4;

/// The id a sensitive-value key has in KEK requests, key files and errors: `sensitive/<n>`.
pub fn sensitive_key_id(id: DekId) -> String {
    format!("sensitive/{id}")
}

/// AAD of the wrapped key: purpose ‖ tenant ‖ id.
pub(crate) fn sensitive_aad(tenant: &TenantId, id: DekId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    put_field(&mut aad, b"sentrace sensitive key v1");
    put_field(&mut aad, tenant.as_str().as_bytes());
    aad.extend_from_slice(&id.to_be_bytes());
    aad
}

/// Where a sensitive value sits; bound into its envelope's AAD, so an envelope moved to
/// another span, attribute or tenant fails authentication.
#[derive(Clone, Copy, Debug)]
pub struct ValueContext<'a> {
    /// The span's trace id (empty for resource and scope places).
    pub trace_id: &'a [u8],
    /// The span's id (empty for resource and scope places).
    pub span_id: &'a [u8],
    /// The place in `sentrace.minimized` form, e.g. `span:enduser.id`.
    pub place: &'a str,
}

/// Whether `bytes` is a sensitive-value envelope (by its header; not authenticated).
pub fn is_envelope(bytes: &[u8]) -> bool {
    envelope_key_id(bytes).is_some()
}

/// The key id an envelope names, if `bytes` has the envelope header and room for a tag.
pub fn envelope_key_id(bytes: &[u8]) -> Option<DekId> {
    if bytes.len() < HEADER_LEN + SEAL_OVERHEAD
        || bytes[..4] != ENVELOPE_MAGIC
        || bytes[4] != ENVELOPE_VERSION
    {
        return None;
    }
    let id: [u8; 4] = bytes[5..HEADER_LEN].try_into().ok()?;
    Some(u32::from_be_bytes(id))
}

/// One unwrapped sensitive-value key of one tenant.
pub struct SensitiveKey {
    /// Its id (`sensitive/<id>`, paired with data key `id`).
    pub id: DekId,
    tenant: TenantId,
    key: AeadKey,
}

impl std::fmt::Debug for SensitiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensitiveKey")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl SensitiveKey {
    fn new(tenant: &TenantId, id: DekId, secret: &Secret32) -> Result<Self, StoreError> {
        Ok(Self {
            id,
            tenant: tenant.clone(),
            key: AeadKey::new(secret)?,
        })
    }

    fn aad(&self, ctx: &ValueContext<'_>) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + ctx.place.len() + self.tenant.as_str().len());
        put_field(&mut aad, b"sentrace sensitive value v1");
        put_field(&mut aad, self.tenant.as_str().as_bytes());
        aad.extend_from_slice(&self.id.to_be_bytes());
        put_field(&mut aad, ctx.trace_id);
        put_field(&mut aad, ctx.span_id);
        put_field(&mut aad, ctx.place.as_bytes());
        aad
    }

    /// Seals `plaintext` (an encoded `AnyValue`) into an envelope bound to `ctx`.
    pub fn seal(&self, ctx: &ValueContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(HEADER_LEN + SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&ENVELOPE_MAGIC);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.id.to_be_bytes());
        self.key.seal_append(&self.aad(ctx), plaintext, &mut out)?;
        Ok(out)
    }

    /// Opens an envelope sealed for `ctx` under this key. A tampered, moved or truncated
    /// envelope is a [`StoreError::Crypto`] naming the tenant, the key id and the place.
    pub fn open(&self, ctx: &ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, StoreError> {
        let context = || {
            format!(
                "sensitive value at {} of tenant {} under key {}: tampered, moved or wrong key",
                ctx.place,
                self.tenant,
                sensitive_key_id(self.id)
            )
        };
        if envelope_key_id(envelope) != Some(self.id) {
            return Err(StoreError::crypto(context()));
        }
        // The context string is built only on failure (this runs once per value read).
        self.key
            .open(&self.aad(ctx), &envelope[HEADER_LEN..], "sensitive value")
            .map_err(|_| StoreError::crypto(context()))
    }
}

/// Use counters of the sensitive-value keys (node-wide, for `/metrics` and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensitiveKeyStats {
    /// Sensitive-value keys unwrapped through the master key since the process started.
    pub unwraps: u64,
    /// Sensitive values decrypted for readers since the process started.
    pub values_opened: u64,
}

/// Unwrapped sensitive-value keys and their counters.
#[derive(Default)]
pub(super) struct SensitiveCache {
    keys: RwLock<HashMap<TenantId, HashMap<DekId, Arc<SensitiveKey>>>>,
    unwraps: AtomicU64,
    opened: AtomicU64,
}

impl SensitiveCache {
    fn get(&self, tenant: &TenantId, id: DekId) -> Result<Option<Arc<SensitiveKey>>, StoreError> {
        Ok(self
            .keys
            .read()
            .map_err(|_| poisoned())?
            .get(tenant)
            .and_then(|k| k.get(&id))
            .cloned())
    }

    pub(super) fn insert(
        &self,
        tenant: &TenantId,
        key: Arc<SensitiveKey>,
    ) -> Result<(), StoreError> {
        self.keys
            .write()
            .map_err(|_| poisoned())?
            .entry(tenant.clone())
            .or_default()
            .insert(key.id, key);
        Ok(())
    }

    /// Drops every unwrapped key of `tenant` (shredding, erasure).
    pub(super) fn forget(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.keys.write().map_err(|_| poisoned())?.remove(tenant);
        Ok(())
    }
}

impl KeyRing {
    /// Makes sensitive-value key `id` (a fresh random key), records its wrapped form in
    /// `wrapped`, and returns it unwrapped (the caller caches it once the file is written).
    pub(super) fn new_sensitive_key(
        &self,
        tenant: &TenantId,
        id: DekId,
        created_unix_secs: u64,
        wrapped: &mut std::collections::BTreeMap<DekId, (u64, String)>,
    ) -> Result<Arc<SensitiveKey>, StoreError> {
        let secret = Secret32::random()?;
        let w = self.wrap_hex(
            tenant,
            &sensitive_key_id(id),
            &sensitive_aad(tenant, id),
            &secret,
        )?;
        wrapped.insert(id, (created_unix_secs, w));
        Ok(Arc::new(SensitiveKey::new(tenant, id, &secret)?))
    }

    /// The sensitive-value key to seal new values with: the one paired with the tenant's
    /// current data key (made now for key files written before sensitive-value keys
    /// existed). Unwraps it once per process.
    pub fn sensitive_key_for_write(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<SensitiveKey>, StoreError> {
        let dek = self.current_dek(tenant)?;
        if let Some(k) = self.sensitive.get(tenant, dek.id)? {
            return Ok(k);
        }
        match self.unwrap_sensitive(tenant, dek.id) {
            Err(StoreError::SensitiveKeyUnavailable { .. }) => self.add_sensitive(tenant, dek.id),
            other => other,
        }
    }

    /// The sensitive-value key `id` of `tenant`, for reading values under it: unwrapped
    /// (once per process, counted) only when this is called.
    pub fn sensitive_key(
        &self,
        tenant: &TenantId,
        id: DekId,
    ) -> Result<Arc<SensitiveKey>, StoreError> {
        if let Some(k) = self.sensitive.get(tenant, id)? {
            return Ok(k);
        }
        self.unwrap_sensitive(tenant, id)
    }

    /// Opens one envelope of `tenant` for a reader (who must be allowed to see the value's
    /// class: the caller decides that before calling). Counted in
    /// [`SensitiveKeyStats::values_opened`].
    pub fn open_sensitive(
        &self,
        tenant: &TenantId,
        ctx: &ValueContext<'_>,
        envelope: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let id = envelope_key_id(envelope).ok_or_else(|| {
            StoreError::crypto(format!(
                "sensitive value at {} of tenant {tenant}: not an envelope",
                ctx.place
            ))
        })?;
        let key = self.sensitive_key(tenant, id)?;
        self.sensitive.opened.fetch_add(1, Ordering::Relaxed);
        key.open(ctx, envelope)
    }

    /// How often sensitive-value keys were unwrapped and values opened in this process.
    pub fn sensitive_key_stats(&self) -> SensitiveKeyStats {
        SensitiveKeyStats {
            unwraps: self.sensitive.unwraps.load(Ordering::Relaxed),
            values_opened: self.sensitive.opened.load(Ordering::Relaxed),
        }
    }

    fn unwrap_sensitive(
        &self,
        tenant: &TenantId,
        id: DekId,
    ) -> Result<Arc<SensitiveKey>, StoreError> {
        let unavailable = || StoreError::SensitiveKeyUnavailable {
            tenant: tenant.clone(),
            key_id: id,
        };
        let keys = self.load(tenant)?.ok_or_else(unavailable)?;
        let (_, hex_text) = keys.wrapped_sensitive.get(&id).ok_or_else(unavailable)?;
        let key_id = sensitive_key_id(id);
        let label = KeyLabel {
            tenant: tenant.as_str(),
            key_id: &key_id,
        };
        let sealed = hex::decode(hex_text).map_err(|_| StoreError::Kek {
            kek: self.kek.id().to_string(),
            op: "unwrap",
            key: label.to_string(),
            reason: "the key file's wrapped key is not hex".into(),
        })?;
        self.sensitive.unwraps.fetch_add(1, Ordering::Relaxed);
        let plain = self
            .kek
            .unwrap(&label, &sensitive_aad(tenant, id), &sealed)?;
        if plain.len() != KEY_LEN {
            return Err(StoreError::Kek {
                kek: self.kek.id().to_string(),
                op: "unwrap",
                key: label.to_string(),
                reason: format!("unwrapped {} bytes, expected {KEY_LEN}", plain.len()),
            });
        }
        let mut secret = Secret32([0u8; KEY_LEN]);
        secret.0.copy_from_slice(&plain);
        let key = Arc::new(SensitiveKey::new(tenant, id, &secret)?);
        self.sensitive.insert(tenant, key.clone())?;
        Ok(key)
    }

    /// Adds sensitive-value key `id` to a key file that predates them.
    fn add_sensitive(&self, tenant: &TenantId, id: DekId) -> Result<Arc<SensitiveKey>, StoreError> {
        let _guard = self.write.lock().map_err(|_| poisoned())?;
        let keys = self
            .load(tenant)?
            .ok_or_else(|| StoreError::SensitiveKeyUnavailable {
                tenant: tenant.clone(),
                key_id: id,
            })?;
        if keys.wrapped_sensitive.contains_key(&id) {
            drop(_guard);
            return self.sensitive_key(tenant, id);
        }
        let mut wrapped_sensitive = keys.wrapped_sensitive.clone();
        let created = keys.deks.get(&id).map_or(0, |d| d.created_unix_secs);
        let fresh = self.new_sensitive_key(tenant, id, created, &mut wrapped_sensitive)?;
        let next = TenantKeys {
            deks: keys.deks.clone(),
            pseudonym: keys.pseudonym.clone(),
            wrapped_deks: keys.wrapped_deks.clone(),
            wrapped_pseudonym: keys.wrapped_pseudonym.clone(),
            wrapped_sensitive,
        };
        self.persist(tenant, &next)?;
        self.tenants
            .write()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), Arc::new(next));
        self.sensitive.insert(tenant, fresh.clone())?;
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests;
