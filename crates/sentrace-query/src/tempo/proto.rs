//! The protobuf answers of Tempo's trace-by-id endpoints (`Accept: application/protobuf`),
//! with the field numbers of Tempo's `pkg/tempopb/tempo.proto`. The OTLP messages inside
//! are wire-compatible with Tempo's copy of the OTLP protos.

use sentrace_core::proto::trace::v1::ResourceSpans;

/// `tempopb.Trace`: the v1 answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Trace {
    /// `resourceSpans = 1` (called `batches` in Tempo's v1 JSON).
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `tempopb.TraceByIDMetrics`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdMetrics {
    /// `inspectedBytes = 1`.
    #[prost(uint64, tag = "1")]
    pub inspected_bytes: u64,
}

/// `tempopb.TraceByIDResponse`: the v2 answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    /// `trace = 1`.
    #[prost(message, optional, tag = "1")]
    pub trace: Option<Trace>,
    /// `metrics = 2`.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<TraceByIdMetrics>,
    /// `status = 3` (`PartialStatus`: 0 complete, 1 partial).
    #[prost(int32, tag = "3")]
    pub status: i32,
    /// `message = 4`.
    #[prost(string, tag = "4")]
    pub message: String,
}
