//! Property: for every detector, a value it detects never appears in the output under the
//! default policy, whatever attribute, depth or array position it sits in; and its place
//! is listed in the span's `sentrace.minimized` with its class.

use std::sync::OnceLock;

use base64::Engine as _;
use proptest::prelude::*;
use sentrace_core::proto::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use sentrace_core::sensitivity::{Place as ListPlace, parse_minimized};
use sentrace_core::{AttributeClass, MINIMIZED_ATTRIBUTE, TenantId};
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| Redactor::new(Policy::default()).expect("detectors compile"))
}

fn luhn_complete(body: &str) -> String {
    // Append the check digit that makes body || d pass Luhn.
    for d in 0..10 {
        let cand = format!("{body}{d}");
        let sum: u32 = cand
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let mut x = u32::from(b - b'0');
                if i % 2 == 1 {
                    x *= 2;
                    if x > 9 {
                        x -= 9;
                    }
                }
                x
            })
            .sum();
        if sum.is_multiple_of(10) {
            return cand;
        }
    }
    unreachable!("one check digit always fits")
}

fn iban_gb(bank: &str, digits: &str) -> String {
    let bban = format!("{bank}{digits}");
    let rearranged = format!("{bban}GB00");
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).expect("alphanumeric");
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("GB{:02}{bban}", 98 - rem)
}

/// (detector, value) pairs: each value is one its detector finds.
fn sensitive() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        (
            "[a-z]{1,8}(\\.[a-z]{1,6})?",
            "[a-z]{2,10}",
            prop::sample::select(vec!["com", "org", "de", "co.uk", "io"])
        )
            .prop_map(|(l, d, t)| ("email", format!("{l}@{d}.{t}"))),
        ("[0-9]{14}", prop::sample::select(vec![" ", "-", ""])).prop_map(|(b, sep)| {
            let n = luhn_complete(&format!("4{b}"));
            let groups: Vec<&str> = (0..4).map(|i| &n[i * 4..i * 4 + 4]).collect();
            ("card", groups.join(sep))
        }),
        ("[2-9][0-9]{2}", "[2-9][0-9]{2}", "[0-9]{4}")
            .prop_map(|(a, b, c)| ("phone", format!("({a}) {b}-{c}"))),
        ("[0-9]{4}", "[0-9]{4}").prop_map(|(a, b)| ("phone", format!("+44 20 {a} {b}"))),
        (1u32..666, 1u32..100, 1u32..10000)
            .prop_map(|(a, g, s)| ("ssn", format!("{a:03}-{g:02}-{s:04}"))),
        ("[A-Z]{4}", "[0-9]{14}").prop_map(|(b, d)| ("iban", iban_gb(&b, &d))),
        (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
            .prop_filter("not loopback", |(a, ..)| *a != 127)
            .prop_map(|(a, b, c, d)| ("ipv4", format!("{a}.{b}.{c}.{d}"))),
        ("[A-Za-z0-9_-]{10,30}", "[A-Za-z0-9_-]{20,43}").prop_map(|(p, sig)| {
            let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(b"{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
            let pl = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{{\"sub\":\"{p}\"}}"));
            ("jwt", format!("{h}.{pl}.{sig}"))
        }),
        "[A-Za-z0-9]{36}".prop_map(|t| ("github-token", format!("ghp_{t}"))),
        "[A-Z2-7]{16}".prop_map(|t| ("aws-access-key-id", format!("AKIA{t}"))),
        "[A-Za-z0-9]{24}".prop_map(|t| ("stripe-secret-key", format!("sk_live_{t}"))),
        "[A-Za-z0-9_-]{20}".prop_map(|t| ("gitlab-token", format!("glpat-{t}"))),
        "[A-Za-z0-9]{24}".prop_map(|t| ("slack-token", format!("xoxb-1234567890-{t}"))),
        "[A-Za-z0-9_-]{35}".prop_map(|t| ("gcp-api-key", format!("AIza{t}"))),
        "[A-Za-z0-9]{12,40}".prop_map(|t| ("bearer", format!("Bearer {t}Zz9"))),
        "[A-Za-z0-9!]{6,16}".prop_map(|p| (
            "url-password",
            format!("postgres://app:{p}@db.internal:5432/main")
        )),
        "[A-Za-z0-9]{6,16}".prop_map(|p| ("key-value", format!("password={p}"))),
        "[A-Za-z0-9+/]{64}".prop_map(|b| (
            "private-key",
            format!("-----BEGIN PRIVATE KEY-----\n{b}\n-----END PRIVATE KEY-----")
        )),
    ]
}

/// The part of a detected value that must not survive (for credentials with a label, the
/// credential; for URLs, the password).
fn secret_part<'a>(rule: &str, v: &'a str) -> &'a str {
    match rule {
        "bearer" => v.trim_start_matches("Bearer "),
        "url-password" => v
            .trim_start_matches("postgres://app:")
            .split('@')
            .next()
            .unwrap_or(v),
        "key-value" => v.trim_start_matches("password="),
        _ => v,
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        prop::sample::select(vec![
            "message",
            "exception.message",
            "exception.stacktrace",
            "log.body",
            "url.full",
            "http.url",
            "url.query",
            "db.statement",
            "db.query.text",
            "http.request.body",
            "http.request.header.x-custom",
            "rpc.request",
            "messaging.payload",
        ])
        .prop_map(str::to_string),
    ]
}

fn wrap(v: AnyValue, path: &[(bool, usize)]) -> AnyValue {
    // Each step nests the value in an array (at position `pos`) or a kvlist.
    let mut v = v;
    for (as_array, pos) in path {
        v = if *as_array {
            let mut values: Vec<AnyValue> = (0..*pos)
                .map(|i| AnyValue {
                    value: Some(Value::StringValue(format!("filler {i}"))),
                })
                .collect();
            values.push(v);
            AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values })),
            }
        } else {
            AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: format!("k{pos}"),
                        value: Some(v),
                        ..Default::default()
                    }],
                })),
            }
        };
    }
    v
}

#[derive(Debug, Clone, Copy)]
enum Place {
    SpanAttr,
    ResourceAttr,
    SpanName,
    Status,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn detected_values_never_survive(
        (rule, value) in sensitive(),
        key in key(),
        path in prop::collection::vec((any::<bool>(), 0usize..4), 0..5),
        before in prop::sample::select(vec!["", "user ", "failed: ", "x=1 ", "see "]),
        after in prop::sample::select(vec!["", " now", ". retry", " (ok)", ";"]),
        place in prop::sample::select(vec![Place::SpanAttr, Place::SpanAttr, Place::ResourceAttr, Place::SpanName, Place::Status]),
    ) {
        let r = redactor();
        prop_assume!(r.detectors().detects(&value), "generator produced an undetected value {:?}", value);
        let class = sentrace_redact::keys::classify_normalized(&sentrace_redact::keys::normalize(&key));
        // Infrastructure keys (`host.ip`, `server.address`) keep server addresses by design.
        prop_assume!(!(rule == "ipv4" && path.is_empty() && class == sentrace_redact::keys::KeyClass::Infra));
        let text = format!("{before}{value}{after}");
        let mut span = Span::default();
        let mut resource = Resource::default();
        let attr = KeyValue {
            key: key.clone(),
            value: Some(wrap(AnyValue { value: Some(Value::StringValue(text.clone())) }, &path)),
            ..Default::default()
        };
        match place {
            Place::SpanAttr => span.attributes.push(attr),
            Place::ResourceAttr => resource.attributes.push(attr),
            Place::SpanName => span.name = text.clone(),
            Place::Status => span.status = Some(Status { message: text.clone(), code: 2 }),
        }
        let mut rs = vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }];
        let secrets = InMemorySecrets::from_master_key([3; 32]);
        r.minimize(&TenantId::new("prop").expect("valid"), &mut rs, &secrets);
        let out = format!("{rs:?}");
        let secret = secret_part(rule, &value);
        prop_assert!(!out.contains(secret), "{rule} value {secret:?} survived under key {key:?} at {place:?}/{path:?}: {out}");
        if rule == "card" {
            let digits: String = secret.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!out.contains(&digits), "card digits survived: {out}");
        }
        // And the place is listed in the span with the value's class. (Under a SQL key the
        // literal sanitizer may cut a value into `?`s first: then only literals, which
        // have no class, were seen.)
        prop_assume!(class != sentrace_redact::keys::KeyClass::Sql);
        let span = &rs[0].scope_spans[0].spans[0];
        let list = sentrace_core::otlp::attr_str(&span.attributes, MINIMIZED_ATTRIBUTE);
        prop_assert!(list.is_some(), "{rule} at {place:?}: no {MINIMIZED_ATTRIBUTE}: {out}");
        let entries = parse_minimized(list.unwrap_or_default()).expect("the list parses");
        let want = match place {
            Place::SpanAttr => ListPlace::Span(key.as_str().into()),
            Place::ResourceAttr => ListPlace::Resource(key.as_str().into()),
            Place::SpanName => ListPlace::Name,
            Place::Status => ListPlace::Status,
        };
        let classes: Vec<AttributeClass> =
            entries.iter().filter(|e| e.place == want).map(|e| e.class).collect();
        prop_assert!(!classes.is_empty(), "{rule} at {want:?} not listed: {entries:?}");
        // (A URL's `user:password@host` can read as an e-mail address, which wins.)
        if class == sentrace_redact::keys::KeyClass::Plain && rule != "url-password" {
            let expected = match rule {
                "email" | "phone" | "ssn" | "ipv4" => AttributeClass::Pii,
                "card" | "iban" => AttributeClass::Financial,
                _ => AttributeClass::Secret,
            };
            prop_assert!(classes.contains(&expected), "{rule} at {want:?}: {classes:?}");
        }
    }
}
