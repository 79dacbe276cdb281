//! Subcommands.

pub mod config;
pub mod query;
pub mod serve;
pub mod tokens;
