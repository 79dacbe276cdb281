//! Encrypted append-only record files, one per tenant: the one file type under the
//! journals ([`crate::journal`]) and the token vault ([`crate::vault`]).
//!
//! ```text
//! record = len:u32be ‖ dek_id:u32be ‖ id ‖ AES-256-GCM(record key of dek_id, aad, payload)
//! ```
//!
//! `len` counts every byte after itself. `id` has a fixed length per kind of file: a
//! journal's sequence number (8 bytes, big-endian) or a vault's token (16 bytes). The record
//! key is derived from the tenant's data key (so crypto-shredding a tenant makes its files
//! unreadable), and the AAD binds the record to its tenant, its id and its key id:
//!
//! | kind | record key | aad |
//! |---|---|---|
//! | journal `N` | HKDF(DEK, "sentrace journal v1" ‖ N) | field("sentrace journal v1") ‖ field(N) ‖ field(tenant) ‖ seq ‖ dek_id |
//! | vault | HKDF(DEK, "sentrace vault v1") | "sentrace vault v1" ‖ u32be(len tenant) ‖ tenant ‖ token ‖ dek_id |
//!
//! (`field(x)` is [`crate::crypto::put_field`].) These are byte for byte the formats the
//! journal and the vault wrote before they shared this code, so existing files still open;
//! the tests pin both with fixed-key vectors.
//!
//! A torn tail (bytes that do not form a whole record, after a crash mid-write) is cut when
//! the file is opened for appending, and the cut is fsynced. A failed append cuts what it
//! wrote (best effort), so a failure never leaves half a record in the middle of the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sentrace_core::TenantId;

use crate::crypto::{AeadKey, put_field};
use crate::fsutil::{create_private_dir, read_bounded, sync_dir, write_atomic_private};
use crate::{KeyRing, StoreError};

/// What kind of file: decides the id length, the record key and the AAD.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A journal with its name; ids are sequence numbers.
    Journal {
        /// The journal's name (bound into the key and the AAD).
        name: String,
    },
    /// The token vault; ids are tokens.
    Vault,
}

const JOURNAL_LABEL: &[u8] = b"sentrace journal v1";
const VAULT_LABEL: &[u8] = b"sentrace vault v1";

impl Kind {
    fn id_len(&self) -> usize {
        match self {
            Kind::Journal { .. } => 8,
            Kind::Vault => 16,
        }
    }

    fn key_info(&self) -> Vec<&[u8]> {
        match self {
            Kind::Journal { name } => vec![JOURNAL_LABEL, name.as_bytes()],
            Kind::Vault => vec![VAULT_LABEL],
        }
    }

    fn aad(&self, tenant: &TenantId, id: &[u8], dek_id: u32) -> Vec<u8> {
        let mut a = Vec::with_capacity(64 + tenant.as_str().len());
        match self {
            Kind::Journal { name } => {
                put_field(&mut a, JOURNAL_LABEL);
                put_field(&mut a, name.as_bytes());
                put_field(&mut a, tenant.as_str().as_bytes());
            }
            Kind::Vault => {
                a.extend_from_slice(VAULT_LABEL);
                let len = u32::try_from(tenant.as_str().len()).unwrap_or(u32::MAX);
                a.extend_from_slice(&len.to_be_bytes());
                a.extend_from_slice(tenant.as_str().as_bytes());
            }
        }
        a.extend_from_slice(id);
        a.extend_from_slice(&dek_id.to_be_bytes());
        a
    }
}

/// One parsed record: where it is, its header fields and its sealed part.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// Byte offset of the record in the file.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// The data key it was sealed under.
    pub dek_id: u32,
    /// Its id (sequence number or token).
    pub id: &'a [u8],
    /// The sealed payload.
    pub sealed: &'a [u8],
}

/// Encrypted append-only record files of one kind, one per tenant, under one directory.
pub(crate) struct SealedFiles {
    dir: PathBuf,
    suffix: &'static str,
    max_file_bytes: u64,
    kind: Kind,
    keys: Arc<KeyRing>,
}

impl std::fmt::Debug for SealedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFiles")
            .field("dir", &self.dir)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SealedFiles {
    /// Files `<dir>/<tenant><suffix>` (the directory is created with mode 0700).
    pub fn open(
        dir: &Path,
        suffix: &'static str,
        max_file_bytes: u64,
        kind: Kind,
        keys: Arc<KeyRing>,
    ) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            suffix,
            max_file_bytes,
            kind,
            keys,
        })
    }

    fn header_len(&self) -> usize {
        8 + self.kind.id_len()
    }

    /// The tenant's file.
    pub fn path(&self, tenant: &TenantId) -> PathBuf {
        self.dir.join(format!("{}{}", tenant.as_str(), self.suffix))
    }

    /// Deletes the tenant's file and makes the deletion durable; false when there was none.
    pub fn remove(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let path = self.path(tenant);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                crate::fsutil::sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// The tenant's whole file (empty when it does not exist), bounded.
    pub fn read(&self, tenant: &TenantId) -> Result<Vec<u8>, StoreError> {
        let what = match self.kind {
            Kind::Journal { .. } => "journal file",
            Kind::Vault => "vault file",
        };
        read_bounded(&self.path(tenant), self.max_file_bytes, what)
    }

    /// The tenants that have a file, sorted.
    pub fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(self.suffix)) else {
                continue;
            };
            match TenantId::new(stem) {
                Ok(t) => out.push(t),
                Err(e) => tracing::warn!(
                    file = %entry.path().display(),
                    error = %e,
                    "ignoring a record file whose name is not a tenant id"
                ),
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    /// Parses records until the end or a torn tail; returns them and the intact length.
    pub fn parse<'a>(&self, bytes: &'a [u8]) -> (Vec<Frame<'a>>, usize) {
        let header = self.header_len();
        let mut out = Vec::new();
        let mut at = 0usize;
        while bytes.len().saturating_sub(at) >= header {
            let word = |o: usize| [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
            let len = u32::from_be_bytes(word(at)) as usize;
            let Some(end) = at.checked_add(4).and_then(|x| x.checked_add(len)) else {
                break;
            };
            if len < header - 4 || end > bytes.len() {
                break;
            }
            out.push(Frame {
                start: at,
                end,
                dek_id: u32::from_be_bytes(word(at + 4)),
                id: &bytes[at + 8..at + header],
                sealed: &bytes[at + header..end],
            });
            at = end;
        }
        (out, at)
    }

    /// The record key of `dek_id`: [`StoreError::KeyUnavailable`] once it was shredded.
    fn key(&self, tenant: &TenantId, dek_id: u32) -> Result<AeadKey, StoreError> {
        let dek = self.keys.dek(tenant, dek_id)?;
        AeadKey::new(&dek.derive(&self.kind.key_info())?)
    }

    /// Seals one record under the tenant's current data key.
    pub fn seal(
        &self,
        tenant: &TenantId,
        id: &[u8],
        payload: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if id.len() != self.kind.id_len() {
            return Err(StoreError::Task(format!(
                "record id of {} bytes, expected {}",
                id.len(),
                self.kind.id_len()
            )));
        }
        let dek = self.keys.current_dek(tenant)?;
        let key = AeadKey::new(&dek.derive(&self.kind.key_info())?)?;
        let header = self.header_len();
        let mut rec = Vec::with_capacity(header + payload.len() + 32);
        rec.resize(header, 0);
        key.seal_append(&self.kind.aad(tenant, id, dek.id), payload, &mut rec)?;
        let len = u32::try_from(rec.len() - 4).map_err(|_| StoreError::InvalidSpan {
            index: 0,
            reason: format!("record of {} bytes is too long", payload.len()),
        })?;
        rec[0..4].copy_from_slice(&len.to_be_bytes());
        rec[4..8].copy_from_slice(&dek.id.to_be_bytes());
        rec[8..header].copy_from_slice(id);
        Ok(rec)
    }

    /// Decrypts one record of `tenant`'s file: [`StoreError::KeyUnavailable`] when its key
    /// was shredded, an authentication error when its bytes, id or place were changed.
    pub fn open_frame(&self, tenant: &TenantId, f: &Frame<'_>) -> Result<Vec<u8>, StoreError> {
        let key = self.key(tenant, f.dek_id)?;
        let what = match self.kind {
            Kind::Journal { .. } => "journal record",
            Kind::Vault => "vault record",
        };
        key.open(&self.kind.aad(tenant, f.id, f.dek_id), f.sealed, what)
    }

    /// Opens the tenant's file for appending: cuts (and fsyncs the cut of) a torn tail, and
    /// fsyncs the directory when the file is new. Returns the handle and the intact bytes.
    pub fn open_append(&self, tenant: &TenantId) -> Result<(File, Vec<u8>), StoreError> {
        let mut bytes = self.read(tenant)?;
        let intact = self.parse(&bytes).1;
        let path = self.path(tenant);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        if intact < bytes.len() {
            tracing::warn!(path = %path.display(), offset = intact, "record file tail torn; cut");
            file.set_len(intact as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| StoreError::io(&path, e))?;
            bytes.truncate(intact);
        }
        if bytes.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok((file, bytes))
    }

    /// Appends `buf` (whole records) with one write and one `fdatasync`. On failure it cuts
    /// what it wrote (best effort); the caller must then drop the handle and reopen.
    pub fn append(&self, tenant: &TenantId, file: &mut File, buf: &[u8]) -> Result<(), StoreError> {
        let path = self.path(tenant);
        let start = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        if let Err(e) = file.write_all(buf).and_then(|_| file.sync_data()) {
            let _ = file.set_len(start).and_then(|_| file.sync_all());
            return Err(StoreError::io(&path, e));
        }
        Ok(())
    }

    /// Replaces the tenant's file with `buf` (whole records) atomically and durably.
    pub fn rewrite(&self, tenant: &TenantId, buf: &[u8]) -> Result<(), StoreError> {
        write_atomic_private(&self.path(tenant), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    /// Files written by the code before the journal and the vault shared this module: the
    /// same key ring (fixed master key, its data keys kept in `keys/`) must open them. The
    /// bytes below are sealed by hand with the old formats, so a change of framing, key
    /// derivation or AAD fails here.
    #[test]
    fn old_journal_and_vault_bytes_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(
            KeyRing::open(&dir.path().join("keys"), &MasterKey::from_bytes([9; 32])).unwrap(),
        );
        let t = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&t).unwrap();

        // The old journal record, built as journal.rs built it.
        let name = "findings";
        let jkey = AeadKey::new(&dek.derive(&[JOURNAL_LABEL, name.as_bytes()]).unwrap()).unwrap();
        let seq = 7u64;
        let mut aad = Vec::new();
        put_field(&mut aad, JOURNAL_LABEL);
        put_field(&mut aad, name.as_bytes());
        put_field(&mut aad, b"acme");
        aad.extend_from_slice(&seq.to_be_bytes());
        aad.extend_from_slice(&dek.id.to_be_bytes());
        let mut rec = vec![0u8; 16];
        jkey.seal_append(&aad, b"old finding", &mut rec).unwrap();
        let len = (rec.len() - 4) as u32;
        rec[0..4].copy_from_slice(&len.to_be_bytes());
        rec[4..8].copy_from_slice(&dek.id.to_be_bytes());
        rec[8..16].copy_from_slice(&seq.to_be_bytes());
        let files = SealedFiles::open(
            &dir.path().join("j"),
            ".journal",
            1 << 20,
            Kind::Journal { name: name.into() },
            keys.clone(),
        )
        .unwrap();
        std::fs::write(files.path(&t), &rec).unwrap();
        let bytes = files.read(&t).unwrap();
        let (frames, intact) = files.parse(&bytes);
        assert_eq!((frames.len(), intact), (1, rec.len()));
        assert_eq!(frames[0].id, &seq.to_be_bytes());
        assert_eq!(files.open_frame(&t, &frames[0]).unwrap(), b"old finding");
        // And what this module seals is what the old code would have written.
        let ours = files.seal(&t, &seq.to_be_bytes(), b"old finding").unwrap();
        assert_eq!(ours[..16], rec[..16]);
        assert_eq!(ours.len(), rec.len());

        // The old vault record, built as vault.rs built it.
        let vkey = AeadKey::new(&dek.derive(&[VAULT_LABEL]).unwrap()).unwrap();
        let token = [0xabu8; 16];
        let mut aad = Vec::new();
        aad.extend_from_slice(VAULT_LABEL);
        aad.extend_from_slice(&4u32.to_be_bytes());
        aad.extend_from_slice(b"acme");
        aad.extend_from_slice(&token);
        aad.extend_from_slice(&dek.id.to_be_bytes());
        let mut sealed = Vec::new();
        vkey.seal_append(&aad, b"email\0jane@example.com", &mut sealed)
            .unwrap();
        let mut rec = Vec::new();
        rec.extend_from_slice(&((24 - 4 + sealed.len()) as u32).to_be_bytes());
        rec.extend_from_slice(&dek.id.to_be_bytes());
        rec.extend_from_slice(&token);
        rec.extend_from_slice(&sealed);
        let vault =
            SealedFiles::open(&dir.path().join("v"), ".vault", 1 << 20, Kind::Vault, keys).unwrap();
        // A torn tail after it is cut when the file is opened for appending.
        let mut torn = rec.clone();
        torn.extend_from_slice(&[0, 0, 1]);
        std::fs::write(vault.path(&t), &torn).unwrap();
        let (_file, intact) = vault.open_append(&t).unwrap();
        assert_eq!(intact, rec);
        assert_eq!(std::fs::read(vault.path(&t)).unwrap(), rec);
        let (frames, _) = vault.parse(&intact);
        assert_eq!(frames[0].id, &token);
        assert_eq!(
            vault.open_frame(&t, &frames[0]).unwrap(),
            b"email\0jane@example.com"
        );
        // A journal cannot open a vault record, nor the other way round.
        let jbytes = std::fs::read(files.path(&t)).unwrap();
        let (jf, _) = files.parse(&jbytes);
        assert!(
            vault
                .open_frame(
                    &t,
                    &Frame {
                        id: &token,
                        ..jf.into_iter().next().unwrap()
                    }
                )
                .is_err()
        );
    }
}
