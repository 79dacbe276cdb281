//! The key hierarchy: a master key (KEK) wraps per-tenant data keys (DEKs).
//!
//! ```text
//! MasterKey (file 0600 or env) ──AES-256-GCM wrap──► DEK(tenant, id) stored in keys/<tenant>.json
//!   DEK ──HKDF "sentrace wal v1"──────────────► WAL record key
//!   DEK ──HKDF "sentrace block v1" ‖ block ‖ …─► Parquet footer and column keys
//! pseudonym secret (per tenant, wrapped too) ──► HMAC key for the redact crate
//! ```
//!
//! Only wrapped keys ever reach the disk. Destroying a tenant's key file (crypto-shredding)
//! makes all of its WAL records and blocks unreadable.

mod master;
mod ring;

pub use master::MasterKey;
pub use ring::{Dek, DekId, KeyRing};
