//! The list of minimized places ([`MINIMIZED_ATTRIBUTE`]) the walk writes into each span.

use sentrace_core::proto::common::v1::any_value::Value;
use sentrace_core::proto::common::v1::{AnyValue, InstrumentationScope};
use sentrace_core::proto::trace::v1::{ResourceSpans, Span, Status, span};
use sentrace_core::sensitivity::{MinimizedEntry, Place, parse_minimized};
use sentrace_core::{AttributeClass, TenantId};

use super::tests::{kv, one_span, s};
use super::*;
use crate::InMemorySecrets;

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";

fn list_of(rs: &[ResourceSpans]) -> Option<String> {
    let span = &rs[0].scope_spans[0].spans[0];
    let found: Vec<_> = span
        .attributes
        .iter()
        .filter(|kv| kv.key == MINIMIZED_ATTRIBUTE)
        .collect();
    assert!(found.len() <= 1, "one list per span: {found:?}");
    found.first().map(
        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(v)) => v.clone(),
            other => panic!("list is not a string: {other:?}"),
        },
    )
}

fn entries(list: &str) -> Vec<String> {
    parse_minimized(list)
        .unwrap()
        .iter()
        .map(MinimizedEntry::to_string)
        .collect()
}

fn minimize(policy: &str, rs: &mut [ResourceSpans]) -> MinimizeReport {
    let policy = if policy.is_empty() {
        Policy::default()
    } else {
        Policy::from_toml(policy, "t.toml").unwrap()
    };
    let r = Redactor::new(policy).unwrap();
    let tenant = TenantId::new("t").unwrap();
    r.minimize(&tenant, rs, &InMemorySecrets::from_master_key([5; 32]))
}

fn full_span() -> Vec<ResourceSpans> {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: format!("GET /users/{EMAIL}"),
        attributes: vec![
            kv("note", s(&format!("card {CARD}"))),
            kv("http.route", s("/users/{id}")),
            kv(
                "http.request.header.authorization",
                s("Bearer abcdefghijklmnop1234"),
            ),
            kv("a;b=c", s(EMAIL)),
        ],
        events: vec![
            span::Event {
                name: "clean".into(),
                ..Default::default()
            },
            span::Event {
                name: format!("mail to {EMAIL}"),
                attributes: vec![kv("exception.message", s(&format!("bad card {CARD}")))],
                ..Default::default()
            },
        ],
        links: vec![span::Link {
            attributes: vec![kv("peer", s("password=hunter2hunter2"))],
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
    rs[0].scope_spans[0].scope = Some(InstrumentationScope {
        attributes: vec![kv("maintainer", s(EMAIL))],
        ..Default::default()
    });
    rs
}

#[test]
fn every_place_is_listed_with_its_class() {
    let mut rs = full_span();
    minimize("", &mut rs);
    let list = list_of(&rs).expect("a list");
    assert_eq!(
        entries(&list),
        [
            "resource:owner=pii",
            "scope:maintainer=pii",
            "name=pii",
            "span:note=financial",
            "span:http.request.header.authorization=secret",
            "span:a%3Bb%3Dc=pii",
            "event[1].name=pii",
            "event[1]:exception.message=financial",
            "link[0]:peer=secret",
            "status=pii",
        ]
    );
    // The list names places, never values.
    assert!(!list.contains("jane") && !list.contains("4111") && !list.contains("hunter2"));
    let keys: Vec<&str> = rs[0].scope_spans[0].spans[0]
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(
        &keys[keys.len() - 2..],
        [POLICY_DIGEST_ATTRIBUTE, MINIMIZED_ATTRIBUTE]
    );
}

#[test]
fn every_action_is_listed_keep_and_drop_included() {
    for action in [
        "keep",
        "drop",
        "mask",
        "pseudonym",
        "token",
        "truncate",
        "generalize",
    ] {
        let mut rs = one_span(
            "svc",
            Span {
                attributes: vec![
                    kv("user.email", s(EMAIL)),
                    kv("n", s(&format!("to {EMAIL}"))),
                ],
                ..Default::default()
            },
        );
        minimize(
            &format!("version = 1\n[actions]\nemail = \"{action}\"\n"),
            &mut rs,
        );
        let list = list_of(&rs).unwrap_or_else(|| panic!("{action}: no list"));
        assert_eq!(
            entries(&list),
            ["span:user.email=pii", "span:n=pii"],
            "{action}"
        );
    }
}

#[test]
fn clean_spans_get_no_list_and_sql_literals_no_class() {
    let mut rs = one_span(
        "svc",
        Span {
            name: "GET /health".into(),
            attributes: vec![
                kv("http.route", s("/health")),
                kv("db.statement", s("SELECT * FROM t WHERE id = 42")),
            ],
            ..Default::default()
        },
    );
    let report = minimize("", &mut rs);
    assert_eq!(report.count(Kind::SqlLiteral, Action::Mask), 1);
    assert_eq!(list_of(&rs), None);
}

#[test]
fn values_minimized_upstream_keep_their_class() {
    let mut rs = one_span(
        "svc",
        Span {
            name: "tok:ssn:AbC123".into(),
            attributes: vec![
                kv(
                    "user.email",
                    s("pse:email:0123456789abcdef0123456789abcdef"),
                ),
                kv("note", s("mail to <email> about <card:…1111>")),
                kv("auth", s("Bearer <bearer>")),
                kv("plain", s("<html> is not a marker")),
            ],
            ..Default::default()
        },
    );
    let before = format!("{rs:?}");
    minimize("", &mut rs);
    let list = list_of(&rs).unwrap();
    assert_eq!(
        entries(&list),
        [
            "name=pii",
            "span:user.email=pii",
            "span:note=pii",
            "span:note=financial",
            "span:auth=secret",
        ]
    );
    // The markers themselves are left as they were.
    for kept in [
        "tok:ssn:AbC123",
        "pse:email:0123",
        "<card:…1111>",
        "Bearer <bearer>",
    ] {
        assert!(
            before.contains(kept) && format!("{rs:?}").contains(kept),
            "{kept}"
        );
    }
}

#[test]
fn agent_then_server_keeps_every_class() {
    // The agent generalizes client addresses and pseudonymizes; the server re-minimizes
    // under its own policy. The generalized address has no marker: only the agent's list
    // carries its class across.
    let mut rs = one_span(
        "svc",
        Span {
            attributes: vec![
                kv("client.address", s("203.0.113.77")),
                kv("user.email", s(EMAIL)),
                kv("note", s(&format!("card {CARD}"))),
            ],
            ..Default::default()
        },
    );
    minimize(
        "version = 1\n[actions]\nip = \"generalize\"\ncard = \"truncate\"\n",
        &mut rs,
    );
    let agent = entries(&list_of(&rs).unwrap());
    minimize("version = 1\n[actions]\nip = \"keep\"\n", &mut rs);
    let server = entries(&list_of(&rs).unwrap());
    assert_eq!(agent, server);
    assert_eq!(
        server,
        [
            "span:client.address=pii",
            "span:user.email=pii",
            "span:note=financial"
        ]
    );
}

#[test]
fn arriving_lists_only_add_and_bad_ones_fail_closed() {
    let mk = |list: AnyValue| {
        one_span(
            "svc",
            Span {
                attributes: vec![kv("http.route", s("/")), kv(MINIMIZED_ATTRIBUTE, list)],
                ..Default::default()
            },
        )
    };
    let mut rs = mk(s("span:x=secret"));
    minimize("", &mut rs);
    assert_eq!(list_of(&rs).as_deref(), Some("span:x=secret"));
    for bad in [
        s("span:x=top"),
        AnyValue {
            value: Some(Value::IntValue(1)),
        },
    ] {
        let mut rs = mk(bad);
        minimize("", &mut rs);
        assert_eq!(list_of(&rs).as_deref(), Some("*=pii;*=secret;*=financial"));
    }
    // An empty arriving list is an empty list: nothing stamped.
    let mut rs = mk(s(""));
    minimize("", &mut rs);
    assert_eq!(list_of(&rs), None);
}

#[test]
fn the_list_is_bounded() {
    let attributes = (0..MAX_LIST_ATTRS)
        .map(|i| kv(&format!("user{i}.email"), s(EMAIL)))
        .chain(std::iter::once(kv(&"k".repeat(300), s(CARD))))
        .collect();
    let mut rs = one_span(
        "svc",
        Span {
            attributes,
            ..Default::default()
        },
    );
    minimize("", &mut rs);
    let list = list_of(&rs).unwrap();
    let parsed = parse_minimized(&list).unwrap();
    assert!(list.len() <= sentrace_core::sensitivity::MAX_MINIMIZED_BYTES + 32);
    assert_eq!(
        parsed.len(),
        sentrace_core::sensitivity::MAX_MINIMIZED_ENTRIES + 2
    );
    let wild: Vec<AttributeClass> = parsed
        .iter()
        .filter(|e| e.place == Place::Anywhere)
        .map(|e| e.class)
        .collect();
    assert_eq!(wild, [AttributeClass::Pii, AttributeClass::Financial]);
}

const MAX_LIST_ATTRS: usize = 100;

#[test]
fn the_scan_ignores_the_reserved_attributes() {
    let mut rs = full_span();
    minimize("", &mut rs);
    let r = Redactor::new(Policy::default()).unwrap();
    let findings = r.scan(&rs);
    assert!(
        findings
            .iter()
            .all(|f| format!("{f:?}").find(MINIMIZED_ATTRIBUTE).is_none()),
        "{findings:?}"
    );
}
