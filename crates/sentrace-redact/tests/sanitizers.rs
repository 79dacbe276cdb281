//! Golden tests: the sanitizers keep the structure (URL scheme/host/path, SQL shape, header
//! schemes and cookie names, JSON shape) and only replace the sensitive parts.

use std::sync::OnceLock;

use sentrace_core::TenantId;
use sentrace_core::otlp::{attr, value_to_string};
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_redact::{InMemorySecrets, Policy, Redactor};

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        // Mask everything that the default policy pseudonymizes, so outputs are stable.
        let p = Policy::from_toml(
            "version = 1\n[actions]\nemail = \"mask\"\nsession_id = \"mask\"\nuser_id = \"mask\"\n",
            "golden.toml",
        )
        .expect("policy");
        Redactor::new(p).expect("detectors")
    })
}

/// Minimizes one span attribute and returns its new value.
fn run(key: &str, value: &str) -> String {
    let mut rs = vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                attributes: vec![KeyValue {
                    key: key.into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(value.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }];
    let secrets = InMemorySecrets::from_master_key([5; 32]);
    redactor().minimize(&TenantId::new("golden").expect("tenant"), &mut rs, &secrets);
    attr(&rs[0].scope_spans[0].spans[0].attributes, key)
        .map(value_to_string)
        .unwrap_or_else(|| "<dropped>".into())
}

#[test]
fn url_keeps_scheme_host_and_path() {
    let cases = [
        (
            "https://shop.example.com/api/v1/users/jane%40example.com/orders?id=42&email=jane%40example.com&token=abc123def456&page=2#top",
            "https://shop.example.com/api/v1/users/<email>/orders?id=42&email=<email>&token=<secret>&page=2#top",
        ),
        (
            "https://app:s3cr3t@db.example.com:8443/v1/items?q=shoes",
            "https://app:<password>@db.example.com:8443/v1/items?q=shoes",
        ),
        (
            "https://login.example.com/cb#access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U&state=xyz",
            "https://login.example.com/cb#access_token=<secret>&state=xyz",
        ),
        (
            "/checkout?card=4111111111111111&amount=129.99",
            "/checkout?card=<card>&amount=129.99",
        ),
        (
            "https://api.example.com/v2/orders/8f14e45f-ceea-467f-a0e1-2c9d4a8e1f00",
            "https://api.example.com/v2/orders/8f14e45f-ceea-467f-a0e1-2c9d4a8e1f00",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(run("url.full", input), want, "input {input}");
    }
    assert_eq!(
        run("url.query", "username=bob&password=hunter2&lang=en"),
        "username=<user_id>&password=<password>&lang=en"
    );
    assert_eq!(
        run("url.path", "/users/jane@example.com/profile"),
        "/users/<email>/profile"
    );
}

#[test]
fn sql_keeps_its_shape() {
    let cases = [
        (
            "SELECT id, name FROM users WHERE email = 'jane@example.com' AND age > 30 LIMIT 10",
            "SELECT id, name FROM users WHERE email = ? AND age > ? LIMIT ?",
        ),
        (
            "INSERT INTO payments (card, amount, note) VALUES ('4111 1111 1111 1111', 12.50, N'it''s ok')",
            "INSERT INTO payments (card, amount, note) VALUES (?, ?, ?)",
        ),
        (
            "UPDATE t1 SET col2 = $1, blob = X'DEADBEEF' WHERE id IN (1, 2, 3) -- by jane@example.com",
            "UPDATE t1 SET col2 = $1, blob = ? WHERE id IN (?, ?, ?) -- by <email>",
        ),
        (
            "SELECT \"user\".\"id\" FROM \"user\" WHERE token = $$abc$$ OR x = 1e-3",
            "SELECT \"user\".\"id\" FROM \"user\" WHERE token = ? OR x = ?",
        ),
        (
            "SELECT * FROM orders WHERE note = 'unterminated",
            "SELECT * FROM orders WHERE note = ?",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(run("db.statement", input), want, "input {input}");
        assert_eq!(run("db.query.text", input), want, "input {input}");
    }
}

#[test]
fn headers_keep_scheme_and_names() {
    assert_eq!(
        run(
            "http.request.header.authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        ),
        "Bearer <bearer>"
    );
    assert_eq!(
        run(
            "http.request.header.authorization",
            "Basic dXNlcjpwYXNzd29yZA=="
        ),
        "Basic <basic_auth>"
    );
    assert_eq!(
        run(
            "http.request.header.authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        ),
        "AWS4-HMAC-SHA256 <secret>"
    );
    assert_eq!(
        run(
            "http.request.header.cookie",
            "theme=dark; JSESSIONID=1A2B3C4D5E6F; _ga=GA1.2.3"
        ),
        "theme=<cookie>; JSESSIONID=<session_id>; _ga=<cookie>"
    );
    assert_eq!(
        run(
            "http.response.header.set-cookie",
            "sid=abcdef123456; Path=/; HttpOnly; Secure"
        ),
        "sid=<session_id>; Path=/; HttpOnly; Secure"
    );
    assert_eq!(
        run(
            "http.request.header.x-forwarded-for",
            "203.0.113.195, 198.51.100.17"
        ),
        "203.0.113.0/24, 198.51.100.0/24"
    );
    assert_eq!(run("http.request.header.x-api-key", "k-12345"), "<secret>");
    assert_eq!(
        run("http.request.header.accept", "application/json"),
        "application/json"
    );
}

#[test]
fn json_bodies_keep_their_shape() {
    let body = r#"{"user":{"email":"jane@example.com","password":"hunter2","prefs":{"lang":"en"}},"items":[{"sku":"A-1","qty":2}],"card":4111111111111111,"note":"call +44 20 7946 0958","ok":true}"#;
    assert_eq!(
        run("http.request.body", body),
        r#"{"user":{"email":"<email>","password":"<password>","prefs":{"lang":"en"}},"items":[{"sku":"A-1","qty":2}],"card":"<card>","note":"call <phone>","ok":true}"#
    );
    // A clean body is kept byte for byte (formatting included).
    let clean = "{ \"sku\": \"A-1\",\n  \"qty\": 2 }";
    assert_eq!(run("http.request.body", clean), clean);
    // Form bodies are read as queries.
    assert_eq!(
        run(
            "http.request.body",
            "username=bob&password=hunter2&remember=1"
        ),
        "username=<user_id>&password=<password>&remember=1"
    );
}

#[test]
fn free_text_masks_only_the_detected_spans() {
    assert_eq!(
        run(
            "exception.message",
            "Payment failed for jane@example.com with card 4111-1111-1111-1111 (order 4111111111111112, trace 4bf92f3577b34da6a3ce929d0e0e4736)"
        ),
        "Payment failed for <email> with card <card> (order 4111111111111112, trace 4bf92f3577b34da6a3ce929d0e0e4736)"
    );
    assert_eq!(
        run(
            "log.message",
            "connect postgres://app:pa55w0rd@db:5432/main failed; retry with token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"
        ),
        "connect postgres://app:<password>@db:5432/main failed; retry with token=<secret>"
    );
}
