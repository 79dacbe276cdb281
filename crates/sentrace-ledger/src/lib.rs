//! Sentrace integrity.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod checkpoint;
pub mod keys;
pub mod log;
pub mod manifest;
pub mod merkle;
pub mod note;
pub mod replay;
pub mod tiles;
pub mod verify;
pub mod witness;
