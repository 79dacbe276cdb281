//! Leak scan: findings say what and where, never the value; OCSF 2006; summary table.

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_redact::{Kind, Location, Policy, Redactor, summary};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn spans(service: &str, list: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: list,
            ..Default::default()
        }],
        ..Default::default()
    }
}

const EMAIL: &str = "jane.doe@example.com";
const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

#[test]
fn findings_place_values_without_holding_them() {
    let r = Redactor::new(Policy::default()).expect("detectors");
    let input = vec![
        spans(
            "checkout",
            vec![Span {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                name: format!("POST /users/{EMAIL}"),
                attributes: vec![
                    kv("user.email", EMAIL),
                    kv(
                        "http.request.header.authorization",
                        &format!("token {TOKEN}"),
                    ),
                    kv("db.statement", "SELECT * FROM t WHERE id = 42"),
                    kv("http.route", "/users/{id}"),
                ],
                ..Default::default()
            }],
        ),
        spans(
            "web",
            vec![Span {
                name: "GET /".into(),
                attributes: vec![kv("note", &format!("a {EMAIL} b {EMAIL}"))],
                ..Default::default()
            }],
        ),
    ];
    let before = format!("{input:?}");
    let findings = r.scan(&input);
    assert_eq!(
        format!("{input:?}"),
        before,
        "scan must not modify its input"
    );

    let all = serde_json::to_string(&findings).expect("json");
    assert!(!all.contains(EMAIL) && !all.contains(TOKEN), "{all}");
    for f in &findings {
        let ocsf = f.to_ocsf_at(1_700_000_000_000).to_string();
        assert!(!ocsf.contains(EMAIL) && !ocsf.contains(TOKEN), "{ocsf}");
    }

    let find = |service: &str, loc: Location, key: &str, kind: Kind| {
        findings
            .iter()
            .find(|f| {
                f.service == service
                    && f.location == loc
                    && f.attribute_key == key
                    && f.kind == kind
            })
            .unwrap_or_else(|| {
                panic!("no {kind} finding at {service}/{loc:?}/{key}: {findings:#?}")
            })
    };
    let name = find("checkout", Location::SpanName, "", Kind::Email);
    assert_eq!(name.trace_id, "ab".repeat(16));
    assert_eq!(name.span_id, "cd".repeat(8));
    assert_eq!(name.span_name, "POST /users/<email>");
    assert_eq!(
        find(
            "checkout",
            Location::SpanAttribute,
            "user.email",
            Kind::Email
        )
        .rule,
        "key-name"
    );
    find(
        "checkout",
        Location::SpanAttribute,
        "http.request.header.authorization",
        Kind::Secret,
    );
    assert_eq!(
        find("web", Location::SpanAttribute, "note", Kind::Email).count,
        2
    );
    assert!(
        findings
            .iter()
            .all(|f| f.kind != Kind::SqlLiteral && f.attribute_key != "http.route"),
        "SQL literals and routes are not leaks: {findings:#?}"
    );

    let ocsf = find(
        "checkout",
        Location::SpanAttribute,
        "user.email",
        Kind::Email,
    )
    .to_ocsf_at(1_700_000_000_000);
    assert_eq!(ocsf["class_uid"], 2006);
    assert_eq!(ocsf["category_uid"], 2);
    assert_eq!(ocsf["activity_id"], 1);
    assert_eq!(ocsf["type_uid"], 200601);
    assert_eq!(ocsf["time"], 1_700_000_000_000u64);
    assert_eq!(ocsf["metadata"]["product"]["name"], "Sentrace");
    assert_eq!(ocsf["data_security"]["category_id"], 1);
    assert_eq!(ocsf["resources"][0]["name"], "checkout");
    assert_eq!(ocsf["resources"][0]["data"]["attribute_key"], "user.email");
    assert_eq!(ocsf["finding_info"]["uid"].as_str().map(str::len), Some(32));
    let secret = find(
        "checkout",
        Location::SpanAttribute,
        "http.request.header.authorization",
        Kind::Secret,
    )
    .to_ocsf();
    assert_eq!(secret["data_security"]["category_id"], 6);
    assert_eq!(secret["severity_id"], 4);

    let table = summary(&findings);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SERVICE"), "{table}");
    assert!(
        lines.iter().any(|l| l.starts_with("web")
            && l.contains("email")
            && l.contains("note")
            && l.trim_end().ends_with('1')
            && l.contains(" 2 ")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("checkout") && l.contains("span_name")),
        "{table}"
    );
    assert!(!table.contains(EMAIL));
}

#[test]
fn empty_input_has_an_empty_summary() {
    let r = Redactor::new(Policy::default()).expect("detectors");
    let findings = r.scan(&[spans(
        "svc",
        vec![Span {
            name: "GET /health".into(),
            ..Default::default()
        }],
    )]);
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(summary(&findings).contains("no sensitive values found"));
}
