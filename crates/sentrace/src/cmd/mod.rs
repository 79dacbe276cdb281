//! Subcommands.

pub mod audit;
pub(crate) mod client;
pub mod config;
pub mod detect;
pub mod detect_profile;
pub mod export;
pub(crate) mod fail_on;
pub mod keys;
pub mod loadgen;
pub mod otlp_stream;
pub mod policy;
pub(crate) mod progress;
pub mod proof;
pub mod query;
pub mod redact;
pub mod response;
pub mod serve;
pub mod sources;
pub mod store_objects;
pub mod subject;
pub mod tenant;
pub mod tokens;
pub mod verify;
pub mod verify_remote;
pub mod witness;
