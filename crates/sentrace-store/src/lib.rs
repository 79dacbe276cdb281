//! Sentrace storage: the key hierarchy, the encrypted write-ahead log, encrypted Parquet
//! blocks in an object store, retention and crypto-shredding.
//!
//! Data path: [`Store::append`] encrypts one request into one WAL record (AES-256-GCM under
//! the tenant's data key; the AAD binds tenant, segment, offset and key id), group-commits
//! it with one `fdatasync` for everything queued, and makes the spans visible in memory.
//! A background task periodically writes buffered spans to Parquet blocks sorted by trace
//! id, encrypted with Parquet Modular Encryption under keys derived from the tenant's data
//! key, and then drops the WAL segments they cover. On open, the WAL is replayed; see
//! [`wal::replay`] for the torn-tail and corruption policy.
//!
//! Nothing is stored in plaintext: the data directory holds `keys/` (wrapped data keys),
//! `wal/` (encrypted records), `catalog/` (encrypted service/operation lists) and
//! `blocks/` (encrypted Parquet). Only tenant ids, key ids and block time ranges appear in
//! clear (in file names and record headers).
#![forbid(unsafe_code)]

mod block;
mod cloud;
mod config;
pub mod crypto;
mod entry;
mod erasure;
mod error;
pub mod export;
pub mod fsutil;
pub mod group_commit;
pub mod journal;
pub mod journal_writer;
pub mod keys;
mod memtable;
pub mod nodes;
pub mod objects;
mod scan;
mod sealed_file;
mod search;
pub mod shared_state;
mod store;
pub mod vault;
pub mod wal;

#[doc(hidden)]
pub mod testutil;

pub use config::{StoreConfig, duration};
pub use entry::{
    EntryError, MAX_CANONICAL_BYTES, MAX_MANIFEST_BYTES, MAX_NAME_BYTES, SpanEntry, SpanSeal,
};
pub use erasure::Erasure;
pub use error::{ForeignMasterKey, StoreError};
pub use group_commit::{GroupStats, Mark, WaitError};
pub use journal::Journal;
pub use journal_writer::JournalWriter;
pub use keys::{KeyRing, MasterKey};
pub use memtable::{MAX_CATALOG_OPERATIONS, MAX_CATALOG_SERVICES};
pub use objects::{StoreUrl, open_objects};
pub use scan::{
    Damage, MAX_MISPLACED_CANDIDATES, Misplaced, ScannedSpan, StoreScan, scan_data_dir, scan_store,
};
pub use search::SpanFilter;
pub use shared_state::{PeerState, SharedState};
pub use store::{
    BarrierFuture, CompactReport, Durable, FlushReport, ReadStats, SealedRead, Store, Submit,
    TRACE_READS_IN_FLIGHT, WAL_LOCATION, WalBarrier, retry_backoff,
};
pub use vault::Vault;
pub use wal::replay::{CorruptSegment, RecoveredManifest, RecoveryReport, TailCut};
pub use wal::writer::{AppendReceipt, WalCounters};
