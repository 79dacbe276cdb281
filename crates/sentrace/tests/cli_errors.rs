//! How the CLI fails: exit status (2 usage, 3 runtime failure), one line on standard error
//! with each cause once, and a quiet end when its reader goes away.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::*;

/// Runs the binary; (exit code, stdout, stderr).
fn run(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("SENTRACE_TOKEN")
        .env_remove("SENTRACE_SERVER")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A runtime failure: exit 3 and exactly one line that contains every `needles`.
fn assert_fails(case: &str, got: (Option<i32>, String, String), needles: &[&str]) {
    let (code, _, err) = got;
    assert_eq!(code, Some(3), "{case}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{case}: not one line: {err}");
    assert!(lines[0].starts_with("sentrace: error: "), "{case}: {err}");
    for n in needles {
        assert!(err.contains(n), "{case}: {n:?} missing: {err}");
        assert_eq!(err.matches(n).count(), 1, "{case}: {n:?} repeated: {err}");
    }
}

#[test]
fn failures_have_a_status_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let missing = dir.path().join("nope.toml");
    let missing = missing.to_str().unwrap();

    // Usage errors are clap's: 2.
    let (code, _, err) = run(&["query", "search", "--no-such-flag"], &[]);
    assert_eq!(code, Some(2), "{err}");

    assert_fails(
        "missing file",
        run(&["config", "check", missing], &[]),
        &["nope.toml", "No such file or directory"],
    );
    // A file or directory that is not there, command by command.
    let nope = dir.path().join("nope");
    let nope = nope.to_str().unwrap();
    for (args, needles) in [
        (vec!["redact", "--policy", missing], vec!["nope.toml"]),
        (vec!["scan", "--policy", missing], vec!["nope.toml"]),
        (vec!["detect", "--rules", missing], vec!["nope.toml"]),
        (
            vec!["policy", "check", "--config", missing],
            vec!["nope.toml"],
        ),
        (
            vec!["query", "search", "--service", "x", "--ca", missing],
            vec!["nope.toml"],
        ),
        (
            vec!["tokens", "list", "--data-dir", nope],
            vec!["no data directory at"],
        ),
        (
            vec!["tokens", "revoke", "--data-dir", nope, "x"],
            vec!["no data directory at"],
        ),
        (
            vec!["audit", "--data-dir", nope],
            vec!["no data directory at"],
        ),
        (
            vec!["response", "list", "--data-dir", nope],
            vec!["no data directory at"],
        ),
        (vec!["verify", "--data-dir", nope], vec!["master.key"]),
    ] {
        assert_fails(
            &args.join(" "),
            run(&args, &[("SENTRACE_TOKEN", "st_0000000000000000_x")]),
            &needles,
        );
    }
    // Durations without a unit, command by command (checked before anything is sent).
    let since = ["--since", "5"];
    let tmp = dir.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["audit", "--data-dir", tmp, "--since", "5"], "since"),
        (
            vec![
                "tokens",
                "create",
                "--data-dir",
                data,
                "--tenant",
                "acme",
                "--role",
                "ingest",
                "--expires",
                "5",
            ],
            "--expires",
        ),
        (
            [&["query", "search", "--service", "x"][..], &since].concat(),
            "--since",
        ),
        (
            vec!["query", "search", "--service", "x", "--min-duration", "5"],
            "--min-duration",
        ),
        (
            vec!["query", "search", "--service", "x", "--max-duration", "5"],
            "--max-duration",
        ),
    ] {
        assert_fails(
            &args.join(" "),
            run(&args, &[("SENTRACE_TOKEN", "st_0000000000000000_x")]),
            &[needle, "unit"],
        );
    }

    // The server is down.
    let port = free_port();
    let down = format!("https://127.0.0.1:{port}");
    assert_fails(
        "server down",
        run(
            &["query", "search", "--service", "x", "--data-dir", data],
            &[
                ("SENTRACE_SERVER", down.as_str()),
                ("SENTRACE_TOKEN", "st_0000000000000000_x"),
            ],
        ),
        &[&format!("127.0.0.1:{port}")],
    );

    // A wrong token against a live server.
    let srv = Server::new("").start();
    let server = format!("https://localhost:{}", srv.query_port);
    let ca = srv.ca();
    let (code, _, err) = run(
        &["query", "search", "--service", "x"],
        &[
            ("SENTRACE_SERVER", server.as_str()),
            ("SENTRACE_CA", ca.to_str().unwrap()),
            ("SENTRACE_TOKEN", "st_0000000000000000_wrong"),
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(
        !err.contains("st_0000000000000000_wrong"),
        "token echoed: {err}"
    );

    // Without --server, the server's own config file says where it listens.
    let config = srv.config.to_str().unwrap();
    let read = srv.token("default", "read");
    let ingest = srv.token("default", "ingest");
    let ca = ca.to_str().unwrap();
    for (args, token) in [
        (
            vec!["query", "search", "--service", "x", "--config", config],
            &read,
        ),
        (
            vec![
                "loadgen",
                "--config",
                config,
                "--requests",
                "1",
                "--spans-per-request",
                "1",
            ],
            &ingest,
        ),
    ] {
        let (code, _, err) = run(&args, &[("SENTRACE_CA", ca), ("SENTRACE_TOKEN", token)]);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // About 3 MB of OTLP/JSON, far more than a pipe holds.
    let spans: Vec<String> = (0..20_000)
        .map(|i| {
            format!(
                r#"{{"traceId":"{i:032x}","spanId":"{i:016x}","name":"op","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{{"key":"user.email","value":{{"stringValue":"user{i}@example.com"}}}}]}}"#
            )
        })
        .collect();
    let input = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let mut child = Command::new(BIN)
        .arg("redact")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    writer.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    // As cat: ended by SIGPIPE, or a clean exit; never a panic or an error message.
    assert!(
        status.signal() == Some(13) || status.success(),
        "{status:?}: {err}"
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn config_check_makes_the_checks_serve_makes_and_serve_creates_nothing_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (toml, needle) in [
        (
            "[access]\npolicies = [\"missing.cedar\"]\n",
            "missing.cedar",
        ),
        (
            "[tls]\ncert = \"nope.pem\"\nkey = \"nope.key\"\n",
            "nope.pem",
        ),
        ("[detect]\nrules = \"nope-rules.toml\"\n", "nope-rules.toml"),
        (
            "[listen]\notlp_grpc = \"127.0.0.1:4999\"\notlp_http = \"127.0.0.1:4999\"\n",
            "port 4999",
        ),
    ] {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        let file = file.to_str().unwrap();
        let (code, _, err) = run(&["config", "check", file], &[]);
        assert_eq!(code, Some(3), "{toml}: {err}");
        assert!(err.contains(needle), "{toml}: {err}");
        let (code, out, err) = run(
            &[
                "serve",
                "--config",
                file,
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, Some(3), "{toml}: {err}");
        assert!(err.contains(needle), "{toml}: {err}");
        assert!(out.is_empty(), "serve printed before failing: {out}");
        assert!(!data.exists(), "serve created the data directory: {toml}");
    }
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "[log]\nformat = \"json\"\n").unwrap();
    let (code, out, err) = run(&["config", "check", file.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok"), "{out}");
}
