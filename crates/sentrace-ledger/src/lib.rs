//! Sentrace integrity.
#![forbid(unsafe_code)]

pub mod merkle;
