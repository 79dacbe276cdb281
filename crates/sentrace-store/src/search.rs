//! Typed span filters.

use std::collections::HashSet;

use sentrace_core::TraceId;

use crate::SpanEntry;

/// A typed span search. All set conditions must hold. Attribute (tag) filters are applied
/// by the query layer on decoded canonical spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFilter {
    /// Earliest span start, Unix nanoseconds (inclusive).
    pub start_min_unix_nanos: Option<u64>,
    /// Latest span start, Unix nanoseconds (inclusive).
    pub start_max_unix_nanos: Option<u64>,
    /// Exact service name.
    pub service: Option<String>,
    /// Exact span name (operation).
    pub name: Option<String>,
    /// Smallest duration, nanoseconds (inclusive).
    pub min_duration_nanos: Option<u64>,
    /// Largest duration, nanoseconds (inclusive).
    pub max_duration_nanos: Option<u64>,
    /// Most distinct trace ids in the answer (newest first).
    pub limit_traces: usize,
}

impl Default for SpanFilter {
    fn default() -> Self {
        Self {
            start_min_unix_nanos: None,
            start_max_unix_nanos: None,
            service: None,
            name: None,
            min_duration_nanos: None,
            max_duration_nanos: None,
            limit_traces: 20,
        }
    }
}

impl SpanFilter {
    /// Whether one span matches.
    pub fn matches(&self, s: &SpanEntry) -> bool {
        let d = s.duration_nanos();
        self.start_min_unix_nanos
            .is_none_or(|v| s.start_unix_nanos >= v)
            && self
                .start_max_unix_nanos
                .is_none_or(|v| s.start_unix_nanos <= v)
            && self.service.as_ref().is_none_or(|v| &s.service == v)
            && self.name.as_ref().is_none_or(|v| &s.name == v)
            && self.min_duration_nanos.is_none_or(|v| d >= v)
            && self.max_duration_nanos.is_none_or(|v| d <= v)
    }

    /// Whether spans starting in `[min, max]` could match the time bounds.
    pub(crate) fn start_range_overlaps(&self, min: u64, max: u64) -> bool {
        self.start_min_unix_nanos.is_none_or(|v| max >= v)
            && self.start_max_unix_nanos.is_none_or(|v| min <= v)
    }
}

/// Sorts newest first and keeps the spans of the first `limit` distinct traces.
pub(crate) fn limit_newest(mut spans: Vec<SpanEntry>, limit: usize) -> Vec<SpanEntry> {
    spans.sort_by(|a, b| {
        b.start_unix_nanos
            .cmp(&a.start_unix_nanos)
            .then(a.trace_id.cmp(&b.trace_id))
            .then(a.span_id.cmp(&b.span_id))
    });
    spans.dedup_by(|a, b| {
        a.trace_id == b.trace_id
            && a.span_id == b.span_id
            && a.start_unix_nanos == b.start_unix_nanos
    });
    let mut traces: HashSet<TraceId> = HashSet::new();
    spans.retain(|s| {
        if traces.contains(&s.trace_id) {
            true
        } else if traces.len() < limit {
            traces.insert(s.trace_id);
            true
        } else {
            false
        }
    });
    spans
}
