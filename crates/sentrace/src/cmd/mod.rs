//! Subcommands.

pub mod config;
pub mod loadgen;
pub mod proof;
pub mod query;
pub mod serve;
pub mod tokens;
pub mod verify;
