//! Sentrace's write path, without HTTP or gRPC: the ingest stages in their order, the
//! registry that holds them, and the step that commits a batch to the store.
//!
//! ```text
//! (transport: authenticate) → validate → verify-source → [detect] → [minimize] → encode → commit
//! ```
//!
//! The network edges (`sentrace-server`: OTLP receivers, query and log routes, TLS, the
//! alert sinks and the witness clients) call [`pipeline::Pipeline::ingest`] and implement
//! the few traits through which the write path reaches the network
//! ([`detect::FindingSinks`]).
//!
//! Layout:
//! - [`pipeline`]: the `validate` stage, the [`pipeline::Registry`] and [`pipeline::stages`]
//!   (the one place that knows the order), [`pipeline::Pipeline::ingest`] and the encoding
//!   of spans into store entries;
//! - [`commit`]: the commit step the registry ends with: a plain WAL append, or sealing
//!   into the tenant's transparency log and then the WAL append (one record, one fsync);
//! - [`sources`]: the `verify-source` stage (signed sources: registry, wire format, replay
//!   state and its snapshots);
//! - [`detect`]: the `detect` stage and its runtime (finding ring and journal, automated
//!   response and its audit, quarantine);
//! - [`secrets`]: the minimize stage's per-tenant keys and token vault;
//! - [`seal`]: the transparency logs (batch manifests, tiles, signed checkpoints, the log
//!   key, offline verification of a data directory, proof bundles, cosignature storage);
//! - [`durable`]: the gate that waits for the stages' writer threads before a batch is
//!   stored;
//! - [`metrics`]: the node's counters, exported by the server at `/metrics`;
//! - [`config`]: the `[minimize]` section (the other sections live with their stage).
//!
//! Nothing here depends on axum, hyper, tonic, tower or reqwest (`scripts/test.sh` checks);
//! tokio is used for the async store append, the publisher task and the writer threads'
//! waits.
#![forbid(unsafe_code)]

pub mod commit;
pub mod config;
pub mod detect;
pub mod durable;
pub mod metrics;
pub mod periodic;
pub mod pipeline;
pub mod seal;
pub mod secrets;
pub mod sensitive;
pub mod sources;
pub mod tenant_files;
