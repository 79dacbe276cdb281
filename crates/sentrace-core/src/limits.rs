//! Limits on ingested requests and the validation that enforces them.
//!
//! Every limit fails closed: a request that breaks one is refused whole, and the error names
//! the span (by its path in the request) and the field.

use serde::{Deserialize, Serialize};

use crate::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use crate::proto::trace::v1::{ResourceSpans, Span};
use crate::{SpanId, TraceId};

/// Limits applied to every ingest request, whatever its protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes, after decompression. Decompression stops here.
    pub max_request_bytes: usize,
    /// Most spans in one request.
    pub max_spans_per_request: usize,
    /// Most attributes on one span, event, link, resource or scope.
    pub max_attributes: usize,
    /// Most events on one span.
    pub max_events_per_span: usize,
    /// Most links on one span.
    pub max_links_per_span: usize,
    /// Longest attribute key, in bytes.
    pub max_key_bytes: usize,
    /// Longest string or bytes value, in bytes.
    pub max_value_bytes: usize,
    /// Longest span or event name, in bytes.
    pub max_name_bytes: usize,
    /// Most elements in one array or key-value list value.
    pub max_array_len: usize,
    /// Deepest nesting of array and key-value list values (a scalar is depth 1).
    pub max_value_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 8 * 1024 * 1024,
            max_spans_per_request: 20_000,
            max_attributes: 128,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_name_bytes: 1024,
            max_array_len: 1024,
            max_value_depth: 8,
        }
    }
}

/// A request broke a limit or carried an invalid field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct ValidationError {
    /// Where: `resource_spans[0].scope_spans[1].spans[3] (span "GET /x")` and a field path.
    pub location: String,
    /// What was wrong.
    pub reason: String,
}

struct Ctx<'a> {
    limits: &'a Limits,
    path: String,
}

impl Ctx<'_> {
    fn fail(&self, field: &str, reason: impl Into<String>) -> ValidationError {
        let location = if field.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{field}", self.path)
        };
        ValidationError {
            location,
            reason: reason.into(),
        }
    }

    fn attributes(&self, field: &str, attrs: &[KeyValue]) -> Result<(), ValidationError> {
        let l = self.limits;
        if attrs.len() > l.max_attributes {
            return Err(self.fail(
                field,
                format!("{} attributes, limit is {}", attrs.len(), l.max_attributes),
            ));
        }
        for (i, kv) in attrs.iter().enumerate() {
            let here = format!("{field}[{i}]");
            if kv.key.is_empty() {
                return Err(self.fail(&here, "attribute key is empty"));
            }
            if kv.key.len() > l.max_key_bytes {
                return Err(self.fail(
                    &here,
                    format!(
                        "attribute key longer than {} bytes ({} bytes)",
                        l.max_key_bytes,
                        kv.key.len()
                    ),
                ));
            }
            if let Some(v) = &kv.value {
                self.value(&format!("{here} ({:?})", truncate(&kv.key, 64)), v, 1)?;
            }
        }
        Ok(())
    }

    fn value(&self, field: &str, v: &AnyValue, depth: usize) -> Result<(), ValidationError> {
        let l = self.limits;
        if depth > l.max_value_depth {
            return Err(self.fail(
                field,
                format!("value nested deeper than {} levels", l.max_value_depth),
            ));
        }
        match &v.value {
            Some(Value::StringValue(s)) if s.len() > l.max_value_bytes => Err(self.fail(
                field,
                format!(
                    "string value longer than {} bytes ({} bytes)",
                    l.max_value_bytes,
                    s.len()
                ),
            )),
            Some(Value::BytesValue(b)) if b.len() > l.max_value_bytes => Err(self.fail(
                field,
                format!(
                    "bytes value longer than {} bytes ({} bytes)",
                    l.max_value_bytes,
                    b.len()
                ),
            )),
            Some(Value::StringValueStrindex(_)) => Err(self.fail(
                field,
                "string_value_strindex is only valid in profiles, not in traces",
            )),
            Some(Value::ArrayValue(a)) => {
                if a.values.len() > l.max_array_len {
                    return Err(self.fail(
                        field,
                        format!(
                            "array of {} values, limit is {}",
                            a.values.len(),
                            l.max_array_len
                        ),
                    ));
                }
                for (i, x) in a.values.iter().enumerate() {
                    self.value(&format!("{field}[{i}]"), x, depth + 1)?;
                }
                Ok(())
            }
            Some(Value::KvlistValue(kv)) => {
                if kv.values.len() > l.max_array_len {
                    return Err(self.fail(
                        field,
                        format!(
                            "key-value list of {} entries, limit is {}",
                            kv.values.len(),
                            l.max_array_len
                        ),
                    ));
                }
                for (i, x) in kv.values.iter().enumerate() {
                    if x.key.len() > l.max_key_bytes {
                        return Err(self.fail(
                            &format!("{field}[{i}]"),
                            format!("key longer than {} bytes", l.max_key_bytes),
                        ));
                    }
                    if let Some(inner) = &x.value {
                        self.value(&format!("{field}[{i}]"), inner, depth + 1)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn span(&self, span: &Span) -> Result<(), ValidationError> {
        let l = self.limits;
        TraceId::from_slice(&span.trace_id).map_err(|e| self.fail("trace_id", e.to_string()))?;
        SpanId::from_slice(&span.span_id).map_err(|e| self.fail("span_id", e.to_string()))?;
        if !span.parent_span_id.is_empty() {
            SpanId::from_slice(&span.parent_span_id)
                .map_err(|e| self.fail("parent_span_id", e.to_string()))?;
        }
        if span.name.len() > l.max_name_bytes {
            return Err(self.fail(
                "name",
                format!(
                    "span name longer than {} bytes ({} bytes)",
                    l.max_name_bytes,
                    span.name.len()
                ),
            ));
        }
        if span.start_time_unix_nano == 0 {
            return Err(self.fail("start_time_unix_nano", "start time is missing (zero)"));
        }
        if span.end_time_unix_nano < span.start_time_unix_nano {
            return Err(self.fail(
                "end_time_unix_nano",
                format!(
                    "end time {} is before start time {}",
                    span.end_time_unix_nano, span.start_time_unix_nano
                ),
            ));
        }
        self.attributes("attributes", &span.attributes)?;
        if span.events.len() > l.max_events_per_span {
            return Err(self.fail(
                "events",
                format!(
                    "{} events, limit is {}",
                    span.events.len(),
                    l.max_events_per_span
                ),
            ));
        }
        for (i, ev) in span.events.iter().enumerate() {
            if ev.name.len() > l.max_name_bytes {
                return Err(self.fail(
                    &format!("events[{i}].name"),
                    format!("event name longer than {} bytes", l.max_name_bytes),
                ));
            }
            self.attributes(&format!("events[{i}].attributes"), &ev.attributes)?;
        }
        if span.links.len() > l.max_links_per_span {
            return Err(self.fail(
                "links",
                format!(
                    "{} links, limit is {}",
                    span.links.len(),
                    l.max_links_per_span
                ),
            ));
        }
        for (i, link) in span.links.iter().enumerate() {
            TraceId::from_slice(&link.trace_id)
                .map_err(|e| self.fail(&format!("links[{i}].trace_id"), e.to_string()))?;
            SpanId::from_slice(&link.span_id)
                .map_err(|e| self.fail(&format!("links[{i}].span_id"), e.to_string()))?;
            self.attributes(&format!("links[{i}].attributes"), &link.attributes)?;
        }
        if let Some(status) = &span.status
            && status.message.len() > l.max_value_bytes
        {
            return Err(self.fail("status.message", "status message too long"));
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Limits {
    /// Checks a decoded request against every limit. Stops at the first violation.
    pub fn validate(&self, resource_spans: &[ResourceSpans]) -> Result<(), ValidationError> {
        let total: usize = resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        if total > self.max_spans_per_request {
            return Err(ValidationError {
                location: "request".into(),
                reason: format!(
                    "{total} spans, limit is {} per request",
                    self.max_spans_per_request
                ),
            });
        }
        for (r, rs) in resource_spans.iter().enumerate() {
            let ctx = Ctx {
                limits: self,
                path: format!("resource_spans[{r}]"),
            };
            if let Some(res) = &rs.resource {
                ctx.attributes("resource.attributes", &res.attributes)?;
            }
            for (s, ss) in rs.scope_spans.iter().enumerate() {
                let ctx = Ctx {
                    limits: self,
                    path: format!("resource_spans[{r}].scope_spans[{s}]"),
                };
                if let Some(scope) = &ss.scope {
                    ctx.attributes("scope.attributes", &scope.attributes)?;
                }
                for (i, span) in ss.spans.iter().enumerate() {
                    let ctx = Ctx {
                        limits: self,
                        path: format!(
                            "resource_spans[{r}].scope_spans[{s}].spans[{i}] (span {:?})",
                            truncate(&span.name, 64)
                        ),
                    };
                    ctx.span(span)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::common::v1::{ArrayValue, KeyValue};
    use crate::proto::trace::v1::ScopeSpans;

    fn span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /x".into(),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            ..Default::default()
        }
    }

    fn req(span: Span) -> Vec<ResourceSpans> {
        vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    fn err(s: Span) -> ValidationError {
        Limits::default().validate(&req(s)).unwrap_err()
    }

    #[test]
    fn accepts_good_span() {
        Limits::default().validate(&req(span())).unwrap();
    }

    #[test]
    fn names_span_and_field() {
        let mut s = span();
        s.trace_id = vec![0; 16];
        let e = err(s);
        assert_eq!(
            e.location,
            "resource_spans[0].scope_spans[0].spans[0] (span \"GET /x\").trace_id"
        );
        assert!(e.reason.contains("all zeros"));

        let mut s = span();
        s.end_time_unix_nano = 5;
        assert!(err(s).location.ends_with("end_time_unix_nano"));

        let mut s = span();
        s.attributes.push(KeyValue {
            key: "k".repeat(300),
            value: None,
            ..Default::default()
        });
        assert!(err(s).reason.contains("longer than 256"));
    }

    #[test]
    fn depth_limit() {
        let mut v = AnyValue {
            value: Some(Value::IntValue(1)),
        };
        for _ in 0..10 {
            v = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let mut s = span();
        s.attributes.push(KeyValue {
            key: "deep".into(),
            value: Some(v),
            ..Default::default()
        });
        assert!(err(s).reason.contains("nested deeper than 8"));
    }
}
