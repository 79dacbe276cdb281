//! The store's error type.

use std::path::PathBuf;
use std::time::Duration;

use sentrace_core::TenantId;

/// Everything that can go wrong in the store, with enough structure to act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bounded ingest queue is full: the caller should answer 429 / RESOURCE_EXHAUSTED
    /// with `Retry-After` and must not buffer the request itself.
    #[error("store is busy: write queue is full, retry after {retry_after:?}")]
    Busy {
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// A single request is larger than the whole write queue and can never be accepted.
    #[error("request of {bytes} bytes exceeds the write queue bound of {max} bytes")]
    RequestTooLarge {
        /// Encoded size of the request.
        bytes: usize,
        /// The configured `max_queue_bytes`.
        max: usize,
    },
    /// The store was closed (or its writer stopped after an I/O error).
    #[error("store is closed")]
    Closed,
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The configured object store (`[store] url`) cannot be opened or does not answer.
    /// `url` carries no credentials.
    #[error("object store {url}: {reason}")]
    Backend {
        /// The store URL, without user information.
        url: String,
        /// What failed and what to check.
        reason: String,
    },
    /// An object-store (block storage) operation failed.
    #[error("object store error on {path}: {source}")]
    ObjectStore {
        /// The object path.
        path: String,
        /// The underlying error.
        source: object_store::Error,
    },
    /// Encryption or decryption failed (wrong key, tampered data, moved record).
    #[error("crypto error ({context}): authentication failed or key unusable")]
    Crypto {
        /// What was being encrypted or decrypted.
        context: String,
    },
    /// The data key needed to read some data does not exist (for example, it was shredded).
    #[error("data key {key_id} of tenant {tenant} is not available (shredded or never created)")]
    KeyUnavailable {
        /// The tenant.
        tenant: TenantId,
        /// The data key id named by the data.
        key_id: u32,
    },
    /// The sensitive-value key a stored value names does not exist (shredded, erased or
    /// never created).
    #[error(
        "sensitive-value key sensitive/{key_id} of tenant {tenant} is not available (shredded or never created)"
    )]
    SensitiveKeyUnavailable {
        /// The tenant.
        tenant: TenantId,
        /// The key id named by the value's envelope.
        key_id: u32,
    },
    /// The master key (KEK) provider failed to wrap or unwrap a key: a command that exited
    /// non-zero, timed out or answered garbage, or a key that does not authenticate.
    #[error("master key {kek}: cannot {op} {key}: {reason}")]
    Kek {
        /// The KEK's id.
        kek: String,
        /// `wrap` or `unwrap`.
        op: &'static str,
        /// Which key (`key dek/3 of tenant acme`).
        key: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The tenant was erased (`sentrace tenant erase`): its data keys are destroyed and it
    /// takes no new data.
    #[error(
        "tenant {tenant} was erased at {erased_at}; its data is gone (receipt in erased/{tenant}/tenant-erasure.json)"
    )]
    TenantErased {
        /// The tenant.
        tenant: TenantId,
        /// When (RFC 3339).
        erased_at: String,
    },
    /// A key file is unusable: bad format, wrong length, or insecure permissions.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Stored data is damaged in a way that is not a torn tail.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file or object.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A block could not be written or read as Parquet.
    #[error("parquet error on block {block}: {reason}")]
    Parquet {
        /// The block path.
        block: String,
        /// The underlying error text.
        reason: String,
    },
    /// A span handed to the store is invalid.
    #[error("invalid span {index} of request: {reason}")]
    InvalidSpan {
        /// Index of the span in the request.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("invalid store configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Nodes sharing a bucket must share the master key: something in the bucket is
    /// wrapped under another one.
    #[error(
        "object store {}: {} is wrapped under master key {}, but this node's master key is {}; every node sharing a bucket needs the same master key (SENTRACE_KEK or [keys] kek): refusing to start rather than write blocks the other nodes cannot read",
        .0.url, .0.what, .0.found, .0.configured
    )]
    ForeignMasterKey(Box<ForeignMasterKey>),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// What [`StoreError::ForeignMasterKey`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignMasterKey {
    /// The bucket (no credentials).
    pub url: String,
    /// What was found (`every data key of the bucket (its kek-id marker)`, `data keys of
    /// node N, tenant T`).
    pub what: String,
    /// The id of the master key that wrapped it.
    pub found: String,
    /// The id of this node's master key.
    pub configured: String,
}

impl StoreError {
    /// Shorthand for an [`StoreError::Io`] error.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for a [`StoreError::Crypto`] error.
    pub(crate) fn crypto(context: impl Into<String>) -> Self {
        Self::Crypto {
            context: context.into(),
        }
    }
}
