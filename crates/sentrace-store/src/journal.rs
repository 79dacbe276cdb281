//! Encrypted per-tenant journals: small append-only record files for server state that must
//! survive a restart but is not span data in the log (detection findings, spans kept aside
//! by a quarantine).
//!
//! A journal named `N` keeps each tenant's records in `<dir>/<tenant>.journal`:
//!
//! ```text
//! record = len:u32be ‖ dek_id:u32be ‖ seq:u64be ‖ AES-256-GCM(journal key of dek_id,
//!          aad = "sentrace journal v1" ‖ N ‖ tenant ‖ seq ‖ dek_id, payload)
//! ```
//!
//! The journal key is HKDF(DEK, "sentrace journal v1" ‖ N), so crypto-shredding a tenant
//! makes its journals unreadable, and a record moved to another tenant, journal or position
//! fails authentication. Sequence numbers only grow, so a record dropped from the middle or
//! replayed shows as a gap or a repeat on load. Each [`Journal::append`] is one write and one
//! `fdatasync`: callers that acknowledge something (a quarantined span reported as set aside)
//! do so after it returned. A torn tail (crash mid-write) is cut on open; a failed append
//! cuts what it wrote (best effort) and reopens the file on next use, so a failure never
//! leaves half a record in the middle of the file.
//!
//! Logs that hash their records (the read-audit log) use [`Journal::append_stored`] and
//! [`Journal::stored`], which hand out each record's exact stored bytes (header and sealed
//! part): those bytes can be hashed into a Merkle tree and verified without the keys.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sentrace_core::TenantId;

use crate::crypto::AeadKey;
use crate::fsutil::{create_private_dir, read_bounded, sync_dir, write_atomic_private};
use crate::{KeyRing, StoreError};

const HEADER_LEN: usize = 4 + 4 + 8;
const AAD_LABEL: &[u8] = b"sentrace journal v1";
const SUFFIX: &str = ".journal";
/// Largest payload of one record (a quarantined request can be as large as a request).
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Largest journal file read.
const MAX_FILE_BYTES: u64 = 4 << 30;

/// One parsed record header and where its sealed part is.
struct Raw<'a> {
    start: usize,
    dek_id: u32,
    seq: u64,
    sealed: &'a [u8],
}

/// Parses records until the end or a torn tail; returns them and the intact length.
fn parse(bytes: &[u8]) -> (Vec<Raw<'_>>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len().saturating_sub(at) >= HEADER_LEN {
        let word = |o: usize| [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
        let len = u32::from_be_bytes(word(at)) as usize;
        let Some(end) = at.checked_add(4).and_then(|x| x.checked_add(len)) else {
            break;
        };
        if len < HEADER_LEN - 4 || end > bytes.len() {
            break;
        }
        let dek_id = u32::from_be_bytes(word(at + 4));
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[at + 8..at + HEADER_LEN]);
        out.push(Raw {
            start: at,
            dek_id,
            seq: u64::from_be_bytes(seq),
            sealed: &bytes[at + HEADER_LEN..end],
        });
        at = end;
    }
    (out, at)
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
    dir: PathBuf,
    name: String,
    keys: Arc<KeyRing>,
    open: Mutex<HashMap<TenantId, Open>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// The journal `name` under `dir` (created with mode 0700).
    pub fn open(dir: &Path, name: &str, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            keys,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}{SUFFIX}", tenant.as_str()))
    }

    fn aad(&self, tenant: &TenantId, seq: u64, dek_id: u32) -> Vec<u8> {
        let mut a = Vec::with_capacity(AAD_LABEL.len() + self.name.len() + 48);
        crate::crypto::put_field(&mut a, AAD_LABEL);
        crate::crypto::put_field(&mut a, self.name.as_bytes());
        crate::crypto::put_field(&mut a, tenant.as_str().as_bytes());
        a.extend_from_slice(&seq.to_be_bytes());
        a.extend_from_slice(&dek_id.to_be_bytes());
        a
    }

    fn key(&self, tenant: &TenantId, dek_id: u32) -> Result<AeadKey, StoreError> {
        let dek = self.keys.dek(tenant, dek_id)?;
        AeadKey::new(&dek.derive(&[AAD_LABEL, self.name.as_bytes()])?)
    }

    fn read_file(&self, tenant: &TenantId) -> Result<Vec<u8>, StoreError> {
        read_bounded(&self.path(tenant), MAX_FILE_BYTES, "journal file")
    }

    /// The tenants that have a journal file.
    pub fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            match TenantId::new(stem) {
                Ok(t) => out.push(t),
                Err(e) => tracing::warn!(
                    journal = %self.name,
                    file = %entry.path().display(),
                    error = %e,
                    "ignoring a journal file whose name is not a tenant id"
                ),
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    /// Decrypts a tenant's records, oldest first.
    pub fn load(&self, tenant: &TenantId) -> Result<Loaded, StoreError> {
        let _guard = self
            .open
            .lock()
            .map_err(|_| StoreError::Task("journal lock poisoned".into()))?;
        let bytes = self.read_file(tenant)?;
        let (raw, _) = parse(&bytes);
        let mut out = Loaded::default();
        let mut last_seq: Option<u64> = None;
        for r in raw {
            if last_seq.is_some_and(|s| r.seq <= s) {
                out.damaged.push((
                    r.start as u64,
                    format!(
                        "sequence {} after {} (replayed or reordered record)",
                        r.seq,
                        last_seq.unwrap_or(0)
                    ),
                ));
                continue;
            }
            let key = match self.key(tenant, r.dek_id) {
                Ok(k) => k,
                Err(StoreError::KeyUnavailable { .. }) => {
                    out.shredded += 1;
                    last_seq = Some(r.seq);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match key.open(
                &self.aad(tenant, r.seq, r.dek_id),
                r.sealed,
                "journal record",
            ) {
                Ok(p) => out.records.push(p),
                Err(e) => out.damaged.push((r.start as u64, e.to_string())),
            }
            last_seq = Some(r.seq);
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
        let dek = self.keys.current_dek(tenant)?;
        let key = AeadKey::new(&dek.derive(&[AAD_LABEL, self.name.as_bytes()])?)?;
        let mut rec = vec![0u8; HEADER_LEN];
        key.seal_append(&self.aad(tenant, seq, dek.id), payload, &mut rec)?;
        let len =
            u32::try_from(rec.len() - 4).map_err(|_| StoreError::Task("record length".into()))?;
        rec[0..4].copy_from_slice(&len.to_be_bytes());
        rec[4..8].copy_from_slice(&dek.id.to_be_bytes());
        rec[8..16].copy_from_slice(&seq.to_be_bytes());
        Ok(rec)
    }

    fn open_tenant<'a>(
        &self,
        map: &'a mut HashMap<TenantId, Open>,
        tenant: &TenantId,
    ) -> Result<&'a mut Open, StoreError> {
        if !map.contains_key(tenant) {
            let bytes = self.read_file(tenant)?;
            let (raw, intact) = parse(&bytes);
            let next_seq = raw
                .iter()
                .map(|r| r.seq)
                .max()
                .map_or(0, |s| s.saturating_add(1));
            let records = raw.len();
            let path = self.path(tenant);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| StoreError::io(&path, e))?;
            if intact < bytes.len() {
                tracing::warn!(journal = %self.name, path = %path.display(), offset = intact, "journal tail torn; cut");
                file.set_len(intact as u64)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| StoreError::io(&path, e))?;
            }
            if bytes.is_empty() {
                sync_dir(&self.dir)?;
            }
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
        self.append_inner(tenant, payloads).map(|(n, _)| n)
    }

    /// Like [`Journal::append`], and returns the records as stored (their exact bytes, for
    /// hashing). Nothing is returned unless all of them are durable.
    pub fn append_stored(
        &self,
        tenant: &TenantId,
        payloads: &[Vec<u8>],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.append_inner(tenant, payloads).map(|(_, r)| r)
    }

    fn append_inner(
        &self,
        tenant: &TenantId,
        payloads: &[Vec<u8>],
    ) -> Result<(usize, Vec<StoredRecord>), StoreError> {
        let mut map = self
            .open
            .lock()
            .map_err(|_| StoreError::Task("journal lock poisoned".into()))?;
        let o = self.open_tenant(&mut map, tenant)?;
        let path = self.path(tenant);
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
        if let Err(e) = o.file.write_all(&buf).and_then(|_| o.file.sync_data()) {
            // Cut what this append wrote (best effort) and reopen on next use: the next
            // append starts from what the file really holds.
            let _ = o.file.set_len(start).and_then(|_| o.file.sync_all());
            map.remove(tenant);
            return Err(StoreError::io(&path, e));
        }
        o.next_seq = seq;
        o.records = o.records.saturating_add(payloads.len());
        Ok((o.records, stored))
    }

    /// A tenant's records exactly as stored, in file order, without decrypting them.
    pub fn stored(&self, tenant: &TenantId) -> Result<Stored, StoreError> {
        let _guard = self
            .open
            .lock()
            .map_err(|_| StoreError::Task("journal lock poisoned".into()))?;
        let bytes = self.read_file(tenant)?;
        let (raw, intact) = parse(&bytes);
        let records = raw
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let end = raw.get(i + 1).map_or(intact, |n| n.start);
                StoredRecord {
                    offset: r.start as u64,
                    seq: r.seq,
                    dek_id: r.dek_id,
                    bytes: bytes[r.start..end].to_vec(),
                }
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
        let (raw, _) = parse(&r.bytes);
        let Some(one) = raw.first().filter(|x| x.start == 0) else {
            return Err(StoreError::Corrupt {
                path: self.path(tenant),
                offset: r.offset,
                reason: "not a whole journal record".into(),
            });
        };
        let key = self.key(tenant, one.dek_id)?;
        key.open(
            &self.aad(tenant, one.seq, one.dek_id),
            one.sealed,
            "journal record",
        )
    }

    /// Replaces a tenant's records atomically (compaction after the caller dropped old
    /// ones, or a release). Sequence numbers keep growing across the rewrite.
    pub fn rewrite(&self, tenant: &TenantId, payloads: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut map = self
            .open
            .lock()
            .map_err(|_| StoreError::Task("journal lock poisoned".into()))?;
        let mut seq = self.open_tenant(&mut map, tenant)?.next_seq;
        let mut buf = Vec::new();
        for p in payloads {
            buf.extend_from_slice(&self.seal(tenant, seq, p)?);
            seq = seq.saturating_add(1);
        }
        write_atomic_private(&self.path(tenant), &buf)?;
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
        let (raw, _) = parse(&bytes);
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
        let (raw, _) = parse(&good);
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
