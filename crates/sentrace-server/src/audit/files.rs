//! The audit logs on disk, under `<data dir>/audit/`:
//!
//! ```text
//! audit/tenants/<tenant>.journal     records of the tenant's log (encrypted journal "audit")
//! audit/tenants/<tenant>.checkpoint  its latest signed checkpoint (C2SP signed note)
//! audit/node/node.journal            the node's own log (records with no tenant)
//! audit/node/node.checkpoint         its latest signed checkpoint
//! audit/node/keys/                   the node log's data key, wrapped by the master key
//! ```
//!
//! Records are [`sentrace_store::Journal`] records: the JSON of an [`AuditRecord`] sealed
//! with AES-256-GCM under a key derived from the tenant's data key, the AAD binding
//! journal name, tenant, sequence number and key id. The sequence number of a record is
//! its index in the log. The log's leaf for a record is its whole stored bytes, so
//! the tree and checkpoints verify without any key (and survive crypto-shredding).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::{CheckpointError, Origin};
use sentrace_store::journal::{Stored, StoredRecord};
use sentrace_store::{Journal, KeyRing, MasterKey, StoreError};

use super::AuditRecord;

/// The audit directory under a data directory.
pub const AUDIT_DIR: &str = "audit";
/// How the node's own log is named where a tenant id would be (not a valid tenant id).
pub const NODE_LOG: &str = "_node";
/// The largest record payload (JSON) accepted, in bytes.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// The largest checkpoint file read.
const MAX_CHECKPOINT_FILE: u64 = 64 * 1024;
/// The journal name of tenants' logs (bound into their keys and AAD).
const TENANT_JOURNAL: &str = "audit";
/// The journal name of the node's log.
const NODE_JOURNAL: &str = "audit-node";
/// The key-ring entry of the node's log, in its own key ring (never a tenant's).
const NODE_KEY_ENTRY: &str = "node";
const CHECKPOINT_SUFFIX: &str = ".checkpoint";
const JOURNAL_SUFFIX: &str = ".journal";

/// Which audit log: a tenant's, or the node's own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogName {
    /// The tenant's audit log.
    Tenant(TenantId),
    /// The node's own log: authentication failures that named no trusted tenant.
    Node,
}

impl LogName {
    /// The log a record with this tenant goes to.
    pub fn of(tenant: Option<&TenantId>) -> Self {
        tenant.map_or(Self::Node, |t| Self::Tenant(t.clone()))
    }

    /// Parses a tenant id, or `_node` for the node's own log.
    pub fn parse(text: &str) -> Result<Self, sentrace_core::IdError> {
        if text == NODE_LOG {
            return Ok(Self::Node);
        }
        TenantId::new(text).map(Self::Tenant)
    }

    /// The tenant id, or `_node`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tenant(t) => t.as_str(),
            Self::Node => NODE_LOG,
        }
    }

    /// The log's origin line: `<node>/<tenant>/audit`, or `<node>/_node/audit`. Distinct
    /// from every span log's origin (`<node>/<tenant>`).
    pub fn origin(&self, node: &str) -> Result<Origin, CheckpointError> {
        Origin::new(&format!("{node}/{}/audit", self.as_str()))
    }
}

impl std::fmt::Display for LogName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an audit file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The journal or key ring failed.
    #[error("audit log {log}: {source}")]
    Store {
        /// The log.
        log: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A checkpoint file could not be read or written.
    #[error("audit log {log}: checkpoint file {}: {source}", path.display())]
    Checkpoint {
        /// The log.
        log: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record decrypted but is not an audit record.
    #[error("audit log {log} record {index}: not an audit record: {why}")]
    NotARecord {
        /// The log.
        log: String,
        /// The record's index.
        index: u64,
        /// What failed to parse.
        why: String,
    },
}

/// The audit logs' files under one data directory.
pub struct AuditFiles {
    tenants_dir: PathBuf,
    node_dir: PathBuf,
    tenants: Journal,
    node: Journal,
    node_entry: TenantId,
}

impl std::fmt::Debug for AuditFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditFiles")
            .field("tenants_dir", &self.tenants_dir)
            .finish_non_exhaustive()
    }
}

fn store_err(log: &LogName) -> impl FnOnce(StoreError) -> FilesError + '_ {
    move |source| FilesError::Store {
        log: log.to_string(),
        source,
    }
}

impl AuditFiles {
    /// Opens (creating) `<data_dir>/audit/`. `keys` is the store's key ring (tenants'
    /// data keys); the node's log gets a key ring of its own under `audit/node/keys/`,
    /// wrapped by `master`, so no tenant's key (or its shredding) touches it.
    pub fn open(
        data_dir: &Path,
        keys: Arc<KeyRing>,
        master: &MasterKey,
    ) -> Result<Self, FilesError> {
        let root = data_dir.join(AUDIT_DIR);
        let tenants_dir = root.join("tenants");
        let node_dir = root.join("node");
        let node_err = store_err(&LogName::Node);
        let node_keys = KeyRing::open(&node_dir.join("keys"), master).map_err(node_err)?;
        let node = Journal::open(&node_dir, NODE_JOURNAL, Arc::new(node_keys))
            .map_err(store_err(&LogName::Node))?;
        let tenants =
            Journal::open(&tenants_dir, TENANT_JOURNAL, keys).map_err(store_err(&LogName::Node))?;
        let node_entry = TenantId::new(NODE_KEY_ENTRY).map_err(|e| FilesError::Store {
            log: NODE_LOG.into(),
            source: StoreError::Task(e.to_string()),
        })?;
        Ok(Self {
            tenants_dir,
            node_dir,
            tenants,
            node,
            node_entry,
        })
    }

    fn journal<'a>(&'a self, log: &'a LogName) -> (&'a Journal, &'a TenantId) {
        match log {
            LogName::Tenant(t) => (&self.tenants, t),
            LogName::Node => (&self.node, &self.node_entry),
        }
    }

    /// The path of a log's records.
    pub fn journal_path(&self, log: &LogName) -> PathBuf {
        match log {
            LogName::Tenant(t) => self
                .tenants_dir
                .join(format!("{}{JOURNAL_SUFFIX}", t.as_str())),
            LogName::Node => self
                .node_dir
                .join(format!("{NODE_KEY_ENTRY}{JOURNAL_SUFFIX}")),
        }
    }

    /// The path of a log's latest signed checkpoint.
    pub fn checkpoint_path(&self, log: &LogName) -> PathBuf {
        match log {
            LogName::Tenant(t) => self
                .tenants_dir
                .join(format!("{}{CHECKPOINT_SUFFIX}", t.as_str())),
            LogName::Node => self
                .node_dir
                .join(format!("{NODE_KEY_ENTRY}{CHECKPOINT_SUFFIX}")),
        }
    }

    /// Every log that has records or a checkpoint (the node's log first, then tenants by
    /// id). A file whose name is not a tenant id is skipped with a warning.
    pub fn logs(&self) -> Result<Vec<LogName>, FilesError> {
        let mut out = Vec::new();
        if self.journal_path(&LogName::Node).exists()
            || self.checkpoint_path(&LogName::Node).exists()
        {
            out.push(LogName::Node);
        }
        let rd = std::fs::read_dir(&self.tenants_dir).map_err(|e| FilesError::Checkpoint {
            log: "(all)".into(),
            path: self.tenants_dir.clone(),
            source: e,
        })?;
        let mut tenants = std::collections::BTreeSet::new();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name
                .strip_suffix(JOURNAL_SUFFIX)
                .or_else(|| name.strip_suffix(CHECKPOINT_SUFFIX))
            else {
                continue;
            };
            match TenantId::new(stem) {
                Ok(t) => {
                    tenants.insert(t);
                }
                Err(e) => tracing::warn!(file = %entry.path().display(), error = %e,
                    "ignoring an audit file whose name is not a tenant id"),
            }
        }
        out.extend(tenants.into_iter().map(LogName::Tenant));
        Ok(out)
    }

    /// Appends record payloads durably (one write, one fdatasync); returns them as stored.
    pub fn append(
        &self,
        log: &LogName,
        payloads: &[Vec<u8>],
    ) -> Result<Vec<StoredRecord>, FilesError> {
        let (j, t) = self.journal(log);
        j.append_stored(t, payloads).map_err(store_err(log))
    }

    /// A log's records as stored, in file order.
    pub fn stored(&self, log: &LogName) -> Result<Stored, FilesError> {
        let (j, t) = self.journal(log);
        j.stored(t).map_err(store_err(log))
    }

    /// Decrypts and parses one stored record.
    pub fn open_record(&self, log: &LogName, r: &StoredRecord) -> Result<AuditRecord, FilesError> {
        let (j, t) = self.journal(log);
        let bytes = j.open_stored(t, r).map_err(store_err(log))?;
        serde_json::from_slice(&bytes).map_err(|e| FilesError::NotARecord {
            log: log.to_string(),
            index: r.seq,
            why: e.to_string(),
        })
    }

    /// The log's latest signed checkpoint, if it has one.
    pub fn read_checkpoint(&self, log: &LogName) -> Result<Option<Vec<u8>>, FilesError> {
        let path = self.checkpoint_path(log);
        let err = |source| FilesError::Checkpoint {
            log: log.to_string(),
            path: path.clone(),
            source,
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_CHECKPOINT_FILE => {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("larger than {MAX_CHECKPOINT_FILE} bytes"),
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e)),
        }
        std::fs::read(&path).map(Some).map_err(err)
    }

    /// Replaces the log's checkpoint atomically and durably.
    pub fn write_checkpoint(&self, log: &LogName, note: &str) -> Result<(), FilesError> {
        let path = self.checkpoint_path(log);
        sentrace_store::fsutil::write_atomic(&path, note.as_bytes(), 0o600).map_err(|e| {
            FilesError::Checkpoint {
                log: log.to_string(),
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })
    }
}
