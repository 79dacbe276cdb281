//! Subcommands.

pub mod config;
pub mod loadgen;
pub mod query;
pub mod redact;
pub mod serve;
pub mod tokens;
pub mod verify;
