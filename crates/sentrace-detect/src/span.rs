//! A flat view of one OTLP span with the fields the detectors read.

use sentrace_core::otlp::{attr_str, service_name};
use sentrace_core::proto::common::v1::{KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::{ResourceSpans, Span, span::SpanKind};
use sentrace_core::{SpanId, TraceId};

use crate::finding::Subject;

/// One span and its resource's service name.
#[derive(Clone, Copy, Debug)]
pub struct SpanRef<'a> {
    /// `service.name` of the resource.
    pub service: &'a str,
    /// The span.
    pub span: &'a Span,
}

impl<'a> SpanRef<'a> {
    /// Valid trace id, if any.
    pub fn trace_id(&self) -> Option<TraceId> {
        TraceId::from_slice(&self.span.trace_id).ok()
    }

    /// Valid span id, if any.
    pub fn span_id(&self) -> Option<SpanId> {
        SpanId::from_slice(&self.span.span_id).ok()
    }

    /// Valid parent span id, if any.
    pub fn parent_id(&self) -> Option<SpanId> {
        SpanId::from_slice(&self.span.parent_span_id).ok()
    }

    /// Span kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    /// String attribute.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        attr_str(&self.span.attributes, key)
    }

    /// Integer attribute (also accepts numeric strings).
    pub fn int(&self, key: &str) -> Option<i64> {
        let kv = self.span.attributes.iter().find(|kv| kv.key == key)?;
        match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            Value::DoubleValue(d) if d.is_finite() => Some(*d as i64),
            Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The attributes.
    pub fn attrs(&self) -> &'a [KeyValue] {
        &self.span.attributes
    }

    /// Whether the span receives a request (server or consumer side).
    pub fn is_entry(&self) -> bool {
        match self.kind() {
            SpanKind::Server | SpanKind::Consumer => true,
            SpanKind::Client | SpanKind::Producer => false,
            _ => {
                self.str("http.request.method").is_some()
                    && (self.str("url.path").is_some() || self.str("http.target").is_some())
            }
        }
    }

    /// HTTP status code of the response.
    pub fn status(&self) -> Option<i64> {
        self.int("http.response.status_code")
            .or_else(|| self.int("http.status_code"))
    }

    /// The route (`http.route`, else `url.path`, else `http.target` without query).
    pub fn route(&self) -> Option<&'a str> {
        self.str("http.route")
            .or_else(|| self.str("url.path"))
            .or_else(|| {
                self.str("http.target")
                    .map(|t| t.split('?').next().unwrap_or(t))
            })
    }

    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.span
            .end_time_unix_nano
            .saturating_sub(self.span.start_time_unix_nano)
    }

    /// Who sent the request.
    pub fn subject(&self) -> Subject {
        Subject {
            client_address: self
                .str("client.address")
                .or_else(|| self.str("source.address"))
                .or_else(|| self.str("net.sock.peer.addr"))
                .or_else(|| self.str("http.client_ip"))
                .map(str::to_string),
            user: self
                .str("enduser.id")
                .or_else(|| self.str("user.id"))
                .or_else(|| self.str("user.name"))
                .map(str::to_string),
            principal: None,
        }
    }
}

/// Iterates over every span of a batch.
pub fn spans(rs: &[ResourceSpans]) -> impl Iterator<Item = SpanRef<'_>> {
    rs.iter().flat_map(|r| {
        let service = service_name(r.resource.as_ref());
        r.scope_spans
            .iter()
            .flat_map(|ss| ss.spans.iter())
            .map(move |span| SpanRef { service, span })
    })
}
