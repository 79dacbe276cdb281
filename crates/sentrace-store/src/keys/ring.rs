//! Per-tenant data keys, wrapped by the master key and stored under `keys/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use super::MasterKey;
use crate::StoreError;
use crate::crypto::{AeadKey, KEY_LEN, Secret32, hkdf32, put_field};
use crate::fsutil::{create_private_dir, sync_dir, write_atomic_private};

/// Identifier of a tenant's data key (1, 2, ... in creation order).
pub type DekId = u32;

/// Longest tenant key file accepted.
const MAX_KEY_FILE: u64 = 4 << 20;
/// Most data keys a tenant may hold.
const MAX_DEKS: usize = 100_000;

/// One unwrapped data key and the subkeys derived from it.
pub struct Dek {
    /// The key id (named in every WAL record header and block key metadata).
    pub id: DekId,
    /// Creation time, Unix seconds.
    pub created_unix_secs: u64,
    secret: Secret32,
    wal: AeadKey,
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dek")
            .field("id", &self.id)
            .field("created_unix_secs", &self.created_unix_secs)
            .finish_non_exhaustive()
    }
}

impl Dek {
    fn new(id: DekId, created_unix_secs: u64, secret: Secret32) -> Result<Self, StoreError> {
        // RFC 5869 HKDF-SHA-256: WAL key = HKDF(DEK, "sentrace wal v1").
        let wal = AeadKey::new(&hkdf32(secret.expose(), &[b"sentrace wal v1"])?)?;
        Ok(Self {
            id,
            created_unix_secs,
            secret,
            wal,
        })
    }

    /// The AES-256-GCM key for WAL records.
    pub fn wal_key(&self) -> &AeadKey {
        &self.wal
    }

    /// Derives a 32-byte subkey bound to `info` parts (HKDF-SHA-256, RFC 5869).
    pub(crate) fn derive(&self, info: &[&[u8]]) -> Result<Secret32, StoreError> {
        hkdf32(self.secret.expose(), info)
    }
}

struct TenantKeys {
    deks: BTreeMap<DekId, Arc<Dek>>,
    pseudonym: Secret32,
}

impl TenantKeys {
    fn current(&self) -> Option<&Arc<Dek>> {
        self.deks.values().next_back()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    tenant: TenantId,
    /// `nonce ‖ ciphertext ‖ tag` of the pseudonym secret, hex.
    pseudonym: String,
    deks: Vec<WrappedDek>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrappedDek {
    id: DekId,
    created_unix_secs: u64,
    /// `nonce ‖ ciphertext ‖ tag` of the DEK, hex.
    wrapped: String,
}

/// The tenants' data keys. Holds unwrapped keys in memory only; on disk each tenant has
/// `keys/<tenant>.json` with AES-256-GCM-wrapped keys (AAD = purpose ‖ tenant ‖ key id).
pub struct KeyRing {
    dir: PathBuf,
    kek: AeadKey,
    rotation: Option<Duration>,
    tenants: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
    /// Serializes key-file writers (creation, rotation, shredding).
    write: Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn dek_aad(tenant: &TenantId, id: DekId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    put_field(&mut aad, b"sentrace dek v1");
    put_field(&mut aad, tenant.as_str().as_bytes());
    aad.extend_from_slice(&id.to_be_bytes());
    aad
}

fn pseudonym_aad(tenant: &TenantId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    put_field(&mut aad, b"sentrace pseudonym v1");
    put_field(&mut aad, tenant.as_str().as_bytes());
    aad
}

impl KeyRing {
    /// Opens (creating if needed, mode 0700) the key directory `dir`, usually
    /// `<data_dir>/keys`. Data keys are created on first use per tenant.
    pub fn open(dir: &Path, master: &MasterKey) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            kek: master.aead()?,
            rotation: None,
            tenants: RwLock::new(HashMap::new()),
            write: Mutex::new(()),
        })
    }

    /// Rotates a tenant's data key automatically once the current one is older than
    /// `period` (checked when a key is requested for writing).
    pub fn with_rotation_period(mut self, period: Duration) -> Self {
        self.rotation = Some(period);
        self
    }

    fn path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}.json", tenant.as_str()))
    }

    fn tomb_path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}.shredded", tenant.as_str()))
    }

    /// The highest data key id a shredded tenant ever had (0 if never shredded), so that
    /// ids are never reused and data under a destroyed key stays "unavailable", not
    /// "corrupt".
    fn shredded_max_id(&self, tenant: &TenantId) -> Result<DekId, StoreError> {
        let p = self.tomb_path(tenant);
        match std::fs::read_to_string(&p) {
            Ok(text) => text.trim().parse().map_err(|_| StoreError::KeyFile {
                path: p.clone(),
                reason: "tombstone does not hold a key id".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError::io(&p, e)),
        }
    }

    /// The tenant's keys from cache or disk; `None` if the tenant has no key file.
    fn load(&self, tenant: &TenantId) -> Result<Option<Arc<TenantKeys>>, StoreError> {
        if let Some(t) = self.tenants.read().map_err(|_| poisoned())?.get(tenant) {
            return Ok(Some(t.clone()));
        }
        let path = self.path(tenant);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let bad = |reason: String| StoreError::KeyFile {
            path: path.clone(),
            reason,
        };
        if meta.len() > MAX_KEY_FILE {
            return Err(bad(format!(
                "{} bytes exceeds the limit of {MAX_KEY_FILE}",
                meta.len()
            )));
        }
        let text = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        let file: KeyFile =
            serde_json::from_slice(&text).map_err(|e| bad(format!("not a key file: {e}")))?;
        if file.version != 1 || &file.tenant != tenant {
            return Err(bad(format!(
                "version {} for tenant {} (expected version 1 for {tenant})",
                file.version, file.tenant
            )));
        }
        if file.deks.len() > MAX_DEKS {
            return Err(bad(format!(
                "{} data keys exceeds the limit {MAX_DEKS}",
                file.deks.len()
            )));
        }
        let unwrap = |hex_text: &str, aad: &[u8], what: String| -> Result<Secret32, StoreError> {
            let sealed = hex::decode(hex_text).map_err(|_| bad(format!("{what}: not hex")))?;
            let plain = self.kek.open(
                aad,
                &sealed,
                &format!("unwrapping {what}: wrong master key or tampered key file"),
            )?;
            let arr: [u8; KEY_LEN] = plain
                .try_into()
                .map_err(|_| bad(format!("{what}: wrong key length")))?;
            Ok(Secret32(arr))
        };
        let pseudonym = unwrap(
            &file.pseudonym,
            &pseudonym_aad(tenant),
            format!("pseudonym key of tenant {tenant}"),
        )?;
        let mut deks = BTreeMap::new();
        for w in &file.deks {
            let secret = unwrap(
                &w.wrapped,
                &dek_aad(tenant, w.id),
                format!("data key {} of tenant {tenant}", w.id),
            )?;
            deks.insert(w.id, Arc::new(Dek::new(w.id, w.created_unix_secs, secret)?));
        }
        let keys = Arc::new(TenantKeys { deks, pseudonym });
        self.tenants
            .write()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), keys.clone());
        Ok(Some(keys))
    }

    fn persist(&self, tenant: &TenantId, keys: &TenantKeys) -> Result<(), StoreError> {
        let mut pseudonym = Vec::new();
        self.kek.seal_append(
            &pseudonym_aad(tenant),
            keys.pseudonym.expose(),
            &mut pseudonym,
        )?;
        let mut deks = Vec::with_capacity(keys.deks.len());
        for d in keys.deks.values() {
            let mut wrapped = Vec::new();
            self.kek
                .seal_append(&dek_aad(tenant, d.id), d.secret.expose(), &mut wrapped)?;
            deks.push(WrappedDek {
                id: d.id,
                created_unix_secs: d.created_unix_secs,
                wrapped: hex::encode(wrapped),
            });
        }
        let file = KeyFile {
            version: 1,
            tenant: tenant.clone(),
            pseudonym: hex::encode(pseudonym),
            deks,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::KeyFile {
            path: self.path(tenant),
            reason: format!("cannot serialize: {e}"),
        })?;
        write_atomic_private(&self.path(tenant), &bytes)
    }

    /// Adds a new data key (or creates the tenant's key file) and makes it current.
    fn add_dek(&self, tenant: &TenantId) -> Result<Arc<Dek>, StoreError> {
        let _guard = self.write.lock().map_err(|_| poisoned())?;
        let existing = self.load(tenant)?;
        let (mut deks, pseudonym) = match &existing {
            Some(t) => (t.deks.clone(), t.pseudonym.clone()),
            None => (BTreeMap::new(), Secret32::random()?),
        };
        let id = match deks.keys().next_back() {
            Some(last) => last.checked_add(1).ok_or_else(|| StoreError::KeyFile {
                path: self.path(tenant),
                reason: "data key ids exhausted".into(),
            })?,
            None => self
                .shredded_max_id(tenant)?
                .checked_add(1)
                .ok_or_else(|| StoreError::KeyFile {
                    path: self.tomb_path(tenant),
                    reason: "data key ids exhausted".into(),
                })?,
        };
        let dek = Arc::new(Dek::new(id, now_secs(), Secret32::random()?)?);
        deks.insert(id, dek.clone());
        let keys = TenantKeys { deks, pseudonym };
        self.persist(tenant, &keys)?;
        self.tenants
            .write()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), Arc::new(keys));
        Ok(dek)
    }

    /// The data key to encrypt new data with: creates the tenant's first key, or a new one
    /// when the rotation period has passed.
    pub fn current_dek(&self, tenant: &TenantId) -> Result<Arc<Dek>, StoreError> {
        if let Some(keys) = self.load(tenant)?
            && let Some(cur) = keys.current()
        {
            let expired = self.rotation.is_some_and(|p| {
                now_secs().saturating_sub(cur.created_unix_secs) >= p.as_secs().max(1)
            });
            if !expired {
                return Ok(cur.clone());
            }
        }
        self.add_dek(tenant)
    }

    /// A specific data key, for reading data that names it.
    pub fn dek(&self, tenant: &TenantId, id: DekId) -> Result<Arc<Dek>, StoreError> {
        self.load(tenant)?
            .and_then(|k| k.deks.get(&id).cloned())
            .ok_or_else(|| StoreError::KeyUnavailable {
                tenant: tenant.clone(),
                key_id: id,
            })
    }

    /// Makes a new data key current for the tenant; older keys stay readable.
    pub fn rotate(&self, tenant: &TenantId) -> Result<DekId, StoreError> {
        self.add_dek(tenant).map(|d| d.id)
    }

    /// The tenant's pseudonymization key (an HMAC-SHA-256 key for the redact crate). Stable
    /// across DEK rotation; unlinkable across tenants; destroyed by [`KeyRing::shred`].
    pub fn pseudonym_key(&self, tenant: &TenantId) -> Result<[u8; 32], StoreError> {
        let keys = match self.load(tenant)? {
            Some(k) => k,
            None => {
                self.add_dek(tenant)?;
                self.load(tenant)?
                    .ok_or_else(|| StoreError::KeyUnavailable {
                        tenant: tenant.clone(),
                        key_id: 0,
                    })?
            }
        };
        Ok(*hkdf32(keys.pseudonym.expose(), &[b"sentrace pseudonym hmac v1"])?.expose())
    }

    /// Crypto-shredding: destroys every wrapped key of the tenant (file removed, directory
    /// fsynced, memory cache dropped). All of the tenant's WAL records and blocks become
    /// unreadable. Note: on copy-on-write or wear-levelled media the old file blocks may
    /// persist physically until overwritten; the master key still protects them, so rotate
    /// the master key as well if that matters.
    pub fn shred(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let _guard = self.write.lock().map_err(|_| poisoned())?;
        // Remember the highest key id (not secret) so new keys never reuse an id.
        let max_id = match self.load(tenant)? {
            Some(k) => k.deks.keys().next_back().copied().unwrap_or(0),
            None => 0,
        }
        .max(self.shredded_max_id(tenant)?);
        write_atomic_private(&self.tomb_path(tenant), format!("{max_id}\n").as_bytes())?;
        self.tenants.write().map_err(|_| poisoned())?.remove(tenant);
        let path = self.path(tenant);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Whether the tenant currently has keys (false after shredding).
    pub fn has_tenant(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        Ok(self.load(tenant)?.is_some())
    }
}

fn poisoned() -> StoreError {
    StoreError::Task("key ring lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn create_rotate_reload_and_shred() {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::generate().unwrap();
        let ring = KeyRing::open(dir.path(), &mk).unwrap();
        let a = t("acme");
        let d1 = ring.current_dek(&a).unwrap();
        assert_eq!(d1.id, 1);
        assert_eq!(ring.current_dek(&a).unwrap().id, 1);
        assert_eq!(ring.rotate(&a).unwrap(), 2);
        let p1 = ring.pseudonym_key(&a).unwrap();
        assert_ne!(p1, ring.pseudonym_key(&t("other")).unwrap());

        // The file holds no raw key bytes.
        let file = std::fs::read(dir.path().join("acme.json")).unwrap();
        let raw = hex::encode(d1.secret.expose());
        assert!(!String::from_utf8_lossy(&file).contains(&raw));

        // A fresh ring (restart) reads the same keys back.
        let ring2 = KeyRing::open(dir.path(), &mk).unwrap();
        assert_eq!(
            ring2.dek(&a, 1).unwrap().secret.expose(),
            d1.secret.expose()
        );
        assert_eq!(ring2.current_dek(&a).unwrap().id, 2);
        assert_eq!(ring2.pseudonym_key(&a).unwrap(), p1);

        // The wrong master key cannot unwrap.
        let ring3 = KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap();
        assert!(matches!(ring3.dek(&a, 1), Err(StoreError::Crypto { .. })));

        // A key file copied to another tenant's name fails (tenant is bound in AAD / file).
        std::fs::copy(dir.path().join("acme.json"), dir.path().join("evil.json")).unwrap();
        assert!(ring2.dek(&t("evil"), 1).is_err());

        ring2.shred(&a).unwrap();
        assert!(matches!(
            ring2.dek(&a, 1),
            Err(StoreError::KeyUnavailable { key_id: 1, .. })
        ));
        assert!(!dir.path().join("acme.json").exists());

        // Keys created after shredding never reuse an id: old data stays "unavailable".
        assert_eq!(ring2.current_dek(&a).unwrap().id, 3);
        assert!(matches!(
            ring2.dek(&a, 2),
            Err(StoreError::KeyUnavailable { .. })
        ));
        assert_ne!(
            ring2.pseudonym_key(&a).unwrap(),
            p1,
            "new pseudonyms are unlinkable"
        );
    }
}
