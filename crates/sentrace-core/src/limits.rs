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
    /// How far past the server's clock a span's (or event's) timestamp may be, in seconds.
    /// Clocks drift, but a span from the far future would keep its whole block past
    /// retention and break readers (2^64 ns is beyond JavaScript's safe integers).
    pub max_future_skew_secs: u64,
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
            max_future_skew_secs: 6 * 3600,
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

/// Where a check is, rendered only when it fails: the success path formats nothing.
#[derive(Clone, Copy)]
struct Loc<'a> {
    resource: usize,
    scope: Option<usize>,
    span: Option<(usize, &'a str)>,
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "resource_spans[{}]", self.resource)?;
        if let Some(s) = self.scope {
            write!(f, ".scope_spans[{s}]")?;
        }
        if let Some((i, name)) = self.span {
            write!(f, ".spans[{i}] (span {:?})", truncate(name, 64))?;
        }
        Ok(())
    }
}

/// A field path below a [`Loc`], such as `events[2].attributes[0] ("k")[1]`, built on the
/// stack as the walk descends and rendered only for an error.
#[derive(Clone, Copy)]
enum Field<'a> {
    /// A named field.
    Name(&'static str),
    /// `parent.name`.
    Child(&'a Field<'a>, &'static str),
    /// `parent[i]`.
    Index(&'a Field<'a>, usize),
    /// `parent[i] ("key")`: an attribute, named by its key.
    Attr(&'a Field<'a>, usize, &'a str),
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Name(n) => f.write_str(n),
            Field::Child(p, n) => write!(f, "{p}.{n}"),
            Field::Index(p, i) => write!(f, "{p}[{i}]"),
            Field::Attr(p, i, k) => write!(f, "{p}[{i}] ({:?})", truncate(k, 64)),
        }
    }
}

struct Ctx<'a> {
    limits: &'a Limits,
    loc: Loc<'a>,
    /// The latest timestamp accepted (now plus the allowed skew), Unix nanoseconds.
    latest: u64,
}

impl Ctx<'_> {
    #[cold]
    fn fail(&self, field: &Field<'_>, reason: impl Into<String>) -> ValidationError {
        ValidationError {
            location: format!("{}.{field}", self.loc),
            reason: reason.into(),
        }
    }

    #[cold]
    fn future(&self, t: u64) -> String {
        format!(
            "timestamp {t} is more than {} s past the server's clock (limit max_future_skew_secs)",
            self.limits.max_future_skew_secs
        )
    }

    fn attributes(&self, field: &Field<'_>, attrs: &[KeyValue]) -> Result<(), ValidationError> {
        let l = self.limits;
        if attrs.len() > l.max_attributes {
            return Err(self.fail(
                field,
                format!("{} attributes, limit is {}", attrs.len(), l.max_attributes),
            ));
        }
        for (i, kv) in attrs.iter().enumerate() {
            if kv.key.is_empty() {
                return Err(self.fail(&Field::Index(field, i), "attribute key is empty"));
            }
            if kv.key.len() > l.max_key_bytes {
                return Err(self.fail(
                    &Field::Index(field, i),
                    format!(
                        "attribute key longer than {} bytes ({} bytes)",
                        l.max_key_bytes,
                        kv.key.len()
                    ),
                ));
            }
            if let Some(v) = &kv.value {
                self.value(&Field::Attr(field, i, &kv.key), v, 1)?;
            }
        }
        Ok(())
    }

    fn value(&self, field: &Field<'_>, v: &AnyValue, depth: usize) -> Result<(), ValidationError> {
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
                    self.value(&Field::Index(field, i), x, depth + 1)?;
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
                            &Field::Index(field, i),
                            format!("key longer than {} bytes", l.max_key_bytes),
                        ));
                    }
                    if let Some(inner) = &x.value {
                        self.value(&Field::Index(field, i), inner, depth + 1)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn span(&self, span: &Span) -> Result<(), ValidationError> {
        let l = self.limits;
        let named = |n: &'static str| Field::Name(n);
        TraceId::from_slice(&span.trace_id)
            .map_err(|e| self.fail(&named("trace_id"), e.to_string()))?;
        SpanId::from_slice(&span.span_id)
            .map_err(|e| self.fail(&named("span_id"), e.to_string()))?;
        if !span.parent_span_id.is_empty() {
            SpanId::from_slice(&span.parent_span_id)
                .map_err(|e| self.fail(&named("parent_span_id"), e.to_string()))?;
        }
        if span.name.len() > l.max_name_bytes {
            return Err(self.fail(
                &named("name"),
                format!(
                    "span name longer than {} bytes ({} bytes)",
                    l.max_name_bytes,
                    span.name.len()
                ),
            ));
        }
        if span.start_time_unix_nano == 0 {
            return Err(self.fail(
                &named("start_time_unix_nano"),
                "start time is missing (zero)",
            ));
        }
        for (field, t) in [
            ("start_time_unix_nano", span.start_time_unix_nano),
            ("end_time_unix_nano", span.end_time_unix_nano),
        ] {
            if t > self.latest {
                return Err(self.fail(&named(field), self.future(t)));
            }
        }
        if span.end_time_unix_nano < span.start_time_unix_nano {
            return Err(self.fail(
                &named("end_time_unix_nano"),
                format!(
                    "end time {} is before start time {}",
                    span.end_time_unix_nano, span.start_time_unix_nano
                ),
            ));
        }
        self.attributes(&named("attributes"), &span.attributes)?;
        if span.events.len() > l.max_events_per_span {
            return Err(self.fail(
                &named("events"),
                format!(
                    "{} events, limit is {}",
                    span.events.len(),
                    l.max_events_per_span
                ),
            ));
        }
        let events = named("events");
        for (i, ev) in span.events.iter().enumerate() {
            let event = Field::Index(&events, i);
            if ev.name.len() > l.max_name_bytes {
                return Err(self.fail(
                    &Field::Child(&event, "name"),
                    format!("event name longer than {} bytes", l.max_name_bytes),
                ));
            }
            if ev.time_unix_nano > self.latest {
                return Err(self.fail(
                    &Field::Child(&event, "time_unix_nano"),
                    self.future(ev.time_unix_nano),
                ));
            }
            self.attributes(&Field::Child(&event, "attributes"), &ev.attributes)?;
        }
        if span.links.len() > l.max_links_per_span {
            return Err(self.fail(
                &named("links"),
                format!(
                    "{} links, limit is {}",
                    span.links.len(),
                    l.max_links_per_span
                ),
            ));
        }
        let links = named("links");
        for (i, link) in span.links.iter().enumerate() {
            let at = Field::Index(&links, i);
            TraceId::from_slice(&link.trace_id)
                .map_err(|e| self.fail(&Field::Child(&at, "trace_id"), e.to_string()))?;
            SpanId::from_slice(&link.span_id)
                .map_err(|e| self.fail(&Field::Child(&at, "span_id"), e.to_string()))?;
            self.attributes(&Field::Child(&at, "attributes"), &link.attributes)?;
        }
        if let Some(status) = &span.status
            && status.message.len() > l.max_value_bytes
        {
            return Err(self.fail(&named("status.message"), "status message too long"));
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

/// How many times `max_request_bytes` the copies of resources and scopes in a request's
/// stored spans may come to (see [`Limits::validate`]).
pub const STORED_COPIES_FACTOR: u64 = 16;

impl Limits {
    /// Each span is stored with a copy of its resource and scope (its canonical encoding),
    /// so a request within `max_request_bytes` can still multiply: a resource of a few MiB
    /// shared by 20,000 tiny spans would be tens of GiB once stored. The copies may come to
    /// at most [`STORED_COPIES_FACTOR`] times `max_request_bytes` (128 MiB at the default
    /// 8 MiB; an ordinary batch of 200 spans with a 1 KiB resource makes 200 KiB).
    fn stored_copies(&self, resource_spans: &[ResourceSpans]) -> Result<(), ValidationError> {
        use prost::Message;
        let cap = (self.max_request_bytes as u64).saturating_mul(STORED_COPIES_FACTOR);
        let mut copies = 0u64;
        for rs in resource_spans {
            let resource = rs.resource.as_ref().map_or(0, Message::encoded_len) as u64;
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref().map_or(0, Message::encoded_len) as u64;
                let n = ss.spans.len() as u64;
                copies = copies.saturating_add(resource.saturating_add(scope).saturating_mul(n));
            }
        }
        if copies > cap {
            return Err(ValidationError {
                location: "request".into(),
                reason: format!(
                    "each span is stored with a copy of its resource and scope, and those \
                     copies come to {copies} bytes for this request; the limit is {cap} \
                     ({STORED_COPIES_FACTOR} times max_request_bytes): send fewer spans per \
                     request, or fewer and shorter resource attributes"
                ),
            });
        }
        Ok(())
    }

    /// Checks a decoded request against every limit, with `now_unix_nanos` the server's
    /// clock for the future-skew bound. Stops at the first violation.
    pub fn validate(
        &self,
        resource_spans: &[ResourceSpans],
        now_unix_nanos: u64,
    ) -> Result<(), ValidationError> {
        let latest =
            now_unix_nanos.saturating_add(self.max_future_skew_secs.saturating_mul(1_000_000_000));
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
        self.stored_copies(resource_spans)?;
        for (r, rs) in resource_spans.iter().enumerate() {
            let mut loc = Loc {
                resource: r,
                scope: None,
                span: None,
            };
            if let Some(res) = &rs.resource {
                Ctx {
                    limits: self,
                    loc,
                    latest,
                }
                .attributes(&Field::Name("resource.attributes"), &res.attributes)?;
            }
            for (s, ss) in rs.scope_spans.iter().enumerate() {
                loc.scope = Some(s);
                loc.span = None;
                if let Some(scope) = &ss.scope {
                    Ctx {
                        limits: self,
                        loc,
                        latest,
                    }
                    .attributes(&Field::Name("scope.attributes"), &scope.attributes)?;
                }
                for (i, span) in ss.spans.iter().enumerate() {
                    loc.span = Some((i, span.name.as_str()));
                    Ctx {
                        limits: self,
                        loc,
                        latest,
                    }
                    .span(span)?;
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

    /// The server's clock in these tests.
    const NOW: u64 = 1_700_000_000_000_000_000;

    fn err(s: Span) -> ValidationError {
        Limits::default().validate(&req(s), NOW).unwrap_err()
    }

    #[test]
    fn accepts_good_span() {
        Limits::default().validate(&req(span()), NOW).unwrap();
    }

    /// A large resource shared by many small spans multiplies once each span is stored with
    /// a copy of it: refused before any stage runs, with what to change. The same resource
    /// with fewer spans passes.
    #[test]
    fn refuses_a_resource_multiplied_past_the_stored_copies_limit() {
        use crate::proto::common::v1::{AnyValue, any_value};
        use crate::proto::resource::v1::Resource;
        let limits = Limits {
            max_request_bytes: 1 << 20,
            ..Limits::default()
        };
        let request = |spans: usize| {
            let mut rs = req(span());
            rs[0].resource = Some(Resource {
                attributes: (0..4)
                    .map(|i| KeyValue {
                        key: format!("r{i}"),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("x".repeat(60_000))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            });
            rs[0].scope_spans[0].spans = vec![span(); spans];
            rs
        };
        // About 240 KB of resource: 80 spans are about 19 MB of copies, over 16 MiB.
        let e = limits.validate(&request(80), NOW).unwrap_err();
        assert_eq!(e.location, "request");
        assert!(
            e.reason.contains("copy of its resource") && e.reason.contains("fewer spans"),
            "{}",
            e.reason
        );
        limits.validate(&request(40), NOW).unwrap();
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

    /// Field paths are rendered lazily; this pins every shape of them.
    #[test]
    fn field_paths() {
        use crate::proto::common::v1::{InstrumentationScope, KeyValueList};
        use crate::proto::resource::v1::Resource;
        use crate::proto::trace::v1::span::{Event, Link};
        let long = |n: usize| AnyValue {
            value: Some(Value::StringValue("x".repeat(n))),
        };
        let kv = |k: &str, v: AnyValue| KeyValue {
            key: k.into(),
            value: Some(v),
            ..Default::default()
        };
        let big = Limits::default().max_value_bytes + 1;

        let mut s = span();
        s.events = vec![
            Event::default(),
            Event {
                name: "e".into(),
                attributes: vec![
                    kv("ok", long(1)),
                    kv(
                        "list",
                        AnyValue {
                            value: Some(Value::ArrayValue(ArrayValue {
                                values: vec![long(1), long(big)],
                            })),
                        },
                    ),
                ],
                ..Default::default()
            },
        ];
        assert_eq!(
            err(s).location,
            "resource_spans[0].scope_spans[0].spans[0] (span \"GET /x\").events[1].attributes[1] (\"list\")[1]"
        );

        let mut s = span();
        s.links = vec![Link {
            trace_id: vec![1; 16],
            span_id: vec![0; 3],
            ..Default::default()
        }];
        assert!(err(s).location.ends_with(".links[0].span_id"));

        let mut s = span();
        s.attributes = vec![kv(
            "m",
            AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("a", long(1)), kv("b", long(big))],
                })),
            },
        )];
        assert!(err(s).location.ends_with(".attributes[0] (\"m\")[1]"));

        let mut r = req(span());
        r[0].resource = Some(Resource {
            attributes: vec![kv("", long(1))],
            ..Default::default()
        });
        let e = Limits::default().validate(&r, NOW).unwrap_err();
        assert_eq!(e.location, "resource_spans[0].resource.attributes[0]");
        assert_eq!(e.reason, "attribute key is empty");

        let mut r = req(span());
        r[0].scope_spans[0].scope = Some(InstrumentationScope {
            attributes: vec![kv("s", long(big))],
            ..Default::default()
        });
        let e = Limits::default().validate(&r, NOW).unwrap_err();
        assert_eq!(
            e.location,
            "resource_spans[0].scope_spans[0].scope.attributes[0] (\"s\")"
        );
    }

    #[test]
    fn timestamps_past_the_allowed_skew_are_refused() {
        let skew = Limits::default().max_future_skew_secs * 1_000_000_000;
        let mut s = span();
        s.start_time_unix_nano = NOW + skew;
        s.end_time_unix_nano = NOW + skew;
        Limits::default().validate(&req(s.clone()), NOW).unwrap();
        s.end_time_unix_nano = u64::MAX;
        let e = err(s.clone());
        assert!(
            e.location.ends_with("(span \"GET /x\").end_time_unix_nano"),
            "{e}"
        );
        assert!(e.reason.contains("max_future_skew_secs"), "{e}");
        s.start_time_unix_nano = NOW + skew + 1;
        assert!(err(s).location.ends_with("start_time_unix_nano"));
        let mut s = span();
        s.events = vec![crate::proto::trace::v1::span::Event {
            time_unix_nano: u64::MAX - 1,
            ..Default::default()
        }];
        assert!(err(s).location.ends_with(".events[0].time_unix_nano"));
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
