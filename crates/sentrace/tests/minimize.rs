//! Server-side minimization on the real binary: the default policy removes sensitive values
//! wherever they sit; a token policy keeps the original in the encrypted vault only.

mod common;

use std::path::Path;

use common::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Status, span};

fn jaeger_strings(v: &serde_json::Value) -> String {
    v.to_string()
}

fn files_contain(dir: &Path, needle: &[u8]) -> Option<String> {
    files_under(dir)
        .into_iter()
        .find(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .map(|p| p.display().to_string())
}

#[test]
fn default_policy_minimizes_everywhere() {
    let srv = Server::new("").start();
    let admin = srv.admin_token.clone().unwrap();
    let secrets = [
        "jane.doe@example.com",
        "4111111111111111",
        "hunter2-very-secret",
        "AKIAIOSFODNN7EXAMPLE",
    ];
    let mut s = span(42, "POST /login for jane.doe@example.com");
    s.attributes = vec![
        kv(
            "url.full",
            "https://shop.example/login?password=hunter2-very-secret&next=/home",
        ),
        kv(
            "http.request.header.authorization",
            "Bearer AKIAIOSFODNN7EXAMPLE",
        ),
        KeyValue {
            key: "cards".into(),
            value: Some(AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("4111 1111 1111 1111".into())),
                    }],
                })),
            }),
            ..Default::default()
        },
        kv(
            "db.statement",
            "SELECT * FROM users WHERE email = 'jane.doe@example.com'",
        ),
    ];
    s.events.push(span::Event {
        name: "exception".into(),
        time_unix_nano: s.start_time_unix_nano,
        attributes: vec![kv("exception.message", "card 4111111111111111 declined")],
        ..Default::default()
    });
    s.status = Some(Status {
        code: 2,
        message: "login failed for jane.doe@example.com".into(),
    });
    let tid = hex(&s.trace_id);
    assert_eq!(
        srv.post_proto(&admin, &request("auth", vec![s]))
            .status()
            .as_u16(),
        200
    );
    let body: serde_json::Value = srv
        .get(&admin, &format!("/api/traces/{tid}"))
        .json()
        .unwrap();
    let text = jaeger_strings(&body);
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} came back: {text}");
    }
    assert!(
        text.contains("SELECT * FROM users WHERE email = ?"),
        "{text}"
    );
    assert!(
        text.contains("https://shop.example/login?password="),
        "URL lost its shape: {text}"
    );
    assert!(text.contains("sentrace.policy.digest"));
    // Every minimized place is listed with its class, values never.
    let tags = body["data"][0]["spans"][0]["tags"].as_array().unwrap();
    let list = tags
        .iter()
        .find(|t| t["key"] == "sentrace.minimized")
        .and_then(|t| t["value"].as_str())
        .unwrap_or_else(|| panic!("no sentrace.minimized tag: {text}"));
    let entries: Vec<&str> = list.split(';').collect();
    for entry in [
        "name=pii",
        "status=pii",
        "span:url.full=secret",
        "span:http.request.header.authorization=secret",
        "span:cards=financial",
        "event[0]:exception.message=financial",
    ] {
        assert!(entries.contains(&entry), "{entry} not in {list}");
    }
    let metrics = srv.get(&admin, "/metrics").text().unwrap();
    assert!(
        metrics.contains("sentrace_minimized_values_total{kind=\"card\""),
        "{metrics}"
    );
}

#[test]
fn token_policy_keeps_values_only_in_the_encrypted_vault() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[actions]\nemail = \"token\"\n").unwrap();
    let srv = Server::new(&format!("[minimize]\npolicy = \"{}\"\n", policy.display())).start();
    let admin = srv.admin_token.clone().unwrap();
    let mut a = span(1, "signup");
    a.attributes
        .push(kv("user.email", "token-subject@example.com"));
    let mut b = span(2, "login");
    b.attributes
        .push(kv("user.email", "token-subject@example.com"));
    let (ta, tb) = (hex(&a.trace_id), hex(&b.trace_id));
    assert_eq!(
        srv.post_proto(&admin, &request("accounts", vec![a, b]))
            .status()
            .as_u16(),
        200
    );
    let tok = |tid: &str| {
        let v: serde_json::Value = srv
            .get(&admin, &format!("/api/traces/{tid}"))
            .json()
            .unwrap();
        v["data"][0]["spans"][0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "user.email")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (x, y) = (tok(&ta), tok(&tb));
    assert!(x.starts_with("tok:email:"), "{x}");
    assert_eq!(x, y, "equal values must share a token");
    assert!(srv.data.join("vault").join("default.vault").exists());
    assert_eq!(files_contain(&srv.data, b"token-subject"), None);

    // A broken policy file stops the server with file, line and reason.
    std::fs::write(&policy, "version = 1\n[actions]\nemail = \"shout\"\n").unwrap();
    let (ok, err) = serve_once(&dir.path().join("d2"), &srv.config);
    assert!(!ok);
    assert!(
        err.contains("policy.toml:3:") && err.contains("shout"),
        "{err}"
    );
}
