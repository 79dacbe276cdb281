//! Bad input over the real server: every limit, malformed bodies, a gzip bomb (HTTP and
//! gRPC) with the server's memory staying bounded. A refused request stores nothing, and its
//! message names the span and the field.

mod common;

use std::io::Write;

use common::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message;

const SMALL_LIMITS: &str = r#"
[limits]
max_request_bytes = 65536
max_spans_per_request = 10
max_attributes = 4
max_events_per_span = 2
max_links_per_span = 2
max_key_bytes = 16
max_value_bytes = 32
max_name_bytes = 24
max_array_len = 3
max_value_depth = 3
max_future_skew_secs = 60
"#;

fn int_kv(k: &str, i: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(i)),
        }),
        ..Default::default()
    }
}

fn nested(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(Value::IntValue(1)),
    };
    for _ in 1..depth {
        v = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    v
}

/// Each case: a mutation of a valid span, and what the error must mention.
type Case = (
    &'static str,
    Box<dyn Fn(&mut Vec<Span>)>,
    &'static [&'static str],
);

fn cases() -> Vec<Case> {
    vec![
        (
            "a timestamp near 2^64",
            Box::new(|s: &mut Vec<Span>| s[0].end_time_unix_nano = u64::MAX - 1),
            &[
                "spans[0]",
                ".end_time_unix_nano",
                "more than 60 s past the server's clock",
            ],
        ),
        (
            "spans per request",
            Box::new(|s: &mut Vec<Span>| {
                let base = s[0].clone();
                for i in 0..11 {
                    let mut x = base.clone();
                    x.span_id = (100 + i as u64).to_be_bytes().to_vec();
                    s.push(x);
                }
            }),
            &["13 spans, limit is 10"],
        ),
        (
            "attributes per span",
            Box::new(|s: &mut Vec<Span>| {
                s[0].attributes = (0..5).map(|i| int_kv(&format!("k{i}"), i)).collect()
            }),
            &["spans[0]", ".attributes", "5 attributes, limit is 4"],
        ),
        (
            "key length",
            Box::new(|s: &mut Vec<Span>| s[0].attributes = vec![int_kv(&"k".repeat(17), 1)]),
            &["spans[0]", "attributes[0]", "longer than 16 bytes"],
        ),
        (
            "value length",
            Box::new(|s: &mut Vec<Span>| s[0].attributes = vec![kv("note", &"v".repeat(33))]),
            &["attributes[0] (\"note\")", "longer than 32 bytes"],
        ),
        (
            "nesting depth",
            Box::new(|s: &mut Vec<Span>| {
                s[0].attributes = vec![KeyValue {
                    key: "deep".into(),
                    value: Some(nested(4)),
                    ..Default::default()
                }]
            }),
            &["\"deep\"", "nested deeper than 3"],
        ),
        (
            "array length",
            Box::new(|s: &mut Vec<Span>| {
                s[0].attributes = vec![KeyValue {
                    key: "arr".into(),
                    value: Some(AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: (0..4).map(|_| nested(1)).collect(),
                        })),
                    }),
                    ..Default::default()
                }]
            }),
            &["\"arr\"", "array of 4 values, limit is 3"],
        ),
        (
            "span name length",
            Box::new(|s: &mut Vec<Span>| s[0].name = "n".repeat(25)),
            &[".name", "longer than 24 bytes"],
        ),
        (
            "events per span",
            Box::new(|s: &mut Vec<Span>| {
                s[0].events = (0..3)
                    .map(|_| span::Event {
                        name: "e".into(),
                        ..Default::default()
                    })
                    .collect()
            }),
            &[".events", "3 events, limit is 2"],
        ),
        (
            "links per span",
            Box::new(|s: &mut Vec<Span>| {
                s[0].links = (0..3)
                    .map(|i| span::Link {
                        trace_id: vec![7; 16],
                        span_id: vec![i + 1; 8],
                        ..Default::default()
                    })
                    .collect()
            }),
            &[".links", "3 links, limit is 2"],
        ),
        (
            "all-zero trace id",
            Box::new(|s: &mut Vec<Span>| s[0].trace_id = vec![0; 16]),
            &[".trace_id", "must not be all zeros"],
        ),
        (
            "short span id",
            Box::new(|s: &mut Vec<Span>| s[0].span_id = vec![1; 4]),
            &[".span_id", "must be 8 bytes"],
        ),
        (
            "bad parent id",
            Box::new(|s: &mut Vec<Span>| s[0].parent_span_id = vec![0; 8]),
            &[".parent_span_id", "all zeros"],
        ),
        (
            "bad link id",
            Box::new(|s: &mut Vec<Span>| {
                s[0].links = vec![span::Link {
                    trace_id: vec![1; 3],
                    span_id: vec![1; 8],
                    ..Default::default()
                }]
            }),
            &["links[0].trace_id", "must be 16 bytes"],
        ),
        (
            "end before start",
            Box::new(|s: &mut Vec<Span>| s[0].end_time_unix_nano = s[0].start_time_unix_nano - 1),
            &[".end_time_unix_nano", "is before start time"],
        ),
    ]
}

#[test]
fn every_limit_refuses_the_request_and_stores_nothing() {
    let srv = Server::new(SMALL_LIMITS).start();
    let admin = srv.admin_token.clone().unwrap();
    for (i, (what, mutate, needles)) in cases().into_iter().enumerate() {
        let service = format!("limits-{i}");
        let mut spans = vec![span(1000 + i as u64, "op")];
        // A valid span before the bad one must not be stored either.
        let mut good = span(2000 + i as u64, "good");
        good.span_id = vec![9; 8];
        mutate(&mut spans);
        spans.insert(0, good.clone());
        // The mutation targeted spans[0] before the insert; move the bad span first again.
        spans.swap(0, 1);
        let (status, body) = rpc_status(srv.post_proto(&admin, &request(&service, spans)));
        let msg = body.message;
        assert_eq!(status, 400, "{what}: {msg}");
        assert_eq!(body.code, 3, "{what}");
        for n in needles {
            assert!(msg.contains(n), "{what}: {msg:?} lacks {n:?}");
        }
        let services: serde_json::Value = srv.get(&admin, "/api/services").json().unwrap();
        assert!(
            !services["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == service.as_str()),
            "{what}: something was stored"
        );
        let r = srv.get(&admin, &format!("/api/traces/{}", hex(&good.trace_id)));
        assert_eq!(r.status().as_u16(), 404, "{what}: the good span was stored");
    }
}

#[test]
fn oversized_body_is_413() {
    let srv = Server::new(SMALL_LIMITS).start();
    let admin = srv.admin_token.clone().unwrap();
    let resp = srv
        .client()
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/x-protobuf")
        .body(vec![0u8; 70_000])
        .send()
        .unwrap();
    let (status, body) = rpc_status(resp);
    assert_eq!(status, 413);
    assert!(
        body.message.contains("larger than 65536 bytes"),
        "{}",
        body.message
    );
}

/// Over HTTP/2 a refusal sent while the client is still uploading used to reset the stream
/// (curl: "Stream error in the HTTP/2 framing layer"): clients could not tell a bad
/// credential or an oversized body from a network fault. They now get 401 and 413.
#[test]
fn http2_refusals_reach_the_client() {
    let srv = Server::new(SMALL_LIMITS).start();
    let admin = srv.admin_token.clone().unwrap();
    let h2 = grpc_client(&srv);
    let post = |token: &str, body: Vec<u8>| {
        let r = h2
            .post(format!("https://localhost:{}/v1/traces", srv.http_port))
            .bearer_auth(token)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        r
    };
    let r = post("st_wrong", vec![7u8; 3 << 20]);
    assert_eq!(r.status(), 401);
    let (status, body) = rpc_status(post(&admin, vec![0u8; 200_000]));
    assert_eq!(status, 413);
    assert!(
        body.message.contains("larger than 65536 bytes"),
        "{}",
        body.message
    );
    // The connection is still good for the next request.
    assert_eq!(post("st_wrong", vec![1]).status(), 401);

    // HTTP/2 and HTTP/1.1 get the same answers, time after time, with bodies larger than
    // the limit: wrong token, oversized, wrong content type.
    let h1 = srv.client();
    for (version, client) in [
        (reqwest::Version::HTTP_2, &h2),
        (reqwest::Version::HTTP_11, &h1),
    ] {
        for (token, ct, want) in [
            ("st_wrong", "application/x-protobuf", 401),
            (admin.as_str(), "application/x-protobuf", 413),
            (admin.as_str(), "text/plain", 415),
        ] {
            for i in 0..100 {
                let r = client
                    .post(format!("https://localhost:{}/v1/traces", srv.http_port))
                    .bearer_auth(token)
                    .header("content-type", ct)
                    .body(vec![0u8; 300_000])
                    .send()
                    .unwrap_or_else(|e| panic!("{version:?} {ct} #{i}: {e:?}"));
                assert_eq!(r.version(), version);
                assert_eq!(r.status(), want, "{version:?} {ct} #{i}");
            }
        }
    }
}

#[test]
fn malformed_bodies_get_clear_errors() {
    let srv = Server::new("").start();
    let admin = srv.admin_token.clone().unwrap();
    let c = srv.client();
    // Protobuf: a truncated message.
    let mut bytes = request("svc", vec![span(1, "x")]).encode_to_vec();
    bytes.truncate(bytes.len() - 3);
    let r = c
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/x-protobuf")
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    // JSON: a bad trace id, named by its path.
    let r = c
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"0102030405060708"}]}]}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().unwrap();
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        "{msg}"
    );
    // JSON: not JSON at all.
    let r = c
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{{{")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Unsupported content type and encoding.
    let r = c
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = c
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // The server is still healthy.
    let ok = srv.post_proto(&admin, &request("svc", vec![span(2, "x")]));
    assert_eq!(ok.status().as_u16(), 200);
}

/// 1 GiB of zeros, gzip-compressed (about 1 MiB).
/// One gRPC message: the compressed flag, the length, the bytes.
fn grpc_frame(compressed: bool, message: &[u8]) -> Vec<u8> {
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// Calls OTLP/gRPC Export with `body` already framed; returns `grpc-status` and the
/// percent-decoded `grpc-message` (from headers, as a trailers-only answer has them, or
/// from trailers).
fn grpc_call(
    srv: &Server,
    token: Option<&str>,
    encoding: Option<&str>,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    grpc_call_path(
        srv,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        token,
        encoding,
        body,
    )
}

fn grpc_call_path(
    srv: &Server,
    path: &str,
    token: Option<&str>,
    encoding: Option<&str>,
    body: &[u8],
) -> (Option<String>, Option<String>) {
    let mut req = grpc_client(srv)
        .post(format!("https://localhost:{}{path}", srv.grpc_port))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body.to_vec());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(e) = encoding {
        req = req.header("grpc-encoding", e);
    }
    let r = req.send().unwrap();
    let header = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string());
    let message = header("grpc-message").map(|m| {
        let mut out = Vec::new();
        let b = m.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&m[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    });
    (header("grpc-status"), message)
}

/// Every gRPC refusal carries the status an OTLP exporter acts on, and a message that
/// says what was wrong.
#[test]
fn grpc_refusals_have_the_right_status() {
    let srv = Server::new("").start();
    let admin = srv.admin_token.clone().unwrap();
    // (what, token, grpc-encoding, body, expected grpc-status, words in grpc-message)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Vec<u8>,
        &'a str,
        &'a str,
    );
    let cases: [Case; 6] = [
        (
            "malformed protobuf",
            Some(&admin),
            None,
            grpc_frame(false, &[0x0a, 0xff, 0xff]),
            "3",
            "not a valid ExportTraceServiceRequest",
        ),
        (
            "a body shorter than its prefix says",
            Some(&admin),
            None,
            vec![0, 0, 0, 0, 9, 1],
            "3",
            "prefix says 9 bytes",
        ),
        (
            "an oversized message",
            Some(&admin),
            None,
            vec![0, 0xff, 0, 0, 0],
            "8",
            "larger than 8388608 bytes; not retryable as is",
        ),
        (
            "an unsupported grpc-encoding",
            Some(&admin),
            Some("br"),
            grpc_frame(true, b"x"),
            "12",
            "\"br\" is not supported",
        ),
        (
            "no credential",
            None,
            None,
            grpc_frame(false, &[0x0a, 0xff, 0xff]),
            "16",
            "unauthenticated",
        ),
        (
            "a wrong credential",
            Some("st_nope"),
            None,
            grpc_frame(false, &[]),
            "16",
            "unauthenticated",
        ),
    ];
    for (what, token, encoding, body, code, needle) in cases {
        let (got, message) = grpc_call(&srv, token, encoding, &body);
        assert_eq!(got.as_deref(), Some(code), "{what}: {message:?}");
        assert!(
            message.as_deref().unwrap_or("").contains(needle),
            "{what}: {message:?}"
        );
    }
    let (code, message) = grpc_call_path(
        &srv,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Some(&admin),
        None,
        &grpc_frame(false, &[]),
    );
    assert_eq!(code.as_deref(), Some("12"), "{message:?}");
    assert!(message.unwrap_or_default().contains("LogsService"));
}

fn gzip_bomb() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    proc_kib(pid, "VmHWM").unwrap()
}

#[test]
fn gzip_bomb_costs_nothing() {
    let srv = Server::new("").start();
    let admin = srv.admin_token.clone().unwrap();
    let bomb = gzip_bomb();
    assert!(
        bomb.len() < 8 << 20,
        "the bomb must pass the compressed-size check"
    );
    let before = peak_rss_kib(srv.pid());

    // OTLP/HTTP.
    let r = srv
        .client()
        .post(srv.http_url())
        .bearer_auth(&admin)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb.clone())
        .send()
        .unwrap();
    let (status, body) = rpc_status(r);
    assert_eq!(status, 413);
    assert!(
        body.message.contains("after decompression"),
        "{}",
        body.message
    );

    // OTLP/gRPC: one length-prefixed message with the compressed flag set.
    let (code, message) = grpc_call(&srv, Some(&admin), Some("gzip"), &grpc_frame(true, &bomb));
    // RESOURCE_EXHAUSTED without RetryInfo: an exporter does not retry a request that
    // can never fit, and the message says so.
    assert_eq!(code.as_deref(), Some("8"), "{message:?}");
    let message = message.unwrap_or_default();
    assert!(message.contains("after decompression"), "{message}");
    assert!(message.contains("not retryable as is"), "{message}");
    // Without a credential the bomb is never inflated: the answer is UNAUTHENTICATED.
    let (code, _) = grpc_call(&srv, None, Some("gzip"), &grpc_frame(true, &bomb));
    assert_eq!(code.as_deref(), Some("16"));

    let after = peak_rss_kib(srv.pid());
    // Inflating stops at the 8 MiB limit: the peak may grow by a few buffers, never by 1 GiB.
    assert!(
        after.saturating_sub(before) < 96 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}
