//! The CLI against a real server: `query trace`, `query search`, `config default|check`.

mod common;

use std::process::Command;

use common::*;

fn run(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn query_trace_and_search() {
    let srv = Server::new("").start();
    let ingest = srv.token("default", "ingest");
    let reader = srv.token("default", "read");
    let root = span(1, "GET /orders");
    let mut child = span(1, "SELECT orders");
    child.span_id = vec![0xcc; 8];
    child.parent_span_id = root.span_id.clone();
    child.attributes.push(kv("db.system", "postgresql"));
    let tid = hex(&root.trace_id);
    assert_eq!(
        srv.post_proto(&ingest, &request("orders", vec![root, child]))
            .status()
            .as_u16(),
        200
    );
    let server = format!("https://localhost:{}", srv.query_port);
    let data = srv.data.to_str().unwrap();
    let env = [
        ("SENTRACE_TOKEN", reader.as_str()),
        ("SENTRACE_SERVER", server.as_str()),
    ];

    let (ok, out, err) = run(&["query", "trace", &tid, "--data-dir", data], &env);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("trace {tid}  (2 spans)")), "{out}");
    let child_line = out.lines().find(|l| l.contains("SELECT orders")).unwrap();
    assert!(
        child_line.contains("  SELECT orders"),
        "child not indented: {out}"
    );

    let (ok, out, err) = run(
        &[
            "query",
            "search",
            "--service",
            "orders",
            "--tag",
            "db.system=postgresql",
            "--since",
            "1h",
            "--data-dir",
            data,
        ],
        &env,
    );
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&tid) && l.contains("GET /orders")),
        "{out}"
    );

    let (ok, out, _) = run(
        &[
            "query",
            "search",
            "--service",
            "orders",
            "--json",
            "--tag",
            "db.system=mysql",
            "--data-dir",
            data,
        ],
        &env,
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"], serde_json::json!([]));

    // A bad token is reported plainly.
    let (ok, _, err) = run(
        &[
            "query",
            "trace",
            &tid,
            "--data-dir",
            data,
            "--token",
            "st_0123456789abcdef_x",
        ],
        &[("SENTRACE_SERVER", server.as_str())],
    );
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
}

#[test]
fn config_default_parses_and_check_reports_lines() {
    let (ok, out, _) = run(&["config", "default"], &[]);
    assert!(ok);
    assert!(out.contains("max_request_bytes = 8388608"));
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &out).unwrap();
    let (ok, _, err) = run(&["config", "check", good.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[store]\nflush_interval = \"5s\"\nretenton = \"1d\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["config", "check", bad.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("bad.toml") && err.contains("line 3") && err.contains("retenton"),
        "{err}"
    );
}

#[test]
fn loadgen_sends_whole_traces() {
    let srv = Server::new("").start();
    let ingest = srv.token("bench", "ingest");
    let read = srv.token("bench", "read");
    let out = srv.cli(&[
        "loadgen",
        // The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT spells it.
        "--endpoint",
        &format!("https://localhost:{}", srv.http_port),
        "--token",
        &ingest,
        "--requests",
        "2",
        "--spans-per-request",
        "10",
        "--concurrency",
        "1",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["spans"], 20, "{r}");
    assert_eq!(r["shape"], "trace");
    // Span 0 is the server span of the first trace; its four children share its trace.
    let trace = {
        let mut t = [0u8; 16];
        t[8..].copy_from_slice(&1u64.to_be_bytes());
        hex(&t)
    };
    let v: serde_json::Value = srv
        .get(&read, &format!("/api/traces/{trace}"))
        .json()
        .unwrap();
    let spans = v["data"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 5, "{v}");
    let kinds: Vec<String> = spans
        .iter()
        .filter_map(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == "span.kind")
                .map(|t| t["value"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "server").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "client").count(),
        3,
        "{kinds:?}"
    );
}
