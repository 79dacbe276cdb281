//! Tempo HTTP API contract tests: the real server, real TLS, the shapes Grafana's Tempo
//! data source reads (pinned against Tempo's `tempo.proto` and its `jsonpb` rendering),
//! protobuf answers that decode as Tempo's messages, TraceQL refusals, tenant isolation,
//! and masked values that never leak through tag values or search conditions.

mod common;

use common::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, Status};
use prost::Message;
use serde_json::{Value as Json, json};

const TEAMS: &str = r#"
[access.teams]
payments = ["checkout"]
"#;

/// Acme: frontend → checkout → ledger.
const T1: &str = "a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2";
/// Acme: a trace id with leading zeros (Tempo's search trims them).
const T3: &str = "00000000000000000000000000abcdef";
/// Globex.
const T2: &str = "c3c3c3c3c3c3c3c3d4d4d4d4d4d4d4d4";

const EMAIL: &str = "jane.doe@example.com";

/// `tempopb.Trace`, decoded as a client would (Tempo's field numbers).
#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// `tempopb.TraceByIDResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    #[prost(message, optional, tag = "2")]
    metrics: Option<Metrics>,
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metrics {
    #[prost(uint64, tag = "1")]
    inspected_bytes: u64,
}

fn id(hex_text: &str) -> Vec<u8> {
    (0..hex_text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).unwrap())
        .collect()
}

fn int_kv(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn mk(trace: &str, span_id: u8, parent: Option<u8>, name: &str, attrs: Vec<KeyValue>) -> Span {
    let mut s = span(u64::from(span_id), name);
    s.trace_id = id(trace);
    s.span_id = vec![span_id; 8];
    s.parent_span_id = parent.map(|p| vec![p; 8]).unwrap_or_default();
    s.attributes = attrs;
    s
}

fn ingest(srv: &Server) {
    let acme = srv.token("acme", "ingest");
    let globex = srv.token("globex", "ingest");
    let root = mk(
        T1,
        1,
        None,
        "GET /cart",
        vec![kv("user.email", EMAIL), kv("http.method", "GET")],
    );
    let mut pay = mk(
        T1,
        2,
        Some(1),
        "charge-card",
        vec![int_kv("http.status_code", 500), kv("http.route", "/pay")],
    );
    pay.kind = 3;
    pay.status = Some(Status {
        code: 2,
        message: "declined".into(),
    });
    let ledger = mk(
        T1,
        3,
        Some(2),
        "post-ledger-entry",
        vec![kv("ledger.account", "ACC-77")],
    );
    let zero = mk(T3, 4, None, "zero-trace", vec![]);
    for (svc, s) in [
        ("frontend", root),
        ("checkout", pay),
        ("ledger", ledger),
        ("frontend", zero),
    ] {
        let r = srv.post_proto(&acme, &request(svc, vec![s]));
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    }
    let g = mk(
        T2,
        9,
        None,
        "globex-secret-op",
        vec![kv("globex.key", "g-value")],
    );
    let r = srv.post_proto(&globex, &request("globex-api", vec![g]));
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
}

fn developer(srv: &Server, tenant: &str, team: &str) -> String {
    srv.cli(&[
        "tokens",
        "create",
        "--tenant",
        tenant,
        "--role",
        "developer",
        "--team",
        team,
    ])
    .trim()
    .to_string()
}

fn get_json(srv: &Server, token: &str, path: &str) -> Json {
    let r = srv.get(token, path);
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.text().unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ct, "application/json", "{path}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn keys(v: &Json) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort();
    k
}

/// Query-string encoding for TraceQL and logfmt values.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn search(srv: &Server, token: &str, params: &str) -> Json {
    get_json(srv, token, &format!("/tempo/api/search?{params}"))
}

fn trace_ids(found: &Json) -> Vec<String> {
    found["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("no traces array: {found}"))
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect()
}

fn bad_request(srv: &Server, token: &str, path: &str, names: &str) {
    let r = srv.get(token, path);
    let status = r.status().as_u16();
    let body = r.text().unwrap();
    assert_eq!(status, 400, "{path}: {body}");
    assert!(
        body.contains(names),
        "{path}: {body:?} does not name {names:?}"
    );
}

#[test]
fn echo_and_trace_by_id_in_json_and_protobuf() {
    let srv = Server::new(TEAMS).start();
    ingest(&srv);
    let admin = srv.token("acme", "admin");

    // Echo: Grafana's "Save & test"; authenticated like every query route.
    let r = srv.get(&admin, "/tempo/api/echo");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().unwrap(), "echo");
    let r = srv
        .client()
        .get(srv.query_url("/tempo/api/echo"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // v1 JSON: {"batches": [ResourceSpans]} with jsonpb conventions.
    let v1 = get_json(&srv, &admin, &format!("/tempo/api/traces/{T1}"));
    assert_eq!(keys(&v1), ["batches"]);
    let batches = v1["batches"].as_array().unwrap();
    let spans: Vec<&Json> = batches
        .iter()
        .flat_map(|b| {
            assert_eq!(keys(b), ["resource", "scopeSpans"], "{b}");
            b["scopeSpans"].as_array().unwrap().iter()
        })
        .flat_map(|ss| ss["spans"].as_array().unwrap().iter())
        .collect();
    assert_eq!(spans.len(), 3, "{v1}");
    let pay = spans.iter().find(|s| s["name"] == "charge-card").unwrap();
    assert_eq!(
        keys(pay),
        [
            "attributes",
            "endTimeUnixNano",
            "kind",
            "name",
            "parentSpanId",
            "spanId",
            "startTimeUnixNano",
            "status",
            "traceId"
        ],
        "{pay}"
    );
    // Ids are base64 (bytes fields), enums are names, 64-bit integers are strings.
    assert_eq!(pay["traceId"], "oaGhoaGhoaGysrKysrKysg==");
    assert_eq!(pay["spanId"], "AgICAgICAgI=");
    assert_eq!(pay["parentSpanId"], "AQEBAQEBAQE=");
    assert_eq!(pay["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(
        pay["status"],
        json!({"message": "declined", "code": "STATUS_CODE_ERROR"})
    );
    let start: u64 = pay["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = pay["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, 2_000_000);
    let attrs = pay["attributes"].as_array().unwrap();
    assert!(
        attrs.contains(&json!({"key": "http.status_code", "value": {"intValue": "500"}})),
        "{pay}"
    );
    assert!(
        attrs.contains(&json!({"key": "http.route", "value": {"stringValue": "/pay"}})),
        "{pay}"
    );
    let frontend = batches
        .iter()
        .find(|b| b.to_string().contains("GET /cart"))
        .unwrap();
    assert!(
        frontend["resource"]["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "service.name", "value": {"stringValue": "frontend"}}))
    );

    // v2 JSON: {"trace": {"resourceSpans": [...]}, "metrics": {}}.
    let v2 = get_json(&srv, &admin, &format!("/tempo/api/v2/traces/{T1}"));
    assert_eq!(keys(&v2), ["metrics", "trace"]);
    assert_eq!(keys(&v2["trace"]), ["resourceSpans"]);
    assert_eq!(v2["trace"]["resourceSpans"], v1["batches"]);
    assert_eq!(v2["metrics"], json!({}));

    // Protobuf, as Grafana asks for it.
    let proto = |path: &str| {
        let r = srv
            .client()
            .get(srv.query_url(path))
            .bearer_auth(&admin)
            .header("accept", "application/protobuf")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "application/protobuf");
        r.bytes().unwrap()
    };
    let t = TempoTrace::decode(proto(&format!("/tempo/api/traces/{T1}"))).unwrap();
    let names: Vec<String> = t
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"post-ledger-entry".to_string()));
    let r = TraceByIdResponse::decode(proto(&format!("/tempo/api/v2/traces/{T1}"))).unwrap();
    assert_eq!(r.status, 0);
    let spans: Vec<&Span> = r
        .trace
        .as_ref()
        .unwrap()
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .collect();
    assert_eq!(spans.len(), 3);
    assert!(spans.iter().all(|s| s.trace_id == id(T1)));

    // Short ids are left-padded (Tempo's search answers them trimmed).
    let short = get_json(&srv, &admin, "/tempo/api/v2/traces/abcdef");
    assert!(short.to_string().contains("zero-trace"), "{short}");
    // Unknown, foreign and malformed ids.
    assert_eq!(
        srv.get(&admin, &format!("/tempo/api/traces/{T2}"))
            .status()
            .as_u16(),
        404
    );
    bad_request(&srv, &admin, "/tempo/api/traces/xyz", "trace id");
    bad_request(
        &srv,
        &admin,
        &format!("/tempo/api/v2/traces/{T1}?q=%7B%7D"),
        "\"q\"",
    );
    // An ingest token reads nothing.
    let ingest = srv.token("acme", "ingest");
    assert_eq!(
        srv.get(&ingest, &format!("/tempo/api/traces/{T1}"))
            .status()
            .as_u16(),
        403
    );
}

#[test]
fn search_answers_tempo_shapes_and_refuses_what_it_cannot_answer() {
    let srv = Server::new(TEAMS).start();
    ingest(&srv);
    let admin = srv.token("acme", "admin");

    // TraceQL: the exact shape of one result.
    let q = enc(
        r#"{ resource.service.name = "checkout" && span.http.status_code >= 500 && status = error }"#,
    );
    let found = search(&srv, &admin, &format!("q={q}&limit=5"));
    assert_eq!(keys(&found), ["metrics", "traces"]);
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{found}");
    let t = &traces[0];
    assert_eq!(
        keys(t),
        [
            "durationMs",
            "rootServiceName",
            "rootTraceName",
            "serviceStats",
            "spanSet",
            "spanSets",
            "startTimeUnixNano",
            "traceID"
        ],
        "{t}"
    );
    assert_eq!(t["traceID"], T1);
    assert_eq!(t["rootServiceName"], "frontend");
    assert_eq!(t["rootTraceName"], "GET /cart");
    assert!(
        t["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{t}"
    );
    assert!(t["durationMs"].is_u64(), "{t}");
    assert_eq!(
        t["serviceStats"],
        json!({
            "checkout": {"spanCount": 1, "errorCount": 1},
            "frontend": {"spanCount": 1},
            "ledger": {"spanCount": 1}
        })
    );
    assert_eq!(t["spanSets"], json!([t["spanSet"].clone()]));
    let set = &t["spanSet"];
    assert_eq!(keys(set), ["matched", "spans"]);
    assert_eq!(set["matched"], 1);
    let s = &set["spans"][0];
    assert_eq!(
        keys(s),
        ["attributes", "durationNanos", "spanID", "startTimeUnixNano"]
    );
    assert_eq!(s["spanID"], "0202020202020202");
    assert_eq!(s["durationNanos"], "2000000");
    assert!(
        s["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert_eq!(
        s["attributes"],
        json!([
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "http.status_code", "value": {"intValue": "500"}},
            {"key": "status", "value": {"stringValue": "error"}}
        ])
    );
    let m = &found["metrics"];
    assert!(m["inspectedTraces"].as_u64().unwrap() >= 1, "{m}");
    assert!(
        m["inspectedBytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0,
        "{m}"
    );

    // `name` in the query puts the span name in the result; spss caps the spans listed.
    let found = search(
        &srv,
        &admin,
        &format!(
            "q={}&spss=1",
            enc("{ name =~ \".*\" && kind = server && name != \"zero-trace\" }")
        ),
    );
    let t = &found["traces"][0];
    assert_eq!(t["spanSet"]["matched"], 2, "{found}");
    assert_eq!(t["spanSet"]["spans"].as_array().unwrap().len(), 1);
    assert!(t["spanSet"]["spans"][0]["name"].is_string(), "{found}");

    // Between span sets; empty span set; trimmed trace ids.
    let both = enc(r#"{ name = "charge-card" } && { resource.service.name = "ledger" }"#);
    assert_eq!(trace_ids(&search(&srv, &admin, &format!("q={both}"))), [T1]);
    let none = enc(r#"{ name = "charge-card" } && { name = "nope" }"#);
    assert_eq!(
        search(&srv, &admin, &format!("q={none}"))["traces"],
        json!([])
    );
    let either = enc(r#"{ name = "nope" } || { name = "zero-trace" }"#);
    assert_eq!(
        trace_ids(&search(&srv, &admin, &format!("q={either}"))),
        ["abcdef"]
    );
    let mut all = trace_ids(&search(&srv, &admin, &format!("q={}", enc("{}"))));
    all.sort();
    assert_eq!(all, ["a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2", "abcdef"]);
    assert_eq!(
        trace_ids(&search(&srv, &admin, &format!("q={}&limit=1", enc("{ }")))).len(),
        1
    );
    let timed = enc("{ duration > 1ms && duration < 1s && kind = client }");
    assert_eq!(
        trace_ids(&search(&srv, &admin, &format!("q={timed}"))),
        [T1]
    );

    // Tags (logfmt): no span sets in the answer; substring, case-insensitive.
    let found = search(
        &srv,
        &admin,
        &format!("tags={}", enc("service.name=checkout http.route=\"/PA\"")),
    );
    assert_eq!(trace_ids(&found), [T1]);
    assert_eq!(
        keys(&found["traces"][0]),
        [
            "durationMs",
            "rootServiceName",
            "rootTraceName",
            "serviceStats",
            "startTimeUnixNano",
            "traceID"
        ]
    );
    assert_eq!(
        trace_ids(&search(&srv, &admin, &format!("tags={}", enc("name=zero")))),
        ["abcdef"]
    );
    assert_eq!(
        trace_ids(&search(
            &srv,
            &admin,
            &format!("tags={}", enc("status.code=error"))
        )),
        [T1]
    );
    // minDuration / maxDuration apply to the trace's duration.
    assert_eq!(search(&srv, &admin, "minDuration=1h")["traces"], json!([]));
    assert_eq!(
        search(&srv, &admin, "maxDuration=1h")
            .get("traces")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // start/end (Unix seconds) bound the span start times.
    assert_eq!(
        search(&srv, &admin, "start=1&end=1000")["traces"],
        json!([])
    );

    // Refusals: 400, a plain message naming the parameter or construct.
    for (params, names) in [
        (
            format!("q={}", enc("{ } | count() > 1")),
            "pipeline operator `|`",
        ),
        (
            format!("q={}", enc("{ span.a = 1 } >> { span.b = 2 }")),
            "structural operator `>>`",
        ),
        (format!("q={}", enc("rate()")), "metrics function `rate`"),
        (format!("q={}", enc("{ } | select(span.a)")), "pipeline"),
        (
            format!("q={}", enc("{ name = }")),
            "expected a value after `name =`",
        ),
        (format!("q={}", enc("{ event.name = \"x\" }")), "`event.`"),
        (
            format!("q={}", enc("{ traceDuration > 1s }")),
            "intrinsic `traceDuration`",
        ),
        (
            format!("q={}", enc("{ status = \"error\" }")),
            "`status` compares with",
        ),
        (format!("q={}", enc("{ name = \"a\"")), "not closed"),
        (format!("q={}&tags=a%3Db", enc("{}")), "parameter \"q\""),
        ("tags=novalue".into(), "parameter \"tags\""),
        ("limit=0".into(), "parameter \"limit\""),
        ("limit=x".into(), "parameter \"limit\""),
        ("spss=1000".into(), "parameter \"spss\""),
        ("start=10&end=5".into(), "parameter \"start\""),
        ("start=-1".into(), "parameter \"start\""),
        ("minDuration=5parsecs".into(), "parameter \"minDuration\""),
        (
            "minDuration=2s&maxDuration=1s".into(),
            "parameter \"maxDuration\"",
        ),
    ] {
        bad_request(&srv, &admin, &format!("/tempo/api/search?{params}"), names);
    }
    let ingest = srv.token("acme", "ingest");
    assert_eq!(srv.get(&ingest, "/tempo/api/search").status().as_u16(), 403);
}

#[test]
fn tags_and_values_are_scoped_typed_and_never_leak() {
    let srv = Server::new(TEAMS).start();
    ingest(&srv);
    let admin = srv.token("acme", "admin");

    // v1 tag names: resource and span keys, sorted.
    let v1 = get_json(&srv, &admin, "/tempo/api/search/tags");
    assert_eq!(keys(&v1), ["metrics", "tagNames"]);
    let names: Vec<&str> = v1["tagNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for k in [
        "service.name",
        "http.status_code",
        "http.route",
        "ledger.account",
        "user.email",
    ] {
        assert!(names.contains(&k), "{k}: {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // v2: by scope.
    let v2 = get_json(&srv, &admin, "/tempo/api/v2/search/tags");
    assert_eq!(keys(&v2), ["metrics", "scopes"]);
    let scopes = v2["scopes"].as_array().unwrap();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(scope_names, ["resource", "span", "intrinsic"]);
    assert_eq!(keys(&scopes[0]), ["name", "tags"]);
    assert!(
        scopes[0]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("service.name"))
    );
    assert!(
        !scopes[0]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("http.route"))
    );
    assert_eq!(
        scopes[2]["tags"],
        json!(["duration", "kind", "name", "status"])
    );
    let span_only = get_json(&srv, &admin, "/tempo/api/v2/search/tags?scope=span");
    assert_eq!(span_only["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(span_only["scopes"][0]["name"], "span");
    bad_request(
        &srv,
        &admin,
        "/tempo/api/v2/search/tags?scope=bogus",
        "parameter \"scope\"",
    );

    // v1 values: strings; v2 values: typed.
    let v = get_json(&srv, &admin, "/tempo/api/search/tag/service.name/values");
    assert_eq!(
        v,
        json!({"tagValues": ["checkout", "frontend", "ledger"], "metrics": {}})
    );
    let v = get_json(&srv, &admin, "/tempo/api/search/tag/status.code/values");
    assert_eq!(v["tagValues"], json!(["ok", "error", "unset"]));
    let v = get_json(
        &srv,
        &admin,
        "/tempo/api/v2/search/tag/resource.service.name/values",
    );
    assert_eq!(
        v,
        json!({"tagValues": [
            {"type": "string", "value": "checkout"},
            {"type": "string", "value": "frontend"},
            {"type": "string", "value": "ledger"}
        ], "metrics": {}})
    );
    let v = get_json(
        &srv,
        &admin,
        "/tempo/api/v2/search/tag/span.http.status_code/values",
    );
    assert_eq!(v["tagValues"], json!([{"type": "int", "value": "500"}]));
    let v = get_json(&srv, &admin, "/tempo/api/v2/search/tag/status/values");
    assert_eq!(
        v["tagValues"],
        json!([
            {"type": "keyword", "value": "ok"},
            {"type": "keyword", "value": "error"},
            {"type": "keyword", "value": "unset"}
        ])
    );
    // Filtered by q: only values seen on matching spans.
    let q = enc(r#"{ resource.service.name = "ledger" }"#);
    let v = get_json(
        &srv,
        &admin,
        &format!("/tempo/api/v2/search/tag/name/values?q={q}"),
    );
    assert_eq!(
        v["tagValues"],
        json!([{"type": "string", "value": "post-ledger-entry"}])
    );
    // An incomplete q (Grafana sends them while the user types) is ignored, as in Tempo.
    let q = enc("{ resource.service.name = }");
    let v = get_json(
        &srv,
        &admin,
        &format!("/tempo/api/v2/search/tag/resource.service.name/values?q={q}"),
    );
    assert_eq!(v["tagValues"].as_array().unwrap().len(), 3);
    bad_request(
        &srv,
        &admin,
        "/tempo/api/v2/search/tag/event.x/values",
        "`event.`",
    );
    bad_request(
        &srv,
        &admin,
        "/tempo/api/v2/search/tag/nonsense/values",
        "unknown field",
    );

    // Masked values: the admin sees the stored pseudonym; a viewer sees only the mask, in
    // tag values as in traces, and cannot probe the stored value through a search.
    let v = get_json(
        &srv,
        &admin,
        "/tempo/api/v2/search/tag/span.user.email/values",
    );
    let text = v.to_string();
    assert!(text.contains("pse:"), "{text}");
    assert!(!text.contains(EMAIL), "{text}");
    let viewer = srv.token("acme", "viewer");
    let v = get_json(
        &srv,
        &viewer,
        "/tempo/api/v2/search/tag/span.user.email/values",
    );
    assert_eq!(
        v["tagValues"],
        json!([{"type": "string", "value": "<redacted:pii>"}])
    );
    let v = get_json(&srv, &viewer, "/tempo/api/search/tag/user.email/values");
    assert_eq!(v["tagValues"], json!(["<redacted:pii>"]));
    let probe = enc(r#"{ span.user.email =~ "pse:.*" }"#);
    assert_eq!(
        search(&srv, &viewer, &format!("q={probe}"))["traces"],
        json!([])
    );
    assert_eq!(
        trace_ids(&search(&srv, &admin, &format!("q={probe}"))),
        [T1]
    );
    let shown = search(
        &srv,
        &viewer,
        &format!("q={}", enc(r#"{ span.user.email != "x" }"#)),
    );
    assert!(!shown.to_string().contains("pse:"), "{shown}");
    assert!(shown.to_string().contains("<redacted:pii>"), "{shown}");

    // Service scope: a payments developer sees checkout's names and values only.
    let dev = developer(&srv, "acme", "payments");
    let v = get_json(&srv, &dev, "/tempo/api/search/tag/service.name/values");
    assert_eq!(v["tagValues"], json!(["checkout"]));
    let names = get_json(&srv, &dev, "/tempo/api/search/tags").to_string();
    assert!(!names.contains("ledger.account"), "{names}");
    let v = get_json(&srv, &dev, "/tempo/api/search/tag/ledger.account/values");
    assert_eq!(v["tagValues"], json!([]));
    let ledger = enc(r#"{ resource.service.name = "ledger" }"#);
    assert_eq!(
        search(&srv, &dev, &format!("q={ledger}"))["traces"],
        json!([])
    );
    let found = search(
        &srv,
        &dev,
        &format!("q={}", enc(r#"{ name = "charge-card" }"#)),
    );
    assert_eq!(trace_ids(&found), [T1]);
    // The root is outside the developer's scope: shown as the trace answer shows it.
    assert_eq!(found["traces"][0]["rootServiceName"], "<hidden>", "{found}");

    // Tenant isolation: globex sees its own trace, tags and values, nothing of acme's.
    let g = srv.token("globex", "admin");
    let all = search(&srv, &g, &format!("q={}", enc("{}")));
    assert_eq!(trace_ids(&all), [T2]);
    for path in [
        "/tempo/api/search/tags".to_string(),
        "/tempo/api/v2/search/tags".into(),
        "/tempo/api/search/tag/service.name/values".into(),
        "/tempo/api/v2/search/tag/name/values".into(),
        "/tempo/api/v2/search/tag/.http.route/values".into(),
        format!("/tempo/api/search?q={}", enc("{}")),
        format!("/tempo/api/search?tags={}", enc("service.name=checkout")),
    ] {
        let text = get_json(&srv, &g, &path).to_string();
        for acme in [
            "frontend",
            "checkout",
            "ledger",
            "GET /cart",
            "charge-card",
            "/pay",
            "http.route",
            T1,
            "abcdef",
        ] {
            assert!(
                !text.contains(acme),
                "{acme} of acme in globex's {path}: {text}"
            );
        }
    }
    let v = get_json(&srv, &g, "/tempo/api/search/tag/service.name/values");
    assert_eq!(v["tagValues"], json!(["globex-api"]));
    let v = get_json(&srv, &admin, "/tempo/api/search/tag/globex.key/values");
    assert_eq!(v["tagValues"], json!([]));
    assert_eq!(
        srv.get(&g, &format!("/tempo/api/v2/traces/{T1}"))
            .status()
            .as_u16(),
        404
    );
}
