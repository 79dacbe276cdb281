//! `sentrace redact` and `sentrace scan` on OTLP/JSON, as the Collector's file exporter
//! writes it (JSON lines) and as a single request.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::BIN;

const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"POST /pay","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{"key":"user.email","value":{"stringValue":"jane.doe@example.com"}},{"key":"card","value":{"stringValue":"4111 1111 1111 1111"}},{"key":"db.statement","value":{"stringValue":"SELECT * FROM users WHERE name = 'O''Brien' AND id = 42"}}]}]}]}]}"#;

fn run(args: &[&str], input: &str) -> (bool, String, String) {
    let (code, out, err) = run_code(args, input);
    (code == Some(0), out, err)
}

/// `sentrace ARGS < input`: exit code, standard output and standard error.
fn run_code(args: &[&str], input: &str) -> (Option<i32>, String, String) {
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
        out.status.code(),
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

#[test]
fn redact_streams_in_constant_memory() {
    use std::io::{Read, Write};
    // One document of about 300 MB (the worst case: no line breaks to split on), generated
    // while it is read.
    const RESOURCES: usize = 300_000;
    let mut child = common::spawn_piped(&["redact"]);
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
    let (status, peak) = common::wait_sampling_rss(&mut child);
    let sent = writer.join().unwrap();
    let (received, emails) = reader.join().unwrap();
    assert!(status.success());
    assert!(sent > 290_000_000, "{sent}");
    assert!(received > sent / 2, "{received} of {sent}");
    assert_eq!(emails, 0, "raw emails in the output");
    assert!(peak > 0);
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB for {sent} bytes of input"
    );
}

#[test]
fn scan_fail_on_gates_on_severity() {
    // LINE holds an email (medium) and a card number (high).
    let status = |args: &[&str]| {
        let (code, _, err) = run_code(args, LINE);
        (code, err)
    };
    let (code, err) = status(&["scan", "--fail-on", "high"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("1 finding(s) at or above high"), "{err}");
    assert_eq!(
        status(&["scan", "--fail-on", "medium", "--summary"]).0,
        Some(1)
    );
    assert_eq!(status(&["scan", "--fail-on", "critical"]).0, Some(0));
    assert_eq!(status(&["scan"]).0, Some(0));
    let (code, err) = status(&["scan", "--fail-on", "severe"]);
    assert_eq!(code, Some(2), "a usage error: {err}");
}

/// Runs `shell` under a pseudo-terminal (`script` from util-linux) and returns what the
/// terminal showed.
fn on_a_terminal(shell: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .env("SENTRACE_PSEUDONYM_KEY", "11".repeat(32))
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs a command on a pseudo-terminal");
    assert!(out.status.success(), "{shell}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // Enough lines that the commands run for a while (a bar is drawn at least once).
    std::fs::write(&input, format!("{LINE}\n").repeat(4_000)).unwrap();
    let output = dir.path().join("out");
    for (cmd, label) in [
        ("redact", "redact ["),
        ("scan", "scan ["),
        ("detect", "detect ["),
    ] {
        // On a terminal: the bar shows bytes of the file and the spans so far, and is
        // cleared at the end (the output itself goes to a file).
        let screen = on_a_terminal(&format!(
            "{BIN} {cmd} < {} > {}",
            input.display(),
            output.display()
        ));
        assert!(screen.contains(label), "{cmd}: {screen:?}");
        assert!(screen.contains("spans"), "{cmd}: {screen:?}");
        if cmd != "detect" {
            assert!(std::fs::metadata(&output).unwrap().len() > 0, "{cmd}");
        }

        // Piped: standard error holds nothing extra.
        let out = Command::new(BIN)
            .arg(cmd)
            .env("SENTRACE_PSEUDONYM_KEY", "11".repeat(32))
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains('['),
            "{cmd} drew progress into a pipe: {err:?}"
        );
    }
}
