//! Span builders and payload-scan assertions shared by the integration tests.
#![allow(dead_code)]

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use sentrace_detect::{Detector, Family};

/// Every payload rule the detector reports for one value: its family and `id (reason)`.
pub fn findings(d: &Detector, v: &str) -> Vec<(Family, String)> {
    let t = TenantId::new("t").unwrap();
    d.scan_value(&t, v)
        .into_iter()
        .map(|(r, why)| (r.family, format!("{} ({why})", r.id)))
        .collect()
}

/// The families reported for one value, sorted and without repeats.
pub fn families(d: &Detector, v: &str) -> Vec<Family> {
    let mut f: Vec<Family> = findings(d, v).into_iter().map(|(f, _)| f).collect();
    f.sort();
    f.dedup();
    f
}

/// Asserts that `v` is reported as `fam`.
pub fn assert_flags(d: &Detector, fam: Family, v: &str) {
    let got = findings(d, v);
    assert!(
        got.iter().any(|(f, _)| *f == fam),
        "{fam} missed {v:?}: got {got:?}"
    );
}

/// Asserts that no rule reports `v`.
pub fn assert_clean(d: &Detector, v: &str) {
    let got = findings(d, v);
    assert!(got.is_empty(), "false positive on {v:?}: {got:?}");
}

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

pub fn kvi(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

pub fn span(trace: u8, id: u8, parent: Option<u8>, kind: SpanKind, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        kind: kind as i32,
        name: "op".into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_010_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

pub fn batch(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn server(trace: u8, id: u8, attrs: Vec<KeyValue>) -> Span {
    span(trace, id, None, SpanKind::Server, attrs)
}
