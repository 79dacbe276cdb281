//! Per-tenant data keys, wrapped by the master key and stored under `keys/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use super::MasterKey;
use super::kek::{Kek, KeyLabel};
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

pub(super) struct TenantKeys {
    pub(super) deks: BTreeMap<DekId, Arc<Dek>>,
    pub(super) pseudonym: Secret32,
    /// The wrapped forms as on disk (hex), so adding a key wraps only the new one.
    pub(super) wrapped_deks: BTreeMap<DekId, String>,
    pub(super) wrapped_pseudonym: String,
    /// The sensitive-value keys, wrapped (creation time, hex): never unwrapped on load,
    /// only when a value under one is read or written (see [`super::sensitive`]).
    pub(super) wrapped_sensitive: BTreeMap<DekId, (u64, String)>,
}

impl TenantKeys {
    fn current(&self) -> Option<&Arc<Dek>> {
        self.deks.values().next_back()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFile {
    pub(crate) version: u32,
    pub(crate) tenant: TenantId,
    /// The id of the KEK that wrapped every key of this file (absent in version 1 files,
    /// which the local master key wrapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kek: Option<String>,
    /// `nonce ‖ ciphertext ‖ tag` of the pseudonym secret, hex.
    pub(crate) pseudonym: String,
    pub(crate) deks: Vec<WrappedDek>,
    /// The sensitive-value keys (`sensitive/<n>`, paired with data key n), wrapped like
    /// the data keys (absent in files written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) sensitive: Vec<WrappedDek>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrappedDek {
    pub(crate) id: DekId,
    pub(crate) created_unix_secs: u64,
    /// The KEK's output for the DEK (`nonce ‖ ciphertext ‖ tag` for the local KEK), hex.
    pub(crate) wrapped: String,
}

/// The age of a tenant's current data key (for `/metrics` and `sentrace keys list`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyAge {
    /// The tenant.
    pub tenant: TenantId,
    /// Its current (newest) data key.
    pub key_id: DekId,
    /// That key's creation time, Unix seconds.
    pub created_unix_secs: u64,
    /// Seconds since then.
    pub age_secs: u64,
    /// How many data keys the tenant holds.
    pub keys: usize,
    /// The KEK that wraps them.
    pub kek: String,
    /// How many sensitive-value keys the tenant holds (read from the file, none unwrapped).
    pub sensitive_keys: usize,
}

/// A tenant erasure's tombstone, `keys/<tenant>.erased` (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// When, Unix seconds.
    pub erased_unix_secs: u64,
    /// When, RFC 3339.
    pub erased_at: String,
    /// The data key ids destroyed.
    pub key_ids: Vec<DekId>,
}

/// The tenants' data keys. Holds unwrapped keys in memory only; on disk each tenant has
/// `keys/<tenant>.json` with AES-256-GCM-wrapped keys (AAD = purpose ‖ tenant ‖ key id).
pub struct KeyRing {
    dir: PathBuf,
    pub(super) kek: Arc<dyn Kek>,
    rotation: Option<Duration>,
    pub(super) tenants: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
    /// Serializes key-file writers (creation, rotation, shredding).
    pub(super) write: Mutex<()>,
    /// Unwrapped sensitive-value keys and their use counters (see [`super::sensitive`]).
    pub(super) sensitive: super::sensitive::SensitiveCache,
    /// Erasure tombstones read so far (erasure runs with the server stopped, so a running
    /// process never sees one appear; [`KeyRing::erase`] updates it).
    erased: RwLock<HashMap<TenantId, Option<ErasedTenant>>>,
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

/// The id a data key has in KEK requests and errors: `dek/<n>`.
pub fn dek_key_id(id: DekId) -> String {
    format!("dek/{id}")
}

/// RFC 3339 (UTC, seconds) of Unix seconds.
pub fn rfc3339(secs: u64) -> String {
    sentrace_core::time::rfc3339_secs(secs)
}

pub(crate) fn dek_aad(tenant: &TenantId, id: DekId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    put_field(&mut aad, b"sentrace dek v1");
    put_field(&mut aad, tenant.as_str().as_bytes());
    aad.extend_from_slice(&id.to_be_bytes());
    aad
}

pub(crate) fn pseudonym_aad(tenant: &TenantId) -> Vec<u8> {
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
        if let Some(m) = super::rewrap::pending(dir)? {
            return Err(StoreError::KeyFile {
                path: dir.join(super::rewrap::MARKER),
                reason: format!(
                    "a rewrap from master key {} to {} was interrupted; finish it with `sentrace keys rewrap --to <the new key>` (the configured master key is {})",
                    m.from,
                    m.to,
                    master.id()
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            kek: master.kek().clone(),
            rotation: None,
            tenants: RwLock::new(HashMap::new()),
            write: Mutex::new(()),
            sensitive: Default::default(),
            erased: RwLock::new(HashMap::new()),
        })
    }

    /// Opens another key directory (created if needed, mode 0700) with this ring's master
    /// key: another node's wrapped data keys, downloaded from a shared bucket, to decrypt
    /// that node's blocks. Nothing is written there by the ring.
    pub fn open_sibling(&self, dir: &Path) -> Result<KeyRing, StoreError> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            kek: self.kek.clone(),
            rotation: None,
            tenants: RwLock::new(HashMap::new()),
            write: Mutex::new(()),
            erased: RwLock::new(HashMap::new()),
            sensitive: Default::default(),
        })
    }

    /// The directory of the key files (`<tenant>.json`).
    pub fn dir(&self) -> &Path {
        &self.dir
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

    fn erased_path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}.erased", tenant.as_str()))
    }

    /// The KEK this ring wraps with.
    pub fn kek_id(&self) -> &str {
        self.kek.id()
    }

    /// The tenant's erasure tombstone, if `sentrace tenant erase` erased it.
    pub fn erased(&self, tenant: &TenantId) -> Result<Option<ErasedTenant>, StoreError> {
        if let Some(e) = self.erased.read().map_err(|_| poisoned())?.get(tenant) {
            return Ok(e.clone());
        }
        let e = self.read_erased(tenant)?;
        self.erased
            .write()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), e.clone());
        Ok(e)
    }

    fn read_erased(&self, tenant: &TenantId) -> Result<Option<ErasedTenant>, StoreError> {
        let p = self.erased_path(tenant);
        let bytes = crate::fsutil::read_bounded(&p, 1 << 20, "erasure tombstone")?;
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::KeyFile {
                path: p,
                reason: format!("not an erasure tombstone: {e}"),
            })
    }

    fn refuse_erased(&self, tenant: &TenantId) -> Result<(), StoreError> {
        match self.erased(tenant)? {
            Some(e) => Err(StoreError::TenantErased {
                tenant: tenant.clone(),
                erased_at: e.erased_at,
            }),
            None => Ok(()),
        }
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
    pub(super) fn load(&self, tenant: &TenantId) -> Result<Option<Arc<TenantKeys>>, StoreError> {
        if let Some(t) = self.tenants.read().map_err(|_| poisoned())?.get(tenant) {
            return Ok(Some(t.clone()));
        }
        if self.erased(tenant)?.is_some() {
            return Ok(None);
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
        let file = parse_key_file(&text, tenant).map_err(bad)?;
        let file_kek = file
            .kek
            .as_deref()
            .unwrap_or("a local master key (version 1 file)");
        if file.kek.as_deref().is_some_and(|k| k != self.kek.id()) {
            return Err(bad(format!(
                "the keys of tenant {tenant} are wrapped under master key {file_kek}, but the configured master key is {}; configure that one, or finish an interrupted `sentrace keys rewrap`",
                self.kek.id()
            )));
        }
        if file.deks.len() > MAX_DEKS {
            return Err(bad(format!(
                "{} data keys exceeds the limit {MAX_DEKS}",
                file.deks.len()
            )));
        }
        let unwrap = |hex_text: &str, aad: &[u8], key_id: &str| -> Result<Secret32, StoreError> {
            let label = KeyLabel {
                tenant: tenant.as_str(),
                key_id,
            };
            let sealed = hex::decode(hex_text).map_err(|_| bad(format!("{label}: not hex")))?;
            let plain = self.kek.unwrap(&label, aad, &sealed)?;
            let mut out = Secret32([0u8; KEY_LEN]);
            if plain.len() != KEY_LEN {
                return Err(StoreError::Kek {
                    kek: self.kek.id().to_string(),
                    op: "unwrap",
                    key: label.to_string(),
                    reason: format!("unwrapped {} bytes, expected {KEY_LEN}", plain.len()),
                });
            }
            out.0.copy_from_slice(&plain);
            Ok(out)
        };
        let pseudonym = unwrap(&file.pseudonym, &pseudonym_aad(tenant), "pseudonym")?;
        let mut deks = BTreeMap::new();
        let mut wrapped_deks = BTreeMap::new();
        for w in &file.deks {
            let secret = unwrap(&w.wrapped, &dek_aad(tenant, w.id), &dek_key_id(w.id))?;
            deks.insert(w.id, Arc::new(Dek::new(w.id, w.created_unix_secs, secret)?));
            wrapped_deks.insert(w.id, w.wrapped.clone());
        }
        let keys = Arc::new(TenantKeys {
            deks,
            pseudonym,
            wrapped_deks,
            wrapped_pseudonym: file.pseudonym.clone(),
            wrapped_sensitive: file
                .sensitive
                .iter()
                .map(|w| (w.id, (w.created_unix_secs, w.wrapped.clone())))
                .collect(),
        });
        self.tenants
            .write()
            .map_err(|_| poisoned())?
            .insert(tenant.clone(), keys.clone());
        Ok(Some(keys))
    }

    pub(super) fn persist(&self, tenant: &TenantId, keys: &TenantKeys) -> Result<(), StoreError> {
        let deks = keys
            .deks
            .values()
            .map(|d| {
                let wrapped = keys.wrapped_deks.get(&d.id).cloned().ok_or_else(|| {
                    StoreError::Task(format!("data key {} of tenant {tenant} not wrapped", d.id))
                })?;
                Ok(WrappedDek {
                    id: d.id,
                    created_unix_secs: d.created_unix_secs,
                    wrapped,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let file = KeyFile {
            version: 2,
            tenant: tenant.clone(),
            kek: Some(self.kek.id().to_string()),
            pseudonym: keys.wrapped_pseudonym.clone(),
            deks,
            sensitive: keys
                .wrapped_sensitive
                .iter()
                .map(|(id, (created, wrapped))| WrappedDek {
                    id: *id,
                    created_unix_secs: *created,
                    wrapped: wrapped.clone(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::KeyFile {
            path: self.path(tenant),
            reason: format!("cannot serialize: {e}"),
        })?;
        write_atomic_private(&self.path(tenant), &bytes)
    }

    pub(super) fn wrap_hex(
        &self,
        tenant: &TenantId,
        key_id: &str,
        aad: &[u8],
        secret: &Secret32,
    ) -> Result<String, StoreError> {
        let label = KeyLabel {
            tenant: tenant.as_str(),
            key_id,
        };
        self.kek.wrap(&label, aad, secret.expose()).map(hex::encode)
    }

    /// Adds a new data key (or creates the tenant's key file) and makes it current.
    fn add_dek(&self, tenant: &TenantId) -> Result<Arc<Dek>, StoreError> {
        let _guard = self.write.lock().map_err(|_| poisoned())?;
        self.refuse_erased(tenant)?;
        let existing = self.load(tenant)?;
        let (mut deks, mut wrapped_deks, pseudonym, wrapped_pseudonym) = match &existing {
            Some(t) => (
                t.deks.clone(),
                t.wrapped_deks.clone(),
                t.pseudonym.clone(),
                t.wrapped_pseudonym.clone(),
            ),
            None => {
                let p = Secret32::random()?;
                let w = self.wrap_hex(tenant, "pseudonym", &pseudonym_aad(tenant), &p)?;
                (BTreeMap::new(), BTreeMap::new(), p, w)
            }
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
        let secret = Secret32::random()?;
        wrapped_deks.insert(
            id,
            self.wrap_hex(tenant, &dek_key_id(id), &dek_aad(tenant, id), &secret)?,
        );
        let created = now_secs();
        let dek = Arc::new(Dek::new(id, created, secret)?);
        deks.insert(id, dek.clone());
        // Its sensitive-value key is made with it (rotated together, destroyed together).
        let mut wrapped_sensitive = existing
            .as_ref()
            .map(|t| t.wrapped_sensitive.clone())
            .unwrap_or_default();
        let fresh = self.new_sensitive_key(tenant, id, created, &mut wrapped_sensitive)?;
        let keys = TenantKeys {
            deks,
            pseudonym,
            wrapped_deks,
            wrapped_pseudonym,
            wrapped_sensitive,
        };
        self.persist(tenant, &keys)?;
        self.sensitive.insert(tenant, fresh)?;
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
    /// The key is wiped from memory when the returned value is dropped.
    pub fn pseudonym_key(&self, tenant: &TenantId) -> Result<Secret32, StoreError> {
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
        hkdf32(keys.pseudonym.expose(), &[b"sentrace pseudonym hmac v1"])
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
        self.sensitive.forget(tenant)?;
        let path = self.path(tenant);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Tenant erasure (`sentrace tenant erase`): writes the tombstone `<tenant>.erased`
    /// first (from then on the tenant takes no new data and its keys are never unwrapped
    /// again, even if the deletion below is interrupted), then destroys every wrapped key
    /// ([`KeyRing::shred`]). Returns the tombstone (the destroyed key ids). Idempotent: a
    /// second call finishes an interrupted one and returns the first tombstone.
    pub fn erase(&self, tenant: &TenantId) -> Result<ErasedTenant, StoreError> {
        let tomb = match self.erased(tenant)? {
            Some(t) => t,
            None => {
                let _guard = self.write.lock().map_err(|_| poisoned())?;
                let key_ids = self.key_ids_on_disk(tenant)?;
                let now = now_secs();
                let t = ErasedTenant {
                    tenant: tenant.clone(),
                    erased_unix_secs: now,
                    erased_at: rfc3339(now),
                    key_ids,
                };
                let bytes = serde_json::to_vec_pretty(&t)
                    .map_err(|e| StoreError::Task(format!("erasure tombstone: {e}")))?;
                write_atomic_private(&self.erased_path(tenant), &bytes)?;
                self.erased
                    .write()
                    .map_err(|_| poisoned())?
                    .insert(tenant.clone(), Some(t.clone()));
                t
            }
        };
        self.shred(tenant)?;
        Ok(tomb)
    }

    /// The data key ids in the tenant's key file, read without unwrapping anything.
    fn key_ids_on_disk(&self, tenant: &TenantId) -> Result<Vec<DekId>, StoreError> {
        let path = self.path(tenant);
        let bytes = crate::fsutil::read_bounded(&path, MAX_KEY_FILE, "key file")?;
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        let file = parse_key_file(&bytes, tenant).map_err(|reason| StoreError::KeyFile {
            path: path.clone(),
            reason,
        })?;
        Ok(file.deks.iter().map(|d| d.id).collect())
    }

    /// Every tenant with a key file, and the age of its current data key, read from the
    /// files' plaintext creation times (no key is unwrapped, no KEK is called). For
    /// `/metrics` (`sentrace_tenant_data_key_age_seconds{tenant}`) and `keys list`.
    pub fn key_ages(&self) -> Result<Vec<KeyAge>, StoreError> {
        let now = now_secs();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(tenant) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| TenantId::new(n).ok())
            else {
                continue;
            };
            if self.erased(&tenant)?.is_some() {
                continue;
            }
            let path = entry.path();
            let bytes = crate::fsutil::read_bounded(&path, MAX_KEY_FILE, "key file")?;
            let file = parse_key_file(&bytes, &tenant).map_err(|reason| StoreError::KeyFile {
                path: path.clone(),
                reason,
            })?;
            if let Some(cur) = file.deks.iter().max_by_key(|d| d.id) {
                out.push(KeyAge {
                    tenant,
                    key_id: cur.id,
                    created_unix_secs: cur.created_unix_secs,
                    age_secs: now.saturating_sub(cur.created_unix_secs),
                    keys: file.deks.len(),
                    kek: file
                        .kek
                        .clone()
                        .unwrap_or_else(|| "local (version 1)".into()),
                    sensitive_keys: file.sensitive.len(),
                });
            }
        }
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(out)
    }

    /// Rotates every tenant whose current key is older than the rotation period (the
    /// scheduled rotation; new keys are otherwise made lazily on the next write). Returns
    /// the tenants rotated and their new key ids.
    pub fn rotate_due(&self) -> Result<Vec<(TenantId, DekId)>, StoreError> {
        let Some(period) = self.rotation else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for age in self.key_ages()? {
            if age.age_secs >= period.as_secs().max(1) {
                out.push((age.tenant.clone(), self.rotate(&age.tenant)?));
            }
        }
        Ok(out)
    }

    /// Whether the tenant currently has keys (false after shredding).
    pub fn has_tenant(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        Ok(self.load(tenant)?.is_some())
    }
}

/// Parses and checks a key file (version 1 or 2, the right tenant, bounded key count).
pub(crate) fn parse_key_file(bytes: &[u8], tenant: &TenantId) -> Result<KeyFile, String> {
    let file: KeyFile =
        serde_json::from_slice(bytes).map_err(|e| format!("not a key file: {e}"))?;
    if !(1..=2).contains(&file.version) || &file.tenant != tenant {
        return Err(format!(
            "version {} for tenant {} (expected version 1 or 2 for {tenant})",
            file.version, file.tenant
        ));
    }
    if file.version == 2 && file.kek.is_none() {
        return Err("version 2 file without the id of its master key (kek)".into());
    }
    if file.deks.len() > MAX_DEKS {
        return Err(format!(
            "{} data keys exceeds the limit {MAX_DEKS}",
            file.deks.len()
        ));
    }
    Ok(file)
}

pub(crate) const MAX_KEY_FILE_BYTES: u64 = MAX_KEY_FILE;

pub(super) fn poisoned() -> StoreError {
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
        let p1 = *ring.pseudonym_key(&a).unwrap().expose();
        assert_ne!(p1, *ring.pseudonym_key(&t("other")).unwrap().expose());

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
        assert_eq!(*ring2.pseudonym_key(&a).unwrap().expose(), p1);

        // The wrong master key cannot unwrap.
        let ring3 = KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap();
        let err = ring3.dek(&a, 1).unwrap_err();
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        assert!(
            err.to_string().contains(mk.id()),
            "names the KEK it needs: {err}"
        );

        // A flipped byte in a wrapped key is an authentication error naming the key id.
        let mut file: KeyFile =
            serde_json::from_slice(&std::fs::read(dir.path().join("acme.json")).unwrap()).unwrap();
        let mut w = hex::decode(&file.deks[1].wrapped).unwrap();
        w[20] ^= 1;
        file.deks[1].wrapped = hex::encode(w);
        let flipped = tempfile::tempdir().unwrap();
        std::fs::write(
            flipped.path().join("acme.json"),
            serde_json::to_vec(&file).unwrap(),
        )
        .unwrap();
        let err = KeyRing::open(flipped.path(), &mk)
            .unwrap()
            .dek(&a, 1)
            .unwrap_err();
        assert!(matches!(err, StoreError::Crypto { .. }), "{err}");
        assert!(err.to_string().contains("dek/2 of tenant acme"), "{err}");

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
            *ring2.pseudonym_key(&a).unwrap().expose(),
            p1,
            "new pseudonyms are unlinkable"
        );
    }

    #[test]
    fn ages_erasure_and_scheduled_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::generate().unwrap();
        let ring = KeyRing::open(dir.path(), &mk).unwrap();
        let (a, b) = (t("a"), t("b"));
        ring.current_dek(&a).unwrap();
        ring.rotate(&a).unwrap();
        ring.current_dek(&b).unwrap();
        let ages = ring.key_ages().unwrap();
        assert_eq!(ages.len(), 2);
        assert_eq!((ages[0].key_id, ages[0].keys), (2, 2));
        assert_eq!(ages[0].kek, mk.id());
        assert!(ring.rotate_due().unwrap().is_empty(), "no period set");

        // Erasure: tombstone, keys destroyed, no new keys, reads "unavailable".
        let tomb = ring.erase(&a).unwrap();
        assert_eq!(tomb.key_ids, vec![1, 2]);
        assert!(!dir.path().join("a.json").exists());
        assert!(matches!(
            ring.current_dek(&a),
            Err(StoreError::TenantErased { .. })
        ));
        assert!(matches!(
            ring.dek(&a, 1),
            Err(StoreError::KeyUnavailable { .. })
        ));
        assert_eq!(ring.erase(&a).unwrap(), tomb, "idempotent");
        assert_eq!(ring.key_ages().unwrap().len(), 1);
        ring.current_dek(&b).unwrap();

        // Scheduled rotation: keys older than the period are rotated.
        let ring = KeyRing::open(dir.path(), &mk)
            .unwrap()
            .with_rotation_period(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(ring.rotate_due().unwrap(), vec![(b.clone(), 2)]);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
