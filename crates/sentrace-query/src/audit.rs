//! Where the query service writes its audit records.
//!
//! Every read writes exactly one [`AuditRecord`] before its answer leaves the server. The
//! sink must make the record durable before its future resolves: a read whose record could
//! not be written fails (503), so there is never data without audit.

use std::future::Future;
use std::pin::Pin;

pub use sentrace_access::audit::{AuditRecord, BreakGlassUse, Outcome};

/// Why an audit record could not be written. The read that wanted it fails.
#[derive(Debug, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditError(pub String);

/// Where a record landed: its tenant's audit log and its index there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The log's origin line.
    pub origin: String,
    /// The record's index in that log.
    pub index: u64,
}

/// A future returned by [`AuditSink::record`].
pub type AuditFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AuditReceipt, AuditError>> + Send + 'a>>;

/// A durable, append-only destination for audit records.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends `record` to its tenant's audit log (the node's own log when it has no
    /// tenant) and resolves once it is durable.
    fn record(&self, record: AuditRecord) -> AuditFuture<'_>;
}
