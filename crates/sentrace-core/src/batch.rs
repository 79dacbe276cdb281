//! The unit of work of the ingest pipeline: one export request plus what is known about it.

use crate::Identity;
use crate::proto::trace::v1::ResourceSpans;

/// A signed source's claims about a batch (an edge agent's sequence number and signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source's stable name (its key name).
    pub source_id: String,
    /// Monotonic per-source sequence number.
    pub sequence: u64,
    /// When the source sent the batch, Unix nanoseconds.
    pub sent_at_unix_nanos: u64,
    /// The source's signature over the batch manifest, as received.
    pub signature: Vec<u8>,
}

/// What travels with a batch through the stages.
#[derive(Clone, Debug)]
pub struct BatchContext {
    /// The authenticated sender. The tenant comes from here and nowhere else.
    pub identity: Identity,
    /// When the server received the request, Unix nanoseconds.
    pub received_at_unix_nanos: u64,
    /// Claims of a signing source, if the request carried them.
    pub source: Option<SourceInfo>,
    /// SHA-256 of the minimization policy that was applied, set by the minimize stage.
    pub policy_digest: Option<[u8; 32]>,
    /// Spans removed from the batch by a stage (reported as OTLP partial success).
    pub rejected_spans: u64,
    /// Human-readable notes for the OTLP partial-success `error_message`.
    pub warnings: Vec<String>,
    /// Log index assigned by the seal stage, returned to the sender as a receipt.
    pub log_index: Option<u64>,
}

impl BatchContext {
    /// A context for a freshly received request.
    pub fn new(identity: Identity, received_at_unix_nanos: u64) -> Self {
        Self {
            identity,
            received_at_unix_nanos,
            source: None,
            policy_digest: None,
            rejected_spans: 0,
            warnings: Vec::new(),
            log_index: None,
        }
    }
}

/// One decoded OTLP export request and its context.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Who sent it and what the stages learned about it.
    pub context: BatchContext,
    /// The spans, grouped by resource and scope as in OTLP.
    pub resource_spans: Vec<ResourceSpans>,
}

impl Batch {
    /// Number of spans in the batch.
    pub fn span_count(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }
}
