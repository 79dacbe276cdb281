use std::sync::{Arc, OnceLock};

use sentrace_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use sentrace_core::{Batch, BatchContext, Identity, Role, Stage, TenantId};

use super::*;
use crate::{InMemorySecrets, MinimizeStage};

pub(crate) fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

pub(crate) fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..Default::default()
    }
}

fn arr(vs: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values: vs })),
    }
}

fn kvl(vs: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::KvlistValue(KeyValueList { values: vs })),
    }
}

pub(crate) fn one_span(service: &str, span: Span) -> Vec<ResourceSpans> {
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s(service))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope::default()),
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| Redactor::new(Policy::default()).unwrap())
}

fn secrets() -> InMemorySecrets {
    InMemorySecrets::from_master_key([9; 32])
}

fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

fn dump(rs: &[ResourceSpans]) -> String {
    format!("{rs:?}")
}

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";

#[test]
fn every_location_is_covered() {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: format!("GET /users/{EMAIL}"),
        attributes: vec![
            kv("note", s(&format!("card {CARD}"))),
            kv(
                "deep",
                kvl(vec![kv(
                    "level1",
                    arr(vec![s("fine"), kvl(vec![kv("x", arr(vec![s(EMAIL)]))])]),
                )]),
            ),
        ],
        events: vec![span::Event {
            name: format!("mail to {EMAIL}"),
            attributes: vec![kv("exception.message", s(&format!("bad card {CARD}")))],
            ..Default::default()
        }],
        links: vec![span::Link {
            attributes: vec![kv("peer", s(EMAIL))],
            ..Default::default()
        }],
        status: Some(Status {
            message: format!("failed for {EMAIL}"),
            code: 2,
        }),
        ..Default::default()
    };
    let mut rs = one_span("shop", span);
    rs[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .push(kv("owner", s(EMAIL)));
    rs[0].scope_spans[0]
        .scope
        .as_mut()
        .unwrap()
        .attributes
        .push(kv("maintainer", s(EMAIL)));
    let report = redactor().minimize(&tenant("t"), &mut rs, &secrets());
    let out = dump(&rs);
    assert!(!out.contains(EMAIL), "{out}");
    assert!(!out.contains("4111"), "{out}");
    assert_eq!(report.count(Kind::Email, Action::Pseudonym), 7);
    assert_eq!(report.count(Kind::Card, Action::Mask), 2);
    let span = &rs[0].scope_spans[0].spans[0];
    assert!(
        span.name.starts_with("GET /users/pse:email:"),
        "{}",
        span.name
    );
    assert_eq!(
        attr(&span.attributes, "note").as_deref(),
        Some("card <card>")
    );
    assert_eq!(
        attr(&span.attributes, POLICY_DIGEST_ATTRIBUTE),
        Some(Policy::default().digest_hex())
    );
}

#[test]
fn pseudonyms_join_within_a_tenant_only() {
    let mk = || {
        one_span(
            "svc",
            Span {
                attributes: vec![kv("user.email", s(EMAIL))],
                ..Default::default()
            },
        )
    };
    let sec = secrets();
    let (mut a, mut b, mut c) = (mk(), mk(), mk());
    redactor().minimize(&tenant("a"), &mut a, &sec);
    redactor().minimize(&tenant("a"), &mut b, &sec);
    redactor().minimize(&tenant("b"), &mut c, &sec);
    let get = |rs: &[ResourceSpans]| {
        attr(&rs[0].scope_spans[0].spans[0].attributes, "user.email").unwrap()
    };
    assert!(get(&a).starts_with("pse:email:"));
    assert_eq!(get(&a), get(&b));
    assert_ne!(get(&a), get(&c));
}

#[test]
fn key_names_integers_and_drops() {
    let policy = Policy::from_toml(
        "version = 1\n[actions]\npassword = \"drop\"\nphone = \"drop\"\n",
        "t.toml",
    )
    .unwrap();
    let r = Redactor::new(policy).unwrap();
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![
                kv("db.password", s("hunter2")),
                kv("phones", arr(vec![s("+44 20 7946 0958"), s("n/a")])),
                kv(
                    "card_num_int",
                    AnyValue {
                        value: Some(Value::IntValue(4_111_111_111_111_111)),
                    },
                ),
                kv("http.request.method", s("GET")),
            ],
            ..Default::default()
        },
    );
    let report = r.minimize(&tenant("t"), &mut rs, &secrets());
    let attrs = &rs[0].scope_spans[0].spans[0].attributes;
    assert!(attrs.iter().all(|a| a.key != "db.password"), "{attrs:?}");
    let phones = attrs.iter().find(|a| a.key == "phones").unwrap();
    assert_eq!(phones.value.as_ref().unwrap(), &arr(vec![s("n/a")]));
    let card = attrs.iter().find(|a| a.key == "card_num_int").unwrap();
    assert_eq!(card.value.as_ref().unwrap(), &s("<card>"));
    assert_eq!(report.dropped, 2);
    assert_eq!(report.count(Kind::Password, Action::Drop), 1);
}

#[test]
fn allowlist_mode_drops_unlisted_span_attributes() {
    let policy = Policy::from_toml(
        "version = 1\n[keys]\nallowed = [\"http.route\", \"note\"]\nignored = [\"raw\"]\n",
        "t.toml",
    )
    .unwrap();
    let r = Redactor::new(policy).unwrap();
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![
                kv("http.route", s("/users/{id}")),
                kv("note", s(EMAIL)),
                kv("user.id", s("42")),
                kv("raw", s(EMAIL)),
            ],
            ..Default::default()
        },
    );
    let report = r.minimize(&tenant("t"), &mut rs, &secrets());
    let attrs = &rs[0].scope_spans[0].spans[0].attributes;
    let keys: Vec<&str> = attrs.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "http.route",
            "note",
            "raw",
            POLICY_DIGEST_ATTRIBUTE,
            MINIMIZED_ATTRIBUTE
        ]
    );
    // Ignored keys are left alone, and not listed.
    assert_eq!(
        attr(attrs, MINIMIZED_ATTRIBUTE).as_deref(),
        Some("span:note=pii")
    );
    assert_eq!(report.allowlist_dropped, 1);
    let note = attr(attrs, "note").unwrap();
    assert!(
        note.starts_with("pse:email:"),
        "allowed keys are still minimized"
    );
    assert_eq!(attr(attrs, "raw").as_deref(), Some(EMAIL));
    // Resource attributes are not subject to the allowlist.
    assert_eq!(rs[0].resource.as_ref().unwrap().attributes.len(), 1);
}

#[test]
fn service_override_applies_to_that_service_only() {
    let policy = Policy::from_toml(
        "version = 1\n[[override]]\nservice = \"billing\"\n[override.actions]\nemail = \"mask\"\n",
        "t.toml",
    )
    .unwrap();
    let r = Redactor::new(policy).unwrap();
    let mk = |svc: &str| {
        one_span(
            svc,
            Span {
                attributes: vec![kv("m", s(EMAIL))],
                ..Default::default()
            },
        )
    };
    let (mut a, mut b) = (mk("billing"), mk("web"));
    r.minimize(&tenant("t"), &mut a, &secrets());
    r.minimize(&tenant("t"), &mut b, &secrets());
    let get = |rs: &[ResourceSpans]| attr(&rs[0].scope_spans[0].spans[0].attributes, "m").unwrap();
    assert_eq!(get(&a), "<email>");
    assert!(get(&b).starts_with("pse:email:"));
}

/// One walk serves a whole batch and keeps its key-class cache across resources: a key
/// that one service's override makes sensitive is classified afresh for the next
/// resource of another service, and again for the one after, in the same call.
#[test]
fn key_classes_follow_each_resources_rules_within_one_batch() {
    let policy = Policy::from_toml(
        "version = 1\n[[override]]\nservice = \"billing\"\n[override.keys.sensitive]\nplan = \"secret\"\n",
        "t.toml",
    )
    .unwrap();
    let r = Redactor::new(policy).unwrap();
    let mk = |svc: &str| {
        one_span(
            svc,
            Span {
                attributes: vec![kv("plan", s("gold-annual-2024"))],
                ..Default::default()
            },
        )
        .remove(0)
    };
    for services in [["web", "billing", "web"], ["billing", "web", "billing"]] {
        let mut batch: Vec<ResourceSpans> = services.iter().map(|svc| mk(svc)).collect();
        let mut exposure = crate::exposure::BatchExposure::default();
        let mut recorded = batch.clone();
        r.minimize(&tenant("t"), &mut batch, &secrets());
        r.minimize_recording(&tenant("t"), &mut recorded, &secrets(), &mut exposure);
        for rs in [&batch, &recorded] {
            for (svc, res) in services.iter().zip(rs.iter()) {
                let v = attr(&res.scope_spans[0].spans[0].attributes, "plan").unwrap();
                if *svc == "billing" {
                    assert_ne!(
                        v, "gold-annual-2024",
                        "{services:?}: billing's plan is a secret"
                    );
                } else {
                    assert_eq!(v, "gold-annual-2024", "{services:?}: web's plan is plain");
                }
            }
        }
    }
}

#[test]
fn stage_sets_digest_and_counts_metrics() {
    let r = Arc::new(Redactor::new(Policy::default()).unwrap());
    let stage = MinimizeStage::new(r.clone(), Arc::new(secrets()));
    assert_eq!(stage.name(), "minimize");
    let identity = Identity::new(tenant("acme"), "test", Role::Ingest);
    let mut batch = Batch {
        context: BatchContext::new(identity, 0),
        resource_spans: one_span(
            "svc",
            Span {
                attributes: vec![kv(
                    "http.request.header.authorization",
                    s("Bearer abcdefghijklmnop"),
                )],
                ..Default::default()
            },
        ),
    };
    stage.process(&mut batch).unwrap();
    assert_eq!(
        batch.context.policy_digest,
        Some(Policy::default().digest())
    );
    let attrs = &batch.resource_spans[0].scope_spans[0].spans[0].attributes;
    assert_eq!(
        attr(attrs, "http.request.header.authorization").as_deref(),
        Some("Bearer <bearer>")
    );
    let m = r.metrics();
    assert_eq!(m.spans, 1);
    assert!(m.values.contains(&(Kind::Bearer, Action::Mask, 1)), "{m:?}");
}

#[test]
fn too_deep_and_too_long_fail_closed() {
    let mut v = s(EMAIL);
    for _ in 0..(MAX_VALUE_DEPTH + 3) {
        v = arr(vec![v]);
    }
    let long = format!("{EMAIL} {}", "x".repeat(300 << 10));
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![kv("deep", v), kv("long", s(&long))],
            ..Default::default()
        },
    );
    let report = redactor().minimize(&tenant("t"), &mut rs, &secrets());
    assert!(!dump(&rs).contains(EMAIL));
    assert_eq!(report.oversize, 2);
}

pub(crate) fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    sentrace_core::otlp::attr(attrs, key).map(sentrace_core::otlp::value_to_string)
}

#[test]
fn redactor_and_stage_are_shareable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Redactor>();
    send_sync::<MinimizeStage>();
    send_sync::<InMemorySecrets>();
}

#[test]
fn a_forged_digest_attribute_is_replaced_and_minimized_elsewhere() {
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![kv(POLICY_DIGEST_ATTRIBUTE, s("forged"))],
            events: vec![span::Event {
                attributes: vec![kv(POLICY_DIGEST_ATTRIBUTE, s(EMAIL))],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    redactor().minimize(&tenant("t"), &mut rs, &secrets());
    let span = &rs[0].scope_spans[0].spans[0];
    let digests: Vec<_> = span
        .attributes
        .iter()
        .filter(|a| a.key == POLICY_DIGEST_ATTRIBUTE)
        .collect();
    assert_eq!(digests.len(), 1);
    assert_eq!(
        attr(&span.attributes, POLICY_DIGEST_ATTRIBUTE),
        Some(Policy::default().digest_hex())
    );
    assert!(!dump(&rs).contains(EMAIL));
}

#[test]
fn policy_named_timestamp_keys_keep_their_hour() {
    let policy = Policy::from_toml(
        "version = 1\n[keys.sensitive]\n\"login.time\" = \"timestamp\"\n",
        "t.toml",
    )
    .unwrap();
    let r = Redactor::new(policy).unwrap();
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![
                kv("login.time", s("2024-11-24T09:45:40Z")),
                kv("other.time", s("2024-11-24T09:45:40Z")),
            ],
            ..Default::default()
        },
    );
    let report = r.minimize(&tenant("t"), &mut rs, &secrets());
    let attrs = &rs[0].scope_spans[0].spans[0].attributes;
    assert_eq!(
        attr(attrs, "login.time").as_deref(),
        Some("2024-11-24T09:00:00Z")
    );
    assert_eq!(
        attr(attrs, "other.time").as_deref(),
        Some("2024-11-24T09:45:40Z")
    );
    assert_eq!(report.count(Kind::Timestamp, Action::Generalize), 1);
}

#[test]
fn the_stage_counts_exposure_by_service_kind_key_and_action_without_values() {
    let r = Arc::new(Redactor::new(Policy::default()).unwrap());
    let log = Arc::new(crate::ExposureLog::new(100, 10));
    let stage = MinimizeStage::new(r, Arc::new(secrets())).with_exposure(log.clone());
    let identity = Identity::new(tenant("acme"), "test", Role::Ingest);
    let mut batch = Batch {
        context: BatchContext::new(identity, 77),
        resource_spans: one_span(
            "checkout",
            Span {
                name: format!("mail {EMAIL}"),
                attributes: vec![
                    kv("user.contact", s(EMAIL)),
                    kv("note", s(&format!("{EMAIL} and {EMAIL}"))),
                    kv("plain", s("nothing here")),
                ],
                ..Default::default()
            },
        ),
    };
    stage.process(&mut batch).unwrap();
    let rows = log.rows(&tenant("acme"));
    let find = |key: &str| rows.iter().find(|r| r.key == key).map(|r| r.count);
    assert_eq!(find("user.contact"), Some(1), "{rows:?}");
    assert_eq!(find("note"), Some(2), "{rows:?}");
    assert_eq!(find(crate::exposure::KEY_SPAN_NAME), Some(1), "{rows:?}");
    assert_eq!(find("plain"), None);
    assert!(
        rows.iter()
            .all(|r| r.service == "checkout" && r.kind == Kind::Email && r.first_seen_ns == 77)
    );
    assert!(!format!("{rows:?}").contains("example.com"));
    assert!(log.rows(&tenant("other")).is_empty());
}
