//! The Jaeger query API as Jaeger UI (v1.x) and Grafana's Jaeger data source call it: the
//! request parameters they send and the exact shapes they read, pinned against Jaeger's own
//! query service behaviour. Also the unauthenticated health probes.

mod common;

use common::{Server, hex, kv, request, span};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::span::Event;
use serde_json::{Value as Json, json};

fn keys(v: &Json) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
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

struct Fixture {
    srv: Server,
    reader: String,
    /// Trace ids (hex) of `checkout` spans 0..3.
    ids: Vec<String>,
}

fn fixture() -> Fixture {
    let srv = Server::new("").start();
    let ingest = srv.token("acme", "ingest");
    let reader = srv.token("acme", "read");
    let mut spans = Vec::new();
    let mut ids = Vec::new();
    for n in 0..3u64 {
        let mut s = span(100 + n, &format!("op-{n}"));
        s.attributes = vec![kv("http.route", "/pay"), int_kv("http.status_code", 200)];
        if n == 1 {
            s.events = vec![Event {
                time_unix_nano: s.start_time_unix_nano + 1,
                name: "exception".into(),
                attributes: vec![kv("exception.type", "TimeoutError")],
                ..Default::default()
            }];
        }
        ids.push(hex(&s.trace_id));
        spans.push(s);
    }
    let r = srv.post_proto(&ingest, &request("checkout", spans));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let other = srv.token("globex", "ingest");
    let r = srv.post_proto(&other, &request("globex-api", vec![span(900, "secret-op")]));
    assert_eq!(r.status(), 200);
    Fixture { srv, reader, ids }
}

fn get(f: &Fixture, path: &str) -> (u16, Json) {
    let r = f.srv.get(&f.reader, path);
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, v)
}

fn trace_ids(v: &Json) -> Vec<String> {
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn jaeger_api_contract() {
    let f = fixture();
    let [a, b, c] = [&f.ids[0], &f.ids[1], &f.ids[2]];

    // The envelope and the list endpoints.
    let (s, v) = get(&f, "/api/services");
    assert_eq!(s, 200);
    assert_eq!(keys(&v), ["data", "errors", "limit", "offset", "total"]);
    assert_eq!(
        v["data"],
        json!(["checkout"]),
        "globex's service never shows: {v}"
    );
    assert_eq!(v["errors"], Json::Null);
    let (_, v) = get(&f, "/api/services/checkout/operations");
    assert_eq!(v["data"], json!(["op-0", "op-1", "op-2"]));
    let (_, v) = get(&f, "/api/operations?service=checkout&spanKind=server");
    assert_eq!(v["data"][0], json!({"name": "op-0", "spanKind": "server"}));
    let (s, v) = get(&f, "/api/operations");
    assert_eq!(s, 400, "{v}");

    // One trace: the shapes Jaeger UI's waterfall reads.
    let (s, v) = get(&f, &format!("/api/traces/{a}"));
    assert_eq!(s, 200);
    let t = &v["data"][0];
    assert_eq!(keys(t), ["processes", "spans", "traceID", "warnings"]);
    assert_eq!(t["traceID"], json!(a));
    let sp = &t["spans"][0];
    assert_eq!(
        keys(sp),
        [
            "duration",
            "flags",
            "logs",
            "operationName",
            "processID",
            "references",
            "spanID",
            "startTime",
            "tags",
            "traceID",
            "warnings"
        ]
    );
    assert!(sp["startTime"].is_u64() && sp["duration"].is_u64(), "{sp}");
    let pid = sp["processID"].as_str().unwrap();
    assert_eq!(t["processes"][pid]["serviceName"], "checkout");
    let tag = sp["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "http.status_code")
        .unwrap();
    assert_eq!(
        tag,
        &json!({"key": "http.status_code", "type": "int64", "value": 200})
    );

    // Search: Jaeger UI sends `lookback` with `start` and `end`; every unit it offers works,
    // and a lookback Jaeger would not parse is ignored when start and end are there.
    for lb in ["1h", "2h", "2d", "7d", "1w"] {
        let (s, v) = get(&f, &format!("/api/traces?service=checkout&lookback={lb}"));
        assert_eq!(s, 200, "lookback={lb}: {v}");
        assert_eq!(trace_ids(&v).len(), 3, "lookback={lb}");
    }
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let start = now_us - 3_600_000_000;
    let (s, v) = get(
        &f,
        &format!(
            "/api/traces?service=checkout&start={start}&end={}&lookback=custom&limit=20",
            now_us + 1_000_000
        ),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(trace_ids(&v).len(), 3);
    assert_eq!(v["limit"], 20);
    let (s, v) = get(
        &f,
        &format!(
            "/api/traces?service=checkout&start={start}&end={}&lookback=2fortnights",
            now_us + 1_000_000
        ),
    );
    assert_eq!(s, 200, "{v}");

    // `service` is required unless trace ids are given, in Jaeger's error envelope.
    let (s, v) = get(&f, "/api/traces?limit=20&lookback=1h");
    assert_eq!(s, 400);
    assert_eq!(keys(&v), ["data", "errors", "limit", "offset", "total"]);
    assert_eq!(v["data"], Json::Null);
    assert_eq!(v["errors"][0]["code"], 400);
    assert!(
        v["errors"][0]["msg"].as_str().unwrap().contains("service"),
        "{v}"
    );

    // `traceID` (repeated): exactly those traces, other parameters ignored.
    let (s, v) = get(&f, &format!("/api/traces?traceID={a}&traceID={c}"));
    assert_eq!(s, 200, "{v}");
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(trace_ids(&v), want);
    assert_eq!(v["errors"], Json::Null);
    let (_, v) = get(
        &f,
        &format!("/api/traces?service=nope&traceID={}", b.to_uppercase()),
    );
    assert_eq!(trace_ids(&v), [b.as_str()]);
    // An unknown id (and another tenant's) is a per-trace error, not a failed request.
    let unknown = "00000000000000000000000000abcdef";
    let globex = hex(&span(900, "x").trace_id);
    let (s, v) = get(
        &f,
        &format!("/api/traces?traceID={a}&traceID=abcdef&traceID={globex}"),
    );
    assert_eq!(s, 200);
    assert_eq!(trace_ids(&v), [a.as_str()]);
    assert_eq!(
        v["errors"],
        json!([
            {"msg": "trace not found", "traceID": unknown},
            {"msg": "trace not found", "traceID": globex},
        ])
    );
    let (s, v) = get(&f, "/api/traces?traceID=not-hex");
    assert_eq!(s, 400);
    assert!(v["errors"][0]["msg"].as_str().unwrap().contains("traceID"));

    // Tag filters match span, resource and event (log) attributes.
    let tags = |j: &str| {
        let enc: String = j
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("/api/traces?service=checkout&tags={enc}")
    };
    let (_, v) = get(&f, &tags(r#"{"exception.type":"TimeoutError"}"#));
    assert_eq!(trace_ids(&v), [b.as_str()], "event attribute: {v}");
    let (_, v) = get(&f, &tags(r#"{"http.status_code":"200"}"#));
    assert_eq!(trace_ids(&v).len(), 3);
    let (_, v) = get(
        &f,
        &tags(r#"{"service.name":"checkout","http.route":"/pay"}"#),
    );
    assert_eq!(trace_ids(&v).len(), 3);
    let (_, v) = get(&f, &tags(r#"{"exception.type":"Nope"}"#));
    assert_eq!(v["data"], json!([]));

    // Dependencies: Grafana's and Jaeger UI's shape.
    let (s, v) = get(&f, "/api/dependencies?endTs=0&lookback=1");
    assert_eq!(s, 200);
    assert!(v["data"].is_array());
    let (s, _) = get(&f, "/api/dependencies?lookback=1h");
    assert_eq!(
        s, 400,
        "dependencies' lookback is milliseconds, as in Jaeger"
    );
}

#[test]
fn health_probes_need_no_token_and_say_nothing_else() {
    let srv = Server::new("").start();
    let client = srv.client();
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let r = client.get(srv.query_url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers().get("cache-control").unwrap().to_str().unwrap(),
            "no-store"
        );
        assert_eq!(r.text().unwrap(), body, "{path}");
    }
    // The probes are no way around authentication for anything else.
    let r = client.get(srv.query_url("/api/services")).send().unwrap();
    assert_eq!(r.status(), 401);
}
