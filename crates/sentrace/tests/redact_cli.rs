//! `sentrace redact` and `sentrace scan` on OTLP/JSON, as the Collector's file exporter
//! writes it (JSON lines) and as a single request.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::BIN;

const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"POST /pay","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{"key":"user.email","value":{"stringValue":"jane.doe@example.com"}},{"key":"card","value":{"stringValue":"4111 1111 1111 1111"}},{"key":"db.statement","value":{"stringValue":"SELECT * FROM users WHERE name = 'O''Brien' AND id = 42"}}]}]}]}]}"#;

fn run(args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("SENTRACE_PSEUDONYM_KEY", "11".repeat(32))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn redact_keeps_shape_and_hides_values() {
    let input = format!("{LINE}\n{LINE}\n");
    let (ok, out, err) = run(&["redact"], &input);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one output line per input line");
    // Stable pseudonyms with a fixed key: the same email gives the same pseudonym.
    assert_eq!(lines[0], lines[1]);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let attrs = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
    let get = |k: &str| {
        attrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(get("user.email").starts_with("pse:email:"));
    assert_eq!(get("card"), "<card>");
    assert_eq!(
        get("db.statement"),
        "SELECT * FROM users WHERE name = ? AND id = ?"
    );
    assert!(!out.contains("jane.doe") && !out.contains("4111"));

    // Bad input: a clear error naming the document.
    let (ok, _, err) = run(&["redact"], "{\"resourceSpans\": 5}");
    assert!(!ok);
    assert!(err.contains("input document 1"), "{err}");
}

#[test]
fn scan_reports_ocsf_without_values() {
    let (ok, out, err) = run(&["scan"], LINE);
    assert!(ok, "{err}");
    let findings: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(findings.len() >= 2);
    for f in &findings {
        assert_eq!(f["class_uid"], 2006);
    }
    let kinds: Vec<&str> = findings
        .iter()
        .flat_map(|f| f["finding_info"]["types"].as_array().unwrap())
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"email") && kinds.contains(&"card"),
        "{kinds:?}"
    );
    assert!(
        !out.contains("jane.doe") && !out.contains("4111"),
        "a raw value leaked"
    );
    let (ok, table, _) = run(&["scan", "--summary"], LINE);
    assert!(ok);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("checkout") && l.contains("card")),
        "{table}"
    );
}
