//! The typical 20-attribute span of the criterion bench (`benches/minimize.rs`), timed here
//! by process CPU time so that a loaded machine does not understate the per-core figure.

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(v)),
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..Default::default()
    }
}

/// 20 attributes, as an instrumented HTTP server emits them.
fn typical(sensitive: bool) -> Span {
    let (url, ua, client, auth) = if sensitive {
        (
            "https://shop.example.com/api/v1/orders/8f14e45f-ceea-467f-a0e1-2c9d4a8e1f00?email=jane%40example.com&page=2",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "203.0.113.77",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        )
    } else {
        (
            "https://shop.example.com/api/v1/orders/8f14e45f-ceea-467f-a0e1-2c9d4a8e1f00?page=2",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "api-gateway.internal",
            "",
        )
    };
    let mut attributes = vec![
        kv("http.request.method", s("GET")),
        kv("url.full", s(url)),
        kv("url.scheme", s("https")),
        kv(
            "url.path",
            s("/api/v1/orders/8f14e45f-ceea-467f-a0e1-2c9d4a8e1f00"),
        ),
        kv("http.route", s("/api/v1/orders/{order_id}")),
        kv("http.response.status_code", i(200)),
        kv("http.request.body.size", i(0)),
        kv("http.response.body.size", i(1843)),
        kv("server.address", s("shop.example.com")),
        kv("server.port", i(443)),
        kv("client.address", s(client)),
        kv("client.port", i(51234)),
        kv("network.protocol.name", s("http")),
        kv("network.protocol.version", s("1.1")),
        kv("user_agent.original", s(ua)),
        kv("http.request.header.content-type", s("application/json")),
        kv("http.request.header.accept-language", s("en-US,en;q=0.9")),
        kv("app.order.id", s("4111111111111112")),
        kv("app.version", s("2.14.3")),
    ];
    attributes.push(if auth.is_empty() {
        kv("http.request.header.x-request-id", s("c2b8a4e0f6d14b2f"))
    } else {
        kv("http.request.header.authorization", s(auth))
    });
    Span {
        trace_id: vec![0x4b; 16],
        span_id: vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        name: "GET /api/v1/orders/{order_id}".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_012_000_000,
        attributes,
        ..Default::default()
    }
}

pub fn batch(sensitive: bool, n: usize) -> Vec<ResourceSpans> {
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s("checkout"))],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: (0..n).map(|_| typical(sensitive)).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }]
}
