use proptest::prelude::*;
use prost::Message;

use sentrace_core::proto::common::v1::{InstrumentationScope, KeyValue};
use sentrace_core::proto::trace::v1::{ResourceSpans, Status, span::Event};
use sentrace_core::sensitivity::format_minimized;

use super::*;

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(v.into())),
    })
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: s(v),
        ..Default::default()
    }
}

fn str_of(kvs: &[KeyValue], key: &str) -> String {
    match kvs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    {
        Some(Value::StringValue(v)) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn view(resource: Vec<KeyValue>, span: Span) -> SpanView {
    SpanView::new(ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.acme.billing".into(),
                version: "1.2".into(),
                attributes: vec![kv("maintainer", "ops@acme.example")],
                ..Default::default()
            }),
            spans: vec![span],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    })
    .unwrap()
}

fn tree_span(name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        parent_span_id: vec![9; 8],
        flags: 0x301,
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        name: name.into(),
        attributes,
        ..Default::default()
    }
}

fn stored_forms() -> SpanView {
    let list = "span:user.email=pii;span:enduser.id=pii;span:client.address=pii;\
                span:card=financial;span:http.request.header.authorization=secret;\
                name=pii;status=secret;event[0].name=pii;event[0]:exception.message=pii;\
                link[0]:peer=pii;resource:host.owner=pii;scope:maintainer=pii;\
                span:gone=pii;event[5]:x=pii;link[9]:y=secret;event[7].name=pii";
    let mut span = tree_span(
        "GET /users/pse:email:00ff",
        vec![
            kv("user.email", "pse:email:0123456789abcdef0123456789abcdef"),
            kv("enduser.id", "tok:user_id:AbCdEf12"),
            kv("client.address", "203.0.113.0/24"),
            kv("card", "<card:…1111>"),
            kv("http.request.header.authorization", "Bearer <bearer>"),
            kv("http.route", "/users/{id}"),
            kv(POLICY_DIGEST_ATTRIBUTE, "ab12"),
            kv(MINIMIZED_ATTRIBUTE, list),
        ],
    );
    span.status = Some(Status {
        message: "login failed for <email>".into(),
        code: 2,
    });
    span.events = vec![Event {
        name: "mail to <email>".into(),
        attributes: vec![
            kv("exception.message", "no such user <email>"),
            kv("exception.type", "NotFound"),
        ],
        ..Default::default()
    }];
    span.links = vec![Link {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        attributes: vec![kv("peer", "pse:user_id:77")],
        ..Default::default()
    }];
    view(
        vec![
            kv("service.name", "billing"),
            kv("host.owner", "<email>"),
            kv("host.name", "node-1"),
        ],
        span,
    )
}

#[test]
fn refused_classes_are_masked_whatever_the_stored_form() {
    let mut v = stored_forms();
    let out = mask_sensitive(&mut v, |c| c == AttributeClass::Secret);
    let span = v.span();
    let pii = AttributeClass::Pii.mask_text();
    let fin = AttributeClass::Financial.mask_text();
    for key in ["user.email", "enduser.id", "client.address"] {
        assert_eq!(str_of(&span.attributes, key), pii, "{key}");
    }
    assert_eq!(str_of(&span.attributes, "card"), fin);
    // Allowed class and unlisted values are untouched.
    assert_eq!(
        str_of(&span.attributes, "http.request.header.authorization"),
        "Bearer <bearer>"
    );
    assert_eq!(
        span.status.as_ref().unwrap().message,
        "login failed for <email>"
    );
    assert_eq!(str_of(&span.attributes, "http.route"), "/users/{id}");
    assert_eq!(str_of(&span.attributes, POLICY_DIGEST_ATTRIBUTE), "ab12");
    assert_eq!(span.name, pii);
    assert_eq!(span.events[0].name, pii);
    assert_eq!(str_of(&span.events[0].attributes, "exception.message"), pii);
    assert_eq!(
        str_of(&span.events[0].attributes, "exception.type"),
        "NotFound"
    );
    assert_eq!(str_of(&span.links[0].attributes, "peer"), pii);
    let res = &v.rs.resource.as_ref().unwrap().attributes;
    assert_eq!(str_of(res, "host.owner"), pii);
    assert_eq!(str_of(res, "host.name"), "node-1");
    assert_eq!(str_of(res, "service.name"), "billing");
    let scope = v.scope().scope.as_ref().unwrap();
    assert_eq!(str_of(&scope.attributes, "maintainer"), pii);
    // The list stays (keys and classes only); dangling entries were skipped.
    assert!(str_of(&v.span().attributes, MINIMIZED_ATTRIBUTE).starts_with("span:user.email=pii"));
    // 3 pii span attrs, card, name, event name, event attr, link attr, resource, scope.
    assert_eq!(out.masked, 10);
    assert_eq!(
        out.classes,
        ClassSet::EMPTY
            .with(AttributeClass::Pii)
            .with(AttributeClass::Financial)
    );
    assert!(!out.list_unreadable);
}

#[test]
fn everything_allowed_or_no_list_leaves_the_span_whole() {
    let before = stored_forms();
    let mut v = before.clone();
    assert_eq!(mask_sensitive(&mut v, |_| true), MaskOutcome::default());
    assert_eq!(v.rs, before.rs);
    let mut bare = view(
        vec![kv("service.name", "a")],
        tree_span("n", vec![kv("user.email", "jane@example.com")]),
    );
    let before = bare.rs.clone();
    assert_eq!(mask_sensitive(&mut bare, |_| false), MaskOutcome::default());
    assert_eq!(bare.rs, before);
}

#[test]
fn a_place_in_several_refused_classes_gets_the_most_severe_mask() {
    let mut v = view(
        vec![kv("service.name", "a")],
        tree_span(
            "n",
            vec![
                kv("blob", "x"),
                kv(
                    MINIMIZED_ATTRIBUTE,
                    "span:blob=pii;span:blob=secret;span:blob=financial",
                ),
            ],
        ),
    );
    let out = mask_sensitive(&mut v, |_| false);
    assert_eq!(str_of(&v.span().attributes, "blob"), "<redacted:secret>");
    assert_eq!(out.masked, 1);
    assert_eq!(out.classes, ClassSet::EMPTY.with(AttributeClass::Secret));
}

#[test]
fn an_unreadable_list_masks_everything_but_the_service_and_the_tree() {
    for bad in [
        s("span:x=SECRET"),
        s("event[zz]:x=pii"),
        Some(AnyValue {
            value: Some(Value::IntValue(3)),
        }),
        None,
    ] {
        let mut v = stored_forms();
        let before = v.rs.clone();
        let span = v.rs.scope_spans[0].spans[0].attributes.iter_mut();
        for a in span.filter(|a| a.key == MINIMIZED_ATTRIBUTE) {
            a.value = bad.clone();
        }
        let out = mask_sensitive(&mut v, |c| c == AttributeClass::Pii);
        assert!(out.list_unreadable);
        let bytes = v.rs.encode_to_vec();
        for leaked in [
            "0123456789abcdef",
            "AbCdEf12",
            "203.0.113.0",
            "node-1",
            "NotFound",
            "/users/{id}",
        ] {
            assert!(!contains(&bytes, leaked), "{leaked} in {bad:?}");
        }
        assert_eq!(
            str_of(&v.rs.resource.as_ref().unwrap().attributes, "service.name"),
            "billing"
        );
        assert_eq!(
            str_of(&v.span().attributes, POLICY_DIGEST_ATTRIBUTE),
            "ab12"
        );
        assert_same_tree(&before, &v.rs);
    }
}

#[test]
fn placeholders_keep_the_tree_only() {
    let mut v = stored_forms();
    let before = v.rs.clone();
    placeholder(&mut v);
    assert_same_tree(&before, &v.rs);
    let span = v.span();
    assert_eq!(span.name, HIDDEN);
    assert_eq!(span.kind, 2);
    assert_eq!(span.flags, 0x301);
    assert!(span.events.is_empty() && span.status.is_none() && span.trace_state.is_empty());
    assert_eq!(span.attributes.len(), 1);
    assert_eq!(span.attributes[0].key, PLACEHOLDER_ATTRIBUTE);
    assert_eq!(span.links.len(), 1);
    assert!(span.links[0].attributes.is_empty());
    assert_eq!(v.service(), HIDDEN);
    assert!(v.scope().scope.is_none());
    let bytes = v.rs.encode_to_vec();
    for leaked in [
        "billing", "io.acme", "ops@acme", "users", "node-1", "peer", "schemas", "mail", "login",
    ] {
        assert!(!contains(&bytes, leaked), "{leaked}");
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_same_tree(a: &ResourceSpans, b: &ResourceSpans) {
    let (x, y) = (&a.scope_spans[0].spans[0], &b.scope_spans[0].spans[0]);
    assert_eq!(x.trace_id, y.trace_id);
    assert_eq!(x.span_id, y.span_id);
    assert_eq!(x.parent_span_id, y.parent_span_id);
    assert_eq!(x.start_time_unix_nano, y.start_time_unix_nano);
    assert_eq!(x.end_time_unix_nano, y.end_time_unix_nano);
    let ids = |s: &Span| -> Vec<(Vec<u8>, Vec<u8>)> {
        s.links
            .iter()
            .map(|l| (l.trace_id.clone(), l.span_id.clone()))
            .collect()
    };
    assert_eq!(ids(x), ids(y));
}

/// A random span: for every value place, a bit set of listed classes (0 = not listed).
#[derive(Debug, Clone)]
struct Shape {
    resource: Vec<u8>,
    scope: Vec<u8>,
    span: Vec<u8>,
    events: Vec<(u8, Vec<u8>)>,
    links: Vec<Vec<u8>>,
    name: u8,
    status: u8,
    dangling: Vec<(u8, u8)>,
    refused: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    let classes = || 0u8..8;
    let list = move |n| prop::collection::vec(classes(), 0..n);
    (
        (list(5), list(3), list(8)),
        prop::collection::vec((classes(), list(3)), 0..3),
        prop::collection::vec(list(3), 0..3),
        (classes(), classes()),
        prop::collection::vec((0u8..6, classes()), 0..4),
        0usize..3,
    )
        .prop_map(
            |((resource, scope, span), events, links, (name, status), dangling, refused)| Shape {
                resource,
                scope,
                span,
                events,
                links,
                name,
                status,
                dangling,
                refused,
            },
        )
}

fn set_of(bits: u8) -> ClassSet {
    AttributeClass::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(ClassSet::EMPTY, |s, (_, c)| s.with(c))
}

/// Hands out unique keys and value tokens and writes the list entries for them.
#[derive(Default)]
struct Builder {
    n: usize,
    values: Vec<(String, ClassSet)>,
    keys: Vec<String>,
    entries: Vec<MinimizedEntry<'static>>,
}

impl Builder {
    fn next(&mut self, bits: u8, place: &dyn Fn(String) -> Place<'static>) -> (String, String) {
        self.n += 1;
        let (key, value) = (format!("K{:04}", self.n), format!("V{:04}Q", self.n));
        for class in set_of(bits).iter() {
            self.entries.push(MinimizedEntry {
                place: place(key.clone()),
                class,
            });
        }
        self.values.push((value.clone(), set_of(bits)));
        self.keys.push(key.clone());
        (key, value)
    }

    fn attrs(&mut self, bits: &[u8], place: &dyn Fn(String) -> Place<'static>) -> Vec<KeyValue> {
        bits.iter()
            .map(|b| {
                let (k, v) = self.next(*b, place);
                kv(&k, &v)
            })
            .collect()
    }
}

/// Builds the span, its list, and every value token with its listed classes.
fn build(shape: &Shape) -> (SpanView, Vec<(String, ClassSet)>, Vec<String>) {
    let mut b = Builder::default();
    let mut resource = b.attrs(&shape.resource, &|k| Place::Resource(k.into()));
    resource.push(kv("service.name", "SVCNAME"));
    let scope = b.attrs(&shape.scope, &|k| Place::Scope(k.into()));
    let mut span_attrs = b.attrs(&shape.span, &|k| Place::Span(k.into()));
    let mut events = Vec::new();
    for (i, (name_bits, ev_attrs)) in shape.events.iter().enumerate() {
        let i = i as u32;
        let attributes = b.attrs(ev_attrs, &move |k| Place::Event {
            index: i,
            key: k.into(),
        });
        let (_, name) = b.next(*name_bits, &move |_| Place::EventName(i));
        events.push(Event {
            name,
            attributes,
            ..Default::default()
        });
    }
    let mut links = Vec::new();
    for (i, l_attrs) in shape.links.iter().enumerate() {
        let i = i as u32;
        let attributes = b.attrs(l_attrs, &move |k| Place::Link {
            index: i,
            key: k.into(),
        });
        links.push(Link {
            trace_id: vec![i as u8 + 1; 16],
            span_id: vec![i as u8 + 1; 8],
            attributes,
            ..Default::default()
        });
    }
    let (_, name) = b.next(shape.name, &|_| Place::Name);
    let (_, status) = b.next(shape.status, &|_| Place::Status);
    for (which, bits) in &shape.dangling {
        for class in set_of(*bits).iter() {
            let place = match which {
                0 => Place::Span("MISSING".into()),
                1 => Place::Resource("MISSING".into()),
                2 => Place::Event {
                    index: 99,
                    key: "x".into(),
                },
                3 => Place::EventName(u32::MAX),
                4 => Place::Link {
                    index: 7,
                    key: "y".into(),
                },
                _ => Place::Scope("MISSING".into()),
            };
            b.entries.push(MinimizedEntry { place, class });
        }
    }
    span_attrs.push(kv(MINIMIZED_ATTRIBUTE, &format_minimized(&b.entries)));
    let mut span = tree_span(&name, span_attrs);
    span.status = Some(Status {
        message: status,
        code: 2,
    });
    span.events = events;
    span.links = links;
    let mut v = view(resource, span);
    v.rs.scope_spans[0].scope.as_mut().unwrap().attributes = scope;
    (v, b.values, b.keys)
}

proptest! {
    #[test]
    fn no_refused_value_survives_masking(shape in shape()) {
        let (mut v, values, _) = build(&shape);
        let before = v.rs.clone();
        let refused = AttributeClass::ALL[shape.refused];
        let out = mask_sensitive(&mut v, |c| c != refused);
        let bytes = v.rs.encode_to_vec();
        let mut expect_masked = 0;
        for (value, classes) in &values {
            if classes.contains(refused) {
                expect_masked += 1;
                prop_assert!(!contains(&bytes, value), "{} of {:?} leaked", value, classes);
            } else {
                prop_assert!(contains(&bytes, value), "{} of {:?} was masked", value, classes);
            }
        }
        prop_assert_eq!(out.masked, expect_masked);
        prop_assert!(contains(&bytes, "SVCNAME"));
        assert_same_tree(&before, &v.rs);
    }

    #[test]
    fn placeholders_leak_nothing(shape in shape()) {
        let (mut v, values, keys) = build(&shape);
        let before = v.rs.clone();
        placeholder(&mut v);
        let bytes = v.rs.encode_to_vec();
        for (value, _) in &values {
            prop_assert!(!contains(&bytes, value));
        }
        for key in &keys {
            prop_assert!(!contains(&bytes, key));
        }
        for leaked in ["SVCNAME", MINIMIZED_ATTRIBUTE, "io.acme", "maintainer", "schemas"] {
            prop_assert!(!contains(&bytes, leaked));
        }
        assert_same_tree(&before, &v.rs);
    }
}
