//! The pipeline stage trait. Every ingest step (validate, detect, minimize, seal) is one
//! implementation of [`Stage`]; the server registers them in one place, in order.

use std::time::Duration;

use crate::Batch;

/// Why a stage refused a batch. Each variant maps to one OTLP/gRPC status and HTTP code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// The input is malformed or breaks a limit (gRPC `INVALID_ARGUMENT`, HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The sender may not do this (gRPC `PERMISSION_DENIED`, HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Try again later (gRPC `RESOURCE_EXHAUSTED`, HTTP 429 with `Retry-After`).
    #[error("{message}")]
    Exhausted {
        /// What is exhausted.
        message: String,
        /// When to retry.
        retry_after: Duration,
    },
    /// A server-side failure (gRPC `UNAVAILABLE`, HTTP 503). The message is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

/// One step of the ingest pipeline.
///
/// A stage sees each batch once, in the order the pipeline registers stages, and may modify
/// it in place. A stage never calls another stage.
pub trait Stage: Send + Sync + 'static {
    /// Short, stable name used in metrics and logs (`validate`, `minimize`, ...).
    fn name(&self) -> &'static str;

    /// Processes a batch in place, or refuses it whole.
    fn process(&self, batch: &mut Batch) -> Result<(), StageError>;
}
