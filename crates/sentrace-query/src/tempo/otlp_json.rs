//! OTLP traces as Tempo writes them in JSON: Go's `jsonpb` over Tempo's copy of the OTLP
//! messages. That differs from OTLP/JSON in three ways that clients notice: ids are
//! base64 (bytes fields), enums are names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`), and
//! fields holding their default value are left out. 64-bit integers are strings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json, json};

use sentrace_core::proto::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

/// An object builder that leaves out default values, as `jsonpb` does.
struct Obj(Map<String, Json>);

impl Obj {
    fn new() -> Self {
        Self(Map::new())
    }
    fn str(mut self, k: &str, v: &str) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Json::String(v.into()));
        }
        self
    }
    fn bytes(mut self, k: &str, v: &[u8]) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Json::String(STANDARD.encode(v)));
        }
        self
    }
    fn u64s(mut self, k: &str, v: u64) -> Self {
        if v != 0 {
            self.0.insert(k.into(), Json::String(v.to_string()));
        }
        self
    }
    fn u32(mut self, k: &str, v: u32) -> Self {
        if v != 0 {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn list(mut self, k: &str, v: Vec<Json>) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), Json::Array(v));
        }
        self
    }
    fn obj(mut self, k: &str, v: Option<Json>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn done(self) -> Json {
        Json::Object(self.0)
    }
}

/// An `AnyValue` (`{"stringValue": ...}`, `{"intValue": "5"}`, ...).
pub fn any_value(v: &AnyValue) -> Json {
    match &v.value {
        Some(Value::StringValue(s)) => json!({ "stringValue": s }),
        Some(Value::BoolValue(b)) => json!({ "boolValue": b }),
        Some(Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(Value::DoubleValue(d)) => json!({ "doubleValue": d }),
        Some(Value::ArrayValue(a)) => {
            json!({ "arrayValue": Obj::new().list("values", a.values.iter().map(any_value).collect()).done() })
        }
        Some(Value::KvlistValue(kv)) => {
            json!({ "kvlistValue": Obj::new().list("values", key_values(&kv.values)).done() })
        }
        Some(Value::BytesValue(b)) => json!({ "bytesValue": STANDARD.encode(b) }),
        _ => json!({}),
    }
}

/// A `KeyValue` list.
pub fn key_values(kvs: &[KeyValue]) -> Vec<Json> {
    kvs.iter().map(key_value).collect()
}

/// One `KeyValue`.
pub fn key_value(kv: &KeyValue) -> Json {
    Obj::new()
        .str("key", &kv.key)
        .obj("value", kv.value.as_ref().map(any_value))
        .done()
}

fn resource(r: &Resource) -> Json {
    Obj::new()
        .list("attributes", key_values(&r.attributes))
        .u32("droppedAttributesCount", r.dropped_attributes_count)
        .done()
}

fn scope(s: &InstrumentationScope) -> Json {
    Obj::new()
        .str("name", &s.name)
        .str("version", &s.version)
        .list("attributes", key_values(&s.attributes))
        .u32("droppedAttributesCount", s.dropped_attributes_count)
        .done()
}

/// Tempo's name of an OTLP span kind.
pub fn kind_enum(kind: i32) -> Option<&'static str> {
    match kind {
        1 => Some("SPAN_KIND_INTERNAL"),
        2 => Some("SPAN_KIND_SERVER"),
        3 => Some("SPAN_KIND_CLIENT"),
        4 => Some("SPAN_KIND_PRODUCER"),
        5 => Some("SPAN_KIND_CONSUMER"),
        _ => None,
    }
}

fn status_enum(code: i32) -> Option<&'static str> {
    match code {
        1 => Some("STATUS_CODE_OK"),
        2 => Some("STATUS_CODE_ERROR"),
        _ => None,
    }
}

fn event(e: &span::Event) -> Json {
    Obj::new()
        .u64s("timeUnixNano", e.time_unix_nano)
        .str("name", &e.name)
        .list("attributes", key_values(&e.attributes))
        .u32("droppedAttributesCount", e.dropped_attributes_count)
        .done()
}

fn link(l: &span::Link) -> Json {
    Obj::new()
        .bytes("traceId", &l.trace_id)
        .bytes("spanId", &l.span_id)
        .str("traceState", &l.trace_state)
        .list("attributes", key_values(&l.attributes))
        .u32("droppedAttributesCount", l.dropped_attributes_count)
        .u32("flags", l.flags)
        .done()
}

fn one_span(s: &Span) -> Json {
    let mut o = Obj::new()
        .bytes("traceId", &s.trace_id)
        .bytes("spanId", &s.span_id)
        .str("traceState", &s.trace_state)
        .bytes("parentSpanId", &s.parent_span_id)
        .u32("flags", s.flags)
        .str("name", &s.name);
    if let Some(k) = kind_enum(s.kind) {
        o.0.insert("kind".into(), json!(k));
    }
    let status = s.status.as_ref().map(|st| {
        let mut so = Obj::new().str("message", &st.message);
        if let Some(c) = status_enum(st.code) {
            so.0.insert("code".into(), json!(c));
        }
        so.done()
    });
    o.u64s("startTimeUnixNano", s.start_time_unix_nano)
        .u64s("endTimeUnixNano", s.end_time_unix_nano)
        .list("attributes", key_values(&s.attributes))
        .u32("droppedAttributesCount", s.dropped_attributes_count)
        .list("events", s.events.iter().map(event).collect())
        .u32("droppedEventsCount", s.dropped_events_count)
        .list("links", s.links.iter().map(link).collect())
        .u32("droppedLinksCount", s.dropped_links_count)
        .obj("status", status)
        .done()
}

fn scope_spans(ss: &ScopeSpans) -> Json {
    Obj::new()
        .obj("scope", ss.scope.as_ref().map(scope))
        .list("spans", ss.spans.iter().map(one_span).collect())
        .str("schemaUrl", &ss.schema_url)
        .done()
}

/// One `ResourceSpans`.
pub fn resource_spans(rs: &ResourceSpans) -> Json {
    Obj::new()
        .obj("resource", rs.resource.as_ref().map(resource))
        .list(
            "scopeSpans",
            rs.scope_spans.iter().map(scope_spans).collect(),
        )
        .str("schemaUrl", &rs.schema_url)
        .done()
}

/// A `tempopb.Trace` in JSON under `key` (`batches` for the v1 API, `resourceSpans` in
/// the v2 answer's `trace`).
pub fn trace(key: &str, batches: &[ResourceSpans]) -> Json {
    Obj::new()
        .list(key, batches.iter().map(resource_spans).collect())
        .done()
}
