//! The encrypted write-ahead log: format, group-commit writer and replay.

pub mod format;
pub mod replay;
pub(crate) mod writer;
