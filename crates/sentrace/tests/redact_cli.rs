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

/// Peak resident memory of `pid` in KiB, sampled while it runs.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn redact_streams_in_constant_memory() {
    use std::io::{Read, Write};
    // One document of about 50 MB (the worst case: no line breaks to split on), generated
    // while it is read.
    const RESOURCES: usize = 50_000;
    let mut child = std::process::Command::new(BIN)
        .arg("redact")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut sent = 0usize;
        let mut w = std::io::BufWriter::new(&mut stdin);
        w.write_all(br#"{"resourceSpans":["#).unwrap();
        for r in 0..RESOURCES {
            let spans: Vec<String> = (0..4)
                .map(|i| {
                    format!(
                        r#"{{"traceId":"{r:016x}{i:016x}","spanId":"{i:016x}","name":"op","attributes":[{{"key":"user.email","value":{{"stringValue":"user{r}@example.com"}}}},{{"key":"note","value":{{"stringValue":"{}"}}}}]}}"#,
                        "x".repeat(160)
                    )
                })
                .collect();
            let sep = if r == 0 { "" } else { "," };
            let item = format!(
                r#"{sep}{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}"#,
                spans.join(",")
            );
            sent += item.len();
            w.write_all(item.as_bytes()).unwrap();
        }
        w.write_all(b"]}\n").unwrap();
        w.flush().unwrap();
        sent
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let (mut total, mut emails) = (0usize, 0usize);
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buf[..n]);
            emails += tail.windows(12).filter(|w| w == b"@example.com").count();
            let keep = tail.len().min(11);
            tail.drain(..tail.len() - keep);
        }
        (total, emails)
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = rss_kib(pid) {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = writer.join().unwrap();
    let (received, emails) = reader.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(sent > 45_000_000, "{sent}");
    assert!(received > sent / 2, "{received} of {sent}");
    assert_eq!(emails, 0, "raw emails in the output");
    assert!(peak > 0);
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB for {sent} bytes of input"
    );
}
