//! The Jaeger query API's JSON model (what Jaeger UI and Grafana's Jaeger data source read)
//! and the conversion from OTLP spans, following Jaeger's OTLP translator: parent → `CHILD_OF`,
//! links → `FOLLOWS_FROM`, events → logs with an `event` field, status → `otel.status_code`,
//! `otel.status_description` and `error=true`, kind → `span.kind`, scope →
//! `otel.scope.name`/`otel.scope.version`.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde::Serialize;
use serde_json::Value as Json;

use sentrace_core::otlp::value_to_string;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::{span::SpanKind, status::StatusCode};

use crate::SpanView;

/// Jaeger's response envelope.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    /// The payload.
    pub data: T,
    /// Number of items (Jaeger sets it for lists).
    pub total: usize,
    /// Echo of the limit.
    pub limit: usize,
    /// Echo of the offset.
    pub offset: usize,
    /// Structured errors, or null.
    pub errors: Option<Vec<ApiError>>,
}

impl<T: Serialize> Envelope<T> {
    /// Wraps data with `total` set.
    pub fn new(data: T, total: usize) -> Self {
        Self {
            data,
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

/// One error in Jaeger's shape: `{"code": 400, "msg": ...}` for a failed request, or
/// `{"msg": "trace not found", "traceID": ...}` for one id of a by-id search.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// HTTP status code; left out when zero, as Jaeger leaves it out of per-trace errors.
    #[serde(skip_serializing_if = "is_zero")]
    pub code: u16,
    /// What went wrong.
    pub msg: String,
    /// The trace the error is about.
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

fn is_zero(c: &u16) -> bool {
    *c == 0
}

/// A key/typed value pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// `string`, `bool`, `int64`, `float64` or `binary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value, typed as `kind` says.
    pub value: Json,
}

/// A span reference.
#[derive(Debug, Serialize)]
pub struct Reference {
    /// `CHILD_OF` or `FOLLOWS_FROM`.
    #[serde(rename = "refType")]
    pub ref_type: &'static str,
    /// Hex trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Hex span id.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A span log (OTLP event).
#[derive(Debug, Serialize)]
pub struct Log {
    /// Microseconds since the epoch.
    pub timestamp: u64,
    /// `event` = name, then the attributes.
    pub fields: Vec<Tag>,
}

/// A Jaeger span.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JSpan {
    /// Hex trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Hex span id.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// W3C trace flags.
    pub flags: u32,
    /// The span name.
    pub operation_name: String,
    /// Parent and links.
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    /// Attributes plus translated fields.
    pub tags: Vec<Tag>,
    /// Events.
    pub logs: Vec<Log>,
    /// Key into the trace's `processes`.
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always null.
    pub warnings: Option<Vec<String>>,
}

/// A process (the resource).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `service.name`.
    pub service_name: String,
    /// The other resource attributes.
    pub tags: Vec<Tag>,
}

/// A Jaeger trace.
#[derive(Debug, Serialize)]
pub struct JTrace {
    /// Hex trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Its spans.
    pub spans: Vec<JSpan>,
    /// Processes by id (`p1`, `p2`, ...).
    pub processes: BTreeMap<String, Process>,
    /// Always null.
    pub warnings: Option<Vec<String>>,
}

/// A service dependency edge.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Calling service.
    pub parent: String,
    /// Called service.
    pub child: String,
    /// Number of calls seen.
    pub call_count: u64,
}

/// An operation of a service.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The span name.
    pub name: String,
    /// `server`, `client`, ... or empty.
    pub span_kind: &'static str,
}

/// The span kind names [`kind_name`] gives, which `spanKind` parameters may name.
pub const SPAN_KINDS: [&str; 5] = ["server", "client", "producer", "consumer", "internal"];

/// Jaeger's name for an OTLP span kind.
pub fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "",
    }
}

fn tag(key: impl Into<String>, v: &AnyValue) -> Tag {
    let key = key.into();
    match &v.value {
        Some(Value::StringValue(s)) => Tag {
            key,
            kind: "string",
            value: Json::String(s.clone()),
        },
        Some(Value::BoolValue(b)) => Tag {
            key,
            kind: "bool",
            value: Json::Bool(*b),
        },
        Some(Value::IntValue(i)) => Tag {
            key,
            kind: "int64",
            value: Json::from(*i),
        },
        Some(Value::DoubleValue(d)) => Tag {
            key,
            kind: "float64",
            value: serde_json::Number::from_f64(*d)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(d.to_string())),
        },
        Some(Value::BytesValue(b)) => Tag {
            key,
            kind: "binary",
            value: Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        },
        _ => Tag {
            key,
            kind: "string",
            value: Json::String(value_to_string(v)),
        },
    }
}

fn str_tag(key: &str, value: impl Into<String>) -> Tag {
    Tag {
        key: key.to_string(),
        kind: "string",
        value: Json::String(value.into()),
    }
}

fn tags_of(attrs: &[KeyValue]) -> impl Iterator<Item = Tag> + '_ {
    attrs
        .iter()
        .filter_map(|kv| kv.value.as_ref().map(|v| tag(kv.key.clone(), v)))
}

fn micros(nanos: u64) -> u64 {
    nanos / 1_000
}

/// Converts spans (any order, any traces) into Jaeger traces, one per trace id, spans sorted
/// by start time, traces in first-seen order.
pub fn to_traces(views: &[SpanView]) -> Vec<JTrace> {
    let mut order: Vec<String> = Vec::new();
    let mut by_trace: HashMap<String, Vec<&SpanView>> = HashMap::new();
    for v in views {
        let id = hex::encode(&v.span().trace_id);
        by_trace
            .entry(id.clone())
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(v);
    }
    order
        .into_iter()
        .filter_map(|id| by_trace.remove(&id).map(|spans| to_trace(id, spans)))
        .collect()
}

fn to_trace(trace_id: String, mut views: Vec<&SpanView>) -> JTrace {
    views.sort_by_key(|v| v.span().start_time_unix_nano);
    let mut processes: BTreeMap<String, Process> = BTreeMap::new();
    let mut spans = Vec::with_capacity(views.len());
    for v in views {
        let process = Process {
            service_name: v.service().to_string(),
            tags: v
                .rs
                .resource
                .as_ref()
                .map(|r| {
                    tags_of(&r.attributes)
                        .filter(|t| t.key != "service.name")
                        .collect()
                })
                .unwrap_or_default(),
        };
        let pid = match processes.iter().find(|(_, p)| **p == process) {
            Some((k, _)) => k.clone(),
            None => {
                let k = format!("p{}", processes.len() + 1);
                processes.insert(k.clone(), process);
                k
            }
        };
        spans.push(to_span(v, pid));
    }
    JTrace {
        trace_id,
        spans,
        processes,
        warnings: None,
    }
}

fn to_span(v: &SpanView, process_id: String) -> JSpan {
    let s = v.span();
    let trace_id = hex::encode(&s.trace_id);
    let mut references = Vec::new();
    if !s.parent_span_id.is_empty() {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.clone(),
            span_id: hex::encode(&s.parent_span_id),
        });
    }
    for l in &s.links {
        references.push(Reference {
            ref_type: "FOLLOWS_FROM",
            trace_id: hex::encode(&l.trace_id),
            span_id: hex::encode(&l.span_id),
        });
    }
    let mut tags: Vec<Tag> = tags_of(&s.attributes).collect();
    let kind = kind_name(s.kind);
    if !kind.is_empty() {
        tags.push(str_tag("span.kind", kind));
    }
    if let Some(scope) = &v.scope().scope {
        if !scope.name.is_empty() {
            tags.push(str_tag("otel.scope.name", scope.name.clone()));
        }
        if !scope.version.is_empty() {
            tags.push(str_tag("otel.scope.version", scope.version.clone()));
        }
    }
    if let Some(status) = &s.status {
        match StatusCode::try_from(status.code) {
            Ok(StatusCode::Ok) => tags.push(str_tag("otel.status_code", "OK")),
            Ok(StatusCode::Error) => {
                tags.push(str_tag("otel.status_code", "ERROR"));
                tags.push(Tag {
                    key: "error".into(),
                    kind: "bool",
                    value: Json::Bool(true),
                });
            }
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(str_tag("otel.status_description", status.message.clone()));
        }
    }
    if !s.trace_state.is_empty() {
        tags.push(str_tag("w3c.tracestate", s.trace_state.clone()));
    }
    let logs = s
        .events
        .iter()
        .map(|e| {
            let mut fields = vec![str_tag("event", e.name.clone())];
            fields.extend(tags_of(&e.attributes));
            Log {
                timestamp: micros(e.time_unix_nano),
                fields,
            }
        })
        .collect();
    JSpan {
        trace_id,
        span_id: hex::encode(&s.span_id),
        flags: s.flags & 0xff,
        operation_name: s.name.clone(),
        references,
        start_time: micros(s.start_time_unix_nano),
        duration: micros(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)),
        tags,
        logs,
        process_id,
        warnings: None,
    }
}

/// Service-to-service call counts: a span whose parent belongs to another service.
pub fn dependencies(views: &[SpanView]) -> Vec<Dependency> {
    let mut service_of: HashMap<(&[u8], &[u8]), &str> = HashMap::new();
    for v in views {
        service_of.insert((&v.span().trace_id, &v.span().span_id), v.service());
    }
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for v in views {
        let s = v.span();
        if s.parent_span_id.is_empty() {
            continue;
        }
        if let Some(parent) = service_of.get(&(s.trace_id.as_slice(), s.parent_span_id.as_slice()))
            && *parent != v.service()
        {
            *counts
                .entry((parent.to_string(), v.service().to_string()))
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((parent, child), call_count)| Dependency {
            parent,
            child,
            call_count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::proto::common::v1::InstrumentationScope;
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

    fn s(v: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: s(v),
            ..Default::default()
        }
    }

    fn view(service: &str, span: Span) -> SpanView {
        SpanView::new(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue(service.into())),
                    kv("host.name", Value::StringValue("h1".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .unwrap()
    }

    #[test]
    fn converts_like_jaeger() {
        let root = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            name: "GET /".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_002_500_000,
            attributes: vec![
                kv("i", Value::IntValue(7)),
                kv("b", Value::BoolValue(true)),
                kv("d", Value::DoubleValue(1.5)),
            ],
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            events: vec![span::Event {
                name: "exception".into(),
                time_unix_nano: 1_001_000_000,
                attributes: vec![kv("x", Value::StringValue("y".into()))],
                ..Default::default()
            }],
            links: vec![span::Link {
                trace_id: vec![0xcd; 16],
                span_id: vec![9; 8],
                ..Default::default()
            }],
            ..Default::default()
        };
        let child = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![1; 8],
            name: "SELECT".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: 1_001_000_000,
            end_time_unix_nano: 1_001_000_000,
            ..Default::default()
        };
        let views = vec![view("db", child), view("web", root)];
        let traces = to_traces(&views);
        assert_eq!(traces.len(), 1);
        let t = &traces[0];
        assert_eq!(t.trace_id, "ab".repeat(16));
        assert_eq!(t.spans[0].operation_name, "GET /");
        assert_eq!(t.spans[0].duration, 2500);
        assert_eq!(t.spans[0].start_time, 1_000_000);
        let j = serde_json::to_value(t).unwrap();
        let tags = &j["spans"][0]["tags"];
        let find = |k: &str| {
            tags.as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == k)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("i")["type"], "int64");
        assert_eq!(find("i")["value"], 7);
        assert_eq!(find("d")["value"], 1.5);
        assert_eq!(find("error")["value"], true);
        assert_eq!(find("otel.status_description")["value"], "boom");
        assert_eq!(find("span.kind")["value"], "server");
        assert_eq!(find("otel.scope.version")["value"], "1.2");
        assert_eq!(j["spans"][0]["references"][0]["refType"], "FOLLOWS_FROM");
        assert_eq!(j["spans"][1]["references"][0]["refType"], "CHILD_OF");
        assert_eq!(j["spans"][0]["logs"][0]["fields"][0]["value"], "exception");
        assert_eq!(j["processes"].as_object().unwrap().len(), 2);
        assert_eq!(
            dependencies(&views),
            vec![Dependency {
                parent: "web".into(),
                child: "db".into(),
                call_count: 1
            }]
        );
    }
}
