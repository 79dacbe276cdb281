//! The server's own log as an operator reads it: JSON or text per `[log]`, no colour codes
//! when it goes to a file, refused credentials at warn without the credential, and the
//! flush at info. Also the listen-address flags of `serve`.

mod common;

use common::*;

#[test]
fn json_log_lines_refusals_at_warn_and_flushes_at_info() {
    let srv = Server::new("[log]\nformat = \"json\"\n[store]\nflush_interval = \"1s\"\n").start();
    let ingest = srv.token("acme", "ingest");
    let wrong = format!("{}x", &ingest[..ingest.len() - 1]);
    for _ in 0..3 {
        let r = srv.post_proto(&wrong, &request("web", vec![span(1, "op")]));
        assert_eq!(r.status(), 401);
    }
    let r = srv.post_proto(&ingest, &request("web", vec![span(2, "op")]));
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let lines = loop {
        let log = srv.log();
        if log.contains("flushed buffered spans") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let mut refused = 0;
    let mut flushed = false;
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !line.contains('\u{1b}'),
            "colour codes in a log file: {line}"
        );
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
        if v["message"] == "credential refused" {
            refused += 1;
            assert_eq!(v["level"], "WARN");
            assert_eq!(v["endpoint"], "POST /v1/traces", "{v}");
            assert!(v["reason"].is_string(), "{v}");
        }
        if v["message"] == "flushed buffered spans into blocks" {
            assert_eq!(v["level"], "INFO");
            flushed = true;
        }
        assert!(
            !line.contains(&wrong[10..]) && !line.contains(&ingest[10..]),
            "a credential in the log: {line}"
        );
    }
    assert_eq!(refused, 3, "{lines}");
    assert!(flushed, "{lines}");
}

#[test]
fn text_logs_to_a_file_have_no_colour_codes() {
    let srv = Server::new("").start();
    let log = srv.log();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log}");
}

#[test]
fn serve_flags_set_the_listen_addresses_and_clashes_are_refused() {
    // Flags override the file: the config's query port is taken by a listener here.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let srv = Server::new("");
    let cfg = std::fs::read_to_string(&srv.config).unwrap().replace(
        &format!("127.0.0.1:{}", srv.query_port),
        &taken.local_addr().unwrap().to_string(),
    );
    std::fs::write(&srv.config, cfg).unwrap();
    let (ok, err) = serve_once(&srv.data, &srv.config);
    assert!(!ok, "{err}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(srv.dir.path().join("flags.log"))
        .unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["serve", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .args(["--query", &format!("127.0.0.1:{}", srv.query_port)]);
    let (mut child, lines) = spawn_until(&mut cmd, log, "sentrace: ready");
    assert!(lines.is_some(), "not ready with --query");
    let r = srv.client().get(srv.query_url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    let _ = child.kill();
    let _ = child.wait();

    // Two listeners on one port: refused before anything starts, naming both.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .args(["--otlp-http", &format!("127.0.0.1:{}", srv.grpc_port)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("otlp_grpc") && err.contains("otlp_http") && err.contains("port"),
        "{err}"
    );
}
