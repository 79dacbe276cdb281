//! The key hierarchy: a master key (KEK) wraps per-tenant data keys (DEKs).
//!
//! ```text
//! Kek (file 0600, env, or a command) ──wrap──► DEK(tenant, id) stored in keys/<tenant>.json
//!   DEK ──HKDF "sentrace wal v1"──────────────► WAL record key
//!   DEK ──HKDF "sentrace block v1" ‖ block ‖ …─► Parquet footer and column keys
//! pseudonym secret (per tenant, wrapped too) ──► HMAC key for the redact crate
//! sensitive-value key (per tenant and DEK id, wrapped too; unwrapped only on use) ──► minimized values
//! ```
//!
//! Only wrapped keys ever reach the disk; each key file names the KEK that wrapped it.
//! [`rewrap`] moves every wrapped key to a new KEK, crash-safe. Destroying a tenant's key file (crypto-shredding)
//! makes all of its WAL records and blocks unreadable.

mod command;
mod kek;
mod master;
pub mod rewrap;
mod ring;
pub mod sensitive;

pub use command::CommandKek;
pub use kek::{DEFAULT_COMMAND_TIMEOUT, Kek, KekSource, KekSpec, KeyLabel, LocalKek, local_kek};
pub use master::MasterKey;
pub use ring::{Dek, DekId, ErasedTenant, KeyAge, KeyRing, dek_key_id, rfc3339};
pub use sensitive::{SensitiveKey, SensitiveKeyStats, ValueContext, sensitive_key_id};
