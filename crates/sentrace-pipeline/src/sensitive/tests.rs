//! The stage seals exactly the listed attribute values, once each, bound to their place.

use super::*;
use sentrace_core::proto::common::v1::InstrumentationScope;
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::span::Event;
use sentrace_core::proto::trace::v1::{ScopeSpans, Span};
use sentrace_core::{BatchContext, Identity, Role, TenantId, canonical};
use sentrace_store::MasterKey;

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn span(n: u8, list: &str) -> Span {
    Span {
        trace_id: vec![n; 16],
        span_id: vec![n; 8],
        name: "op".into(),
        attributes: vec![
            kv("enduser.id", s("pse:user:abc123")),
            kv("http.card", Value::IntValue(4111)),
            kv("plain", s("visible-value")),
            kv(MINIMIZED_ATTRIBUTE, s(list)),
        ],
        events: vec![Event {
            name: "e".into(),
            attributes: vec![kv("token", s("tok:jwt:zz"))],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn value(kv: &KeyValue) -> &Value {
    kv.value.as_ref().unwrap().value.as_ref().unwrap()
}

#[test]
fn listed_values_become_envelopes_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
    let tenant = TenantId::new("acme").unwrap();
    let list = "resource:owner=pii;span:enduser.id=pii;span:enduser.id=secret;span:http.card=financial;event[0]:token=secret;span:absent=pii";
    let mut batch = Batch {
        context: BatchContext::new(Identity::new(tenant.clone(), "p", Role::Ingest), 1),
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("checkout")),
                    kv("owner", s("pse:owner:77")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope::default()),
                spans: vec![span(1, list), span(2, list), span(3, "")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let stage = SensitiveStage::new(ring.clone());
    stage.process(&mut batch).unwrap();
    let rs = &batch.resource_spans[0];
    let res = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        value(&res[0]),
        &s("checkout"),
        "service.name stays in clear"
    );
    let Value::BytesValue(owner) = value(&res[1]) else {
        panic!("resource owner not sealed");
    };
    let shared = ValueContext {
        trace_id: &[],
        span_id: &[],
        place: "resource:owner",
    };
    let plain = ring.open_sensitive(&tenant, &shared, owner).unwrap();
    assert_eq!(
        AnyValue::decode(&plain[..]).unwrap().value,
        Some(s("pse:owner:77"))
    );

    let sp = &rs.scope_spans[0].spans[0];
    let at = |k: &str| sp.attributes.iter().find(|a| a.key == k).unwrap();
    for (key, place, expect) in [
        ("enduser.id", "span:enduser.id", s("pse:user:abc123")),
        ("http.card", "span:http.card", Value::IntValue(4111)),
    ] {
        let Value::BytesValue(env) = value(at(key)) else {
            panic!("{key} not sealed");
        };
        let ctx = ValueContext {
            trace_id: &sp.trace_id,
            span_id: &sp.span_id,
            place,
        };
        // Sealed once (listed twice), type kept.
        let plain = ring.open_sensitive(&tenant, &ctx, env).unwrap();
        assert_eq!(AnyValue::decode(&plain[..]).unwrap().value, Some(expect));
        // Bound to its span: span 2's context does not open it.
        let other = ValueContext {
            span_id: &[2; 8],
            ..ctx
        };
        assert!(ring.open_sensitive(&tenant, &other, env).is_err());
    }
    assert!(matches!(
        value(&sp.events[0].attributes[0]),
        Value::BytesValue(_)
    ));
    assert_eq!(value(at("plain")), &s("visible-value"));
    assert_eq!(value(at(MINIMIZED_ATTRIBUTE)), &s(list));

    // The canonical bytes (what the WAL, the blocks and the log leaf hold) carry no listed
    // value; the unlisted span is untouched.
    let bytes = canonical::encode(rs, &rs.scope_spans[0], sp);
    for needle in ["pse:user:abc123", "pse:owner:77", "tok:jwt:zz"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in clear"
        );
    }
    assert!(bytes.windows(13).any(|w| w == b"visible-value"));
    let third = &rs.scope_spans[0].spans[2];
    assert_eq!(value(&third.attributes[0]), &s("pse:user:abc123"));
}

#[test]
fn a_batch_without_lists_never_touches_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
    let tenant = TenantId::new("acme").unwrap();
    let mut batch = Batch {
        context: BatchContext::new(Identity::new(tenant.clone(), "p", Role::Ingest), 1),
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, "")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    SensitiveStage::new(ring.clone())
        .process(&mut batch)
        .unwrap();
    assert!(
        !ring.has_tenant(&tenant).unwrap(),
        "no key made for nothing"
    );
}
