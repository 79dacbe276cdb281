//! Tempo's HTTP API answer shapes, pinned against Tempo's `pkg/tempopb/tempo.proto` and its
//! `jsonpb` rendering (Grafana's Tempo data source reads them unchanged): the search
//! answer, trace by id (JSON and protobuf), tag names and tag values.
//!
//! Rendering is pure: the query service ([`crate::service`]) decides what the caller may
//! see; this module only shapes it.

pub mod otlp_json;
pub mod params;
pub mod proto;

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use sentrace_core::TraceId;
use sentrace_core::otlp::value_to_string;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::ResourceSpans;

use crate::SpanView;
use crate::traceql::{Field, Intrinsic, KindValue, Query, StatusValue, field_value};

pub use params::{TagScope, TagWindow, TempoSearch};

/// Tempo's root service name for a trace whose root span is not (yet) stored.
pub const ROOT_NOT_YET_RECEIVED: &str = "<root span not yet received>";

/// One trace found by a Tempo search.
#[derive(Clone, Debug)]
pub struct TempoHit {
    /// The trace.
    pub trace_id: TraceId,
    /// Every span of the trace, scoped and masked, ordered by start time.
    pub spans: Vec<SpanView>,
    /// Indexes into `spans` of the spans that matched, ascending.
    pub matched: Vec<usize>,
}

/// What a Tempo search found.
#[derive(Clone, Debug, Default)]
pub struct TempoFound {
    /// The traces, newest first.
    pub hits: Vec<TempoHit>,
    /// Candidate traces examined.
    pub inspected_traces: u64,
    /// Candidate spans examined.
    pub inspected_spans: u64,
    /// Stored bytes of the candidate spans.
    pub inspected_bytes: u64,
}

/// A trace id as Tempo's search answers it: hex without leading zeros.
pub fn trace_id_text(tid: &TraceId) -> String {
    let hex = tid.to_hex();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// A span id as Tempo's search answers it: 16 hex digits.
pub fn span_id_text(id: &[u8]) -> String {
    format!("{:0>16}", hex::encode(id))
}

/// Whether span `v` satisfies every `tags` condition (Tempo's tag search): `name` is the
/// span name, `status.code` its status (`ok`, `error`, `unset`), `error=true` an error
/// status; any other key is a span or resource attribute whose text contains the value,
/// ignoring case.
pub fn tags_match(tags: &[(String, String)], v: &SpanView) -> bool {
    let s = v.span();
    let status = StatusValue::of_code(s.status.as_ref().map_or(0, |st| st.code));
    tags.iter().all(|(key, want)| {
        let want = want.to_lowercase();
        let contains = |text: &str| text.to_lowercase().contains(&want);
        match key.as_str() {
            "name" => contains(&s.name),
            "status.code" => status.as_str() == want,
            "error" => (status == StatusValue::Error) == (want == "true"),
            _ => {
                let hit = |attrs: &[KeyValue]| {
                    attrs.iter().any(|kv| {
                        kv.key == *key
                            && kv
                                .value
                                .as_ref()
                                .is_some_and(|x| contains(&value_to_string(x)))
                    })
                };
                hit(&s.attributes) || v.rs.resource.as_ref().is_some_and(|r| hit(&r.attributes))
            }
        }
    })
}

fn root_of(spans: &[SpanView]) -> Option<&SpanView> {
    spans
        .iter()
        .filter(|v| v.span().parent_span_id.is_empty())
        .min_by_key(|v| v.span().start_time_unix_nano)
}

fn span_json(v: &SpanView, fields: &[&Field]) -> Json {
    let s = v.span();
    let mut o = Map::new();
    o.insert("spanID".into(), json!(span_id_text(&s.span_id)));
    if fields.contains(&&Field::Intrinsic(Intrinsic::Name)) && !s.name.is_empty() {
        o.insert("name".into(), json!(s.name));
    }
    o.insert(
        "startTimeUnixNano".into(),
        json!(s.start_time_unix_nano.to_string()),
    );
    let dur = s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano);
    if dur > 0 {
        o.insert("durationNanos".into(), json!(dur.to_string()));
    }
    let mut attrs: Vec<Json> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for f in fields {
        if matches!(f, Field::Intrinsic(Intrinsic::Name | Intrinsic::Duration)) {
            continue;
        }
        let key = f.result_key();
        if seen.contains(&key) {
            continue;
        }
        if let Some(val) = field_value(f, v) {
            seen.push(key);
            attrs.push(json!({ "key": key, "value": otlp_json::any_value(&val) }));
        }
    }
    if !attrs.is_empty() {
        o.insert("attributes".into(), Json::Array(attrs));
    }
    Json::Object(o)
}

fn hit_json(hit: &TempoHit, query: Option<&Query>, spss: usize) -> Json {
    let mut o = Map::new();
    o.insert("traceID".into(), json!(trace_id_text(&hit.trace_id)));
    match root_of(&hit.spans) {
        Some(r) if !r.service().is_empty() => {
            o.insert("rootServiceName".into(), json!(r.service()));
            if !r.span().name.is_empty() {
                o.insert("rootTraceName".into(), json!(r.span().name));
            }
        }
        _ => {
            o.insert("rootServiceName".into(), json!(ROOT_NOT_YET_RECEIVED));
        }
    }
    let start = hit
        .spans
        .iter()
        .map(|v| v.span().start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = hit
        .spans
        .iter()
        .map(|v| v.span().end_time_unix_nano)
        .max()
        .unwrap_or(0);
    if start > 0 {
        o.insert("startTimeUnixNano".into(), json!(start.to_string()));
    }
    let ms = u32::try_from(end.saturating_sub(start) / 1_000_000).unwrap_or(u32::MAX);
    if ms > 0 {
        o.insert("durationMs".into(), json!(ms));
    }
    if let Some(q) = query {
        let fields = q.fields();
        let spans: Vec<Json> = hit
            .matched
            .iter()
            .take(spss)
            .filter_map(|i| hit.spans.get(*i))
            .map(|v| span_json(v, &fields))
            .collect();
        let mut set = Map::new();
        if !spans.is_empty() {
            set.insert("spans".into(), Json::Array(spans));
        }
        set.insert("matched".into(), json!(hit.matched.len()));
        let set = Json::Object(set);
        o.insert("spanSet".into(), set.clone());
        o.insert("spanSets".into(), json!([set]));
    }
    let mut stats: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for v in &hit.spans {
        let e = stats.entry(v.service()).or_default();
        e.0 = e.0.saturating_add(1);
        if v.span().status.as_ref().is_some_and(|s| s.code == 2) {
            e.1 = e.1.saturating_add(1);
        }
    }
    let stats: Map<String, Json> = stats
        .into_iter()
        .map(|(svc, (n, err))| {
            let mut s = Map::new();
            s.insert("spanCount".into(), json!(n));
            if err > 0 {
                s.insert("errorCount".into(), json!(err));
            }
            (svc.to_string(), Json::Object(s))
        })
        .collect();
    if !stats.is_empty() {
        o.insert("serviceStats".into(), Json::Object(stats));
    }
    Json::Object(o)
}

/// The `/api/search` answer: `{"traces": [...], "metrics": {...}}`. Span sets are listed
/// for TraceQL searches (`query` is Some), with at most `spss` spans each; each span
/// carries the attributes the query refers to, as the caller sees them.
pub fn search_response(found: &TempoFound, query: Option<&Query>, spss: usize) -> Json {
    let traces: Vec<Json> = found
        .hits
        .iter()
        .map(|h| hit_json(h, query, spss))
        .collect();
    let mut metrics = Map::new();
    if found.inspected_traces > 0 {
        metrics.insert(
            "inspectedTraces".into(),
            json!(u32::try_from(found.inspected_traces).unwrap_or(u32::MAX)),
        );
    }
    if found.inspected_bytes > 0 {
        metrics.insert(
            "inspectedBytes".into(),
            json!(found.inspected_bytes.to_string()),
        );
    }
    metrics.insert("completedJobs".into(), json!(1));
    metrics.insert("totalJobs".into(), json!(1));
    if found.inspected_spans > 0 {
        metrics.insert(
            "inspectedSpans".into(),
            json!(found.inspected_spans.to_string()),
        );
    }
    json!({ "traces": traces, "metrics": metrics })
}

/// The v1 trace answer: `{"batches": [ResourceSpans...]}`.
pub fn trace_v1_json(batches: &[ResourceSpans]) -> Json {
    otlp_json::trace("batches", batches)
}

/// The v2 trace answer: `{"trace": {"resourceSpans": [...]}, "metrics": {}}`.
pub fn trace_v2_json(batches: &[ResourceSpans]) -> Json {
    json!({ "trace": otlp_json::trace("resourceSpans", batches), "metrics": {} })
}

/// A value as Tempo's v2 tag values type it: `string`, `int`, `float`, `bool`; other
/// OTLP types (arrays, maps, bytes) are not listed.
pub fn typed_value(v: &AnyValue) -> Option<(&'static str, String)> {
    match &v.value {
        Some(Value::StringValue(s)) => Some(("string", s.clone())),
        Some(Value::IntValue(i)) => Some(("int", i.to_string())),
        Some(Value::DoubleValue(d)) => Some(("float", d.to_string())),
        Some(Value::BoolValue(b)) => Some(("bool", b.to_string())),
        _ => None,
    }
}

/// The fixed values of an intrinsic, as Tempo lists them (`keyword` typed), or None for
/// intrinsics whose values come from the data (`name`).
pub fn intrinsic_values(i: Intrinsic) -> Option<Vec<(&'static str, String)>> {
    match i {
        Intrinsic::Status => Some(
            [StatusValue::Ok, StatusValue::Error, StatusValue::Unset]
                .into_iter()
                .map(|s| ("keyword", s.as_str().to_string()))
                .collect(),
        ),
        Intrinsic::Kind => Some(
            KindValue::ALL
                .into_iter()
                .map(|k| ("keyword", k.as_str().to_string()))
                .collect(),
        ),
        Intrinsic::Duration => Some(Vec::new()),
        Intrinsic::Name => None,
    }
}

/// `{"tagValues": [{"type": t, "value": v}, ...], "metrics": {}}` (v2).
pub fn tag_values_v2(values: &[(&str, String)]) -> Json {
    let list: Vec<Json> = values
        .iter()
        .map(|(t, v)| json!({ "type": t, "value": v }))
        .collect();
    json!({ "tagValues": list, "metrics": {} })
}

/// `{"tagValues": [...], "metrics": {}}` (v1).
pub fn tag_values_v1(values: &[String]) -> Json {
    json!({ "tagValues": values, "metrics": {} })
}

/// `{"tagNames": [...], "metrics": {}}` (v1).
pub fn tag_names_v1(names: &[String]) -> Json {
    json!({ "tagNames": names, "metrics": {} })
}

/// `{"scopes": [{"name": s, "tags": [...]}, ...], "metrics": {}}` (v2); scopes without
/// tags are left out, as Tempo does.
pub fn tag_names_v2(scopes: &[(&str, Vec<String>)]) -> Json {
    let list: Vec<Json> = scopes
        .iter()
        .filter(|(_, tags)| !tags.is_empty())
        .map(|(name, tags)| json!({ "name": name, "tags": tags }))
        .collect();
    json!({ "scopes": list, "metrics": {} })
}
