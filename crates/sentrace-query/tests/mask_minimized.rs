//! The write path and the read path together: spans minimized by `sentrace-redact` under
//! any action (`keep` included, which stores values in clear), encoded canonically,
//! decoded, then masked by `mask_sensitive`. Property: no value of a refused class is
//! left, in clear or in any stored form, and everything of an allowed class is left.

use std::sync::OnceLock;

use proptest::prelude::*;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use sentrace_core::{AttributeClass, TenantId, canonical};
use sentrace_query::{SpanView, mask_sensitive};
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

/// Planted values: (text, class, marker prefix of its kind in stored forms).
const PLANTED: &[(&str, AttributeClass, &[&str])] = &[
    (
        "jane.doe@example.com",
        AttributeClass::Pii,
        &["<email", "pse:email:", "tok:email:"],
    ),
    (
        "+44 20 7946 0958",
        AttributeClass::Pii,
        &["<phone", "pse:phone:", "tok:phone:"],
    ),
    (
        "4111 1111 1111 1111",
        AttributeClass::Financial,
        &["<card", "pse:card:", "tok:card:"],
    ),
    (
        "GB82WEST12345698765432",
        AttributeClass::Financial,
        &["<iban", "pse:iban:", "tok:iban:"],
    ),
    (
        "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        AttributeClass::Secret,
        &["<secret", "pse:secret:", "tok:secret:"],
    ),
];

const ACTIONS: &[&str] = &[
    "keep",
    "mask",
    "pseudonym",
    "token",
    "truncate",
    "generalize",
];

fn redactor(action: &str) -> &'static Redactor {
    static R: OnceLock<Vec<Redactor>> = OnceLock::new();
    let all = R.get_or_init(|| {
        ACTIONS
            .iter()
            .map(|a| {
                let toml = format!(
                    "version = 1\n[actions]\nemail = \"{a}\"\nphone = \"{a}\"\ncard = \"{a}\"\n\
                     iban = \"{a}\"\nsecret = \"{a}\"\n"
                );
                Redactor::new(Policy::from_toml(&toml, "t.toml").expect("policy"))
                    .expect("detectors")
            })
            .collect()
    });
    let i = ACTIONS.iter().position(|a| *a == action).unwrap_or(0);
    &all[i]
}

fn s(v: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(v)),
    })
}

fn kv(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: s(v),
        ..Default::default()
    }
}

/// Where a planted value goes (free-text places, so only the detectors find it).
#[derive(Debug, Clone, Copy)]
enum Where {
    Resource,
    Span,
    Event,
    EventName,
    Link,
    Name,
    Status,
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn refused_classes_never_leave_the_read_path(
        planted in prop::collection::vec((0..PLANTED.len(), prop::sample::select(vec![
            Where::Resource, Where::Span, Where::Event, Where::EventName, Where::Link,
            Where::Name, Where::Status,
        ])), 1..6),
        action in prop::sample::select(ACTIONS.to_vec()),
        refused in 0..AttributeClass::ALL.len(),
    ) {
        let refused = AttributeClass::ALL[refused];
        let mut sp = Span {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            parent_span_id: vec![5; 8],
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            name: "op".into(),
            events: vec![span::Event { name: "ev".into(), ..Default::default() }],
            links: vec![span::Link { trace_id: vec![6; 16], span_id: vec![7; 8], ..Default::default() }],
            status: Some(Status { message: String::new(), code: 2 }),
            ..Default::default()
        };
        let mut resource = vec![kv("service.name", "shop".into())];
        for (n, (i, place)) in planted.iter().enumerate() {
            let text = format!("note {} end", PLANTED[*i].0);
            let key = format!("note{n}");
            match place {
                Where::Resource => resource.push(kv(&key, text)),
                Where::Span => sp.attributes.push(kv(&key, text)),
                Where::Event => sp.events[0].attributes.push(kv(&key, text)),
                Where::EventName => sp.events[0].name.push_str(&format!(" {text}")),
                Where::Link => sp.links[0].attributes.push(kv(&key, text)),
                Where::Name => sp.name.push_str(&format!(" {text}")),
                Where::Status => {
                    if let Some(st) = sp.status.as_mut() {
                        st.message.push_str(&format!(" {text}"));
                    }
                }
            }
        }
        let mut batch = vec![ResourceSpans {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans: vec![sp], ..Default::default() }],
            ..Default::default()
        }];
        let tenant = TenantId::new("t").expect("tenant");
        redactor(action).minimize(&tenant, &mut batch, &InMemorySecrets::from_master_key([1; 32]));
        let (rs, ss) = (&batch[0], &batch[0].scope_spans[0]);
        let stored = canonical::encode(rs, ss, &ss.spans[0]);
        let mut view = SpanView::new(canonical::decode(&stored).expect("decodes")).expect("one span");
        let outcome = mask_sensitive(&mut view, |c| c != refused);
        let out = canonical::encode(&view.rs, view.scope(), view.span());
        // A place (a key, a name, a message) that holds a refused value is masked whole.
        let place_of = |n: usize, w: Where| match w {
            Where::Name | Where::Status | Where::EventName => format!("{w:?}"),
            _ => format!("{w:?}{n}"),
        };
        let refused_places: Vec<String> = planted
            .iter()
            .enumerate()
            .filter(|(_, (i, _))| PLANTED[*i].1 == refused)
            .map(|(n, (_, w))| place_of(n, *w))
            .collect();
        for (n, (i, w)) in planted.iter().enumerate() {
            let (text, class, markers) = PLANTED[*i];
            if class == refused {
                prop_assert!(!contains(&out, text), "{text} left in clear under {action}");
                for m in markers {
                    prop_assert!(!contains(&out, m), "{m}… of {text} left under {action}");
                }
                prop_assert!(outcome.masked > 0 && outcome.classes.contains(refused));
            } else if action == "keep" && !refused_places.contains(&place_of(n, *w)) {
                prop_assert!(contains(&out, text), "{text} of an allowed class was masked");
            }
        }
        // The tree is untouched.
        prop_assert_eq!(&view.span().trace_id, &vec![3; 16]);
        prop_assert_eq!(&view.span().parent_span_id, &vec![5; 8]);
        prop_assert_eq!(view.span().end_time_unix_nano, 20);
        prop_assert_eq!(view.service(), "shop");
    }
}
