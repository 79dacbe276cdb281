//! Sentrace query model.
//!
//! Turns stored canonical spans into the answer shapes clients expect (Jaeger's JSON, OTLP/JSON)
//! and parses search parameters into typed filters. Queries are typed values, never strings
//! pasted together.
#![forbid(unsafe_code)]

pub mod audit;
pub mod jaeger;
pub mod mask;
pub mod search;
pub mod service;
pub mod tempo;
pub mod traceql;
pub mod unseal;

pub use mask::{HIDDEN, MaskOutcome, PLACEHOLDER_ATTRIBUTE, mask_sensitive, placeholder};
pub use search::{SearchError, SearchParams, TagFilter};

use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A decoded stored span with the resource and scope it came with.
#[derive(Clone, Debug)]
pub struct SpanView {
    /// The resource the span was sent with (one span, one scope inside).
    pub rs: ResourceSpans,
}

impl SpanView {
    /// Wraps a decoded canonical span (see `sentrace_core::canonical::decode`).
    pub fn new(rs: ResourceSpans) -> Option<Self> {
        let ok = rs.scope_spans.len() == 1 && rs.scope_spans[0].spans.len() == 1;
        ok.then_some(Self { rs })
    }

    /// The span.
    pub fn span(&self) -> &Span {
        &self.rs.scope_spans[0].spans[0]
    }

    /// The scope wrapper.
    pub fn scope(&self) -> &ScopeSpans {
        &self.rs.scope_spans[0]
    }

    /// `service.name` of the resource.
    pub fn service(&self) -> &str {
        sentrace_core::otlp::service_name(self.rs.resource.as_ref())
    }
}

/// Regroups single-span views into an OTLP `ResourceSpans` list: spans that share a resource
/// and scope are put back together, in first-seen order.
pub fn regroup(views: Vec<SpanView>) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    for view in views {
        let mut rs = view.rs;
        let Some(mut ss) = rs.scope_spans.pop() else {
            continue;
        };
        let target = out
            .iter_mut()
            .find(|o| o.resource == rs.resource && o.schema_url == rs.schema_url);
        match target {
            Some(o) => match o
                .scope_spans
                .iter_mut()
                .find(|s| s.scope == ss.scope && s.schema_url == ss.schema_url)
            {
                Some(s) => s.spans.append(&mut ss.spans),
                None => o.scope_spans.push(ss),
            },
            None => {
                rs.scope_spans = vec![ss];
                out.push(rs);
            }
        }
    }
    out
}

/// Splits OTLP `ResourceSpans` into single-span views (the inverse of [`regroup`]).
pub fn split(resource_spans: Vec<ResourceSpans>) -> Vec<SpanView> {
    let mut out = Vec::new();
    for rs in resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let one = ResourceSpans {
                    resource: rs.resource.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: ss.scope.clone(),
                        spans: vec![span.clone()],
                        schema_url: ss.schema_url.clone(),
                    }],
                    schema_url: rs.schema_url.clone(),
                };
                out.extend(SpanView::new(one));
            }
        }
    }
    out
}
