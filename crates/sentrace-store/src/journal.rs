//! Encrypted per-tenant journals: small append-only record files for server state that must
//! survive a restart but is not span data in the log (detection findings, spans kept aside
//! by a quarantine, the read-audit log).
//!
//! A journal named `N` keeps each tenant's records in `<dir>/<tenant>.journal`, in the
//! format of [`crate::sealed_file`] (the one encrypted append-file type, shared with the
//! vault):
//!
//! ```text
//! record = len:u32be ‖ dek_id:u32be ‖ seq:u64be ‖ AES-256-GCM(journal key of dek_id,
//!          aad = "sentrace journal v1" ‖ N ‖ tenant ‖ seq ‖ dek_id, payload)
//! ```
//!
//! The journal key is HKDF(DEK, "sentrace journal v1" ‖ N), so crypto-shredding a tenant
//! makes its journals unreadable, and a record moved to another tenant, journal or position
//! fails authentication. Sequence numbers only grow, so a record dropped from the middle or
//! replayed shows as a gap or a repeat on load. [`Journal::append_many`] writes each tenant's
//! share of a group with one write and one `fdatasync`; [`Journal::append`] is a group of
//! one. Server code on the async runtime does not call them: it queues through a
//! [`crate::journal_writer::JournalWriter`], whose thread group-commits. A torn tail (crash
//! mid-write) is cut on open; a failed append cuts what it wrote (best effort) and reopens
//! the file on next use, so a failure never leaves half a record in the middle of the file.
//!
//! Logs that hash their records (the read-audit log) use [`Journal::append_stored`] and
//! [`Journal::stored`], which hand out each record's exact stored bytes (header and sealed
//! part): those bytes can be hashed into a Merkle tree and verified without the keys.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sentrace_core::TenantId;

use crate::sealed_file::{Kind, SealedFiles};
use crate::{KeyRing, StoreError};

#[cfg(test)]
const HEADER_LEN: usize = 4 + 4 + 8;
const SUFFIX: &str = ".journal";
/// Largest payload of one record (a quarantined request can be as large as a request).
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Largest journal file read.
const MAX_FILE_BYTES: u64 = 4 << 30;

fn seq_of(id: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if id.len() == 8 {
        b.copy_from_slice(id);
    }
    u64::from_be_bytes(b)
}

/// What [`Journal::load`] found in a tenant's journal.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The readable payloads, oldest first.
    pub records: Vec<Vec<u8>>,
    /// Records whose data key is gone (crypto-shredded): unreadable by design.
    pub shredded: usize,
    /// Records that failed authentication or break the sequence order, by byte offset and
    /// reason. They are skipped, never returned.
    pub damaged: Vec<(u64, String)>,
}

/// One record exactly as stored (for logs that hash their records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Byte offset in the tenant's file.
    pub offset: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// The data key it was sealed under.
    pub dek_id: u32,
    /// The whole record: `len ‖ dek_id ‖ seq ‖ sealed payload`.
    pub bytes: Vec<u8>,
}

/// What [`Journal::stored`] found in a tenant's file.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The intact records, in file order.
    pub records: Vec<StoredRecord>,
    /// Where a torn tail (bytes that do not form a whole record) begins, if there is one.
    pub torn_at: Option<u64>,
}

struct Open {
    file: File,
    next_seq: u64,
    records: usize,
}

/// Encrypted append-only record files, one per tenant.
pub struct Journal {
    files: SealedFiles,
    name: String,
    open: Mutex<HashMap<TenantId, Open>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("files", &self.files)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// The journal `name` under `dir` (created with mode 0700).
    pub fn open(dir: &Path, name: &str, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        let kind = Kind::Journal {
            name: name.to_string(),
        };
        Ok(Self {
            files: SealedFiles::open(dir, SUFFIX, MAX_FILE_BYTES, kind, keys)?,
            name: name.to_string(),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The journal's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<TenantId, Open>>, StoreError> {
        self.open
            .lock()
            .map_err(|_| StoreError::Task("journal lock poisoned".into()))
    }

    /// Deletes the tenant's journal file (after a tenant erasure it is unreadable anyway; this
    /// frees its bytes and its size); false when there was none.
    pub fn remove_tenant(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        self.lock()?.remove(tenant);
        self.files.remove(tenant)
    }

    /// The tenants that have a journal file.
    pub fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.files.tenants()
    }

    /// Decrypts a tenant's records, oldest first.
    pub fn load(&self, tenant: &TenantId) -> Result<Loaded, StoreError> {
        let _guard = self.lock()?;
        let bytes = self.files.read(tenant)?;
        let (raw, _) = self.files.parse(&bytes);
        let mut out = Loaded::default();
        let mut last_seq: Option<u64> = None;
        for r in raw {
            let seq = seq_of(r.id);
            if let Some(last) = last_seq.filter(|s| seq <= *s) {
                out.damaged.push((
                    r.start as u64,
                    format!("sequence {seq} after {last} (replayed or reordered record)"),
                ));
                continue;
            }
            match self.files.open_frame(tenant, &r) {
                Ok(p) => out.records.push(p),
                Err(StoreError::KeyUnavailable { .. }) => out.shredded += 1,
                Err(e @ StoreError::Crypto { .. }) => {
                    out.damaged.push((r.start as u64, e.to_string()))
                }
                Err(e) => return Err(e),
            }
            last_seq = Some(seq);
        }
        Ok(out)
    }

    fn seal(&self, tenant: &TenantId, seq: u64, payload: &[u8]) -> Result<Vec<u8>, StoreError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(StoreError::InvalidSpan {
                index: 0,
                reason: format!(
                    "journal {} record of {} bytes exceeds {MAX_RECORD_BYTES}",
                    self.name,
                    payload.len()
                ),
            });
        }
        self.files.seal(tenant, &seq.to_be_bytes(), payload)
    }

    fn open_tenant<'a>(
        &self,
        map: &'a mut HashMap<TenantId, Open>,
        tenant: &TenantId,
    ) -> Result<&'a mut Open, StoreError> {
        if !map.contains_key(tenant) {
            let (file, bytes) = self.files.open_append(tenant)?;
            let (raw, _) = self.files.parse(&bytes);
            let next_seq = raw
                .iter()
                .map(|r| seq_of(r.id))
                .max()
                .map_or(0, |s| s.saturating_add(1));
            let records = raw.len();
            map.insert(
                tenant.clone(),
                Open {
                    file,
                    next_seq,
                    records,
                },
            );
        }
        map.get_mut(tenant)
            .ok_or_else(|| StoreError::Task("journal state missing".into()))
    }

    /// Appends records durably (one write, one `fdatasync`) and returns how many records
    /// the tenant's journal now holds.
    pub fn append(&self, tenant: &TenantId, payloads: &[Vec<u8>]) -> Result<usize, StoreError> {
        let mut map = self.lock()?;
        self.append_locked(&mut map, tenant, payloads)
            .map(|(n, _)| n)
    }

    /// Like [`Journal::append`], and returns the records as stored (their exact bytes, for
    /// hashing). Nothing is returned unless all of them are durable.
    pub fn append_stored(
        &self,
        tenant: &TenantId,
        payloads: &[Vec<u8>],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut map = self.lock()?;
        self.append_locked(&mut map, tenant, payloads)
            .map(|(_, r)| r)
    }

    /// Appends a group: each tenant's records with one write and one `fdatasync`. Returns,
    /// per entry of `group`, the tenant's record count after it (or the error of its
    /// tenant's write), and the number of `fdatasync` calls made.
    pub fn append_many(
        &self,
        group: &[(&TenantId, &[Vec<u8>])],
    ) -> (Vec<Result<usize, StoreError>>, u64) {
        let mut map = match self.lock() {
            Ok(m) => m,
            Err(_) => {
                let fail = || Err(StoreError::Task("journal lock poisoned".into()));
                return (group.iter().map(|_| fail()).collect(), 0);
            }
        };
        // Each tenant's payloads, in the group's order.
        let mut order: Vec<&TenantId> = Vec::new();
        let mut by_tenant: HashMap<&TenantId, Vec<Vec<u8>>> = HashMap::new();
        for (t, p) in group {
            let e = by_tenant.entry(t).or_insert_with(|| {
                order.push(t);
                Vec::new()
            });
            e.extend(p.iter().cloned());
        }
        let mut outcome: HashMap<&TenantId, Result<usize, String>> = HashMap::new();
        let mut fsyncs = 0u64;
        for t in order {
            let payloads = by_tenant.remove(t).unwrap_or_default();
            let r = self.append_locked(&mut map, t, &payloads);
            fsyncs += 1;
            outcome.insert(t, r.map(|(n, _)| n).map_err(|e| e.to_string()));
        }
        let results = group
            .iter()
            .map(|(t, _)| match outcome.get(t) {
                Some(Ok(n)) => Ok(*n),
                Some(Err(reason)) => Err(StoreError::Task(format!(
                    "journal {} of tenant {t}: {reason}",
                    self.name
                ))),
                None => Err(StoreError::Task("journal group entry lost".into())),
            })
            .collect();
        (results, fsyncs)
    }

    fn append_locked(
        &self,
        map: &mut HashMap<TenantId, Open>,
        tenant: &TenantId,
        payloads: &[Vec<u8>],
    ) -> Result<(usize, Vec<StoredRecord>), StoreError> {
        let o = self.open_tenant(map, tenant)?;
        let path = self.files.path(tenant);
        let start = o
            .file
            .metadata()
            .map_err(|e| StoreError::io(&path, e))?
            .len();
        let mut buf = Vec::new();
        let mut stored = Vec::with_capacity(payloads.len());
        let mut seq = o.next_seq;
        for p in payloads {
            let rec = self.seal(tenant, seq, p)?;
            let dek_id = u32::from_be_bytes([rec[4], rec[5], rec[6], rec[7]]);
            stored.push(StoredRecord {
                offset: start.saturating_add(buf.len() as u64),
                seq,
                dek_id,
                bytes: rec.clone(),
            });
            buf.extend_from_slice(&rec);
            seq = seq.saturating_add(1);
        }
        if let Err(e) = self.files.append(tenant, &mut o.file, &buf) {
            // Reopen on next use: the next append starts from what the file really holds.
            map.remove(tenant);
            return Err(e);
        }
        o.next_seq = seq;
        o.records = o.records.saturating_add(payloads.len());
        Ok((o.records, stored))
    }

    /// A tenant's records exactly as stored, in file order, without decrypting them.
    pub fn stored(&self, tenant: &TenantId) -> Result<Stored, StoreError> {
        let _guard = self.lock()?;
        let bytes = self.files.read(tenant)?;
        let (raw, intact) = self.files.parse(&bytes);
        let records = raw
            .iter()
            .map(|r| StoredRecord {
                offset: r.start as u64,
                seq: seq_of(r.id),
                dek_id: r.dek_id,
                bytes: bytes[r.start..r.end].to_vec(),
            })
            .collect();
        Ok(Stored {
            records,
            torn_at: (intact < bytes.len()).then_some(intact as u64),
        })
    }

    /// Decrypts one stored record of `tenant`'s journal. Fails with
    /// [`StoreError::KeyUnavailable`] when its data key was crypto-shredded, and with an
    /// authentication error when its bytes, its sequence number or its place (tenant,
    /// journal) were changed.
    pub fn open_stored(&self, tenant: &TenantId, r: &StoredRecord) -> Result<Vec<u8>, StoreError> {
        let (raw, _) = self.files.parse(&r.bytes);
        let Some(one) = raw.first().filter(|x| x.start == 0) else {
            return Err(StoreError::Corrupt {
                path: self.files.path(tenant),
                offset: r.offset,
                reason: "not a whole journal record".into(),
            });
        };
        self.files.open_frame(tenant, one)
    }

    /// Replaces a tenant's records atomically (compaction after the caller dropped old
    /// ones, or a release). Sequence numbers keep growing across the rewrite.
    pub fn rewrite(&self, tenant: &TenantId, payloads: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut map = self.lock()?;
        let mut seq = self.open_tenant(&mut map, tenant)?.next_seq;
        let mut buf = Vec::new();
        for p in payloads {
            buf.extend_from_slice(&self.seal(tenant, seq, p)?);
            seq = seq.saturating_add(1);
        }
        self.files.rewrite(tenant, &buf)?;
        // Reopen on next use so the append handle points at the new file.
        map.remove(tenant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn setup() -> (tempfile::TempDir, Arc<KeyRing>) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(
            KeyRing::open(&dir.path().join("keys"), &MasterKey::from_bytes([3; 32])).unwrap(),
        );
        (dir, keys)
    }

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn append_load_rewrite_and_restart() {
        let (dir, keys) = setup();
        let jdir = dir.path().join("findings");
        let j = Journal::open(&jdir, "findings", keys.clone()).unwrap();
        assert_eq!(
            j.append(&t("a"), &[b"one".to_vec(), b"two".to_vec()])
                .unwrap(),
            2
        );
        assert_eq!(j.append(&t("a"), &[b"three".to_vec()]).unwrap(), 3);
        j.append(&t("b"), &[b"bee".to_vec()]).unwrap();
        let raw = std::fs::read(jdir.join("a.journal")).unwrap();
        assert!(!raw.windows(3).any(|w| w == b"two"), "nothing in plaintext");
        // A fresh journal over the same files (a restart) reads the same.
        let j2 = Journal::open(&jdir, "findings", keys.clone()).unwrap();
        assert_eq!(j2.tenants().unwrap(), vec![t("a"), t("b")]);
        let l = j2.load(&t("a")).unwrap();
        assert_eq!(
            l.records,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert!(l.damaged.is_empty());
        j2.rewrite(&t("a"), &[b"three".to_vec()]).unwrap();
        assert_eq!(j2.append(&t("a"), &[b"four".to_vec()]).unwrap(), 2);
        assert_eq!(
            j2.load(&t("a")).unwrap().records,
            vec![b"three".to_vec(), b"four".to_vec()]
        );
        // Another journal name cannot read these records (the key and AAD bind the name).
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::copy(jdir.join("b.journal"), dir.path().join("other/b.journal")).unwrap();
        let other = Journal::open(&dir.path().join("other"), "quarantine", keys).unwrap();
        let l = other.load(&t("b")).unwrap();
        assert!(l.records.is_empty());
        assert_eq!(l.damaged.len(), 1);
    }

    #[test]
    fn stored_records_are_the_appended_bytes_and_open_only_in_place() {
        let (dir, keys) = setup();
        let jdir = dir.path().join("audit");
        let j = Journal::open(&jdir, "audit", keys.clone()).unwrap();
        let first = j
            .append_stored(&t("a"), &[b"one".to_vec(), b"two".to_vec()])
            .unwrap();
        let second = j.append_stored(&t("a"), &[b"three".to_vec()]).unwrap();
        assert_eq!(
            first
                .iter()
                .chain(&second)
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let stored = j.stored(&t("a")).unwrap();
        assert_eq!(stored.torn_at, None);
        assert_eq!(stored.records, [first, second].concat());
        assert_eq!(
            j.open_stored(&t("a"), &stored.records[2]).unwrap(),
            b"three"
        );
        // Altered bytes, or a record opened as another tenant's, fail authentication.
        let mut bad = stored.records[1].clone();
        let last = bad.bytes.len() - 1;
        bad.bytes[last] ^= 1;
        assert!(j.open_stored(&t("a"), &bad).is_err());
        keys.current_dek(&t("b")).unwrap();
        assert!(j.open_stored(&t("b"), &stored.records[1]).is_err());
        // A torn tail is reported with its offset.
        let path = jdir.join("a.journal");
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        bytes.extend_from_slice(&[0, 0, 0, 40, 1]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(j.stored(&t("a")).unwrap().torn_at, Some(len));
    }

    #[test]
    fn torn_tail_cut_tamper_and_moves_detected_shred_unreadable() {
        let (dir, keys) = setup();
        let jdir = dir.path().join("j");
        let j = Journal::open(&jdir, "q", keys.clone()).unwrap();
        j.append(
            &t("a"),
            &[b"alpha".to_vec(), b"beta".to_vec(), b"gamma".to_vec()],
        )
        .unwrap();
        let path = jdir.join("a.journal");
        let good = std::fs::read(&path).unwrap();
        // Torn tail: half a record more. Loading skips it; the next append cuts it first.
        let mut torn = good.clone();
        torn.extend_from_slice(&good[..20]);
        std::fs::write(&path, &torn).unwrap();
        let j = Journal::open(&jdir, "q", keys.clone()).unwrap();
        assert_eq!(j.load(&t("a")).unwrap().records.len(), 3);
        j.append(&t("a"), &[b"delta".to_vec()]).unwrap();
        assert_eq!(
            j.load(&t("a")).unwrap().records,
            vec![
                b"alpha".to_vec(),
                b"beta".to_vec(),
                b"gamma".to_vec(),
                b"delta".to_vec()
            ]
        );
        // A flipped byte in a sealed part: that record is damaged, the others readable.
        let mut bytes = std::fs::read(&path).unwrap();
        let (raw, _) = j.files.parse(&bytes);
        let second = raw[1].start + HEADER_LEN + 3;
        drop(raw);
        bytes[second] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let l = Journal::open(&jdir, "q", keys.clone())
            .unwrap()
            .load(&t("a"))
            .unwrap();
        assert_eq!(l.records.len(), 3);
        assert_eq!(l.damaged.len(), 1);
        // A record replayed (copied again at the end): refused by its sequence number.
        let (raw, _) = j.files.parse(&good);
        let first = good[raw[0].start..raw[1].start].to_vec();
        drop(raw);
        let mut replay = good.clone();
        replay.extend_from_slice(&first);
        std::fs::write(&path, &replay).unwrap();
        let l = Journal::open(&jdir, "q", keys.clone())
            .unwrap()
            .load(&t("a"))
            .unwrap();
        assert_eq!(l.records.len(), 3);
        assert!(l.damaged[0].1.contains("replayed"), "{:?}", l.damaged);
        // Another tenant's file renamed into place fails authentication (the AAD binds it).
        std::fs::write(&path, &good).unwrap();
        std::fs::copy(&path, jdir.join("b.journal")).unwrap();
        keys.current_dek(&t("b")).unwrap();
        let l = Journal::open(&jdir, "q", keys.clone())
            .unwrap()
            .load(&t("b"))
            .unwrap();
        assert!(l.records.is_empty());
        assert_eq!(l.damaged.len(), 3);
        // Crypto-shredding the tenant makes the records unreadable, counted as such.
        keys.shred(&t("a")).unwrap();
        let l = Journal::open(&jdir, "q", keys)
            .unwrap()
            .load(&t("a"))
            .unwrap();
        assert!(l.records.is_empty());
        assert_eq!(l.shredded, 3, "{:?}", l.damaged);
    }
}
