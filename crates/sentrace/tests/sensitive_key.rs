//! The sensitive-value key on the real binary (real TLS, real tokens): values that
//! minimization classified are stored under a per-tenant key of their own, which a query by
//! a principal without `view_sensitive` never unwraps. The server's own counters (in
//! `/metrics`) are the instrumented key provider: they count every unwrap of a
//! sensitive-value key through the master key and every value decrypted for a reader.

mod common;

use common::*;

const TEAMS: &str = r#"
[access.teams]
payments = ["checkout"]
"#;

/// (unwraps, values decrypted) from the server's metrics.
fn sensitive_stats(srv: &Server, token: &str) -> (u64, u64) {
    let text = srv.get(token, "/metrics").text().unwrap();
    let read = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    (
        read("sentrace_sensitive_key_unwraps_total"),
        read("sentrace_sensitive_values_decrypted_total"),
    )
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn trace_text(srv: &Server, token: &str, id: &str) -> String {
    let r = srv.get(token, &format!("/api/traces/{id}"));
    assert_eq!(r.status().as_u16(), 200);
    r.text().unwrap()
}

/// Trace ids a Jaeger tag search finds.
fn tag_search(srv: &Server, token: &str, key: &str, value: &str) -> Vec<String> {
    let tags = enc(&serde_json::json!({ key: value }).to_string());
    let r = srv.get(
        token,
        &format!("/api/traces?service=checkout&lookback=1h&tags={tags}"),
    );
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_query_without_view_sensitive_never_unwraps_the_sensitive_value_key() {
    let mut srv = Server::new(TEAMS).start();
    let node = srv.admin_token.clone().unwrap();
    let ingest = srv.token("acme", "ingest");
    let viewer = srv.token("acme", "viewer");
    let dev = srv
        .cli(&[
            "tokens",
            "create",
            "--tenant",
            "acme",
            "--role",
            "developer",
            "--team",
            "payments",
        ])
        .trim()
        .to_string();
    let analyst = srv.token("acme", "security-analyst");
    let admin = srv.token("acme", "admin");

    let mut s = span(7, "charge");
    s.attributes = vec![
        kv("user.email", "jane.doe@example.com"),
        kv("http.route", "/pay"),
    ];
    let tid = hex(&s.trace_id);
    let r = srv.post_proto(&ingest, &request("checkout", vec![s]));
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());

    // In the process that wrote it, the key was made for writing; a viewer's read still
    // decrypts nothing.
    let text = trace_text(&srv, &viewer, &tid);
    assert!(
        text.contains("<redacted:pii>") && !text.contains("pse:"),
        "{text}"
    );
    assert_eq!(sensitive_stats(&srv, &node).1, 0);

    // A fresh process holds no unwrapped sensitive-value key.
    srv.stop();
    srv.launch();
    assert_eq!(sensitive_stats(&srv, &node), (0, 0));

    // Viewer and developer: trace by id (Jaeger and Tempo), search, tag search. Values
    // masked by class, the key never unwrapped.
    for who in [&viewer, &dev] {
        let text = trace_text(&srv, who, &tid);
        assert!(text.contains("<redacted:pii>"), "{text}");
        assert!(
            !text.contains("pse:") && !text.contains("jane.doe"),
            "{text}"
        );
        let r = srv.get(who, &format!("/tempo/api/v2/traces/{tid}"));
        assert_eq!(r.status().as_u16(), 200);
        assert!(!r.text().unwrap().contains("pse:"));
        assert_eq!(
            tag_search(&srv, who, "http.route", "/pay"),
            std::slice::from_ref(&tid)
        );
    }
    assert_eq!(
        sensitive_stats(&srv, &node),
        (0, 0),
        "a query without view_sensitive unwrapped or used the sensitive-value key"
    );

    // A security analyst sees the stored (minimized) form: the key is unwrapped once.
    let text = trace_text(&srv, &analyst, &tid);
    assert!(text.contains("pse:email:"), "{text}");
    assert!(!text.contains("jane.doe"), "{text}");
    let (unwraps, opened) = sensitive_stats(&srv, &node);
    assert_eq!(unwraps, 1);
    assert!(opened >= 1);
    let body: serde_json::Value = srv
        .get(&admin, &format!("/api/traces/{tid}"))
        .json()
        .unwrap();
    let pseudonym = body["data"][0]["spans"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "user.email")
        .map(|t| t["value"].as_str().unwrap().to_string())
        .unwrap();
    assert!(pseudonym.starts_with("pse:email:"), "{pseudonym}");
    assert_eq!(
        sensitive_stats(&srv, &node).0,
        1,
        "unwrapped once, then cached"
    );

    // Tag matching on a sensitive value: only for principals who may see it.
    assert_eq!(
        tag_search(&srv, &admin, "user.email", &pseudonym),
        std::slice::from_ref(&tid)
    );
    let before = sensitive_stats(&srv, &node);
    assert!(tag_search(&srv, &viewer, "user.email", &pseudonym).is_empty());
    assert_eq!(
        sensitive_stats(&srv, &node),
        before,
        "the viewer's search opened nothing"
    );

    // The key is listed, rotated with the data key, and `verify` stays clean.
    srv.stop();
    let listed = srv.cli(&["keys", "list"]);
    assert!(listed.contains("1 sensitive-value keys"), "{listed}");
    srv.cli(&["keys", "rotate", "--tenant", "acme"]);
    let listed = srv.cli(&["keys", "list"]);
    assert!(listed.contains("2 sensitive-value keys"), "{listed}");
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v}");
    srv.launch();
    assert!(trace_text(&srv, &analyst, &tid).contains("pse:email:"));
}
