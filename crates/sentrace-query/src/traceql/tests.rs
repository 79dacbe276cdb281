//! Unit tests of the TraceQL subset: what it accepts, how it evaluates, and that every
//! malformed or unsupported query is refused with a message naming the problem.

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::*;
use crate::SpanView;

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

fn view(
    service: &str,
    name: &str,
    kind: i32,
    status: i32,
    dur_ms: u64,
    attrs: Vec<KeyValue>,
) -> SpanView {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + dur_ms * 1_000_000,
        attributes: attrs,
        status: Some(Status {
            code: status,
            message: String::new(),
        }),
        ..Default::default()
    };
    SpanView::new(ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s(service)), kv("region", s("eu"))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap()
}

fn web() -> SpanView {
    view(
        "web",
        "GET /cart",
        2,
        2,
        150,
        vec![
            kv("http.status_code", Value::IntValue(500)),
            kv("http.method", s("GET")),
            kv("ratio", Value::DoubleValue(0.5)),
            kv("cached", Value::BoolValue(false)),
            kv("region", s("us")),
            kv("user.email", s("<redacted:pii>")),
        ],
    )
}

fn m(q: &str, v: &SpanView) -> bool {
    let query = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    query.trace_matches(std::slice::from_ref(v)).is_some()
}

#[test]
fn intrinsics() {
    let v = web();
    for q in [
        "{}",
        "{ }",
        r#"{ name = "GET /cart" }"#,
        r#"{ name =~ "GET.*" }"#,
        r#"{ name !~ "POST.*" }"#,
        r#"{ name != "x" }"#,
        "{ status = error }",
        "{ status != ok }",
        "{ kind = server }",
        "{ span:kind = server }",
        "{ duration > 100ms }",
        "{ duration >= 150ms && duration <= 0.15s }",
        "{ duration < 1.5s }",
        "{ duration > 1m } || { kind = server }",
    ] {
        assert!(m(q, &v), "{q} should match");
    }
    for q in [
        r#"{ name = "GET" }"#,
        r#"{ name =~ "GET" }"#,
        "{ status = ok }",
        "{ status = unset }",
        "{ kind = client }",
        "{ duration > 150ms }",
        "{ duration < 100us }",
    ] {
        assert!(!m(q, &v), "{q} should not match");
    }
}

#[test]
fn attributes_scopes_and_types() {
    let v = web();
    for q in [
        "{ span.http.status_code = 500 }",
        "{ span.http.status_code >= 500 && span.http.status_code < 600 }",
        "{ span.http.status_code > 499.5 }",
        "{ .http.method = \"GET\" }",
        "{ span.ratio < 1 }",
        "{ span.ratio = 0.5 }",
        "{ span.cached = false }",
        "{ span.cached != true }",
        "{ resource.service.name = \"web\" }",
        "{ resource.region = \"eu\" }",
        // Unscoped: the span's attribute wins over the resource's.
        "{ .region = \"us\" }",
        "{ .service.name =~ \"w.b\" }",
        "{ span.\"http.method\" = `GET` }",
        "{ (span.http.method = \"POST\" || span.http.method = \"GET\") && kind = server }",
        "{ span.http.method > \"A\" }",
        // Masked values compare as their mask.
        "{ span.user.email = \"<redacted:pii>\" }",
    ] {
        assert!(m(q, &v), "{q} should match");
    }
    for q in [
        "{ span.http.status_code = \"500\" }",
        "{ span.http.status_code != \"500\" }",
        "{ span.missing != \"x\" }",
        "{ resource.http.method = \"GET\" }",
        "{ span.service.name = \"web\" }",
        "{ .region = \"eu\" }",
        "{ span.http.method =~ \"G\" }",
        "{ span.user.email =~ \".*@.*\" }",
        "{ span.cached = true }",
    ] {
        assert!(!m(q, &v), "{q} should not match");
    }
}

#[test]
fn spanset_operators() {
    let a = web();
    let b = view(
        "db",
        "SELECT",
        3,
        0,
        5,
        vec![kv("db.system", s("postgres"))],
    );
    let spans = vec![a, b];
    let q = parse("{ kind = server } && { span.db.system = \"postgres\" }").unwrap();
    assert_eq!(q.trace_matches(&spans), Some(vec![0, 1]));
    let q = parse("{ kind = server } && { span.db.system = \"mysql\" }").unwrap();
    assert_eq!(q.trace_matches(&spans), None);
    let q = parse("{ kind = producer } || { span.db.system = \"postgres\" }").unwrap();
    assert_eq!(q.trace_matches(&spans), Some(vec![1]));
    let q = parse("({ kind = producer } || { kind = client }) && { status = error }").unwrap();
    assert_eq!(q.trace_matches(&spans), Some(vec![0, 1]));
    let q = parse("{ }").unwrap();
    assert_eq!(q.trace_matches(&spans), Some(vec![0, 1]));
    assert_eq!(q.trace_matches(&[]), None);
}

#[test]
fn fields_are_listed_once() {
    let q = parse("{ name = \"a\" && span.x = 1 } || { name = \"b\" && .y = 2 }").unwrap();
    let f: Vec<String> = q.fields().iter().map(|f| f.to_traceql()).collect();
    assert_eq!(f, ["name", "span.x", ".y"]);
}

#[test]
fn parse_field_for_tag_endpoints() {
    assert_eq!(
        parse_field("resource.service.name").unwrap(),
        Field::Attr(AttrScope::Resource, "service.name".into())
    );
    assert_eq!(
        parse_field(".http.method").unwrap(),
        Field::Attr(AttrScope::Any, "http.method".into())
    );
    assert_eq!(
        parse_field("status").unwrap(),
        Field::Intrinsic(Intrinsic::Status)
    );
    assert!(
        parse_field("event.foo")
            .unwrap_err()
            .to_string()
            .contains("`event.`")
    );
    assert!(parse_field("foo bar").is_err());
}

/// Each query is refused, and the message names the construct.
#[test]
fn refusals_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("", "empty query"),
        ("   ", "empty query"),
        ("{", "`{` opened at byte 0 is not closed"),
        ("{ name = \"a\"", "not closed"),
        ("{ name = \"a }", "string opened with \" is not closed"),
        ("}", "expected a span set"),
        ("{ name }", "expected a comparison operator after `name`"),
        ("{ name = }", "expected a value after `name =`"),
        ("{ = \"a\" }", "expected a field"),
        ("{ foo = 1 }", "unknown field `foo`"),
        ("{ span. = 1 }", "attribute name missing after `span.`"),
        ("{ name = 1 }", "`name` compares with a quoted string"),
        ("{ status = \"error\" }", "`status` compares with"),
        ("{ status > ok }", "`status` compares with"),
        (
            "{ kind = serverr }",
            "expected a value after `kind =`, found `serverr`",
        ),
        (
            "{ duration > 100 }",
            "`duration` compares with a Go duration",
        ),
        ("{ duration > 100parsecs }", "malformed duration"),
        (
            "{ span.x = 100ms }",
            "a duration compares only with `duration`",
        ),
        ("{ span.x = error }", "status keyword"),
        ("{ span.x > true }", "needs `=` or `!=`"),
        ("{ span.x =~ 5 }", "needs a string regex"),
        ("{ span.x =~ \"(\" }", "invalid regex"),
        ("{ status =~ \"e.*\" }", "cannot be matched with a regex"),
        (
            "{ name = \"a\" } | count() > 2",
            "the pipeline operator `|`",
        ),
        ("{ } | select(span.foo)", "the pipeline operator `|`"),
        (
            "{ kind = server } >> { kind = client }",
            "the structural operator `>>`",
        ),
        (
            "{ kind = server } > { kind = client }",
            "the structural operator `>`",
        ),
        (
            "{ kind = server } ~ { kind = client }",
            "the structural operator `~`",
        ),
        (
            "{ kind = server } !< { kind = client }",
            "the structural operator `!<`",
        ),
        (
            "{ kind = server } &>> { kind = client }",
            "the structural operator `&>>`",
        ),
        ("rate()", "the metrics function `rate`"),
        ("{ } | rate()", "the pipeline operator `|`"),
        ("count() > 1", "the aggregate `count()`"),
        ("{ } with (sample=true)", "query hints `with (...)`"),
        ("{ span.a + 1 > 2 }", "arithmetic `+`"),
        ("{ span.a = 1 * 2 }", "arithmetic `*`"),
        ("{ !(name = \"a\") }", "negation `!`"),
        ("{ span.a = nil }", "`nil`"),
        ("{ span.a = span.b }", "comparing two fields"),
        ("{ event.name = \"x\" }", "the attribute scope `event.`"),
        ("{ link.x = \"x\" }", "the attribute scope `link.`"),
        ("{ trace:duration > 1s }", "the intrinsic `trace:duration`"),
        (
            "{ rootServiceName = \"x\" }",
            "the intrinsic `rootServiceName`",
        ),
        ("{ statusMessage = \"x\" }", "the intrinsic `statusMessage`"),
        ("{ true }", "a bare boolean `true`"),
        ("{ \"a\" = name }", "a literal on the left"),
        ("{ name = \"a\" } { }", "unexpected `{` after the query"),
        ("{ name = \"\\q\" }", "unknown escape"),
        ("{ span.x = 99999999999999999999 }", "out of range"),
        ("{ span.x = 1.2.3 }", "malformed number"),
        ("{ name = \"a\" } && ", "expected a span set"),
        ("{ # }", "unexpected character '#'"),
    ];
    let mut wrong = Vec::new();
    for (q, want) in cases {
        match parse(q) {
            Ok(_) => wrong.push(format!("{q:?} was accepted")),
            Err(e) if !e.to_string().contains(want) => {
                wrong.push(format!("{q:?}: {e:?} does not contain {want:?}"));
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn limits() {
    let long = format!("{{ name = \"{}\" }}", "a".repeat(MAX_QUERY_LEN));
    assert!(matches!(parse(&long), Err(TraceqlError::Limit { .. })));
    let deep = format!("{{ {}name = \"a\"{} }}", "(".repeat(40), ")".repeat(40));
    let e = parse(&deep).unwrap_err();
    assert!(e.to_string().contains("nesting"), "{e}");
    let many = vec!["span.a = 1"; MAX_CONDITIONS + 1].join(" && ");
    let e = parse(&format!("{{ {many} }}")).unwrap_err();
    assert!(e.to_string().contains("too many conditions"), "{e}");
    let sets = vec!["{ }"; MAX_SPANSETS + 1].join(" || ");
    let e = parse(&sets).unwrap_err();
    assert!(e.to_string().contains("too many span sets"), "{e}");
    // A regex whose compiled form is too large is refused, not built.
    let e = parse("{ name =~ \"(a{1,100}){1,100}(b{1,100}){1,100}\" }").unwrap_err();
    assert!(e.to_string().contains("invalid regex"), "{e}");
}

#[test]
fn go_durations() {
    use super::lex::go_duration;
    assert_eq!(go_duration("100ms"), Some(100_000_000));
    assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
    assert_eq!(go_duration("1h30m"), Some(5_400_000_000_000));
    assert_eq!(go_duration("250us"), Some(250_000));
    assert_eq!(go_duration("250µs"), Some(250_000));
    assert_eq!(go_duration("10"), None);
    assert_eq!(go_duration("1d"), None);
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of TraceQL and of what is refused, glued in any order.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just(" && ".to_string()),
            Just(" || ".to_string()),
            Just(" | ".to_string()),
            Just(" >> ".to_string()),
            Just("=~".to_string()),
            Just("!=".to_string()),
            Just(">=".to_string()),
            Just("name".to_string()),
            Just("duration".to_string()),
            Just("status".to_string()),
            Just("kind".to_string()),
            Just("span.http.route".to_string()),
            Just("resource.service.name".to_string()),
            Just(".x".to_string()),
            Just("\"a\\\"b\"".to_string()),
            Just("\"(a\"".to_string()),
            Just("100ms".to_string()),
            Just("-1.5e9".to_string()),
            Just("true".to_string()),
            Just("count()".to_string()),
            "\\PC{0,8}",
        ]
    }

    proptest! {
        /// Whatever arrives in `q`: a query or an error, never a panic; what parses lists
        /// its fields and evaluates on a span.
        #[test]
        fn parse_never_panics(parts in proptest::collection::vec(fragment(), 0..24)) {
            let q = parts.concat();
            if let Ok(query) = parse(&q) {
                prop_assert!(query.fields().len() <= MAX_CONDITIONS, "{q:?}");
                let _ = query.trace_matches(std::slice::from_ref(&web()));
            }
        }

        #[test]
        fn bytes_never_panic(q in "\\PC{0,64}") {
            let _ = parse(&q);
            let _ = parse_field(&q);
        }
    }
}
