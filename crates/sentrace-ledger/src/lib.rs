//! Sentrace integrity: a pure library (no I/O, no async runtime, no storage) that a third
//! party can audit and reuse on its own.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`merkle`] | leaf/node hashes, in-memory and compact trees, inclusion and consistency proofs and their verification, [`merkle::span_root`] | RFC 9162 §2.1 |
//! | [`note`] | signed notes, key names, key IDs | C2SP `signed-note` |
//! | [`keys`] | Ed25519 (`0x01`, `0x04`) and ML-DSA-44 (`0x06`) signers and vkeys | RFC 8032, FIPS 204, C2SP `tlog-cosignature` |
//! | [`checkpoint`] | checkpoint bodies, the log's hybrid key, the verifier policy | C2SP `tlog-checkpoint` |
//! | [`manifest`] | the batch manifest (one log entry per batch), source signatures | this crate, versioned |
//! | [`replay`] | per-source sequence and time window | — |
//! | [`tiles`] | tile paths, hash tiles, entry bundles, [`tiles::LogReader`] | C2SP `tlog-tiles` |
//! | [`log`] | the append side: entries in, `(path, bytes)` and checkpoint bodies out | C2SP `tlog-tiles` |
//! | [`seal`] | the seal stage state: log + key + cadence -> publications to write | — |
//! | [`verify`] | the verifier with located, named findings and pinned checkpoints | — |
//! | [`bundle`] | offline-verifiable proof bundles | in the spirit of C2SP `tlog-proof` |
//! | [`witness`] | add-checkpoint bodies, a witness state machine, cosignature checks | C2SP `tlog-witness` |
//!
//! Why ML-DSA-44: C2SP specifies ML-DSA for notes only in `tlog-cosignature` (signature
//! type `0x06`, the `subtree/v1` message), where it picked ML-DSA-44. Sentrace's log signs
//! its checkpoints in exactly that format beside its Ed25519 (`0x01`) signature, so any
//! C2SP-aware verifier can check either. See [`keys`].
#![forbid(unsafe_code)]

pub mod bundle;
pub mod checkpoint;
pub mod keys;
pub mod log;
pub mod manifest;
pub mod merkle;
pub mod note;
pub mod replay;
pub mod seal;
pub mod tiles;
pub mod verify;
pub mod witness;
