//! Witnesses (C2SP `tlog-witness`, cosignatures per C2SP `tlog-cosignature`).
//!
//! - [`state`]: the witness's files: its cosigning keys (Ed25519 `0x04` and ML-DSA-44
//!   `0x06`, mode 0600) and its per-log state, written atomically before any cosignature
//!   leaves the process;
//! - [`server`]: `sentrace witness`, a small HTTPS server answering
//!   `POST /add-checkpoint` with the pure state machine of [`sentrace_ledger::witness`];
//! - [`config`]: the witness's own configuration (the logs it follows) and the server's
//!   `[[seal.witness]]` entries;
//! - [`client`]: the server side: after each published checkpoint, every configured witness
//!   is asked to cosign it, off the ack path, and the cosignatures are appended to the
//!   checkpoint served at the well-known path.

pub mod client;
pub use sentrace_pipeline::seal::witness_config as config;
pub mod server;
pub mod state;

#[cfg(test)]
mod tests;
